//! Building the tree from saphyr-parser's events, within [`Limits`], with merge keys applied.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::tree::{Node, NodeKind, Span, Style};

/// A YAML syntax error, or a text refused before it is read whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// What the parser said, lowercase.
    pub message: String,
    /// Where.
    pub span: Span,
    /// Which rule refused the text, for callers that word the refusal their own way.
    pub kind: ErrorKind,
}

/// Which rule a [`SyntaxError`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not YAML (the parser's own error), or an alias to an unknown anchor.
    Invalid,
    /// Nested deeper than [`Limits::max_depth`] (or the scanner's own flow limit).
    Depth,
    /// More aliases than [`Limits::max_aliases`].
    Aliases,
    /// More nodes than [`Limits::max_nodes`], aliases expanded.
    Nodes,
    /// More scalar bytes than [`Limits::max_scalar_bytes`], aliases expanded.
    ScalarBytes,
    /// A merge key `<<` whose value is not a mapping or a list of mappings.
    Merge,
    /// A second document in the stream.
    SecondDocument,
}

/// How far a YAML text may nest and expand. A 1 KB text of nested aliases ("billion laughs")
/// expands to billions of nodes, and 200 KB of `[` nests 200,000 levels deep: both are
/// refused at the first node past a limit, before the memory or the stack is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of sequences and mappings, aliases expanded.
    pub max_depth: usize,
    /// Most alias uses (`*name`) in one document.
    pub max_aliases: usize,
    /// Most nodes in the expanded tree.
    pub max_nodes: usize,
    /// Most scalar bytes in the expanded tree.
    pub max_scalar_bytes: usize,
}

impl Limits {
    /// The limits every descriptor is parsed with (documented in the actions' READMEs).
    pub const DEFAULT: Limits = Limits {
        max_depth: crate::depth::MAX_DEPTH,
        max_aliases: 1_000,
        max_nodes: 100_000,
        max_scalar_bytes: 8 * 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parses the first document of `text`. An empty stream is a null node.
///
/// Anchors and aliases are expanded (an alias node keeps the anchor's spans), within
/// [`Limits::DEFAULT`]. A second document in the same stream is an error: a release is one
/// document.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_with_limits(text, Limits::DEFAULT)
}

/// [`parse`] with explicit limits.
pub fn parse_with_limits(text: &str, limits: Limits) -> Result<Node, SyntaxError> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        last_end: Span::default(),
        limits,
        aliases: 0,
        nodes: 0,
        scalar_bytes: 0,
    };
    builder.document()
}

/// The size of a subtree, kept with each anchor so an alias is charged without a walk.
#[derive(Debug, Clone, Copy, Default)]
struct Weight {
    nodes: usize,
    scalar_bytes: usize,
    /// Levels of nesting below (and including) the node; 0 for a scalar.
    height: usize,
}

struct Builder<'input> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    anchors: HashMap<usize, (Node, Weight)>,
    last_end: Span,
    limits: Limits,
    aliases: usize,
    nodes: usize,
    scalar_bytes: usize,
}

impl<'input> Builder<'input> {
    fn next(&mut self) -> Result<(Event<'input>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => {
                let span = Span::from_parser(span);
                self.last_end = span;
                Ok((event, span))
            }
            Some(Err(error)) => {
                let marker = *error.marker();
                let span = Span::from_parser(saphyr_parser::Span::empty(marker));
                // The scanner stops flow collections at 255 levels: a nesting refusal too.
                let kind = if error.info().contains("recursion limit") {
                    ErrorKind::Depth
                } else {
                    ErrorKind::Invalid
                };
                Err(SyntaxError {
                    message: format!("invalid YAML: {}", error.info()),
                    span,
                    kind,
                })
            }
            None => Err(SyntaxError {
                message: "invalid YAML: unexpected end of input".into(),
                span: self.last_end,
                kind: ErrorKind::Invalid,
            }),
        }
    }

    fn document(&mut self) -> Result<Node, SyntaxError> {
        let mut root = None;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) if root.is_some() => {
                    return Err(SyntaxError {
                        message: "expected one YAML document, found a second one".into(),
                        span,
                        kind: ErrorKind::SecondDocument,
                    });
                }
                Event::DocumentStart(_) => {
                    let (event, span) = self.next()?;
                    root = Some(self.node(event, span, 0)?.0);
                }
                Event::StreamEnd => {
                    return Ok(root.unwrap_or(Node {
                        kind: NodeKind::Scalar(String::new(), Style::Plain),
                        span,
                        tag: None,
                    }));
                }
                _ => {
                    return Err(SyntaxError {
                        message: "invalid YAML: unexpected event".into(),
                        span,
                        kind: ErrorKind::Invalid,
                    });
                }
            }
        }
    }

    /// Charges `weight` (a node or an expanded alias at `depth`) against the limits.
    fn charge(&mut self, weight: Weight, depth: usize, span: Span) -> Result<(), SyntaxError> {
        let limits = self.limits;
        let refuse = |message: String, kind: ErrorKind| {
            Err(SyntaxError {
                message,
                span,
                kind,
            })
        };
        if depth + weight.height > limits.max_depth {
            return refuse(
                format!("YAML nested more than {} levels deep", limits.max_depth),
                ErrorKind::Depth,
            );
        }
        self.nodes = self.nodes.saturating_add(weight.nodes);
        self.scalar_bytes = self.scalar_bytes.saturating_add(weight.scalar_bytes);
        if self.nodes > limits.max_nodes {
            return refuse(
                format!(
                    "YAML expands to more than {} nodes (aliases expanded); refusing an alias bomb",
                    limits.max_nodes
                ),
                ErrorKind::Nodes,
            );
        }
        if self.scalar_bytes > limits.max_scalar_bytes {
            return refuse(
                format!(
                    "YAML expands to more than {} bytes of text (aliases expanded); refusing an alias bomb",
                    limits.max_scalar_bytes
                ),
                ErrorKind::ScalarBytes,
            );
        }
        Ok(())
    }

    /// The node that starts with `event`, `depth` levels below the root, and its weight.
    fn node(
        &mut self,
        event: Event<'input>,
        span: Span,
        depth: usize,
    ) -> Result<(Node, Weight), SyntaxError> {
        let (node, weight, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    _ => Style::Quoted,
                };
                let weight = Weight {
                    nodes: 1,
                    scalar_bytes: text.len(),
                    height: 0,
                };
                self.charge(weight, depth, span)?;
                let node = Node {
                    kind: NodeKind::Scalar(text.into_owned(), style),
                    span,
                    tag: tag_text(tag.as_deref()),
                };
                (node, weight, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                let own = Weight {
                    nodes: 1,
                    scalar_bytes: 0,
                    height: 1,
                };
                self.charge(own, depth, span)?;
                let mut weight = own;
                let mut items = Vec::new();
                let mut end = span;
                loop {
                    let (event, span) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    let (item, item_weight) = self.node(event, span, depth + 1)?;
                    weight.add_child(item_weight);
                    end = item.span;
                    items.push(item);
                }
                let node = Node {
                    kind: NodeKind::Sequence(items),
                    span: Span {
                        start: span.start,
                        end: end.end.max(span.end),
                    },
                    tag: tag_text(tag.as_deref()),
                };
                (node, weight, anchor)
            }
            Event::MappingStart(anchor, tag) => {
                let own = Weight {
                    nodes: 1,
                    scalar_bytes: 0,
                    height: 1,
                };
                self.charge(own, depth, span)?;
                let mut weight = own;
                let mut entries: Vec<(Node, Node)> = Vec::new();
                let mut end = span;
                loop {
                    let (event, key_span) = self.next()?;
                    if event == Event::MappingEnd {
                        break;
                    }
                    let (key, key_weight) = self.node(event, key_span, depth + 1)?;
                    let (event, value_span) = self.next()?;
                    let (value, value_weight) = self.node(event, value_span, depth + 1)?;
                    weight.add_child(key_weight);
                    weight.add_child(value_weight);
                    end = value.span;
                    entries.push((key, value));
                }
                let entries = merge(entries)?;
                let node = Node {
                    kind: NodeKind::Mapping(entries),
                    span: Span {
                        start: span.start,
                        end: end.end.max(span.end),
                    },
                    tag: tag_text(tag.as_deref()),
                };
                (node, weight, anchor)
            }
            Event::Alias(id) => {
                let Some(weight) = self.anchors.get(&id).map(|(_, weight)| *weight) else {
                    return Err(SyntaxError {
                        message: "invalid YAML: alias to an unknown anchor".into(),
                        span,
                        kind: ErrorKind::Invalid,
                    });
                };
                self.aliases += 1;
                if self.aliases > self.limits.max_aliases {
                    return Err(SyntaxError {
                        message: format!(
                            "YAML uses more than {} aliases; refusing an alias bomb",
                            self.limits.max_aliases
                        ),
                        span,
                        kind: ErrorKind::Aliases,
                    });
                }
                // Charged before the copy is made: a refused alias allocates nothing.
                self.charge(weight, depth, span)?;
                let node = self.anchors.get(&id).map(|(node, _)| node.clone());
                return node.map(|node| (node, weight)).ok_or(SyntaxError {
                    message: "invalid YAML: alias to an unknown anchor".into(),
                    span,
                    kind: ErrorKind::Invalid,
                });
            }
            _ => {
                return Err(SyntaxError {
                    message: "invalid YAML: unexpected event".into(),
                    span,
                    kind: ErrorKind::Invalid,
                });
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        Ok((node, weight))
    }
}

/// Applies merge keys (`<<: *base`, `<<: [*a, *b]`, YAML 1.1's merge type, which YAML 1.2
/// parsers and serde_yaml_ng keep): keys written in the mapping win, then earlier merged
/// mappings over later ones; merged entries follow the written ones, with their own spans.
fn merge(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, SyntaxError> {
    let is_merge =
        |key: &Node| matches!(&key.kind, NodeKind::Scalar(text, Style::Plain) if text == "<<");
    if !entries.iter().any(|(key, _)| is_merge(key)) {
        return Ok(entries);
    }
    let mut written = Vec::with_capacity(entries.len());
    let mut sources = Vec::new();
    for (key, value) in entries {
        if !is_merge(&key) {
            written.push((key, value));
            continue;
        }
        let refuse = |span: Span| SyntaxError {
            message: "a merge key `<<` takes a mapping or a list of mappings".into(),
            span,
            kind: ErrorKind::Merge,
        };
        match value.kind {
            NodeKind::Mapping(merged) => sources.push(merged),
            NodeKind::Sequence(items) => {
                for item in items {
                    match item.kind {
                        NodeKind::Mapping(merged) => sources.push(merged),
                        _ => return Err(refuse(item.span)),
                    }
                }
            }
            NodeKind::Scalar(..) => return Err(refuse(value.span)),
        }
    }
    for (key, value) in sources.into_iter().flatten() {
        let name = crate::tree::key_text(&key);
        if !written
            .iter()
            .any(|(k, _)| crate::tree::key_text(k) == name)
        {
            written.push((key, value));
        }
    }
    Ok(written)
}

/// A tag as one string: handle and suffix joined.
fn tag_text(tag: Option<&saphyr_parser::Tag>) -> Option<String> {
    tag.map(|tag| format!("{}{}", tag.handle, tag.suffix))
}

impl Weight {
    fn add_child(&mut self, child: Weight) {
        self.nodes = self.nodes.saturating_add(child.nodes);
        self.scalar_bytes = self.scalar_bytes.saturating_add(child.scalar_bytes);
        self.height = self.height.max(child.height + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::key_text;

    fn mapping(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            NodeKind::Mapping(entries) => entries,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn nodes_carry_line_and_column() {
        let root = parse("a: 1\nb:\n  c: \"x y\"\n  d: [p, q]\n").expect("valid");
        let entries = mapping(&root);
        assert_eq!(entries[0].1.span.start.line, 1);
        assert_eq!(entries[0].1.span.start.column, 4);
        let inner = mapping(&entries[1].1);
        assert_eq!(inner[0].0.span.start.line, 3);
        assert_eq!(inner[0].0.span.start.column, 3);
        assert_eq!(inner[0].1.scalar_text(), Some("x y"));
        assert_eq!(inner[0].1.span.start.column, 6, "the quote starts the span");
    }

    #[test]
    fn core_schema_resolution_for_plain_scalars_only() {
        let root =
            parse("a: 1\nb: '1'\nc: true\nd: 1.5\ne: ~\nf: 0x1F\ng: 1.10.2\nh: yes\ni:\nj: 1e3\n")
                .expect("valid");
        let json = root.to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "a": 1, "b": "1", "c": true, "d": 1.5, "e": null, "f": 31,
                "g": "1.10.2", "h": "yes", "i": null, "j": 1000.0
            })
        );
    }

    #[test]
    fn tags_are_kept_as_written() {
        let root = parse("a: !!str 12\nb: !local [x]\nc: 12\n").expect("valid");
        let entries = mapping(&root);
        assert_eq!(entries[0].1.tag.as_deref(), Some("tag:yaml.org,2002:str"));
        assert_eq!(entries[1].1.tag.as_deref(), Some("!local"));
        assert_eq!(entries[2].1.tag, None);
    }

    #[test]
    fn refusals_say_which_rule_refused() {
        let kind =
            |text: &str, limits: Limits| parse_with_limits(text, limits).expect_err(text).kind;
        let small = Limits {
            max_depth: 2,
            max_aliases: 1,
            max_nodes: 8,
            max_scalar_bytes: 8,
        };
        assert_eq!(kind("a: [1, 2\n", small), ErrorKind::Invalid);
        assert_eq!(kind("a: [[1]]\n", small), ErrorKind::Depth);
        assert_eq!(kind("a: &a x\nb: *a\nc: *a\n", small), ErrorKind::Aliases);
        assert_eq!(
            kind("[1, 2, 3, 4, 5, 6, 7, 8, 9]\n", small),
            ErrorKind::Nodes
        );
        assert_eq!(kind("a: 123456789\n", small), ErrorKind::ScalarBytes);
        assert_eq!(kind("a:\n  <<: x\n", small), ErrorKind::Merge);
        assert_eq!(kind("a: 1\n---\nb: 2\n", small), ErrorKind::SecondDocument);
        let flow = format!("a: {}", "[".repeat(300));
        assert_eq!(kind(&flow, Limits::DEFAULT), ErrorKind::Depth);
    }

    #[test]
    fn refs_keep_the_text_as_written() {
        let root = parse("ref: 1.10\n").expect("valid");
        assert_eq!(mapping(&root)[0].1.scalar_text(), Some("1.10"));
    }

    #[test]
    fn aliases_expand_to_the_anchored_node() {
        let root = parse("a: &x {k: v}\nb: *x\n").expect("valid");
        assert_eq!(
            root.to_json(),
            serde_json::json!({"a": {"k": "v"}, "b": {"k": "v"}})
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let error = parse("a: [1, 2\nb: 3\n").expect_err("unclosed flow sequence");
        assert!(error.message.starts_with("invalid YAML"), "{error}");
        assert!(error.span.start.line >= 1);
    }

    #[test]
    fn a_second_document_is_an_error() {
        let error = parse("a: 1\n---\nb: 2\n").expect_err("two documents");
        assert_eq!(error.span.start.line, 2);
    }

    /// The classic "billion laughs": nine levels of ten aliases, 10^9 leaves from ~1 KB.
    pub(crate) fn billion_laughs() -> String {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let previous = format!("*a{}", level - 1);
            let list = [previous.as_str(); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() {
        let text = billion_laughs();
        assert!(text.len() < 1024, "{}", text.len());
        let started = std::time::Instant::now();
        let error = parse(&text).expect_err("alias bomb");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(error.message.contains("alias bomb"), "{error}");
        // a0..a3 expand to 12,344 nodes, a4 to 111,111: the limit (100,000) falls in a4.
        assert_eq!(error.span.start.line, 5, "{error:?}");
    }

    #[test]
    fn alias_count_and_expanded_text_are_limited_too() {
        let limits = Limits {
            max_aliases: 3,
            ..Limits::DEFAULT
        };
        let text = "a: &x v\nb: [*x, *x, *x]\nc: *x\n";
        let error = parse_with_limits(text, limits).expect_err("four aliases");
        assert!(error.message.contains("more than 3 aliases"), "{error}");
        assert_eq!(error.span.start.line, 3);
        let big = "x".repeat(1024 * 1024);
        let text = format!("a: &x {big}\nb: [{}]\n", ["*x"; 8].join(", "));
        let error = parse(&text).expect_err("8 MiB of text through aliases");
        assert!(error.message.contains("bytes of text"), "{error}");
    }

    #[test]
    fn deep_nesting_is_refused_at_once() {
        // Flow collections: the scanner itself stops at 255 levels.
        let text = "[".repeat(200 * 1024);
        let started = std::time::Instant::now();
        let error = parse(&text).expect_err("too deep");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(error.span.start.line, 1, "{error:?}");
        // Block collections have no such limit in the scanner: ours stops them (without it,
        // the tree builder recursed once per level and overflowed the stack).
        let text = "- ".repeat(100_000) + "x\n";
        let started = std::time::Instant::now();
        let error = parse(&text).expect_err("too deep");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert!(error.message.contains("more than 64 levels"), "{error}");
        assert_eq!(
            (error.span.start.line, error.span.start.column),
            (1, 129),
            "{error:?}"
        );
        let nested = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(parse(&nested).is_ok(), "64 levels are fine");
        // Depth counts through aliases as well.
        let text = format!("a: &x {}{}\nb: [[*x]]\n", "[".repeat(62), "]".repeat(62));
        let error = parse(&text).expect_err("62 + 1 + 2 levels");
        assert_eq!(error.span.start.line, 2, "{error:?}");
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_does_not_write() {
        let text = "a: &a {x: 1, y: 2}\nb: &b {y: 3, z: 4}\nc:\n  <<: [*a, *b]\n  x: 0\n";
        let root = parse(text).expect("valid");
        assert_eq!(
            root.to_json()["c"],
            serde_json::json!({"x": 0, "y": 2, "z": 4})
        );
        let c = &mapping(&root)[2].1;
        let z = mapping(c)
            .iter()
            .find(|(k, _)| key_text(k) == "z")
            .expect("z");
        assert_eq!(
            z.1.span.start.line, 2,
            "a merged value keeps its own position"
        );
        let quoted = parse("a: {'<<': {x: 1}}\n").expect("valid");
        assert_eq!(quoted.to_json(), serde_json::json!({"a": {"<<": {"x": 1}}}));
        let error = parse("a:\n  <<: 5\n").expect_err("not a mapping");
        assert_eq!(
            (
                error.message.as_str(),
                error.span.start.line,
                error.span.start.column
            ),
            (
                "a merge key `<<` takes a mapping or a list of mappings",
                2,
                7
            )
        );
    }

    #[test]
    fn empty_input_is_null() {
        assert!(parse("").expect("valid").is_null());
        assert!(parse("# only a comment\n").expect("valid").is_null());
    }
}
