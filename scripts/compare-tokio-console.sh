#!/usr/bin/env bash
# Side by side: taskscope and tokio-console on the same target, each in a
# real terminal (tmux). Samples each viewer's RSS and CPU from /proc and the
# time until its screen first shows the target's tasks.
# Usage: scripts/compare-tokio-console.sh [TASKS=10000] [SECONDS=60]
# Environment: PUBLISH (the target's publish interval, default 100ms);
# WARMUP=N attaches the viewers N seconds after the target started, so the
# tasks already exist (default 0: they are spawned while the viewers watch).
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
"$ts" demo-target --no-agent --port 0 --scenarios idle --idle-tasks "$tasks" --idle-rate 10000 \
  --publish-interval "${PUBLISH:-100ms}" --exit-on-stdin-close < <(sleep $((secs + 120))) > "$tmp/target.txt" 2>/dev/null &
target_pid=$!
for _ in $(seq 100); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")
sleep "${WARMUP:-0}"

tmux -L "$sock" new-session -d -s ts -x 200 -y 50 "$ts connect $addr --no-color"
tmux -L "$sock" new-session -d -s tc -x 200 -y 50 "$tc http://$addr"
sleep 0.5
pid_of() { tmux -L "$sock" display -p -t "$1" '#{pane_pid}'; }
ts_pid=$(pid_of ts)
tc_pid=$(pid_of tc)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# How many tasks each viewer says it shows: taskscope's header
# ("· 10 003 tasks in"), tokio-console's table title ("Tasks (10003)").
shown_ts() { tmux -L "$sock" capture-pane -p -t ts | sed -n 's/.* · \([0-9 ]*\) tasks in .*/\1/p' | tr -d ' ' | head -1; }
shown_tc() { tmux -L "$sock" capture-pane -p -t tc | sed -n 's/.*Tasks (\([0-9]*\)).*/\1/p' | head -1; }
# Time to first screen (some tasks listed) and until all of them are.
first_ts=""; first_tc=""; all_ts=""; all_tc=""; n_ts=0; n_tc=0
start=$(date +%s.%N)
ts_cpu0=$(ticks "$ts_pid"); tc_cpu0=$(ticks "$tc_pid")
peak_ts=0; peak_tc=0
while :; do
  now=$(date +%s.%N)
  el=$(awk -v a="$start" -v b="$now" 'BEGIN {printf "%.1f", b - a}')
  n_ts=$(shown_ts); n_ts=${n_ts:-0}
  n_tc=$(shown_tc); n_tc=${n_tc:-0}
  [ -z "$first_ts" ] && [ "$n_ts" -gt 0 ] && first_ts=$el
  [ -z "$first_tc" ] && [ "$n_tc" -gt 0 ] && first_tc=$el
  [ -z "$all_ts" ] && [ "$n_ts" -ge "$tasks" ] && all_ts=$el
  [ -z "$all_tc" ] && [ "$n_tc" -ge "$tasks" ] && all_tc=$el
  r=$(rss "$ts_pid"); [ "$r" -gt "$peak_ts" ] && peak_ts=$r
  r=$(rss "$tc_pid"); [ "$r" -gt "$peak_tc" ] && peak_tc=$r
  awk -v e="$el" -v s="$secs" 'BEGIN {exit !(e >= s)}' && break
  sleep 0.5
done
ts_cpu=$(( $(ticks "$ts_pid") - ts_cpu0 )); tc_cpu=$(( $(ticks "$tc_pid") - tc_cpu0 ))
# The target's console-subscriber thread (aggregator + gRPC server share it).
agg_tid=$(grep -l console_subscr /proc/"$target_pid"/task/*/comm 2>/dev/null | head -1 | xargs -r dirname | xargs -r basename)
agg_cpu=$(awk '{print $14 + $15}' "/proc/$target_pid/task/$agg_tid/stat" 2>/dev/null || echo 0)
target_rss=$(rss "$target_pid")

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "target: $tasks idle tasks over 10 spawn sites, spawned at 10 000/s, publish interval ${PUBLISH:-100ms}; viewers attached ${WARMUP:-0}s after the target started, watched ${secs}s"
printf '%-22s %14s %14s %8s\n' "" taskscope tokio-console ratio
printf '%-22s %14s %14s %8s\n' "peak RSS (MiB)" "$((peak_ts / 1024))" "$((peak_tc / 1024))" \
  "$(awk -v a="$peak_ts" -v b="$peak_tc" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')"
printf '%-22s %14s %14s %8s\n' "avg CPU (%)" "$(awk -v t="$ts_cpu" -v h="$hz" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / h / s}')" \
  "$(awk -v t="$tc_cpu" -v h="$hz" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / h / s}')" \
  "$(awk -v a="$ts_cpu" -v b="$tc_cpu" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')"
printf '%-22s %14s %14s\n' "first tasks shown (s)" "${first_ts:-never}" "${first_tc:-never}"
printf '%-22s %14s %14s\n' "all $tasks shown (s)" "${all_ts:-never}" "${all_tc:-never}"
printf '%-22s %14s %14s\n' "tasks shown at end" "$n_ts" "$n_tc"
echo "target: RSS $((target_rss / 1024)) MiB; its console_subscriber thread used $(awk -v t="$agg_cpu" -v h="$hz" 'BEGIN {printf "%.1f", t / h}') s of CPU since it started"
