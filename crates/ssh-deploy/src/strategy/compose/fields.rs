//! Reading typed fields out of the spanned YAML tree of the deploy file, collecting every
//! problem with `file:line:column`, the field's dotted path and a hint.

use std::path::PathBuf;
use std::time::Duration;

use runner_protocol::Diagnostic;
use yaml_spans::{Node, NodeKind, Span, key_text};

/// Collects problems while fields are read; resolves `{ env: }` and `{ file: }` values.
pub(super) struct Loader<'a> {
    /// The deploy file as the user named it (for messages).
    pub(super) file: String,
    /// Its text, for the snippets under problems.
    pub(super) text: &'a str,
    /// Its directory: runner-side paths are relative to it.
    pub(super) base: PathBuf,
    /// The runner's environment.
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Everything wrong so far.
    pub(super) problems: Vec<Diagnostic>,
}

impl Loader<'_> {
    /// Records a problem at `span`.
    pub(super) fn problem(&mut self, span: Span, field: &str, message: &str, hint: &str) {
        let mut diagnostic = yaml_spans::diagnostic::place(
            Diagnostic::new(format!("`{field}` {message}")),
            &self.file,
            self.text,
            span,
            None,
        );
        if !hint.is_empty() {
            diagnostic = diagnostic.with_hint(hint);
        }
        self.problems.push(diagnostic);
    }

    /// The entries of a mapping; keys outside `allowed` (unless empty) are problems with a
    /// did-you-mean hint.
    pub(super) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        allowed: &[&str],
    ) -> Vec<(String, &'n Node, Span)> {
        let NodeKind::Mapping(entries) = &node.kind else {
            self.problem(
                node.span,
                field,
                &format!("must be a mapping, found {}", node.type_name()),
                "",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            let name = key_text(key);
            if !allowed.is_empty() && !allowed.contains(&name.as_str()) {
                let near = allowed
                    .iter()
                    .max_by(|a, b| {
                        strsim::jaro_winkler(a, &name).total_cmp(&strsim::jaro_winkler(b, &name))
                    })
                    .filter(|best| strsim::jaro_winkler(best, &name) > 0.8);
                let hint = match near {
                    Some(best) => format!("did you mean `{best}`? valid: {}", allowed.join(", ")),
                    None => format!("valid: {}", allowed.join(", ")),
                };
                let path = join(field, &name);
                self.problem(key.span, &path, "is not a known field", &hint);
                continue;
            }
            out.push((name, value, key.span));
        }
        out
    }

    /// A scalar as written.
    pub(super) fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match (&node.kind, node.scalar_text()) {
            (NodeKind::Scalar(..), Some(text)) => Some(text.to_owned()),
            _ => {
                self.problem(
                    node.span,
                    field,
                    &format!("must be a string, found {}", node.type_name()),
                    "",
                );
                None
            }
        }
    }

    /// A list of scalars with their spans.
    pub(super) fn strings(&mut self, node: &Node, field: &str) -> Vec<(String, Span)> {
        let NodeKind::Sequence(items) = &node.kind else {
            self.problem(
                node.span,
                field,
                &format!("must be a list, found {}", node.type_name()),
                "write `[a, b]` or one `- item` per line",
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                self.string(item, &format!("{field}[{i}]"))
                    .map(|s| (s, item.span))
            })
            .collect()
    }

    /// A humantime duration of at least 1 s.
    pub(super) fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let text = self.string(node, field)?;
        match humantime::parse_duration(&text) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => {
                self.problem(node.span, field, "must be at least 1s", "");
                None
            }
            Err(e) => {
                self.problem(
                    node.span,
                    field,
                    &format!("is not a duration: {e}"),
                    "examples: 90s, 2m",
                );
                None
            }
        }
    }

    /// A runner-side path relative to the deploy file.
    pub(super) fn local_path(&self, text: &str) -> PathBuf {
        self.base.join(text)
    }

    /// A value: a scalar as written, `{env: NAME}` or `{file: path}`.
    pub(super) fn value(&mut self, node: &Node, field: &str) -> Option<String> {
        if let NodeKind::Scalar(..) = node.kind {
            if node.is_null() {
                self.problem(
                    node.span,
                    field,
                    "has no value",
                    "write `''` for an empty value, or list the key under `unset`",
                );
                return None;
            }
            return self.string(node, field);
        }
        let entries = self.mapping(node, field, &["env", "file"]);
        if entries.len() != 1 {
            self.problem(
                node.span,
                field,
                "must be a scalar, `{ env: NAME }` or `{ file: path }`",
                "",
            );
            return None;
        }
        let (kind, inner, _) = &entries[0];
        let path = join(field, kind);
        let name = self.string(inner, &path)?;
        if kind == "env" {
            match (self.lookup)(&name) {
                Some(value) => Some(value),
                None => {
                    self.problem(
                        inner.span,
                        &path,
                        &format!("names `{name}`, which is not set in the environment"),
                        "set it in the step's `env:` (for a secret: `env: { NAME: ${{ secrets.NAME }} }`)",
                    );
                    None
                }
            }
        } else {
            let local = self.local_path(&name);
            match std::fs::read_to_string(&local) {
                Ok(mut text) => {
                    // One trailing newline is the file's, not the value's (bundle-json-gen
                    // writes `<json>\n`).
                    if text.ends_with('\n') {
                        text.pop();
                        if text.ends_with('\r') {
                            text.pop();
                        }
                    }
                    Some(text)
                }
                Err(e) => {
                    self.problem(
                        inner.span,
                        &path,
                        &format!("cannot read {}: {e}", local.display()),
                        "paths are relative to the deploy file's directory",
                    );
                    None
                }
            }
        }
    }

    /// `text` with every `${NAME}` replaced from the environment (unset or empty is a problem).
    pub(super) fn expand(&mut self, node: &Node, field: &str, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                self.problem(node.span, field, "has `${` without `}`", "");
                return None;
            };
            let name = &rest[at + 2..at + end];
            match (self.lookup)(name) {
                Some(value) if !value.is_empty() => out.push_str(&value),
                _ => {
                    self.problem(
                        node.span,
                        field,
                        &format!("uses `${{{name}}}`, which is not set in the environment"),
                        "set it in the step's `env:`",
                    );
                    return None;
                }
            }
            rest = &rest[at + end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}

/// `field.key` (or `key` at the top).
pub(super) fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_owned()
    } else {
        format!("{field}.{key}")
    }
}
