#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed with `cargo install cargo-deb --locked` if
# absent) and prints its path: target/debian/baileys-janitor_<version>-1_<arch>.deb.
#
#   scripts/package.sh [--profile PROFILE] [--fast]
#
# --profile  the Cargo profile of the packaged binary: release (default, what you ship) or dev
#            (reuses the debug build the test suite already made: the install test uses it)
# --fast     faster, larger compression (the install test uses it)
#
# Man pages and completions are generated from the binary being packaged, into
# target/package-assets/; the asset list is [package.metadata.deb] in Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
fast=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift ;;
    --fast) fast=(--fast) ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package.sh: installing cargo-deb (cargo install cargo-deb --locked)" >&2
  cargo install cargo-deb --locked
fi

target=${CARGO_TARGET_DIR:-target}
case "$profile" in
  dev|test) out_dir=debug ;;
  *) out_dir=$profile ;;
esac

cargo build --locked --profile "$profile" --bin baileys-janitor
bin="$target/$out_dir/baileys-janitor"

assets="$target/package-assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/completions/baileys-janitor.bash"
"$bin" completions zsh > "$assets/completions/_baileys-janitor"
"$bin" completions fish > "$assets/completions/baileys-janitor.fish"

cargo deb --locked --no-build --profile "$profile" "${fast[@]}" --output "$target/debian/" >&2
ls -t "$target"/debian/baileys-janitor_*.deb | head -n 1
