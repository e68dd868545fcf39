//! Setting one variable in a compose `.env` file without touching any other.
//!
//! The file is split into bindings the way the platform's reader splits it: python-dotenv
//! 1.1.1 (`dotenv/parser.py`, the version kdcube-ai-app pins in
//! `requirements-chat-processor.txt`). A quoted value runs to its closing quote, across lines
//! (the platform's installer writes `AGENTIC_BUNDLES_JSON='{` ... `}'` over 14 lines), and
//! `\'` / `\"` do not close it. Every binding but the one replaced is kept byte for byte.

/// The file cannot be edited safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}, column {column}: the value of `{name}` opens a {quote} quote that is never closed"
)]
pub struct UnclosedQuote {
    /// The variable.
    pub name: String,
    /// Where the quote is, 1-based.
    pub line: usize,
    /// Column of the quote, 1-based, in characters.
    pub column: usize,
    /// `single` or `double`.
    pub quote: &'static str,
}

/// One binding: where its text starts (after leading blank lines and indentation), where it
/// ends (after its line break), and its key.
#[derive(Debug)]
struct Binding {
    start: usize,
    end: usize,
    key: Option<String>,
    /// An unclosed quote: (byte offset of the quote, which quote).
    unclosed: Option<(usize, &'static str)>,
}

fn is_space(c: char) -> bool {
    c.is_whitespace() && c != '\n' && c != '\r'
}

/// Offset just past the line break at or after `at` (or the end).
fn rest_of_line(text: &str, at: usize) -> usize {
    match text[at..].find(['\n', '\r']) {
        Some(offset) => {
            let brk = at + offset;
            if text[brk..].starts_with("\r\n") {
                brk + 2
            } else {
                brk + 1
            }
        }
        None => text.len(),
    }
}

/// The end of a quoted value starting at `open` (the quote), past the closing quote.
fn closing_quote(text: &str, open: usize, quote: char) -> Option<usize> {
    let mut chars = text[open + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == '\\' {
            if text[open + 1 + offset + 1..].starts_with(quote) {
                chars.next();
            }
            continue;
        }
        if c == quote {
            return Some(open + 1 + offset + 1);
        }
    }
    None
}

fn bindings(text: &str) -> Vec<Binding> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let start = at + (text[at..].len() - text[at..].trim_start().len());
        if start >= text.len() {
            break;
        }
        let mut cursor = start;
        if let Some(rest) = text[cursor..].strip_prefix("export") {
            let spaces = rest.len() - rest.trim_start_matches(is_space).len();
            if spaces > 0 {
                cursor += "export".len() + spaces;
            }
        }
        let key_end = text[cursor..]
            .find(|c: char| c == '=' || c == '#' || c.is_whitespace())
            .map_or(text.len(), |offset| cursor + offset);
        let key = (key_end > cursor && !text[cursor..].starts_with('#'))
            .then(|| text[cursor..key_end].to_owned());
        let mut unclosed = None;
        let mut end = rest_of_line(text, key_end);
        let after_key =
            key_end + (text[key_end..].len() - text[key_end..].trim_start_matches(is_space).len());
        if key.is_some() && text[after_key..].starts_with('=') {
            let value = after_key
                + 1
                + (text[after_key + 1..].len()
                    - text[after_key + 1..].trim_start_matches(is_space).len());
            for (quote, name) in [('\'', "single"), ('"', "double")] {
                if text[value..].starts_with(quote) {
                    match closing_quote(text, value, quote) {
                        Some(close) => end = rest_of_line(text, close),
                        None => {
                            unclosed = Some((value, name));
                            end = rest_of_line(text, value);
                        }
                    }
                }
            }
        }
        out.push(Binding {
            start,
            end,
            key,
            unclosed,
        });
        at = end;
    }
    out
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

/// `text` with `line` (`NAME='...'`, one line) in place of the binding of `name` (its whole
/// value, every line of it), appended when there is none; a second binding of `name` is
/// removed. Every other byte is kept.
pub(crate) fn set_variable(text: &str, name: &str, line: &str) -> Result<String, UnclosedQuote> {
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut copied = 0;
    let mut replaced = false;
    for binding in bindings(text) {
        if binding.key.as_deref() != Some(name) {
            continue;
        }
        if let Some((quote_at, quote)) = binding.unclosed {
            let (line, column) = position(text, quote_at);
            return Err(UnclosedQuote {
                name: name.to_owned(),
                line,
                column,
                quote,
            });
        }
        out.push_str(&text[copied..binding.start]);
        if !replaced {
            out.push_str(line);
            let original = &text[binding.start..binding.end];
            if original.ends_with('\n') || original.ends_with('\r') {
                out.push('\n');
            }
            replaced = true;
        }
        copied = binding.end;
    }
    out.push_str(&text[copied..]);
    if !replaced {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "AGENTIC_BUNDLES_JSON='{\"bundles\":{}}'";

    #[test]
    fn a_single_line_value_is_replaced_and_the_rest_kept() {
        let text = "A=1\nAGENTIC_BUNDLES_JSON='old'\nB=2\n";
        assert_eq!(
            set_variable(text, "AGENTIC_BUNDLES_JSON", NEW).expect("edit"),
            format!("A=1\n{NEW}\nB=2\n")
        );
        assert_eq!(set_variable("", "X", "X='1'").expect("edit"), "X='1'\n");
        assert_eq!(
            set_variable("A=1", "X", "X='1'").expect("edit"),
            "A=1\nX='1'\n"
        );
    }

    #[test]
    fn a_multi_line_single_quoted_value_is_replaced_up_to_its_closing_quote() {
        let text = "A=1\nAGENTIC_BUNDLES_JSON='{\n  \"bundles\": {\n    \"x\": {\"path\": \"/b\"}\n  }\n}'\n# keep\nB=\"two\nlines\"\nC=3\n";
        assert_eq!(
            set_variable(text, "AGENTIC_BUNDLES_JSON", NEW).expect("edit"),
            format!("A=1\n{NEW}\n# keep\nB=\"two\nlines\"\nC=3\n")
        );
    }

    #[test]
    fn a_name_inside_another_value_is_not_a_binding() {
        let text = "NOTE='see\nAGENTIC_BUNDLES_JSON=x\nabove'\nexport AGENTIC_BUNDLES_JSON=\"a\\\"b\nc\" # tail\nD=4\n";
        assert_eq!(
            set_variable(text, "AGENTIC_BUNDLES_JSON", NEW).expect("edit"),
            format!("NOTE='see\nAGENTIC_BUNDLES_JSON=x\nabove'\n{NEW}\nD=4\n")
        );
    }

    #[test]
    fn duplicates_are_removed_and_crlf_other_lines_kept() {
        let text = "X='1'\r\nY=2\r\nX='3\n4'\nZ=5";
        assert_eq!(
            set_variable(text, "X", "X='9'").expect("edit"),
            "X='9'\nY=2\r\nZ=5"
        );
    }

    #[test]
    fn an_unclosed_quote_in_the_replaced_value_is_refused_with_its_position() {
        let error = set_variable(
            "A=1\n  AGENTIC_BUNDLES_JSON='{\n\"x\": 1\n",
            "AGENTIC_BUNDLES_JSON",
            NEW,
        )
        .expect_err("unclosed");
        assert_eq!((error.line, error.column, error.quote), (2, 24, "single"));
    }
}
