# shellcheck shell=bash disable=SC2034 # variables set here are read by the scripts
# Shared by sol-backup, sol-audit and sol-restore (sourced, not run): finding the tools,
# the key, URLs, names, the per-sol jobs (one process group each, stopped together on INT
# or TERM), the causes of a failed pipeline, and the report.

sol_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The tools: on PATH first; else beside the scripts (an install), else a build of this
# repository.
if ! command -v sol-tar >/dev/null 2>&1; then
  for d in "$sol_here" "$sol_here/../target/release" "$sol_here/../target/debug"; do
    if [ -x "$d/sol-tar" ]; then PATH="$d:$PATH"; break; fi
  done
fi
export PATH
# When the run started (the report's header) and a clock in milliseconds without a fork.
sol_started=$(date -u +%FT%TZ)
sol_ms() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((t / 1000))"; }
sol_t0=$(sol_ms)

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

# Sol names. A name taken from a listing must match SOL_NAME_RE (documented in the man
# pages); anything else is reported and skipped, never used. A name the operator types (a
# SOLDIR's last component, a SOL operand) may hold spaces, quotes and globs but no slash,
# backslash or control character, and is not . or ..
SOL_NAME_RE='^[A-Za-z0-9][A-Za-z0-9._-]*$'
sol_listed_name_ok() { [[ $1 =~ $SOL_NAME_RE ]]; }
sol_operand_name_ok() {
  case $1 in ''|.|..|*/*|*\\*|*[[:cntrl:]]*) return 1 ;; esac
}

# What sol-crypt -d opens archives with: -k KEYFILE and/or -i IDENTITY, else SOL_KEY_FILE
# and/or SOL_IDENTITY_FILE. Sets the array sol_dec (sol-crypt options) and sol_dec_key (the
# key file, or empty), and unsets both
# variables, so sol-crypt uses exactly what is passed. Run it in the script's own shell.
sol_decrypt_args() { # keyfile identity
  local k=$1 i=$2
  if [ -z "$k" ] && [ -z "$i" ]; then k=${SOL_KEY_FILE:-} i=${SOL_IDENTITY_FILE:-}; fi
  [ -n "$k$i" ] || sol_usage_error "a key file or an identity is required: -k KEYFILE or -i IDENTITY (or SOL_KEY_FILE, SOL_IDENTITY_FILE)"
  unset SOL_KEY_FILE SOL_IDENTITY_FILE
  sol_dec=() sol_dec_key=$k
  if [ -n "$k" ]; then
    [ -r "$k" ] || { echo "$PROG: key file '$k': cannot read it" >&2; exit 1; }
    sol_dec+=(-k "$k")
  fi
  if [ -n "$i" ]; then
    [ -r "$i" ] || { echo "$PROG: identity file '$i': cannot read it" >&2; exit 1; }
    sol_dec+=(-i "$i")
  fi
}
# The same for sol-crypt -e: -R RECIPIENTS-FILE (public keys only: a write-only backup
# host) and/or -k KEYFILE, else SOL_KEY_FILE. Sets the array sol_enc.
sol_encrypt_args() { # keyfile recipients-file
  local k=$1 r=$2
  [ -n "$k$r" ] || k=${SOL_KEY_FILE:-}
  [ -n "$k$r" ] || sol_usage_error "a key file or recipients are required: -k KEYFILE (or SOL_KEY_FILE) or -R RECIPIENTS-FILE"
  unset SOL_KEY_FILE SOL_IDENTITY_FILE
  sol_enc=()
  if [ -n "$k" ]; then
    [ -r "$k" ] || { echo "$PROG: key file '$k': cannot read it" >&2; exit 1; }
    sol_enc+=(-k "$k")
  fi
  if [ -n "$r" ]; then
    [ -r "$r" ] || { echo "$PROG: recipients file '$r': cannot read it" >&2; exit 1; }
    sol_enc+=(-R "$r")
  fi
}
# Key files, identities and recipients files are checked once, before any work:
# sol-crypt's own verdict on each (unreadable, malformed, readable by group or others),
# one line, status 1.
sol_check_creds() { # workdir sol-crypt-options...
  local w=$1 prev="" a
  shift
  for a in "$@"; do
    case $prev in
      -k) sol_check_key "$a" "$w" ;;
      -i) if ! sol-crypt recipient -i "$a" > /dev/null 2> "$w/key.err"; then
            echo "$PROG: $(head -n 1 "$w/key.err")" >&2; exit 1
          fi ;;
      -R) if ! sol-crypt -e -R "$a" < /dev/null > /dev/null 2> "$w/key.err"; then
            echo "$PROG: $(head -n 1 "$w/key.err")" >&2; exit 1
          fi ;;
    esac
    prev=$a
  done
}

# The key is checked once, before any work: sol-crypt's own verdict on it (unreadable,
# malformed, readable by group or others), one line, status 1.
sol_check_key() { # keyfile workdir
  if ! sol-crypt -e -k "$1" < /dev/null > /dev/null 2> "$2/key.err"; then
    echo "$PROG: $(head -n 1 "$2/key.err")" >&2
    exit 1
  fi
}

# Bytes under a path (apparent size): always one number, 0 when du fails outright.
sol_bytes() {
  local out
  out=$(du -sb --apparent-size -- "$1" 2>/dev/null) || true
  out=${out%%[!0-9]*}
  printf '%s' "${out:-0}"
}

# The stage that caused a pipeline's failure, from its stages' statuses (upstream first):
# the first status that is neither 0 nor 141 (141 is a closed pipe: the follow-on of a
# failure downstream); else the first non-zero one. Sets sol_cause_i (stage index) and
# sol_cause_st (its status); sol_cause_i is empty when every stage succeeded.
sol_cause() {
  local i=0 s
  sol_cause_i="" sol_cause_st=0
  for s in "$@"; do
    if [ "$s" != 0 ] && [ "$s" != 141 ]; then sol_cause_i=$i sol_cause_st=$s; return; fi
    if [ "$s" != 0 ] && [ -z "$sol_cause_i" ]; then sol_cause_i=$i sol_cause_st=$s; fi
    i=$((i + 1))
  done
}
# A stage's status as the script's: 3 integrity, 130 interrupted, else 1.
sol_code_of() {
  case $1 in
    0) echo 0 ;;
    3) echo 3 ;;
    130|143|129) echo 130 ;;
    *) echo 1 ;;
  esac
}
# Show what the causing stage said (each line prefixed with the sol), or its status when
# it said nothing; the other stages' follow-on complaints are not shown.
sol_show_cause() { # sol errfile tool status
  if [ -s "$2" ]; then
    sed "s/^/$PROG: $(sol_sed_escape "$1"): /" "$2" >&2
  else
    echo "$PROG: $1: $3 exited with status $4" >&2
  fi
}
sol_sed_escape() { printf '%s' "$1" | sed 's/[\/&]/\\&/g'; }

# Warnings of a sol that succeeded (e.g. special files skipped) go into the report.
sol_warn() { # sol file...
  local sol=$1 f line
  shift
  for f in "$@"; do
    [ -s "$f" ] || continue
    while IFS= read -r line; do printf '%s: %s\n' "$sol" "$line"; done < "$f" >> "$sol_work/warnings"
  done
}

# --- times, sizes and what changed since a sol was stored ----------------------------
# RFC 3339 UTC as s3-ls prints it (YYYY-MM-DDTHH:MM:SSZ) -> seconds since the epoch into
# VAR, without a fork (thousands of keys a run). Returns 1 (VAR empty) on anything else.
sol_epoch() { # var rfc3339
  local y m d era yoe doy
  printf -v "$1" '%s' ""
  [[ $2 =~ ^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2}) ]] || return 1
  y=$((10#${BASH_REMATCH[1]})) m=$((10#${BASH_REMATCH[2]})) d=$((10#${BASH_REMATCH[3]}))
  [ "$m" -gt 2 ] || y=$((y - 1))
  era=$((y / 400)) # years before 0 never occur here
  yoe=$((y - era * 400))
  if [ "$m" -gt 2 ]; then doy=$(((153 * (m - 3) + 2) / 5 + d - 1)); else doy=$(((153 * (m + 9) + 2) / 5 + d - 1)); fi
  printf -v "$1" '%d' "$(((era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468) * 86400 \
    + 10#${BASH_REMATCH[4]} * 3600 + 10#${BASH_REMATCH[5]} * 60 + 10#${BASH_REMATCH[6]}))"
}
# Seconds since the epoch -> RFC 3339 UTC into VAR.
sol_utc() { local TZ=UTC; printf -v "$1" '%(%Y-%m-%dT%H:%M:%SZ)T' "$2"; }
# A duration (N, Ns, Nm, Nh or Nd) in seconds into VAR; returns 1 when it is not one.
sol_duration() { # var text
  local n=${2%[smhd]} u=1
  case $n in ''|*[!0-9]*) return 1 ;; esac
  case $2 in *m) u=60 ;; *h) u=3600 ;; *d) u=86400 ;; esac
  printf -v "$1" '%d' "$((10#$n * u))"
}
# A size (N, NK, NM, NG or NT, binary) in bytes into VAR; returns 1 when it is not one.
sol_size() { # var text
  local n=${2%[KMGTkmgt]} u=1
  case $n in ''|*[!0-9]*) return 1 ;; esac
  case $2 in *[Kk]) u=1024 ;; *[Mm]) u=1048576 ;; *[Gg]) u=1073741824 ;; *[Tt]) u=1099511627776 ;; esac
  printf -v "$1" '%d' "$((10#$n * u))"
}
# Has anything in DIR (DIR included) changed since an archive stored at EPOCH (the
# archive's Last-Modified, whole seconds)? Prints the change time (epoch seconds) of the
# first such entry, nothing when none. The inode change time (ctime) is compared, not the
# mtime: a file copied in with its old mtime kept (cp -p, rsync -a, tar x) or renamed in
# has an old mtime but a new ctime, and ctime cannot be set back by a program. A change
# in the same second as the archive's Last-Modified is not told apart from the archive
# (Last-Modified has whole seconds), see sol-audit(1).
sol_changed_after() { # dir epoch
  local c
  c=$(find "$1" -newerct "@$2.999999999" -printf '%C@\n' -quit 2> /dev/null) || true
  printf '%s' "${c%%.*}"
}
# The same for many sols at once (sol-audit's coverage): one find over them all, printing
# NAME<TAB>SECONDS, the newest inode change time of anything in each sol (whole seconds).
# NAMEs are sol names (no tab, newline or slash); a line that is not TIME<TAB>PATH (a path
# holding a newline) is skipped, and the maximum is kept, so a crafted path can at worst
# make a sol look changed, never unchanged.
sol_newest_ctimes() { # root name...
  local root=$1
  shift
  [ $# -gt 0 ] || return 0
  (cd -- "$root" && find "$@" -printf '%C@\t%p\n' 2> /dev/null) |
    awk -F '\t' '/^[0-9]+(\.[0-9]*)?\t/ { n = $2; sub(/\/.*/, "", n); t = int($1)
        if (!(n in m) || t > m[n]) m[n] = t }
      END { for (n in m) printf "%s\t%d\n", n, m[n] }' || true
}
# Keep the stored object URL as URL.replaced-<UTC time> (s3-mget | s3-mput, which never
# overwrites) before it is replaced: prints the kept URL; returns 1 with the first error
# line in ERRFILE when the copy failed (then URL is unchanged).
sol_keep_old() { # url errfile
  local keep
  local -a st
  keep="$1.replaced-$(date -u +%Y%m%dT%H%M%SZ)"
  set +e
  s3-mget -- "$1" 2> "$2" | s3-mput --require-complete -- "$keep" 2>> "$2"
  st=("${PIPESTATUS[@]}")
  set -e
  [ "${st[*]}" = "0 0" ] || return 1
  printf '%s' "$keep"
}

# --- jobs: one process group per sol, so INT or TERM stops every stage of every sol ----
declare -A sol_job_sol=() sol_job_row=()
sol_nrow=0
# Start FUNC ROWFILE SOL ARGS... in the background in a process group of its own.
sol_spawn() { # sol func args...
  local sol=$1 row
  shift
  sol_nrow=$((sol_nrow + 1))
  printf -v row '%s/rows/%06d' "$sol_work" "$sol_nrow"
  set -m
  sol_job "$@" "$row" &
  set +m
  sol_job_sol[$!]=$sol
  sol_job_row[$!]=$row
}
# A job: FUNC ARGS... with a watchdog that stops the job's process group within a second
# if the script itself dies without its trap (SIGKILL), so no orphan writes on.
sol_main_pid=$$
sol_job() {
  local pg=$BASHPID dog rc=0
  (while kill -0 "$sol_main_pid" 2> /dev/null; do sleep 1; done; kill -TERM -- "-$pg") \
    < /dev/null > /dev/null 2>&1 &
  dog=$!
  "$@" || rc=$?
  kill "$dog" 2> /dev/null || true
  return "$rc"
}
# A row that needs no job (skipped, refused).
sol_next_row() { sol_nrow=$((sol_nrow + 1)); printf -v sol_row_file '%s/rows/%06d' "$sol_work" "$sol_nrow"; }

# At most N jobs at once.
sol_throttle() {
  while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do wait -n || true; done
}

# One report row: SOL STATUS CODE MILLISECONDS C1 C2 C3 (the columns depend on the script).
sol_row() { # file sol status code ms c1 c2 c3
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" "${6:-0}" "${7:-0}" "${8:-0}" > "$1"
}

# INT or TERM: stop every sol's process group, wait until each group is gone (s3-mput
# aborts its upload on TERM), let the script clean up (sol_on_interrupt_hook SOL), mark
# the unfinished sols INTERRUPTED, print the report and exit 130.
sol_on_signal() {
  trap '' INT TERM
  echo "$PROG: interrupted; stopping every sol" >&2
  local pid deadline
  for pid in "${!sol_job_sol[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${!sol_job_sol[@]}"; do wait "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 60))
  for pid in "${!sol_job_sol[@]}"; do
    while kill -0 -- "-$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
      sleep 0.1
    done
  done
  for pid in "${!sol_job_sol[@]}"; do
    if declare -F sol_on_interrupt_hook >/dev/null; then sol_on_interrupt_hook "${sol_job_sol[$pid]}"; fi
    [ -s "${sol_job_row[$pid]}" ] || sol_row "${sol_job_row[$pid]}" "${sol_job_sol[$pid]}" INTERRUPTED 130 0
  done
  sol_print_report || true
  exit 130
}
sol_setup() { # work dir
  sol_work=$1
  mkdir "$sol_work/rows"
  : > "$sol_work/warnings"
  trap sol_on_signal INT TERM
}

# --- the report ------------------------------------------------------------------------
sol_fmt_mb() { printf -v "$1" '%d.%d MB' "$(($2 / 1000000))" "$((($2 % 1000000) / 100000))"; }
sol_fmt_secs() { printf -v "$1" '%d.%ds' "$(($2 / 1000))" "$((($2 % 1000) / 100))"; }
sol_fmt_rate() { # var bytes ms
  local ms=$3 r
  [ "$ms" -gt 0 ] || ms=1
  r=$(($2 / ms)) # bytes per millisecond = kB/s
  printf -v "$1" '%d.%d MB/s' "$((r / 1000))" "$(((r % 1000) / 100))"
}

# Print the table (no rows for skipped sols: they are counted in the summary), the
# summary and the warnings; return the worst status (130 beats 3 beats 1 beats 0).
# KIND is backup (C1 bytes in, C2 bytes out), restore (C1 bytes, C2 files) or audit (C1
# files compared, C2 bytes compared, C3 differences).
sol_report() { # kind title skipped-words
  local kind=$1 title=$2 skipped_words=$3 worst=0 n=0 ok=0 bad=0 skipped=0 intr=0 t1=0 t2=0
  local sol status code ms c1 c2 c3 f a b c d line shown=0
  local table=""
  printf '%s\n' "$title"
  printf 'started %s, finished %s\n' "$sol_started" "$(date -u +%FT%TZ)"
  # A script may put its problems first (sol-audit: a person reads this at 8 am).
  if declare -F sol_report_head > /dev/null; then sol_report_head; fi
  case $kind in
    backup) printf -v table '%-16s %-11s %12s %12s %12s %8s\n' SOL STATUS IN OUT RATE TIME ;;
    restore) printf -v table '%-16s %-11s %12s %10s %12s %8s\n' SOL STATUS BYTES FILES RATE TIME ;;
    audit) printf -v table '%-16s %-11s %10s %12s %11s %8s\n' SOL STATUS FILES BYTES DIFFERENCES TIME ;;
  esac
  for f in "$sol_work"/rows/*; do
    [ -e "$f" ] || continue
    IFS=$'\t' read -r sol status code ms c1 c2 c3 < "$f"
    n=$((n + 1))
    case $status in
      ok) ok=$((ok + 1)) ;;
      skipped) skipped=$((skipped + 1)); continue ;;
      INTERRUPTED) intr=$((intr + 1)) ;;
      *) bad=$((bad + 1)) ;;
    esac
    t1=$((t1 + c1)); t2=$((t2 + c2))
    case $code in
      0) ;;
      130) worst=130 ;;
      3) [ "$worst" = 130 ] || worst=3 ;;
      *) [ "$worst" != 0 ] || worst=1 ;;
    esac
    sol_fmt_secs d "$ms"
    case $kind in
      backup) sol_fmt_mb a "$c1"; sol_fmt_mb b "$c2"; sol_fmt_rate c "$c1" "$ms"
        printf -v line '%-16s %-11s %12s %12s %12s %8s\n' "$sol" "$status" "$a" "$b" "$c" "$d" ;;
      restore) sol_fmt_mb a "$c1"; sol_fmt_rate c "$c1" "$ms"
        printf -v line '%-16s %-11s %12s %10s %12s %8s\n' "$sol" "$status" "$a" "$c2" "$c" "$d" ;;
      audit) sol_fmt_mb b "$c2"
        printf -v line '%-16s %-11s %10s %12s %11s %8s\n' "$sol" "$status" "$c1" "$b" "$c3" "$d" ;;
    esac
    table+=$line
    shown=1
  done
  # The table only when it has rows (a night that skipped everything is the summary).
  [ "$shown" = 0 ] || printf '%s' "$table"
  sol_fmt_secs d "$(($(sol_ms) - sol_t0))"
  case $kind in
    backup) sol_fmt_mb a "$t1"; sol_fmt_mb b "$t2"; c="$a in, $b out" ;;
    restore) sol_fmt_mb a "$t1"; c="$a, $t2 files" ;;
    audit) sol_fmt_mb b "$t2"; c="$t1 files, $b compared" ;;
  esac
  # No content audit (sol-audit --coverage-only): no table and no such summary.
  [ "$kind" = audit ] && [ "$n" = 0 ] && [ -n "${sol_report_no_rows:-}" ] ||
    printf 'summary: %d sols: %d ok, %d skipped (%s), %d failed, %d interrupted; %s; %s\n' \
      "$n" "$ok" "$skipped" "$skipped_words" "$bad" "$intr" "$c" "$d"
  if [ -s "$sol_work/warnings" ]; then
    echo "warnings (sols that succeeded):"
    sed 's/^/  /' "$sol_work/warnings"
  fi
  # ... and its own last lines (sol-audit: coverage, how much was content-audited).
  if declare -F sol_report_tail > /dev/null; then sol_report_tail; fi
  return "$worst"
}
