# shellcheck shell=bash
# Shared by sol-backup, sol-audit and sol-restore (sourced, not run): finding the tools,
# the key, URLs, timing and the report lines.

sol_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The tools: on PATH first; else beside the scripts (an install), else a build of this
# repository.
if ! command -v sol-tar >/dev/null 2>&1; then
  for d in "$sol_here" "$sol_here/../target/release" "$sol_here/../target/debug"; do
    if [ -x "$d/sol-tar" ]; then PATH="$d:$PATH"; break; fi
  done
fi
export PATH

sol_usage_error() { echo "$PROG: $*" >&2; echo "Try '$PROG --help'." >&2; exit 2; }

sol_need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || { echo "$PROG: '$t' not found on PATH or beside $0" >&2; exit 1; }
  done
}

# s3://BUCKET/PREFIX -> PREFIX without a trailing slash (BUCKET checked by the tools).
sol_check_url() {
  case $1 in
    s3://?*) ;;
    *) sol_usage_error "'$1': expected s3://BUCKET/PREFIX" ;;
  esac
}
sol_trim_slash() { local u=$1; while [ "${u%/}" != "$u" ]; do u=${u%/}; done; printf '%s' "$u"; }

sol_key_file() { # from -k or SOL_KEY_FILE
  local k=${1:-${SOL_KEY_FILE:-}}
  [ -n "$k" ] || sol_usage_error "a key file is required: -k KEYFILE or SOL_KEY_FILE"
  [ -r "$k" ] || { echo "$PROG: key file '$k': cannot read it" >&2; exit 1; }
  printf '%s' "$k"
}

sol_now() { date +%s.%N; }
sol_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
sol_mb() { awk -v n="$1" 'BEGIN { printf "%.1f MB", n / 1000000 }'; }
sol_rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.1f MB/s", n / 1000000 / s }'; }

# One report line: SOL STATUS IN OUT RATE DURATION (written by a job to its result file).
sol_result() { # file sol status bytes-in bytes-out secs code
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" "$6" "$7" > "$1"
}

# Print the per-sol lines and a summary; return the worst status (3 beats 1 beats 0).
sol_report() { # title results-dir
  local title=$1 dir=$2 worst=0 n=0 ok=0 bad=0 skipped=0 tin=0 tout=0
  local sol status bin bout secs code
  printf '%s\n' "$title"
  printf '%-16s %-9s %12s %12s %12s %8s\n' SOL STATUS IN OUT RATE TIME
  for f in "$dir"/*; do
    [ -e "$f" ] || continue
    IFS=$'\t' read -r sol status bin bout secs code < "$f"
    n=$((n + 1))
    case $status in
      ok) ok=$((ok + 1)) ;;
      skipped) skipped=$((skipped + 1)) ;;
      *) bad=$((bad + 1)) ;;
    esac
    tin=$((tin + bin)); tout=$((tout + bout))
    if [ "$code" = 3 ]; then worst=3; elif [ "$code" != 0 ] && [ "$worst" = 0 ]; then worst=1; fi
    printf '%-16s %-9s %12s %12s %12s %7ss\n' "$sol" "$status" "$(sol_mb "$bin")" "$(sol_mb "$bout")" \
      "$(sol_rate "$bin" "$secs")" "$secs"
  done
  printf 'summary: %d sols: %d ok, %d skipped, %d failed; %s in, %s out\n' \
    "$n" "$ok" "$skipped" "$bad" "$(sol_mb "$tin")" "$(sol_mb "$tout")"
  return "$worst"
}

# Run jobs with at most N at once: sol_throttle N before starting each background job.
sol_throttle() {
  while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do wait -n || true; done
}
