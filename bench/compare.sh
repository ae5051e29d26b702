#!/usr/bin/env bash
# sekisho against the Django + DRF + simplejwt reference stack, side by side, on this machine.
#
#   bench/compare.sh                      # the full run (about 15 minutes on 2 cores)
#   BENCH_DURATION=3s BENCH_ROUNDS=1 bench/compare.sh   # a quick look
#   BENCH_BASELINE=<git rev> bench/compare.sh  # also runs that revision (SQLite) as before-sqlite
#
# Builds sekisho (release), installs the reference stack into a throwaway virtualenv, then
# bench/run.py starts both on 127.0.0.1, drives them with wrk and bench/micro's sekisho-load, and
# prints and writes bench/results/<date>-<host>.{md,json}. Settings: see the top of bench/run.py.
# Everything it starts is stopped by process id; throwaway databases and Redis keys are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
for tool in python3 psql; do
  command -v "$tool" >/dev/null || echo "note: $tool not found; the parts that need it are skipped or fail" >&2
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sekisho-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

echo "building sekisho (release) in $CARGO_TARGET_DIR" >&2
cargo build --release -p sekisho
cp "$CARGO_TARGET_DIR/release/sekisho" "$WORK/sekisho"
cargo build --release -p sekisho-bench --bin sekisho-load
cp "$CARGO_TARGET_DIR/release/sekisho-load" "$WORK/sekisho-load"

echo "installing the reference stack into a throwaway virtualenv" >&2
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt

BASELINE_ARGS=()
if [ -n "${BENCH_BASELINE:-}" ]; then
  # An earlier revision, built from a worktree, runs as one more side: before/after figures
  # from the same run. It gets its own target dir: cargo keys workspace crates by their
  # workspace-relative paths, so a shared one would let the two trees overwrite each other's
  # libraries (and a later build of this tree silently link the old ones).
  echo "building the baseline $BENCH_BASELINE (release)" >&2
  git worktree add --detach "$WORK/baseline-src" "$BENCH_BASELINE" >/dev/null
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/baseline" \
    cargo build --release -p sekisho --manifest-path "$WORK/baseline-src/Cargo.toml"
  cp "$CARGO_TARGET_DIR/baseline/release/sekisho" "$WORK/sekisho-baseline"
  git worktree remove --force "$WORK/baseline-src"
  BASELINE_ARGS=(--baseline "$WORK/sekisho-baseline")
fi

"$WORK/venv/bin/python" bench/run.py --work "$WORK" --sekisho "$WORK/sekisho" --load "$WORK/sekisho-load" "${BASELINE_ARGS[@]}"
