//! `base: last-success`: what changed since the last successful run of this workflow on this
//! branch, asked of the GitHub REST API (`GET /repos/{repo}/actions/workflows/{file}/runs
//! ?branch=…&status=success`), whose newest run other than this one gives the base commit.
//!
//! No such run (the first run on a branch, or runs past their retention) falls back to the
//! event's own comparison, with a notice saying so. A token the API refuses is an error that
//! names the permission the job needs (`actions: read`).

use runner_protocol::Secret;
use serde::Deserialize;

/// The `base` value that asks for this.
pub const LAST_SUCCESS: &str = "last-success";

/// A successful run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    /// Run id.
    pub id: u64,
    /// The commit it ran on.
    pub head_sha: String,
    /// Its page.
    #[serde(default)]
    pub html_url: String,
    /// Its number in the workflow.
    #[serde(default)]
    pub run_number: u64,
}

#[derive(Debug, Deserialize)]
struct Runs {
    workflow_runs: Vec<WorkflowRun>,
}

/// What to ask for.
#[derive(Debug, Clone)]
pub struct Query {
    /// `GITHUB_API_URL`.
    pub url: String,
    /// `owner/name`.
    pub repository: String,
    /// The workflow file name (`ci.yml`), from `GITHUB_WORKFLOW_REF`.
    pub workflow: String,
    /// The branch.
    pub branch: String,
    /// This run (`GITHUB_RUN_ID`), never its own base.
    pub current_run: Option<u64>,
    /// The token (masked).
    pub token: Secret,
}

/// Why the last successful run could not be asked for.
#[derive(Debug, thiserror::Error)]
pub enum LastSuccessError {
    /// Something `base: last-success` needs is not there.
    #[error("`base: last-success` needs {missing}")]
    Setup {
        /// What is missing.
        missing: &'static str,
    },
    /// The API refused the token or does not show the workflow.
    #[error(
        "the GitHub API refused to list the runs of workflow `{workflow}` in {repository} ({status}): {message}"
    )]
    Refused {
        /// `owner/name`.
        repository: String,
        /// Workflow file.
        workflow: String,
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// Any other failure.
    #[error("listing the runs of workflow `{workflow}` failed: {message}")]
    Request {
        /// Workflow file.
        workflow: String,
        /// The cause.
        message: String,
    },
}

/// The workflow file name in `GITHUB_WORKFLOW_REF`
/// (`octo/repo/.github/workflows/ci.yml@refs/heads/main` -> `ci.yml`).
pub fn workflow_file(workflow_ref: &str) -> Option<String> {
    let path = workflow_ref.split('@').next()?;
    let file = path.rsplit('/').next()?;
    (!file.is_empty() && path.contains("/.github/workflows/")).then(|| file.to_owned())
}

/// The newest successful run of the workflow on the branch that is not this run.
pub fn find(query: &Query) -> Result<Option<WorkflowRun>, LastSuccessError> {
    let request = |message: String| LastSuccessError::Request {
        workflow: query.workflow.clone(),
        message,
    };
    let runtime = crate::github::runtime().map_err(|e| request(e.to_string()))?;
    runtime.block_on(async {
        let client =
            crate::github::client(&query.url, &query.token).map_err(|e| request(e.to_string()))?;
        let route = format!(
            "/repos/{}/actions/workflows/{}/runs",
            query.repository, query.workflow
        );
        let parameters = [
            ("branch", query.branch.as_str()),
            ("status", "success"),
            ("exclude_pull_requests", "true"),
            ("per_page", "10"),
        ];
        let runs: Runs = match client.get(&route, Some(&parameters)).await {
            Ok(runs) => runs,
            Err(octocrab::Error::GitHub { source, .. }) => {
                let status = source.status_code.as_u16();
                return Err(if matches!(status, 401 | 403 | 404) {
                    LastSuccessError::Refused {
                        repository: query.repository.clone(),
                        workflow: query.workflow.clone(),
                        status,
                        message: source.message.clone(),
                    }
                } else {
                    request(format!("{} ({status})", source.message))
                });
            }
            Err(other) => return Err(request(other.to_string())),
        };
        Ok(runs
            .workflow_runs
            .into_iter()
            .find(|run| Some(run.id) != query.current_run))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_file_comes_from_the_workflow_ref() {
        assert_eq!(
            workflow_file("octo/repo/.github/workflows/ci.yml@refs/heads/main").as_deref(),
            Some("ci.yml")
        );
        assert_eq!(workflow_file("octo/repo/ci.yml@refs/heads/main"), None);
    }
}
