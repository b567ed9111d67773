#!/usr/bin/env bash
# Relay throughput with the queue in PostgreSQL for 1, 2 and 3 nodes on this one machine, beside the
# file spool, in the same run (issue 8). Per round: a private PostgreSQL in the round's temp dir (as
# relay.sh's STORE=postgres), one smtp-sink, K `sluice serve` nodes on the one database, and the
# relay injection (smtp-source over DOMAINS domains) split evenly over the nodes. Figures per setup:
# delivered/s end to end, Sluice CPU per message (all nodes), and what each message cost the
# database: transactions (round trips that committed) and WAL bytes. Appends to RESULTS.md.
#
# All nodes, the database, the injector and the sink share this machine's cores, so more nodes here
# cannot mean more throughput: the rows show what a node costs, not how a farm of machines scales.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SETUPS="${SETUPS:-file 1 2 3}"          # "file": one node on the file spool; K: K nodes on one PostgreSQL
QUEUES="${QUEUES:-2}"                   # Queue.Count of each node
DELIVERY="${DELIVERY:-}"                # each node's Delivery section (JSON), e.g. '{ "IdleTimeout": "2s" }'; none: defaults
. "$here/relay.sh"    # common.sh, inject, job_recipient, pg_start/pg_stop/pg_counters, epoch_of; its variables
die() { echo "cluster.sh: $*" >&2; exit 1; }
for s in $SETUPS; do [[ "$s" == file || "$s" =~ ^[1-9]$ ]] || die "SETUPS: '$s' is neither file nor a node count 1-9"; done
delivery_json="$DELIVERY"; [ -n "$delivery_json" ] || delivery_json='{}'
[[ "$QUEUES" =~ ^[1-9][0-9]*$ ]] || die "QUEUES must be a positive whole number (got '$QUEUES')"

# Successful deliveries in the nodes' logs ($@), and the time of the N-th (their own timestamps).
successes() { cat "$@" | grep -c ': success: ' || true; }
nth_success_epoch() { epoch_of "$(cat "${@:2}" | grep ': success: ' | cut -d' ' -f1 | sort | sed -n "$1p")"; }

# cluster_round SETUP R: sets round_result="e2e_s cpu_ms_per_msg xacts_per_msg wal_bytes_per_msg".
cluster_round() {
  local setup="$1" r="$2" tmp k nodes pg_port="" queue t0 t_end deadline cpu0=0 cpu1=0 pid
  tmp="$(mktemp -d "$WORKDIR/sluice-cluster.XXXXXX")"
  echo "cluster.sh: $setup, round $r in $tmp" >&2
  local sink_port sink_pid
  start_smtp_sink "$tmp" || die "smtp-sink did not start (see $tmp)"
  nodes=$([ "$setup" = file ] && echo 1 || echo "$setup")
  if [ "$setup" != file ]; then
    pg_port="$(free_port "$sink_port")" || die "no free port"
    pg_start "$tmp" "$pg_port"; pg_running=("$tmp")
  fi
  local -a pids=() ports=() logs=()
  for (( k = 1; k <= nodes; k++ )); do
    mkdir -p "$tmp/n$k"
    queue="{ \"Count\": $QUEUES }"
    [ -z "$pg_port" ] || queue="{ \"Count\": $QUEUES, \"Store\": \"postgres\", \"Node\": \"n$k\", \"ConnectionString\": \"Host=127.0.0.1;Port=$pg_port;Username=sluice;Database=postgres\" }"
    cat >"$tmp/n$k/sluice.json" <<JSON
{ "Hostname": "n$k.bench.sluice.test", "DataDir": "$tmp/n$k/var",
  "Smtp": { "Listen": ["127.0.0.1:0"], "RelayNetworks": ["127.0.0.0/8"], "LocalDomains": ["localhost"] },
  "Queue": $queue, "Delivery": ${delivery_json}, "Routes": { "*": "127.0.0.1:$sink_port" } }
JSON
    start_sluice "$tmp/n$k" "$tmp/n$k/sluice.json" || die "node n$k did not start (see $tmp)"
    pids+=("$sluice_pid"); ports+=("$sluice_port"); logs+=("$tmp/n$k/sluice.log")
  done

  local pg_before=""; [ -z "$pg_port" ] || pg_before="$(pg_counters "$pg_port")"
  for pid in "${pids[@]}"; do cpu0=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$pid")" 'BEGIN{print a+b}'); done
  t0="$(date +%s.%N)"
  # Each node gets its share of the messages and of the injecting processes, all at once.
  local -a injectors=()
  for (( k = 1; k <= nodes; k++ )); do
    ( N=$(( N / nodes + (k <= N % nodes ? 1 : 0) )); PROCS=$(( PROCS / nodes > 0 ? PROCS / nodes : 1 ))
      JOBS=$(( DOMAINS > PROCS ? DOMAINS : PROCS )); mkdir -p "$tmp/n$k/in"; inject "${ports[k-1]}" "$tmp/n$k/in" ) &
    injectors+=($!); owned+=($!)
  done
  for pid in "${injectors[@]}"; do wait "$pid" || die "injection failed in $setup round $r (see $tmp)"; done

  deadline=$(( SECONDS + TIMEOUT ))
  until (( $(successes "${logs[@]}") >= N )); do
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || die "a node died in $setup round $r (see $tmp)"; done
    if cat "${logs[@]}" | grep -qE ': (deferral|failure): '; then die "deliveries deferred or failed in $setup round $r (see $tmp)"; fi
    (( SECONDS < deadline )) || die "only $(successes "${logs[@]}")/$N delivered within ${TIMEOUT}s in $setup round $r (see $tmp)"
    sleep 0.2
  done
  t_end="$(nth_success_epoch "$N" "${logs[@]}")"
  for pid in "${pids[@]}"; do cpu1=$(awk -v a="$cpu1" -v b="$(cpu_seconds "$pid")" 'BEGIN{print a+b}'); done

  for pid in "${pids[@]}"; do kill -TERM "$pid"; done
  for pid in "${pids[@]}"; do wait "$pid" || die "a node exited with status $? (see $tmp)"; done
  kill -TERM "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true
  local xacts="-" wal="-" x0 w0 x1 w1
  if [ -n "$pg_port" ]; then
    read -r x0 w0 <<<"$pg_before"; read -r x1 w1 <<<"$(pg_counters "$pg_port")"
    xacts=$(awk -v n="$N" -v a="$x0" -v b="$x1" 'BEGIN{printf "%.2f", (b-a)/n}')
    wal=$(awk -v n="$N" -v a="$w0" -v b="$w1" 'BEGIN{printf "%.0f", (b-a)/n}')
    pg_stop "$tmp"; pg_running=()
  fi
  (( $(successes "${logs[@]}") == N )) || echo "cluster.sh: WARNING: $setup round $r logged $(successes "${logs[@]}") successes for $N messages" >&2
  round_result="$(awk -v a="$t0" -v b="$t_end" 'BEGIN{printf "%.3f", b-a}') $(awk -v n="$N" -v c="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}')" 'BEGIN{printf "%.3f", c*1000/n}') $xacts $wal"
  if [ "$KEEP" = 1 ]; then echo "cluster.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

ensure_postfix_tools || die "no smtp-source"
mkdir -p "$WORKDIR"
"$root/sluice" --help >/dev/null || die "sluice does not build"
command_line="N=$N SIZE=$SIZE SESSIONS=$SESSIONS ROUNDS=$ROUNDS DOMAINS=$DOMAINS QUEUES=$QUEUES SETUPS=\"$SETUPS\"${DELIVERY:+ DELIVERY='$DELIVERY'} bench/cluster.sh"
loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
fmt='| %-10s | %11s | %-23s | %10s | %12s | %13s |'
rows=()
# Rounds alternate the setups (file 1 2 3 file 1 2 3 ...), so a slow spell of the machine hits all alike.
declare -A dlv=() cpu=() xa=() wa=() runs=()
for (( r = 1; r <= ROUNDS; r++ )); do
  for s in $SETUPS; do
    round_result=""
    cluster_round "$s" "$r"
    read -r e2e c x w <<<"$round_result"
    dlv[$s]+="$(awk -v n="$N" -v t="$e2e" 'BEGIN{printf "%.0f", n/t}') "; cpu[$s]+="$c "; xa[$s]+="$x "; wa[$s]+="$w "
  done
done
med() { tr ' ' '\n' | grep -v '^$' | grep -v '^-$' | median; }  # median of a row's per-round figures
for s in $SETUPS; do
  name=$([ "$s" = file ] && echo "file spool" || echo "$s node$([ "$s" = 1 ] || echo s)")
  rows+=("$(printf "$fmt" "$name" "$(echo "${dlv[$s]}" | med)" "${dlv[$s]% }" "$(echo "${cpu[$s]}" | med)" \
    "$([ "$s" = file ] && echo - || echo "${xa[$s]}" | med)" "$([ "$s" = file ] && echo - || echo "${wa[$s]}" | med)")")
done
table="$(printf '%s\n' "$(printf "$fmt" setup delivered/s "per round" cpu_ms/msg "db xacts/msg" "WAL bytes/msg")" \
  "|------------|------------:|-------------------------|-----------:|-------------:|--------------:|" "${rows[@]}")"
echo; echo "$table"
. "$here/results.sh"
{
  results_heading cluster.sh "data dir and PostgreSQL on $(df -T "$WORKDIR" | awk 'NR==2{print $2" ("$1")"}'); PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'), fsync and synchronous_commit on"
  echo "- command: \`$command_line\`"
  echo "- each setup gets the same injection split evenly over its nodes ($SESSIONS sessions in all, or the nearest multiple of $SESSIONS_PER_PROC per node); medians of $ROUNDS alternated rounds; cpu is all nodes' user+system"
  echo "- everything (nodes, PostgreSQL, smtp-source, smtp-sink) shares this machine's $(nproc) cores: the rows are costs per message, not a farm's scaling"
  echo "- load average at start: $loadavg_start"
  [ -z "$NOTE" ] || echo "- note: $NOTE"
  echo
  echo "$table"
} >>"$results_file"
echo "cluster.sh: appended to $results_file" >&2
