//! The error of `release-descriptor-render` and its exit class.

use std::path::PathBuf;

use release_model::CheckError;
use runner_protocol::output::OutputError;
use runner_protocol::{Diagnostic, ErrorClass, Reportable};

use crate::images::ImageError;
use crate::lock::LockError;
use crate::templates::TemplateError;

/// Errors of `release-descriptor-render`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The descriptor cannot be read or is invalid.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The image set cannot be tagged.
    #[error("images: {0}")]
    Images(#[from] ImageError),
    /// `render` needs a full release for this.
    #[error("{file} holds only `bundles:`; {what} needs `release_name` and `platform`")]
    NotARelease {
        /// The descriptor.
        file: String,
        /// What needed it.
        what: &'static str,
    },
    /// A template failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Resolving refs for the lock file failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Writing a file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `--build-time` or `SOURCE_DATE_EPOCH` is malformed.
    #[error("SOURCE_DATE_EPOCH must be seconds since 1970, found `{0}`")]
    SourceDateEpoch(String),
    /// An output could not be recorded.
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Check(error) => error.class(),
            Error::Output(error) => error.class(),
            Error::Lock(_) => ErrorClass::Infrastructure,
            Error::Write { .. } => ErrorClass::Infrastructure,
            _ => ErrorClass::Usage,
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            Error::Check(error) => error.diagnostics(),
            Error::Template(error) => vec![error.diagnostic()],
            Error::Images(ImageError::MissingCustomerSha) => vec![
                Diagnostic::from_error(self)
                    .with_hint("pass --customer-sha (GITHUB_SHA is used when set)"),
            ],
            Error::Images(ImageError::InvalidTag { .. }) => vec![Diagnostic::from_error(self)
                .with_hint("tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; pin the platform to a tag like `v0.3.2`")],
            other => vec![Diagnostic::from_error(other)],
        }
    }
}
