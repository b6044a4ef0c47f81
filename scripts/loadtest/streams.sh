#!/usr/bin/env bash
# Live inbox streams against webhook throughput: the release server on
# PostgreSQL, POST /webhooks/sms driven by wrk with no stream open, then with
# STREAMS open /events streams (one per client, on clients the webhook load
# never writes to: quiet inboxes, held by scripts/loadtest/streams.py),
# alternated. In every phase a probe stream on the server gets replies
# posted through that server and through a second server process on the
# same schema, each timed from its request to its event; and the schema's
# table scans are counted over 10 s without load, streams open.
#
#   DATABASE_URL=postgres://... scripts/loadtest/streams.sh
#
# Env: LOADTEST_SECONDS (each wrk run, default 15), LOADTEST_ROUNDS (4),
# LOADTEST_STREAMS (10000, at most 10000), LOADTEST_CONNECTIONS (64),
# LOADTEST_QUIET (each phase waits until the CPUs are at most this % busy,
# default 25, for at most LOADTEST_QUIET_WAIT s, default 300),
# IBIKI_SERVER_BIN (the binary to test instead of building this tree's),
# IBIKI_OLD_SERVER_BIN (optional: an earlier build, e.g. one that polls,
# measured the same way for one round after the others, on a schema of its
# own).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?set DATABASE_URL}"
SECONDS_EACH=${LOADTEST_SECONDS:-15}
ROUNDS=${LOADTEST_ROUNDS:-4}
STREAMS=${LOADTEST_STREAMS:-10000}
CONNECTIONS=${LOADTEST_CONNECTIONS:-64}
QUIET=${LOADTEST_QUIET:-25}
QUIET_WAIT=${LOADTEST_QUIET_WAIT:-300}
TOKEN=loadtest-token
# Clients 0..9999 (numbers 0..49999) get the webhook load; the streams are
# on clients 10000 and up; the probe's client is the first of those.
WEBHOOK_NUMBERS=50000
FIRST_STREAMED=10000
FILLED=$((5 * (FIRST_STREAMED + STREAMS)))
[ "$STREAMS" -le 10000 ] || { echo "LOADTEST_STREAMS is at most 10000" >&2; exit 2; }

# One descriptor per stream on each side, plus wrk's and the pools'.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((STREAMS + 1000)) ] ||
  { echo "ulimit -n $(ulimit -n) is too low for $STREAMS streams" >&2; exit 2; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
server_bin=${IBIKI_SERVER_BIN:-}
if [ -z "$server_bin" ]; then
  cargo build --release -q -p ibiki-examples --bin ibiki-server
  server_bin=${CARGO_TARGET_DIR:-target}/release/ibiki-server
fi

pids=()
declare -A pid_of
holder=
cleanup() {
  [ -n "$holder" ] && kill "$holder" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
drop_schema() {
  psql "$DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $1 CASCADE"
}
start() { # binary port schema
  env -u DATABASE_URL RUST_LOG=warn "$1" --listen "127.0.0.1:$2" --admin-token "$TOKEN" \
    --database-url "$DATABASE_URL" --database-schema "$3" >>"/tmp/ibiki-streams-$2.log" 2>&1 &
  pids+=($!)
  pid_of[$2]=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.2; done
  echo "the server on port $2 did not start" >&2
  exit 1
}
# Scans of the schema's tables so far (an inbox read is one): the schema's
# own, whatever else runs on the database.
scans() { # schema
  psql "$DATABASE_URL" -Atc "SELECT coalesce(sum(seq_scan + idx_scan), 0) FROM pg_stat_user_tables \
    WHERE schemaname = '$1'"
}
# Table scans per second over 10 s without load: what open streams cost at
# rest. An idle backend reports its statistics up to 10 s late, so the
# load's own are let in first.
idle_rate() { # schema
  local before after
  sleep 12
  before=$(scans "$1"); sleep 10; after=$(scans "$1")
  echo $(((after - before) / 10))
}
# CPU time (user + system) a process has used, in clock ticks.
cpu_ticks() { # pid
  awk '{print $14 + $15}' "/proc/$1/stat"
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
# Waits (at most QUIET_WAIT s) until the machine is quiet: the CPUs are shared
# with other work, and a phase measured during a burst of it says nothing.
quiet() {
  local waited=0 now
  while now=$(busy); [ "$now" -gt "$QUIET" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
    waited=$((waited + 2))
  done
  echo "$now"
}
webhook() { # port run
  LOADTEST_NUMBERS=$WEBHOOK_NUMBERS LOADTEST_RUN=$2 wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" \
    --latency -s scripts/loadtest/webhook.lua "http://127.0.0.1:$1/webhooks/sms" |
    awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} /Non-2xx/ {e=$NF} END {printf "%s req/s, p99 %s, non-2xx %s", r, p, e+0}'
}
probes() { # stream-port post-port tag
  python3 scripts/loadtest/streams.py probe "127.0.0.1:$1" "127.0.0.1:$2" "$TOKEN" \
    "$FIRST_STREAMED" 10 "$3"
}
# One phase: wrk on `port`, with probes through that server and the other
# one 2 s in; then the schema's table scans at rest.
phase() { # label port other-port run schema
  local result here there before ticks requests busy_at_start
  # Streams that poll keep the CPUs busy themselves: no waiting for quiet.
  if [ -n "${POLLING:-}" ]; then busy_at_start=$(busy); else busy_at_start=$(quiet); fi
  before=$(cpu_ticks "${pid_of[$2]}")
  webhook "$2" "$4" >/tmp/ibiki-streams-wrk.txt &
  local wrk_pid=$!
  sleep 2
  here=$(probes "$2" "$2" "${4}a")
  there=$(probes "$2" "$3" "${4}b")
  wait "$wrk_pid"
  ticks=$(($(cpu_ticks "${pid_of[$2]}") - before))
  result=$(cat /tmp/ibiki-streams-wrk.txt)
  requests=$(echo "$result" | awk '{printf "%d", $1 * '"$SECONDS_EACH"'}')
  echo "$1 (CPUs ${busy_at_start}% busy before): webhook $result"
  echo "$1:   server CPU $(python3 -c "print(f'{$ticks * 1000 / $(getconf CLK_TCK) / max($requests, 1) * 1000:.1f}')") µs per request"
  echo "$1:   latency, posted to the same server: $here"
  echo "$1:   latency, posted to the other server: $there"
  echo "$1:   at rest: $(idle_rate "$5") table scans/s"
}
open_streams() { # port
  python3 scripts/loadtest/streams.py hold 127.0.0.1 "$1" "$TOKEN" "$FIRST_STREAMED" "$STREAMS" \
    >/tmp/ibiki-streams-hold.txt 2>&1 &
  holder=$!
  for _ in $(seq 1 600); do
    grep -q "^open" /tmp/ibiki-streams-hold.txt && { sleep 5; return; }
    grep -q "^failed" /tmp/ibiki-streams-hold.txt && break
    sleep 0.5
  done
  cat /tmp/ibiki-streams-hold.txt >&2
  exit 1
}
close_streams() {
  kill "$holder"
  wait "$holder" || true
  holder=
  echo "  streams: $(tail -1 /tmp/ibiki-streams-hold.txt)"
  sleep 3
}
# A round: no streams, then STREAMS open (left open); the next round the
# other way round (A B B A), so that a drift of the machine's load over a
# pair of rounds weighs on both sides alike.
measure() { # label port other-port round schema [polling]
  if [ $(($4 % 2)) -eq 1 ]; then
    phase "$1, 0 streams" "$2" "$3" "z$4" "$5"
    open_streams "$2"
    POLLING=${6:-} phase "$1, $STREAMS streams" "$2" "$3" "s$4" "$5"
  else
    phase "$1, $STREAMS streams" "$2" "$3" "s$4" "$5"
    close_streams
    phase "$1, 0 streams" "$2" "$3" "z$4" "$5"
  fi
}

echo "== $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
drop_schema ibiki_streams
start "$server_bin" 18120 ibiki_streams
start "$server_bin" 18121 ibiki_streams
python3 scripts/loadtest/fill.py 127.0.0.1 18120 "$TOKEN" "$FILLED"
if [ -n "${IBIKI_OLD_SERVER_BIN:-}" ]; then
  drop_schema ibiki_streams_old
  start "$IBIKI_OLD_SERVER_BIN" 18122 ibiki_streams_old
  start "$IBIKI_OLD_SERVER_BIN" 18123 ibiki_streams_old
  python3 scripts/loadtest/fill.py 127.0.0.1 18122 "$TOKEN" "$FILLED"
fi
for round in $(seq 1 "$ROUNDS"); do
  measure "round $round" 18120 18121 "$round" ibiki_streams
done
[ -z "$holder" ] || close_streams
if [ -n "${IBIKI_OLD_SERVER_BIN:-}" ]; then
  measure "old build" 18122 18123 1 ibiki_streams_old polling
  close_streams
  phase "old build, 0 streams" 18122 18123 oldz2 ibiki_streams_old
fi
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg)"
cleanup
trap - EXIT
drop_schema ibiki_streams
[ -z "${IBIKI_OLD_SERVER_BIN:-}" ] || drop_schema ibiki_streams_old
