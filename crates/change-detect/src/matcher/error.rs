//! The one error of compiling filters.

/// Errors while compiling filters (the patterns were validated when parsed, so this is rare).
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the filter patterns: {0}")]
pub struct CompileError(pub(super) String);

impl CompileError {
    /// An error with a message.
    pub fn new(message: String) -> Self {
        Self(message)
    }
}
