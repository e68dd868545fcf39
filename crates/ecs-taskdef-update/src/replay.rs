//! A scripted ECS for tests and the benchmark: DescribeServices answers follow a timeline on a
//! virtual clock, every call is counted, and a rollback UpdateService switches the service to a
//! scripted "after rollback" state. Nothing here talks to a network.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{
    ApiError, Clock, Deployment, EcrImage, EcsApi, ServiceState, StoppedTask, UpdateRequest,
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
}
