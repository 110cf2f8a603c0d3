#!/usr/bin/env bash
# taskscope's suspects and their cause-and-fix lines on tokio-console's own
# example app (console-subscriber 0.5's examples/app.rs, as published, with
# every misbehaving task it offers: blocks, burn, coma, noyield, blocking,
# large), watched for SECONDS on the console source. Prints each suspect
# with its advice, and counts the suspects a rule spoke for and those it
# did not.
# Usage: scripts/advice-console-app.sh [SECONDS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
cargo build --release --quiet
ts=$PWD/target/release/taskscope
app=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/console-subscriber-0.5.0/examples/app.rs 2>/dev/null | head -1)
if [ -z "$app" ]; then
  cargo fetch --quiet
  app=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/console-subscriber-0.5.0/examples/app.rs | head -1)
fi
work=target/console-app
mkdir -p "$work/src" "$work/.cargo"
cp "$app" "$work/src/main.rs"
cat > "$work/Cargo.toml" <<'TOML'
[package]
name = "console-app"
version = "0.1.0"
edition = "2021"
[workspace]
[dependencies]
console-subscriber = "=0.5.0"
tokio = { version = "1", features = ["full", "tracing"] }
tracing = "0.1"
TOML
printf '[build]\nrustflags = ["--cfg", "tokio_unstable"]\n' > "$work/.cargo/config.toml"
(cd "$work" && cargo build --release --quiet)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKIO_CONSOLE_BIND=127.0.0.1:$port "$work/target/release/console-app" blocks burn coma noyield blocking large >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
"$ts" watch 127.0.0.1:$port --wait-for-target --duration "${secs}s" --format json > "$work/report.json" || true
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
hits = misses = 0
for g in r["suspects"]:
    a = g.get("advice")
    print(f'!! {g["tasks"]} @ {g["location"]}: {g["suspect"]["reason"]}')
    if a:
        hits += 1
        print(f'   likely cause: {a["cause"]}\n   fix: {a["fix"]}')
    else:
        misses += 1
        print('   (no rule fits)')
advised = sum(1 for g in r["top_groups"] if g.get("advice") and not g.get("suspect"))
print(f'suspects: {len(r["suspects"])}; with a cause and fix: {hits}; without: {misses}; advice on healthy groups: {advised}')
PY
