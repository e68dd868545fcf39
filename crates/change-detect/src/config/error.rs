//! A filters error: what is wrong, at which node, and how it reaches the user.

use std::path::PathBuf;

use runner_protocol::Diagnostic;
use yaml_spans::Span;

/// Longest source line shown under an error (a 200 KB line of `[` stays readable).
const SNIPPET_CHARS: usize = 200;

/// Where the filters text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file (path as given, relative to the working directory).
    File(PathBuf),
    /// The `filters` input itself.
    Inline,
}

/// A configuration error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// What is wrong.
    pub message: String,
    /// The offending text, from the YAML tree; `None` for the text as a whole.
    pub span: Option<Span>,
    /// Dotted path of the offending value (`api.exclude[1]`).
    pub field: Option<String>,
    /// What to write instead.
    pub hint: Option<String>,
}

impl ConfigError {
    /// An error about the text as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            span: None,
            field: None,
            hint: None,
        }
    }

    /// The error at `span`.
    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    /// The error for `field`.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The error with a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// 1-based line, when the error has a place.
    pub fn line(&self) -> Option<u32> {
        self.span.map(|span| span.start.line)
    }

    /// 1-based column, when the error has a place.
    pub fn column(&self) -> Option<u32> {
        self.span.map(|span| span.start.column)
    }

    /// The diagnostic the runner renders, for filters `text` from `origin`.
    pub fn diagnostic(&self, origin: &Origin, text: &str) -> Diagnostic {
        let mut diagnostic = Diagnostic::new(self.message.clone());
        match (origin, self.span) {
            (Origin::File(path), Some(span)) => {
                let file = path.display().to_string();
                diagnostic = yaml_spans::diagnostic::place(diagnostic, &file, text, span, None);
                if let Some(snippet) = &mut diagnostic.snippet {
                    if snippet.text.chars().count() > SNIPPET_CHARS {
                        snippet.text = snippet.text.chars().take(SNIPPET_CHARS).collect();
                    }
                }
            }
            (Origin::File(path), None) => {
                diagnostic = diagnostic.at(path.display().to_string(), None, None);
            }
            (Origin::Inline, Some(span)) => {
                diagnostic.message = format!(
                    "{} (line {}, column {} of the `filters` input)",
                    self.message, span.start.line, span.start.column
                );
            }
            (Origin::Inline, None) => {}
        }
        if let Some(field) = &self.field {
            diagnostic = diagnostic.for_field(field.clone());
        }
        if let Some(hint) = &self.hint {
            diagnostic = diagnostic.with_hint(hint.clone());
        }
        diagnostic
    }
}

/// A configuration error with the text it was found in, ready to render.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct FiltersError {
    /// Where the text came from.
    pub origin: Origin,
    /// The filters text (empty when it was refused before it was read).
    pub text: String,
    /// What is wrong.
    pub error: ConfigError,
}

impl FiltersError {
    /// The diagnostic the runner renders.
    pub fn diagnostic(&self) -> Diagnostic {
        self.error.diagnostic(&self.origin, &self.text)
    }
}
