//! Finding a node by its dotted field path (`checks[1].metrics.rules[0].metric.stat`), for
//! errors found after the tree became a typed model (serde, or validation).

use crate::tree::{Node, NodeKind, key_text};

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(index) = index.parse() {
                out.push(Segment::Index(index));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    out
}

impl Node {
    /// The node at `path`, or the deepest part of it that exists (a missing key gives the
    /// mapping that lacks it).
    pub fn locate(&self, path: &str) -> &Node {
        let mut node = self;
        for segment in segments(path) {
            let next = match (segment, &node.kind) {
                (Segment::Key(key), NodeKind::Mapping(entries)) => entries
                    .iter()
                    .find(|(k, _)| key_text(k) == key)
                    .map(|(_, v)| v),
                (Segment::Index(index), NodeKind::Sequence(items)) => items.get(index),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }
}

#[cfg(test)]
mod tests {
    const FILE: &str = "checks:\n  - name: a\n    http: { url: \"ftp://x\" }\n  - name: b\n    metrics:\n      cloudwatch: { period: 90s }\n      rules:\n        - metric:\n            stat: p101\n";

    fn at(path: &str) -> (u32, u32) {
        let root = crate::parse(FILE).expect("valid");
        let span = root.locate(path).span;
        (span.start.line, span.start.column)
    }

    #[test]
    fn finds_values_in_block_and_flow_style() {
        assert_eq!(at("checks[0].http.url"), (3, 18));
        assert_eq!(at("checks[1].metrics.cloudwatch.period"), (6, 29));
        assert_eq!(at("checks[1].metrics.rules[0].metric.stat"), (9, 19));
    }

    #[test]
    fn a_missing_part_points_at_what_lacks_it() {
        assert_eq!(at("checks[1].metrics.rules[0].metric.namespace"), (9, 13));
        assert_eq!(at("checks[7]"), (2, 3));
    }

    #[test]
    fn merged_keys_are_found_where_they_are_written() {
        let root = crate::parse("base: &b\n  port: 80\nweb:\n  <<: *b\n  host: x\n").expect("ok");
        assert_eq!(root.locate("web.port").span.start.line, 2);
        assert_eq!(root.locate("web.host").span.start.line, 5);
    }
}
