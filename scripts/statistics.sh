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

# The same rows on both stores: users 2..1001 customers, deals 1..100 (units enough for every
# order), orders spread over them and over the last 30 days.
seed_sql() { # seed_sql <now ms>
  cat <<SQL
INSERT INTO users (username, email, password_hash, user_type, created_at)
  SELECT 'c' || n, 'c' || n || '@example.com', 'x', 'customer', $1 FROM $2;
INSERT INTO deals (product_name, actual_price, final_price, total_units, available_units, starts_at, expires_at,
                   closed, recurrence, round, rearmed_day, created_at, updated_at)
  SELECT 'Deal ' || n, 2000, 1000, 100000, 100000, $1 - 3600000, $1 + 3600000, FALSE, 'none', 1, 0, $1, $1 FROM $3;
INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, status, created_at, updated_at)
  SELECT 1 + n % 100, 1, 2 + n % 1000, 1, 1000, 1000, CASE WHEN n % 10 = 0 THEN 'CANCELLED' ELSE 'OPEN' END,
         $1 - (n % 30) * CAST(86400000 AS BIGINT) - n % 1000, $1 FROM $4;
UPDATE deals SET available_units = total_units - (SELECT COUNT(*) FROM orders o WHERE o.deal_id = deals.id AND o.status <> 'CANCELLED');
-- Rows written past the engine: their kept statistics, as the migration computes them.
DELETE FROM order_stats;
INSERT INTO order_stats (day, status, slot, orders, revenue)
  SELECT created_at / 86400000, status, deal_id % 64, COUNT(*), SUM(total_price) FROM orders
  GROUP BY created_at / 86400000, status, deal_id % 64;
SQL
}

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

now=$(($(date +%s) * 1000))
# A series 1..k as a FROM item with a column n, in each store's words.
sqlite_series() { echo "(WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < $1) SELECT n FROM r) AS s"; }
postgres_series() { echo "generate_series(1, $1) AS s(n)"; }

# SQLite: the engine creates and migrates the file; the rows go in through Python's sqlite3
# (no extra package) while the engine is stopped.
start "sqlite://$work/topkart.db"; stop
python3 - "$work/topkart.db" "$(seed_sql "$now" "$(sqlite_series 1000)" "$(sqlite_series 100)" "$(sqlite_series "$orders")")" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("BEGIN;" + sys.argv[2].replace("FALSE", "0") + "COMMIT;")
PY
start "sqlite://$work/topkart.db"; measure sqlite; stop
echo "          recount   $(python3 -c 'import sqlite3,sys,json; print(json.dumps(dict(sqlite3.connect(sys.argv[1]).execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall()), sort_keys=True))' "$work/topkart.db")"

url="postgres://postgres@127.0.0.1:5432/$db"
start "$url"; stop
seed_sql "$now" "$(postgres_series 1000)" "$(postgres_series 100)" "$(postgres_series "$orders")" |
  psql -q "$url" -v ON_ERROR_STOP=1 >/dev/null
psql -q "$url" -c "ANALYZE" >/dev/null
start "$url"; measure postgres; stop
echo "          recount   $(psql -qtA "$url" -c "SELECT json_object_agg(status, n ORDER BY status) FROM (SELECT status, COUNT(*) AS n FROM orders GROUP BY status) c")"
