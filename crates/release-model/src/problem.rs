//! Field paths, the path -> span index, and problems rendered as diagnostics.
//!
//! Checks name a field symbolically (`bundles.items[1].ref`); the index built while loading
//! turns that route into a concrete span, falling back to the nearest ancestor that exists
//! (a missing `ref` points at its item). Line and column are computed only when rendering.

use std::collections::HashMap;
use std::fmt;

use runner_protocol::diagnostic::Diagnostic;
use runner_protocol::{Annotation, Level};

use yaml_spans::Span;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index, 0-based.
    Index(usize),
}

/// A dotted field path: `bundles.items[1].ref`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path with a key appended.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path with an index appended.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The parent path, `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// True at the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain_key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => {
                    write!(f, "[{}]", serde_json::Value::String(key.clone()))?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where each field's value (and key) sits in the source.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    values: HashMap<FieldPath, Span>,
    keys: HashMap<FieldPath, Span>,
}

impl SpanIndex {
    /// Records the span of the value at `path`.
    pub fn insert_value(&mut self, path: FieldPath, span: Span) {
        self.values.insert(path, span);
    }

    /// Records the span of the key that introduces `path`.
    pub fn insert_key(&mut self, path: FieldPath, span: Span) {
        self.keys.insert(path, span);
    }

    /// The span of the value at `path` or, when absent, of its nearest ancestor.
    pub fn value(&self, path: &FieldPath) -> Option<Span> {
        let mut current = Some(path.clone());
        while let Some(path) = current {
            if let Some(span) = self.values.get(&path) {
                return Some(*span);
            }
            current = path.parent();
        }
        None
    }

    /// The span of the key of `path`, when it has one.
    pub fn key(&self, path: &FieldPath) -> Option<Span> {
        self.keys.get(path).copied()
    }

    /// True when the value at `path` itself was seen (not an ancestor).
    pub fn contains(&self, path: &FieldPath) -> bool {
        self.values.contains_key(path)
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The release is invalid.
    Error,
    /// Worth fixing; the release is still usable.
    Warning,
}

/// Where a problem points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The value of the field (or its nearest ancestor).
    Value,
    /// The key of the field (unknown keys).
    Key,
    /// An explicit span.
    Span(Span),
}

/// One finding about a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// The field.
    pub field: FieldPath,
    /// What part of the source to underline.
    pub target: Target,
    /// A label under the underline.
    pub label: Option<String>,
    /// What would be valid.
    pub hint: Option<String>,
}

impl Problem {
    /// An error about the value of `field`.
    pub fn error(field: FieldPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            field,
            target: Target::Value,
            label: None,
            hint: None,
        }
    }

    /// A warning about the value of `field`.
    pub fn warning(field: FieldPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(field, message)
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a label under the underline.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Points at the key instead of the value.
    pub fn at_key(mut self) -> Self {
        self.target = Target::Key;
        self
    }

    /// Points at an explicit span.
    pub fn at_span(mut self, span: Span) -> Self {
        self.target = Target::Span(span);
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A descriptor file as read: its name for messages and its text for snippets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user gave it.
    pub name: String,
    /// The contents.
    pub text: String,
}

impl SourceFile {
    /// A source from a name and text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    fn span_of(&self, problem: &Problem, index: &SpanIndex) -> Option<Span> {
        match problem.target {
            Target::Span(span) => Some(span),
            Target::Key => index
                .key(&problem.field)
                .or_else(|| index.value(&problem.field)),
            Target::Value => index.value(&problem.field),
        }
    }

    /// The problem as a diagnostic: message, `file:line:col`, snippet, field and hint.
    pub fn diagnostic(&self, problem: &Problem, index: &SpanIndex) -> Diagnostic {
        let mut diagnostic = Diagnostic::new(problem.message.clone());
        diagnostic = match self.span_of(problem, index) {
            Some(span) => yaml_spans::diagnostic::place(
                diagnostic,
                &self.name,
                &self.text,
                span,
                problem.label.clone(),
            ),
            None => diagnostic.at(self.name.clone(), None, None),
        };
        if !problem.field.is_root() {
            diagnostic = diagnostic.for_field(problem.field.to_string());
        }
        if let Some(hint) = &problem.hint {
            diagnostic = diagnostic.with_hint(hint.clone());
        }
        diagnostic
    }
}

/// Renders a diagnostic as a warning: `warning:` text locally, a `::warning` annotation
/// under GitHub (the runner protocol renders errors; warnings share its layout).
pub fn warning_text(diagnostic: &Diagnostic) -> String {
    let text = diagnostic.to_text();
    match text.strip_prefix("error: ") {
        Some(rest) => format!("warning: {rest}"),
        None => text,
    }
}

/// The `::warning` annotation for a diagnostic.
pub fn warning_annotation(diagnostic: &Diagnostic) -> Annotation {
    let mut annotation = diagnostic.to_annotation();
    annotation.level = Level::Warning;
    annotation
}

/// Suggests the closest candidate to `word` (`did you mean`), when one is close enough.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_dotted_with_indices_and_quoted_odd_keys() {
        let path = FieldPath::root()
            .key("bundles")
            .key("items")
            .index(1)
            .key("ref");
        assert_eq!(path.to_string(), "bundles.items[1].ref");
        let odd = FieldPath::root().key("props").key("a.b c");
        assert_eq!(odd.to_string(), "props[\"a.b c\"]");
        assert_eq!(FieldPath::root().to_string(), "(document)");
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let mut index = SpanIndex::default();
        let item = FieldPath::root().key("items").index(0);
        let span = Span::default();
        index.insert_value(item.clone(), span);
        assert_eq!(index.value(&item.key("ref")), Some(span));
        assert_eq!(index.value(&FieldPath::root().key("other")), None);
    }

    #[test]
    fn suggestions_only_for_close_words() {
        let keys = ["repo", "ref", "subdir", "module"];
        assert_eq!(did_you_mean("refs", &keys), Some("ref"));
        assert_eq!(did_you_mean("modul", &keys), Some("module"));
        assert_eq!(did_you_mean("subdirectory", &keys), Some("subdir"));
        assert_eq!(did_you_mean("colour", &keys), None);
    }
}
