#!/usr/bin/env python3
"""Redis (Evolution API layout) benchmark: baileys-janitor against a Lua/HSCAN baseline that
selects the same fields.

    scripts/bench_redis.py BIN [--url redis://127.0.0.1:6379] [--instances 500] [--fields 400] [--runs 3]

Each instance is one hash `<prefix>:instance:<id>` with Evolution's encoding (values JSON-encoded
twice) and a creds field (Redis-only mode): a quarter of the fields are sessions unused for 30
days (the only fields a first run removes: pre-keys and sender keys have no clock yet), the rest
fresh sessions, pre-keys and sender keys. Prints medians, peak memory, the number of fields each
side selected (they must match), and the longest time one hash was held by a removal script.
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("resp", os.path.join(HERE, "..", "tests", "compat", "redis.py"))
resp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(resp)

CREDS = '{"me":{"id":"5511999999999:7@s.whatsapp.net"},"account":{},"nextPreKeyId":100000,"firstUnuploadedPreKeyId":100000}'

# The baseline: one script per hash, HSCAN over it, the same rule (session whose newest
# indexInfo.used is older than the cutoff), count or HDEL.
LUA = r"""
local cursor, n = '0', 0
repeat
  local r = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 500)
  cursor = r[1]
  local kv = r[2]
  for i = 1, #kv, 2 do
    if string.sub(kv[i], 1, 8) == 'session-' then
      local rec = cjson.decode(cjson.decode(kv[i + 1]))
      local newest = 0
      for _, s in pairs(rec['_sessions']) do
        local u = s['indexInfo']['used'] or 0
        if u > newest then newest = u end
      end
      if newest < tonumber(ARGV[1]) then
        n = n + 1
        if ARGV[2] == 'delete' then redis.call('HDEL', KEYS[1], kv[i]) end
      end
    end
  end
until cursor == '0'
return n
"""


def session(used_ms):
    return json.dumps({"_sessions": {"BQ==": {"registrationId": 1, "indexInfo": {
        "baseKey": "BQ==", "baseKeyType": 1, "closed": -1, "used": used_ms, "created": used_ms,
        "remoteIdentityKey": "BQ=="}, "_chains": {}}}, "version": "v1"}, separators=(",", ":"))


def fill(url, prefix, instances, fields):
    r = resp.Redis(url)
    now = int(time.time() * 1000)
    old, fresh = session(now - 30 * 86400000), session(now - 3600000)
    q = fields // 4
    for i in range(instances):
        key = f"{prefix}:instance:{i:08d}-bench"
        args = ["HSET", key, "creds", resp.twice(CREDS)]
        for j in range(q):
            args += [f"session-55{i:05d}{j:05d}.0", resp.twice(old)]
            args += [f"session-56{i:05d}{j:05d}.0", resp.twice(fresh)]
            args += [f"pre-key-{j + 1}", resp.twice('{"private":{"type":"Buffer","data":"AQ=="}}')]
            args += [f"sender-key-1203630{j}@g.us::55{i:05d}::0", resp.twice('[{"senderKeyId":1}]')]
        r.call(*args)
    return instances * q


def drop(url, prefix):
    r = resp.Redis(url)
    cursor = "0"
    while True:
        cursor, keys = r.call("SCAN", cursor, "MATCH", f"{prefix}:*", "COUNT", 1000)
        if keys:
            r.call("DEL", *keys)
        if cursor == "0":
            break


def baseline(url, prefix, mode):
    r = resp.Redis(url)
    cutoff = int(time.time() * 1000) - 14 * 86400000
    sha = r.call("SCRIPT", "LOAD", LUA)
    total, cursor, longest = 0, "0", 0.0
    while True:
        cursor, keys = r.call("SCAN", cursor, "MATCH", f"{prefix}:instance:*", "COUNT", 1000, "TYPE", "hash")
        for k in keys:
            t0 = time.perf_counter()
            total += r.call("EVALSHA", sha, 1, k, cutoff, mode)
            longest = max(longest, time.perf_counter() - t0)
        if cursor == "0":
            break
    print(json.dumps({"selected": total, "longest_script_ms": longest * 1000}))


def timed(cmd, env=None):
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd,
                           capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
        return wall, int(rss.read().strip().splitlines()[-1]), p.stdout


def janitor_selected(out):
    v = json.loads(out)
    return v["totals"]["removed"], max((c.get("longest_transaction_us") or 0) for c in v["companies"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--url", default=os.environ.get("BAILEYS_JANITOR_TEST_REDIS", "redis://127.0.0.1:6379"))
    ap.add_argument("--instances", type=int, default=500)
    ap.add_argument("--fields", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    prefix = f"bjbench{os.getpid()}"
    env = dict(os.environ, BAILEYS_JANITOR_LOG="warn")
    state = tempfile.mkdtemp()
    jan = [a.bin, "--layout", "evolution", "--store", a.url, "--key-pattern", f"{prefix}:instance:*",
           "--state-dir", state]
    me = [sys.executable, os.path.abspath(__file__)]
    rows = []
    try:
        expected = fill(a.url, prefix, a.instances, a.fields)
        print(f"redis bench: {a.instances} Evolution instances x {a.fields} fields, {expected} removable")
        dry = [timed(jan + ["cleanup", "--dry-run", "--json"], env) for _ in range(a.runs)]
        base_dry = [timed(me + ["--baseline", a.url, prefix, "count"]) for _ in range(a.runs)]
        n_jan = janitor_selected(dry[0][2])[0]
        n_base = json.loads(base_dry[0][2])["selected"]
        rows.append(("cleanup --dry-run", dry, base_dry))
        real, base_real, longest_us, base_longest = [], [], [], []
        for _ in range(a.runs):
            drop(a.url, prefix); fill(a.url, prefix, a.instances, a.fields)
            w = timed(jan + ["cleanup", "--json", "--no-trash"], env)
            real.append(w); longest_us.append(janitor_selected(w[2])[1])
            drop(a.url, prefix); fill(a.url, prefix, a.instances, a.fields)
            b = timed(me + ["--baseline", a.url, prefix, "delete"])
            base_real.append(b); base_longest.append(json.loads(b[2])["longest_script_ms"])
        rows.append(("cleanup (real, no trash)", real, base_real))
        print(f"selected: janitor {n_jan}, Lua/HSCAN baseline {n_base} ({'same' if n_jan == n_base == expected else 'DIFFERENT'})")
        print(f"{'':28} {'janitor s':>10} {'baseline s':>11} {'ratio':>6} {'janitor peak':>13}")
        for name, j, b in rows:
            jm, bm = statistics.median(x[0] for x in j), statistics.median(x[0] for x in b)
            print(f"{name:28} {jm:10.3f} {bm:11.3f} {jm / bm:6.2f} {max(x[1] for x in j) / 1024:10.1f} MiB")
        print(f"longest one hash was held: janitor {max(longest_us) / 1000:.2f} ms per removal script "
              f"(100 fields), baseline {max(base_longest):.2f} ms per hash (whole-hash script)")
        # Peak memory against the number of instances (same fields per hash).
        drop(a.url, prefix); fill(a.url, prefix, a.instances // 5, a.fields)
        small = timed(jan + ["cleanup", "--dry-run", "--json"], env)[1]
        print(f"peak memory, dry run: {a.instances // 5} instances {small / 1024:.1f} MiB, "
              f"{a.instances} instances {max(x[1] for x in dry) / 1024:.1f} MiB")
    finally:
        drop(a.url, prefix)
        subprocess.run(["rm", "-rf", state])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline":
        baseline(*sys.argv[2:5])
    else:
        main()
