//! The error of `ssh-deploy` and its exit class.

use std::path::Path;

use runner_protocol::{Diagnostic, ErrorClass, Reportable};

use crate::gate::GateError;

use crate::host_run::HostError;
use crate::pack::PackError;

/// Errors of `ssh-deploy`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or inputs.
    #[error("{0}")]
    Usage(String),
    /// An input file (inventory, compose deploy file) is invalid: every problem at its
    /// `file:line:col`, so GitHub annotates the line.
    #[error("{}", .0.iter().map(yaml_spans::diagnostic::one_line).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
    /// Packing or checking the artifact failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// One or more hosts failed before anything was switched (or nothing needed rolling back).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Hosts(Vec<HostError>),
    /// A host failed for an infrastructure reason (unreachable, connection lost, a stalled
    /// upload) and every host this run switched was rolled back: exit 3, targets restored.
    #[error("{0}")]
    RestoredAfterInfrastructure(String),
    /// A rollback did not complete: some host may serve the new release.
    #[error("rollback failed, manual intervention needed: {0}")]
    RollbackFailed(String),
    /// Writing an output failed.
    #[error(transparent)]
    Output(#[from] runner_protocol::output::OutputError),
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Usage(_) | Error::Invalid(_) => ErrorClass::Usage,
            Error::Pack(PackError::Unsafe { .. } | PackError::NonUtf8 { .. }) => ErrorClass::Usage,
            Error::Pack(PackError::Io { .. }) => ErrorClass::Usage,
            // Host errors that reach here failed before anything was switched (a held lock, a
            // refused command, a lost connection): the hosts are unchanged, which exit 3 says.
            // Failures after a switch end as RolledBack (exit 1) or RollbackFailed (exit 4).
            Error::Hosts(_) | Error::RestoredAfterInfrastructure(_) => ErrorClass::Infrastructure,
            Error::Output(error) => error.class(),
            Error::RollbackFailed(_) => ErrorClass::RollbackFailed,
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            Error::Invalid(problems) => problems.clone(),
            other => vec![Diagnostic::from_error(other)],
        }
    }
}

/// The error of the gate file at `path` (given with `flag`, its text as written `text`): its
/// problems as diagnostics at `file:line:col` (GitHub annotates the line), a placeholder
/// problem as a usage error naming the flag and the file.
pub(crate) fn gate_file(error: GateError, flag: &str, path: &Path, text: &str) -> Error {
    match error {
        GateError::Placeholder(message) => usage(format!("{flag} {}: {message}", path.display())),
        GateError::File(error) => {
            Error::Invalid(error.diagnostics(&path.display().to_string(), text))
        }
    }
}

/// A usage error (exit 2).
pub(crate) fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}
