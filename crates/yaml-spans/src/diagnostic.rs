//! Spans to runner-protocol diagnostics: `file:line:col` and the source line underlined.
//!
//! Every YAML problem of the suite reaches the user through here, so the terminal shows the
//! snippet and the GitHub annotation carries `file=`, `line=` and `col=`.

use runner_protocol::Diagnostic;
use runner_protocol::diagnostic::Snippet;

use crate::parse::SyntaxError;
use crate::tree::Span;

/// `diagnostic` placed at `span` of `text` (read from `file`), with the span's first line as
/// the snippet; a span without a line (0) gives the file alone.
pub fn place(
    diagnostic: Diagnostic,
    file: &str,
    text: &str,
    span: Span,
    label: Option<String>,
) -> Diagnostic {
    if span.start.line == 0 {
        return diagnostic.at(file, None, None);
    }
    let mut diagnostic = diagnostic.at(file, Some(span.start.line), Some(span.start.column));
    let line = usize::try_from(span.start.line)
        .ok()
        .and_then(|number| number.checked_sub(1))
        .and_then(|index| text.lines().nth(index));
    if let Some(line) = line {
        let line_chars = line.chars().count();
        let start = usize::try_from(span.start.column).unwrap_or(1);
        let available = line_chars.saturating_sub(start.saturating_sub(1));
        let width = if span.end.line == span.start.line {
            span.end.offset.saturating_sub(span.start.offset)
        } else {
            available
        };
        diagnostic.snippet = Some(Snippet {
            text: line.to_owned(),
            width: width.min(available).max(1),
            label,
        });
    }
    diagnostic
}

/// A placed diagnostic on one line, `file:line:col: message`, its hint on the next
/// (`  hint: ...`): the form for logs and for errors nested in other messages.
pub fn one_line(diagnostic: &Diagnostic) -> String {
    let mut text = match &diagnostic.location {
        Some(location) => match (location.line, location.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}: ", location.file),
            (Some(line), None) => format!("{}:{line}: ", location.file),
            _ => format!("{}: ", location.file),
        },
        None => String::new(),
    };
    text.push_str(&diagnostic.message);
    if let Some(hint) = &diagnostic.hint {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

impl SyntaxError {
    /// The error as a diagnostic at its position in `text` (read from `file`).
    pub fn diagnostic(&self, file: &str, text: &str) -> Diagnostic {
        place(
            Diagnostic::new(self.message.clone()),
            file,
            text,
            self.span,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_becomes_an_annotation_with_file_line_and_column() {
        let text = "a: 1\nb: [x, y\n";
        let error = crate::parse(text).expect_err("unclosed");
        let diagnostic = error.diagnostic("f.yaml", text);
        let location = diagnostic.location.as_ref().expect("placed");
        assert_eq!(
            (location.file.as_str(), location.line, location.column),
            (
                "f.yaml",
                Some(error.span.start.line),
                Some(error.span.start.column)
            )
        );
        let annotation = diagnostic.to_annotation().to_command(None);
        assert!(
            annotation.starts_with(&format!(
                "::error file=f.yaml,line={},col={}::",
                error.span.start.line, error.span.start.column
            )),
            "{annotation}"
        );
    }

    #[test]
    fn one_line_puts_the_position_in_front() {
        let diagnostic = Diagnostic::new("bad")
            .at("f.yaml", Some(3), Some(5))
            .with_hint("write good");
        assert_eq!(one_line(&diagnostic), "f.yaml:3:5: bad\n  hint: write good");
        assert_eq!(
            one_line(&Diagnostic::new("bad").at("f.yaml", None, None)),
            "f.yaml: bad"
        );
    }

    #[test]
    fn the_snippet_underlines_the_span_on_its_line() {
        let text = "key: value\n";
        let root = crate::parse(text).expect("valid");
        let crate::NodeKind::Mapping(entries) = &root.kind else {
            panic!("mapping")
        };
        let diagnostic = place(
            Diagnostic::new("bad"),
            "f.yaml",
            text,
            entries[0].1.span,
            Some("here".into()),
        );
        assert_eq!(
            diagnostic.to_text(),
            "error: bad\n --> f.yaml:1:6\n  |\n1 | key: value\n  |      ^^^^^ here"
        );
    }
}
