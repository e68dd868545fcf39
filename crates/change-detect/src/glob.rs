//! Glob patterns with picomatch's semantics (`{ dot: true }`, as dorny/paths-filter uses it),
//! compiled with `globset`.
//!
//! globset and picomatch agree on most syntax once globset is told that `*`, `?` and classes
//! never cross `/` (`literal_separator`), that `{a,}` has an empty alternative
//! (`empty_alternates`) and that an unclosed `[` is literal (`allow_unclosed_class`). The rest
//! is bridged here, before globset sees the pattern:
//!
//! - a leading run of `!` negates the rule when its length is odd (`!!a` is `a`);
//! - leading `./` is dropped (repeatedly, like picomatch);
//! - `**.ext` as a whole pattern means `**/*.ext` (picomatch's fast path);
//! - a brace group without a top-level comma (`{a}`, `{}`) is literal in picomatch;
//! - `dir/**` also matches a file named `dir` itself.
//!
//! What globset cannot express is refused with an error that says what to write instead:
//! extglobs (`+(a|b)`), `[!x]` (a literal `!` in picomatch, a negation in globset), ranges
//! (`{1..3}`), a trailing `/` (never matches a file in picomatch) and a leading `/`.

/// A parsed rule: the globset pattern and whether the rule is negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern as written in the filters file.
    pub source: String,
    /// `!pattern`: the rule holds for paths the glob does *not* match.
    pub negated: bool,
    /// The pattern in globset syntax: one glob, or two when `dir/**` must also match `dir`.
    /// The rule's glob part holds when any of them matches.
    pub globs: Vec<String>,
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
    /// globset rejected the translated pattern.
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
            PatternError::Invalid(_) => "escape glob characters meant literally with `\\`".into(),
        }
    }
}

impl Pattern {
    /// Parses a rule as picomatch would, refusing what globset would read differently.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
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
        let mut glob = literal_braces(rest)?;
        if let Some(extension) = glob.strip_prefix("**.") {
            if !extension.is_empty()
                && extension
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
            {
                glob = format!("**/*.{extension}");
            }
        }
        let mut globs = vec![glob];
        // picomatch's `dir/**` also matches `dir` itself; globset's does not.
        if let Some(directory) = globs[0].strip_suffix("/**") {
            if !directory.is_empty() && !directory.ends_with('\\') && directory != "**" {
                let directory = directory.strip_suffix("/**").unwrap_or(directory);
                globs.push(directory.to_owned());
            }
        }
        // Validate now so errors carry the rule's location.
        for glob in &globs {
            build(glob)?;
        }
        Ok(Self {
            source: source.to_owned(),
            negated: bangs % 2 == 1,
            globs,
        })
    }
}

/// Builds the globset glob with the options that give picomatch's semantics.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        let pattern = Pattern::parse(pattern).expect("valid pattern");
        let hit = pattern.globs.iter().any(|glob| {
            build(glob)
                .expect("builds")
                .compile_matcher()
                .is_match(path)
        });
        hit != pattern.negated
    }

    #[test]
    fn negation_follows_the_parity_of_leading_bangs() {
        assert!(!matches("!src/**", "src/a.js"));
        assert!(matches("!src/**", "docs/a.md"));
        assert!(matches("!!src/**", "src/a.js"));
        assert!(!matches("!!!src/**", "src/a.js"));
    }

    #[test]
    fn leading_dot_slash_is_ignored() {
        assert!(matches("./src/**", "src/a.js"));
        assert!(matches("././src/**", "src/a.js"));
        assert!(!matches("!./src/**", "src/a.js"));
    }

    #[test]
    fn star_question_and_classes_never_cross_slashes() {
        assert!(!matches("src/*.js", "src/app/x.js"));
        assert!(!matches("a?b", "a/b"));
        assert!(!matches("a[/]b", "a/b"));
        assert!(matches("**/*.md", "docs/sub/b.md"));
    }

    #[test]
    fn double_star_matches_dot_files_and_dirs() {
        assert!(matches("**", ".github/workflows/ci.yml"));
        assert!(matches("src/**", "src/.hidden/h.js"));
        assert!(matches("*", ".env"));
    }

    #[test]
    fn directory_double_star_matches_the_directory_name_itself() {
        assert!(matches("src/package1/**", "src/package1"));
        assert!(matches("src/package1/**", "src/package1/file.txt"));
        assert!(!matches("src/package1/**", "src/package10"));
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
    fn whole_pattern_double_star_extension_matches_at_any_depth() {
        assert!(matches("**.js", "foo.js"));
        assert!(matches("**.js", "src/app/x.js"));
        assert!(matches("**.tar.gz", "pkg/y.tar.gz"));
        assert!(!matches("src/**.js", "src/app/x.js"));
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
            (
                "{c..a}",
                PatternError::Range {
                    found: "{c..a}".into(),
                    expansion: Some("{c,b,a}".into()),
                },
                "`{c,b,a}`",
            ),
            ("src/**/", PatternError::TrailingSlash, "`src/**`"),
            ("src/", PatternError::TrailingSlash, "`src/**`"),
            ("/src/**", PatternError::LeadingSlash, "`src/**`"),
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
        assert!(matches("a\\+(b)", "a+(b)"));
        assert!(matches("b[1.txt", "b[1.txt"));
        assert!(matches("b[x!].txt", "b!.txt"));
    }
}
