#!/usr/bin/env bash
# End-to-end local delivery benchmark (design.md §4 "local"): N messages over SMTP into Maildirs,
# spread evenly over M mailboxes, each a listed user of bench.test (so every RCPT and every delivery
# goes through the mailbox map). Per M and round: a fresh data dir and a fresh `sluice serve`
# (ROUNDS rounds, the median reported); we time
#   - injection: bench/local_inject.py, SESSIONS pipelined sessions; 250 after DATA means durable;
#   - end to end: from injection start to the N-th "delivery ...: success:" line's own timestamp.
# Results are printed and appended to bench/RESULTS.md. Only processes started here are signalled.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

N="${N:-20000}"                         # messages per run, one recipient each
SIZE="${SIZE:-4096}"                    # body bytes per message
SESSIONS="${SESSIONS:-20}"
MS="${MS:-100 10000}"                   # mailbox counts, ROUNDS runs each
ROUNDS="${ROUNDS:-3}"
TIMEOUT="${TIMEOUT:-300}"               # seconds to wait for all deliveries after injection
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-180}"
NOTE="${NOTE:-}"
WORKDIR="${WORKDIR:-/var/tmp}"          # must be a real disk: fsync is the point
KEEP="${KEEP:-0}"
QUEUES="${QUEUES:-1}"                   # Queue.Count (bench/README.md: why one on this machine)

die() { echo "local.sh: $*" >&2; exit 1; }
for v in N SIZE SESSIONS ROUNDS TIMEOUT STARTUP_TIMEOUT QUEUES; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
done

. "$here/common.sh"  # owned PIDs and their cleanup, clean_env, rss_kib, median

# Sends N messages to 127.0.0.1:$1, recipient k to mailbox k mod $2; bench/compare replaces it with
# smtp-source (the injector it uses for both MTAs).
inject_local() {
  python3 "$here/local_inject.py" --port "$1" --count "$N" --sessions "$SESSIONS" --mailboxes "$2" --domain bench.test --size "$SIZE"
}

# Sets run_result="inject_s e2e_s". Port 0: Sluice logs the port it took.
run_once() {
  local m="$1" tmp pid port t0 t1 t_end count deadline files cpu0 cpu_s
  tmp="$(mktemp -d "$WORKDIR/sluice-local.XXXXXX")"
  echo "local.sh: $m mailboxes in $tmp" >&2
  python3 - "$tmp" "$m" "$QUEUES" <<'EOF'
import json, sys
tmp, m, queues = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = {
    "Hostname": "bench.sluice.test", "DataDir": f"{tmp}/var",
    "Smtp": {"Listen": ["127.0.0.1:0"], "RelayNetworks": ["127.0.0.0/8"], "LocalDomains": ["localhost"]},
    "Queue": {"Count": queues},
    "Mailboxes": {"Users": {f"u{i}@bench.test": {} for i in range(m)}},
}
json.dump(config, open(f"{tmp}/sluice.json", "w"))
EOF
  ( cd "$tmp" && exec env "${clean_env[@]}" "$root/sluice" serve --config "$tmp/sluice.json" >"$tmp/sluice.log" 2>"$tmp/sluice.err" ) &
  pid=$!; owned+=("$pid")
  deadline=$(( SECONDS + STARTUP_TIMEOUT ))
  until grep -q 'smtp: listening on' "$tmp/sluice.log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/sluice.log" "$tmp/sluice.err" >&2; die "sluice exited during startup (see $tmp)"; }
    (( SECONDS < deadline )) || die "sluice not listening after ${STARTUP_TIMEOUT}s (see $tmp)"
    sleep 0.1
  done
  port="$(grep -m1 'smtp: listening on' "$tmp/sluice.log" | sed 's/.*:\([0-9]*\)$/\1/')"

  if (( ${WARM:-0} > 0 )); then
    N="$WARM" inject_local "$port" "$m" "$tmp" || die "warm-up injection failed (see $tmp)"
    wait_for_deliveries "$tmp/sluice.log" "$pid" "$WARM" "$TIMEOUT" "the warm-up"
  fi
  sync  # the previous run's writeback is not this run's cost
  cpu0="$(cpu_seconds "$pid")"
  t0="$(date +%s.%N)"
  inject_local "$port" "$m" "$tmp" || die "injection failed (see $tmp)"
  t1="$(date +%s.%N)"

  deadline=$(( SECONDS + TIMEOUT ))
  while :; do
    count="$(grep -c ': success: ' "$tmp/sluice.log" || true)"
    (( count >= ${WARM:-0} + N )) && break
    kill -0 "$pid" 2>/dev/null || die "sluice died (see $tmp)"
    grep -qE ': (deferral|failure): ' "$tmp/sluice.log" && { grep -m5 -E ': (deferral|failure): ' "$tmp/sluice.log" >&2; die "deliveries deferred or failed (see $tmp)"; }
    (( SECONDS < deadline )) || die "only $count/$(( ${WARM:-0} + N )) delivered ${TIMEOUT}s after injection (see $tmp)"
    sleep 0.2
  done
  cpu_s="$(awk -v a="$cpu0" -v b="$(cpu_seconds "$pid")" 'BEGIN{printf "%.2f", b-a}')"
  t_end="$(date -u -d "$(grep -m "$(( ${WARM:-0} + N ))" ': success: ' "$tmp/sluice.log" | tail -1 | cut -d' ' -f1)" +%s.%N)"
  kill -TERM "$pid"; wait "$pid" || die "sluice exited with status $? (see $tmp)"

  files="$(find "$tmp/var/maildirs" -path '*/new/*' -type f | wc -l)"
  (( files == ${WARM:-0} + N )) || die "$files files in the Maildirs for $(( ${WARM:-0} + N )) messages (see $tmp)"
  run_result="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') $(awk -v a="$t0" -v b="$t_end" 'BEGIN{printf "%.3f", b-a}') $cpu_s"
  if [ "$KEEP" = 1 ]; then echo "local.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# bench/compare sources this file for run_once: it stops here then.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0
mkdir -p "$WORKDIR"
"$root/sluice" --help >/dev/null || die "sluice does not build"
command_line="N=$N SIZE=$SIZE SESSIONS=$SESSIONS MS=\"$MS\" ROUNDS=$ROUNDS QUEUES=$QUEUES$( (( ${WARM:-0} > 0 )) && echo " WARM=$WARM" || true) bench/local.sh"
loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
fmt='| %9s | %6s | %8s | %10s | %8s | %11s | %10s |'
rows=()
for m in $MS; do
  accepted=(); delivered=(); cpu=()
  for (( r = 1; r <= ROUNDS; r++ )); do
    echo "local.sh: $m mailboxes, round $r of $ROUNDS" >&2
    run_result=""
    run_once "$m"
    read -r inj e2e cpu_s <<<"$run_result"
    cpu+=("$(awk -v n="$N" -v x="$cpu_s" 'BEGIN{printf "%.3f", x*1000/n}')")
    accepted+=("$(awk -v n="$N" -v t="$inj" 'BEGIN{printf "%.0f", n/t}')")
    delivered+=("$(awk -v n="$N" -v t="$e2e" 'BEGIN{printf "%.0f", n/t}')")
    rows+=("$(printf "$fmt" "$m" "$r" "$inj" "${accepted[-1]}" "$e2e" "${delivered[-1]}" "${cpu[-1]}")")
  done
  rows+=("$(printf "$fmt" "$m" median "" "$(printf '%s\n' "${accepted[@]}" | median)" "" "$(printf '%s\n' "${delivered[@]}" | median)" "$(printf '%s\n' "${cpu[@]}" | median)")")
done
table="$(printf '%s\n' "$(printf "$fmt" mailboxes round inject_s accepted/s e2e_s delivered/s cpu_ms/msg)" \
  "|----------:|-------:|---------:|-----------:|---------:|------------:|-----------:|" "${rows[@]}")"
echo
echo "$table"

. "$here/results.sh"
{
  results_heading local.sh "data dir on $(df -T "$WORKDIR" | awk 'NR==2{print $2" ("$1")"}')"
  echo "- command: \`$command_line\`"
  echo "- injection: bench/local_inject.py, $SESSIONS pipelined sessions, $SIZE-byte bodies, one recipient per message, mailboxes in turn; every mailbox a listed user"
  echo "- load average at start: $loadavg_start"
  [ -z "$NOTE" ] || echo "- note: $NOTE"
  echo
  echo "$table"
} >>"$results_file"
echo "local.sh: appended to $results_file" >&2
