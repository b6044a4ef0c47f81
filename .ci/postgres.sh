# Makes a PostgreSQL server reachable on 127.0.0.1:5432 and exports
# DATABASE_URL. Sourced by .ci/run: starts the installed cluster, or installs
# Debian's postgresql package first on a machine without one.

pg_ready() {
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null
}

pg_install() {
  echo "ci: installing PostgreSQL from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # Local-only trust auth, as on the development machines.
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
    "/etc/postgresql/$version/main/pg_hba.conf"
}

pg_start() {
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "ci: starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_ready && return 0
    sleep 1
  done
  echo "ci: PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

if ! pg_ready; then
  command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] || pg_install
  pg_start
fi
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
psql "${DATABASE_URL%/*}/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
  psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE test"
