//! A deadline of our own on an SSH connection's socket.
//!
//! libssh2 blocks (or, in known bugs, spins in `poll()`) for as long as the kernel keeps a dead
//! TCP connection open: a write into a link that went down waits for the retransmission timeout
//! (about 15 minutes on Linux), and a signal cannot end it. The watchdog is a thread beside one
//! remote command that shuts the socket down when the command stops making progress for its
//! limit, or, while the artifact is being written, when SIGINT/SIGTERM arrives. Shutting the
//! socket makes every blocked call on it return an error at once, so the deploy goes on with its
//! rollback within the documented bounds whatever the network does.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::interrupt::Interrupt;

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(100);

/// Why the watchdog shut the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired {
    /// No progress for the limit.
    Stalled(Duration),
    /// A signal arrived while the artifact was being written.
    Interrupted,
}

impl std::fmt::Display for Fired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fired::Stalled(limit) => write!(
                f,
                "no progress for {}s: the host or its link is unreachable (connection shut; \
                 --stall-timeout / --command-timeout)",
                limit.as_secs()
            ),
            Fired::Interrupted => f.write_str("interrupted (SIGINT/SIGTERM)"),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every read or write that moved data.
    progress: AtomicU64,
    /// The current limit in milliseconds; 0: not watching.
    limit_ms: AtomicU64,
    /// A signal shuts the connection (only while the artifact is written: other steps finish).
    stop_on_interrupt: AtomicBool,
    done: AtomicBool,
    fired: Mutex<Option<Fired>>,
}

/// Watches one remote command; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct Watchdog {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching `socket` (a clone of the session's stream). Nothing is enforced until
    /// [`Watchdog::phase`] sets a limit.
    pub(crate) fn start(socket: TcpStream, interrupt: Option<Interrupt>) -> Self {
        let state = Arc::new(State::default());
        let watched = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("ssh-watchdog".into())
            .spawn(move || watch(&watched, &socket, interrupt.as_ref()))
            .ok();
        Self { state, thread }
    }

    /// From now on, shut the connection after `limit` without progress (zero: never), and on a
    /// signal when `stop_on_interrupt`. Counts as progress.
    pub(crate) fn phase(&self, limit: Duration, stop_on_interrupt: bool) {
        self.progress();
        self.state
            .stop_on_interrupt
            .store(stop_on_interrupt, Ordering::SeqCst);
        let millis = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        self.state.limit_ms.store(millis, Ordering::SeqCst);
    }

    /// Data moved.
    pub(crate) fn progress(&self) {
        self.state.progress.fetch_add(1, Ordering::SeqCst);
    }

    /// Why the connection was shut, if it was.
    pub(crate) fn fired(&self) -> Option<Fired> {
        self.state.fired.lock().ok().and_then(|f| f.clone())
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn watch(state: &State, socket: &TcpStream, interrupt: Option<&Interrupt>) {
    let mut seen = state.progress.load(Ordering::SeqCst);
    let mut since = Instant::now();
    while !state.done.load(Ordering::SeqCst) {
        std::thread::park_timeout(TICK);
        let now = state.progress.load(Ordering::SeqCst);
        if now != seen {
            seen = now;
            since = Instant::now();
        }
        let limit = Duration::from_millis(state.limit_ms.load(Ordering::SeqCst));
        let fired = if state.stop_on_interrupt.load(Ordering::SeqCst)
            && interrupt.is_some_and(Interrupt::is_set)
        {
            Some(Fired::Interrupted)
        } else if !limit.is_zero() && since.elapsed() >= limit {
            Some(Fired::Stalled(limit))
        } else {
            None
        };
        if let Some(fired) = fired {
            if let Ok(mut slot) = state.fired.lock() {
                *slot = Some(fired);
            }
            let _ = socket.shutdown(Shutdown::Both);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A real loopback connection whose peer never reads: the writer blocks once the socket
    /// buffers are full, as on a dead link, and only the watchdog ends the write.
    #[test]
    fn a_write_that_stops_moving_is_ended_within_its_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut writer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_peer, _) = listener.accept().expect("accept");
        let dog = Watchdog::start(writer.try_clone().expect("clone"), None);
        dog.phase(Duration::from_millis(500), false);
        let started = Instant::now();
        let chunk = vec![0u8; 1 << 16];
        let error = loop {
            match writer.write(&chunk) {
                Ok(_) => dog.progress(),
                Err(error) => break error,
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never stopped");
        };
        assert!(started.elapsed() < Duration::from_secs(10), "{error}");
        assert_eq!(
            dog.fired(),
            Some(Fired::Stalled(Duration::from_millis(500)))
        );
    }

    #[test]
    fn a_signal_ends_a_blocked_read_when_asked_to() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut reader = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_peer, _) = listener.accept().expect("accept");
        let interrupt = Interrupt::default();
        let dog = Watchdog::start(reader.try_clone().expect("clone"), Some(interrupt.clone()));
        dog.phase(Duration::ZERO, true);
        interrupt.set();
        let mut buffer = [0u8; 16];
        // Blocks until the watchdog shuts the socket (read then returns 0 or an error).
        let read = reader.read(&mut buffer);
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(dog.fired(), Some(Fired::Interrupted));
    }

    #[test]
    fn progress_keeps_it_quiet_and_drop_stops_it() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let stream = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_peer, _) = listener.accept().expect("accept");
        let dog = Watchdog::start(stream.try_clone().expect("clone"), None);
        dog.phase(Duration::from_millis(400), false);
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(1200) {
            dog.progress();
            std::thread::park_timeout(Duration::from_millis(50));
        }
        assert_eq!(dog.fired(), None);
        drop(dog);
        // The socket is still usable: the watchdog never shut it.
        stream.set_nonblocking(true).expect("nonblocking");
        let mut buffer = [0u8; 1];
        let read = (&stream).read(&mut buffer);
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{read:?}"
        );
    }
}
