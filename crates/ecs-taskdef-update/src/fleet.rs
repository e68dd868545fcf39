//! Deploying several prepared services (see [`crate::prepare`]): register, update, wait, and
//! roll back every changed service when one fails; and the `rollback` command's put-back.

use std::collections::BTreeMap;

use runner_protocol::signal::Interrupts;
use serde_json::Value;

use crate::api::{ApiError, Clock, EcsApi, ServiceState, UpdateRequest};
use crate::fleet_config::FleetConfig;
use crate::fleet_report::{FleetOutcome, FleetReport, ServiceResult, ServiceStatus};
use crate::native::NativeOutcome;
use crate::native_deploy::{self, NativeLive};
use crate::prepare::arn_of;
use crate::prepared::Prepared;
use crate::retry::retrying;
use crate::rollback_end::RollbackEnd;
use crate::service_plan::ServicePlan;
use crate::sink::Sink;
use crate::taskdef::RegisterInput;
use crate::watch::{Outcome, Watch};

/// Why a wait ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WaitEnd {
    /// A service failed.
    Failed(String),
    /// A signal (its name) arrived.
    Interrupted(&'static str),
}

/// One service being deployed.
struct Live {
    index: usize,
    watch: Watch,
    last: Option<ServiceState>,
    failed_polls: u32,
    /// Native strategies: the service deployment followed instead of `watch`.
    native: Option<NativeLive>,
}

/// Registers, updates and waits; rolls back on failure. Errors of register or update count as
/// failures of the deploy (and trigger a rollback of what was changed).
pub async fn deploy(
    api: &impl EcsApi,
    clock: &impl Clock,
    prepared: &[Prepared],
    config: &FleetConfig,
    interrupts: &Interrupts,
    sink: &mut impl Sink,
) -> FleetReport {
    let mut results: Vec<ServiceResult> = prepared
        .iter()
        .map(|p| ServiceResult {
            cluster: p.plan.cluster.clone(),
            service: p.plan.service.clone(),
            previous_task_definition: p.before.task_definition.clone(),
            task_definition: None,
            image_digests: p.image_digests.clone(),
            status: ServiceStatus::NotStarted,
            reason: None,
            migration: None,
        })
        .collect();
    let mut failure: Option<String> = None;
    // The signal that stopped the deploy, if one did.
    let mut interrupted: Option<&'static str> = None;
    // `interrupts` belongs to this run: any signal so far (even during `prepare`) stops it.
    let seen_interrupts = 0;
    let mut last_states: Vec<Option<ServiceState>> = vec![None; prepared.len()];
    let mut last_natives: Vec<Option<NativeLive>> = vec![None; prepared.len()];

    // Register everything first: a bad definition fails before any service changes.
    for (index, service) in prepared.iter().enumerate() {
        if interrupts.count() > seen_interrupts {
            interrupted = Some(interrupts.last());
            failure = Some(format!("interrupted by {}", interrupts.last()));
            break;
        }
        if let Some(arn) = &service.existing {
            sink.line(
                &service.plan.service,
                &format!("deploying the existing revision {arn} (nothing registered)"),
            );
            results[index].task_definition = Some(arn.clone());
            results[index].status = ServiceStatus::Registered;
            continue;
        }
        let body = service.rendered.to_value();
        match retrying(clock, config.max_attempts, || {
            api.register_task_definition(&body)
        })
        .await
        {
            Ok(arn) => {
                sink.line(&service.plan.service, &format!("registered {arn}"));
                results[index].task_definition = Some(arn);
                results[index].status = ServiceStatus::Registered;
            }
            Err(error) => {
                failure = Some(format!("{}: {error}", service.plan.service));
                break;
            }
        }
    }

    if let (None, Some(migration)) = (&failure, &config.migration) {
        let index = prepared
            .iter()
            .position(|p| p.plan.service == migration.service);
        let arn = index.and_then(|i| results[i].task_definition.clone());
        match (index, arn) {
            (Some(index), Some(arn)) => {
                let (report, verdict) = crate::migration::run(
                    api,
                    clock,
                    &prepared[index],
                    &arn,
                    (migration, config.poll_interval, config.max_attempts),
                    (interrupts, seen_interrupts),
                    sink,
                )
                .await;
                results[index].migration = Some(report);
                if let Err(reason) = verdict {
                    if interrupts.count() > seen_interrupts {
                        interrupted = Some(interrupts.last());
                    }
                    failure = Some(format!("{}: {reason}", migration.service));
                }
            }
            _ => {
                failure = Some(format!(
                    "migration: service `{}` has no new revision to run on",
                    migration.service
                ));
            }
        }
    }

    let batches: Vec<Vec<usize>> = if config.sequential {
        (0..prepared.len()).map(|i| vec![i]).collect()
    } else {
        vec![(0..prepared.len()).collect()]
    };
    let mut updated: Vec<usize> = Vec::new();
    for batch in batches {
        if failure.is_some() {
            break;
        }
        let mut live = Vec::new();
        for index in batch {
            if interrupts.count() > seen_interrupts {
                interrupted = Some(interrupts.last());
                failure = Some(format!("interrupted by {}", interrupts.last()));
                break;
            }
            let service = &prepared[index];
            let Some(arn) = results[index].task_definition.clone() else {
                continue;
            };
            if service.existing.is_some()
                && arn == service.before.task_definition
                && !service.plan.force_new_deployment
            {
                sink.notice(
                    &service.plan.service,
                    &format!(
                        "already runs {arn}: nothing to deploy (force-new-deployment restarts its tasks)"
                    ),
                );
                results[index].status = ServiceStatus::Deployed;
                continue;
            }
            if crate::native::is_native(service.before.strategy.as_deref()) {
                match native_deploy::begin(api, clock, service, &arn, config, sink).await {
                    Ok(native) => {
                        updated.push(index);
                        live.push(Live {
                            index,
                            watch: Watch::new(arn, None, [], clock.now(), config.watch.clone()),
                            last: None,
                            failed_polls: 0,
                            native: Some(native),
                        });
                    }
                    Err((changed, error)) => {
                        if changed {
                            updated.push(index);
                        }
                        failure = Some(format!("{}: {error}", service.plan.service));
                        break;
                    }
                }
                continue;
            }
            let request = UpdateRequest {
                cluster: service.plan.cluster.clone(),
                service: service.plan.service.clone(),
                task_definition: arn.clone(),
                force_new_deployment: service.plan.force_new_deployment,
                desired_count: service.plan.desired_count,
            };
            let started = clock.now();
            match retrying(clock, config.max_attempts, || api.update_service(&request)).await {
                Ok(deployment_id) => {
                    updated.push(index);
                    sink.line(
                        &service.plan.service,
                        &format!(
                            "updated to {arn}; deployment {}",
                            deployment_id.as_deref().unwrap_or("(unknown)")
                        ),
                    );
                    let seen = service.before.events.iter().map(|e| e.id.clone());
                    live.push(Live {
                        index,
                        watch: Watch::new(arn, deployment_id, seen, started, config.watch.clone())
                            .with_stale_primary(service.before.primary().map(|p| p.id.clone())),
                        last: None,
                        failed_polls: 0,
                        native: None,
                    });
                }
                Err(error) => {
                    failure = Some(format!("{}: {error}", service.plan.service));
                    break;
                }
            }
        }
        if failure.is_none() {
            let waited = wait_all(
                api,
                clock,
                prepared,
                &mut live,
                config,
                (interrupts, seen_interrupts),
                sink,
            )
            .await;
            match waited {
                Ok(()) => {}
                Err(WaitEnd::Failed(reason)) => failure = Some(reason),
                Err(WaitEnd::Interrupted(signal)) => {
                    interrupted = Some(signal);
                    failure = Some(format!("interrupted by {signal}"));
                }
            }
        }
        for item in &mut live {
            last_states[item.index] = item.last.clone();
            last_natives[item.index] = item.native.take();
        }
        if failure.is_none() {
            for item in &live {
                results[item.index].status = ServiceStatus::Deployed;
            }
        }
    }

    let Some(reason) = failure else {
        return FleetReport {
            services: results,
            outcome: FleetOutcome::Deployed,
        };
    };
    if updated.is_empty() {
        // Registered revisions are inert: no service changed, nothing to roll back.
        let outcome = if interrupted.is_some() {
            FleetOutcome::Interrupted(format!("{reason} before any service changed"))
        } else {
            FleetOutcome::Failed(reason)
        };
        return FleetReport {
            services: results,
            outcome,
        };
    }
    if !config.rollback {
        for index in &updated {
            results[*index].status = ServiceStatus::Failed;
            results[*index].reason = Some(reason.clone());
        }
        let outcome = if interrupted.is_some() {
            FleetOutcome::Interrupted(format!(
                "{reason}; rollback is off: changed services stay on the new revision"
            ))
        } else {
            FleetOutcome::Failed(reason)
        };
        return FleetReport {
            services: results,
            outcome,
        };
    }
    // A signal from here on stops waiting for the rollback, never stops sending it.
    let seen_during_rollback = interrupts.count();
    let mut rollback_failures = Vec::new();
    let mut not_waited = Vec::new();
    for index in updated {
        let service = &prepared[index];
        let name = &service.plan.service;
        results[index].reason = Some(reason.clone());
        let rolled = match last_natives[index].take() {
            Some(native) => {
                native_deploy::roll_back(
                    api,
                    clock,
                    service,
                    native,
                    config,
                    (interrupts, seen_during_rollback),
                    sink,
                )
                .await
            }
            None => {
                roll_back(
                    api,
                    clock,
                    service,
                    last_states[index].as_ref(),
                    config,
                    (interrupts, seen_during_rollback),
                    sink,
                )
                .await
            }
        };
        match rolled {
            Ok(()) => results[index].status = ServiceStatus::RolledBack,
            Err(RollbackEnd::NotWaited(signal)) => {
                sink.warn(
                    name,
                    &format!("{signal}: rollback sent, not waiting for it to complete"),
                );
                results[index].status = ServiceStatus::RollbackIssued;
                not_waited.push(name.clone());
            }
            Err(RollbackEnd::Failed(error)) => {
                sink.warn(name, &format!("rollback failed: {error}"));
                results[index].status = ServiceStatus::RollbackFailed;
                results[index].reason = Some(format!("{reason}; rollback failed: {error}"));
                rollback_failures.push(format!("{name}: {error}"));
            }
        }
    }
    let outcome = if !rollback_failures.is_empty() {
        FleetOutcome::RollbackFailed(format!(
            "{reason}; rollback did not complete for {}",
            rollback_failures.join("; ")
        ))
    } else if !not_waited.is_empty() {
        FleetOutcome::Interrupted(format!(
            "{reason}; rollback sent to {} but not waited for (interrupted again): check them",
            not_waited.join(", ")
        ))
    } else if interrupted.is_some() {
        FleetOutcome::Interrupted(format!(
            "{reason}; every changed service is back on its previous revision"
        ))
    } else {
        FleetOutcome::RolledBack(reason)
    };
    FleetReport {
        services: results,
        outcome,
    }
}

/// Polls every live service until all completed or one failed.
async fn wait_all(
    api: &impl EcsApi,
    clock: &impl Clock,
    prepared: &[Prepared],
    live: &mut [Live],
    config: &FleetConfig,
    (interrupts, seen): (&Interrupts, u32),
    sink: &mut impl Sink,
) -> Result<(), WaitEnd> {
    let mut done = vec![false; live.len()];
    loop {
        if interrupts.count() > seen {
            return Err(WaitEnd::Interrupted(interrupts.last()));
        }
        let mut throttled = false;
        for (slot, item) in live.iter_mut().enumerate() {
            if done[slot] {
                continue;
            }
            let service = &prepared[item.index];
            let name = &service.plan.service;
            if let Some(native) = item.native.as_mut() {
                match native_deploy::poll(api, clock, service, native, config, sink).await {
                    None => {}
                    Some(NativeOutcome::Completed) => {
                        sink.line(name, "service deployment SUCCESSFUL");
                        done[slot] = true;
                    }
                    Some(
                        NativeOutcome::RolledBackByEcs(reason)
                        | NativeOutcome::Failed(reason)
                        | NativeOutcome::Stop(reason),
                    ) => return Err(WaitEnd::Failed(format!("{name}: {reason}"))),
                }
                continue;
            }
            let outcome = match api.describe_service(&service.plan.cluster, name).await {
                Ok(state) => {
                    item.failed_polls = 0;
                    let step = item.watch.observe(&state, clock.now());
                    for line in &step.log {
                        sink.line(name, line);
                    }
                    if step.inspect_stopped {
                        report_stopped(api, service, item.watch.task_definition(), sink).await;
                    }
                    item.last = Some(state);
                    step.outcome
                }
                Err(error @ ApiError::Throttled { .. }) => {
                    throttled = true;
                    item.failed_polls += 1;
                    sink.line(name, &format!("{error}; backing off"));
                    item.watch.tick(clock.now())
                }
                Err(error) => {
                    item.failed_polls += 1;
                    sink.warn(name, &format!("{error}"));
                    if item.failed_polls >= config.max_attempts {
                        Some(Outcome::Failed(format!("{error}")))
                    } else {
                        item.watch.tick(clock.now())
                    }
                }
            };
            match outcome {
                None => {}
                Some(Outcome::Completed) => {
                    sink.line(name, "deployment completed");
                    done[slot] = true;
                }
                Some(failed) => {
                    let reason = failed.reason().unwrap_or("failed").to_owned();
                    if !matches!(failed, Outcome::TimedOut(_)) {
                        report_stopped(api, service, item.watch.task_definition(), sink).await;
                    }
                    return Err(WaitEnd::Failed(format!("{name}: {reason}")));
                }
            }
        }
        if done.iter().all(|d| *d) {
            return Ok(());
        }
        let backoff = live
            .iter()
            .map(|l| l.failed_polls)
            .max()
            .unwrap_or(0)
            .min(4);
        let delay = if throttled {
            config.poll_interval * 2u32.pow(backoff)
        } else {
            config.poll_interval
        };
        tokio::select! {
            () = clock.sleep(delay) => {}
            _ = interrupts.after(seen) => {}
        }
    }
}

/// Prints why tasks of the watched revision stopped.
async fn report_stopped(
    api: &impl EcsApi,
    service: &Prepared,
    task_definition: &str,
    sink: &mut impl Sink,
) {
    let name = &service.plan.service;
    match api.stopped_tasks(&service.plan.cluster, name, 5).await {
        Ok(tasks) => {
            for task in tasks
                .iter()
                .filter(|t| t.task_definition == task_definition)
            {
                let containers: Vec<String> = task
                    .containers
                    .iter()
                    .map(|(container, code, reason)| {
                        format!(
                            "{container} exit {}{}",
                            code.map_or("-".into(), |c| c.to_string()),
                            reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                sink.warn(
                    name,
                    &format!(
                        "stopped task {}: {}; {}",
                        task.arn,
                        task.stopped_reason,
                        containers.join(", ")
                    ),
                );
            }
        }
        Err(error) => sink.line(name, &format!("cannot list stopped tasks: {error}")),
    }
}

/// Puts a service back on its previous revision and waits for that to complete.
async fn roll_back(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    last: Option<&ServiceState>,
    config: &FleetConfig,
    interrupts: (&Interrupts, u32),
    sink: &mut impl Sink,
) -> Result<(), RollbackEnd> {
    let previous = service.before.task_definition.clone();
    let name = &service.plan.service;
    // ECS rolled back by itself (circuit breaker) only when both the service and its PRIMARY
    // deployment name the previous revision; one alone is not proof (moto, for one, keeps
    // the old revision on the deployment after an update).
    let already = last
        .filter(|state| state.task_definition == previous)
        .and_then(ServiceState::primary)
        .filter(|p| p.task_definition == previous)
        .map(|p| p.id.clone());
    let started = clock.now();
    let deployment_id = match already {
        Some(id) => {
            sink.line(
                name,
                &format!("ECS already rolled back to {previous} ({id}); waiting"),
            );
            Some(id)
        }
        None => {
            sink.line(name, &format!("rolling back to {previous}"));
            let request = UpdateRequest {
                cluster: service.plan.cluster.clone(),
                service: name.clone(),
                task_definition: previous.clone(),
                force_new_deployment: false,
                desired_count: None,
            };
            retrying(clock, config.max_attempts, || api.update_service(&request))
                .await
                .map_err(|e| RollbackEnd::Failed(e.to_string()))?
        }
    };
    let seen = last
        .map(|s| s.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
        .unwrap_or_default();
    let stale = last.and_then(ServiceState::primary).map(|p| p.id.clone());
    let watch = Watch::new(previous, deployment_id, seen, started, config.watch.clone())
        .with_stale_primary(stale);
    let mut live = [Live {
        index: 0,
        watch,
        last: None,
        failed_polls: 0,
        native: None,
    }];
    wait_all(
        api,
        clock,
        std::slice::from_ref(service),
        &mut live,
        config,
        interrupts,
        sink,
    )
    .await
    .map_err(|end| match end {
        WaitEnd::Failed(reason) => RollbackEnd::Failed(reason),
        WaitEnd::Interrupted(signal) => RollbackEnd::NotWaited(signal),
    })
}

/// Puts a service on a given revision (`rollback` command) and waits.
pub async fn roll_back_to(
    api: &impl EcsApi,
    clock: &impl Clock,
    plan: &ServicePlan,
    target: Option<&str>,
    config: &FleetConfig,
    interrupts: &Interrupts,
    sink: &mut impl Sink,
) -> Result<(String, String), String> {
    let before = retrying(clock, config.max_attempts, || {
        api.describe_service(&plan.cluster, &plan.service)
    })
    .await
    .map_err(|e| e.to_string())?;
    if before.status != "ACTIVE" {
        return Err(format!("service `{}` is {}", plan.service, before.status));
    }
    let target = match target {
        Some(target) => {
            let document = api
                .describe_task_definition(target)
                .await
                .map_err(|e| e.to_string())?;
            arn_of(&document).ok_or_else(|| format!("task definition {target} has no ARN"))?
        }
        None => previous_revision(api, &before.task_definition).await?,
    };
    let prepared = Prepared {
        plan: plan.clone(),
        before: ServiceState {
            task_definition: target.clone(),
            ..before.clone()
        },
        base: RegisterInput(serde_json::Map::new()),
        rendered: RegisterInput(serde_json::Map::new()),
        image_digests: BTreeMap::new(),
        existing: None,
    };
    let rolled = if crate::native::is_native(before.strategy.as_deref()) {
        // A blue/green, linear or canary service: a new service deployment of the target,
        // followed through its stages like a deploy.
        native_deploy::roll_back(
            api,
            clock,
            &prepared,
            NativeLive::idle(config),
            config,
            (interrupts, interrupts.count()),
            sink,
        )
        .await
    } else {
        roll_back(
            api,
            clock,
            &prepared,
            None,
            config,
            (interrupts, interrupts.count()),
            sink,
        )
        .await
    };
    rolled.map_err(|end| match end {
        RollbackEnd::Failed(reason) => reason,
        RollbackEnd::NotWaited(signal) => {
            format!("{signal}: the update to {target} was sent; not waiting for it to complete")
        }
    })?;
    Ok((before.task_definition, target))
}

/// The highest ACTIVE revision below the current one of the same family.
async fn previous_revision(api: &impl EcsApi, current: &str) -> Result<String, String> {
    let (family_part, revision) = current
        .rsplit_once(':')
        .ok_or_else(|| format!("cannot read the revision of {current}"))?;
    let family = family_part.rsplit('/').next().unwrap_or(family_part);
    let revision: u32 = revision
        .parse()
        .map_err(|_| format!("cannot read the revision of {current}"))?;
    for candidate in (1..revision).rev().take(50) {
        match api
            .describe_task_definition(&format!("{family}:{candidate}"))
            .await
        {
            Ok(document) => {
                let definition = document.get("taskDefinition").unwrap_or(&document);
                if definition.get("status").and_then(Value::as_str) == Some("ACTIVE") {
                    return arn_of(&document)
                        .ok_or_else(|| format!("{family}:{candidate} has no ARN"));
                }
            }
            Err(ApiError::NotFound { .. } | ApiError::Invalid { .. }) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    Err(format!("no ACTIVE revision of {family} below {revision}"))
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
