//! The native-strategy wait decision over DescribeServiceDeployments bodies shaped as the API
//! reference documents them (see [`crate::replay::service_deployment`]).

use serde_json::json;

use super::*;
use crate::replay::{deployment_brief, service_deployment};

const ARN: &str = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/new";

fn config() -> NativeConfig {
    NativeConfig {
        timeout: Duration::from_secs(3600),
        pause_timeout: Duration::from_secs(600),
        max_failed_tasks: 3,
    }
}

fn parsed(body: serde_json::Value) -> ServiceDeployment {
    parse_describe(&json!({"serviceDeployments": [body], "failures": []}), ARN).expect("parses")
}

#[test]
fn our_deployment_is_the_new_one_in_the_list() {
    let mut watch = NativeWatch::new(["old".to_owned()], Duration::ZERO, config());
    let body = json!({"serviceDeployments": [deployment_brief("old", 10.0, "SUCCESSFUL")]});
    assert_eq!(watch.find(&parse_list(&body).expect("list")), None);
    let body = json!({"serviceDeployments": [
        deployment_brief("old", 10.0, "SUCCESSFUL"),
        deployment_brief(ARN, 20.0, "PENDING")
    ]});
    assert_eq!(
        watch.find(&parse_list(&body).expect("list")).as_deref(),
        Some(ARN)
    );
}

#[test]
fn stages_are_reported_once_each_and_successful_completes() {
    let mut watch = NativeWatch::new([], Duration::ZERO, config());
    let mut lines = Vec::new();
    for (second, (status, stage, running)) in [
        ("IN_PROGRESS", "PRE_SCALE_UP", 0),
        ("IN_PROGRESS", "SCALE_UP", 1),
        ("IN_PROGRESS", "SCALE_UP", 1),
        ("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", 2),
        ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2),
        ("IN_PROGRESS", "BAKE_TIME", 2),
        ("IN_PROGRESS", "CLEAN_UP", 2),
    ]
    .into_iter()
    .enumerate()
    {
        let step = watch.observe(
            &parsed(service_deployment(ARN, status, stage, running, 2)),
            Duration::from_secs(second as u64),
        );
        assert_eq!(step.outcome, None, "{stage}");
        lines.extend(step.log);
    }
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines[5 - 1].contains("BAKE_TIME") && lines[4].contains("bake time 10 min"));
    let done = watch.observe(
        &parsed(service_deployment(ARN, "SUCCESSFUL", "CLEAN_UP", 2, 2)),
        Duration::from_secs(9),
    );
    assert_eq!(done.outcome, Some(NativeOutcome::Completed));
}

#[test]
fn an_ecs_rollback_is_waited_for_then_reported_with_its_reason() {
    let mut watch = NativeWatch::new([], Duration::ZERO, config());
    let mut rolling = service_deployment(
        ARN,
        "ROLLBACK_IN_PROGRESS",
        "PRODUCTION_TRAFFIC_SHIFT",
        2,
        2,
    );
    rolling["alarms"]["status"] = json!("TRIGGERED");
    rolling["alarms"]["triggeredAlarmNames"] = json!(["web-5xx"]);
    assert_eq!(
        watch
            .observe(&parsed(rolling), Duration::from_secs(1))
            .outcome,
        None
    );
    let mut done = service_deployment(ARN, "ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, 2);
    done["rollback"] = json!({"reason": "alarm web-5xx in ALARM", "startedAt": 1010.0,
                              "serviceRevisionArn": "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/1"});
    let step = watch.observe(&parsed(done), Duration::from_secs(2));
    assert_eq!(
        step.outcome,
        Some(NativeOutcome::RolledBackByEcs(
            "ECS rolled the service deployment back: alarm web-5xx in ALARM".into()
        ))
    );
}

#[test]
fn failed_tasks_at_the_limit_stop_it_and_a_pause_hook_has_a_deadline_and_a_clear_message() {
    let mut watch = NativeWatch::new([], Duration::ZERO, config());
    let mut failing = service_deployment(ARN, "IN_PROGRESS", "SCALE_UP", 0, 2);
    failing["deploymentCircuitBreaker"]["failureCount"] = json!(3);
    assert!(matches!(
        watch.observe(&parsed(failing), Duration::from_secs(1)).outcome,
        Some(NativeOutcome::Stop(reason)) if reason.contains("3 tasks of the new revision failed")
    ));

    let mut watch = NativeWatch::new([], Duration::ZERO, config());
    let mut paused = service_deployment(ARN, "IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 2, 2);
    paused["lifecycleHookDetails"] = json!([{
        "hookId": "ecs-pause-e7tK9G", "targetType": "PAUSE", "status": "AWAITING_ACTION",
        "expiresAt": 1_767_225_600.0, "timeoutAction": "ROLLBACK"
    }]);
    let first = watch.observe(&parsed(paused.clone()), Duration::from_secs(100));
    assert_eq!(first.outcome, None);
    let message = first
        .log
        .iter()
        .find(|l| l.starts_with("PAUSED"))
        .expect("said");
    for part in [
        "POST_TEST_TRAFFIC_SHIFT",
        "aws ecs continue-service-deployment",
        "--hook-id ecs-pause-e7tK9G",
        ARN,
        "ECS itself takes `ROLLBACK` at 2026-01-01T00:00:00Z",
        "waits 10m",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    let again = watch.observe(&parsed(paused.clone()), Duration::from_secs(699));
    assert_eq!(again.outcome, None);
    assert!(
        again.log.is_empty(),
        "the pause is said once: {:?}",
        again.log
    );
    assert!(matches!(
        watch.observe(&parsed(paused), Duration::from_secs(700)).outcome,
        Some(NativeOutcome::Stop(reason)) if reason.contains("pause hook for 10m")
    ));
}

#[test]
fn stopped_by_someone_else_fails_and_the_timeout_stops_it() {
    let mut watch = NativeWatch::new([], Duration::ZERO, config());
    let mut stopped = service_deployment(ARN, "STOPPED", "SCALE_UP", 0, 2);
    stopped["statusReason"] = json!("stopped by user");
    assert_eq!(
        watch
            .observe(&parsed(stopped), Duration::from_secs(1))
            .outcome,
        Some(NativeOutcome::Failed(
            "the service deployment was stopped: stopped by user".into()
        ))
    );
    let mut watch = NativeWatch::new([], Duration::ZERO, config());
    let baking = parsed(service_deployment(ARN, "IN_PROGRESS", "BAKE_TIME", 2, 2));
    assert_eq!(
        watch.observe(&baking, Duration::from_secs(3599)).outcome,
        None
    );
    assert!(matches!(
        watch.observe(&baking, Duration::from_secs(3600)).outcome,
        Some(NativeOutcome::Stop(reason)) if reason.contains("at stage BAKE_TIME")
    ));
}

#[test]
fn a_missing_deployment_names_the_failure_reason() {
    let body = json!({"serviceDeployments": [], "failures": [{"arn": ARN, "reason": "MISSING"}]});
    let error = parse_describe(&body, ARN).expect_err("missing");
    assert!(
        error.to_string().ends_with(&format!("{ARN}: MISSING")),
        "{error}"
    );
    assert!(parse_list(&json!({})).is_err());
}

#[test]
fn a_bake_time_longer_than_the_timeout_is_said_up_front() {
    let mut short = config();
    short.timeout = Duration::from_secs(300);
    let mut watch = NativeWatch::new([], Duration::ZERO, short);
    let body = parsed(service_deployment(ARN, "IN_PROGRESS", "SCALE_UP", 0, 2));
    let step = watch.observe(&body, Duration::ZERO);
    assert!(
        step.log
            .iter()
            .any(|l| l.contains("bake time (10 min) is not shorter than timeout (5m)")),
        "{:?}",
        step.log
    );
    assert!(
        !watch
            .observe(&body, Duration::from_secs(1))
            .log
            .iter()
            .any(|l| l.contains("bake"))
    );
}
