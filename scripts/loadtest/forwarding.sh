#!/usr/bin/env bash
# Forwarding under load (BENCHMARKS.md §13): the release server on
# PostgreSQL with --allow-private-endpoints, every client's endpoint on a fast
# local receiver (benches/src/bin/forward-receiver.rs: 204 at once, records
# each request's arrival), and replies posted to POST /webhooks/sms.
#
# Two servers run side by side on schemas of their own, with the same
# numbers: `off`, whose clients have no endpoint (nothing is forwarded), and
# `on`, whose clients all have one. Each round:
#
#   off   wrk (2 threads, CONNECTIONS, SECONDS) on the `off` server;
#   on    the same on the `on` server: the receive rate with forwarding on,
#         and the forwarding rate in the same window (requests arriving at
#         the receiver), then the backlog left and how long it takes to
#         drain;
#   half  paced-post (benches/src/bin/paced-post.rs) at half the `on`
#         phase's rate, SECONDS, on the `on` server: the lag from each
#         reply's recording (its delivery.at, the body's `timestamp`) to its
#         arrival at the receiver, same clock.
#
# Every phase first waits until the CPUs are at most QUIET % busy (the
# machine is shared), and says how busy they were and the load average, and
# afterwards the CPU time its server, PostgreSQL (every postgres process)
# and the receiver used per reply posted.
#
#   DATABASE_URL=postgres://... scripts/loadtest/forwarding.sh
#
# Env: LOADTEST_SECONDS (each phase, default 30), LOADTEST_ROUNDS (2),
# LOADTEST_NUMBERS (10000: 2,000 clients of 5 numbers), LOADTEST_CONNECTIONS
# (64), FORWARD_HALF_RATE (the half phase's rate instead of half the `on`
# phase's), LOADTEST_QUIET (25), LOADTEST_QUIET_WAIT (120 s),
# LOADTEST_OUT (where the receiver's record and the phases go, default a new
# temporary directory), IBIKI_SERVER_BIN, IBIKI_SERVER_ARGS (extra flags for
# both servers, e.g. --delivery-concurrency 128).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?set DATABASE_URL}"
SECONDS_EACH=${LOADTEST_SECONDS:-30}
ROUNDS=${LOADTEST_ROUNDS:-2}
CONNECTIONS=${LOADTEST_CONNECTIONS:-64}
export LOADTEST_NUMBERS=${LOADTEST_NUMBERS:-10000}
CLIENTS=$((LOADTEST_NUMBERS / 5))
QUIET=${LOADTEST_QUIET:-25}
QUIET_WAIT=${LOADTEST_QUIET_WAIT:-120}
OUT=${LOADTEST_OUT:-$(mktemp -d /tmp/ibiki-forwarding.XXXXXX)}
mkdir -p "$OUT"
TOKEN=loadtest-token
OFF_PORT=18180 ON_PORT=18181 METRICS_PORT=18182 RECEIVER=127.0.0.1:18190
read -r -a EXTRA <<<"${IBIKI_SERVER_ARGS:-}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p ibiki-benches --bin forward-receiver --bin paced-post
server_bin=${IBIKI_SERVER_BIN:-}
if [ -z "$server_bin" ]; then
  cargo build --release -q -p ibiki-examples --bin ibiki-server
  server_bin=$target/release/ibiki-server
fi

pids=()
receiver=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
sql() { psql "$DATABASE_URL" -Atqc "SET client_min_messages = warning; $1"; }
start() { # port schema [flags...]
  local port=$1 schema=$2
  shift 2
  sql "DROP SCHEMA IF EXISTS $schema CASCADE"
  env -u DATABASE_URL RUST_LOG=warn "$server_bin" --listen "127.0.0.1:$port" --admin-token "$TOKEN" \
    --database-url "$DATABASE_URL" --database-schema "$schema" --allow-private-endpoints \
    "${EXTRA[@]}" "$@" >>"$OUT/server-$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  python3 scripts/loadtest/fill.py 127.0.0.1 "$port" "$TOKEN" "$LOADTEST_NUMBERS" >/dev/null
}
# The share of the CPUs busy over 2 s, in percent.
busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
  local idle=$(((b[4] + b[5]) - (a[4] + a[5])))
  local total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $((100 - 100 * idle / (total > 0 ? total : 1)))
}
# Waits (at most QUIET_WAIT s) until the CPUs are at most QUIET % busy.
quiet() {
  local waited=0 now
  while now=$(busy); [ "$now" -gt "$QUIET" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
    waited=$((waited + 2))
  done
  echo "CPUs ${now}% busy, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
# CPU time (user + system, children included) of processes, in clock ticks.
ticks() { # pid...
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}
cpu_mark() { # server-pid: "server postgres receiver" ticks now
  echo "$(ticks "$1") $(ticks $(pgrep -u postgres)) $(ticks "$receiver")"
}
cpu_report() { # before-mark after-mark replies
  local b=($1) a=($2) hz
  hz=$(getconf CLK_TCK)
  python3 -c "n=$3; t=1e6/$hz
print(f'  CPU per reply: server {($((a[0] - b[0])))*t/n:.0f} us, postgres {($((a[1] - b[1])))*t/n:.0f} us, receiver {($((a[2] - b[2])))*t/n:.0f} us')"
}
requests() { awk '/requests in/ {print $1}' "$OUT/wrk-$1.txt"; }
wrk_rate() { # port run
  LOADTEST_RUN=$2 wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency \
    -s scripts/loadtest/webhook.lua "http://127.0.0.1:$1/webhooks/sms" >"$OUT/wrk-$2.txt"
  awk '/Requests\/sec/ {r=$2} / 50%/ {m=$2} / 99%/ {p=$2} /Non-2xx/ {e=$NF}
    END {printf "%s req/s, p50 %s, p99 %s, non-2xx %s", r, m, p, e+0}' "$OUT/wrk-$2.txt"
}
pending() { sql "SELECT count(*) FROM ibiki_loadtest_fw_on.forwards WHERE status = 'pending'"; }
recorded() { # t0_ns t1_ns: replies put into an inbox in [t0, t1)
  sql "SELECT count(*) FROM ibiki_loadtest_fw_on.replies WHERE client_id IS NOT NULL
    AND delivered_at >= to_timestamp($1 / 1e9) AND delivered_at < to_timestamp($2 / 1e9)"
}
# After a phase on the `on` server: the backlog, and the time until it is
# delivered; then the phase's line for the report.
settle() { # label t0 t1
  local left start waited
  left=$(pending)
  start=$(date +%s%N)
  while [ "$(pending)" -gt 0 ]; do
    sleep 0.2
    [ $(($(date +%s%N) - start)) -lt 600000000000 ] || { echo "not drained in 600 s" >&2; break; }
  done
  waited=$((($(date +%s%N) - start) / 1000000))
  echo "  backlog at the end: $left pending, delivered within $waited ms"
  echo "$1 $2 $3 $(recorded "$2" "$3") $(recorded $((($2 + $3) / 2)) "$3")" >>"$OUT/phases"
}

"$target/release/forward-receiver" "$RECEIVER" "$OUT/received.csv" 2>>"$OUT/receiver.log" &
receiver=$!
start "$OFF_PORT" ibiki_loadtest_fw_off
off_server=$!
start "$ON_PORT" ibiki_loadtest_fw_on --metrics-listen "127.0.0.1:$METRICS_PORT"
on_server=$!
python3 scripts/loadtest/endpoints.py 127.0.0.1 "$ON_PORT" "$TOKEN" "$CLIENTS" "http://$RECEIVER"
: >"$OUT/phases"
echo "server $server_bin ${EXTRA[*]}; $LOADTEST_NUMBERS numbers, $CLIENTS clients; record in $OUT"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round off: $(quiet)"
  mark=$(cpu_mark "$off_server")
  echo "  $(wrk_rate "$OFF_PORT" "off$round"); load average after $(cut -d' ' -f1-3 /proc/loadavg)"
  cpu_report "$mark" "$(cpu_mark "$off_server")" "$(requests "off$round")"
  echo "round $round on: $(quiet)"
  mark=$(cpu_mark "$on_server")
  t0=$(date +%s%N)
  result=$(wrk_rate "$ON_PORT" "on$round")
  t1=$(date +%s%N)
  echo "  $result; load average after $(cut -d' ' -f1-3 /proc/loadavg)"
  settle "on$round" "$t0" "$t1"
  # Its backlog delivered too: the whole cost of forwarding the replies.
  cpu_report "$mark" "$(cpu_mark "$on_server")" "$(requests "on$round")"
  rate=${FORWARD_HALF_RATE:-$(echo "$result" | awk '{printf "%d", $1 / 2}')}
  echo "round $round half ($rate req/s): $(quiet)"
  t0=$(date +%s%N)
  result=$("$target/release/paced-post" "127.0.0.1:$ON_PORT" "$rate" "$SECONDS_EACH" "$CONNECTIONS" \
    "$LOADTEST_NUMBERS" "half$round")
  t1=$(date +%s%N)
  echo "  $result; load average after $(cut -d' ' -f1-3 /proc/loadavg)"
  settle "half$round" "$t0" "$t1"
done
echo "== /metrics of the on server"
curl -fs "http://127.0.0.1:$METRICS_PORT/metrics" |
  grep -E '^ibiki_deliveries_total|^ibiki_deliveries_pending|^ibiki_delivery_lag_seconds_(sum|count)' || true
kill "$receiver"
wait "$receiver" 2>/dev/null || true
receiver=
cat "$OUT/receiver.log"
echo "== forwards of the on schema"
sql "SELECT status, count(*) FROM ibiki_loadtest_fw_on.forwards GROUP BY status ORDER BY status"
echo "routed replies without exactly one forward: $(sql "SELECT count(*) FROM ibiki_loadtest_fw_on.replies AS r
  WHERE r.client_id IS NOT NULL AND (SELECT count(*) FROM ibiki_loadtest_fw_on.forwards AS f WHERE f.reply_id = r.id) <> 1")"
echo "== report"
python3 scripts/loadtest/forwarding_report.py "$OUT/received.csv" "$OUT/phases"
if [ -z "${LOADTEST_KEEP:-}" ]; then
  for schema in ibiki_loadtest_fw_off ibiki_loadtest_fw_on; do sql "DROP SCHEMA IF EXISTS $schema CASCADE"; done
fi
