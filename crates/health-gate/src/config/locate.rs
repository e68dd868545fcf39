//! Where a field path (`checks[1].metrics.rules[0].metric.stat`) is in the gate file's text,
//! so that validation errors carry a line and column like parse errors do.

use saphyr_parser::{Event, Parser};

enum Node {
    Map(Vec<(String, (usize, usize), Node)>, (usize, usize)),
    Seq(Vec<Node>, (usize, usize)),
    Leaf((usize, usize)),
}

impl Node {
    fn at(&self) -> (usize, usize) {
        match self {
            Node::Map(_, at) | Node::Seq(_, at) | Node::Leaf(at) => *at,
        }
    }
}

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

/// Events of the document, read once; the gate file is bounded (1 MiB, 64 levels) before this.
struct Events<'a> {
    events: Vec<(Event<'a>, (usize, usize))>,
    next: usize,
}

impl Events<'_> {
    fn take(&mut self) -> Option<&(Event<'_>, (usize, usize))> {
        let event = self.events.get(self.next)?;
        self.next += 1;
        Some(event)
    }

    fn node(&mut self) -> Option<Node> {
        let (event, at) = self.take()?;
        let at = *at;
        Some(match event {
            Event::MappingStart(..) => {
                let mut entries = Vec::new();
                loop {
                    let (key, key_at) = match self.events.get(self.next)? {
                        (Event::MappingEnd, _) => {
                            self.next += 1;
                            break;
                        }
                        (Event::Scalar(text, ..), key_at) => {
                            let key = (text.to_string(), *key_at);
                            self.next += 1;
                            key
                        }
                        // A complex key: read it as a node and ignore it.
                        (_, key_at) => {
                            let key_at = *key_at;
                            self.node()?;
                            (String::new(), key_at)
                        }
                    };
                    let value = self.node()?;
                    entries.push((key, key_at, value));
                }
                Node::Map(entries, at)
            }
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                loop {
                    if let (Event::SequenceEnd, _) = self.events.get(self.next)? {
                        self.next += 1;
                        break;
                    }
                    items.push(self.node()?);
                }
                Node::Seq(items, at)
            }
            _ => Node::Leaf(at),
        })
    }
}

/// 1-based line and column of the value at `path`, or of the deepest part of it that is in
/// the file (a missing key points at the mapping that lacks it); `None` for text that does not
/// parse or paths outside the file.
pub(crate) fn locate(text: &str, path: &str) -> Option<(u32, u32)> {
    let mut events = Vec::new();
    for next in Parser::new_from_str(text) {
        let (event, span) = next.ok()?;
        if !matches!(
            event,
            Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(_)
                | Event::DocumentEnd
                | Event::Nothing
        ) {
            events.push((event, (span.start.line(), span.start.col() + 1)));
        }
    }
    let root = Events { events, next: 0 }.node()?;
    let mut node = &root;
    let mut found = None;
    for segment in segments(path) {
        let next = match (segment, node) {
            (Segment::Key(key), Node::Map(entries, _)) => {
                entries.iter().find(|(k, ..)| k == key).map(|(_, _, v)| v)
            }
            (Segment::Index(index), Node::Seq(items, _)) => items.get(index),
            _ => None,
        };
        match next {
            Some(next) => {
                node = next;
                found = Some(next.at());
            }
            None => {
                found = Some(node.at());
                break;
            }
        }
    }
    let number = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    found.map(|(line, col)| (number(line), number(col)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "checks:\n  - name: a\n    http: { url: \"ftp://x\" }\n  - name: b\n    metrics:\n      cloudwatch: { period: 90s }\n      rules:\n        - metric:\n            stat: p101\n";

    #[test]
    fn finds_values_in_block_and_flow_style() {
        assert_eq!(locate(FILE, "checks[0].http.url"), Some((3, 18)));
        assert_eq!(
            locate(FILE, "checks[1].metrics.cloudwatch.period"),
            Some((6, 29))
        );
        assert_eq!(
            locate(FILE, "checks[1].metrics.rules[0].metric.stat"),
            Some((9, 19))
        );
    }

    #[test]
    fn a_missing_part_points_at_what_lacks_it() {
        // `checks[1].metrics.rules[0].metric` has no `namespace`: the mapping is shown.
        assert_eq!(
            locate(FILE, "checks[1].metrics.rules[0].metric.namespace"),
            Some((9, 13))
        );
        assert_eq!(locate(FILE, "checks[7]"), Some((2, 3)));
        assert_eq!(locate("", "checks"), None);
    }
}
