//! Input limits: every file ecs-taskdef-update reads is refused past a documented size before
//! it is read into memory, and YAML past a nesting depth before it is parsed.

/// Largest deploy file read (1 MiB).
pub const MAX_DEPLOY_FILE_BYTES: u64 = 1024 * 1024;
/// Largest task definition JSON or `env-from-file` file read (1 MiB; ECS itself takes at most
/// 64 KiB per task definition).
pub const MAX_INPUT_FILE_BYTES: u64 = 1024 * 1024;

/// Deepest nesting of YAML collections accepted.
pub const MAX_YAML_DEPTH: usize = yaml_spans::MAX_DEPTH;

// The bounded reader and the depth check are yaml-spans', shared by every tool.
pub use yaml_spans::{ReadError, TooDeep, check_depth as check_yaml_depth, read_text};
