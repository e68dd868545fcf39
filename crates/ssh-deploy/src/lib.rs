//! Deploy releases to Linux hosts over SSH: releases/<id>, atomic `current` switch, ordered restarts, gated rollback.
//!
//! `run` turns the clap [`Cli`] into validated options, then: [`pack`] builds the artifact,
//! [`commands`] spells every remote command (pure, snapshot-tested), [`plan`] lays them out per
//! host and batch for `--dry-run`, [`remote`] carries them (libssh2 or the local transport) and
//! [`deploy`] runs them, gates and rolls back. [`inventory`] reads hosts with per-host settings,
//! [`jump`] tunnels sessions through a jump host, [`canary`] adds the canary-first step and
//! [`interrupt`] turns SIGINT/SIGTERM into "finish the step, roll back, unlock, exit 130".

pub mod canary;
mod cli;
pub mod commands;
pub mod deploy;
pub mod interrupt;
pub mod inventory;
pub mod jump;
pub mod options;
pub mod pack;
pub mod plan;
pub mod proxy;
pub mod quote;
pub mod remote;
pub mod strategy;
pub mod tunnel;
mod watchdog;

pub use cli::{
    BlueGreenArgs, ChangeArgs, Cli, Command, DeployArgs, HostArgs, ManagerArg, PackArgs, ProxyArg,
    RollbackArgs, ScopeArg, StrategyArg,
};
pub use options::{Connection, Error, HostSpec};

use runner_protocol::{Runner, Verdict};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[
    "artifact",
    "artifact-sha256",
    "manifest",
    "release-id",
    "previous-release-id",
    "result",
    "hosts",
    "releases",
    "compose-report",
];

/// Runs `ssh-deploy` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    match cli.command {
        Command::Pack(args) => options::pack(&args, runner),
        Command::Deploy(args) if args.strategy == StrategyArg::Compose => {
            let options = strategy::compose::ComposeOptions::from_args(&args, runner)?;
            strategy::compose::deploy(&options, runner)
        }
        Command::Deploy(args) => {
            let options = options::DeployOptions::from_args(&args, runner)?;
            options::deploy(&options, runner)
        }
        Command::Rollback(args) => {
            let options = options::RollbackOptions::from_args(&args, runner)?;
            options::rollback(&options, runner)
        }
        Command::Releases(args) => {
            let connection = Connection::from_args(&args, runner)?;
            options::releases(&connection, runner)
        }
        Command::Unlock(args) => {
            let connection = Connection::from_args(&args, runner)?;
            options::unlock(&connection, runner)
        }
    }
}
