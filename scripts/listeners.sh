#!/usr/bin/env bash
# What live stock listeners cost (issue 11): one release engine on loopback (Postgres, a
# database of the run's own), the hot-deal scenario run without and with N listeners on the
# deal, alternating (A B A B: these machines are shared and noisy, compare inside one run).
# Prints each run's orders/s, p99, the engine's CPU per order (set-up included; the engine
# hashes passwords cheaply here, so set-up costs little) and, with listeners, the engine's
# resident memory per listener and the events they received (from the report's JSON).
#
#   bash scripts/listeners.sh [listeners] [rounds]      default 10000 listeners, 2 rounds
#   TOPKART_LISTENERS_SECS=8 TOPKART_LISTENERS_CONNECTIONS=256
set -euo pipefail
cd "$(dirname "$0")/.."

listeners=${1:-10000}
rounds=${2:-2}
secs=${TOPKART_LISTENERS_SECS:-8}
connections=${TOPKART_LISTENERS_CONNECTIONS:-256}
bin=${TOPKART_LISTENERS_BIN:-target/release/topkart}
[ -x "$bin" ] || cargo build --release

db="listeners_$$"
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $db" >/dev/null
out=$(mktemp -d)
cleanup() {
  [ -n "${engine:-}" ] && kill "$engine" 2>/dev/null && wait "$engine" 2>/dev/null
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  rm -rf "$out"
}
trap cleanup EXIT

DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db TOPKART_BIND=127.0.0.1:18090 \
  TOPKART_ADMIN_PASSWORD=listeners-admin-1 TOPKART_RATE_LIMITS=off RUST_LOG=warn \
  TOPKART_ARGON2_MEMORY_KIB=64 TOPKART_ARGON2_ITERATIONS=1 \
  TOPKART_EVENT_LISTENERS_MAX=$((listeners + 100)) "$bin" serve >"$out/engine.log" 2>&1 &
engine=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.1; done

cpu_secs() { # user+system CPU seconds of a process so far
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

for round in $(seq 1 "$rounds"); do
  for n in 0 "$listeners"; do
    dir="$out/r$round-$n"
    cpu_before=$(cpu_secs "$engine")
    "$bin" loadtest --url http://127.0.0.1:18090 --admin-password listeners-admin-1 \
      --scenario hot-deal --connections "$connections" --duration-secs "$secs" --units 2000000 \
      --listeners "$n" --out-dir "$dir" 2>"$dir.log" || { cat "$dir.log"; exit 1; }
    cpu=$(echo "$(cpu_secs "$engine") - $cpu_before" | bc -l)
    python3 - "$dir" "$n" "$cpu" <<'PY'
import glob, json, sys
report = json.load(open(glob.glob(sys.argv[1] + "/run-*/report.json")[0]))
s = report["scenarios"][0]
orders = s["orders_created"]
cpu = float(sys.argv[3])
line = f"listeners {int(sys.argv[2]):>6}: {s['orders_per_sec']:>8.0f} orders/s, p99 {s['latency_ms']['p99']:.2f} ms, engine CPU {cpu:.1f} s ({cpu * 1e6 / max(orders, 1):.1f} us an order, set-up included)"
l = s.get("listeners")
if l:
    per = l["engine_bytes_per_listener"]
    line += f", engine {l['engine_memory_before_bytes']/2**20:.0f} -> {l['engine_memory_after_bytes']/2**20:.0f} MiB"
    line += f" ({per/1024:.1f} KiB each), {l['events_received']} events received"
    line += f", {l['events_received'] / (s['duration_secs'] + s['warmup']['secs']):.0f} events/s"
print(line)
PY
  done
done
