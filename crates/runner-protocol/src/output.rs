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

impl OutputError {
    /// The one classification every tool uses: a failed write is the machine's (exit 3);
    /// anything else is a name, value or setting the run was given (exit 2).
    pub fn class(&self) -> crate::ErrorClass {
        match self {
            OutputError::Write { .. } => crate::ErrorClass::Infrastructure,
            OutputError::InvalidName { .. }
            | OutputError::ContainsDelimiter { .. }
            | OutputError::DotenvCollision { .. }
            | OutputError::NoGithubOutputFile => crate::ErrorClass::Usage,
        }
    }
}

/// The value of a step output.
///
/// GitHub outputs (and dotenv) are strings; with `--output-format json` a typed value keeps its
/// type, so a person or another CI reads `{"api": true, "api_count": 3, "changes": ["api"]}`
/// instead of strings inside strings. `&str`/`String` are text; `bool`, numbers and
/// `serde_json::Value` are typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputValue {
    /// Plain text, a JSON string in `json` format.
    Text(String),
    /// A JSON value; GitHub and dotenv get its compact JSON text (a string value: the string).
    Json(serde_json::Value),
    /// A JSON document written as text (pretty-printed, say): GitHub and dotenv get the text
    /// as it is, `json` format the value. Made by [`OutputValue::json_text`].
    JsonText {
        /// The text as written.
        text: String,
        /// The same document, parsed.
        value: serde_json::Value,
    },
}

impl OutputValue {
    /// A JSON document kept as written for GitHub and dotenv and typed in `json` format;
    /// text that is not JSON stays text.
    pub fn json_text(text: impl Into<String>) -> Self {
        let text = text.into();
        match serde_json::from_str(&text) {
            Ok(value) => OutputValue::JsonText { text, value },
            Err(_) => OutputValue::Text(text),
        }
    }

    /// The value as GitHub and dotenv see it.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            OutputValue::Text(text) | OutputValue::JsonText { text, .. } => {
                std::borrow::Cow::Borrowed(text)
            }
            OutputValue::Json(serde_json::Value::String(text)) => std::borrow::Cow::Borrowed(text),
            OutputValue::Json(value) => std::borrow::Cow::Owned(value.to_string()),
        }
    }

    /// The value in `json` format.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            OutputValue::Text(text) => serde_json::Value::String(text.clone()),
            OutputValue::Json(value) | OutputValue::JsonText { value, .. } => value.clone(),
        }
    }
}

impl From<String> for OutputValue {
    fn from(text: String) -> Self {
        OutputValue::Text(text)
    }
}

impl From<&str> for OutputValue {
    fn from(text: &str) -> Self {
        OutputValue::Text(text.to_owned())
    }
}

impl From<&String> for OutputValue {
    fn from(text: &String) -> Self {
        OutputValue::Text(text.clone())
    }
}

impl From<bool> for OutputValue {
    fn from(value: bool) -> Self {
        OutputValue::Json(serde_json::Value::Bool(value))
    }
}

impl From<usize> for OutputValue {
    fn from(value: usize) -> Self {
        OutputValue::Json(serde_json::Value::from(value))
    }
}

impl From<u64> for OutputValue {
    fn from(value: u64) -> Self {
        OutputValue::Json(serde_json::Value::from(value))
    }
}

impl From<i64> for OutputValue {
    fn from(value: i64) -> Self {
        OutputValue::Json(serde_json::Value::from(value))
    }
}

impl From<serde_json::Value> for OutputValue {
    fn from(value: serde_json::Value) -> Self {
        OutputValue::Json(value)
    }
}

/// Output names and values in the order they were first set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    entries: Vec<(String, OutputValue)>,
}

/// True when `name` can be used as a step output name.
pub fn is_valid_output_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Outputs {
    /// Sets `name` to `value`, replacing an earlier value but keeping its position.
    pub fn set(&mut self, name: &str, value: impl Into<OutputValue>) -> Result<(), OutputError> {
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

    /// The value of `name` as GitHub sees it, if set.
    pub fn get(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_text())
    }

    /// The typed value of `name`, if set.
    pub fn value(&self, name: &str) -> Option<&OutputValue> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Names and values (as GitHub sees them) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, str>)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_text()))
    }

    /// True when nothing was set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Size as GitHub approximates it (UTF-16 bytes of names and values).
    pub fn github_size(&self) -> usize {
        self.entries
            .iter()
            .map(|(n, v)| 2 * (n.encode_utf16().count() + v.as_text().encode_utf16().count()))
            .sum()
    }

    /// The `GITHUB_OUTPUT` text: every entry in heredoc form with `delimiter`.
    ///
    /// Refuses a name or value containing the delimiter, as `@actions/core` does; with a
    /// random delimiter that only happens to an attacker who can read our memory.
    pub fn to_github_file(&self, delimiter: &str) -> Result<String, OutputError> {
        let mut text = String::new();
        for (name, value) in self.iter() {
            if name.contains(delimiter) {
                return Err(OutputError::ContainsDelimiter {
                    name: name.to_owned(),
                    part: "name",
                });
            }
            if value.contains(delimiter) {
                return Err(OutputError::ContainsDelimiter {
                    name: name.to_owned(),
                    part: "value",
                });
            }
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        }
        Ok(text)
    }

    /// One JSON object, names to typed values, in order, followed by a newline; one line,
    /// never a workflow command ([`runner_safe_json`]).
    pub fn to_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .entries
            .iter()
            .map(|(n, v)| (n.clone(), v.to_json()))
            .collect();
        let mut text = runner_safe_json(&serde_json::Value::Object(object).to_string());
        text.push('\n');
        text
    }

    /// `NAME=value` lines; see [`OutputFormat::Dotenv`].
    pub fn to_dotenv(&self) -> Result<String, OutputError> {
        let mut seen: Vec<(String, &str)> = Vec::new();
        let mut text = String::new();
        for (name, value) in self.iter() {
            let key = dotenv_key(name);
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                return Err(OutputError::DotenvCollision {
                    first: (*first).to_owned(),
                    second: name.to_owned(),
                    key,
                });
            }
            text.push_str(&format!("{key}={}\n", dotenv_value(&value)));
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

/// Compact JSON text made safe to print where the runner reads it, with the same meaning: every
/// character the runner's command search may skip ([`crate::command_rules::is_ignorable`]) is
/// written as a `\u` escape, and every `##[` as `##\u005b`. Both only ever occur inside JSON
/// strings (structural JSON is printable ASCII), where the escapes mean the same characters.
pub fn runner_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if crate::command_rules::is_ignorable(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out.replace("##[", "##\\u005b")
}

/// A dotenv value: plain, or single-quoted (see [`shell_quote_if_needed`]), arranged so no
/// physical line of it is a workflow command when it is printed where the runner reads it:
/// after each line break the quote is closed and reopened (`''`), so the next line starts
/// with `''`, and `[` after `#` gets the same `''` in front. A POSIX shell reads the same value.
fn dotenv_value(value: &str) -> String {
    let quoted = shell_quote_if_needed(value);
    if !quoted.starts_with('\'') {
        return quoted;
    }
    let mut out = String::with_capacity(quoted.len() + 8);
    let mut previous_hash = false;
    let mut chars = quoted.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '[' && previous_hash {
            out.push_str("''");
        }
        out.push(c);
        match c {
            '\n' => out.push_str("''"),
            '\r' if chars.peek() != Some(&'\n') => out.push_str("''"),
            _ => {}
        }
        if c == '#' {
            previous_hash = true;
        } else if !crate::command_rules::is_ignorable(c) {
            previous_hash = false;
        }
    }
    out
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
        let entries: Vec<(&str, String)> =
            outputs.iter().map(|(n, v)| (n, v.into_owned())).collect();
        assert_eq!(entries, [("a", "3".to_owned()), ("b", "2".to_owned())]);
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
             SUBST='$(rm -rf /)`x`'\nNEWLINE='a\n''b'\nEMPTY=\n"
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

    const HOSTILE: &[&str] = &[
        "x\n::warning title=INJECTED::y",
        "x\r::error::y\r\n  ::notice::z",
        "a ##[warning]b",
        "#\u{ad}#[error]c",
        "\u{200b}::add-mask::d\u{7f}",
        "[#[##[",
        "'\n'##['\n",
    ];

    #[test]
    fn json_and_dotenv_on_stdout_never_hold_a_workflow_command() {
        let mut outputs = Outputs::default();
        for (index, value) in HOSTILE.iter().enumerate() {
            outputs.set(&format!("v{index}"), *value).expect("valid");
            outputs
                .set(&format!("j{index}"), serde_json::json!({ "k": [value] }))
                .expect("valid");
        }
        let json = outputs.to_json();
        assert!(
            crate::command_rules::workflow_commands(&json).is_empty(),
            "{json}"
        );
        assert_eq!(json.lines().count(), 1);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        for (index, value) in HOSTILE.iter().enumerate() {
            assert_eq!(parsed[format!("v{index}")], *value);
            assert_eq!(parsed[format!("j{index}")]["k"][0], *value);
        }

        let dotenv = outputs.to_dotenv().expect("no collision");
        let commands = crate::command_rules::workflow_commands(&dotenv);
        assert!(commands.is_empty(), "{dotenv}\n{commands:?}");
        // A real shell reads every value back exactly.
        let names: Vec<String> = (0..HOSTILE.len()).map(|i| format!("\"$V{i}\"")).collect();
        let script = format!("{dotenv}\nprintf '%s\\0' {}", names.join(" "));
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let values: Vec<&str> = std::str::from_utf8(&out.stdout)
            .expect("utf-8")
            .split_terminator('\0')
            .collect();
        assert_eq!(values, HOSTILE);
    }

    #[test]
    fn json_keeps_types_and_other_formats_get_text() {
        let mut outputs = Outputs::default();
        outputs.set("api", true).expect("valid");
        outputs.set("api_count", 3usize).expect("valid");
        outputs
            .set("changes", serde_json::json!(["api"]))
            .expect("valid");
        outputs.set("base", "abc").expect("valid");
        outputs
            .set("document", OutputValue::json_text("{\n  \"a\": 1\n}"))
            .expect("valid");
        outputs
            .set("not-json", OutputValue::json_text("{oops"))
            .expect("valid");
        assert_eq!(
            outputs.to_json(),
            "{\"api\":true,\"api_count\":3,\"changes\":[\"api\"],\"base\":\"abc\",\
             \"document\":{\"a\":1},\"not-json\":\"{oops\"}\n"
        );
        assert_eq!(outputs.get("document").as_deref(), Some("{\n  \"a\": 1\n}"));
        outputs.set("document", "x").expect("valid");
        outputs.set("not-json", "x").expect("valid");
        assert_eq!(
            outputs.to_dotenv().expect("no collision"),
            "API=true\nAPI_COUNT=3\nCHANGES='[\"api\"]'\nBASE=abc\nDOCUMENT=x\nNOT_JSON=x\n"
        );
        let github = outputs.to_github_file("D").expect("no delimiter");
        assert!(github.contains("changes<<D\n[\"api\"]\nD\n"), "{github}");
        assert!(github.contains("api_count<<D\n3\nD\n"), "{github}");
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
