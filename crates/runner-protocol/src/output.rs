//! Step outputs: collected while a tool runs, written once at the end in the chosen format.

use std::io::Write;
use std::path::{Path, PathBuf};

/// GitHub caps the outputs of a job at 1 MB, measured in UTF-16.
pub const GITHUB_OUTPUT_JOB_LIMIT: usize = 1_000_000;

/// Where and how outputs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// `github` when `GITHUB_OUTPUT` is set, otherwise `json`.
    Auto,
    /// Append to the `$GITHUB_OUTPUT` file with a random heredoc delimiter.
    Github,
    /// One JSON object on stdout: `{"name": "value", ...}`.
    Json,
    /// `NAME=value` lines on stdout (names upper-cased, `-` -> `_`; other values single-quoted
    /// POSIX-shell style), for GitLab dotenv reports, Jenkins and `set -a; . ./file`.
    Dotenv,
    /// Do not write outputs.
    None,
}

/// Errors while recording or writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The name cannot be used as a step output.
    #[error(
        "output name `{name}` is invalid: use letters, digits, `_` and `-`, starting with a letter or `_`"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The heredoc delimiter occurs in a name or value (never silently written).
    #[error("output `{name}`: the {part} contains the heredoc delimiter; refusing to write it")]
    ContainsDelimiter {
        /// Output name.
        name: String,
        /// `name` or `value`.
        part: &'static str,
    },
    /// Two names map to the same dotenv key.
    #[error("outputs `{first}` and `{second}` both become `{key}` in dotenv format")]
    DotenvCollision {
        /// First output name.
        first: String,
        /// Second output name.
        second: String,
        /// The shared key.
        key: String,
    },
    /// `--output-format github` without a `GITHUB_OUTPUT` file.
    #[error("--output-format github needs the GITHUB_OUTPUT environment variable to name a file")]
    NoGithubOutputFile,
    /// Writing failed.
    #[error("cannot write outputs to {path}")]
    Write {
        /// The file or stream.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Output names and values in the order they were first set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    entries: Vec<(String, String)>,
}

/// True when `name` can be used as a step output name.
pub fn is_valid_output_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Outputs {
    /// Sets `name` to `value`, replacing an earlier value but keeping its position.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> Result<(), OutputError> {
        if !is_valid_output_name(name) {
            return Err(OutputError::InvalidName { name: name.into() });
        }
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name.to_owned(), value)),
        }
        Ok(())
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Names and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// True when nothing was set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Size as GitHub approximates it (UTF-16 bytes of names and values).
    pub fn github_size(&self) -> usize {
        self.entries
            .iter()
            .map(|(n, v)| 2 * (n.encode_utf16().count() + v.encode_utf16().count()))
            .sum()
    }

    /// The `GITHUB_OUTPUT` text: every entry in heredoc form with `delimiter`.
    ///
    /// Refuses a name or value containing the delimiter, as `@actions/core` does; with a
    /// random delimiter that only happens to an attacker who can read our memory.
    pub fn to_github_file(&self, delimiter: &str) -> Result<String, OutputError> {
        let mut text = String::new();
        for (name, value) in &self.entries {
            if name.contains(delimiter) {
                return Err(OutputError::ContainsDelimiter {
                    name: name.clone(),
                    part: "name",
                });
            }
            if value.contains(delimiter) {
                return Err(OutputError::ContainsDelimiter {
                    name: name.clone(),
                    part: "value",
                });
            }
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        }
        Ok(text)
    }

    /// One JSON object, names to string values, in order, followed by a newline.
    pub fn to_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .entries
            .iter()
            .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut text = serde_json::Value::Object(object).to_string();
        text.push('\n');
        text
    }

    /// `NAME=value` lines; see [`OutputFormat::Dotenv`].
    pub fn to_dotenv(&self) -> Result<String, OutputError> {
        let mut seen: Vec<(String, &str)> = Vec::new();
        let mut text = String::new();
        for (name, value) in &self.entries {
            let key = dotenv_key(name);
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                return Err(OutputError::DotenvCollision {
                    first: (*first).to_owned(),
                    second: name.clone(),
                    key,
                });
            }
            text.push_str(&format!("{key}={}\n", shell_quote_if_needed(value)));
            seen.push((key, name));
        }
        Ok(text)
    }

    /// Appends the heredoc form to the `GITHUB_OUTPUT` file at `path`.
    pub fn append_to_github_file(&self, path: &Path, delimiter: &str) -> Result<(), OutputError> {
        let text = self.to_github_file(delimiter)?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)?;
            file.write_all(text.as_bytes())?;
            file.flush()
        };
        write().map_err(|source| OutputError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// The dotenv key for an output name: upper-case, `-` becomes `_`.
pub fn dotenv_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// Characters that never need quoting in shell or dotenv values.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./:@%+,=-".contains(c)
}

/// `value` as is when it is plain, otherwise single-quoted POSIX-shell style (`'` -> `'\''`).
pub fn shell_quote_if_needed(value: &str) -> String {
    if value.chars().all(is_plain) {
        value.to_owned()
    } else {
        shell_quote(value)
    }
}

/// `value` single-quoted for a POSIX shell; safe for every byte sequence a `str` can hold.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(pairs: &[(&str, &str)]) -> Outputs {
        let mut outputs = Outputs::default();
        for (n, v) in pairs {
            outputs.set(n, *v).expect("valid name");
        }
        outputs
    }

    /// The runner's parser (`EnvFileKeyValuePairs`), reimplemented to prove what it reads back.
    fn runner_parse(text: &str) -> Vec<(String, String)> {
        let mut result = Vec::new();
        let mut lines = text.split('\n').peekable();
        while let Some(line) = lines.next() {
            if line.is_empty() && lines.peek().is_none() {
                break;
            }
            let heredoc = line.find("<<");
            let equals = line.find('=');
            match (heredoc, equals) {
                (Some(h), e) if e.is_none_or(|e| h < e) => {
                    let name = &line[..h];
                    let delimiter = &line[h + 2..];
                    let mut value_lines = Vec::new();
                    loop {
                        let next = lines.next().expect("delimiter found");
                        if next == delimiter {
                            break;
                        }
                        value_lines.push(next);
                    }
                    result.push((name.to_owned(), value_lines.join("\n")));
                }
                (_, Some(e)) => result.push((line[..e].to_owned(), line[e + 1..].to_owned())),
                _ => panic!("invalid line {line:?}"),
            }
        }
        result
    }

    #[test]
    fn github_file_round_trips_hostile_values_through_the_runner_parser() {
        let hostile = [
            ("plain", "value"),
            ("empty", ""),
            ("multi", "a\nb\n\nc"),
            ("equals", "x=y<<z"),
            ("fake-delimiter", "EOF\nghadelimiter_\nname<<EOF"),
            ("commands", "::set-output name=a::b\n%0A"),
            ("trailing-newline", "x\n"),
        ];
        let outputs = outputs(&hostile);
        let text = outputs
            .to_github_file("ghadelimiter_0123")
            .expect("no delimiter");
        let parsed = runner_parse(&text);
        let expected: Vec<(String, String)> = hostile
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn rejects_output_value_containing_delimiter() {
        let outputs = outputs(&[("x", "before\nghadelimiter_abc\nafter")]);
        let error = outputs
            .to_github_file("ghadelimiter_abc")
            .expect_err("refused");
        assert!(matches!(
            error,
            OutputError::ContainsDelimiter { part: "value", .. }
        ));
    }

    #[test]
    fn rejects_invalid_output_names() {
        for name in ["", "1abc", "a b", "a\nb", "a<<b", "a=b", "a.b", "ä"] {
            let mut outputs = Outputs::default();
            assert!(outputs.set(name, "v").is_err(), "{name:?}");
        }
        for name in ["a", "_a", "a-b_c9", "A"] {
            assert!(is_valid_output_name(name), "{name:?}");
        }
    }

    #[test]
    fn setting_again_replaces_in_place() {
        let mut outputs = outputs(&[("a", "1"), ("b", "2")]);
        outputs.set("a", "3").expect("valid");
        assert_eq!(outputs.iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);
    }

    #[test]
    fn json_is_one_object_in_order() {
        let outputs = outputs(&[("z", "1"), ("a", "line\n\"q\"")]);
        assert_eq!(
            outputs.to_json(),
            "{\"z\":\"1\",\"a\":\"line\\n\\\"q\\\"\"}\n"
        );
    }

    #[test]
    fn dotenv_quotes_what_a_shell_would_interpret() {
        let outputs = outputs(&[
            ("plain-name", "v1.2.3"),
            ("spaces", "a b"),
            ("quote", "it's"),
            ("subst", "$(rm -rf /)`x`"),
            ("newline", "a\nb"),
            ("empty", ""),
        ]);
        assert_eq!(
            outputs.to_dotenv().expect("no collision"),
            "PLAIN_NAME=v1.2.3\nSPACES='a b'\nQUOTE='it'\\''s'\n\
             SUBST='$(rm -rf /)`x`'\nNEWLINE='a\nb'\nEMPTY=\n"
        );
    }

    #[test]
    fn dotenv_values_survive_a_real_shell() {
        let values = [
            "a b",
            "it's",
            "$(echo pwned)",
            "`x`",
            "a\nb",
            "\\n",
            "'",
            "\"",
            "ü",
        ];
        for value in values {
            let line = format!("printf %s {}", shell_quote(value));
            let out = std::process::Command::new("sh")
                .args(["-c", &line])
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }

    #[test]
    fn dotenv_refuses_names_that_collide() {
        let outputs = outputs(&[("a-b", "1"), ("a_b", "2")]);
        assert!(matches!(
            outputs.to_dotenv(),
            Err(OutputError::DotenvCollision { .. })
        ));
    }

    #[test]
    fn github_size_counts_utf16() {
        let outputs = outputs(&[("n", "€𝄞")]);
        // n = 1 unit, € = 1 unit, 𝄞 = 2 units: 4 units, 8 bytes.
        assert_eq!(outputs.github_size(), 8);
    }
}
