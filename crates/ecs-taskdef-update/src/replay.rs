//! A scripted ECS for tests and the benchmark: DescribeServices answers follow a timeline on a
//! virtual clock, every call is counted, and a rollback UpdateService switches the service to a
//! scripted "after rollback" state. Nothing here talks to a network.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{
    ApiError, Clock, Deployment, EcrImage, EcsApi, LogStream, ServiceState, StoppedTask, TaskState,
    UpdateRequest,
};

/// A clock that only moves when slept on.
#[derive(Debug, Default)]
pub struct VirtualClock(Cell<Duration>);

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        self.0.get()
    }

    async fn sleep(&self, duration: Duration) {
        self.0.set(self.0.get() + duration);
    }
}

/// How a service answers once it is rolled back.
#[derive(Debug, Clone)]
pub enum AfterRollback {
    /// The previous revision comes up: one COMPLETED deployment.
    Healthy,
    /// The previous revision fails too.
    Fails,
    /// The previous revision never settles (stays IN_PROGRESS with no task running).
    Stuck,
}

/// One scripted service.
#[derive(Debug, Clone)]
pub struct ScriptedService {
    /// `(from, answer)`: DescribeServices returns the last answer whose time has come.
    pub timeline: Vec<(Duration, Result<ServiceState, ApiError>)>,
    /// After a rollback UpdateService.
    pub after_rollback: AfterRollback,
}

/// A service on a native strategy (blue/green, linear, canary): ListServiceDeployments and
/// DescribeServiceDeployments answer with bodies as the API reference documents them (build
/// them with [`service_deployment`] and [`deployment_brief`]). Times count from the first
/// UpdateService (`timeline`) or from StopServiceDeployment (`after_stop`).
#[derive(Debug, Clone, Default)]
pub struct NativeScript {
    /// ServiceDeploymentBrief entries listed before our update.
    pub earlier: Vec<Value>,
    /// ARN of the service deployment our UpdateService starts.
    pub arn: String,
    /// How long after UpdateService ListServiceDeployments starts listing it.
    pub listed_after: Duration,
    /// `(from, ServiceDeployment)` of ours, from the update on.
    pub timeline: Vec<(Duration, Value)>,
    /// `(from, ServiceDeployment)` of ours, from StopServiceDeployment on.
    pub after_stop: Vec<(Duration, Value)>,
    /// A second UpdateService (a rollback after success) starts `<arn>-back`, which answers
    /// these `(from, ServiceDeployment)`.
    pub back: Vec<(Duration, Value)>,
}

#[derive(Debug, Default)]
struct NativeState {
    script: NativeScript,
    updates: Vec<Duration>,
    stopped: Option<Duration>,
}

#[derive(Debug, Default)]
struct State {
    services: BTreeMap<String, ScriptedService>,
    task_definitions: BTreeMap<String, Value>,
    images: BTreeMap<String, String>,
    stopped: Vec<StoppedTask>,
    registered: Vec<Value>,
    arns: Vec<String>,
    updates: Vec<UpdateRequest>,
    described: Vec<String>,
    existing: Vec<String>,
    native: BTreeMap<String, NativeState>,
    stops: Vec<(String, String)>,
    migration: Vec<(Duration, TaskState)>,
    runs: Vec<(Duration, Value)>,
    stopped_tasks: Vec<(String, String)>,
    logs: BTreeMap<(String, String), Vec<String>>,
    log_reads: Vec<LogStream>,
    calls: BTreeMap<&'static str, usize>,
}

/// The scripted API.
#[derive(Debug, Default)]
pub struct Replay<'a> {
    state: RefCell<State>,
    clock: Option<&'a VirtualClock>,
}

/// The ARN the replay gives `family:revision`.
pub fn arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/{family}:{revision}")
}

impl<'a> Replay<'a> {
    /// A replay reading time from `clock`.
    pub fn new(clock: &'a VirtualClock) -> Self {
        Self {
            state: RefCell::default(),
            clock: Some(clock),
        }
    }

    /// Adds a service.
    pub fn service(&self, name: &str, script: ScriptedService) {
        self.state.borrow_mut().services.insert(name.into(), script);
    }

    /// Adds a task definition document under its ARN and `family:revision`.
    pub fn task_definition(&self, family: &str, revision: u32, containers: Value) {
        let document = json!({
            "taskDefinition": {
                "taskDefinitionArn": arn(family, revision),
                "family": family,
                "revision": revision,
                "status": "ACTIVE",
                "containerDefinitions": containers,
                "compatibilities": ["EC2", "FARGATE"],
                "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc",
                "cpu": "256",
                "memory": "512"
            },
            "tags": []
        });
        let mut state = self.state.borrow_mut();
        state
            .task_definitions
            .insert(arn(family, revision), document.clone());
        state
            .task_definitions
            .insert(format!("{family}:{revision}"), document);
    }

    /// Adds a DescribeTaskDefinition response body, returned for `reference` as it is.
    pub fn describe_response(&self, reference: &str, document: Value) {
        self.state
            .borrow_mut()
            .task_definitions
            .insert(reference.into(), document);
    }

    /// Marks a revision registered outside the deploy (Terraform, CDK): an UpdateService to it
    /// is a deploy, not a rollback.
    pub fn existing(&self, arn: &str) {
        self.state.borrow_mut().existing.push(arn.into());
    }

    /// The references DescribeTaskDefinition was asked for, in order.
    pub fn described(&self) -> Vec<String> {
        self.state.borrow().described.clone()
    }

    /// Adds an ECR image: `repository:reference` -> digest.
    pub fn image(&self, repository: &str, reference: &str, digest: &str) {
        self.state
            .borrow_mut()
            .images
            .insert(format!("{repository}:{reference}"), digest.into());
    }

    /// Adds a stopped task.
    pub fn stopped(&self, task: StoppedTask) {
        self.state.borrow_mut().stopped.push(task);
    }

    /// Scripts the service deployments of a native-strategy service.
    pub fn native(&self, service: &str, script: NativeScript) {
        self.state.borrow_mut().native.insert(
            service.into(),
            NativeState {
                script,
                ..NativeState::default()
            },
        );
    }

    /// Scripts the one-off task RunTask starts: `(from, DescribeTasks answer)`, times counted
    /// from RunTask.
    pub fn migration(&self, timeline: Vec<(Duration, TaskState)>) {
        self.state.borrow_mut().migration = timeline;
    }

    /// A CloudWatch Logs stream's messages (GetLogEvents of any other stream: not found).
    pub fn log_stream(&self, group: &str, stream: &str, messages: &[&str]) {
        self.state.borrow_mut().logs.insert(
            (group.to_owned(), stream.to_owned()),
            messages.iter().map(|m| (*m).to_owned()).collect(),
        );
    }

    /// The streams GetLogEvents was asked for.
    pub fn log_reads(&self) -> Vec<LogStream> {
        self.state.borrow().log_reads.clone()
    }

    /// RunTask request bodies.
    pub fn runs(&self) -> Vec<Value> {
        self.state
            .borrow()
            .runs
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// StopTask requests: `(task, reason)`.
    pub fn stopped_tasks(&self) -> Vec<(String, String)> {
        self.state.borrow().stopped_tasks.clone()
    }

    /// StopServiceDeployment requests: `(arn, stopType)`.
    pub fn stops(&self) -> Vec<(String, String)> {
        self.state.borrow().stops.clone()
    }

    /// Calls made, by API action.
    pub fn calls(&self) -> BTreeMap<&'static str, usize> {
        self.state.borrow().calls.clone()
    }

    /// Total calls.
    pub fn total_calls(&self) -> usize {
        self.state.borrow().calls.values().sum()
    }

    /// UpdateService requests, in order.
    pub fn updates(&self) -> Vec<UpdateRequest> {
        self.state.borrow().updates.clone()
    }

    /// RegisterTaskDefinition bodies, in order.
    pub fn registered(&self) -> Vec<Value> {
        self.state.borrow().registered.clone()
    }

    fn count(&self, operation: &'static str) {
        *self.state.borrow_mut().calls.entry(operation).or_default() += 1;
    }

    fn now(&self) -> Duration {
        self.clock.map_or(Duration::ZERO, Clock::now)
    }
}

/// A deployment helper for scripts.
pub fn deployment(
    id: &str,
    status: &str,
    task_definition: &str,
    rollout: &str,
    running: i32,
) -> Deployment {
    Deployment {
        id: id.into(),
        status: status.into(),
        task_definition: task_definition.into(),
        desired: 2,
        running,
        pending: 0,
        failed_tasks: 0,
        rollout_state: Some(rollout.into()),
        rollout_state_reason: None,
    }
}

/// A service state helper: desired 2, running = sum of the deployments' running.
pub fn service_state(deployments: Vec<Deployment>) -> ServiceState {
    ServiceState {
        status: "ACTIVE".into(),
        task_definition: deployments
            .iter()
            .find(|d| d.status == "PRIMARY")
            .map(|d| d.task_definition.clone())
            .unwrap_or_default(),
        desired: 2,
        running: deployments.iter().map(|d| d.running).sum::<i32>().min(2),
        deployments,
        events: vec![],
        strategy: None,
        run_config: serde_json::Map::new(),
    }
}

impl EcsApi for Replay<'_> {
    async fn describe_service(
        &self,
        _cluster: &str,
        service: &str,
    ) -> Result<ServiceState, ApiError> {
        self.count("DescribeServices");
        let now = self.now();
        let state = self.state.borrow();
        let Some(script) = state.services.get(service) else {
            return Ok(ServiceState {
                status: "MISSING".into(),
                ..ServiceState::default()
            });
        };
        script
            .timeline
            .iter()
            .rev()
            .find(|(from, _)| *from <= now)
            .map(|(_, answer)| answer.clone())
            .unwrap_or_else(|| {
                Err(ApiError::Other {
                    operation: "DescribeServices",
                    message: "no scripted answer".into(),
                })
            })
    }

    async fn describe_task_definition(&self, reference: &str) -> Result<Value, ApiError> {
        self.count("DescribeTaskDefinition");
        self.state.borrow_mut().described.push(reference.to_owned());
        self.state
            .borrow()
            .task_definitions
            .get(reference)
            .cloned()
            .ok_or_else(|| ApiError::Invalid {
                operation: "DescribeTaskDefinition",
                message: format!("unable to describe task definition {reference}"),
            })
    }

    async fn register_task_definition(&self, body: &Value) -> Result<String, ApiError> {
        self.count("RegisterTaskDefinition");
        let family = body["family"].as_str().unwrap_or_default().to_owned();
        let mut state = self.state.borrow_mut();
        state.registered.push(body.clone());
        let revision = 8 + state
            .registered
            .iter()
            .filter(|b| b["family"] == body["family"])
            .count() as u32
            - 1;
        let arn = arn(&family, revision);
        state.arns.push(arn.clone());
        Ok(arn)
    }

    async fn update_service(&self, request: &UpdateRequest) -> Result<Option<String>, ApiError> {
        self.count("UpdateService");
        let now = self.now();
        let mut state = self.state.borrow_mut();
        state.updates.push(request.clone());
        if let Some(native) = state.native.get_mut(&request.service) {
            native.updates.push(now);
            return Ok(None);
        }
        let ours = state.arns.contains(&request.task_definition)
            || state.existing.contains(&request.task_definition);
        let Some(script) = state.services.get_mut(&request.service) else {
            return Err(ApiError::NotFound {
                operation: "UpdateService",
                message: "ServiceNotFoundException".into(),
            });
        };
        let first = request.task_definition.clone();
        if !ours {
            let id = "ecs-svc/rollback".to_owned();
            let answer = match script.after_rollback {
                AfterRollback::Healthy => {
                    service_state(vec![deployment(&id, "PRIMARY", &first, "COMPLETED", 2)])
                }
                AfterRollback::Fails => {
                    service_state(vec![deployment(&id, "PRIMARY", &first, "FAILED", 0)])
                }
                AfterRollback::Stuck => {
                    service_state(vec![deployment(&id, "PRIMARY", &first, "IN_PROGRESS", 0)])
                }
            };
            script.timeline = vec![(now, Ok(answer))];
            return Ok(Some(id));
        }
        Ok(Some(format!("ecs-svc/new-{}", request.service)))
    }

    async fn stopped_tasks(
        &self,
        _cluster: &str,
        _service: &str,
        limit: usize,
    ) -> Result<Vec<StoppedTask>, ApiError> {
        self.count("ListTasks");
        self.count("DescribeTasks");
        Ok(self
            .state
            .borrow()
            .stopped
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn image_digest(&self, image: &EcrImage) -> Result<Option<String>, ApiError> {
        self.count("DescribeImages");
        Ok(self
            .state
            .borrow()
            .images
            .get(&format!("{}:{}", image.repository, image.reference))
            .cloned())
    }

    async fn list_service_deployments(
        &self,
        _cluster: &str,
        service: &str,
    ) -> Result<Value, ApiError> {
        self.count("ListServiceDeployments");
        let now = self.now();
        let state = self.state.borrow();
        let Some(native) = state.native.get(service) else {
            return Ok(json!({"serviceDeployments": []}));
        };
        let mut listed = native.script.earlier.clone();
        if let Some(first) = native.updates.first() {
            if now >= *first + native.script.listed_after {
                listed.push(deployment_brief(&native.script.arn, 1000.0, "IN_PROGRESS"));
            }
        }
        if let Some(second) = native.updates.get(1) {
            if now >= *second + native.script.listed_after {
                listed.push(deployment_brief(
                    &format!("{}-back", native.script.arn),
                    2000.0,
                    "IN_PROGRESS",
                ));
            }
        }
        Ok(json!({"serviceDeployments": listed}))
    }

    async fn describe_service_deployment(&self, arn: &str) -> Result<Value, ApiError> {
        self.count("DescribeServiceDeployments");
        let now = self.now();
        let state = self.state.borrow();
        let pick = |timeline: &[(Duration, Value)], since: Duration| {
            timeline
                .iter()
                .rev()
                .find(|(from, _)| since + *from <= now)
                .map(|(_, body)| body.clone())
        };
        let found = state.native.values().find_map(|native| {
            let first = *native.updates.first()?;
            if arn == native.script.arn {
                match native.stopped {
                    Some(stopped) => pick(&native.script.after_stop, stopped)
                        .or_else(|| pick(&native.script.timeline, first)),
                    None => pick(&native.script.timeline, first),
                }
            } else if arn == format!("{}-back", native.script.arn) {
                pick(&native.script.back, *native.updates.get(1)?)
            } else {
                None
            }
        });
        Ok(match found {
            Some(deployment) => json!({"serviceDeployments": [deployment], "failures": []}),
            None => json!({"serviceDeployments": [], "failures": [
                {"arn": arn, "reason": "MISSING", "detail": "scripted: no such service deployment"}
            ]}),
        })
    }

    async fn stop_service_deployment(&self, arn: &str, stop_type: &str) -> Result<(), ApiError> {
        self.count("StopServiceDeployment");
        let now = self.now();
        let mut state = self.state.borrow_mut();
        state.stops.push((arn.to_owned(), stop_type.to_owned()));
        for native in state.native.values_mut() {
            if native.script.arn == arn {
                native.stopped = Some(now);
            }
        }
        Ok(())
    }

    async fn run_task(&self, body: &Value) -> Result<String, ApiError> {
        self.count("RunTask");
        let now = self.now();
        self.state.borrow_mut().runs.push((now, body.clone()));
        Ok(MIGRATION_TASK.to_owned())
    }

    async fn describe_task(
        &self,
        _cluster: &str,
        arn: &str,
    ) -> Result<Option<TaskState>, ApiError> {
        self.count("DescribeTasks");
        let now = self.now();
        let state = self.state.borrow();
        let Some((started, _)) = state.runs.last() else {
            return Ok(None);
        };
        if arn != MIGRATION_TASK {
            return Ok(None);
        }
        let stopped = state.stopped_tasks.iter().any(|(task, _)| task == arn);
        let mut answer = state
            .migration
            .iter()
            .rev()
            .find(|(from, _)| *started + *from <= now)
            .map(|(_, task)| task.clone());
        if stopped {
            // StopTask: the task stops with the reason given, its containers without exit codes.
            answer = answer.map(|mut task| {
                task.last_status = "STOPPED".into();
                task.stop_code = Some("UserInitiated".into());
                task.stopped_reason = state.stopped_tasks.last().map(|(_, r)| r.clone());
                for container in &mut task.containers {
                    container.exit_code = None;
                }
                task
            });
        }
        Ok(answer)
    }

    async fn stop_task(&self, _cluster: &str, arn: &str, reason: &str) -> Result<(), ApiError> {
        self.count("StopTask");
        self.state
            .borrow_mut()
            .stopped_tasks
            .push((arn.to_owned(), reason.to_owned()));
        Ok(())
    }

    async fn log_tail(&self, stream: &LogStream, limit: u32) -> Result<Vec<String>, ApiError> {
        self.count("GetLogEvents");
        let mut state = self.state.borrow_mut();
        state.log_reads.push(stream.clone());
        let messages = state
            .logs
            .get(&(stream.group.clone(), stream.stream.clone()))
            .ok_or_else(|| ApiError::Other {
                operation: "GetLogEvents",
                message: "The specified log stream does not exist.".into(),
            })?;
        let skip = messages.len().saturating_sub(limit as usize);
        Ok(messages[skip..].to_vec())
    }
}

/// A `ServiceDeploymentBrief` as ListServiceDeployments returns it
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentBrief.html>):
/// timestamps are epoch seconds, as in every ECS JSON response.
pub fn deployment_brief(arn: &str, created_at: f64, status: &str) -> Value {
    json!({
        "serviceDeploymentArn": arn,
        "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/web",
        "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
        "createdAt": created_at,
        "startedAt": created_at,
        "targetServiceRevisionArn": format!("{arn}/revision"),
        "status": status
    })
}

/// A `ServiceDeployment` as DescribeServiceDeployments returns it
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html>),
/// for a blue/green service with a bake time; tests add `lifecycleHookDetails`,
/// `deploymentCircuitBreaker.failureCount`, `rollback`, `statusReason` as a case needs.
pub fn service_deployment(
    arn: &str,
    status: &str,
    stage: &str,
    running: i64,
    requested: i64,
) -> Value {
    json!({
        "serviceDeploymentArn": arn,
        "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/web",
        "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
        "createdAt": 1000.0,
        "startedAt": 1000.0,
        "updatedAt": 1000.0,
        "sourceServiceRevisions": [{
            "arn": "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/1",
            "requestedTaskCount": requested,
            "runningTaskCount": requested,
            "pendingTaskCount": 0,
            "requestedTestTrafficWeight": 0.0,
            "requestedProductionTrafficWeight": 100.0
        }],
        "targetServiceRevision": {
            "arn": format!("{arn}/revision"),
            "requestedTaskCount": requested,
            "runningTaskCount": running,
            "pendingTaskCount": requested - running,
            "requestedTestTrafficWeight": 100.0,
            "requestedProductionTrafficWeight": 0.0
        },
        "status": status,
        "lifecycleStage": stage,
        "deploymentConfiguration": {
            "strategy": "BLUE_GREEN",
            "bakeTimeInMinutes": 10,
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
            "alarms": {"alarmNames": ["web-5xx"], "enable": true, "rollback": true}
        },
        "deploymentCircuitBreaker": {"status": "MONITORING", "failureCount": 0, "threshold": 3},
        "alarms": {"status": "MONITORING", "alarmNames": ["web-5xx"], "triggeredAlarmNames": []}
    })
}

/// The ARN the replay's RunTask returns.
pub const MIGRATION_TASK: &str = "arn:aws:ecs:eu-west-1:123456789012:task/prod/0f3c9a6e5b2d4c1a";
