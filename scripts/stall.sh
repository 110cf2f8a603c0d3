#!/usr/bin/env bash
# How long taskscope stops a service with TASKS live tasks (hooks source,
# every task wrapped for captures): the demo target holds TASKS idle tasks
# over ten spawn locations beside its own heartbeat (a task ticking every
# 5 ms that reports, each second, the longest gap between two ticks). The
# script then runs, one after the other:
#   1. a default `taskscope watch ADDR --duration 10s` (waits included);
#   2. the TUI in tmux: attach, press `t`, open the top group (Enter),
#      look for 10 s, quit;
# and prints the heartbeat's longest gap during each, beside its longest
# gap while nobody was attached.
# Usage: scripts/stall.sh [TASKS=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-1000000}
cargo build --release --quiet
bin=$PWD/target/release/taskscope
tmp=$(mktemp -d)
"$bin" demo-target --port 0 --source hooks --scenarios idle,heartbeat \
  --idle-tasks "$tasks" --idle-rate 200000 --exit-on-stdin-close \
  < <(sleep 100000 2>/dev/null) > "$tmp/target.txt" 2> "$tmp/beats.txt" &
target_pid=$!
sock="stall-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; kill $target_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 200); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")
live() {
  "$bin" watch "$addr" --source hooks --no-dumps --duration 1s --format json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["tasks"])' 2>/dev/null || echo 0
}
echo "waiting for $tasks live tasks…"
for _ in $(seq 600); do [ "$(live)" -ge "$tasks" ] && break; sleep 1; done
echo "live: $(live) tasks; target RSS $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$target_pid/status)"
# The longest heartbeat gap reported from line $1 of the beats file on.
gap_since() { tail -n +"$1" "$tmp/beats.txt" | sed -n 's/^heartbeat_gap_ms=//p' | sort -g | tail -1; }
mark() { wc -l < "$tmp/beats.txt"; }

m=$(mark); sleep 10
echo "nobody attached (10 s):            longest heartbeat gap $(gap_since "$m") ms"

m=$(mark)
start=$(date +%s.%N)
"$bin" watch "$addr" --duration 10s --format json > "$tmp/watch.json"
took=$(echo "$(date +%s.%N) - $start" | bc)
sleep 1.5
waits=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print((d["waits"]["last"] or {}).get("tasks", 0))' "$tmp/watch.json" 2>/dev/null || echo "?")
echo "taskscope watch --duration 10s:    longest heartbeat gap $(gap_since "$m") ms (watch took ${took}s; $waits waits from captures)"

m=$(mark)
tmux -L "$sock" new-session -d -s stall -x 200 -y 50 "$bin connect $addr"
sleep 5
tmux -L "$sock" send-keys -t stall t
sleep 3
tmux -L "$sock" send-keys -t stall Enter
sleep 7
tmux -L "$sock" capture-pane -p -t stall | head -8 > "$tmp/screen.txt"
tmux -L "$sock" send-keys -t stall q
sleep 1.5
echo "TUI, t, a group opened (15 s):     longest heartbeat gap $(gap_since "$m") ms"
echo "what the TUI showed:"
cat "$tmp/screen.txt"
