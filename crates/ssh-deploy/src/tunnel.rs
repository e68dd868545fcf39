//! Gate checks of services that listen on the host's loopback only: `{tunnel:PORT}` in a gate
//! file becomes `127.0.0.1:<local port>` on the runner, and every connection to that port is
//! carried over the host's SSH connection (`direct-tcpip`) to `127.0.0.1:PORT` on the host.
//!
//! The checks themselves still run on the runner (health-gate is not on the host), so every
//! check kind that dials a TCP address works: http, gRPC, SSE, WebSocket, TCP, metrics.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The placeholder's opening text.
const OPEN: &str = "{tunnel:";

/// libssh2's "would block" code (`LIBSSH2_ERROR_EAGAIN`).
const EAGAIN: i32 = -37;

/// The ports named by `{tunnel:PORT}` placeholders in `text`, each once, ascending.
pub(crate) fn ports(text: &str) -> Result<Vec<u16>, String> {
    let mut ports = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let end = after.find('}').ok_or_else(|| {
            format!("`{OPEN}` without a closing `}}`: write {{tunnel:PORT}}, e.g. {{tunnel:8080}}")
        })?;
        let port: u16 = after[..end]
            .parse()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| {
                format!(
                    "`{OPEN}{}}}`: PORT must be a TCP port number from 1 to 65535",
                    &after[..end]
                )
            })?;
        ports.insert(port);
        rest = &after[end + 1..];
    }
    Ok(ports.into_iter().collect())
}

/// `text` with each `{tunnel:PORT}` replaced by the local address that reaches it.
pub(crate) fn fill(text: &str, addresses: &[(u16, SocketAddr)]) -> String {
    addresses
        .iter()
        .fold(text.to_owned(), |text, (port, address)| {
            text.replace(&format!("{OPEN}{port}}}"), &address.to_string())
        })
}

/// `text` with each `{tunnel:PORT}` replaced by `127.0.0.1:PORT`, only to validate a gate file
/// before any connection exists.
pub(crate) fn probe(text: &str) -> Result<String, String> {
    let addresses: Vec<(u16, SocketAddr)> = ports(text)?
        .into_iter()
        .map(|port| (port, SocketAddr::from(([127, 0, 0, 1], port))))
        .collect();
    Ok(fill(text, &addresses))
}

/// A loopback listener on the runner whose connections go to `127.0.0.1:port` on the host.
/// Dropping it closes the listener and every connection, and puts the session back in
/// blocking mode for the commands that follow.
pub struct Tunnel {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    session: ssh2::Session,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// Starts forwarding over `session` (the host's own connection: the deploy sends no command
    /// while its gate runs, and each forwarded connection is its own channel).
    pub fn start(session: ssh2::Session, port: u16, keepalive: Duration) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot listen on loopback for {{tunnel:{port}}}: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("tunnel address: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("tunnel listener: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let channels = session.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tunnel {port}"))
            .spawn(move || serve(&listener, &channels, port, &stopped, keepalive))
            .map_err(|e| format!("cannot start the tunnel thread: {e}"))?;
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
            session,
        })
    }

    /// Where the gate connects.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.session.set_blocking(true);
    }
}

/// Accepts loopback connections until stopped; each gets a channel and a piping thread.
fn serve(
    listener: &TcpListener,
    session: &ssh2::Session,
    port: u16,
    stop: &Arc<AtomicBool>,
    keepalive: Duration,
) {
    // Non-blocking from the start: the piping threads share the session, and a blocking read
    // on one channel would hold the session's lock and starve the others.
    session.set_blocking(false);
    let mut pipes = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) if peer.ip().is_loopback() => {
                // A channel the host refuses (nothing listens on the port) closes the local
                // connection: the check sees a refused or reset connection, as it should.
                if let Some(channel) = open_channel(session, port, stop) {
                    let session = session.clone();
                    let stop = stop.clone();
                    pipes.push(std::thread::spawn(move || {
                        crate::jump::pipe(&session, channel, stream, &stop, keepalive);
                    }));
                }
            }
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                // Non-blocking, so the thread notices `stop`; the pause bounds the polling.
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => break,
        }
        pipes.retain(|pipe: &JoinHandle<()>| !pipe.is_finished());
    }
    for pipe in pipes {
        let _ = pipe.join();
    }
}

fn open_channel(session: &ssh2::Session, port: u16, stop: &AtomicBool) -> Option<ssh2::Channel> {
    while !stop.load(Ordering::SeqCst) {
        match session.channel_direct_tcpip("127.0.0.1", port, None) {
            Ok(channel) => return Some(channel),
            Err(error) if error.code() == ssh2::ErrorCode::Session(EAGAIN) => {
                std::thread::sleep(Duration::from_micros(500));
            }
            Err(_) => return None,
        }
    }
    None
}

/// Opens one tunnel per port in `text` and returns the text pointing at them; the tunnels
/// live as long as the returned vector.
pub(crate) fn open(
    text: &str,
    mut start: impl FnMut(u16) -> Result<Tunnel, String>,
) -> Result<(String, Vec<Tunnel>), String> {
    let mut tunnels = Vec::new();
    let mut addresses = Vec::new();
    for port in ports(text)? {
        let tunnel = start(port)?;
        addresses.push((port, tunnel.address()));
        tunnels.push(tunnel);
    }
    Ok((fill(text, &addresses), tunnels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_filled_and_checked() {
        let text = "url: http://{tunnel:8080}/a\nother: {tunnel:9090} {tunnel:8080}\n";
        assert_eq!(ports(text).expect("ports"), [8080, 9090]);
        let filled = fill(
            text,
            &[
                (8080, "127.0.0.1:40001".parse().expect("address")),
                (9090, "127.0.0.1:40002".parse().expect("address")),
            ],
        );
        assert_eq!(
            filled,
            "url: http://127.0.0.1:40001/a\nother: 127.0.0.1:40002 127.0.0.1:40001\n"
        );
        assert_eq!(
            probe("http://{tunnel:81}/").expect("probe"),
            "http://127.0.0.1:81/"
        );
        assert!(ports("no tunnels {host}").expect("none").is_empty());
        for bad in ["{tunnel:0}", "{tunnel:70000}", "{tunnel:web}", "{tunnel:80"] {
            let error = ports(bad).expect_err(bad);
            assert!(error.contains("tunnel"), "{bad}: {error}");
        }
    }
}
