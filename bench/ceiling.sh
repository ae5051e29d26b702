#!/usr/bin/env bash
# How close sekisho's floor (GET /healthz through its whole request pipeline) comes to a bare
# axum server on this machine: both built in release, started on 127.0.0.1, driven in turn by
# the same wrk (-t2 -c32), ROUNDS rounds of DURATION, the ratio printed per round.
#
#   bench/ceiling.sh            # 3 rounds of 5s
#   ROUNDS=5 DURATION=10s bench/ceiling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }
cargo build --release -p sekisho -p sekisho-bench --bin sekisho --bin axum-hello >&2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sekisho-ceiling.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HELLO_PORT=$(free_port)
SEKISHO_PORT=$(free_port)
"$CARGO_TARGET_DIR/release/axum-hello" "127.0.0.1:$HELLO_PORT" >"$WORK/hello.log" 2>&1 &
HELLO_PID=$!
(cd "$WORK" && SEKISHO_LOG=warn SEKISHO_SERVER__BIND="127.0.0.1:$SEKISHO_PORT" \
  exec "$CARGO_TARGET_DIR/release/sekisho" serve >"$WORK/sekisho.log" 2>&1) &
SEKISHO_PID=$!
trap 'kill $HELLO_PID $SEKISHO_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$HELLO_PORT/healthz" >/dev/null && curl -sf "http://127.0.0.1:$SEKISHO_PORT/healthz" >/dev/null && break
  sleep 0.2
done
rps() { wrk -t2 -c32 -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'; }
echo "round  axum-hello req/s  sekisho floor req/s  sekisho/hello"
for r in $(seq "$ROUNDS"); do
  h=$(rps "http://127.0.0.1:$HELLO_PORT/healthz")
  s=$(rps "http://127.0.0.1:$SEKISHO_PORT/healthz")
  printf '%5s  %16.0f  %19.0f  %13.2f\n' "$r" "$h" "$s" "$(python3 -c "print($s/$h)")"
done
