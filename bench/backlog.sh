# Sourced by bench/compare: the backlog workload (design.md §4) through the real servers. BACKLOG
# messages are queued over SMTP while delivery is held back, the MTA is stopped, then started again
# with delivery open; we time process start → the first delivery, take the peak RSS while the
# backlog drains and the time until all of it is delivered (DRAIN_TIMEOUT at most).
#
# Held back, honestly queued: Sluice's remote channel is paced to one message a minute per
# destination (DestinationRatePerMinute 1), so a few hundred of the BACKLOG go out during the
# injection and the rest wait in the spool as real queued mail; Postfix runs with
# `defer_transports = smtp`, its own way to keep mail queued, and is flushed (`postqueue -f`) at
# the restart. Needs relay.sh's inject and write_relay_config, postfix.sh, common.sh.

backlog_notes="Sluice held back by the remote channel's DestinationRatePerMinute 1 while queueing, restarted with the defaults; Postfix by defer_transports = smtp, restarted without it and flushed with postqueue -f"

# Follows LOG from its start in the background: appends "first EPOCH" to OUT at the first line
# matching PATTERN and "last EPOCH" at the COUNT-th (our clock, when grep reads the line: postlogd
# stamps whole seconds only). grep, not awk: Debian's mawk holds back a pipe's input in blocks.
# Sets follow_pids.
follow_count() {  # LOG PATTERN COUNT OUT
  local fd1 fd2
  follow_pids=(); : >"$4"
  exec {fd1}< <(exec tail -n +1 -F "$1" 2>/dev/null); follow_pids+=("$!")
  exec {fd2}< <(exec tail -n +1 -F "$1" 2>/dev/null); follow_pids+=("$!")
  { grep -q -m 1 -e "$2" && echo "first $(date +%s.%N)" >>"$4"; } <&"$fd1" &
  follow_pids+=("$!")
  { (( $(grep -c -m "$3" -e "$2") == $3 )) && echo "last $(date +%s.%N)" >>"$4"; } <&"$fd2" &
  follow_pids+=("$!"); owned+=("${follow_pids[@]}")
  exec {fd1}<&- {fd2}<&-
}

# await_drain OUT T0 RSS_CMD: polls once a second until OUT has its "last" line or DRAIN_TIMEOUT
# passes, keeping the largest value RSS_CMD prints (KiB) and failing if it fails (the MTA died).
# Sets run_result="first_s peak_rss_mib drain_s" (drain_s "-" if not drained in time).
await_drain() {
  local out="$1" t0="$2" rss_cmd="$3" peak=0 rss deadline=$(( SECONDS + DRAIN_TIMEOUT )) first last
  while :; do
    rss="$(eval "$rss_cmd")" || die "the MTA died while draining its backlog"
    (( rss > peak )) && peak="$rss"
    grep -q '^last ' "$out" && break
    (( SECONDS < deadline )) || { echo "compare: WARNING: backlog not drained within ${DRAIN_TIMEOUT}s" >&2; break; }
    sleep 1
  done
  first="$(awk '$1 == "first" { print $2 }' "$out")"
  last="$(awk '$1 == "last" { print $2 }' "$out")"
  [ -n "$first" ] || die "no delivery within ${DRAIN_TIMEOUT}s of the restart"
  kill "${follow_pids[@]}" 2>/dev/null || true
  run_result="$(awk -v a="$t0" -v b="$first" 'BEGIN{printf "%.2f", b-a}') $(( peak / 1024 )) $([ -n "$last" ] && awk -v a="$t0" -v b="$last" 'BEGIN{printf "%.0f", b-a}' || echo -)"
}

# Sluice's VmHWM (KiB): its peak since the restart, not just what a once-a-second sample saw.
sluice_hwm() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }

sluice_backlog_run() {
  local tmp sink_port sink_pid smtp_port t0 before queued
  tmp="$(mktemp -d "$WORKDIR/sluice-backlog.XXXXXX")"
  echo "compare: sluice backlog in $tmp: queueing $BACKLOG messages" >&2
  start_smtp_sink "$tmp" || die "smtp-sink did not start (see $tmp)"
  smtp_port="$(free_port "$sink_port")" || die "no free port"
  write_relay_config "$tmp" "$smtp_port" "$sink_port" "" \
    '[ { "Name": "local", "Transport": "maildir", "Domains": ["localhost"] }, { "Name": "remote", "Transport": "smtp", "Concurrency": 2000, "DestinationConcurrency": 20, "DestinationRatePerMinute": 1 } ]'
  start_sluice "$tmp" "$tmp/sluice.json" || die "sluice did not start (see $tmp)"
  N="$BACKLOG" SIZE="$BACKLOG_SIZE" inject "$sluice_port" "$tmp" || die "injection of the backlog into sluice failed (see $tmp)"
  stop_sluice "$sluice_pid" "$tmp"
  wait "$drain_pid" || true
  before="$(grep -c ': success: ' "$tmp/sluice.log" || true)"
  queued=$(( BACKLOG - before ))
  echo "compare: sluice: $before delivered while queueing, $queued queued; restarting" >&2
  mv "$tmp/sluice.log" "$tmp/sluice-queueing.log"; rm -f "$tmp/out"; : >"$tmp/sluice.log"

  write_relay_config "$tmp" "$smtp_port" "$sink_port"
  follow_count "$tmp/sluice.log" ': success: ' "$queued" "$tmp/drain"
  t0="$(date +%s.%N)"
  start_sluice "$tmp" "$tmp/sluice.json" || die "sluice did not restart (see $tmp)"
  await_drain "$tmp/drain" "$t0" "sluice_hwm $sluice_pid"
  stop_sluice "$sluice_pid" "$tmp"
  wait "$drain_pid" || true
  kill -TERM "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true
  if grep -qE ': (deferral|failure): ' "$tmp/sluice-queueing.log" "$tmp/sluice.log"; then die "sluice deferred or failed mail (see $tmp)"; fi
  backlog_notes+="; Sluice delivered $before while queueing, $queued queued at the restart"
  echo "compare: sluice backlog: first delivery, peak RSS MiB, drained: $run_result" >&2
  if [ "$KEEP" = 1 ]; then echo "compare: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# The memory (KiB) of a Postfix instance: the PSS of its master and every process under it (qmgr
# holds the queue), so pages the processes share are counted once, not once per process.
postfix_rss() {
  local master p
  master="$(tr -d ' ' <"$1/spool/pid/master.pid")" && kill -0 "$master" 2>/dev/null || return 1
  for p in $master $(ps -o pid= --ppid "$master"); do cat "/proc/$p/smaps_rollup" 2>/dev/null || true; done \
    | awk '/^Pss:/ { s += $2 } END { print s + 0 }'
}

postfix_backlog_run() {
  local tmp sink_port sink_pid t0
  tmp="$(mktemp -d "$WORKDIR/postfix-backlog.XXXXXX")"
  echo "compare: postfix backlog in $tmp: queueing $BACKLOG messages" >&2
  start_smtp_sink "$tmp" || die "smtp-sink did not start (see $tmp)"
  postfix_start "$tmp" "$sink_port" || die "postfix did not start (see $tmp)"
  postconf -c "$tmp/etc" -e 'defer_transports = smtp'
  postfix -c "$tmp/etc" reload >/dev/null 2>&1 || die "postfix did not reload (see $tmp)"
  N="$BACKLOG" SIZE="$BACKLOG_SIZE" inject "$postfix_port" "$tmp" || die "injection of the backlog into postfix failed (see $tmp)"
  postfix_stop "$tmp/etc"
  ! grep -q ' status=sent ' "$tmp/maillog" || die "postfix delivered while its transport was deferred (see $tmp)"
  echo "compare: postfix: $BACKLOG queued; restarting" >&2

  postconf -c "$tmp/etc" -X defer_transports
  follow_count "$tmp/maillog" ' status=sent ' "$BACKLOG" "$tmp/drain"
  t0="$(date +%s.%N)"
  script -qec "postfix -c '$tmp/etc' start" /dev/null >"$tmp/postfix-restart.out" 2>&1 || die "postfix did not restart (see $tmp)"
  postfix_running="$tmp/etc"
  postqueue -c "$tmp/etc" -f || die "postqueue -f failed (see $tmp)"
  await_drain "$tmp/drain" "$t0" "postfix_rss $tmp"
  postfix_stop "$tmp/etc"
  kill -TERM "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true
  if grep -q ' status=bounced' "$tmp/maillog"; then die "postfix bounced mail (see $tmp)"; fi
  echo "compare: postfix backlog: first delivery, peak RSS MiB, drained: $run_result" >&2
  if [ "$KEEP" = 1 ]; then echo "compare: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
