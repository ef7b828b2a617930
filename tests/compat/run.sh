#!/usr/bin/env bash
# Baileys compatibility test: builds auth folders with the real Baileys (pinned in
# package-lock.json), runs baileys-janitor on them, and checks the result with Baileys.
# Skips (loudly) only when node is absent; fails when node is present and anything fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "!!! SKIPPED: the Baileys compatibility test needs node (>= 20), which is not installed !!!"
  exit 0
fi
cd "$here"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
(cd "$root" && cargo build --quiet)
bin="$root/target/debug/baileys-janitor"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
node make.mjs "$work/base" 3
manifest="$work/base/manifest.json"
export BAILEYS_JANITOR_LOG=warn
# This machine's /etc/baileys-janitor/config.toml (a package test may have installed one) must
# not decide what this test runs: the defaults do.
export BAILEYS_JANITOR_SYSTEM_CONFIG=/nonexistent/baileys-janitor-compat/config.toml
"$bin" --sessions-path "$work/base" cleanup --dry-run --verbose --json > "$work/dry.json"
node check.mjs types "$manifest" "$work/dry.json"
for mode in normal emergency; do
  cp -a "$work/base" "$work/$mode"
  flag=(); [ "$mode" = emergency ] && flag=(--emergency)
  "$bin" --sessions-path "$work/$mode" cleanup "${flag[@]}" --json > "$work/$mode.json"
  removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['removed'])" "$work/$mode.json")
  echo "cleanup ($mode) removed $removed files"
  [ "$removed" -gt 0 ] || { echo "FAIL: the $mode cleanup removed nothing: the test would prove nothing"; exit 1; }
  node check.mjs after "$manifest" "$work/$mode"
done

# Pre-keys: a new contact's first message after a cleanup (docs/prekeys.md). The default rule must
# keep the pre-key the server handed out; the spec's keep-50 must lose it, or the test proves nothing.
node prekeys.mjs make "$work/pk" "$work/pk-msg.json"
company=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['company'])" "$work/pk-msg.json")
printf '[pre_keys]\nkeep = 50\n' > "$work/keep50.toml"
for rule in default keep50; do
  cp -a "$work/pk" "$work/pk-$rule"
  cfg=(); [ "$rule" = keep50 ] && cfg=(--config "$work/keep50.toml")
  "$bin" "${cfg[@]}" --sessions-path "$work/pk-$rule" cleanup --json > "$work/pk-$rule.json"
  removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['companies'][0]['removed_by_type'].get('pre-key', 0))" "$work/pk-$rule.json")
  echo "cleanup (pre-keys, $rule rule) removed $removed pre-keys"
  [ "$removed" -gt 0 ] || { echo "FAIL: the $rule rule removed no pre-key: the test would prove nothing"; exit 1; }
done
node prekeys.mjs receive "$work/pk-default/$company" "$work/pk-msg.json" ok
node prekeys.mjs receive "$work/pk-keep50/$company" "$work/pk-msg.json" fail

# Every layer on Baileys 7 accounts (issue 20): the trigger, `monitor --once --auto-cleanup` and
# `cleanup --emergency` in turn on four accounts made with the real library (a fresh pairing,
# chats, a reconnect loop's second 812 batch, top-ups); then 40 new contacts per account, each
# given the pre-key the server hands out, send a first message: every one must decrypt.
# BAILEYS_JANITOR_COMPAT_BIN runs this part with another build (a release before the fix fails).
lbin=${BAILEYS_JANITOR_COMPAT_BIN:-$bin}
node layers.mjs make "$work/v7" "$work/v7-msgs.json"
levels="$work/v7-levels.jsonl"
python3 levels.py snapshot "$lbin" "$work/v7" before "$levels"
layer() {
  local label=$1; shift
  local rc=0
  "$lbin" --sessions-path "$work/v7" "$@" > "$work/v7-$label.out" || rc=$?
  # monitor --once exits 1 while a company is at warning or above; anything else is a failure.
  [ "$rc" = 0 ] || { [ "$rc" = 1 ] && [ "$label" = monitor ]; } || {
    echo "FAIL: $label exited $rc"; cat "$work/v7-$label.out"; exit 1; }
  python3 levels.py snapshot "$lbin" "$work/v7" "after $label" "$levels"
}
layer trigger trigger --json
layer monitor monitor --once --auto-cleanup --json
layer emergency cleanup --emergency --json
python3 levels.py table "$levels"
node layers.mjs receive "$work/v7" "$work/v7-msgs.json"

# The same accounts in Baileys' SQLite layout (develop's useSqliteAuthState schema, values as
# Baileys serialised them). Rows carry no mtime: a first run starts the ledger, a second run
# 20 days later (BAILEYS_JANITOR_NOW) cleans; then every row left must read back through Baileys.
python3 sqlite.py to-db "$manifest" "$work/base" "$work/sqlite"
"$bin" --store "sqlite:$work/sqlite" --state-dir "$work/sqlite-state" cleanup --json > "$work/sqlite-1.json"
later=$(python3 -c "import datetime; print((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=20)).strftime('%Y-%m-%dT%H:%M:%SZ'))")
# The app connected since (Baileys rewrote creds): the account is active, sessions age (an
# account nobody wrote to keeps them: idleness counts to its last activity).
python3 sqlite.py connect "$manifest" "$work/sqlite"
BAILEYS_JANITOR_NOW=$later "$bin" --store "sqlite:$work/sqlite" --state-dir "$work/sqlite-state" cleanup --json > "$work/sqlite-2.json"
removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['removed'])" "$work/sqlite-2.json")
echo "cleanup (sqlite) removed $removed rows"
[ "$removed" -gt 0 ] || { echo "FAIL: the sqlite cleanup removed nothing: the test would prove nothing"; exit 1; }
python3 sqlite.py to-dir "$manifest" "$work/sqlite" "$work/sqlite-dirs"
node check.mjs after "$manifest" "$work/sqlite-dirs"
# The same accounts in Evolution API's Redis layout (Redis-only mode: creds in the hash), values
# encoded twice as Evolution encodes them; cleaned twice (ledger), read back through Baileys.
redis_url=${BAILEYS_JANITOR_TEST_REDIS:-redis://127.0.0.1:6379}
if python3 -c "import socket,sys,urllib.parse as p; u=p.urlparse(sys.argv[1]); socket.create_connection((u.hostname,u.port or 6379),2)" "$redis_url" 2>/dev/null; then
  prefix="bjcompat$$"
  trap 'python3 "$here/redis.py" drop "$redis_url" "$prefix" || true; rm -rf "$work"' EXIT
  python3 redis.py to-redis "$manifest" "$work/base" "$redis_url" "$prefix"
  evo=(--layout evolution --store "$redis_url" --key-pattern "$prefix:instance:*" --state-dir "$work/redis-state")
  "$bin" "${evo[@]}" cleanup --json > "$work/redis-1.json"
  python3 redis.py connect "$manifest" "$redis_url" "$prefix"
  BAILEYS_JANITOR_NOW=$later "$bin" "${evo[@]}" cleanup --json > "$work/redis-2.json"
  removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['removed'])" "$work/redis-2.json")
  echo "cleanup (evolution redis) removed $removed fields"
  [ "$removed" -gt 0 ] || { echo "FAIL: the redis cleanup removed nothing: the test would prove nothing"; exit 1; }
  python3 redis.py from-redis "$manifest" "$redis_url" "$prefix" "$work/redis-dirs"
  node check.mjs after "$manifest" "$work/redis-dirs"
elif [ "${REQUIRE_SERVICES:-}" = 1 ]; then
  echo "FAIL: REQUIRE_SERVICES=1 but no Redis at $redis_url for the Evolution API part"; exit 1
else
  echo "!!! SKIPPED: the Evolution API (Redis) part of the compatibility test: no Redis at $redis_url !!!"
fi
# The community SQL stores, written and read back by the packages' own code (versions pinned in
# package-lock.json): mysql-baileys on MySQL/MariaDB, postgres-baileys on PostgreSQL. Cleaned
# twice (ledger; the app connects in between, rewriting creds through the package), read back
# through the package, then through Baileys. postgres-baileys 1.5.0
# requires @whiskeysockets/baileys and uuid at run time without depending on them: package.json
# gives it uuid 10.0.0 and @whiskeysockets/baileys as an alias of the Baileys under test
# (@whiskeysockets/baileys 6.7.x depends on libsignal from a git URL, which a registry-only
# machine cannot install).
answers() { python3 -c "import socket,sys,urllib.parse as p; u=p.urlparse(sys.argv[1]); socket.create_connection((u.hostname,u.port or int(sys.argv[2])),2)" "$1" "$2" 2>/dev/null; }
sql_store() { # KIND ADMIN_URL DEFAULT_PORT JANITOR_ARGS...
  local kind=$1 admin=$2 port=$3; shift 3
  local db="bjcompat_${kind}_$$"
  local url
  url=$(python3 -c "import sys,urllib.parse as p; u=p.urlparse(sys.argv[1]); print(u._replace(path='/'+sys.argv[2], query='').geturl())" "$admin" "$db")
  node stores.mjs create "$kind" "$admin" "$db"
  dbs+=("$kind $admin $db")
  node stores.mjs to "$kind" "$manifest" "$work/base" "$url"
  local run=("$@" --store "$url" --state-dir "$work/$kind-state")
  # The janitor's state of its own (MySQL: a database beside the test's, dropped with it;
  # PostgreSQL: a schema inside the test's database), never the server's `baileys_janitor`.
  export BAILEYS_JANITOR_STATE_SCHEMA="${db}_state"
  [ "$kind" != mysql ] || dbs+=("$kind $admin ${db}_state")
  "$bin" "${run[@]}" cleanup --json > "$work/$kind-1.json"
  node stores.mjs connect "$kind" "$manifest" "$url"
  BAILEYS_JANITOR_NOW=$later "$bin" "${run[@]}" cleanup --json > "$work/$kind-2.json"
  removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['removed'])" "$work/$kind-2.json")
  echo "cleanup ($kind, $(node -p "require('./node_modules/$pkg/package.json').name + ' ' + require('./node_modules/$pkg/package.json').version")) removed $removed rows"
  [ "$removed" -gt 0 ] || { echo "FAIL: the $kind cleanup removed nothing: the test would prove nothing"; exit 1; }
  node stores.mjs from "$kind" "$manifest" "$url" "$work/$kind-dirs"
  node check.mjs after "$manifest" "$work/$kind-dirs"
}
dbs=()
drop_dbs() {
  for d in "${dbs[@]}"; do set -- $d; node "$here/stores.mjs" drop "$1" "$2" "$3" || true; done
}
trap 'drop_dbs; if [ -n "${prefix:-}" ]; then python3 "$here/redis.py" drop "$redis_url" "$prefix" || true; fi; rm -rf "$work"' EXIT
mysql_url=${BAILEYS_JANITOR_TEST_MYSQL:-mysql://root@127.0.0.1:3306}
if answers "$mysql_url" 3306; then
  pkg=mysql-baileys sql_store mysql "$mysql_url" 3306
else
  echo "!!! SKIPPED: the mysql-baileys part of the compatibility test: no MySQL at BAILEYS_JANITOR_TEST_MYSQL !!!"
  [ "${REQUIRE_SERVICES:-}" != 1 ] || { echo "FAIL: REQUIRE_SERVICES=1 but no MySQL for the mysql-baileys part"; exit 1; }
fi
pg_url=${BAILEYS_JANITOR_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}
if answers "$pg_url" 5432; then
  pkg=postgres-baileys sql_store pg "$pg_url" 5432 --layout postgres-baileys
else
  echo "!!! SKIPPED: the postgres-baileys part of the compatibility test: no PostgreSQL at BAILEYS_JANITOR_TEST_PG !!!"
fi
echo "Baileys compatibility: ok ($(node -p "require('./node_modules/baileys/package.json').version"))"
