#!/usr/bin/env bash
# The demo in one command: builds @sekisho/client and this app, then runs the embed-axum example
# (sekisho's endpoints + the example API + this SPA, one origin) on http://127.0.0.1:3000.
# Needs Node 20+, npm and a Rust toolchain. Settings come from the environment as for sekisho,
# e.g. SEKISHO_JWT__ACCESS_TOKEN_LIFETIME=10s examples/vue-spa/run.sh to watch refreshes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
install() { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; }
(cd "$root/clients/js" && install && npm run build --silent)
(cd "$here" && install && npm run build --silent)
cd "$root"
export SEKISHO_SERVER__STATIC_DIR="$here/dist"
export SEKISHO_DATABASE__URL="${SEKISHO_DATABASE__URL:-sqlite://$here/.demo-data/app.db}"
mkdir -p "$here/.demo-data"
echo "demo accounts: demo / demo-password, admin / admin-password"
exec cargo run -p embed-axum
