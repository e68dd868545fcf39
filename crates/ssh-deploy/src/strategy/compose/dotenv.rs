//! Compose env files (`env_file:` entries and the project `.env`) read and written the way
//! docker compose v2 reads them.
//!
//! The reading rules follow compose-go's `dotenv` parser (compose-spec/compose-go `e70e961`,
//! `dotenv/parser.go`), which compose v2 uses for both kinds of file:
//! - a statement is `[export ]KEY=VALUE` (or `KEY: VALUE`); blank lines and `#` lines are skipped;
//! - unquoted: up to the end of the line, cut at ` #`, trailing spaces trimmed, then `$VAR`
//!   interpolated;
//! - single quotes: literal, may span lines; only `\'` is special (it stands for `'`), any other
//!   backslash is kept with the character after it;
//! - double quotes: may span lines; `\"` stands for `"`, then the escapes `\\ \n \r \t \$ ...`
//!   are expanded, then `$VAR`/`${VAR}` are interpolated (`$$` is a literal `$`).
//!
//! So a value is written in single quotes when it holds no `'` and does not end with `\` (then
//! every byte is literal, in every compose-go version and in a POSIX shell too); otherwise in
//! double quotes with `\`, `"` and `$` escaped. [`decode_value`] is our reading of those rules
//! and the tests check that every value survives the round trip.

/// An env file that cannot be read the way compose reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the statement.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A value that cannot be put in an env file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` holds a NUL byte, which an env file cannot carry")]
pub struct EncodeError {
    /// The variable.
    pub key: String,
}

/// `KEY=<value quoted for compose>` (no newline).
pub fn line(key: &str, value: &str) -> Result<String, EncodeError> {
    if value.contains('\0') {
        return Err(EncodeError {
            key: key.to_owned(),
        });
    }
    Ok(format!("{key}={}", quote(value)))
}

/// `value` quoted so compose reads back exactly `value`.
pub fn quote(value: &str) -> String {
    if !value.contains('\'') && !value.ends_with('\\') {
        return format!("'{value}'");
    }
    let mut out = String::with_capacity(value.len() + 8);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One statement of an env file and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The variable name.
    pub key: String,
    /// The value as compose reads it (interpolation of `$VAR` not applied).
    pub value: String,
    /// Byte offset of the start of the statement's first line.
    pub start: usize,
    /// Byte offset just past the statement's last line (after its newline, if any).
    pub end: usize,
}

fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

/// Every statement of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    // Statement start: skip white space (new lines included) and comment lines.
    while let Some(offset) = text[pos..].find(|c: char| !c.is_whitespace()) {
        pos += offset;
        if text[pos..].starts_with('#') {
            pos = line_end(text, pos);
            continue;
        }
        let start = line_start(text, pos);
        let mut rest = &text[pos..];
        if let Some(after) = rest
            .strip_prefix("export")
            .filter(|a| a.starts_with(is_space))
        {
            rest = after.trim_start_matches(is_space);
        }
        let key_end = rest.find(['=', ':', '\n']).unwrap_or(rest.len());
        let key = rest[..key_end].trim_end_matches(is_space);
        if let Some(bad) = key
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.')))
        {
            return Err(ParseError {
                line: line_of(text, pos),
                message: format!("unexpected character {bad:?} in variable name"),
            });
        }
        let value_pos = text.len() - rest.len() + key_end;
        if key_end == rest.len() || rest[key_end..].starts_with('\n') {
            // `KEY` alone: compose takes it from its own environment; nothing to record.
            pos = line_end(text, value_pos);
            continue;
        }
        let value_text = rest[key_end + 1..].trim_start_matches(is_space);
        let value_start = text.len() - value_text.len();
        let (value, consumed) = extract(value_text).map_err(|message| ParseError {
            line: line_of(text, pos),
            message,
        })?;
        let end = line_end(text, value_start + consumed.saturating_sub(1));
        entries.push(Entry {
            key: key.to_owned(),
            value,
            start,
            end,
        });
        pos = value_start + consumed;
    }
    Ok(entries)
}

/// Reads one value from the start of `text`: (value, bytes consumed).
fn extract(text: &str) -> Result<(String, usize), String> {
    let quote = match text.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => {
            let end = text.find('\n').unwrap_or(text.len());
            let raw = &text[..end];
            let raw = raw.split_once(" #").map_or(raw, |(v, _)| v);
            return Ok((raw.trim_end().to_owned(), end));
        }
    };
    let mut chars = String::new();
    let mut escape = false;
    for (index, c) in text.char_indices().skip(1) {
        if c != quote {
            if !escape && c == '\\' {
                escape = true;
                continue;
            }
            if escape {
                escape = false;
                chars.push('\\');
            }
            chars.push(c);
            continue;
        }
        if escape {
            escape = false;
            chars.push(c);
            continue;
        }
        let value = if quote == '"' {
            unescape_double(&chars)?
        } else {
            chars
        };
        return Ok((value, index + 1));
    }
    Err(format!("unterminated quoted value (opened with {quote})"))
}

/// The escapes compose expands inside double quotes, then `$$` -> `$`; any other `$` would be
/// interpolated, which [`quote`] never produces, so it is reported.
fn unescape_double(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek().copied() {
                Some(n @ ('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '"' | '\\')) => {
                    chars.next();
                    out.push(match n {
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{b}',
                        other => other,
                    });
                }
                Some('$') => {
                    chars.next();
                    out.push('$');
                }
                _ => out.push('\\'),
            },
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                out.push('$');
            }
            '$' => return Err("holds `$` interpolation".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The value compose reads for one `KEY=...` text (tests and diagnostics).
pub fn decode_value(text: &str) -> Result<String, String> {
    let (value, consumed) = extract(text)?;
    if !text[consumed..].trim().is_empty() {
        return Err(format!("trailing text `{}`", &text[consumed..]));
    }
    Ok(value)
}

/// What happens to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyChange {
    /// Not in the file before.
    Added,
    /// In the file with another value.
    Changed,
    /// Same value: the line is left as it was.
    Unchanged,
    /// Removed.
    Removed,
}

/// One line of an env diff: a key and what happens to it (never the value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyDiff {
    /// The variable.
    pub key: String,
    /// What happens.
    pub change: KeyChange,
}

/// The new text of an env file and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The new file content.
    pub text: String,
    /// Per key in `set` (then `unset`) order.
    pub diff: Vec<KeyDiff>,
}

impl Update {
    /// True when the file content stays byte for byte the same.
    pub fn is_noop(&self, old: &str) -> bool {
        self.text == old
    }
}

/// Applies `set` and `unset` to `old`, keeping every other line byte for byte (comments,
/// order, quoting). A set key replaces its first statement (later duplicates are dropped, as
/// compose would have let the last one win); new keys are appended.
pub fn apply(old: &str, set: &[(String, String)], unset: &[String]) -> Result<Update, ParseError> {
    let entries = parse(old)?;
    // Replacement per entry index: None = drop the statement.
    let mut replace: Vec<(usize, Option<String>)> = Vec::new();
    let mut appended = Vec::new();
    let mut diff = Vec::new();
    for (key, value) in set {
        let found: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].key == *key)
            .collect();
        let new_line = line(key, value).map_err(|e| ParseError {
            line: 0,
            message: e.to_string(),
        })?;
        match found.split_first() {
            None => {
                appended.push(new_line);
                diff.push(KeyDiff {
                    key: key.clone(),
                    change: KeyChange::Added,
                });
            }
            Some((&first, later)) => {
                let current = &entries[*found.last().unwrap_or(&first)].value;
                if current == value && later.is_empty() {
                    diff.push(KeyDiff {
                        key: key.clone(),
                        change: KeyChange::Unchanged,
                    });
                    continue;
                }
                replace.push((first, Some(new_line)));
                replace.extend(later.iter().map(|&i| (i, None)));
                diff.push(KeyDiff {
                    key: key.clone(),
                    change: if current == value {
                        KeyChange::Unchanged
                    } else {
                        KeyChange::Changed
                    },
                });
            }
        }
    }
    for key in unset {
        let found: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].key == *key)
            .collect();
        if !found.is_empty() {
            replace.extend(found.into_iter().map(|i| (i, None)));
            diff.push(KeyDiff {
                key: key.clone(),
                change: KeyChange::Removed,
            });
        }
    }
    replace.sort_by_key(|(i, _)| *i);
    let mut text = String::with_capacity(old.len());
    let mut cursor = 0;
    for (index, new_line) in replace {
        let entry = &entries[index];
        text.push_str(&old[cursor..entry.start]);
        if let Some(new_line) = new_line {
            text.push_str(&new_line);
            text.push('\n');
        }
        cursor = entry.end;
    }
    text.push_str(&old[cursor..]);
    if !appended.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for new_line in appended {
            text.push_str(&new_line);
            text.push('\n');
        }
    }
    Ok(Update { text, diff })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLES: &str = r#"{"default_bundle_id":"my-bundle@2.0.0","bundles":{"my-bundle@2.0.0":{"id":"my-bundle@2.0.0","name":"My \u0027Bundle\u0027 \\ \"q\"","path":"/bundles","module":"my-bundle@2.0.0.entrypoint","repo":"https://git.example.com/org/my-bundle.git","ref":"v2.0.0","subdir":"bundles"}}}"#;

    #[test]
    fn every_value_reads_back_exactly() {
        for value in [
            "",
            "plain",
            "with space # not a comment",
            BUNDLES,
            "{\"name\":\"O'Brien\"}",
            "it's $HOME and ${USER} and $$",
            "back\\slash at end\\",
            "\\'",
            "odd \\\\\\' run",
            "multi\nline\r\nvalue",
            "\"double\" 'single' `tick`",
            "\\n is not a newline",
            "tab\there",
            "ünïcødé ✓",
        ] {
            let encoded = quote(value);
            assert_eq!(
                decode_value(&encoded).as_deref(),
                Ok(value),
                "{value:?} -> {encoded}"
            );
            let file = format!("# header\nA=1\nKEY={encoded}\nB=2\n");
            let entries = parse(&file).expect("parses");
            let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
            assert_eq!(keys, ["A", "KEY", "B"], "{file}");
            assert_eq!(entries[1].value, value, "{file}");
        }
    }

    #[test]
    fn bundle_json_from_bundle_json_gen_goes_in_single_quotes_unchanged() {
        assert_eq!(
            line("AGENTIC_BUNDLES_JSON", BUNDLES).expect("line"),
            format!("AGENTIC_BUNDLES_JSON='{BUNDLES}'")
        );
        assert_eq!(quote("a'b"), "\"a'b\"");
        assert_eq!(quote("$x\\"), "\"$$x\\\\\"");
        assert!(line("K", "a\0b").is_err());
    }

    #[test]
    fn reads_files_as_compose_does() {
        let text = "export A = 1 # comment\nB='x \\' y'\nC=\"l1\nl2\"\n  # indented comment\nD: yaml\nE\nF=\"\\$HOME \\\\ \\n\"\n";
        let entries = parse(text).expect("parses");
        let values: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            values,
            [
                ("A", "1"),
                ("B", "x ' y"),
                ("C", "l1\nl2"),
                ("D", "yaml"),
                ("F", "$HOME \\ \n"),
            ]
        );
        assert_eq!(&text[entries[2].start..entries[2].end], "C=\"l1\nl2\"\n");
        let error = parse("A=1\nB='open\nC=2\n").expect_err("unterminated");
        assert_eq!(error.line, 2);
        assert!(parse("BAD KEY=1\n").is_err());
    }

    #[test]
    fn apply_keeps_other_lines_and_reports_keys_only() {
        let old = "# proc\nLOG=info\nJSON=\"{\n}\"\nOLD=1\nLOG=debug\nKEEP='same'";
        let update = apply(
            old,
            &[
                ("JSON".into(), "{\"a\":1}".into()),
                ("KEEP".into(), "same".into()),
                ("LOG".into(), "warn".into()),
                ("NEW".into(), "x y".into()),
            ],
            &["OLD".into(), "ABSENT".into()],
        )
        .expect("applies");
        assert_eq!(
            update.text,
            "# proc\nLOG='warn'\nJSON='{\"a\":1}'\nKEEP='same'\nNEW='x y'\n"
        );
        let changes: Vec<(&str, KeyChange)> = update
            .diff
            .iter()
            .map(|d| (d.key.as_str(), d.change))
            .collect();
        assert_eq!(
            changes,
            [
                ("JSON", KeyChange::Changed),
                ("KEEP", KeyChange::Unchanged),
                ("LOG", KeyChange::Changed),
                ("NEW", KeyChange::Added),
                ("OLD", KeyChange::Removed),
            ]
        );
        let again = apply(&update.text, &[("LOG".into(), "warn".into())], &[]).expect("ok");
        assert!(again.is_noop(&update.text));
        assert_eq!(
            apply("", &[("A".into(), "1".into())], &[])
                .expect("ok")
                .text,
            "A='1'\n"
        );
    }
}
