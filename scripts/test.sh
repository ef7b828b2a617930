#!/usr/bin/env bash
# The whole test suite: unit tests, binary-level tests, the Baileys compatibility test, the alert
# rules (promtool) and the Debian package install test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets
if [ -x tests/compat/run.sh ]; then
  tests/compat/run.sh
fi
tests/package/alerts.sh
tests/package/run.sh
