//! Errors as users see them: message, location, field, hint; rendered once at the edge.

use crate::console::{Annotation, Level};
use crate::exit::Exit;

/// The class of an error decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad flags, inputs or files (exit 2).
    Usage,
    /// Network, remote host, API, git (exit 3).
    Infrastructure,
    /// A rollback did not complete (exit 4).
    RollbackFailed,
    /// Interrupted by a signal (exit 130).
    Interrupted,
}

impl ErrorClass {
    /// The exit code for this class.
    pub fn exit(self) -> Exit {
        match self {
            ErrorClass::Usage => Exit::Usage,
            ErrorClass::Infrastructure => Exit::Infrastructure,
            ErrorClass::RollbackFailed => Exit::RollbackFailed,
            ErrorClass::Interrupted => Exit::Interrupted,
        }
    }
}

/// A position in a file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File path as the user wrote it.
    pub file: String,
    /// Line.
    pub line: Option<u32>,
    /// Column.
    pub column: Option<u32>,
}

/// The source line under a location, with the span to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The whole source line, without its newline.
    pub text: String,
    /// Width of the underline in characters (at least 1).
    pub width: usize,
    /// Label after the underline.
    pub label: Option<String>,
}

/// One error as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// Where.
    pub location: Option<Location>,
    /// The field path (`bundles.items[1].ref`).
    pub field: Option<String>,
    /// The offending source line.
    pub snippet: Option<Snippet>,
    /// What would be valid, or how to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            field: None,
            snippet: None,
            hint: None,
        }
    }

    /// A diagnostic from an error and its `source()` chain: `outer: inner: innermost`.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self::new(message)
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a location.
    pub fn at(mut self, file: impl Into<String>, line: Option<u32>, column: Option<u32>) -> Self {
        self.location = Some(Location {
            file: file.into(),
            line,
            column,
        });
        self
    }

    /// Adds a field path.
    pub fn for_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Renders for a terminal:
    ///
    /// ```text
    /// error: `platform.ref` must be a full commit SHA, found `main`
    ///  --> release.yaml:4:8
    ///   |
    /// 4 |   ref: main
    ///   |        ^^^^ branch names move
    ///   = hint: run `release-descriptor-render lock` to pin refs
    /// ```
    pub fn to_text(&self) -> String {
        let mut text = format!("error: {}", self.message);
        let line_number = self
            .location
            .as_ref()
            .and_then(|l| l.line)
            .map(|l| l.to_string());
        let gutter = " ".repeat(line_number.as_ref().map_or(1, String::len));
        if let Some(location) = &self.location {
            text.push_str(&format!("\n{gutter}--> {}", location.file));
            if let Some(line) = location.line {
                text.push_str(&format!(":{line}"));
                if let Some(column) = location.column {
                    text.push_str(&format!(":{column}"));
                }
            }
        }
        if let (Some(snippet), Some(number)) = (&self.snippet, &line_number) {
            let column = self
                .location
                .as_ref()
                .and_then(|l| l.column)
                .map_or(1, |c| c as usize);
            let (shown, column, width) = window(&snippet.text, column, snippet.width);
            text.push_str(&format!("\n{gutter} |\n{number} | {shown}"));
            text.push_str(&format!(
                "\n{gutter} | {}{}",
                " ".repeat(column.saturating_sub(1)),
                "^".repeat(width.max(1))
            ));
            if let Some(label) = &snippet.label {
                text.push(' ');
                text.push_str(label);
            }
        }
        if let Some(field) = &self.field {
            text.push_str(&format!("\n{gutter} = field: {field}"));
        }
        if let Some(hint) = &self.hint {
            text.push_str(&format!("\n{gutter} = hint: {hint}"));
        }
        text
    }

    /// The annotation GitHub shows for this diagnostic.
    pub fn to_annotation(&self) -> Annotation {
        let mut message = self.message.clone();
        if let Some(field) = &self.field {
            message.push_str(&format!("\nfield: {field}"));
        }
        if let Some(hint) = &self.hint {
            message.push_str(&format!("\nhint: {hint}"));
        }
        let annotation = Annotation::new(Level::Error, message);
        match &self.location {
            Some(location) => annotation.at(location.file.clone(), location.line, location.column),
            None => annotation,
        }
    }
}

/// An error a tool returns from `run`: its class and how to show it.
pub trait Reportable: std::error::Error + Sized + 'static {
    /// The class, which decides the exit code.
    fn class(&self) -> ErrorClass;

    /// What to show; by default the error and its cause chain, without location.
    fn diagnostics(&self) -> Vec<Diagnostic> {
        vec![Diagnostic::from_error(self)]
    }
}

/// At most this many characters of a source line are shown under a diagnostic.
const SNIPPET_CHARS: usize = 160;

/// The part of `line` shown in a snippet, with the caret's 1-based `column` and `width` in it:
/// the whole line when it is short, else [`SNIPPET_CHARS`] characters around the column with `…`
/// where text was left out (a minified or generated file can hold megabytes on one line).
fn window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= SNIPPET_CHARS {
        return (line.to_owned(), column, width);
    }
    let at = column.saturating_sub(1).min(chars.len());
    let mut start = at.saturating_sub(SNIPPET_CHARS / 4);
    let end = (start + SNIPPET_CHARS).min(chars.len());
    start = end.saturating_sub(SNIPPET_CHARS).min(start);
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    let column = at - start + usize::from(start > 0) + 1;
    (shown, column, width.min(end.saturating_sub(at)).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_source_line_is_shown_around_the_column_only() {
        let line = format!("{}key: bad{}", "x".repeat(100_000), "y".repeat(100_000));
        let diagnostic = Diagnostic {
            snippet: Some(Snippet {
                text: line,
                width: 3,
                label: None,
            }),
            ..Diagnostic::new("bad value").at("f.yaml", Some(1), Some(100_006))
        };
        let text = diagnostic.to_text();
        assert!(text.len() < 1_000, "{} bytes", text.len());
        let lines: Vec<&str> = text.lines().collect();
        let source = lines[3].strip_prefix("1 | ").expect("source line");
        let caret = lines[4].strip_prefix("  | ").expect("caret line");
        assert!(source.starts_with('…') && source.ends_with('…'), "{source}");
        assert_eq!(source.chars().count(), SNIPPET_CHARS + 2);
        // The caret still points at `bad`.
        let at = caret.find('^').expect("caret");
        let under: String = source.chars().skip(at).take(3).collect();
        assert_eq!(under, "bad");
        assert_eq!(caret.trim_start(), "^^^");
    }

    #[test]
    fn renders_location_snippet_field_and_hint() {
        let diagnostic = Diagnostic {
            snippet: Some(Snippet {
                text: "  ref: main".into(),
                width: 4,
                label: Some("branch names move".into()),
            }),
            ..Diagnostic::new("`platform.ref` must be a full commit SHA, found `main`")
                .at("release.yaml", Some(4), Some(8))
                .for_field("platform.ref")
                .with_hint("run `release-descriptor-render lock` to pin refs")
        };
        assert_eq!(
            diagnostic.to_text(),
            "error: `platform.ref` must be a full commit SHA, found `main`\n \
             --> release.yaml:4:8\n  |\n4 |   ref: main\n  |        ^^^^ branch names move\n  \
             = field: platform.ref\n  = hint: run `release-descriptor-render lock` to pin refs"
        );
    }

    #[test]
    fn cause_chain_is_joined_without_repeats() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read config.yaml")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        assert_eq!(
            Diagnostic::from_error(&error).message,
            "cannot read config.yaml: no such file"
        );
    }

    #[test]
    fn annotation_carries_hint_and_location() {
        let annotation = Diagnostic::new("bad")
            .at("f.yaml", Some(2), Some(3))
            .with_hint("use x")
            .to_annotation();
        assert_eq!(
            annotation.to_command(None),
            "::error file=f.yaml,line=2,col=3::bad%0Ahint: use x"
        );
    }
}
