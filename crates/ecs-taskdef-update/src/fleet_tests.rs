//! The deploy/wait/rollback driver against scripted DescribeServices sequences.

use std::time::Duration;

use serde_json::json;

use runner_protocol::signal::InterruptSender;

use super::*;
use crate::api::{ApiError, StoppedTask};
use crate::prepare::{PrepareError, prepare};
use crate::replay::{
    AfterRollback, Replay, ScriptedService, VirtualClock, arn, deployment, service_state,
};
use crate::service_plan::{Base, ServicePlan};
use crate::taskdef::{ContainerEdit, ImageEdit};
use crate::watch::WatchConfig;

const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const SERVICES: [&str; 3] = ["ingress", "processor", "metrics"];

#[derive(Default)]
struct Lines(Vec<String>);

impl Sink for Lines {
    fn line(&mut self, service: &str, text: &str) {
        self.0.push(format!("{service}: {text}"));
    }
    fn warn(&mut self, service: &str, text: &str) {
        self.0.push(format!("WARN {service}: {text}"));
    }
}

/// Interrupts that never come (the sender is gone, so waiting on them never ends).
fn no_interrupts() -> Interrupts {
    Interrupts::manual().1
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> FleetConfig {
    FleetConfig {
        poll_interval: secs(5),
        watch: WatchConfig {
            timeout: secs(300),
            max_failed_tasks: 3,
            allow_zero_desired: false,
        },
        pin_digest: false,
        sequential: false,
        rollback: true,
        max_attempts: 5,
        pause_timeout: std::time::Duration::from_secs(30 * 60),
        migration: None,
    }
}

fn old(service: &str) -> String {
    arn(service, 7)
}

fn new(service: &str) -> String {
    arn(service, 8)
}

fn before(service: &str) -> ServiceState {
    service_state(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        &old(service),
        "COMPLETED",
        2,
    )])
}

fn rolling(service: &str, running_new: i32) -> ServiceState {
    let id = format!("ecs-svc/new-{service}");
    service_state(vec![
        deployment(&id, "PRIMARY", &new(service), "IN_PROGRESS", running_new),
        deployment("ecs-svc/old", "ACTIVE", &old(service), "COMPLETED", 2),
    ])
}

fn completed(service: &str) -> ServiceState {
    let id = format!("ecs-svc/new-{service}");
    service_state(vec![deployment(
        &id,
        "PRIMARY",
        &new(service),
        "COMPLETED",
        2,
    )])
}

fn healthy(service: &str) -> ScriptedService {
    ScriptedService {
        timeline: vec![
            (secs(0), Ok(before(service))),
            (secs(1), Ok(rolling(service, 0))),
            (secs(10), Ok(rolling(service, 2))),
            (secs(15), Ok(completed(service))),
        ],
        after_rollback: AfterRollback::Healthy,
    }
}

fn fleet<'a>(clock: &'a VirtualClock, processor: ScriptedService) -> Replay<'a> {
    let replay = Replay::new(clock);
    for service in SERVICES {
        replay.task_definition(
            service,
            7,
            json!([{"name": service, "image": format!("{REGISTRY}/kdcube-{service}:1.0"),
                    "environment": [{"name": "LOG_LEVEL", "value": "info"}]}]),
        );
        replay.image(
            &format!("kdcube-{service}"),
            "2.0",
            &format!("sha256:{service}"),
        );
        let script = if service == "processor" {
            processor.clone()
        } else {
            healthy(service)
        };
        replay.service(service, script);
    }
    replay
}

fn plans() -> Vec<ServicePlan> {
    SERVICES.iter().map(|service| plans_for(service)).collect()
}

fn plans_for(service: &str) -> ServicePlan {
    let mut env_set = vec![("LOG_LEVEL".to_owned(), "debug".to_owned())];
    if service == "processor" {
        env_set.push(("AGENTIC_BUNDLES_JSON".into(), "{\"bundles\": []}".into()));
    }
    ServicePlan {
        cluster: "prod".into(),
        service: service.into(),
        base: Base::Current,
        edits: vec![ContainerEdit {
            name: service.into(),
            image: Some(ImageEdit::Tag("2.0".into())),
            env_set,
            ..ContainerEdit::default()
        }],
        desired_count: None,
        force_new_deployment: false,
        task_edit: crate::taskdef::TaskEdit::default(),
        register: true,
    }
}

async fn run(
    replay: &Replay<'_>,
    clock: &VirtualClock,
    config: &FleetConfig,
) -> (FleetReport, Lines) {
    let mut lines = Lines::default();
    let prepared = prepare(replay, clock, &plans(), config, &mut lines)
        .await
        .expect("prepares");
    let report = deploy(
        replay,
        clock,
        &prepared,
        config,
        &no_interrupts(),
        &mut lines,
    )
    .await;
    (report, lines)
}

fn statuses(report: &FleetReport) -> Vec<ServiceStatus> {
    report.services.iter().map(|s| s.status).collect()
}

fn rollback_targets(replay: &Replay<'_>) -> Vec<(String, String)> {
    replay
        .updates()
        .into_iter()
        .filter(|u| u.task_definition.ends_with(":7"))
        .map(|u| (u.service, u.task_definition))
        .collect()
}

#[tokio::test]
async fn three_services_deploy_and_only_the_processor_gets_the_bundles() {
    let clock = VirtualClock::default();
    let replay = fleet(&clock, healthy("processor"));
    let (report, _) = run(&replay, &clock, &config()).await;
    assert_eq!(report.outcome, FleetOutcome::Deployed);
    assert_eq!(statuses(&report), [ServiceStatus::Deployed; 3]);
    let registered = replay.registered();
    for body in &registered {
        let env = &body["containerDefinitions"][0]["environment"];
        let has_bundles = env
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v["name"] == "AGENTIC_BUNDLES_JSON"));
        assert_eq!(has_bundles, body["family"] == "processor", "{body}");
        assert!(body.get("revision").is_none() && body.get("status").is_none());
    }
    let processor = &report.services[1];
    assert_eq!(processor.previous_task_definition, old("processor"));
    assert_eq!(
        processor.task_definition.as_deref(),
        Some(new("processor").as_str())
    );
    assert_eq!(
        processor
            .image_digests
            .get(&format!("{REGISTRY}/kdcube-processor:2.0")),
        Some(&"sha256:processor".to_owned())
    );
    assert!(rollback_targets(&replay).is_empty());
    assert_eq!(
        clock.now(),
        secs(15),
        "done at the first poll that sees completion"
    );
}

#[tokio::test]
async fn circuit_breaker_rollback_fails_the_deploy_and_rolls_back_the_others() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    // What the services-stable waiter calls success: one deployment, all running, old revision.
    processor.timeline[2] = (
        secs(10),
        Ok(service_state(vec![deployment(
            "ecs-svc/breaker",
            "PRIMARY",
            &old("processor"),
            "COMPLETED",
            2,
        )])),
    );
    processor.timeline.truncate(3);
    let replay = fleet(&clock, processor);
    let (report, lines) = run(&replay, &clock, &config()).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("processor") && r.contains("circuit breaker")),
        "{:?}",
        report.outcome
    );
    assert_eq!(statuses(&report), [ServiceStatus::RolledBack; 3]);
    // ECS already put the processor back: no second UpdateService for it.
    let targets = rollback_targets(&replay);
    assert_eq!(
        targets,
        [
            ("ingress".into(), old("ingress")),
            ("metrics".into(), old("metrics"))
        ]
    );
    assert!(
        lines
            .0
            .iter()
            .any(|l| l.contains("ECS already rolled back"))
    );
}

#[tokio::test]
async fn rollout_failed_rolls_back_and_prints_stopped_tasks() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    let mut failed = rolling("processor", 0);
    failed.deployments[0].rollout_state = Some("FAILED".into());
    failed.deployments[0].rollout_state_reason =
        Some("ECS deployment circuit breaker: tasks failed to start.".into());
    processor.timeline[2] = (secs(10), Ok(failed));
    processor.timeline.truncate(3);
    let replay = fleet(&clock, processor);
    replay.stopped(StoppedTask {
        arn: "arn:aws:ecs:eu-west-1:123456789012:task/prod/abc".into(),
        task_definition: new("processor"),
        stopped_reason: "Essential container in task exited".into(),
        containers: vec![("processor".into(), Some(1), Some("ImportError".into()))],
    });
    let (report, lines) = run(&replay, &clock, &config()).await;
    assert!(matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("FAILED")));
    assert_eq!(rollback_targets(&replay).len(), 3);
    assert!(
        lines
            .0
            .iter()
            .any(|l| l.contains("Essential container in task exited")
                && l.contains("processor exit 1 (ImportError)")),
        "{:?}",
        lines.0
    );
}

#[tokio::test]
async fn failed_is_seen_within_one_poll_interval() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    let mut failed = rolling("processor", 0);
    failed.deployments[0].rollout_state = Some("FAILED".into());
    // Turns FAILED between polls (at 11 s); polls are at 1 + 5n s after the update.
    processor.timeline[2] = (secs(11), Ok(failed));
    processor.timeline.truncate(3);
    let replay = fleet(&clock, processor);
    let mut lines = Lines::default();
    let prepared = prepare(&replay, &clock, &plans(), &config(), &mut lines)
        .await
        .expect("ok");
    let report = deploy(
        &replay,
        &clock,
        &prepared,
        &config(),
        &no_interrupts(),
        &mut Lines::default(),
    )
    .await;
    assert!(matches!(report.outcome, FleetOutcome::RolledBack(_)));
    // Polls at 0, 5, 10, 15: the FAILED state (from 11 s) is seen at 15 s; the rollbacks
    // complete at their first poll, without another wait.
    assert_eq!(clock.now(), secs(15));
}

#[tokio::test]
async fn stuck_in_progress_times_out_and_rolls_back() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    processor.timeline.truncate(3);
    let replay = fleet(&clock, processor);
    let (report, _) = run(&replay, &clock, &config()).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("not complete after 5m")),
        "{:?}",
        report.outcome
    );
    assert_eq!(clock.now(), secs(300));
}

#[tokio::test]
async fn desired_zero_is_not_success() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    let mut zero = completed("processor");
    zero.desired = 0;
    zero.running = 0;
    zero.deployments[0].desired = 0;
    zero.deployments[0].running = 0;
    processor.timeline[3] = (secs(15), Ok(zero));
    let replay = fleet(&clock, processor);
    let (report, _) = run(&replay, &clock, &config()).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("desired count is 0"))
    );
}

#[tokio::test]
async fn throttling_backs_off_and_still_completes() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    let throttled = Err(ApiError::Throttled {
        operation: "DescribeServices",
        message: "Rate exceeded".into(),
    });
    processor.timeline.insert(2, (secs(4), throttled));
    // Throttled from 4 s to 30 s, then completed.
    processor.timeline[3] = (secs(30), Ok(completed("processor")));
    processor.timeline.truncate(4);
    let replay = fleet(&clock, processor);
    let (report, lines) = run(&replay, &clock, &config()).await;
    assert_eq!(report.outcome, FleetOutcome::Deployed);
    assert!(
        lines
            .0
            .iter()
            .any(|l| l.contains("was throttled") && l.ends_with("backing off"))
    );
    // Backoff doubles: 5 (throttled) -> 10 -> 20 -> ... not one poll per 5 s.
    let polls = replay.calls()["DescribeServices"];
    assert!(polls < 3 + 3 * 8, "{polls} DescribeServices calls");
}

#[tokio::test]
async fn one_of_three_failing_rolls_back_all_three() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    let mut failing = rolling("processor", 0);
    failing.deployments[0].failed_tasks = 3;
    processor.timeline[2] = (secs(10), Ok(failing));
    processor.timeline.truncate(3);
    let replay = fleet(&clock, processor);
    let (report, _) = run(&replay, &clock, &config()).await;
    assert!(matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("3 tasks")));
    assert_eq!(statuses(&report), [ServiceStatus::RolledBack; 3]);
    assert_eq!(
        rollback_targets(&replay),
        SERVICES.map(|s| (s.to_owned(), old(s)))
    );
}

#[tokio::test]
async fn a_failing_rollback_is_reported_as_such() {
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    let mut failed = rolling("processor", 0);
    failed.deployments[0].rollout_state = Some("FAILED".into());
    processor.timeline[2] = (secs(10), Ok(failed));
    processor.timeline.truncate(3);
    processor.after_rollback = AfterRollback::Fails;
    let replay = fleet(&clock, processor);
    let (report, _) = run(&replay, &clock, &config()).await;
    assert!(matches!(&report.outcome, FleetOutcome::RollbackFailed(r) if r.contains("processor")));
    assert_eq!(
        statuses(&report),
        [
            ServiceStatus::RolledBack,
            ServiceStatus::RollbackFailed,
            ServiceStatus::RolledBack
        ]
    );
}

#[tokio::test]
async fn ordered_deploy_stops_at_the_first_failure() {
    let clock = VirtualClock::default();
    let replay = fleet(&clock, healthy("processor"));
    // Ingress (first in order) fails; processor and metrics are never updated.
    let mut ingress = healthy("ingress");
    let mut failed = rolling("ingress", 0);
    failed.deployments[0].rollout_state = Some("FAILED".into());
    ingress.timeline[2] = (secs(10), Ok(failed));
    ingress.timeline.truncate(3);
    replay.service("ingress", ingress);
    let config = FleetConfig {
        sequential: true,
        ..config()
    };
    let (report, _) = run(&replay, &clock, &config).await;
    assert!(matches!(report.outcome, FleetOutcome::RolledBack(_)));
    assert_eq!(
        statuses(&report),
        [
            ServiceStatus::RolledBack,
            ServiceStatus::Registered,
            ServiceStatus::Registered
        ]
    );
    let updated: Vec<String> = replay.updates().into_iter().map(|u| u.service).collect();
    assert_eq!(updated, ["ingress", "ingress"]);
}

#[tokio::test]
async fn missing_ecr_image_stops_before_anything_is_registered() {
    let clock = VirtualClock::default();
    let replay = fleet(&clock, healthy("processor"));
    let mut plans = plans();
    plans[2].edits[0].image = Some(ImageEdit::Tag("does-not-exist".into()));
    let error = prepare(&replay, &clock, &plans, &config(), &mut Lines::default())
        .await
        .expect_err("missing image");
    assert!(
        matches!(&error, PrepareError::MissingImage { service, image } if service == "metrics" && image.ends_with("kdcube-metrics:does-not-exist")),
        "{error}"
    );
    assert!(replay.registered().is_empty() && replay.updates().is_empty());
}

#[tokio::test]
async fn pin_digest_rewrites_edited_images_to_their_digest() {
    let clock = VirtualClock::default();
    let replay = fleet(&clock, healthy("processor"));
    let config = FleetConfig {
        pin_digest: true,
        ..config()
    };
    let prepared = prepare(&replay, &clock, &plans(), &config, &mut Lines::default())
        .await
        .expect("ok");
    assert_eq!(
        prepared[1].rendered.containers()[0]["image"],
        json!(format!("{REGISTRY}/kdcube-processor@sha256:processor"))
    );
}

#[tokio::test]
async fn rollback_command_finds_the_previous_active_revision() {
    let clock = VirtualClock::default();
    let replay = fleet(&clock, healthy("processor"));
    replay.task_definition("processor", 6, json!([{"name": "processor", "image": "x"}]));
    let plan = plans().remove(1);
    let (from, to) = roll_back_to(
        &replay,
        &clock,
        &plan,
        None,
        &config(),
        &no_interrupts(),
        &mut Lines::default(),
    )
    .await
    .expect("rolls back");
    assert_eq!((from, to.clone()), (old("processor"), arn("processor", 6)));
    assert_eq!(replay.updates()[0].task_definition, to);
}

/// The virtual clock, delivering scripted signals when their (virtual) time has come.
struct SignallingClock<'a> {
    clock: &'a VirtualClock,
    sender: InterruptSender,
    signals: std::cell::RefCell<Vec<(Duration, &'static str)>>,
}

impl Clock for SignallingClock<'_> {
    fn now(&self) -> Duration {
        self.clock.now()
    }

    async fn sleep(&self, duration: Duration) {
        self.clock.sleep(duration).await;
        let now = self.clock.now();
        self.signals.borrow_mut().retain(|(at, name)| {
            let due = *at <= now;
            if due {
                self.sender.send(name);
            }
            !due
        });
    }
}

/// Deploys the three services while the processor never completes; signals arrive as given.
async fn interrupted_run(
    signals: Vec<(Duration, &'static str)>,
    after_rollback: AfterRollback,
) -> (FleetReport, Replay<'static>, Duration) {
    let clock: &'static VirtualClock = Box::leak(Box::default());
    let mut processor = healthy("processor");
    processor.timeline.truncate(3); // stays IN_PROGRESS
    processor.after_rollback = after_rollback;
    let replay = fleet(clock, processor);
    let (sender, interrupts) = Interrupts::manual();
    let signalling = SignallingClock {
        clock,
        sender,
        signals: std::cell::RefCell::new(signals),
    };
    let mut lines = Lines::default();
    let prepared = prepare(&replay, &signalling, &plans(), &config(), &mut lines)
        .await
        .expect("prepares");
    let report = deploy(
        &replay,
        &signalling,
        &prepared,
        &config(),
        &interrupts,
        &mut lines,
    )
    .await;
    (report, replay, clock.now())
}

#[tokio::test]
async fn sigint_while_waiting_rolls_back_every_changed_service_and_reports_interrupted() {
    let (report, replay, _) =
        interrupted_run(vec![(secs(12), "SIGINT")], AfterRollback::Healthy).await;
    let FleetOutcome::Interrupted(reason) = &report.outcome else {
        panic!("expected Interrupted, got {:?}", report.outcome);
    };
    assert!(reason.contains("interrupted by SIGINT"), "{reason}");
    assert!(reason.contains("back on its previous revision"), "{reason}");
    // Every service was updated before the signal, so every one goes back to revision 7.
    let mut targets = rollback_targets(&replay);
    targets.sort();
    let mut expected: Vec<_> = SERVICES.iter().map(|s| (s.to_string(), old(s))).collect();
    expected.sort();
    assert_eq!(targets, expected);
    assert_eq!(statuses(&report), vec![ServiceStatus::RolledBack; 3]);
}

#[tokio::test]
async fn a_second_signal_stops_waiting_for_the_rollback_but_every_rollback_is_sent() {
    // SIGINT at 12 s starts the rollback; the previous revisions never settle; SIGTERM at
    // 20 s (GitHub sends it 7.5 s after SIGINT) ends the wait.
    let (report, replay, now) = interrupted_run(
        vec![(secs(12), "SIGINT"), (secs(20), "SIGTERM")],
        AfterRollback::Stuck,
    )
    .await;
    let FleetOutcome::Interrupted(reason) = &report.outcome else {
        panic!("expected Interrupted, got {:?}", report.outcome);
    };
    assert!(reason.contains("not waited for"), "{reason}");
    assert_eq!(rollback_targets(&replay).len(), 3, "every rollback is sent");
    assert!(
        statuses(&report).contains(&ServiceStatus::RollbackIssued),
        "{:?}",
        statuses(&report)
    );
    // Stopped at the first poll after SIGTERM, not at the 300 s timeout.
    assert!(now < secs(30), "waited until {now:?}");
}

#[tokio::test]
async fn a_signal_before_any_update_changes_nothing() {
    let clock = VirtualClock::default();
    let replay = fleet(&clock, healthy("processor"));
    let (sender, interrupts) = Interrupts::manual();
    let mut lines = Lines::default();
    let prepared = prepare(&replay, &clock, &plans(), &config(), &mut lines)
        .await
        .expect("prepares");
    sender.send("SIGTERM");
    let report = deploy(
        &replay,
        &clock,
        &prepared,
        &config(),
        &interrupts,
        &mut lines,
    )
    .await;
    assert!(
        matches!(&report.outcome, FleetOutcome::Interrupted(r) if r.contains("before any service changed")),
        "{:?}",
        report.outcome
    );
    assert!(replay.updates().is_empty());
}

#[tokio::test]
async fn an_existing_revision_that_fails_is_rolled_back_and_nothing_is_registered() {
    // amazon-ecs-deploy-task-definition#299/#882: deploy `processor:8` (owned by Terraform)
    // as it is; the same wait and rollback as a rendered revision.
    let clock = VirtualClock::default();
    let mut processor = healthy("processor");
    let mut failed = rolling("processor", 0);
    failed.deployments[0].rollout_state = Some("FAILED".into());
    failed.deployments[0].rollout_state_reason = Some("tasks failed to start".into());
    processor.timeline[2] = (secs(10), Ok(failed));
    processor.timeline.truncate(3);
    let replay = fleet(&clock, processor);
    replay.task_definition(
        "processor",
        8,
        json!([{"name": "processor", "image": format!("{REGISTRY}/kdcube-processor:2.0")}]),
    );
    replay.existing(&new("processor"));
    let plan = ServicePlan {
        cluster: "prod".into(),
        service: "processor".into(),
        base: Base::Reference("processor:8".into()),
        edits: Vec::new(),
        task_edit: crate::taskdef::TaskEdit::default(),
        register: false,
        desired_count: None,
        force_new_deployment: false,
    };
    let mut lines = Lines::default();
    let prepared = prepare(&replay, &clock, &[plan], &config(), &mut lines)
        .await
        .expect("prepares");
    let report = deploy(
        &replay,
        &clock,
        &prepared,
        &config(),
        &no_interrupts(),
        &mut lines,
    )
    .await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("tasks failed to start")),
        "{:?}",
        report.outcome
    );
    assert_eq!(replay.calls().get("RegisterTaskDefinition"), None);
    let updates: Vec<String> = replay
        .updates()
        .into_iter()
        .map(|u| u.task_definition)
        .collect();
    assert_eq!(updates, [new("processor"), old("processor")]);
    assert_eq!(
        report.services[0].task_definition.as_deref(),
        Some(new("processor").as_str())
    );
    assert!(
        lines
            .0
            .iter()
            .any(|l| l.contains("deploying the existing revision")),
        "{:?}",
        lines.0
    );
}

// ECS-native strategies (blue/green, linear, canary). moto implements none of
// ListServiceDeployments, DescribeServiceDeployments or StopServiceDeployment, so these run
// on the scripted API; its bodies follow the API reference shapes (replay::service_deployment,
// replay::deployment_brief, which cite the pages).

const DEPLOYMENT: &str = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/new";

fn web_plan() -> ServicePlan {
    ServicePlan {
        cluster: "prod".into(),
        service: "web".into(),
        base: Base::Current,
        edits: vec![ContainerEdit {
            name: "web".into(),
            image: Some(ImageEdit::Tag("2.0".into())),
            ..ContainerEdit::default()
        }],
        task_edit: crate::taskdef::TaskEdit::default(),
        register: true,
        desired_count: Some(3),
        force_new_deployment: false,
    }
}

/// `web` on BLUE_GREEN next to the three rolling services of [`fleet`].
fn native_fleet<'a>(clock: &'a VirtualClock, script: crate::replay::NativeScript) -> Replay<'a> {
    let replay = fleet(clock, healthy("processor"));
    replay.task_definition(
        "web",
        7,
        json!([{"name": "web", "image": format!("{REGISTRY}/kdcube-web:1.0")}]),
    );
    replay.image("kdcube-web", "2.0", "sha256:web");
    let mut state = before("web");
    state.strategy = Some("BLUE_GREEN".into());
    replay.service(
        "web",
        ScriptedService {
            timeline: vec![(secs(0), Ok(state))],
            after_rollback: AfterRollback::Healthy,
        },
    );
    replay.native("web", script);
    replay
}

fn stage(status: &str, stage: &str, running: i64) -> serde_json::Value {
    crate::replay::service_deployment(DEPLOYMENT, status, stage, running, 2)
}

fn blue_green(timeline: Vec<(u64, serde_json::Value)>) -> crate::replay::NativeScript {
    crate::replay::NativeScript {
        earlier: vec![crate::replay::deployment_brief(
            "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/old",
            10.0,
            "SUCCESSFUL",
        )],
        arn: DEPLOYMENT.into(),
        listed_after: secs(6),
        timeline: timeline.into_iter().map(|(s, v)| (secs(s), v)).collect(),
        ..crate::replay::NativeScript::default()
    }
}

/// The fleet config with a timeout that covers the 10-minute bake time.
fn native_config() -> FleetConfig {
    let mut config = config();
    config.watch.timeout = secs(3600);
    config
}

async fn run_plans(
    replay: &Replay<'_>,
    clock: &VirtualClock,
    plans: &[ServicePlan],
) -> (FleetReport, Lines) {
    let mut lines = Lines::default();
    let config = native_config();
    let prepared = prepare(replay, clock, plans, &config, &mut lines)
        .await
        .expect("prepares");
    let report = deploy(
        replay,
        clock,
        &prepared,
        &config,
        &no_interrupts(),
        &mut lines,
    )
    .await;
    (report, lines)
}

#[tokio::test]
async fn blue_green_sends_only_the_task_definition_and_follows_stages_bake_time_and_hooks() {
    let clock = VirtualClock::default();
    let mut hooked = stage("IN_PROGRESS", "POST_SCALE_UP", 2);
    hooked["lifecycleHookDetails"] = json!([{"hookId": "h1", "targetType": "AWS_LAMBDA",
        "targetArn": "arn:aws:lambda:eu-west-1:123456789012:function:smoke", "status": "SUCCEEDED"}]);
    let replay = native_fleet(
        &clock,
        blue_green(vec![
            (0, stage("PENDING", "RECONCILE_SERVICE", 0)),
            (10, stage("IN_PROGRESS", "SCALE_UP", 1)),
            (20, hooked),
            (30, stage("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2)),
            (40, stage("IN_PROGRESS", "BAKE_TIME", 2)),
            (640, stage("IN_PROGRESS", "CLEAN_UP", 2)),
            (650, stage("SUCCESSFUL", "CLEAN_UP", 2)),
        ]),
    );
    let (report, lines) = run_plans(&replay, &clock, &[web_plan()]).await;
    assert_eq!(report.outcome, FleetOutcome::Deployed, "{:?}", lines.0);
    let update = &replay.updates()[0];
    assert_eq!(update.task_definition, new("web"));
    assert_eq!(
        (update.desired_count, update.force_new_deployment),
        (None, false)
    );
    let log = lines.0.join("\n");
    for part in [
        "WARN web: the service uses the BLUE_GREEN strategy: only the task definition is sent",
        &format!("web: service deployment {DEPLOYMENT}"),
        "stage SCALE_UP, new revision 1/2 tasks running",
        "hook arn:aws:lambda:eu-west-1:123456789012:function:smoke: SUCCEEDED",
        "stage BAKE_TIME, new revision 2/2 tasks running (bake time 10 min)",
        "web: service deployment SUCCESSFUL",
    ] {
        assert!(log.contains(part), "{part}\n{log}");
    }
    assert!(replay.stops().is_empty());
    assert_eq!(
        replay.calls().get("DescribeServices"),
        Some(&1),
        "the old list is not polled"
    );
    assert!(
        clock.now() >= secs(650) && clock.now() < secs(660),
        "{:?}",
        clock.now()
    );
}

#[tokio::test]
async fn an_ecs_rollback_fails_the_deploy_without_a_stop_or_a_second_update() {
    let clock = VirtualClock::default();
    let mut rolled = stage("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0);
    rolled["rollback"] = json!({"reason": "alarm web-5xx in ALARM", "startedAt": 1030.0,
        "serviceRevisionArn": "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/1"});
    let replay = native_fleet(
        &clock,
        blue_green(vec![
            (0, stage("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2)),
            (
                20,
                stage("ROLLBACK_IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2),
            ),
            (40, rolled),
        ]),
    );
    let (report, lines) = run_plans(&replay, &clock, &[web_plan()]).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("alarm web-5xx in ALARM")),
        "{:?} {:?}",
        report.outcome,
        lines.0
    );
    assert_eq!(report.services[0].status, ServiceStatus::RolledBack);
    assert!(replay.stops().is_empty());
    assert_eq!(replay.updates().len(), 1);
}

#[tokio::test]
async fn failed_tasks_at_our_limit_stop_the_deployment_with_rollback_and_wait_for_it() {
    let clock = VirtualClock::default();
    let mut failing = stage("IN_PROGRESS", "SCALE_UP", 0);
    failing["deploymentCircuitBreaker"]["failureCount"] = json!(3);
    let mut script = blue_green(vec![
        (0, stage("IN_PROGRESS", "SCALE_UP", 0)),
        (15, failing),
    ]);
    script.after_stop = vec![
        (secs(0), stage("ROLLBACK_REQUESTED", "SCALE_UP", 0)),
        (secs(20), stage("ROLLBACK_IN_PROGRESS", "CLEAN_UP", 0)),
        (secs(40), stage("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0)),
    ];
    let replay = native_fleet(&clock, script);
    let (report, lines) = run_plans(&replay, &clock, &[web_plan()]).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("3 tasks of the new revision failed")),
        "{:?} {:?}",
        report.outcome,
        lines.0
    );
    assert_eq!(
        replay.stops(),
        [(DEPLOYMENT.to_owned(), "ROLLBACK".to_owned())]
    );
    assert_eq!(
        replay.updates().len(),
        1,
        "the rollback is ECS's, not a second update"
    );
    assert!(
        lines
            .0
            .iter()
            .any(|l| l.contains("service deployment ROLLBACK_SUCCESSFUL"))
    );
}

#[tokio::test]
async fn a_pause_hook_past_the_pause_timeout_is_explained_and_stopped_with_rollback() {
    let clock = VirtualClock::default();
    let mut paused = stage("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 2);
    paused["lifecycleHookDetails"] = json!([{"hookId": "ecs-pause-1", "targetType": "PAUSE",
        "status": "AWAITING_ACTION", "expiresAt": 1_767_225_600.0, "timeoutAction": "ROLLBACK"}]);
    let mut script = blue_green(vec![(0, stage("IN_PROGRESS", "SCALE_UP", 1)), (20, paused)]);
    script.after_stop = vec![(secs(10), stage("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0))];
    let replay = native_fleet(&clock, script);
    let mut config = native_config();
    config.pause_timeout = secs(120);
    let mut lines = Lines::default();
    let prepared = prepare(&replay, &clock, &[web_plan()], &config, &mut lines)
        .await
        .expect("prepares");
    let report = deploy(
        &replay,
        &clock,
        &prepared,
        &config,
        &no_interrupts(),
        &mut lines,
    )
    .await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RolledBack(r) if r.contains("pause hook for 2m")),
        "{:?}",
        report.outcome
    );
    let paused_lines: Vec<&String> = lines.0.iter().filter(|l| l.contains("PAUSED")).collect();
    assert_eq!(paused_lines.len(), 1, "{:?}", lines.0);
    assert!(paused_lines[0].starts_with("WARN web: PAUSED at stage POST_TEST_TRAFFIC_SHIFT"));
    assert!(paused_lines[0].contains("--hook-id ecs-pause-1 --action CONTINUE"));
    assert_eq!(
        replay.stops(),
        [(DEPLOYMENT.to_owned(), "ROLLBACK".to_owned())]
    );
    // Stopped within one poll of the deadline (paused seen at 25 s, deadline 120 s later).
    assert!(clock.now() < secs(25 + 120 + 10 + 15), "{:?}", clock.now());
}

#[tokio::test]
async fn a_completed_blue_green_service_is_redeployed_back_when_another_service_fails() {
    let clock = VirtualClock::default();
    let mut script = blue_green(vec![
        (0, stage("IN_PROGRESS", "SCALE_UP", 1)),
        (10, stage("SUCCESSFUL", "CLEAN_UP", 2)),
    ]);
    let back = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/new-back";
    script.back = vec![
        (
            secs(0),
            crate::replay::service_deployment(back, "IN_PROGRESS", "SCALE_UP", 1, 2),
        ),
        (
            secs(30),
            crate::replay::service_deployment(back, "SUCCESSFUL", "CLEAN_UP", 2, 2),
        ),
    ];
    let replay = native_fleet(&clock, script);
    // The processor fails after web completed (ordered: web first).
    let mut processor = healthy("processor");
    let mut failed = rolling("processor", 0);
    failed.deployments[0].rollout_state = Some("FAILED".into());
    processor.timeline[2] = (secs(10), Ok(failed));
    processor.timeline.truncate(3);
    replay.service("processor", processor);
    let mut plans = vec![web_plan()];
    plans.push(plans_for("processor"));
    let mut config = native_config();
    config.sequential = true;
    let mut lines = Lines::default();
    let prepared = prepare(&replay, &clock, &plans, &config, &mut lines)
        .await
        .expect("prepares");
    let report = deploy(
        &replay,
        &clock,
        &prepared,
        &config,
        &no_interrupts(),
        &mut lines,
    )
    .await;
    assert!(
        matches!(report.outcome, FleetOutcome::RolledBack(_)),
        "{:?} {:?}",
        report.outcome,
        lines.0
    );
    assert_eq!(report.services[0].status, ServiceStatus::RolledBack);
    let web_updates: Vec<String> = replay
        .updates()
        .into_iter()
        .filter(|u| u.service == "web")
        .map(|u| u.task_definition)
        .collect();
    assert_eq!(web_updates, [new("web"), old("web")]);
    assert!(replay.stops().is_empty());
    assert!(lines.0.iter().any(|l| l.contains(back)), "{:?}", lines.0);
}

#[tokio::test]
async fn a_failed_ecs_rollback_after_our_stop_is_a_failed_rollback() {
    let clock = VirtualClock::default();
    let mut failing = stage("IN_PROGRESS", "SCALE_UP", 0);
    failing["deploymentCircuitBreaker"]["failureCount"] = json!(5);
    let mut script = blue_green(vec![(0, failing)]);
    let mut broken = stage("ROLLBACK_FAILED", "SCALE_UP", 0);
    broken["statusReason"] = json!("source revision tasks failed to start");
    script.after_stop = vec![(secs(5), broken)];
    let replay = native_fleet(&clock, script);
    let (report, _) = run_plans(&replay, &clock, &[web_plan()]).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::RollbackFailed(r) if r.contains("source revision tasks failed to start")),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.services[0].status, ServiceStatus::RollbackFailed);
}

// Migrations (issue 22 point 1): a one-off task on the new revision gates every update.

fn migration_fleet<'a>(
    clock: &'a VirtualClock,
    task: Vec<(u64, crate::api::TaskState)>,
) -> Replay<'a> {
    let replay = fleet(clock, healthy("processor"));
    replay.task_definition(
        "processor",
        7,
        json!([{"name": "processor", "image": format!("{REGISTRY}/kdcube-processor:1.0"),
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/processor", "awslogs-region": "eu-west-1",
                    "awslogs-stream-prefix": "ecs"}}}]),
    );
    let mut processor = healthy("processor");
    if let Ok(state) = processor.timeline[0].1.as_mut() {
        state.run_config = serde_json::from_value(json!({
            "launchType": "FARGATE",
            "platformVersion": "LATEST",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-0a"], "securityGroups": ["sg-0b"], "assignPublicIp": "DISABLED"}}
        }))
        .expect("object");
    }
    replay.service("processor", processor);
    replay.migration(task.into_iter().map(|(s, t)| (secs(s), t)).collect());
    replay
}

fn task(status: &str, exit: Option<i32>, reason: Option<&str>) -> crate::api::TaskState {
    crate::api::TaskState {
        arn: crate::replay::MIGRATION_TASK.into(),
        last_status: status.into(),
        stop_code: (status == "STOPPED").then(|| "EssentialContainerExited".into()),
        stopped_reason: (status == "STOPPED").then(|| "Essential container in task exited".into()),
        containers: vec![crate::api::ContainerState {
            name: "processor".into(),
            exit_code: exit,
            reason: reason.map(str::to_owned),
        }],
    }
}

fn with_migration(command: &[&str]) -> FleetConfig {
    let mut config = config();
    config.migration = Some(crate::migration::Migration {
        service: "processor".into(),
        container: "processor".into(),
        command: command.iter().map(|c| (*c).to_owned()).collect(),
        timeout: secs(600),
    });
    config
}

#[tokio::test]
async fn a_passing_migration_runs_on_the_new_revision_with_the_services_network_before_any_update()
{
    let clock = VirtualClock::default();
    let replay = migration_fleet(
        &clock,
        vec![
            (0, task("PROVISIONING", None, None)),
            (10, task("RUNNING", None, None)),
            (40, task("STOPPED", Some(0), None)),
        ],
    );
    let (report, lines) = run(
        &replay,
        &clock,
        &with_migration(&["python", "-m", "migrate", "--to", "head"]),
    )
    .await;
    assert_eq!(report.outcome, FleetOutcome::Deployed, "{:?}", lines.0);
    let runs = replay.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0],
        json!({
            "cluster": "prod", "taskDefinition": new("processor"), "count": 1,
            "startedBy": "ecs-taskdef-update", "launchType": "FARGATE", "platformVersion": "LATEST",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-0a"], "securityGroups": ["sg-0b"], "assignPublicIp": "DISABLED"}},
            "overrides": {"containerOverrides": [{"name": "processor",
                "command": ["python", "-m", "migrate", "--to", "head"]}]}
        })
    );
    let passed = lines
        .0
        .iter()
        .position(|l| l.contains("migration passed"))
        .expect("passed");
    let first_update = lines
        .0
        .iter()
        .position(|l| l.contains("updated to"))
        .expect("updated");
    assert!(passed < first_update, "{:?}", lines.0);
    assert!(
        lines.0.iter().any(|l| l.contains(&format!(
            "stream ecs/processor/{}",
            crate::replay::MIGRATION_TASK
                .rsplit('/')
                .next()
                .unwrap_or_default()
        ))),
        "{:?}",
        lines.0
    );
    assert_eq!(replay.updates().len(), 3);
}

#[tokio::test]
async fn a_failed_migration_changes_no_service() {
    for (stopped, why) in [
        (
            task("STOPPED", Some(3), None),
            "container `processor` exited 3",
        ),
        (
            {
                let mut t = task(
                    "STOPPED",
                    None,
                    Some("CannotPullContainerError: pull access denied"),
                );
                t.stop_code = Some("TaskFailedToStart".into());
                t.stopped_reason = Some("CannotPullContainerError".into());
                t
            },
            "container `processor` has no exit code: it did not run to the end (CannotPullContainerError: pull access denied)",
        ),
    ] {
        let clock = VirtualClock::default();
        let replay = migration_fleet(
            &clock,
            vec![(0, task("RUNNING", None, None)), (20, stopped)],
        );
        let (report, lines) = run(&replay, &clock, &with_migration(&["migrate"])).await;
        assert!(
            matches!(&report.outcome, FleetOutcome::Failed(r) if r.contains(why)),
            "{:?} {:?}",
            report.outcome,
            lines.0
        );
        assert!(replay.updates().is_empty(), "no service updated");
        assert_eq!(statuses(&report), [ServiceStatus::Registered; 3]);
        assert!(
            lines
                .0
                .iter()
                .any(|l| l.contains("aws logs get-log-events --log-group-name /ecs/processor"))
        );
    }
}

#[tokio::test]
async fn a_migration_past_its_timeout_is_stopped_and_changes_no_service() {
    let clock = VirtualClock::default();
    let replay = migration_fleet(&clock, vec![(0, task("RUNNING", None, None))]);
    let (report, lines) = run(&replay, &clock, &with_migration(&["migrate"])).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::Failed(r) if r.contains("migration did not stop within 10m")),
        "{:?}",
        report.outcome
    );
    assert_eq!(
        replay.stopped_tasks(),
        [(
            crate::replay::MIGRATION_TASK.to_owned(),
            "migration did not stop within 10m".to_owned()
        )]
    );
    assert!(replay.updates().is_empty());
    assert!(clock.now() <= secs(600 + 5), "{:?}", clock.now());
    assert!(
        lines
            .0
            .iter()
            .any(|l| l.starts_with("WARN processor: migration did not stop"))
    );
}

#[tokio::test]
async fn the_rollback_command_on_a_blue_green_service_follows_the_new_service_deployment() {
    let clock = VirtualClock::default();
    let replay = native_fleet(
        &clock,
        blue_green(vec![
            (0, stage("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2)),
            (30, stage("SUCCESSFUL", "CLEAN_UP", 2)),
        ]),
    );
    replay.task_definition("web", 6, json!([{"name": "web", "image": "x"}]));
    let mut lines = Lines::default();
    let (from, to) = roll_back_to(
        &replay,
        &clock,
        &web_plan(),
        None,
        &native_config(),
        &no_interrupts(),
        &mut lines,
    )
    .await
    .expect("rolls back");
    assert_eq!((from, to.clone()), (old("web"), arn("web", 6)));
    let update = &replay.updates()[0];
    assert_eq!(
        (update.task_definition.as_str(), update.desired_count),
        (to.as_str(), None)
    );
    assert!(
        lines.0.iter().any(|l| l == "web: service deployment SUCCESSFUL, stage CLEAN_UP, new revision 2/2 tasks running"),
        "{:?}",
        lines.0
    );
    assert!(
        clock.now() >= secs(30),
        "waited for SUCCESSFUL: {:?}",
        clock.now()
    );
}

#[tokio::test]
async fn a_failed_migrations_exit_codes_and_log_tail_are_in_the_report() {
    let clock = VirtualClock::default();
    let replay = migration_fleet(
        &clock,
        vec![
            (0, task("RUNNING", None, None)),
            (20, task("STOPPED", Some(3), None)),
        ],
    );
    let task_id = crate::replay::MIGRATION_TASK
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let stream = format!("ecs/processor/{task_id}");
    let mut events: Vec<String> = (1..=60).map(|i| format!("step {i}")).collect();
    events.push("::error::injected\n".into());
    events.push("alembic.util.exc.CommandError: Can't locate revision 9f2".into());
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    replay.log_stream("/ecs/processor", &stream, &events);
    let (report, lines) = run(&replay, &clock, &with_migration(&["migrate"])).await;
    assert!(
        matches!(&report.outcome, FleetOutcome::Failed(r) if r.contains("exited 3")),
        "{:?}",
        report.outcome
    );
    assert!(replay.updates().is_empty(), "no service updated");
    assert_eq!(
        replay.log_reads(),
        [crate::api::LogStream {
            group: "/ecs/processor".into(),
            stream: stream.clone(),
            region: Some("eu-west-1".into()),
        }]
    );
    let migration = report
        .services
        .iter()
        .find(|s| s.service == "processor")
        .and_then(|s| s.migration.clone())
        .expect("a report");
    assert_eq!(migration.task, crate::replay::MIGRATION_TASK);
    assert_eq!(
        migration.exit_codes,
        [("processor".to_owned(), Some(3))].into_iter().collect()
    );
    assert_eq!(
        migration.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert!(migration.log.contains(&stream), "{}", migration.log);
    // The last 50 events, oldest first, trailing newlines dropped.
    assert_eq!(migration.log_tail.len(), 50);
    assert_eq!(migration.log_tail[0], "step 13");
    assert_eq!(migration.log_tail[48], "::error::injected");
    assert_eq!(
        migration.log_tail[49],
        "alembic.util.exc.CommandError: Can't locate revision 9f2"
    );
    // Through the sink's untrusted path: the heading, then each event.
    let heading = lines
        .0
        .iter()
        .position(|l| l.contains("migration log tail (50 event(s)"))
        .expect("heading");
    assert_eq!(
        lines.0[heading + 50],
        "processor: | alembic.util.exc.CommandError: Can't locate revision 9f2"
    );
}

#[tokio::test]
async fn a_log_stream_that_cannot_be_read_is_said_and_the_verdict_stays_the_exit_code() {
    let clock = VirtualClock::default();
    let replay = migration_fleet(
        &clock,
        vec![
            (0, task("RUNNING", None, None)),
            (20, task("STOPPED", Some(0), None)),
        ],
    );
    let (report, lines) = run(&replay, &clock, &with_migration(&["migrate"])).await;
    assert_eq!(report.outcome, FleetOutcome::Deployed, "{:?}", lines.0);
    assert!(
        lines.0.iter().any(|l| l.starts_with(
            "WARN processor: the migration's log tail could not be read: GetLogEvents failed"
        )),
        "{:?}",
        lines.0
    );
    let migration = report
        .services
        .iter()
        .find(|s| s.service == "processor")
        .and_then(|s| s.migration.clone())
        .expect("a report");
    assert!(migration.log_tail.is_empty());
    assert_eq!(replay.log_reads().len(), 1);
}
