#!/usr/bin/env bash
# Outbound fan-out benchmark: how many simultaneous outbound SMTP sessions `sluice serve` holds,
# whether any destination ever gets more than its limit, and what it costs in memory. See README.md.
#
# Per round, all on loopback, fresh everything:
#   - unbound on 127.0.0.1 serving DOMAINS domains dK.bench.test, each with one MX host
#     mx.dK.bench.test at its own address 127.1.x.y (so ephemeral ports never run short: every
#     destination is a different 4-tuple), real MX resolution by Sluice's resolver;
#   - bench/smtp_fanout_sink.py listening on each of those addresses at one port, holding the reply
#     to every final dot HOLD seconds and counting sessions open at once, overall and per address;
#   - `sluice serve` with every remote domain routed to a closed port (Routes "*") while N
#     one-recipient messages (recipient k to dK.bench.test, K = k mod DOMAINS + 1) are injected by
#     bench/local_inject.py: each is deferred, none delivered, so all N are left for the fan-out;
#   - then the config is rewritten without the route and with CONCURRENCY per queue, reloaded
#     (SIGHUP) and the queue flushed (SIGALRM): every message is due at once, and we wait for N
#     "success" lines.
# Everything else as embedded (Smtp.MaxConnections too): the open-files budget is shared both ways as shipped.
# WORKERS=N: remote delivery in N child processes (Delivery.Workers), each with its own open-files limit;
# unset (the default): no Workers key at all.
# Figures: the sink's peak sessions and per-destination peak, Sluice's peak RSS (VmHWM, the server's
# and its workers' added up), the time
# from the reload to the last success. Printed and appended to bench/RESULTS.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

N="${N:-20000}"                         # messages, one recipient each
DOMAINS="${DOMAINS:-2000}"              # destinations, N / DOMAINS messages each
HOLD="${HOLD:-5}"                       # seconds the sink holds each final-dot reply
CONCURRENCY="${CONCURRENCY:-5000}"      # remote Channels[].Concurrency per queue after the reload (× 4 queues)
DEST_CONCURRENCY="${DEST_CONCURRENCY:-20}"   # Channels[].DestinationConcurrency
INITIAL_DEST="${INITIAL_DEST:-10}"      # Channels[].InitialDestinationConcurrency (slow start's first window)
WORKERS="${WORKERS:-}"                  # Delivery.Workers: SMTP delivery in this many child processes (unset: no such key)
SESSIONS="${SESSIONS:-20}"              # injection sessions
SIZE="${SIZE:-2048}"                    # body bytes
ROUNDS="${ROUNDS:-3}"
TIMEOUT="${TIMEOUT:-300}"               # seconds for all deliveries after the reload
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-180}"
WORKDIR="${WORKDIR:-/var/tmp}"
NOTE="${NOTE:-}"
KEEP="${KEEP:-0}"

die() { echo "outbound.sh: $*" >&2; exit 1; }
for v in N DOMAINS HOLD CONCURRENCY DEST_CONCURRENCY INITIAL_DEST SESSIONS SIZE ROUNDS TIMEOUT STARTUP_TIMEOUT; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
done
[[ -z "$WORKERS" || "$WORKERS" =~ ^[0-9]+$ ]] || die "WORKERS must be a whole number or unset (got '$WORKERS')"
(( DOMAINS <= 250 * 250 )) || die "DOMAINS must be at most 62500 (addresses 127.1.0.1 .. 127.1.249.250)"
command -v python3 >/dev/null || die "needs python3"
[ -x /usr/sbin/unbound ] || die "needs unbound (apt-get install unbound; ./test.sh installs it)"
# The sink holds every session: it needs a descriptor for each. Children inherit the soft limit.
ulimit -Sn "$(ulimit -Hn)"

. "$here/common.sh"  # owned PIDs and their cleanup, clean_env, free_port, start_sluice, median

address_of() { echo "127.1.$(( $1 / 250 )).$(( $1 % 250 + 1 ))"; }

# unbound answering for bench.test from local data (as tests/Sluice.Testing/UnboundServer.cs does);
# sets dns_port.
start_unbound() {
  local dir="$1" i p _
  # Below the ephemeral range and free for UDP and TCP (unbound binds both): a fan-out's 20,000
  # connections can hold any port above it.
  for _ in $(seq 100); do
    p="$(free_port)" || return 1
    [ -z "$(ss -Huan "sport = :$p")" ] && break
  done
  dns_port="$p"
  {
    echo "server:"
    for line in "interface: 127.0.0.1" "port: $dns_port" "do-daemonize: no" 'chroot: ""' 'username: ""' "directory: \"$dir\"" \
      'pidfile: ""' "use-syslog: no" 'logfile: ""' "verbosity: 1" "num-threads: 1" 'module-config: "iterator"' \
      "do-not-query-localhost: no" "msg-cache-size: 16m" "rrset-cache-size: 16m" 'local-zone: "bench.test." static'; do
      echo "  $line"
    done
    for (( i = 1; i <= DOMAINS; i++ )); do
      echo "  local-data: 'd$i.bench.test. 3600 IN MX 10 mx.d$i.bench.test.'"
      echo "  local-data: 'mx.d$i.bench.test. 3600 IN A $(address_of "$i")'"
    done
    echo "remote-control:"
    echo "  control-enable: no"
  } >"$dir/unbound.conf"
  /usr/sbin/unbound -d -c "$dir/unbound.conf" >"$dir/unbound.log" 2>&1 &
  owned+=($!)
  for (( i = 0; i < 100; i++ )); do
    grep -q 'start of service' "$dir/unbound.log" && return 0
    sleep 0.1
  done
  cat "$dir/unbound.log" >&2
  return 1
}

# write_config FILE CONCURRENCY [PARK_PORT]: with PARK_PORT, all remote mail is routed there (nothing listens).
write_config() {
  local concurrency="$2" routes="{}" workers=""
  [ -z "$WORKERS" ] || workers=", \"Workers\": $WORKERS"
  [ -z "${3:-}" ] || routes="{ \"*\": \"127.0.0.1:$3\" }"
  cat >"$1" <<EOF
{ "Hostname": "bench.sluice.test", "DataDir": "$tmp/var",
  "Smtp": { "Listen": ["127.0.0.1:0"], "RelayNetworks": ["127.0.0.0/8"], "LocalDomains": ["localhost"] },
  "Queue": { "Count": 4 },
  "Channels": [ { "Name": "local", "Transport": "maildir", "Domains": ["localhost"], "Concurrency": 4 },
                { "Name": "remote", "Transport": "smtp", "Concurrency": $concurrency,
                  "DestinationConcurrency": $DEST_CONCURRENCY, "InitialDestinationConcurrency": $INITIAL_DEST } ],
  "Dns": { "Servers": ["127.0.0.1:$dns_port"], "Timeout": "30s" },
  "Delivery": { "Port": $sink_port$workers }, "Routes": $routes }
EOF
}

# ---------------------------------------------------------------- one round
# Sets round_result="peak per_destination_peak sessions hwm_kib delivered_s load" (load: 1-minute load average as the fan-out starts).
run_round() {
  local r="$1" keep="$KEEP" fanout_load tmp sluice_pid drain_pid sink_pid sink_port park_port dns_port line count deadline t0 t1 hwm summary i reloads p
  tmp="$(mktemp -d "$WORKDIR/sluice-outbound.XXXXXX")"
  echo "outbound.sh: round $r in $tmp" >&2
  for (( i = 1; i <= DOMAINS; i++ )); do address_of "$i"; done >"$tmp/addresses"
  start_unbound "$tmp" || die "unbound did not start (see $tmp)"

  sink_port="$(free_port)" || die "no free port"
  mkfifo "$tmp/sink.status"
  exec 6<>"$tmp/sink.status"
  python3 "$here/smtp_fanout_sink.py" --port "$sink_port" --addresses "$tmp/addresses" --hold "$HOLD" \
    --status "$tmp/sink.status" >"$tmp/sink.out" 2>"$tmp/sink.err" &
  sink_pid=$!; owned+=("$sink_pid")
  IFS= read -r -t 120 -u 6 line || { cat "$tmp/sink.err" >&2; die "the sink did not start (see $tmp)"; }
  exec 6<&-

  park_port="$(free_port "$sink_port")" || die "no free port"
  write_config "$tmp/sluice.json" 1 "$park_port"
  start_sluice "$tmp" "$tmp/sluice.json" || die "sluice did not start"
  python3 "$here/local_inject.py" --port "$sluice_port" --count "$N" --sessions "$SESSIONS" --mailboxes "$N" \
    --domain bench.test --domains "$DOMAINS" --size "$SIZE" 2>"$tmp/inject.err" || { cat "$tmp/inject.err" >&2; die "injection failed (see $tmp)"; }

  # Everything is queued and deferred: route to the MX hosts, open the remote channel up, and retry all at once.
  write_config "$tmp/sluice.json" "$CONCURRENCY"
  reloads="$(grep -c 'sighup: configuration reloaded' "$tmp/sluice.log" || true)"
  t0="$(date +%s.%N)"
  fanout_load="$(cut -d' ' -f1 /proc/loadavg)"
  kill -HUP "$sluice_pid"
  for (( i = 0; i < 100; i++ )); do
    (( $(grep -c 'sighup: configuration reloaded' "$tmp/sluice.log" || true) > reloads )) && break
    sleep 0.05
  done
  (( i < 100 )) || die "no reload line in Sluice's log (see $tmp)"
  kill -ALRM "$sluice_pid"
  # Deferrals naming the closed port are the injection's, some logged only now.
  wait_for_deliveries "$tmp/sluice.log" "$sluice_pid" "$N" "$TIMEOUT" "round $r" "127.0.0.1:$park_port"
  t1="$(date +%s.%N)"
  # Peak RSS of the server and of its delivery workers (its children), added up.
  hwm=0
  for p in "$sluice_pid" $(cat /proc/"$sluice_pid"/task/*/children); do
    hwm=$(( hwm + $(awk '/^VmHWM:/{print $2}' "/proc/$p/status") ))
  done

  kill -TERM "$sluice_pid"
  wait "$sluice_pid" || die "sluice exited with status $? (see $tmp)"
  wait "$drain_pid" || true
  kill -TERM "$sink_pid"
  wait "$sink_pid" || die "the sink exited with status $? (see $tmp)"
  summary="$(cat "$tmp/sink.out")"
  [[ "$summary" =~ sessions=([0-9]+)\ messages=([0-9]+)\ peak=([0-9]+)\ peak_per_destination=([0-9]+)\ busiest=([^ ]+)\ errors=([0-9]+) ]] \
    || die "no summary from the sink (see $tmp)"
  (( BASH_REMATCH[2] >= N )) || { echo "outbound.sh: WARNING: the sink got ${BASH_REMATCH[2]} of $N messages" >&2; keep=1; }
  (( BASH_REMATCH[6] == 0 )) || { echo "outbound.sh: WARNING: ${BASH_REMATCH[6]} sink sessions ended abnormally" >&2; keep=1; }
  sluice_limits="$(grep -m1 '^[^ ]* limits: ' "$tmp/sluice.log" | cut -d' ' -f2- || true)"
  round_result="${BASH_REMATCH[3]} ${BASH_REMATCH[4]} ${BASH_REMATCH[1]} $hwm $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') $fanout_load"
  if [ "$keep" = 1 ]; then echo "outbound.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# ---------------------------------------------------------------- main
mkdir -p "$WORKDIR"
"$root/sluice" --help >/dev/null || die "sluice does not build"
command_line="N=$N DOMAINS=$DOMAINS HOLD=$HOLD CONCURRENCY=$CONCURRENCY DEST_CONCURRENCY=$DEST_CONCURRENCY INITIAL_DEST=$INITIAL_DEST${WORKERS:+ WORKERS=$WORKERS} ROUNDS=$ROUNDS bench/outbound.sh"
loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "outbound.sh: $command_line" >&2
fmt='| %6s | %14s | %16s | %10s | %17s | %13s |'
header=$(printf "$fmt" round peak_sessions per_dest_peak sessions sluice_peak_RSS_MiB all_delivered_s)
rule="|-------:|---------------:|-----------------:|-----------:|------------------:|--------------:|"
rows=()
declare -a pk=() pd=() hw=() ds=() loads=()
sluice_limits=""
for (( r = 1; r <= ROUNDS; r++ )); do
  round_result=""
  run_round "$r"
  read -r peak per_dest sessions hwm secs load <<<"$round_result"
  pk+=("$peak"); pd+=("$per_dest"); hw+=("$hwm"); ds+=("$secs"); loads+=("$load")
  rows+=("$(printf "$fmt" "$r" "$peak" "$per_dest" "$sessions" "$(awk -v k="$hwm" 'BEGIN{printf "%.0f", k/1024}')" "$secs")")
  echo "outbound.sh: round $r: peak $peak sessions, per destination at most $per_dest (limit $DEST_CONCURRENCY), Sluice VmHWM $hwm KiB, all delivered in ${secs}s, load $load at the fan-out's start" >&2
done
rows+=("$(printf "$fmt" median "$(printf '%s\n' "${pk[@]}" | median)" "$(printf '%s\n' "${pd[@]}" | median)" "" \
  "$(printf '%s\n' "${hw[@]}" | median | awk '{printf "%.0f", $1/1024}')" "$(printf '%s\n' "${ds[@]}" | median)")")
table="$(printf '%s\n' "$header" "$rule" "${rows[@]}")"
echo
echo "$table"

. "$here/results.sh"
{
  results_heading outbound.sh "open files hard limit $(ulimit -Hn)"
  echo "- command: \`$command_line\`"
  echo "- destinations: $DOMAINS domains, MX from unbound on loopback, each MX at its own 127.1.x.y; sink bench/smtp_fanout_sink.py holds each final-dot reply ${HOLD}s"
  echo "- load average at start: $loadavg_start; 1-minute load as each round's fan-out starts: ${loads[*]}"
  [ -z "$sluice_limits" ] || echo "- Sluice said: \`$sluice_limits\`"
  [ -z "$NOTE" ] || echo "- note: $NOTE"
  echo
  echo "$table"
} >>"$results_file"
echo >&2
echo "outbound.sh: appended to $results_file" >&2
