//! A one-off task that gates the deploy (database migrations): run on the *new* revision of one
//! service, with that service's launch type / capacity providers and network configuration and
//! a command override, wait until it stops, and pass only when the named container exited 0.
//! Until then no service is updated, so a failed migration changes no service.

use std::collections::BTreeMap;
use std::time::Duration;

use runner_protocol::signal::Interrupts;
use serde_json::{Map, Value, json};

use crate::api::{ApiError, Clock, EcsApi, LogStream, TaskState};
use crate::prepared::Prepared;
use crate::retry::retrying;
use crate::sink::Sink;

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

/// How many log events the tail holds.
pub const LOG_TAIL_EVENTS: u32 = 50;
/// Characters kept of one log event (a stack trace line, a JSON blob).
const LOG_EVENT_CHARS: usize = 2_000;

/// What the migration did, for the log, the summary and the `result` output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The task ARN (empty when RunTask failed).
    pub task: String,
    /// Exit code per container (`None`: it did not run to the end).
    pub exit_codes: BTreeMap<String, Option<i32>>,
    /// ECS's stopped reason.
    pub stopped_reason: Option<String>,
    /// Where the migration container's output is (or why it is nowhere).
    pub log: String,
    /// The last events of its CloudWatch Logs stream (`awslogs` only), as the server sent them:
    /// untrusted text, to be masked and escaped by whoever prints it.
    pub log_tail: Vec<String>,
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

fn log_configuration<'a>(service: &'a Prepared, container: &str) -> Option<&'a Value> {
    service
        .rendered
        .containers()
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .and_then(|c| c.get("logConfiguration"))
}

fn log_option(log: &Value, key: &str) -> Option<String> {
    log.get("options")
        .and_then(|o| o.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// The CloudWatch Logs stream of the migration container, when its log driver is `awslogs`
/// with a stream prefix (ECS names it `prefix/container/task-id`).
pub fn awslogs_stream(service: &Prepared, container: &str, task_arn: &str) -> Option<LogStream> {
    let log = log_configuration(service, container)?;
    if log.get("logDriver").and_then(Value::as_str) != Some("awslogs") {
        return None;
    }
    Some(LogStream {
        group: log_option(log, "awslogs-group")?,
        stream: format!(
            "{}/{container}/{}",
            log_option(log, "awslogs-stream-prefix")?,
            task_id(task_arn)
        ),
        region: log_option(log, "awslogs-region"),
    })
}

/// Where the migration container's output goes, from its `logConfiguration`: the CloudWatch
/// Logs group and stream (and the command to read them) for `awslogs`, else the driver.
pub fn log_location(service: &Prepared, container: &str, task_arn: &str) -> String {
    let Some(log) = log_configuration(service, container) else {
        return format!("container `{container}` has no logConfiguration: its output was not kept");
    };
    let driver = log.get("logDriver").and_then(Value::as_str).unwrap_or("");
    let task_id = task_id(task_arn);
    match (driver, log_option(log, "awslogs-group")) {
        ("awslogs", Some(group)) => {
            let region = log_option(log, "awslogs-region")
                .map(|r| format!(" --region {r}"))
                .unwrap_or_default();
            match awslogs_stream(service, container, task_arn) {
                Some(LogStream { stream, .. }) => format!(
                    "logs: CloudWatch Logs group {group}, stream {stream} \
                     (aws logs get-log-events --log-group-name {group} --log-stream-name {stream}{region})"
                ),
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

/// Reads the tail of the migration container's stream into `report` and shows it; a stream
/// that cannot be read is said (with the IAM action), never fatal: the verdict is the exit code.
async fn read_log_tail(
    api: &impl EcsApi,
    service: &Prepared,
    container: &str,
    report: &mut MigrationReport,
    sink: &mut impl Sink,
) {
    let name = &service.plan.service;
    report.log = log_location(service, container, &report.task);
    sink.line(name, &report.log);
    let Some(stream) = awslogs_stream(service, container, &report.task) else {
        return;
    };
    match api.log_tail(&stream, LOG_TAIL_EVENTS).await {
        Ok(events) => {
            report.log_tail = events
                .iter()
                .map(|e| {
                    let e = e.trim_end_matches(['\n', '\r']);
                    match e.char_indices().nth(LOG_EVENT_CHARS) {
                        Some((cut, _)) => format!("{}…", &e[..cut]),
                        None => e.to_owned(),
                    }
                })
                .collect();
            sink.untrusted(
                name,
                &format!(
                    "migration log tail ({} event(s) of {}, last {LOG_TAIL_EVENTS} at most):",
                    report.log_tail.len(),
                    stream.stream
                ),
                &report.log_tail,
            );
        }
        Err(error) => sink.warn(
            name,
            &format!("the migration's log tail could not be read: {error}"),
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
/// first when it is still running: timeout, signal). The report says what ran and its log tail.
pub async fn run(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    task_definition: &str,
    (migration, poll_interval, max_attempts): (&Migration, Duration, u32),
    (interrupts, seen): (&Interrupts, u32),
    sink: &mut impl Sink,
) -> (MigrationReport, Result<(), String>) {
    let mut report = MigrationReport::default();
    let verdict = run_task(
        api,
        clock,
        service,
        task_definition,
        (migration, poll_interval, max_attempts),
        (interrupts, seen),
        &mut report,
        sink,
    )
    .await;
    (report, verdict)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the arguments of `run`, plus its report"
)]
async fn run_task(
    api: &impl EcsApi,
    clock: &impl Clock,
    service: &Prepared,
    task_definition: &str,
    (migration, poll_interval, max_attempts): (&Migration, Duration, u32),
    (interrupts, seen): (&Interrupts, u32),
    report: &mut MigrationReport,
    sink: &mut impl Sink,
) -> Result<(), String> {
    let name = &service.plan.service;
    let body = run_task_body(service, task_definition, migration);
    let task = retrying(clock, max_attempts, || api.run_task(&body))
        .await
        .map_err(|e| format!("migration: {e}"))?;
    report.task = task.clone();
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
                    report.exit_codes = state
                        .containers
                        .iter()
                        .map(|c| (c.name.clone(), c.exit_code))
                        .collect();
                    report.stopped_reason = state.stopped_reason.clone();
                    read_log_tail(api, service, &migration.container, report, sink).await;
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
            read_log_tail(api, service, &migration.container, report, sink).await;
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
