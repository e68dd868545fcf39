//! Validate release.yaml and render what CI needs from it: versions, checkouts, images, lock file, templates.
//!
//! The binary is a thin `main.rs` over [`run`]; this skeleton parses the common flags and
//! reports that the tool's logic has not landed yet (issue #4).

mod cli;

pub use cli::Cli;
use runner_protocol::{ErrorClass, Reportable, Runner, Verdict};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[];

/// Errors of `release-descriptor-render`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tool's logic is not implemented yet.
    #[error(
        "release-descriptor-render is not implemented yet (issue #4); only --help and --version work"
    )]
    NotImplemented,
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::NotImplemented => ErrorClass::Usage,
        }
    }
}

/// Runs `release-descriptor-render` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let _ = (cli, runner);
    Err(Error::NotImplemented)
}
