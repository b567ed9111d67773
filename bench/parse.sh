#!/usr/bin/env bash
# Parse-throughput micro-benchmark: whole SMTP sessions over in-memory pipes (no socket, no spool),
# timed by BenchmarkDotNet with its MemoryDiagnoser, ROUNDS times. See README.md. Appends to RESULTS.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
project="$here/Sluice.Bench"

JOB="${JOB:-short}"                     # BenchmarkDotNet job: short (3 warm-ups, 3 iterations), medium, long
ROUNDS="${ROUNDS:-3}"                   # separate BenchmarkDotNet runs; the summary takes the median
FILTER="${FILTER:-*Session*}"           # which benchmarks (SessionParseBenchmark, SessionReuseBenchmark)
NOTE="${NOTE:-}"
# Anything after the script's name goes to BenchmarkDotNet as is, e.g. --inProcess.

die() { echo "parse.sh: $*" >&2; exit 1; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive whole number (got '$ROUNDS')"

out="$here/out/parse"
rm -rf "$out"
mkdir -p "$out"
echo "parse.sh: building $project (Release)" >&2
dotnet build "$project/Sluice.Bench.csproj" -c Release --nologo -v quiet -clp:ErrorsOnly >"$out/build.log" 2>&1 \
  || { cat "$out/build.log" >&2; die "build failed"; }

# One line per benchmark case from BenchmarkDotNet's GitHub-markdown reports:
# "case median_seconds allocated", e.g. "Session/Recipients=10 4.5e-05 26.95KB".
rows_of() {
  local report
  for report in "$1"/results/*-report-github.md; do
    grep '^|' "$report" | sed 's/\*\*//g' | awk -F'|' '
      NR == 1 { for (i = 2; i < NF; i++) { h = $i; gsub(/ /, "", h); col[h] = i } next }
      /^\|[-: |]+\|$/ { next }
      {
        name = $col["Method"]; gsub(/ /, "", name)
        if ("Recipients" in col) { r = $col["Recipients"]; gsub(/ /, "", r); name = name "/Recipients=" r }
        m = $col["Median"]; gsub(/[ ,]/, "", m); v = m + 0
        if (m == "NA" || v <= 0) { print name " NA NA"; next }
        if (m ~ /ns$/) s = v / 1e9; else if (m ~ /(μs|us)$/) s = v / 1e6; else if (m ~ /ms$/) s = v / 1e3; else s = v
        a = $col["Allocated"]; gsub(/ /, "", a)
        printf "%s %.9g %s\n", name, s, a
      }'
  done
}

loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
reports=()
for (( r = 1; r <= ROUNDS; r++ )); do
  echo "parse.sh: round $r of $ROUNDS" >&2
  ( cd "$project" && dotnet "bin/Release/net10.0/Sluice.Bench.dll" --filter "$FILTER" --job "$JOB" \
      --artifacts "$out/round$r" "$@" ) >"$out/round$r.log" 2>&1 || { tail -30 "$out/round$r.log" >&2; die "round $r failed"; }
  ls "$out/round$r"/results/*-report-github.md >/dev/null 2>&1 || die "round $r wrote no report (see $out/round$r.log)"
  rows_of "$out/round$r" | sed "s/^/$r /" >>"$out/rows"
  reports+=("$(for f in "$out/round$r"/results/*-report-github.md; do grep '^|' "$f" | sed 's/\*\*//g'; echo; done)")
done
grep -q . "$out/rows" || die "no benchmark figures in the reports"
! grep ' NA ' "$out/rows" || die "a benchmark failed (NA; see $out)"

# Per case: median over the rounds of BenchmarkDotNet's median time, as messages per second.
summary="$(awk '{ print $2 }' "$out/rows" | awk '!seen[$0]++' | while read -r case; do
  per_round="$(awk -v c="$case" '$2 == c { printf "%.0f ", 1 / $3 }' "$out/rows")"
  med="$(printf '%s\n' $per_round | sort -g | awk '{v[NR]=$1} END{ if (NR%2) m = v[(NR+1)/2]; else m = (v[NR/2]+v[NR/2+1])/2; printf "%.0f\n", m }')"
  alloc="$(awk -v c="$case" '$2 == c { a = $4 } END { print a }' "$out/rows")"
  printf '| %-32s | %11s | %-22s | %17s |\n' "$case" "$med" "$per_round" "$alloc"
done)"
table="$(printf '| %-32s | %11s | %-22s | %17s |\n' case "messages/s" "per round" "allocated/message"
         echo "|----------------------------------|------------:|------------------------|------------------:|"
         echo "$summary")"
echo
echo "$table"

. "$here/results.sh"
results="$results_file"
{
  results_heading parse.sh
  echo "- command: \`JOB=$JOB ROUNDS=$ROUNDS bench/parse.sh${*:+ $*}\`"
  echo "- Session/Recipients=n: a new session per message (greeting, EHLO, MAIL, RCPT × n, DATA with a 4 KiB body, QUIT);"
  echo "  TenMessagesPerSession: ten one-recipient messages in one session, figures per message. In-memory pipes, an acceptor that returns at once."
  echo "- messages/s: median over the rounds of BenchmarkDotNet's median; allocated/message: MemoryDiagnoser (managed only)"
  echo "- load average at start: $loadavg_start"
  [ -z "$NOTE" ] || echo "- note: $NOTE"
  echo
  echo "$table"
  echo
  echo "<details><summary>BenchmarkDotNet's tables, round $ROUNDS</summary>"
  echo
  echo "${reports[-1]}"
  echo
  echo "</details>"
} >>"$results"
echo >&2
echo "parse.sh: appended to $results" >&2
