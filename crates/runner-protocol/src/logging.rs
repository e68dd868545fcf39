//! `tracing` logs on stderr, scrubbed of secrets.

use std::io::{IsTerminal as _, Write};

use tracing_subscriber::fmt::MakeWriter;

use crate::console::Console;
use crate::env::Env;

/// A `MakeWriter` that sends each formatted event through the console's masker to stderr.
#[derive(Debug, Clone)]
pub struct ScrubbedStderr {
    console: Console,
}

/// One event's bytes; scrubbed and written when dropped (tracing writes one event per writer).
#[derive(Debug)]
pub struct EventWriter {
    console: Console,
    buffer: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        self.console.log(text.trim_end_matches('\n'));
    }
}

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            console: self.console.clone(),
            buffer: Vec::new(),
        }
    }
}

/// Installs the global subscriber: info by default, debug with `--verbose` or `RUNNER_DEBUG=1`;
/// colour only on a terminal or under GitHub Actions, never with `NO_COLOR`.
pub fn init(env: &Env, console: &Console, verbose: bool) {
    let level = if verbose || env.runner_debug() {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let ansi = !env.no_color() && (env.is_github_actions() || std::io::stderr().is_terminal());
    // A second init (tests that call `main` twice) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::fmt()
        .with_writer(ScrubbedStderr {
            console: console.clone(),
        })
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .with_ansi(ansi)
        .try_init();
}
