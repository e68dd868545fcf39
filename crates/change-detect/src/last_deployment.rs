//! `base: last-deployment:<environment>`: what changed since the commit that is live in an
//! environment, asked of GitHub's deployments API. Deployments are listed newest first
//! (`GET /repos/{repo}/deployments?environment=…`); each one's newest status
//! (`GET /repos/{repo}/deployments/{id}/statuses`) says how it ended, and the newest deployment
//! whose newest status is `success` gives the base commit. A superseded success turns
//! `inactive` when the next one succeeds, so the first `success` met is the live one.
//!
//! None among the newest [`SCANNED`] deployments (a new environment, or only failures) falls
//! back to the event's own comparison, with a notice. A refused token names the permission
//! the job needs (`deployments: read`).

use runner_protocol::Secret;
use serde::Deserialize;

/// The `base` prefix that asks for this.
pub const PREFIX: &str = "last-deployment:";

/// How many of the newest deployments are looked at before giving up.
pub const SCANNED: usize = 30;

/// The environment named by a `base` value, when it asks for the last deployment.
pub fn environment(base: &str) -> Option<&str> {
    base.strip_prefix(PREFIX)
}

/// A deployment whose newest status is `success`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deployment {
    /// Deployment id.
    pub id: u64,
    /// The commit deployed.
    pub sha: String,
    /// The ref it was created from.
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    /// When it was created.
    #[serde(default)]
    pub created_at: String,
}

#[derive(Debug, Deserialize)]
struct Status {
    state: String,
}

/// What to ask for.
#[derive(Debug, Clone)]
pub struct Query {
    /// `GITHUB_API_URL`.
    pub url: String,
    /// `owner/name`.
    pub repository: String,
    /// The environment (`production`).
    pub environment: String,
    /// The token (masked).
    pub token: Secret,
}

/// Why the last deployment could not be asked for.
#[derive(Debug, thiserror::Error)]
pub enum LastDeploymentError {
    /// Something the base needs is not there.
    #[error("`base: last-deployment:<environment>` needs {missing}")]
    Setup {
        /// What is missing.
        missing: &'static str,
    },
    /// The API refused the token.
    #[error(
        "the GitHub API refused to list the deployments to `{environment}` in {repository} ({status}): {message}"
    )]
    Refused {
        /// `owner/name`.
        repository: String,
        /// The environment.
        environment: String,
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// Any other failure.
    #[error("listing the deployments to `{environment}` failed: {message}")]
    Request {
        /// The environment.
        environment: String,
        /// The cause.
        message: String,
    },
}

/// The newest deployment to the environment whose newest status is `success`.
pub fn find(query: &Query) -> Result<Option<Deployment>, LastDeploymentError> {
    let request = |message: String| LastDeploymentError::Request {
        environment: query.environment.clone(),
        message,
    };
    let refused_or = |error: octocrab::Error| match error {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            if matches!(status, 401 | 403 | 404) {
                LastDeploymentError::Refused {
                    repository: query.repository.clone(),
                    environment: query.environment.clone(),
                    status,
                    message: source.message.clone(),
                }
            } else {
                request(format!("{} ({status})", source.message))
            }
        }
        other => request(other.to_string()),
    };
    let runtime = crate::github::runtime().map_err(|e| request(e.to_string()))?;
    runtime.block_on(async {
        let client =
            crate::github::client(&query.url, &query.token).map_err(|e| request(e.to_string()))?;
        let per_page = SCANNED.to_string();
        let deployments: Vec<Deployment> = client
            .get(
                format!("/repos/{}/deployments", query.repository),
                Some(&[
                    ("environment", query.environment.as_str()),
                    ("per_page", per_page.as_str()),
                ]),
            )
            .await
            .map_err(refused_or)?;
        for deployment in deployments.into_iter().take(SCANNED) {
            let statuses: Vec<Status> = client
                .get(
                    format!(
                        "/repos/{}/deployments/{}/statuses",
                        query.repository, deployment.id
                    ),
                    Some(&[("per_page", "1")]),
                )
                .await
                .map_err(refused_or)?;
            if statuses.first().is_some_and(|s| s.state == "success") {
                return Ok(Some(deployment));
            }
        }
        Ok(None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_follows_the_prefix() {
        assert_eq!(
            environment("last-deployment:production"),
            Some("production")
        );
        assert_eq!(environment("last-deployment:"), Some(""));
        assert_eq!(environment("last-success"), None);
        assert_eq!(environment("main"), None);
    }
}
