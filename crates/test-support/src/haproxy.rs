//! HAProxy in front of compose replicas, as the compose tests and seed 003 run it.
//!
//! Backend `api` is health-checked and drained through the runtime API by the deploy's hooks;
//! `/direct/<replica>/health` reaches one replica for its gate. No retries (`retries 0`): a
//! request sent to a replica being recreated fails and is counted, so "no failed request"
//! measures the deploy's draining, not HAProxy's retrying.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, spawn};
use crate::{free_port, require_program};

/// A running HAProxy; stopped when dropped.
#[derive(Debug)]
pub struct ReplicaProxy {
    _child: ChildGuard,
    /// The frontend's port on 127.0.0.1.
    pub port: u16,
    socket: PathBuf,
}

impl ReplicaProxy {
    /// Starts HAProxy with its config, admin socket and log in `dir`, balancing over
    /// `replicas` (name, port on 127.0.0.1); returns once the frontend and the socket answer
    /// (bounded: 20 s).
    pub fn start<S: AsRef<str>>(dir: &Path, replicas: &[(S, u16)]) -> Self {
        require_program("haproxy", "apt-get install -y haproxy");
        require_program("socat", "apt-get install -y socat");
        std::fs::create_dir_all(dir).expect("haproxy dir");
        let port = free_port();
        let socket = dir.join("admin.sock");
        let mut config = format!(
            "global\n  stats socket {s} mode 600 level admin\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout check 3s\n  timeout client 20s\n  timeout server 20s\n  \
             retries 0\n\
             frontend web\n  bind 127.0.0.1:{port}\n  \
             use_backend direct-%[path,field(3,/)] if {{ path_beg /direct/ }}\n  default_backend api\n\
             backend api\n  balance roundrobin\n  option httpchk GET /health\n",
            s = socket.display()
        );
        for (replica, p) in replicas {
            config.push_str(&format!(
                "  server {} 127.0.0.1:{p} check inter 500ms fall 3 rise 1\n",
                replica.as_ref()
            ));
        }
        for (replica, p) in replicas {
            config.push_str(&format!(
                "backend direct-{}\n  http-request set-path /health\n  server s 127.0.0.1:{p}\n",
                replica.as_ref()
            ));
        }
        std::fs::write(dir.join("haproxy.cfg"), config).expect("haproxy.cfg");
        let child = spawn(
            Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(dir.join("haproxy.cfg"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("haproxy.log")).expect("haproxy.log")),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() || !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not start within 20 s (see {})",
                dir.join("haproxy.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            _child: child,
            port,
            socket,
        }
    }

    /// The host's drain/undrain script the deploy's hooks run (`./proxy drain api-1`):
    /// maintenance, then wait (bounded: 10 s) until the replica serves no request any more;
    /// `./proxy ready api-1` puts it back. Each call is appended to `hooks.log`.
    pub fn hook_script(&self) -> String {
        format!(
            r#"#!/bin/sh
set -e
api() {{ echo "$1" | socat -t 2 stdio UNIX-CONNECT:'{s}'; }}
echo "$1 $2" >> hooks.log
case "$1" in
  drain)
    api "set server api/$2 state maint" >/dev/null
    i=0
    while :; do
      cur=$(api "show stat" | awk -F, -v s="$2" '$1 == "api" && $2 == s {{ print $5 }}')
      [ "$cur" = 0 ] && exit 0
      i=$((i + 1)); [ "$i" -lt 200 ] || {{ echo "$2 still serves $cur requests" >&2; exit 1; }}
      sleep 0.05
    done ;;
  ready) api "set server api/$2 state ready" >/dev/null ;;
  *) echo "usage: proxy drain|ready SERVER" >&2; exit 2 ;;
esac
"#,
            s = self.socket.display()
        )
    }
}
