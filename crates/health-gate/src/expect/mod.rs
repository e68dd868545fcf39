//! Expectations on what a target answers (statuses, JSON, text): pure data and checks, no I/O.

pub(crate) mod json;
pub(crate) mod status;
pub(crate) mod text;
