//! Deploying several services: prepare (describe, render, check images), register, update,
//! wait, and roll back every changed service when one fails.

use std::collections::BTreeMap;
use std::time::Duration;

use runner_protocol::signal::Interrupts;
use serde_json::Value;

use crate::api::{ApiError, Clock, EcrImage, EcsApi, ServiceState, UpdateRequest};
use crate::native::NativeOutcome;
use crate::native_deploy::{self, NativeLive};
use crate::taskdef::{self, ContainerEdit, ImageRef, RegisterInput, TaskDefError, TaskEdit};
use crate::watch::{Outcome, Watch, WatchConfig};

/// Where a service's base task definition comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// The service's current one.
    Current,
    /// A family, `family:revision` or ARN.
    Reference(String),
    /// A document read from a file (describe output or its wrapper).
    Document(Value),
}

/// One service to deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub service: String,
    /// Base task definition.
    pub base: Base,
    /// Container edits.
    pub edits: Vec<ContainerEdit>,
    /// Task-level edits (roles).
    pub task_edit: TaskEdit,
    /// Register a new revision (true), or deploy the base revision as it is (false: a
    /// `family:revision` or ARN owned by Terraform, CDK, ...).
    pub register: bool,
    /// New desired count.
    pub desired_count: Option<i32>,
    /// Force a new deployment.
    pub force_new_deployment: bool,
}

/// How the fleet deploys.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Poll interval while waiting.
    pub poll_interval: Duration,
    /// The wait thresholds.
    pub watch: WatchConfig,
    /// Rewrite checked ECR images to `repo@sha256:…`.
    pub pin_digest: bool,
    /// Deploy one service after the other (in plan order) instead of all at once.
    pub sequential: bool,
    /// Roll back on failure.
    pub rollback: bool,
    /// Attempts for a throttled call outside the wait loop.
    pub max_attempts: u32,
    /// Native strategies: how long a PAUSE lifecycle hook may hold the deployment before we
    /// stop it with a rollback.
    pub pause_timeout: Duration,
    /// A one-off task on a new revision that must pass before any service is updated.
    pub migration: Option<crate::migration::Migration>,
}

/// Where progress lines go.
pub trait Sink {
    /// A progress line of one service.
    fn line(&mut self, service: &str, text: &str);
    /// Something a person should see.
    fn warn(&mut self, service: &str, text: &str);
    /// Something worth knowing that is not a problem.
    fn notice(&mut self, service: &str, text: &str) {
        self.line(service, text);
    }
    /// Text from elsewhere (a container's log): masked and escaped so that no line of it can
    /// be read as a workflow command.
    fn untrusted(&mut self, service: &str, heading: &str, lines: &[String]) {
        self.line(service, heading);
        for line in lines {
            self.line(service, &format!("| {line}"));
        }
    }
}

/// Final state of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    /// Not touched (another service failed first).
    NotStarted,
    /// Registered, not updated.
    Registered,
    /// Our deployment completed.
    Deployed,
    /// Failed and back on the previous revision.
    RolledBack,
    /// Failed, no rollback asked for.
    Failed,
    /// The rollback did not complete.
    RollbackFailed,
    /// Interrupted: the rollback update was sent, its completion was not waited for.
    RollbackIssued,
}

impl ServiceStatus {
    /// Lowercase name, as written to outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::NotStarted => "not-started",
            ServiceStatus::Registered => "registered",
            ServiceStatus::Deployed => "deployed",
            ServiceStatus::RolledBack => "rolled-back",
            ServiceStatus::Failed => "failed",
            ServiceStatus::RollbackFailed => "rollback-failed",
            ServiceStatus::RollbackIssued => "rollback-issued",
        }
    }
}

/// One service's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceResult {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub service: String,
    /// The revision it ran before (the rollback target).
    pub previous_task_definition: String,
    /// The new revision.
    pub task_definition: Option<String>,
    /// Image -> digest, for the ECR images checked.
    pub image_digests: BTreeMap<String, String>,
    /// Final state.
    pub status: ServiceStatus,
    /// Why, when not deployed.
    pub reason: Option<String>,
    /// The migration, on the service it ran on.
    pub migration: Option<crate::migration::MigrationReport>,
}

/// How the fleet ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetOutcome {
    /// Every service completed.
    Deployed,
    /// A service failed; every changed service is back on its previous revision.
    RolledBack(String),
    /// A service failed and rollback was off.
    Failed(String),
    /// A rollback did not complete.
    RollbackFailed(String),
    /// SIGINT/SIGTERM: what was changed was put back (or the put-back was sent, if a later
    /// signal cut the wait short); the text says which.
    Interrupted(String),
}

/// Why a wait ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WaitEnd {
    /// A service failed.
    Failed(String),
    /// A signal (its name) arrived.
    Interrupted(&'static str),
}

/// The report of a fleet deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetReport {
    /// Per service, in plan order.
    pub services: Vec<ServiceResult>,
    /// Overall.
    pub outcome: FleetOutcome,
}

/// Errors before anything changed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// An AWS call failed.
    #[error("service `{service}`: {source}")]
    Api {
        /// Service.
        service: String,
        /// Cause.
        #[source]
        source: ApiError,
    },
    /// The service does not exist or is not active.
    #[error("service `{service}` in cluster `{cluster}` is {status}")]
    NotActive {
        /// Cluster.
        cluster: String,
        /// Service.
        service: String,
        /// Status.
        status: String,
    },
    /// The task definition cannot be rendered.
    #[error("service `{service}`: {source}")]
    TaskDef {
        /// Service.
        service: String,
        /// Cause.
        #[source]
        source: TaskDefError,
    },
    /// `register: false` with edits, or without a revision to deploy.
    #[error("service `{service}`: {message}")]
    Existing {
        /// Service.
        service: String,
        /// What is wrong.
        message: String,
    },
    /// An ECR image does not exist.
    #[error("service `{service}`: image `{image}` does not exist in ECR")]
    MissingImage {
        /// Service.
        service: String,
        /// Image.
        image: String,
    },
}

/// A service after rendering.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The plan.
    pub plan: ServicePlan,
    /// The service as it was.
    pub before: ServiceState,
    /// Base task definition (register form).
    pub base: RegisterInput,
    /// Rendered task definition.
    pub rendered: RegisterInput,
    /// Image -> digest.
    pub image_digests: BTreeMap<String, String>,
    /// `register: false`: the ARN of the existing revision to deploy.
    pub existing: Option<String>,
}

/// Calls `call` again while it is throttled, with exponential backoff.
pub(crate) async fn retrying<T, F, Fut>(
    clock: &impl Clock,
    attempts: u32,
    mut call: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut delay = Duration::from_secs(1);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(ApiError::Throttled { .. }) if attempt < attempts => {
                clock.sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Describes, renders and (for ECR) checks the images of every service; changes nothing.
pub async fn prepare(
    api: &impl EcsApi,
    clock: &impl Clock,
    plans: &[ServicePlan],
    config: &FleetConfig,
    sink: &mut impl Sink,
) -> Result<Vec<Prepared>, PrepareError> {
    let mut prepared = Vec::new();
    for plan in plans {
        let service = plan.service.clone();
        let api_error = |source| PrepareError::Api {
            service: service.clone(),
            source,
        };
        let before = retrying(clock, config.max_attempts, || {
            api.describe_service(&plan.cluster, &plan.service)
        })
        .await
        .map_err(api_error)?;
        if before.status != "ACTIVE" {
            return Err(PrepareError::NotActive {
                cluster: plan.cluster.clone(),
                service: plan.service.clone(),
                status: before.status,
            });
        }
        let document = match &plan.base {
            Base::Document(document) => document.clone(),
            Base::Current => retrying(clock, config.max_attempts, || {
                api.describe_task_definition(&before.task_definition)
            })
            .await
            .map_err(api_error)?,
            Base::Reference(reference) => retrying(clock, config.max_attempts, || {
                api.describe_task_definition(reference)
            })
            .await
            .map_err(api_error)?,
        };
        let taskdef_error = |source| PrepareError::TaskDef {
            service: service.clone(),
            source,
        };
        let existing = if plan.register {
            None
        } else {
            let existing_error = |message: String| PrepareError::Existing {
                service: service.clone(),
                message,
            };
            if !matches!(plan.base, Base::Reference(_)) {
                return Err(existing_error(
                    "register: false deploys an existing revision: give task-definition as \
                     `family:revision` or an ARN"
                        .into(),
                ));
            }
            if !plan.edits.is_empty() || plan.task_edit != TaskEdit::default() {
                return Err(existing_error(
                    "register: false deploys the revision as it is: remove the container and \
                     role changes, or let ecs-taskdef-update register a new revision"
                        .into(),
                ));
            }
            let arn = arn_of(&document).ok_or_else(|| {
                existing_error("DescribeTaskDefinition returned no taskDefinitionArn".into())
            })?;
            let status = document
                .get("taskDefinition")
                .unwrap_or(&document)
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("ACTIVE");
            if status != "ACTIVE" {
                // AWS refuses to update a service to an INACTIVE revision; say so first.
                return Err(existing_error(format!(
                    "{arn} is {status}: a service cannot be updated to it"
                )));
            }
            Some(arn)
        };
        let base = taskdef::from_describe(&document).map_err(taskdef_error)?;
        let mut rendered =
            taskdef::render(&base, &plan.task_edit, &plan.edits).map_err(taskdef_error)?;
        let edited: Vec<&str> = plan
            .edits
            .iter()
            .filter(|e| e.image.is_some())
            .map(|e| e.name.as_str())
            .collect();
        let mut image_digests = BTreeMap::new();
        let containers = rendered
            .0
            .get_mut("containerDefinitions")
            .and_then(Value::as_array_mut);
        for container in containers.into_iter().flatten() {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let Some(image) = container
                .get("image")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            let reference = ImageRef::parse(&image);
            let Some((registry_id, region)) = reference.ecr() else {
                if edited.contains(&name.as_str()) {
                    sink.line(
                        &plan.service,
                        &format!("{image}: not an ECR image, not checked"),
                    );
                }
                continue;
            };
            let lookup = EcrImage {
                registry_id,
                region,
                repository: reference.repository.clone(),
                reference: reference
                    .digest
                    .clone()
                    .or_else(|| reference.tag.clone())
                    .unwrap_or_else(|| "latest".into()),
            };
            let digest = retrying(clock, config.max_attempts, || api.image_digest(&lookup))
                .await
                .map_err(api_error)?
                .ok_or_else(|| PrepareError::MissingImage {
                    service: plan.service.clone(),
                    image: image.clone(),
                })?;
            sink.line(&plan.service, &format!("{image}: {digest}"));
            if config.pin_digest && edited.contains(&name.as_str()) && reference.digest.is_none() {
                if let Some(object) = container.as_object_mut() {
                    object.insert("image".into(), Value::String(reference.pinned(&digest)));
                }
            }
            image_digests.insert(image, digest);
        }
        prepared.push(Prepared {
            plan: plan.clone(),
            before,
            base,
            rendered,
            image_digests,
            existing,
        });
    }
    Ok(prepared)
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

/// Why a rollback did not end on a stable previous revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RollbackEnd {
    /// The rollback failed (or the previous revision failed too).
    Failed(String),
    /// The update was sent; a signal stopped the wait.
    NotWaited(&'static str),
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

fn arn_of(document: &Value) -> Option<String> {
    document
        .get("taskDefinition")
        .unwrap_or(document)
        .get("taskDefinitionArn")
        .and_then(Value::as_str)
        .map(str::to_owned)
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
