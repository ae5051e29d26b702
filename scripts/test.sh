#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
#   1. lints (rustfmt, clippy with warnings as errors),
#   2. every Rust test: unit tests, the store conformance suite, black-box HTTP tests against the
#      real binary on loopback,
#   3. the browser client (clients/js): typecheck, Vitest unit tests, build; the Vue demo's build,
#   4. real-browser tests: headless Debian Chromium driven by playwright-core,
#   and between them bounded fuzzing of the parsers (scripts/fuzz.sh), the property-based
#   API test generated from the OpenAPI document (scripts/schemathesis.sh), Django's own
#   password hashers checked against sekisho's verifier (scripts/django_hashers.sh) and the
#   interop test with a Django + DRF + djangorestframework-simplejwt resource server and PyJWT
#   (scripts/interop.sh; SEKISHO_INTEROP_ALGORITHMS picks the algorithms, default all four),
#   then `sekisho import-django` from a real migrated Django project (scripts/django_import.sh).
# Installs what it needs (Debian's chromium and nginx, cargo-fuzz, the npm packages from their
# lockfiles) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Rust client's optional reqwest-middleware adapter (off in the workspace build).
cargo clippy -p sekisho-client --all-targets --features reqwest-middleware --locked -- -D warnings

step "services"
# PostgreSQL and Redis are part of the suite: an unreachable service is a failure, not a skip.
export SEKISHO_TEST_POSTGRES_URL="${SEKISHO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export SEKISHO_TEST_REDIS_URL="${SEKISHO_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
if ! psql "$SEKISHO_TEST_POSTGRES_URL" -tAc 'SELECT 1' >/dev/null 2>&1; then
  echo "PostgreSQL is not reachable at $SEKISHO_TEST_POSTGRES_URL; trying to start the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  sleep 2
  psql "$SEKISHO_TEST_POSTGRES_URL" -tAc 'SELECT 1' >/dev/null || { echo "PostgreSQL unavailable"; exit 1; }
fi
if ! redis-cli -u "$SEKISHO_TEST_REDIS_URL" ping >/dev/null 2>&1; then
  echo "Redis is not reachable at $SEKISHO_TEST_REDIS_URL; trying to start it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  sleep 1
  redis-cli -u "$SEKISHO_TEST_REDIS_URL" ping >/dev/null || { echo "Redis unavailable"; exit 1; }
fi
echo "PostgreSQL and Redis reachable"

step "nginx (forward-auth tests run behind Debian's nginx)"
if [ ! -x /usr/sbin/nginx ]; then
  echo "installing Debian's nginx"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nginx >/dev/null
fi
/usr/sbin/nginx -v

step "Rust tests (black-box suite on SQLite; store conformance on SQLite, PostgreSQL and Redis)"
cargo test --workspace --locked
cargo test -p sekisho-client --features reqwest-middleware --test middleware --locked

# The whole black-box suite again on each shared backend (outage tests start their own
# private servers and run once, above).
for backend in postgres postgres+redis; do
  step "black-box suite on $backend"
  SEKISHO_TEST_BACKEND="$backend" cargo test -p sekisho -p sekisho-testing --tests --locked -- --skip outage_ --skip conformance_suite
done

step "fuzzing (bounded: FUZZ_SECONDS per target)"
FUZZ_TARGET_DIR="${CARGO_TARGET_DIR}-fuzz" scripts/fuzz.sh

step "property-based API test from the OpenAPI document (schemathesis; SQLite and PostgreSQL)"
scripts/schemathesis.sh

step "Django password formats against fresh vectors from Django's own hashers"
scripts/django_hashers.sh

step "interop with Django/DRF/simplejwt and PyJWT"
scripts/interop.sh

step "import-django from a real Django 5.2 + simplejwt + django-guardian project"
scripts/django_import.sh

npm_ci() { npm ci --no-audit --no-fund --loglevel=error; }

step "browser client (clients/js): typecheck, unit tests, build"
(cd clients/js && npm_ci && npm run typecheck && npm test && npm run build)

step "Vue demo (examples/vue-spa): build"
(cd examples/vue-spa && npm_ci && npm run build)

step "browser tests"
# The demo's server: the embed-axum example (cargo test builds only its test harness).
cargo build -p embed-axum --locked
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm_ci)
SEKISHO_BIN="$CARGO_TARGET_DIR/debug/sekisho" EMBED_AXUM_BIN="$CARGO_TARGET_DIR/debug/embed-axum" \
  npm --prefix tests/browser test
