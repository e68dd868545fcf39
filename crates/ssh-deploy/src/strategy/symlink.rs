//! The default strategy: per host lock + status -> stage (upload, verify, unpack) + switch
//! `current` -> restarts in order -> gate, batch after batch (the canary host alone first with
//! `--canary`). A failed batch is rolled back (with `--rollback-completed` or a signal, every
//! switched host is), then every host ends through the shared [`Rollout`].

use runner_protocol::Runner;
use runner_protocol::Verdict;

use crate::canary;
use crate::error::Error;
use crate::host_run::{HostContext, HostError, HostRun};
use crate::options::DeployOptions;
use crate::report::HostResult;
use crate::rollout::{FleetOutcome, Rollout};
use crate::schedule::parallel;

/// Host runs with their index in `--hosts`.
type Runs = Vec<(usize, HostRun)>;

/// Deploys one host: lock and status, then (the canary's baseline,) stage and switch, restarts,
/// the gate (and the canary's observation).
fn deploy_host(
    run: &mut HostRun,
    context: &HostContext<'_>,
    options: &DeployOptions,
    canary: Option<&canary::Canary>,
    host_name: &str,
) -> Result<(), HostError> {
    // Lock and status first, so a canary baseline is read from the release serving now and no
    // other deploy can change it meanwhile.
    run.lock_and_read_status(context, Some(&options.sha256))?;
    let baseline = match canary {
        Some(canary) => canary::record_baseline(run, context, canary, host_name)?,
        None => None,
    };
    run.stage_and_activate(
        context,
        &options.artifact,
        &options.sha256,
        &options.release,
        &options.shared_paths,
    )?;
    run.gate(context, host_name)?;
    match canary {
        Some(canary) => canary::observe(run, context, canary, baseline.as_ref(), host_name),
        None => Ok(()),
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
    let mut completed: Runs = Vec::new();
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
            let outcome = deploy_host(&mut run, &contexts[index], options, canary, &host.name());
            (index, Some(run), outcome)
        });
        let mut errors = Vec::new();
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
            }
            if let Some(run) = run {
                runs.push((index, run));
            }
        }
        if errors.is_empty() {
            completed.extend(runs);
        } else {
            failure = Some((errors, runs));
            break;
        }
    }
    // Interrupted: what was switched goes back, finished batches included. A signal that came
    // while the last step ran (a restart, with no gate after it to notice) counts too: the
    // deploy was asked to stop before it finished, and the documented answer is a rollback.
    let interrupted = interrupt.is_set();
    let failure = match failure {
        None if interrupted => Some((Vec::new(), Vec::new())),
        other => other,
    };
    let Some((errors, mut failed_runs)) = failure else {
        for (index, run) in &mut completed {
            finish_succeeded(&mut rollout, *index, run, &contexts[*index], options);
        }
        return rollout.conclude(runner, &title(options), FleetOutcome::Success);
    };
    let mut to_revert: Vec<&mut (usize, HostRun)> = failed_runs.iter_mut().collect();
    if options.rollback_completed || interrupted {
        to_revert.extend(completed.iter_mut());
    }
    let mut rolled_back = Vec::new();
    let mut rollback_errors = Vec::new();
    for (index, run) in to_revert {
        if !run.switched {
            continue;
        }
        let (context, host) = (&contexts[*index], &hosts[*index]);
        let Some(previous) = run.previous.clone() else {
            let message = "no previous release to roll back to (first deploy)".to_owned();
            rollout.record(
                *index,
                Some(run),
                HostResult::RollbackFailed,
                Some(message.clone()),
            );
            rollback_errors.push(format!("{}: {message}", run.label()));
            continue;
        };
        console.log(&format!("rolling back {} to {previous}", run.label()));
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
                rollout.record(*index, Some(run), HostResult::RolledBack, None);
                rolled_back.push(run.label().to_owned());
            }
            Err(error) => {
                rollout.record(
                    *index,
                    Some(run),
                    HostResult::RollbackFailed,
                    Some(error.to_string()),
                );
                rollback_errors.push(error.to_string());
            }
        }
    }
    for (index, run) in &failed_runs {
        if rollout.result(*index).is_none() {
            rollout.record(*index, Some(run), HostResult::Failed, None);
        }
    }
    // Release log, retention for the hosts that kept the release, unlock everywhere.
    for (index, run) in &mut completed {
        finish_succeeded(&mut rollout, *index, run, &contexts[*index], options);
    }
    for (index, run) in &mut failed_runs {
        let touched = run.status.current.is_some() || run.switched;
        rollout.finish(*index, run, &contexts[*index], touched.then_some("failed"));
    }
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    let outcome = if !rollback_errors.is_empty() {
        FleetOutcome::RollbackFailed(rollback_errors.join("; "))
    } else if interrupted {
        FleetOutcome::Interrupted(rolled_back)
    } else if !rolled_back.is_empty() {
        FleetOutcome::RolledBack {
            message: format!(
                "{first}; rolled back to the previous release on {}",
                rolled_back.join(", ")
            ),
            // What failed was the network or a host, not the release: exit 3 (targets
            // restored), as for a connection lost before any switch.
            infrastructure: !errors.is_empty() && errors.iter().all(|e| e.infrastructure),
        }
    } else {
        FleetOutcome::Failed(errors)
    };
    rollout.conclude(runner, &title(options), outcome)
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
    let reverted = rollout.result(index).is_some();
    if !reverted {
        let result = if run.previous.as_ref() == Some(&options.release) {
            HostResult::Unchanged
        } else {
            HostResult::Deployed
        };
        rollout.record(index, Some(run), result, None);
    }
    let touched = run.status.current.is_some() || run.switched || !reverted;
    let word = if reverted { "failed" } else { "success" };
    rollout.finish(index, run, context, touched.then_some(word));
}

fn title(options: &DeployOptions) -> String {
    format!("ssh-deploy {}", options.release)
}
