#!/usr/bin/env bash
# Property-based API testing of the example server against its own OpenAPI
# document: builds the real ibiki-server binary, starts it on a loopback port
# with the in-memory store, then with PostgreSQL (when DATABASE_URL is set),
# and runs schemathesis against /openapi.json. Any server error (5xx) or any
# answer the document does not describe (status, content type, body schema)
# fails the step. The live inbox (`/api/clients/{userId}/events`) is left
# out: a stream that never ends is not an answer schemathesis can wait for;
# its errors and events are checked by examples/tests/server/live.rs.
#
# Each store is run twice: with the admin token, then with a client's API key
# (client `123`, the document's example id), which must get only the answers
# the document gives a client: its own routes, 403 for the rest.
#
#   .ci/schemathesis.sh                 # both stores (DATABASE_URL for Postgres)
#   SCHEMATHESIS_EXAMPLES=200 .ci/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The version this step was written and checked with.
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"
CLIENT_EXAMPLES="${SCHEMATHESIS_CLIENT_EXAMPLES:-40}"
# Hard cap on each store's run, in seconds.
BUDGET="${SCHEMATHESIS_BUDGET:-180}"
TOKEN="schemathesis-admin-token"
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
VENV="$TARGET_DIR/schemathesis-venv"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "schemathesis: installing $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet -p ibiki-examples --bin ibiki-server
SERVER="$TARGET_DIR/debug/ibiki-server"

server_pid=""
schema=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$schema" ]; then
    psql "$DATABASE_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    schema=""
  fi
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_schemathesis BASE BEARER EXAMPLES
run_schemathesis() {
  # From the target directory: schemathesis keeps its cache in the working one.
  (cd "$TARGET_DIR" && NO_COLOR=1 timeout "$BUDGET" "$VENV/bin/schemathesis" run "$1/openapi.json" \
    --header "Authorization: Bearer $2" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$3" \
    --exclude-path-regex '/events$' \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --no-color)
}

# run_store NAME [server flags...]
run_store() {
  local name=$1
  shift
  local port base
  port=$(free_port)
  base="http://127.0.0.1:$port"
  # Only the flags given here: no IBIKI_* or DATABASE_URL from the caller.
  env -u DATABASE_URL -u IBIKI_WEBHOOK_SECRET -u IBIKI_DEFAULT_REGION \
    "$SERVER" --listen "127.0.0.1:$port" --admin-token "$TOKEN" "$@" \
    >"$TARGET_DIR/schemathesis-$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || {
      cat "$TARGET_DIR/schemathesis-$name.log" >&2
      echo "schemathesis: the server ($name) exited at start" >&2
      return 1
    }
    sleep 0.1
  done
  echo "schemathesis: $name store on $base, admin token"
  run_schemathesis "$base" "$TOKEN" "$EXAMPLES"
  local key
  key=$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" "$base/api/admin/clients/123/keys" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
  echo "schemathesis: $name store on $base, client 123's key"
  run_schemathesis "$base" "$key" "$CLIENT_EXAMPLES"
  cleanup
}

run_store memory
if [ -n "${DATABASE_URL:-}" ]; then
  schema="ibiki_test_schemathesis_$$"
  run_store postgres --database-url "$DATABASE_URL" --database-schema "$schema"
else
  echo "schemathesis: DATABASE_URL is not set, PostgreSQL run skipped"
fi
