//! Expectations on a piece of text (a WebSocket message, a command's stdout or stderr).

use crate::config::{ConfigError, JsonAssertion, TextExpectConfig, config_error, resolve_json};

use super::http::check_json;

/// Validated text expectations; all must hold; empty means "anything".
#[derive(Debug, Clone, Default)]
pub struct TextExpect {
    /// Substring.
    pub contains: Option<String>,
    /// Regex.
    pub regex: Option<regex::Regex>,
    /// JSONPath assertions.
    pub json: Vec<JsonAssertion>,
}

impl TextExpect {
    /// Validates a config.
    pub fn resolve(config: Option<&TextExpectConfig>, field: &str) -> Result<Self, ConfigError> {
        let Some(config) = config else {
            return Ok(Self::default());
        };
        let regex = config
            .regex
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| config_error(format!("{field}.regex"), e.to_string()))?;
        Ok(Self {
            contains: config.contains.clone(),
            regex,
            json: resolve_json(&config.json, &format!("{field}.json"))?,
        })
    }

    /// Checks `text`; the error says what did not hold.
    pub fn check(&self, text: &str) -> Result<(), String> {
        if let Some(needle) = &self.contains {
            if !text.contains(needle.as_str()) {
                return Err(format!("does not contain `{needle}`"));
            }
        }
        if let Some(regex) = &self.regex {
            if !regex.is_match(text) {
                return Err(format!("does not match /{}/", regex.as_str()));
            }
        }
        if !self.json.is_empty() {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
            check_json(&self.json, &value).map_err(|f| f.detail)?;
        }
        Ok(())
    }
}

/// `text` cut to `limit` characters for a message, with an ellipsis.
pub fn excerpt(text: &str, limit: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(limit).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
