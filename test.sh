#!/usr/bin/env bash
# Runs every test. Installs what the tests drive as real peers (swaks with TLS, python3, tmux, the unbound
# DNS server the delivery tests serve their zone from, Dovecot's IMAP server and PostgreSQL's server,
# which the tests start privately (initdb + pg_ctl in a temp directory) and never as a service, and dkimpy,
# the independent DKIM verifier) when missing, unpacks a private Exim and bsd-mailx (tests/peers/: never installed,
# it would remove Postfix), builds ./sluice (the end-to-end tests run that binary), then runs all test projects.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

need=()
command -v swaks >/dev/null 2>&1 || need+=(swaks)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# `sluice top`'s live view is read from a real terminal under tmux.
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# /usr/sbin may be off a non-root PATH, so look for the files themselves.
[ -x /usr/sbin/unbound ] || need+=(unbound)
[ -x /usr/sbin/dovecot ] && [ -e /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need+=(postgresql)
# swaks speaks TLS (--tls, --tlsc) through Net::SSLeay, which it only recommends.
perl -MNet::SSLeay -e1 >/dev/null 2>&1 || need+=(libnet-ssleay-perl)
# dkimpy, for Debian's own python3 (tests/Sluice.Testing/DkimPy.cs runs /usr/bin/python3).
/usr/bin/python3 -c 'import dkim' >/dev/null 2>&1 || need+=(python3-dkim)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test.sh: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Private peers, unpacked and never installed: Exim conflicts with Postfix, bsd-mailx pulls in a system MTA.
tests/peers/exim.sh >/dev/null
tests/peers/mailx.sh >/dev/null
./sluice --version >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test Sluice.slnx --nologo 2>&1 | tee "$log" || status=$?
# One closing line over all test assemblies, in the plain form CI reads.
awk '/^(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { gsub(",", "", p); printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit $status
