//! `ssh-deploy deploy`: validates the flags for the chosen strategy, prints the plan with
//! `--dry-run`, otherwise runs the runner's pre-deploy hooks, hands the hosts to the strategy
//! (which ends through the shared [`crate::rollout::Rollout`]), then the runner's post-deploy
//! and on-rollback hooks.

use runner_protocol::output::OutputValue;
use runner_protocol::{Runner, Verdict};

use crate::cli::{DeployArgs, StrategyArg};
use crate::error::Error;
use crate::hooks::{Event, HookEnv, Hooks, Side, run_on_runner};
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
        let env = env(options.release.as_str(), "compose");
        return with_runner_hooks(runner, &options.hooks, &env, |runner| {
            compose::deploy(&options, runner)
        });
    }
    let options = DeployOptions::from_args(args, runner)?;
    runner.set_output("release-id", options.release.as_str())?;
    runner.set_output("artifact-sha256", options.sha256.as_str())?;
    let hooks = &options.hooks;
    match &options.strategy {
        Strategy::SymlinkSwitch if options.settings.dry_run => {
            let plan = format!("{}{}", crate::plan::render(&options), hooks.plan());
            dry_run(runner, &plan)
        }
        Strategy::SymlinkSwitch => {
            let env = env(options.release.as_str(), "symlink");
            with_runner_hooks(runner, hooks, &env, |runner| {
                symlink::deploy(&options, runner)
            })
        }
        Strategy::BlueGreen(config) if options.settings.dry_run => {
            let plan = format!(
                "{}{}",
                blue_green::flow::render(&options, config),
                hooks.plan()
            );
            dry_run(runner, &plan)
        }
        Strategy::BlueGreen(config) => {
            let env = env(options.release.as_str(), "blue-green");
            with_runner_hooks(runner, hooks, &env, |runner| {
                blue_green::flow::deploy(&options, config, runner)
            })
        }
    }
}

fn env(release: &str, strategy: &str) -> HookEnv {
    HookEnv {
        release: release.to_owned(),
        strategy: strategy.to_owned(),
        ..HookEnv::default()
    }
}

/// Runs the runner's pre-deploy hooks (a failure stops here, nothing deployed: exit 1), then
/// `deploy`, then the runner's post-deploy hooks (with the result) and, when hosts were put
/// back, its on-rollback hooks. A failing post hook is a warning, or fails a successful step
/// with `--hooks-strict`.
fn with_runner_hooks(
    runner: &mut Runner,
    hooks: &Hooks,
    env: &HookEnv,
    deploy: impl FnOnce(&mut Runner) -> Result<Verdict, Error>,
) -> Result<Verdict, Error> {
    for hook in hooks.at(Event::PreDeploy, Side::Runner) {
        let env = env.at(Event::PreDeploy.name());
        match run_on_runner(&hook.command, &env) {
            Ok(output) => echo(runner, &output),
            Err(error) => {
                runner.set_output("result", "failed")?;
                return Ok(Verdict::Failed(format!(
                    "the pre-deploy hook `{}` failed ({error}); nothing was deployed",
                    hook.command
                )));
            }
        }
    }
    let verdict = deploy(runner);
    let result = match runner.outputs().value("result") {
        Some(OutputValue::Text(text)) => text.clone(),
        _ => String::new(),
    };
    let mut events = vec![Event::PostDeploy];
    if matches!(
        result.as_str(),
        "rolled-back" | "partial" | "interrupted" | "rollback-failed"
    ) {
        events.push(Event::OnRollback);
    }
    let mut failures = Vec::new();
    for event in events {
        for hook in hooks.at(event, Side::Runner) {
            let env = HookEnv {
                result: result.clone(),
                ..env.at(event.name())
            };
            match run_on_runner(&hook.command, &env) {
                Ok(output) => echo(runner, &output),
                Err(error) => {
                    let message = format!(
                        "the {} hook `{}` failed: {error}",
                        event.name(),
                        hook.command
                    );
                    runner.warn(&message);
                    failures.push(message);
                }
            }
        }
    }
    match verdict {
        Ok(Verdict::Success) if hooks.strict && !failures.is_empty() => Ok(Verdict::Failed(
            format!("{} (--hooks-strict)", failures.join("; ")),
        )),
        other => other,
    }
}

/// A runner hook's output, as untrusted text.
fn echo(runner: &Runner, output: &str) {
    if output.trim().is_empty() {
        return;
    }
    let block = runner.console().untrusted();
    for line in output.lines() {
        block.line(&format!("[hook] {line}"));
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
