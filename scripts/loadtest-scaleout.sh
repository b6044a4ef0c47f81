#!/usr/bin/env bash
# Scale-out load test: one, two and three `ibiki-server` processes on one
# PostgreSQL schema, each driven by its own wrk with a share of the
# connections, and the aggregate webhook rate of each count. Prints the
# rates, their ratio to one process, and pgbench's one-row insert rate at the
# same total connection count in the same run.
#
#   DATABASE_URL=postgres://... scripts/loadtest-scaleout.sh
#
# Env: LOADTEST_SECONDS (default 15), LOADTEST_CONNECTIONS (total, 64),
# LOADTEST_NUMBERS (100000), LOADTEST_PORT (first port, 18090).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL: the processes share one PostgreSQL database}"

SECONDS_EACH=${LOADTEST_SECONDS:-15}
CONNECTIONS=${LOADTEST_CONNECTIONS:-64}
export LOADTEST_NUMBERS=${LOADTEST_NUMBERS:-100000}
PORT=${LOADTEST_PORT:-18090}
TOKEN=loadtest-token
SCHEMA=ibiki_loadtest_scaleout

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p ibiki-examples --bin ibiki-server
server_bin=${CARGO_TARGET_DIR:-target}/release/ibiki-server

psql "$DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
for i in 0 1 2; do
  env -u DATABASE_URL RUST_LOG=warn "$server_bin" --listen "127.0.0.1:$((PORT + i))" \
    --admin-token "$TOKEN" --database-url "$DATABASE_URL" --database-schema "$SCHEMA" \
    >"/tmp/ibiki-loadtest-scaleout-$i.log" 2>&1 &
  servers+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$((PORT + i))/healthz" >/dev/null && break; sleep 0.2; done
done
python3 scripts/loadtest/fill.py 127.0.0.1 "$PORT" "$TOKEN" "$LOADTEST_NUMBERS"

declare -A rate
for processes in 1 2 3; do
  per=$((CONNECTIONS / processes))
  echo "== POST /webhooks/sms: $processes process(es), $per connections each"
  outputs=()
  loaders=()
  for i in $(seq 0 $((processes - 1))); do
    out=$(mktemp)
    outputs+=("$out")
    # A message id prefix of its own per wrk: no id repeats across the runs.
    LOADTEST_RUN="p${processes}s${i}" wrk -t1 -c"$per" -d"${SECONDS_EACH}s" --latency \
      -s scripts/loadtest/webhook.lua "http://127.0.0.1:$((PORT + i))/webhooks/sms" >"$out" &
    loaders+=($!)
  done
  for pid in "${loaders[@]}"; do wait "$pid"; done
  total=0
  for out in "${outputs[@]}"; do
    grep -E "Requests/sec|99%|50%|non-2xx|Non-2xx" "$out" | sed 's/^/   /'
    if grep -q "Non-2xx" "$out"; then echo "ERROR: some responses were not 2xx" >&2; exit 1; fi
    total=$(python3 -c "print(round($total + $(awk '/Requests\/sec/ {print $2}' "$out"), 2))")
    rm -f "$out"
  done
  rate[$processes]=$total
  echo "== aggregate, $processes process(es): $total req/s"
done
echo "== pgbench: one-row INSERT per transaction, $CONNECTIONS clients"
insert=$(scripts/loadtest/pgbench-insert.sh "$SECONDS_EACH" "$CONNECTIONS")
echo "$insert"
tps=$(echo "$insert" | awk '/^tps/ {print $3}')
for processes in 1 2 3; do
  echo "== $processes process(es): ${rate[$processes]} req/s = $(python3 -c "print(f'{${rate[$processes]} / ${rate[1]}:.2f}')")x one process, $(python3 -c "print(f'{${rate[$processes]} / $tps:.2f}')")x pgbench"
done
psql "$DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE"
