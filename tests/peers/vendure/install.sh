#!/usr/bin/env bash
# Installs Vendure (tests/peers/vendure/app: the server script, its catalogue, and
# @vendure/core with the PostgreSQL driver from npm) into the peers cache and prints the
# directory to start it from:
#   cd "$(tests/peers/vendure/install.sh)" && PORT=3000 DATABASE_URL=postgres://... POPULATE=1 node server.js
# Needs Node.js 20+ and npm; bcrypt's prebuilt binary is used (no compiler, no download).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${OMNIFLOW_PEERS_CACHE:-$HOME/.cache/omniflow/peers}"
dir="$cache/vendure-app"
command -v node >/dev/null || { echo "FATAL: node is required for the Vendure peer" >&2; exit 1; }
command -v npm >/dev/null || { echo "FATAL: npm is required for the Vendure peer" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || { echo "FATAL: the Vendure peer needs Node.js 20 or newer (found $(node --version))" >&2; exit 1; }
mkdir -p "$dir"
cp -R "$here/app/." "$dir/"
stamp="$dir/node_modules/.omniflow-package.json"
if [ ! -d "$dir/node_modules/@vendure/core" ] || ! cmp -s "$here/app/package.json" "$stamp"; then
  t0=$(date +%s)
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2)
  cp "$here/app/package.json" "$stamp"
  echo "vendure: npm install took $(( $(date +%s) - t0 ))s" >&2
fi
(cd "$dir" && node -e "require('@vendure/core'); require('bcrypt'); require('pg')") \
  || { echo "FATAL: @vendure/core, bcrypt or pg does not load after npm install" >&2; exit 1; }
echo "$dir"
