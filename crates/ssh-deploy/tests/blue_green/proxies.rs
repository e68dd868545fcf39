//! A real nginx and a real HAProxy (Debian packages), each started by the test with a private
//! config in a temp dir: never the system service, no `user` directive, every path writable by
//! the user running the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::free_port;
use test_support::process::{ChildGuard, spawn};

/// Waits (bounded) until something accepts connections on `port`.
pub(crate) fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The proxy under test.
pub(crate) trait Proxy {
    /// `nginx` or `haproxy`.
    fn name(&self) -> &'static str;
    /// The listening port.
    fn port(&self) -> u16;
    /// The ssh-deploy flags that point at it.
    fn flags(&self) -> Vec<(String, String)>;
}

/// nginx as the master process in the foreground (`daemon off`), 2 workers; the guard stops
/// master and workers when the test ends.
pub(crate) struct Nginx {
    _child: ChildGuard,
    /// Its prefix directory.
    pub(crate) dir: PathBuf,
    port: u16,
}

impl Nginx {
    /// The base command with the private prefix and config.
    fn command(dir: &Path) -> String {
        format!(
            "nginx -p '{d}' -c '{d}/nginx.conf' -e '{d}/error.log'",
            d = dir.display()
        )
    }

    /// Starts nginx routing to `initial_port` until the first deploy rewrites the upstream.
    pub(crate) fn start(dir: &Path, initial_port: u16) -> Self {
        test_support::require_program("nginx", "apt-get install -y nginx");
        let port = free_port();
        std::fs::create_dir_all(dir.join("conf.d")).expect("mkdir");
        std::fs::write(
            dir.join("upstream.conf"),
            format!("upstream app {{ server 127.0.0.1:{initial_port}; }}\n"),
        )
        .expect("write");
        let d = dir.display();
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n\
                   access_log off;\n\
                   client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
                   fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
                   map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
                   include {d}/upstream.conf;\n\
                   include {d}/conf.d/*.conf;\n\
                   server {{\n\
                     listen 127.0.0.1:{port};\n\
                     location / {{\n\
                       proxy_pass http://app;\n\
                       proxy_http_version 1.1;\n\
                       proxy_set_header Upgrade $http_upgrade;\n\
                       proxy_set_header Connection $connection_upgrade;\n\
                       proxy_read_timeout 30s;\n\
                     }}\n\
                   }}\n\
                 }}\n"
            ),
        )
        .expect("write");
        let child = spawn(
            Command::new("sh")
                .arg("-c")
                .arg(format!("exec {} -g 'daemon off;'", Self::command(dir)))
                .stdin(Stdio::null()),
        );
        wait_for_port(port, "nginx");
        Self {
            _child: child,
            dir: dir.to_owned(),
            port,
        }
    }
}

impl Proxy for Nginx {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn flags(&self) -> Vec<(String, String)> {
        let base = Self::command(&self.dir);
        vec![
            ("PROXY".into(), "nginx".into()),
            (
                "NGINX_UPSTREAM_FILE".into(),
                self.dir.join("upstream.conf").display().to_string(),
            ),
            ("NGINX_TEST_COMMAND".into(), format!("{base} -t -q")),
            ("NGINX_RELOAD_COMMAND".into(), format!("{base} -s reload")),
            (
                "NGINX_PID_FILE".into(),
                self.dir.join("nginx.pid").display().to_string(),
            ),
        ]
    }
}

/// HAProxy in the foreground (`-db`) with an admin socket and a server-state file.
/// The guard stops it when the test ends.
pub(crate) struct Haproxy {
    child: Option<ChildGuard>,
    /// Its directory.
    pub(crate) dir: PathBuf,
    port: u16,
}

impl Haproxy {
    /// Starts HAProxy with servers `blue` (ready) and `green` (maint) on the given ports.
    pub(crate) fn start(dir: &Path, blue_port: u16, green_port: u16) -> Self {
        test_support::require_program("haproxy", "apt-get install -y haproxy");
        test_support::require_program("socat", "apt-get install -y socat");
        let port = free_port();
        let d = dir.display();
        std::fs::write(
            dir.join("haproxy.cfg"),
            format!(
                "global\n  stats socket {d}/admin.sock mode 600 level admin\n  server-state-file {d}/server-state\n\
                 defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  \
                 load-server-state-from-file global\n\
                 frontend web\n  bind 127.0.0.1:{port}\n  default_backend app\n\
                 backend app\n  server blue 127.0.0.1:{blue_port}\n  server green 127.0.0.1:{green_port} disabled\n"
            ),
        )
        .expect("write");
        let mut haproxy = Self {
            child: None,
            dir: dir.to_owned(),
            port,
        };
        haproxy.restart();
        haproxy
    }

    /// Stops and starts HAProxy again from its config (and server-state file).
    pub(crate) fn restart(&mut self) {
        // Dropping the guard stops the old one.
        self.child = None;
        self.child = Some(spawn(
            Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(self.dir.join("haproxy.cfg"))
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        ));
        wait_for_port(self.port, "haproxy");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.dir.join("admin.sock").exists() {
            assert!(Instant::now() < deadline, "haproxy made no admin socket");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Proxy for Haproxy {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn flags(&self) -> Vec<(String, String)> {
        vec![
            ("PROXY".into(), "haproxy".into()),
            (
                "HAPROXY_SOCKET".into(),
                self.dir.join("admin.sock").display().to_string(),
            ),
            (
                "HAPROXY_STATE_FILE".into(),
                self.dir.join("server-state").display().to_string(),
            ),
        ]
    }
}
