//! Issue 25: hostile peers and inputs. Every read of a peer's response is bounded (an endless
//! `/metrics` body or PromQL answer fails the check, never the process); a gate never passes
//! against a backend other than the configured one (connect_to, proxies, TLS names, each
//! against a listener that is *not* the intended one); no password from a URL in the report
//! or the logs; an unset `env:` header names the gate file and check; gate files are bounded
//! in size and depth.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use health_gate::failure::FailureKind;
use test_support::http_server::{HttpServer, Reply};
use test_support::tls::TestCa;
use test_support::{run, tool_command};

use crate::{last_failure, only, run_yaml};

fn binary() -> Command {
    tool_command(Path::new(env!("CARGO_BIN_EXE_health-gate")))
}

fn endless_metrics() -> HttpServer {
    HttpServer::start(|_| Reply::Endless {
        status: 200,
        headers: vec![("content-type".into(), "text/plain; version=0.0.4".into())],
        pattern: b"http_requests_total{code=\"200\"} 1\n".to_vec(),
    })
}

#[test]
fn an_endless_metrics_body_fails_the_check_with_a_clear_reason() {
    let server = endless_metrics();
    let report = run_yaml(&format!(
        "checks:\n  - name: slo\n    attempt_timeout: 10s\n    metrics: {{ scrape: '{}', window: 100ms, rules: [{{ expr: http_requests_total, below: 1 }}] }}\n    readiness: {{ interval: 50ms, deadline: 1s }}\n",
        server.url("/metrics")
    ));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::BodyTooLarge, "{failure:?}");
    assert_eq!(
        failure.detail,
        "scrape body exceeded max_body (16777216 bytes); stopped reading (raise `metrics.max_body` if the endpoint is really that large)"
    );
    assert!(!only(&report).passed);
    // The limit is configurable.
    let report = run_yaml(&format!(
        "checks:\n  - name: slo\n    metrics: {{ scrape: '{}', max_body: 64KiB, window: 100ms, rules: [{{ expr: http_requests_total, below: 1 }}] }}\n    readiness: {{ interval: 50ms, deadline: 300ms }}\n",
        server.url("/metrics")
    ));
    assert!(
        last_failure(&report)
            .detail
            .starts_with("scrape body exceeded max_body (65536 bytes)"),
        "{:?}",
        last_failure(&report)
    );
}

#[test]
fn an_endless_promql_answer_fails_the_check_with_a_clear_reason() {
    let server = HttpServer::start(|_| Reply::Endless {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        pattern: b"[".to_vec(),
    });
    let report = run_yaml(&format!(
        "checks:\n  - name: slo\n    attempt_timeout: 10s\n    metrics: {{ prometheus: '{}', max_body: 1MiB, window: 100ms, rules: [{{ expr: 'up', below: 1 }}] }}\n    readiness: {{ interval: 50ms, deadline: 1s }}\n",
        server.base_url()
    ));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::BodyTooLarge, "{failure:?}");
    assert!(
        failure
            .detail
            .starts_with("query response body exceeded max_body (1048576 bytes)"),
        "{failure:?}"
    );
}

#[test]
fn an_sse_event_that_never_completes_is_bounded() {
    // One `data:` line that never ends: before, the parser buffered it until the deadline.
    let server = HttpServer::start(|_| Reply::Endless {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        pattern: b"data: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
    });
    let started = Instant::now();
    let report = run_yaml(&format!(
        "checks:\n  - name: stream\n    attempt_timeout: 20s\n    sse: {{ url: '{}' }}\n    readiness: {{ interval: 50ms, deadline: 20s, fatal: [body_too_large] }}\n",
        server.url("/events")
    ));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::BodyTooLarge, "{failure:?}");
    assert_eq!(
        failure.detail,
        "an event grew past 1048576 bytes without completing (no blank line); stopped reading"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Before the cap, the whole body was read into one string: with a long attempt timeout the
/// process died on an allocation (exit 134, "memory allocation failed") instead of deciding.
/// Here the binary runs under a 1 GiB address-space limit (two malloc arenas keep glibc's
/// reservations small); `body_too_large` is made fatal so the gate decides at once.
#[test]
fn the_binary_survives_an_endless_metrics_body_under_a_memory_limit() {
    let server = endless_metrics();
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("gate.yaml");
    std::fs::write(
        &gate,
        format!(
            "checks:\n  - name: slo\n    attempt_timeout: 60s\n    metrics: {{ scrape: '{}', window: 100ms, rules: [{{ expr: http_requests_total, below: 1 }}] }}\n    readiness: {{ interval: 50ms, deadline: 60s, fatal: [body_too_large] }}\n",
            server.url("/metrics")
        ),
    )
    .expect("write");
    let started = Instant::now();
    let out = run(tool_command("sh")
        .env("MALLOC_ARENA_MAX", "2")
        .args(["-c", "ulimit -v 1048576 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_health-gate"))
        .arg("--gate-file")
        .arg(&gate));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.stderr.contains("scrape body exceeded max_body"),
        "{}",
        out.stderr
    );
}

/// A gate file with one http check (short deadlines).
fn http_gate(http: &str) -> String {
    format!(
        "checks:\n  - name: api\n    attempt_timeout: 500ms\n    connect_timeout: 300ms\n    http: {{ {http} }}\n    readiness: {{ interval: 20ms, deadline: 1s }}\n"
    )
}

#[test]
fn connect_to_and_a_different_url_port_are_refused_not_silently_ignored() {
    // The URL's port answers 200; nothing listens where connect_to points. Before, the gate
    // dialled the URL's port and decided `go`.
    let intended_elsewhere = HttpServer::start(|_| Reply::text(200, "ok"));
    let nothing = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = nothing.local_addr().expect("addr");
    drop(nothing);
    let out = run(binary().args([
        "--url",
        &format!("http://localhost:{}/", intended_elsewhere.addr().port()),
        "--connect-to",
        &closed.to_string(),
        "--interval",
        "50ms",
        "--deadline",
        "1s",
    ]));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "`{closed}` and the URL's port {} disagree",
            intended_elsewhere.addr().port()
        )),
        "{}",
        out.stderr
    );
    assert_eq!(intended_elsewhere.request_count(), 0);
}

#[test]
fn connect_to_reaches_exactly_its_address() {
    // The URL names no port: connect_to decides both address and port, for every phase
    // (readiness, the cold request, observation).
    let configured = HttpServer::start(|_| Reply::text(503, "the configured backend is down"));
    let report = run_yaml(&http_gate(&format!(
        "url: 'http://localhost/', connect_to: '{}'",
        configured.addr()
    )));
    assert_eq!(last_failure(&report).kind, FailureKind::Status);
    assert!(configured.request_count() > 0);
    let healthy = HttpServer::start(|_| Reply::text(200, "ok"));
    let report = run_yaml(&format!(
        "checks:\n  - name: api\n    http: {{ url: 'http://localhost/', connect_to: '{}' }}\n    readiness: {{ interval: 20ms, deadline: 1s }}\n    observe: {{ requests: 5 }}\n",
        healthy.addr()
    ));
    assert!(only(&report).passed, "{:?}", only(&report));
    assert!(healthy.request_count() >= 6, "{}", healthy.request_count());
}

#[test]
fn the_environment_proxy_is_not_used_for_a_check_with_connect_to() {
    // A proxy from the environment would resolve the URL's host itself: the answer would come
    // from whatever the proxy reaches, not from connect_to.
    let impostor_proxy = HttpServer::start(|_| Reply::text(200, "proxied: all good"));
    let configured = HttpServer::start(|_| Reply::text(503, "down"));
    let out = run(binary()
        .env("HTTP_PROXY", impostor_proxy.base_url())
        .env("http_proxy", impostor_proxy.base_url())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .args([
            "--url",
            "http://intended.test/health",
            "--connect-to",
            &configured.addr().to_string(),
            "--interval",
            "50ms",
            "--deadline",
            "1s",
        ]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(impostor_proxy.request_count(), 0, "{out:?}");
    assert!(configured.request_count() > 0);
    let requests = configured.requests();
    assert_eq!(requests[0].header("host"), Some("intended.test"));
}

#[test]
fn connect_to_and_a_proxy_url_are_refused_together() {
    let gate = health_gate::config::GateFile::parse(&http_gate(
        "url: 'http://intended.test/', connect_to: '127.0.0.1:9', proxy: 'http://127.0.0.1:3128'",
    ))
    .expect("parses");
    let errors = gate.resolve().expect_err("ambiguous");
    assert_eq!(errors[0].field, "checks[0].http.connect_to");
    assert!(
        errors[0]
            .message
            .starts_with("`connect_to` and a proxy URL cannot be combined"),
        "{errors:?}"
    );
}

#[test]
fn a_tls_name_override_never_accepts_an_impostor_listener() {
    let ca = TestCa::new("the real CA");
    let genuine_cert = ca.issue("genuine", &["api.internal"]);
    let genuine = HttpServer::start_tls(ca.server_config(&genuine_cert, false), |_| {
        Reply::text(200, "ok")
    });
    // Same name, another CA: an impostor on another port.
    let other_ca = TestCa::new("an impostor CA");
    let impostor_cert = other_ca.issue("impostor", &["api.internal"]);
    let impostor = HttpServer::start_tls(other_ca.server_config(&impostor_cert, false), |_| {
        Reply::text(200, "ok")
    });
    let ca_file = ca.cert_file().display().to_string();
    for (http, passes) in [
        // connect_to the genuine server, name from the URL.
        (
            format!(
                "url: 'https://api.internal/', connect_to: '{}', tls: {{ ca_file: '{ca_file}' }}",
                genuine.addr()
            ),
            true,
        ),
        // connect_to the impostor: same name, certificate not from the trusted CA.
        (
            format!(
                "url: 'https://api.internal/', connect_to: '{}', tls: {{ ca_file: '{ca_file}' }}",
                impostor.addr()
            ),
            false,
        ),
        // server_name override while dialling the impostor's IP.
        (
            format!(
                "url: '{}', tls: {{ ca_file: '{ca_file}', server_name: api.internal }}",
                impostor.url("/")
            ),
            false,
        ),
    ] {
        let report = run_yaml(&http_gate(&http));
        assert_eq!(only(&report).passed, passes, "{http}: {:?}", only(&report));
        if !passes {
            assert_eq!(last_failure(&report).kind, FailureKind::TlsVerify, "{http}");
        }
    }
}

#[test]
fn a_url_password_never_reaches_the_report_or_the_logs() {
    let server = HttpServer::start(|request| {
        // user:s3cret-pw as basic auth.
        if request.header("authorization") == Some("Basic dXNlcjpzM2NyZXQtcHc=") {
            Reply::text(200, "ok")
        } else {
            Reply::text(401, "who are you")
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let report_file = dir.path().join("report.json");
    let out = run(binary()
        .args([
            "--url",
            &format!("http://user:s3cret-pw@{}/health", server.addr()),
            "--interval",
            "50ms",
            "--deadline",
            "1s",
            "--report-file",
        ])
        .arg(&report_file));
    assert_eq!(out.code, Some(0), "{out:?}");
    let report = std::fs::read_to_string(&report_file).expect("report");
    for text in [&out.stdout, &out.stderr, &report] {
        assert!(!text.contains("s3cret-pw"), "{text}");
    }
    assert!(
        report.contains(&format!("http://user:****@{}/health", server.addr())),
        "{report}"
    );
    // A malformed URL is echoed without its password too.
    let out = run(binary().args(["--url", "ftp://user:s3cret-pw@host/"]));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(!out.stderr.contains("s3cret-pw"), "{}", out.stderr);
    assert!(
        out.stderr.contains("ftp://user:****@host/"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unset_env_header_names_the_gate_file_and_the_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("post-deploy.gate.yaml");
    std::fs::write(
        &gate,
        "checks:\n  - name: first\n    tcp: { addr: '127.0.0.1:9' }\n  - name: api\n    http: { url: 'http://127.0.0.1:9/', headers: { Authorization: 'env:API_TOKEN_NOT_SET' } }\n",
    )
    .expect("write");
    let out = run(binary().arg("--gate-file").arg(&gate));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "error: check `api`: header or metadata `Authorization` reads $API_TOKEN_NOT_SET, which is not set; set it in the step's `env:` (e.g. from a secret)\n --> {}:5:67\n",
            gate.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("field: checks[1].http.headers.Authorization"),
        "{}",
        out.stderr
    );
    // Under GitHub Actions the annotation carries the file, line and column.
    let out = run(binary()
        .env("GITHUB_ACTIONS", "true")
        .arg("--gate-file")
        .arg(&gate));
    assert_eq!(out.code, Some(2), "{out:?}");
    let annotation = format!(
        "::error file={},line=5,col=67::check `api`: header or metadata `Authorization` reads",
        gate.display()
    );
    assert!(
        out.stdout.contains(&annotation) || out.stderr.contains(&annotation),
        "no {annotation} in {out:?}"
    );
}

#[test]
fn deep_or_huge_gate_files_are_refused_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |name: &str, text: String, expected: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let started = Instant::now();
        let out = run(binary().arg("--gate-file").arg(&path));
        let took = started.elapsed();
        assert_eq!(out.code, Some(2), "{name}: {out:?}");
        assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
        assert!(out.stderr.contains(expected), "{name}: {}", out.stderr);
    };
    check(
        "flow.yaml",
        "[".repeat(200 * 1024),
        "error: invalid gate file: YAML nested more than 64 levels deep",
    );
    check(
        "block.yaml",
        "checks:\n".to_owned() + &"- ".repeat(100_000) + "x\n",
        "error: invalid gate file: YAML nested more than 64 levels deep\n --> ",
    );
    check(
        "big.yaml",
        format!("# {}\n", "x".repeat(1023)).repeat(1025),
        "the file is larger than 1048576 bytes",
    );
}
