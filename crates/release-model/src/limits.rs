//! Input-size limits: every file the release tools read is refused past a documented size
//! before it is read into memory (by [`yaml_spans::read_text`]), so a pull request cannot make
//! a job read gigabytes.

pub use yaml_spans::{ReadError as BoundedReadError, read_text};

/// Largest release descriptor read (1 MiB; real ones are a few KiB).
pub const MAX_DESCRIPTOR_BYTES: u64 = 1024 * 1024;
/// Largest `file:` prop read (1 MiB).
pub const MAX_PROP_FILE_BYTES: u64 = 1024 * 1024;
