//! `ssh-deploy deploy`: validates the flags for the chosen strategy, prints the plan with
//! `--dry-run`, otherwise hands the hosts to the strategy, which ends through the shared
//! [`crate::rollout::Rollout`].

use runner_protocol::{Runner, Verdict};

use crate::cli::{DeployArgs, StrategyArg};
use crate::error::Error;
use crate::options::{DeployOptions, Strategy};
use crate::strategy::compose::ComposeOptions;
use crate::strategy::{blue_green, compose, symlink};

/// `deploy`: every strategy.
pub(crate) fn deploy(args: &DeployArgs, runner: &mut Runner) -> Result<Verdict, Error> {
    if args.strategy == StrategyArg::Compose {
        let options = ComposeOptions::from_args(args, runner)?;
        runner.set_output("release-id", options.release.as_str())?;
        if options.settings.dry_run {
            return dry_run(runner, &compose::render(&options));
        }
        return compose::deploy(&options, runner);
    }
    let options = DeployOptions::from_args(args, runner)?;
    runner.set_output("release-id", options.release.as_str())?;
    runner.set_output("artifact-sha256", options.sha256.as_str())?;
    match &options.strategy {
        Strategy::SymlinkSwitch if options.settings.dry_run => {
            dry_run(runner, &crate::plan::render(&options))
        }
        Strategy::SymlinkSwitch => symlink::deploy(&options, runner),
        Strategy::BlueGreen(config) if options.settings.dry_run => {
            dry_run(runner, &blue_green::flow::render(&options, config))
        }
        Strategy::BlueGreen(config) => blue_green::flow::deploy(&options, config, runner),
    }
}

/// Prints the plan; nothing connects.
fn dry_run(runner: &mut Runner, plan: &str) -> Result<Verdict, Error> {
    for line in plan.lines() {
        runner.console().log(line);
    }
    runner.set_output("result", "dry-run")?;
    Ok(Verdict::Success)
}
