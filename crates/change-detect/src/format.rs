//! File lists as output values: `csv`, `json`, `shell`, `escape`.
//!
//! File names come from whoever wrote the change (a pull request author), so every format is
//! safe for any name git can hold: newlines, quotes, `$(…)`, backticks and bytes that are not
//! UTF-8. No "is this name plain?" test uses multi-line anchors (dorny's `m` flag lets
//! `a⏎$(cmd)` through unquoted). The shell formats are exact under bash (the runner's
//! default shell): bytes that cannot be written inside quotes use `$'\xNN'`.

use crate::change::RepoPath;

/// How `<filter>_files` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListFormat {
    /// Not written.
    #[default]
    None,
    /// Comma-separated, RFC 4180 quoting.
    Csv,
    /// A JSON array of strings.
    Json,
    /// Space-separated, each name single-quoted unless plain.
    Shell,
    /// Space-separated, each special character backslash-escaped.
    Escape,
}

impl ListFormat {
    /// Parses `none|csv|json|shell|escape` (case-insensitive, as dorny lower-cases it).
    pub fn from_word(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "none" => Some(ListFormat::None),
            "csv" => Some(ListFormat::Csv),
            "json" => Some(ListFormat::Json),
            "shell" => Some(ListFormat::Shell),
            "escape" => Some(ListFormat::Escape),
            _ => None,
        }
    }

    /// Formats `paths`; `None` for [`ListFormat::None`].
    pub fn format<'a>(self, paths: impl IntoIterator<Item = &'a RepoPath>) -> Option<String> {
        if self == ListFormat::None {
            return None;
        }
        let mut out = String::new();
        self.write(paths, &mut out);
        Some(out)
    }

    /// Appends the formatted list to `out`, one name at a time (nothing for `None`).
    pub fn write<'a>(
        self,
        paths: impl IntoIterator<Item = &'a RepoPath>,
        out: &mut impl Extend<char>,
    ) {
        self.each(paths, |piece| out.extend(piece.chars()));
    }

    /// The size GitHub counts for the formatted list (UTF-16 code units), without building it.
    pub fn utf16_len<'a>(self, paths: impl IntoIterator<Item = &'a RepoPath>) -> usize {
        let mut units = 0;
        self.each(paths, |piece| units += utf16_units(piece.as_bytes()));
        units
    }

    /// The formatted list, piece by piece: items, separators, brackets.
    fn each<'a>(self, paths: impl IntoIterator<Item = &'a RepoPath>, mut piece: impl FnMut(&str)) {
        let separator = match self {
            ListFormat::None => return,
            ListFormat::Csv => ",",
            ListFormat::Json => ",",
            ListFormat::Shell | ListFormat::Escape => " ",
        };
        if self == ListFormat::Json {
            piece("[");
        }
        for (index, path) in paths.into_iter().enumerate() {
            if index > 0 {
                piece(separator);
            }
            let item = match self {
                ListFormat::None => return,
                ListFormat::Csv => csv(path),
                ListFormat::Json => json_string(path),
                ListFormat::Shell => shell(path.as_bytes()),
                ListFormat::Escape => escape(path.as_bytes()),
            };
            piece(&item);
        }
        if self == ListFormat::Json {
            piece("]");
        }
    }
}

/// UTF-16 code units of UTF-8 text (GitHub sizes outputs in UTF-16).
pub fn utf16_units(text: &[u8]) -> usize {
    text.iter()
        .map(|b| match b {
            0x80..=0xBF => 0,
            0xF0..=0xFF => 2,
            _ => 1,
        })
        .sum()
}

/// One JSON string; bytes that are not UTF-8 become U+FFFD.
pub fn json_string(path: &RepoPath) -> String {
    serde_json::to_string(&path.to_lossy()).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON array; names that are not UTF-8 have the invalid bytes replaced by U+FFFD.
pub fn json<'a>(paths: impl IntoIterator<Item = &'a RepoPath>) -> String {
    let names: Vec<std::borrow::Cow<'_, str>> = paths.into_iter().map(RepoPath::to_lossy).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// Characters that need no quoting in either shell format.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b",._+:@%/-".contains(&byte)
}

/// One CSV field (RFC 4180): quoted, with `"` doubled, unless every character is plain.
pub fn csv(path: &RepoPath) -> String {
    let text = path.to_lossy();
    if !text.is_empty() && text.bytes().all(|b| is_plain(b) && b != b',') {
        text.into_owned()
    } else {
        format!("\"{}\"", text.replace('"', "\"\""))
    }
}

/// One shell word: as is when plain, else single-quoted; bytes that are not UTF-8 are written
/// as bash `$'\xNN'` outside the quotes.
pub fn shell(bytes: &[u8]) -> String {
    if !bytes.is_empty() && bytes.iter().all(|b| is_plain(*b)) {
        // Plain bytes are ASCII.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut out = String::with_capacity(bytes.len() + 2);
    let mut quoted = false;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\'' {
                if quoted {
                    out.push('\'');
                    quoted = false;
                }
                out.push_str("\\'");
            } else {
                if !quoted {
                    out.push('\'');
                    quoted = true;
                }
                out.push(c);
            }
        }
        if !chunk.invalid().is_empty() {
            if quoted {
                out.push('\'');
                quoted = false;
            }
            out.push_str(&ansi_c(chunk.invalid()));
        }
    }
    if quoted {
        out.push('\'');
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// One shell word with every special character backslash-escaped; newlines, other control
/// characters and bytes that are not UTF-8 use bash `$'\xNN'` (a backslash-newline would be
/// a line continuation and vanish).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() && is_plain(c as u8) {
                out.push(c);
            } else if c.is_control() {
                let mut buffer = [0u8; 4];
                out.push_str(&ansi_c(c.encode_utf8(&mut buffer).as_bytes()));
            } else {
                out.push('\\');
                out.push(c);
            }
        }
        if !chunk.invalid().is_empty() {
            out.push_str(&ansi_c(chunk.invalid()));
        }
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// `$'\xNN…'` for raw bytes.
fn ansi_c(bytes: &[u8]) -> String {
    let mut out = String::from("$'");
    for byte in bytes {
        out.push_str(&format!("\\x{byte:02x}"));
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> RepoPath {
        RepoPath::from(text)
    }

    #[test]
    fn csv_matches_dornys_vectors_and_quotes_newlines() {
        let cases = [
            ("file.txt", "file.txt"),
            ("path/to/file.txt", "path/to/file.txt"),
            ("file with space", "\"file with space\""),
            ("file, with coma", "\"file, with coma\""),
            (
                "file \" with double quote",
                "\"file \"\" with double quote\"",
            ),
            ("a\n$(touch pwned)", "\"a\n$(touch pwned)\""),
        ];
        for (input, expected) in cases {
            assert_eq!(csv(&path(input)), expected, "{input:?}");
        }
    }

    #[test]
    fn shell_quotes_everything_that_is_not_plain() {
        let cases: [(&[u8], &str); 8] = [
            (b"file.txt", "file.txt"),
            (b"file with space", "'file with space'"),
            (b"$var", "'$var'"),
            (b"file\"name", "'file\"name'"),
            (b"file'with quote", "'file'\\''with quote'"),
            (b"a\n$(touch pwned)", "'a\n$(touch pwned)'"),
            (b"bad\xffbyte", "'bad'$'\\xff''byte'"),
            (b"", "''"),
        ];
        for (input, expected) in cases {
            assert_eq!(shell(input), expected, "{input:?}");
        }
    }

    #[test]
    fn escape_backslashes_specials_and_spells_out_control_bytes() {
        let cases: [(&[u8], &str); 5] = [
            (b"file with space", "file\\ with\\ space"),
            (b"file'with quote\"", "file\\'with\\ quote\\\""),
            (b"$var", "\\$var"),
            (b"a\n$(x)", "a$'\\x0a'\\$\\(x\\)"),
            (b"\xfe", "$'\\xfe'"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input), expected, "{input:?}");
        }
    }

    /// Every hostile name survives a real bash word split byte for byte.
    #[test]
    fn shell_and_escape_round_trip_through_bash() {
        let names: [&[u8]; 9] = [
            b"plain.txt",
            b"with space",
            b"it's",
            b"a\n$(touch pwned)",
            b"`id`",
            b"\xff\xfe not utf8",
            "ünïcode/файл".as_bytes(),
            b"tab\there",
            b"back\\slash\"quote",
        ];
        for format in [ListFormat::Shell, ListFormat::Escape] {
            let paths: Vec<RepoPath> = names.iter().map(|n| RepoPath::from_bytes(n)).collect();
            let words = format.format(&paths).expect("a list");
            let script = format!("for w in {words}; do printf '%s\\0' \"$w\"; done");
            let output = std::process::Command::new("bash")
                .args(["-c", &script])
                .output()
                .expect("bash runs");
            assert!(output.status.success(), "{script}");
            let round_trip: Vec<&[u8]> = output
                .stdout
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .collect();
            assert_eq!(round_trip, names, "{format:?}: {words}");
        }
    }

    #[test]
    fn json_is_an_array_and_none_writes_nothing() {
        let paths = [path("a\"b"), path("c")];
        assert_eq!(
            ListFormat::Json.format(&paths).as_deref(),
            Some("[\"a\\\"b\",\"c\"]")
        );
        assert_eq!(ListFormat::Json.format(&[]).as_deref(), Some("[]"));
        assert_eq!(ListFormat::Csv.format(&[]).as_deref(), Some(""));
        assert_eq!(ListFormat::None.format(&paths), None);
    }
}
