//! Bounded reading: every input file is refused past a documented size before it is read into
//! memory, so a pull request cannot make a job read gigabytes.

use std::io::Read as _;
use std::path::Path;

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

impl ReadError {
    /// The error as an `io::Error` (for callers whose error carries one).
    pub fn into_io(self) -> std::io::Error {
        match self {
            ReadError::Io(source) => source,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

/// Reads a text file of at most `limit` bytes. Never reads more than `limit + 1` bytes, even
/// from a file that grows, a FIFO or `/dev/zero`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_beyond() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "abcd").expect("write");
        assert_eq!(read_text(&path, 4).expect("at the limit"), "abcd");
        assert!(matches!(
            read_text(&path, 3),
            Err(ReadError::TooLarge { limit: 3 })
        ));
    }

    #[test]
    fn an_endless_file_is_refused_after_the_limit() {
        let error = read_text(Path::new("/dev/zero"), 1024).expect_err("endless");
        assert!(
            matches!(error, ReadError::TooLarge { limit: 1024 }),
            "{error}"
        );
    }
}
