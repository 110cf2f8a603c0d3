#!/usr/bin/env bash
# Soak of the hooks source: a target spawning TASKS_PER_SECOND short tasks
# (taskscope-agent on tokio's runtime hooks, no console-subscriber), with a
# client attaching for 5 s every 10 s. Prints the target's resident memory
# and each attach's wall time: memory must stay flat, attaches must not
# stall, whatever the churn.
# Usage: scripts/soak-hooks.sh [SECONDS=600] [TASKS_PER_SECOND=50000]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
rate=${2:-50000}
cargo build --release --quiet
bin=target/release/taskscope
tmp=$(mktemp -d)
"$bin" demo-target --port 0 --source hooks --no-agent --scenarios churn,idle-conn,healthy \
  --churn-rate "$rate" --leak-every 1s --exit-on-stdin-close < <(sleep $((secs + 60))) > "$tmp/target.txt" 2>/dev/null &
target_pid=$!
trap 'kill $target_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu() { awk '{printf "%.0f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
echo "hooks soak: $rate tasks/s for ${secs}s; a client attaches for 5s every 10s"
printf '%8s %12s %10s %14s %s\n' elapsed target_MiB cpu_s attach_secs groups
start=$(date +%s)
while [ $(( $(date +%s) - start )) -lt "$secs" ]; do
  t0=$(date +%s.%N)
  line=$("$bin" watch "$addr" --source hooks --no-dumps --duration 5s --format text 2>/dev/null | head -1 || true)
  t1=$(date +%s.%N)
  printf '%7ss %12s %10s %14.1f %s\n' "$(( $(date +%s) - start ))" "$(rss $target_pid)" "$(cpu $target_pid)" \
    "$(echo "$t1 - $t0" | bc)" "${line#*: }"
  sleep 5
done
