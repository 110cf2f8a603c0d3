#!/usr/bin/env bash
# A taskscope binary against the test suite's hostile taskscope-agent
# (tests/hostile_hooks/agent.rs): how long `watch --duration D` runs, its
# peak memory, its exit code and what it flagged (PERFORMANCE.md, "A
# hostile hooks source").
#
#   scripts/hostile-hooks.sh BIN SCENARIO DURATION [WATCH ARGS...]
#
# SCENARIO: `all` (every lie, messages within the default limit), `issue`
# (issue #33's: 5 000 liars of ~20 KB every 500 ms, a 50 MB flood for
# waits), `none` (the honest site alone). UPTIME=0 in the environment:
# the honest leak starts as the viewer attaches (default: 60 s before,
# with that history in the first message); WITHOUT=clock,history,liars,fresh
# leaves those lies out. Builds the test binary (the
# server is in it) and needs GNU time.
set -euo pipefail
bin=${1:?BIN}
scenario=${2:?SCENARIO}
duration=${3:?DURATION}
shift 3
cd "$(dirname "$0")/.."
exe=$(cargo test --locked --no-run -p taskscope --test tests --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for l in sys.stdin:
    j = json.loads(l)
    if j.get("executable") and j.get("profile", {}).get("test"):
        print(j["executable"])' | tail -1)
out=$(mktemp)
TASKSCOPE_HOSTILE=$scenario TASKSCOPE_HOSTILE_UPTIME=${UPTIME:-60} \
  TASKSCOPE_HOSTILE_WITHOUT=${WITHOUT:-} TASKSCOPE_HOSTILE_SECS=$(( ${duration%s} + 90 )) \
  "$exe" hostile_hooks::agent::serve_by_hand --exact --ignored --nocapture >"$out" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 600); do
  addr=$(sed -n 's/^hostile=//p' "$out")
  [ -n "$addr" ] && break
  sleep 0.5
done
[ -n "${addr:-}" ] || { echo "the hostile agent did not start" >&2; exit 2; }
report=$(mktemp)
set +e
/usr/bin/time -f 'elapsed %e s, max RSS %M KiB' -o "$report.time" \
  "$bin" watch "$addr" --duration "$duration" --format json --fail-on-suspect "$@" \
  >"$report" 2>"$report.err"
code=$?
set -e
echo "$scenario, watch --duration $duration $*: exit $code, $(cat "$report.time")"
python3 - "$report" <<'EOF' || head -c 300 "$report.err"
import json, sys
r = json.load(open(sys.argv[1]))
print("suspects:", [s["location"][:60] for s in r.get("suspects", [])])
for w in r.get("warnings", []):
    print("  warning:", w[:160])
EOF
rm -f "$report" "$report.time" "$report.err"
