#!/usr/bin/env bash
# Before/after on a shared machine: two server binaries (e.g. an earlier
# version's and this tree's), each on a schema of its own with the same
# numbers, driven alternately by wrk (POST /webhooks/sms, 64 connections),
# with pgbench's one-row insert at 64 clients between the rounds, so that
# every figure has a neighbour taken moments apart.
#
#   DATABASE_URL=postgres://... scripts/loadtest/compare.sh OLD_BIN NEW_BIN
#
# Env: LOADTEST_SECONDS (each wrk and pgbench run, default 6), LOADTEST_ROUNDS
# (3), LOADTEST_NUMBERS (10000), LOADTEST_CONNECTIONS (64).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?set DATABASE_URL}"
old=${1:?old server binary}
new=${2:?new server binary}
SECONDS_EACH=${LOADTEST_SECONDS:-6}
ROUNDS=${LOADTEST_ROUNDS:-3}
CONNECTIONS=${LOADTEST_CONNECTIONS:-64}
export LOADTEST_NUMBERS=${LOADTEST_NUMBERS:-10000}
TOKEN=loadtest-token
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
start() { # binary port schema
  psql "$DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $3 CASCADE"
  env -u DATABASE_URL RUST_LOG=warn "$1" --listen "127.0.0.1:$2" --admin-token "$TOKEN" \
    --database-url "$DATABASE_URL" --database-schema "$3" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.2; done
  python3 scripts/loadtest/fill.py 127.0.0.1 "$2" "$TOKEN" "$LOADTEST_NUMBERS" >/dev/null
}
start "$old" 18110 ibiki_loadtest_old
start "$new" 18111 ibiki_loadtest_new
webhook() { # port run
  LOADTEST_RUN=$2 wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency \
    -s scripts/loadtest/webhook.lua "http://127.0.0.1:$1/webhooks/sms" |
    awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} /Non-2xx/ {e=$NF} END {printf "%s req/s, p99 %s, non-2xx %s", r, p, e+0}'
}
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round: old $(webhook 18110 "o$round")"
  echo "round $round: new $(webhook 18111 "n$round")"
  echo "round $round: pgbench $CONNECTIONS clients $(scripts/loadtest/pgbench-insert.sh "$SECONDS_EACH" "$CONNECTIONS" | awk '/^tps/ {print $3}') tps"
done
for schema in ibiki_loadtest_old ibiki_loadtest_new; do
  psql "$DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE"
done
