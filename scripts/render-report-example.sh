#!/usr/bin/env bash
# Renders the example report under assets/: runs the demo target, writes an
# HTML report of it, and screenshots the page in headless Chromium (installed
# from Debian's packages when missing). Usage: scripts/render-report-example.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

cargo build --release --quiet
bin=target/release/taskscope
out=$(mktemp -d)
"$bin" demo-target --port 0 --leak-every 500ms --scenarios idle-conn,full-channel,sleepers,oneshot,healthy,hostile \
  --exit-on-stdin-close < <(sleep 3600) > "$out/target.txt" 2>/dev/null &
target_pid=$!
trap 'kill $target_pid 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 50); do grep -q console= "$out/target.txt" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^console=//p' "$out/target.txt")

"$bin" report "$addr" --duration 40s --window 30s -o assets/report-example.html
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$out/chromium" --hide-scrollbars --window-size=1200,2200 \
  --screenshot=assets/report-example.png "file://$PWD/assets/report-example.html" 2>/dev/null
echo "wrote assets/report-example.html and assets/report-example.png"
