#!/usr/bin/env bash
# Installs the CAP sales-order service (tests/peers/cap/app) with its npm packages into
# the peers cache and prints the directory to start it from:
#   cd "$(tests/peers/cap/install.sh)" && PORT=4004 ./node_modules/.bin/cds-serve --in-memory?
# Needs Node.js 20+ and npm; better-sqlite3 compiles with node-gyp (g++, make, python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${OMNIFLOW_PEERS_CACHE:-$HOME/.cache/omniflow/peers}"
dir="$cache/cap-app"
command -v node >/dev/null || { echo "FATAL: node is required for the CAP peer" >&2; exit 1; }
command -v npm >/dev/null || { echo "FATAL: npm is required for the CAP peer" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || { echo "FATAL: the CAP peer needs Node.js 20 or newer (found $(node --version))" >&2; exit 1; }
mkdir -p "$dir"
# The app's own files are refreshed on every install; node_modules is kept while
# package.json is unchanged.
cp -R "$here/app/." "$dir/"
stamp="$dir/node_modules/.omniflow-package.json"
if [ ! -x "$dir/node_modules/.bin/cds-serve" ] || ! cmp -s "$here/app/package.json" "$stamp"; then
  t0=$(date +%s)
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2)
  cp "$here/app/package.json" "$stamp"
  echo "cap: npm install took $(( $(date +%s) - t0 ))s" >&2
fi
[ -x "$dir/node_modules/.bin/cds-serve" ] || { echo "FATAL: cds-serve missing after npm install" >&2; exit 1; }
echo "$dir"
