//! A gate file that is not a valid gate, with every problem's position in the text, placed as
//! runner-protocol `Diagnostic`s in whichever file the text came from.
//!
//! The tool itself reads its `--gate-file`; an embedder (ssh-deploy) fills placeholders in
//! (`{host}`, `{port}`) first and parses the result. Placeholders never span lines, so the
//! lines found in the filled-in text are the lines of the file, and the snippet is taken from
//! the text as the user wrote it.

use runner_protocol::Diagnostic;
use yaml_spans::{Position, Span};

use super::error::ConfigError;
use super::parse::ParseError;

/// Where a parse error points the user for the format.
const FORMAT_HINT: &str = "see the gate file format in the health-gate README";

/// One problem of a gate file.
#[derive(Debug, Clone, PartialEq)]
struct Problem {
    message: String,
    /// The dotted field path, for validation problems.
    field: Option<String>,
    hint: Option<&'static str>,
    /// `None`: the problem has no place in the text (an empty file lacks what it is about).
    span: Option<Span>,
}

/// A gate file's text that is not a valid gate: every problem, with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct GateFileError {
    problems: Vec<Problem>,
}

impl GateFileError {
    /// A syntax or model error (serde's, or nesting too deep), at its line and column.
    pub fn from_parse(error: &ParseError) -> Self {
        let message = error.to_string();
        // serde_yaml_ng appends " at line L column C"; the position is kept apart.
        let message = message.split(" at line ").next().unwrap_or(&message);
        let span = error.location().map(|(line, column)| {
            let at = Position {
                line,
                column,
                offset: 0,
            };
            Span { start: at, end: at }
        });
        Self {
            problems: vec![Problem {
                message: format!("invalid gate file: {message}"),
                field: None,
                hint: Some(FORMAT_HINT),
                span,
            }],
        }
    }

    /// Validation problems of `text`, each at the node of its field (the deepest part of the
    /// path that exists).
    pub fn from_config(errors: &[ConfigError], text: &str) -> Self {
        // An empty file has no positions (its problems are about what it lacks).
        let tree = yaml_spans::parse(text).ok().filter(|root| !root.is_null());
        Self {
            problems: errors
                .iter()
                .map(|error| Problem {
                    message: error.message.clone(),
                    field: Some(error.field.clone()),
                    hint: None,
                    span: tree.as_ref().map(|root| root.locate(&error.field).span),
                })
                .collect(),
        }
    }

    /// Every problem as a diagnostic in `file`, whose text is `text` (as the user wrote it:
    /// the snippet is its line).
    pub fn diagnostics(&self, file: &str, text: &str) -> Vec<Diagnostic> {
        self.problems
            .iter()
            .map(|problem| {
                let mut diagnostic = Diagnostic::new(problem.message.clone());
                if let Some(hint) = problem.hint {
                    diagnostic = diagnostic.with_hint(hint);
                }
                let mut diagnostic = match problem.span {
                    Some(span) => yaml_spans::diagnostic::place(diagnostic, file, text, span, None),
                    None => diagnostic.at(file, None, None),
                };
                if let Some(field) = &problem.field {
                    diagnostic = diagnostic.for_field(field.clone());
                }
                diagnostic
            })
            .collect()
    }

    /// `line:column: field: message` per problem, `; `-separated: the form for an error
    /// nested in another tool's message, which names the file.
    fn summary(&self) -> String {
        self.problems
            .iter()
            .map(|problem| {
                let at = problem
                    .span
                    .filter(|span| span.start.line > 0)
                    .map(|span| format!("{}:{}: ", span.start.line, span.start.column))
                    .unwrap_or_default();
                let field = problem
                    .field
                    .as_ref()
                    .map(|field| format!("{field}: "))
                    .unwrap_or_default();
                format!("{at}{field}{}", problem.message)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GateFile;

    fn problems(text: &str) -> GateFileError {
        match GateFile::parse(text) {
            Err(error) => GateFileError::from_parse(&error),
            Ok(file) => {
                GateFileError::from_config(&file.resolve().expect_err("invalid gate"), text)
            }
        }
    }

    #[test]
    fn a_syntax_error_is_placed_at_its_line_and_column_with_the_format_hint() {
        let diagnostics = problems("checks:\n  - name: a\n    htp: {}\n").diagnostics("g.yaml", "");
        let [diagnostic] = diagnostics.as_slice() else {
            panic!("one problem: {diagnostics:?}")
        };
        let location = diagnostic.location.as_ref().expect("placed");
        assert_eq!(
            (location.file.as_str(), location.line, location.column),
            ("g.yaml", Some(3), Some(5))
        );
        assert!(
            diagnostic
                .message
                .starts_with("invalid gate file: checks[0]: unknown field `htp`"),
            "{}",
            diagnostic.message
        );
        assert_eq!(diagnostic.hint.as_deref(), Some(FORMAT_HINT));
    }

    #[test]
    fn validation_problems_are_placed_at_their_fields_with_the_snippet_of_the_text_given() {
        // `{port}` was filled in before parsing; the snippet shows the line as written.
        let written = "checks:\n  - name: a\n    http: { url: \"ftp://x:{port}\" }\n";
        let error = problems(&written.replace("{port}", "1"));
        let diagnostics = error.diagnostics("g.yaml", written);
        let [diagnostic] = diagnostics.as_slice() else {
            panic!("one problem: {diagnostics:?}")
        };
        let location = diagnostic.location.as_ref().expect("placed");
        assert_eq!((location.line, location.column), (Some(3), Some(18)));
        assert_eq!(diagnostic.field.as_deref(), Some("checks[0].http.url"));
        assert_eq!(
            diagnostic.snippet.as_ref().map(|s| s.text.as_str()),
            Some("    http: { url: \"ftp://x:{port}\" }")
        );
        assert!(
            error.to_string().starts_with("3:18: checks[0].http.url: "),
            "{error}"
        );
    }

    #[test]
    fn an_empty_file_names_the_file_without_a_line() {
        let diagnostics = problems("").diagnostics("g.yaml", "");
        assert!(!diagnostics.is_empty());
        for diagnostic in diagnostics {
            let location = diagnostic.location.expect("the file");
            assert_eq!((location.file.as_str(), location.line), ("g.yaml", None));
        }
    }
}
