#!/usr/bin/env bash
# Load test of the example server: starts the release build, assigns 100k
# numbers, then drives GET /healthz and POST /webhooks/sms with wrk for a fixed
# time over loopback, and prints requests/s, p50/p99 and their ratio.
#
#   scripts/loadtest.sh                 # memory store
#   DATABASE_URL=postgres://... scripts/loadtest.sh   # PostgreSQL store
#
# Env: LOADTEST_SECONDS (default 15), LOADTEST_CONNECTIONS (64),
# LOADTEST_THREADS (2), LOADTEST_NUMBERS (100000), LOADTEST_PORT (18080),
# IBIKI_SERVER_BIN (a server binary to test instead of building this tree's,
# e.g. an earlier version's, for a before/after comparison).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${LOADTEST_SECONDS:-15}
CONNECTIONS=${LOADTEST_CONNECTIONS:-64}
THREADS=${LOADTEST_THREADS:-2}
export LOADTEST_NUMBERS=${LOADTEST_NUMBERS:-100000}
PORT=${LOADTEST_PORT:-18080}
TOKEN=loadtest-token

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
server_bin=${IBIKI_SERVER_BIN:-}
if [ -z "$server_bin" ]; then
  cargo build --release -q -p ibiki-examples --bin ibiki-server
  server_bin=${CARGO_TARGET_DIR:-target}/release/ibiki-server
fi

store=memory
args=(--listen "127.0.0.1:$PORT" --admin-token "$TOKEN")
if [ -n "${DATABASE_URL:-}" ]; then
  store=postgres
  # A schema of its own, dropped first so every run starts empty.
  psql "$DATABASE_URL" -qc "DROP SCHEMA IF EXISTS ibiki_loadtest CASCADE" >/dev/null
  args+=(--database-url "$DATABASE_URL" --database-schema ibiki_loadtest)
fi
env -u DATABASE_URL RUST_LOG=warn "$server_bin" "${args[@]}" >/tmp/ibiki-loadtest.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

python3 scripts/loadtest/fill.py 127.0.0.1 "$PORT" "$TOKEN" "$LOADTEST_NUMBERS"

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "$@"; }
echo "== GET /healthz ($store store)"
health=$(run "http://127.0.0.1:$PORT/healthz")
echo "$health"
echo "== POST /webhooks/sms ($store store)"
webhook=$(run -s scripts/loadtest/webhook.lua "http://127.0.0.1:$PORT/webhooks/sms")
echo "$webhook"

rps() { awk '/Requests\/sec/ {print $2}'; }
h=$(echo "$health" | rps)
w=$(echo "$webhook" | rps)
echo "== ratio ($store store): webhook $w req/s / healthz $h req/s = $(python3 -c "print(f'{$w / $h:.2f}')")"
if [ "$store" = postgres ]; then
  # The server's pool holds 10 connections: the insert ceiling at the same count.
  echo "== pgbench: one-row INSERT per transaction, 10 clients"
  insert=$(scripts/loadtest/pgbench-insert.sh "$SECONDS_EACH" 10)
  echo "$insert"
  tps=$(echo "$insert" | awk '/^tps/ {print $3}')
  echo "== ratio: webhook $w req/s / pgbench insert $tps tps = $(python3 -c "print(f'{$w / $tps:.2f}')")"
  # wrk's connection count: the durable-insert rate the database reaches when
  # that many clients commit at once (its group commit at work).
  echo "== pgbench: one-row INSERT per transaction, $CONNECTIONS clients"
  insert=$(scripts/loadtest/pgbench-insert.sh "$SECONDS_EACH" "$CONNECTIONS")
  echo "$insert"
  tps=$(echo "$insert" | awk '/^tps/ {print $3}')
  echo "== ratio: webhook $w req/s / pgbench insert at $CONNECTIONS clients $tps tps = $(python3 -c "print(f'{$w / $tps:.2f}')")"
  psql "$DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS ibiki_loadtest CASCADE"
fi
if echo "$webhook$health" | grep -q "Non-2xx"; then
  echo "ERROR: some responses were not 2xx" >&2
  exit 1
fi
