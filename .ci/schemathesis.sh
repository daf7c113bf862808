#!/usr/bin/env bash
# Fuzz the running engine from its own OpenAPI document with schemathesis, once with an admin's
# token and once with a customer's, bounded in examples and time. Every check is on except
# positive_data_acceptance: cross-field rules (final_price <= actual_price, a window of at most
# 12 hours, expires_at in the future) cannot be written in OpenAPI, so schema-valid bodies that
# break them are rightly refused with 400.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"

work=$(mktemp -d)
log="$work/engine.log"
cleanup() { [ -n "${engine_pid:-}" ] && kill "$engine_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The debug binary `cargo test` just built; port 0 and the printed address.
(cd "$work" && TOPKART_BIND=127.0.0.1:0 TOPKART_ADMIN_PASSWORD=schemathesis-admin TOPKART_RATE_LIMITS=off \
   TOPKART_ARGON2_MEMORY_KIB=64 TOPKART_ARGON2_ITERATIONS=1 RUST_LOG=warn \
   exec "$OLDPWD/target/debug/topkart" > "$work/stdout" 2> "$log") &
engine_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^topkart listening on //p' "$work/stdout")
[ -n "$base" ] || { echo "schemathesis: the engine did not start"; cat "$log"; exit 1; }

token() { # token <username> <password>
  curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' -d "{\"username\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])'
}
curl -sf "$base/api/v1/users" -H 'content-type: application/json' \
  -d '{"username":"fuzzer","email":"fuzzer@example.com","password":"fuzzer-password"}' > /dev/null
for who in "admin schemathesis-admin" "fuzzer fuzzer-password"; do
  set -- $who
  echo "schemathesis as $1"
  timeout 600 schemathesis run "$base/api/v1/openapi.json" --checks all --exclude-checks positive_data_acceptance \
    -H "Authorization: Bearer $(token "$1" "$2")" --max-examples 10 --workers 2 --no-color
done
