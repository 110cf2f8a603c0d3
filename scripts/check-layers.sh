#!/usr/bin/env bash
# The layers, as cargo's dependency trees keep them (imports are kept by
# the compiler: a crate cannot name what it does not depend on):
# - taskscope-core (the model and the analysis) has no network, terminal or
#   runtime dependency;
# - taskscope-agent, which goes into other people's services, has no
#   terminal dependency and does not depend on the viewer or its core;
# - taskscope-test, which goes into other people's test suites, has no
#   terminal dependency and does not depend on the viewer or on
#   console-subscriber (the agent's hooks, the core's analysis, no more);
# - the viewer links the agent and console-subscriber only for the demo
#   target (the `demo` feature): without it, neither is in its tree.
# `.ci/run` runs this; it takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { cargo tree --locked -e normal --prefix none "$@" | awk '{print $1}' | sort -u; }
fail=0
forbid() {
  local what=$1; shift
  local found
  found=$(tree "$@" | grep -xE "$forbidden" || true)
  if [ -n "$found" ]; then
    echo "$what depends on: $(echo $found)" >&2
    fail=1
  fi
}
forbidden='tonic|hyper|h2|tokio|console-api|console-subscriber|ratatui|crossterm|taskscope-agent'
forbid "taskscope-core (pure)" -p taskscope-core
forbidden='ratatui|crossterm|taskscope|taskscope-core|clap'
forbid "taskscope-agent (goes into services)" -p taskscope-agent
forbidden='ratatui|crossterm|taskscope|clap|console-subscriber|tracing-subscriber'
forbid "taskscope-test (goes into test suites)" -p taskscope-test
forbidden='taskscope-agent|console-subscriber|tracing-subscriber'
forbid "the viewer without its demo" -p taskscope --no-default-features
[ $fail -eq 0 ] && echo "layers: ok"
exit $fail
