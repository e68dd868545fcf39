//! Deploy to Amazon ECS: new task definition revisions, service update, honest wait, rollback.
//!
//! The binary is a thin `main.rs` over [`run`]; this skeleton parses the common flags and
//! reports that the tool's logic has not landed yet (issue #6).

pub mod api;
mod cli;
pub mod diff;
pub mod fleet;
pub mod replay;
pub mod taskdef;
pub mod watch;

pub use cli::Cli;
use runner_protocol::{ErrorClass, Reportable, Runner, Verdict};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[];

/// Errors of `ecs-taskdef-update`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tool's logic is not implemented yet.
    #[error("ecs-taskdef-update is not implemented yet (issue #6); only --help and --version work")]
    NotImplemented,
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::NotImplemented => ErrorClass::Usage,
        }
    }
}

/// Runs `ecs-taskdef-update` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let _ = (cli, runner);
    Err(Error::NotImplemented)
}
