//! A real OpenSSH `sshd` on 127.0.0.1 with generated host and user keys, for ssh-deploy tests.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::process::{ChildGuard, Scope, run_tagged, sshd_set_env};
use crate::require_program;

const INSTALL: &str = "apt-get install -y openssh-server openssh-client";

/// A running sshd. Dropping it kills sshd, its sessions, and every process a session started
/// (sessions carry the guard's scope marker through `SetEnv`, so a service started with
/// `setsid ... &` is found after it left the process tree).
pub struct Sshd {
    /// Held for its Drop.
    _child: ChildGuard,
    port: u16,
    dir: tempfile::TempDir,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl std::fmt::Debug for Sshd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sshd").field("port", &self.port).finish()
    }
}

fn keygen(path: &Path) {
    let keygen = require_program("ssh-keygen", INSTALL);
    let status = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    /// Starts sshd for the current user, with a fresh host key and a fresh user key.
    /// Picks a free port (bind and close) and retries when another process takes it first;
    /// returns once sshd logs that it is listening.
    pub fn start() -> Self {
        let sshd = require_program("sshd", INSTALL);
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("user_key"));
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // Privilege separation directory Debian's sshd insists on.
        let _ = std::fs::create_dir_all("/run/sshd");
        for _attempt in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.path().join(run_tagged("sshd_config"));
            let scope = Scope::new();
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
                     AuthorizedKeysFile {keys}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPermitRootLogin yes\nStrictModes no\nUsePAM no\n\
                     PidFile none\nMaxStartups 100:30:200\nMaxSessions 32\nLogLevel INFO\n{set_env}",
                    host_key = dir.path().join("host_key").display(),
                    keys = dir.path().join("authorized_keys").display(),
                    set_env = sshd_set_env(&scope),
                ),
            )
            .unwrap();
            let mut child = scope.spawn(
                Command::new(&sshd)
                    .args(["-D", "-e", "-f"])
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            );
            let stderr = child.stderr.take().unwrap();
            let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let (ready, wait) = mpsc::channel::<bool>();
            let sink = log.clone();
            std::thread::spawn(move || {
                let mut ready = Some(ready);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(sender) = &ready {
                        if line.contains("Server listening on") {
                            let _ = sender.send(true);
                            ready = None;
                        } else if line.contains("Address already in use")
                            || line.contains("Cannot bind any address")
                        {
                            let _ = sender.send(false);
                            ready = None;
                        }
                    }
                    if let Ok(mut log) = sink.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
            });
            match wait.recv_timeout(Duration::from_secs(20)) {
                Ok(true) => {
                    return Self {
                        _child: child,
                        port,
                        dir,
                        log,
                    };
                }
                _ => drop(child),
            }
        }
        panic!("sshd did not start after 10 attempts");
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `user@127.0.0.1:port` for the current user.
    pub fn host(&self, user: &str) -> String {
        format!("{user}@127.0.0.1:{}", self.port)
    }

    /// The user's private key (OpenSSH format).
    pub fn user_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("user_key")).unwrap()
    }

    /// The known_hosts line for this server.
    pub fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let mut fields = public.split_whitespace();
        let kind = fields.next().unwrap();
        let key = fields.next().unwrap();
        format!("[127.0.0.1]:{} {kind} {key}", self.port)
    }

    /// The host key's `SHA256:...` fingerprint, as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        let output = Command::new(require_program("ssh-keygen", INSTALL))
            .arg("-lf")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// Scratch directory of this server.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// What sshd logged so far (for assertion messages).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
