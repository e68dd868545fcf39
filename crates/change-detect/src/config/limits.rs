//! Bounds on the filters file (a pull request can edit it), checked before it is read whole.
//!
//! - at most [`MAX_FILTERS_BYTES`]: a filters file is a few kilobytes; a 6 MB one took 1.4 GB
//!   to parse;
//! - collections nested at most [`MAX_DEPTH`] deep: 200 KB of `[` took about a minute to
//!   refuse;
//! - at most [`MAX_NODES`] values once aliases are expanded (`*a` copies what `&a` names, so a
//!   few lines of anchors can stand for billions of values), and at most
//!   [`MAX_SCALAR_BYTES`] of text.
//!
//! yaml-spans applies the depth and expansion limits while it builds the tree, at the first
//! value past a limit; [`refusal`] words them for the filters.

use yaml_spans::{ErrorKind, Limits, SyntaxError};

use crate::config::error::ConfigError;

/// Largest filters file or `filters` input, in bytes (1 MiB).
pub const MAX_FILTERS_BYTES: usize = 1 << 20;

/// Deepest nesting of YAML collections (a filters file needs 4).
pub const MAX_DEPTH: usize = 64;

/// Most values in the document with every alias expanded.
pub const MAX_NODES: usize = 1_000_000;

/// Most bytes of scalar text in the document with every alias expanded (64 MiB).
pub const MAX_SCALAR_BYTES: usize = 64 << 20;

/// The limits the filters are parsed with. Aliases are not counted on their own: what they
/// expand to is.
pub const LIMITS: Limits = Limits {
    max_depth: MAX_DEPTH,
    max_aliases: usize::MAX,
    max_nodes: MAX_NODES,
    max_scalar_bytes: MAX_SCALAR_BYTES,
};

/// Refuses text over [`MAX_FILTERS_BYTES`].
pub fn check_size(length: usize) -> Result<(), ConfigError> {
    if length <= MAX_FILTERS_BYTES {
        return Ok(());
    }
    Err(ConfigError::new(format!(
        "the filters take {length} bytes, more than the limit of {MAX_FILTERS_BYTES} (1 MiB)"
    ))
    .hint(
        "a filters file is a few kilobytes: share patterns with anchors (`&name` / `*name`) \
         instead of repeating them",
    ))
}

/// The words for a text yaml-spans refused past [`LIMITS`]; `None` for other errors.
pub fn refusal(error: &SyntaxError) -> Option<ConfigError> {
    let expansion_hint = "reference an anchor in a list of patterns, not anchors of anchors";
    let error_at = |message: String, hint: &str| {
        let mut span = error.span;
        span.end = span.start;
        Some(ConfigError::new(message).at(span).hint(hint))
    };
    match error.kind {
        ErrorKind::Depth => error_at(
            format!("the filters nest collections more than {MAX_DEPTH} deep"),
            "a filter is a pattern, a list of patterns or a map of statuses to patterns",
        ),
        ErrorKind::Nodes | ErrorKind::Aliases => error_at(
            format!(
                "the filters expand to more than {MAX_NODES} values (aliases count as what \
                 they repeat)"
            ),
            expansion_hint,
        ),
        ErrorKind::ScalarBytes => error_at(
            format!(
                "the filters expand to more than {MAX_SCALAR_BYTES} bytes of text (aliases \
                 count as what they repeat)"
            ),
            expansion_hint,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> ConfigError {
        let error = yaml_spans::parse_with_limits(text, LIMITS).expect_err("refused");
        refusal(&error).expect("a limit")
    }

    #[test]
    fn deep_flow_nesting_is_refused_fast_with_its_location() {
        let text = format!("api:\n  - {}", "[".repeat(200_000));
        let started = std::time::Instant::now();
        let error = refused(&text);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(
            error.message.contains("more than 64 deep"),
            "{}",
            error.message
        );
        assert_eq!(error.line(), Some(2));
        assert!(
            error.column().is_some_and(|c| c > 64),
            "{:?}",
            error.column()
        );
    }

    #[test]
    fn block_nesting_is_refused_at_the_first_collection_too_deep() {
        let text = format!("api:\n  - {}{}\n", "[".repeat(70), "]".repeat(70));
        let error = refused(&text);
        // The root mapping and the list are two levels: the 63rd `[` is the 65th.
        assert_eq!((error.line(), error.column()), (Some(2), Some(67)));
    }

    #[test]
    fn alias_bombs_are_refused_at_the_alias() {
        // a: ten values; b: ten a's; ... i: ten h's = 10^9 values in a few hundred bytes.
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (previous, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
            let list = vec![format!("*{previous}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{list}]\n"));
        }
        let error = refused(&text);
        assert!(
            error.message.contains("expand to more than 1000000 values"),
            "{}",
            error.message
        );
        // f (line 6) is the first to stand for a million values.
        assert_eq!(error.line(), Some(6), "the first alias past the limit");
    }

    #[test]
    fn long_text_repeated_by_aliases_is_refused() {
        let long = "x".repeat(600_000);
        let text = format!("a: &a '{long}'\nb: [{}]\n", vec!["*a"; 120].join(", "));
        let error = refused(&text);
        assert!(error.message.contains("bytes of text"), "{}", error.message);
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn ordinary_anchors_and_nesting_pass() {
        let text = "shared: &shared [a/**, b/**]\napi:\n  - *shared\n  - added|modified: [c/**]\n";
        assert!(yaml_spans::parse_with_limits(text, LIMITS).is_ok());
        assert!(check_size(text.len()).is_ok());
        assert!(check_size(MAX_FILTERS_BYTES + 1).is_err());
    }
}
