#!/usr/bin/env bash
# The order path measured from outside with wrk (issue 13): a release engine on loopback, on
# SQLite and on Postgres, under `wrk -t1 -c256` for each load — GET /livez (the baseline), the
# hot deal (POST /api/v1/orders on one deal with units enough for the run, 256 customers'
# tokens in turn) and the sold-out storm (the same on a sold-out deal: every answer a 409) —
# with the CPU each process used over the middle of the run (from /proc): the engine, the
# store's server (Postgres), wrk; the engine's threads each; then the livez and hot-deal loads
# again from `topkart loadtest`, its own CPU a request beside wrk's, and the hot deal in an open
# loop at half wrk's rate (latency from each request's intended send time). Prints tables and
# writes them into docs/BENCHMARKS.md between the `wrk:begin` / `wrk:end` markers.
#
#   bash scripts/wrk.sh [seconds]          (default 10; wrk is installed with apt when missing)
#   TOPKART_WRK_STORED=10000000 bash scripts/wrk.sh   (the same with that many orders stored)
#
# Loopback only; every run bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
# Orders already in the store before the runs (issue 13, figure 6): TOPKART_WRK_STORED=10000000.
stored=${TOPKART_WRK_STORED:-0}
source scripts/seed.sh
connections=${TOPKART_WRK_CONNECTIONS:-256}
bin=${TOPKART_WRK_BIN:-target/release/topkart}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
db="wrk_$$"
port=18099
base="http://127.0.0.1:$port"
cleanup() {
  [ -n "${engine:-}" ] && kill "$engine" 2>/dev/null && wait "$engine" 2>/dev/null
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $db" >/dev/null

start() { # start <database url>
  DATABASE_URL=$1 TOPKART_BIND=127.0.0.1:$port TOPKART_DATA_DIR="$work" TOPKART_ADMIN_PASSWORD=wrk-admin-password-1 \
    TOPKART_RATE_LIMITS=off TOPKART_ARGON2_MEMORY_KIB=64 TOPKART_ARGON2_ITERATIONS=1 RUST_LOG=warn \
    "$bin" serve >"$work/engine.log" 2>&1 &
  engine=$!
  for _ in $(seq 1 300); do curl -sf "$base/readyz" >/dev/null && return; sleep 0.1; done
  echo "the engine did not start"; cat "$work/engine.log"; exit 1
}
stop() { kill "$engine"; wait "$engine" 2>/dev/null || true; engine=; }

# CPU jiffies so far: of one process, of every postgres server process, of the whole machine.
jiffies() { awk '{print $14 + $15}' "/proc/$1/stat"; }
postgres_jiffies() {
  local total=0
  for pid in $(pgrep -x postgres || true); do total=$((total + $(jiffies "$pid" 2>/dev/null || echo 0))); done
  echo "$total"
}
# CPU jiffies so far of each of the engine's threads: "name/tid jiffies" lines.
threads() {
  for task in /proc/"$1"/task/*; do
    printf '%s/%s %s\n' "$(tr ' ' '_' <"$task/comm")" "${task##*/}" "$(awk '{print $14 + $15}' "$task/stat" 2>/dev/null || echo 0)"
  done
}
machine() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }

# Set-up: 256 customers and their tokens, a hot deal and a sold-out one (Python, no package).
setup() {
  python3 - "$base" "$work" "$connections" <<'PY'
import json, sys, urllib.request, time
base, work, n = sys.argv[1] + "/api/v1", sys.argv[2], int(sys.argv[3])
def call(path, body, token=None):
    headers = {"content-type": "application/json"}
    if token: headers["authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, json.dumps(body).encode(), headers)
    return json.load(urllib.request.urlopen(req))
admin = call("/auth/login", {"username": "admin", "password": "wrk-admin-password-1"})["access_token"]
expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
deal = lambda units: call("/deals", {"product_name": "wrk", "actual_price": "2.00", "final_price": "1.00",
                                     "total_units": units, "expires_at": expires}, admin)["id"]
hot, sold = deal(100_000_000), deal(1)
tokens = []
for i in range(n):
    name = f"wrk{i}"
    call("/users", {"username": name, "email": f"{name}@example.com", "password": "wrk-password-1"})
    tokens.append(call("/auth/login", {"username": name, "password": "wrk-password-1"})["access_token"])
call("/orders", {"deal_id": sold}, tokens[0])
open(work + "/tokens.txt", "w").write("\n".join(tokens) + "\n")
open(work + "/deals.txt", "w").write(f"{hot} {sold}\n")
PY
  read -r hot sold <"$work/deals.txt"
  cat >"$work/order.lua" <<LUA
local tokens, i = {}, 0
for line in io.lines("$work/tokens.txt") do tokens[#tokens + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  i = i + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]
  return wrk.format(nil, "/api/v1/orders", nil, '{"deal_id":' .. DEAL .. '}')
end
LUA
}

# orders_latency <store> <who> <token>: GET /api/v1/orders?page_size=20 on one connection for 5 s.
orders_latency() {
  wrk -t1 -c1 -d5s --latency -H "Authorization: Bearer $3" "$base/api/v1/orders?page_size=20" >"$work/orders.out" 2>&1
  awk -v store="$1" -v who="$2" '/^Requests\/sec/ {rate = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
    END {printf "| %s | %s | %s | %s | %s |\n", store, who, rate, p50, p99}' "$work/orders.out" | tee -a "$work/orders.md"
}

# run <store> <load> <path> [lua deal]: one wrk run; prints a table row and remembers livez.
run() {
  local store=$1 load=$2 path=$3 deal=${4:-}
  local args=(-t1 "-c$connections" "-d${secs}s" --latency)
  if [ -n "$deal" ]; then
    sed "s/DEAL/$deal/" "$work/order.lua" >"$work/run.lua"
    args+=(-s "$work/run.lua")
  fi
  wrk "${args[@]}" "$base$path" >"$work/wrk.out" 2>&1 &
  local wrk_pid=$!
  local quarter=$(echo "$secs / 4" | bc -l)
  sleep "$quarter"
  local e0 p0 w0 m0 t0
  e0=$(jiffies "$engine"); p0=$(postgres_jiffies); w0=$(jiffies "$wrk_pid"); read -r m0 t0 < <(machine)
  threads "$engine" >"$work/threads0"
  local started=$(date +%s.%N)
  sleep "$(echo "$secs / 2" | bc -l)"
  local e1 p1 w1 m1 t1
  e1=$(jiffies "$engine"); p1=$(postgres_jiffies); w1=$(jiffies "$wrk_pid"); read -r m1 t1 < <(machine)
  threads "$engine" >"$work/threads1"
  local elapsed=$(echo "$(date +%s.%N) - $started" | bc -l)
  wait "$wrk_pid"
  local rps
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
  local non2xx
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
  [ "$load" = livez ] && livez=$rps
  python3 - "$store" "$load" "$rps" "${livez:-$rps}" "$((e1 - e0))" "$((p1 - p0))" "$((w1 - w0))" \
    "$((m1 - m0))" "$((t1 - t0))" "$elapsed" "$(getconf CLK_TCK)" "${non2xx:-0}" <<'PY' | tee -a "$work/table.md"
import sys
store, load, rps, livez, e, p, w, busy, total, elapsed, hz, non2xx = sys.argv[1:]
rps, livez, elapsed, hz = float(rps), float(livez), float(elapsed), float(hz)
per = lambda jiffies: float(jiffies) / hz / elapsed / rps * 1e6
cores = 2 * float(busy) / float(total) if float(total) else 0
store_us = f"{per(p):.1f}" if store == "postgres" and load != "livez" else "—"
print(f"| {store} | {load} | {rps:,.0f} ({rps / livez:.2f}×) | {per(e):.1f} | {store_us} | {per(w):.1f} | {cores:.2f} | {non2xx} |")
PY
  # The engine's threads, each as the share of a core it kept busy.
  python3 - "$store" "$load" "$work/threads0" "$work/threads1" "$elapsed" "$(getconf CLK_TCK)" <<'PY' >>"$work/threads.md"
import sys
store, load, before, after, elapsed, hz = sys.argv[1:]
read = lambda path: {name: int(j) for name, j in (line.split() for line in open(path))}
b, a = read(before), read(after)
busy = {name: (a[name] - b.get(name, 0)) / float(hz) / float(elapsed) for name in a}
shown = ", ".join(f"{name.rsplit('/', 1)[0]} {share:.2f}" for name, share in sorted(busy.items(), key=lambda kv: -kv[1]) if share >= 0.02)
print(f"| {store} | {load} | {shown} |")
PY
}

{
  echo "| store | load | req/s (ratio to /livez) | engine µs/req | store µs/req | wrk µs/req | cores busy (of 2) | non-2xx |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$work/table.md"
{
  echo "| store | GET /orders as | req/s (one connection) | p50 | p99 |"
  echo "| --- | --- | --- | --- | --- |"
} >"$work/orders.md"
{
  echo "| store | hot deal, open loop at half the peak | p50 ms | p99 ms | p99.9 ms | max ms | lost |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
} >"$work/open.md"
{
  echo "| store | load | topkart loadtest req/s | its CPU µs/req | wrk's CPU µs/req | loadtest ÷ wrk |"
  echo "| --- | --- | --- | --- | --- | --- |"
} >"$work/generators.md"
{
  echo "| store | load | the engine's threads (by name): share of a core each, busiest first (≥ 0.02) |"
  echo "| --- | --- | --- |"
} >"$work/threads.md"
cat "$work/table.md"
for store in sqlite postgres; do
  if [ "$store" = sqlite ]; then url="sqlite://$work/topkart.db"; else url="postgres://postgres@127.0.0.1:5432/$db"; fi
  start "$url"
  if [ "$stored" -gt 0 ]; then # the orders already stored, written while the engine is stopped
    stop
    if [ "$store" = sqlite ]; then seed_sqlite "$work/topkart.db" "$stored"; else seed_postgres "$url" "$stored"; fi
    start "$url"
  fi
  setup
  livez=
  run "$store" livez /livez
  run "$store" "hot deal" /api/v1/orders "$hot"
  run "$store" "sold-out storm" /api/v1/orders "$sold"
  # The same loads from `topkart loadtest` (one generator thread, as wrk -t1): its own CPU a
  # request, which it reports, against wrk's from the runs above (issue 13, figure 5).
  for scenario in baseline hot-deal; do
    "$bin" loadtest --url "$base" --admin-password wrk-admin-password-1 --scenario "$scenario" \
      --connections "$connections" --threads 1 --duration-secs "$secs" --warmup-secs 1 \
      --units 100000000 --buyers "$connections" --out-dir "$work/loadtest" >"$work/loadtest.out" 2>&1 ||
      { cat "$work/loadtest.out"; exit 1; }
    python3 - "$store" "$scenario" "$work/loadtest.out" "$work/table.md" <<'PY' | tee -a "$work/generators.md"
import re, sys
store, scenario, out, seen = sys.argv[1:]
text = open(out).read()
row = next(line for line in text.splitlines() if line.startswith(scenario + " "))
rate = float(row.split()[5])
us = float(re.search(r"the generator's own CPU: ([0-9.]+)", text).group(1))
load = {"baseline": "livez", "hot-deal": "hot deal"}[scenario]
wrk = {line.split("|")[2].strip(): line.split("|")[6].strip() for line in open(seen) if line.startswith(f"| {store} |")}
wrk_us = float(wrk[load])
print(f"| {store} | {load} | {rate:,.0f} | {us:.1f} | {wrk_us:.1f} | {us / wrk_us:.2f}× |")
PY
  done
  # A customer's GET /orders, one request at a time: wrk0 (its hot-deal orders) and, with
  # orders stored, c1 (a tenth of a thousandth of them), made able to log in as wrk0 does.
  orders_latency "$store" "wrk0 ($(grep -c . "$work/tokens.txt") customers' hot deal)" "$(head -1 "$work/tokens.txt")"
  if [ "$stored" -gt 0 ]; then
    copy="UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE username = 'wrk0') WHERE username = 'c1'"
    if [ "$store" = sqlite ]; then python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()' "$work/topkart.db" "$copy"
    else psql -q "$url" -c "$copy" >/dev/null; fi
    token=$(curl -sf -H 'content-type: application/json' -d '{"username":"c1","password":"wrk-password-1"}' "$base/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    orders_latency "$store" "c1 ($((stored / 1000)) orders stored)" "$token"
  fi
  # Open loop at half the closed loop's peak (wrk's hot-deal rate): requests leave on a fixed
  # schedule whatever the engine does, each latency counted from its intended send time
  # (issue 13, figure 4).
  half=$(awk -F'|' -v store="$store" '$2 ~ store && $3 ~ /hot deal/ {gsub(/[ ,]/, "", $4); split($4, r, "("); print int(r[1] / 2)}' "$work/table.md")
  "$bin" loadtest --url "$base" --admin-password wrk-admin-password-1 --scenario hot-deal \
    --rate "$half" --threads 1 --duration-secs "$secs" --warmup-secs 1 \
    --units 100000000 --buyers "$connections" --out-dir "$work/loadtest" >"$work/loadtest.out" 2>&1 ||
    { cat "$work/loadtest.out"; exit 1; }
  awk -v store="$store" -v rate="$half" '$1 == "hot-deal" {printf "| %s | %d orders/s offered, %d answered | %s | %s | %s | %s | %d |\n", store, rate, $6, $12, $14, $15, $16, $11}' \
    "$work/loadtest.out" | tee -a "$work/open.md"
  stop
done
cat "$work/threads.md"
cat "$work/generators.md"
cat "$work/open.md"
cat "$work/orders.md"

# Into docs/BENCHMARKS.md, between the markers (the table of the newest run).
printf '\n' >>"$work/table.md"
cat "$work/threads.md" >>"$work/table.md"
printf '\n' >>"$work/table.md"
cat "$work/generators.md" >>"$work/table.md"
printf '\n' >>"$work/table.md"
cat "$work/open.md" >>"$work/table.md"
printf '\n' >>"$work/table.md"
cat "$work/orders.md" >>"$work/table.md"
python3 - "$work/table.md" "$(git rev-parse --short HEAD)" "$secs" "$connections" "$stored" <<'PY'
import re, sys, datetime
table, commit, secs, connections, stored = open(sys.argv[1]).read(), *sys.argv[2:]
path = "docs/BENCHMARKS.md"
text = open(path).read()
# An empty store's run and a run with orders stored each keep a block of their own.
marker, command, heading = "wrk", f"bash scripts/wrk.sh {secs}", "The order path from outside (wrk)"
if int(stored):
    marker, command = "wrk-stored", f"TOPKART_WRK_STORED={stored} bash scripts/wrk.sh {secs}"
    heading = f"The order path from outside (wrk), {int(stored):,} orders stored"
begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
block = (f"{begin}\n`{command}` at `{commit}`, {datetime.date.today()}: "
         f"`wrk -t1 -c{connections} -d{secs}s`, release build, CPU from /proc over the middle half of each run.\n\n"
         f"{table}{end}")
if begin in text:
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
else:
    text += f"\n## {heading}\n\n" + block + "\n"
open(path, "w").write(text)
PY
