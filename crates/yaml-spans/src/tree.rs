//! The spanned tree: positions, nodes, and core-schema resolution of plain scalars.

/// A position in the source: 1-based line and column (in characters), and the char offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// 0-based offset in characters.
    pub offset: usize,
}

/// A range of the source, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First character.
    pub start: Position,
    /// One past the last character.
    pub end: Position,
}

impl Span {
    pub(crate) fn from_parser(span: saphyr_parser::Span) -> Self {
        let position = |marker: saphyr_parser::Marker| Position {
            line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
            column: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
            offset: marker.index(),
        };
        Self {
            start: position(span.start),
            end: position(span.end),
        }
    }
}

/// How a scalar was written; quoted and block scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted: resolved with the YAML 1.2 core schema (null, bool, int, float, string).
    Plain,
    /// Quoted or block scalar: a string.
    Quoted,
}

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar as written, with its style.
    Scalar(String, Style),
    /// A sequence.
    Sequence(Vec<Node>),
    /// A mapping, in source order: (key, value).
    Mapping(Vec<(Node, Node)>),
}

/// A node and its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub kind: NodeKind,
    /// Where it is.
    pub span: Span,
    /// The tag as written, handle and suffix joined (`tag:yaml.org,2002:str` for `!!str`,
    /// `!local` for `!local`); `None` without one. Resolution ignores it: callers that give
    /// tags a meaning (change-detect, which reads tags as serde_yaml_ng did) look at it.
    pub tag: Option<String>,
}

/// A core-schema scalar resolved from a plain scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<'a> {
    /// `~`, `null`, `Null`, `NULL` or nothing.
    Null,
    /// `true`/`false` in the three spellings.
    Bool(bool),
    /// An integer (decimal, `0o` octal, `0x` hex).
    Int(i64),
    /// A float, including `.inf` and `.nan`.
    Float(f64),
    /// Anything else.
    String(&'a str),
}

impl Node {
    /// A short name of the node's type for messages: `a string`, `a mapping`, ...
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(..) => match self.resolve() {
                Some(Resolved::Null) => "null",
                Some(Resolved::Bool(_)) => "a boolean",
                Some(Resolved::Int(_)) => "an integer",
                Some(Resolved::Float(_)) => "a number",
                Some(Resolved::String(_)) | None => "a string",
            },
            NodeKind::Sequence(_) => "a list",
            NodeKind::Mapping(_) => "a mapping",
        }
    }

    /// The scalar resolved by the YAML 1.2 core schema; `None` for collections.
    pub fn resolve(&self) -> Option<Resolved<'_>> {
        let NodeKind::Scalar(text, style) = &self.kind else {
            return None;
        };
        if *style == Style::Quoted {
            return Some(Resolved::String(text));
        }
        Some(resolve_plain(text))
    }

    /// True for a plain empty scalar or `null`/`~`.
    pub fn is_null(&self) -> bool {
        matches!(self.resolve(), Some(Resolved::Null))
    }

    /// The scalar text as written (any style), `None` for collections and null.
    ///
    /// Fields such as refs take the text literally: `ref: 1.10` is the tag `1.10`, not a float.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(text, _) if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// The node as JSON (props are carried into the runtime descriptor).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            NodeKind::Scalar(..) => match self.resolve() {
                Some(Resolved::Null) | None => serde_json::Value::Null,
                Some(Resolved::Bool(b)) => serde_json::Value::Bool(b),
                Some(Resolved::Int(i)) => serde_json::Value::from(i),
                Some(Resolved::Float(f)) => serde_json::Number::from_f64(f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                Some(Resolved::String(s)) => serde_json::Value::String(s.to_owned()),
            },
            NodeKind::Sequence(items) => items.iter().map(Node::to_json).collect(),
            NodeKind::Mapping(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key_text(key), value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// The text of a mapping key (collections as keys are shown as written type).
pub fn key_text(key: &Node) -> String {
    match &key.kind {
        NodeKind::Scalar(text, _) => text.clone(),
        _ => format!("<{}>", key.type_name()),
    }
}

fn resolve_plain(text: &str) -> Resolved<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    if let Some(octal) = text.strip_prefix("0o") {
        if !octal.is_empty() && octal.chars().all(|c| c.is_digit(8)) {
            if let Ok(value) = i64::from_str_radix(octal, 8) {
                return Resolved::Int(value);
            }
        }
        return Resolved::String(text);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            if let Ok(value) = i64::from_str_radix(hex, 16) {
                return Resolved::Int(value);
            }
        }
        return Resolved::String(text);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(value) = text.parse::<i64>() {
            return Resolved::Int(value);
        }
    }
    if is_core_float(text) {
        if let Ok(value) = text.parse::<f64>() {
            return Resolved::Float(value);
        }
    }
    Resolved::String(text)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            int.chars().all(|c| c.is_ascii_digit())
                && frac.chars().all(|c| c.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}
