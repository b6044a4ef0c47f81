#!/usr/bin/env bash
# Measures `ibiki-server import` from a legacy PostgreSQL table into the
# PostgreSQL store, beside the admin API assigning the same numbers.
#
#   DATABASE_URL=postgres://... scripts/import-bench.sh
#
# Env: IMPORT_BENCH_CLIENTS (default 100000; 5 numbers each, written in five
# formats), IMPORT_BENCH_CONCURRENCY (clients at once, default 8),
# IMPORT_BENCH_ADMIN (1 to also time the admin API, default 1),
# IMPORT_BENCH_TARGET_URL (the store's URL, default DATABASE_URL).
# Uses the schemas ibiki_import_bench_legacy (the old table),
# ibiki_import_bench (the import) and ibiki_import_bench_admin (the admin API),
# dropped at the start and the end.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL}"
CLIENTS=${IMPORT_BENCH_CLIENTS:-100000}
ADMIN=${IMPORT_BENCH_ADMIN:-1}
CONCURRENCY=${IMPORT_BENCH_CONCURRENCY:-8}
TARGET_URL=${IMPORT_BENCH_TARGET_URL:-$DATABASE_URL}
PORT=${IMPORT_BENCH_PORT:-18090}
TOKEN=import-bench-token

cargo build --release -q -p ibiki-examples --bin ibiki-server
bin=target/release/ibiki-server
[ -n "${CARGO_TARGET_DIR:-}" ] && bin=$CARGO_TARGET_DIR/release/ibiki-server

drop() {
  psql "$DATABASE_URL" -qc "SET client_min_messages = warning; \
    DROP SCHEMA IF EXISTS ibiki_import_bench_legacy CASCADE; \
    DROP SCHEMA IF EXISTS ibiki_import_bench CASCADE; \
    DROP SCHEMA IF EXISTS ibiki_import_bench_admin CASCADE"
}
drop
trap drop EXIT

# The numbers of scripts/loadtest/fill.py: number i is +1 AREA EXCHANGE LINE.
psql "$DATABASE_URL" -q <<SQL
CREATE SCHEMA ibiki_import_bench_legacy;
CREATE FUNCTION ibiki_import_bench_legacy.n(i int, style int) RETURNS text LANGUAGE sql IMMUTABLE AS \$\$
  SELECT CASE style
    WHEN 0 THEN '+1 ' || a || ' ' || e || ' ' || l
    WHEN 1 THEN '(' || a || ') ' || e || '-' || l
    WHEN 2 THEN '1' || a || e || l
    WHEN 3 THEN '+1' || a || e || l
    ELSE a || '.' || e || '.' || l END
  FROM (SELECT (ARRAY[201, 212, 213, 312, 415, 617, 646, 718, 917, 305])[i % 10 + 1]::text AS a,
               (200 + (i / 10) % 800)::text AS e,
               lpad((i / 8000)::text, 4, '0') AS l) AS parts
\$\$;
CREATE TABLE ibiki_import_bench_legacy.client_profiles (
  user_id text PRIMARY KEY, email text, assigned_phone_numbers text[]);
INSERT INTO ibiki_import_bench_legacy.client_profiles (user_id, assigned_phone_numbers)
SELECT 'client-' || c,
       ARRAY(SELECT ibiki_import_bench_legacy.n(c * 5 + k, k) FROM generate_series(0, 4) AS k ORDER BY k)
FROM generate_series(0, $CLIENTS - 1) AS c;
ANALYZE ibiki_import_bench_legacy.client_profiles;
SQL
echo "legacy table: $CLIENTS clients x 5 numbers"

import() {
  env -u DATABASE_URL RUST_LOG=warn "$bin" import \
    --from-database "$DATABASE_URL" --table ibiki_import_bench_legacy.client_profiles \
    --database-url "$TARGET_URL" --database-schema ibiki_import_bench \
    --default-region US --format json --concurrency "$CONCURRENCY" "$@"
}
seconds() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$1"; }
summary() { python3 -c "import json, sys; r = json.load(sys.stdin); print({k: v if not isinstance(v, list) else len(v) for k, v in r.items()})"; }

start=$(date +%s.%N)
import --dry-run | summary
echo "== dry run: $(seconds "$start") s"
start=$(date +%s.%N)
import | summary
t=$(seconds "$start")
echo "== import: $t s, $(python3 -c "print(f'{$CLIENTS * 5 / $t:,.0f}')") numbers/s"
start=$(date +%s.%N)
import | summary
echo "== second run (nothing to do): $(seconds "$start") s"

if [ "$ADMIN" = 1 ]; then
  env -u DATABASE_URL RUST_LOG=warn "$bin" --listen "127.0.0.1:$PORT" --admin-token "$TOKEN" \
    --database-url "$DATABASE_URL" --database-schema ibiki_import_bench_admin >/tmp/ibiki-import-bench.log 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; drop' EXIT
  for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
  start=$(date +%s.%N)
  python3 scripts/loadtest/fill.py 127.0.0.1 "$PORT" "$TOKEN" $((CLIENTS * 5))
  t=$(seconds "$start")
  echo "== admin API, one client per request: $t s, $(python3 -c "print(f'{$CLIENTS * 5 / $t:,.0f}')") numbers/s"
fi
