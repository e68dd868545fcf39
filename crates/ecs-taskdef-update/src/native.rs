//! ECS-native deployment strategies: blue/green (2025-07-17), linear and canary (2025-10-30),
//! with bake time and lifecycle hooks.
//!
//! For a service whose `deploymentConfiguration.strategy` is one of [`NATIVE_STRATEGIES`], ECS
//! runs the whole deployment itself and reports it as a *service deployment*
//! (ListServiceDeployments / DescribeServiceDeployments), not in the old `deployments` list. We
//! send only the task definition on UpdateService, find the service deployment it started, and
//! follow it through its lifecycle stages, bake time and hooks until ECS says `SUCCESSFUL`.
//! On our own failure criteria (the timeout, a PAUSE hook waiting past `pause-timeout`, the
//! circuit breaker's failure count reaching `max-failed-tasks`) we ask ECS to stop it with a
//! rollback (StopServiceDeployment, `stopType: ROLLBACK`) and wait for that to finish.
//!
//! The response bodies are read as JSON, field names as in the API reference:
//! <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html>
//! (`ServiceDeployment`: `status`, `statusReason`, `lifecycleStage`, `lifecycleHookDetails[]`,
//! `deploymentCircuitBreaker`, `alarms`, `rollback`, `targetServiceRevision`, ...) and
//! <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServiceDeployments.html>
//! (`serviceDeployments[]` of `ServiceDeploymentBrief`). The SDK this crate builds with predates
//! some of these members (`lifecycleStage`, `lifecycleHookDetails`), so the raw body is read.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

/// `deploymentConfiguration.strategy` values ECS runs as service deployments we follow here.
pub const NATIVE_STRATEGIES: &[&str] = &["BLUE_GREEN", "LINEAR", "CANARY"];

/// Whether a service's strategy is one of [`NATIVE_STRATEGIES`].
pub fn is_native(strategy: Option<&str>) -> bool {
    strategy.is_some_and(|s| NATIVE_STRATEGIES.contains(&s))
}

/// One entry of `lifecycleHookDetails` (API_DeploymentLifecycleHookDetail).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HookDetail {
    /// `hookId` (needed for ContinueServiceDeployment).
    pub hook_id: String,
    /// `AWS_LAMBDA` or `PAUSE`.
    pub target_type: String,
    /// `AWAITING_ACTION`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`.
    pub status: String,
    /// `targetArn` (Lambda hooks).
    pub target_arn: Option<String>,
    /// `expiresAt`, epoch seconds.
    pub expires_at: Option<f64>,
    /// `CONTINUE` or `ROLLBACK`.
    pub timeout_action: Option<String>,
}

/// A ServiceDeployment, the fields the wait uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDeployment {
    /// `serviceDeploymentArn`.
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `STOP_REQUESTED`,
    /// `ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL`, `ROLLBACK_FAILED`.
    pub status: String,
    /// `statusReason`.
    pub status_reason: Option<String>,
    /// `lifecycleStage` (`RECONCILE_SERVICE`, `PRE_SCALE_UP`, `SCALE_UP`, ..., `BAKE_TIME`,
    /// `CLEAN_UP`).
    pub lifecycle_stage: Option<String>,
    /// `lifecycleHookDetails`.
    pub hooks: Vec<HookDetail>,
    /// `deploymentCircuitBreaker.failureCount`.
    pub failure_count: Option<i64>,
    /// `deploymentCircuitBreaker.status`.
    pub breaker_status: Option<String>,
    /// `alarms.triggeredAlarmNames`.
    pub triggered_alarms: Vec<String>,
    /// `rollback.reason`.
    pub rollback_reason: Option<String>,
    /// `targetServiceRevision.{runningTaskCount, requestedTaskCount}`.
    pub target_tasks: Option<(i64, i64)>,
    /// `deploymentConfiguration.bakeTimeInMinutes`.
    pub bake_time_minutes: Option<i64>,
}

/// A malformed response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} response: {message}")]
pub struct ParseError {
    /// The API action.
    pub operation: &'static str,
    /// What is wrong.
    pub message: String,
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// ListServiceDeployments: `(serviceDeploymentArn, createdAt, status)` of each entry.
pub fn parse_list(body: &Value) -> Result<Vec<(String, f64, String)>, ParseError> {
    let entries = body
        .get("serviceDeployments")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError {
            operation: "ListServiceDeployments",
            message: "no `serviceDeployments` array".into(),
        })?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            Some((
                text(entry, "serviceDeploymentArn")?,
                entry
                    .get("createdAt")
                    .and_then(Value::as_f64)
                    .unwrap_or_default(),
                text(entry, "status").unwrap_or_default(),
            ))
        })
        .collect())
}

/// DescribeServiceDeployments: the deployment `arn`, or the reason from `failures`.
pub fn parse_describe(body: &Value, arn: &str) -> Result<ServiceDeployment, ParseError> {
    let error = |message: String| ParseError {
        operation: "DescribeServiceDeployments",
        message,
    };
    let found = body
        .get("serviceDeployments")
        .and_then(Value::as_array)
        .and_then(|all| {
            all.iter()
                .find(|d| text(d, "serviceDeploymentArn").as_deref() == Some(arn))
        });
    let Some(found) = found else {
        let reason = body
            .get("failures")
            .and_then(Value::as_array)
            .and_then(|f| f.iter().find(|f| text(f, "arn").as_deref() == Some(arn)))
            .and_then(|f| text(f, "reason"))
            .unwrap_or_else(|| "not in the response".into());
        return Err(error(format!("{arn}: {reason}")));
    };
    let hooks = found
        .get("lifecycleHookDetails")
        .and_then(Value::as_array)
        .map(|hooks| {
            hooks
                .iter()
                .map(|h| HookDetail {
                    hook_id: text(h, "hookId").unwrap_or_default(),
                    target_type: text(h, "targetType").unwrap_or_default(),
                    status: text(h, "status").unwrap_or_default(),
                    target_arn: text(h, "targetArn"),
                    expires_at: h.get("expiresAt").and_then(Value::as_f64),
                    timeout_action: text(h, "timeoutAction"),
                })
                .collect()
        })
        .unwrap_or_default();
    let breaker = found.get("deploymentCircuitBreaker");
    let target = found.get("targetServiceRevision");
    Ok(ServiceDeployment {
        arn: arn.to_owned(),
        status: text(found, "status").ok_or_else(|| error(format!("{arn} has no status")))?,
        status_reason: text(found, "statusReason"),
        lifecycle_stage: text(found, "lifecycleStage"),
        hooks,
        failure_count: breaker
            .and_then(|b| b.get("failureCount"))
            .and_then(Value::as_i64),
        breaker_status: breaker.and_then(|b| text(b, "status")),
        triggered_alarms: found
            .get("alarms")
            .and_then(|a| a.get("triggeredAlarmNames"))
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        rollback_reason: found.get("rollback").and_then(|r| text(r, "reason")),
        target_tasks: target.map(|t| {
            (
                t.get("runningTaskCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                t.get("requestedTaskCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            )
        }),
        bake_time_minutes: found
            .get("deploymentConfiguration")
            .and_then(|c| c.get("bakeTimeInMinutes"))
            .and_then(Value::as_i64),
    })
}

/// The thresholds of a native wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeConfig {
    /// The whole deployment, bake time and hooks included.
    pub timeout: Duration,
    /// How long a PAUSE hook may wait for ContinueServiceDeployment before we stop the
    /// deployment (with rollback).
    pub pause_timeout: Duration,
    /// Stop once the circuit breaker counted this many failed tasks (0: leave it to ECS).
    pub max_failed_tasks: i32,
}

/// How a native wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeOutcome {
    /// `SUCCESSFUL`.
    Completed,
    /// ECS rolled back by itself (`ROLLBACK_SUCCESSFUL`: circuit breaker, alarms, a failed or
    /// timed-out hook).
    RolledBackByEcs(String),
    /// Our criteria: stop it with a rollback.
    Stop(String),
    /// Stopped by someone else, or the rollback failed: nothing more to wait for.
    Failed(String),
}

/// Where a wait for a rollback (after our StopServiceDeployment) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackOutcome {
    /// `ROLLBACK_SUCCESSFUL` (or `STOPPED`: the source revision kept serving).
    Done,
    /// `ROLLBACK_FAILED`.
    Failed(String),
}

/// One observation's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NativeStep {
    /// Lines for the log (stage changes, hooks, task counts).
    pub log: Vec<String>,
    /// The verdict, once there is one.
    pub outcome: Option<NativeOutcome>,
}

/// Follows one service deployment.
#[derive(Debug, Clone)]
pub struct NativeWatch {
    /// Service deployments that existed before our UpdateService (not ours).
    known: HashSet<String>,
    /// Ours, once listed.
    arn: Option<String>,
    started: Duration,
    config: NativeConfig,
    last_line: Option<String>,
    reported_hooks: HashSet<String>,
    paused_since: Option<Duration>,
    bake_time_warned: bool,
    /// The last status seen.
    pub last_status: Option<String>,
}

impl NativeWatch {
    /// Starts following the deployment our update makes; `known` are the service deployment
    /// ARNs listed before it.
    pub fn new(
        known: impl IntoIterator<Item = String>,
        started: Duration,
        config: NativeConfig,
    ) -> Self {
        Self {
            known: known.into_iter().collect(),
            arn: None,
            started,
            config,
            last_line: None,
            reported_hooks: HashSet::new(),
            paused_since: None,
            bake_time_warned: false,
            last_status: None,
        }
    }

    /// Our service deployment, once found.
    pub fn arn(&self) -> Option<&str> {
        self.arn.as_deref()
    }

    /// Picks our deployment from a ListServiceDeployments answer: the newest one not listed
    /// before the update. `None` while ECS does not list it yet.
    pub fn find(&mut self, listed: &[(String, f64, String)]) -> Option<String> {
        if self.arn.is_none() {
            self.arn = listed
                .iter()
                .filter(|(arn, _, _)| !self.known.contains(arn))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(arn, _, _)| arn.clone());
        }
        self.arn.clone()
    }

    /// The timeout, when no observation could be made.
    pub fn tick(&self, now: Duration, state: &str) -> Option<NativeOutcome> {
        (now.saturating_sub(self.started) >= self.config.timeout).then(|| {
            NativeOutcome::Stop(format!(
                "not complete after {}: {state}",
                humantime::format_duration(self.config.timeout)
            ))
        })
    }

    /// Takes one DescribeServiceDeployments observation at `now`.
    pub fn observe(&mut self, deployment: &ServiceDeployment, now: Duration) -> NativeStep {
        let mut step = NativeStep::default();
        let stage = deployment.lifecycle_stage.as_deref().unwrap_or("-");
        let mut line = format!("service deployment {}, stage {stage}", deployment.status);
        if let Some((running, requested)) = deployment.target_tasks {
            line.push_str(&format!(
                ", new revision {running}/{requested} tasks running"
            ));
        }
        if stage == "BAKE_TIME" {
            if let Some(minutes) = deployment.bake_time_minutes {
                line.push_str(&format!(" (bake time {minutes} min)"));
            }
        }
        if self.last_line.as_deref() != Some(line.as_str()) {
            step.log.push(line.clone());
            self.last_line = Some(line);
        }
        self.last_status = Some(deployment.status.clone());
        if let Some(minutes) = deployment
            .bake_time_minutes
            .filter(|_| !self.bake_time_warned)
        {
            self.bake_time_warned = true;
            let bake = Duration::from_secs(u64::try_from(minutes).unwrap_or(0) * 60);
            if bake >= self.config.timeout {
                step.log.push(format!(
                    "warning: the bake time ({minutes} min) is not shorter than timeout ({}): \
                     the deployment will be stopped before it can complete; raise timeout",
                    humantime::format_duration(self.config.timeout)
                ));
            }
        }
        let mut paused = None;
        for hook in &deployment.hooks {
            let key = format!("{}/{}", hook.hook_id, hook.status);
            let new = self.reported_hooks.insert(key);
            if hook.target_type == "PAUSE" && hook.status == "AWAITING_ACTION" {
                paused = Some(hook);
                if new {
                    step.log.push(format!(
                        "PAUSED at stage {stage} by a pause hook: the deployment waits for \
                         ContinueServiceDeployment (`aws ecs continue-service-deployment \
                         --service-deployment-arn {} --hook-id {} --action CONTINUE`, or \
                         `--action ROLLBACK`){}; ecs-taskdef-update waits {} and then stops it \
                         with a rollback",
                        deployment.arn,
                        hook.hook_id,
                        match (&hook.timeout_action, hook.expires_at) {
                            (Some(action), Some(at)) => {
                                format!("; ECS itself takes `{action}` at {}", epoch(at))
                            }
                            _ => String::new(),
                        },
                        humantime::format_duration(self.config.pause_timeout)
                    ));
                }
            } else if new {
                let target = hook.target_arn.as_deref().unwrap_or(&hook.target_type);
                step.log.push(format!("hook {target}: {}", hook.status));
            }
        }
        match (paused, self.paused_since) {
            (Some(_), None) => self.paused_since = Some(now),
            (None, Some(_)) => self.paused_since = None,
            _ => {}
        }
        let reason = || {
            deployment
                .status_reason
                .clone()
                .or_else(|| deployment.rollback_reason.clone())
                .unwrap_or_else(|| "no reason given".into())
        };
        step.outcome = match deployment.status.as_str() {
            "SUCCESSFUL" => Some(NativeOutcome::Completed),
            "ROLLBACK_SUCCESSFUL" => Some(NativeOutcome::RolledBackByEcs(format!(
                "ECS rolled the service deployment back: {}",
                reason()
            ))),
            "ROLLBACK_FAILED" => Some(NativeOutcome::Failed(format!(
                "the service deployment's rollback FAILED: {}",
                reason()
            ))),
            "STOPPED" | "STOP_REQUESTED" => Some(NativeOutcome::Failed(format!(
                "the service deployment was stopped: {}",
                reason()
            ))),
            // ECS is rolling back: wait for where that ends.
            "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" => None,
            _ => self.ours_failed(deployment, now),
        };
        step
    }

    fn ours_failed(&self, deployment: &ServiceDeployment, now: Duration) -> Option<NativeOutcome> {
        if let Some(count) = deployment.failure_count {
            if self.config.max_failed_tasks > 0 && count >= i64::from(self.config.max_failed_tasks)
            {
                return Some(NativeOutcome::Stop(format!(
                    "{count} tasks of the new revision failed (limit {})",
                    self.config.max_failed_tasks
                )));
            }
        }
        if let Some(since) = self.paused_since {
            if now.saturating_sub(since) >= self.config.pause_timeout {
                return Some(NativeOutcome::Stop(format!(
                    "paused by a pause hook for {} without ContinueServiceDeployment (pause-timeout)",
                    humantime::format_duration(self.config.pause_timeout)
                )));
            }
        }
        self.tick(
            now,
            &format!(
                "service deployment {} at stage {}",
                deployment.status,
                deployment.lifecycle_stage.as_deref().unwrap_or("-")
            ),
        )
    }

    /// After our StopServiceDeployment: where the rollback stands.
    pub fn rollback_state(deployment: &ServiceDeployment) -> Option<RollbackOutcome> {
        match deployment.status.as_str() {
            "ROLLBACK_SUCCESSFUL" | "STOPPED" => Some(RollbackOutcome::Done),
            "ROLLBACK_FAILED" => Some(RollbackOutcome::Failed(
                deployment
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "ROLLBACK_FAILED".into()),
            )),
            _ => None,
        }
    }
}

/// An epoch time as RFC 3339 (UTC).
fn epoch(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return format!("{seconds}");
    }
    let time = std::time::UNIX_EPOCH + Duration::from_secs_f64(seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
#[path = "native_tests.rs"]
mod tests;
