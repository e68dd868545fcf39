//! The error of building a plan from flags or a deploy file.

use std::path::PathBuf;

use runner_protocol::Diagnostic;

/// Errors in flags or the deploy file.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The deploy file is not valid: placed at its `file:line:col`, with the field and what
    /// would be valid.
    #[error("{}", yaml_spans::diagnostic::one_line(.0))]
    DeployFile(Box<Diagnostic>),
    /// A task definition file is not JSON.
    #[error("{path} is not JSON: {source}")]
    Json {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A file is larger than its limit or not UTF-8.
    #[error("cannot read {path}: {reason}")]
    Limit {
        /// Path.
        path: PathBuf,
        /// Why (the limit, or not UTF-8).
        reason: String,
    },
    /// A `NAME=value` line without `=`. Nothing after the name is shown: the line may hold a
    /// secret (`DB_PASSWORD hunter2`).
    #[error("line {number} of --{flag} is not NAME=value{}; the rest of the line is not shown, it may be a secret", .name.as_ref().map(|n| format!(" (it starts with `{n}`)")).unwrap_or_default())]
    Pair {
        /// The flag.
        flag: &'static str,
        /// 1-based line number among the flag's lines.
        number: usize,
        /// The leading name, only when a separator (space, `:`) follows it.
        name: Option<String>,
    },
    /// A service name that is not an ECS service name (it also names the `render` file).
    #[error("service name `{name}` is not valid: use 1 to 255 letters, digits, `-` and `_`")]
    ServiceName {
        /// The name as given (escaped).
        name: String,
    },
    /// Something else about the flags.
    #[error("{0}")]
    Usage(String),
}

impl PlanError {
    /// Adds what would be valid to a deploy file problem (other errors are returned as they
    /// are).
    pub(crate) fn with_hint(self, hint: &str) -> Self {
        match self {
            PlanError::DeployFile(diagnostic) => {
                PlanError::DeployFile(Box::new(diagnostic.with_hint(hint)))
            }
            other => other,
        }
    }
}
