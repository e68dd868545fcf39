//! Errors of a run, with their class (exit code) and what the user sees.

use std::path::PathBuf;

use runner_protocol::event::EventError;
use runner_protocol::output::OutputError;
use runner_protocol::{Diagnostic, ErrorClass, Reportable};

use crate::api::ApiError;
use crate::config::FiltersError;
use crate::decision::PlanError;
use crate::git::GitError;
use crate::last_deployment::LastDeploymentError;
use crate::last_success::LastSuccessError;
use crate::matcher::CompileError;
use crate::options::OptionsError;

/// Errors of `change-detect`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag value is invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The filters file cannot be read.
    #[error("cannot read the filters file {path}")]
    FiltersFile {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The filters are invalid.
    #[error(transparent)]
    Config(Box<FiltersError>),
    /// The patterns could not be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The event payload is unreadable.
    #[error(transparent)]
    Event(#[from] EventError),
    /// No range could be decided.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Git is needed and the directory is not a repository.
    #[error("{dir} is not inside a git repository")]
    NotARepository {
        /// The working directory.
        dir: PathBuf,
    },
    /// The REST path needs a token and a repository.
    #[error("listing pull request files through the GitHub API needs {missing}")]
    ApiSetup {
        /// What is missing.
        missing: &'static str,
    },
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The GitHub API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// `base: last-success` could not be resolved.
    #[error(transparent)]
    LastSuccess(#[from] crate::last_success::LastSuccessError),
    /// `base: last-deployment:<environment>` could not be resolved.
    #[error(transparent)]
    LastDeployment(#[from] LastDeploymentError),
    /// An output could not be recorded.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The list files could not be written.
    #[error("cannot write the file lists to {path}")]
    FilesDir {
        /// `--files-dir`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Options(_)
            | Error::FiltersFile { .. }
            | Error::Config(_)
            | Error::Compile(_)
            | Error::Event(_)
            | Error::Plan(_)
            | Error::NotARepository { .. }
            | Error::ApiSetup { .. }
            | Error::LastSuccess(LastSuccessError::Setup { .. })
            | Error::LastDeployment(LastDeploymentError::Setup { .. }) => ErrorClass::Usage,
            Error::Output(error) => error.class(),
            Error::Git(_)
            | Error::Api(_)
            | Error::LastSuccess(_)
            | Error::LastDeployment(_)
            | Error::FilesDir { .. } => ErrorClass::Infrastructure,
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        let diagnostic = match self {
            Error::Config(error) => error.diagnostic(),
            Error::Options(error) => Diagnostic::new(error.message.clone()).with_hint(error.hint.clone()),
            Error::Plan(error) => Diagnostic::new(error.message.clone()).with_hint(error.hint.clone()),
            Error::FiltersFile { .. } => Diagnostic::from_error(self)
                .with_hint("the `filters` input is a path when it has no newline and no `:`; paths are relative to `working-directory`"),
            Error::NotARepository { .. } => Diagnostic::from_error(self).with_hint(
                "check the repository out first (actions/checkout), or on pull requests give a `token` to use the REST API",
            ),
            Error::ApiSetup { .. } => Diagnostic::from_error(self).with_hint(
                "pass `token: ${{ github.token }}` with `permissions: pull-requests: read`, or check the repository out",
            ),
            Error::Git(error) => {
                let diagnostic = Diagnostic::from_error(self);
                match error.hint() {
                    Some(hint) => diagnostic.with_hint(hint),
                    None => diagnostic,
                }
            }
            Error::LastSuccess(LastSuccessError::Refused { .. }) => Diagnostic::from_error(self).with_hint(
                "give the job `permissions: { actions: read, contents: read }` and pass `token: ${{ github.token }}`; \
                 a 404 also means the token cannot see the workflow file GITHUB_WORKFLOW_REF names",
            ),
            Error::LastSuccess(LastSuccessError::Setup { .. }) => Diagnostic::from_error(self).with_hint(
                "`base: last-success` works in GitHub Actions with `token: ${{ github.token }}` and `permissions: actions: read`; \
                 elsewhere pass the commit of the last good build as `--base`",
            ),
            Error::LastDeployment(LastDeploymentError::Refused { .. }) => Diagnostic::from_error(self).with_hint(
                "give the job `permissions: { deployments: read, contents: read }` and pass `token: ${{ github.token }}`",
            ),
            Error::LastDeployment(LastDeploymentError::Setup { .. }) => Diagnostic::from_error(self).with_hint(
                "`base: last-deployment:production` works in GitHub Actions with `token: ${{ github.token }}` and `permissions: deployments: read`; \
                 elsewhere pass the deployed commit as `--base`",
            ),
            Error::Api(ApiError::Truncated { .. }) => Diagnostic::from_error(self).with_hint(
                "check the repository out (actions/checkout) so change-detect can use git, which has no limit",
            ),
            _ => Diagnostic::from_error(self),
        };
        vec![diagnostic]
    }
}
