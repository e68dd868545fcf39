//! One service to deploy, as the plan gives it: cluster, service, base task definition, edits.

use serde_json::Value;

use crate::taskdef::{ContainerEdit, TaskEdit};

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
