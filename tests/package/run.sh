#!/usr/bin/env bash
# The package as an operator meets it: build the .deb (scripts/package.sh), install it with dpkg,
# run what an operator runs first, check the installed units, alert rules and sandbox, then purge
# and check the machine is as it was. Run by scripts/test.sh; needs root and dpkg (SKIPPED
# loudly otherwise). Installs man-db and prometheus (for promtool) with apt-get when absent.
#
#   tests/package/run.sh [--profile PROFILE]
#
# Default profile: dev, the debug build `cargo test` has just made, so CI compiles nothing more
# (measured: package.sh 8.7 s warm; a release build costs 4.5 to 10 minutes on 2 shared cores).
# cargo-deb 3.8 warns that dev is deprecated; when it refuses it, use --profile package-test
# (Cargo.toml: dev without debug info; 8 minutes cold, 8.5 s warm).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

profile=dev
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

skip() { echo; echo "******** SKIPPED: package install test: $* ********"; echo; exit 0; }
fail() { echo "package test FAILED: $*" >&2; exit 1; }
step() { echo "--- $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i)"
command -v dpkg >/dev/null || skip "no dpkg (not a Debian system)"
command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
if dpkg-query -W -f='${Status}' baileys-janitor 2>/dev/null | grep -q "install ok"; then
  fail "baileys-janitor is already installed here; this test installs and purges it, so it" \
    "refuses to touch an existing installation (dpkg --purge baileys-janitor first if it is a leftover)"
fi

apt_install() { # package: installs it, or returns 1 when apt cannot
  command -v apt-get >/dev/null || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1 && return 0
  apt-get update -qq >/dev/null 2>&1 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1
}
command -v man >/dev/null || apt_install man-db || fail "man is missing and apt-get could not install man-db"
have_promtool=true
command -v promtool >/dev/null || apt_install prometheus || have_promtool=false

# Everything named after the package outside the work tree, and its user: compared after purge.
snapshot() {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /work \
    -o -path /root -o -path /home -o -path /var/cache -o -path /var/lib/dpkg -o -path /var/tmp \
    -o -path "$repo" \) -prune -o -name '*baileys*' -print 2>/dev/null | sort
  getent passwd baileys-janitor || true
  getent group baileys-janitor || true
}
before=$(snapshot)

step "scripts/package.sh --profile $profile --fast"
start=$(date +%s%N)
deb=$(scripts/package.sh --profile "$profile" --fast | tail -n 1)
echo "package.sh took $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ -f "$deb" ] || fail "package.sh printed no .deb ($deb)"

work=$(mktemp -d)
cleanup() {
  dpkg --purge baileys-janitor >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >/dev/null

step "baileys-janitor --version"
version=$(baileys-janitor --version)
echo "$version"
want_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
want_commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ "$version" = "baileys-janitor $want_version (commit $want_commit)" ] ||
  fail "--version says '$version', wanted 'baileys-janitor $want_version (commit $want_commit)'"
[ "$(command -v baileys-janitor)" = /usr/bin/baileys-janitor ] || fail "not on PATH as /usr/bin/baileys-janitor"

step "man -w"
for page in baileys-janitor baileys-janitor-cleanup baileys-janitor-monitor; do
  man -w "$page" | grep -q "^/usr/share/man/man1/$page.1.gz$" || fail "man -w $page"
done
man baileys-janitor-cleanup 2>/dev/null | grep -q -- "--dry-run" || fail "man baileys-janitor-cleanup has no --dry-run"

step "completions"
bash -c 'source /usr/share/bash-completion/completions/baileys-janitor && complete -p baileys-janitor' >/dev/null ||
  fail "bash completion does not load"
[ -s /usr/share/zsh/vendor-completions/_baileys-janitor ] || fail "no zsh completion"
[ -s /usr/share/fish/vendor_completions.d/baileys-janitor.fish ] || fail "no fish completion"

step "conffiles, config, logrotate, user"
conffiles=$(dpkg-query -W -f='${Conffiles}' baileys-janitor)
for f in /etc/baileys-janitor/config.toml /etc/logrotate.d/baileys-janitor; do
  grep -qF "$f" <<<"$conffiles" || fail "$f is not a conffile"
done
mkdir -p "$work/sessions"
python3 scripts/make-demo-tree.py "$work/sessions" --companies 3 --files 200 >/dev/null
out=$(baileys-janitor --sessions-path "$work/sessions" cleanup --dry-run 2>&1) ||
  fail "cleanup with the installed /etc/baileys-janitor/config.toml: $out"
out=$(baileys-janitor config 2>&1) || fail "baileys-janitor config: $out"
grep -q "/etc/baileys-janitor/config.toml" <<<"$out" || fail "the installed config is not read: $out"
logrotate -d /etc/logrotate.d/baileys-janitor >/dev/null 2>&1 || fail "logrotate -d rejects the rule"
getent passwd baileys-janitor >/dev/null || fail "no baileys-janitor user"

step "systemd-analyze verify"
units=(/lib/systemd/system/baileys-janitor-*.service /lib/systemd/system/baileys-janitor-*.timer)
[ "${#units[@]}" = 5 ] || fail "expected 5 units, found ${#units[@]}"
verify=$(systemd-analyze verify "${units[@]}" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify complained: $verify"

step "systemd-analyze security --offline=yes (target: OK, exposure <= 2.5)"
for unit in /lib/systemd/system/baileys-janitor-*.service; do
  line=$(systemd-analyze security --offline=yes "$unit" 2>&1 | grep "Overall exposure level") ||
    fail "no score for $unit"
  score=$(sed -n 's/.*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' <<<"$line")
  echo "  $(basename "$unit"): $score"
  read -r value label <<<"$score"
  [ "$label" = OK ] || fail "$unit is rated $label"
  awk -v v="$value" 'BEGIN { exit !(v <= 2.5) }' || fail "$unit exposure $value > 2.5"
done

step "the sandbox allows every system call the tool makes"
if command -v strace >/dev/null; then
  metrics="$work/metrics.prom"
  run_traced() { strace -f -qq -o "$work/strace.$1" baileys-janitor --sessions-path "$work/sessions" "$@" >/dev/null 2>&1 || true; }
  run_traced cleanup --metrics-file "$metrics"
  run_traced trigger --threshold 10 --emergency-threshold 20
  run_traced monitor --once --metrics-file "$metrics"
  run_traced status --history
  run_traced backup --company "$(ls "$work/sessions" | grep company_ | head -n 1)"
  run_traced restore --company "$(ls "$work/sessions" | grep company_ | head -n 1)"
  # The unit's filter: @system-service minus @privileged and @resources, sets expanded.
  allowed=$(systemd-analyze syscall-filter 2>/dev/null | python3 -c '
import sys
sets, cur = {}, None
for line in sys.stdin:
    s = line.strip()
    if not s or s.startswith("#"):
        continue
    if not line[0].isspace():
        cur = s; sets[cur] = []
    elif cur:
        sets[cur].append(s)
def expand(name, seen=()):
    out = set()
    for m in sets.get(name, []):
        out |= expand(m, seen + (name,)) if m.startswith("@") and m not in seen else {m}
    return out
ok = expand("@system-service") - expand("@privileged") - expand("@resources")
print("\n".join(sorted(ok)))')
  used=$(cat "$work"/strace.* | sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1/p' | sort -u)
  [ -n "$used" ] || fail "strace recorded nothing"
  denied=$(comm -23 <(echo "$used") <(echo "$allowed" | sort -u) | grep -v '^execve$' || true)
  [ -z "$denied" ] || fail "system calls the units' SystemCallFilter would refuse: $denied"
  echo "  $(wc -l <<<"$used") distinct system calls, all allowed"
else
  echo "  SKIPPED: strace is not installed"
fi

step "alert rules (promtool)"
if $have_promtool; then
  promtool check rules /usr/share/doc/baileys-janitor/prometheus/alerts.yml
  (cd /usr/share/doc/baileys-janitor/prometheus && promtool test rules alerts.test.yml)
else
  echo; echo "******** SKIPPED: promtool (apt-get could not install prometheus) ********"; echo
fi

step "dpkg --purge"
dpkg --purge baileys-janitor >/dev/null
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") >&2 || true
  fail "the machine is not as it was after purge"
fi
echo "package test passed: $(basename "$deb")"
