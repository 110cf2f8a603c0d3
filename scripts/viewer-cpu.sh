#!/usr/bin/env bash
# Two builds of the viewer side by side on one console target: one demo
# target spawns TASKS idle tasks (a Sleep each, 10 000/s, no agent); BASE
# and this checkout's release build each watch it in tmux (200x50). Prints
# each viewer's CPU share and RSS over four phases: loading (60 s), the
# groups view (40 s), the flat task list open (40 s), the largest group
# open (30 s).
# Usage: BASE=/path/to/old/taskscope scripts/viewer-cpu.sh [TASKS=100000]
# (build BASE from another commit with e.g. `git worktree add /tmp/base REV
# && cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-100000}
base=${BASE:?set BASE to the other build of taskscope}
cargo build --release --quiet
new=target/release/taskscope
tmp=$(mktemp -d)
sock="tscpu-$$"
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  kill "${target_pid:-}" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$new" demo-target --no-agent --port 0 --scenarios idle --idle-tasks "$tasks" --idle-rate 10000 \
  --publish-interval 100ms --exit-on-stdin-close < <(sleep 400) > "$tmp/target.txt" 2>/dev/null &
target_pid=$!
for _ in $(seq 100); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")
tmux -L "$sock" new-session -d -s base -x 200 -y 50 "$base connect $addr --no-color"
tmux -L "$sock" new-session -d -s new -x 200 -y 50 "$new connect $addr --no-color"
sleep 1
pb=$(tmux -L "$sock" display -p -t base '#{pane_pid}')
pn=$(tmux -L "$sock" display -p -t new '#{pane_pid}')
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }
keys() { tmux -L "$sock" send-keys -t base "$@"; tmux -L "$sock" send-keys -t new "$@"; }
phase() {
  local b0 n0 b1 n1
  b0=$(cpu "$pb"); n0=$(cpu "$pn"); sleep "$2"; b1=$(cpu "$pb"); n1=$(cpu "$pn")
  echo "$1 (${2}s): base cpu $(( (b1 - b0) * 100 / hz / $2 ))% rss $(rss "$pb") MiB | this cpu $(( (n1 - n0) * 100 / hz / $2 ))% rss $(rss "$pn") MiB"
}
echo "machine: $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); $tasks idle tasks; base: $base"
phase "loading" 60
phase "groups view, loaded" 40
keys a
phase "task list open" 40
keys Escape
sleep 1
keys Enter
phase "largest group open" 30
for s in base new; do
  echo "-- $s: $(tmux -L "$sock" capture-pane -p -t "$s" | head -1 | cut -c1-120)"
done
