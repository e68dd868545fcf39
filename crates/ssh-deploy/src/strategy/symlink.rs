//! The default strategy: per host lock + status -> stage (upload, verify, unpack) + switch
//! `current` -> restarts in order -> gate, batch after batch (the canary host alone first with
//! `--canary`). A failed batch is rolled back (with `--rollback-completed` or a signal, every
//! switched host is), then every host ends through the shared [`Rollout`].

use runner_protocol::Runner;
use runner_protocol::Verdict;

use crate::canary;
use crate::error::Error;
use crate::hooks::{self, Event, HookEnv, Hooks, MigrateOn, Side};
use crate::host_run::{HostContext, HostError, HostRun};
use crate::options::DeployOptions;
use crate::report::HostResult;
use crate::rollout::{FleetOutcome, Rollout};
use crate::schedule::parallel;

/// Host runs with their index in `--hosts`.
type Runs = Vec<(usize, HostRun)>;

/// Deploys one host: lock and status (pre-deploy hooks on the host), then (the canary's
/// baseline,) stage and switch (with a migration or pre-switch hooks: stage, migration, hooks,
/// then the switch), restarts, post-switch hooks, the gate (and the canary's observation).
fn deploy_host(
    run: &mut HostRun,
    context: &HostContext<'_>,
    options: &DeployOptions,
    canary: Option<&canary::Canary>,
    index: usize,
) -> Result<(), HostError> {
    let host_name = options.connection.hosts[index].name();
    // Lock and status first, so a canary baseline is read from the release serving now and no
    // other deploy can change it meanwhile.
    run.lock_and_read_status(context, Some(&options.sha256))?;
    let hooks = &options.hooks;
    let env = hook_env(options, Event::PreDeploy).on_host(run.previous.as_ref(), &host_name);
    let root = context.layout.root().as_str().to_owned();
    hooks::run_for_host(
        &only_on_hosts(hooks, Event::PreDeploy),
        Event::PreDeploy,
        run,
        context,
        &env,
        &root,
    )?;
    let baseline = match canary {
        Some(canary) => canary::record_baseline(run, context, canary, &host_name)?,
        None => None,
    };
    if hooks.before_switch() {
        run.stage(
            context,
            &options.artifact,
            &options.sha256,
            &options.release,
            &options.shared_paths,
        )?;
        let dir = context
            .layout
            .root()
            .join(&format!("releases/{}", options.release));
        if let Some((command, on)) = &hooks.migrate {
            if *on == MigrateOn::Each || index == 0 {
                let env = env.at("migrate");
                run.step(
                    context,
                    "migrate",
                    &hooks::host_command(&dir, &env, command),
                    None,
                )?;
            }
        }
        let env = env.at(Event::PreSwitch.name());
        hooks::run_for_host(hooks, Event::PreSwitch, run, context, &env, &dir)?;
        run.activate(context, &options.release)?;
    } else {
        run.stage_and_activate(
            context,
            &options.artifact,
            &options.sha256,
            &options.release,
            &options.shared_paths,
        )?;
    }
    let current = context.layout.root().join("current");
    let env = env.at(Event::PostSwitch.name());
    hooks::report_for_host(hooks, Event::PostSwitch, run, context, &env, &current)?;
    run.gate(context, &host_name)?;
    match canary {
        Some(canary) => canary::observe(run, context, canary, baseline.as_ref(), &host_name),
        None => Ok(()),
    }
}

/// The environment of this deploy's hooks at `event` (no host yet).
fn hook_env(options: &DeployOptions, event: Event) -> HookEnv {
    HookEnv {
        event: event.name().to_owned(),
        release: options.release.to_string(),
        strategy: "symlink".to_owned(),
        ..HookEnv::default()
    }
}

/// The host-side hooks of `event` alone (runner pre-deploy hooks run once, before any host).
fn only_on_hosts(hooks: &Hooks, event: Event) -> Hooks {
    Hooks {
        hooks: hooks
            .hooks
            .iter()
            .filter(|h| h.event == event && h.side == Side::Hosts)
            .cloned()
            .collect(),
        migrate: None,
        strict: hooks.strict,
    }
}

/// `deploy` with the symlink switch.
pub(crate) fn deploy(options: &DeployOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    let console = runner.console().clone();
    let contexts = options.host_contexts(&console);
    let hosts = &options.connection.hosts;
    let mut rollout = Rollout::new(
        &options.connection,
        &options.release,
        &options.sha256,
        Some(options.keep_releases),
        console.clone(),
    );
    let interrupt = &options.settings.interrupt;
    interrupt.listen(&console);
    let allowed = options.budget.allowed(hosts.len());
    let mut completed: Runs = Vec::new();
    // Hosts that failed within the failure budget, already put back (or never switched).
    let mut tolerated: Runs = Vec::new();
    let mut tolerated_errors: Vec<HostError> = Vec::new();
    let mut rolled_back = Vec::new();
    // First deploys that failed after their switch: nothing to roll back to, withdrawn instead.
    let mut withdrawn: Vec<String> = Vec::new();
    let mut rollback_errors = Vec::new();
    let mut failure: Option<(Vec<HostError>, Runs)> = None;
    for (number, batch) in options.batches.iter().enumerate() {
        if interrupt.is_set() {
            break;
        }
        let canary = options.canary.as_ref().filter(|_| number == 0);
        let _group = runner.group(&format!(
            "{} {}/{}: {}",
            if canary.is_some() { "canary" } else { "batch" },
            number + 1,
            options.batches.len(),
            batch
                .iter()
                .map(|&i| hosts[i].label())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let results = parallel(batch.clone(), options.max_parallel, |index| {
            let host = &hosts[index];
            let mut run = match options.connection.open(host) {
                Ok(run) => run,
                Err(error) => return (index, None, Err(error)),
            };
            let outcome = deploy_host(&mut run, &contexts[index], options, canary, index);
            (index, Some(run), outcome)
        });
        let mut errors = Vec::new();
        let mut failed = Vec::new();
        let mut runs = Vec::new();
        for (index, run, outcome) in results {
            if let Err(error) = outcome {
                rollout.record(
                    index,
                    run.as_ref(),
                    HostResult::Failed,
                    Some(error.to_string()),
                );
                errors.push(error);
                failed.push(index);
            }
            if let Some(run) = run {
                runs.push((index, run));
            }
        }
        if errors.is_empty() {
            completed.extend(runs);
            continue;
        }
        // A failed canary always stops: it is what the canary is for.
        let within_budget = canary.is_none() && tolerated_errors.len() + errors.len() <= allowed;
        if !within_budget {
            failure = Some((errors, runs));
            break;
        }
        for (index, mut run) in runs {
            if !failed.contains(&index) {
                completed.push((index, run));
                continue;
            }
            match revert(&mut rollout, index, &mut run, &contexts[index], options) {
                Ok(Reverted::RolledBack) => rolled_back.push(run.label().to_owned()),
                Ok(Reverted::Withdrawn(what)) => withdrawn.push(what),
                Ok(Reverted::NotSwitched) => {}
                Err(error) => rollback_errors.push(error),
            }
            tolerated.push((index, run));
        }
        tolerated_errors.extend(errors);
        console.warn(&format!(
            "batch {}: {} host(s) failed, within the failure budget ({} of {allowed} used); \
             the rollout goes on",
            number + 1,
            failed.len(),
            tolerated_errors.len()
        ));
    }
    // Interrupted: what was switched goes back, finished batches included. A signal that came
    // while the last step ran (a restart, with no gate after it to notice) counts too: the
    // deploy was asked to stop before it finished, and the documented answer is a rollback.
    let interrupted = interrupt.is_set();
    let failure = match failure {
        None if interrupted => Some((Vec::new(), Vec::new())),
        other => other,
    };
    let (errors, mut failed_runs) = match failure {
        Some((errors, failed_runs)) => (errors, failed_runs),
        None => (Vec::new(), Vec::new()),
    };
    let stopped = !errors.is_empty() || interrupted;
    if stopped {
        let mut to_revert: Vec<&mut (usize, HostRun)> = failed_runs.iter_mut().collect();
        if options.rollback_completed || interrupted {
            to_revert.extend(completed.iter_mut());
        }
        for (index, run) in to_revert {
            match revert(&mut rollout, *index, run, &contexts[*index], options) {
                Ok(Reverted::RolledBack) => rolled_back.push(run.label().to_owned()),
                Ok(Reverted::Withdrawn(what)) => withdrawn.push(what),
                Ok(Reverted::NotSwitched) => {}
                Err(error) => rollback_errors.push(error),
            }
        }
        for (index, run) in &failed_runs {
            if rollout.result(*index).is_none() {
                rollout.record(*index, Some(run), HostResult::Failed, None);
            }
        }
    }
    // Release log, retention for the hosts that kept the release, unlock everywhere.
    for (index, run) in &mut completed {
        finish_succeeded(&mut rollout, *index, run, &contexts[*index], options);
    }
    for (index, run) in failed_runs.iter_mut().chain(tolerated.iter_mut()) {
        let touched = run.status.current.is_some() || run.switched;
        rollout.finish(*index, run, &contexts[*index], touched.then_some("failed"));
    }
    let outcome = if !rollback_errors.is_empty() {
        FleetOutcome::RollbackFailed(rollback_errors.join("; "))
    } else if interrupted {
        FleetOutcome::Interrupted(rolled_back)
    } else if stopped && rolled_back.is_empty() && !withdrawn.is_empty() {
        // A first deploy failed its gate: the failure is the release's (exit 1, as any failed
        // gate), and there was nothing to roll back to, which is said as such.
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        FleetOutcome::Withdrawn(format!("{first}; {}", withdrawn.join("; ")))
    } else if stopped && !rolled_back.is_empty() {
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        let withdrawn = if withdrawn.is_empty() {
            String::new()
        } else {
            format!("; {}", withdrawn.join("; "))
        };
        FleetOutcome::RolledBack {
            message: format!(
                "{first}; rolled back to the previous release on {}{withdrawn}",
                rolled_back.join(", ")
            ),
            // What failed was the network or a host, not the release: exit 3 (targets
            // restored), as for a connection lost before any switch.
            infrastructure: errors.iter().all(|e| e.infrastructure),
        }
    } else if stopped {
        FleetOutcome::Failed(errors)
    } else if !tolerated_errors.is_empty() {
        FleetOutcome::Partial(format!(
            "{} host(s) failed within the failure budget ({} of {allowed}): {}; {}; every other \
             host runs {}",
            tolerated_errors.len(),
            tolerated_errors.len(),
            tolerated_errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            if rolled_back.is_empty() {
                "none of them was switched".to_owned()
            } else {
                format!(
                    "put back on the previous release: {}",
                    rolled_back.join(", ")
                )
            },
            options.release
        ))
    } else {
        FleetOutcome::Success
    };
    rollout.conclude(runner, &title(options), outcome)
}

/// How a host that failed came out of [`revert`].
enum Reverted {
    /// Back on the release it ran before.
    RolledBack,
    /// A first deploy: no release to go back to; services stopped, `current` removed (what
    /// was done, and what was left running).
    Withdrawn(String),
    /// Never switched: nothing to undo.
    NotSwitched,
}

/// Puts a host this run switched back on the release it ran before (reconnecting once when the
/// connection was lost), or on a first deploy withdraws the new release, and records how that
/// went; `Err` the rollback failed.
fn revert(
    rollout: &mut Rollout<'_>,
    index: usize,
    run: &mut HostRun,
    context: &HostContext<'_>,
    options: &DeployOptions,
) -> Result<Reverted, String> {
    if !run.switched {
        return Ok(Reverted::NotSwitched);
    }
    let host = &options.connection.hosts[index];
    let Some(previous) = run.previous.clone() else {
        return withdraw(rollout, index, run, context, options);
    };
    context
        .console
        .log(&format!("rolling back {} to {previous}", run.label()));
    let mut reverted = run.revert(context, &previous, &host.name());
    if reverted.as_ref().is_err_and(|e| e.infrastructure) {
        // A lost connection must not leave the host on the new release: reconnect once and
        // retry the rollback.
        if let Ok(remote) = options.connection.connect(host) {
            run.reconnect(remote);
            reverted = run.revert(context, &previous, &host.name());
        }
    }
    match reverted {
        Ok(()) => {
            rollout.record(index, Some(run), HostResult::RolledBack, None);
            let env = hook_env(options, Event::OnRollback).on_host(Some(&previous), &host.name());
            let env = HookEnv {
                result: "rolled-back".into(),
                ..env
            };
            let current = context.layout.root().join("current");
            let hooks = only_on_hosts(&options.hooks, Event::OnRollback);
            if let Err(error) =
                hooks::run_for_host(&hooks, Event::OnRollback, run, context, &env, &current)
            {
                context.console.warn(&error.to_string());
            }
            Ok(Reverted::RolledBack)
        }
        Err(error) => {
            rollout.record(
                index,
                Some(run),
                HostResult::RollbackFailed,
                Some(error.to_string()),
            );
            Err(error.to_string())
        }
    }
}

/// A first deploy that failed after its switch: no release to roll back to, so the new one is
/// withdrawn (its services stopped, `current` removed; the release stays in `releases/` to be
/// looked at). The host is recorded `failed` with what was done; a withdrawal that fails is a
/// failed rollback (exit 4): the host may still serve the release that failed.
fn withdraw(
    rollout: &mut Rollout<'_>,
    index: usize,
    run: &mut HostRun,
    context: &HostContext<'_>,
    options: &DeployOptions,
) -> Result<Reverted, String> {
    let label = run.label().to_owned();
    context.console.log(&format!(
        "[{label}] first deploy: no previous release to roll back to; stopping {} and removing `current`",
        options.release
    ));
    let mut withdrawn = run.withdraw(context, &options.release);
    if withdrawn.as_ref().is_err_and(|e| e.infrastructure) {
        if let Ok(remote) = options.connection.connect(&options.connection.hosts[index]) {
            run.reconnect(remote);
            withdrawn = run.withdraw(context, &options.release);
        }
    }
    match withdrawn {
        Ok(left_running) => {
            let running = if left_running.is_empty() {
                String::new()
            } else {
                format!(
                    "; still running (no --stop-command): {}",
                    left_running.join(", ")
                )
            };
            let what = format!(
                "first deploy on {label}: no previous release to roll back to; {} withdrawn                  (services stopped, `current` removed, kept in releases/ to inspect){running}",
                options.release
            );
            let error = rollout
                .error(index)
                .map(|e| format!("{e}; "))
                .unwrap_or_default();
            rollout.record(
                index,
                Some(run),
                HostResult::Failed,
                Some(format!("{error}{what}")),
            );
            Ok(Reverted::Withdrawn(what))
        }
        Err(error) => {
            let message = format!(
                "first deploy: no previous release to roll back to, and withdrawing {} failed: {error}",
                options.release
            );
            rollout.record(
                index,
                Some(run),
                HostResult::RollbackFailed,
                Some(message.clone()),
            );
            Err(format!("{label}: {message}"))
        }
    }
}

/// A host of a finished batch: deployed (or unchanged), unless it was rolled back with the
/// failed batch (`--rollback-completed`, a signal).
fn finish_succeeded(
    rollout: &mut Rollout<'_>,
    index: usize,
    run: &mut HostRun,
    context: &HostContext<'_>,
    options: &DeployOptions,
) {
    let host_name = options.connection.hosts[index].name();
    let reverted = rollout.result(index).is_some();
    if !reverted {
        let result = if run.previous.as_ref() == Some(&options.release) {
            HostResult::Unchanged
        } else {
            HostResult::Deployed
        };
        rollout.record(index, Some(run), result, None);
        let env = hook_env(options, Event::PostDeploy).on_host(run.previous.as_ref(), &host_name);
        let env = HookEnv {
            result: "success".into(),
            ..env
        };
        let current = context.layout.root().join("current");
        let hooks = only_on_hosts(&options.hooks, Event::PostDeploy);
        if let Err(error) =
            hooks::run_for_host(&hooks, Event::PostDeploy, run, context, &env, &current)
        {
            context.console.warn(&error.to_string());
        }
    }
    let touched = run.status.current.is_some() || run.switched || !reverted;
    let word = if reverted { "failed" } else { "success" };
    rollout.finish(index, run, context, touched.then_some(word));
}

fn title(options: &DeployOptions) -> String {
    format!("ssh-deploy {}", options.release)
}
