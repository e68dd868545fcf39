//! Secrets that cannot be printed by accident, and the masker that scrubs them from our output.

use std::fmt;
use std::sync::{Arc, RwLock};

/// Text that must never be printed: `Debug` and `Display` show `***`.
///
/// Create one through [`crate::Runner::secret`], which registers the value with the runner's
/// mask (`::add-mask::`) before anything could print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value without registering a mask; prefer [`crate::Runner::secret`].
    pub fn new_unregistered(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must use it (an HTTP header, an SSH key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The set of secret values our own writers scrub, locally and under GitHub alike.
///
/// GitHub's log masker only applies to the job log; a local run, a dotenv file or another CI
/// system sees what we print, so every text we write passes through [`Masker::scrub`].
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: Arc<RwLock<Vec<String>>>,
}

/// Secrets shorter than this are not scrubbed inside other text: masking `a` would destroy
/// every log line. GitHub has the same problem; such values should not be secrets.
pub const MIN_SCRUB_LEN: usize = 3;

impl Masker {
    /// Registers a value and each of its lines. Returns the pieces that are new.
    pub fn register(&self, value: &str) -> Vec<String> {
        let mut pieces: Vec<String> = vec![value.to_owned()];
        if value.contains(['\n', '\r']) {
            pieces.extend(
                value
                    .split(['\n', '\r'])
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(str::to_owned),
            );
        }
        let mut values = match self.values.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut added = Vec::new();
        for piece in pieces {
            if piece.trim().is_empty() || values.contains(&piece) {
                continue;
            }
            values.push(piece.clone());
            added.push(piece);
        }
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        added
    }

    /// Replaces every registered value in `text` with `***`.
    pub fn scrub(&self, text: &str) -> String {
        let values = match self.values.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = text.to_owned();
        for value in values.iter().filter(|v| v.len() >= MIN_SCRUB_LEN) {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "***");
            }
        }
        out
    }

    /// True when no value is registered.
    pub fn is_empty(&self) -> bool {
        self.values.read().map(|v| v.is_empty()).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_redact() {
        let secret = Secret::new_unregistered("hunter2");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(***))");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn scrubs_whole_value_and_each_line_of_multiline_secrets() {
        let masker = Masker::default();
        masker.register("-----BEGIN KEY-----\nabcdef\n-----END KEY-----");
        let text = "got abcdef and -----END KEY----- here";
        assert_eq!(masker.scrub(text), "got *** and *** here");
    }

    #[test]
    fn longer_secret_wins_over_its_substring() {
        let masker = Masker::default();
        masker.register("token");
        masker.register("token-extended");
        assert_eq!(masker.scrub("x token-extended y"), "x *** y");
    }

    #[test]
    fn registering_twice_adds_nothing_new() {
        let masker = Masker::default();
        assert_eq!(masker.register("abc"), ["abc"]);
        assert!(masker.register("abc").is_empty());
        assert!(masker.register("  ").is_empty());
    }
}
