#!/usr/bin/env bash
# Builds the release binary and runs the side-by-side benchmarks (see scripts/bench.py).
#   scripts/bench.sh [--runs 5] [--big]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(df -T . | awk 'NR==2 {print $2}')"
exec python3 scripts/bench.py "$PWD/target/release/baileys-janitor" "$@"
