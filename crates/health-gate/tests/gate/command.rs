//! Command checks: real processes, exit codes, output expectations, process-group kills.

use std::time::{Duration, Instant};

use health_gate::failure::FailureKind;
use health_gate::outcome::Stopped;

use crate::{last_failure, last_kind, only, run_yaml};

fn command_gate(command: &str, readiness: &str) -> String {
    format!(
        "checks:\n  - name: host\n    attempt_timeout: 300ms\n    command: {command}\n    readiness: {{ interval: 50ms, deadline: 600ms {readiness} }}\n"
    )
}

#[test]
fn a_shell_builtin_check_passes_or_fails_by_exit_code() {
    let present = run_yaml(&command_gate("{ shell: 'command -v sh' }", ""));
    assert!(only(&present).passed, "{:?}", only(&present));
    let missing = run_yaml(&command_gate(
        "{ shell: 'command -v bwrap-not-installed-here' }",
        "",
    ));
    let failure = last_failure(&missing);
    assert_eq!(failure.kind, FailureKind::ExitStatus);
    assert!(
        failure.detail.contains("exited 127") || failure.detail.contains("exited 1"),
        "{}",
        failure.detail
    );
}

#[test]
fn a_missing_program_could_not_start_and_stops_at_once() {
    let report = run_yaml(&command_gate(
        "{ argv: [no-such-program-health-gate, --version] }",
        "",
    ));
    let check = only(&report);
    assert_eq!(last_kind(check), Some(FailureKind::CommandStart));
    assert_eq!(check.readiness.stopped, Some(Stopped::Fatal));
    assert_eq!(check.readiness.attempts, 1);
    assert!(
        check
            .failure_reason()
            .contains("could not start `no-such-program-health-gate --version`"),
        "{}",
        check.failure_reason()
    );
}

#[test]
fn output_expectations_and_accepted_exit_codes() {
    let json = run_yaml(&command_gate(
        "{ shell: 'echo \"{\\\"ok\\\": true}\"; echo warn >&2; exit 3', exit_codes: [0, 3], stdout: { json: [{ path: '$.ok', equals: true }] }, stderr: { contains: warn } }",
        "",
    ));
    assert!(only(&json).passed, "{:?}", only(&json));
    let mismatch = run_yaml(&command_gate(
        "{ argv: [echo, degraded], stdout: { regex: '^ok$' } }",
        "",
    ));
    let failure = last_failure(&mismatch);
    assert_eq!(failure.kind, FailureKind::Assertion);
    assert!(
        failure
            .detail
            .contains("stdout does not match /^ok$/: degraded"),
        "{}",
        failure.detail
    );
}

#[test]
fn output_shown_on_failure_is_capped() {
    let report = run_yaml(&command_gate(
        "{ shell: 'head -c 100000 /dev/zero | tr \"\\\\0\" x; exit 4' }",
        "",
    ));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::ExitStatus);
    assert!(
        failure.detail.contains("[output capped at 10 KiB]"),
        "{}",
        &failure.detail[..200.min(failure.detail.len())]
    );
    assert!(failure.detail.len() < 5000, "{}", failure.detail.len());
}

fn is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie is dead; it only waits for its parent to collect it.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

#[test]
fn a_hung_command_is_killed_with_its_children_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let report = run_yaml(&command_gate(
        &format!(
            "{{ shell: 'echo $$ > {0}; sleep 1000 & echo $! >> {0}; wait' }}",
            pids.display()
        ),
        "",
    ));
    assert_eq!(last_kind(only(&report)), Some(FailureKind::Timeout));
    let text = std::fs::read_to_string(&pids).expect("the command wrote its pids");
    let pids: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(pids.len(), 2, "{text}");
    // SIGKILL is asynchronous: give the kernel a bounded moment to finish the kill.
    let until = Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|pid| is_gone(pid)) {
        assert!(
            Instant::now() < until,
            "processes {pids:?} outlived the timeout"
        );
        std::thread::yield_now();
    }
}

#[test]
fn argv_is_never_interpreted_by_a_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("pwned");
    let report = run_yaml(&command_gate(
        &format!(
            "{{ argv: [echo, '$(touch {})'], stdout: {{ contains: '$(touch' }} }}",
            marker.display()
        ),
        "",
    ));
    assert!(only(&report).passed, "{:?}", only(&report));
    assert!(!marker.exists());
}
