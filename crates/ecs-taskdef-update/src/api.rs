//! The seam between the deploy logic and AWS: a few calls, plain data in and out.
//!
//! [`crate::aws::Aws`] implements it over the SDK; tests replay scripted sequences.

use std::time::Duration;

use serde_json::Value;

/// A deployment of a service, as DescribeServices reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deployment {
    /// Deployment id (`ecs-svc/…`).
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// Desired tasks.
    pub desired: i32,
    /// Running tasks.
    pub running: i32,
    /// Pending tasks.
    pub pending: i32,
    /// Tasks that failed to start.
    pub failed_tasks: i32,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`; absent for some controllers.
    pub rollout_state: Option<String>,
    /// Why.
    pub rollout_state_reason: Option<String>,
}

/// A service event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceEvent {
    /// Event id.
    pub id: String,
    /// Message.
    pub message: String,
}

/// One DescribeServices observation of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceState {
    /// `ACTIVE`, `DRAINING`, `INACTIVE`, or `MISSING` when DescribeServices reported a failure.
    pub status: String,
    /// The service's task definition ARN.
    pub task_definition: String,
    /// Desired count.
    pub desired: i32,
    /// Running count.
    pub running: i32,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// Events, newest first.
    pub events: Vec<ServiceEvent>,
    /// `deploymentConfiguration.strategy` (`ROLLING`, `BLUE_GREEN`, `LINEAR`, `CANARY`), when
    /// DescribeServices reports one.
    pub strategy: Option<String>,
    /// How the service runs its tasks, as DescribeServices reports it: `launchType`,
    /// `capacityProviderStrategy`, `platformVersion`, `networkConfiguration` (those present).
    /// A one-off task (a migration) runs the same way.
    pub run_config: serde_json::Map<String, Value>,
}

/// The members of a DescribeServices `Service` that RunTask takes the same way.
pub const RUN_CONFIG_FIELDS: &[&str] = &[
    "launchType",
    "capacityProviderStrategy",
    "platformVersion",
    "networkConfiguration",
];

/// A container of a task, as DescribeTasks reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    /// Name.
    pub name: String,
    /// `exitCode`, once it exited.
    pub exit_code: Option<i32>,
    /// `reason` (e.g. `CannotPullContainerError: ...`).
    pub reason: Option<String>,
}

/// A task, as DescribeTasks reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskState {
    /// Task ARN.
    pub arn: String,
    /// `lastStatus` (`PROVISIONING`, `PENDING`, `RUNNING`, ..., `STOPPED`).
    pub last_status: String,
    /// `stopCode` (`EssentialContainerExited`, `TaskFailedToStart`, `UserInitiated`, ...).
    pub stop_code: Option<String>,
    /// `stoppedReason`.
    pub stopped_reason: Option<String>,
    /// Containers.
    pub containers: Vec<ContainerState>,
}

impl ServiceState {
    /// The PRIMARY deployment.
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
}

/// A stopped task and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoppedTask {
    /// Task ARN.
    pub arn: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// `stoppedReason`.
    pub stopped_reason: String,
    /// `(container, exit code, reason)`.
    pub containers: Vec<(String, Option<i32>, Option<String>)>,
}

/// What UpdateService asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub service: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// Force a new deployment.
    pub force_new_deployment: bool,
    /// New desired count.
    pub desired_count: Option<i32>,
}

/// An ECR image looked up by tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    /// Registry (account) id.
    pub registry_id: String,
    /// Region.
    pub region: String,
    /// Repository name.
    pub repository: String,
    /// Tag or digest asked for.
    pub reference: String,
}

/// An API failure, classified for the deploy logic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Throttled; worth retrying later.
    #[error("{operation} was throttled: {message}")]
    Throttled {
        /// The API action.
        operation: &'static str,
        /// Message.
        message: String,
    },
    /// Access denied: the IAM action is named.
    #[error("access denied for {action}: {message}")]
    AccessDenied {
        /// The IAM action (`ecs:UpdateService`).
        action: String,
        /// Message.
        message: String,
    },
    /// Not found (service, task definition, image, repository).
    #[error("{operation}: {message}")]
    NotFound {
        /// The API action.
        operation: &'static str,
        /// Message.
        message: String,
    },
    /// The request was invalid (a bad task definition, an INACTIVE revision).
    #[error("{operation} rejected the request: {message}")]
    Invalid {
        /// The API action.
        operation: &'static str,
        /// Message.
        message: String,
    },
    /// Anything else: network, credentials, service errors.
    #[error("{operation} failed: {message}")]
    Other {
        /// The API action.
        operation: &'static str,
        /// Message.
        message: String,
    },
}

/// The AWS calls the deploy logic makes.
#[expect(
    async_fn_in_trait,
    reason = "implemented and used inside this crate only; futures are polled on one task"
)]
pub trait EcsApi {
    /// DescribeServices for one service (`MISSING` status when reported as a failure).
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<ServiceState, ApiError>;

    /// DescribeTaskDefinition with tags: the raw response JSON (`{"taskDefinition": …, "tags": …}`).
    async fn describe_task_definition(&self, reference: &str) -> Result<Value, ApiError>;

    /// RegisterTaskDefinition with this exact body; returns the new ARN.
    async fn register_task_definition(&self, body: &Value) -> Result<String, ApiError>;

    /// UpdateService; returns the PRIMARY deployment id of the response.
    async fn update_service(&self, request: &UpdateRequest) -> Result<Option<String>, ApiError>;

    /// ListTasks (STOPPED) + DescribeTasks for a service, at most `limit` tasks.
    async fn stopped_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: usize,
    ) -> Result<Vec<StoppedTask>, ApiError>;

    /// ECR: the digest of an image, or `None` when it does not exist.
    async fn image_digest(&self, image: &EcrImage) -> Result<Option<String>, ApiError>;

    /// ListServiceDeployments of a service: the raw response body (`{"serviceDeployments":
    /// [ServiceDeploymentBrief…], "nextToken": …}`).
    async fn list_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Value, ApiError>;

    /// DescribeServiceDeployments for one ARN: the raw response body
    /// (`{"serviceDeployments": [ServiceDeployment…], "failures": […]}`).
    async fn describe_service_deployment(&self, arn: &str) -> Result<Value, ApiError>;

    /// StopServiceDeployment with `stopType` `ROLLBACK` (or `ABORT`).
    async fn stop_service_deployment(&self, arn: &str, stop_type: &str) -> Result<(), ApiError>;

    /// RunTask with this exact request body; returns the task ARN.
    async fn run_task(&self, body: &Value) -> Result<String, ApiError>;

    /// DescribeTasks for one task (`None` when ECS does not know it).
    async fn describe_task(&self, cluster: &str, arn: &str) -> Result<Option<TaskState>, ApiError>;

    /// StopTask.
    async fn stop_task(&self, cluster: &str, arn: &str, reason: &str) -> Result<(), ApiError>;

    /// CloudWatch Logs GetLogEvents: the last `limit` messages of a stream, oldest first.
    async fn log_tail(&self, stream: &LogStream, limit: u32) -> Result<Vec<String>, ApiError>;
}

/// A CloudWatch Logs stream (a container's `awslogs` log configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    /// `awslogs-group`.
    pub group: String,
    /// `awslogs-stream-prefix/container/task-id`.
    pub stream: String,
    /// `awslogs-region`, when given (else the tool's region).
    pub region: Option<String>,
}

/// Time, so tests run the wait loop on a virtual clock.
#[expect(
    async_fn_in_trait,
    reason = "implemented and used inside this crate only; futures are polled on one task"
)]
pub trait Clock {
    /// Time since an arbitrary origin.
    fn now(&self) -> Duration;
    /// Waits.
    async fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock(std::time::Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
