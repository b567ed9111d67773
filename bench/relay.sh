#!/usr/bin/env bash
# End-to-end relay benchmark: smtp-source → Sluice → smtp-sink, all on loopback.
#
# Per round: a fresh data dir, a fresh smtp-sink, a fresh `sluice serve`. We time
#   - injection: from the first smtp-source start until the last one exits. Sluice answers 250 to
#     DATA only after the message is fsync'd, so "all injectors done" means "all N accepted durably";
#   - end to end: from injection start until the N-th "delivery ...: success:" line in Sluice's log
#     (its own timestamp, so the poll interval does not blur the figure);
#   - spool cost: Sluice's shutdown line "spool: R records in G group commits; F fsyncs in all",
#     divided by N.
# See bench/README.md. Results are printed and appended to bench/RESULTS.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

N="${N:-20000}"                         # messages per round, one recipient each
SIZE="${SIZE:-4096}"                    # body bytes per message (smtp-source -l)
SESSIONS="${SESSIONS:-20}"              # concurrent SMTP sessions into Sluice
ROUNDS="${ROUNDS:-3}"
DOMAINS="${DOMAINS:-50}"                # distinct recipient domains d1..dDOMAINS.bench.test
SESSIONS_PER_PROC="${SESSIONS_PER_PROC:-2}"   # smtp-source -s per process (see the scheme below)
TIMEOUT="${TIMEOUT:-300}"               # seconds to wait for all deliveries after injection
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-180}"     # `sluice serve` may have to rebuild first
NOTE="${NOTE:-}"                        # free text for RESULTS.md, e.g. what else ran meanwhile
WORKDIR="${WORKDIR:-/var/tmp}"          # data dirs go here: must be a real disk, fsync is the point
KEEP="${KEEP:-0}"                       # 1: keep each round's temp dir (always kept on failure)
QUEUES="${QUEUES:-1}"                   # Queue.Count: one on this 2-core machine, the fastest (bench/README.md, "Queue count")
STORE="${STORE:-file}"                  # file, or postgres: a private PostgreSQL per round in its temp dir
TRACE="${TRACE:-0}"                     # 1: dotnet-trace (sampled stacks) during each round; keeps the dir
PERF="${PERF:-0}"                       # 1: perf record (on-CPU samples) during each round; keeps the dir
WARM="${WARM:-0}"                       # messages sent and delivered before each timed run (JIT and caches warm), not counted
SYSCALLS="${SYSCALLS:-0}"               # 1: count Sluice's socket, sync and wait syscalls per message (perf stat)

die() { echo "relay.sh: $*" >&2; exit 1; }
[[ "$STORE" == file || "$STORE" == postgres ]] || die "STORE must be file or postgres (got '$STORE')"
for v in N SIZE SESSIONS QUEUES ROUNDS DOMAINS SESSIONS_PER_PROC TIMEOUT STARTUP_TIMEOUT; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
done
[[ "$WARM" =~ ^[0-9]+$ ]] || die "WARM must be a whole number (got '$WARM')"
(( SESSIONS % SESSIONS_PER_PROC == 0 )) || die "SESSIONS ($SESSIONS) must be a multiple of SESSIONS_PER_PROC ($SESSIONS_PER_PROC)"

# ---------------------------------------------------------------- processes we own, and cleanup
. "$here/common.sh"  # owned PIDs and their cleanup, clean_env, free_port, rss_kib, median
declare -a pg_running=()
on_cleanup 'for p in "${pg_running[@]}"; do pg_stop "$p"; done'

# Epoch seconds (with fraction) of a Sluice log timestamp such as 2025-11-23T23:05:01.123456Z.
epoch_of() { date -u -d "$1" +%s.%N; }

# ---------------------------------------------------------------- the injection scheme
# smtp-source sends every message to one recipient address (-t), so spreading mail over DOMAINS
# domains takes one smtp-source process per domain. SESSIONS concurrent sessions are therefore
# PROCS = SESSIONS / SESSIONS_PER_PROC processes of -s SESSIONS_PER_PROC each, run as a pool:
# JOBS = max(DOMAINS, PROCS) jobs, job j sends to domain ((j-1) mod DOMAINS)+1 an equal share of N,
# and whenever a job ends the next one starts, so SESSIONS sessions stay busy until the last wave
# (defaults: 50 jobs of 400 messages, 10 at a time, 2 sessions each). -d keeps each session on one
# connection (otherwise smtp-source reconnects per message); -N prepends a sequence number to the
# local part so recipients are distinct. smtp-source has no PIPELINING, and on any rejection it
# sleeps 1 s and exits: a failed job is reported and fails the round.
PROCS=$(( SESSIONS / SESSIONS_PER_PROC ))
JOBS=$(( DOMAINS > PROCS ? DOMAINS : PROCS ))

# Job j's smtp-source recipient arguments; bench/compare's local workload replaces it (one mailbox per job).
job_recipient() { echo "-N -t user@d$(( ($1 - 1) % DOMAINS + 1 )).bench.test"; }

# Runs all jobs against 127.0.0.1:$1, logs into directory $2; returns non-zero if any job failed.
inject() {
  local port="$1" dir="$2" j running=0 failed=0 done_pid m
  declare -A job_of=()
  for (( j = 1; j <= JOBS; j++ )); do
    if (( running == PROCS )); then
      if ! wait -n -p done_pid "${!job_of[@]}"; then failed=1; echo "relay.sh: injector job ${job_of[$done_pid]} failed" >&2; fi
      unset "job_of[$done_pid]"; running=$(( running - 1 ))
    fi
    m=$(( N / JOBS + (j <= N % JOBS ? 1 : 0) ))
    (( m > 0 )) || continue
    # shellcheck disable=SC2046  # job_recipient's words are separate arguments
    /usr/sbin/smtp-source -4 -d -s "$SESSIONS_PER_PROC" -m "$m" -l "$SIZE" \
      -M client.bench.test -f sender@client.bench.test $(job_recipient "$j") \
      "127.0.0.1:$port" >"$dir/source.$j.out" 2>&1 &
    owned+=($!); job_of[$!]=$j; running=$(( running + 1 ))
  done
  while (( running > 0 )); do
    if ! wait -n -p done_pid "${!job_of[@]}"; then failed=1; echo "relay.sh: injector job ${job_of[$done_pid]} failed" >&2; fi
    unset "job_of[$done_pid]"; running=$(( running - 1 ))
  done
  # smtp-source may also complain without failing its exit status; any output is suspicious.
  if grep -l . "$dir"/source.*.out >/dev/null 2>&1; then
    echo "relay.sh: smtp-source wrote:" >&2; grep -H . "$dir"/source.*.out | head -20 >&2
    failed=1
  fi
  return "$failed"
}

# write_relay_config DIR SMTP_PORT SINK_PORT [QUEUE_JSON [CHANNELS_JSON]]: DIR/sluice.json for a
# relay to the sink (every domain routed there), data under DIR/var.
write_relay_config() {
  cat >"$1/sluice.json" <<EOF
{ "Hostname": "bench.sluice.test", "DataDir": "$1/var",
  "Smtp": { "Listen": ["127.0.0.1:$2"], "RelayNetworks": ["127.0.0.0/8"], "LocalDomains": ["localhost"] },
  "Queue": ${4:-{ \"Count\": $QUEUES \}},${5:+ \"Channels\": $5,}
  "Routes": { "*": "127.0.0.1:$3" } }
EOF
}

# ---------------------------------------------------------------- the queue database (STORE=postgres)
# A private cluster in the round's temp dir, as the tests make one: initdb + pg_ctl, as the postgres
# user when we are root (PostgreSQL refuses to run as root). fsync and synchronous_commit stay on.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_start() {  # dir port
  [ -n "$pg_bin" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
  [ "$(id -u)" -ne 0 ] || chown postgres "$1"
  as_pg "$pg_bin/initdb" -D "$1/pg" -A trust -U sluice -E UTF8 --locale=C --no-sync >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$1/pg" -l "$1/pg.log" -w -o "-p $2 -k $1 -c listen_addresses=127.0.0.1" start >/dev/null
}
pg_stop() { as_pg "$pg_bin/pg_ctl" -D "$1/pg" -w -m fast stop >/dev/null || true; }
# "transactions wal_bytes" of database postgres so far: the figures per message are the differences.
pg_counters() {
  psql -h 127.0.0.1 -p "$1" -U sluice -d postgres -Atc \
    "SELECT xact_commit + xact_rollback, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint FROM pg_stat_database WHERE datname = 'postgres'" | tr '|' ' '
}

# ---------------------------------------------------------------- one round
# Sets round_result="inject_s e2e_s records commits fsyncs cpu_s" (cpu_s: Sluice's user+system
# CPU seconds from injection start to the last delivery). Runs in the main shell (not a
# subshell) so that die() and the PIDs it starts reach the cleanup trap.
run_round() {
  local r="$1" keep="$KEEP" tmp smtp_port sluice_pid t0 t1 t_end count deadline spool
  tmp="$(mktemp -d "$WORKDIR/sluice-relay.XXXXXX")"
  echo "relay.sh: round $r in $tmp" >&2

  local sink_port sink_pid
  start_smtp_sink "$tmp" || die "smtp-sink did not start (see $tmp)"

  smtp_port="$(free_port "$sink_port")" || die "no free port"
  local queue="{ \"Count\": $QUEUES }" pg_port="" pg_before=""
  if [ "$STORE" = postgres ]; then
    pg_port="$(free_port "$smtp_port")" || die "no free port"
    pg_start "$tmp" "$pg_port"
    pg_running=("$tmp")
    queue="{ \"Count\": $QUEUES, \"Store\": \"postgres\", \"ConnectionString\": \"Host=127.0.0.1;Port=$pg_port;Username=sluice;Database=postgres\" }"
  fi
  write_relay_config "$tmp" "$smtp_port" "$sink_port" "$queue"
  # exec: the PID we hold is the PID of sluice itself (the wrapper execs dotnet), so SIGTERM reaches it.
  local perf_env=(); [ "$PERF" = 1 ] && perf_env=(DOTNET_PerfMapEnabled=1)  # JIT symbols in /tmp/perf-PID.map
  ( cd "$tmp" && exec env "${clean_env[@]}" "${perf_env[@]}" "$root/sluice" serve --config "$tmp/sluice.json" \
      >"$tmp/sluice.log" 2>"$tmp/sluice.err" ) &
  sluice_pid=$!; owned+=("$sluice_pid")
  deadline=$(( SECONDS + STARTUP_TIMEOUT ))
  until grep -q 'smtp: listening on' "$tmp/sluice.log" 2>/dev/null; do
    kill -0 "$sluice_pid" 2>/dev/null || { cat "$tmp/sluice.log" "$tmp/sluice.err" >&2; die "sluice exited during startup (see $tmp)"; }
    (( SECONDS < deadline )) || die "sluice not listening after ${STARTUP_TIMEOUT}s (see $tmp)"
    sleep 0.1
  done

  if (( WARM > 0 )); then
    N="$WARM" inject "$smtp_port" "$tmp" || die "warm-up injection failed in round $r (see $tmp)"
    wait_for_deliveries "$tmp/sluice.log" "$sluice_pid" "$WARM" "$TIMEOUT" "round $r's warm-up"
  fi
  sync  # the previous run's writeback is not this run's cost
  [ -z "$pg_port" ] || pg_before="$(pg_counters "$pg_port")"
  local cpu0 trace_pid="" perf_pid=""
  if [ "$PERF" = 1 ]; then
    # On-CPU samples of Sluice with call graphs (kernel and JIT-compiled frames) for `perf report`.
    perf record -F 999 -g -p "$sluice_pid" -o "$tmp/perf.data" >"$tmp/perf.out" 2>&1 &
    perf_pid=$!; owned+=("$perf_pid"); keep=1
  fi
  if [ "$TRACE" = 1 ]; then
    # Sampled managed stacks (~100 Hz, every thread) for bench/trace_top.py; the trace costs Sluice some CPU.
    dotnet-trace collect -p "$sluice_pid" --profile dotnet-sampled-thread-time,dotnet-common --format Speedscope \
      -o "$tmp/trace.nettrace" >"$tmp/trace.out" 2>&1 &
    trace_pid=$!; owned+=("$trace_pid"); keep=1
    until grep -q 'Process' "$tmp/trace.out" 2>/dev/null; do kill -0 "$trace_pid" 2>/dev/null || die "dotnet-trace failed: $(cat "$tmp/trace.out")"; sleep 0.2; done
  fi
  local stat_pid=""
  if [ "$SYSCALLS" = 1 ]; then
    perf stat -x, -e "$(printf 'syscalls:sys_enter_%s,' recvfrom sendto epoll_wait sched_yield futex fdatasync pwritev write | sed 's/,$//')" \
      -p "$sluice_pid" -o "$tmp/syscalls.csv" >/dev/null 2>&1 &
    stat_pid=$!; owned+=("$stat_pid")
  fi
  cpu0="$(cpu_seconds "$sluice_pid")"
  t0="$(date +%s.%N)"
  if ! inject "$smtp_port" "$tmp"; then
    tail -20 "$tmp/sluice.log" >&2
    die "injection failed in round $r (see $tmp)"
  fi
  t1="$(date +%s.%N)"

  # Wait for N deliveries. Also give up early if Sluice dies or starts deferring/failing.
  wait_for_deliveries "$tmp/sluice.log" "$sluice_pid" "$(( WARM + N ))" "$TIMEOUT" "round $r"
  t_end="$(epoch_of "$(grep -m "$(( WARM + N ))" ': success: ' "$tmp/sluice.log" | tail -1 | cut -d' ' -f1)")"
  local cpu_s; cpu_s="$(awk -v a="$cpu0" -v b="$(cpu_seconds "$sluice_pid")" 'BEGIN{printf "%.2f", b-a}')"
  if [ -n "$stat_pid" ]; then
    kill -INT "$stat_pid"; wait "$stat_pid" || true
    echo "relay.sh: round $r syscalls per message: $(awk -F, -v n="$N" '/sys_enter_/ { sub(/.*sys_enter_/, "", $3); printf "%s %.2f  ", $3, $1 / n }' "$tmp/syscalls.csv")" >&2
  fi
  if [ -n "$perf_pid" ]; then
    kill -TERM "$perf_pid"; wait "$perf_pid" || true
    echo "relay.sh: perf samples in $tmp/perf.data (perf report -i FILE --no-children --sort dso,sym)" >&2
  fi
  if [ -n "$trace_pid" ]; then
    # SIGTERM: a background job ignores SIGINT; dotnet-trace stops cleanly on either.
    kill -TERM "$trace_pid"; wait "$trace_pid" || true
    echo "relay.sh: trace in $tmp/trace.speedscope.json (python3 bench/trace_top.py FILE)" >&2
  fi

  stop_sluice "$sluice_pid" "$tmp"
  kill -TERM "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true
  if [ -n "$pg_port" ]; then
    local x0 w0 x1 w1
    read -r x0 w0 <<<"$pg_before"
    read -r x1 w1 <<<"$(pg_counters "$pg_port")"
    pg_figures+=("round $r: $(awk -v n="$N" -v a="$x0" -v b="$x1" 'BEGIN{printf "%.2f", (b-a)/n}') database transactions (round trips) and $(awk -v n="$N" -v a="$w0" -v b="$w1" 'BEGIN{printf "%.0f", (b-a)/n}') WAL bytes per message")
    pg_stop "$tmp"; pg_running=()
  fi

  spool="$(grep -m1 ' spool: ' "$tmp/sluice.log" || true)"
  [[ "$spool" =~ spool:\ ([0-9]+)\ records\ in\ ([0-9]+)\ group\ commits\;\ ([0-9]+)\ fsyncs ]] \
    || die "no spool: line in Sluice's log (see $tmp)"

  # Sanity: exactly WARM + N deliveries and nothing alarming in the log.
  count="$(grep -c ': success: ' "$tmp/sluice.log" || true)"
  (( count == WARM + N )) || echo "relay.sh: WARNING: round $r logged $count successes for $(( WARM + N )) messages (warm-up and timed)" >&2
  if grep -qiE 'warning|error|exception|deferral|failure' "$tmp/sluice.log" || [ -s "$tmp/sluice.err" ]; then
    echo "relay.sh: WARNING: round $r: suspicious lines in Sluice's output:" >&2
    grep -iE 'warning|error|exception|deferral|failure' "$tmp/sluice.log" | head -10 >&2 || true
    head -10 "$tmp/sluice.err" >&2
    keep=1
  fi

  round_result="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') $(awk -v a="$t0" -v b="$t_end" 'BEGIN{printf "%.3f", b-a}') ${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]} $cpu_s"
  if [ "$keep" = 1 ]; then echo "relay.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# ---------------------------------------------------------------- main
# bench/compare sources this file for inject and run_round: it stops here then.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0
ensure_postfix_tools || die "no smtp-source"
mkdir -p "$WORKDIR"
# Build outside the timed part (the wrapper builds on first use or after a source change).
"$root/sluice" --help >/dev/null || die "sluice does not build"

command_line="N=$N SIZE=$SIZE SESSIONS=$SESSIONS ROUNDS=$ROUNDS DOMAINS=$DOMAINS QUEUES=$QUEUES STORE=$STORE$( (( WARM > 0 )) && echo " WARM=$WARM" || true) bench/relay.sh"
declare -a pg_figures=()
loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "relay.sh: $command_line  ($JOBS smtp-source jobs, $PROCS at a time, -s $SESSIONS_PER_PROC each)" >&2

fmt='| %6s | %8s | %10s | %8s | %11s | %8s | %7s | %11s | %10s | %11s |'
header=$(printf "$fmt" round inject_s accepted/s e2e_s delivered/s commits fsyncs commits/msg fsyncs/msg cpu_ms/msg)
rule="|-------:|---------:|-----------:|---------:|------------:|---------:|--------:|------------:|-----------:|------------:|"
rows=()
declare -a acc=() dlv=() cpm=() fpm=() cpu=()
for (( r = 1; r <= ROUNDS; r++ )); do
  round_result=""
  run_round "$r"
  read -r inj e2e records commits fsyncs cpu_s <<<"$round_result"
  [ -n "${cpu_s:-}" ] || die "round $r produced no figures"
  a=$(awk -v n="$N" -v t="$inj" 'BEGIN{printf "%.0f", n/t}')
  d=$(awk -v n="$N" -v t="$e2e" 'BEGIN{printf "%.0f", n/t}')
  c=$(awk -v n="$N" -v x="$commits" 'BEGIN{printf "%.3f", x/n}')
  f=$(awk -v n="$N" -v x="$fsyncs" 'BEGIN{printf "%.3f", x/n}')
  u=$(awk -v n="$N" -v x="$cpu_s" 'BEGIN{printf "%.3f", x*1000/n}')
  acc+=("$a"); dlv+=("$d"); cpm+=("$c"); fpm+=("$f"); cpu+=("$u")
  rows+=("$(printf "$fmt" "$r" "$inj" "$a" "$e2e" "$d" "$commits" "$fsyncs" "$c" "$f" "$u")")
  echo "relay.sh: round $r: $records spool records, $commits group commits, $fsyncs fsyncs" >&2
done
median_row=$(printf "$fmt" median "" \
  "$(printf '%s\n' "${acc[@]}" | median)" "" "$(printf '%s\n' "${dlv[@]}" | median)" "" "" \
  "$(printf '%s\n' "${cpm[@]}" | median)" "$(printf '%s\n' "${fpm[@]}" | median)" "$(printf '%s\n' "${cpu[@]}" | median)")

table="$(printf '%s\n' "$header" "$rule" "${rows[@]}" "$median_row")"
echo
echo "$table"

# ---------------------------------------------------------------- RESULTS.md
. "$here/results.sh"
results="$results_file"
{
  results_heading relay.sh "data dir on $(df -T "$WORKDIR" | awk 'NR==2{print $2" ("$1")"}')"
  echo "- command: \`$command_line\`"
  echo "- injection: $JOBS smtp-source jobs over $DOMAINS domains, $PROCS at a time with -s $SESSIONS_PER_PROC -d, $SIZE-byte bodies, one recipient per message"
  echo "- load average at start: $loadavg_start"
  [ -z "$NOTE" ] || echo "- note: $NOTE"
  [ "$STORE" = file ] || echo "- queue in PostgreSQL ($("$pg_bin/postgres" --version), private cluster on the same disk); commits and fsyncs below are Sluice's group commits, and:"
  for f in "${pg_figures[@]}"; do echo "  - $f"; done
  echo
  echo "$table"
} >>"$results"
echo >&2
echo "relay.sh: appended to $results" >&2
