# shellcheck shell=bash disable=SC2034 # variables set here are read by the scripts
# Shared by the sol scripts (sourced, not run): finding the tools, names, keys, the work
# directory, the job engine (GNU parallel), one sol's result row and the report.

sol_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The tools: on PATH first; else beside the scripts (an install), else a build of this
# repository that has them all.
if ! command -v sol-tar >/dev/null 2>&1; then
  for d in "$sol_here" "$sol_here/../target/release" "$sol_here/../target/debug"; do
    if [ -x "$d/sol-tar" ] && [ -x "$d/s3-ls" ] && [ -x "$d/sol-index" ] && [ -x "$d/tar-md5" ]; then
      PATH="$d:$PATH"
      break
    fi
  done
fi
export PATH
sol_ms() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((t / 1000))"; }
sol_t0=$(sol_ms)
sol_started=$(date -u +%FT%TZ)
sol_name="" sol_notes=() sol_clock_warning="" sol_skew=0

sol_say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
# A command that fails where nothing checks it ends the script (set -e): say which, in one
# prefixed line, instead of ending without a word (a function returning the script's status
# is not such a failure).
set -E
trap 'sol_err $? "$BASH_COMMAND" "$LINENO"' ERR
sol_err() {
  [[ $- == *e* ]] || return 0 # set +e: the status is checked by the script
  case $2 in return*|main*|report*|sol_report*) ;; *) sol_say "line $3: $2: status $1" ;; esac
}
sol_die() { sol_say "$@"; exit 1; }
sol_usage_error() { sol_say "$@"; sol_say "try '$PROG --help'"; exit 2; }
sol_need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || sol_die "'$t' not found on PATH or beside $0"
  done
}
sol_check_url() { case $1 in s3://?*) ;; *) sol_usage_error "'$1': expected s3://BUCKET/PREFIX" ;; esac; }
sol_trim_slash() { local u=$1; while [ "${u%/}" != "$u" ]; do u=${u%/}; done; printf '%s' "$u"; }
# --hosts FILE: readable, and each line (but comments) an sshlogin: [N/]HOST, or ":".
sol_check_hosts() {
  local line n=0 hosts=0
  if [ ! -f "$1" ] || [ ! -r "$1" ]; then sol_usage_error "--hosts '$1': not a readable file"; fi
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in ''|'#'*) continue ;; esac
    [[ $line =~ ^([0-9]*[1-9][0-9]*/)?[^[:space:]/]+$ ]] ||
      sol_usage_error "--hosts '$1': line $n: '$line' is not an sshlogin ([N/]HOST, or : for this host)"
    hosts=$((hosts + 1))
  done < "$1"
  [ "$hosts" -gt 0 ] || sol_usage_error "--hosts '$1': no host in it"
}
sol_positive() { case $2 in ''|*[!0-9]*|0) sol_usage_error "$1: '$2' is not a positive number" ;; esac; }

# Sol names. A name taken from a listing must match SOL_NAME_RE (documented in the man
# pages); anything else is reported and skipped, never used. A name the operator types may
# hold spaces, quotes and globs but no slash, backslash or control character, and is not
# . or ..
SOL_NAME_RE='^[A-Za-z0-9][A-Za-z0-9._-]*$'
sol_listed_name_ok() { [[ $1 =~ $SOL_NAME_RE ]]; }
sol_operand_name_ok() { case $1 in ''|.|..|*/*|*\\*|*[[:cntrl:]]*) return 1 ;; esac; }

# sol-crypt's options into the array sol_key: for opening archives (dec: -k KEYFILE and/or
# -i IDENTITY, else SOL_KEY_FILE and/or SOL_IDENTITY_FILE) or sealing them (enc: -k and/or
# -R RECIPIENTS-FILE, else SOL_KEY_FILE). Each file gets sol-crypt's own verdict before any
# work (unreadable, malformed, readable by others): one line, status 1. Both variables are
# unset, so sol-crypt uses exactly what is passed.
sol_key_args() { # dec|enc KEYFILE IDENTITY-OR-RECIPIENTS
  local mode=$1 k=$2 o=$3 err
  if [ -z "$k$o" ]; then
    k=${SOL_KEY_FILE:-}
    [ "$mode" = enc ] || o=${SOL_IDENTITY_FILE:-}
  fi
  unset SOL_KEY_FILE SOL_IDENTITY_FILE
  if [ -z "$k$o" ] && [ "$mode" = enc ]; then
    sol_usage_error "a key file or recipients are required: -k KEYFILE (or SOL_KEY_FILE) or -R RECIPIENTS-FILE"
  fi
  [ -n "$k$o" ] || sol_usage_error "a key file or an identity is required: -k KEYFILE or -i IDENTITY (or SOL_KEY_FILE, SOL_IDENTITY_FILE)"
  sol_key=()
  # Absolute, so the per-sol commands find them on every host.
  [ -z "$k" ] || [[ $k == /* ]] || k=$PWD/$k
  [ -z "$o" ] || [[ $o == /* ]] || o=$PWD/$o
  if [ -n "$k" ]; then
    [ -r "$k" ] || sol_die "key file '$k': cannot read it"
    err=$(sol-crypt -e -k "$k" < /dev/null 2>&1 > /dev/null) || sol_die "${err%%$'\n'*}"
    sol_key+=(-k "$k")
  fi
  [ -n "$o" ] || return 0
  if [ "$mode" = enc ]; then
    [ -r "$o" ] || sol_die "recipients file '$o': cannot read it"
    err=$(sol-crypt -e -R "$o" < /dev/null 2>&1 > /dev/null) || sol_die "${err%%$'\n'*}"
    sol_key+=(-R "$o")
  else
    [ -r "$o" ] || sol_die "identity file '$o': cannot read it"
    err=$(sol-crypt recipient -i "$o" 2>&1 > /dev/null) || sol_die "${err%%$'\n'*}"
    sol_key+=(-i "$o")
  fi
}

# --- times and sizes -----------------------------------------------------------------------
# RFC 3339 UTC as s3-ls prints it -> seconds since the epoch into VAR, without a fork
# (thousands of keys a run). Returns 1 (VAR empty) on anything else.
sol_epoch() { # var rfc3339
  local y m d era yoe doy
  printf -v "$1" '%s' ""
  [[ $2 =~ ^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2}) ]] || return 1
  y=$((10#${BASH_REMATCH[1]})) m=$((10#${BASH_REMATCH[2]})) d=$((10#${BASH_REMATCH[3]}))
  [ "$m" -gt 2 ] || y=$((y - 1))
  era=$((y / 400)) yoe=$((y - y / 400 * 400))
  doy=$(((153 * ((m + 9) % 12) + 2) / 5 + d - 1))
  printf -v "$1" '%d' "$(((era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468) * 86400 \
    + 10#${BASH_REMATCH[4]} * 3600 + 10#${BASH_REMATCH[5]} * 60 + 10#${BASH_REMATCH[6]}))"
}
sol_utc() { local TZ=UTC; printf -v "$1" '%(%Y-%m-%dT%H:%M:%SZ)T' "$2"; }
# A duration (N, Ns, Nm, Nh or Nd) in seconds, or a size (N, NK, NM, NG, NT) in bytes, into
# VAR; returns 1 when TEXT is not one.
sol_duration() { sol_scaled "$1" "$2" s 1 m 60 h 3600 d 86400; }
sol_size() { sol_scaled "$1" "${2^^}" K 1024 M 1048576 G 1073741824 T 1099511627776; }
sol_scaled() { # var text (suffix factor)...
  local var=$1 text=$2 n=$2 u=1
  shift 2
  while [ $# -gt 0 ]; do
    if [ "${text%"$1"}" != "$text" ]; then n=${text%"$1"} u=$2; fi
    shift 2
  done
  case $n in ''|*[!0-9]*) return 1 ;; esac
  printf -v "$var" '%d' "$((10#$n * u))"
}
# Bytes under a path (apparent size): always one number, 0 when du fails outright.
sol_bytes() {
  local out
  out=$(du -sb --apparent-size -- "$1" 2>/dev/null) || true
  out=${out%%[!0-9]*}
  printf '%s' "${out:-0}"
}
# The server's clock minus this host's, in seconds, into sol_skew (0 when it cannot be
# told); a skew over a minute is a warning line for the report.
sol_clock() { # url
  local out
  sol_skew=0
  out=$(s3-ls --clock -- "$1" 2>/dev/null) || return 0
  case $out in ''|*[!0-9-]*) return 0 ;; esac
  sol_skew=$out
  if [ "${out#-}" -gt 60 ]; then
    sol_clock_warning="clock: the server's clock is ${out#-} s $([ "$out" -gt 0 ] && echo ahead of || echo behind) this host's; ages and changes are judged on the server's clock"
  fi
}

# --- the work directory ----------------------------------------------------------------
# TMPDIR/PROG.PID.XXXXXX, this run's own, locked for as long as this run or any process it
# started lives, and removed on exit. One left by a run that was killed (SIGKILL: no trap
# ran) is removed by a later run once its owner is gone and nothing holds its lock; a live
# run's never is.
sol_workdir() {
  local d pid
  for d in "${TMPDIR:-/tmp}"/sol-{backup,audit,restore}{,-one}.[0-9]*.??????; do
    # Ours only: owned by this user, with the lock file every run makes at once.
    if [ ! -d "$d" ] || [ ! -O "$d" ] || [ ! -f "$d/.lock" ]; then continue; fi
    pid=${d%.*} pid=${pid##*.}
    case $pid in ''|*[!0-9]*) continue ;; esac
    ! kill -0 "$pid" 2>/dev/null || continue
    flock -n "$d/.lock" true 2>/dev/null || continue
    rm -rf -- "$d" 2>/dev/null || true
  done
  sol_work=$(mktemp -d "${TMPDIR:-/tmp}/$PROG.$$.XXXXXX" 2>&1) ||
    sol_die "cannot make a work directory in ${TMPDIR:-/tmp}: ${sol_work##*: }"
  : > "$sol_work/rows"
  exec {sol_lock}> "$sol_work/.lock"
  flock -n "$sol_lock"
  trap 'rm -rf -- "$sol_work"' EXIT
}

# --- one sol's result ------------------------------------------------------------------
# The cause of a pipeline's failure from its stages' statuses (upstream first): the first
# that is neither 0 nor 141 (a closed pipe follows a failure downstream), else the first
# non-zero one. Sets sol_cause_i (stage index, empty when all succeeded) and sol_cause_st.
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
sol_code_of() { case $1 in 0) echo 0 ;; 3) echo 3 ;; 130|143|129|131) echo 130 ;; *) echo 1 ;; esac; }
# What the causing stage said, or how it ended: into sol_why (one line) and, prefixed with
# the sol, on stderr.
sol_blame() { # sol errfile tool status
  local how="exited with status $4"
  [ "$4" -le 128 ] || how="was killed by signal $(kill -l "$(($4 - 128))" 2>/dev/null || echo "$(($4 - 128))")"
  if [ -s "$2" ]; then
    sed "s/^/$PROG: $(sol_sed_escape "$1"): /" "$2" >&2
    sol_why=$(head -n 1 "$2")
  else
    sol_why="$3 $how"
    sol_say "$1: $sol_why"
  fi
}
sol_sed_escape() { printf '%s' "$1" | sed 's/[\/&]/\\&/g'; }
# Lines of FILEs (a stage's warnings) into the array sol_notes, tabs shown as \t.
sol_note() {
  local f line
  for f in "$@"; do
    [ -s "$f" ] || continue
    while IFS= read -r line; do sol_notes+=("${line//$'\t'/\\t}"); done < "$f"
  done
}
# Run FUNC (a pipeline that writes its stages' statuses to $sol_work/st) in the background
# and wait for it, so that INT, TERM or HUP stop its stages at once instead of after they
# end; then the statuses are read into the array sol_st (130s when it was stopped first).
sol_stages() { # func
  (set +e; "$1") &
  sol_stages_pid=$!
  trap 'sol_stop=1; sol_kill_tree "$sol_stages_pid"' INT TERM HUP
  while kill -0 "$sol_stages_pid" 2>/dev/null; do wait "$sol_stages_pid" 2>/dev/null || true; done
  trap 'sol_stop=1' INT TERM HUP
  sol_st=(130)
  [ ! -s "$sol_work/st" ] || read -r -a sol_st < "$sol_work/st"
}
# TERM to every process under PID (not PID itself), the deepest first.
sol_kill_tree() {
  local c
  for c in $(pgrep -P "$1"); do sol_kill_tree "$c"; kill -TERM "$c" 2>/dev/null || true; done
}
# This host's name in a row: the sshlogin GNU parallel reached it by, else its hostname.
sol_host() {
  local h=${PARALLEL_SSHLOGIN:-}
  [ -n "${SOL_HOST_FROM_SSHLOGIN:-}" ] && [ -n "$h" ] && [ "$h" != : ] || h=${HOSTNAME:-?}
  printf '%s' "${h##*/}"
}
# Print this sol's row, SOL HOST STATUS CODE MS F1 F2 F3 NOTE..., and exit with CODE.
sol_row() { # status code f1 f2 f3
  local IFS=$'\t'
  printf '%s\n' "$sol_name	$(sol_host)	$1	$2	$(($(sol_ms) - sol_t0))	$3	$4	$5${sol_notes[*]:+	${sol_notes[*]}}"
  exit "$2"
}

# --- the job engine: GNU parallel ------------------------------------------------------
# Run CMD ARGS... for each entry of LIST (NUL-separated; {} in ARGS is the entry, a sol or
# a directory whose last name is the sol) through GNU parallel, JOBS at once, on the hosts
# of the sshlogin file HOSTS (else here); each prints its row into $sol_work/rows. INT or
# TERM stops every job (each stops its stages, aborts its upload, removes its staging
# directory), and so does this script's death (parallel's parent-death signal). With
# HOSTS, the sols of a host that was lost (no row: ssh ended 255, or the job was killed)
# run once more on the other hosts, between two calls of sol_before_retry SOL... (the hook
# a script may define), and the report's head says so. A sol that still has no row gets one:
# INTERRUPTED after INT or TERM, else FAILED with how its command ended.
sol_parallel() { # list jobs hosts cmd args...
  local list=$1 jobs=$2 hosts=$3 lost e h
  local -a names
  shift 3
  sol_interrupted=""
  sol_engine "$list" "$jobs" "$hosts" "$@"
  sol_missing "$list" "$sol_work/retry"
  # Lost: no row, and ssh's own failure (255) or a signal ended the job.
  names=() lost=""
  while IFS= read -r -d '' e; do
    h=$(sol_how "${e##*/}" 2)
    [ -z "$h" ] || { names+=("$e"); lost+="$h "; }
  done < "$sol_work/retry"
  lost=$(tr ' ' '\n' <<< "$lost" | sort -u | tr '\n' ' ')
  if [ -n "$hosts" ] && [ ${#names[@]} -gt 0 ] && [ -z "$sol_interrupted" ]; then
    printf '%s\0' "${names[@]}" > "$sol_work/retry"
    awk -v lost=" $lost" '{ h = $0; sub(/^[0-9]+\//, "", h) } index(lost, " " h " ") == 0' "$hosts" > "$sol_work/hosts"
    if [ -s "$sol_work/hosts" ]; then
      printf '%s\n' "retried on another host (lost:${lost% }): ${names[*]##*/}" >> "$sol_work/engine"
      if declare -F sol_before_retry > /dev/null; then sol_before_retry "${names[@]##*/}"; fi
      sol_engine "$sol_work/retry" "$jobs" "$sol_work/hosts" "$@"
      # Again after the retry: what a lost host still running began meanwhile.
      if declare -F sol_before_retry > /dev/null; then sol_before_retry "${names[@]##*/}"; fi
    fi
  fi
  sol_missing "$list" "$sol_work/retry"
  sol_no_result "$sol_work/retry" "$1"
}
# One pass of GNU parallel over LIST; INT or TERM to this script stop it.
sol_engine() { # list jobs hosts cmd args...
  local list=$1 jobs=$2 hosts=$3 engine v seq host st sig e lost intr
  local -a where=() entries
  shift 3
  if [ -n "$hosts" ]; then
    # Each sol runs on one of the hosts, with this run's PATH and S3 and sol settings.
    where=(--sshloginfile "$hosts" --env PATH --env SOL_HOST_FROM_SSHLOGIN)
    for v in $(compgen -e); do case $v in AWS_*|SOL_*) where+=(--env "$v") ;; esac; done
  fi
  sol_joblog_seen=1
  SOL_HOST_FROM_SSHLOGIN=${hosts:+1} setpriv --pdeathsig TERM -- parallel -0 -q --line-buffer --will-cite \
    -j "$jobs" --joblog "$sol_work/joblog" --termseq TERM,30000,KILL,25 "${where[@]}" -a "$list" \
    setpriv --pdeathsig TERM -- "$@" \
    >> "$sol_work/rows" 2> >(sed -u '/^[a-z0-9-]*: /!s/^/'"$PROG"': /; s/^parallel: /'"$PROG"': parallel: /' >&2) &
  engine=$!
  trap 'sol_interrupted=1; kill -TERM "$engine" 2>/dev/null || true' INT TERM HUP
  sol_progress "$list" "$engine" &
  # A job lost with its host is seen in the joblog as it ends: sol_before_retry for its sol
  # at once, while the pass goes on (a lost host still running gets less time to finish).
  mapfile -d '' -t entries < "$list"
  while kill -0 "$engine" 2>/dev/null; do
    sleep 0.5 & wait $! 2>/dev/null || true
    [ -z "$hosts" ] || sol_lost_now
  done
  st=0
  wait "$engine" 2>/dev/null || st=$?
  trap - INT TERM HUP
  # GNU parallel ended by INT, TERM or HUP (sent to the whole group, it may have come
  # before this script's trap ran): the run was interrupted.
  case $st in 129|130|143) sol_interrupted=1 ;; esac
  [ -e "$sol_work/joblog" ] || : > "$sol_work/joblog"
  # How each job ended (the joblog's sequence numbers are LIST's order), newest first.
  while IFS=$'\t' read -r seq host _ _ _ _ st sig _; do
    case $seq in ''|*[!0-9]*) continue ;; esac
    e=${entries[seq - 1]:-}
    lost="" intr=""
    [ "$st" != 255 ] && [ "$sig" = 0 ] || lost=$host
    # A job ended by INT, TERM or HUP was interrupted, not lost.
    case $st/$sig in 129/*|130/*|143/*|*/1|*/2|*/15) lost="" intr=i ;; esac
    printf '%s\t%s\tstatus %s, signal %s, on %s\t%s\n' "${e##*/}" "$lost" "$st" "$sig" "${host:-this host}" "$intr"
  done < "$sol_work/joblog" | cat - "$sol_work/how" 2> /dev/null > "$sol_work/how.new" || true
  mv -f -- "$sol_work/how.new" "$sol_work/how"
}
# The sols of jobs that ended lost (ssh's 255 or a signal) since the last look at the
# joblog, handed to sol_before_retry (entries: this pass's list).
sol_lost_now() {
  local seq host st sig e n=0
  local -a lost=()
  if ! declare -F sol_before_retry > /dev/null || [ ! -e "$sol_work/joblog" ]; then return 0; fi
  while IFS=$'\t' read -r seq host _ _ _ _ st sig _; do
    n=$((n + 1))
    [ "$n" -gt "${sol_joblog_seen:-1}" ] || continue
    case $seq in ''|*[!0-9]*) continue ;; esac
    e=${entries[seq - 1]:-}
    [ "$st" != 255 ] && [ "$sig" = 0 ] || lost+=("${e##*/}")
  done < "$sol_work/joblog"
  sol_joblog_seen=$n
  [ ${#lost[@]} -eq 0 ] || sol_before_retry "${lost[@]}"
}
# Field N of how SOL's job ended last (2: its host, 3: in words), or nothing.
sol_how() { awk -F '\t' -v n="$1" -v f="$2" '$1 == n { print $f; exit }' "$sol_work/how" 2> /dev/null || true; }
# The entries of LIST whose sol has no row yet, NUL-separated, into OUT.
sol_missing() { # list out
  local e name
  local -A seen=()
  while IFS=$'\t' read -r name _; do seen[$name]=1; done < "$sol_work/rows"
  : > "$2"
  while IFS= read -r -d '' e; do
    [ -n "${seen[${e##*/}]+x}" ] || printf '%s\0' "$e" >> "$2"
  done < "$1"
}
# Rows for the sols of LIST that have none: INTERRUPTED, or FAILED naming how CMD ended
# (the joblog's status, signal and host).
sol_no_result() { # list cmd
  local e name why
  while IFS= read -r -d '' e; do
    name=${e##*/}
    if [ -n "$sol_interrupted" ] || [ "$(sol_how "$name" 4)" = i ]; then
      printf '%s\t%s\tINTERRUPTED\t130\t0\t0\t0\t0\n' "$name" "${HOSTNAME:-?}" >> "$sol_work/rows"
      continue
    fi
    why=$(sol_how "$name" 3)
    why="${2##*/} ended without a result (${why:-GNU parallel recorded no end for it})"
    sol_say "$name: $why"
    printf '%s\t%s\tFAILED\t1\t0\t0\t0\t0\t%s\n' "$name" "${HOSTNAME:-?}" "$why" >> "$sol_work/rows"
  done < "$1"
}
# On a terminal (stderr), each row as its sol finishes, with sols done of all, the bytes
# (field sol_bytes_field of the rows) and an ETA; nothing under cron.
sol_progress() { # list engine
  [ -t 2 ] || return 0
  local all done=0 bytes=0 t from
  local -a r
  all=$(tr -cd '\0' < "$1" | wc -c)
  from=$(($(wc -l < "$sol_work/rows") + 1))
  tail -n "+$from" -F --pid="$2" "$sol_work/rows" 2> /dev/null | while IFS=$'\t' read -r -a r; do
    done=$((done + 1)) bytes=$((bytes + ${r[${sol_bytes_field:-5}]:-0})) t=$((($(sol_ms) - sol_t0) / 1000))
    sol_say "${r[0]} ${r[2]} on ${r[1]}: $done of $all sols, $((bytes / 1000000)) MB, ETA $((t * (all - done) / done))s"
  done
}

# --- the report ------------------------------------------------------------------------
# The report of $sol_work/rows: the title, the start, HEAD-FILE (problems first), what
# the engine did (sols retried on another host), one line
# per sol that was not skipped (the kind's columns, its host last), the summary, the
# failures' causes and the warnings of sols that succeeded, TAIL-FILE. Returns the worst
# code (130 beats 3 beats 1 beats 0). KIND: backup (F1 bytes in, F2 out), restore (F1
# bytes, F2 files) or audit (F1 files, F2 bytes, F3 differences: its notes are problems).
sol_report() { # kind title skipped-words head-file tail-file
  local rc=0
  touch "$sol_work/rows"
  printf '%s\nstarted %s, finished %s\n' "$2" "$sol_started" "$(date -u +%FT%TZ)"
  [ -z "$4" ] || cat -- "$4"
  [ ! -s "$sol_work/engine" ] || cat -- "$sol_work/engine"
  awk -F '\t' -v kind="$1" -v skipw="$3" -v ms="$(($(sol_ms) - sol_t0))" -v only="${sol_report_no_rows:-}" '
    function mb(b) { return sprintf("%d.%d MB", int(b / 1000000), int(b % 1000000 / 100000)) }
    function sec(t) { return sprintf("%d.%ds", int(t / 1000), int(t % 1000 / 100)) }
    function rate(b, t) { r = int(b / (t > 0 ? t : 1)); return sprintf("%d.%d MB/s", int(r / 1000), int(r % 1000 / 100)) }
    function row(a, b, c, d, e, f, g) {
      if (kind == "audit") return sprintf("%-16s %-11s %10s %12s %11s %8s  %s\n", a, b, c, d, e, f, g)
      if (kind == "restore") return sprintf("%-16s %-11s %12s %10s %12s %8s  %s\n", a, b, c, d, e, f, g)
      return sprintf("%-16s %-11s %12s %12s %12s %8s  %s\n", a, b, c, d, e, f, g)
    }
    { n++ }
    $3 == "skipped" { skipped++; next }
    {
      if ($3 == "ok") ok++; else if ($3 == "INTERRUPTED") intr++; else bad++
      if ($4 == 130) worst = 130; else if ($4 == 3 && worst != 130) worst = 3; else if ($4 != 0 && worst == 0) worst = 1
      t1 += $6; t2 += $7
      if (kind == "backup") table = table row($1, $3, mb($6), mb($7), rate($6, $5), sec($5), $2)
      if (kind == "restore") table = table row($1, $3, mb($6), $7, rate($6, $5), sec($5), $2)
      if (kind == "audit") table = table row($1, $3, $6, mb($7), $8, sec($5), $2)
      for (i = 9; i <= NF; i++) {
        if ($3 == "ok") warn = warn "  " $1 ": " $i "\n"
        else if (kind != "audit") fail = fail "  " $1 ": " $i "\n"
      }
    }
    END {
      if (table != "") {
        if (kind == "backup") printf "%s", row("SOL", "STATUS", "IN", "OUT", "RATE", "TIME", "HOST")
        if (kind == "restore") printf "%s", row("SOL", "STATUS", "BYTES", "FILES", "RATE", "TIME", "HOST")
        if (kind == "audit") printf "%s", row("SOL", "STATUS", "FILES", "BYTES", "DIFFERENCES", "TIME", "HOST")
        printf "%s", table
      }
      if (kind == "backup") what = mb(t1) " in, " mb(t2) " out"
      if (kind == "restore") what = mb(t1) ", " t2 " files"
      if (kind == "audit") what = t1 " files, " mb(t2) " compared"
      if (!(only != "" && n == 0))
        printf "summary: %d sols: %d ok, %d skipped (%s), %d failed, %d interrupted; %s; %s\n", n, ok, skipped, skipw, bad, intr, what, sec(ms)
      if (fail != "") printf "failures:\n%s", fail
      if (warn != "") printf "warnings (sols that succeeded):\n%s", warn
      exit worst
    }' "$sol_work/rows" || rc=$?
  [ -z "$5" ] || cat -- "$5"
  return "$rc"
}
