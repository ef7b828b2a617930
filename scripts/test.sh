#!/usr/bin/env bash
# The whole test suite: unit tests, binary-level tests, and the Baileys compatibility test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets
if [ -x tests/compat/run.sh ]; then
  tests/compat/run.sh
fi
