//! The error of `health-gate` and its exit class.

use std::path::PathBuf;

use runner_protocol::{Diagnostic, ErrorClass, Reportable};

use crate::baseline::BaselineError;
use crate::config::{ConfigError, GateFileError};

/// Errors of `health-gate`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gate file could not be read.
    #[error("cannot read the gate file {path}")]
    ReadGateFile {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The gate file is not valid YAML for the model.
    #[error("{problem}")]
    ParseGateFile {
        /// File.
        path: PathBuf,
        /// The file's text, for the snippet.
        text: String,
        /// serde's message at its line and column.
        problem: GateFileError,
    },
    /// The gate is invalid; every problem is listed.
    #[error("the gate is invalid ({} problems)", .errors.len())]
    Config {
        /// Where the checks came from.
        origin: String,
        /// Problems.
        errors: Vec<ConfigError>,
        /// The gate file's text, which places each problem at its field's line and column;
        /// `None` for the command line.
        text: Option<String>,
    },
    /// Neither a gate file nor a quick-form check.
    #[error(
        "no checks: give --gate-file or at least one of --url, --grpc-addr, --sse-url, --tcp-addr"
    )]
    NoChecks,
    /// A quick-form flag is malformed.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Baseline problem.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The report file could not be written.
    #[error("cannot write the report to {path}")]
    WriteReport {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Output protocol error.
    #[error(transparent)]
    Output(#[from] runner_protocol::output::OutputError),
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Runtime(_) | Error::WriteReport { .. } => ErrorClass::Infrastructure,
            Error::Output(error) => error.class(),
            Error::Baseline(BaselineError::Io {
                action: "write", ..
            }) => ErrorClass::Infrastructure,
            _ => ErrorClass::Usage,
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            Error::ParseGateFile {
                path,
                text,
                problem,
            } => problem.diagnostics(&path.display().to_string(), text),
            Error::Config {
                origin,
                errors,
                text: Some(text),
            } => GateFileError::from_config(errors, text).diagnostics(origin, text),
            Error::Config {
                origin,
                errors,
                text: None,
            } => errors
                .iter()
                .map(|e| {
                    Diagnostic::new(e.message.clone())
                        .at(origin.clone(), None, None)
                        .for_field(e.field.clone())
                })
                .collect(),
            other => vec![Diagnostic::from_error(other)],
        }
    }
}
