//! What a git ref is: a commit, a tag or a branch, decided by a remote when one is available
//! and by the ref's shape otherwise.

use serde::Serialize;

/// What a ref names, as the remote knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    /// A full commit SHA.
    Commit,
    /// A tag (lightweight or annotated).
    Tag,
    /// A branch (moves; development only).
    Branch,
}

impl RefKind {
    /// `commit`, `tag` or `branch`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Commit => "commit",
            RefKind::Tag => "tag",
            RefKind::Branch => "branch",
        }
    }
}

/// What a ref looks like, without asking anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefShape {
    /// 40 (SHA-1) or 64 (SHA-256) hex digits.
    Commit,
    /// 7 to 39 hex digits with a letter: an abbreviated SHA, which can become ambiguous.
    AbbreviatedCommit,
    /// Looks like a version tag (`v0.3.2`, `ui-v2026.11.24`, `v12`) or `refs/tags/...`.
    Tag,
    /// A well-known branch name (`main`, `develop`, `feature/x`) or `refs/heads/...`.
    Branch,
    /// Cannot tell (`stable`, `prod`).
    Unknown,
}

const BRANCH_NAMES: &[&str] = &[
    "main",
    "master",
    "develop",
    "development",
    "dev",
    "trunk",
    "staging",
    "next",
    "HEAD",
];
const BRANCH_PREFIXES: &[&str] = &[
    "refs/heads/",
    "feature/",
    "feat/",
    "fix/",
    "bugfix/",
    "hotfix/",
    "release/",
    "dependabot/",
    "renovate/",
];

/// True for a full commit SHA (40 or 64 hex digits).
pub fn is_full_sha(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Classifies a ref by its shape alone.
pub fn shape(git_ref: &str) -> RefShape {
    if is_full_sha(git_ref) {
        return RefShape::Commit;
    }
    if (7..40).contains(&git_ref.len())
        && git_ref.chars().all(|c| c.is_ascii_hexdigit())
        && git_ref.chars().any(|c| c.is_ascii_alphabetic())
    {
        return RefShape::AbbreviatedCommit;
    }
    if git_ref.starts_with("refs/tags/") {
        return RefShape::Tag;
    }
    if BRANCH_NAMES.contains(&git_ref) || BRANCH_PREFIXES.iter().any(|p| git_ref.starts_with(p)) {
        return RefShape::Branch;
    }
    if git_ref.chars().any(|c| c.is_ascii_digit()) {
        return RefShape::Tag;
    }
    RefShape::Unknown
}

/// Why a ref name is not a valid git ref (a subset of `git check-ref-format`), if it is not.
pub fn invalid_ref_name(git_ref: &str) -> Option<&'static str> {
    if git_ref.chars().any(|c| c.is_control() || c == ' ') {
        return Some("contains spaces or control characters");
    }
    if git_ref
        .chars()
        .any(|c| matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return Some("contains one of ~ ^ : ? * [ \\");
    }
    if git_ref.contains("..") || git_ref.contains("@{") || git_ref.contains("//") {
        return Some("contains `..`, `@{` or `//`");
    }
    if git_ref.starts_with(['/', '-', '.']) || git_ref.ends_with(['/', '.']) {
        return Some("starts with `/`, `-` or `.`, or ends with `/` or `.`");
    }
    if git_ref.ends_with(".lock") {
        return Some("ends with `.lock`");
    }
    None
}

/// A ref as a remote resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedRef {
    /// What it is.
    pub kind: RefKind,
    /// The commit it points at (tags peeled).
    pub commit: String,
}

/// Asks a remote what a ref is (git ls-remote, the GitHub API).
pub trait RefLookup {
    /// The ref's kind and commit; `Ok(None)` when the remote has no such ref.
    fn lookup(&self, repo: &str, git_ref: &str) -> Result<Option<ResolvedRef>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_common_refs() {
        let cases = [
            ("v0.3.2", RefShape::Tag),
            ("ui-v2026.11.24", RefShape::Tag),
            ("bundles-v2026.11.24", RefShape::Tag),
            ("v12", RefShape::Tag),
            ("refs/tags/stable", RefShape::Tag),
            ("main", RefShape::Branch),
            ("feature/login-2", RefShape::Branch),
            ("release/1.2", RefShape::Branch),
            ("refs/heads/x", RefShape::Branch),
            ("0123456789abcdef0123456789abcdef01234567", RefShape::Commit),
            ("abc1234", RefShape::AbbreviatedCommit),
            ("1234567", RefShape::Tag),
            ("stable", RefShape::Unknown),
        ];
        for (git_ref, expected) in cases {
            assert_eq!(shape(git_ref), expected, "{git_ref}");
        }
    }

    #[test]
    fn invalid_ref_names() {
        for bad in ["a b", "a..b", "a:b", "-x", "x/", "x.lock", "a~1", "a@{1}"] {
            assert!(invalid_ref_name(bad).is_some(), "{bad}");
        }
        for good in ["v1.2.3", "feature/x", "support@3-1", "ui-v2026.11.24"] {
            assert_eq!(invalid_ref_name(good), None, "{good}");
        }
    }
}
