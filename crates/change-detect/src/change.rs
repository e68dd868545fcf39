//! Changed files: a path (raw bytes, exactly as git stores it), a status and, for a detected
//! rename or copy, the previous path.

use std::fmt;

/// How a file changed. The YAML status words are the lower-case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// `A`, API `added`.
    Added,
    /// `M`, API `modified`/`changed`.
    Modified,
    /// `D`, API `removed`.
    Deleted,
    /// `R` (only with rename detection).
    Renamed,
    /// `C` (only with copy detection), API `copied`.
    Copied,
    /// `U`.
    Unmerged,
    /// `T` (type change), `X`, `B` and API statuses without a YAML word: they match rules
    /// without a status and never match status rules, as in dorny/paths-filter.
    Other,
}

impl Status {
    /// The statuses a filters file can name, in the order they are documented.
    pub const NAMED: [Status; 6] = [
        Status::Added,
        Status::Modified,
        Status::Deleted,
        Status::Renamed,
        Status::Copied,
        Status::Unmerged,
    ];

    /// The YAML word (`added`, …), or `other`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Modified => "modified",
            Status::Deleted => "deleted",
            Status::Renamed => "renamed",
            Status::Copied => "copied",
            Status::Unmerged => "unmerged",
            Status::Other => "other",
        }
    }

    /// Parses a YAML status word, case-insensitively (dorny lower-cases them).
    pub fn from_word(word: &str) -> Option<Status> {
        Status::NAMED
            .into_iter()
            .find(|status| status.word().eq_ignore_ascii_case(word))
    }

    /// The status for a `git diff --name-status` letter.
    pub fn from_git_letter(letter: u8) -> Status {
        match letter {
            b'A' => Status::Added,
            b'M' => Status::Modified,
            b'D' => Status::Deleted,
            b'R' => Status::Renamed,
            b'C' => Status::Copied,
            b'U' => Status::Unmerged,
            _ => Status::Other,
        }
    }

    /// A bit for [`StatusSet`].
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of statuses, as named by a `added|modified: pattern` rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusSet(u8);

impl StatusSet {
    /// Adds a status.
    pub fn insert(&mut self, status: Status) {
        self.0 |= status.bit();
    }

    /// True when `status` is in the set.
    pub fn contains(self, status: Status) -> bool {
        self.0 & status.bit() != 0
    }

    /// True when no status was added.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A repository-relative path as git prints it with `-z`: `/`-separated, no quoting, and not
/// necessarily UTF-8.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(Box<[u8]>);

impl RepoPath {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn to_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// True when the path is valid UTF-8.
    pub fn is_utf8(&self) -> bool {
        std::str::from_utf8(&self.0).is_ok()
    }
}

impl From<&str> for RepoPath {
    fn from(value: &str) -> Self {
        Self::from_bytes(value.as_bytes())
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_lossy(), f)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_lossy())
    }
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path after the change (for a deletion, the deleted path).
    pub path: RepoPath,
    /// How it changed.
    pub status: Status,
    /// The path before a detected rename or copy.
    pub previous: Option<RepoPath>,
}

impl Change {
    /// A change without a previous path.
    pub fn new(path: impl Into<RepoPath>, status: Status) -> Self {
        Self {
            path: path.into(),
            status,
            previous: None,
        }
    }
}

/// How renames are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Renames {
    /// As dorny/paths-filter: the old path `deleted` and the new path `added`, both matched.
    #[default]
    Split,
    /// Git rename detection: one `renamed` change with its previous path; a rule matches when
    /// either path matches.
    Detect,
}

/// Turns detected renames into a deletion plus an addition (the [`Renames::Split`] model).
pub fn split_renames(changes: Vec<Change>) -> Vec<Change> {
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        split_rename(change, &mut |c| out.push(c));
    }
    out
}

/// [`split_renames`] for one change, handing the result to `emit`.
pub fn split_rename(change: Change, emit: &mut dyn FnMut(Change)) {
    match (change.status, change.previous) {
        (Status::Renamed, Some(previous)) => {
            emit(Change {
                path: previous,
                status: Status::Deleted,
                previous: None,
            });
            emit(Change {
                path: change.path,
                status: Status::Added,
                previous: None,
            });
        }
        (Status::Copied, Some(_)) => emit(Change {
            path: change.path,
            status: Status::Added,
            previous: None,
        }),
        (status, previous) => emit(Change {
            path: change.path,
            status,
            previous,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_are_case_insensitive_and_closed() {
        assert_eq!(Status::from_word("Added"), Some(Status::Added));
        assert_eq!(Status::from_word("UNMERGED"), Some(Status::Unmerged));
        assert_eq!(Status::from_word("add"), None);
        assert_eq!(Status::from_word("other"), None);
    }

    #[test]
    fn split_renames_reports_both_paths() {
        let renamed = Change {
            path: "new.rs".into(),
            status: Status::Renamed,
            previous: Some("old.rs".into()),
        };
        assert_eq!(
            split_renames(vec![renamed]),
            [
                Change::new("old.rs", Status::Deleted),
                Change::new("new.rs", Status::Added)
            ]
        );
    }
}
