//! The step outputs change-detect writes itself, whatever the filters (a filter may not take
//! their names: [`crate::config`] refuses them, [`crate::report`] writes them).

/// The static step outputs, in the order they are written (after the per-filter outputs).
pub const STATIC_OUTPUTS: &[&str] = &[
    "changes",
    "matrix",
    "filters",
    "base",
    "head",
    "base-source",
];
