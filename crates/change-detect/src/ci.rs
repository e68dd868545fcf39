//! The base outside GitHub Actions, without `--base`: what GitLab CI, Buildkite and Jenkins
//! say about the build, read from their documented variables (pure: [`CiContext`] is a
//! snapshot, [`decide`] makes the plan). The notice names the variable that decided, so the
//! log says where the base came from.
//!
//! | system | first that is set |
//! | --- | --- |
//! | GitLab (`GITLAB_CI`) | `CI_MERGE_REQUEST_DIFF_BASE_SHA` (merge request pipelines: the merge base); `CI_COMMIT_BEFORE_SHA` (push: the previous tip); all zeros (new branch): `CI_DEFAULT_BRANCH` at the merge base, every file on the default branch itself |
//! | Buildkite (`BUILDKITE`) | `BUILDKITE_PULL_REQUEST_BASE_BRANCH` (pull request builds); `BUILDKITE_PIPELINE_DEFAULT_BRANCH` for other branches; on the default branch: an error asking for `--base` |
//! | Jenkins (`JENKINS_URL`) | `CHANGE_TARGET` (multibranch change requests); `GIT_PREVIOUS_SUCCESSFUL_COMMIT`; `GIT_PREVIOUS_COMMIT`; else an error asking for `--base` |

use runner_protocol::env::Env;
use runner_protocol::event::ZERO_SHA;

use crate::base_source::BaseSource;
use crate::decision::{Decision, Plan, PlanError};

/// What a CI system says about the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiContext {
    /// GitLab CI/CD.
    GitLab {
        /// `CI_MERGE_REQUEST_DIFF_BASE_SHA`.
        merge_request_diff_base: Option<String>,
        /// `CI_MERGE_REQUEST_IID`.
        merge_request: Option<String>,
        /// `CI_COMMIT_BEFORE_SHA`.
        before: Option<String>,
        /// `CI_COMMIT_SHA`.
        sha: Option<String>,
        /// `CI_COMMIT_BRANCH`.
        branch: Option<String>,
        /// `CI_DEFAULT_BRANCH`.
        default_branch: Option<String>,
    },
    /// Buildkite.
    Buildkite {
        /// `BUILDKITE_PULL_REQUEST` (`false` outside pull requests).
        pull_request: Option<String>,
        /// `BUILDKITE_PULL_REQUEST_BASE_BRANCH`.
        base_branch: Option<String>,
        /// `BUILDKITE_COMMIT`.
        commit: Option<String>,
        /// `BUILDKITE_BRANCH`.
        branch: Option<String>,
        /// `BUILDKITE_PIPELINE_DEFAULT_BRANCH`.
        default_branch: Option<String>,
    },
    /// Jenkins (Git plugin, multibranch pipelines).
    Jenkins {
        /// `CHANGE_TARGET`.
        change_target: Option<String>,
        /// `CHANGE_ID`.
        change: Option<String>,
        /// `GIT_PREVIOUS_SUCCESSFUL_COMMIT`.
        previous_successful: Option<String>,
        /// `GIT_PREVIOUS_COMMIT`.
        previous: Option<String>,
        /// `GIT_COMMIT`.
        commit: Option<String>,
    },
}

impl CiContext {
    /// The CI system the environment belongs to, if any of the three.
    pub fn from_env(env: &Env) -> Option<Self> {
        let get = |name: &str| env.get(name).map(str::to_owned);
        if env.get("GITLAB_CI").is_some() {
            return Some(CiContext::GitLab {
                merge_request_diff_base: get("CI_MERGE_REQUEST_DIFF_BASE_SHA"),
                merge_request: get("CI_MERGE_REQUEST_IID"),
                before: get("CI_COMMIT_BEFORE_SHA"),
                sha: get("CI_COMMIT_SHA"),
                branch: get("CI_COMMIT_BRANCH"),
                default_branch: get("CI_DEFAULT_BRANCH"),
            });
        }
        if env.get("BUILDKITE").is_some() {
            return Some(CiContext::Buildkite {
                pull_request: get("BUILDKITE_PULL_REQUEST"),
                base_branch: get("BUILDKITE_PULL_REQUEST_BASE_BRANCH"),
                commit: get("BUILDKITE_COMMIT"),
                branch: get("BUILDKITE_BRANCH"),
                default_branch: get("BUILDKITE_PIPELINE_DEFAULT_BRANCH"),
            });
        }
        if env.get("JENKINS_URL").is_some() {
            return Some(CiContext::Jenkins {
                change_target: get("CHANGE_TARGET"),
                change: get("CHANGE_ID"),
                previous_successful: get("GIT_PREVIOUS_SUCCESSFUL_COMMIT"),
                previous: get("GIT_PREVIOUS_COMMIT"),
                commit: get("GIT_COMMIT"),
            });
        }
        None
    }
}

/// The plan for a CI build; `head` is `--ref` when given.
pub fn decide(ci: &CiContext, head: Option<&str>) -> Result<Decision, PlanError> {
    let mut decision = Decision {
        plan: Plan::Nothing,
        notices: Vec::new(),
        warnings: Vec::new(),
        source: BaseSource::None,
    };
    let head_or = |sha: &Option<String>| {
        head.map(str::to_owned)
            .or_else(|| sha.clone())
            .unwrap_or_else(|| "HEAD".into())
    };
    match ci {
        CiContext::GitLab {
            merge_request_diff_base,
            merge_request,
            before,
            sha,
            branch,
            default_branch,
        } => {
            let head = head_or(sha);
            if let Some(base) = merge_request_diff_base {
                decision.notices.push(format!(
                    "base from GitLab CI_MERGE_REQUEST_DIFF_BASE_SHA {base} (merge request !{}: \
                     where it forked from its target branch)",
                    merge_request.as_deref().unwrap_or("?")
                ));
                decision.plan = Plan::TwoDot {
                    base: base.clone(),
                    head,
                };
                decision.source = BaseSource::GitlabMergeRequest;
            } else if let Some(before) = before.as_deref().filter(|b| *b != ZERO_SHA) {
                decision.notices.push(format!(
                    "base from GitLab CI_COMMIT_BEFORE_SHA {before} (the branch's previous tip; \
                     after a force push, the rewritten one)"
                ));
                decision.plan = Plan::TwoDot {
                    base: before.to_owned(),
                    head,
                };
                decision.source = BaseSource::GitlabBefore;
            } else {
                let why = if before.is_some() {
                    "GitLab CI_COMMIT_BEFORE_SHA is all zeros (the first pipeline of a new branch)"
                } else {
                    "GitLab sets no CI_COMMIT_BEFORE_SHA here"
                };
                new_branch(
                    &mut decision,
                    why,
                    "CI_DEFAULT_BRANCH",
                    branch,
                    default_branch,
                    head,
                )?;
            }
        }
        CiContext::Buildkite {
            pull_request,
            base_branch,
            commit,
            branch,
            default_branch,
        } => {
            let head = head_or(commit);
            let in_pull_request = pull_request.as_deref().is_some_and(|p| p != "false");
            match base_branch.as_deref().filter(|_| in_pull_request) {
                Some(base) => {
                    decision.notices.push(format!(
                        "base from Buildkite BUILDKITE_PULL_REQUEST_BASE_BRANCH `{base}` (pull \
                         request #{}), compared at the merge base",
                        pull_request.as_deref().unwrap_or("?")
                    ));
                    decision.plan = Plan::ThreeDot {
                        base: base.to_owned(),
                        head,
                    };
                    decision.source = BaseSource::BuildkitePullRequest;
                }
                None if branch.is_some()
                    && branch != default_branch
                    && default_branch.is_some() =>
                {
                    let default = default_branch.clone().unwrap_or_default();
                    decision.notices.push(format!(
                        "base from Buildkite BUILDKITE_PIPELINE_DEFAULT_BRANCH `{default}` (a \
                         build of `{}` outside a pull request), compared at the merge base",
                        branch.as_deref().unwrap_or_default()
                    ));
                    decision.plan = Plan::ThreeDot {
                        base: default,
                        head,
                    };
                    decision.source = BaseSource::BuildkiteDefaultBranch;
                }
                None => {
                    return Err(PlanError {
                        message: "Buildkite names no previous commit for a build of the default \
                                  branch outside a pull request"
                            .into(),
                        hint: "pass --base (CHANGE_DETECT_BASE), e.g. the commit of the last \
                               successful build from the Buildkite API or a deploy tag"
                            .into(),
                    });
                }
            }
        }
        CiContext::Jenkins {
            change_target,
            change,
            previous_successful,
            previous,
            commit,
        } => {
            let head = head_or(commit);
            if let Some(target) = change_target {
                decision.notices.push(format!(
                    "base from Jenkins CHANGE_TARGET `{target}` (change request {}), compared \
                     at the merge base",
                    change.as_deref().unwrap_or("?")
                ));
                decision.plan = Plan::ThreeDot {
                    base: target.clone(),
                    head,
                };
                decision.source = BaseSource::JenkinsChangeTarget;
            } else if let Some(base) = previous_successful {
                decision.notices.push(format!(
                    "base from Jenkins GIT_PREVIOUS_SUCCESSFUL_COMMIT {base} (the last successful \
                     build of this job)"
                ));
                decision.plan = Plan::TwoDot {
                    base: base.clone(),
                    head,
                };
                decision.source = BaseSource::JenkinsPreviousSuccessful;
            } else if let Some(base) = previous {
                decision.notices.push(format!(
                    "base from Jenkins GIT_PREVIOUS_COMMIT {base} (the previous build, which did \
                     not succeed or is the only one known)"
                ));
                decision.plan = Plan::TwoDot {
                    base: base.clone(),
                    head,
                };
                decision.source = BaseSource::JenkinsPrevious;
            } else {
                return Err(PlanError {
                    message: "Jenkins names no previous commit (the first build of this job) and \
                              no change target"
                        .into(),
                    hint: "pass --base (CHANGE_DETECT_BASE) for the first build, e.g. origin/main"
                        .into(),
                });
            }
        }
    }
    Ok(decision)
}

/// A new branch: its merge base with the default branch, or every file on the default branch.
fn new_branch(
    decision: &mut Decision,
    why: &str,
    variable: &str,
    branch: &Option<String>,
    default_branch: &Option<String>,
    head: String,
) -> Result<(), PlanError> {
    match default_branch {
        Some(default) if branch.as_deref() != Some(default.as_str()) => {
            decision.notices.push(format!(
                "{why}: base from {variable} `{default}`, compared at the merge base"
            ));
            decision.plan = Plan::ThreeDot {
                base: default.clone(),
                head,
            };
            decision.source = BaseSource::GitlabDefaultBranch;
        }
        Some(default) => {
            decision.notices.push(format!(
                "{why}, on the default branch `{default}`: every file counts as added"
            ));
            decision.plan = Plan::AllFiles { head };
            decision.source = BaseSource::None;
        }
        None => {
            return Err(PlanError {
                message: format!("{why}, and {variable} is not set"),
                hint: "pass --base (CHANGE_DETECT_BASE)".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn gitlab_prefers_the_merge_request_base_then_before_then_the_default_branch() {
        let merge_request = env(&[
            ("GITLAB_CI", "true"),
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", "aaa"),
            ("CI_MERGE_REQUEST_IID", "7"),
            ("CI_COMMIT_BEFORE_SHA", ZERO_SHA),
            ("CI_COMMIT_SHA", "bbb"),
        ]);
        let decision =
            decide(&CiContext::from_env(&merge_request).expect("gitlab"), None).expect("plan");
        assert_eq!(
            decision.plan,
            Plan::TwoDot {
                base: "aaa".into(),
                head: "bbb".into()
            }
        );
        assert!(decision.notices[0].contains("CI_MERGE_REQUEST_DIFF_BASE_SHA"));
        let new_branch = env(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_BEFORE_SHA", ZERO_SHA),
            ("CI_COMMIT_BRANCH", "feature"),
            ("CI_DEFAULT_BRANCH", "main"),
        ]);
        let decision =
            decide(&CiContext::from_env(&new_branch).expect("gitlab"), None).expect("plan");
        assert!(matches!(decision.plan, Plan::ThreeDot { ref base, .. } if base == "main"));
        assert!(decision.notices[0].contains("all zeros"));
    }

    #[test]
    fn jenkins_and_buildkite_without_a_previous_commit_ask_for_base() {
        let jenkins = env(&[("JENKINS_URL", "http://jenkins")]);
        let error =
            decide(&CiContext::from_env(&jenkins).expect("jenkins"), None).expect_err("no base");
        assert!(error.hint.contains("--base"));
        let buildkite = env(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_PULL_REQUEST", "false"),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_PIPELINE_DEFAULT_BRANCH", "main"),
        ]);
        assert!(decide(&CiContext::from_env(&buildkite).expect("buildkite"), None).is_err());
        assert_eq!(CiContext::from_env(&env(&[])), None);
    }
}
