#!/usr/bin/env bash
# A private bsd-mailx for the sendmail tests (tests/Sluice.EndToEnd/SendmailTests.cs): installed, it would pull
# in a system MTA (it depends on one). Prints the unpacked root; mail(1) is usr/bin/bsd-mailx under it, with
# its libraries (which a clean machine may lack) in usr/lib/x86_64-linux-gnu.
exec "$(dirname "${BASH_SOURCE[0]}")/private-deb.sh" mailx usr/lib/x86_64-linux-gnu/liblockfile.so.1 bsd-mailx liblockfile1 libbsd0 libmd0
