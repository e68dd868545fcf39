//! Bounds on the filters file, checked before it is parsed (a pull request can edit it).
//!
//! - at most [`MAX_FILTERS_BYTES`]: a filters file is a few kilobytes; a 6 MB one took 1.4 GB
//!   to parse;
//! - collections nested at most [`MAX_DEPTH`] deep: 200 KB of `[` took about a minute to
//!   refuse;
//! - at most [`MAX_NODES`] values once aliases are expanded (`*a` copies what `&a` names, so a
//!   few lines of anchors can stand for billions of values).
//!
//! The depth and alias checks run over YAML events (saphyr-parser), stop at the first value
//! past a limit and name its line and column.

use saphyr_parser::{Event, Parser};

use crate::config::ConfigError;

/// Largest filters file or `filters` input, in bytes (1 MiB).
pub const MAX_FILTERS_BYTES: usize = 1 << 20;

/// Deepest nesting of YAML collections (a filters file needs 4).
pub const MAX_DEPTH: usize = 64;

/// Most values in the document with every alias expanded.
pub const MAX_NODES: usize = 1_000_000;

/// Refuses text over [`MAX_FILTERS_BYTES`].
pub fn check_size(length: usize) -> Result<(), ConfigError> {
    if length <= MAX_FILTERS_BYTES {
        return Ok(());
    }
    Err(ConfigError {
        message: format!(
            "the filters take {length} bytes, more than the limit of {MAX_FILTERS_BYTES} (1 MiB)"
        ),
        line: None,
        column: None,
        field: None,
        snippet: None,
        hint: Some(
            "a filters file is a few kilobytes: share patterns with anchors (`&name` / `*name`) \
             instead of repeating them"
                .into(),
        ),
    })
}

/// Refuses nesting deeper than [`MAX_DEPTH`] and alias expansion past [`MAX_NODES`]. YAML
/// syntax errors are left to the parser, which reports them with their location.
pub fn check_structure(text: &str) -> Result<(), ConfigError> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    // Values so far (aliases counted expanded), and per anchor the values it stands for.
    let mut nodes = 0usize;
    let mut sizes: Vec<usize> = Vec::new();
    // Open collections with an anchor: (anchor, values before it).
    let mut open: Vec<(usize, usize)> = Vec::new();
    let record = |sizes: &mut Vec<usize>, anchor: usize, size: usize| {
        if anchor >= sizes.len() {
            sizes.resize(anchor + 1, 0);
        }
        sizes[anchor] = size;
    };
    let too_deep = format!("the filters nest collections more than {MAX_DEPTH} deep");
    let depth_hint = "a filter is a pattern, a list of patterns or a map of statuses to patterns";
    while let Some(event) = parser.next_event() {
        let (event, span) = match event {
            Ok(event) => event,
            // The scanner reads flow collections ahead and stops at 255 levels: too deep too.
            Err(error) if error.info().contains("recursion limit") => {
                return Err(located(text, *error.marker(), too_deep, depth_hint));
            }
            // Syntax errors are the YAML parser's to report.
            Err(_) => return Ok(()),
        };
        let at = |message: String, hint: &str| located(text, span.start, message, hint);
        match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                depth += 1;
                nodes += 1;
                if depth > MAX_DEPTH {
                    return Err(at(too_deep, depth_hint));
                }
                if anchor > 0 {
                    open.push((anchor, nodes - 1));
                }
                open.push((0, 0));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                depth = depth.saturating_sub(1);
                open.pop();
                if let Some(&(anchor, before)) = open.last() {
                    if anchor > 0 {
                        open.pop();
                        record(&mut sizes, anchor, nodes - before);
                    }
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                nodes += 1;
                if anchor > 0 {
                    record(&mut sizes, anchor, 1);
                }
            }
            Event::Alias(anchor) => {
                nodes = nodes.saturating_add(sizes.get(anchor).copied().unwrap_or(1));
            }
            _ => {}
        }
        if nodes > MAX_NODES {
            return Err(at(
                format!(
                    "the filters expand to more than {MAX_NODES} values (aliases count as what \
                     they repeat)"
                ),
                "reference an anchor in a list of patterns, not anchors of anchors",
            ));
        }
    }
    Ok(())
}

/// An error at a YAML position (saphyr lines are 1-based, columns 0-based).
fn located(text: &str, marker: saphyr_parser::Marker, message: String, hint: &str) -> ConfigError {
    ConfigError {
        message,
        line: u32::try_from(marker.line()).ok(),
        column: u32::try_from(marker.col() + 1).ok(),
        field: None,
        snippet: text
            .lines()
            .nth(marker.line().saturating_sub(1))
            .map(|line| (line.chars().take(200).collect(), 1)),
        hint: Some(hint.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_fast_with_its_location() {
        let text = format!("api:\n  - {}", "[".repeat(200_000));
        let started = std::time::Instant::now();
        let error = check_structure(&text).expect_err("too deep");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(
            error.message.contains("more than 64 deep"),
            "{}",
            error.message
        );
        assert_eq!(error.line, Some(2));
        assert!(error.column.is_some_and(|c| c > 64), "{:?}", error.column);
    }

    #[test]
    fn alias_bombs_are_refused_at_the_alias() {
        // a: ten values; b: ten a's; ... i: ten h's = 10^9 values in a few hundred bytes.
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (previous, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
            let list = vec![format!("*{previous}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{list}]\n"));
        }
        let error = check_structure(&text).expect_err("bomb");
        assert!(
            error.message.contains("expand to more than"),
            "{}",
            error.message
        );
        // f (line 6) is the first to stand for a million values.
        assert_eq!(error.line, Some(6), "the first alias past the limit");
    }

    #[test]
    fn ordinary_anchors_and_nesting_pass() {
        let text = "shared: &shared [a/**, b/**]\napi:\n  - *shared\n  - added|modified: [c/**]\n";
        assert!(check_structure(text).is_ok());
        assert!(check_size(text.len()).is_ok());
        assert!(check_size(MAX_FILTERS_BYTES + 1).is_err());
    }
}
