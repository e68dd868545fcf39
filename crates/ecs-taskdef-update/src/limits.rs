//! Input limits: every file ecs-taskdef-update reads is refused past a documented size before
//! it is read into memory, and YAML past a nesting depth before it is parsed.

use std::io::Read as _;
use std::path::Path;

/// Largest deploy file read (1 MiB).
pub const MAX_DEPLOY_FILE_BYTES: u64 = 1024 * 1024;
/// Largest task definition JSON or `env-from-file` file read (1 MiB; ECS itself takes at most
/// 64 KiB per task definition).
pub const MAX_INPUT_FILE_BYTES: u64 = 1024 * 1024;

/// Deepest nesting of YAML collections accepted.
pub const MAX_YAML_DEPTH: usize = 64;

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is larger than the limit.
    #[error("the file is larger than {limit} bytes (the limit for this input)")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not UTF-8.
    #[error("the file is not UTF-8 text")]
    NotUtf8,
}

/// Reads a text file of at most `limit` bytes; never reads more than `limit + 1` bytes, even
/// from a FIFO or `/dev/zero`.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    let file = std::fs::File::open(path)?;
    if file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > limit)
    {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

/// A YAML text nested deeper than [`MAX_YAML_DEPTH`]: where the first collection too deep
/// starts (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("YAML nested more than {MAX_YAML_DEPTH} levels deep at line {line} column {column}")]
pub struct TooDeep {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}

/// Refuses YAML nested deeper than [`MAX_YAML_DEPTH`], in time linear in the text.
///
/// serde_yaml_ng's parser (libyaml) rescans its stack of possible keys for every token, so
/// 200 KB of `[` took about a minute before its own recursion limit refused it; this pass
/// with saphyr's streaming parser stops at the first collection too deep (its scanner also
/// stops flow collections at 255 levels). Syntax errors are left to serde_yaml_ng, which
/// reports them as before.
pub fn check_yaml_depth(text: &str) -> Result<(), TooDeep> {
    use saphyr_parser::{Event, Parser};
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    while let Some(next) = parser.next_event() {
        let marker = match next {
            Ok((event, span)) => match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    depth += 1;
                    if depth <= MAX_YAML_DEPTH {
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
    fn an_endless_file_is_refused_after_the_limit() {
        let error = read_text(Path::new("/dev/zero"), 1024).expect_err("endless");
        assert!(
            matches!(error, ReadError::TooLarge { limit: 1024 }),
            "{error}"
        );
    }

    #[test]
    fn deep_flow_and_block_nesting_is_refused_fast() {
        let started = std::time::Instant::now();
        let flow = "[".repeat(200 * 1024);
        // The scanner reads ahead in flow collections: refused where it stops, at level 256.
        assert!(
            matches!(check_yaml_depth(&flow), Err(TooDeep { line: 1, .. })),
            "{:?}",
            check_yaml_depth(&flow)
        );
        let block = "- ".repeat(100_000) + "x\n";
        assert_eq!(
            check_yaml_depth(&block),
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
        let fine = format!("a: {}{}\n", "[".repeat(63), "]".repeat(63));
        assert_eq!(check_yaml_depth(&fine), Ok(()));
        assert_eq!(
            check_yaml_depth("a: [unclosed\n"),
            Ok(()),
            "syntax is serde's"
        );
    }
}
