//! Derive the runtime bundle descriptor AGENTIC_BUNDLES_JSON from release.yaml, and stage baked bundles.
//!
//! The binary is a thin `main.rs` over [`run`]; this skeleton parses the common flags and
//! reports that the tool's logic has not landed yet (issue #5).

mod cli;

pub use cli::Cli;
use runner_protocol::{ErrorClass, Reportable, Runner, Verdict};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[];

/// Errors of `bundle-json-gen`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tool's logic is not implemented yet.
    #[error("bundle-json-gen is not implemented yet (issue #5); only --help and --version work")]
    NotImplemented,
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::NotImplemented => ErrorClass::Usage,
        }
    }
}

/// Runs `bundle-json-gen` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let _ = (cli, runner);
    Err(Error::NotImplemented)
}
