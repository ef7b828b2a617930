#!/usr/bin/env bash
# Shows baileys-janitor doing its main job on a realistic tree it makes itself:
# 5 companies × 400 Baileys files with real ages, a dry run, then the real cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/baileys-janitor
demo=${DEMO_DIR:-$(mktemp -d)/baileys_sessions}
rm -rf "$demo"
python3 scripts/make-demo-tree.py "$demo" --companies 5 --files 400
export BAILEYS_SESSIONS_PATH=$demo BAILEYS_JANITOR_LOG=warn

echo; echo "== what the folders hold now (the spec's ls | wc -l) =="
for d in "$demo"/company_*; do echo "$(basename "$d"): $(ls -1 "$d" | wc -l) files"; done

echo; echo "== cleanup --dry-run --verbose --company 962300 (12 of its decisions: file, type, rule, action) =="
"$bin" cleanup --dry-run --verbose --company 962300 | awk 'NR == 1 || NR % 33 == 0' | head -n 13

echo; echo "== cleanup (the 3 AM run), then the same count again =="
"$bin" cleanup
for d in "$demo"/company_*; do echo "$(basename "$d"): $(ls -1 "$d" | wc -l) files"; done
echo; echo "== status =="
"$bin" status || true
echo; echo "removed files are in the trash: $demo/.janitor/trash/ (undo: $bin restore --company 962300)"
echo "tree kept at $demo (BAILEYS_SESSIONS_PATH=$demo $bin cleanup --dry-run -v to explore)"
