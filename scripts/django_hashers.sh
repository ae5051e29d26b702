#!/usr/bin/env bash
# Django password-format test against Django's current output: builds a venv with the pinned
# Django 5.2 (tests/django_hashers/requirements.txt) and, beside it, Django 4.2 for the hashers
# Django has since removed (requirements-legacy.txt); generates FRESH vectors (random salts)
# with tests/django_hashers/generate.py into a temporary file; and runs the Rust test
# `django_hashers` of sekisho-core against that file. The committed fixture
# (crates/sekisho-core/tests/fixtures/django_hashes.jsonl) is what plain `cargo test` reads;
# this script proves the verifier against what Django writes today.
#
# Never skips: a venv that cannot be built, a generator that fails or a vector that does not
# verify fails the script.
#
# Environment:
#   SEKISHO_VENV_DIR  the venv (default ~/.cache/sekisho-venv-django-hashers), rebuilt whenever
#                     either requirements file or the interpreter changes
#   PYTHON            the interpreter for the venv (default python3, 3.10 to 3.12 for the
#                     legacy crypt vectors; 3.13 drops the crypt module and those are left out)
#   KEEP_VECTORS      a path: keep the generated vectors there
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PYTHON="${PYTHON:-python3}"
VENV="${SEKISHO_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekisho-venv-django-hashers}"
DIR="$ROOT/tests/django_hashers"
step() { printf '\n== %s\n' "$*"; }

step "Django hashers venv ($VENV)"
stamp="$(cat "$DIR/requirements.txt" "$DIR/requirements-legacy.txt" <("$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -d "$VENV/legacy/django" ] && [ "$(cat "$VENV/.sekisho-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "up to date"
else
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$DIR/requirements.txt"
  "$VENV/bin/pip" check --disable-pip-version-check
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$VENV/legacy" -r "$DIR/requirements-legacy.txt"
  echo "$stamp" >"$VENV/.sekisho-stamp"
fi

step "fresh vectors from Django's own hashers"
vectors="$(mktemp "${TMPDIR:-/tmp}/sekisho-django-hashes.XXXXXX.jsonl")"
trap 'rm -f "$vectors"' EXIT
"$VENV/bin/python" "$DIR/generate.py" --out "$vectors"
PYTHONPATH="$VENV/legacy" "$VENV/bin/python" "$DIR/generate.py" --legacy --out "$vectors"
if [ -n "${KEEP_VECTORS:-}" ]; then cp "$vectors" "$KEEP_VECTORS"; fi

step "sekisho verifies them"
SEKISHO_DJANGO_HASH_VECTORS="$vectors" cargo test -p sekisho-core --test django_hashers --locked -- --nocapture
