//! Headers and gRPC metadata: literal, or read from the environment.

use std::collections::BTreeMap;

use super::error::{ConfigError, config_error};

/// A header value: literal or read from the environment (masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Written in the file.
    Literal(String),
    /// `env:NAME`.
    Env(String),
}

impl HeaderValue {
    fn parse(text: &str) -> Self {
        match text.strip_prefix("env:") {
            Some(name) => HeaderValue::Env(name.trim().to_owned()),
            None => HeaderValue::Literal(text.to_owned()),
        }
    }
}

pub(crate) fn merge_headers(
    defaults: &BTreeMap<String, String>,
    own: &BTreeMap<String, String>,
    field: &str,
) -> Result<Vec<(String, HeaderValue)>, ConfigError> {
    let mut merged = defaults.clone();
    merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut headers = Vec::new();
    for (name, value) in merged {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(config_error(
                format!("{field}.headers"),
                format!("`{name}` is not a valid header name"),
            ));
        }
        let value = HeaderValue::parse(&value);
        if let HeaderValue::Literal(text) = &value {
            if reqwest::header::HeaderValue::from_str(text).is_err() {
                return Err(config_error(
                    format!("{field}.headers.{name}"),
                    "the value contains characters not allowed in a header (newline, control characters)",
                ));
            }
        }
        headers.push((name, value));
    }
    Ok(headers)
}
