#!/usr/bin/env bash
# The viewer's memory on the console source: one demo target spawns TASKS
# idle tasks (each with a Sleep, over ten spawn sites, 10 000/s, no agent);
# taskscope watches it in a real terminal (tmux, 200x50). Samples the
# viewer's RSS from /proc every 0.5 s; opens the flat task list (`a`) for
# the last third of the run. Prints the peak, the RSS at the end of each
# phase, and how many tasks the screen says it shows.
# Usage: scripts/viewer-memory.sh [TASKS=100000] [SECONDS=90]
# Environment: PUBLISH (the target's publish interval; default 100ms, the
# demo target's: at the subscriber's own 1 s it would take about half an
# hour to send 100 000 new tasks), HEADLESS=1 (measure `taskscope watch` instead),
# WRAP (a command to run the viewer under, e.g. `heaptrack -o /tmp/ts`).
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-100000}
secs=${2:-90}
cargo build --release --quiet
ts=target/release/taskscope
tmp=$(mktemp -d)
sock="tsmem-$$"
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  for p in ${target_pid:-} ${watch_pid:-}; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

"$ts" demo-target --no-agent --port 0 --scenarios idle --idle-tasks "$tasks" --idle-rate 10000 \
  --publish-interval "${PUBLISH:-100ms}" --exit-on-stdin-close < <(sleep $((secs + 120))) > "$tmp/target.txt" 2>/dev/null &
target_pid=$!
for _ in $(seq 100); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")

if [ -n "${HEADLESS:-}" ]; then
  "$ts" watch "$addr" --duration "$((secs + 5))s" > /dev/null 2>&1 &
  pid=$!; watch_pid=$pid
else
  tmux -L "$sock" new-session -d -s ts -x 200 -y 50 "${WRAP:-} $ts connect $addr --no-color"
  sleep 0.5
  pid=$(tmux -L "$sock" display -p -t ts '#{pane_pid}')
fi
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
shown() {
  [ -n "${HEADLESS:-}" ] && { echo -; return; }
  tmux -L "$sock" capture-pane -p -t ts | sed -n 's/.* · \([0-9 ]*\) tasks in .*/\1/p' | tr -d ' ' | head -1
}
start=$(date +%s)
peak=0; list_opened=""; groups_end=0; groups_shown=0
while :; do
  el=$(( $(date +%s) - start ))
  r=$(rss "$pid"); [ "$r" -gt "$peak" ] && peak=$r
  if [ -z "${HEADLESS:-}" ] && [ -z "$list_opened" ] && [ "$el" -ge $((secs * 2 / 3)) ]; then
    groups_end=$r; groups_shown=$(shown)
    tmux -L "$sock" send-keys -t ts a
    list_opened=1
  fi
  [ "$el" -ge "$secs" ] && break
  sleep 0.5
done
end=$(rss "$pid")
echo "machine: $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); target: $tasks idle tasks (a Sleep each), 10 000/s, publish interval ${PUBLISH:-100ms}; watched ${secs}s"
if [ -n "${HEADLESS:-}" ]; then
  echo "taskscope watch: peak RSS $((peak / 1024)) MiB, at the end $((end / 1024)) MiB"
else
  echo "taskscope connect: peak RSS $((peak / 1024)) MiB; groups view $((groups_end / 1024)) MiB at $((secs * 2 / 3))s (${groups_shown:-0} tasks shown); task list open $((end / 1024)) MiB at ${secs}s ($(shown) tasks shown)"
fi
echo "target: RSS $(( $(rss "$target_pid") / 1024 )) MiB"
