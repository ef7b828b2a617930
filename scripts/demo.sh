#!/usr/bin/env bash
# Shows baileys-janitor doing its main job on a realistic tree it makes itself:
# 5 Baileys 7 companies (an 812 pre-key batch each, less the keys contacts used, top-ups, one
# reconnect loop's earlier batch) and ~300 growing files each with real ages, a dry run, then the
# real cleanup, and the levels as the trigger and the monitor see them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/baileys-janitor
demo=${DEMO_DIR:-$(mktemp -d)/baileys_sessions}
rm -rf "$demo"
python3 scripts/make-demo-tree.py "$demo" --companies 5 --files 300
export BAILEYS_SESSIONS_PATH=$demo BAILEYS_JANITOR_LOG=warn

echo; echo "== what the folders hold now (the spec's ls | wc -l) =="
count() {
  for d in "$demo"/company_*; do
    echo "$(basename "$d"): $(ls -1 "$d" | wc -l) files, $(ls -1 "$d" | grep -c '^pre-key-') of them pre-keys"
  done
}
count

echo; echo "== cleanup --dry-run --verbose --company 962300 (12 of its decisions: file, type, rule, action) =="
"$bin" cleanup --dry-run --verbose --company 962300 | awk 'NR == 1 || NR % 73 == 0 { print; if (++n == 13) exit }' || true

echo; echo "== cleanup (the 3 AM run), then the same count again =="
"$bin" cleanup
count
echo; echo "== status: the levels =="
"$bin" status || true
cat <<'EOF'

What the levels count: a company's files less its reserved pre-keys, the ones the WhatsApp
server may still hand out to a new contact (ids >= nextPreKeyId - 812 - 100). Baileys 7 uploads
812 at pairing, so a healthy folder holds 800-1,000 files; removing those keys would break new
contacts' first messages ("Invalid PreKey ID"), so no layer removes them by default. The spec's
thresholds (warning 150, trigger 175, emergency 180) apply to the rest: sessions, sender keys,
app state and pre-key waste, the growth a cleanup acts on. `ls | wc -l` is not the level.
EOF
echo; echo "removed files are in the trash: $demo/.janitor/trash/ (undo: $bin restore --company 962300)"
echo "tree kept at $demo (BAILEYS_SESSIONS_PATH=$demo $bin cleanup --dry-run -v to explore)"
