//! Deploy releases to Linux hosts over SSH: releases/<id>, atomic `current` switch, ordered restarts, gated rollback.
//!
//! `run` turns the clap [`Cli`] into validated [`options`], then runs the subcommand's flow in
//! [`ops`]. A deploy hands the hosts to a [`strategy`] (symlink switch in batches, blue-green,
//! compose); each works a host through a [`host_run::HostRun`] (lock, stage, switch, restart,
//! gate, revert), whose remote command lines [`commands`] spells (pure, snapshot-tested) and
//! [`remote`] carries (libssh2 or the local transport), and every strategy ends through the
//! shared [`rollout`] (release log, retention, unlock, [`report`]). [`plan`] prints the symlink
//! plan for `--dry-run`; [`gate`] runs gate files through health-gate's embedding API;
//! [`canary`] records the baseline and observes the canary; [`schedule`] batches hosts;
//! [`inventory`] reads hosts with per-host settings, [`jump`] tunnels sessions through a jump
//! host, [`interrupt`] turns SIGINT/SIGTERM into "finish the step, roll back, unlock, exit 130".

mod canary;
mod cli;
mod commands;
mod connect;
mod error;
mod gate;
mod hooks;
mod host_run;
mod interrupt;
mod inventory;
mod jump;
mod ops;
mod options;
pub mod pack;
mod plan;
mod progress;
mod proxy;
mod quote;
mod remote;
mod report;
mod rollout;
mod schedule;
mod status;
pub mod strategy;
mod tunnel;
mod watchdog;

pub use cli::{
    BlueGreenArgs, ChangeArgs, Cli, Command, DeployArgs, ExecArgs, HostArgs, ManagerArg,
    MigrateOnArg, PackArgs, ProxyArg, RollbackArgs, ScopeArg, StrategyArg,
};
pub use error::Error;

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
    "exec",
];

/// Runs `ssh-deploy` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    match cli.command {
        Command::Pack(args) => ops::pack::pack(&args, runner),
        Command::Deploy(args) => ops::deploy::deploy(&args, runner),
        Command::Rollback(args) => {
            let options = options::RollbackOptions::from_args(&args, runner)?;
            ops::rollback::rollback(&options, runner)
        }
        Command::Releases(args) => {
            let connection = options::Connection::from_args(&args, runner)?;
            ops::releases::releases(&connection, runner)
        }
        Command::Unlock(args) => {
            let connection = options::Connection::from_args(&args, runner)?;
            ops::unlock::unlock(&connection, runner)
        }
        Command::Exec(args) => {
            let options = options::ExecOptions::from_args(&args, runner)?;
            ops::exec::exec(&options, runner)
        }
    }
}
