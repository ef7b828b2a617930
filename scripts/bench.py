#!/usr/bin/env python3
"""Side-by-side benchmarks of baileys-janitor against find, on generated trees.

    scripts/bench.sh            # builds the release binary, then runs this
    scripts/bench.py BIN [--runs 5] [--big]

Prints a table of medians (wall seconds) and peak memory, and the ratios the targets are about.
--big adds the 1,000,000-file memory check (2,500 companies × 400 files).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def make_tree(root, companies, files):
    # --v6: the trees docs/performance.md measured (pre-keys fill --files), so figures compare.
    subprocess.run([sys.executable, os.path.join(HERE, "make-demo-tree.py"), root,
                    "--companies", str(companies), "--files", str(files), "--v6"],
                   check=True, stdout=subprocess.DEVNULL)


def make_removable_tree(root, companies, per_company):
    """creds + `per_company` session files 30 days old in each company: all removable."""
    now = time.time()
    old = now - 30 * 86400
    for c in range(companies):
        d = os.path.join(root, f"company_{c}")
        os.makedirs(d)
        with open(os.path.join(d, "creds.json"), "w") as f:
            f.write('{"me":{"id":"1:1@s.whatsapp.net"},"account":{},"nextPreKeyId":1,"firstUnuploadedPreKeyId":1}')
        for i in range(per_company):
            p = os.path.join(d, f"session-55{c:05}{i:06}.0.json")
            with open(p, "w") as f:
                f.write('{"s":1}')
            os.utime(p, (old, old))


def run(cmd, env=None):
    """Wall seconds and peak RSS (KiB, from /usr/bin/time: the rusage of a fork from Python
    would count Python's own pages) of one run."""
    with tempfile.NamedTemporaryFile("r") as rss_file:
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        full = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name] + cmd
        t0 = time.perf_counter()
        code = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env).returncode
        wall = time.perf_counter() - t0
        if code not in (0, 1):
            raise SystemExit(f"failed ({code}): {cmd}")
        rss = int(rss_file.read().strip().splitlines()[-1])
    return wall, rss


def median_of(cmd, runs, env=None, setup=None):
    walls, rss = [], []
    for _ in range(runs):
        if setup:
            setup()
        w, r = run(cmd, env)
        walls.append(w)
        rss.append(r)
    return statistics.median(walls), max(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--big", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="janitor-bench-")
    rows = []
    env = dict(os.environ, BAILEYS_JANITOR_LOG="error")
    try:
        root = os.path.join(tmp, "s")
        make_tree(root, 500, 400)
        env["BAILEYS_SESSIONS_PATH"] = root
        nfiles = sum(len(os.listdir(os.path.join(root, d))) for d in os.listdir(root))
        print(f"tree: 500 companies, {nfiles} files; {a.runs} runs each, warm cache", flush=True)
        run([a.bin, "cleanup", "--dry-run"], env)  # warm the cache
        find_stat = median_of(f"find {root} -mindepth 2 -maxdepth 2 -printf '%T@ %p\\n' >/dev/null", a.runs)
        find_nostat = median_of(f"find {root} -mindepth 2 -maxdepth 2 >/dev/null", a.runs)
        ls_loop = median_of(f"cd {root} && for d in company_*; do ls -1 $d | wc -l; done >/dev/null", a.runs)
        dry = median_of([a.bin, "cleanup", "--dry-run"], a.runs, env)
        dry1 = median_of([a.bin, "cleanup", "--dry-run", "--jobs", "1"], a.runs, env)
        dry_json = median_of([a.bin, "cleanup", "--dry-run", "--json"], a.runs, env)
        count = median_of([a.bin, "trigger", "--dry-run", "--threshold", "100000", "--emergency-threshold", "100001"], a.runs, env)
        rows += [
            ("find -printf (readdir + stat every file)", find_stat),
            ("find (readdir only)", find_nostat),
            ("for d in company_*; ls -1 | wc -l", ls_loop),
            ("cleanup --dry-run", dry),
            ("cleanup --dry-run --jobs 1", dry1),
            ("cleanup --dry-run --json", dry_json),
            ("trigger --dry-run (the count)", count),
        ]
        shutil.rmtree(root)

        # Real removal of 100,000 files: ours (unlink and trash) against find -delete.
        base = os.path.join(tmp, "base")
        make_removable_tree(base, 500, 200)
        work = os.path.join(tmp, "w")

        def fresh():
            if os.path.exists(work):
                shutil.rmtree(work)
            # The state directory is bound to the root it first saw (path and inode); a root
            # copied afresh is another root, so each run starts with a fresh state directory.
            shutil.rmtree(os.path.join(tmp, "state"), ignore_errors=True)
            subprocess.run(["cp", "-a", base, work], check=True)
            subprocess.run(f"find {work} -mindepth 2 >/dev/null", shell=True)  # warm

        env_w = dict(env, BAILEYS_SESSIONS_PATH=work, BAILEYS_JANITOR_STATE_DIR=os.path.join(tmp, "state"))
        find_del = median_of(f"find {work} -mindepth 2 -maxdepth 2 -name 'session-*' -delete", a.runs, setup=fresh)
        ours_unlink = median_of([a.bin, "cleanup", "--no-trash"], a.runs, env_w, setup=fresh)
        ours_unlink1 = median_of([a.bin, "cleanup", "--no-trash", "--jobs", "1"], a.runs, env_w, setup=fresh)

        def fresh_trash():
            fresh()
            shutil.rmtree(os.path.join(tmp, "state"), ignore_errors=True)

        ours_trash = median_of([a.bin, "cleanup"], a.runs, env_w, setup=fresh_trash)
        rows += [
            ("find -delete, 100,000 files", find_del),
            ("cleanup --no-trash, 100,000 files", ours_unlink),
            ("cleanup --no-trash --jobs 1, 100,000 files", ours_unlink1),
            ("cleanup (to trash), 100,000 files", ours_trash),
        ]
        shutil.rmtree(base)
        shutil.rmtree(work, ignore_errors=True)

        big = None
        if a.big:
            broot = os.path.join(tmp, "big")
            make_tree(broot, 2500, 400)
            big = median_of([a.bin, "cleanup", "--dry-run"], 1, dict(env, BAILEYS_SESSIONS_PATH=broot))
            rows.append(("cleanup --dry-run, 1,000,000 files", big))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n| what | median wall (s) | peak RSS (MiB) |\n|---|---|---|")
    for name, (wall, rss) in rows:
        print(f"| {name} | {wall:.3f} | {rss / 1024:.1f} |")
    r = dict(rows)
    print("\n| target | ratio | goal |\n|---|---|---|")
    print(f"| cleanup --dry-run / find -printf | {r['cleanup --dry-run'][0] / r['find -printf (readdir + stat every file)'][0]:.2f} | <= 1.0 |")
    print(f"| count / find (no stat) | {r['trigger --dry-run (the count)'][0] / r['find (readdir only)'][0]:.2f} | <= 1.3 |")
    print(f"| cleanup --no-trash / find -delete | {r['cleanup --no-trash, 100,000 files'][0] / r['find -delete, 100,000 files'][0]:.2f} | <= 1.2 |")
    print(f"| peak RSS of cleanup --dry-run, 200,000 files | {r['cleanup --dry-run'][1] / 1024:.1f} MiB | < 20 MiB |")
    if big:
        print(f"| peak RSS of cleanup --dry-run, 1,000,000 files | {big[1] / 1024:.1f} MiB | < 20 MiB, same as 200,000 |")


if __name__ == "__main__":
    main()
