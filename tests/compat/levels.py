"""Levels of the v7 accounts before and after each layer, for the compatibility test.

    python3 levels.py snapshot BIN SESSIONS LABEL OUT.jsonl   append `status --json`'s figures
    python3 levels.py table OUT.jsonl                         print them as a markdown table

A binary that predates issue 20 has no reserved/counted figures: they print as "-".
"""
import json
import subprocess
import sys


def snapshot(binary, sessions, label, out):
    run = subprocess.run(
        [binary, "--sessions-path", sessions, "status", "--json"],
        capture_output=True,
        text=True,
    )
    if run.returncode not in (0, 1):
        sys.exit(f"status failed ({run.returncode}): {run.stderr}")
    with open(out, "a") as f:
        for c in json.loads(run.stdout)["companies"]:
            row = {
                "layer": label,
                "company": c["company"],
                "files": c["files"],
                "reserved": c.get("reserved_pre_keys"),
                "counted": c.get("counted"),
                "level": c["level"],
                "pre_keys": c["by_type"].get("pre-key", 0),
                "sessions": c["by_type"].get("session", 0),
            }
            f.write(json.dumps(row) + "\n")


def table(path):
    rows = [json.loads(line) for line in open(path)]
    show = lambda v: "-" if v is None else str(v)
    print("| layer | account | files | pre-keys | sessions | reserved | counted | level |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['layer']} | {r['company']} | {r['files']} | {r['pre_keys']} | {r['sessions']} "
            f"| {show(r['reserved'])} | {show(r['counted'])} | {r['level']} |"
        )


if __name__ == "__main__":
    if sys.argv[1] == "snapshot":
        snapshot(*sys.argv[2:6])
    elif sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
