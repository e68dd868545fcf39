//! From the checked tree to filters: dorny's forms (a pattern, a nested list, a status map) and
//! the extended form, every error at the node that holds it (for a value that came through an
//! alias or a merge key, where the anchor wrote it).

use yaml_spans::{Node, NodeKind, Span, Style};

use crate::change::{Status, StatusSet};
use crate::config::error::ConfigError;
use crate::config::scalar::{self, Scalar};
use crate::filter::{Filter, Quantifier, Rule};
use crate::glob::Pattern;

/// Keys of the extended filter form.
const EXTENDED_KEYS: &[&str] = &[
    "paths",
    "exclude",
    "depends-on",
    "predicate-quantifier",
    "matrix",
];

/// A filter and where its parts are written, for the checks across filters.
pub(crate) struct ReadFilter {
    /// The filter.
    pub filter: Filter,
    /// Its name.
    pub key: Span,
    /// Its `depends-on` key.
    pub depends_on_key: Option<Span>,
    /// Each of its dependencies.
    pub depends_on: Vec<Span>,
}

/// The filters of the document's root; an empty document means none.
pub(crate) fn filters(root: &Node) -> Result<Vec<ReadFilter>, ConfigError> {
    let entries = match &root.kind {
        NodeKind::Mapping(entries) if !scalar::is_tagged(root) => entries,
        NodeKind::Scalar(..)
            if !scalar::is_tagged(root) && scalar::scalar(root) == Some(Scalar::Null) =>
        {
            return Ok(Vec::new());
        }
        _ => {
            let start = Span {
                start: root.span.start,
                end: root.span.start,
            };
            return Err(ConfigError::new(
                "the filters must be a YAML mapping of filter names to patterns",
            )
            .at(start)
            .hint("write `name: pattern` or `name: [pattern, …]` per filter"));
        }
    };
    let mut filters = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Some(name) = name(key) else {
            return Err(ConfigError::new(format!(
                "filter name `{}` is not a string",
                scalar::shown_tagged(key)
            ))
            .at(inner(key))
            .hint("quote the name: `\"1\": pattern`"));
        };
        filters.push(filter(&name, key, value)?);
    }
    Ok(filters)
}

/// A filter's name: JavaScript object keys are strings, so dorny's `2:` and `true:` are
/// filters "2" and "true".
fn name(key: &Node) -> Option<String> {
    if scalar::is_tagged(key) {
        return scalar::as_str(key).map(str::to_owned);
    }
    match scalar::scalar(key)? {
        Scalar::Int(int) => Some(int.to_string()),
        Scalar::Bool(flag) => Some(flag.to_string()),
        Scalar::Str(text) => Some(text.to_owned()),
        Scalar::Null | Scalar::Float(_) => None,
    }
}

/// The span of a scalar's text on one line: after its anchor or tag (`&a 1.0`, `!!str x`)
/// and inside its quotes; other nodes' spans as they are.
fn inner(node: &Node) -> Span {
    let mut span = node.span;
    let NodeKind::Scalar(text, style) = &node.kind else {
        return span;
    };
    if span.start.line != span.end.line {
        return span;
    }
    let chars = text.chars().count();
    let quotes = usize::from(*style == Style::Quoted) * 2;
    let width = span.end.offset.saturating_sub(span.start.offset);
    if width < chars + quotes {
        // Escapes or a block scalar: the text is not written as it reads.
        return span;
    }
    let shift = width - chars - quotes / 2;
    span.start.offset += shift;
    span.start.column += u32::try_from(shift).unwrap_or(0);
    span.end.offset -= quotes / 2;
    span.end.column -= u32::try_from(quotes / 2).unwrap_or(0);
    span
}

fn filter(name: &str, key: &Node, value: &Node) -> Result<ReadFilter, ConfigError> {
    let mut read = ReadFilter {
        filter: Filter::named(name),
        key: inner(key),
        depends_on_key: None,
        depends_on: Vec::new(),
    };
    match &value.kind {
        NodeKind::Mapping(entries)
            if !scalar::is_tagged(value)
                && entries.iter().any(|(key, _)| {
                    scalar::as_str(key).is_some_and(|key| EXTENDED_KEYS.contains(&key))
                }) =>
        {
            for (key, item) in entries {
                extended(name, key, item, &mut read)?;
            }
        }
        NodeKind::Scalar(..)
            if !scalar::is_tagged(value) && scalar::scalar(value) == Some(Scalar::Null) =>
        {
            return Err(ConfigError::new(format!("filter `{name}` has no patterns"))
                .at(read.key)
                .field(name)
                .hint("write at least one pattern, e.g. `services/api/**`"));
        }
        _ => rules(name, name, value, &mut read.filter.rules, None)?,
    }
    Ok(read)
}

/// One key of the extended form.
fn extended(name: &str, key: &Node, item: &Node, read: &mut ReadFilter) -> Result<(), ConfigError> {
    let key_text = scalar::as_str(key).unwrap_or_default();
    let field = format!("{name}.{key_text}");
    let at_key = |message: String, hint: String| {
        ConfigError::new(message)
            .at(inner(key))
            .field(field.clone())
            .hint(hint)
    };
    let filter = &mut read.filter;
    match key_text {
        "paths" => rules(name, &field, item, &mut filter.rules, None)?,
        "exclude" => {
            let mut spans = Vec::new();
            rules(name, &field, item, &mut filter.exclude, Some(&mut spans))?;
            let negated = filter
                .exclude
                .iter()
                .flat_map(|rule| &rule.patterns)
                .zip(&spans)
                .find(|(pattern, _)| pattern.negated);
            if let Some((pattern, span)) = negated {
                return Err(ConfigError::new(format!(
                    "`{}` in `exclude` of filter `{name}` is negated",
                    pattern.source
                ))
                .at(*span)
                .field(field)
                .hint("exclude patterns name what to leave out; move a `!` rule to `paths` with `predicate-quantifier: ordered`"));
            }
        }
        "depends-on" => {
            read.depends_on_key = Some(inner(key));
            for (dependency, node) in strings(name, &field, item)? {
                filter.depends_on.push(dependency.to_owned());
                read.depends_on.push(inner(node));
            }
        }
        "predicate-quantifier" => {
            let word = scalar::as_str(item).unwrap_or_default();
            filter.quantifier = Some(Quantifier::from_word(word).ok_or_else(|| {
                at_key(
                    format!("unknown predicate-quantifier `{word}` in filter `{name}`"),
                    "use `some`, `every` or `ordered`".into(),
                )
            })?);
        }
        "matrix" if scalar::scalar(item) == Some(Scalar::Bool(false)) => filter.in_matrix = false,
        "matrix" => {
            let json = match item.kind {
                NodeKind::Mapping(_) if !scalar::is_tagged(item) => scalar::to_json(item),
                _ => None,
            };
            let Some(serde_json::Value::Object(mut object)) = json else {
                return Err(at_key(
                    format!("`matrix` of filter `{name}` must be a mapping"),
                    "write `matrix: { dir: services/api }`, or `matrix: false` to leave the filter out".into(),
                ));
            };
            object.remove("filter");
            filter.matrix = object;
        }
        other => {
            let shown = if other.is_empty() {
                "(not a string)"
            } else {
                other
            };
            return Err(at_key(
                format!("unknown key `{shown}` in filter `{name}`"),
                format!(
                    "the extended form takes {}; status rules go under `paths:`",
                    EXTENDED_KEYS
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Collects rules from a pattern, a (nested) list or a status map (a local tag is looked
/// through, as serde_yaml_ng's reading did); `spans` receives where each pattern is written.
fn rules(
    filter: &str,
    field: &str,
    value: &Node,
    rules: &mut Vec<Rule>,
    mut spans: Option<&mut Vec<Span>>,
) -> Result<(), ConfigError> {
    match &value.kind {
        NodeKind::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                let field = format!("{field}[{index}]");
                self::rules(filter, &field, item, rules, spans.as_deref_mut())?;
            }
        }
        NodeKind::Mapping(entries) => {
            for (key, item) in entries {
                let key_text = scalar::as_str(key).unwrap_or_default();
                let field = format!("{field}.{key_text}");
                let statuses = statuses(filter, &field, key, key_text)?;
                let mut patterns = Vec::new();
                for (index, (source, node)) in
                    strings(filter, &field, item)?.into_iter().enumerate()
                {
                    patterns.push(pattern(filter, &format!("{field}[{index}]"), source, node)?);
                    if let Some(spans) = spans.as_deref_mut() {
                        spans.push(inner(node));
                    }
                }
                rules.push(Rule {
                    statuses: Some(statuses),
                    patterns,
                });
            }
        }
        NodeKind::Scalar(..) => match scalar::scalar(value) {
            Some(Scalar::Str(source)) => {
                let pattern = pattern(filter, field, source, value)?;
                rules.push(Rule {
                    statuses: None,
                    patterns: vec![pattern],
                });
                if let Some(spans) = spans {
                    spans.push(inner(value));
                }
            }
            _ => {
                let shown = scalar::shown(value);
                return Err(ConfigError::new(format!(
                    "`{shown}` in filter `{filter}` is not a pattern"
                ))
                .at(inner(value))
                .field(field)
                .hint("quote it as a string, e.g. `'1.0/**'`"));
            }
        },
    }
    Ok(())
}

/// A string or a (nested) list of strings, each with its node.
fn strings<'a>(
    filter: &str,
    field: &str,
    value: &'a Node,
) -> Result<Vec<(&'a str, &'a Node)>, ConfigError> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        let tagged = scalar::is_tagged(value);
        match (&value.kind, scalar::scalar(value)) {
            (NodeKind::Scalar(..), Some(Scalar::Str(text))) if !tagged => {
                out.push((text, value));
            }
            (NodeKind::Sequence(items), _) if !tagged => stack.extend(items.iter().rev()),
            _ => {
                let shown = scalar::shown_tagged(value);
                return Err(ConfigError::new(format!(
                    "`{shown}` in filter `{filter}` must be a string or a list of strings"
                ))
                .at(inner(value))
                .field(field)
                .hint("write `added|modified: [pattern, …]`"));
            }
        }
    }
    Ok(out)
}

/// The statuses of a status rule's key (`added|modified`), each unknown word at its place.
fn statuses(filter: &str, field: &str, key: &Node, text: &str) -> Result<StatusSet, ConfigError> {
    let mut set = StatusSet::default();
    let key_span = inner(key);
    let mut from = 0;
    for part in text.split('|') {
        let start = from + (part.len() - part.trim_start().len());
        from += part.len() + 1;
        let word = part.trim();
        if word.is_empty() {
            continue;
        }
        match Status::from_word(word) {
            Some(status) => set.insert(status),
            None => {
                return Err(ConfigError::new(format!(
                    "unknown status `{word}` in filter `{filter}`"
                ))
                .at(word_span(key_span, text, start, word))
                .field(field)
                .hint(format!(
                    "use {} (several joined with `|`)",
                    Status::NAMED
                        .iter()
                        .map(|s| format!("`{}`", s.word()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    if set.is_empty() {
        return Err(ConfigError::new(format!(
            "status rule `{text}` in filter `{filter}` names no status"
        ))
        .at(key_span)
        .field(field)
        .hint("write `added|modified: pattern`"));
    }
    Ok(set)
}

/// The span of `word`, `start` bytes into the key `text` written at `key` (the key itself
/// when it spans lines).
fn word_span(key: Span, text: &str, start: usize, word: &str) -> Span {
    if key.start.line != key.end.line {
        return key;
    }
    let before = u32::try_from(text[..start].chars().count()).unwrap_or(0);
    let width = word.chars().count();
    let mut span = key;
    span.start.column += before;
    span.start.offset += before as usize;
    span.end = span.start;
    span.end.column += u32::try_from(width).unwrap_or(0);
    span.end.offset += width;
    span
}

/// The span of a scalar with its quotes (an empty pattern is shown as `''`).
fn quoted(node: &Node) -> Span {
    let mut span = inner(node);
    if matches!(node.kind, NodeKind::Scalar(_, Style::Quoted)) && span != node.span {
        span.start.offset -= 1;
        span.start.column -= 1;
        span.end.offset += 1;
        span.end.column += 1;
    }
    span
}

/// A pattern, or why it is not one (at its text, or at its quotes when it is empty).
fn pattern(filter: &str, field: &str, source: &str, node: &Node) -> Result<Pattern, ConfigError> {
    Pattern::parse(source).map_err(|error| {
        let (message, span) = if source.is_empty() {
            (format!("empty pattern in filter `{filter}`"), quoted(node))
        } else {
            (
                format!("pattern `{source}` in filter `{filter}`: {error}"),
                inner(node),
            )
        };
        ConfigError::new(message)
            .at(span)
            .field(field)
            .hint(error.hint(source))
    })
}
