#!/usr/bin/env bash
# Debian packages for a peer the tests run privately, never installed system-wide: `apt-get download`, then
# `dpkg -x` into a cache outside the worktree (${SLUICE_PEERS:-~/.cache/sluice-peers}/NAME/root). Installing
# them would pull in or replace the system MTA (bsd-mailx depends on one; Exim conflicts with Postfix, which
# the benches need). Usage: private-deb.sh NAME CHECK-FILE PACKAGE...; prints the root; a second run fetches nothing.
set -euo pipefail
name="$1" check="$2"; shift 2
cache="${SLUICE_PEERS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-peers}/$name"
root="$cache/root"
if [ ! -e "$root/$check" ]; then
  rm -rf "$cache/debs" && mkdir -p "$cache/debs"
  fetch() { (cd "$cache/debs" && apt-get download -qq "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true); }
  fetch "$@"
  # A clean machine may have no package lists yet (test.sh updates them only when it installs something).
  if ! ls "$cache"/debs/"$1"_*.deb >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    fetch "$@"
  fi
  ls "$cache"/debs/"$1"_*.deb >/dev/null   # fails (set -e) when the download did
  rm -rf "$root.new"
  for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$root.new"; done
  rm -rf "$root"
  mv "$root.new" "$root"
fi
echo "$root"
