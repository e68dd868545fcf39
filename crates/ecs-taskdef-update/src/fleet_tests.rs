//! The deploy/wait/rollback driver against scripted DescribeServices sequences.

use std::time::Duration;

use serde_json::json;

use runner_protocol::signal::InterruptSender;

use super::*;
use crate::api::{ApiError, StoppedTask};
use crate::replay::{
    AfterRollback, Replay, ScriptedService, VirtualClock, arn, deployment, service_state,
};
use crate::taskdef::ImageEdit;

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
    SERVICES
        .iter()
        .map(|service| {
            let mut env_set = vec![("LOG_LEVEL".to_owned(), "debug".to_owned())];
            if *service == "processor" {
                env_set.push(("AGENTIC_BUNDLES_JSON".into(), "{\"bundles\": []}".into()));
            }
            ServicePlan {
                cluster: "prod".into(),
                service: (*service).into(),
                base: Base::Current,
                edits: vec![ContainerEdit {
                    name: (*service).into(),
                    image: Some(ImageEdit::Tag("2.0".into())),
                    env_set,
                    ..ContainerEdit::default()
                }],
                desired_count: None,
                force_new_deployment: false,
                task_edit: crate::taskdef::TaskEdit::default(),
                register: true,
            }
        })
        .collect()
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
