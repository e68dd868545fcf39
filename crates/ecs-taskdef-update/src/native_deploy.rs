//! The fleet's steps for a service on an ECS-native strategy (see [`crate::native`]): start the
//! deployment, follow it, and put the service back when the fleet fails.

use std::time::Duration;

use runner_protocol::signal::Interrupts;

use crate::api::{ApiError, Clock, EcsApi, UpdateRequest};
use crate::fleet_config::FleetConfig;
use crate::native::{
    self, NativeConfig, NativeOutcome, NativeWatch, RollbackOutcome, ServiceDeployment,
};
use crate::prepared::Prepared;
use crate::retry::retrying;
use crate::rollback_end::RollbackEnd;
use crate::sink::Sink;

/// A native deployment being followed.
#[derive(Debug, Clone)]
pub(crate) struct NativeLive {
    watch: NativeWatch,
    last: Option<ServiceDeployment>,
    failed_polls: u32,
}

impl NativeLive {
    /// Nothing followed yet (the `rollback` command): [`roll_back`] deploys the target anew.
    pub(crate) fn idle(config: &FleetConfig) -> Self {
        Self {
            watch: NativeWatch::new([], Duration::ZERO, native_config(config)),
            last: None,
            failed_polls: 0,
        }
    }
}

fn native_config(config: &FleetConfig) -> NativeConfig {
    NativeConfig {
        timeout: config.watch.timeout,
        pause_timeout: config.pause_timeout,
        max_failed_tasks: config.watch.max_failed_tasks,
    }
}

async fn listed(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    config: &FleetConfig,
) -> Result<Vec<(String, f64, String)>, String> {
    let body = retrying(clock, config.max_attempts, || {
        api.list_service_deployments(&service.plan.cluster, &service.plan.service)
    })
    .await
    .map_err(|e| e.to_string())?;
    native::parse_list(&body).map_err(|e| e.to_string())
}

/// Sends UpdateService with only the task definition (ECS runs the strategy configured on the
/// service) and starts following the deployment it creates. The error says whether the service
/// was changed.
pub(crate) async fn begin(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    task_definition: &str,
    config: &FleetConfig,
    sink: &mut impl Sink,
) -> Result<NativeLive, (bool, String)> {
    let name = &service.plan.service;
    let strategy = service.before.strategy.as_deref().unwrap_or_default();
    if service.plan.desired_count.is_some() || service.plan.force_new_deployment {
        sink.warn(
            name,
            &format!(
                "the service uses the {strategy} strategy: only the task definition is sent, \
                 desired-count and force-new-deployment are not"
            ),
        );
    }
    let known = listed(api, clock, service, config)
        .await
        .map_err(|e| (false, e))?;
    let request = UpdateRequest {
        cluster: service.plan.cluster.clone(),
        service: name.clone(),
        task_definition: task_definition.to_owned(),
        force_new_deployment: false,
        desired_count: None,
    };
    let started = clock.now();
    retrying(clock, config.max_attempts, || api.update_service(&request))
        .await
        .map_err(|e| (false, e.to_string()))?;
    sink.line(
        name,
        &format!("updated to {task_definition}; ECS runs the {strategy} deployment"),
    );
    Ok(NativeLive {
        watch: NativeWatch::new(
            known.into_iter().map(|(arn, _, _)| arn),
            started,
            native_config(config),
        ),
        last: None,
        failed_polls: 0,
    })
}

/// One poll: finds our service deployment (ListServiceDeployments) until it is listed, then
/// describes it. `None` while there is no verdict.
pub(crate) async fn poll(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    live: &mut NativeLive,
    config: &FleetConfig,
    sink: &mut impl Sink,
) -> Option<NativeOutcome> {
    let name = &service.plan.service;
    let failed = |live: &mut NativeLive, error: String, sink: &mut dyn FnMut(&str)| {
        live.failed_polls += 1;
        sink(&error);
        if live.failed_polls >= config.max_attempts {
            Some(NativeOutcome::Failed(error))
        } else {
            live.watch
                .tick(clock.now(), "no successful poll since the last one")
        }
    };
    let arn = match live.watch.arn() {
        Some(arn) => arn.to_owned(),
        None => match listed(api, clock, service, config).await {
            Ok(listed) => match live.watch.find(&listed) {
                Some(arn) => {
                    sink.line(name, &format!("service deployment {arn}"));
                    arn
                }
                None => {
                    return live
                        .watch
                        .tick(clock.now(), "the service deployment is not listed yet");
                }
            },
            Err(error) => return failed(live, error, &mut |e| sink.warn(name, e)),
        },
    };
    let deployment = match api.describe_service_deployment(&arn).await {
        Ok(body) => native::parse_describe(&body, &arn).map_err(|e| e.to_string()),
        Err(error @ ApiError::Throttled { .. }) => {
            sink.line(name, &format!("{error}; backing off"));
            return live.watch.tick(clock.now(), "throttled");
        }
        Err(error) => Err(error.to_string()),
    };
    match deployment {
        Ok(deployment) => {
            live.failed_polls = 0;
            let step = live.watch.observe(&deployment, clock.now());
            for line in &step.log {
                if line.starts_with("PAUSED") {
                    sink.warn(name, line);
                } else {
                    sink.line(name, line);
                }
            }
            live.last = Some(deployment);
            step.outcome
        }
        Err(error) => failed(live, error, &mut |e| sink.warn(name, e)),
    }
}

/// Puts a native service back. While our deployment runs (or we stopped following it on our
/// own criteria): StopServiceDeployment with `ROLLBACK` and wait for ECS to finish it. When
/// ECS already rolled back: nothing. When it had succeeded (another service failed later): a
/// new deployment of the previous task definition, followed like ours.
pub(crate) async fn roll_back(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    mut live: NativeLive,
    config: &FleetConfig,
    (interrupts, seen): (&Interrupts, u32),
    sink: &mut impl Sink,
) -> Result<(), RollbackEnd> {
    let name = &service.plan.service;
    let previous = service.before.task_definition.clone();
    let status = live.last.as_ref().map(|d| d.status.clone());
    match (live.watch.arn().map(str::to_owned), status.as_deref()) {
        (_, Some("ROLLBACK_SUCCESSFUL")) => {
            sink.line(name, "ECS already rolled the service deployment back");
            Ok(())
        }
        (_, Some("ROLLBACK_FAILED")) => Err(RollbackEnd::Failed(
            "ECS could not roll the service deployment back (ROLLBACK_FAILED)".into(),
        )),
        (Some(arn), Some(status)) if status != "SUCCESSFUL" && status != "STOPPED" => {
            if status != "ROLLBACK_REQUESTED" && status != "ROLLBACK_IN_PROGRESS" {
                sink.line(
                    name,
                    &format!("stopping service deployment {arn} with rollback (StopServiceDeployment ROLLBACK)"),
                );
                retrying(clock, config.max_attempts, || {
                    api.stop_service_deployment(&arn, "ROLLBACK")
                })
                .await
                .map_err(|e| RollbackEnd::Failed(e.to_string()))?;
            }
            wait_rollback(api, clock, name, &arn, config, (interrupts, seen), sink).await
        }
        _ => {
            // Completed, stopped, or never listed: deploy the previous revision the same way.
            // `begin` lists the deployments first, ours among them: the one it follows is new.
            let again = begin(api, clock, service, &previous, config, sink)
                .await
                .map_err(|(_, e)| RollbackEnd::Failed(e))?;
            live = again;
            loop {
                match poll(api, clock, service, &mut live, config, sink).await {
                    None => {}
                    Some(NativeOutcome::Completed) => return Ok(()),
                    Some(
                        NativeOutcome::Failed(reason)
                        | NativeOutcome::RolledBackByEcs(reason)
                        | NativeOutcome::Stop(reason),
                    ) => return Err(RollbackEnd::Failed(reason)),
                }
                if sleep_or_signal(clock, config.poll_interval, (interrupts, seen)).await {
                    return Err(RollbackEnd::NotWaited(interrupts.last()));
                }
            }
        }
    }
}

/// Polls our stopped deployment until its rollback ends (bounded by the timeout).
async fn wait_rollback(
    api: &impl EcsApi,
    clock: &impl Clock,
    name: &str,
    arn: &str,
    config: &FleetConfig,
    (interrupts, seen): (&Interrupts, u32),
    sink: &mut impl Sink,
) -> Result<(), RollbackEnd> {
    let started = clock.now();
    let mut last_status = String::new();
    loop {
        match api.describe_service_deployment(arn).await {
            Ok(body) => match native::parse_describe(&body, arn) {
                Ok(deployment) => {
                    if deployment.status != last_status {
                        sink.line(name, &format!("service deployment {}", deployment.status));
                        last_status = deployment.status.clone();
                    }
                    match NativeWatch::rollback_state(&deployment) {
                        Some(RollbackOutcome::Done) => return Ok(()),
                        Some(RollbackOutcome::Failed(reason)) => {
                            return Err(RollbackEnd::Failed(reason));
                        }
                        None => {}
                    }
                }
                Err(error) => sink.warn(name, &error.to_string()),
            },
            Err(error) => sink.warn(name, &error.to_string()),
        }
        if clock.now().saturating_sub(started) >= config.watch.timeout {
            return Err(RollbackEnd::Failed(format!(
                "the rollback of {arn} did not finish within {} (last status {last_status})",
                humantime::format_duration(config.watch.timeout)
            )));
        }
        if sleep_or_signal(clock, config.poll_interval, (interrupts, seen)).await {
            return Err(RollbackEnd::NotWaited(interrupts.last()));
        }
    }
}

/// Sleeps; true when a signal came first.
async fn sleep_or_signal(
    clock: &impl Clock,
    delay: Duration,
    (interrupts, seen): (&Interrupts, u32),
) -> bool {
    if interrupts.count() > seen {
        return true;
    }
    tokio::select! {
        () = clock.sleep(delay) => interrupts.count() > seen,
        _ = interrupts.after(seen) => true,
    }
}
