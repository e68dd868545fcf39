//! A one-off task that gates the deploy (database migrations): run on the *new* revision of one
//! service, with that service's launch type / capacity providers and network configuration and
//! a command override, wait until it stops, and pass only when the named container exited 0.
//! Until then no service is updated, so a failed migration changes no service.

use std::time::Duration;

use runner_protocol::signal::Interrupts;
use serde_json::{Map, Value, json};

use crate::api::{ApiError, Clock, EcsApi, TaskState};
use crate::fleet::{Prepared, Sink, retrying};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The service whose new revision and network configuration the task uses.
    pub service: String,
    /// The container whose command is overridden and whose exit code gates.
    pub container: String,
    /// The command.
    pub command: Vec<String>,
    /// How long the task may take, from RunTask to STOPPED.
    pub timeout: Duration,
}

/// The RunTask request body: the service's run configuration, one task, the command override.
pub fn run_task_body(service: &Prepared, task_definition: &str, migration: &Migration) -> Value {
    let mut body = Map::new();
    body.insert("cluster".into(), json!(service.plan.cluster));
    body.insert("taskDefinition".into(), json!(task_definition));
    body.insert("count".into(), json!(1));
    body.insert("startedBy".into(), json!("ecs-taskdef-update"));
    for (key, value) in &service.before.run_config {
        body.insert(key.clone(), value.clone());
    }
    body.insert(
        "overrides".into(),
        json!({"containerOverrides": [{"name": migration.container, "command": migration.command}]}),
    );
    Value::Object(body)
}

/// Where the migration container's output goes, from its `logConfiguration`: the CloudWatch
/// Logs group and stream (and the command to read them) for `awslogs`, else the driver.
pub fn log_location(service: &Prepared, container: &str, task_arn: &str) -> String {
    let definition = service
        .rendered
        .containers()
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container));
    let Some(log) = definition.and_then(|c| c.get("logConfiguration")) else {
        return format!("container `{container}` has no logConfiguration: its output was not kept");
    };
    let driver = log.get("logDriver").and_then(Value::as_str).unwrap_or("");
    let option = |key: &str| {
        log.get("options")
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    match (driver, option("awslogs-group")) {
        ("awslogs", Some(group)) => {
            let region = option("awslogs-region")
                .map(|r| format!(" --region {r}"))
                .unwrap_or_default();
            match option("awslogs-stream-prefix") {
                Some(prefix) => {
                    let stream = format!("{prefix}/{container}/{task_id}");
                    format!(
                        "logs: CloudWatch Logs group {group}, stream {stream} \
                         (aws logs get-log-events --log-group-name {group} --log-stream-name {stream}{region})"
                    )
                }
                None => format!(
                    "logs: CloudWatch Logs group {group}; without awslogs-stream-prefix the \
                     stream is named by ECS (aws logs describe-log-streams --log-group-name {group}{region})"
                ),
            }
        }
        (driver, _) => format!(
            "logs: container `{container}` logs with the `{driver}` driver; look there for task {task_id}"
        ),
    }
}

/// Why a stopped task does not pass, or `None` when the migration container exited 0.
pub fn verdict(task: &TaskState, container: &str) -> Option<String> {
    let stopped = task
        .stopped_reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!(" (stopped: {r})"))
        .unwrap_or_default();
    let Some(ours) = task.containers.iter().find(|c| c.name == container) else {
        return Some(format!("the task has no container `{container}`{stopped}"));
    };
    match ours.exit_code {
        Some(0) if task.stop_code.as_deref() != Some("TaskFailedToStart") => None,
        Some(code) => Some(format!(
            "container `{container}` exited {code}{}{stopped}",
            ours.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )),
        None => Some(format!(
            "container `{container}` has no exit code: it did not run to the end{}{stopped}",
            ours.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )),
    }
}

fn describe_containers(task: &TaskState) -> String {
    task.containers
        .iter()
        .map(|c| {
            format!(
                "{} exit {}",
                c.name,
                c.exit_code.map_or("-".to_owned(), |e| e.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the migration and waits for it; `Err` says why it did not pass (the task is stopped
/// first when it is still running: timeout, signal).
pub async fn run(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    task_definition: &str,
    (migration, poll_interval, max_attempts): (&Migration, Duration, u32),
    (interrupts, seen): (&Interrupts, u32),
    sink: &mut impl Sink,
) -> Result<(), String> {
    let name = &service.plan.service;
    let body = run_task_body(service, task_definition, migration);
    let task = retrying(clock, max_attempts, || api.run_task(&body))
        .await
        .map_err(|e| format!("migration: {e}"))?;
    sink.line(
        name,
        &format!(
            "migration task {task} on {task_definition}: `{}` in container {}",
            migration.command.join(" "),
            migration.container
        ),
    );
    let cluster = &service.plan.cluster;
    let started = clock.now();
    let mut last_status = String::new();
    let mut failed_polls = 0;
    loop {
        match api.describe_task(cluster, &task).await {
            Ok(Some(state)) => {
                failed_polls = 0;
                if state.last_status != last_status {
                    sink.line(name, &format!("migration task {}", state.last_status));
                    last_status = state.last_status.clone();
                }
                if state.last_status == "STOPPED" {
                    sink.line(
                        name,
                        &format!(
                            "migration task stopped: {}{}",
                            describe_containers(&state),
                            state
                                .stopped_reason
                                .as_deref()
                                .filter(|r| !r.is_empty())
                                .map(|r| format!("; {r}"))
                                .unwrap_or_default()
                        ),
                    );
                    sink.line(name, &log_location(service, &migration.container, &task));
                    return match verdict(&state, &migration.container) {
                        None => {
                            sink.line(name, "migration passed: no service was touched before it");
                            Ok(())
                        }
                        Some(reason) => Err(format!("migration failed: {reason}")),
                    };
                }
            }
            Ok(None) => {
                failed_polls += 1;
                sink.warn(name, &format!("DescribeTasks does not know {task} (yet)"));
            }
            Err(error @ ApiError::Throttled { .. }) => {
                sink.line(name, &format!("{error}; backing off"));
            }
            Err(error) => {
                failed_polls += 1;
                sink.warn(name, &error.to_string());
            }
        }
        let stop = if failed_polls >= max_attempts {
            Some(format!("migration task {task} cannot be described"))
        } else if clock.now().saturating_sub(started) >= migration.timeout {
            Some(format!(
                "migration did not stop within {}",
                humantime::format_duration(migration.timeout)
            ))
        } else {
            None
        };
        let stop = match stop {
            Some(reason) => Some(reason),
            None => {
                tokio::select! {
                    () = clock.sleep(poll_interval) => {}
                    _ = interrupts.after(seen) => {}
                }
                (interrupts.count() > seen)
                    .then(|| format!("interrupted by {} during the migration", interrupts.last()))
            }
        };
        if let Some(reason) = stop {
            let stopped = api.stop_task(cluster, &task, &reason).await;
            sink.warn(
                name,
                &match stopped {
                    Ok(()) => format!("{reason}: stopped task {task}"),
                    Err(e) => format!("{reason}: StopTask failed ({e}); stop {task} by hand"),
                },
            );
            sink.line(name, &log_location(service, &migration.container, &task));
            return Err(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ContainerState;

    fn stopped(code: Option<i32>, stop_code: &str) -> TaskState {
        TaskState {
            arn: "arn:aws:ecs:eu-west-1:123456789012:task/prod/abc".into(),
            last_status: "STOPPED".into(),
            stop_code: Some(stop_code.into()),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: vec![
                ContainerState {
                    name: "app".into(),
                    exit_code: code,
                    reason: None,
                },
                ContainerState {
                    name: "sidecar".into(),
                    exit_code: Some(137),
                    reason: None,
                },
            ],
        }
    }

    #[test]
    fn only_the_migration_containers_exit_code_0_passes() {
        assert_eq!(
            verdict(&stopped(Some(0), "EssentialContainerExited"), "app"),
            None
        );
        assert_eq!(
            verdict(&stopped(Some(2), "EssentialContainerExited"), "app").as_deref(),
            Some("container `app` exited 2 (stopped: Essential container in task exited)")
        );
        assert!(verdict(&stopped(Some(0), "TaskFailedToStart"), "app").is_some());
        assert!(
            verdict(&stopped(None, "TaskFailedToStart"), "app")
                .is_some_and(|r| r.contains("has no exit code"))
        );
        assert!(
            verdict(&stopped(Some(0), "EssentialContainerExited"), "nope")
                .is_some_and(|r| r.contains("no container `nope`"))
        );
    }
}
