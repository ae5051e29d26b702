#!/usr/bin/env bash
# Interop with the real thing: sekisho's tokens against a Django + Django REST framework +
# djangorestframework-simplejwt resource server and PyJWT, installed from PyPI (pinned in
# tests/interop/requirements.txt) into a venv of their own. The real binary runs on loopback in
# a fresh data dir; the resource server (tests/interop/resource_server, Django's runserver on
# 127.0.0.1) is configured as a deployment that trusts sekisho would be. It proves, per
# algorithm:
#   - HS256: Django with SIGNING_KEY = sekisho's jwt.signing_key accepts sekisho's access
#     tokens, and sekisho accepts what Django's simplejwt mints with that key
#     (RefreshToken.for_user) at /api/token/verify/, /api/token/refresh/ and as a bearer token;
#   - EdDSA, ES256, RS256: Django with JWK_URL = sekisho's /.well-known/jwks.json, and
#     separately with VERIFYING_KEY = the PEM of the JWKS entry, accepts them; PyJWT's
#     PyJWKClient verifies them by kid; across `sekisho keys rotate` tokens signed before and
#     after keep verifying, and `sekisho keys retire` takes the old key out of the JWKS;
#   - every algorithm: Django (and sekisho) refuse tampered, expired, other-key (same kid),
#     unknown-kid, refresh-as-access, `alg: none` and HS256-with-the-public-key tokens, with
#     simplejwt's messages.
# tests/interop/test_interop.py says how; the names of the asymmetric-signing contract it
# assumes are at its top. An algorithm the binary cannot sign with fails the run with the
# reason (`sekisho config check` refusing it): nothing is skipped.
#
# Environment:
#   SEKISHO_INTEROP_ALGORITHMS  "HS256 EdDSA ES256 RS256" (default), or a subset
#   SEKISHO_INTEROP_PYTEST_ARGS extra pytest arguments (e.g. "-x" or "-k rotation")
#   SEKISHO_INTEROP_REPORT_DIR  keep the processes' logs (pytest's temp dirs) here
#   SEKISHO_VENV_DIR            the venv (default ~/.cache/sekisho-venv-interop), rebuilt
#                               whenever tests/interop/requirements.txt changes
#   SEKISHO_BIN                 the binary to test (default: cargo build -p sekisho)
#   PYTHON                      the interpreter for the venv (default python3, 3.10 or newer)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

ALGORITHMS="${SEKISHO_INTEROP_ALGORITHMS:-HS256 EdDSA ES256 RS256}"
PYTEST_ARGS="${SEKISHO_INTEROP_PYTEST_ARGS:-}"
REPORT_KEEP="${SEKISHO_INTEROP_REPORT_DIR:-}"
VENV="${SEKISHO_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekisho-venv-interop}"
PYTHON="${PYTHON:-python3}"
TESTS="$ROOT/tests/interop"
REQUIREMENTS="$TESTS/requirements.txt"

step() { printf '\n==> %s\n' "$*"; }
die() { echo "interop.sh: $*" >&2; exit 1; }
started=$SECONDS

# --- the venv ------------------------------------------------------------------------------
step "interop venv ($VENV)"
. scripts/venv.sh
pinned_venv "$VENV" "$REQUIREMENTS" "Django 5"
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import jwt.algorithms
assert jwt.algorithms.has_crypto, "PyJWT without cryptography: the asymmetric algorithms are missing"
print(", ".join(f"{p} {md.version(p)}" for p in
      ("Django", "djangorestframework", "djangorestframework-simplejwt", "PyJWT", "cryptography", "pytest")))
EOF

# --- the binary ----------------------------------------------------------------------------
if [ -z "${SEKISHO_BIN:-}" ]; then
  step "cargo build -p sekisho"
  cargo build -p sekisho --locked
  SEKISHO_BIN="$CARGO_TARGET_DIR/debug/sekisho"
fi
[ -x "$SEKISHO_BIN" ] || die "no binary at $SEKISHO_BIN"
SEKISHO_BIN="$(cd "$(dirname "$SEKISHO_BIN")" && pwd)/$(basename "$SEKISHO_BIN")"

# --- the test ------------------------------------------------------------------------------
step "interop tests ($ALGORITHMS)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sekisho-interop.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

rc=0
# shellcheck disable=SC2086 # PYTEST_ARGS is a list of words
(cd "$TESTS" && env SEKISHO_BIN="$SEKISHO_BIN" SEKISHO_INTEROP_ALGORITHMS="$ALGORITHMS" \
  PYTHONDONTWRITEBYTECODE=1 \
  "$VENV/bin/python" -m pytest -v -rfE --color=no --durations=5 \
  --basetemp="$WORK/pytest" $PYTEST_ARGS) || rc=$?

if [ -n "$REPORT_KEEP" ]; then
  mkdir -p "$REPORT_KEEP"
  cp -r "$WORK/pytest/." "$REPORT_KEEP/" 2>/dev/null || true
fi
elapsed=$((SECONDS - started))
if [ "$rc" -ne 0 ]; then
  echo "interop ($ALGORITHMS): FAILED (pytest exit $rc) in ${elapsed}s"
  exit 1
fi
echo "interop ($ALGORITHMS): every test passed in ${elapsed}s"
