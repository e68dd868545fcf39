//! What a fleet deploy did: per service result and status, and how it ended overall.

use std::collections::BTreeMap;

use crate::migration::MigrationReport;

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
    pub migration: Option<MigrationReport>,
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

/// The report of a fleet deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetReport {
    /// Per service, in plan order.
    pub services: Vec<ServiceResult>,
    /// Overall.
    pub outcome: FleetOutcome,
}
