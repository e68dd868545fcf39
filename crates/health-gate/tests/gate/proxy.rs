//! Probes go direct unless the gate file asks for a proxy: a runner behind a corporate proxy
//! (`HTTP_PROXY`/`HTTPS_PROXY` set for everything) must probe the hosts it deploys to itself,
//! not through that proxy. `proxy: env` opts in to the environment's proxy (with `NO_PROXY`).
//!
//! Loopback targets are never proxied, so the target here is a non-loopback address: this
//! machine's end of a test network namespace's veth pair (`Fleet`, 10.213.0.0/16, traffic never
//! leaves the machine). The proxy is a real forwarding HTTP proxy on 127.0.0.1 that counts the
//! requests it forwards.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use test_support::fleet::Fleet;
use test_support::{Output, run, tool_command};

fn binary() -> Command {
    tool_command(Path::new(env!("CARGO_BIN_EXE_health-gate")))
}

/// Serves `ok` on `address`:0 (one request per connection), counting requests.
fn target(address: Ipv4Addr) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind((address, 0)).expect("bind the target");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            if read_head(&stream).is_some() {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        }
    });
    (port, count)
}

/// Reads a request head (GET requests have no body).
fn read_head(stream: &TcpStream) -> Option<Vec<String>> {
    let mut reader = BufReader::new(stream);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            return Some(lines);
        }
        lines.push(line);
    }
}

/// A forwarding HTTP proxy on 127.0.0.1:0 (absolute-form `GET http://host:port/path`), one
/// request per connection, counting what it forwards.
fn forwarding_proxy() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicU64::new(0));
    let forwarded = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let forwarded = forwarded.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Some(head) = read_head(&stream) else {
                    return;
                };
                let mut words = head[0].split(' ');
                let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let Some(rest) = target.strip_prefix("http://") else {
                    return;
                };
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let Ok(mut upstream) = TcpStream::connect(authority) else {
                    return;
                };
                forwarded.fetch_add(1, Ordering::SeqCst);
                let mut request = format!("{method} {path} HTTP/1.1\r\n");
                for line in &head[1..] {
                    let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                    if !matches!(name.as_str(), "connection" | "proxy-connection") {
                        request.push_str(line);
                        request.push_str("\r\n");
                    }
                }
                request.push_str("Connection: close\r\n\r\n");
                let _ = upstream.write_all(request.as_bytes());
                let mut response = Vec::new();
                let _ = upstream.read_to_end(&mut response);
                let mut stream = stream;
                let _ = stream.write_all(&response);
            });
        }
    });
    (url, count)
}

fn gate(dir: &Path, url: &str, proxy: Option<&str>) -> std::path::PathBuf {
    let path = dir.join("gate.yaml");
    let defaults = proxy.map_or(String::new(), |p| format!("defaults:\n  proxy: {p}\n"));
    std::fs::write(
        &path,
        format!(
            "{defaults}checks:\n  - name: web\n    attempt_timeout: 2s\n    http: {{ url: '{url}' }}\n    \
             readiness: {{ interval: 50ms, deadline: 5s }}\n"
        ),
    )
    .expect("write");
    path
}

fn probe(gate: &Path, proxy: &str, no_proxy: &str) -> Output {
    run(binary()
        .env("HTTP_PROXY", proxy)
        .env("http_proxy", proxy)
        .env("HTTPS_PROXY", proxy)
        .env("https_proxy", proxy)
        .env("NO_PROXY", no_proxy)
        .env("no_proxy", no_proxy)
        .arg("--gate-file")
        .arg(gate))
}

#[test]
fn probes_go_direct_past_the_environments_proxy_unless_the_gate_asks_for_it() {
    let fleet = Fleet::start(1);
    let address = fleet.hosts()[0].peer_address();
    let (port, served) = target(address);
    let (proxy, forwarded) = forwarding_proxy();
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("http://{address}:{port}/health");

    // Default: direct, although HTTP_PROXY is set.
    let out = probe(&gate(dir.path(), &url, None), &proxy, "");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        forwarded.load(Ordering::SeqCst),
        0,
        "went through the proxy"
    );
    let direct = served.load(Ordering::SeqCst);
    assert!(direct > 0, "the target was probed");

    // `proxy: env`: through the environment's proxy.
    let out = probe(&gate(dir.path(), &url, Some("env")), &proxy, "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let through = forwarded.load(Ordering::SeqCst);
    assert!(through > 0, "proxy: env must use HTTP_PROXY: {out:?}");
    assert_eq!(served.load(Ordering::SeqCst), direct + through);

    // `proxy: env` with the target in NO_PROXY: direct again.
    let out = probe(
        &gate(dir.path(), &url, Some("env")),
        &proxy,
        &address.to_string(),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        forwarded.load(Ordering::SeqCst),
        through,
        "NO_PROXY is honoured"
    );
}
