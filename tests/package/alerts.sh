#!/usr/bin/env bash
# deploy/prometheus/alerts.yml: `promtool check rules` and its unit tests (`promtool test rules
# alerts.test.yml`). promtool comes from Debian's prometheus package, installed with apt-get when
# absent; without promtool and apt this prints a loud SKIPPED.
set -euo pipefail
cd "$(dirname "$0")/../../deploy/prometheus"

if ! command -v promtool >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing promtool (apt-get install prometheus)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; } || true
  fi
fi
if ! command -v promtool >/dev/null; then
  echo; echo "******** SKIPPED: alert rules not checked: no promtool, and apt-get could not install prometheus ********"; echo
  exit 0
fi
promtool check rules alerts.yml
promtool test rules alerts.test.yml
