#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from the OpenAPI document the server
# serves (GET /api/openapi.json) and sends them to the real binary on loopback, once on SQLite
# (zero-config) and once on PostgreSQL (a fresh database, dropped afterwards). Every response
# must be no 5xx and conform to the document: a documented status code, its content type, its
# schema and its headers.
#
# Per backend, five runs (each a fresh schemathesis process, all four phases):
#   anonymous  every operation, without credentials (schemathesis also makes up bearer tokens
#              and session cookies: the documented 401s and 403s)
#   bearer     every operation but the four below, with `Authorization: Bearer <access>` from
#              POST /api/token/
#   session    every operation but the four below, with the `sessionid` cookie from
#              POST /api/auth/login/ plus the `csrftoken` cookie and the `X-CSRFToken` header
#   relogin-bearer, relogin-session
#              the four operations that end the login they are called with (logout, logout-all,
#              password change, session delete): a fresh login for every case, done by
#              tests/schemathesis/hooks.py, which also steers half of the cases to the success
#              paths (the real old password, a live session id)
# The acting account is a superuser, so the admin API is exercised past its 403s; admin cases
# aimed at its own id go to another user (hooks.py). After the bearer and session runs the
# script checks that their credential still works, so an operation that ends it cannot slip in
# unnoticed.
#
# Environment:
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 25)
#   SCHEMATHESIS_SEED          the seed (default 20240601): the same seed generates the same cases
#   SCHEMATHESIS_WORKERS       concurrent workers per run (default 1: schemathesis runs workers
#                              as threads, and CPython before 3.11.8/3.12.1 can fail a threaded
#                              ast.parse with "AST constructor recursion depth mismatch",
#                              gh-106905, which hypothesis calls while generating cases)
#   SCHEMATHESIS_BACKENDS      "sqlite postgres" (default), or one of them
#   SCHEMATHESIS_REPORT_DIR    keep every run's JSON report (and the server logs) here
#   SEKISHO_VENV_DIR           the venv (default ~/.cache/sekisho-venv-schemathesis), rebuilt
#                              whenever tests/schemathesis/requirements.txt changes
#   SEKISHO_BIN                the binary to test (default: cargo build -p sekisho)
#   SEKISHO_TEST_POSTGRES_URL  default postgres://postgres@127.0.0.1:5432/test
#   PYTHON                     the interpreter for the venv (default python3, 3.10 or newer)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
SEED="${SCHEMATHESIS_SEED:-20240601}"
WORKERS="${SCHEMATHESIS_WORKERS:-1}"
BACKENDS="${SCHEMATHESIS_BACKENDS:-sqlite postgres}"
REPORT_KEEP="${SCHEMATHESIS_REPORT_DIR:-}"
VENV="${SEKISHO_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekisho-venv-schemathesis}"
PG_URL="${SEKISHO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="$ROOT/tests/schemathesis/requirements.txt"
HOOKS_DIR="$ROOT/tests/schemathesis"

USERNAME=st-admin
INITIAL_PASSWORD='schemathesis acting password'
PASSWORD="$INITIAL_PASSWORD"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
# The operations that end the login they are called with (operationIds of openapi.json): a
# bearer token's, and a session's (a session login replaces the session its cookie names).
ENDS_BEARER=(logout logoutAll changePassword deleteSession)
ENDS_SESSION=("${ENDS_BEARER[@]}" login)

step() { printf '\n==> %s\n' "$*"; }
die() { echo "schemathesis.sh: $*" >&2; exit 1; }

# --- the venv ------------------------------------------------------------------------------
step "schemathesis venv ($VENV)"
. scripts/venv.sh
pinned_venv "$VENV" "$REQUIREMENTS" schemathesis bin/st
"$VENV/bin/st" --version

# --- the binary ----------------------------------------------------------------------------
if [ -z "${SEKISHO_BIN:-}" ]; then
  step "cargo build -p sekisho"
  cargo build -p sekisho --locked
  SEKISHO_BIN="$CARGO_TARGET_DIR/debug/sekisho"
fi
[ -x "$SEKISHO_BIN" ] || die "no binary at $SEKISHO_BIN"

# The server and the CLI see only the configuration below, never the caller's SEKISHO_*__*.
UNSET=()
while IFS= read -r name; do UNSET+=(-u "$name"); done < <(compgen -e | grep -E '^SEKISHO_.*__' || true)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sekisho-schemathesis.XXXXXX")"
SERVER_PID=""
PG_DB=""
pg_admin() { psql "$PG_URL" -v ON_ERROR_STOP=1 -qtAc "$1"; }
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
drop_pg() {
  if [ -n "$PG_DB" ]; then
    pg_admin "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" || true
    PG_DB=""
  fi
}
cleanup() {
  stop_server
  drop_pg
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every backend: the same settings, on top of the zero-config defaults.
#  - cheap Argon2 parameters (as the Rust test harnesses use): the re-login runs hash a password
#    for every case; the default parameters are tested in sekisho-core;
#  - no per-address login throttle: every generated login comes from 127.0.0.1, and the default
#    (100 failures in 5 minutes) would lock the acting account's own logins out part-way
#    through. The per-account throttle keeps its default (10 failures), so the 429 that a
#    generated username repeated by the generator earns is checked against the document.
COMMON_ENV=(
  SEKISHO_SERVER__BIND=127.0.0.1:0
  SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB=256
  SEKISHO_PASSWORDS__ARGON2_ITERATIONS=1
  SEKISHO_THROTTLE__MAX_FAILURES_PER_IP=0
  SEKISHO_LOG=warn
)

BACKEND_ENV=()
sekisho() { (cd "$RUN_DIR" && env "${UNSET[@]}" "${COMMON_ENV[@]}" "${BACKEND_ENV[@]}" "$SEKISHO_BIN" "$@"); }

# start_server BACKEND: a fresh data dir (and database), two users, the server on a free port.
start_server() {
  local backend=$1
  PASSWORD="$INITIAL_PASSWORD"
  RUN_DIR="$WORK/$backend"
  mkdir -p "$RUN_DIR"
  BACKEND_ENV=()
  case "$backend" in
    sqlite) ;; # zero-config: ./sekisho-data/ (key + SQLite database) under $RUN_DIR
    postgres)
      pg_admin 'SELECT 1' >/dev/null || die "PostgreSQL is not reachable at $PG_URL"
      PG_DB="sekisho_st_$$_$RANDOM"
      pg_admin "CREATE DATABASE \"$PG_DB\""
      BACKEND_ENV=(SEKISHO_DATABASE__URL="${PG_URL%/*}/$PG_DB")
      ;;
    *) die "unknown backend $backend (sqlite or postgres)" ;;
  esac
  local out
  out="$(printf '%s\n' "$PASSWORD" | sekisho user create "$USERNAME" --email st-admin@example.com --staff --superuser --password-stdin)"
  SELF_ID="$(sed -n 's/.*(id \([0-9]*\)).*/\1/p' <<<"$out")"
  out="$(printf '%s\n' 'schemathesis other password' | sekisho user create st-other --email st-other@example.com --password-stdin)"
  OTHER_ID="$(sed -n 's/.*(id \([0-9]*\)).*/\1/p' <<<"$out")"
  [ -n "$SELF_ID" ] && [ -n "$OTHER_ID" ] || die "user create printed no id: $out"
  printf '%s' "$PASSWORD" >"$RUN_DIR/password"

  (cd "$RUN_DIR" && exec env "${UNSET[@]}" "${COMMON_ENV[@]}" "${BACKEND_ENV[@]}" "$SEKISHO_BIN" serve) \
    >"$RUN_DIR/server.out" 2>"$RUN_DIR/server.err" &
  SERVER_PID=$!
  BASE=""
  for _ in $(seq 300); do
    BASE="$(sed -n 's/^sekisho listening on //p' "$RUN_DIR/server.out")"
    [ -n "$BASE" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN_DIR/server.err" >&2; die "the server exited"; }
    sleep 0.1
  done
  [ -n "$BASE" ] || die "the server printed no address within 30s"
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$BASE/readyz" && return 0
    sleep 0.1
  done
  die "$BASE/readyz did not answer 200"
}

# A bearer token and a session (with its CSRF token) for the acting account.
login() {
  local jar="$RUN_DIR/cookies" body
  # The password as the runs left it (a generated one may hold any character): JSON-encoded
  # straight from the file.
  body="$("$VENV/bin/python" -c 'import json, sys
print(json.dumps({"username": sys.argv[1], "password": open(sys.argv[2]).read()}))' \
    "$USERNAME" "$RUN_DIR/password")"
  ACCESS="$(curl -fsS "$BASE/api/token/" -H 'Content-Type: application/json' -d "$body" \
    | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access"])')"
  rm -f "$jar"
  # The CSRF cookie comes from GET /api/auth/csrf/; login checks it and rotates it.
  curl -fsS -o /dev/null -c "$jar" "$BASE/api/auth/csrf/"
  local csrf
  csrf="$(awk '$6 == "csrftoken" { print $7 }' "$jar")"
  curl -fsS -o /dev/null -b "$jar" -c "$jar" "$BASE/api/auth/login/" \
    -H 'Content-Type: application/json' -H "X-CSRFToken: $csrf" -d "$body"
  SESSIONID="$(awk '$6 == "sessionid" { print $7 }' "$jar")"
  CSRF="$(awk '$6 == "csrftoken" { print $7 }' "$jar")"
  [ -n "$ACCESS" ] && [ -n "$SESSIONID" ] && [ -n "$CSRF" ] || die "could not log in"
}

# still_logged_in MODE: the run must not have ended its own credential.
still_logged_in() {
  local args=()
  case "$1" in
    bearer) args=(-H "Authorization: Bearer $ACCESS") ;;
    session) args=(-H "Cookie: sessionid=$SESSIONID; csrftoken=$CSRF") ;;
  esac
  [ "$(curl -sS -o /dev/null -w '%{http_code}' "${args[@]}" "$BASE/api/auth/me/")" = 200 ]
}

RESULTS=()
FAILED=0

# run_st BACKEND MODE: one schemathesis run; records its figures.
run_st() {
  local backend=$1 mode=$2 args=() env=() dir="$RUN_DIR/report-$2"
  case "$mode" in
    anonymous) ;;
    bearer)
      args=(-H "Authorization: Bearer $ACCESS" --generation-with-security-parameters false)
      for op in "${ENDS_BEARER[@]}"; do args+=(--exclude-operation-id "$op"); done
      ;;
    session)
      args=(-H "Cookie: sessionid=$SESSIONID; csrftoken=$CSRF" -H "X-CSRFToken: $CSRF"
        --generation-with-security-parameters false)
      for op in "${ENDS_SESSION[@]}"; do args+=(--exclude-operation-id "$op"); done
      ;;
    relogin-bearer | relogin-session)
      # One worker: a successful password change must be seen by the next case's login.
      env=(SEKISHO_ST_RELOGIN="${mode#relogin-}")
      args=(--generation-with-security-parameters false --workers 1)
      local ends=("${ENDS_BEARER[@]}")
      [ "$mode" = relogin-session ] && ends=("${ENDS_SESSION[@]}")
      for op in "${ends[@]}"; do args+=(--include-operation-id "$op"); done
      ;;
  esac
  step "$backend / $mode"
  local rc=0
  (cd "$RUN_DIR" && env "${env[@]}" \
    PYTHONPATH="$HOOKS_DIR" SCHEMATHESIS_HOOKS=hooks \
    SEKISHO_ST_BASE="$BASE" SEKISHO_ST_USERNAME="$USERNAME" SEKISHO_ST_PASSWORD="$PASSWORD" \
    SEKISHO_ST_PASSWORD_FILE="$RUN_DIR/password" \
    SEKISHO_ST_SELF_ID="$SELF_ID" SEKISHO_ST_OTHER_ID="$OTHER_ID" \
    "$VENV/bin/st" run "$BASE/api/openapi.json" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers "$WORKERS" \
    --generation-database none --no-color \
    --report json --report-json-path "$dir/report.json" \
    "${args[@]}") >"$RUN_DIR/st-$mode.log" 2>&1 || rc=$?
  # A password change that succeeded in the run is followed by the next run's logins, which
  # read it from $RUN_DIR/password.
  # The summary (and any failure in full) without the progress lines.
  awk '/^=+ (FAILURES|ERRORS|SUMMARY) =+$/ { p = 1 } /^=+ WARNINGS =+$/ { p = 0 } p' \
    "$RUN_DIR/st-$mode.log" | head -n 400
  local figures
  figures="$("$VENV/bin/python" - "$dir/report.json" <<'EOF' 2>/dev/null || echo "- - - -"
import json, sys
r = json.load(open(sys.argv[1]))
tc = r["test_cases"]
print(r["operations"]["tested"], tc["generated"], tc["unique_failures"], len(r["errors"]))
EOF
)"
  read -r ops cases failures errors <<<"$figures"
  local verdict=ok
  if [ "$rc" -ne 0 ]; then verdict="FAILED (exit $rc)"; FAILED=1; fi
  case "$mode" in
    bearer | session)
      if ! still_logged_in "$mode"; then
        verdict="FAILED (the run ended its own $mode login)"
        FAILED=1
      fi
      ;;
  esac
  RESULTS+=("$(printf '%-9s %-16s %10s %8s %9s %7s  %s' "$backend" "$mode" "$ops" "$cases" "$failures" "$errors" "$verdict")")
}

for backend in $BACKENDS; do
  step "$backend: starting sekisho"
  start_server "$backend"
  echo "$BASE (pid $SERVER_PID), acting user id $SELF_ID, other user id $OTHER_ID"
  # The re-login runs go before the bearer and session runs: those read the acting account's
  # username in responses, and schemathesis reuses values it has seen, so their generated
  # logins with wrong passwords lock the account out for `throttle.lockout` (the 429 they get is
  # documented and checked); the re-login runs need its logins to succeed. Their password
  # changes end other logins, so the bearer and session runs log in after them.
  for mode in anonymous relogin-bearer relogin-session; do
    run_st "$backend" "$mode"
  done
  login
  for mode in bearer session; do
    run_st "$backend" "$mode"
  done
  if [ -s "$RUN_DIR/server.err" ]; then
    echo "server log (warnings and errors):"
    head -n 50 "$RUN_DIR/server.err"
  fi
  if [ -n "$REPORT_KEEP" ]; then
    mkdir -p "$REPORT_KEEP/$backend"
    cp -r "$RUN_DIR"/report-* "$RUN_DIR"/st-*.log "$RUN_DIR"/server.* "$REPORT_KEEP/$backend/"
  fi
  stop_server
  drop_pg
done

step "figures (seed $SEED, at most $MAX_EXAMPLES examples per operation and phase)"
printf '%-9s %-16s %10s %8s %9s %7s  %s\n' backend mode operations cases failures errors result
printf '%s\n' "${RESULTS[@]}"
if [ "$FAILED" -ne 0 ]; then
  echo "schemathesis: FAILED"
  exit 1
fi
echo "schemathesis: every run passed"
