use std::time::{Duration, Instant};

use health_gate::failure::FailureKind;
use health_gate::report::Decision;
use test_support::http_server::{Blackhole, HttpServer, Reply};
use test_support::tls::TestCa;

use crate::{last_failure, last_kind, only, run_yaml};

/// A one-check gate; `readiness` adds keys to the readiness mapping (default deadline 2s).
fn http_gate(url: &str, extra: &str, readiness: &str) -> String {
    let deadline = if readiness.contains("deadline") {
        ""
    } else {
        ", deadline: 2s"
    };
    format!(
        "checks:\n  - name: api\n    attempt_timeout: 300ms\n    connect_timeout: 200ms\n    http: {{ url: '{url}' {extra} }}\n    readiness: {{ interval: 20ms {deadline} {readiness} }}\n"
    )
}

#[test]
fn waits_through_503s_then_passes() {
    let server = HttpServer::start(|r| {
        if r.index < 3 {
            Reply::text(503, "starting")
        } else {
            Reply::text(200, "ok")
        }
    });
    let report = run_yaml(&http_gate(&server.url("/health"), "", ""));
    let check = only(&report);
    assert!(check.passed, "{check:?}");
    assert_eq!(report.decision, Decision::Go);
    assert_eq!(check.readiness.attempts, 4);
    assert_eq!(check.readiness.failures.get(&FailureKind::Status), Some(&3));
    let after = check.readiness.ready_after.expect("bracket");
    assert!(after.not_before.expect("had failures") < after.by);
}

#[test]
fn a_404_during_rollout_is_not_ready_yet_rather_than_fatal() {
    let server = HttpServer::start(|r| {
        if r.index < 2 {
            Reply::text(404, "no route")
        } else {
            Reply::text(200, "ok")
        }
    });
    let check = only(&run_yaml(&http_gate(&server.url("/"), "", ""))).clone();
    assert!(check.passed);
    assert_eq!(check.readiness.attempts, 3);
}

#[test]
fn flapping_never_passes_two_consecutive_successes() {
    let server = HttpServer::start(|r| {
        if r.index % 2 == 0 {
            Reply::text(200, "ok")
        } else {
            Reply::text(503, "down")
        }
    });
    let report = run_yaml(&http_gate(
        &server.url("/"),
        "",
        ", success_threshold: 2, deadline: 500ms",
    ));
    let check = only(&report);
    assert!(!check.passed);
    assert_eq!(report.decision, Decision::Rollback);
    assert_eq!(last_kind(check), Some(FailureKind::Status));
    assert!(
        check.failure_reason().contains("not ready by the deadline"),
        "{}",
        check.failure_reason()
    );
}

#[test]
fn a_server_that_never_answers_is_cut_at_the_attempt_timeout_and_the_deadline_holds() {
    let server = HttpServer::start(|_| Reply::Hang);
    let started = Instant::now();
    let report = run_yaml(&http_gate(&server.url("/"), "", ", deadline: 800ms"));
    let check = only(&report);
    assert!(!check.passed);
    assert_eq!(last_kind(check), Some(FailureKind::Timeout));
    assert!(
        check.readiness.attempts >= 2,
        "attempts were cut, not stuck: {check:?}"
    );
    // Preemptive deadline: the gate does not outlive it by more than scheduling noise.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_trickling_body_fails_at_the_attempt_timeout() {
    let server = HttpServer::start(|_| Reply::Stream {
        status: 200,
        headers: vec![],
        chunks: vec![b"x".to_vec(); 50],
        every: Duration::from_millis(100),
        hold_open: false,
    });
    let report = run_yaml(&http_gate(&server.url("/"), "", ", deadline: 700ms"));
    assert_eq!(last_kind(only(&report)), Some(FailureKind::Timeout));
}

#[test]
fn a_huge_body_stops_at_max_body() {
    let server = HttpServer::start(|_| Reply::Huge { size: 1 << 30 });
    let report = run_yaml(&http_gate(
        &server.url("/"),
        ", max_body: 64KiB, expect: { body_contains: [ok] }",
        ", deadline: 500ms",
    ));
    let check = only(&report);
    assert_eq!(
        last_kind(check),
        Some(FailureKind::BodyTooLarge),
        "{check:?}"
    );
    assert!(
        check
            .readiness
            .last_failure
            .as_ref()
            .expect("failure")
            .detail
            .contains("65536")
    );
}

#[test]
fn json_assertions_decide_on_the_body() {
    let server =
        HttpServer::start(|_| Reply::json(200, r#"{"status":"degraded","checks":{"db":"ok"}}"#));
    let failing = run_yaml(&http_gate(
        &server.url("/"),
        ", expect: { content_type: application/json, json: [{ path: '$.status', equals: ok }] }",
        ", deadline: 300ms",
    ));
    let check = only(&failing);
    assert_eq!(last_kind(check), Some(FailureKind::Assertion));
    assert!(
        check
            .failure_reason()
            .contains("$.status: is \"degraded\", expected \"ok\""),
        "{}",
        check.failure_reason()
    );
    let passing = run_yaml(&http_gate(
        &server.url("/"),
        ", expect: { json: [{ path: '$.status', in: [ok, degraded] }, { path: '$.checks.db', equals: ok }] }",
        "",
    ));
    assert!(only(&passing).passed);
}

#[test]
fn refused_and_blackholed_ports_are_told_apart() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let blackhole = Blackhole::start();
    let report = run_yaml(&format!(
        "defaults: {{ connect_timeout: 200ms, attempt_timeout: 400ms, readiness: {{ interval: 50ms, deadline: 600ms }} }}\n\
         checks:\n  - name: refused\n    tcp: {{ addr: '{closed_addr}' }}\n  - name: blackholed\n    tcp: {{ addr: '{}' }}\n  - name: http-blackholed\n    http: {{ url: 'http://{}/' }}\n",
        blackhole.addr(),
        blackhole.addr()
    ));
    let kinds: Vec<_> = report
        .checks
        .iter()
        .map(|c| (c.name.as_str(), last_kind(c)))
        .collect();
    assert!(
        kinds.contains(&("refused", Some(FailureKind::Refused))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("blackholed", Some(FailureKind::ConnectTimeout))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("http-blackholed", Some(FailureKind::ConnectTimeout))),
        "{kinds:?}"
    );
}

#[test]
fn a_name_that_cannot_resolve_is_a_dns_failure() {
    // A 64-character label is rejected by the resolver library itself, so no query leaves the
    // machine (this sandbox's resolver is not on loopback).
    let host = format!("{}.example", "a".repeat(64));
    let report = run_yaml(&http_gate(
        &format!("http://{host}/"),
        "",
        ", deadline: 300ms",
    ));
    assert_eq!(
        last_kind(only(&report)),
        Some(FailureKind::Dns),
        "{:?}",
        only(&report).readiness.last_failure
    );
}

#[test]
fn redirects_not_followed_fail_on_status_and_name_the_location() {
    let server = HttpServer::start(|_| Reply::redirect(302, "/login"));
    let report = run_yaml(&http_gate(&server.url("/"), "", ", deadline: 300ms"));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::Status);
    assert!(
        failure.detail.contains("302 (redirect to /login)"),
        "{}",
        failure.detail
    );
}

#[test]
fn redirect_loops_and_cross_host_redirects_are_refused() {
    let looping = HttpServer::start(|r| Reply::redirect(302, &format!("/loop{}", r.index)));
    let report = run_yaml(&http_gate(
        &looping.url("/"),
        ", redirects: { follow: true, max: 3 }",
        ", deadline: 300ms",
    ));
    assert_eq!(last_kind(only(&report)), Some(FailureKind::RedirectLoop));

    let port = looping.addr().port();
    let cross =
        HttpServer::start(move |_| Reply::redirect(302, &format!("http://localhost:{port}/login")));
    let report = run_yaml(&http_gate(
        &cross.url("/"),
        ", redirects: { follow: true }",
        ", deadline: 300ms",
    ));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::RedirectLoop);
    assert!(
        failure.detail.contains("another host"),
        "{}",
        failure.detail
    );
}

#[test]
fn tls_is_verified_by_default_and_each_failure_is_classified() {
    let ca = TestCa::new("health-gate test CA");
    let server_cert = ca.issue("server", &["localhost"]);
    let server = HttpServer::start_tls(ca.server_config(&server_cert, false), |_| {
        Reply::text(200, "ok")
    });
    let ca_file = ca.cert_file().display().to_string();

    let trusted = run_yaml(&http_gate(
        &server.localhost_url("/"),
        &format!(", tls: {{ ca_file: '{ca_file}' }}"),
        "",
    ));
    assert!(only(&trusted).passed, "{:?}", only(&trusted));

    let unknown_ca = run_yaml(&http_gate(
        &server.localhost_url("/"),
        "",
        ", deadline: 300ms",
    ));
    assert_eq!(
        last_kind(only(&unknown_ca)),
        Some(FailureKind::TlsVerify),
        "{:?}",
        only(&unknown_ca).readiness.last_failure
    );

    let wrong_name = run_yaml(&http_gate(
        &server.url("/"),
        &format!(", tls: {{ ca_file: '{ca_file}' }}"),
        ", deadline: 300ms",
    ));
    assert_eq!(last_kind(only(&wrong_name)), Some(FailureKind::TlsVerify));

    let insecure = run_yaml(&http_gate(&server.url("/"), ", tls: { verify: false }", ""));
    assert!(only(&insecure).passed);

    // connect_to keeps the URL's name for TLS while dialing the address.
    let pinned = run_yaml(&http_gate(
        &format!("https://localhost:{}/", server.addr().port()),
        &format!(
            ", connect_to: '{}', tls: {{ ca_file: '{ca_file}' }}",
            server.addr()
        ),
        "",
    ));
    assert!(only(&pinned).passed);
}

#[test]
fn server_name_verifies_an_ip_target_against_the_certificate_name() {
    let ca = TestCa::new("server-name CA");
    let cert = ca.issue("server", &["api.internal"]);
    let server = HttpServer::start_tls(ca.server_config(&cert, false), |_| Reply::text(200, "ok"));
    let ca_file = ca.cert_file().display().to_string();
    // Dialing the IP, the certificate (for api.internal only) is verified against the name.
    let named = run_yaml(&http_gate(
        &server.url("/"),
        &format!(", tls: {{ ca_file: '{ca_file}', server_name: api.internal }}"),
        "",
    ));
    assert!(
        only(&named).passed,
        "{:?}",
        only(&named).readiness.last_failure
    );
    let cold = only(&named).cold.clone().expect("cold request");
    assert!(cold.tls_ms.is_some() && cold.error.is_none(), "{cold:?}");
    // Any other name still fails verification: the override is no way around checking.
    let wrong = run_yaml(&http_gate(
        &server.url("/"),
        &format!(", tls: {{ ca_file: '{ca_file}', server_name: other.internal }}"),
        ", deadline: 300ms",
    ));
    assert_eq!(last_kind(only(&wrong)), Some(FailureKind::TlsVerify));
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let ca = TestCa::new("mtls CA");
    let server_cert = ca.issue("server", &["localhost"]);
    let client_cert = ca.issue("client", &["client.local"]);
    let server = HttpServer::start_tls(ca.server_config(&server_cert, true), |_| {
        Reply::text(200, "ok")
    });
    let ca_file = ca.cert_file().display().to_string();
    let without = run_yaml(&http_gate(
        &server.localhost_url("/"),
        &format!(", tls: {{ ca_file: '{ca_file}' }}"),
        ", deadline: 300ms",
    ));
    let kind = last_kind(only(&without));
    assert!(
        matches!(kind, Some(FailureKind::TlsHandshake | FailureKind::Io)),
        "{:?}",
        only(&without).readiness.last_failure
    );
    let with = run_yaml(&http_gate(
        &server.localhost_url("/"),
        &format!(
            ", tls: {{ ca_file: '{ca_file}', client_cert: '{}', client_key: '{}' }}",
            client_cert.cert_file.display(),
            client_cert.key_file.display()
        ),
        "",
    ));
    assert!(only(&with).passed, "{:?}", only(&with));
}

fn observed_failures(fail: fn(u64) -> bool) -> (u64, u64, bool) {
    // Request 0 is the readiness attempt, 1 the cold request; 2..=201 are the burst.
    let server = HttpServer::start(move |r| {
        if r.index > 1 && fail(r.index) {
            Reply::text(500, "boom")
        } else {
            Reply::text(200, "ok")
        }
    });
    let report = run_yaml(&format!(
        "checks:\n  - name: api\n    http: {{ url: '{}' }}\n    observe: {{ requests: 200, concurrency: 4, warmup: 0, abort_early: false, thresholds: {{ error_rate: '<= 5%' }} }}\n",
        server.url("/")
    ));
    let check = only(&report);
    let observation = check.observation.as_ref().expect("observed");
    assert_eq!(server.request_count(), 202);
    (observation.failed, observation.counted, check.passed)
}

#[test]
fn four_percent_failures_pass_and_six_percent_fail_a_five_percent_limit() {
    assert_eq!(observed_failures(|i| i % 25 == 0), (8, 200, true));
    assert_eq!(
        observed_failures(|i| [0, 17, 34].contains(&(i % 50))),
        (12, 200, false)
    );
}

#[test]
fn latency_thresholds_hold_against_a_real_server() {
    let server = HttpServer::start(|_| Reply::text(200, "ok"));
    let report = run_yaml(&format!(
        "checks:\n  - name: api\n    http: {{ url: '{}' }}\n    observe: {{ requests: 50, concurrency: 5, thresholds: ['p(95)<1000', 'max<5000', 'rate<0.01'] }}\n",
        server.url("/")
    ));
    let check = only(&report);
    assert!(check.passed, "{check:?}");
    let observation = check.observation.as_ref().expect("observed");
    assert_eq!((observation.counted, observation.warmup), (49, 1));
    assert!(observation.latency_ms.p95 > 0.0);

    let slow = HttpServer::start(|_| Reply::Stream {
        status: 200,
        headers: vec![],
        chunks: vec![b"ok".to_vec()],
        every: Duration::from_millis(30),
        hold_open: false,
    });
    let report = run_yaml(&format!(
        "checks:\n  - name: api\n    http: {{ url: '{}' }}\n    observe: {{ requests: 10, concurrency: 2, warmup: 0, thresholds: ['p(50)<10'] }}\n",
        slow.url("/")
    ));
    let check = only(&report);
    assert!(!check.passed);
    assert!(
        check.failure_reason().contains("p50 < 10ms failed"),
        "{}",
        check.failure_reason()
    );
}

#[test]
fn the_burst_judges_bodies_like_readiness_and_survives_closed_keep_alive_connections() {
    // 0: readiness, 1: cold request, 2..=41: the burst. Every 10th burst reply has the wrong
    // body, every 7th is larger than max_body, and every reply asks to close the connection,
    // so each worker redials before every request.
    let server = HttpServer::start(|r| {
        let reply = if r.index > 1 && r.index % 10 == 0 {
            Reply::text(200, "degraded")
        } else if r.index > 1 && r.index % 7 == 0 {
            Reply::text(200, &"ok".repeat(100))
        } else {
            Reply::text(200, "ok")
        };
        reply.with_header("connection", "close")
    });
    let report = run_yaml(&format!(
        "checks:\n  - name: api\n    http: {{ url: '{}', expect: {{ body_contains: [ok] }}, max_body: '100' }}\n    observe: {{ requests: 40, concurrency: 3, warmup: 0, abort_early: false, thresholds: {{ error_rate: '<= 50%' }} }}\n",
        server.url("/")
    ));
    let check = only(&report);
    let observation = check.observation.as_ref().expect("observed");
    // Multiples of 10 in 2..=41: 4; multiples of 7 that are not: 7, 14, 21, 28, 35 = 5.
    assert_eq!(
        observation.failures.get(&FailureKind::Assertion),
        Some(&4),
        "{observation:?}"
    );
    assert_eq!(
        observation.failures.get(&FailureKind::BodyTooLarge),
        Some(&5)
    );
    assert_eq!((observation.counted, observation.failed), (40, 9));
    assert_eq!(server.request_count(), 42);
    assert!(check.passed, "{check:?}");
}
