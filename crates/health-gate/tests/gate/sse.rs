use std::time::Duration;

use health_gate::failure::FailureKind;
use test_support::http_server::{HttpServer, Reply};

use crate::{last_failure, last_kind, only, run_yaml};

fn stream(chunks: &[&str], every_ms: u64, hold_open: bool) -> Reply {
    Reply::Stream {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        chunks: chunks.iter().map(|c| c.as_bytes().to_vec()).collect(),
        every: Duration::from_millis(every_ms),
        hold_open,
    }
}

fn sse_gate(url: &str, extra: &str) -> String {
    format!(
        "checks:\n  - name: telemetry\n    attempt_timeout: 500ms\n    sse: {{ url: '{url}' {extra} }}\n    readiness: {{ interval: 50ms, deadline: 1500ms }}\n"
    )
}

#[test]
fn a_matching_event_after_heartbeats_passes_and_the_request_asks_for_a_stream() {
    let server = HttpServer::start(|_| {
        stream(
            &[
                ": ping\n\n",
                "event: log\ndata: x\n\n",
                "event: telemetry\ndata: {\"ts\": 1}\n\n",
            ],
            10,
            true,
        )
    });
    let report = run_yaml(&sse_gate(
        &server.url("/stream"),
        ", event: telemetry, json: [{ path: '$.ts', exists: true }]",
    ));
    assert!(only(&report).passed, "{:?}", only(&report));
    assert_eq!(
        server.requests()[0].header("accept"),
        Some("text/event-stream")
    );
}

#[test]
fn a_stream_that_opens_but_never_sends_fails_with_no_event() {
    let server = HttpServer::start(|_| stream(&[], 0, true));
    let report = run_yaml(&sse_gate(
        &server.url("/stream"),
        ", first_event_within: 200ms",
    ));
    let check = only(&report);
    assert_eq!(last_kind(check), Some(FailureKind::NoEvent));
    assert!(
        check.failure_reason().contains("0 heartbeat(s) seen"),
        "{}",
        check.failure_reason()
    );
}

#[test]
fn heartbeats_alone_do_not_count_unless_configured() {
    let server = HttpServer::start(|_| stream(&[": ping\n\n", ": ping\n\n"], 10, true));
    let report = run_yaml(&sse_gate(
        &server.url("/stream"),
        ", first_event_within: 300ms",
    ));
    let check = only(&report);
    assert_eq!(last_kind(check), Some(FailureKind::NoEvent));
    assert!(
        check.failure_reason().contains("2 heartbeat(s) seen"),
        "{}",
        check.failure_reason()
    );
    let report = run_yaml(&sse_gate(
        &server.url("/stream"),
        ", heartbeat_counts: true",
    ));
    assert!(only(&report).passed);
}

#[test]
fn an_spa_answering_html_fails_at_once_on_content_type() {
    let server = HttpServer::start(|_| Reply::Respond {
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        body: b"<html>app</html>".to_vec(),
    });
    let report = run_yaml(&sse_gate(&server.url("/stream"), ""));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::Assertion);
    assert!(
        failure
            .detail
            .contains("`text/html`, expected text/event-stream"),
        "{}",
        failure.detail
    );
}

#[test]
fn a_stream_that_stalls_between_events_is_detected() {
    let server = HttpServer::start(|_| stream(&["data: one\n\n"], 10, true));
    let report = run_yaml(&sse_gate(
        &server.url("/stream"),
        ", events: 3, idle_timeout: 200ms",
    ));
    let check = only(&report);
    assert_eq!(last_kind(check), Some(FailureKind::Stalled), "{check:?}");
    assert!(
        check.failure_reason().contains("1 of 3 events"),
        "{}",
        check.failure_reason()
    );
}

#[test]
fn a_stream_closed_by_the_server_is_an_io_failure_never_a_silent_reconnect() {
    let server = HttpServer::start(|_| stream(&["data: one\n\n"], 10, false));
    let report = run_yaml(&sse_gate(&server.url("/stream"), ", events: 2"));
    let check = only(&report);
    assert_eq!(last_kind(check), Some(FailureKind::Io));
    // Each readiness attempt is one stream: as many requests as attempts, no hidden retries.
    assert_eq!(server.request_count(), u64::from(check.readiness.attempts));
}
