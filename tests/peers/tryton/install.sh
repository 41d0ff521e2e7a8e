#!/usr/bin/env bash
# Installs Tryton 8.0 (trytond with party, company, currency, product, stock, account,
# account_invoice and sale) in a virtualenv in the peers cache, and prepares a template
# SQLite database seeded by seed.py. Prints the cache directory; a test copies
# template/omniflow.sqlite into its own directory and starts
#   $dir/venv/bin/trytond -c CONF -d omniflow
# Needs python3 with venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${OMNIFLOW_PEERS_CACHE:-$HOME/.cache/omniflow/peers}"
dir="$cache/tryton"
series="8.0"
command -v python3 >/dev/null || { echo "FATAL: python3 is required for the Tryton peer" >&2; exit 1; }
mkdir -p "$dir"
if [ ! -x "$dir/venv/bin/trytond" ]; then
  t0=$(date +%s)
  rm -rf "$dir/venv"
  python3 -m venv "$dir/venv" || { echo "FATAL: python3 -m venv failed (install python3-venv)" >&2; exit 1; }
  pkgs=()
  for m in trytond trytond-party trytond-company trytond-currency trytond-product \
           trytond-stock trytond-account trytond-account-invoice trytond-sale; do
    pkgs+=("$m~=$series.0")
  done
  "$dir/venv/bin/pip" install -q --disable-pip-version-check "${pkgs[@]}" >&2
  echo "tryton: pip install took $(( $(date +%s) - t0 ))s" >&2
fi
stamp="$dir/template/.seed-stamp"
# The template is rebuilt when this script or the seed changes.
if [ ! -s "$dir/template/omniflow.sqlite" ] || ! cat "$here/seed.py" "$0" | cmp -s - "$stamp"; then
  t0=$(date +%s)
  rm -rf "$dir/template" && mkdir -p "$dir/template"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  cat > "$dir/template/trytond.conf" <<CONF
[database]
uri = sqlite://
path = $dir/template
[web]
listen = 127.0.0.1:$port
[session]
max_attempt = 50
CONF
  : > "$dir/template/omniflow.sqlite"
  printf 'admin\n' > "$dir/template/passfile"
  TRYTONPASSFILE="$dir/template/passfile" "$dir/venv/bin/trytond-admin" \
    -c "$dir/template/trytond.conf" -d omniflow --email admin@example.invalid \
    -u sale stock --activate-dependencies > "$dir/template/admin.log" 2>&1 \
    || { tail -30 "$dir/template/admin.log" >&2; echo "FATAL: trytond-admin failed" >&2; exit 1; }
  "$dir/venv/bin/trytond" -c "$dir/template/trytond.conf" -d omniflow > "$dir/template/seed-server.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  up=""
  for _ in $(seq 1 300); do
    if python3 - "$port" <<'PY' 2>/dev/null
import json, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/rpc/", method="POST",
    data=json.dumps({"id": 0, "method": "common.server.version", "params": []}).encode(),
    headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=2).read()
PY
    then up=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$up" ] || { tail -30 "$dir/template/seed-server.log" >&2; echo "FATAL: trytond did not start" >&2; exit 1; }
  python3 "$here/seed.py" "http://127.0.0.1:$port" omniflow >&2
  kill $pid; wait $pid 2>/dev/null || true
  trap - EXIT
  # trytond's SQLite runs in WAL mode: fold the log into the file that tests copy.
  python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.execute("PRAGMA journal_mode=DELETE"); c.close()' \
    "$dir/template/omniflow.sqlite"
  [ ! -e "$dir/template/omniflow.sqlite-wal" ] || { echo "FATAL: the template database still has a WAL file" >&2; exit 1; }
  cat "$here/seed.py" "$0" > "$stamp"
  echo "tryton: template database prepared in $(( $(date +%s) - t0 ))s" >&2
fi
echo "$dir"
