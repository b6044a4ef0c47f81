#!/usr/bin/env bash
# The webhook's throughput before, during and after an attack of half-open
# requests, in one run: starts the release server with an open-file limit of
# 20,000 and default flags (memory store), assigns the numbers, then runs wrk
# against POST /webhooks/sms: a warm-up that records LOADTEST_IDS message
# ids per wrk thread (default 50000), then three measured runs that send
# only those ids again, so the store no longer grows between them (with
# unique ids, its growth alone makes each run slower than the last):
#
#   before  no attack;
#   during  wrk connects first, then 19,990 half-open requests (two
#           scripts/loadtest/half_open.py processes) take every other
#           connection slot and keep taking them as the server closes them;
#   after   the attack cut off (its processes killed).
#
#   scripts/loadtest-attack.sh
#
# Env: LOADTEST_SECONDS (default 15), LOADTEST_CONNECTIONS (64),
# LOADTEST_THREADS (2), LOADTEST_NUMBERS (100000), LOADTEST_IDS (50000),
# LOADTEST_PORT (18090), ATTACKERS (19990; 0 runs the same phases without an
# attack), IBIKI_SERVER_BIN (a server binary to test instead of building
# this tree's).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${LOADTEST_SECONDS:-15}
CONNECTIONS=${LOADTEST_CONNECTIONS:-64}
THREADS=${LOADTEST_THREADS:-2}
export LOADTEST_NUMBERS=${LOADTEST_NUMBERS:-100000}
export LOADTEST_IDS=${LOADTEST_IDS:-50000}
PORT=${LOADTEST_PORT:-18090}
ATTACKERS=${ATTACKERS:-19990}
TOKEN=loadtest-token

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
server_bin=${IBIKI_SERVER_BIN:-}
if [ -z "$server_bin" ]; then
  cargo build --release -q -p ibiki-examples --bin ibiki-server
  server_bin=${CARGO_TARGET_DIR:-target}/release/ibiki-server
fi

attackers=()
stop_attack() {
  for pid in "${attackers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${attackers[@]}"; do wait "$pid" 2>/dev/null || true; done
  attackers=()
}
env -u DATABASE_URL RUST_LOG=warn sh -c 'ulimit -n 20000 && exec "$@"' sh \
  "$server_bin" --listen "127.0.0.1:$PORT" --admin-token "$TOKEN" >/tmp/ibiki-attack.log 2>&1 &
server=$!
trap 'stop_attack; kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

python3 scripts/loadtest/fill.py 127.0.0.1 "$PORT" "$TOKEN" "$LOADTEST_NUMBERS"

run() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${1}s" --latency \
    -s scripts/loadtest/webhook.lua "http://127.0.0.1:$PORT/webhooks/sms"
}
refusals() {
  curl -fs "http://127.0.0.1:$PORT/metrics" -H "Authorization: Bearer $TOKEN" \
    | grep '^ibiki_refusals_total' | tr '\n' ' '
  echo
}
rps() { awk '/Requests\/sec/ {print $2}'; }

echo "== warm-up: $LOADTEST_IDS message ids per thread recorded"
run "$SECONDS_EACH" | grep -E 'Requests/sec|errors'
echo "== before: POST /webhooks/sms"
before=$(run "$SECONDS_EACH")
echo "$before"

echo "== during: wrk connects, then $ATTACKERS half-open requests"
run $((SECONDS_EACH + 5)) >/tmp/ibiki-attack-during.txt &
wrk_pid=$!
sleep 1
half=$((ATTACKERS / 2))
: >/tmp/ibiki-attack-1.txt
: >/tmp/ibiki-attack-2.txt
# ATTACKERS=0: the same run without an attack, for comparison.
if [ "$ATTACKERS" -gt 0 ]; then
  python3 scripts/loadtest/half_open.py 127.0.0.1 "$PORT" "$half" >/tmp/ibiki-attack-1.txt &
  attackers+=($!)
  python3 scripts/loadtest/half_open.py 127.0.0.1 "$PORT" $((ATTACKERS - half)) >/tmp/ibiki-attack-2.txt &
  attackers+=($!)
fi
wait "$wrk_pid"
during=$(cat /tmp/ibiki-attack-during.txt)
echo "$during"
echo "attackers: $(tail -1 /tmp/ibiki-attack-1.txt); $(tail -1 /tmp/ibiki-attack-2.txt)"
echo "server descriptors: $(ls /proc/$server/fd | wc -l)"
echo "new connection while attacked: $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz" || true)"
echo "refusals: $(refusals)"

echo "== the attack cut off"
stop_attack
sleep 2
echo "refusals: $(refusals)"
echo "== after: POST /webhooks/sms"
after=$(run "$SECONDS_EACH")
echo "$after"

b=$(echo "$before" | rps)
d=$(echo "$during" | rps)
a=$(echo "$after" | rps)
echo "== webhook req/s: before $b, during $d, after $a; after / before = $(python3 -c "print(f'{$a / $b:.3f}')")"
