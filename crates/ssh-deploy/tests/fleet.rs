//! Fleets over real OpenSSH sshd processes on loopback, one per host, each with its own deploy
//! root and web port from an inventory file: rolling batches with a failure in batch 2,
//! concurrent deploys racing for one host's lock, a connection cut mid-upload, SIGTERM during a
//! deploy, and canary-first rolling. Services are real `python3 -m http.server` processes
//! restarted through `--service-manager custom`; gates are health-gate against them.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use test_support::process::{ChildGuard, spawn};
use test_support::sshd::Sshd;
use test_support::{Output, SH_ALIVE, free_port, run, tool_command};

fn binary() -> Command {
    tool_command(env!("CARGO_BIN_EXE_ssh-deploy"))
}

/// A release tree whose `health.txt` says `version`, plus `padding` bytes of incompressible
/// data (so an upload takes long enough to be cut).
fn artifact(dir: &Path, version: &str, padding: usize) -> PathBuf {
    let tree = dir.join(format!("tree-{version}"));
    std::fs::create_dir_all(tree.join("bin")).expect("mkdir");
    std::fs::write(tree.join("VERSION"), format!("{version}\n")).expect("write");
    std::fs::write(tree.join("health.txt"), version).expect("write");
    // `nv-` releases have no API (the canary test's failing release).
    if !version.starts_with("nv-") {
        std::fs::write(tree.join("api.txt"), version).expect("write");
    }
    if padding > 0 {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..padding)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(tree.join("bin/blob"), data).expect("write");
    }
    let out = dir.join(format!("{version}.tar.gz"));
    ssh_deploy::pack::pack(&tree, &out, &dir.join(format!("{version}.json")), 0).expect("pack");
    out
}

/// The restart command: serves `current/` on the host's port (from `shared/port`); serves
/// `shared/` (no health.txt) when `shared/broken-<release>` exists; when `shared/hold` exists it
/// first announces `shared/holding` and waits (bounded) for `shared/go`, so a test can act while
/// a deploy is mid-way.
fn restart() -> String {
    format!("web={SH_ALIVE}{RESTART_BODY}")
}

const RESTART_BODY: &str = r#"r="$SSH_DEPLOY_ROOT"; s="$r/shared"; if [ -f "$s/hold" ]; then touch "$s/holding"; n=0; while [ ! -f "$s/go" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; fi; if [ -f "$s/web.pid" ]; then p=$(cat "$s/web.pid"); kill "$p" 2>/dev/null || true; while alive "$p"; do sleep 0.05; done; fi; d="$r/current/"; if [ -f "$s/broken-$SSH_DEPLOY_RELEASE" ]; then d="$s/"; fi; setsid python3 -m http.server "$(cat "$s/port")" --bind 127.0.0.1 --directory "$d" >/dev/null 2>&1 </dev/null & echo $! > "$s/web.pid""#;

/// The web server a restart command starts runs in a session of `sshd`: dropping the Sshd
/// guard stops it.
struct Host {
    sshd: Sshd,
    root: PathBuf,
    web_port: u16,
}

impl Host {
    fn shared(&self, name: &str) -> PathBuf {
        self.root.join("shared").join(name)
    }

    fn current(&self) -> String {
        std::fs::read_link(self.root.join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn serving(&self) -> String {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.web_port)).expect("web server is up");
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

    fn locked(&self) -> bool {
        self.root.join(".ssh-deploy/lock").exists()
    }
}

struct Fleet {
    hosts: Vec<Host>,
    work: tempfile::TempDir,
    key: String,
}

impl Fleet {
    fn new(count: usize) -> Self {
        test_support::require_program("python3", "apt-get install -y python3");
        let work = tempfile::tempdir().expect("tmp");
        let mut hosts = Vec::new();
        for index in 0..count {
            let sshd = Sshd::start();
            let root = work.path().join(format!("host-{index}/it's app"));
            std::fs::create_dir_all(root.join("shared")).expect("mkdir");
            let web_port = free_port();
            std::fs::write(root.join("shared/port"), web_port.to_string()).expect("write");
            hosts.push(Host {
                sshd,
                root,
                web_port,
            });
        }
        // One deploy key for the fleet: the first server's user key, authorized everywhere.
        let key = hosts[0].sshd.user_key();
        let public =
            std::fs::read_to_string(hosts[0].sshd.dir().join("user_key.pub")).expect("public key");
        for host in &hosts[1..] {
            let mut keys = std::fs::OpenOptions::new()
                .append(true)
                .open(host.sshd.dir().join("authorized_keys"))
                .expect("authorized_keys");
            keys.write_all(public.as_bytes()).expect("append");
        }
        let fleet = Self { hosts, work, key };
        fleet.write_inventory(&[]);
        fleet
    }

    /// The inventory; `ports` overrides the SSH port per host (a proxy in front of sshd).
    fn write_inventory(&self, ports: &[(usize, u16)]) {
        let mut text = String::from("user: root\nhosts:\n");
        for (index, host) in self.hosts.iter().enumerate() {
            let port = ports
                .iter()
                .find(|(i, _)| *i == index)
                .map_or(host.sshd.port(), |(_, p)| *p);
            text.push_str(&format!(
                "  host-{index}: {{ address: 127.0.0.1, port: {port}, root: \"{}\", vars: {{ web_port: {} }} }}\n",
                host.root.display(),
                host.web_port
            ));
        }
        std::fs::write(self.work.path().join("inventory.yaml"), text).expect("write");
    }

    fn gate_file(&self) -> PathBuf {
        let path = self.work.path().join("gate.yaml");
        std::fs::write(
            &path,
            "checks:\n  - name: web\n    attempt_timeout: 1s\n    http: { url: 'http://{host}:{vars.web_port}/health.txt' }\n    readiness: { interval: 50ms, deadline: 10s, fatal: [status] }\n",
        )
        .expect("write");
        path
    }

    fn command(&self, artifact: &Path, release: &str, extra: &[&str]) -> Command {
        let known_hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| h.sshd.known_hosts_line())
            .collect();
        let mut command = binary();
        command
            .arg("deploy")
            .env(
                "SSH_DEPLOY_INVENTORY",
                self.work.path().join("inventory.yaml"),
            )
            .env("SSH_DEPLOY_PRIVATE_KEY", &self.key)
            .env("SSH_DEPLOY_KNOWN_HOSTS", known_hosts.join("\n"))
            .env("SSH_DEPLOY_ARTIFACT", artifact)
            .env("SSH_DEPLOY_RELEASE_ID", release)
            .env("SSH_DEPLOY_SERVICES", "web")
            .env("SSH_DEPLOY_SERVICE_MANAGER", "custom")
            .env("SSH_DEPLOY_RESTART_COMMAND", restart())
            .env("SSH_DEPLOY_GATE_FILE", self.gate_file())
            .args(extra);
        command
    }

    fn deploy(&self, artifact: &Path, release: &str, extra: &[&str]) -> Output {
        run(&mut self.command(artifact, release, extra))
    }

    fn spawn(&self, artifact: &Path, release: &str, actor: &str) -> ChildGuard {
        spawn(
            self.command(artifact, release, &[])
                .env("GITHUB_ACTOR", actor)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
    }
}

fn wait_for_file(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {within:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: ChildGuard) -> Output {
    child.finish()
}

fn results(out: &Output) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json outputs");
    // A typed JSON array, not a string holding JSON (#17).
    json["hosts"]
        .as_array()
        .expect("list")
        .iter()
        .map(|h| h["result"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn failure_in_batch_two_rolls_back_that_batch_and_stops() {
    let fleet = Fleet::new(3);
    let dir = fleet.work.path();
    let v1 = artifact(dir, "v1", 0);
    let out = fleet.deploy(&v1, "v1", &["--batch-size=1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for host in &fleet.hosts {
        assert_eq!(host.current(), "releases/v1");
        assert_eq!(host.serving(), "v1");
    }

    // v2 fails its gate on host-1 only (batch 2 of 3).
    std::fs::write(fleet.hosts[1].shared("broken-v2"), "").expect("write");
    let v2 = artifact(dir, "v2", 0);
    let out = fleet.deploy(&v2, "v2", &["--batch-size=1"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("health gate failed"), "{}", out.stderr);
    assert_eq!(results(&out), ["deployed", "rolled-back", "skipped"]);
    assert_eq!(fleet.hosts[0].current(), "releases/v2", "batch 1 stays");
    assert_eq!(fleet.hosts[0].serving(), "v2");
    assert_eq!(
        fleet.hosts[1].current(),
        "releases/v1",
        "batch 2 rolled back"
    );
    assert_eq!(fleet.hosts[1].serving(), "v1");
    assert_eq!(fleet.hosts[2].current(), "releases/v1", "batch 3 untouched");
    assert!(
        !fleet.hosts[2].root.join("releases/v2").exists(),
        "batch 3 never started"
    );
    assert!(fleet.hosts.iter().all(|h| !h.locked()), "locks released");

    // With --rollback-completed, batch 1 goes back to what it had (v2) as well.
    std::fs::write(fleet.hosts[1].shared("broken-v3"), "").expect("write");
    let v3 = artifact(dir, "v3", 0);
    let out = fleet.deploy(&v3, "v3", &["--batch-size=1", "--rollback-completed"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(results(&out), ["rolled-back", "rolled-back", "skipped"]);
    assert_eq!(fleet.hosts[0].current(), "releases/v2");
    assert_eq!(fleet.hosts[0].serving(), "v2");
    assert_eq!(fleet.hosts[1].current(), "releases/v1");
    assert_eq!(fleet.hosts[1].serving(), "v1");
    assert_eq!(fleet.hosts[2].current(), "releases/v1");
    let log = std::fs::read_to_string(fleet.hosts[0].root.join(".ssh-deploy/log")).expect("log");
    assert!(
        log.lines()
            .any(|l| l.starts_with("v3\t") && l.ends_with("\tfailed")),
        "{log}"
    );
}

#[test]
fn concurrent_deploys_race_one_wins_and_the_other_names_the_holder() {
    let fleet = Fleet::new(1);
    let host = &fleet.hosts[0];
    let dir = fleet.work.path();
    let v1 = artifact(dir, "v1", 0);
    let v2 = artifact(dir, "v2", 0);
    std::fs::write(host.shared("hold"), "").expect("write");
    let alice = fleet.spawn(&v1, "v1", "alice");
    let bob = fleet.spawn(&v2, "v2", "bob");
    // The winner holds the lock while its restart waits for `go`; the loser must give up on
    // its own, so the first process to exit is the loser.
    let (mut alice, mut bob) = (Some(alice), Some(bob));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (loser, loser_name, winner, winner_name, winner_release) = loop {
        if let Some(Ok(Some(_))) = alice.as_mut().map(|child| child.try_wait()) {
            break (alice.take(), "alice", bob.take(), "bob", "v2");
        }
        if let Some(Ok(Some(_))) = bob.as_mut().map(|child| child.try_wait()) {
            break (bob.take(), "bob", alice.take(), "alice", "v1");
        }
        assert!(
            Instant::now() < deadline,
            "neither deploy gave up on the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let loser = finish(loser.expect("loser"));
    assert_eq!(loser.code, Some(3), "{loser_name}: {loser:?}");
    assert!(
        loser.stderr.contains(&format!(
            "another deploy holds the lock: {winner_name} (run "
        )),
        "{}",
        loser.stderr
    );
    std::fs::write(host.shared("go"), "").expect("write");
    let winner = finish(winner.expect("winner"));
    assert_eq!(winner.code, Some(0), "{winner_name}: {winner:?}");
    assert_eq!(host.current(), format!("releases/{winner_release}"));
    assert_eq!(host.serving(), winner_release);
    assert!(!host.locked(), "lock released by the winner");
    let releases: Vec<String> = std::fs::read_dir(host.root.join("releases"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(releases, [winner_release], "the loser left nothing behind");

    // The loser's deploy goes through once the host is free.
    std::fs::remove_file(host.shared("hold")).expect("rm");
    let (artifact, release) = if winner_release == "v1" {
        (&v2, "v2")
    } else {
        (&v1, "v1")
    };
    let again = fleet.deploy(artifact, release, &[]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(host.serving(), release);
}

/// A loopback TCP proxy in front of sshd. The first connection is cut (both directions shut
/// down) once `cut_after` bytes went upstream; later connections pass untouched.
struct CuttingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicUsize>,
}

impl CuttingProxy {
    fn start(upstream: u16, cut_after: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicUsize::new(0));
        let (stopped, cuts) = (stop.clone(), cut.clone());
        std::thread::spawn(move || {
            for (number, client) in listener.incoming().enumerate() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { return };
                let server = TcpStream::connect(("127.0.0.1", upstream)).expect("sshd");
                let limit = if number == 0 { cut_after } else { usize::MAX };
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let cuts = cuts.clone();
                std::thread::spawn(move || {
                    pump(client, server, limit);
                    if limit != usize::MAX {
                        cuts.fetch_add(1, Ordering::SeqCst);
                    }
                });
                std::thread::spawn(move || pump(s2, c2, usize::MAX));
            }
        });
        Self { port, stop, cut }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to`; after `limit` bytes both sockets are shut down in both directions.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: usize) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
        total += n;
        if total >= limit {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn connection_cut_mid_upload_switches_nothing_and_a_rerun_succeeds() {
    let fleet = Fleet::new(1);
    let host = &fleet.hosts[0];
    let dir = fleet.work.path();
    let v1 = artifact(dir, "v1", 0);
    assert_eq!(fleet.deploy(&v1, "v1", &[]).code, Some(0));

    let proxy = CuttingProxy::start(host.sshd.port(), 3 << 20);
    fleet.write_inventory(&[(0, proxy.port)]);
    let v2 = artifact(dir, "v2", 12 << 20);
    // known_hosts names sshd's own port; through the proxy the host is pinned by fingerprint.
    let pin = format!(
        "--host-key-fingerprint=127.0.0.1:{}={}",
        proxy.port,
        host.sshd.fingerprint()
    );
    let out = fleet.deploy(&v2, "v2", &[&pin]);
    assert_eq!(
        proxy.cut.load(Ordering::SeqCst),
        1,
        "the proxy cut the stream: {out:?}"
    );
    assert_eq!(out.code, Some(3), "infrastructure exit code: {out:?}");
    assert!(out.stderr.contains("upload"), "{}", out.stderr);
    assert_eq!(host.current(), "releases/v1", "nothing switched");
    assert_eq!(host.serving(), "v1");
    assert!(
        !host.root.join("releases/v2").exists(),
        "no half-unpacked release"
    );
    let leftovers: Vec<String> = std::fs::read_dir(host.root.join(".ssh-deploy/artifacts"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".part-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial upload removed: {leftovers:?}"
    );
    assert!(
        !host.locked(),
        "lock released after reconnecting: {}",
        out.stderr
    );

    let again = fleet.deploy(&v2, "v2", &[&pin]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(host.current(), "releases/v2");
    assert_eq!(host.serving(), "v2");
}

#[test]
fn sigterm_mid_deploy_finishes_the_step_rolls_back_unlocks_and_exits_130() {
    let fleet = Fleet::new(2);
    let dir = fleet.work.path();
    let v1 = artifact(dir, "v1", 0);
    assert_eq!(fleet.deploy(&v1, "v1", &["--batch-size=1"]).code, Some(0));
    // Batch 1 (host-0) finishes; host-1 (batch 2) is switched and mid-restart when the signal
    // comes.
    let second = &fleet.hosts[1];
    std::fs::write(second.shared("hold"), "").expect("write");
    let v2 = artifact(dir, "v2", 0);
    let child = spawn(
        fleet
            .command(&v2, "v2", &["--batch-size=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    wait_for_file(&second.shared("holding"), Duration::from_secs(60));
    assert_eq!(
        second.current(),
        "releases/v2",
        "switched before the restart"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // The restart in progress is allowed to finish.
    std::fs::write(second.shared("go"), "").expect("write");
    let out = finish(child);
    assert_eq!(out.code, Some(130), "{out:?}");
    assert!(out.stderr.contains("received SIGTERM"), "{}", out.stderr);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
    assert_eq!(results(&out), ["rolled-back", "rolled-back"]);
    for host in &fleet.hosts {
        assert_eq!(host.current(), "releases/v1");
        assert_eq!(host.serving(), "v1");
        assert!(!host.locked(), "lock released");
    }
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["result"], "interrupted");
}

fn canary_gate(fleet: &Fleet, name: &str, thresholds: &str) -> PathBuf {
    let path = fleet.work.path().join(name);
    std::fs::write(
        &path,
        format!(
            "checks:\n  - name: api\n    attempt_timeout: 2s\n    http: {{ url: 'http://{{host}}:{{vars.web_port}}/api.txt' }}\n    readiness: {{ interval: 50ms, deadline: 10s, fatal: [status] }}\n    observe: {{ requests: 40, concurrency: 2, thresholds: {thresholds} }}\n"
        ),
    )
    .expect("write");
    path
}

#[test]
fn canary_first_stops_at_a_failed_canary_and_continues_after_a_good_one() {
    let fleet = Fleet::new(3);
    let dir = fleet.work.path();
    let v1 = artifact(dir, "v1", 0);
    assert_eq!(fleet.deploy(&v1, "v1", &[]).code, Some(0));
    // Generous latency bound: the machine is shared, and the point here is the flow.
    let gate = canary_gate(
        &fleet,
        "canary.yaml",
        r#"{ error_rate: "< 5%", latency: { p95: "< 100x baseline" } }"#,
    );
    let canary_flags = [
        "--canary".to_owned(),
        format!("--canary-gate-file={}", gate.display()),
        "--batch-size=1".to_owned(),
    ];
    let flags: Vec<&str> = canary_flags.iter().map(String::as_str).collect();

    // nv-2 passes the normal gate (health.txt) but its API is gone: the canary fails.
    let bad = artifact(dir, "nv-2", 0);
    let out = fleet.deploy(&bad, "nv-2", &flags);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("canary baseline recorded"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("canary failed"), "{}", out.stderr);
    assert_eq!(results(&out), ["rolled-back", "skipped", "skipped"]);
    for host in &fleet.hosts {
        assert_eq!(host.current(), "releases/v1");
        assert_eq!(host.serving(), "v1");
    }
    assert!(!fleet.hosts[1].root.join("releases/nv-2").exists());

    let v3 = artifact(dir, "v3", 0);
    let out = fleet.deploy(&v3, "v3", &flags);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("canary passed"), "{}", out.stderr);
    assert_eq!(results(&out), ["deployed", "deployed", "deployed"]);
    for host in &fleet.hosts {
        assert_eq!(host.serving(), "v3");
    }
}

#[test]
fn dry_run_prints_canary_batches_gates_and_rollback_scope() {
    let fleet = Fleet::new(1);
    // Three inventory hosts on one sshd are enough for a plan: nothing is contacted.
    let host = &fleet.hosts[0];
    std::fs::write(
        fleet.work.path().join("inventory.yaml"),
        format!(
            "user: root\nroot: /opt/app\nvars: {{ web_port: 8080 }}\ngroups:\n  web:\n    hosts:\n      web-1: {{ address: 127.0.0.1, port: {p}, vars: {{ web_port: 8081 }} }}\n      web-2: {{ address: 127.0.0.2, port: {p} }}\n      web-3: {{ address: 127.0.0.3, port: {p}, root: /srv/app }}\n",
            p = host.sshd.port()
        ),
    )
    .expect("write");
    let v1 = artifact(fleet.work.path(), "v1", 0);
    let out = fleet.deploy(
        &v1,
        "v1",
        &[
            "--dry-run",
            "--canary",
            "--canary-url=http://{host}:{vars.web_port}/api",
            "--batch-size=1",
            "--rollback-completed",
            "--group=web",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = &out.stderr;
    for expected in [
        "to 3 host(s) in 3 step(s), canary first",
        "step 1/3: canary web-1 (root@127.0.0.1:",
        "baseline: recorded from the release serving now, before anything changes (http://{host}:{vars.web_port}/api: 100 requests, error rate < 5 %, p95 < 2x baseline)",
        "on failure: roll back the canary alone and stop",
        "step 2/3: batch 1: web-2 (root@127.0.0.2:",
        "on failure: roll back this batch and every step before it, then stop",
        "gate: health-gate from the runner: web http://127.0.0.1:8081/health.txt",
        "gate: health-gate from the runner: web http://127.0.0.3:8080/health.txt",
        "'/srv/app/releases/v1'",
        "on SIGINT/SIGTERM",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !fleet.hosts[0].root.join("releases").exists(),
        "nothing touched"
    );
}

#[test]
fn jump_host_tunnels_the_session_and_both_host_keys_are_verified() {
    let fleet = Fleet::new(1);
    let target = &fleet.hosts[0];
    let jump = Sshd::start();
    let public =
        std::fs::read_to_string(target.sshd.dir().join("user_key.pub")).expect("public key");
    std::fs::OpenOptions::new()
        .append(true)
        .open(jump.dir().join("authorized_keys"))
        .expect("authorized_keys")
        .write_all(public.as_bytes())
        .expect("append");
    std::fs::write(
        fleet.work.path().join("inventory.yaml"),
        format!(
            "user: root\nhosts:\n  app: {{ address: 127.0.0.1, port: {}, root: \"{}\", jump: 127.0.0.1:{}, vars: {{ web_port: {} }} }}\n",
            target.sshd.port(),
            target.root.display(),
            jump.port(),
            target.web_port
        ),
    )
    .expect("write");
    let v1 = artifact(fleet.work.path(), "v1", 2 << 20);
    let deploy = |known_hosts: String| {
        run(fleet
            .command(&v1, "v1", &[])
            .env("SSH_DEPLOY_KNOWN_HOSTS", known_hosts))
    };

    // The jump host's key is checked first, under its own name.
    let out = deploy(target.sshd.known_hosts_line());
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "host key for 127.0.0.1:{} is not known",
            jump.port()
        )),
        "{}",
        out.stderr
    );
    // The target's key is checked under the target's name, not the tunnel's loopback port.
    let wrong = jump.known_hosts_line().replace(
        &format!(":{}", jump.port()),
        &format!(":{}", target.sshd.port()),
    );
    let out = deploy(format!("{}\n{wrong}", jump.known_hosts_line()));
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("has CHANGED"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&target.sshd.fingerprint()),
        "{}",
        out.stderr
    );
    assert_eq!(target.current(), "", "nothing touched");

    let out = deploy(format!(
        "{}\n{}",
        jump.known_hosts_line(),
        target.sshd.known_hosts_line()
    ));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("via 127.0.0.1:{}", jump.port())),
        "{}",
        out.stderr
    );
    assert_eq!(target.current(), "releases/v1");
    assert_eq!(target.serving(), "v1");
}

#[test]
fn a_silent_command_gets_keepalives_until_the_command_timeout_then_rolls_back() {
    let fleet = Fleet::new(1);
    let host = &fleet.hosts[0];
    let v1 = artifact(fleet.work.path(), "v1", 0);
    assert_eq!(fleet.deploy(&v1, "v1", &[]).code, Some(0));
    // v2's restart hangs without a word; v1's (the rollback) is the normal one.
    let restart = format!(
        "web=if [ \"$SSH_DEPLOY_RELEASE\" = v2 ]; then sleep 60; fi; {SH_ALIVE}{RESTART_BODY}"
    );
    let v2 = artifact(fleet.work.path(), "v2", 0);
    let started = Instant::now();
    let out = fleet.deploy(
        &v2,
        "v2",
        &[
            "--keepalive-interval=500ms",
            "--command-timeout=3s",
            &format!("--restart-command={restart}"),
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "did not wait out the sleep"
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("printed nothing for 3s"),
        "{}",
        out.stderr
    );
    assert_eq!(host.current(), "releases/v1");
    assert_eq!(host.serving(), "v1");
    assert!(!host.locked());
}

#[test]
fn zstd_artifact_deploys_and_rolls_forward_like_gzip() {
    test_support::require_program("zstd", "apt-get install -y zstd");
    let fleet = Fleet::new(1);
    let host = &fleet.hosts[0];
    let dir = fleet.work.path();
    let gzip = artifact(dir, "v1", 0);
    let zst = dir.join("v1.tar.zst");
    ssh_deploy::pack::pack(&dir.join("tree-v1"), &zst, &dir.join("v1-zst.json"), 0).expect("pack");
    let first = std::fs::read(&zst).expect("read");
    assert_eq!(&first[..4], [0x28, 0xb5, 0x2f, 0xfd], "zstd frame");
    assert!(first.len() < std::fs::read(&gzip).expect("read").len() * 2);
    let out = fleet.deploy(&zst, "v1", &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(host.current(), "releases/v1");
    assert_eq!(host.serving(), "v1");
    let dry = fleet.deploy(&zst, "v1", &["--dry-run"]);
    assert!(dry.stderr.contains("tar --zstd -xf"), "{}", dry.stderr);
}

/// Issue #22, point 5: a rolling schedule (`1, 50%`: one host, then half the fleet, repeated)
/// with a fleet-wide failure budget. A host failing while the budget lasts is put back on its
/// previous release and the rollout goes on; the failure past the budget stops it and rolls the
/// failing batch back.
#[test]
fn a_schedule_goes_on_past_failures_within_the_budget_and_stops_once_it_is_spent() {
    let fleet = Fleet::new(4);
    let dir = fleet.work.path();
    let v1 = artifact(dir, "v1", 0);
    assert_eq!(fleet.deploy(&v1, "v1", &[]).code, Some(0));
    let schedule = ["--schedule", "1, 50%", "--max-failed", "1"];

    // v2 fails on host-1 (batch 2 of [0], [1, 2], [3]): within the budget.
    std::fs::write(fleet.hosts[1].shared("broken-v2"), "").expect("write");
    let v2 = artifact(dir, "v2", 0);
    let out = fleet.deploy(&v2, "v2", &schedule);
    assert_eq!(out.code, Some(1), "a failed host fails the step\n{out:?}");
    assert_eq!(
        results(&out),
        ["deployed", "rolled-back", "deployed", "deployed"]
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["result"], "partial");
    assert!(
        out.stderr
            .contains("within the failure budget (1 of 1 used); the rollout goes on"),
        "{}",
        out.stderr
    );
    let serving: Vec<String> = fleet.hosts.iter().map(Host::serving).collect();
    assert_eq!(serving, ["v2", "v1", "v2", "v2"]);

    // v3 fails on host-1 (budget spent) and on host-3 (past it): the rollout stops and the
    // failing batch is rolled back; the batches before it keep v3.
    std::fs::write(fleet.hosts[1].shared("broken-v3"), "").expect("write");
    std::fs::write(fleet.hosts[3].shared("broken-v3"), "").expect("write");
    let v3 = artifact(dir, "v3", 0);
    let out = fleet.deploy(&v3, "v3", &schedule);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        results(&out),
        ["deployed", "rolled-back", "deployed", "rolled-back"]
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["result"], "rolled-back");
    let serving: Vec<String> = fleet.hosts.iter().map(Host::serving).collect();
    assert_eq!(serving, ["v3", "v1", "v3", "v2"]);
    for host in &fleet.hosts {
        assert!(!host.locked(), "lock released");
    }
}

#[test]
fn the_dry_run_plan_shows_the_schedule_and_the_failure_budget() {
    let fleet = Fleet::new(1);
    let host = &fleet.hosts[0];
    let mut text = String::from("user: root\nroot: /opt/app\nvars: { web_port: 8080 }\nhosts:\n");
    for index in 0..10 {
        text.push_str(&format!(
            "  web-{index}: {{ address: 127.0.0.{}, port: {} }}\n",
            index + 1,
            host.sshd.port()
        ));
    }
    std::fs::write(fleet.work.path().join("inventory.yaml"), text).expect("write");
    let v1 = artifact(fleet.work.path(), "v1", 0);
    let out = fleet.deploy(
        &v1,
        "v1",
        &[
            "--dry-run",
            "--schedule",
            "1, 30%, 100%",
            "--max-failed",
            "20%",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "schedule: 1, 30%, 100% (--schedule) -> batches of 1, 3, 6 host(s)",
        "failure budget: 2 of 10 host(s) across all batches may fail",
        "(--max-failed 20%)",
        "step 3/3: batch 3: web-4",
        "on failure: while the failure budget lasts, put the failed hosts back and go on",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stderr
        );
    }
    let both = fleet.deploy(
        &v1,
        "v1",
        &["--dry-run", "--schedule", "1", "--batch-size", "2"],
    );
    assert_eq!(both.code, Some(2), "{both:?}");
    let bad = fleet.deploy(&v1, "v1", &["--dry-run", "--max-failed", "ten"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("--max-failed `ten`"), "{}", bad.stderr);
}

/// Issue #22, point 1: `--migrate-on first` migrates on the first host alone (its own first
/// batch, before any other host switches); `each` on every host.
#[test]
fn the_migration_runs_on_the_first_host_alone_or_on_each() {
    let fleet = Fleet::new(2);
    let dir = fleet.work.path();
    let v1 = artifact(dir, "v1", 0);
    let out = fleet.deploy(&v1, "v1", &["--migrate", "touch migrated"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(fleet.hosts[0].root.join("releases/v1/migrated").exists());
    assert!(!fleet.hosts[1].root.join("releases/v1/migrated").exists());
    assert!(
        out.stderr.contains("batch 2/2"),
        "host 0 went alone\n{}",
        out.stderr
    );
    let v2 = artifact(dir, "v2", 0);
    let out = fleet.deploy(
        &v2,
        "v2",
        &["--migrate", "touch migrated", "--migrate-on", "each"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    for host in &fleet.hosts {
        assert!(host.root.join("releases/v2/migrated").exists());
        assert_eq!(host.serving(), "v2");
    }
}
