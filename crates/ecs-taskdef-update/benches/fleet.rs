//! Benchmark with the scripted API (`cargo bench -p ecs-taskdef-update --bench fleet`):
//! API calls per 3-service deploy (success, and one service FAILED), and the time from a
//! deployment turning FAILED to the end of the run, on the virtual clock (what a real run
//! would wait) and on the wall clock (our own processing).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![expect(clippy::unwrap_used, reason = "a benchmark fails loudly")]

use std::time::{Duration, Instant};

use ecs_taskdef_update::api::Clock as _;
use ecs_taskdef_update::fleet;
use ecs_taskdef_update::fleet_config::FleetConfig;
use ecs_taskdef_update::prepare;
use ecs_taskdef_update::replay::{
    AfterRollback, Replay, ScriptedService, VirtualClock, arn, deployment, service_state,
};
use ecs_taskdef_update::service_plan::{Base, ServicePlan};
use ecs_taskdef_update::sink::Sink;
use ecs_taskdef_update::taskdef::{ContainerEdit, ImageEdit};
use ecs_taskdef_update::watch::WatchConfig;
use serde_json::json;

const SERVICES: [&str; 3] = ["ingress", "processor", "metrics"];
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

struct Quiet;
impl Sink for Quiet {
    fn line(&mut self, _: &str, _: &str) {}
    fn warn(&mut self, _: &str, _: &str) {}
}

fn script(service: &str, fail_at: Option<Duration>) -> ScriptedService {
    let s = Duration::from_secs;
    let new = arn(service, 8);
    let old = arn(service, 7);
    let id = format!("ecs-svc/new-{service}");
    let rolling = |running| {
        service_state(vec![
            deployment(&id, "PRIMARY", &new, "IN_PROGRESS", running),
            deployment("ecs-svc/old", "ACTIVE", &old, "COMPLETED", 2),
        ])
    };
    let mut timeline = vec![
        (
            s(0),
            Ok(service_state(vec![deployment(
                "ecs-svc/old",
                "PRIMARY",
                &old,
                "COMPLETED",
                2,
            )])),
        ),
        (s(1), Ok(rolling(0))),
    ];
    match fail_at {
        Some(at) => {
            let mut failed = rolling(0);
            failed.deployments[0].rollout_state = Some("FAILED".into());
            timeline.push((at, Ok(failed)));
        }
        None => {
            timeline.push((s(30), Ok(rolling(2))));
            timeline.push((
                s(60),
                Ok(service_state(vec![deployment(
                    &id,
                    "PRIMARY",
                    &new,
                    "COMPLETED",
                    2,
                )])),
            ));
        }
    }
    ScriptedService {
        timeline,
        after_rollback: AfterRollback::Healthy,
    }
}

fn plans() -> Vec<ServicePlan> {
    SERVICES
        .iter()
        .map(|service| ServicePlan {
            cluster: "prod".into(),
            service: (*service).into(),
            base: Base::Current,
            edits: vec![ContainerEdit {
                name: (*service).into(),
                image: Some(ImageEdit::Tag("2.0".into())),
                ..ContainerEdit::default()
            }],
            desired_count: None,
            force_new_deployment: false,
            task_edit: ecs_taskdef_update::taskdef::TaskEdit::default(),
            register: true,
        })
        .collect()
}

/// Runs one deploy; returns (calls, virtual end, wall time).
fn once(
    fail_at: Option<Duration>,
) -> (
    std::collections::BTreeMap<&'static str, usize>,
    usize,
    Duration,
    Duration,
) {
    let clock = VirtualClock::default();
    let replay = Replay::new(&clock);
    for service in SERVICES {
        replay.task_definition(
            service,
            7,
            json!([{"name": service, "image": format!("{REGISTRY}/{service}:1")}]),
        );
        replay.image(service, "2.0", "sha256:00");
        replay.image(service, "1", "sha256:01");
        let fail = if service == "processor" {
            fail_at
        } else {
            None
        };
        replay.service(service, script(service, fail));
    }
    let config = FleetConfig {
        poll_interval: Duration::from_secs(5),
        watch: WatchConfig {
            timeout: Duration::from_secs(900),
            max_failed_tasks: 3,
            allow_zero_desired: false,
        },
        pin_digest: false,
        sequential: false,
        rollback: true,
        max_attempts: 5,
        pause_timeout: std::time::Duration::from_secs(30 * 60),
        migration: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wall = Instant::now();
    runtime.block_on(async {
        let prepared = prepare::prepare(&replay, &clock, &plans(), &config, &mut Quiet)
            .await
            .unwrap();
        let interrupts = runner_protocol::signal::Interrupts::manual().1;
        fleet::deploy(&replay, &clock, &prepared, &config, &interrupts, &mut Quiet).await
    });
    (
        replay.calls(),
        replay.total_calls(),
        clock.now(),
        wall.elapsed(),
    )
}

fn main() {
    let (calls, total, end, wall) = once(None);
    println!(
        "3-service deploy, success (complete at 60 s, poll 5 s): {total} API calls {calls:?}; virtual {end:?}; wall {wall:?}"
    );
    let mut worst = Duration::ZERO;
    for offset_ms in (0..5000).step_by(250) {
        let fail_at = Duration::from_secs(20) + Duration::from_millis(offset_ms);
        let (_, _, end, _) = once(Some(fail_at));
        worst = worst.max(end - fail_at);
    }
    let (calls, total, end, wall) = once(Some(Duration::from_secs(21)));
    println!(
        "3-service deploy, processor FAILED at 21 s: {total} API calls {calls:?}; exit at virtual {end:?}; wall {wall:?}"
    );
    println!(
        "time from FAILED to exit (virtual, worst over 20 offsets within a poll): {worst:?} (poll interval 5 s)"
    );
}
