#!/usr/bin/env bash
# Order statistics on a big store (issue 12, acceptance 5): a release engine over a store of
# N orders (default 1,000,000, written straight into the store: 1,000 customers, 100 deals, 30
# days, a tenth cancelled), then GET /api/v1/orders/statistics timed 100 times as an admin and
# 100 times as a customer, p50/p99 printed — on SQLite and on Postgres. Loopback only; bounded.
#
#   bash scripts/statistics.sh [orders]
set -euo pipefail
cd "$(dirname "$0")/.."
orders=${1:-1000000}
bin=${TOPKART_STATISTICS_BIN:-target/release/topkart}
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
db="statistics_$$"
cleanup() {
  [ -n "${engine:-}" ] && kill "$engine" 2>/dev/null && wait "$engine" 2>/dev/null
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# seed_sql, sqlite_series, postgres_series, seed_sqlite, seed_postgres
source scripts/seed.sh
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $db" >/dev/null

start() { # start <database url>: the engine on 127.0.0.1:18095
  DATABASE_URL=$1 TOPKART_BIND=127.0.0.1:18095 TOPKART_DATA_DIR="$work" TOPKART_ADMIN_PASSWORD=statistics-admin-1 \
    TOPKART_RATE_LIMITS=off TOPKART_ARGON2_MEMORY_KIB=64 TOPKART_ARGON2_ITERATIONS=1 RUST_LOG=warn \
    "$bin" serve >"$work/engine.log" 2>&1 &
  engine=$!
  local began=$(date +%s.%N)
  for _ in $(seq 1 3000); do
    if curl -sf http://127.0.0.1:18095/readyz >/dev/null; then
      echo "ready in $(echo "$(date +%s.%N) - $began" | bc -l | cut -c1-5) s ($1)"
      return
    fi
    sleep 0.1
  done
  echo "the engine did not start"; cat "$work/engine.log"; exit 1
}
stop() { kill "$engine"; wait "$engine" 2>/dev/null || true; engine=; }

measure() { # measure <label>
  python3 - "$1" <<'PY'
import json, sys, time, urllib.request
base = "http://127.0.0.1:18095/api/v1"
def post(path, body, token=None):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))
admin = post("/auth/login", {"username": "admin", "password": "statistics-admin-1"})["access_token"]
try:
    post("/users", {"username": "measured", "email": "measured@example.com", "password": "measured-password"})
except Exception:
    pass
customer = post("/auth/login", {"username": "measured", "password": "measured-password"})["access_token"]
for who, token in (("admin", admin), ("customer", customer)):
    times = []
    for _ in range(100):
        req = urllib.request.Request(base + "/orders/statistics", headers={"authorization": "Bearer " + token})
        t = time.perf_counter()
        body = json.load(urllib.request.urlopen(req))
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"{sys.argv[1]:<9} {who:<9} p50 {times[49]:7.1f} ms  p99 {times[98]:7.1f} ms  (total_orders {body['total_orders']})")
    if who == "admin":
        # Kept figures against a recount of the rows, straight from the store.
        print(f"{'':<9} {'':<9} by_status {json.dumps(body['by_status'], sort_keys=True)}")
PY
}

# SQLite: the engine creates and migrates the file; the rows go in through Python's sqlite3
# (no extra package) while the engine is stopped.
start "sqlite://$work/topkart.db"; stop
seed_sqlite "$work/topkart.db" "$orders"
start "sqlite://$work/topkart.db"; measure sqlite; stop
echo "          recount   $(python3 -c 'import sqlite3,sys,json; print(json.dumps(dict(sqlite3.connect(sys.argv[1]).execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall()), sort_keys=True))' "$work/topkart.db")"

url="postgres://postgres@127.0.0.1:5432/$db"
start "$url"; stop
seed_postgres "$url" "$orders"
start "$url"; measure postgres; stop
echo "          recount   $(psql -qtA "$url" -c "SELECT json_object_agg(status, n ORDER BY status) FROM (SELECT status, COUNT(*) AS n FROM orders GROUP BY status) c")"
