//! What a run compares and why: the outcome of deciding from the event ([`crate::plan`]) or
//! from another CI system's variables ([`crate::ci`]), below both.

use crate::base_source::BaseSource;

/// What to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Staged and unstaged changes against HEAD (`base: HEAD`).
    Worktree {
        /// Count untracked files as added.
        untracked: bool,
    },
    /// `git diff base head`: what differs between two commits.
    TwoDot {
        /// Base revision.
        base: String,
        /// Head revision.
        head: String,
    },
    /// `git diff base...head`: what head changes since it forked from base.
    ThreeDot {
        /// Base revision.
        base: String,
        /// Head revision.
        head: String,
    },
    /// A tag against the previous tag matching a pattern (every file when there is none).
    PreviousTag {
        /// The tag name.
        tag: String,
        /// Its commit (or the tag name).
        head: String,
        /// `--tag-pattern`.
        pattern: String,
    },
    /// Every file of a commit, as added (first push of a repository's default branch).
    AllFiles {
        /// The commit.
        head: String,
    },
    /// A pull request's files from the REST API; `fallback` is the git plan for when the
    /// list is truncated and a checkout exists.
    PullRequestApi {
        /// PR number.
        number: u64,
        /// `changed_files` from the payload.
        changed_files: Option<u64>,
        /// The git plan.
        fallback: Box<Plan>,
    },
    /// Nothing to compare (a deleted ref).
    Nothing,
}

/// A plan and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The plan.
    pub plan: Plan,
    /// Notices for the log (why this range was chosen).
    pub notices: Vec<String>,
    /// Warnings (inputs that were ignored).
    pub warnings: Vec<String>,
    /// The rule that chose the base (the `base-source` output).
    pub source: BaseSource,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    /// What is missing.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}
