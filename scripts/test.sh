#!/usr/bin/env bash
# The whole test suite: unit tests, binary-level tests, the Baileys compatibility test, the alert
# rules (promtool) and the Debian package install test.
# PostgreSQL tests use BAILEYS_JANITOR_TEST_PG (default: the server on 127.0.0.1:5432, user
# postgres). When none answers, a throwaway cluster is started with initdb/pg_ctl on a free
# port if the PostgreSQL binaries exist; otherwise those tests say SKIPPED loudly.
# Redis tests use BAILEYS_JANITOR_TEST_REDIS (default redis://127.0.0.1:6379); when none
# answers, redis-server is started on a free port if installed, else they say SKIPPED loudly.
# MySQL tests use BAILEYS_JANITOR_TEST_MYSQL (default mysql://root@127.0.0.1:3306); when none
# answers, a throwaway MariaDB (mariadb-install-db + mariadbd, own datadir, socket and free port)
# is started if installed, else they say SKIPPED loudly.
# REQUIRE_SERVICES=1 (CI on a machine that has the servers) turns every SKIPPED into a failure.
# The TLS tests (tests/cli/tls.rs) start their own throwaway servers (a PostgreSQL cluster with
# ssl=on, a redis-server on a TLS port only, a CA made with openssl) and stop them; without the
# binaries they say SKIPPED, and with REQUIRE_SERVICES=1 (.ci/run) they fail instead.
# With REQUIRE_SERVICES=1 (.ci/run) a missing server fails the run and every test that needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
pg_url=${BAILEYS_JANITOR_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}
pg_tmp=""
run_as() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
redis_tmp=""
mysql_tmp=""
cleanup_pg() {
  if [ -n "$mysql_tmp" ]; then
    if [ -f "$mysql_tmp/pid" ]; then
      kill "$(cat "$mysql_tmp/pid")" 2>/dev/null || true
      for _ in $(seq 100); do [ -f "$mysql_tmp/pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$mysql_tmp"
  fi
  if [ -n "$redis_tmp" ]; then
    kill "$(cat "$redis_tmp/pid" 2>/dev/null)" 2>/dev/null || true
    rm -rf "$redis_tmp"
  fi
  if [ -n "$pg_tmp" ]; then
    run_as "'$pg_bin/pg_ctl' -D '$pg_tmp/data' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$pg_tmp"
  fi
}
trap cleanup_pg EXIT
pg_answers() { python3 - "$1" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.socket(); s.settimeout(2)
try:
    s.connect((u.hostname or "127.0.0.1", u.port or 5432)); sys.exit(0)
except OSError:
    sys.exit(1)
PY
}
if ! pg_answers "$pg_url"; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
    pg_tmp=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if [ "$(id -u)" = 0 ]; then chown postgres "$pg_tmp"; fi
    run_as "'$pg_bin/initdb' -D '$pg_tmp/data' -U postgres -A trust >/dev/null"
    run_as "'$pg_bin/pg_ctl' -D '$pg_tmp/data' -o '-p $port -k $pg_tmp -c listen_addresses=127.0.0.1' -l '$pg_tmp/log' -w start >/dev/null"
    pg_url="postgres://postgres@127.0.0.1:$port/postgres"
    echo "started a throwaway PostgreSQL cluster on port $port"
  else
    if [ "${REQUIRE_SERVICES:-}" = 1 ]; then
      echo "error: REQUIRE_SERVICES=1 but no PostgreSQL at $pg_url and no initdb/pg_ctl to start one" >&2
      exit 1
    fi
    echo "!!! SKIPPED: postgres tests (no server at $pg_url and no initdb/pg_ctl to start one) !!!"
  fi
fi
export BAILEYS_JANITOR_TEST_PG="$pg_url"
redis_url=${BAILEYS_JANITOR_TEST_REDIS:-redis://127.0.0.1:6379}
redis_answers() { python3 - "$1" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.socket(); s.settimeout(2)
try:
    s.connect((u.hostname or "127.0.0.1", u.port or 6379)); s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(64).startswith((b"+PONG", b"-NOAUTH")) else 1)
except OSError:
    sys.exit(1)
PY
}
if ! redis_answers "$redis_url"; then
  if command -v redis-server >/dev/null 2>&1; then
    redis_tmp=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$redis_tmp/pid" --dir "$redis_tmp" --logfile "$redis_tmp/log"
    for _ in $(seq 50); do redis_answers "redis://127.0.0.1:$port" && break; sleep 0.1; done
    redis_url="redis://127.0.0.1:$port"
    echo "started a throwaway redis-server on port $port"
  else
    if [ "${REQUIRE_SERVICES:-}" = 1 ]; then
      echo "error: REQUIRE_SERVICES=1 but no Redis at $redis_url and no redis-server to start one" >&2
      exit 1
    fi
    echo "!!! SKIPPED: redis tests (no server at $redis_url and no redis-server to start one) !!!"
  fi
fi
export BAILEYS_JANITOR_TEST_REDIS="$redis_url"
skipped() {
  echo "!!! SKIPPED: $1 !!!"
  if [ "${REQUIRE_SERVICES:-0}" = 1 ]; then
    echo "REQUIRE_SERVICES=1: a skipped service is a failure" >&2
    exit 1
  fi
}
mysql_url=${BAILEYS_JANITOR_TEST_MYSQL:-mysql://root@127.0.0.1:3306}
# A MySQL/MariaDB server greets first: protocol version 10, or an error packet (0xff).
mysql_answers() { python3 - "$1" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.socket(); s.settimeout(2)
try:
    s.connect((u.hostname or "127.0.0.1", u.port or 3306)); b = s.recv(64)
    sys.exit(0 if len(b) > 4 and b[4] in (10, 0xff) else 1)
except OSError:
    sys.exit(1)
PY
}
if ! mysql_answers "$mysql_url"; then
  mariadbd=$(command -v mariadbd || ls /usr/sbin/mariadbd 2>/dev/null || true)
  if [ -n "$mariadbd" ] && command -v mariadb-install-db >/dev/null 2>&1; then
    mysql_tmp=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_user=()
    if [ "$(id -u)" = 0 ]; then
      if id mysql >/dev/null 2>&1; then chown mysql "$mysql_tmp"; as_user=(--user=mysql); else as_user=(--user=root); fi
    fi
    mariadb-install-db --no-defaults "${as_user[@]}" --datadir="$mysql_tmp/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$mysql_tmp/install.log" 2>&1
    "$mariadbd" --no-defaults "${as_user[@]}" --datadir="$mysql_tmp/data" --port="$port" \
      --bind-address=127.0.0.1 --socket="$mysql_tmp/sock" --pid-file="$mysql_tmp/pid" \
      --skip-log-bin --innodb-buffer-pool-size=16M >"$mysql_tmp/log" 2>&1 &
    for _ in $(seq 150); do mysql_answers "mysql://root@127.0.0.1:$port" && break; sleep 0.2; done
    mysql_url="mysql://root@127.0.0.1:$port"
    if mysql_answers "$mysql_url"; then
      echo "started a throwaway MariaDB on port $port"
    else
      cat "$mysql_tmp/log" >&2
      skipped "mysql tests (the throwaway MariaDB did not start)"
    fi
  else
    skipped "mysql tests (no server at BAILEYS_JANITOR_TEST_MYSQL or 127.0.0.1:3306, and no mariadbd/mariadb-install-db to start one)"
  fi
fi
export BAILEYS_JANITOR_TEST_MYSQL="$mysql_url"
cargo test --all-targets
if [ -x tests/compat/run.sh ]; then
  tests/compat/run.sh
fi
tests/package/alerts.sh
tests/package/run.sh
