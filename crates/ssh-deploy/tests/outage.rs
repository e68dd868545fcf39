//! A host that dies mid-deploy (issue #25, points 6 to 9), on a real fleet: three hosts, each
//! its own network namespace with its own OpenSSH sshd (test-support's `Fleet`). One host's
//! link is taken down in the middle of its upload; the deploy must notice within its stall
//! timeout (not the kernel's 15 minutes), roll the other hosts back, end with exit 3 within its
//! documented bounds, and leave a lock the next run can take over at once (its lease ran out),
//! cleaning the partial upload it finds.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use test_support::fleet::Fleet;
use test_support::{run, tool_command};

fn binary() -> Command {
    tool_command(env!("CARGO_BIN_EXE_ssh-deploy"))
}

/// A release with `padding` bytes of incompressible data (the upload takes a while on a
/// throttled link).
fn artifact(dir: &Path, version: &str, padding: usize) -> PathBuf {
    let tree = dir.join(format!("tree-{version}"));
    std::fs::create_dir_all(tree.join("bin")).expect("mkdir");
    std::fs::write(tree.join("VERSION"), format!("{version}\n")).expect("write");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d ^ padding as u64;
    let data: Vec<u8> = (0..padding)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(tree.join("bin/blob"), data).expect("write");
    let out = dir.join(format!("{version}.tar.gz"));
    ssh_deploy::pack::pack(&tree, &out, &dir.join(format!("{version}.json")), 0).expect("pack");
    out
}

struct Setup {
    fleet: Fleet,
    work: tempfile::TempDir,
    inventory: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let fleet = Fleet::start(3);
        let work = tempfile::tempdir().expect("tmp");
        // The hosts share this machine's file system: one deploy root each.
        let mut text = String::from("user: root\ngroups:\n  all:\n    hosts:\n");
        for (index, host) in fleet.hosts().iter().enumerate() {
            text.push_str(&format!(
                "      host-{index}: {{ address: {}, port: {}, root: '{}' }}\n",
                host.address(),
                host.port(),
                work.path().join(format!("root-{index}")).display()
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

    fn current(&self, index: usize) -> String {
        std::fs::read_link(self.root(index).join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn command(&self, artifact: &Path, release: &str, extra: &[&str]) -> Command {
        let mut command = binary();
        command
            .arg("deploy")
            .env("SSH_DEPLOY_INVENTORY", &self.inventory)
            .env("SSH_DEPLOY_PRIVATE_KEY", self.fleet.user_key())
            .env("SSH_DEPLOY_KNOWN_HOSTS", self.fleet.known_hosts())
            .env("SSH_DEPLOY_ARTIFACT", artifact)
            .env("SSH_DEPLOY_RELEASE_ID", release)
            .args(["--connect-timeout", "5s"])
            .args(extra);
        command
    }

    /// The size of `index`'s partial upload, if one is there.
    fn partial_upload(&self, index: usize) -> Option<u64> {
        std::fs::read_dir(self.root(index).join(".ssh-deploy/artifacts"))
            .ok()?
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().contains(".part-"))
            .and_then(|e| e.metadata().ok())
            .map(|m| m.len())
    }
}

/// A deploy running in the background, its stderr read on a thread (a deploy that hangs must
/// still show what it said).
struct Running {
    child: test_support::process::ChildGuard,
    reader: std::thread::JoinHandle<String>,
}

impl Running {
    fn start(command: &mut Command) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = test_support::process::spawn(command);
        let mut pipe = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        });
        Self { child, reader }
    }

    /// Waits until a megabyte of host `index`'s upload has arrived (bounded).
    fn wait_for_upload(&mut self, setup: &Setup, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while setup.partial_upload(index).unwrap_or(0) < 1 << 20 {
            assert!(
                Instant::now() < deadline,
                "host {index}'s upload never reached 1 MB"
            );
            assert!(
                self.child.try_wait().expect("wait").is_none(),
                "the deploy ended early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit, at most `limit` after `since`: the status, its stderr and the time
    /// since `since`. Past the limit the deploy is killed and the test fails with what it said.
    fn finish(
        mut self,
        since: Instant,
        limit: Duration,
        what: &str,
    ) -> (ExitStatus, String, Duration) {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if since.elapsed() > limit {
                self.child.stop();
                panic!(
                    "the deploy did not end within {limit:?} after {what}:\n{}",
                    self.reader.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = since.elapsed();
        (status, self.reader.join().unwrap_or_default(), took)
    }
}

#[test]
fn a_link_down_mid_upload_is_noticed_within_the_stall_timeout_and_the_rerun_goes_through() {
    let setup = Setup::new();
    let v1 = artifact(setup.work.path(), "v1", 1024);
    let first = run(&mut setup.command(&v1, "v1", &[]));
    assert_eq!(first.code, Some(0), "{first:?}");

    // Host 1's link carries 4 Mbit/s: its 6 MB upload takes about 12 s, the others' a blink.
    let victim = &setup.fleet.hosts()[1];
    victim.limit_rate(4_000_000);
    let v2 = artifact(setup.work.path(), "v2", 6 << 20);
    let mut deploy = setup.command(
        &v2,
        "v2",
        &[
            "--stall-timeout",
            "3s",
            "--lock-lease",
            "6s",
            "--max-parallel",
            "3",
        ],
    );
    let output_file = setup.work.path().join("outputs");
    deploy.env("GITHUB_OUTPUT", &output_file);
    let mut running = Running::start(&mut deploy);
    // Wait until a megabyte of host 1's upload has arrived, then cut its link for good.
    running.wait_for_upload(&setup, 1);
    victim.link_down();
    let (status, stderr, noticed) = running.finish(
        Instant::now(),
        Duration::from_secs(120),
        "the link went down",
    );
    eprintln!("the deploy ended {noticed:?} after host 1's link went down");
    // The stall timeout (3 s) plus the reconnect attempts to release the lock (connect timeout
    // 5 s each), far below the kernel's retransmission timeout.
    assert!(
        noticed < Duration::from_secs(45),
        "took {noticed:?} after the link went down\n{stderr}"
    );
    assert_eq!(
        status.code(),
        Some(3),
        "exit 3: the network failed\n{stderr}"
    );
    // Whichever bound fires first names the upload on host 1: our watchdog ("no progress for
    // 3s") or the kernel's TCP_USER_TIMEOUT on the same socket (libssh2: "Timed out waiting on
    // socket"), both far below the kernel's default 15 minutes.
    let victim_label = format!("host-1 (root@{}", victim.address());
    assert!(
        stderr.lines().any(|line| line.starts_with("error:")
            && line.contains(&victim_label)
            && line.contains("upload")
            && (line.contains("no progress for 3s") || line.contains("Timed out"))),
        "the stalled upload is named\n{stderr}"
    );
    for index in [0, 2] {
        assert!(
            setup.current(index).ends_with("releases/v1"),
            "host {index} rolled back: {}\n{stderr}",
            setup.current(index)
        );
        assert!(!setup.root(index).join(".ssh-deploy/lock").exists());
    }
    assert!(setup.current(1).ends_with("releases/v1"));
    let outputs = std::fs::read_to_string(&output_file).unwrap_or_default();
    assert!(outputs.contains("rolled-back"), "{outputs}");

    // The link comes back. Host 1 still has the dead run's lock and partial upload. Its renewer
    // stopped once the upload stopped growing, so the lease (6 s) runs out: wait for that (the
    // host's own clock, in the lock's lease file), then the re-run takes the lock over at once
    // and cleans the partial upload.
    victim.link_up();
    victim.clear_rate_limit();
    let lease_file = setup.root(1).join(".ssh-deploy/lock/lease");
    let lease: u64 = std::fs::read_to_string(&lease_file)
        .expect("host 1 kept the dead run's lock and its lease")
        .trim()
        .parse()
        .expect("lease");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let renewed: u64 = std::fs::read_to_string(&lease_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(lease);
        if now > renewed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lease was renewed for a dead run"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rerun = run(&mut setup.command(&v2, "v2", &["--lock-lease", "6s"]));
    assert_eq!(rerun.code, Some(0), "{rerun:?}");
    assert!(rerun.stderr.contains("lease ran out"), "{}", rerun.stderr);
    // The dead run's partial upload is gone either way: removed by the re-run once it holds the
    // lock (it says so), or by the host itself when the link came back and the old connection's
    // reset ended its upload (whose checksum check then removes the short file).
    for index in 0..3 {
        assert!(setup.current(index).ends_with("releases/v2"));
        assert!(setup.partial_upload(index).is_none());
    }
}

/// Point 8: a signal is honoured in every state, including an upload blocked in a write (it
/// used to take SIGKILL): host 1's link drops to 8 kbit/s mid-upload, so every write blocks
/// for minutes while the connection stays alive (a dead link instead races the kernel's and
/// libssh2's own timeouts against the signal); with a long stall timeout and no keepalives,
/// SIGTERM alone ends the deploy within seconds, with exit 130 and every switched host back on
/// its previous release.
#[test]
fn sigterm_ends_an_upload_blocked_in_a_write() {
    let setup = Setup::new();
    let v1 = artifact(setup.work.path(), "v1", 1024);
    let first = run(&mut setup.command(&v1, "v1", &[]));
    assert_eq!(first.code, Some(0), "{first:?}");
    let victim = &setup.fleet.hosts()[1];
    victim.limit_rate(4_000_000);
    let v2 = artifact(setup.work.path(), "v2", 6 << 20);
    let mut deploy = setup.command(
        &v2,
        "v2",
        // No keepalives (libssh2 would otherwise end a blocked write after one interval) and a
        // long stall timeout: only the signal can end this upload.
        &[
            "--stall-timeout",
            "10m",
            "--max-parallel",
            "3",
            "--keepalive-interval",
            "0s",
        ],
    );
    let mut running = Running::start(&mut deploy);
    running.wait_for_upload(&setup, 1);
    victim.limit_rate(8_000);
    // Let the writes block on the throttled link (the state the signal must break); nothing
    // else bounds this upload for minutes.
    std::thread::sleep(Duration::from_secs(2));
    test_support::send_signal(&running.child, "TERM");
    let (status, stderr, took) = running.finish(Instant::now(), Duration::from_secs(90), "SIGTERM");
    eprintln!("the deploy ended {took:?} after SIGTERM");
    // Host 1's lock is released over a new connection through the throttled link.
    assert!(took < Duration::from_secs(30), "took {took:?}\n{stderr}");
    assert_eq!(status.code(), Some(130), "{stderr}");
    for index in 0..3 {
        assert!(
            setup.current(index).ends_with("releases/v1"),
            "host {index}: {}\n{stderr}",
            setup.current(index)
        );
    }
    victim.clear_rate_limit();
}

/// A long upload says how far it is every few seconds, per host, as plain log lines a person
/// can follow in a CI log (bytes, percent, rate, time left), then its total. Three hosts on
/// links throttled to 4 Mbit/s, a 4 MiB incompressible artifact: about 8 s each, in parallel.
#[test]
fn a_long_upload_reports_bytes_percent_and_rate_every_few_seconds_per_host() {
    let setup = Setup::new();
    for host in setup.fleet.hosts() {
        host.limit_rate(4_000_000);
    }
    let v1 = artifact(setup.work.path(), "v1", 4 << 20);
    let out = run(&mut setup.command(&v1, "v1", &[]));
    assert_eq!(out.code, Some(0), "{out:?}");
    for index in 0..3 {
        let host = format!("[host-{index} (root@");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains(&host) && l.contains("upload: "))
            .collect();
        let progress: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains(" of ") && l.contains("%), ") && l.contains("/s"))
            .collect();
        assert!(
            !progress.is_empty(),
            "host-{index}: no progress line\n{}",
            out.stderr
        );
        assert!(
            lines.last().is_some_and(|l| l.contains(" sent in ")),
            "host-{index}: no total line: {lines:?}"
        );
        // No carriage returns or escape sequences: a CI log keeps each line.
        assert!(
            lines
                .iter()
                .all(|l| !l.contains('\r') && !l.contains('\u{1b}'))
        );
    }
    assert_eq!(setup.current(0), "releases/v1");
}
