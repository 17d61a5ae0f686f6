# Sourced by scripts/test: makes a PostgreSQL server available to the tests
# and exports ORGHOOKS_TEST_DATABASE_URL (an admin URL; each test creates its
# own database on that server). In order:
#   1. ORGHOOKS_TEST_DATABASE_URL if set;
#   2. the server on 127.0.0.1:5432 if it answers (trust auth, user postgres);
#   3. the machine's cluster, started with pg_ctlcluster;
#   4. a throwaway cluster in a temporary folder, with the installed binaries
#      (installed with apt-get when missing and we are root), stopped on exit.
# It never skips: without a server it fails and says why.

pg_answers() {
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

pg_find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_provision() {
  if [ -n "${ORGHOOKS_TEST_DATABASE_URL:-}" ]; then
    echo "postgres: using ORGHOOKS_TEST_DATABASE_URL"
    return 0
  fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if ! command -v psql >/dev/null 2>&1 && [ -z "$(pg_find_bin)" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "postgres: installing the server with apt-get"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      echo "postgres: no PostgreSQL here and no way to install it; set ORGHOOKS_TEST_DATABASE_URL" >&2
      return 1
    fi
  fi
  if pg_answers "$local_url"; then
    export ORGHOOKS_TEST_DATABASE_URL="$local_url"
    echo "postgres: using the server on 127.0.0.1:5432"
    return 0
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "postgres: starting the machine's cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
      if pg_answers "$local_url"; then
        export ORGHOOKS_TEST_DATABASE_URL="$local_url"
        return 0
      fi
      sleep 0.2
    done
  fi
  PG_BIN="$(pg_find_bin)"
  if [ -z "$PG_BIN" ]; then
    echo "postgres: no server answers and no PostgreSQL binaries were found" >&2
    return 1
  fi
  echo "postgres: starting a throwaway cluster with $PG_BIN"
  PG_TMP="$(mktemp -d)"
  PG_AS=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_TMP"
    PG_AS=(runuser -u postgres --)
  fi
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres --auth=trust >/dev/null
  local port=54329
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -w -l "$PG_TMP/log" \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1" start >/dev/null
  trap '"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast stop >/dev/null 2>&1; rm -rf "$PG_TMP"' EXIT
  export ORGHOOKS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  if ! pg_answers "$ORGHOOKS_TEST_DATABASE_URL"; then
    echo "postgres: the throwaway cluster does not answer; see $PG_TMP/log" >&2
    return 1
  fi
}
