#!/usr/bin/env bash
# Builds the release binary and runs the side-by-side benchmarks (see scripts/bench.py).
#   scripts/bench.sh [--runs 5] [--big]     folders, then the store sections
#   scripts/bench.sh --stores [--tenants N] [--runs N] [--json] [--only postgres,mysql,sqlite,redis]
#                                            PostgreSQL, MySQL, SQLite and Redis side by side, one table
#   scripts/bench.sh --redis [--instances N] the Redis (Evolution API) section alone, in detail
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(df -T . | awk 'NR==2 {print $2}')" >&2
if [ "${1:-}" = "--stores" ]; then
  shift
  exec python3 scripts/bench_stores.py "$PWD/target/release/baileys-janitor" "$@"
fi
if [ "${1:-}" = "--redis" ]; then
  shift
  exec python3 scripts/bench_redis.py "$PWD/target/release/baileys-janitor" "$@"
fi
python3 scripts/bench.py "$PWD/target/release/baileys-janitor" "$@"
# The store section: 1,000 tenants x 400 keys in PostgreSQL, MySQL, SQLite and Redis (Evolution
# API layout, against a Lua/HSCAN baseline), side by side (scripts/bench_stores.py).
python3 scripts/bench_stores.py "$PWD/target/release/baileys-janitor"
