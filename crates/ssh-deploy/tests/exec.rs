//! `ssh-deploy exec` on a real fleet (issue #22, point 3): three hosts, each in its own network
//! namespace with its own OpenSSH sshd (test-support's `Fleet`), one working directory each.

use std::path::PathBuf;
use std::process::Command;

use test_support::fleet::Fleet;
use test_support::{Output, run, tool_command};

struct Setup {
    fleet: Fleet,
    work: tempfile::TempDir,
    inventory: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let fleet = Fleet::start(3);
        let work = tempfile::tempdir().expect("tmp");
        // The hosts share this machine's file system: one working directory (`root:`) each.
        let mut text = String::from("user: root\ngroups:\n  all:\n    hosts:\n");
        for (index, host) in fleet.hosts().iter().enumerate() {
            let root = work.path().join(format!("root-{index}"));
            std::fs::create_dir_all(&root).expect("mkdir");
            text.push_str(&format!(
                "      host-{index}: {{ address: {}, port: {}, root: '{}' }}\n",
                host.address(),
                host.port(),
                root.display()
            ));
        }
        let inventory = work.path().join("inventory.yaml");
        std::fs::write(&inventory, text).expect("write");
        Self {
            fleet,
            work,
            inventory,
        }
    }

    fn root(&self, index: usize) -> PathBuf {
        self.work.path().join(format!("root-{index}"))
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut command = tool_command(env!("CARGO_BIN_EXE_ssh-deploy"));
        command
            .arg("exec")
            .env("SSH_DEPLOY_INVENTORY", &self.inventory)
            .env("SSH_DEPLOY_PRIVATE_KEY", self.fleet.user_key())
            .env("SSH_DEPLOY_KNOWN_HOSTS", self.fleet.known_hosts())
            .args(["--connect-timeout", "5s"])
            .args(extra);
        command
    }

    fn exec(&self, extra: &[&str]) -> Output {
        run(&mut self.command(extra))
    }

    fn script(&self, text: &str) -> PathBuf {
        let path = self.work.path().join("script.sh");
        std::fs::write(&path, text).expect("write");
        path
    }
}

/// The `exec` output: one object per host.
fn reports(out: &Output) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("json outputs: {e}\n{out:?}"));
    json["exec"]
        .as_array()
        .unwrap_or_else(|| panic!("exec is a list: {json}"))
        .clone()
}

#[test]
fn a_command_runs_on_every_host_in_its_directory_with_an_exit_code_each() {
    let setup = Setup::new();
    let out = setup.exec(&["--run", "pwd; echo to-stderr >&2"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let reports = reports(&out);
    assert_eq!(reports.len(), 3);
    for (index, report) in reports.iter().enumerate() {
        assert_eq!(report["exit_code"], 0, "{report}");
        assert_eq!(
            report["stdout"].as_str().unwrap_or_default().trim(),
            setup.root(index).display().to_string(),
            "stdout captured, run in the host's directory"
        );
        let host = report["host"].as_str().unwrap_or_default();
        assert!(
            out.stderr.contains(&format!("[{host}] to-stderr")),
            "stderr in the log, per host\n{}",
            out.stderr
        );
    }
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["result"], "success");
}

#[test]
fn a_failing_script_line_fails_that_host_and_the_next_batch_is_skipped() {
    let setup = Setup::new();
    std::fs::write(setup.root(1).join("broken"), "").expect("write");
    let script = setup.script("echo start\ntest ! -e broken\necho after > ran-after\n");
    let out = setup.exec(&[
        "--script",
        script.to_str().expect("utf-8"),
        "--batch-size",
        "2",
    ]);
    assert_eq!(out.code, Some(1), "a failed line fails the step\n{out:?}");
    let reports = reports(&out);
    assert_eq!(reports[0]["exit_code"], 0);
    assert_eq!(reports[1]["exit_code"], 1, "{}", reports[1]);
    assert_eq!(
        reports[1]["stdout"], "start\n",
        "nothing after the failing line"
    );
    assert_eq!(reports[2]["skipped"], true, "{}", reports[2]);
    assert!(setup.root(0).join("ran-after").exists());
    assert!(!setup.root(1).join("ran-after").exists());
    assert!(!setup.root(2).join("ran-after").exists());
    assert!(out.stderr.contains("exit 1"), "{}", out.stderr);
}

#[test]
fn hostile_arguments_arrive_as_single_words_and_run_nothing() {
    let setup = Setup::new();
    let hostile = [
        "$(touch pwned-1)",
        "`touch pwned-2`",
        "; touch pwned-3",
        "it's",
        "a  b",
        "\"x\" && touch pwned-4",
        "*",
        "$HOME",
        "-e",
    ];
    let script = setup.script("for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n");
    let out = setup.exec(&[
        "--script",
        script.to_str().expect("utf-8"),
        "--args",
        &hostile.join("\n"),
        "--batch-size",
        "1",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let expected: String = hostile.iter().map(|a| format!("[{a}]\n")).collect();
    for report in reports(&out) {
        assert_eq!(report["stdout"], expected.as_str(), "{report}");
    }
    for index in 0..3 {
        let left: Vec<String> = std::fs::read_dir(setup.root(index))
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "nothing ran on host {index}: {left:?}");
    }
}

#[test]
fn an_unknown_host_key_is_refused_and_nothing_runs() {
    let setup = Setup::new();
    let other = Fleet::start(1);
    let mut command = setup.command(&["--run", "touch ran"]);
    // Known hosts of another fleet: no key of these hosts is trusted.
    command.env("SSH_DEPLOY_KNOWN_HOSTS", other.known_hosts());
    let out = run(&mut command);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("host key"), "{}", out.stderr);
    for index in 0..3 {
        assert!(!setup.root(index).join("ran").exists());
    }
    for report in reports(&out) {
        assert!(report["exit_code"].is_null(), "{report}");
        assert!(report["error"].is_string(), "{report}");
    }
}

#[test]
fn stdout_is_capped_and_secrets_are_masked() {
    let setup = Setup::new();
    let key = setup.fleet.user_key();
    let secret_line = key
        .lines()
        .find(|line| line.len() > 20 && !line.starts_with("-----"))
        .expect("a key line");
    let out = setup.exec(&[
        "--run",
        &format!("echo 'key: {secret_line}'; head -c 5000 /dev/zero | tr '\\0' x"),
        "--max-output",
        "200",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !out.stdout.contains(secret_line),
        "the key never reaches the outputs"
    );
    assert!(!out.stderr.contains(secret_line), "nor the log");
    for report in reports(&out) {
        let stdout = report["stdout"].as_str().unwrap_or_default();
        assert!(stdout.starts_with("key: ***"), "{stdout}");
        assert!(stdout.len() <= 200, "{}", stdout.len());
        assert_eq!(report["stdout_truncated"], true);
    }
    assert!(out.stderr.contains("--max-output"), "{}", out.stderr);
}

#[test]
fn the_dry_run_prints_the_quoted_command_per_host_and_runs_nothing() {
    let setup = Setup::new();
    let out = setup.exec(&[
        "--run",
        "touch ran",
        "--args",
        "it's",
        "--batch-size",
        "2",
        "--dry-run",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("in 2 batch(es)")
            && out
                .stderr
                .contains("exec sh -e -c 'touch ran' ssh-deploy-exec 'it'\\''s'"),
        "{}",
        out.stderr
    );
    for index in 0..3 {
        assert!(!setup.root(index).join("ran").exists());
    }
}

/// Cancelling the step (SIGTERM to ssh-deploy, what the runner sends) while a long command runs
/// on every host: the wait ends at once, each host's command is stopped over a new connection
/// (its whole process group, so what it started goes too), and the run exits 130 saying so. It
/// used to wait for the commands, which kept running on the hosts after a cancel.
#[test]
fn sigterm_stops_the_commands_it_started_on_every_host_and_exits_130() {
    let setup = Setup::new();
    let mut command = setup.command(&[
        "--run",
        "sleep 300 & echo $! > sleep.pid; touch started; wait",
    ]);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = test_support::process::spawn(&mut command);
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    // Readiness: every host's command has started its child (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(0..3).all(|i| setup.root(i).join("started").exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the commands never started"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ssh-deploy ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sleepers: Vec<String> = (0..3)
        .map(|i| {
            std::fs::read_to_string(setup.root(i).join("sleep.pid"))
                .expect("pid")
                .trim()
                .to_owned()
        })
        .collect();
    let signalled = std::time::Instant::now();
    test_support::send_signal(&child, "TERM");
    let status = test_support::wait_for_exit(
        &mut child,
        std::time::Duration::from_secs(30),
        "ssh-deploy exec after SIGTERM",
    );
    let elapsed = signalled.elapsed();
    let stdout = out_thread.join().expect("stdout");
    let stderr = err_thread.join().expect("stderr");
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        elapsed < std::time::Duration::from_secs(15),
        "took {elapsed:?}"
    );
    // What was left running on the hosts: nothing (a zombie awaiting its reaper is gone too).
    for pid in &sleepers {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state.rsplit(") ").next().unwrap_or("").chars().next();
        assert!(
            matches!(state, None | Some('Z')),
            "sleep {pid} still runs on its host: {state:?}\n{stderr}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json outputs");
    assert_eq!(json["result"], "interrupted");
    for report in json["exec"].as_array().expect("exec list") {
        let error = report["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the command was stopped") || error.contains("was killed"),
            "{report}"
        );
    }
    assert!(
        stderr.contains("the command was stopped") || stderr.contains("was killed"),
        "{stderr}"
    );
}
