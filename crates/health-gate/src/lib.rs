//! Gate a deploy: wait for readiness, then observe success rate and latency, and decide go or rollback.
//!
//! The binary is a thin `main.rs` over [`run`]; this skeleton parses the common flags and
//! reports that the tool's logic has not landed yet (issue #7).

mod cli;

pub use cli::Cli;
use runner_protocol::{ErrorClass, Reportable, Runner, Verdict};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[];

/// Errors of `health-gate`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tool's logic is not implemented yet.
    #[error("health-gate is not implemented yet (issue #7); only --help and --version work")]
    NotImplemented,
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::NotImplemented => ErrorClass::Usage,
        }
    }
}

/// Runs `health-gate` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let _ = (cli, runner);
    Err(Error::NotImplemented)
}
