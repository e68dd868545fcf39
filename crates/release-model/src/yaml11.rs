//! How the platform reads a plain scalar: PyYAML, YAML 1.1 (kdcube-ai-app pins PyYAML 6.0.2 and
//! loads descriptors with `yaml.safe_load`, `infra/plugin/bundle_store.py` at eefe18532).
//!
//! This crate reads YAML 1.2 (core schema), where `enabled: no` is the string `"no"`; PyYAML
//! reads the boolean `false`. Bundle config (`config`/`props`) is carried to the platform, so
//! it must mean what the platform reads: a YAML 1.1 boolean becomes that boolean (with a
//! warning to quote it if the string was meant), and any other plain scalar the two readers
//! take differently (`010`, `1_000`, `1:30`, `0o17`, `1e3`, dates, `=`, `.inf`) is refused
//! with a hint to quote it. The patterns are PyYAML 6.0.2's implicit resolvers
//! (`yaml/resolver.py`).

use std::sync::LazyLock;

use regex::Regex;

use crate::problem::{FieldPath, Problem};
use yaml_spans::{Node, NodeKind, Resolved, Style, key_text};

/// What PyYAML makes of a plain scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// `None`.
    Null,
    /// `True`/`False`.
    Bool(bool),
    /// An `int`.
    Int,
    /// A `float`.
    Float,
    /// A `datetime.date`/`datetime` (no JSON value).
    Timestamp,
    /// `<<` (merge) or `=` (value): not data.
    Special,
    /// A `str`.
    Str,
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|error| panic!("static pattern {pattern}: {error}"))
}

static BOOL: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
});
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    )
});

/// PyYAML's reading of a plain scalar (resolvers tried in PyYAML's order).
pub fn reading(text: &str) -> Reading {
    if BOOL.is_match(text) {
        Reading::Bool(matches!(
            text,
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON"
        ))
    } else if FLOAT.is_match(text) {
        Reading::Float
    } else if INT.is_match(text) {
        Reading::Int
    } else if text == "<<" || text == "=" {
        Reading::Special
    } else if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        Reading::Null
    } else if TIMESTAMP.is_match(text) {
        Reading::Timestamp
    } else {
        Reading::Str
    }
}

/// True when both readers give the same value for `text`, read by this crate as `ours`.
fn same(text: &str, ours: &Resolved<'_>) -> bool {
    // Digits the two read alike: no `_`, no `:`, no leading-zero octal (`010`), no sign on hex.
    let plain_digits = !text.contains(['_', ':'])
        && !text
            .trim_start_matches(['-', '+'])
            .strip_prefix('0')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    match (reading(text), ours) {
        (Reading::Null, Resolved::Null) | (Reading::Str, Resolved::String(_)) => true,
        (Reading::Bool(a), Resolved::Bool(b)) => a == *b,
        (Reading::Int, Resolved::Int(_)) => plain_digits,
        (Reading::Float, Resolved::Float(f)) => plain_digits && f.is_finite(),
        _ => false,
    }
}

fn describe(reading: Reading) -> &'static str {
    match reading {
        Reading::Null => "null",
        Reading::Bool(true) => "the boolean true",
        Reading::Bool(false) => "the boolean false",
        Reading::Int => "an integer",
        Reading::Float => "a float",
        Reading::Timestamp => "a date (which JSON cannot hold)",
        Reading::Special => "a merge/value marker, not data",
        Reading::Str => "a string",
    }
}

fn ours_describe(resolved: &Resolved<'_>) -> String {
    match resolved {
        Resolved::Null => "null".into(),
        Resolved::Bool(b) => format!("the boolean {b}"),
        Resolved::Int(i) => format!("the integer {i}"),
        Resolved::Float(f) if f.is_finite() => format!("the number {f}"),
        Resolved::Float(_) => "a non-finite number, which JSON cannot hold".into(),
        Resolved::String(_) => "a string".into(),
    }
}

/// Problems with the plain scalars below `node` (keys and values).
pub fn check_tree(node: &Node, path: &FieldPath) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk(node, path, &mut problems);
    problems
}

fn walk(node: &Node, path: &FieldPath, problems: &mut Vec<Problem>) {
    match &node.kind {
        NodeKind::Scalar(text, Style::Plain) => {
            let Some(ours) = node.resolve() else { return };
            if same(text, &ours) {
                return;
            }
            match reading(text) {
                Reading::Bool(value) if matches!(ours, Resolved::String(_)) => problems.push(
                    Problem::warning(
                        path.clone(),
                        format!("`{path}` is `{text}`: the platform (PyYAML, YAML 1.1) reads the boolean {value}, and so does this tool"),
                    )
                    .label(format!("YAML 1.1 boolean {value}"))
                    .hint(format!("write `{value}` to say so, or `\"{text}\"` for the string")),
                ),
                theirs => problems.push(
                    Problem::error(
                        path.clone(),
                        format!(
                            "`{path}` is `{text}`: the platform (PyYAML, YAML 1.1) reads {}, YAML 1.2 reads {}",
                            describe(theirs),
                            ours_describe(&ours)
                        ),
                    )
                    .label("ambiguous between YAML 1.1 and 1.2")
                    .hint(format!("quote it (`\"{text}\"`) for the string, or write the number plainly (e.g. `8` or `1000` or `1.0e+3`)")),
                ),
            }
        }
        NodeKind::Scalar(..) => {}
        NodeKind::Sequence(items) => {
            for (position, item) in items.iter().enumerate() {
                walk(item, &path.index(position), problems);
            }
        }
        NodeKind::Mapping(entries) => {
            for (key, value) in entries {
                let field = path.key(&key_text(key));
                if let NodeKind::Scalar(text, Style::Plain) = &key.kind {
                    if let Reading::Bool(value) = reading(text) {
                        // json.dumps writes a boolean key as `true`/`false`.
                        if text != "true" && text != "false" {
                            problems.push(
                                Problem::error(
                                    field.clone(),
                                    format!("the key `{text}` of `{path}` is the boolean {value} to the platform (PyYAML, YAML 1.1), the string `{text}` here"),
                                )
                                .at_key()
                                .label("ambiguous key")
                                .hint(format!("quote the key: `\"{text}\":`")),
                            );
                        }
                    }
                }
                walk(value, &field, problems);
            }
        }
    }
}

/// The node as JSON, with plain YAML 1.1 booleans (`yes`, `no`, `on`, `off`) as booleans:
/// what the platform reads. Everything else as [`Node::to_json`].
pub fn to_json(node: &Node) -> serde_json::Value {
    match &node.kind {
        NodeKind::Scalar(text, Style::Plain) => match reading(text) {
            Reading::Bool(value) => serde_json::Value::Bool(value),
            _ => node.to_json(),
        },
        NodeKind::Scalar(..) => node.to_json(),
        NodeKind::Sequence(items) => items.iter().map(to_json).collect(),
        NodeKind::Mapping(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key_text(key), to_json(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyyaml_resolution_of_plain_scalars() {
        for (text, expected) in [
            ("no", Reading::Bool(false)),
            ("On", Reading::Bool(true)),
            ("y", Reading::Str),
            ("1", Reading::Int),
            ("010", Reading::Int),
            ("1_000", Reading::Int),
            ("1:30", Reading::Int),
            ("0o17", Reading::Str),
            ("1e3", Reading::Str),
            ("1.0e+3", Reading::Float),
            ("1.5", Reading::Float),
            (".inf", Reading::Float),
            ("2026-01-02", Reading::Timestamp),
            ("~", Reading::Null),
            ("=", Reading::Special),
            ("1.10.2", Reading::Str),
        ] {
            assert_eq!(reading(text), expected, "{text}");
        }
    }
}
