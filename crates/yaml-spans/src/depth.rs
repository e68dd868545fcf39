//! A streaming nesting check for YAML that another parser (serde_yaml_ng, libyaml) reads.
//!
//! libyaml rescans its stack of possible keys for every token, so 200 KB of `[` took about a
//! minute before its own recursion limit refused it; this pass over saphyr's events stops at
//! the first collection too deep, in time linear in the text (saphyr's scanner also stops flow
//! collections at 255 levels). Syntax errors are left to the parser that reads the text next.

use saphyr_parser::{Event, Parser};

use crate::tree::Position;

/// Deepest nesting of YAML collections the suite accepts (the same as [`crate::Limits`]).
pub const MAX_DEPTH: usize = 64;

/// A YAML text nested deeper than [`MAX_DEPTH`]: where the first collection too deep starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("YAML nested more than {MAX_DEPTH} levels deep at line {line} column {column}")]
pub struct TooDeep {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl TooDeep {
    /// The place as a [`Position`] (for [`crate::diagnostic`]).
    pub fn position(&self) -> Position {
        Position {
            line: u32::try_from(self.line).unwrap_or(u32::MAX),
            column: u32::try_from(self.column).unwrap_or(u32::MAX),
            offset: 0,
        }
    }
}

/// Refuses YAML nested deeper than [`MAX_DEPTH`], in time linear in the text.
pub fn check_depth(text: &str) -> Result<(), TooDeep> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    while let Some(next) = parser.next_event() {
        let marker = match next {
            Ok((event, span)) => match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    depth += 1;
                    if depth <= MAX_DEPTH {
                        continue;
                    }
                    span.start
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    depth = depth.saturating_sub(1);
                    continue;
                }
                Event::StreamEnd => return Ok(()),
                _ => continue,
            },
            Err(error) if error.info().contains("recursion limit") => *error.marker(),
            Err(_) => return Ok(()),
        };
        return Err(TooDeep {
            line: marker.line(),
            column: marker.col() + 1,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_and_block_nesting_is_refused_fast() {
        let started = std::time::Instant::now();
        let flow = "[".repeat(200 * 1024);
        // The scanner reads ahead in flow collections: refused where it stops, at level 256.
        assert!(
            matches!(check_depth(&flow), Err(TooDeep { line: 1, .. })),
            "{:?}",
            check_depth(&flow)
        );
        let block = "- ".repeat(100_000) + "x\n";
        assert_eq!(
            check_depth(&block),
            Err(TooDeep {
                line: 1,
                column: 129
            })
        );
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            check_depth("a: [unclosed\n"),
            Ok(()),
            "syntax is the next parser's"
        );
        let nested = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(check_depth(&nested), Ok(()), "64 levels are fine");
    }
}
