# Sourced by the bench scripts that run `sluice serve`: the processes they own and their cleanup,
# an environment without Sluice overrides, and small helpers. Only PIDs in `owned` are ever
# signalled: the machine may run other sluice/postfix processes.
# bench/compare sources several scripts that each source this file: set up once.
[ -z "${bench_common_loaded:-}" ] || return 0
bench_common_loaded=1

# `on_cleanup CMD…` registers a command run first (e.g. stopping a daemon that forks away from us).
declare -a owned=() cleanup_cmds=()
on_cleanup() { cleanup_cmds+=("$*"); }
cleanup() {
  local p c
  for c in "${cleanup_cmds[@]}"; do eval "$c" || true; done
  for p in "${owned[@]}"; do kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${owned[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sluice reads SLUICE__* and QUEUE_* from the environment on top of the file; a benchmark must run
# with exactly its own config, so `env "${clean_env[@]}" sluice …` strips them.
clean_env=()
while IFS= read -r v; do clean_env+=(-u "$v"); done \
  < <(compgen -e | grep -iE '^(SLUICE__.*|QUEUE_(BASE|START|COUNT|MAX|LOAD))$' || true)

# A loopback TCP port no socket uses (other than $1), below the ephemeral range, so an outgoing
# connection cannot take it between our check and the bind. Racy in principle; callers check the
# listener came up.
free_port() {
  local p _ lo
  lo="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)"
  for _ in $(seq 100); do
    p=$(( 10000 + RANDOM % (lo > 11000 ? lo - 10000 : 1000) ))
    [ "$p" != "${1:-}" ] || continue
    [ -z "$(ss -Htan "sport = :$p")" ] && { echo "$p"; return 0; }
  done
  return 1
}

# User+system CPU seconds process $1 has used so far (/proc/PID/stat fields 14 and 15, in clock ticks).
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
median() { sort -g | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }

# Starts `sluice serve --config $2` in directory $1, waits (up to STARTUP_TIMEOUT s, default 180; it
# may rebuild first) until it listens on 127.0.0.1, and sets sluice_pid and sluice_port. Its stdout
# comes through a FIFO so that we block on its lines instead of polling; the rest goes on to
# $1/sluice.log, copied by drain_pid (which ends when Sluice does).
start_sluice() {
  local dir="$1" config="$2" line deadline
  sluice_port=""
  mkfifo "$dir/out"
  ( cd "$dir" && exec env "${clean_env[@]}" "$root/sluice" serve --config "$config" >"$dir/out" 2>"$dir/sluice.err" ) &
  sluice_pid=$!; owned+=("$sluice_pid")
  exec 5<"$dir/out"
  deadline=$(( SECONDS + ${STARTUP_TIMEOUT:-180} ))
  while (( SECONDS < deadline )) && IFS= read -r -t $(( deadline - SECONDS )) -u 5 line; do
    echo "$line" >>"$dir/sluice.log"
    [[ "$line" =~ smtp:\ listening\ on\ 127\.0\.0\.1:([0-9]+) ]] && { sluice_port="${BASH_REMATCH[1]}"; break; }
  done
  [ -n "$sluice_port" ] || { cat "$dir/sluice.log" "$dir/sluice.err" >&2; echo "sluice not listening (see $dir)" >&2; return 1; }
  cat <&5 >>"$dir/sluice.log" &
  drain_pid=$!; owned+=("$drain_pid")
  exec 5<&-
}

# stop_sluice PID DIR: SIGTERM, then waits (60 s at most) for a clean exit; dies otherwise.
stop_sluice() {
  local i
  kill -TERM "$1"
  for (( i = 0; i < 600; i++ )); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && die "sluice did not stop within 60s of SIGTERM (see $2)"
  wait "$1" || die "sluice exited with status $? (see $2)"
}

# Builds bench/Sluice.Bench (Release) and sets bench_dll, for its console modes.
build_bench() {
  local project; project="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/Sluice.Bench"
  dotnet build "$project/Sluice.Bench.csproj" -c Release --nologo -v quiet -clp:ErrorsOnly >&2 || return 1
  bench_dll="$project/bin/Release/net10.0/Sluice.Bench.dll"
}

# smtp-source/smtp-sink ship with Postfix. We want only the two binaries, not a running MTA:
# "No configuration" leaves main.cf absent so the package cannot start an instance, and if the
# install did start one anyway we stop it (and only then).
ensure_postfix_tools() {
  [ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/smtp-sink ] && return 0
  echo "bench: installing postfix for smtp-source/smtp-sink (no system instance)" >&2
  local before after
  before="$(pgrep -x master || true)"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y postfix >/dev/null; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y postfix >/dev/null
  fi
  after="$(pgrep -x master || true)"
  if [ -n "$after" ] && [ "$after" != "$before" ]; then
    echo "bench: the postfix install started a system instance; stopping it" >&2
    postfix stop || true
  fi
  [ -x /usr/sbin/smtp-source ] || { echo "bench: smtp-source still missing after installing postfix" >&2; return 1; }
}

# Starts smtp-sink on a free loopback port, logging to $1/sink.log; sets sink_pid and sink_port.
# It refuses to run as root without -u; 1000 is the listen backlog.
start_smtp_sink() {
  local dir="$1" i
  sink_port="$(free_port)" || { echo "bench: no free port" >&2; return 1; }
  /usr/sbin/smtp-sink -u nobody "127.0.0.1:$sink_port" 1000 >"$dir/sink.log" 2>&1 &
  sink_pid=$!; owned+=("$sink_pid")
  for (( i = 0; i < 50; i++ )); do
    [ -n "$(ss -Htln "sport = :$sink_port")" ] && return 0
    kill -0 "$sink_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/sink.log" >&2; echo "bench: smtp-sink did not start" >&2; return 1
}

# wait_for_deliveries LOG PID N TIMEOUT WHAT [EXPECTED]: waits until Sluice's LOG has N successful deliveries;
# gives up (die) early when the server PID is gone, when a delivery is deferred or fails, or after
# TIMEOUT seconds. WHAT names the round in the messages; deferrals that contain EXPECTED are not trouble.
wait_for_deliveries() {
  local log="$1" pid="$2" n="$3" timeout="$4" what="$5" expected="${6:-}" count trouble
  local deadline=$(( SECONDS + timeout )) dir; dir="$(dirname "$log")"
  while :; do
    count="$(grep -c ': success: ' "$log" || true)"
    (( count >= n )) && return 0
    kill -0 "$pid" 2>/dev/null || { tail -20 "$log" "$dir/sluice.err" >&2; die "sluice died in $what (see $dir)"; }
    trouble="$(grep -E ': (deferral|failure): ' "$log" | { if [ -n "$expected" ]; then grep -vF -- "$expected"; else cat; fi; } | head -5 || true)"
    if [ -n "$trouble" ]; then
      echo "$trouble" >&2
      die "deliveries deferred or failed in $what ($count/$n delivered; see $dir)"
    fi
    (( SECONDS < deadline )) || { tail -20 "$log" >&2; die "only $count/$n delivered within ${timeout}s in $what (see $dir)"; }
    sleep 0.2
  done
}
