#!/usr/bin/env bash
# The test command (README's second command): on a fresh machine of this kind it installs what
# the tests need when it is missing (as root: apt-get, pip, npm), starts PostgreSQL and Redis when
# they are down, then runs every test. `.ci/run` calls it too.
#
#   bash scripts/test.sh              prepare, then `cargo test --workspace`
#   bash scripts/test.sh -- <args>    prepare, then `cargo test --workspace <args>`
#   bash scripts/test.sh --prepare    prepare only
#
# The tests that need a service or a tool fail, never skip, when it is missing: this script is
# what makes them present.
set -euo pipefail
cd "$(dirname "$0")/.."

prepare_only=false
if [ "${1:-}" = "--prepare" ]; then prepare_only=true; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi

wait_for() { # wait_for <what> <command…>: poll up to 30 s
  local what=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "test.sh: $what did not come up" >&2; return 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The spec test (tests/api/openapi.rs) validates the served document with openapi-spec-validator;
# the e-mail tests (tests/api/mail.rs) start aiosmtpd on loopback.
python_missing=()
python3 -c "import openapi_spec_validator" 2>/dev/null || python_missing+=("openapi-spec-validator==0.9.0")
python3 -c "import aiosmtpd" 2>/dev/null || python_missing+=("aiosmtpd==1.4.6")
if [ ${#python_missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${python_missing[*]} (pip)"
  python3 -m pip install --quiet --disable-pip-version-check "${python_missing[@]}"
fi

# The README walkthrough test (tests/api/readme.rs) runs its shell block with curl and jq.
# The metrics test (tests/api/metrics.rs) runs promtool, from Debian's prometheus package.
# The browser test (tests/api/console.rs) drives Debian's chromium with playwright-core (npm).
missing=()
for tool in curl jq chromium npm; do command -v "$tool" >/dev/null || missing+=("$tool"); done
command -v promtool >/dev/null || missing+=(prometheus)
command -v pg_isready >/dev/null || missing+=(postgresql-client)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d tests/console/node_modules/playwright-core ]; then
  (cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "test.sh: starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test.sh: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping

if $prepare_only; then exit 0; fi
exec cargo test --workspace "$@"
