#!/usr/bin/env bash
# Scheduler pick cost per delivery and memory per queued recipient, with a million recipients
# queued and a delivery agent that succeeds at once (console mode of bench/Sluice.Bench, not
# BenchmarkDotNet: see README.md). Appends to RESULTS.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$here/Sluice.Bench"

MESSAGES="${MESSAGES:-100000}"          # messages in the spool
RCPTS="${RCPTS:-10}"                    # recipients per message, each in a different domain (one job each)
DOMAINS="${DOMAINS:-1000}"              # domains (= destinations) in all
WINDOWS="${WINDOWS:-3}"                 # timed windows after one warm-up window
WINDOW="${WINDOW:-20000}"               # deliveries per window
WORKDIR="${WORKDIR:-/var/tmp}"          # the spool's file system: a real disk, fsync is part of a delivery
KEEP="${KEEP:-}"
NOTE="${NOTE:-}"

die() { echo "scheduler.sh: $*" >&2; exit 1; }
for v in MESSAGES RCPTS DOMAINS WINDOWS WINDOW; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
done
(( (WINDOWS + 1) * WINDOW < MESSAGES * RCPTS )) || die "(WINDOWS + 1) × WINDOW must be below MESSAGES × RCPTS"

out="$here/out/scheduler"
rm -rf "$out"
mkdir -p "$out"
echo "scheduler.sh: building $project (Release)" >&2
dotnet build "$project/Sluice.Bench.csproj" -c Release --nologo -v quiet -clp:ErrorsOnly >"$out/build.log" 2>&1 \
  || { cat "$out/build.log" >&2; die "build failed"; }
dll="$project/bin/Release/net10.0/Sluice.Bench.dll"

tmp="$(mktemp -d "$WORKDIR/sluice-scheduler.XXXXXX")"
cleanup() { if [ -n "$KEEP" ]; then echo "scheduler.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "scheduler.sh: writing $MESSAGES × $RCPTS recipients to $tmp/spool" >&2
dotnet "$dll" scheduler-spool "$tmp/spool" "$MESSAGES" "$RCPTS" "$DOMAINS" >"$out/spool.log" 2>&1 || { cat "$out/spool.log" >&2; die "spool step failed"; }
echo "scheduler.sh: loading it into a scheduler and delivering $(( (WINDOWS + 1) * WINDOW ))" >&2
dotnet "$dll" scheduler "$tmp/spool" "$WINDOWS" "$WINDOW" >"$out/run.log" 2>&1 || { cat "$out/run.log" >&2; die "run failed"; }
grep -v '^kv ' "$out/spool.log" "$out/run.log" --no-filename >&2

kv() { awk -v k="$1" '$1 == "kv" && $2 == k { print $3 }' "$out/spool.log" "$out/run.log"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
queued="$(kv queued)"
[ "$queued" = "$(( MESSAGES * RCPTS ))" ] || die "expected $(( MESSAGES * RCPTS )) queued recipients, found '$queued'"
# Per window: deliveries/s, µs per delivery, bytes allocated per delivery; the median of each.
median() { sort -g | awk '{v[NR]=$1} END{ if (NR%2) m = v[(NR+1)/2]; else m = (v[NR/2]+v[NR/2+1])/2; print m }'; }
windows="$(awk '$1 == "kv" && $2 == "window" { print $3, $4, $5 }' "$out/run.log")"
[ "$(echo "$windows" | grep -c .)" = "$WINDOWS" ] || die "expected $WINDOWS timed windows (see $out/run.log)"
rate="$(echo "$windows" | awk '{print $1}' | median)"
us="$(echo "$windows" | awk '{print $2}' | median)"
alloc="$(echo "$windows" | awk '{print $3}' | median)"
per_window="$(echo "$windows" | awk '{printf "%s ", $1}')"

table1="$(printf '| %12s | %12s | %-24s | %19s |\n' "deliveries/s" "µs/delivery" "per window" "allocated/delivery"
          echo "|-------------:|-------------:|--------------------------|--------------------:|"
          printf '| %12s | %12s | %-24s | %17s B |\n' "$rate" "$us" "$per_window" "$alloc")"
heap_delta=$(( $(kv heap_after) - $(kv heap_before) ))
rss_delta=$(( $(kv rss_after) - $(kv rss_before) ))
table2="$(printf '| %16s | %-22s | %-22s | %14s | %13s | %14s |\n' "queued rcpts" "managed heap MB" "RSS MB" "heap B/rcpt" "of it: spool" "RSS B/rcpt"
          echo "|-----------------:|------------------------|------------------------|---------------:|--------------:|---------------:|"
          printf '| %16s | %-22s | %-22s | %14.0f | %13.0f | %14.0f |\n' "$queued" \
            "$(mb "$(kv heap_before)") → $(mb "$(kv heap_after)") (+$(mb $heap_delta))" \
            "$(mb "$(kv rss_before)") → $(mb "$(kv rss_after)") (+$(mb $rss_delta))" \
            "$(kv heap_per_rcpt)" "$(awk -v h="$(kv heap_replay)" -v q="$queued" 'BEGIN{print h/q}')" "$(kv rss_per_rcpt)")"
echo
echo "$table1"
echo
echo "$table2"

. "$here/results.sh"
{
  results_heading scheduler.sh "spool on $(df --output=fstype "$WORKDIR" | tail -1) ($WORKDIR)"
  echo "- command: \`MESSAGES=$MESSAGES RCPTS=$RCPTS DOMAINS=$DOMAINS WINDOWS=$WINDOWS WINDOW=$WINDOW WORKDIR=$WORKDIR bench/scheduler.sh\`"
  echo "- $MESSAGES messages × $RCPTS recipients, each recipient of a message in another of $DOMAINS domains (so one job per recipient);"
  echo "  remote channel defaults (Concurrency 2000, DestinationConcurrency 20), a delivery agent that succeeds at once."
  echo "  Spool written in $(kv spool_s) s ($(printf '%.0f' "$(kv accepted_per_s)") messages/s), replayed in $(kv replay_s) s;"
  echo "  restart to first delivery $(kv restart_to_first_delivery_s) s; $(kv active) messages in the active tier (Queue.ActiveMessages), the rest waiting."
  echo "- pick cost: console mode (Stopwatch, GC.GetTotalAllocatedBytes), $WINDOWS windows of $WINDOW deliveries after a warm-up window;"
  echo "  a delivery = scheduler pick + throttle + delivery log + body read + outcome record (group-committed spool write). Medians over the windows."
  echo "- memory: GC.GetTotalMemory(true) and VmRSS after a warm-up queue, then after the spool is replayed and the active tier filled (deliveries held at a gate);"
  echo "  'of it: spool' is the part already there after the replay (a SpooledMessage per message: location and recipient states, no envelope),"
  echo "  the rest is the active tier (envelopes read back, jobs)."
  echo "- load average at start: $loadavg_start"
  [ -z "$NOTE" ] || echo "- note: $NOTE"
  echo
  echo "$table1"
  echo
  echo "$table2"
} >>"$results_file"
echo >&2
echo "scheduler.sh: appended to $results_file" >&2
