//! How the fleet deploys: poll interval, wait thresholds, order, rollback, retries, migration.

use std::time::Duration;

use crate::migration::Migration;
use crate::watch::WatchConfig;

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
    pub migration: Option<Migration>,
}
