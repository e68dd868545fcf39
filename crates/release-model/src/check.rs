//! Load, validate and report a descriptor through the runner: the one entry point both tools
//! use, so they validate identically.

use std::path::{Path, PathBuf};

use runner_protocol::{Diagnostic, ErrorClass, Reportable, Runner};

use crate::problem::{warning_annotation, warning_text};
use crate::refs::RefLookup;
use crate::validate::{Checks, LookupError, validate};
use crate::version::VersionScheme;
use crate::{Document, Invalid, ReadError, into_result};

/// The descriptor flags both tools share (each binary gives them its own env prefix).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Descriptor")]
pub struct DescriptorArgs {
    /// The release descriptor: a release.yaml, or a bundles.yaml holding only `bundles:`.
    #[arg(long, value_name = "FILE", default_value = "release.yaml")]
    pub descriptor: PathBuf,

    /// Accept branch refs (a warning instead of an error), for development releases.
    ///
    /// A production release pins tags or full commit SHAs; a branch moves under you.
    #[arg(long, value_name = "BOOL")]
    pub allow_branch_refs: bool,

    /// Check that every `env:NAME` prop is set and every `file:/path` prop exists.
    ///
    /// Only existence is checked; values are never read into messages.
    #[arg(long, value_name = "BOOL")]
    pub check_prop_refs: bool,
}

impl DescriptorArgs {
    /// The checks these flags ask for.
    pub fn checks(&self, version_scheme: Option<VersionScheme>) -> Checks {
        Checks {
            allow_branch_refs: self.allow_branch_refs,
            check_prop_refs: self.check_prop_refs,
            version_scheme,
            pins_unused: false,
            item_repos_unused: false,
        }
    }
}

/// Why a descriptor cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The descriptor has errors (all of them are in the diagnostics).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A remote could not be asked about a ref.
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

impl Reportable for CheckError {
    fn class(&self) -> ErrorClass {
        match self {
            CheckError::Read(_) | CheckError::Invalid(_) => ErrorClass::Usage,
            CheckError::Lookup(_) => ErrorClass::Infrastructure,
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            CheckError::Invalid(invalid) => {
                let mut diagnostics = invalid.errors.clone();
                diagnostics.push(Diagnostic::new(invalid.to_string()));
                diagnostics
            }
            other => vec![Diagnostic::from_error(other)],
        }
    }
}

/// Shows warnings: `::warning` annotations under GitHub, `warning:` text otherwise.
pub fn show_warnings(runner: &Runner, warnings: &[Diagnostic]) {
    for warning in warnings {
        if runner.console().is_github() {
            runner.annotate(&warning_annotation(warning));
        } else {
            for line in warning_text(warning).lines() {
                runner.console().log(line);
            }
        }
    }
}

/// Reads, loads and validates `path`; shows the warnings and returns the document, or every
/// error at once.
pub fn check_file(
    runner: &Runner,
    path: &Path,
    checks: Checks,
    lookup: Option<&dyn RefLookup>,
) -> Result<Document, CheckError> {
    let document = crate::read(path)?;
    let problems = validate(&document, checks, runner.env(), lookup)?;
    match into_result(document, &problems) {
        Ok(checked) => {
            show_warnings(runner, &checked.warnings);
            Ok(checked.document)
        }
        Err((invalid, warnings)) => {
            show_warnings(runner, &warnings);
            Err(CheckError::Invalid(invalid))
        }
    }
}
