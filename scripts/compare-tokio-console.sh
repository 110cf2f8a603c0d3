#!/usr/bin/env bash
# Side by side: taskscope and tokio-console on the same target, each in a
# real terminal (tmux). Samples each viewer's RSS and CPU from /proc and the
# time until its screen first shows the target's tasks.
# Usage: scripts/compare-tokio-console.sh [TASKS=10000] [SECONDS=60]
# Installs the published tokio-console (pinned) into .tools/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-10000}
secs=${2:-60}
tc_version=0.1.14
tc=.tools/bin/tokio-console
if [ ! -x "$tc" ]; then
  echo "installing tokio-console $tc_version into .tools/ …"
  cargo install tokio-console --version "$tc_version" --locked --root .tools >/dev/null
fi
cargo build --release --quiet
ts=target/release/taskscope
tmp=$(mktemp -d)
sock="tscmp-$$"
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; kill "${target_pid:-0}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# The target: `tasks` idle tasks over ten spawn sites, spawned at 10 000/s
# while the viewers are attached.
"$ts" demo-target --port 0 --scenarios idle --idle-tasks "$tasks" --idle-rate 10000 \
  --publish-interval "${PUBLISH:-100ms}" --exit-on-stdin-close < <(sleep $((secs + 120))) > "$tmp/target.txt" 2>/dev/null &
target_pid=$!
for _ in $(seq 100); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")

tmux -L "$sock" new-session -d -s ts -x 200 -y 50 "$ts connect $addr --no-color"
tmux -L "$sock" new-session -d -s tc -x 200 -y 50 "$tc http://$addr"
sleep 0.5
pid_of() { tmux -L "$sock" display -p -t "$1" '#{pane_pid}'; }
ts_pid=$(pid_of ts)
tc_pid=$(pid_of tc)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# Time to first screen: until the viewer's pane shows one of the idle tasks.
first_ts=""; first_tc=""
start=$(date +%s.%N)
ts_cpu0=$(ticks "$ts_pid"); tc_cpu0=$(ticks "$tc_pid")
peak_ts=0; peak_tc=0
while :; do
  now=$(date +%s.%N)
  el=$(awk -v a="$start" -v b="$now" 'BEGIN {printf "%.1f", b - a}')
  [ -z "$first_ts" ] && tmux -L "$sock" capture-pane -p -t ts | grep -q 'idle-' && first_ts=$el
  [ -z "$first_tc" ] && tmux -L "$sock" capture-pane -p -t tc | grep -q 'idle-' && first_tc=$el
  r=$(rss "$ts_pid"); [ "$r" -gt "$peak_ts" ] && peak_ts=$r
  r=$(rss "$tc_pid"); [ "$r" -gt "$peak_tc" ] && peak_tc=$r
  awk -v e="$el" -v s="$secs" 'BEGIN {exit !(e >= s)}' && break
  sleep 0.5
done
ts_cpu=$(( $(ticks "$ts_pid") - ts_cpu0 )); tc_cpu=$(( $(ticks "$tc_pid") - tc_cpu0 ))
ts_seen=$(tmux -L "$sock" capture-pane -p -t ts | head -1)

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "target: $tasks idle tasks over 10 spawn sites, spawned at 10 000/s, publish interval ${PUBLISH:-100ms}; watched ${secs}s"
printf '%-22s %14s %14s %8s\n' "" taskscope tokio-console ratio
printf '%-22s %14s %14s %8s\n' "peak RSS (MiB)" "$((peak_ts / 1024))" "$((peak_tc / 1024))" \
  "$(awk -v a="$peak_ts" -v b="$peak_tc" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')"
printf '%-22s %14s %14s %8s\n' "avg CPU (%)" "$(awk -v t="$ts_cpu" -v h="$hz" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / h / s}')" \
  "$(awk -v t="$tc_cpu" -v h="$hz" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / h / s}')" \
  "$(awk -v a="$ts_cpu" -v b="$tc_cpu" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')"
printf '%-22s %14s %14s\n' "first screen (s)" "${first_ts:-never}" "${first_tc:-never}"
echo "taskscope header at the end: $ts_seen"
