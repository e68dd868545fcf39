//! Glob patterns with picomatch 2.3.1's semantics (`{ dot: true }`, as dorny/paths-filter
//! uses it).
//!
//! Each pattern goes through a port of picomatch's own compiler ([`crate::picomatch`]) to the
//! JavaScript regular expression picomatch would build, which [`crate::jsregex`] reads and
//! compiles for Rust. What picomatch does is therefore what change-detect does, including its
//! surprises: `(a|b)` and `|` are regex syntax, `[x]` also matches the literal text `[x]`,
//! `x*/**` does not match `x` itself while `x/**` does, `?` counts UTF-16 code units, and a
//! path equal to the pattern text matches whatever the pattern says.
//!
//! Refused, with an error that says what to write instead (picomatch's reading of them is
//! rarely what the author meant): extglobs (`+(a|b)`), `[!x]` (a literal `!` in picomatch, a
//! negation in every shell), ranges (`{1..3}`), a trailing `/` (never matches a file), a
//! leading `/` (never matches: paths are relative), empty patterns, line breaks inside a
//! pattern, and the regex constructs picomatch passes through that change-detect does not
//! emulate (back-references, `\b`, lookarounds written by hand).

use std::sync::Arc;

use crate::jsregex::{self, Node};
use crate::picomatch;

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern as written in the filters file. A path equal to it always matches the
    /// rule (picomatch compares the text before running the regex).
    pub source: String,
    /// `!pattern` (an odd run of `!`): the rule holds for paths the globs do *not* match
    /// (and, as in picomatch's `^(?!…).*$`, that hold no line break).
    pub negated: bool,
    /// What the pattern matches, split for the matcher's index; the rule's glob part holds
    /// when any of them matches.
    pub globs: Vec<Glob>,
}

/// One matchable piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glob {
    /// Exactly this path.
    Exact(Vec<u8>),
    /// picomatch's regex.
    Regex(Arc<Regex>),
}

/// A compiled picomatch regex, with what the matcher's index needs to know about it.
#[derive(Debug, PartialEq, Eq)]
pub struct Regex {
    /// The JavaScript regex body, for messages (lossy where it holds half a surrogate pair).
    pub javascript: String,
    /// The same, exactly (the dedup key).
    pub units: Vec<u16>,
    /// The `regex` crate pattern over mapped paths ([`jsregex::map_path`]).
    pub rust: String,
    /// The same for ASCII paths, as a byte regex.
    pub ascii: String,
    /// The JavaScript semantics, for paths the Rust pattern is not exact for.
    pub node: Node,
    /// A literal directory prefix (ending in `/`, or empty) every matching path starts with.
    pub prefix: Vec<u8>,
    /// `dir/**`: every path under `prefix` matches (without a line break).
    pub everything: bool,
}

impl Glob {
    /// A key that is equal for equal globs.
    pub fn key(&self) -> String {
        match self {
            Glob::Exact(path) => format!("={}", String::from_utf8_lossy(path)),
            Glob::Regex(regex) => format!("~{:?}", regex.units),
        }
    }

    /// JavaScript's answer for a path (as UTF-16 code units): the reference semantics.
    pub fn matches_units(&self, units: &[u16], path: &[u8]) -> bool {
        match self {
            Glob::Exact(exact) => {
                exact == path
                    || String::from_utf8_lossy(exact)
                        .encode_utf16()
                        .eq(units.iter().copied())
            }
            Glob::Regex(regex) => regex.node.matches(units),
        }
    }
}

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// `''` or a pattern that is only `!`/`./`.
    #[error("empty pattern")]
    Empty,
    /// `+(a|b)`, `!(a)`, `@(a)`, `*(a)`, `?(a)`.
    #[error("extglob `{found}` is not supported")]
    Extglob {
        /// The extglob opener, e.g. `+(`.
        found: String,
    },
    /// `[!…]`.
    #[error("`[!` is ambiguous: picomatch reads it as a literal `!`, other globs as a negation")]
    BangClass,
    /// `{1..3}`.
    #[error("brace range `{found}` is not supported")]
    Range {
        /// The range as written.
        found: String,
        /// The same alternatives written with commas, when the range is small.
        expansion: Option<String>,
    },
    /// `src/` or `src/**/`.
    #[error("a pattern ending in `/` never matches a file")]
    TrailingSlash,
    /// `/src/**`.
    #[error("a pattern starting with `/` never matches: changed paths are relative")]
    LeadingSlash,
    /// A line break inside the pattern.
    #[error("a pattern cannot hold a line break")]
    LineBreak,
    /// picomatch's regex is invalid, or uses what change-detect does not emulate.
    #[error("{0}")]
    Regex(jsregex::RegexError),
    /// Longer than picomatch accepts.
    #[error("{0}")]
    TooLong(picomatch::PicoError),
    /// globset rejected a tag pattern.
    #[error("invalid glob: {0}")]
    Invalid(String),
}

impl PatternError {
    /// What to write instead.
    pub fn hint(&self, source: &str) -> String {
        match self {
            PatternError::Empty => "remove the entry, or write `**` to match every file".into(),
            PatternError::Extglob { .. } => "write one rule per alternative (`a/**` and `b/**`), and use \
                 `!` rules with `predicate-quantifier: every`, or `exclude:`, to leave paths out; \
                 escape a literal parenthesis as `\\(`"
                .into(),
            PatternError::BangClass => {
                "write `[^…]` to exclude characters, or `[…!]` (the `!` not first) for a literal `!`"
                    .into()
            }
            PatternError::Range { expansion, .. } => match expansion {
                Some(expansion) => format!("list the alternatives: `{expansion}`"),
                None => "list the alternatives with commas: `{1,2,3}`".into(),
            },
            PatternError::TrailingSlash => {
                let trimmed = source.trim_end_matches('/');
                let base = trimmed.strip_suffix("/**").unwrap_or(trimmed);
                format!("write `{base}/**` to match every file under the directory")
            }
            PatternError::LeadingSlash => {
                format!("write `{}`", source.trim_start_matches(['!', '/']))
            }
            PatternError::LineBreak => "write `?` where the name holds a line break".into(),
            PatternError::Regex(jsregex::RegexError::Invalid(_)) => {
                "picomatch (dorny/paths-filter) would never match it; escape regex characters \
                 meant literally with `\\` (`\\(`, `\\|`, `\\+`)"
                    .into()
            }
            PatternError::Regex(jsregex::RegexError::Unsupported(_)) => {
                "picomatch passes `(`, `)`, `|`, `+` and backslash escapes through to a regular \
                 expression; escape them with `\\` when meant literally"
                    .into()
            }
            PatternError::TooLong(_) => "split the pattern into several rules".into(),
            PatternError::Invalid(_) => "escape glob characters meant literally with `\\`".into(),
        }
    }
}

impl Pattern {
    /// Parses a rule as picomatch would, refusing what it reads surprisingly.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        if source.contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
            return Err(PatternError::LineBreak);
        }
        check_extglob(source)?;
        let bangs = source.chars().take_while(|c| *c == '!').count();
        let mut rest = &source[bangs..];
        while let Some(stripped) = rest.strip_prefix("./") {
            rest = stripped;
        }
        if rest.is_empty() {
            return Err(PatternError::Empty);
        }
        if rest.ends_with('/') {
            return Err(PatternError::TrailingSlash);
        }
        if rest.starts_with('/') {
            return Err(PatternError::LeadingSlash);
        }
        check_classes(rest)?;
        check_ranges(rest)?;
        let compiled = picomatch::make_re(source).map_err(|error| match error {
            picomatch::PicoError::Extglob(opener) => PatternError::Extglob {
                found: format!("{opener}("),
            },
            other => PatternError::TooLong(other),
        })?;
        // Stay in UTF-16: picomatch escapes each half of a surrogate pair separately
        // (`\<high>\<low>`), which a Rust string cannot hold.
        let mut whole: Vec<u16> = "^(?:".encode_utf16().collect();
        whole.extend_from_slice(&compiled.output);
        whole.extend(")$".encode_utf16());
        let body = String::from_utf16_lossy(&compiled.output);
        let node = jsregex::parse(&whole).map_err(PatternError::Regex)?;
        let rust = node.to_rust().map_err(PatternError::Regex)?;
        let ascii = node.to_rust_ascii().map_err(PatternError::Regex)?;
        let mut globs = Vec::new();
        let literal = literal_units(&node);
        if let Some(exact) = literal.whole {
            globs.push(Glob::Exact(String::from_utf16_lossy(&exact).into_bytes()));
        } else {
            let prefix = String::from_utf16_lossy(&literal.prefix).into_bytes();
            let prefix =
                prefix[..prefix.iter().rposition(|b| *b == b'/').map_or(0, |s| s + 1)].to_vec();
            // `dir/**`: every path under `dir/`, and `dir` itself.
            // Only when picomatch compiled it as it compiles `dir/**` (`!!./x/**` keeps its
            // `./`, for one; seed 12024).
            let directory = everything_directory(rest).filter(|directory| {
                picomatch::make_re(&format!("{directory}/**"))
                    .is_ok_and(|plain| plain.output == compiled.output)
            });
            if let Some(directory) = &directory {
                globs.push(Glob::Exact(directory.as_bytes().to_vec()));
            }
            globs.push(Glob::Regex(Arc::new(Regex {
                javascript: body,
                units: compiled.output.clone(),
                rust,
                ascii,
                node,
                everything: directory.is_some(),
                prefix: match &directory {
                    Some(directory) => format!("{directory}/").into_bytes(),
                    None => prefix,
                },
            })));
        }
        Ok(Self {
            source: source.to_owned(),
            negated: compiled.negated,
            globs,
        })
    }
}

/// `dir` for a pattern `dir/**` whose `dir` is plain text to picomatch.
fn everything_directory(rest: &str) -> Option<String> {
    let directory = rest.strip_suffix("/**")?;
    let plain = !directory.is_empty()
        && directory
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
        && !directory
            .chars()
            .any(|c| c.is_control() || "*?[]{}()!+@|^$\"\\,".contains(c));
    plain.then(|| directory.to_owned())
}

struct Literal {
    /// The code units every match starts with.
    prefix: Vec<u16>,
    /// The whole match, when the regex matches one string only.
    whole: Option<Vec<u16>>,
}

/// The literal start of an anchored regex (`^…$`), and the whole string when it is literal.
fn literal_units(node: &Node) -> Literal {
    let mut prefix = Vec::new();
    let complete = collect_literal(node, &mut prefix);
    Literal {
        whole: complete.then(|| prefix.clone()),
        prefix,
    }
}

/// Appends the literal units `node` starts with; true when that is all of it.
fn collect_literal(node: &Node, out: &mut Vec<u16>) -> bool {
    match node {
        Node::Start | Node::End | Node::Empty => true,
        Node::Unit(unit) => {
            out.push(*unit);
            true
        }
        Node::Concat(items) => items.iter().all(|item| collect_literal(item, out)),
        _ => false,
    }
}

/// Builds a globset glob (for `tag-pattern`, matched against tag names like `git describe
/// --match`), with picomatch-like options.
pub fn build(glob: &str) -> Result<globset::Glob, PatternError> {
    globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(true)
        .allow_unclosed_class(true)
        .case_insensitive(false)
        .build()
        .map_err(|error| PatternError::Invalid(error.kind().to_string()))
}

/// Characters of `source` with a flag telling whether each was escaped by a backslash.
fn unescaped(source: &str) -> Vec<(usize, char, bool)> {
    let mut out = Vec::with_capacity(source.len());
    let mut escaped = false;
    for (index, c) in source.char_indices() {
        if escaped {
            out.push((index, c, true));
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push((index, c, false));
        }
    }
    out
}

fn check_extglob(source: &str) -> Result<(), PatternError> {
    let chars = unescaped(source);
    for pair in chars.windows(2) {
        let [(_, opener, false), (_, '(', false)] = pair else {
            continue;
        };
        if matches!(opener, '!' | '+' | '@' | '*' | '?') {
            return Err(PatternError::Extglob {
                found: format!("{opener}("),
            });
        }
    }
    Ok(())
}

fn check_classes(source: &str) -> Result<(), PatternError> {
    let chars = unescaped(source);
    for pair in chars.windows(2) {
        if let [(_, '[', false), (_, '!', _)] = pair {
            return Err(PatternError::BangClass);
        }
    }
    Ok(())
}

/// Escapes brace groups that picomatch reads literally (no top-level comma) and refuses ranges.
fn literal_braces(source: &str) -> Result<String, PatternError> {
    let chars = unescaped(source);
    // Pair each unescaped `{` with its `}`.
    let mut stack = Vec::new();
    let mut pairs = Vec::new();
    for (position, (_, c, escaped)) in chars.iter().enumerate() {
        if *escaped {
            continue;
        }
        match c {
            '{' => stack.push(position),
            '}' => {
                if let Some(open) = stack.pop() {
                    pairs.push((open, position));
                }
            }
            _ => {}
        }
    }
    let mut literal = vec![false; chars.len()];
    for &(open, close) in &pairs {
        let mut depth = 0usize;
        let mut comma = false;
        for (_, c, escaped) in &chars[open + 1..close] {
            match (c, escaped) {
                ('{', false) => depth += 1,
                ('}', false) => depth = depth.saturating_sub(1),
                (',', false) if depth == 0 => comma = true,
                _ => {}
            }
        }
        if comma {
            continue;
        }
        let inner: String = chars[open + 1..close].iter().map(|(_, c, _)| c).collect();
        if let Some((start, end)) = inner.split_once("..") {
            if !start.is_empty() && !end.is_empty() {
                return Err(PatternError::Range {
                    found: format!("{{{inner}}}"),
                    expansion: expand_range(start, end),
                });
            }
        }
        literal[open] = true;
        literal[close] = true;
    }
    // Unbalanced braces are literal in picomatch too.
    for open in stack {
        literal[open] = true;
    }
    let mut out = String::with_capacity(source.len() + 4);
    for (position, (_, c, escaped)) in chars.iter().enumerate() {
        if *escaped || literal[position] {
            out.push('\\');
        }
        out.push(*c);
    }
    Ok(out)
}

/// `{1..3}` as `{1,2,3}` when it is a short numeric or single-letter range.
fn expand_range(start: &str, end: &str) -> Option<String> {
    let items: Vec<String> = if let (Ok(a), Ok(b)) = (start.parse::<i64>(), end.parse::<i64>()) {
        if a.abs_diff(b) > 32 {
            return None;
        }
        if a <= b {
            (a..=b).map(|n| n.to_string()).collect()
        } else {
            (b..=a).rev().map(|n| n.to_string()).collect()
        }
    } else {
        let (mut a, mut b) = (start.chars(), end.chars());
        let (Some(a), None, Some(b), None) = (a.next(), a.next(), b.next(), b.next()) else {
            return None;
        };
        if !a.is_ascii_alphanumeric() || !b.is_ascii_alphanumeric() {
            return None;
        }
        let (low, high) = (a.min(b) as u8, a.max(b) as u8);
        let mut items: Vec<String> = (low..=high).map(|c| char::from(c).to_string()).collect();
        if a > b {
            items.reverse();
        }
        items
    };
    Some(format!("{{{}}}", items.join(",")))
}

fn check_ranges(source: &str) -> Result<(), PatternError> {
    literal_braces(source).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{Change, Status};
    use crate::filter::Quantifier;
    use crate::matcher::Matcher;

    /// Through the whole matcher (index, Rust regexes, the JavaScript interpreter for line
    /// breaks), as a filter of one rule.
    fn matches(pattern: &str, path: &str) -> bool {
        let parsed = Pattern::parse(pattern).expect("valid pattern");
        let units = jsregex::path_units(path.as_bytes());
        let reference = path == pattern
            || (parsed
                .globs
                .iter()
                .any(|g| g.matches_units(&units, path.as_bytes()))
                != parsed.negated
                && !(parsed.negated && jsregex::has_line_terminator(path.as_bytes())));
        let filters = crate::config::parse(&format!(
            "x: [{}]\n",
            serde_json::to_string(pattern).expect("json")
        ))
        .expect("filters");
        let matcher = Matcher::new(&filters, Quantifier::Some).expect("compiles");
        let found = !matcher
            .matches(&[Change::new(path, Status::Modified)])
            .files[0]
            .is_empty();
        assert_eq!(
            found, reference,
            "matcher and interpreter disagree on {pattern:?} {path:?}"
        );
        found
    }

    #[test]
    fn negation_follows_the_parity_of_leading_bangs() {
        assert!(!matches("!src/**", "src/a.js"));
        assert!(matches("!src/**", "docs/a.md"));
        assert!(matches("!!src/**", "src/a.js"));
        assert!(!matches("!!!src/**", "src/a.js"));
        // `^(?!…).*$`: a negated rule never holds for a name with a line break.
        assert!(!matches("!src/**", "docs/a\nb"));
    }

    #[test]
    fn leading_dot_slash_is_ignored() {
        assert!(matches("./src/**", "src/a.js"));
        assert!(matches("././src/**", "src/a.js"));
        // After an even run of `!`, picomatch keeps the `./` (seed 12024).
        assert!(!matches("!!./node_modules/**", "node_modules"));
        assert!(!matches("!!./node_modules/**", "node_modules/a"));
        assert!(!matches("!./src/**", "src/a.js"));
    }

    #[test]
    fn question_marks_and_classes_count_utf16_code_units_issue_23() {
        assert!(matches("docs/?.md", "docs/é.md"));
        assert!(!matches("docs/??.md", "docs/é.md"));
        assert!(matches("caf[eé].txt", "café.txt"));
        // An emoji is two code units in JavaScript.
        assert!(!matches("docs/?.md", "docs/😀.md"));
        assert!(matches("docs/??.md", "docs/😀.md"));
        assert!(matches("docs/?*.md", "docs/😀.md"));
        // picomatch escapes each half of the pair (`\<high>\<low>`); seed 11129.
        assert!(matches("./😀.md", "😀.md"));
        assert!(matches("😀/**", "😀/a"));
    }

    #[test]
    fn directory_itself_only_without_a_star_in_the_last_segment_issue_23() {
        assert!(matches("src/**", "src"));
        assert!(matches("?/**", "a"));
        assert!(matches("{a,b}/**", "a"));
        assert!(!matches("*/**", "a"));
        assert!(!matches("s*/**", "src"));
        assert!(!matches("src/*/**", "src/x"));
        assert!(matches("*/**", "a/b"));
        assert!(!matches("src/package1/**", "src/package10"));
    }

    #[test]
    fn parentheses_and_pipes_are_regex_syntax_as_in_picomatch_issue_23() {
        assert!(matches("(src|lib)/**", "src/x.js"));
        assert!(matches("(src|lib)/**", "lib/y"));
        assert!(!matches("(src|lib)/**", "(src|lib)/x"));
        assert!(matches("*.js|*.ts", "a.ts"));
        assert!(matches("*.js|*.ts", "a.js"));
    }

    #[test]
    fn picomatch_quirks_are_reproduced_issue_23() {
        // A class also matches itself literally; and any path equal to the pattern matches.
        assert!(matches("[x].txt", "[x].txt"));
        assert!(matches("[x].txt", "x.txt"));
        // `**.md` is "any depth", but not after `!`, where it is top-level `*.md`.
        assert!(matches("**.md", "docs/a.md"));
        assert!(!matches("!**.md", "README.md"));
        assert!(matches("!**.md", "docs/a.md"));
        // A lone `}` is literal; a class naming `/` crosses it.
        assert!(matches("a}", "a}"));
        assert!(matches("a[/]b", "a/b"));
        assert!(matches("a[.-_]b", "a/b"));
        // `*.*` needs a character after the dot; `a/*.*` does not.
        assert!(!matches("*.*", "a."));
        assert!(matches("a/*.*", "a/b."));
        // `**` stops at line breaks; `*` starts only where a character is not one.
        assert!(!matches("**", "a\nb"));
        assert!(matches("a/*", "a/b\nc"));
        assert!(!matches("*", "\nb"));
    }

    #[test]
    fn star_question_and_classes_never_cross_slashes() {
        assert!(!matches("src/*.js", "src/app/x.js"));
        assert!(!matches("a?b", "a/b"));
        assert!(matches("**/*.md", "docs/sub/b.md"));
        assert!(matches("**", ".github/workflows/ci.yml"));
        assert!(matches("src/**", "src/.hidden/h.js"));
        assert!(matches("*", ".env"));
    }

    #[test]
    fn braces_without_commas_are_literal_and_empty_alternatives_count() {
        assert!(matches("{a}", "{a}"));
        assert!(!matches("{a}", "a"));
        assert!(matches("a{}", "a{}"));
        assert!(matches("b{1,}.txt", "b.txt"));
        assert!(matches("b{,1}.txt", "b1.txt"));
        assert!(matches("{src,{docs,dir}}/*", "dir/x"));
    }

    #[test]
    fn unsupported_syntax_is_refused_with_a_replacement() {
        let cases: &[(&str, PatternError, &str)] = &[
            ("", PatternError::Empty, "remove the entry"),
            ("!", PatternError::Empty, "remove the entry"),
            ("./", PatternError::Empty, "remove the entry"),
            (
                "dir/+(file|server).*",
                PatternError::Extglob { found: "+(".into() },
                "one rule per alternative",
            ),
            (
                "!(**/*.tsx|**/*.less)",
                PatternError::Extglob { found: "!(".into() },
                "exclude:",
            ),
            ("b[!1].txt", PatternError::BangClass, "`[^…]`"),
            (
                "b{1..3}.txt",
                PatternError::Range {
                    found: "{1..3}".into(),
                    expansion: Some("{1,2,3}".into()),
                },
                "`{1,2,3}`",
            ),
            ("src/**/", PatternError::TrailingSlash, "`src/**`"),
            ("/src/**", PatternError::LeadingSlash, "`src/**`"),
            ("a\nb", PatternError::LineBreak, "`?`"),
            (
                "a)/(b",
                PatternError::Regex(jsregex::RegexError::Invalid("unterminated group")),
                "never match",
            ),
            (
                "{a,b}\\1",
                PatternError::Regex(jsregex::RegexError::Unsupported(
                    "a back-reference or octal escape",
                )),
                "escape them",
            ),
        ];
        for (source, expected, hint) in cases {
            let error = Pattern::parse(source).expect_err(source);
            assert_eq!(&error, expected, "{source:?}");
            assert!(
                error.hint(source).contains(hint),
                "{source:?}: {}",
                error.hint(source)
            );
        }
    }

    #[test]
    fn escaped_specials_are_literal() {
        assert!(matches("weird\\[1\\].txt", "weird[1].txt"));
        assert!(matches("a\\+(b)", "a+b"));
        assert!(matches("b[1.txt", "b[1.txt"));
        assert!(matches("b[x!].txt", "b!.txt"));
    }
}
