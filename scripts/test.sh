#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests use
# besides cargo (tmux for the terminal test, pgrep to check that no demo
# process is left behind), then runs `cargo test --locked`. Extra arguments
# go to cargo test. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    "${sudo[@]}" dnf install -y -q "${need[@]/procps/procps-ng}"
  elif command -v brew >/dev/null 2>&1; then
    brew install tmux
  else
    echo "please install: ${need[*]} (the terminal test needs them)" >&2
    exit 2
  fi
fi

exec cargo test --locked "$@"
