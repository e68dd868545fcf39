//! A real `moto_server` (the AWS emulator) on 127.0.0.1 with a free port, ready when its HTTP
//! endpoint answers, killed on drop.
//!
//! moto emulates request shapes and state (register/describe/update, ECR images), not
//! rollouts: no new deployment on UpdateService, no events, no running tasks.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long moto may take to answer its first request.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running `moto_server`, killed (with anything it started) on drop.
#[derive(Debug)]
pub struct Moto {
    child: crate::process::ChildGuard,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts `moto_server` with `env` set in *its* environment (moto reads switches such as
    /// `MOTO_ECS_SERVICE_RUNNING` inside the server) and waits until it answers.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let program = crate::require_program(
            "moto_server",
            "scripts/test installs it (pip install 'moto[server]')",
        );
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(program);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = crate::process::spawn(&mut command);
        let mut moto = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        moto.wait_ready();
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto_server exited with {status} before answering:\n{}",
                    self.log()
                );
            }
            if self.answers() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within {READY_WITHIN:?}:\n{}",
                self.log()
            );
            // Poll again shortly: connection refused comes back at once.
            std::thread::park_timeout(Duration::from_millis(25));
        }
    }
}
