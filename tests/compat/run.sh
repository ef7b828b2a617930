#!/usr/bin/env bash
# Baileys compatibility test: builds auth folders with the real Baileys (pinned in
# package-lock.json), runs baileys-janitor on them, and checks the result with Baileys.
# Skips (loudly) only when node is absent; fails when node is present and anything fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "!!! SKIPPED: the Baileys compatibility test needs node (>= 20), which is not installed !!!"
  exit 0
fi
cd "$here"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
(cd "$root" && cargo build --quiet)
bin="$root/target/debug/baileys-janitor"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
node make.mjs "$work/base" 3
manifest="$work/base/manifest.json"
export BAILEYS_JANITOR_LOG=warn
"$bin" --sessions-path "$work/base" cleanup --dry-run --verbose --json > "$work/dry.json"
node check.mjs types "$manifest" "$work/dry.json"
for mode in normal emergency; do
  cp -a "$work/base" "$work/$mode"
  flag=(); [ "$mode" = emergency ] && flag=(--emergency)
  "$bin" --sessions-path "$work/$mode" cleanup "${flag[@]}" --json > "$work/$mode.json"
  removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['removed'])" "$work/$mode.json")
  echo "cleanup ($mode) removed $removed files"
  [ "$removed" -gt 0 ] || { echo "FAIL: the $mode cleanup removed nothing: the test would prove nothing"; exit 1; }
  node check.mjs after "$manifest" "$work/$mode"
done
echo "Baileys compatibility: ok ($(node -p "require('./node_modules/baileys/package.json').version"))"
