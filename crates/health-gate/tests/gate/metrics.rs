//! Metrics checks: a local /metrics endpoint whose counters the test drives (one step per
//! scrape), and a real Prometheus server scraping it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use health_gate::baseline::CheckBaseline;
use health_gate::config::GateFile;
use health_gate::failure::FailureKind;
use health_gate::gate::{CheckInputs, build_report, run_gate};
use health_gate::report::Report;
use test_support::http_server::{HttpServer, Reply};

use crate::{last_failure, last_kind, only, run_yaml};

/// A /metrics endpoint: each scrape adds `requests` requests of which `errors` are 5xx, and
/// reports `memory` bytes resident.
fn exporter(requests: u64, errors: u64, memory: f64) -> HttpServer {
    let scrapes = Arc::new(Mutex::new(0u64));
    HttpServer::start(move |_| {
        let mut n = scrapes.lock().expect("lock");
        *n += 1;
        let total_errors = errors * *n;
        let ok = requests * *n - total_errors;
        Reply::Respond {
            status: 200,
            headers: vec![("content-type".into(), "text/plain; version=0.0.4".into())],
            body: format!(
                "# TYPE http_requests_total counter\nhttp_requests_total{{code=\"200\"}} {ok}\nhttp_requests_total{{code=\"503\"}} {total_errors}\n\
                 # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {memory}\n"
            )
            .into_bytes(),
        }
    })
}

const RATIO: &str = r#"increase(http_requests_total{code=~"5.."}) / increase(http_requests_total)"#;

fn metrics_gate(source: &str, rules: &str) -> String {
    format!(
        "checks:\n  - name: slo\n    metrics: {{ {source}, window: 100ms, rules: {rules} }}\n    readiness: {{ interval: 50ms, deadline: 1s }}\n"
    )
}

#[test]
fn error_ratio_over_the_window_four_percent_passes_six_fails() {
    for (errors, passes) in [(8, true), (12, false)] {
        let server = exporter(200, errors, 1e8);
        let report = run_yaml(&metrics_gate(
            &format!("scrape: '{}'", server.url("/metrics")),
            &format!("[{{ expr: '{RATIO}', below: 0.05 }}]"),
        ));
        let check = only(&report);
        assert_eq!(check.passed, passes, "{errors} errors per 200: {check:?}");
        let observation = check.observation.as_ref().expect("observed");
        assert_eq!(observation.thresholds[0].value, Some(errors as f64 / 200.0));
    }
}

#[test]
fn absolute_memory_limit_and_no_data() {
    let server = exporter(10, 0, 300.0 * 1024.0 * 1024.0);
    let url = server.url("/metrics");
    let report = run_yaml(&metrics_gate(
        &format!("scrape: '{url}'"),
        "[{ expr: process_resident_memory_bytes, below: 512Mi }]",
    ));
    assert!(only(&report).passed, "{:?}", only(&report));
    let report = run_yaml(&metrics_gate(
        &format!("scrape: '{url}'"),
        "[{ expr: process_resident_memory_bytes, below: 256Mi }]",
    ));
    assert!(!only(&report).passed);
    let report = run_yaml(&metrics_gate(
        &format!("scrape: '{url}'"),
        "[{ expr: 'increase(no_such_metric)', below: 1 }]",
    ));
    assert_eq!(
        last_kind(only(&report)),
        Some(FailureKind::NoData),
        "no data is a failure by default"
    );
}

fn run_with_baseline(yaml: &str, baseline: CheckBaseline) -> Report {
    let gate = GateFile::parse(yaml)
        .expect("parses")
        .resolve()
        .expect("valid");
    let mut inputs = CheckInputs::default();
    inputs.baselines.insert("slo".into(), baseline);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let progress = Arc::new(Mutex::new(vec![None; gate.checks.len()]));
    runtime.block_on(run_gate(&gate, &inputs, progress.clone()));
    build_report(&gate, &progress, false, Duration::ZERO)
}

#[test]
fn memory_doubling_against_the_baseline_fails() {
    let baseline = |target: String| CheckBaseline {
        target,
        requests: None,
        duration_ms: None,
        concurrency: 0,
        warmup: 0,
        samples: 0,
        latency_us: BTreeMap::new(),
        metrics: BTreeMap::from([("process_resident_memory_bytes".to_owned(), 1.0e8)]),
    };
    for (memory, passes) in [(1.5e8, true), (2.5e8, false)] {
        let server = exporter(10, 0, memory);
        let url = server.url("/metrics");
        let yaml = metrics_gate(
            &format!("scrape: '{url}'"),
            "[{ expr: process_resident_memory_bytes, below_baseline: 2x }]",
        );
        let report = run_with_baseline(&yaml, baseline(url.clone()));
        let check = only(&report);
        assert_eq!(check.passed, passes, "{memory}: {check:?}");
        assert!(
            check.observation.as_ref().expect("observed").thresholds[0]
                .detail
                .contains("baseline 100000000")
        );
    }
}

/// A real Prometheus server scraping `target` every 200 ms; its guard kills it on drop.
struct Prometheus {
    url: String,
    child: test_support::process::ChildGuard,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Self {
        let binary = test_support::require_program(
            "prometheus",
            "apt-get install prometheus (scripts/test installs it)",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config: PathBuf = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global: {{ scrape_interval: 200ms, evaluation_interval: 200ms }}\nscrape_configs:\n  - job_name: app\n    static_configs: [{{ targets: ['{target}'] }}]\n"),
        )
        .expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = test_support::process::spawn(
            Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let url = format!("http://127.0.0.1:{port}/");
        let mut server = Self {
            url,
            child,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < until, "prometheus did not become ready");
            if let Some(status) = server.child.try_wait().expect("wait") {
                panic!("prometheus exited: {status}");
            }
            let ready =
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut stream| {
                    use std::io::{Read as _, Write as _};
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                    stream.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n").is_ok() && {
                        let mut response = String::new();
                        let _ = stream.read_to_string(&mut response);
                        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
                    }
                });
            if ready {
                return server;
            }
            std::thread::yield_now();
        }
    }
}

#[test]
fn prometheus_queries_decide_like_an_analysis() {
    for (errors, passes) in [(8, true), (12, false)] {
        let server = exporter(200, errors, 1e8);
        let prometheus = Prometheus::start(server.addr());
        // Readiness waits (no data = not ready) until Prometheus has two scrapes in range.
        let yaml = format!(
            "checks:\n  - name: slo\n    metrics:\n      prometheus: '{}'\n      window: 0s\n      rules:\n        - expr: 'sum(increase(http_requests_total{{code=~\"5..\"}}[10s])) / sum(increase(http_requests_total[10s]))'\n          below: 0.05\n    readiness: {{ interval: 200ms, deadline: 30s }}\n",
            prometheus.url
        );
        let report = run_yaml(&yaml);
        let check = only(&report);
        assert!(check.readiness.ready, "{check:?}");
        assert_eq!(
            check.passed, passes,
            "{errors} per 200 through Prometheus: {check:?}"
        );
        let value = check.observation.as_ref().expect("observed").thresholds[0]
            .value
            .expect("value");
        assert!((value - errors as f64 / 200.0).abs() < 1e-9, "{value}");
    }
}

#[test]
fn a_query_returning_several_series_is_refused_with_a_hint() {
    let server = exporter(10, 1, 1e8);
    let prometheus = Prometheus::start(server.addr());
    let yaml = format!(
        "checks:\n  - name: slo\n    metrics: {{ prometheus: '{}', window: 0s, rules: [{{ expr: 'http_requests_total', below: 1e12 }}] }}\n    readiness: {{ interval: 200ms, deadline: 10s }}\n",
        prometheus.url
    );
    let report = run_yaml(&yaml);
    let failure = last_failure(&report);
    assert!(
        failure.detail.contains("returned 2 series; aggregate it"),
        "{}",
        failure.detail
    );
}
