#!/usr/bin/env bash
# The agent's captures on other tokio versions than the lock file's: for
# each VERSION, a copy of the workspace's sources with tokio pinned to it
# (`cargo update --precise`) runs the agent's capture tests: tests/strand.rs
# (a watchdog on combinators' children under hundreds of captures),
# tests/waits.rs and tests/servers.rs.
#
# The agent requires tokio >= 1.53.2 (Cargo.toml, workspace dependency):
# from 1.53.2 on, tokio's `trace_leaf` defers a wake of the leaf it stops.
# For a VERSION below that, the copy's requirement is lowered first, and
# the strand test is EXPECTED TO FAIL (it shows why the floor is there);
# the script fails if it passes.
#
# Usage: scripts/tokio-versions.sh [VERSION...]   (default: 1.53.2)
# Example: scripts/tokio-versions.sh 1.53.2 1.53.1
# The copies share a target directory (target/tokio-versions), so only
# tokio and what depends on it is built again for each version.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
floor=1.53.2
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("$floor")
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/tokio-versions}"
below() { [ "$(printf '%s\n%s\n' "$1" "$floor" | sort -V | head -1)" != "$floor" ]; }
status=0
for v in "${versions[@]}"; do
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$work"
  cp -r .cargo "$work"/
  cd "$work"
  if below "$v"; then
    sed -i "s/^tokio = \"$floor\"/tokio = \"1.47\"/" Cargo.toml
  fi
  cargo update -q -p tokio --precise "$v"
  got=$(cargo tree -q -p taskscope-agent -i tokio --depth 0 | head -1)
  echo "== $got"
  set +e
  if below "$v"; then
    out=$(cargo test -q -p taskscope-agent --test tests strand:: 2>&1)
    rc=$?
    echo "$out" | grep -E "stranded|^test result" | head -20
    if [ "$rc" -eq 0 ]; then
      echo "tokio $v: the strand test passed below the floor: the floor would be unexplained" >&2
      status=1
    elif ! echo "$out" | grep -q "a child is stranded"; then
      echo "$out" | tail -30
      echo "tokio $v: the strand test did not run to its verdict" >&2
      status=1
    else
      echo "tokio $v: the strand test fails (a child stranded), as expected below $floor"
    fi
  else
    out=$(cargo test -q -p taskscope-agent --test tests -- strand:: waits:: servers:: 2>&1)
    rc=$?
    echo "$out" | grep -E "panicked|^test result" -A3 | head -40
    [ "$rc" -eq 0 ] || { echo "tokio $v: the capture tests failed" >&2; status=1; }
  fi
  set -e
  cd "$root"
  rm -rf "$work"
done
exit $status
