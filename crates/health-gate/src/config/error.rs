//! A configuration problem with its field path.

/// A configuration problem: where (field path) and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// Dotted field path (`checks[1].http.url`).
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

pub(crate) fn config_error(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}
