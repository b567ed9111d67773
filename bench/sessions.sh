#!/usr/bin/env bash
# Idle-session benchmark: how many simultaneous SMTP sessions `sluice serve` holds, what each costs
# in resident memory, and whether a fresh client is still served promptly meanwhile. See README.md.
#
# Per round (a fresh data dir and a fresh `sluice serve` each time):
#   1. WARMUP transactions (so JIT and first-use allocations are not charged to the sessions),
#      then VmRSS of the server from /proc/PID/status ("before");
#   2. N sessions opened by bench/smtp_hold.py (220, EHLO, then idle), as ceil(N / PER_PROC) client
#      processes, client k connecting from 127.0.0.(k+2) so ephemeral ports never run short;
#   3. once every client reports, the count of established server-side sockets (ss), and VmRSS
#      polled until it settles ("after"); bytes per idle session = (after - before) / N;
#   4. PROBES fresh clients, one after another, each timing connect→220 and connect→250 after DATA
#      of a full EHLO/MAIL/RCPT/DATA transaction while the N sessions are held;
#   5. the clients check each session is still open (nothing was sent to them, no close), then quit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

NS="${NS:-1000 5000 19000}"             # session counts to try, one table row per count and round
ROUNDS="${ROUNDS:-3}"
PER_PROC="${PER_PROC:-5000}"            # sessions per client process (each has its own fd limit)
CONCURRENCY="${CONCURRENCY:-200}"       # connects in flight per client process
PROBES="${PROBES:-3}"                   # timed transactions per round while the sessions are held
WARMUP="${WARMUP:-20}"                  # transactions before the "before" RSS (JIT, first-use allocations)
SIZE="${SIZE:-4096}"                    # probe body bytes
ESTABLISH_TIMEOUT="${ESTABLISH_TIMEOUT:-300}" # seconds for all clients to report
REPLY_TIMEOUT="${REPLY_TIMEOUT:-30}"    # seconds a client waits for a connect, 220 or EHLO reply
SETTLE_MAX="${SETTLE_MAX:-20}"          # seconds to wait for VmRSS to settle after the sessions are up
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-180}"     # `sluice serve` may have to rebuild first
WORKDIR="${WORKDIR:-/var/tmp}"
NOTE="${NOTE:-}"
KEEP="${KEEP:-0}"                       # 1: keep each round's temp dir (always kept on failure)

die() { echo "sessions.sh: $*" >&2; exit 1; }
for v in ROUNDS PER_PROC CONCURRENCY PROBES WARMUP SIZE ESTABLISH_TIMEOUT REPLY_TIMEOUT SETTLE_MAX STARTUP_TIMEOUT; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
done
for n in $NS; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "NS must list positive whole numbers (got '$n')"; done
command -v python3 >/dev/null || die "needs python3"
(( PER_PROC < $(ulimit -Hn) - 50 )) || die "PER_PROC ($PER_PROC) does not fit a client's open-files limit ($(ulimit -Hn))"
# Each client needs PER_PROC descriptors; children inherit the soft limit.
ulimit -Sn "$(ulimit -Hn)"

# ---------------------------------------------------------------- processes we own, and cleanup
# Only PIDs started here are ever signalled.
. "$here/common.sh"  # owned PIDs and their cleanup, clean_env, rss_kib, median

# Runs PROBES transactions (each a new connection) against port $1; sets probe_greet / probe_txn
# (medians, ms).
probe_median() {
  local port="$1" out line g=() t=()
  out="$(python3 "$here/smtp_hold.py" probe --port "$port" --count "$PROBES" --size "$SIZE" --timeout "$REPLY_TIMEOUT")" || return 1
  while IFS= read -r line; do
    [[ "$line" =~ greeting_ms=([0-9.]+)\ transaction_ms=([0-9.]+) ]] || return 1
    g+=("${BASH_REMATCH[1]}"); t+=("${BASH_REMATCH[2]}")
  done <<<"$out"
  (( ${#g[@]} == PROBES )) || return 1
  probe_greet="$(printf '%s\n' "${g[@]}" | median)"
  probe_txn="$(printf '%s\n' "${t[@]}" | median)"
}

# ---------------------------------------------------------------- one round
# Sets round_result="held rss_before_kib rss_after_kib connect_s greet_ms txn_ms alive fds".
run_round() {
  local n="$1" r="$2" keep="$KEEP" tmp sluice_pid drain_pid port="" line deadline procs k count ok failed
  local before after prev t0 t1 held fds alive=0 i
  tmp="$(mktemp -d "$WORKDIR/sluice-sessions.XXXXXX")"
  echo "sessions.sh: N=$n round $r in $tmp" >&2
  cat >"$tmp/sluice.json" <<EOF
{ "Hostname": "bench.sluice.test", "DataDir": "$tmp/var",
  "Smtp": { "Listen": ["127.0.0.1:0"], "RelayNetworks": ["127.0.0.0/8"], "LocalDomains": ["localhost"],
            "MaxConnections": 25000, "MaxConnectionsPerClient": 25000 },
  "Queue": { "Count": 4 } }
EOF
  start_sluice "$tmp" "$tmp/sluice.json" || die "sluice did not start"
  port="$sluice_port"

  PROBES="$WARMUP" probe_median "$port" || die "warm-up transactions failed (see $tmp)"
  before="$(rss_kib "$sluice_pid")"

  # Clients report on one FIFO, held open read-write here so that it never sees EOF between them.
  mkfifo "$tmp/status"
  exec 6<>"$tmp/status"
  procs=$(( (n + PER_PROC - 1) / PER_PROC ))
  (( procs <= 250 )) || die "N=$n needs more than 250 client processes (127.0.0.2..252); raise PER_PROC"
  declare -a clients=()
  t0="$(date +%s.%N)"
  for (( k = 0; k < procs; k++ )); do
    count=$(( n / procs + (k < n % procs ? 1 : 0) ))
    python3 "$here/smtp_hold.py" hold --port "$port" --count "$count" --source "127.0.0.$(( k + 2 ))" \
      --concurrency "$CONCURRENCY" --timeout "$REPLY_TIMEOUT" --status "$tmp/status" 2>"$tmp/client.$k.err" &
    clients+=($!); owned+=($!)
  done
  ok=0; failed=0
  deadline=$(( SECONDS + ESTABLISH_TIMEOUT ))
  for (( k = 0; k < procs; k++ )); do
    IFS= read -r -t $(( deadline > SECONDS ? deadline - SECONDS : 1 )) -u 6 line \
      || die "clients did not all report within ${ESTABLISH_TIMEOUT}s (see $tmp)"
    echo "$line" >>"$tmp/clients.log"
    [[ "$line" =~ ok=([0-9]+)\ failed=([0-9]+)\ error=(.*) ]] || die "bad client report: $line"
    ok=$(( ok + BASH_REMATCH[1] )); failed=$(( failed + BASH_REMATCH[2] ))
    (( BASH_REMATCH[2] == 0 )) || echo "sessions.sh: a client had ${BASH_REMATCH[2]} failures, first: ${BASH_REMATCH[3]}" >&2
  done
  t1="$(date +%s.%N)"
  held="$(ss -Htn state established "( sport = :$port )" | wc -l)"
  fds="$(find "/proc/$sluice_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)"
  (( failed == 0 )) || { echo "sessions.sh: WARNING: $failed of $n sessions failed; $ok held by clients, $held established at the server" >&2; keep=1; }

  # VmRSS settles once the accept burst's garbage is collected: poll (1 s) until it moves < 0.5 %.
  prev="$(rss_kib "$sluice_pid")"
  for (( i = 0; i < SETTLE_MAX; i++ )); do
    sleep 1
    after="$(rss_kib "$sluice_pid")"
    awk -v a="$prev" -v b="$after" 'BEGIN{ d = b - a; if (d < 0) d = -d; exit !(d * 200 < a) }' && break
    prev="$after"
  done

  probe_median "$port" || { keep=1; probe_greet=fail; probe_txn=fail; echo "sessions.sh: WARNING: probe failed while $n sessions held (see $tmp)" >&2; }

  for p in "${clients[@]}"; do kill -TERM "$p"; done
  for (( k = 0; k < procs; k++ )); do
    IFS= read -r -t "$REPLY_TIMEOUT" -u 6 line || die "clients did not report their sessions at the end (see $tmp)"
    echo "$line" >>"$tmp/clients.log"
    [[ "$line" =~ alive=([0-9]+) ]] && alive=$(( alive + BASH_REMATCH[1] ))
  done
  for p in "${clients[@]}"; do wait "$p" || die "a client exited with status $? (see $tmp)"; done
  exec 6<&-

  kill -TERM "$sluice_pid"
  wait "$sluice_pid" || die "sluice exited with status $? (see $tmp)"
  wait "$drain_pid" || true
  if grep -qiE 'warning|error|exception|refused' "$tmp/sluice.log" || [ -s "$tmp/sluice.err" ]; then
    echo "sessions.sh: WARNING: suspicious lines in Sluice's output:" >&2
    grep -iE 'warning|error|exception|refused' "$tmp/sluice.log" | head -5 >&2 || true
    head -5 "$tmp/sluice.err" >&2
    keep=1
  fi
  sluice_limits="$(grep -m1 '^[^ ]* limits: ' "$tmp/sluice.log" | cut -d' ' -f2- || true)"

  round_result="$held $before $after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') $probe_greet $probe_txn $alive $fds"
  if [ "$keep" = 1 ]; then echo "sessions.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# ---------------------------------------------------------------- main
mkdir -p "$WORKDIR"
"$root/sluice" --help >/dev/null || die "sluice does not build"

command_line="NS=\"$NS\" ROUNDS=$ROUNDS PER_PROC=$PER_PROC PROBES=$PROBES bench/sessions.sh"
loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "sessions.sh: $command_line" >&2
fmt='| %6s | %6s | %6s | %14s | %13s | %13s | %9s | %12s | %12s | %6s |'
header=$(printf "$fmt" N round held rss_before_MiB rss_after_MiB bytes/session connect_s probe_220_ms probe_txn_ms alive)
rule="|-------:|-------:|-------:|---------------:|--------------:|--------------:|----------:|-------------:|-------------:|-------:|"
rows=()
sluice_limits=""
for n in $NS; do
  declare -a bps=() rb=() ra=() pg=() pt=() cs=()
  for (( r = 1; r <= ROUNDS; r++ )); do
    round_result=""
    run_round "$n" "$r"
    read -r held before after connect greet txn alive fds <<<"$round_result"
    b=$(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN{printf "%.0f", (b - a) * 1024 / n}')
    bps+=("$b"); rb+=("$before"); ra+=("$after"); cs+=("$connect"); pg+=("$greet"); pt+=("$txn")
    rows+=("$(printf "$fmt" "$n" "$r" "$held" \
      "$(awk -v k="$before" 'BEGIN{printf "%.1f", k/1024}')" "$(awk -v k="$after" 'BEGIN{printf "%.1f", k/1024}')" \
      "$b" "$connect" "$greet" "$txn" "$alive")")
    echo "sessions.sh: N=$n round $r: held $held (server fds $fds), VmRSS $before -> $after KiB, $b B/session, probe 220 ${greet} ms, transaction ${txn} ms, $alive alive at the end" >&2
  done
  rows+=("$(printf "$fmt" "$n" median "" \
    "$(printf '%s\n' "${rb[@]}" | median | awk '{printf "%.1f", $1/1024}')" \
    "$(printf '%s\n' "${ra[@]}" | median | awk '{printf "%.1f", $1/1024}')" \
    "$(printf '%s\n' "${bps[@]}" | median)" "$(printf '%s\n' "${cs[@]}" | median)" \
    "$(printf '%s\n' "${pg[@]}" | median)" "$(printf '%s\n' "${pt[@]}" | median)" "")")
  unset bps rb ra pg pt cs
done
table="$(printf '%s\n' "$header" "$rule" "${rows[@]}")"
echo
echo "$table"

# ---------------------------------------------------------------- RESULTS.md
. "$here/results.sh"
results="$results_file"
{
  results_heading sessions.sh "open files hard limit $(ulimit -Hn)"
  echo "- command: \`$command_line\`"
  echo "- clients: bench/smtp_hold.py, $PER_PROC sessions per process, from 127.0.0.2 upwards; each session: 220, EHLO, then idle"
  echo "- load average at start: $loadavg_start"
  [ -z "$sluice_limits" ] || echo "- Sluice said: \`$sluice_limits\`"
  [ -z "$NOTE" ] || echo "- note: $NOTE"
  echo
  echo "$table"
} >>"$results"
echo >&2
echo "sessions.sh: appended to $results" >&2
