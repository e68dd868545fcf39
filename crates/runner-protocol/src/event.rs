//! The triggering event, read from `GITHUB_EVENT_NAME` and the `GITHUB_EVENT_PATH` payload.
//!
//! Only the fields the suite decides on are modelled; unknown fields are ignored so new
//! payload versions keep working.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env::Env;

/// The all-zero SHA GitHub uses for "no commit" (a created or deleted ref).
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Errors while reading the event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The payload file could not be read.
    #[error("cannot read the event payload {path}")]
    Read {
        /// `GITHUB_EVENT_PATH`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The payload is not the JSON shape GitHub documents for this event.
    #[error("the {event} event payload {path} is not valid: {source}")]
    Parse {
        /// Event name.
        event: String,
        /// `GITHUB_EVENT_PATH`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The repository fields we use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Repository {
    /// `owner/name`.
    #[serde(default)]
    pub full_name: Option<String>,
    /// The default branch name (`main`).
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// A `push` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushEvent {
    /// The full ref pushed (`refs/heads/main`, `refs/tags/v1.2.3`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The tip before the push; [`ZERO_SHA`] when the ref was created.
    pub before: String,
    /// The tip after the push; [`ZERO_SHA`] when the ref was deleted.
    pub after: String,
    /// The push created the ref.
    #[serde(default)]
    pub created: bool,
    /// The push deleted the ref.
    #[serde(default)]
    pub deleted: bool,
    /// The push was a force push.
    #[serde(default)]
    pub forced: bool,
    /// For a tag push, the branch the tag points into, when GitHub knows it.
    #[serde(default)]
    pub base_ref: Option<String>,
    /// The repository.
    #[serde(default)]
    pub repository: Repository,
}

impl PushEvent {
    /// True for a tag push.
    pub fn is_tag(&self) -> bool {
        self.git_ref.starts_with("refs/tags/")
    }

    /// True when the ref did not exist before (`before` is all zeros or `created`).
    pub fn is_new_ref(&self) -> bool {
        self.created || self.before == ZERO_SHA
    }

    /// True when the ref was deleted.
    pub fn is_deleted_ref(&self) -> bool {
        self.deleted || self.after == ZERO_SHA
    }
}

/// One side of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestSide {
    /// Commit SHA. For `base` this is *not* the merge base and may be stale.
    pub sha: String,
    /// Branch name.
    #[serde(rename = "ref")]
    pub branch: String,
}

/// The pull request object of a `pull_request` / `pull_request_target` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    /// PR number.
    pub number: u64,
    /// Base side.
    pub base: PullRequestSide,
    /// Head side.
    pub head: PullRequestSide,
    /// Number of changed files GitHub reports (to detect the API's 3000-file cap).
    #[serde(default)]
    pub changed_files: Option<u64>,
}

/// A `pull_request` or `pull_request_target` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestEvent {
    /// `opened`, `synchronize`, ...
    #[serde(default)]
    pub action: Option<String>,
    /// The pull request.
    pub pull_request: PullRequest,
    /// The repository.
    #[serde(default)]
    pub repository: Repository,
}

/// The merge group of a `merge_group` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MergeGroup {
    /// The merge group's parent commit.
    pub base_sha: String,
    /// The merge group commit.
    pub head_sha: String,
    /// Full base ref (`refs/heads/main`).
    #[serde(default)]
    pub base_ref: Option<String>,
    /// Full head ref.
    #[serde(default)]
    pub head_ref: Option<String>,
}

/// A `merge_group` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MergeGroupEvent {
    /// The merge group.
    pub merge_group: MergeGroup,
    /// The repository.
    #[serde(default)]
    pub repository: Repository,
}

/// The event that started the workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `push`
    Push(PushEvent),
    /// `pull_request` or `pull_request_target` (see [`EventContext::name`]).
    PullRequest(PullRequestEvent),
    /// `merge_group`
    MergeGroup(MergeGroupEvent),
    /// `workflow_dispatch`, `schedule`, `workflow_run`, `repository_dispatch` and any other
    /// event that names no commit range.
    Other {
        /// Default branch, when the payload has a repository.
        repository: Repository,
    },
}

/// The event plus the `GITHUB_*` variables that describe the checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    /// `GITHUB_EVENT_NAME`.
    pub name: String,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// `GITHUB_REF`.
    pub git_ref: Option<String>,
    /// `GITHUB_REPOSITORY`.
    pub repository: Option<String>,
    /// `GITHUB_WORKSPACE`.
    pub workspace: Option<PathBuf>,
    /// The parsed payload.
    pub event: Event,
}

impl EventContext {
    /// Reads the event from the environment. `Ok(None)` outside GitHub Actions (no event name).
    pub fn from_env(env: &Env) -> Result<Option<Self>, EventError> {
        let Some(name) = env.get("GITHUB_EVENT_NAME") else {
            return Ok(None);
        };
        let event = match env.path("GITHUB_EVENT_PATH") {
            Some(path) => parse_event(name, &read_payload(&path)?, &path)?,
            None => Event::Other {
                repository: Repository::default(),
            },
        };
        Ok(Some(Self {
            name: name.to_owned(),
            sha: env.get("GITHUB_SHA").map(str::to_owned),
            git_ref: env.get("GITHUB_REF").map(str::to_owned),
            repository: env.get("GITHUB_REPOSITORY").map(str::to_owned),
            workspace: env.path("GITHUB_WORKSPACE"),
            event,
        }))
    }

    /// The repository's default branch, when the payload names it.
    pub fn default_branch(&self) -> Option<&str> {
        let repository = match &self.event {
            Event::Push(e) => &e.repository,
            Event::PullRequest(e) => &e.repository,
            Event::MergeGroup(e) => &e.repository,
            Event::Other { repository } => repository,
        };
        repository.default_branch.as_deref()
    }
}

fn read_payload(path: &Path) -> Result<Vec<u8>, EventError> {
    std::fs::read(path).map_err(|source| EventError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses a payload for the named event.
pub fn parse_event(name: &str, payload: &[u8], path: &Path) -> Result<Event, EventError> {
    let parse_error = |source| EventError::Parse {
        event: name.to_owned(),
        path: path.to_owned(),
        source,
    };
    Ok(match name {
        "push" => Event::Push(serde_json::from_slice(payload).map_err(parse_error)?),
        "pull_request" | "pull_request_target" => {
            Event::PullRequest(serde_json::from_slice(payload).map_err(parse_error)?)
        }
        "merge_group" => Event::MergeGroup(serde_json::from_slice(payload).map_err(parse_error)?),
        _ => {
            #[derive(Deserialize)]
            struct WithRepository {
                #[serde(default)]
                repository: Repository,
            }
            let payload: WithRepository = serde_json::from_slice(payload).map_err(parse_error)?;
            Event::Other {
                repository: payload.repository,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(name: &str, payload: &str) -> EventContext {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("event.json");
        std::fs::write(&path, payload).expect("write");
        let env = Env::from_pairs([
            ("GITHUB_EVENT_NAME", name.to_owned()),
            ("GITHUB_EVENT_PATH", path.display().to_string()),
            ("GITHUB_SHA", "abc".to_owned()),
        ]);
        EventContext::from_env(&env)
            .expect("parses")
            .expect("present")
    }

    #[test]
    fn push_to_new_branch_is_recognised() {
        let ctx = context(
            "push",
            &format!(
                r#"{{"ref":"refs/heads/feature","before":"{ZERO_SHA}","after":"1111111111111111111111111111111111111111",
                "created":true,"deleted":false,"forced":false,"repository":{{"default_branch":"main","full_name":"o/r"}}}}"#
            ),
        );
        let Event::Push(push) = &ctx.event else {
            panic!("push expected")
        };
        assert!(push.is_new_ref());
        assert!(!push.is_deleted_ref());
        assert!(!push.is_tag());
        assert_eq!(ctx.default_branch(), Some("main"));
        assert_eq!(ctx.sha.as_deref(), Some("abc"));
    }

    #[test]
    fn deleted_tag_and_forced_push_flags_are_read() {
        let ctx = context(
            "push",
            &format!(
                r#"{{"ref":"refs/tags/v1","before":"2222222222222222222222222222222222222222","after":"{ZERO_SHA}",
                "deleted":true,"forced":true}}"#
            ),
        );
        let Event::Push(push) = ctx.event else {
            panic!("push expected")
        };
        assert!(push.is_tag() && push.is_deleted_ref() && push.forced);
    }

    #[test]
    fn pull_request_and_target_share_a_shape() {
        for name in ["pull_request", "pull_request_target"] {
            let ctx = context(
                name,
                r#"{"action":"synchronize","number":7,"pull_request":{"number":7,"changed_files":3001,
                "base":{"sha":"b","ref":"main"},"head":{"sha":"h","ref":"feature"}}}"#,
            );
            let Event::PullRequest(pr) = ctx.event else {
                panic!("pull request expected")
            };
            assert_eq!(pr.pull_request.number, 7);
            assert_eq!(pr.pull_request.changed_files, Some(3001));
            assert_eq!(pr.pull_request.base.sha, "b");
            assert_eq!(pr.pull_request.head.branch, "feature");
        }
    }

    #[test]
    fn merge_group_shas_are_read() {
        let ctx = context(
            "merge_group",
            r#"{"action":"checks_requested","merge_group":{"base_sha":"b","head_sha":"h",
            "base_ref":"refs/heads/main","head_ref":"refs/heads/gh-readonly-queue/main/pr-1"}}"#,
        );
        let Event::MergeGroup(group) = ctx.event else {
            panic!("merge group expected")
        };
        assert_eq!(group.merge_group.base_sha, "b");
        assert_eq!(group.merge_group.head_sha, "h");
    }

    #[test]
    fn dispatch_and_schedule_are_other_events() {
        let ctx = context(
            "workflow_dispatch",
            r#"{"inputs":{},"ref":"refs/heads/main","repository":{"default_branch":"trunk"}}"#,
        );
        assert!(matches!(ctx.event, Event::Other { .. }));
        assert_eq!(ctx.default_branch(), Some("trunk"));
    }

    #[test]
    fn malformed_payload_names_the_event_and_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("event.json");
        std::fs::write(&path, r#"{"ref": 5}"#).expect("write");
        let env = Env::from_pairs([
            ("GITHUB_EVENT_NAME", "push".to_owned()),
            ("GITHUB_EVENT_PATH", path.display().to_string()),
        ]);
        let error = EventContext::from_env(&env).expect_err("invalid");
        let text = error.to_string();
        assert!(text.contains("push event payload"), "{text}");
        assert!(text.contains("event.json"), "{text}");
    }

    #[test]
    fn missing_payload_file_is_an_error() {
        let env = Env::from_pairs([
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", "/nonexistent/event.json"),
        ]);
        assert!(matches!(
            EventContext::from_env(&env),
            Err(EventError::Read { .. })
        ));
    }

    #[test]
    fn outside_github_there_is_no_event() {
        assert_eq!(EventContext::from_env(&Env::default()).expect("ok"), None);
    }
}
