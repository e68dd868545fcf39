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
