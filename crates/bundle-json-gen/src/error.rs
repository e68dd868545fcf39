//! The error of `bundle-json-gen` and its exit class.

use std::path::PathBuf;

use release_model::CheckError;
use runner_protocol::output::OutputError;
use runner_protocol::{Diagnostic, ErrorClass, Reportable};

use crate::stage::StageError;
use crate::{descriptor, dotenv};

/// Errors of `bundle-json-gen`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The descriptor cannot be read or is invalid.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// Some `env:`/`file:` props could not be resolved (values are never shown).
    #[error("{} prop reference(s) could not be resolved", .0.len())]
    Props(Vec<Diagnostic>),
    /// Staging failed.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// The descriptor would not load on the target platform.
    #[error(transparent)]
    Shape(#[from] descriptor::ShapeError),
    /// The env file holds a value that cannot be replaced safely.
    #[error("cannot update {}: {source}", path.display())]
    Dotenv {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: dotenv::UnclosedQuote,
    },
    /// Writing a file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An output could not be recorded.
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Check(error) => error.class(),
            Error::Output(error) => error.class(),
            Error::Write { .. } | Error::Stage(StageError::Io { .. }) => ErrorClass::Infrastructure,
            _ => ErrorClass::Usage,
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            Error::Check(error) => error.diagnostics(),
            Error::Props(diagnostics) => {
                let mut all = diagnostics.clone();
                all.push(Diagnostic::from_error(self));
                all
            }
            Error::Stage(StageError::Exists { .. }) => vec![Diagnostic::from_error(self)
                .with_hint("remove the folder, or pass --replace=true to replace it")],
            Error::Shape(error) => vec![Diagnostic::from_error(self).with_hint(error.hint())],
            Error::Dotenv { path, source } => {
                let diagnostic = Diagnostic::new(format!(
                    "cannot update {}: the value of `{}` opens a {} quote that is never closed",
                    path.display(),
                    source.name,
                    source.quote
                ))
                .at(
                    path.display().to_string(),
                    u32::try_from(source.line).ok(),
                    u32::try_from(source.column).ok(),
                )
                .with_hint(
                    "close the quote (a value runs to its closing quote, across lines), or remove the variable from the file; nothing was written",
                );
                vec![diagnostic]
            }
            Error::Stage(StageError::NoCheckout { .. }) => vec![Diagnostic::from_error(self)
                .with_hint("pass the `checkouts` output of release-descriptor-render as --checkouts, or --checkout BUNDLE_ID=PATH")],
            other => vec![Diagnostic::from_error(other)],
        }
    }
}
