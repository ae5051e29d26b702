#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
#   1. lints (rustfmt, clippy with warnings as errors),
#   2. every Rust test: unit tests, the store conformance suite, black-box HTTP tests against the
#      real binary on loopback,
#   3. real-browser tests: headless Debian Chromium driven by playwright-core.
# Installs what it needs (Debian's chromium, the npm packages) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust tests"
cargo test --workspace --locked

step "browser tests"
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
SEKISHO_BIN="$CARGO_TARGET_DIR/debug/sekisho" npm --prefix tests/browser test
