#!/usr/bin/env bash
# Do the leak verdicts hold however long you watch? The demo target runs
# six slow leaks at their own sites (2/s, 1/s, 1/2 s, 1/4 s, 1/8 s, 1/min:
# the `slow-leaks` scenario) beside 50 short requests a second and a
# worker pool (`healthy`). After WARMUP seconds (default 300: the agent's
# kept history is full, as on a service that has been up a while),
# `taskscope watch` runs for each of DURATIONS at once, side by side on
# the same target, each writing its JSON report; when the longest ends, a
# snapshot is taken and `report` re-judges it. For each it prints how many
# of the six leaks are flagged and which other groups are (false
# positives). Usage:
#   scripts/verdicts.sh [SOURCE=hooks|console] [DURATIONS="30s 120s 600s 1800s"]
set -euo pipefail
cd "$(dirname "$0")/.."
source=${1:-hooks}
durations=${2:-30s 120s 600s 1800s}
warmup=${WARMUP:-300}
cargo build --release --quiet
bin=$PWD/target/release/taskscope
tmp=$(mktemp -d)
"$bin" demo-target --port 0 --source "$source" --scenarios slow-leaks,healthy \
  --healthy-rate 50 --exit-on-stdin-close < <(sleep 100000 2>/dev/null) > "$tmp/target.txt" 2>/dev/null &
target_pid=$!
trap 'kill $target_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 200); do grep -q console= "$tmp/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$tmp/target.txt")
echo "target $addr ($source source); warming up for ${warmup}s"
sleep "$warmup"
pids=()
for d in $durations; do
  "$bin" watch "$addr" --source "$source" --duration "$d" --format json > "$tmp/watch-$d.json" 2>/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
"$bin" snapshot "$addr" --source "$source" --duration 5s -o "$tmp/end.json" 2>/dev/null
"$bin" report "$tmp/end.json" --format json -o - > "$tmp/report-snapshot.json" 2>/dev/null || true
count() {
  python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
flagged = [s["location"] for s in d["suspects"]]
leaks = sorted(l for l in flagged if "demo/leaks.rs" in l and ":59:" not in l)
others = [l for l in flagged if l not in leaks]
lines = {}
for i, l in enumerate(open("src/demo/leaks.rs").read().splitlines(), 1):
    if "// spawn: slow-leak-" in l:
        lines[l.split("// spawn: ")[1].split()[0]] = i
missed = [n for n, at in sorted(lines.items()) if not any(f":{at + 1}:" in l or f":{at + 2}:" in l or f":{at + 3}:" in l for l in leaks)]
print(f"{len(leaks)} of 6 leaks flagged (missed: {', '.join(missed) or 'none'}); false positives: {others or 'none'}; data {d.get('data_source')}")
EOF
}
for d in $durations; do
  printf 'watch --duration %-6s ' "$d"
  count "$tmp/watch-$d.json"
done
printf 'snapshot, then report: '
count "$tmp/report-snapshot.json"
