//! The wait decision: a sequence of DescribeServices observations in, a verdict out.
//!
//! The plain services-stable waiter only asks "one deployment, running == desired". That is
//! also true after a circuit-breaker rollback (the one deployment is the old revision) and with
//! desired 0, and it can be true while `rolloutState` is still `IN_PROGRESS`. Here success means:
//! *our* deployment (by id, else by task definition) is the PRIMARY and only one, its
//! `rolloutState` is `COMPLETED` where ECS reports one, and running == desired > 0.

use std::collections::HashSet;
use std::time::Duration;

use crate::api::{Deployment, ServiceState};

/// Thresholds of the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// Give up after this long.
    pub timeout: Duration,
    /// Fail once our deployment has this many failed tasks (0: never on the count alone).
    pub max_failed_tasks: i32,
    /// Accept desired count 0 as success (otherwise it is a failure: nothing proves the
    /// revision runs).
    pub allow_zero_desired: bool,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Our deployment completed: the only deployment, running == desired.
    Completed,
    /// Our deployment failed (rolloutState FAILED, failed tasks, placement, service inactive).
    Failed(String),
    /// Our deployment is gone or no longer PRIMARY: ECS (the circuit breaker) rolled it back.
    RolledBackByEcs(String),
    /// No verdict within the timeout.
    TimedOut(String),
}

impl Outcome {
    /// The reason, when not completed.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Completed => None,
            Outcome::Failed(reason)
            | Outcome::RolledBackByEcs(reason)
            | Outcome::TimedOut(reason) => Some(reason),
        }
    }
}

/// What one observation led to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Lines for the log: new service events and progress changes.
    pub log: Vec<String>,
    /// Failed tasks rose: fetch the stopped tasks and print why they stopped.
    pub inspect_stopped: bool,
    /// The verdict, once there is one.
    pub outcome: Option<Outcome>,
}

/// Waits for one deployment of one service.
#[derive(Debug, Clone)]
pub struct Watch {
    task_definition: String,
    deployment_id: Option<String>,
    seen_events: HashSet<String>,
    failed_tasks: i32,
    started: Duration,
    config: WatchConfig,
    last_progress: Option<String>,
    stale_primary: Option<String>,
}

impl Watch {
    /// Starts watching for `task_definition`, deployed as `deployment_id` when UpdateService
    /// reported one. `seen_events` are event ids from before the update: not ours, not printed.
    pub fn new(
        task_definition: impl Into<String>,
        deployment_id: Option<String>,
        seen_events: impl IntoIterator<Item = String>,
        started: Duration,
        config: WatchConfig,
    ) -> Self {
        Self {
            task_definition: task_definition.into(),
            deployment_id,
            seen_events: seen_events.into_iter().collect(),
            failed_tasks: 0,
            started,
            config,
            last_progress: None,
            stale_primary: None,
        }
    }

    /// The PRIMARY deployment id from before the update. DescribeServices is eventually
    /// consistent: while it still shows that deployment as PRIMARY, ours is "not visible yet",
    /// not "rolled back" (a circuit-breaker rollback makes a new deployment with a new id).
    pub fn with_stale_primary(mut self, id: Option<String>) -> Self {
        self.stale_primary = id;
        self
    }

    /// The task definition waited for.
    pub fn task_definition(&self) -> &str {
        &self.task_definition
    }

    /// Checks the timeout when no observation could be made (a throttled or failed poll).
    pub fn tick(&self, now: Duration) -> Option<Outcome> {
        self.timed_out(now, "no successful DescribeServices since the last poll")
    }

    fn timed_out(&self, now: Duration, state: &str) -> Option<Outcome> {
        (now.saturating_sub(self.started) >= self.config.timeout).then(|| {
            Outcome::TimedOut(format!(
                "not complete after {}: {state}",
                humantime::format_duration(self.config.timeout)
            ))
        })
    }

    fn ours<'a>(&self, state: &'a ServiceState) -> Option<&'a Deployment> {
        match &self.deployment_id {
            Some(id) => state.deployments.iter().find(|d| &d.id == id),
            None => state
                .deployments
                .iter()
                .find(|d| d.task_definition == self.task_definition && d.status == "PRIMARY"),
        }
    }

    /// Takes one observation at time `now`.
    pub fn observe(&mut self, state: &ServiceState, now: Duration) -> Step {
        let mut step = Step::default();
        let mut placement = None;
        for event in state.events.iter().rev() {
            if self.seen_events.insert(event.id.clone()) {
                step.log.push(format!("event: {}", event.message));
                if event
                    .message
                    .to_ascii_lowercase()
                    .contains("unable to place")
                {
                    placement = Some(event.message.clone());
                }
            }
        }
        step.outcome = self.decide(state, now, placement, &mut step);
        step
    }

    fn decide(
        &mut self,
        state: &ServiceState,
        now: Duration,
        placement: Option<String>,
        step: &mut Step,
    ) -> Option<Outcome> {
        if state.status != "ACTIVE" {
            return Some(Outcome::Failed(format!("the service is {}", state.status)));
        }
        let primary = state.primary();
        let Some(ours) = self.ours(state) else {
            let stale = primary.is_some_and(|p| Some(&p.id) == self.stale_primary.as_ref());
            return match (&self.deployment_id, primary) {
                _ if stale => self.timed_out(now, "our deployment is not visible yet"),
                (Some(id), _) => Some(Outcome::RolledBackByEcs(format!(
                    "our deployment {id} is gone; the PRIMARY deployment runs {}: ECS rolled back \
                     (deployment circuit breaker)",
                    primary.map_or("nothing", |p| p.task_definition.as_str())
                ))),
                (None, Some(primary)) if primary.task_definition != self.task_definition => {
                    Some(Outcome::RolledBackByEcs(format!(
                        "the PRIMARY deployment runs {}, not {}",
                        primary.task_definition, self.task_definition
                    )))
                }
                _ => self.timed_out(now, "no deployment of ours yet"),
            };
        };
        if ours.status != "PRIMARY" {
            return Some(Outcome::RolledBackByEcs(format!(
                "our deployment {} is {} and the PRIMARY deployment runs {}: ECS rolled back{}",
                ours.id,
                ours.status,
                primary.map_or("nothing", |p| p.task_definition.as_str()),
                ours.rollout_state_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )));
        }
        if ours.rollout_state.as_deref() == Some("FAILED") {
            return Some(Outcome::Failed(format!(
                "deployment {} FAILED: {}",
                ours.id,
                ours.rollout_state_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            )));
        }
        if ours.failed_tasks > self.failed_tasks {
            step.inspect_stopped = true;
            step.log.push(format!(
                "failed tasks of deployment {}: {} (was {})",
                ours.id, ours.failed_tasks, self.failed_tasks
            ));
            self.failed_tasks = ours.failed_tasks;
            if self.config.max_failed_tasks > 0 && ours.failed_tasks >= self.config.max_failed_tasks
            {
                return Some(Outcome::Failed(format!(
                    "{} tasks of deployment {} failed to start (limit {})",
                    ours.failed_tasks, ours.id, self.config.max_failed_tasks
                )));
            }
        }
        if let Some(message) = placement {
            return Some(Outcome::Failed(format!(
                "ECS cannot place tasks: {message}"
            )));
        }
        let progress = format!(
            "deployment {} {}: running {}/{} pending {} failed {}; {} deployment(s)",
            ours.id,
            ours.rollout_state
                .as_deref()
                .unwrap_or("(no rollout state)"),
            ours.running,
            ours.desired,
            ours.pending,
            ours.failed_tasks,
            state.deployments.len()
        );
        if self.last_progress.as_ref() != Some(&progress) {
            step.log.push(progress.clone());
            self.last_progress = Some(progress.clone());
        }
        if state.desired == 0 {
            return Some(if self.config.allow_zero_desired {
                Outcome::Completed
            } else {
                Outcome::Failed(
                    "the desired count is 0: no task runs the new revision, so nothing shows it \
                     works (set a desired count, or allow-zero-desired)"
                        .into(),
                )
            });
        }
        let settled = state.deployments.len() == 1
            && matches!(ours.rollout_state.as_deref(), None | Some("COMPLETED"))
            && ours.running == ours.desired
            && ours.pending == 0
            && state.running == state.desired;
        if settled {
            return Some(Outcome::Completed);
        }
        self.timed_out(now, &progress)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::ServiceEvent;

    pub(crate) const NEW: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/proc:8";
    pub(crate) const OLD: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/proc:7";

    pub(crate) fn deployment(id: &str, status: &str, td: &str, rollout: &str) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            desired: 2,
            running: 0,
            pending: 0,
            failed_tasks: 0,
            rollout_state: Some(rollout.into()),
            rollout_state_reason: None,
        }
    }

    pub(crate) fn service(deployments: Vec<Deployment>) -> ServiceState {
        let running = deployments.iter().map(|d| d.running).sum();
        ServiceState {
            status: "ACTIVE".into(),
            task_definition: deployments
                .iter()
                .find(|d| d.status == "PRIMARY")
                .map(|d| d.task_definition.clone())
                .unwrap_or_default(),
            desired: 2,
            running,
            deployments,
            events: vec![],
            strategy: None,
            run_config: serde_json::Map::new(),
        }
    }

    fn config() -> WatchConfig {
        WatchConfig {
            timeout: Duration::from_secs(600),
            max_failed_tasks: 3,
            allow_zero_desired: false,
        }
    }

    fn watch() -> Watch {
        Watch::new(
            NEW,
            Some("ecs-svc/new".into()),
            [],
            Duration::ZERO,
            config(),
        )
    }

    fn rolling(running_new: i32, running_old: i32) -> ServiceState {
        let mut new = deployment("ecs-svc/new", "PRIMARY", NEW, "IN_PROGRESS");
        new.running = running_new;
        let mut old = deployment("ecs-svc/old", "ACTIVE", OLD, "COMPLETED");
        old.running = running_old;
        service(vec![new, old])
    }

    fn done() -> ServiceState {
        let mut new = deployment("ecs-svc/new", "PRIMARY", NEW, "COMPLETED");
        new.running = 2;
        service(vec![new])
    }

    #[test]
    fn completes_only_when_ours_is_the_single_completed_deployment() {
        let mut watch = watch();
        let at = |s| Duration::from_secs(s);
        assert_eq!(watch.observe(&rolling(0, 2), at(5)).outcome, None);
        assert_eq!(watch.observe(&rolling(2, 2), at(10)).outcome, None);
        // Counts match and one deployment, but the rollout is still in progress: not done.
        let mut in_progress = done();
        in_progress.deployments[0].rollout_state = Some("IN_PROGRESS".into());
        assert_eq!(watch.observe(&in_progress, at(15)).outcome, None);
        assert_eq!(
            watch.observe(&done(), at(20)).outcome,
            Some(Outcome::Completed)
        );
    }

    #[test]
    fn circuit_breaker_rollback_is_not_success_even_when_stable() {
        // What the services-stable waiter calls success: one deployment, running == desired.
        let mut old = deployment("ecs-svc/rollback", "PRIMARY", OLD, "COMPLETED");
        old.running = 2;
        let stable_on_old = service(vec![old]);
        let outcome = watch()
            .observe(&stable_on_old, Duration::from_secs(30))
            .outcome;
        assert!(
            matches!(&outcome, Some(Outcome::RolledBackByEcs(r)) if r.contains("ecs-svc/new is gone") && r.contains(OLD)),
            "{outcome:?}"
        );
    }

    #[test]
    fn our_deployment_demoted_while_breaker_rolls_back_is_detected_early() {
        let mut ours = deployment("ecs-svc/new", "ACTIVE", NEW, "FAILED");
        ours.rollout_state_reason = Some("circuit breaker: 3 tasks failed".into());
        let rollback = deployment("ecs-svc/rollback", "PRIMARY", OLD, "IN_PROGRESS");
        let outcome = watch()
            .observe(&service(vec![rollback, ours]), Duration::ZERO)
            .outcome;
        assert!(
            matches!(&outcome, Some(Outcome::RolledBackByEcs(r)) if r.contains("circuit breaker: 3 tasks failed")),
            "{outcome:?}"
        );
    }

    #[test]
    fn rollout_failed_is_a_failure_with_its_reason() {
        let mut state = rolling(0, 2);
        state.deployments[0].rollout_state = Some("FAILED".into());
        state.deployments[0].rollout_state_reason = Some("tasks failed to start".into());
        assert_eq!(
            watch().observe(&state, Duration::ZERO).outcome,
            Some(Outcome::Failed(
                "deployment ecs-svc/new FAILED: tasks failed to start".into()
            ))
        );
    }

    #[test]
    fn rising_failed_tasks_ask_for_stopped_tasks_then_fail_at_the_limit() {
        let mut watch = watch();
        let mut state = rolling(0, 2);
        state.deployments[0].failed_tasks = 1;
        let step = watch.observe(&state, Duration::ZERO);
        assert!(step.inspect_stopped && step.outcome.is_none());
        let step = watch.observe(&state, Duration::ZERO);
        assert!(!step.inspect_stopped, "no new failures, no new inspection");
        state.deployments[0].failed_tasks = 3;
        let step = watch.observe(&state, Duration::ZERO);
        assert!(step.inspect_stopped);
        assert!(matches!(step.outcome, Some(Outcome::Failed(r)) if r.contains("3 tasks")));
    }

    #[test]
    fn desired_zero_fails_unless_allowed() {
        let mut state = done();
        state.desired = 0;
        state.running = 0;
        state.deployments[0].desired = 0;
        state.deployments[0].running = 0;
        let outcome = watch().observe(&state, Duration::ZERO).outcome;
        assert!(matches!(outcome, Some(Outcome::Failed(r)) if r.contains("desired count is 0")));
        let mut allowing = Watch::new(
            NEW,
            None,
            [],
            Duration::ZERO,
            WatchConfig {
                allow_zero_desired: true,
                ..config()
            },
        );
        assert_eq!(
            allowing.observe(&state, Duration::ZERO).outcome,
            Some(Outcome::Completed)
        );
    }

    #[test]
    fn stuck_in_progress_times_out() {
        let mut watch = watch();
        let state = rolling(1, 2);
        assert_eq!(
            watch.observe(&state, Duration::from_secs(599)).outcome,
            None
        );
        let outcome = watch.observe(&state, Duration::from_secs(600)).outcome;
        assert!(
            matches!(&outcome, Some(Outcome::TimedOut(r)) if r.contains("10m") && r.contains("running 1/2")),
            "{outcome:?}"
        );
        assert!(watch.tick(Duration::from_secs(601)).is_some());
        assert!(watch.tick(Duration::from_secs(10)).is_none());
    }

    #[test]
    fn new_events_are_logged_once_and_placement_failures_fail() {
        let mut watch = Watch::new(NEW, None, ["old".to_owned()], Duration::ZERO, config());
        let mut state = rolling(0, 2);
        state.events = vec![
            ServiceEvent {
                id: "e1".into(),
                message: "(service proc) has started 2 tasks".into(),
            },
            ServiceEvent {
                id: "old".into(),
                message: "(service proc) has reached a steady state.".into(),
            },
        ];
        let step = watch.observe(&state, Duration::ZERO);
        assert_eq!(step.log[0], "event: (service proc) has started 2 tasks");
        assert!(!step.log.iter().any(|l| l.contains("steady state")));
        let step = watch.observe(&state, Duration::ZERO);
        assert!(!step.log.iter().any(|l| l.starts_with("event:")));
        state.events.insert(
            0,
            ServiceEvent {
                id: "e2".into(),
                message: "(service proc) was unable to place a task because no container instance met all of its requirements.".into(),
            },
        );
        let step = watch.observe(&state, Duration::ZERO);
        assert!(matches!(step.outcome, Some(Outcome::Failed(r)) if r.contains("unable to place")));
    }

    #[test]
    fn a_stale_read_showing_the_old_primary_is_not_a_rollback() {
        let mut old = deployment("ecs-svc/old", "PRIMARY", OLD, "COMPLETED");
        old.running = 2;
        let stale = service(vec![old]);
        let mut watch = watch().with_stale_primary(Some("ecs-svc/old".into()));
        assert_eq!(watch.observe(&stale, Duration::ZERO).outcome, None);
        assert_eq!(
            watch.observe(&done(), Duration::ZERO).outcome,
            Some(Outcome::Completed)
        );
    }

    #[test]
    fn draining_service_fails() {
        let mut state = done();
        state.status = "DRAINING".into();
        assert_eq!(
            watch().observe(&state, Duration::ZERO).outcome,
            Some(Outcome::Failed("the service is DRAINING".into()))
        );
    }
}
