//! The JavaScript regular expressions picomatch produces, read as JavaScript reads them
//! (no flags: not Unicode-aware, `.` stops at line terminators, Annex B leniency), and made
//! usable from Rust in two ways:
//!
//! - [`Node::to_rust`]: a `regex` pattern over *mapped* paths ([`map_path`]), exact for every
//!   path git can list that holds no line terminator. It drops picomatch's `dot` lookaheads,
//!   which only ever reject `.` and `..` path segments (git never lists those), and its
//!   "one more character" lookahead `(?=.)`, which only matters at the end of a path after a
//!   `.` (it is then kept by requiring one more character) or before a line terminator.
//! - [`Node::matches`]: a small backtracking interpreter with JavaScript's semantics,
//!   lookaheads included, used for paths holding `\n`, `\r`, U+2028 or U+2029.
//!
//! JavaScript strings are UTF-16: `?` and `[…]` match one code unit, so an emoji takes two.
//! [`map_path`] gives every code unit its own Rust `char` (surrogates move to plane 15, which
//! paths then never contain), so the Rust regex counts code units too.

use crate::lookaheads::DOT_LOOKAHEADS;

/// A parsed regular expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Matches the empty string.
    Empty,
    /// One code unit.
    Unit(u16),
    /// A class of code units (inclusive ranges).
    Class {
        /// The ranges.
        ranges: Vec<(u16, u16)>,
        /// `[^…]`.
        negated: bool,
    },
    /// `.`: any code unit but a line terminator.
    Any,
    /// `^`.
    Start,
    /// `$`.
    End,
    /// A sequence.
    Concat(Vec<Node>),
    /// `a|b`.
    Alternation(Vec<Node>),
    /// `x*`, `x{1,2}?`, …
    Repeat {
        /// What repeats.
        node: Box<Node>,
        /// At least.
        min: u32,
        /// At most (`None`: no limit).
        max: Option<u32>,
        /// Greedy or lazy (only matters to the interpreter's order; results are the same).
        greedy: bool,
    },
    /// `(?=…)` or `(?!…)`.
    Lookahead {
        /// `(?!…)`.
        negative: bool,
        /// The inside.
        node: Box<Node>,
        /// The inside as written, to recognise picomatch's own lookaheads.
        text: Vec<u16>,
    },
}

/// Why a regex cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    /// JavaScript would reject it too (picomatch then matches nothing).
    #[error("it compiles to an invalid regular expression ({0})")]
    Invalid(&'static str),
    /// Valid JavaScript that change-detect does not emulate.
    #[error("it compiles to a regular expression using {0}, which change-detect does not emulate")]
    Unsupported(&'static str),
}

/// JavaScript's line terminators: `.` never matches them.
pub fn is_line_terminator(unit: u16) -> bool {
    matches!(unit, 0x0A | 0x0D | 0x2028 | 0x2029)
}

/// True when JavaScript accepts `source` as a regular expression.
pub fn is_valid(source: &[u16]) -> bool {
    !matches!(parse(source), Err(RegexError::Invalid(_)))
}

const MAX_REPEAT: u32 = 1000;

struct Reader<'a> {
    source: &'a [u16],
    at: usize,
}

fn c(byte: u8) -> u16 {
    u16::from(byte)
}

/// Parses a regex source.
pub fn parse(source: &[u16]) -> Result<Node, RegexError> {
    let mut reader = Reader { source, at: 0 };
    let node = reader.disjunction(0)?;
    if reader.at != source.len() {
        return Err(RegexError::Invalid("unmatched `)`"));
    }
    Ok(node)
}

impl Reader<'_> {
    fn peek(&self) -> Option<u16> {
        self.source.get(self.at).copied()
    }
    fn peek_at(&self, offset: usize) -> Option<u16> {
        self.source.get(self.at + offset).copied()
    }
    fn eat(&mut self, unit: u8) -> bool {
        if self.peek() == Some(c(unit)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn disjunction(&mut self, depth: usize) -> Result<Node, RegexError> {
        if depth > 200 {
            return Err(RegexError::Unsupported("groups nested more than 200 deep"));
        }
        let mut branches = vec![self.alternative(depth)?];
        while self.eat(b'|') {
            branches.push(self.alternative(depth)?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alternation(branches)
        })
    }

    fn alternative(&mut self, depth: usize) -> Result<Node, RegexError> {
        let mut items = Vec::new();
        while let Some(unit) = self.peek() {
            if unit == c(b'|') || unit == c(b')') {
                break;
            }
            let (atom, quantifiable) = self.term(depth)?;
            if let Some((min, max, greedy)) = self.quantifier()? {
                if !quantifiable {
                    return Err(RegexError::Invalid("nothing to repeat"));
                }
                items.push(Node::Repeat {
                    node: Box::new(atom),
                    min,
                    max,
                    greedy,
                });
            } else {
                items.push(atom);
            }
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// `{n}`, `{n,}`, `{n,m}` at the current position, without consuming.
    fn braced_quantifier(&self) -> Option<(u32, Option<u32>, usize)> {
        let rest = &self.source[self.at..];
        if rest.first() != Some(&c(b'{')) {
            return None;
        }
        let digits = |from: usize| {
            let count = rest[from..]
                .iter()
                .take_while(|u| (c(b'0')..=c(b'9')).contains(u))
                .count();
            let value = rest[from..from + count].iter().fold(0u64, |v, u| {
                (v * 10 + u64::from(*u - c(b'0'))).min(u64::from(u32::MAX))
            });
            (count, value as u32)
        };
        let (count, min) = digits(1);
        if count == 0 {
            return None;
        }
        let mut at = 1 + count;
        let max = if rest.get(at) == Some(&c(b',')) {
            at += 1;
            let (count, max) = digits(at);
            at += count;
            (count > 0).then_some(max)
        } else {
            Some(min)
        };
        (rest.get(at) == Some(&c(b'}'))).then_some((min, max, at + 1))
    }

    fn quantifier(&mut self) -> Result<Option<(u32, Option<u32>, bool)>, RegexError> {
        let (min, max) = match self.peek() {
            Some(u) if u == c(b'*') => {
                self.at += 1;
                (0, None)
            }
            Some(u) if u == c(b'+') => {
                self.at += 1;
                (1, None)
            }
            Some(u) if u == c(b'?') => {
                self.at += 1;
                (0, Some(1))
            }
            Some(u) if u == c(b'{') => match self.braced_quantifier() {
                Some((min, max, length)) => {
                    self.at += length;
                    if max.is_some_and(|max| max < min) {
                        return Err(RegexError::Invalid("numbers out of order in {} quantifier"));
                    }
                    (min, max)
                }
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(RegexError::Unsupported("a repetition count over 1000"));
        }
        let greedy = !self.eat(b'?');
        Ok(Some((min, max, greedy)))
    }

    /// One term and whether a quantifier may follow it.
    fn term(&mut self, depth: usize) -> Result<(Node, bool), RegexError> {
        let Some(unit) = self.peek() else {
            return Err(RegexError::Invalid("unexpected end"));
        };
        self.at += 1;
        let node = match unit {
            u if u == c(b'^') => return Ok((Node::Start, false)),
            u if u == c(b'$') => return Ok((Node::End, false)),
            u if u == c(b'.') => Node::Any,
            u if u == c(b'*') || u == c(b'+') || u == c(b'?') => {
                return Err(RegexError::Invalid("nothing to repeat"));
            }
            u if u == c(b'{') => {
                self.at -= 1;
                if self.braced_quantifier().is_some() {
                    return Err(RegexError::Invalid("nothing to repeat"));
                }
                self.at += 1;
                Node::Unit(u)
            }
            u if u == c(b'(') => {
                if self.eat(b'?') {
                    if self.eat(b':') {
                        let inner = self.disjunction(depth + 1)?;
                        self.close()?;
                        inner
                    } else if self.eat(b'=') || self.eat(b'!') {
                        let negative = self.source[self.at - 1] == c(b'!');
                        let start = self.at;
                        let inner = self.disjunction(depth + 1)?;
                        let text = self.source[start..self.at].to_vec();
                        self.close()?;
                        // Annex B lets a lookahead be quantified; nobody writes that.
                        return Ok((
                            Node::Lookahead {
                                negative,
                                node: Box::new(inner),
                                text,
                            },
                            false,
                        ));
                    } else if self.peek() == Some(c(b'<')) {
                        return Err(RegexError::Unsupported("lookbehind or named groups"));
                    } else {
                        return Err(RegexError::Invalid("invalid group"));
                    }
                } else {
                    let inner = self.disjunction(depth + 1)?;
                    self.close()?;
                    inner
                }
            }
            u if u == c(b'[') => self.class()?,
            u if u == c(b'\\') => self.escape(false)?,
            u => Node::Unit(u),
        };
        Ok((node, true))
    }

    fn close(&mut self) -> Result<(), RegexError> {
        if self.eat(b')') {
            Ok(())
        } else {
            Err(RegexError::Invalid("unterminated group"))
        }
    }

    /// After a `\`, outside (`in_class` false) or inside a class.
    fn escape(&mut self, in_class: bool) -> Result<Node, RegexError> {
        let Some(unit) = self.peek() else {
            return Err(RegexError::Invalid("\\ at end of pattern"));
        };
        self.at += 1;
        let class = |ranges: Vec<(u16, u16)>, negated| Node::Class { ranges, negated };
        let digit = vec![(c(b'0'), c(b'9'))];
        let word = vec![
            (c(b'0'), c(b'9')),
            (c(b'A'), c(b'Z')),
            (c(b'_'), c(b'_')),
            (c(b'a'), c(b'z')),
        ];
        let space = vec![
            (0x09, 0x0D),
            (0x20, 0x20),
            (0xA0, 0xA0),
            (0x1680, 0x1680),
            (0x2000, 0x200A),
            (0x2028, 0x2029),
            (0x202F, 0x202F),
            (0x205F, 0x205F),
            (0x3000, 0x3000),
            (0xFEFF, 0xFEFF),
        ];
        let hex = |reader: &mut Reader<'_>, count: usize| -> Option<u16> {
            let digits = reader.source.get(reader.at..reader.at + count)?;
            let text = String::from_utf16(digits).ok()?;
            let value = u16::from_str_radix(&text, 16).ok()?;
            if !text.chars().all(|ch| ch.is_ascii_hexdigit()) {
                return None;
            }
            reader.at += count;
            Some(value)
        };
        Ok(match unit {
            u if u == c(b'd') => class(digit, false),
            u if u == c(b'D') => class(digit, true),
            u if u == c(b'w') => class(word, false),
            u if u == c(b'W') => class(word, true),
            u if u == c(b's') => class(space, false),
            u if u == c(b'S') => class(space, true),
            u if u == c(b'n') => Node::Unit(0x0A),
            u if u == c(b'r') => Node::Unit(0x0D),
            u if u == c(b't') => Node::Unit(0x09),
            u if u == c(b'v') => Node::Unit(0x0B),
            u if u == c(b'f') => Node::Unit(0x0C),
            u if u == c(b'b') && in_class => Node::Unit(0x08),
            u if u == c(b'b') || u == c(b'B') => {
                return Err(RegexError::Unsupported("a word boundary `\\b`"));
            }
            u if u == c(b'0')
                && !self
                    .peek()
                    .is_some_and(|n| (c(b'0')..=c(b'9')).contains(&n)) =>
            {
                Node::Unit(0)
            }
            u if (c(b'0')..=c(b'9')).contains(&u) => {
                return Err(RegexError::Unsupported("a back-reference or octal escape"));
            }
            u if u == c(b'c') => return Err(RegexError::Unsupported("a control escape `\\c`")),
            u if u == c(b'x') => hex(self, 2).map_or(Node::Unit(u), Node::Unit),
            u if u == c(b'u') => hex(self, 4).map_or(Node::Unit(u), Node::Unit),
            u if u == c(b'k') || u == c(b'p') || u == c(b'P') => {
                return Err(RegexError::Unsupported("a `\\k`/`\\p` escape"));
            }
            u => Node::Unit(u),
        })
    }

    fn class(&mut self) -> Result<Node, RegexError> {
        let negated = self.eat(b'^');
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        // Members that are classes themselves (`\d`) or negated classes (`\D`).
        let mut complements: Vec<Vec<(u16, u16)>> = Vec::new();
        loop {
            let Some(unit) = self.peek() else {
                return Err(RegexError::Invalid("unterminated character class"));
            };
            if unit == c(b']') {
                self.at += 1;
                break;
            }
            let start = self.class_atom()?;
            let is_range =
                self.peek() == Some(c(b'-')) && self.peek_at(1).is_some_and(|u| u != c(b']'));
            if is_range {
                self.at += 1;
                let end = self.class_atom()?;
                match (start, end) {
                    (ClassAtom::Unit(a), ClassAtom::Unit(b)) => {
                        if a > b {
                            return Err(RegexError::Invalid(
                                "range out of order in character class",
                            ));
                        }
                        ranges.push((a, b));
                    }
                    // Annex B: a class escape at either end makes the `-` literal.
                    (a, b) => {
                        for atom in [a, ClassAtom::Unit(c(b'-')), b] {
                            atom.add(&mut ranges, &mut complements);
                        }
                    }
                }
            } else {
                start.add(&mut ranges, &mut complements);
            }
        }
        for complement in complements {
            ranges.extend(invert(&complement));
        }
        Ok(Node::Class {
            ranges: normalise(ranges),
            negated,
        })
    }

    fn class_atom(&mut self) -> Result<ClassAtom, RegexError> {
        let Some(unit) = self.peek() else {
            return Err(RegexError::Invalid("unterminated character class"));
        };
        self.at += 1;
        if unit != c(b'\\') {
            return Ok(ClassAtom::Unit(unit));
        }
        if self.peek() == Some(c(b'-')) {
            self.at += 1;
            return Ok(ClassAtom::Unit(c(b'-')));
        }
        Ok(match self.escape(true)? {
            Node::Unit(unit) => ClassAtom::Unit(unit),
            Node::Class { ranges, negated } => ClassAtom::Class(ranges, negated),
            _ => return Err(RegexError::Unsupported("this escape inside a class")),
        })
    }
}

enum ClassAtom {
    Unit(u16),
    Class(Vec<(u16, u16)>, bool),
}

impl ClassAtom {
    fn add(self, ranges: &mut Vec<(u16, u16)>, complements: &mut Vec<Vec<(u16, u16)>>) {
        match self {
            ClassAtom::Unit(unit) => ranges.push((unit, unit)),
            ClassAtom::Class(class, false) => ranges.extend(class),
            ClassAtom::Class(class, true) => complements.push(class),
        }
    }
}

fn normalise(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn invert(ranges: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut next = 0u32;
    for &(a, b) in &normalise(ranges.to_vec()) {
        if u32::from(a) > next {
            out.push((next as u16, a - 1));
        }
        next = u32::from(b) + 1;
    }
    if next <= 0xFFFF {
        out.push((next as u16, 0xFFFF));
    }
    out
}

/// The `char` a code unit is mapped to: itself, or plane 15 for a surrogate.
fn mapped(unit: u16) -> char {
    if (0xD800..=0xDFFF).contains(&unit) {
        char::from_u32(0xF0000 + u32::from(unit - 0xD800)).unwrap_or('\u{FFFD}')
    } else {
        char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}')
    }
}

/// A byte class that matches nothing (in `(?-u)` mode).
const NOTHING_ASCII: &str = "[^\\x00-\\xFF]";

fn push_char(out: &mut String, ch: char) {
    if ch.is_ascii_alphanumeric() || ch == '/' || ch == '_' {
        out.push(ch);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", ch as u32));
    }
}

fn push_range(out: &mut String, a: u16, b: u16) {
    // Split around the surrogates, which map elsewhere.
    let parts = [
        (u32::from(a), u32::from(b).min(0xD7FF)),
        (u32::from(a).max(0xD800), u32::from(b).min(0xDFFF)),
        (u32::from(a).max(0xE000), u32::from(b)),
    ];
    for (low, high) in parts {
        if low > high {
            continue;
        }
        let (low, high) = (mapped(low as u16), mapped(high as u16));
        out.push_str(&format!("\\x{{{:X}}}-\\x{{{:X}}}", low as u32, high as u32));
    }
}

/// The path as the Rust regexes see it: UTF-8 as JavaScript would decode it (invalid bytes
/// become U+FFFD) with every UTF-16 code unit its own `char`. Borrowed when that is the path
/// itself (valid UTF-8 without characters beyond U+FFFF: nearly always).
pub fn map_path(path: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if path.is_ascii() {
        return std::borrow::Cow::Borrowed(path);
    }
    match std::str::from_utf8(path) {
        Ok(text) if !path.iter().any(|b| *b >= 0xF0) => {
            let _ = text;
            std::borrow::Cow::Borrowed(path)
        }
        _ => {
            let text = String::from_utf8_lossy(path);
            let mapped: String = text.encode_utf16().map(mapped).collect();
            std::borrow::Cow::Owned(mapped.into_bytes())
        }
    }
}

/// The path as JavaScript sees it: UTF-16 code units.
pub fn path_units(path: &[u8]) -> Vec<u16> {
    String::from_utf8_lossy(path).encode_utf16().collect()
}

/// True when the path holds a line terminator (JavaScript's `.` stops there).
pub fn has_line_terminator(path: &[u8]) -> bool {
    path.iter().any(|b| *b == b'\n' || *b == b'\r')
        || path
            .windows(3)
            .any(|w| w == "\u{2028}".as_bytes() || w == "\u{2029}".as_bytes())
}

impl Node {
    /// The Rust `regex` pattern for mapped paths ([`map_path`]); see the module comment for
    /// when it is exact.
    pub fn to_rust(&self) -> Result<String, RegexError> {
        let mut out = String::new();
        self.write_rust(&mut out, false)?;
        Ok(out)
    }

    /// The same for ASCII paths only, as a byte regex (`(?-u)`): its automaton is a fraction
    /// of the Unicode one's, quicker to build and to run, and on ASCII it answers the same
    /// (what only matches other characters becomes a class that matches nothing).
    pub fn to_rust_ascii(&self) -> Result<String, RegexError> {
        let mut out = String::from("(?-u)");
        self.write_rust(&mut out, true)?;
        Ok(out)
    }

    fn write_rust(&self, out: &mut String, ascii: bool) -> Result<(), RegexError> {
        match self {
            Node::Empty => {}
            Node::Unit(unit) if ascii && *unit >= 0x80 => out.push_str(NOTHING_ASCII),
            Node::Unit(unit) => push_char(out, mapped(*unit)),
            Node::Class { ranges, negated } if ascii => {
                let ranges: Vec<(u16, u16)> = ranges
                    .iter()
                    .filter(|(a, _)| *a < 0x80)
                    .map(|(a, b)| (*a, (*b).min(0x7F)))
                    .collect();
                match (ranges.is_empty(), negated) {
                    (true, false) => out.push_str(NOTHING_ASCII),
                    (true, true) => out.push_str("[\\x00-\\x7F]"),
                    (false, _) => {
                        out.push_str(if *negated { "[^" } else { "[" });
                        for (a, b) in ranges {
                            out.push_str(&format!("\\x{a:02X}-\\x{b:02X}"));
                        }
                        out.push(']');
                    }
                }
            }
            Node::Class { ranges, negated } => {
                if ranges.is_empty() {
                    // `[]` matches nothing, `[^]` anything.
                    out.push_str(if *negated {
                        "[\\x{0}-\\x{10FFFF}]"
                    } else {
                        "[^\\x{0}-\\x{10FFFF}]"
                    });
                } else {
                    out.push_str(if *negated { "[^" } else { "[" });
                    for (a, b) in ranges {
                        push_range(out, *a, *b);
                    }
                    out.push(']');
                }
            }
            Node::Any if ascii => out.push_str("[^\\n\\r]"),
            Node::Any => out.push_str("[^\\n\\r\\x{2028}\\x{2029}]"),
            Node::Start => out.push('^'),
            Node::End => out.push('$'),
            Node::Concat(items) => {
                let one_char: Vec<u16> = ".".encode_utf16().collect();
                let mut bump = false;
                for (index, item) in items.iter().enumerate() {
                    match item {
                        Node::Lookahead {
                            text,
                            negative: false,
                            ..
                        } if *text == one_char => {
                            // `(?=.)`: after a literal `.`, the star that follows must take
                            // at least one character (`*.*` does not match `a.`).
                            bump = index > 0 && items[index - 1] == Node::Unit(0x2E);
                        }
                        Node::Repeat {
                            node,
                            min: 0,
                            max,
                            greedy,
                        } if bump => {
                            bump = false;
                            Node::Repeat {
                                node: node.clone(),
                                min: 1,
                                max: *max,
                                greedy: *greedy,
                            }
                            .write_rust(out, ascii)?;
                        }
                        _ => {
                            bump = false;
                            item.write_rust(out, ascii)?;
                        }
                    }
                }
            }
            Node::Alternation(branches) => {
                out.push_str("(?:");
                for (index, branch) in branches.iter().enumerate() {
                    if index > 0 {
                        out.push('|');
                    }
                    branch.write_rust(out, ascii)?;
                }
                out.push(')');
            }
            Node::Repeat { node, min, max, .. } => {
                out.push_str("(?:");
                node.write_rust(out, ascii)?;
                out.push(')');
                match max {
                    Some(max) => out.push_str(&format!("{{{min},{max}}}")),
                    None => out.push_str(&format!("{{{min},}}")),
                }
            }
            Node::Lookahead { negative, text, .. } => {
                let text = String::from_utf16_lossy(text);
                let known = DOT_LOOKAHEADS.iter().any(|l| {
                    l.strip_prefix("(?!").and_then(|l| l.strip_suffix(')')) == Some(&text)
                });
                if !(*negative && known) {
                    return Err(RegexError::Unsupported("a lookahead"));
                }
            }
        }
        Ok(())
    }

    /// JavaScript's `regex.test(input)` for an anchored regex (`^…`), by backtracking
    /// (bounded: a pathological pattern gives up as "no match" after 5,000,000 steps).
    pub fn matches(&self, input: &[u16]) -> bool {
        let steps = std::cell::Cell::new(0usize);
        self.at(input, 0, &steps, &mut |_| true)
    }

    fn at(
        &self,
        input: &[u16],
        position: usize,
        steps: &std::cell::Cell<usize>,
        next: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        steps.set(steps.get() + 1);
        if steps.get() > 5_000_000 {
            return false;
        }
        match self {
            Node::Empty => next(position),
            Node::Unit(unit) => input.get(position) == Some(unit) && next(position + 1),
            Node::Class { ranges, negated } => {
                input
                    .get(position)
                    .is_some_and(|u| ranges.iter().any(|(a, b)| (a..=b).contains(&u)) != *negated)
                    && next(position + 1)
            }
            Node::Any => {
                input.get(position).is_some_and(|u| !is_line_terminator(*u)) && next(position + 1)
            }
            Node::Start => position == 0 && next(position),
            Node::End => position == input.len() && next(position),
            Node::Concat(items) => concat(items, input, position, steps, next),
            Node::Alternation(branches) => branches
                .iter()
                .any(|branch| branch.at(input, position, steps, next)),
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => {
                let repeat = Repeat {
                    node,
                    min: *min,
                    max: *max,
                    greedy: *greedy,
                    input,
                    steps,
                };
                repeat.from(position, 0, next)
            }
            Node::Lookahead { negative, node, .. } => {
                let found = node.at(input, position, steps, &mut |_| true);
                found != *negative && next(position)
            }
        }
    }
}

fn concat(
    items: &[Node],
    input: &[u16],
    position: usize,
    steps: &std::cell::Cell<usize>,
    next: &mut dyn FnMut(usize) -> bool,
) -> bool {
    match items.split_first() {
        None => next(position),
        Some((first, rest)) => first.at(input, position, steps, &mut |after| {
            concat(rest, input, after, steps, next)
        }),
    }
}

struct Repeat<'a> {
    node: &'a Node,
    min: u32,
    max: Option<u32>,
    greedy: bool,
    input: &'a [u16],
    steps: &'a std::cell::Cell<usize>,
}

impl Repeat<'_> {
    fn from(&self, position: usize, count: u32, next: &mut dyn FnMut(usize) -> bool) -> bool {
        let can_stop = count >= self.min;
        let can_go = self.max.is_none_or(|max| count < max);
        let more = |next: &mut dyn FnMut(usize) -> bool| {
            can_go
                && self
                    .node
                    .at(self.input, position, self.steps, &mut |after| {
                        // An iteration past the minimum that matched nothing ends the loop.
                        if after == position && count >= self.min {
                            return false;
                        }
                        self.from(after, count + 1, next)
                    })
        };
        // Greedy tries another iteration first, lazy stopping first; the answer is the same,
        // the work is not.
        if self.greedy {
            if more(next) {
                return true;
            }
            can_stop && next(position)
        } else {
            if can_stop && next(position) {
                return true;
            }
            more(next)
        }
    }
}
