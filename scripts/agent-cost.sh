#!/usr/bin/env bash
# What taskscope-agent costs a service, against what it had before adding
# it, in one run: the hooks bench built twice. First as a service without
# console-subscriber would build it (tokio without its `tracing` feature):
# plain tokio, the naive recorder, the hooks source, and the hooks source
# with every task wrapped for captures (`traced`). Then with the agent's
# `console` feature (console-subscriber linked, which turns tokio's
# `tracing` on for the whole binary): plain tokio with `tracing`,
# console-subscriber, console-subscriber with the agent.
# Usage: scripts/agent-cost.sh [-- --quick]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== without tokio's tracing feature (what a service has before the agent)"
cargo tree -p taskscope-agent -e features -i tokio 2>/dev/null | grep -q 'tokio feature "tracing"' &&
  { echo "tokio's tracing feature is on in this build: the baseline would be wrong" >&2; exit 1; }
cargo bench -q -p taskscope-agent --bench hooks "$@"
echo
echo "== with the console feature (console-subscriber; tokio's tracing on for every mode)"
cargo bench -q -p taskscope-agent --features console --bench hooks "$@"
