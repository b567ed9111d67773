#!/usr/bin/env bash
# A private Exim for the interop tests (tests/Sluice.Testing/EximServer.cs), never installed system-wide:
# Exim and Postfix conflict as Debian packages, and the benches need Postfix's tools. Debian's packages are
# fetched with `apt-get download` and unpacked with `dpkg -x` into a cache outside the worktree, with the
# library exim4 needs that may be missing (libidn12) and nss_wrapper, which lends the test's uid the
# "Debian-exim" name exim4 looks up at start. Prints the unpacked root; does nothing when it is there.
set -euo pipefail
cache="${SLUICE_PEERS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-peers}/exim"
root="$cache/root"
if [ ! -x "$root/usr/sbin/exim4" ] || [ ! -e "$root/usr/lib/x86_64-linux-gnu/libnss_wrapper.so" ]; then
  rm -rf "$cache/debs" && mkdir -p "$cache/debs"
  fetch() { (cd "$cache/debs" && apt-get download -qq exim4-daemon-light exim4-base exim4-config libidn12 libnss-wrapper 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true); }
  fetch
  # A clean machine may have no package lists yet (test.sh updates them only when it installs something).
  if ! ls "$cache"/debs/exim4-daemon-light_*.deb >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    fetch
  fi
  ls "$cache"/debs/exim4-daemon-light_*.deb >/dev/null   # fails (set -e) when the download did
  rm -rf "$root.new"
  for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$root.new"; done
  rm -rf "$root"
  mv "$root.new" "$root"
fi
echo "$root"
