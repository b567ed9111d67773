# Sourced by the bench scripts: the heading and the machine and commit lines that open every
# RESULTS.md section, so each says alike what was measured, where and on which code.
# Usage: results_heading SCRIPT [EXTRA-MACHINE-TEXT]   (prints to stdout; the caller appends)
results_file="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/RESULTS.md"
[ -f "$results_file" ] || printf '# Benchmark results\n\nAppended by the scripts in this directory, newest last. See README.md for what each figure means.\n' >"$results_file"

results_heading() {
  local root commit
  root="$(cd "$(dirname "$results_file")/.." && pwd)"
  commit="$(git -C "$root" rev-parse --short HEAD)"
  git -C "$root" diff --quiet HEAD -- src 2>/dev/null || commit="$commit (with uncommitted changes under src/)"
  echo
  echo "## $1, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB RAM, Linux $(uname -r)${2:+; $2}"
  echo "- commit: $commit"
}
