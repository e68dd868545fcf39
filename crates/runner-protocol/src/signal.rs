//! SIGINT / SIGTERM as a count that async code can wait on (feature `signals`).
//!
//! A cancelled GitHub run sends SIGINT, then SIGTERM about 7.5 s later, then kills the process:
//! the first signal asks a tool to stop and undo what it changed; a later one asks it to stop
//! waiting for that undo. Counting signals lets each phase decide which signal ends it.

use tokio::sync::watch;

/// How many interrupting signals arrived, and the name of the last one.
#[derive(Debug, Clone)]
pub struct Interrupts {
    receiver: watch::Receiver<(u32, &'static str)>,
}

/// Delivers interrupts by hand (tests, or a caller with its own signal source).
#[derive(Debug)]
pub struct InterruptSender(watch::Sender<(u32, &'static str)>);

impl InterruptSender {
    /// Counts one more interrupt named `name`.
    pub fn send(&self, name: &'static str) {
        self.0.send_modify(|(count, last)| {
            *count += 1;
            *last = name;
        });
    }
}

impl Interrupts {
    /// Interrupts that only `InterruptSender::send` delivers.
    pub fn manual() -> (InterruptSender, Self) {
        let (sender, receiver) = watch::channel((0, ""));
        (InterruptSender(sender), Self { receiver })
    }

    /// Listens for SIGINT and SIGTERM on the current tokio runtime (a task runs until the
    /// runtime ends). Must be called inside a runtime with the signal driver enabled.
    pub fn listen() -> std::io::Result<Self> {
        let (sender, interrupts) = Self::manual();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt())?;
            let mut terminate = signal(SignalKind::terminate())?;
            tokio::spawn(async move {
                loop {
                    let name = tokio::select! {
                        _ = interrupt.recv() => "SIGINT",
                        _ = terminate.recv() => "SIGTERM",
                    };
                    sender.send(name);
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                sender.send("Ctrl-C");
            }
        });
        Ok(interrupts)
    }

    /// How many interrupts arrived so far.
    pub fn count(&self) -> u32 {
        self.receiver.borrow().0
    }

    /// The name of the last interrupt (`SIGINT`, `SIGTERM`), empty before the first.
    pub fn last(&self) -> &'static str {
        self.receiver.borrow().1
    }

    /// Waits until more than `seen` interrupts arrived; returns the last one's name. Never
    /// returns when no sender is left (so it can sit in a `select!` beside real work).
    pub async fn after(&self, seen: u32) -> &'static str {
        let mut receiver = self.receiver.clone();
        loop {
            {
                let current = receiver.borrow_and_update();
                if current.0 > seen {
                    return current.1;
                }
            }
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_and_names_interrupts() {
        let (sender, interrupts) = Interrupts::manual();
        assert_eq!((interrupts.count(), interrupts.last()), (0, ""));
        sender.send("SIGINT");
        assert_eq!(interrupts.after(0).await, "SIGINT");
        sender.send("SIGTERM");
        assert_eq!((interrupts.count(), interrupts.last()), (2, "SIGTERM"));
        assert_eq!(interrupts.after(1).await, "SIGTERM");
    }

    #[tokio::test]
    async fn waiting_without_a_sender_never_returns() {
        let (sender, interrupts) = Interrupts::manual();
        drop(sender);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), interrupts.after(0)).await;
        assert!(waited.is_err(), "after() returned without an interrupt");
    }
}
