#!/usr/bin/env bash
# Cluster scaling measurements for docs/SCALING.md: N nodes (1..3) of the release build on
# loopback, one Postgres database and one Redis cluster name of the run's own, loaded by
# `topkart loadtest` over all node URLs. For each run it prints the loadtest's row, the CPU
# seconds each process used (from /proc), and the Redis commands the cluster issued.
#
#   bash scripts/scaling.sh [hot-deal|many-deals] [nodes...]     e.g. scaling.sh hot-deal 1 2 3
#   TOPKART_SCALING_SECS=10 TOPKART_SCALING_CONNECTIONS=256 …   (defaults 8 s, 256)
#
# Needs Postgres (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379); loopback only;
# every run bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-hot-deal}
shift || true
counts=("${@:-1 2 3}")
[ ${#counts[@]} -eq 0 ] && counts=(1 2 3)
secs=${TOPKART_SCALING_SECS:-8}
connections=${TOPKART_SCALING_CONNECTIONS:-256}
bin=${TOPKART_SCALING_BIN:-target/release/topkart}
[ -x "$bin" ] || cargo build --release

cpu_secs() { # cpu_secs <pid>: user+system CPU seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
busy() { # busy and total jiffies of the whole machine so far
  awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat
}

for n in ${counts[@]}; do
  db="scaling_$$_$n"
  cluster="scaling$$n$n"
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $db" >/dev/null
  url="postgres://postgres@127.0.0.1:5432/$db"
  pids=()
  urls=()
  for i in $(seq 1 "$n"); do
    port=$((18080 + i))
    if [ "$n" -gt 1 ]; then
      REDIS_URL=redis://127.0.0.1:6379 TOPKART_CLUSTER=$cluster TOPKART_NODE_ID=n$i \
        DATABASE_URL=$url TOPKART_BIND=127.0.0.1:$port TOPKART_JWT_SECRET=scaling-secret-scaling-secret-0123 \
        TOPKART_ADMIN_PASSWORD=scaling-admin-1 TOPKART_RATE_LIMITS=off RUST_LOG=warn \
        "$bin" serve >"/tmp/scaling-n$i.log" 2>&1 &
    else
      DATABASE_URL=$url TOPKART_BIND=127.0.0.1:$port TOPKART_JWT_SECRET=scaling-secret-scaling-secret-0123 \
        TOPKART_ADMIN_PASSWORD=scaling-admin-1 TOPKART_RATE_LIMITS=off RUST_LOG=warn \
        "$bin" serve >"/tmp/scaling-n$i.log" 2>&1 &
    fi
    pids+=($!)
    urls+=(--url "http://127.0.0.1:$port")
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 100); do
      curl -sf "http://127.0.0.1:$((18080 + i))/readyz" >/dev/null && break
      sleep 0.1
    done
  done
  # Let the nodes see each other before the set-up creates the deals.
  sleep 1
  before_cpu=()
  for pid in "${pids[@]}"; do before_cpu+=("$(cpu_secs "$pid")"); done
  read -r busy_before total_before < <(busy)
  redis-cli -h 127.0.0.1 config resetstat >/dev/null
  started=$(date +%s.%N)
  TOPKART_ADMIN_PASSWORD=scaling-admin-1 "$bin" loadtest "${urls[@]}" --scenario "$scenario" \
    --connections "$connections" --duration-secs "$secs" --warmup-secs 2 --threads 1 \
    --deals 300 --units 10000000 --buyers 20 --out-dir "target/scaling-$scenario-$n" 2>&1 | grep -v 's  sent ' || true
  wall=$(echo "$(date +%s.%N) - $started" | bc)
  read -r busy_after total_after < <(busy)
  cores=$(echo "scale=2; $(nproc) * ($busy_after - $busy_before) / ($total_after - $total_before)" | bc)
  line="nodes=$n scenario=$scenario wall=${wall}s machine_busy_cores=$cores"
  for i in $(seq 0 $((n - 1))); do
    after=$(cpu_secs "${pids[$i]}")
    line="$line n$((i + 1))_cpu=$(echo "$after - ${before_cpu[$i]}" | bc)s"
  done
  echo "$line"
  echo "nodes=$n redis commands by kind: $(redis-cli -h 127.0.0.1 info commandstats | awk -F'[:=,]' '/^cmdstat_/ {sub("cmdstat_", "", $1); printf "%s=%s ", $1, $3}')"
  report=$(ls -td "target/scaling-$scenario-$n"/run-* | head -1)/report.json
  orders=$(python3 -c "import json;r=json.load(open('$report'));r=r[0] if isinstance(r,list) else r['scenarios'][0];print(r['orders_created'], round(r['orders_per_sec']), round(r['achieved_rate']))" 2>/dev/null || echo "? ? ?")
  echo "nodes=$n orders_created/orders_per_sec/req_per_sec: $orders"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE $db" >/dev/null
  redis-cli -h 127.0.0.1 --scan --pattern "$cluster:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
done
