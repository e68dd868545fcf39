//! Jump hosts (ProxyJump equivalent) for libssh2.
//!
//! libssh2 runs a session over a socket only (`Session::set_tcp_stream` takes an `AsRawFd`), not
//! over a channel, so the target's session cannot ride a `direct-tcpip` channel directly. A
//! [`Forwarder`] opens that channel on the jump host's session and pipes it to a one-shot
//! loopback listener; the target's session connects to that listener. Host keys of the jump
//! host and of the target are each verified by their own session, against their own names.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Pipes one loopback connection to a `direct-tcpip` channel until either side closes.
#[derive(Debug)]
pub(crate) struct Forwarder {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Opens `host:port` from the jump host and listens on 127.0.0.1 for the one connection
    /// that will use it (waiting at most `accept_within` for it).
    pub(crate) fn start(
        session: ssh2::Session,
        host: &str,
        port: u16,
        accept_within: Duration,
        keepalive: Duration,
    ) -> Result<Self, String> {
        let channel = session
            .channel_direct_tcpip(host, port, None)
            .map_err(|e| format!("the jump host cannot open a channel to {host}:{port}: {e}"))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot listen on loopback for the jump tunnel: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("jump tunnel address: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("jump tunnel: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("jump {host}:{port}"))
            .spawn(move || {
                if let Some(stream) = accept(&listener, accept_within, &stopped) {
                    drop(listener);
                    pipe(&session, channel, stream, &stopped, keepalive);
                }
            })
            .map_err(|e| format!("cannot start the jump tunnel thread: {e}"))?;
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// Where the target's session connects.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept(listener: &TcpListener, within: Duration, stop: &AtomicBool) -> Option<TcpStream> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            // Only our own connect, made right after `start`, is expected; anything from
            // another address would be a local process racing for the tunnel.
            Ok((stream, peer)) if peer.ip().is_loopback() => return Some(stream),
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                // The listener is non-blocking so a connect that never comes cannot pin the
                // thread; the pause bounds the polling cost.
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => return None,
        }
    }
    None
}

/// Moves bytes both ways with non-blocking I/O on both ends (a blocking read on the channel
/// would hold the session's lock and starve the other direction).
pub(crate) fn pipe(
    session: &ssh2::Session,
    mut channel: ssh2::Channel,
    mut stream: TcpStream,
    stop: &AtomicBool,
    keepalive: Duration,
) {
    session.set_blocking(false);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut up_closed = false;
    let mut last_traffic = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let mut progress = false;
        if up.is_empty() && !up_closed {
            match stream.read(&mut buffer) {
                Ok(0) => {
                    up_closed = true;
                    let _ = channel.send_eof();
                }
                Ok(n) => {
                    up.extend_from_slice(&buffer[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !up.is_empty() {
            match channel.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if down.is_empty() {
            match channel.read(&mut buffer) {
                Ok(0) if channel.eof() => return,
                Ok(0) => {}
                Ok(n) => {
                    down.extend_from_slice(&buffer[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !down.is_empty() {
            match stream.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if progress {
            last_traffic = Instant::now();
        } else {
            if !keepalive.is_zero() && last_traffic.elapsed() >= keepalive {
                let _ = session.keepalive_send();
                last_traffic = Instant::now();
            }
            // Nothing moved either way: wait a little instead of spinning on both sockets.
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}
