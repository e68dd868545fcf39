//! `ssh-deploy rollback`: every host back to `--to` or to the release before its current one,
//! services restarted and the gate re-run, in parallel (8 hosts at once).

use runner_protocol::{Runner, Verdict};

use crate::error::Error;
use crate::host_run::{HostError, HostRun};
use crate::options::{HostSpec, RollbackOptions};
use crate::quote::ReleaseId;
use crate::report::{HostReport, HostResult};
use crate::schedule::parallel;

/// Hosts rolled back at once.
const PARALLEL: usize = 8;

/// `rollback`: every host back to `--to` or to its previous release.
pub(crate) fn rollback(options: &RollbackOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    let console = runner.console().clone();
    let hosts = options.connection.hosts.clone();
    let gates = options.settings.gates_for(&options.connection)?;
    let results = parallel(
        hosts.clone().into_iter().enumerate().collect(),
        PARALLEL,
        |(index, host): (usize, HostSpec)| {
            let mut context = options
                .settings
                .context(options.connection.layout_for(&host), &console);
            context.gate = gates[index].as_deref();
            let mut run = options.connection.open(&host)?;
            let result = roll_back_host(&mut run, &context, options, &host);
            let logged = result.as_ref().ok().map(|target| (target, "-"));
            let word = if result.is_ok() {
                "rollback"
            } else {
                "rollback-failed"
            };
            for error in run.finish(&context, logged, word, None) {
                console.warn(&error.to_string());
            }
            result.map(|target| (run.previous.clone(), target))
        },
    );
    let mut errors = Vec::new();
    let mut reports = Vec::new();
    for (host, result) in hosts.iter().zip(results) {
        match result {
            Ok((previous, target)) => {
                runner.set_output("release-id", target.as_str())?;
                reports.push(HostReport {
                    host: host.label(),
                    result: HostResult::RolledBackTo(target),
                    previous: previous.map(|p| p.to_string()),
                    error: None,
                    seconds: 0.0,
                    phases: Vec::new(),
                });
            }
            Err(error) => {
                reports.push(HostReport {
                    host: host.label(),
                    result: HostResult::Failed,
                    previous: None,
                    error: Some(error.to_string()),
                    seconds: 0.0,
                    phases: Vec::new(),
                });
                errors.push(error);
            }
        }
    }
    crate::report::publish(runner, "ssh-deploy rollback", &reports)?;
    if errors.is_empty() {
        runner.set_output("result", "success")?;
        Ok(Verdict::Success)
    } else {
        runner.set_output("result", "rollback-failed")?;
        Err(Error::RollbackFailed(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// Locks, picks the target (`--to`, or the newest release that is not current), switches back
/// to it, restarts and re-gates; returns the target.
fn roll_back_host(
    run: &mut HostRun,
    context: &crate::host_run::HostContext<'_>,
    options: &RollbackOptions,
    host: &HostSpec,
) -> Result<ReleaseId, HostError> {
    let error = |run: &HostRun, message: String| HostError {
        host: run.label().to_owned(),
        stage: "rollback".into(),
        message,
        infrastructure: false,
    };
    run.lock_and_read_status(context, None)?;
    let target = match &options.to {
        Some(to) => to.clone(),
        None => run
            .status
            .releases
            .iter()
            .map(|(id, _)| id)
            .find(|id| Some(*id) != run.status.current.as_ref())
            .cloned()
            .ok_or_else(|| error(run, "no other release on the host".into()))?,
    };
    if !run.status.releases.iter().any(|(id, _)| *id == target) {
        return Err(error(run, format!("release {target} is not on the host")));
    }
    if options.settings.dry_run {
        context.console.log(&format!(
            "[{}] would switch current to {target}",
            run.label()
        ));
        return Ok(target);
    }
    run.revert(context, &target, &host.name())?;
    Ok(target)
}
