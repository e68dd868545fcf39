//! The REST path: a pull request's files from `GET /repos/{owner}/{repo}/pulls/{n}/files`,
//! for jobs without a checkout.
//!
//! GitHub documents that this endpoint returns at most 3000 files. The list is therefore
//! checked against the pull request's `changed_files` from the event payload: a list that is
//! at the cap, or shorter than `changed_files`, is reported as truncated and never used as if
//! it were complete.

use runner_protocol::Secret;
use serde::Deserialize;

use crate::change::{Change, RepoPath, Status};

/// GitHub's cap on the files this endpoint returns.
pub const API_FILE_LIMIT: usize = 3000;

/// Errors of the REST path.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client could not be built (bad API URL).
    #[error("cannot use the GitHub API at {url}: {message}")]
    Client {
        /// `GITHUB_API_URL`.
        url: String,
        /// The cause.
        message: String,
    },
    /// A request failed.
    #[error("listing the files of pull request #{number} in {repository} failed: {message}")]
    Request {
        /// `owner/name`.
        repository: String,
        /// PR number.
        number: u64,
        /// The cause.
        message: String,
    },
    /// The API list is (or may be) incomplete.
    #[error(
        "the GitHub API listed {listed} files for pull request #{number}, which has {changed}; the API returns at most 3000"
    )]
    Truncated {
        /// PR number.
        number: u64,
        /// Files the API returned.
        listed: usize,
        /// `changed_files` from the payload, or "at least N".
        changed: String,
    },
}

/// One entry of the files list (only the fields we use; the rest are ignored).
#[derive(Debug, Deserialize)]
struct FileEntry {
    filename: String,
    status: String,
    #[serde(default)]
    previous_filename: Option<String>,
}

/// Where and as whom to call the API.
#[derive(Debug, Clone)]
pub struct ApiTarget {
    /// `GITHUB_API_URL`, e.g. `https://api.github.com`.
    pub url: String,
    /// `owner/name`.
    pub repository: String,
    /// The token (masked).
    pub token: Secret,
}

/// Lists a pull request's files, 100 per page, following `Link: rel="next"`.
///
/// `changed_files` is the payload's count; the result is an error when the list is truncated.
pub fn pull_request_files(
    target: &ApiTarget,
    number: u64,
    changed_files: Option<u64>,
) -> Result<Vec<Change>, ApiError> {
    let runtime = crate::github::runtime().map_err(|e| ApiError::Client {
        url: target.url.clone(),
        message: e.to_string(),
    })?;
    let entries = runtime.block_on(list(target, number))?;
    let listed = entries.len();
    let truncated = listed >= API_FILE_LIMIT
        || changed_files.is_some_and(|changed| u64::try_from(listed).unwrap_or(u64::MAX) < changed);
    if truncated {
        return Err(ApiError::Truncated {
            number,
            listed,
            changed: changed_files.map_or(format!("at least {listed}"), |c| c.to_string()),
        });
    }
    Ok(entries.into_iter().map(to_change).collect())
}

async fn list(target: &ApiTarget, number: u64) -> Result<Vec<FileEntry>, ApiError> {
    let request_error = |error: octocrab::Error| ApiError::Request {
        repository: target.repository.clone(),
        number,
        message: describe(&error),
    };
    let client =
        crate::github::client(&target.url, &target.token).map_err(|e| ApiError::Client {
            url: target.url.clone(),
            message: describe(&e),
        })?;
    let route = format!("/repos/{}/pulls/{number}/files", target.repository);
    let mut page: octocrab::Page<FileEntry> = client
        .get(&route, Some(&[("per_page", "100")]))
        .await
        .map_err(request_error)?;
    let mut entries = std::mem::take(&mut page.items);
    while let Some(mut next) = client
        .get_page::<FileEntry>(&page.next)
        .await
        .map_err(request_error)?
    {
        entries.append(&mut next.items);
        page = next;
    }
    Ok(entries)
}

/// octocrab's errors print only their variant name; include the GitHub message when present.
fn describe(error: &octocrab::Error) -> String {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            format!("{} ({})", source.message, source.status_code)
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(inner) = cause {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                cause = inner.source();
            }
            text
        }
    }
}

/// Maps an API entry to a change; renames keep their previous path (split later if asked).
fn to_change(entry: FileEntry) -> Change {
    let status = match entry.status.as_str() {
        "added" => Status::Added,
        "removed" => Status::Deleted,
        "modified" | "changed" => Status::Modified,
        "renamed" => Status::Renamed,
        "copied" => Status::Copied,
        _ => Status::Other,
    };
    let previous = match status {
        Status::Renamed | Status::Copied => entry.previous_filename.as_deref().map(RepoPath::from),
        _ => None,
    };
    Change {
        path: RepoPath::from(entry.filename.as_str()),
        status,
        previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_statuses_map_to_git_statuses() {
        let entry = |status: &str, previous: Option<&str>| FileEntry {
            filename: "new".into(),
            status: status.into(),
            previous_filename: previous.map(str::to_owned),
        };
        assert_eq!(to_change(entry("removed", None)).status, Status::Deleted);
        assert_eq!(to_change(entry("changed", None)).status, Status::Modified);
        assert_eq!(to_change(entry("unchanged", None)).status, Status::Other);
        let renamed = to_change(entry("renamed", Some("old")));
        assert_eq!(renamed.status, Status::Renamed);
        assert_eq!(renamed.previous, Some("old".into()));
    }
}
