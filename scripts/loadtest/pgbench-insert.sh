#!/usr/bin/env bash
# The durable-insert ceiling of the PostgreSQL server the load test uses:
# pgbench inserting one row per transaction into a scratch table, with the
# load test's connection count and duration. scripts/loadtest.sh runs it.
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL}"
seconds=${1:-15}
clients=${2:-64}
psql "$DATABASE_URL" -qc "SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS ibiki_loadtest_pgbench;
  DROP TABLE IF EXISTS ibiki_loadtest_pgbench.inserts;
  CREATE TABLE ibiki_loadtest_pgbench.inserts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)"
script=$(mktemp)
echo "INSERT INTO ibiki_loadtest_pgbench.inserts (body) VALUES ('load test');" >"$script"
pgbench -n -c "$clients" -j 2 -T "$seconds" -f "$script" "$DATABASE_URL" 2>/dev/null | grep -E "^tps|latency average"
rm -f "$script"
psql "$DATABASE_URL" -qc "DROP SCHEMA ibiki_loadtest_pgbench CASCADE"
