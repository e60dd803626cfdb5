# shellcheck shell=bash disable=SC2034 # variables set here are read by the scripts
# Shared by the sol scripts (sourced, not run): finding the tools, names, keys, the work
# directory, a pipeline's stages and one sol's result row. The drivers (sol-backup,
# sol-audit, sol-restore) are sol-jobs: their engine and report are there.

sol_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The tools: on PATH first; else beside the scripts (an install), else a build of this
# repository that has them all.
if ! command -v sol-tar >/dev/null 2>&1; then
  for d in "$sol_here" "$sol_here/../target/release" "$sol_here/../target/debug"; do
    if [ -x "$d/sol-tar" ] && [ -x "$d/s3-ls" ] && [ -x "$d/sol-index" ] && [ -x "$d/sol-jobs" ]; then
      PATH="$d:$PATH"
      break
    fi
  done
fi
export PATH
sol_ms() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((t / 1000))"; }
sol_t0=$(sol_ms)
sol_name="" sol_notes=()

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
sol_check_url() {
  [[ $1 =~ ^([A-Za-z0-9_.-]+:)?s3://. ]] ||
    sol_usage_error "'$1': expected s3://BUCKET/PREFIX or PROFILE:s3://BUCKET/PREFIX"
}
sol_trim_slash() { local u=$1; while [ "${u%/}" != "$u" ]; do u=${u%/}; done; printf '%s' "$u"; }
# A sol name the operator types may hold spaces, quotes and globs but no slash, backslash
# or control character, and is not . or ..
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

# Bytes under a path (apparent size): always one number, 0 when du fails outright.
sol_bytes() {
  local out
  out=$(du -sb --apparent-size -- "$1" 2>/dev/null) || true
  out=${out%%[!0-9]*}
  printf '%s' "${out:-0}"
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
sol_row() { # status code f1 f2 f3 [exit-status, default code]
  local IFS=$'\t'
  printf '%s\n' "$sol_name	$(sol_host)	$1	$2	$(($(sol_ms) - sol_t0))	$3	$4	$5${sol_notes[*]:+	${sol_notes[*]}}"
  exit "${6:-$2}"
}

