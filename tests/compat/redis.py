#!/usr/bin/env python3
"""Moves Baileys-written auth folders into Evolution API's Redis layout and back.

    redis.py to-redis   MANIFEST FOLDERS URL PREFIX   one hash <PREFIX>:instance:<company> each
    redis.py from-redis MANIFEST URL PREFIX FOLDERS   the fields left, as the files Baileys reads
    redis.py connect    MANIFEST URL PREFIX           each account connects: Baileys rewrites its
                                                      creds (the account's activity)

Evolution API (src/utils/use-multi-file-auth-state-redis-db.ts, src/api/services/cache.service.ts,
src/cache/rediscache.ts): field `<type>-<raw id>`, value JSON.stringify(JSON.stringify(value,
BufferJSON.replacer)), creds in the field `creds` (Redis-only mode). The file bytes are the
inner JSON.stringify(value, BufferJSON.replacer) text; JSON-encoding that string once more is
the outer JSON.stringify. Types and raw ids come from the manifest (Baileys' own keys.set calls).
Talks RESP over a socket: no client library needed.
"""
import json
import os
import socket
import sys
import time
import urllib.parse


class Redis:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.s = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=10)
        self.f = self.s.makefile("rb")
        if u.password:
            self.call("AUTH", u.username or "default", u.password)

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.s.sendall(b"".join(out))
        return self.read()

    def read(self):
        line = self.f.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode("utf-8")
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")


def fix_file_name(s):
    return s.replace("/", "__").replace(":", "-")


def twice(text):
    # JSON.stringify(string): escapes only ", \\ and control characters, keeps other characters.
    return json.dumps(text, ensure_ascii=False)


def to_redis(manifest, folders, url, prefix):
    r = Redis(url)
    for company, m in manifest.items():
        key = f"{prefix}:instance:{company}"
        for file, (category, key_id) in m["files"].items():
            with open(os.path.join(folders, company, file), encoding="utf-8") as f:
                value = f.read()
            field = "creds" if category == "creds" else f"{category}-{key_id}"
            r.call("HSET", key, field, twice(value))


def from_redis(manifest, url, prefix, folders):
    r = Redis(url)
    for company in manifest:
        out = os.path.join(folders, company)
        os.makedirs(out, exist_ok=True)
        flat = r.call("HGETALL", f"{prefix}:instance:{company}")
        for field, value in zip(flat[::2], flat[1::2]):
            text = json.loads(value)  # CacheService.hGet's first JSON.parse
            name = "creds.json" if field == "creds" else fix_file_name(field) + ".json"
            with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                f.write(text)


def connect(manifest, url, prefix):
    r = Redis(url)
    for company in manifest:
        key = f"{prefix}:instance:{company}"
        value = json.loads(json.loads(r.call("HGET", key, "creds")))
        value["lastAccountSyncTimestamp"] = int(time.time())
        r.call("HSET", key, "creds", twice(json.dumps(value)))


def drop(url, prefix):
    r = Redis(url)
    for k in r.call("KEYS", f"{prefix}:*"):
        r.call("DEL", k)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "drop":
        drop(*sys.argv[2:4])
        sys.exit(0)
    with open(sys.argv[2], encoding="utf-8") as f:
        manifest = json.load(f)
    if mode == "connect":
        connect(manifest, *sys.argv[3:5])
        sys.exit(0)
    a, b, c = sys.argv[3:6]
    {"to-redis": to_redis, "from-redis": from_redis}[mode](manifest, a, b, c)
