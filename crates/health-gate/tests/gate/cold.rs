//! The cold request after readiness: DNS, connect, TLS, TTFB and total, each timed on its own,
//! against real local servers that delay their first byte by a known amount.

use std::time::Duration;

use test_support::http_server::{HttpServer, Reply};
use test_support::tls::TestCa;

use crate::{only, run_yaml};

/// The first byte of every reply after the readiness attempt (the cold request) is this late.
const DELAY: Duration = Duration::from_millis(250);
const DELAY_MS: f64 = 250.0;

fn gate(url: &str, extra: &str) -> String {
    format!(
        "checks:\n  - name: api\n    attempt_timeout: 5s\n    http: {{ url: '{url}' {extra} }}\n    readiness: {{ interval: 20ms, deadline: 10s }}\n"
    )
}

fn slow_after_ready(request: &test_support::http_server::Request) -> Reply {
    if request.index == 0 {
        Reply::text(200, "ok")
    } else {
        Reply::text(200, "ok").after(DELAY)
    }
}

#[test]
fn a_plain_http_cold_request_puts_a_slow_first_byte_in_ttfb() {
    let server = HttpServer::start(slow_after_ready);
    let report = run_yaml(&gate(&server.url("/health"), ""));
    let check = only(&report);
    assert!(check.passed, "{check:?}");
    let cold = check.cold.clone().expect("an http check is timed");
    assert_eq!(cold.error, None, "{cold:?}");
    assert_eq!(cold.dns_ms, None, "an IP address needs no lookup");
    assert_eq!(cold.tls_ms, None, "plain http");
    assert_eq!(cold.protocol, Some("http/1.1"));
    assert_eq!(cold.status, Some(200));
    assert_eq!(cold.address, Some(server.addr()));
    let (connect, ttfb, total) = (
        cold.connect_ms.expect("connect"),
        cold.ttfb_ms.expect("ttfb"),
        cold.total_ms.expect("total"),
    );
    assert!(ttfb >= DELAY_MS, "{cold:?}");
    assert!(connect < DELAY_MS, "the delay is not in connect: {cold:?}");
    assert!(total >= connect + ttfb, "{cold:?}");
    assert_eq!(
        server.request_count(),
        2,
        "one readiness attempt, one cold request"
    );
}

#[test]
fn an_https_cold_request_times_dns_connect_and_tls_separately() {
    let ca = TestCa::new("health-gate cold CA");
    let cert = ca.issue("server", &["localhost"]);
    let server = HttpServer::start_tls(ca.server_config(&cert, false), slow_after_ready);
    let ca_file = ca.cert_file().display().to_string();
    // `localhost` is looked up (from the hosts file, never a DNS server); when it also names
    // ::1 first, that refusal is part of connect, and 127.0.0.1 answers.
    let report = run_yaml(&gate(
        &server.localhost_url("/health"),
        &format!(", tls: {{ ca_file: '{ca_file}' }}"),
    ));
    let check = only(&report);
    assert!(check.passed, "{check:?}");
    let cold = check.cold.clone().expect("timed");
    assert_eq!(cold.error, None, "{cold:?}");
    assert!(cold.dns_ms.is_some(), "a host name is looked up: {cold:?}");
    let tls = cold.tls_ms.expect("https has a TLS handshake");
    assert!(tls > 0.0 && tls < DELAY_MS, "{cold:?}");
    assert!(cold.ttfb_ms.expect("ttfb") >= DELAY_MS, "{cold:?}");
    assert_eq!(cold.address, Some(server.addr()));
    let sum = cold.dns_ms.unwrap_or(0.0) + cold.connect_ms.expect("connect") + tls;
    assert!(cold.total_ms.expect("total") >= sum + DELAY_MS, "{cold:?}");
}

#[test]
fn a_tcp_check_times_the_connect_only() {
    let server = HttpServer::start(|_| Reply::text(200, "ok"));
    let report = run_yaml(&format!(
        "checks:\n  - name: port\n    tcp: {{ addr: '{}' }}\n    readiness: {{ deadline: 5s }}\n",
        server.addr()
    ));
    let cold = only(&report).cold.clone().expect("tcp is timed");
    assert_eq!(cold.protocol, Some("tcp"));
    assert!(
        cold.connect_ms.is_some() && cold.total_ms.is_some(),
        "{cold:?}"
    );
    assert_eq!((cold.tls_ms, cold.ttfb_ms, cold.status), (None, None, None));
}
