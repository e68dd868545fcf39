//! Deploy releases to Linux hosts over SSH: releases/<id>, atomic `current` switch, ordered restarts, gated rollback.
//!
//! The binary is a thin `main.rs` over [`run`]; this skeleton parses the common flags and
//! reports that the tool's logic has not landed yet (issue #8).

mod cli;

pub use cli::Cli;
use runner_protocol::{ErrorClass, Reportable, Runner, Verdict};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[];

/// Errors of `ssh-deploy`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tool's logic is not implemented yet.
    #[error("ssh-deploy is not implemented yet (issue #8); only --help and --version work")]
    NotImplemented,
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::NotImplemented => ErrorClass::Usage,
        }
    }
}

/// Runs `ssh-deploy` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let _ = (cli, runner);
    Err(Error::NotImplemented)
}
