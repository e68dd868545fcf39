//! Where the base of the comparison came from, as the `base-source` output: a workflow can
//! branch on it (for example run everything when there was no base at all) instead of parsing
//! the log's notice.

use std::fmt;

/// The rule that chose the base. The output value is the kebab-case name below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseSource {
    /// `base` (or `CHANGE_DETECT_BASE`) named it.
    Input,
    /// `base: last-success`: the head commit of this workflow's last successful run.
    LastSuccess,
    /// `base: last-deployment:<environment>`: the newest successful deployment's commit.
    LastDeployment,
    /// `base: HEAD`: uncommitted changes against HEAD.
    Worktree,
    /// A pull request's base (the payload's, or its file list from the REST API).
    PullRequest,
    /// A merge queue group's base.
    MergeGroup,
    /// A push's previous tip (`before`).
    PreviousTip,
    /// The repository's default branch, at the merge base (first push, force push, other events).
    DefaultBranch,
    /// The previous tag (a tag push).
    PreviousTag,
    /// No base: every file counts as added (first push with nothing to compare with).
    None,
    /// A deleted ref: nothing is compared.
    DeletedRef,
    /// GitLab `CI_MERGE_REQUEST_DIFF_BASE_SHA`.
    GitlabMergeRequest,
    /// GitLab `CI_COMMIT_BEFORE_SHA`.
    GitlabBefore,
    /// GitLab `CI_DEFAULT_BRANCH` (first pipeline of a new branch).
    GitlabDefaultBranch,
    /// Buildkite `BUILDKITE_PULL_REQUEST_BASE_BRANCH`.
    BuildkitePullRequest,
    /// Buildkite `BUILDKITE_PIPELINE_DEFAULT_BRANCH`.
    BuildkiteDefaultBranch,
    /// Jenkins `CHANGE_TARGET`.
    JenkinsChangeTarget,
    /// Jenkins `GIT_PREVIOUS_SUCCESSFUL_COMMIT`.
    JenkinsPreviousSuccessful,
    /// Jenkins `GIT_PREVIOUS_COMMIT`.
    JenkinsPrevious,
}

impl BaseSource {
    /// Every value, in the order the README's table lists them.
    pub const ALL: [BaseSource; 19] = [
        BaseSource::Input,
        BaseSource::LastSuccess,
        BaseSource::LastDeployment,
        BaseSource::Worktree,
        BaseSource::PullRequest,
        BaseSource::MergeGroup,
        BaseSource::PreviousTip,
        BaseSource::DefaultBranch,
        BaseSource::PreviousTag,
        BaseSource::None,
        BaseSource::DeletedRef,
        BaseSource::GitlabMergeRequest,
        BaseSource::GitlabBefore,
        BaseSource::GitlabDefaultBranch,
        BaseSource::BuildkitePullRequest,
        BaseSource::BuildkiteDefaultBranch,
        BaseSource::JenkinsChangeTarget,
        BaseSource::JenkinsPreviousSuccessful,
        BaseSource::JenkinsPrevious,
    ];

    /// The output value.
    pub fn as_str(self) -> &'static str {
        match self {
            BaseSource::Input => "input",
            BaseSource::LastSuccess => "last-success",
            BaseSource::LastDeployment => "last-deployment",
            BaseSource::Worktree => "worktree",
            BaseSource::PullRequest => "pull-request",
            BaseSource::MergeGroup => "merge-group",
            BaseSource::PreviousTip => "previous-tip",
            BaseSource::DefaultBranch => "default-branch",
            BaseSource::PreviousTag => "previous-tag",
            BaseSource::None => "none",
            BaseSource::DeletedRef => "deleted-ref",
            BaseSource::GitlabMergeRequest => "gitlab-merge-request",
            BaseSource::GitlabBefore => "gitlab-before",
            BaseSource::GitlabDefaultBranch => "gitlab-default-branch",
            BaseSource::BuildkitePullRequest => "buildkite-pull-request",
            BaseSource::BuildkiteDefaultBranch => "buildkite-default-branch",
            BaseSource::JenkinsChangeTarget => "jenkins-change-target",
            BaseSource::JenkinsPreviousSuccessful => "jenkins-previous-successful",
            BaseSource::JenkinsPrevious => "jenkins-previous",
        }
    }
}

impl fmt::Display for BaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_and_the_action_name_every_value() {
        let readme = include_str!("../../../actions/change-detect/README.md");
        let action = include_str!("../../../actions/change-detect/action.yml");
        for source in BaseSource::ALL {
            let value = source.as_str();
            assert!(
                readme.contains(&format!("`{value}`")),
                "README lacks `{value}`"
            );
            assert!(action.contains(value), "action.yml lacks {value}");
        }
    }
}
