//! How a service's rollback ended when it did not end on a stable previous revision.

/// Why a rollback did not end on a stable previous revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RollbackEnd {
    /// The rollback failed (or the previous revision failed too).
    Failed(String),
    /// The update was sent; a signal stopped the wait.
    NotWaited(&'static str),
}
