#!/usr/bin/env bash
# What taskscope-agent costs a service, against what it had before adding
# it, in one run: the hooks bench built twice. First as a service without
# console-subscriber would build it (tokio without its `tracing` feature):
# plain tokio, tokio's four hooks doing nothing, the naive recorder, the
# hooks source, and the hooks source with every task wrapped for captures
# (`traced`); then each hook's own cost, called directly (ns per spawn,
# poll, end). Then dial9 on the same workloads (agent/benches/dial9, a
# crate of its own; skipped with `--no-dial9` or when it cannot be built).
# Then with the agent's `console` feature (console-subscriber linked, which
# turns tokio's `tracing` on for the whole binary): plain tokio with
# `tracing`, console-subscriber, console-subscriber with the agent.
# Usage: scripts/agent-cost.sh [--no-dial9] [-- --quick]
set -euo pipefail
cd "$(dirname "$0")/.."
dial9=1
if [ "${1:-}" = "--no-dial9" ]; then dial9=0; shift; fi
echo "== without tokio's tracing feature (what a service has before the agent)"
cargo tree -p taskscope-agent -e features -i tokio 2>/dev/null | grep -q 'tokio feature "tracing"' &&
  { echo "tokio's tracing feature is on in this build: the baseline would be wrong" >&2; exit 1; }
cargo bench -q -p taskscope-agent --bench hooks "$@"
echo
echo "== each hook's own cost (one thread, called directly)"
cargo bench -q -p taskscope-agent --bench hooks_ops "$@"
if [ "$dial9" = 1 ]; then
  echo
  echo "== dial9 on the same workloads (agent/benches/dial9)"
  if (cd agent/benches/dial9 && cargo build -q --release); then
    agent/benches/dial9/target/release/dial9-churn
  else
    echo "dial9 could not be built here: skipped"
  fi
fi
echo
echo "== with the console feature (console-subscriber; tokio's tracing on for every mode)"
cargo bench -q -p taskscope-agent --features console --bench hooks "$@"
