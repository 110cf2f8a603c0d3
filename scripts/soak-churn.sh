#!/usr/bin/env bash
# Soak test: a target with very high churn, watched headless; prints
# taskscope's resident memory over time, which must stay bounded.
# Usage: scripts/soak-churn.sh [SECONDS=600] [TASKS_PER_SECOND=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
rate=${2:-1000}
cargo build --release --quiet
bin=target/release/taskscope
tmp=$(mktemp -d)
"$bin" demo-target --port 0 --scenarios churn,healthy --churn-rate "$rate" \
  --publish-interval 20ms --retention 10s --exit-on-stdin-close < <(sleep $((secs + 60))) > "$tmp/target.txt" 2>/dev/null &
target_pid=$!
trap 'kill $target_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")
"$bin" watch "$addr" --duration "${secs}s" > "$tmp/watch.txt" 2> "$tmp/watch.err" &
watch_pid=$!
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
echo "soak: $rate tasks/s for ${secs}s (about $((rate * secs)) tasks); RSS in MiB"
printf '%8s %14s %14s\n' elapsed taskscope target
start=$(date +%s)
while kill -0 $watch_pid 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  printf '%7ss %14s %14s\n' "$now" "$(rss $watch_pid)" "$(rss $target_pid)"
  sleep 30
done
wait $watch_pid || true
head -3 "$tmp/watch.txt"
tail -1 "$tmp/watch.err"
