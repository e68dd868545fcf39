//! The error of `health-gate` and its exit class.

use std::path::PathBuf;

use runner_protocol::{Diagnostic, ErrorClass, Reportable};

use crate::baseline::BaselineError;
use crate::config::ConfigError;

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
    #[error("{message}")]
    ParseGateFile {
        /// File.
        path: PathBuf,
        /// 1-based line and column.
        position: Option<(u32, u32)>,
        /// The file's text, for the snippet.
        text: String,
        /// serde's message.
        message: String,
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
                position,
                text,
                message,
            } => {
                let diagnostic = Diagnostic::new(format!("invalid gate file: {message}"))
                    .with_hint("see the gate file format in the health-gate README");
                let file = path.display().to_string();
                vec![match position {
                    Some((line, column)) => {
                        let at = yaml_spans::Position {
                            line: *line,
                            column: *column,
                            offset: 0,
                        };
                        let span = yaml_spans::Span { start: at, end: at };
                        yaml_spans::diagnostic::place(diagnostic, &file, text, span, None)
                    }
                    None => diagnostic.at(file, None, None),
                }]
            }
            Error::Config {
                origin,
                errors,
                text,
            } => {
                // An empty file has no positions (its problems are about what it lacks).
                let tree = text
                    .as_deref()
                    .and_then(|text| yaml_spans::parse(text).ok())
                    .filter(|root| !root.is_null());
                errors
                    .iter()
                    .map(|e| {
                        let diagnostic = Diagnostic::new(e.message.clone());
                        match (&tree, text) {
                            (Some(root), Some(text)) => yaml_spans::diagnostic::place(
                                diagnostic,
                                origin,
                                text,
                                root.locate(&e.field).span,
                                None,
                            ),
                            _ => diagnostic.at(origin.clone(), None, None),
                        }
                        .for_field(e.field.clone())
                    })
                    .collect()
            }
            other => vec![Diagnostic::from_error(other)],
        }
    }
}
