//! The application behind the proxy: small HTTP/1.1 servers, one per slot, that name their slot
//! in an `X-Slot` header (and their release in `X-Release`). They are started and stopped by
//! the deploy's `--slot-start-command` / `--slot-stop-command` through a control endpoint
//! (curl to a `test_support::http_server`), so the deploy really starts and stops them.
//!
//! Stopping a slot is abrupt on purpose: every request still in flight is cut and counted, so
//! a deploy that stops the old slot before it has drained shows up as `cut > 0`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_support::http_server::{HttpServer, Reply};

/// Paths: `/slow` answers after 2 s; `/observe` fails (500) on a release whose id contains
/// `bad`; `/ws` is a WebSocket that sends the slot name first; anything else answers at once.
const SLOW: Duration = Duration::from_secs(2);

struct Running {
    stopped: Arc<AtomicBool>,
    port: u16,
    /// The reserved socket it listens on, if its port is reserved.
    reserved: Option<socket2::Socket>,
    connections: Arc<Mutex<Vec<(u64, TcpStream)>>>,
    in_flight: Arc<AtomicU64>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// Counters across all slots.
#[derive(Debug, Default)]
pub(crate) struct SlotStats {
    /// Requests cut by a stop.
    pub(crate) cut: AtomicU64,
    /// Requests answered.
    pub(crate) served: AtomicU64,
    /// Starts and stops seen.
    pub(crate) starts: AtomicU64,
    /// Stops seen.
    pub(crate) stops: AtomicU64,
}

/// The slots plus their control endpoint.
pub(crate) struct Slots {
    control: HttpServer,
    running: Arc<Mutex<HashMap<String, Running>>>,
    /// The slots' ports, held for the fixture's life (see [`Slots::reserve`]).
    reserved: Reserved,
    /// Counters.
    pub(crate) stats: Arc<SlotStats>,
}

/// Sockets bound (not listening) to the slots' ports, by port.
type Reserved = Arc<Mutex<HashMap<u16, socket2::Socket>>>;

impl Slots {
    /// Starts the control endpoint (no slot runs yet).
    pub(crate) fn start() -> Self {
        let running: Arc<Mutex<HashMap<String, Running>>> = Arc::default();
        let stats: Arc<SlotStats> = Arc::default();
        let reserved: Reserved = Arc::default();
        let (control_running, control_stats) = (running.clone(), stats.clone());
        let control_reserved = reserved.clone();
        let control = HttpServer::start(move |request| {
            let query: HashMap<&str, &str> = request
                .path
                .split_once('?')
                .map(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).collect())
                .unwrap_or_default();
            let slot = query.get("slot").copied().unwrap_or_default().to_owned();
            if request.path.starts_with("/start") {
                let port: u16 = query.get("port").and_then(|p| p.parse().ok()).unwrap_or(0);
                let release = query.get("release").copied().unwrap_or_default();
                let mut map = control_running.lock().expect("lock");
                if let Some(old) = map.remove(&slot) {
                    stop(old, &control_stats);
                }
                let socket = control_reserved
                    .lock()
                    .expect("lock")
                    .get(&port)
                    .map(|s| s.try_clone());
                match serve(&slot, port, socket, release, control_stats.clone()) {
                    Ok(running) => {
                        control_stats.starts.fetch_add(1, Ordering::SeqCst);
                        map.insert(slot, running);
                        Reply::text(200, "started")
                    }
                    Err(error) => Reply::text(500, &format!("cannot bind {port}: {error}")),
                }
            } else if request.path.starts_with("/stop") {
                if let Some(old) = control_running.lock().expect("lock").remove(&slot) {
                    stop(old, &control_stats);
                }
                Reply::text(200, "stopped")
            } else {
                Reply::text(404, "unknown")
            }
        });
        Self {
            control,
            running,
            reserved,
            stats,
        }
    }

    /// A port for a slot, held until the fixture ends: a socket bound to it (explicitly, so
    /// the kernel keeps the binding when the slot stops listening) but listening only while
    /// the slot runs. A port merely found free (bind 0, close) could be taken in between by
    /// any other test's connection, whose source port comes from the same range; a bound port
    /// is skipped by the kernel's choice of source ports. While the slot is stopped,
    /// connections to the port are refused, as for a stopped service.
    pub(crate) fn reserve(&self) -> u16 {
        for _ in 0..100 {
            let port = test_support::free_port();
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            socket.set_reuse_address(true).expect("SO_REUSEADDR");
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            // Taken since free_port saw it free: try another.
            if socket.bind(&address.into()).is_ok() {
                self.reserved.lock().expect("lock").insert(port, socket);
                return port;
            }
        }
        panic!("no free loopback port could be bound in 100 tries");
    }

    /// `--slot-start-command`.
    pub(crate) fn start_command(&self) -> String {
        format!(
            "curl -fsS -o /dev/null '{}/start?slot='\"$SSH_DEPLOY_SLOT\"'&port='\"$SSH_DEPLOY_SLOT_PORT\"'&release='\"$SSH_DEPLOY_RELEASE\"",
            self.control.base_url()
        )
    }

    /// `--slot-stop-command`.
    pub(crate) fn stop_command(&self) -> String {
        format!(
            "curl -fsS -o /dev/null '{}/stop?slot='\"$SSH_DEPLOY_SLOT\"",
            self.control.base_url()
        )
    }

    /// Which slots run now.
    pub(crate) fn running(&self) -> Vec<String> {
        let mut names: Vec<String> = self.running.lock().expect("lock").keys().cloned().collect();
        names.sort();
        names
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        let all: Vec<Running> = self
            .running
            .lock()
            .map(|mut map| map.drain().map(|(_, r)| r).collect())
            .unwrap_or_default();
        for running in all {
            stop(running, &SlotStats::default());
        }
    }
}

fn stop(mut running: Running, stats: &SlotStats) {
    running.stopped.store(true, Ordering::SeqCst);
    match &running.reserved {
        // Stop listening and keep the port: the accept loop wakes with an error, sees
        // `stopped`, and ends; new connections are refused.
        Some(socket) => {
            let _ = socket.shutdown(Shutdown::Read);
        }
        // Wake the accept loop; once it sees `stopped` it drops the listener.
        None => {
            let _ = TcpStream::connect(("127.0.0.1", running.port));
        }
    }
    if let Some(accept) = running.accept.take() {
        let _ = accept.join();
    }
    stats
        .cut
        .fetch_add(running.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    stats.stops.fetch_add(1, Ordering::SeqCst);
    for (_, connection) in running.connections.lock().expect("lock").drain(..) {
        let _ = connection.shutdown(Shutdown::Both);
    }
}

fn serve(
    slot: &str,
    port: u16,
    reserved: Option<std::io::Result<socket2::Socket>>,
    release: &str,
    stats: Arc<SlotStats>,
) -> std::io::Result<Running> {
    let (listener, reserved) = match reserved {
        Some(socket) => {
            let socket = socket?;
            socket.listen(128)?;
            (TcpListener::from(socket.try_clone()?), Some(socket))
        }
        None => (TcpListener::bind(("127.0.0.1", port))?, None),
    };
    let stopped = Arc::new(AtomicBool::new(false));
    let connections: Arc<Mutex<Vec<(u64, TcpStream)>>> = Arc::default();
    let in_flight = Arc::new(AtomicU64::new(0));
    let (slot, release) = (slot.to_owned(), release.to_owned());
    let accept = {
        let (stopped, connections, in_flight) =
            (stopped.clone(), connections.clone(), in_flight.clone());
        std::thread::spawn(move || {
            let mut next_id = 0u64;
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                next_id += 1;
                let id = next_id;
                if let Ok(clone) = stream.try_clone() {
                    connections.lock().expect("lock").push((id, clone));
                }
                let (slot, release, connections, in_flight, stats, stopped) = (
                    slot.clone(),
                    release.clone(),
                    connections.clone(),
                    in_flight.clone(),
                    stats.clone(),
                    stopped.clone(),
                );
                std::thread::spawn(move || {
                    connection(stream, &slot, &release, &in_flight, &stats, &stopped);
                    connections.lock().expect("lock").retain(|(i, _)| *i != id);
                });
            }
        })
    };
    Ok(Running {
        stopped,
        port,
        reserved,
        connections,
        in_flight,
        accept: Some(accept),
    })
}

fn connection(
    stream: TcpStream,
    slot: &str,
    release: &str,
    in_flight: &AtomicU64,
    stats: &SlotStats,
    stopped: &AtomicBool,
) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_default()
        };
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
        if path.starts_with("/ws") && header("upgrade") == "websocket" {
            websocket(reader, writer, slot, &headers);
            return;
        }
        in_flight.fetch_add(1, Ordering::SeqCst);
        if path.starts_with("/slow") {
            std::thread::sleep(SLOW);
        }
        let (status, body) = if path.starts_with("/observe") && release.contains("bad") {
            ("500 Internal Server Error", "observed failure\n".to_owned())
        } else {
            ("200 OK", format!("{slot}\n"))
        };
        let close = request_line.contains("HTTP/1.0") || header("connection") == "close";
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Slot: {slot}\r\nX-Release: {release}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        let written = writer
            .write_all(response.as_bytes())
            .and_then(|()| writer.flush());
        in_flight.fetch_sub(1, Ordering::SeqCst);
        if written.is_err() {
            return;
        }
        stats.served.fetch_add(1, Ordering::SeqCst);
        if close {
            return;
        }
    }
}

/// Answers the upgrade, sends the slot name as the first message, then echoes until the peer
/// closes.
fn websocket(
    reader: BufReader<TcpStream>,
    mut writer: TcpStream,
    slot: &str,
    headers: &[(String, String)],
) {
    use tokio_tungstenite::tungstenite::{self, Message, protocol::Role};
    let key = headers
        .iter()
        .find(|(n, _)| n == "sec-websocket-key")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    drop(reader);
    let mut socket = tungstenite::WebSocket::from_raw_socket(writer, Role::Server, None);
    if socket.send(Message::text(slot.to_owned())).is_err() {
        return;
    }
    while let Ok(message) = socket.read() {
        if message.is_close() {
            break;
        }
    }
}

/// An open WebSocket through the proxy.
pub(crate) type Socket = tokio_tungstenite::tungstenite::WebSocket<TcpStream>;

/// Opens a WebSocket through the proxy; returns it with the slot's first message.
pub(crate) fn open_websocket(proxy_port: u16) -> (Socket, String) {
    use tokio_tungstenite::tungstenite;
    let stream = TcpStream::connect(("127.0.0.1", proxy_port)).expect("connect to the proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (mut socket, response) =
        tungstenite::client::client(format!("ws://127.0.0.1:{proxy_port}/ws"), stream)
            .expect("websocket handshake through the proxy");
    assert_eq!(response.status(), 101);
    let message = socket.read().expect("first message");
    (socket, message.into_text().expect("text").to_string())
}

/// Opens a WebSocket through the proxy and returns the slot's first message.
pub(crate) fn websocket_slot(proxy_port: u16) -> String {
    let (mut socket, message) = open_websocket(proxy_port);
    let _ = socket.close(None);
    let _ = socket.flush();
    let mut rest = Vec::new();
    let _ = socket.get_mut().read_to_end(&mut rest);
    message
}
