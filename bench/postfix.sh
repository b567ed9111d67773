# Sourced by bench/compare: a private Postfix instance as the peer MTA (see
# /work/shared/peers/postfix.md for why each setting is there). Its own config, queue and data
# directories under one temp dir, smtpd on a free loopback port only, every domain relayed to the
# sink (or, for the local workload, bench.test delivered by virtual(8) into Maildirs), the queue
# durable as shipped (fsync before each 250), process limits tuned for throughput. No system
# instance is touched: every command names our config directory.

# Whether a private instance is running (its config dir), for the cleanup trap.
postfix_running=""
on_cleanup '[ -z "$postfix_running" ] || postfix_stop "$postfix_running"'

# postfix_start DIR SINK_PORT [MAILBOXES]: with MAILBOXES, u0..u(M-1)@bench.test are virtual(8)
# Maildirs under DIR/mail. Sets postfix_port.
postfix_start() {
  local dir="$1" sink="$2" mailboxes="${3:-}" i deadline
  # The daemons run as the postfix user and must reach the queue under DIR.
  chmod 755 "$dir"
  mkdir -p "$dir/etc" "$dir/spool" "$dir/data"; chown postfix "$dir/data"
  postfix_port="$(free_port "$sink")" || { echo "bench: no free port" >&2; return 1; }
  cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
myhostname = bench.postfix.test
# No syslog socket here: postlogd writes the log file.
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:$sink
smtp_dns_support_level = disabled
biff = no
# Throughput: enough processes for 20 sessions in and out; 20 to the sink beat 100 and 200 on 2 cores.
default_process_limit = 200
smtp_destination_concurrency_limit = 20
EOF
  if [ -n "$mailboxes" ]; then
    mkdir -p "$dir/mail"; chown nobody:nogroup "$dir/mail"
    for (( i = 0; i < mailboxes; i++ )); do echo "u$i@bench.test u$i/"; done >"$dir/etc/vmailbox"
    cat >>"$dir/etc/main.cf" <<EOF
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = texthash:$dir/etc/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
EOF
  fi
  # master.cf as Debian ships it, but smtpd on our loopback port only and nothing chrooted (the
  # chroot would need copies of /etc files in the queue directory).
  awk -v listen="127.0.0.1:$postfix_port" '
    /^[^#[:space:]]/ && NF >= 8 { if ($1 == "smtp" && $2 == "inet") $1 = listen; $5 = "n" }
    { print }' /etc/postfix/master.cf >"$dir/etc/master.cf"
  # postfix and postfix check print their reasons only to a terminal: give them one.
  if ! script -qec "postfix -c '$dir/etc' start" /dev/null >"$dir/postfix-start.out" 2>&1; then
    cat "$dir/postfix-start.out" >&2; echo "bench: postfix did not start (see $dir)" >&2; return 1
  fi
  postfix_running="$dir/etc"
  deadline=$(( SECONDS + 30 ))
  until [ -n "$(ss -Htln "sport = :$postfix_port")" ]; do
    (( SECONDS < deadline )) || { echo "bench: postfix not listening on $postfix_port (see $dir)" >&2; return 1; }
    sleep 0.1
  done
}

# postfix_stop CONFIG_DIR: stops the instance and waits for its master to exit.
postfix_stop() {
  local pid_file pid i
  pid_file="$(postconf -c "$1" -h queue_directory)/pid/master.pid"
  pid="$(tr -d ' ' <"$pid_file" 2>/dev/null || true)"
  postfix -c "$1" stop >/dev/null 2>&1 || true
  for (( i = 0; i < 300; i++ )); do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  postfix_running=""
}

# Waits (at most $3 s) until DIR/maillog holds $2 "status=sent" lines, then prints the epoch time.
# postlogd stamps whole seconds only, so we follow the log as it grows (tail -F wakes on inotify)
# rather than read the N-th line's stamp. Fails on timeout.
postfix_await_sent() {
  local dir="$1" n="$2" limit="$3" got fd tail_pid t
  exec {fd}< <(exec tail -n +1 -F "$dir/maillog" 2>/dev/null)
  tail_pid=$!; owned+=("$tail_pid")
  got="$(timeout "$limit" grep -m "$n" -c ' status=sent ' <&"$fd" || true)"
  t="$(date +%s.%N)"
  exec {fd}<&-; kill "$tail_pid" 2>/dev/null || true
  [ "${got:-0}" -ge "$n" ] || return 1
  echo "$t"
}
