#!/usr/bin/env bash
# Installs the two cron lines of the cleanup system for the installed binary:
#   0 3 * * *     baileys-janitor cleanup   (daily maintenance, layer 3)
#   */30 * * * *  baileys-janitor trigger   (auto-trigger, layer 2)
# Idempotent: running it twice leaves one copy of each line. Lines are recognised by a marker
# comment, so --uninstall removes exactly them and nothing else.
#
#   scripts/install-cron.sh [--print | --uninstall] [--bin PATH] [--log-dir DIR] [--env 'K=V ...']
#
# CRONTAB_FILE=path makes it edit that file instead of the user's crontab (used by the tests).
set -euo pipefail

bin=$(command -v baileys-janitor || echo /usr/local/bin/baileys-janitor)
log_dir=/var/log/baileys-janitor
env_prefix=""
mode=install
marker="# baileys-janitor"

while [ $# -gt 0 ]; do
  case "$1" in
    --print) mode=print ;;
    --uninstall) mode=uninstall ;;
    --bin) bin=$2; shift ;;
    --log-dir) log_dir=$2; shift ;;
    --env) env_prefix="$2 "; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-cron.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

lines() {
  echo "0 3 * * * ${env_prefix}$bin cleanup >> $log_dir/baileys-cleanup.log 2>&1 $marker cleanup"
  echo "*/30 * * * * ${env_prefix}$bin trigger >> $log_dir/auto-cleanup-trigger.log 2>&1 $marker trigger"
}

read_crontab() {
  if [ -n "${CRONTAB_FILE:-}" ]; then cat "$CRONTAB_FILE" 2>/dev/null || true
  else crontab -l 2>/dev/null || true; fi
}

write_crontab() {
  # Buffer first: the pipeline is still reading the old crontab.
  local tmp; tmp=$(mktemp)
  cat > "$tmp"
  if [ -n "${CRONTAB_FILE:-}" ]; then mv "$tmp" "$CRONTAB_FILE"
  else crontab "$tmp"; rm -f "$tmp"; fi
}

case "$mode" in
  print) lines ;;
  uninstall)
    read_crontab | { grep -vF "$marker" || true; } | write_crontab
    echo "removed the baileys-janitor cron lines" ;;
  install)
    [ -x "$bin" ] || echo "install-cron.sh: warning: $bin is not an executable (yet)" >&2
    mkdir -p "$log_dir"
    { read_crontab | { grep -vF "$marker" || true; }; lines; } | write_crontab
    echo "installed:"; lines ;;
esac
