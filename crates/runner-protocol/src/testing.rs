//! Helpers for tests of tools built on this crate: in-memory streams and a test runner.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::console::{SharedWriter, shared};

/// An in-memory stream whose contents tests can read.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// A writer appending to this capture.
    pub fn writer(&self) -> SharedWriter {
        shared(self.clone())
    }

    /// Everything written so far, lossily decoded.
    pub fn text(&self) -> String {
        let bytes = match self.0.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut guard) => guard.extend_from_slice(buf),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
