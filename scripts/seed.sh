# Sourced by the bench scripts: N orders written straight into a stopped engine's store
# (created and migrated by the engine), the same rows on both stores: users 2..1001 customers
# (c1..c1000, who cannot log in), deals 1..100 (units enough for every order), orders spread
# over them and over the last 30 days, a tenth cancelled, and their kept statistics.
#
#   seed_sqlite <file> <orders>        seed_postgres <url> <orders>

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

# A series 1..k as a FROM item with a column n, in each store's words.
sqlite_series() { echo "(WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < $1) SELECT n FROM r) AS s"; }
postgres_series() { echo "generate_series(1, $1) AS s(n)"; }

seed_sqlite() { # seed_sqlite <file> <orders>: through Python's sqlite3 (no extra package)
  local now=$(($(date +%s) * 1000))
  python3 - "$1" "$(seed_sql "$now" "$(sqlite_series 1000)" "$(sqlite_series 100)" "$(sqlite_series "$2")")" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("BEGIN;" + sys.argv[2].replace("FALSE", "0") + "COMMIT;")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
}

seed_postgres() { # seed_postgres <url> <orders>
  local now=$(($(date +%s) * 1000))
  seed_sql "$now" "$(postgres_series 1000)" "$(postgres_series 100)" "$(postgres_series "$2")" |
    psql -q "$1" -v ON_ERROR_STOP=1 >/dev/null
  # What autovacuum does to a table of that size in a running system (its insert threshold is
  # a fifth of the table): without it an index scan visits every row's page to learn it is
  # visible (a customer's 10,000 orders counted: p50 11 ms unvacuumed, 1.1 ms vacuumed).
  psql -q "$1" -c "VACUUM ANALYZE" >/dev/null
}
