use std::time::Duration;

use super::*;
use crate::failure::FailureKind;

fn resolve(yaml: &str) -> Result<Gate, Vec<ConfigError>> {
    GateFile::parse(yaml).expect("parses").resolve()
}

#[test]
fn resolves_a_full_gate_with_defaults_merged() {
    let gate = resolve(
        r#"
defaults:
  attempt_timeout: 3s
  headers: { User-Agent: health-gate }
  readiness: { interval: 200ms, success_threshold: 2 }
  observe: { requests: 20, concurrency: 2, thresholds: { error_rate: "<= 5%" } }
checks:
  - name: api
    http:
      url: http://127.0.0.1:8080/api/health
      expect: { status: [200, "300-304"], json: [{ path: "$.status", equals: "ok" }] }
    observe: { thresholds: ["p(95)<200", "rate<0.01"] }
  - name: grpc
    grpc: { addr: "127.0.0.1:50051", services: ["", "memory.v1.Memory"] }
    readiness: { deadline: 10s }
    observe: none
  - name: port
    tcp: { addr: "localhost:5432" }
gate: { require: { quorum: 2 } }
"#,
    )
    .expect("valid");
    assert_eq!(gate.require, Require::Quorum(2));
    let api = &gate.checks[0];
    assert_eq!(api.attempt_timeout, Duration::from_secs(3));
    assert_eq!(api.readiness.interval, Duration::from_millis(200));
    assert_eq!(api.readiness.success_threshold, 2);
    let ProbeSpec::Http(http) = &api.probe else {
        panic!("http")
    };
    assert!(
        http.statuses.contains(302) && http.statuses.contains(200) && !http.statuses.contains(201)
    );
    assert_eq!(
        http.headers,
        [(
            "User-Agent".to_owned(),
            HeaderValue::Literal("health-gate".into())
        )]
    );
    let observe = api.observe.as_ref().expect("inherited observation");
    assert_eq!(observe.requests, Some(20));
    assert_eq!(observe.error_rate.to_string(), "error rate < 1%");
    assert_eq!(observe.latency.len(), 1);
    assert!(gate.checks[1].observe.is_none(), "observe: none");
    assert_eq!(gate.checks[1].readiness.deadline, Duration::from_secs(10));
    assert!(
        gate.checks[1]
            .readiness
            .fatal
            .contains(&FailureKind::GrpcUnimplemented)
    );
    assert!(gate.checks[2].observe.is_some(), "defaults.observe applies");
}

#[test]
fn reports_every_error_at_once_with_field_paths() {
    let errors = resolve(
        r#"
checks:
  - name: a
    http: { url: "ftp://x", max_body: 12XB, expect: { status: [700] } }
  - name: a
    tcp: { addr: nohost }
  - name: both
    tcp: { addr: "h:1" }
    grpc: { addr: "h:2" }
  - name: thresholds
    tcp: { addr: "h:1" }
    observe: { requests: 1, thresholds: { error_rate: "> 5%", latency: { p95: "fast" } } }
gate: { require: most }
"#,
    )
    .expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for expected in [
        "checks[0].http.url",
        "checks[0].http.expect.status",
        "checks[0].http.max_body",
        "checks[1].name",
        "checks[1].tcp.addr",
        "checks[2]",
        "checks[3].observe.requests",
        "checks[3].observe.thresholds",
        "gate.require",
    ] {
        assert!(
            fields.contains(&expected),
            "missing {expected} in {fields:?}"
        );
    }
    let duplicate = errors
        .iter()
        .find(|e| e.field == "checks[1].name")
        .expect("dup");
    assert!(duplicate.message.contains("duplicate check name `a`"));
}

#[test]
fn unknown_keys_and_bad_durations_fail_parsing_with_a_location() {
    let error = GateFile::parse("checks:\n  - name: a\n    htp: {}\n").expect_err("unknown key");
    assert!(error.to_string().contains("unknown field `htp`"), "{error}");
    assert!(error.location().is_some());
    let error = GateFile::parse("defaults:\n  attempt_timeout: 5\n").expect_err("no unit");
    assert!(error.to_string().contains("with a unit"), "{error}");
}

#[test]
fn headers_from_env_and_invalid_values() {
    let gate = resolve("checks:\n  - name: a\n    http: { url: 'http://h/', headers: { Authorization: 'env:API_TOKEN' } }\n").expect("valid");
    let ProbeSpec::Http(http) = &gate.checks[0].probe else {
        panic!("http")
    };
    assert_eq!(http.headers[0].1, HeaderValue::Env("API_TOKEN".into()));
    let errors = resolve(
        "checks:\n  - name: a\n    http: { url: 'http://h/', headers: { 'Bad Name': x } }\n",
    )
    .expect_err("bad header");
    assert!(errors[0].message.contains("not a valid header name"));
}

#[test]
fn cloudwatch_rules_are_validated_field_by_field() {
    let errors = resolve(
        r#"
checks:
  - name: alb
    metrics:
      cloudwatch: { region: "", endpoint_url: "ftp://x", period: 90s }
      headers: { Authorization: x }
      rules:
        - metric: { namespace: "", name: TargetResponseTime, stat: p101, unit: Secs }
          below: 1
        - expr: up
          below: 1
  - name: short-window
    metrics:
      cloudwatch: { period: 60s }
      window: 30s
      rules:
        - metric: { namespace: AWS/ECS, name: CPUUtilization, stat: Average }
          below: 80
  - name: prometheus-with-metric
    metrics:
      prometheus: "http://127.0.0.1:9090"
      rules:
        - metric: { namespace: AWS/ECS, name: CPUUtilization, stat: Average }
          below: 80
"#,
    )
    .expect_err("invalid");
    let found = |field: &str, text: &str| {
        errors
            .iter()
            .any(|e| e.field == field && e.message.contains(text))
    };
    for (field, text) in [
        ("checks[0].metrics.cloudwatch.period", "multiple of 60s"),
        ("checks[0].metrics.cloudwatch.region", "empty"),
        ("checks[0].metrics.cloudwatch.endpoint_url", "http(s) URL"),
        ("checks[0].metrics", "`headers` and `max_body`"),
        ("checks[0].metrics.rules[0].metric.namespace", "1 to 255"),
        (
            "checks[0].metrics.rules[0].metric.stat",
            "`p101` is not a statistic",
        ),
        (
            "checks[0].metrics.rules[0].metric.unit",
            "`Secs` is not a CloudWatch unit",
        ),
        ("checks[0].metrics.rules[1]", "has a `metric`"),
        (
            "checks[1].metrics.cloudwatch.period",
            "shorter than one period",
        ),
        ("checks[2].metrics.rules[0]", "has an `expr`"),
    ] {
        assert!(found(field, text), "no `{text}` at {field} in {errors:#?}");
    }
}

#[test]
fn a_cloudwatch_rule_is_shown_with_its_dimensions_and_statistic() {
    let gate = resolve(
        r#"
checks:
  - name: alb
    metrics:
      cloudwatch: { region: eu-west-1 }
      window: 5m
      rules:
        - metric:
            namespace: AWS/ApplicationELB
            name: TargetResponseTime
            dimensions: { TargetGroup: targetgroup/web/1, LoadBalancer: app/web/2 }
            stat: p99
          below_baseline: 2x
"#,
    )
    .expect("valid");
    let ProbeSpec::Metrics(spec) = &gate.checks[0].probe else {
        panic!("a metrics check")
    };
    assert_eq!(
        spec.rules[0].text,
        r#"AWS/ApplicationELB TargetResponseTime{LoadBalancer="app/web/2",TargetGroup="targetgroup/web/1"} p99"#
    );
    assert_eq!(spec.source_url(), "cloudwatch eu-west-1");
}
