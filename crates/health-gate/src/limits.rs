//! Input limits: every file health-gate reads is refused past a documented size before it is
//! read into memory, and the gate file past a nesting depth before it is parsed.

/// Largest gate file read (1 MiB).
pub const MAX_GATE_FILE_BYTES: u64 = 1024 * 1024;
/// Largest baseline file read (1 MiB).
pub const MAX_BASELINE_BYTES: u64 = 1024 * 1024;
/// Largest TLS file (CA bundle, client certificate or key) read (1 MiB).
pub const MAX_TLS_FILE_BYTES: u64 = 1024 * 1024;

/// Deepest nesting of YAML collections accepted.
pub const MAX_YAML_DEPTH: usize = yaml_spans::MAX_DEPTH;

// The bounded reader and the depth check are yaml-spans', shared by every tool.
pub use yaml_spans::{ReadError, TooDeep, check_depth as check_yaml_depth, read_text};
