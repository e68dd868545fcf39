//! Expectations on a piece of text (a WebSocket message, a command's stdout or stderr).

use super::json::{JsonAssertion, check_json};

/// Validated text expectations; all must hold; empty means "anything".
#[derive(Debug, Clone, Default)]
pub struct TextExpect {
    /// Substring.
    pub contains: Option<String>,
    pub regex: Option<regex::Regex>,
    /// JSONPath assertions.
    pub json: Vec<JsonAssertion>,
}

impl TextExpect {
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
pub(crate) fn excerpt(text: &str, limit: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(limit).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
