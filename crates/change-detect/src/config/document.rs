//! From text to a checked YAML tree: parsed once by yaml-spans within [`LIMITS`], then the
//! refusals serde_yaml_ng made while reading (duplicate keys, core tags that do not fit,
//! integers past `u64`), each at its node.

use yaml_spans::{ErrorKind, Node, NodeKind, SyntaxError};

use crate::config::error::ConfigError;
use crate::config::limits::{self, LIMITS};
use crate::config::scalar::{self, Scalar};

/// Parses and checks the filters text.
pub(crate) fn read(text: &str) -> Result<Node, ConfigError> {
    let root = yaml_spans::parse_with_limits(text, LIMITS).map_err(|error| refused(&error))?;
    check(&root)?;
    Ok(root)
}

/// A parse error as the filters' error.
fn refused(error: &SyntaxError) -> ConfigError {
    if let Some(limit) = limits::refusal(error) {
        return limit;
    }
    let mut span = error.span;
    span.end = span.start;
    let message = match error.kind {
        ErrorKind::Merge => {
            "invalid YAML merge key: expected a mapping or list of mappings for merging".into()
        }
        ErrorKind::SecondDocument => "the filters are not valid YAML: deserializing from YAML \
                                      containing more than one document is not supported"
            .into(),
        _ => format!(
            "the filters are not valid YAML: {}",
            error
                .message
                .strip_prefix("invalid YAML: ")
                .unwrap_or(&error.message)
        ),
    };
    ConfigError::new(message).at(span)
}

/// Refuses what serde_yaml_ng refused while reading: the first duplicate key of a mapping,
/// a scalar that does not read as its core tag, an integer past `u64`.
fn check(root: &Node) -> Result<(), ConfigError> {
    let invalid = |message: String, node: &Node| {
        ConfigError::new(format!("the filters are not valid YAML: {message}")).at(node.span)
    };
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match &node.kind {
            NodeKind::Scalar(..) => {
                if let Some(message) = scalar::refusal(node) {
                    return Err(invalid(message, node));
                }
            }
            NodeKind::Sequence(items) => stack.extend(items.iter().rev()),
            NodeKind::Mapping(entries) => {
                let mut seen = std::collections::HashSet::with_capacity(entries.len());
                for (key, _) in entries {
                    if !seen.insert(identity(key)) {
                        return Err(invalid(duplicate(key), key));
                    }
                }
                for (key, value) in entries.iter().rev() {
                    stack.push(value);
                    stack.push(key);
                }
            }
        }
    }
    Ok(())
}

/// What makes two keys equal for serde_yaml_ng: type and value, tag included.
fn identity(key: &Node) -> String {
    let tag = key.tag.as_deref().filter(|_| scalar::is_tagged(key));
    let value = match scalar::scalar(key) {
        Some(Scalar::Null) => "n".into(),
        Some(Scalar::Bool(flag)) => format!("b{flag}"),
        Some(Scalar::Int(int)) => format!("i{int}"),
        Some(Scalar::Float(float)) => format!("f{}", float.to_bits()),
        Some(Scalar::Str(text)) => format!("s{text}"),
        None => format!("c{}", scalar::shown_tagged(key)),
    };
    format!("{}\u{0}{value}", tag.unwrap_or_default())
}

/// serde_yaml_ng's words for a duplicate key.
fn duplicate(key: &Node) -> String {
    if scalar::is_tagged(key) {
        return "duplicate entry in YAML map".into();
    }
    match scalar::scalar(key) {
        Some(Scalar::Null) => "duplicate entry with null key".into(),
        Some(Scalar::Bool(flag)) => format!("duplicate entry with key `{flag}`"),
        Some(Scalar::Int(_) | Scalar::Float(_)) => {
            format!("duplicate entry with key {}", scalar::shown(key))
        }
        Some(Scalar::Str(text)) => format!("duplicate entry with key {text:?}"),
        None => "duplicate entry in YAML map".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> ConfigError {
        read(text).expect_err("refused")
    }

    #[test]
    fn a_duplicate_key_is_refused_where_it_is_written_again() {
        let error = refused("api: x/**\nweb: y/**\napi: z/**\n");
        assert_eq!(
            error.message,
            "the filters are not valid YAML: duplicate entry with key \"api\""
        );
        assert_eq!((error.line(), error.column()), (Some(3), Some(1)));
        let error = refused("api:\n  added: x/**\n  added: y/**\n");
        assert_eq!((error.line(), error.column()), (Some(3), Some(3)));
    }

    #[test]
    fn keys_of_different_types_are_different_keys() {
        assert!(read("1: a\n'1': b\n").is_ok());
    }

    #[test]
    fn syntax_errors_merge_errors_and_second_documents_have_a_position() {
        let error = refused("api:\n  - [unclosed\n");
        assert!(
            error
                .message
                .starts_with("the filters are not valid YAML: "),
            "{}",
            error.message
        );
        assert!(error.line().is_some());
        let error = refused("api:\n  <<: x\n  paths: y/**\n");
        assert!(
            error.message.starts_with("invalid YAML merge key"),
            "{}",
            error.message
        );
        assert_eq!(error.line(), Some(2));
        let error = refused("a: x/**\n---\nb: y/**\n");
        assert!(
            error.message.contains("more than one document"),
            "{}",
            error.message
        );
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn a_core_tag_its_text_does_not_fit_is_refused_at_the_value() {
        let error = refused("a: !!int x\n");
        assert_eq!(
            error.message,
            "the filters are not valid YAML: invalid value: string \"x\", expected an integer"
        );
        assert_eq!((error.line(), error.column()), (Some(1), Some(4)));
    }
}
