//! SIGINT/SIGTERM during a deploy: the step in progress finishes (cutting a remote command
//! half-way could leave a half-written file), no new forward step starts, what was switched is
//! rolled back, locks are released, and the run exits 130.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use runner_protocol::console::Console;

/// Set once a signal arrived; cheap to check between steps.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// A signal arrived.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Marks the run interrupted (what the signal listener does; tests may call it too).
    pub fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Listens for SIGINT and SIGTERM on a background thread from now on.
    pub fn listen(&self, console: &Console) {
        self.listen_saying(
            console,
            "finishing the current step, then rolling back what was switched and releasing the \
             locks",
        );
    }

    /// [`Interrupt::listen`], logging `then` (what happens next) when a signal arrives.
    pub fn listen_saying(&self, console: &Console, then: &'static str) {
        let flag = self.clone();
        let listener_console = console.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(runtime) = runtime else {
            console.warn("cannot listen for SIGTERM; an interrupted deploy is not rolled back");
            return;
        };
        // Register the handlers here, before any step runs, so a signal is never missed.
        let registered = runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        });
        let Ok((mut terminate, mut interrupt)) = registered else {
            console.warn("cannot listen for SIGTERM; an interrupted deploy is not rolled back");
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let name = runtime.block_on(async {
                    tokio::select! {
                        _ = terminate.recv() => "SIGTERM",
                        _ = interrupt.recv() => "SIGINT",
                    }
                });
                flag.set();
                listener_console.log(&format!("received {name}: {then}"));
            });
        if spawned.is_err() {
            console.warn("cannot listen for SIGTERM; an interrupted deploy is not rolled back");
        }
    }

    /// Runs `future` to completion unless the run is interrupted first (checked every 50 ms);
    /// `None` when interrupted.
    pub async fn until<F: std::future::Future>(&self, future: F) -> Option<F::Output> {
        let watch = async {
            while !self.is_set() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            output = future => Some(output),
            () = watch => None,
        }
    }
}
