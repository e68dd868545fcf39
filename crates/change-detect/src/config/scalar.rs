//! Scalars and tags read as serde_yaml_ng read them, which change-detect used before the
//! spanned tree: the same plain scalars are numbers, booleans and nulls, so the same filters
//! files are accepted and the same values reach the `matrix` output.
//!
//! serde_yaml_ng resolves a plain scalar with its own rules (not exactly YAML 1.2's core
//! schema: `0123` is a string, `0b11` is 3, `+12` is 12), treats the core tags `!!bool`,
//! `!!int`, `!!float` and `!!null` as types and every other `!!` tag as a string, and keeps a
//! local tag (`!name`) around its value.

use yaml_spans::{Node, NodeKind, Style};

/// The handle of the core tags (`!!str` is `tag:yaml.org,2002:str`).
const CORE: &str = "tag:yaml.org,2002:";

/// A scalar as serde_yaml_ng reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// `~`, `null`, `Null`, `NULL` or nothing.
    Null,
    /// `true`/`false` in three spellings.
    Bool(bool),
    /// An integer that fits `u64` or `i64`.
    Int(i128),
    /// A float.
    Float(f64),
    /// Anything else.
    Str(&'a str),
}

/// True for a node with a local tag (`!name`): serde_yaml_ng's `Value::Tagged`.
pub(crate) fn is_tagged(node: &Node) -> bool {
    node.tag
        .as_deref()
        .is_some_and(|tag| !tag.starts_with(CORE))
}

/// The scalar, its local tag ignored (serde_yaml_ng's `untag`); `None` for collections.
/// A core-tagged scalar that does not read as its type is taken as a string here: the
/// document checks refuse it before the filters are read.
pub(crate) fn scalar(node: &Node) -> Option<Scalar<'_>> {
    let NodeKind::Scalar(text, style) = &node.kind else {
        return None;
    };
    let text = text.as_str();
    if let Some(kind) = node.tag.as_deref().and_then(|tag| tag.strip_prefix(CORE)) {
        let typed = match kind {
            "bool" => parse_bool(text).map(Scalar::Bool),
            "int" => parse_int(text).map(Scalar::Int),
            "float" => parse_f64(text).map(Scalar::Float),
            "null" => parse_null(text).then_some(Scalar::Null),
            _ => None,
        };
        return Some(typed.unwrap_or(Scalar::Str(text)));
    }
    if *style == Style::Quoted {
        return Some(Scalar::Str(text));
    }
    Some(plain(text))
}

/// Why serde_yaml_ng refused a scalar while reading the document (a core tag its text does
/// not read as, an integer past `u64`), or `None`.
pub(crate) fn refusal(node: &Node) -> Option<String> {
    let NodeKind::Scalar(text, style) = &node.kind else {
        return None;
    };
    let invalid = |expected: &str| {
        Some(format!(
            "invalid value: string {text:?}, expected {expected}"
        ))
    };
    match node.tag.as_deref().and_then(|tag| tag.strip_prefix(CORE)) {
        Some("bool") if parse_bool(text).is_none() => return invalid("a boolean"),
        Some("int") if parse_int(text).is_none() => return invalid("an integer"),
        Some("float") if parse_f64(text).is_none() => return invalid("a float"),
        Some("null") if !parse_null(text) => return invalid("null"),
        Some(_) => return None,
        None => {}
    }
    let plain_text = *style == Style::Plain || is_tagged(node);
    // serde_yaml_ng tries u128 and i128 after u64 and i64, before floats, and its value
    // type refuses them.
    let int_or_later = !matches!(plain(text), Scalar::Null | Scalar::Bool(_) | Scalar::Int(_));
    if plain_text && int_or_later {
        let huge = parse_unsigned(text, u128::from_str_radix).is_some()
            || parse_negative(text, i128::from_str_radix).is_some();
        if huge {
            return Some(format!(
                "invalid type: integer `{text}` as u128, expected any YAML value"
            ));
        }
    }
    None
}

/// serde_yaml_ng's `visit_untagged_scalar`.
fn plain(text: &str) -> Scalar<'_> {
    if parse_null(text) {
        return Scalar::Null;
    }
    if let Some(flag) = parse_bool(text) {
        return Scalar::Bool(flag);
    }
    if let Some(int) = parse_int(text) {
        return Scalar::Int(int);
    }
    if !digits_but_not_number(text) {
        if let Some(float) = parse_f64(text) {
            return Scalar::Float(float);
        }
    }
    Scalar::Str(text)
}

fn parse_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// An integer that serde_yaml_ng keeps (`u64`, else a negative `i64`).
fn parse_int(text: &str) -> Option<i128> {
    parse_unsigned(text, u64::from_str_radix)
        .map(i128::from)
        .or_else(|| parse_negative(text, i64::from_str_radix).map(i128::from))
}

fn parse_unsigned<T>(
    text: &str,
    from_str_radix: fn(&str, u32) -> Result<T, std::num::ParseIntError>,
) -> Option<T> {
    let unpositive = text.strip_prefix('+').unwrap_or(text);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) || digits_but_not_number(text) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

fn parse_negative<T>(
    text: &str,
    from_str_radix: fn(&str, u32) -> Result<T, std::num::ParseIntError>,
) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = text.strip_prefix(prefix) {
            if let Ok(int) = from_str_radix(&format!("-{rest}"), radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(text) {
        return None;
    }
    from_str_radix(text, 10).ok()
}

fn parse_f64(text: &str) -> Option<f64> {
    let unpositive = match text.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => text,
    };
    match unpositive {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    match text {
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    unpositive
        .parse::<f64>()
        .ok()
        .filter(|float| float.is_finite())
}

/// Leading zeros followed by digits are a string in YAML 1.2.
fn digits_but_not_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.len() > 1 && digits.starts_with('0') && digits[1..].bytes().all(|b| b.is_ascii_digit())
}

/// A float as serde_yaml_ng writes it.
fn float_text(float: f64) -> String {
    if float.is_nan() {
        ".nan".into()
    } else if float.is_infinite() {
        if float > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        format!("{float:?}")
    }
}

/// A value as serde_yaml_ng's `to_string` shows it in messages (`null`, `1.0`, `- a`), its
/// local tag left out (what is shown after serde_yaml_ng looked through the tag).
pub(crate) fn shown(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar(..) => match scalar(node) {
            Some(Scalar::Null) => "null".into(),
            Some(Scalar::Bool(flag)) => flag.to_string(),
            Some(Scalar::Int(int)) => int.to_string(),
            Some(Scalar::Float(float)) => float_text(float),
            Some(Scalar::Str(text)) => text.to_owned(),
            None => String::new(),
        },
        NodeKind::Sequence(items) => items
            .iter()
            .map(|item| format!("- {}", shown_tagged(item)))
            .collect::<Vec<_>>()
            .join("\n"),
        NodeKind::Mapping(entries) => entries
            .iter()
            .map(|(key, value)| format!("{}: {}", shown_tagged(key), shown_tagged(value)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// [`shown`] with the local tag in front (`!name value`), as serde_yaml_ng shows a tagged
/// value it did not look through.
pub(crate) fn shown_tagged(node: &Node) -> String {
    match node.tag.as_deref().filter(|_| is_tagged(node)) {
        Some(tag) => format!("{tag} {}", shown(node)),
        None => shown(node),
    }
}

/// The text of a key or value that serde_yaml_ng's `as_str` gives (a string, local tag
/// ignored), else `None`.
pub(crate) fn as_str(node: &Node) -> Option<&str> {
    match scalar(node)? {
        Scalar::Str(text) => Some(text),
        _ => None,
    }
}

/// The value as `serde_json::to_value` made it from serde_yaml_ng's value; `None` where
/// that failed (a null or collection key).
pub(crate) fn to_json(node: &Node) -> Option<serde_json::Value> {
    let value = match &node.kind {
        NodeKind::Scalar(..) => match scalar(node)? {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(flag) => serde_json::Value::Bool(flag),
            Scalar::Int(int) => match i64::try_from(int) {
                Ok(int) => serde_json::Value::from(int),
                Err(_) => serde_json::Value::from(u64::try_from(int).ok()?),
            },
            Scalar::Float(float) => serde_json::Number::from_f64(float)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Scalar::Str(text) => serde_json::Value::String(text.to_owned()),
        },
        NodeKind::Sequence(items) => items.iter().map(to_json).collect::<Option<_>>()?,
        NodeKind::Mapping(entries) => {
            let mut object = serde_json::Map::new();
            for (key, value) in entries {
                object.insert(json_key(key)?, to_json(value)?);
            }
            serde_json::Value::Object(object)
        }
    };
    match node.tag.as_deref().filter(|_| is_tagged(node)) {
        // serde_yaml_ng serialises a tagged value as a one-entry map from its tag.
        Some(tag) => {
            let mut object = serde_json::Map::new();
            object.insert(tag.to_owned(), value);
            Some(serde_json::Value::Object(object))
        }
        None => Some(value),
    }
}

/// A map key as serde_json's key serialiser writes it; `None` for what it refuses.
fn json_key(key: &Node) -> Option<String> {
    if is_tagged(key) {
        return None;
    }
    match scalar(key)? {
        Scalar::Null => None,
        Scalar::Bool(flag) => Some(flag.to_string()),
        Scalar::Int(int) => Some(int.to_string()),
        Scalar::Float(float) => Some(serde_json::Number::from_f64(float)?.to_string()),
        Scalar::Str(text) => Some(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Node {
        let root = yaml_spans::parse(&format!("v: {text}\n")).expect("valid");
        let NodeKind::Mapping(mut entries) = root.kind else {
            panic!("mapping")
        };
        entries.remove(0).1
    }

    #[test]
    fn plain_scalars_read_as_serde_yaml_ng_read_them() {
        let cases: &[(&str, Scalar)] = &[
            ("~", Scalar::Null),
            ("TRUE", Scalar::Bool(true)),
            ("yes", Scalar::Str("yes")),
            ("0123", Scalar::Str("0123")),
            ("0x10", Scalar::Int(16)),
            ("-0x10", Scalar::Int(-16)),
            ("0b11", Scalar::Int(3)),
            ("0o17", Scalar::Int(15)),
            ("+12", Scalar::Int(12)),
            ("1e3", Scalar::Float(1000.0)),
            ("1_0", Scalar::Str("1_0")),
            ("'1.0'", Scalar::Str("1.0")),
            ("!!str 12", Scalar::Str("12")),
            ("!local 12", Scalar::Int(12)),
        ];
        for (text, expected) in cases {
            assert_eq!(scalar(&value(text)), Some(*expected), "{text}");
        }
    }

    #[test]
    fn shown_values_match_serde_yaml_ng_to_string() {
        assert_eq!(shown(&value("~")), "null");
        assert_eq!(shown(&value("1.0")), "1.0");
        assert_eq!(shown(&value("0x10")), "16");
        assert_eq!(shown(&value("{a: b}")), "a: b");
        assert_eq!(shown(&value("[a]")), "- a");
        assert_eq!(shown_tagged(&value("!foo x/**")), "!foo x/**");
        assert_eq!(shown(&value("!foo 1.0")), "1.0");
    }

    #[test]
    fn matrix_values_become_the_json_serde_made() {
        let json = to_json(&value(
            "{n: 0123, b: 0b11, t: !foo x, 1: a, true: b, s: !!str 12}",
        ))
        .expect("json");
        assert_eq!(
            json,
            serde_json::json!({"n": "0123", "b": 3, "t": {"!foo": "x"}, "1": "a", "true": "b", "s": "12"})
        );
        assert_eq!(to_json(&value("{~: x}")), None);
    }

    #[test]
    fn core_tags_that_do_not_fit_and_huge_integers_are_refusals() {
        assert!(refusal(&value("!!int x")).is_some_and(|m| m.contains("expected an integer")));
        assert!(refusal(&value("99999999999999999999")).is_some_and(|m| m.contains("as u128")));
        assert_eq!(refusal(&value("12")), None);
    }
}
