#!/usr/bin/env bash
# `sekisho import-django` against a real Django project, installed from PyPI (pinned in
# tests/django_import/requirements.txt) into a venv of its own: Django 5.2 with
# djangorestframework-simplejwt's token_blacklist app and django-guardian. The project
# (tests/django_import) is migrated into a fresh SQLite file and filled by `manage.py seed`
# (users hashed by six PASSWORD_HASHERS, an inactive user, two lookalike usernames, a group
# with permissions, a direct permission, guardian grants to a user and a group, a live simplejwt
# pair and a blacklisted refresh token). Then the real binary imports it (a dry run first) and
# serves on loopback, and tests/django_import/check.py proves: the Django passwords log in at
# POST /api/token/, Django's access token is a bearer token at /api/auth/me/ for the same user
# id, Django's refresh token refreshes, the blacklisted one is refused, groups, permissions and
# guardian grants hold, and a re-run changes nothing.
#
# Environment:
#   SEKISHO_VENV_DIR  the venv (default ~/.cache/sekisho-venv-django-import), rebuilt whenever
#                     tests/django_import/requirements.txt changes
#   SEKISHO_BIN       the binary to test (default: cargo build -p sekisho)
#   PYTHON            the interpreter for the venv (default python3, 3.10 or newer)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

VENV="${SEKISHO_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekisho-venv-django-import}"
PYTHON="${PYTHON:-python3}"
TESTS="$ROOT/tests/django_import"
REQUIREMENTS="$TESTS/requirements.txt"

step() { printf '\n==> %s\n' "$*"; }
die() { echo "django_import.sh: $*" >&2; exit 1; }
started=$SECONDS

step "Django venv ($VENV)"
. scripts/venv.sh
pinned_venv "$VENV" "$REQUIREMENTS" "Django 5"
"$VENV/bin/python" -c 'import importlib.metadata as md; print(", ".join(f"{p} {md.version(p)}" for p in ("Django", "djangorestframework-simplejwt", "django-guardian")))'

if [ -z "${SEKISHO_BIN:-}" ]; then
  step "cargo build -p sekisho"
  cargo build -p sekisho --locked
  SEKISHO_BIN="$CARGO_TARGET_DIR/debug/sekisho"
fi
[ -x "$SEKISHO_BIN" ] || die "no binary at $SEKISHO_BIN"
SEKISHO_BIN="$(cd "$(dirname "$SEKISHO_BIN")" && pwd)/$(basename "$SEKISHO_BIN")"

step "migrate, seed, import, serve, check"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sekisho-django-import.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
rc=0
(cd "$TESTS" && env SEKISHO_BIN="$SEKISHO_BIN" WORK="$WORK" PYTHONDONTWRITEBYTECODE=1 \
  timeout 300 "$VENV/bin/python" check.py) || rc=$?
elapsed=$((SECONDS - started))
if [ "$rc" -ne 0 ]; then
  echo "django import: FAILED (exit $rc) in ${elapsed}s"
  exit 1
fi
echo "django import: every check passed in ${elapsed}s"
