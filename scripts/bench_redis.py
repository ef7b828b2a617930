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
            raise RuntimeError(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
        return wall, int(rss.read().strip().splitlines()[-1]), p.stdout


def janitor_selected(out):
    v = json.loads(out)
    return v["totals"]["removed"], max((c.get("longest_transaction_us") or 0) for c in v["companies"])


def measure(bin_, url, instances, fields, runs, log=sys.stdout):
    """Every figure of the Redis section (medians and ranges are the caller's): dry run and real
    cleanup (no trash, like the baseline) against the Lua/HSCAN script, runs times each on fresh
    data; peak memory at a quarter and at all of the instances; the selected counts."""
    prefix = f"bjbench{os.getpid()}"
    env = dict(os.environ, BAILEYS_JANITOR_LOG="warn")
    state = tempfile.mkdtemp()
    # An empty configuration of its own: the host's /etc/baileys-janitor/config.toml stays out.
    config = os.path.join(state, "bench.toml")
    open(config, "w").close()
    jan = [bin_, "--layout", "evolution", "--store", url, "--key-pattern", f"{prefix}:instance:*",
           "--state-dir", state, "--config", config]
    me = [sys.executable, os.path.abspath(__file__)]
    r = {k: [] for k in ("dry_s", "select_s", "real_s", "trash_tx_s", "longest_tx_ms", "baseline_longest_ms")}
    r["tenants"], r["rows"] = instances, instances * (fields // 4 * 4 + 1)
    try:
        expected = fill(url, prefix, instances, fields)
        for i in range(runs):
            print(f"  run {i + 1}/{runs}: dry run and Lua count", file=log, flush=True)
            w = timed(jan + ["cleanup", "--dry-run", "--json"], env)
            r["dry_s"].append(w[0]); r["rss_all_mib"] = max(r.get("rss_all_mib", 0), w[1] / 1024)
            r["planned"] = janitor_selected(w[2])[0]
            b = timed(me + ["--baseline", url, prefix, "count"])
            r["select_s"].append(b[0]); r["sql_rows"] = json.loads(b[2])["selected"]
        for i in range(runs):
            print(f"  run {i + 1}/{runs}: real cleanup and Lua delete", file=log, flush=True)
            drop(url, prefix); fill(url, prefix, instances, fields)
            w = timed(jan + ["cleanup", "--json", "--no-trash"], env)
            r["real_s"].append(w[0]); r["removed"], longest_us = janitor_selected(w[2])
            r["longest_tx_ms"].append(longest_us / 1000)
            drop(url, prefix); fill(url, prefix, instances, fields)
            b = timed(me + ["--baseline", url, prefix, "delete"])
            r["trash_tx_s"].append(b[0]); r["baseline_longest_ms"].append(json.loads(b[2])["longest_script_ms"])
            r["tx_rows"] = json.loads(b[2])["selected"]
        # Peak memory against the number of instances (same fields per hash).
        drop(url, prefix); fill(url, prefix, instances // 4, fields)
        r["rss_quarter_mib"] = timed(jan + ["cleanup", "--dry-run", "--json"], env)[1] / 1024
    finally:
        drop(url, prefix)
        subprocess.run(["rm", "-rf", state])
    r["expected"] = expected
    r["dry_ratio"] = [d / s for d, s in zip(r["dry_s"], r["select_s"])]
    r["real_ratio"] = [d / s for d, s in zip(r["real_s"], r["trash_tx_s"])]
    r["same_rows"] = r["planned"] == r["sql_rows"] == r["removed"] == r["tx_rows"] == expected
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--url", default=os.environ.get("BAILEYS_JANITOR_TEST_REDIS", "redis://127.0.0.1:6379"))
    ap.add_argument("--instances", type=int, default=500)
    ap.add_argument("--fields", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    print(f"redis bench: {a.instances} Evolution instances x {a.fields} fields")
    r = measure(a.bin, a.url, a.instances, a.fields, a.runs)
    print(f"selected: janitor {r['planned']} (removed {r['removed']}), Lua/HSCAN baseline {r['sql_rows']}"
          f" ({'same' if r['same_rows'] else 'DIFFERENT'}, {r['expected']} removable)")
    print(f"{'':28} {'janitor s':>10} {'baseline s':>11} {'ratio':>6}")
    for name, j, b in (("cleanup --dry-run", r["dry_s"], r["select_s"]),
                       ("cleanup (real, no trash)", r["real_s"], r["trash_tx_s"])):
        jm, bm = statistics.median(j), statistics.median(b)
        print(f"{name:28} {jm:10.3f} {bm:11.3f} {jm / bm:6.2f}")
    print(f"longest one hash was held: janitor {max(r['longest_tx_ms']):.2f} ms per removal script "
          f"(100 fields), baseline {max(r['baseline_longest_ms']):.2f} ms per hash (whole-hash script)")
    print(f"peak memory, dry run: {a.instances // 4} instances {r['rss_quarter_mib']:.1f} MiB, "
          f"{a.instances} instances {r['rss_all_mib']:.1f} MiB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline":
        baseline(*sys.argv[2:5])
    else:
        main()
