//! End to end over a real OpenSSH sshd on loopback: the binary deploys to a temp root,
//! services are small real processes restarted through `--service-manager custom`, and the
//! gate is health-gate against a real HTTP server started from the release.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::sshd::Sshd;
use test_support::{Output, SH_ALIVE, free_port, run, tool_command};

fn binary() -> Command {
    tool_command(env!("CARGO_BIN_EXE_ssh-deploy"))
}

/// A release tree whose `health.txt` says `version` (omitted when `healthy` is false).
fn artifact(dir: &Path, version: &str, healthy: bool) -> PathBuf {
    let tree = dir.join(format!("tree-{version}"));
    std::fs::create_dir_all(tree.join("bin")).expect("mkdir");
    std::fs::write(tree.join("VERSION"), format!("{version}\n")).expect("write");
    if healthy {
        std::fs::write(tree.join("health.txt"), version).expect("write");
    }
    let out = dir.join(format!("{version}.tar.gz"));
    ssh_deploy::pack::pack(&tree, &out, &dir.join(format!("{version}.json")), 0).expect("pack");
    out
}

/// The web server a restart command starts (`setsid ... &`) runs in a session of `sshd`:
/// dropping the Sshd guard stops it (issue 25, point 18: a pid-file guard dropped after the
/// temp dir holding the pid file left it running).
struct Fixture {
    sshd: Sshd,
    work: tempfile::TempDir,
    root: PathBuf,
    port: u16,
}

impl Fixture {
    fn new() -> Self {
        test_support::require_program("python3", "apt-get install -y python3");
        let sshd = Sshd::start();
        let work = tempfile::tempdir().expect("tmp");
        let root = work.path().join("it's app");
        let port = free_port();
        Self {
            sshd,
            work,
            root,
            port,
        }
    }

    fn gate_file(&self) -> PathBuf {
        let path = self.work.path().join("gate.yaml");
        std::fs::write(
            &path,
            format!(
                "checks:\n  - name: web\n    attempt_timeout: 1s\n    http: {{ url: 'http://{{host}}:{}/health.txt' }}\n    readiness: {{ interval: 50ms, deadline: 10s, fatal: [status] }}\n",
                self.port
            ),
        )
        .expect("write");
        path
    }

    /// The same check, reaching the service on the host's loopback through `{tunnel:PORT}`.
    fn tunnel_gate_file(&self) -> PathBuf {
        let path = self.work.path().join("tunnel-gate.yaml");
        std::fs::write(
            &path,
            format!(
                "checks:\n  - name: web\n    attempt_timeout: 1s\n    http: {{ url: 'http://{{tunnel:{}}}/health.txt' }}\n    readiness: {{ interval: 50ms, deadline: 10s, fatal: [status] }}\n",
                self.port
            ),
        )
        .expect("write");
        path
    }

    fn deploy(&self, artifact: &Path, release: &str, extra: &[&str]) -> Output {
        run(&mut self.command(artifact, release, extra))
    }

    fn command(&self, artifact: &Path, release: &str, extra: &[&str]) -> Command {
        let restart = format!(
            "web={SH_ALIVE}pid=\"$SSH_DEPLOY_ROOT/shared/web.pid\"; if [ -f \"$pid\" ]; then p=$(cat \"$pid\"); kill \"$p\" 2>/dev/null || true; while alive \"$p\"; do sleep 0.05; done; fi; setsid python3 -m http.server {} --bind 127.0.0.1 --directory \"$SSH_DEPLOY_ROOT/current/\" >/dev/null 2>&1 </dev/null & echo $! > \"$pid\"",
            self.port
        );
        let mut command = binary();
        command
            .arg("deploy")
            .env("SSH_DEPLOY_HOSTS", self.sshd.host("root"))
            .env("SSH_DEPLOY_ROOT", &self.root)
            .env("SSH_DEPLOY_PRIVATE_KEY", self.sshd.user_key())
            .env("SSH_DEPLOY_KNOWN_HOSTS", self.sshd.known_hosts_line())
            .env("SSH_DEPLOY_ARTIFACT", artifact)
            .env("SSH_DEPLOY_RELEASE_ID", release)
            .env("SSH_DEPLOY_SERVICES", "web")
            .env("SSH_DEPLOY_SERVICE_MANAGER", "custom")
            .env("SSH_DEPLOY_RESTART_COMMAND", restart)
            .env("SSH_DEPLOY_GATE_FILE", self.gate_file())
            .env("SSH_DEPLOY_SHARED", "data/")
            .args(extra);
        command
    }

    fn current(&self) -> String {
        std::fs::read_link(self.root.join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn serving(&self) -> String {
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("web server is up");
        use std::io::{Read, Write};
        stream
            .write_all(b"GET /health.txt HTTP/1.0\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }
}

#[test]
fn first_deploy_then_redeploy_of_the_same_sha() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let out = fx.deploy(&v1, "v1", &[]);
    assert_eq!(out.code, Some(0), "{out:?}\n{}", fx.sshd.log());
    assert_eq!(fx.current(), "releases/v1");
    assert_eq!(fx.serving(), "v1");
    assert!(
        fx.root.join("releases/v1/data").is_symlink(),
        "shared path linked"
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json outputs");
    assert_eq!(json["result"], "success");
    assert_eq!(json["release-id"], "v1");
    assert!(!fx.root.join(".ssh-deploy/lock").exists(), "lock released");

    let again = fx.deploy(&v1, "v1", &[]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(again.stderr.contains("upload skipped"), "{}", again.stderr);
    assert_eq!(fx.current(), "releases/v1");
    let log = std::fs::read_to_string(fx.root.join(".ssh-deploy/log")).expect("release log");
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.lines()
            .all(|l| l.starts_with("v1\t") && l.ends_with("\tsuccess")),
        "{log}"
    );
}

#[test]
fn failed_gate_rolls_back_and_the_old_release_serves_again() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let v2 = artifact(fx.work.path(), "v2", false);
    assert_eq!(fx.deploy(&v1, "v1", &[]).code, Some(0));
    let out = fx.deploy(&v2, "v2", &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("rolled back"), "{}", out.stderr);
    assert!(out.stderr.contains("health gate failed"), "{}", out.stderr);
    assert_eq!(fx.current(), "releases/v1");
    assert_eq!(fx.serving(), "v1");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["result"], "rolled-back");
    assert_eq!(json["previous-release-id"], "v1");
}

/// A first deploy whose gate fails has no release to roll back to. It used to end as
/// "rollback failed: no previous release" (exit 4) without naming the failed check. Now: the
/// failed check is named, the missing previous release is said as such, the new release's
/// service is stopped (`--stop-command`) and `current` removed, and the exit code is the failed
/// gate's (1, `result: failed`).
#[test]
fn a_first_deploy_whose_gate_fails_names_the_check_and_withdraws_the_release() {
    let fx = Fixture::new();
    // Without a way to stop the service, the report says it is still running.
    let v0 = artifact(fx.work.path(), "v0", false);
    let out = fx.deploy(&v0, "v0", &[]);
    assert_eq!(out.code, Some(1), "{out:?}\n{}", fx.sshd.log());
    assert!(
        out.stderr
            .contains("still running (no --stop-command): web"),
        "{}",
        out.stderr
    );
    assert_eq!(fx.current(), "", "`current` was removed");
    let v1 = artifact(fx.work.path(), "v1", false);
    let stop = format!(
        "web={SH_ALIVE}p=$(cat \"$SSH_DEPLOY_ROOT/shared/web.pid\"); kill \"$p\"; while alive \"$p\"; do sleep 0.05; done"
    );
    let out = fx.deploy(&v1, "v1", &["--stop-command", &stop]);
    assert_eq!(out.code, Some(1), "{out:?}\n{}", fx.sshd.log());
    assert!(
        out.stderr.contains("health gate failed") && out.stderr.contains("web"),
        "the failed check is named: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("no previous release to roll back to"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("rollback failed"),
        "nothing to roll back to is not a failed rollback: {}",
        out.stderr
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["result"], "failed");
    let error = json["hosts"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("health gate failed") && error.contains("withdrawn"),
        "{error}"
    );
    assert_eq!(fx.current(), "", "`current` was removed");
    assert!(
        fx.root.join("releases/v1/VERSION").is_file(),
        "kept to inspect"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", fx.port)).is_err(),
        "the new release's service was stopped"
    );
    // The next deploy is a first deploy again, and goes through.
    let v2 = artifact(fx.work.path(), "v2", true);
    let out = fx.deploy(&v2, "v2", &["--stop-command", &stop]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fx.current(), "releases/v2");
    assert_eq!(fx.serving(), "v2");
}

/// Issue 21, "Also": the step summary shows what ran where as a table (with each phase's
/// time) and a mermaid timeline of every host's phases (upload, switch, gate, rollback). Host
/// labels hold `:` (`root@127.0.0.1:PORT`), a mermaid statement separator, and the release id
/// every character a release id may hold: nothing reaches the chart unreduced (the runner
/// protocol's unit test feeds it HTML, fences and mermaid directives).
#[test]
fn the_step_summary_has_a_table_and_a_mermaid_timeline_of_each_hosts_phases() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let bad = artifact(fx.work.path(), "v2", false);
    assert_eq!(fx.deploy(&v1, "v1", &[]).code, Some(0));
    let summary = fx.work.path().join("summary.md");
    let mut command = fx.command(&bad, "v2.0_rc-1", &[]);
    command
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", fx.work.path().join("output"))
        .env("GITHUB_STEP_SUMMARY", &summary);
    let out = run(&mut command);
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = std::fs::read_to_string(&summary).expect("summary");
    assert_eq!(text.matches("```").count(), 2, "one fenced chart: {text}");
    let chart: Vec<&str> = text
        .split("```mermaid\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a mermaid block")
        .lines()
        .collect();
    assert_eq!(chart[0], "gantt", "{text}");
    assert!(
        chart.contains(&"    title ssh-deploy v2.0_rc-1_ timeline"),
        "{text}"
    );
    let label = fx.sshd.host("root").replace(':', "_");
    assert!(
        chart.contains(&format!("    section {label}").as_str()),
        "{text}"
    );
    let mut phases = Vec::new();
    for line in &chart[4..] {
        if line.starts_with("    section ") {
            continue;
        }
        // `    NAME :START, END`, nothing else.
        let (name, times) = line.trim_start().split_once(" :").expect("a task line");
        let (start, end) = times.split_once(", ").expect("start, end");
        let (start, end): (u64, u64) = (start.parse().expect("ms"), end.parse().expect("ms"));
        assert!(start < end, "{line}");
        phases.push(name.to_owned());
    }
    assert_eq!(phases, ["upload", "switch", "gate", "rollback"], "{text}");
    // The table: what ran where, with each phase's time.
    assert!(
        text.contains("| host | result | previous release | time | phases | error |"),
        "{text}"
    );
    assert!(text.contains("rolled-back"), "{text}");
    assert!(
        text.contains("upload ") && text.contains("s, gate "),
        "{text}"
    );
}

#[test]
fn a_gate_through_an_ssh_tunnel_reaches_a_loopback_only_service_and_rolls_back() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let v2 = artifact(fx.work.path(), "v2", false);
    let gate = fx.tunnel_gate_file();
    let gate = gate.to_str().expect("utf-8");
    let out = fx.deploy(&v1, "v1", &["--gate-file", gate]);
    assert_eq!(out.code, Some(0), "{out:?}\n{}", fx.sshd.log());
    assert_eq!(fx.serving(), "v1");
    // The gate's URL names the tunnel's own loopback port, never the service's: a failure to
    // forward shows up as a failed gate.
    let out = fx.deploy(&v2, "v2", &["--gate-file", gate]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("health gate failed"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(&format!("127.0.0.1:{}/", fx.port)),
        "the gate went through the tunnel: {}",
        out.stderr
    );
    assert_eq!(fx.current(), "releases/v1");
    assert_eq!(fx.serving(), "v1");
    // Nothing listens on the tunnelled port: the gate fails on the connection, plainly; the
    // rollback's re-check uses the same gate and fails too, so the exit says "rollback failed"
    // while `current` is back on v1.
    let idle = free_port();
    let dead = fx.work.path().join("dead-gate.yaml");
    std::fs::write(
        &dead,
        format!(
            "checks:\n  - name: web\n    attempt_timeout: 1s\n    http: {{ url: 'http://{{tunnel:{idle}}}/' }}\n    readiness: {{ interval: 50ms, deadline: 1s }}\n"
        ),
    )
    .expect("write");
    let v3 = artifact(fx.work.path(), "v3", true);
    let out = fx.deploy(&v3, "v3", &["--gate-file", dead.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("health gate failed"), "{}", out.stderr);
    assert!(out.stderr.contains("rollback failed"), "{}", out.stderr);
    assert_eq!(fx.current(), "releases/v1");
    assert_eq!(fx.serving(), "v1");
}

#[test]
fn wrong_host_key_is_refused_with_the_offered_fingerprint() {
    let fx = Fixture::new();
    let other = Sshd::start();
    let v1 = artifact(fx.work.path(), "v1", true);
    let wrong = other.known_hosts_line().replace(
        &format!(":{}", other.port()),
        &format!(":{}", fx.sshd.port()),
    );
    let out = run(binary()
        .arg("deploy")
        .env("SSH_DEPLOY_HOSTS", fx.sshd.host("root"))
        .env("SSH_DEPLOY_ROOT", &fx.root)
        .env("SSH_DEPLOY_PRIVATE_KEY", fx.sshd.user_key())
        .env("SSH_DEPLOY_KNOWN_HOSTS", wrong)
        .env("SSH_DEPLOY_ARTIFACT", &v1)
        .env("SSH_DEPLOY_SERVICE_MANAGER", "custom"));
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("has CHANGED"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&fx.sshd.fingerprint()),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&fx.sshd.known_hosts_line()),
        "{}",
        out.stderr
    );
    assert!(!fx.root.exists(), "nothing touched on the host");

    let unknown = run(binary()
        .arg("releases")
        .env("SSH_DEPLOY_HOSTS", fx.sshd.host("root"))
        .env("SSH_DEPLOY_ROOT", &fx.root)
        .env("SSH_DEPLOY_PRIVATE_KEY", fx.sshd.user_key())
        .env("SSH_DEPLOY_HOST_KEY_FINGERPRINT", "127.0.0.9=SHA256:x"));
    assert_eq!(unknown.code, Some(3), "{unknown:?}");
    assert!(
        unknown.stderr.contains("is not known"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_held_lock_refuses_naming_the_holder_until_unlocked() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let lock = fx.root.join(".ssh-deploy/lock");
    std::fs::create_dir_all(&lock).expect("mkdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    std::fs::write(
        lock.join("owner"),
        format!("token=other\nowner=alice\nrun=https://ci/run/7\nsince={now}\n"),
    )
    .expect("write");
    let out = fx.deploy(&v1, "v1", &[]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("alice (run https://ci/run/7)"),
        "{}",
        out.stderr
    );
    assert!(
        lock.join("owner").exists(),
        "someone else's lock is never removed"
    );
    assert_eq!(fx.current(), "");

    let unlock = run(binary()
        .arg("unlock")
        .env("SSH_DEPLOY_HOSTS", fx.sshd.host("root"))
        .env("SSH_DEPLOY_ROOT", &fx.root)
        .env("SSH_DEPLOY_PRIVATE_KEY", fx.sshd.user_key())
        .env("SSH_DEPLOY_HOST_KEY_FINGERPRINT", fx.sshd.fingerprint()));
    assert_eq!(unlock.code, Some(0), "{unlock:?}");
    assert!(unlock.stderr.contains("held by alice"), "{}", unlock.stderr);
    assert_eq!(fx.deploy(&v1, "v1", &[]).code, Some(0));
}

/// Another run's lock on the host, as `ssh-deploy` writes it (owner file, lease far ahead).
fn foreign_lock(root: &Path) -> PathBuf {
    let lock = root.join(".ssh-deploy/lock");
    std::fs::create_dir_all(&lock).expect("mkdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    std::fs::write(
        lock.join("owner"),
        format!("token=other\nowner=alice\nrun=https://ci/run/7\nsince={now}\n"),
    )
    .expect("write");
    std::fs::write(lock.join("lease"), format!("{}\n", now + 3600)).expect("write");
    lock
}

/// A deploy running in the background: its stderr lines arrive on a channel as they are
/// written, so a test can wait for one (bounded) before acting.
struct Background {
    child: test_support::process::ChildGuard,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    stdout: std::thread::JoinHandle<String>,
}

impl Background {
    fn start(command: &mut Command) -> Self {
        use std::io::BufRead as _;
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = test_support::process::spawn(command);
        let err = child.stderr.take().expect("stderr");
        let mut out = child.stdout.take().expect("stdout");
        let (send, lines) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
                let _ = send.send(line);
            }
            text
        });
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            text
        });
        Self {
            child,
            lines,
            stderr,
            stdout,
        }
    }

    /// Waits (at most 60 s) for a stderr line containing `needle`; returns it.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(error) => panic!("no stderr line with `{needle}` ({error})"),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (at most 120 s) for the exit; the output as `run` gives it.
    fn finish(mut self) -> Output {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                self.child.stop();
                panic!(
                    "the deploy did not end within 120 s:\n{}",
                    self.stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Output {
            code: status.code(),
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }
}

/// Nothing of this run reached the host: no release or temp dir, no artifact, no switch (the
/// lock attempt itself makes the empty layout directories).
fn assert_untouched(root: &Path) {
    let entries = |dir: &str| -> Vec<String> {
        std::fs::read_dir(root.join(dir))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        entries("releases"),
        Vec::<String>::new(),
        "no release unpacked"
    );
    assert_eq!(
        entries(".ssh-deploy/artifacts"),
        Vec::<String>::new(),
        "nothing uploaded"
    );
    assert!(!root.join("current").exists(), "nothing switched");
}

#[test]
fn lock_wait_names_the_holder_and_deploys_once_the_lock_is_released() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let lock = foreign_lock(&fx.root);
    let deploy = Background::start(&mut fx.command(&v1, "v1", &["--lock-wait", "90s"]));
    let waiting = deploy.wait_for("waiting up to");
    assert!(
        waiting.contains("alice (run https://ci/run/7)"),
        "{waiting}"
    );
    assert_untouched(&fx.root);
    // The holder finishes: its lock goes away, and the waiting deploy goes ahead.
    std::fs::remove_dir_all(&lock).expect("unlock");
    let out = deploy.finish();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fx.current(), "releases/v1");
    assert_eq!(
        out.stderr.matches("waiting up to").count(),
        1,
        "the holder is named once\n{}",
        out.stderr
    );
    assert!(!lock.exists(), "our lock released");
}

#[test]
fn lock_wait_times_out_with_exit_3_and_nothing_changed() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let lock = foreign_lock(&fx.root);
    let started = std::time::Instant::now();
    let out = fx.deploy(&v1, "v1", &["--lock-wait", "2s"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "waited the whole 2 s"
    );
    assert!(
        out.stderr.contains("still holds the lock after waiting 2s")
            && out.stderr.contains("alice (run https://ci/run/7)"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_to_string(lock.join("owner"))
            .expect("owner")
            .contains("owner=alice"),
        "the holder's lock is left as it was"
    );
    assert_untouched(&fx.root);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json outputs");
    assert_eq!(json["result"], "failed");
}

#[test]
fn sigterm_while_waiting_for_the_lock_leaves_nothing() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let lock = foreign_lock(&fx.root);
    let deploy = Background::start(&mut fx.command(&v1, "v1", &["--lock-wait", "10m"]));
    deploy.wait_for("waiting up to");
    deploy.signal("TERM");
    let out = deploy.finish();
    assert_eq!(out.code, Some(130), "{out:?}");
    assert!(
        out.stderr.contains("nothing was switched"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_to_string(lock.join("owner"))
            .expect("owner")
            .contains("owner=alice"),
        "the holder's lock is left as it was"
    );
    assert_untouched(&fx.root);
}

#[test]
fn the_dry_run_plan_shows_the_lock_wait() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    let out = fx.deploy(&v1, "v1", &["--lock-wait", "5m", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("lock: a lock another run holds is waited for up to 300s"),
        "{}",
        out.stderr
    );
    let out = fx.deploy(&v1, "v1", &["--dry-run"]);
    assert!(
        out.stderr
            .contains("fails the host at once (--lock-wait 0s)"),
        "{}",
        out.stderr
    );
}

#[test]
fn retention_keeps_the_newest_and_rollback_lists_and_switches() {
    let fx = Fixture::new();
    for n in 1..=4 {
        let a = artifact(fx.work.path(), &format!("v{n}"), true);
        let out = fx.deploy(&a, &format!("v{n}"), &["--keep-releases=2"]);
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let mut left: Vec<String> = std::fs::read_dir(fx.root.join("releases"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["v3", "v4"]);

    let releases = run(binary()
        .arg("releases")
        .env("SSH_DEPLOY_HOSTS", fx.sshd.host("root"))
        .env("SSH_DEPLOY_ROOT", &fx.root)
        .env("SSH_DEPLOY_PRIVATE_KEY", fx.sshd.user_key())
        .env("SSH_DEPLOY_KNOWN_HOSTS", fx.sshd.known_hosts_line()));
    assert_eq!(releases.code, Some(0), "{releases:?}");
    assert!(releases.stderr.contains("* v4"), "{}", releases.stderr);
    // The `releases` output is a typed JSON object (host -> list), not a string (#17).
    let json: serde_json::Value = serde_json::from_str(&releases.stdout).expect("json outputs");
    let listed = json["releases"]
        .as_object()
        .and_then(|hosts| hosts.values().next())
        .and_then(serde_json::Value::as_array)
        .unwrap_or_else(|| panic!("releases is an object of lists: {json}"));
    let current: Vec<&str> = listed
        .iter()
        .filter(|r| r["current"] == true)
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(current, ["v4"], "{json}");
}

#[test]
fn unwritable_releases_dir_fails_clearly_and_switches_nothing() {
    let fx = Fixture::new();
    std::fs::create_dir_all(&fx.root).expect("mkdir");
    // Root ignores permission bits, so "cannot write releases/" is made real with a file.
    std::fs::write(fx.root.join("releases"), "not a directory").expect("write");
    let v1 = artifact(fx.work.path(), "v1", true);
    let out = fx.deploy(&v1, "v1", &[]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("releases"), "{}", out.stderr);
    assert!(
        out.stderr.contains("File exists") || out.stderr.contains("Not a directory"),
        "{}",
        out.stderr
    );
    assert_eq!(fx.current(), "");
}

#[test]
fn hostile_release_ids_and_archives_are_refused_before_connecting() {
    let work = tempfile::tempdir().expect("tmp");
    let good = artifact(work.path(), "v1", true);
    let deploy = |artifact: &Path, id: &str| {
        run(binary()
            .arg("deploy")
            .env("SSH_DEPLOY_HOSTS", "local")
            .env("SSH_DEPLOY_ROOT", work.path().join("root"))
            .env("SSH_DEPLOY_ARTIFACT", artifact)
            .env("SSH_DEPLOY_RELEASE_ID", id)
            .env("SSH_DEPLOY_SERVICE_MANAGER", "custom"))
    };
    for id in ["../../etc", "$(touch pwned)", "-rf", "a'b"] {
        let out = deploy(&good, id);
        assert_eq!(out.code, Some(2), "{id}: {out:?}");
        assert!(out.stderr.contains("release id"), "{}", out.stderr);
    }
    for (name, entry, kind, link) in [
        ("dotdot", "../escape", tar::EntryType::Regular, ""),
        ("absolute", "/etc/evil", tar::EntryType::Regular, ""),
        (
            "symlink",
            "link",
            tar::EntryType::Symlink,
            "../../../etc/passwd",
        ),
        (
            "abs-symlink",
            "link",
            tar::EntryType::Symlink,
            "/etc/passwd",
        ),
        ("hardlink", "hard", tar::EntryType::Link, "/etc/passwd"),
    ] {
        let path = work.path().join(format!("{name}.tar.gz"));
        hostile_archive(&path, entry, kind, link);
        let out = deploy(&path, "v1");
        assert_eq!(out.code, Some(2), "{name}: {out:?}");
        assert!(
            out.stderr.contains(&format!("entry `{entry}`")),
            "{name}: {}",
            out.stderr
        );
    }
    assert!(!work.path().join("root").exists(), "nothing created");
}

/// Writes a one-entry tar.gz with raw header fields (the tar crate refuses `..` and `/`).
fn hostile_archive(path: &Path, name: &str, kind: tar::EntryType, link: &str) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(0);
    header.set_cksum();
    let file = std::fs::File::create(path).expect("create");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    builder.append(&header, std::io::empty()).expect("append");
    builder.into_inner().expect("tar").finish().expect("gz");
}

#[test]
fn local_transport_deploys_with_hostile_root_path() {
    let work = tempfile::tempdir().expect("tmp");
    let v1 = artifact(work.path(), "v1", true);
    let root = work.path().join("r $(touch pwned) 'x'");
    let marker = work.path().join("restarted");
    let out = run(binary()
        .arg("deploy")
        .current_dir(work.path())
        .env("SSH_DEPLOY_HOSTS", "local")
        .env("SSH_DEPLOY_ROOT", &root)
        .env("SSH_DEPLOY_ARTIFACT", &v1)
        .env("SSH_DEPLOY_RELEASE_ID", "v1")
        .env("SSH_DEPLOY_SERVICES", "api")
        .env("SSH_DEPLOY_SERVICE_MANAGER", "custom")
        .env(
            "SSH_DEPLOY_RESTART_COMMAND",
            format!("api=cat VERSION > '{}'", marker.display()),
        ));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(std::fs::read_to_string(&marker).expect("restarted"), "v1\n");
    assert!(!work.path().join("pwned").exists());
    assert_eq!(
        std::fs::read_link(root.join("current")).expect("current"),
        PathBuf::from("releases/v1")
    );
}

/// Issue #22, point 1: the migration runs in the new release directory after the unpack and
/// before the switch.
#[test]
fn the_migration_runs_in_the_new_release_before_the_switch_and_a_failure_switches_nothing() {
    let fx = Fixture::new();
    let v1 = artifact(fx.work.path(), "v1", true);
    assert_eq!(fx.deploy(&v1, "v1", &[]).code, Some(0));

    let v2 = artifact(fx.work.path(), "v2", true);
    let out = fx.deploy(
        &v2,
        "v2",
        &[
            "--migrate",
            "readlink ../../current > seen-current; pwd > seen-dir",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let release = fx.root.join("releases/v2");
    assert_eq!(
        std::fs::read_to_string(release.join("seen-current")).expect("ran"),
        "releases/v1\n",
        "before the switch"
    );
    assert_eq!(
        std::fs::read_to_string(release.join("seen-dir")).expect("ran"),
        format!("{}\n", release.display()),
        "in the new release directory"
    );
    assert_eq!(fx.current(), "releases/v2");

    let v3 = artifact(fx.work.path(), "v3", true);
    let out = fx.deploy(
        &v3,
        "v3",
        &[
            "--migrate",
            "echo half > started; false; echo never > finished",
        ],
    );
    assert_eq!(out.code, Some(3), "nothing switched: exit 3\n{out:?}");
    assert!(
        out.stderr.contains("migrate: exited with status 1"),
        "{}",
        out.stderr
    );
    assert!(fx.root.join("releases/v3/started").exists(), "it ran");
    assert!(!fx.root.join("releases/v3/finished").exists(), "errexit");
    assert_eq!(fx.current(), "releases/v2", "nothing switched");
    assert_eq!(fx.serving(), "v2");
    assert!(!fx.root.join(".ssh-deploy/lock").exists(), "unlocked");
}

/// Issue #22, point 2: hooks on the runner and on the host, in order, with their environment;
/// a failing pre-switch hook stops the deploy with nothing switched; a failing post-deploy hook
/// is a warning, or fails the step with --hooks-strict; on-rollback runs after a rollback.
#[test]
fn hooks_run_in_order_with_their_environment_and_pre_hooks_can_stop_the_deploy() {
    let fx = Fixture::new();
    let log = fx.work.path().join("hooks.log");
    // The root's name holds a quote; the hooks read `current` through a plain-named link.
    let root = fx.work.path().join("root-link");
    std::os::unix::fs::symlink(&fx.root, &root).expect("symlink");
    let line = |event: &str, side: &str| {
        format!(
            "{event}@{side}=echo \"{event} {side} release=$SSH_DEPLOY_RELEASE previous=$SSH_DEPLOY_PREVIOUS_RELEASE host=$SSH_DEPLOY_HOST strategy=$SSH_DEPLOY_STRATEGY result=$SSH_DEPLOY_RESULT current=$(readlink {root}/current)\" >> '{log}'",
            root = root.display(),
            log = log.display()
        )
    };
    let hooks = [
        line("pre-deploy", "runner"),
        line("pre-deploy", "hosts"),
        line("pre-switch", "hosts"),
        line("post-switch", "hosts"),
        line("post-deploy", "hosts"),
        line("post-deploy", "runner"),
        line("on-rollback", "hosts"),
        line("on-rollback", "runner"),
    ]
    .join("\n");
    let v1 = artifact(fx.work.path(), "v1", true);
    assert_eq!(fx.deploy(&v1, "v1", &[]).code, Some(0));
    let v2 = artifact(fx.work.path(), "v2", true);
    let out = fx.deploy(&v2, "v2", &["--hook", &hooks]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = std::fs::read_to_string(&log).expect("hooks ran");
    let events: Vec<&str> = text
        .lines()
        .map(|l| l.split(" release=").next().unwrap_or_default())
        .collect();
    assert_eq!(
        events,
        [
            "pre-deploy runner",
            "pre-deploy hosts",
            "pre-switch hosts",
            "post-switch hosts",
            "post-deploy hosts",
            "post-deploy runner"
        ],
        "{text}"
    );
    assert!(
        text.contains("pre-switch hosts release=v2 previous=v1 host=127.0.0.1 strategy=symlink result= current=releases/v1"),
        "{text}"
    );
    assert!(text.contains("post-switch hosts release=v2 previous=v1 host=127.0.0.1 strategy=symlink result= current=releases/v2"), "{text}");
    assert!(
        text.contains(
            "post-deploy runner release=v2 previous= host= strategy=symlink result=success"
        ),
        "{text}"
    );

    // A failing pre-switch hook: nothing switched, exit 3 like any refusal before a switch.
    std::fs::remove_file(&log).expect("rm");
    let v3 = artifact(fx.work.path(), "v3", true);
    let out = fx.deploy(&v3, "v3", &["--hook", "pre-switch@hosts=echo no; exit 4"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("hook pre-switch: exited with status 4"),
        "{}",
        out.stderr
    );
    assert_eq!(fx.current(), "releases/v2");
    // A failing runner pre-deploy hook: nothing deployed, exit 1.
    let out = fx.deploy(&v3, "v3", &["--hook", "pre-deploy=exit 2"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("nothing was deployed"),
        "{}",
        out.stderr
    );
    assert_eq!(fx.current(), "releases/v2");

    // A failing post-deploy hook is a warning; with --hooks-strict it fails the step.
    let out = fx.deploy(&v3, "v3", &["--hook", "post-deploy=exit 5"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("warning: the post-deploy hook `exit 5` failed"),
        "{}",
        out.stderr
    );
    let out = fx.deploy(
        &v3,
        "v3",
        &["--hook", "post-deploy=exit 5", "--hooks-strict"],
    );
    assert_eq!(out.code, Some(1), "{out:?}");

    // A failed gate: the host is rolled back, on-rollback runs on the host and the runner.
    let v4 = artifact(fx.work.path(), "v4", false);
    let out = fx.deploy(&v4, "v4", &["--hook", &hooks]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(fx.current(), "releases/v3");
    let text = std::fs::read_to_string(&log).expect("hooks ran");
    assert!(text.contains("on-rollback hosts release=v4 previous=v3 host=127.0.0.1 strategy=symlink result=rolled-back current=releases/v3"), "{text}");
    assert!(
        text.contains(
            "on-rollback runner release=v4 previous= host= strategy=symlink result=rolled-back"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "post-deploy runner release=v4 previous= host= strategy=symlink result=rolled-back"
        ),
        "{text}"
    );
    assert!(
        !text.contains("post-deploy hosts release=v4"),
        "only hosts that kept the release\n{text}"
    );

    let out = fx.deploy(
        &v4,
        "v4",
        &[
            "--dry-run",
            "--hook",
            "pre-switch@hosts=./check",
            "--migrate",
            "./migrate",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("migration: `./migrate` in the new release directory on the first host"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hook pre-switch on each host: `./check` (a failure stops the deploy)"),
        "{}",
        out.stderr
    );
}
