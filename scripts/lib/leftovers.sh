# shellcheck shell=bash
# Finds processes a test run left running (issue 25, point 18). Sourced by scripts/test.
#
# A run is marked two ways, and a process carrying either mark is the run's:
#   - the environment variable DEPLOY_SUITE_TEST_RUN=<id>, inherited by every child, also
#     across setsid and double forks; test-support's Sshd and Fleet pass it into SSH sessions
#     with sshd's SetEnv (sshd starts sessions with a fresh environment);
#   - an open file descriptor on a marker file, inherited like the environment by programs
#     that do not close unknown descriptors, which finds the programs that overwrite their
#     environment for a process title (nginx), where /proc/PID/environ no longer shows it;
#   - the run id in the command line: test-support names sshd's config file after the run,
#     since sshd both overwrites its environment and closes inherited descriptors.
# The shell running the check holds neither: the variable and the descriptor are given to the
# marked command only (run_marked).

# test_run_start: a fresh run id and marker file (TEST_RUN_ID, TEST_RUN_MARKER).
test_run_start() {
  TEST_RUN_ID="$(cat /proc/sys/kernel/random/uuid)"
  TEST_RUN_MARKER="${TMPDIR:-/tmp}/deploy-suite-test-run.$TEST_RUN_ID"
  : >"$TEST_RUN_MARKER"
}

# run_marked COMMAND...: runs COMMAND with both marks of the current run.
run_marked() {
  DEPLOY_SUITE_TEST_RUN="$TEST_RUN_ID" "$@" 9<"$TEST_RUN_MARKER"
}

# leftover_processes: one line per running process of the current run:
#   PID (command line|environment|descriptor) COMMAND LINE
leftover_processes() {
  local file fd pid seen=" " pattern
  # The pattern matches the id without containing it: grep's own command line does not match.
  pattern="${TEST_RUN_ID//-/[-]}"
  while IFS= read -r file; do
    pid="${file#/proc/}"
    pid="${pid%/cmdline}"
    seen="$seen$pid "
    leftover_line "$pid" "command line"
  done < <(grep -l -e "$pattern" /proc/[0-9]*/cmdline 2>/dev/null)
  # grep -z: NUL-separated entries, -x: the whole entry; zombies have an empty environ.
  while IFS= read -r file; do
    pid="${file#/proc/}"
    pid="${pid%/environ}"
    case "$seen" in *" $pid "*) continue ;; esac
    seen="$seen$pid "
    leftover_line "$pid" environment
  done < <(grep -lzxF "DEPLOY_SUITE_TEST_RUN=$TEST_RUN_ID" /proc/[0-9]*/environ 2>/dev/null)
  while IFS= read -r fd; do
    pid="${fd#/proc/}"
    pid="${pid%%/*}"
    case "$seen" in *" $pid "*) continue ;; esac
    seen="$seen$pid "
    leftover_line "$pid" descriptor
  done < <(find /proc/[0-9]*/fd -maxdepth 1 -lname "$TEST_RUN_MARKER" 2>/dev/null)
}

# leftover_line PID HOW: prints the line unless PID is gone or a zombie.
leftover_line() {
  local stat state cmdline
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  state="${stat##*) }"
  state="${state%% *}"
  [ "$state" = Z ] && return 0
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)"
  printf '%s (%s) %s\n' "$1" "$2" "${cmdline% }"
}

# check_leftovers GRACE_SECONDS: succeeds when no process of the current run is left, waiting
# up to GRACE_SECONDS for killed ones to go; otherwise names them, kills them, and fails.
check_leftovers() {
  local deadline=$((SECONDS + $1)) found
  while found="$(leftover_processes)" && [ -n "$found" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf 'error: the test run left these processes running (every process a test starts must be stopped by the test, see test_support::process):\n%s\n' \
        "$found" >&2
      # shellcheck disable=SC2046 # one pid a word
      kill -KILL $(printf '%s\n' "$found" | cut -d' ' -f1) 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
}

# check_leftovers_self_test: the check must not pass vacuously. Leaves four processes on
# purpose, found by the variable and the descriptor, by the variable only, by the descriptor
# only, by the command line only; fails unless the check names each of them.
check_leftovers_self_test() {
  local saved_id="${TEST_RUN_ID:-}" saved_marker="${TEST_RUN_MARKER:-}" report status=0 tag
  test_run_start
  run_marked sh -c 'sleep 300.1 </dev/null >/dev/null 2>&1 &'
  run_marked sh -c 'exec 9<&-; sleep 300.2 </dev/null >/dev/null 2>&1 &'
  run_marked env -u DEPLOY_SUITE_TEST_RUN sh -c 'sleep 300.3 </dev/null >/dev/null 2>&1 &'
  # shellcheck disable=SC2016 # $0 expands in the inner shell
  run_marked env -u DEPLOY_SUITE_TEST_RUN bash -c \
    'exec 9<&-; (exec -a "leftover-$0" sleep 300.4 </dev/null >/dev/null 2>&1 &)' "$TEST_RUN_ID"
  if report="$(check_leftovers 0 2>&1)"; then
    printf 'error: the leftover check passed with four processes left on purpose\n' >&2
    status=1
  fi
  for tag in "(environment) sleep 300.1" "(environment) sleep 300.2" "(descriptor) sleep 300.3" \
    "(command line) leftover-$TEST_RUN_ID 300.4"; do
    case "$report" in
      *"$tag"*) ;;
      *)
        # shellcheck disable=SC2016 # the backticks quote the tag in the printed text
        printf 'error: the leftover check did not name `%s`:\n%s\n' "$tag" "$report" >&2
        status=1
        ;;
    esac
  done
  # check_leftovers killed them: a second check must pass.
  if ! check_leftovers 10; then
    printf 'error: the processes left on purpose survived the check\n' >&2
    status=1
  fi
  rm -f "$TEST_RUN_MARKER"
  TEST_RUN_ID="$saved_id"
  TEST_RUN_MARKER="$saved_marker"
  return "$status"
}
