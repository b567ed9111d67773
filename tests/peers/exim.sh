#!/usr/bin/env bash
# A private Exim for the interop tests (tests/Sluice.Testing/EximServer.cs), with the library exim4 needs that
# may be missing (libidn12) and nss_wrapper, which lends the test's uid the "Debian-exim" name exim4 looks up at
# start. Prints the unpacked root.
exec "$(dirname "${BASH_SOURCE[0]}")/private-deb.sh" exim usr/lib/x86_64-linux-gnu/libnss_wrapper.so \
  exim4-daemon-light exim4-base exim4-config libidn12 libnss-wrapper
