#!/usr/bin/env bash
# Soak check for `monitor`: 10,000 fast ticks over 500 companies, RSS sampled along the way.
#   scripts/soak-monitor.sh [TICKS] [COMPANIES] [FILES_PER_COMPANY]
# Prints RSS (KiB) at the start, every 10% of the run, and at the end, plus the peak (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
ticks=${1:-10000}; companies=${2:-500}; files=${3:-60}
cargo build --release --quiet
bin=$PWD/target/release/baileys-janitor
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 scripts/make-demo-tree.py "$work/s" --companies "$companies" --files "$files" --v6 >/dev/null
export BAILEYS_SESSIONS_PATH=$work/s BAILEYS_JANITOR_LOG=error
start=$(date +%s.%N)
"$bin" monitor --interval 1ms --max-ticks "$ticks" --metrics-file "$work/m.prom" &
pid=$!
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo -; }
sleep 1; first=$(rss); echo "rss after 1 s: ${first} KiB"
samples=()
while kill -0 $pid 2>/dev/null; do
  r=$(rss); [ "$r" != "-" ] && [ -n "$r" ] && samples+=("$r") && hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo "$hwm")
  sleep 2
done
wait $pid
end=$(date +%s.%N)
echo "rss samples every 2 s (KiB): ${samples[*]}"
echo "ticks: $ticks over $companies companies × $files files in $(echo "$end - $start" | bc) s"
echo "rss start: ${first} KiB, rss end: ${samples[-1]:-?} KiB, peak (VmHWM): ${hwm:-?} KiB"
