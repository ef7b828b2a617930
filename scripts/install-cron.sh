#!/usr/bin/env bash
# Installs the two cron lines of the cleanup system for the installed binary:
#   0 3 * * *      baileys-janitor cleanup   (daily maintenance, layer 3)
#   15,45 * * * *  baileys-janitor trigger   (auto-trigger, layer 2; never at 03:00 with it)
# Idempotent: running it twice leaves one copy of each line. Lines are recognised by a marker
# comment, so --uninstall removes exactly them and nothing else.
#
#   scripts/install-cron.sh [--print | --uninstall] [--bin PATH] [--log-dir DIR | --syslog]
#                           [--env 'K=V ...']
#
# --env values go into the crontab as written (quote values with spaces yourself, as in a shell),
# with each % escaped (cron turns a bare % into a newline). --bin and --log-dir may hold spaces,
# quotes and %: they are quoted for the shell and escaped for cron. A newline in any of them is
# refused (it would split the cron line and the job would never run).
#
# Logs never grow forever: by default each line appends to DIR/*.log (/var/log/baileys-janitor)
# and a logrotate rule covers DIR (the package's /etc/logrotate.d/baileys-janitor, or
# /etc/logrotate.d/baileys-janitor-cron written here). --syslog sends them through logger(1) to
# syslog / the journal instead, with each log line's priority (warnings stay warnings).
#
# CRONTAB_FILE=path makes it edit that file instead of the user's crontab, LOGROTATE_DIR=dir
# write the logrotate rule there instead of /etc/logrotate.d (used by the tests).
# (end of usage)
set -euo pipefail

bin=$(command -v baileys-janitor || echo /usr/bin/baileys-janitor)
log_dir=/var/log/baileys-janitor
env_prefix=""
mode=install
syslog=false
marker="# baileys-janitor"
logrotate_dir=${LOGROTATE_DIR:-/etc/logrotate.d}
own_rule="$logrotate_dir/baileys-janitor-cron"
package_rule="$logrotate_dir/baileys-janitor"

usage_error() { echo "install-cron.sh: $*" >&2; exit 2; }

# An option's value: present, and on one line (a newline would split the cron line in two).
value() { # option value...
  [ $# -ge 2 ] || usage_error "$1 needs a value (see --help)"
  case "$2" in *$'\n'*|*$'\r'*) usage_error "$1 value contains a newline: a cron line cannot hold it" ;; esac
}

# A word for the cron line: as it is when it is plain, otherwise single-quoted for the shell;
# then every % escaped for cron.
word() {
  local w=$1
  if [[ ! $w =~ ^[A-Za-z0-9_./:@+=,-]+$ ]]; then
    w="'${w//\'/\'\\\'\'}'"
  fi
  printf '%s' "${w//%/\\%}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --print) mode=print ;;
    --uninstall) mode=uninstall ;;
    --bin) value "$@"; bin=$2; shift ;;
    --log-dir) value "$@"; log_dir=${2%/}; shift ;;
    --syslog) syslog=true ;;
    --env) value "$@"; env_prefix="${2//%/\\%} "; shift ;;
    -h|--help) sed -n '2,/^# (end of usage)$/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-cron.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# A crontab line is readable by its owner's every process and shows in ps while it runs: never
# put a password there. The store's password goes in store.password_file, ~/.pgpass or the
# config file (mode 0600); see docs/configuration.md.
if printf '%s' "$env_prefix" | grep -Eq '://[^/@ ]*:[^/@ ]+@|(^| )(PGPASSWORD|REDISCLI_AUTH|[A-Z_]*PASSWORD)=|[?&]password='; then
  echo "install-cron.sh: --env carries a password, which would be readable in the crontab and in ps; put it in store.password_file, ~/.pgpass or the config file (mode 0600) instead (docs/configuration.md)" >&2
  exit 2
fi

line() { # schedule command log-name
  if $syslog; then
    # <N> prefixes (--log-format journald) become each line's priority; the report lines,
    # which have none, are logged as info.
    echo "$1 ${env_prefix}$(word "$bin") --log-format journald $2 2>&1 | logger -t baileys-janitor-$2 -p user.info --prio-prefix $marker $2"
  else
    echo "$1 ${env_prefix}$(word "$bin") $2 >> $(word "$log_dir/$3") 2>&1 $marker $2"
  fi
}

lines() {
  line "0 3 * * *" cleanup baileys-cleanup.log
  # Off the hour: the daily cleanup at 03:00 and a trigger would otherwise start together
  # and one of them find every company busy.
  line "15,45 * * * *" trigger auto-cleanup-trigger.log
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

# A logrotate rule for the log directory, unless the package's rule already covers it (two rules
# for one file make logrotate refuse both).
install_logrotate() {
  if [ -f "$package_rule" ] && grep -qF "$log_dir/" "$package_rule"; then
    rm -f "$own_rule"
    echo "logs in $log_dir are rotated by $package_rule"
    return
  fi
  if ! { [ -d "$logrotate_dir" ] && [ -w "$logrotate_dir" ]; }; then
    echo "install-cron.sh: warning: cannot write $own_rule; $log_dir/*.log will grow until" \
      "a logrotate rule covers it (run as root, or use --syslog)" >&2
    return
  fi
  local tmp; tmp=$(mktemp)
  cat > "$tmp" <<RULE
# Written by baileys-janitor's install-cron.sh; removed by install-cron.sh --uninstall.
"$log_dir/*.log" {
	weekly
	maxsize 20M
	rotate 8
	missingok
	notifempty
	nocreate
	compress
	delaycompress
}
RULE
  chmod 0644 "$tmp"
  mv "$tmp" "$own_rule"
  echo "logs in $log_dir are rotated by $own_rule"
}

case "$mode" in
  print) lines ;;
  uninstall)
    read_crontab | { grep -vF "$marker" || true; } | write_crontab
    if [ -f "$own_rule" ] && grep -qF "install-cron.sh" "$own_rule"; then rm -f "$own_rule"; fi
    echo "removed the baileys-janitor cron lines" ;;
  install)
    [ -x "$bin" ] || echo "install-cron.sh: warning: $bin is not an executable (yet)" >&2
    if $syslog; then
      command -v logger >/dev/null || { echo "install-cron.sh: --syslog needs logger(1) (bsdutils)" >&2; exit 2; }
      if [ -f "$own_rule" ] && grep -qF "install-cron.sh" "$own_rule"; then rm -f "$own_rule"; fi
    else
      mkdir -p "$log_dir"
      install_logrotate
    fi
    { read_crontab | { grep -vF "$marker" || true; }; lines; } | write_crontab
    echo "installed:"; lines ;;
esac
