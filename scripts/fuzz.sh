#!/usr/bin/env bash
# Fuzzes the classifier and the creds.json reader with cargo-fuzz (libFuzzer). Not run by CI.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 300)
# cargo-fuzz needs nightly-only flags; the machine has one stable toolchain, so this uses
# RUSTC_BOOTSTRAP=1 to let stable rustc accept them, and no sanitizer (--sanitizer none): the
# targets check logic (panics, broken invariants), and the code under test has no unsafe.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
mkdir -p fuzz/corpus/classify fuzz/corpus/creds
# Seeds: real names from DOMAIN.md, and creds.json shapes.
for n in creds.json pre-key-1234.json session-5511999999999.0.json session-123456789012345_1.0.json \
  identity-key-123456789012345_1.0.json 'sender-key-120363@g.us--123456789012345_1--0.json' \
  'sender-key-memory-120363@g.us.json' app-state-sync-key-AAAAAOb5.json app-state-sync-version-regular_high.json \
  lid-mapping-123456789012345_reverse.json device-list-5511999999999.json 'tctoken-123@lid.json' \
  session-1.0.json.bak pre-key-7.json.tmp; do printf '%s' "$n" > "fuzz/corpus/classify/$(echo "$n" | md5sum | cut -c1-12)"; done
printf '%s' '{"me":{"id":"5511999999999:1@s.whatsapp.net","lid":"1:1@lid"},"account":{},"nextPreKeyId":813,"firstUnuploadedPreKeyId":813}' > fuzz/corpus/creds/paired
printf '%s' '{"me":{"id":' > fuzz/corpus/creds/truncated
for t in classify creds; do
  echo "== fuzzing $t for ${secs}s"
  (cd fuzz && cargo fuzz run --sanitizer none "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096 2>&1 | tail -n 6)
done
