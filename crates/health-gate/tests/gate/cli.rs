//! The binary: quick form, outputs, exit codes, gate-file errors, secrets, signals.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::http_server::{HttpServer, Reply};
use test_support::{run, tool_command};

fn binary() -> Command {
    tool_command(Path::new(env!("CARGO_BIN_EXE_health-gate")))
}

#[test]
fn quick_form_passes_and_prints_the_decision_and_report_as_json() {
    let server = HttpServer::start(|_| Reply::text(200, "ok"));
    let out = run(binary().args([
        "--url",
        &server.url("/health"),
        "--interval",
        "50ms",
        "--observe-requests",
        "20",
    ]));
    assert_eq!(out.code, Some(0), "{out:?}");
    let outputs: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(outputs["decision"], "go");
    // Typed: the report is an object, not a string holding JSON.
    let report = outputs["report"].clone();
    assert!(report.is_object(), "{report}");
    assert_eq!(report["checks"][0]["name"], "url");
    assert_eq!(report["checks"][0]["observation"]["counted"], 19);
    // The cold request: timed phases, `null` for those that do not apply (an IP, plain HTTP).
    let cold = &report["checks"][0]["cold"];
    assert!(cold["connect_ms"].as_f64().is_some(), "{cold}");
    assert!(cold["ttfb_ms"].as_f64().is_some(), "{cold}");
    assert_eq!(
        (&cold["dns_ms"], &cold["tls_ms"]),
        (&serde_json::Value::Null, &serde_json::Value::Null)
    );
    assert_eq!(cold["status"], 200);
    assert!(
        out.stderr
            .contains("cold dns / connect / tls / ttfb / total ms"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("decision: go"), "{}", out.stderr);
}

#[test]
fn a_failing_gate_exits_1_with_rollback_and_the_reason() {
    let server = HttpServer::start(|_| Reply::text(503, "down"));
    let out = run(binary().args([
        "--url",
        &server.url("/"),
        "--interval",
        "50ms",
        "--deadline",
        "300ms",
        "--output-format",
        "dotenv",
    ]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("DECISION=rollback\n"), "{}", out.stdout);
    assert!(
        out.stderr.contains("status 503, expected 200-299"),
        "{}",
        out.stderr
    );
}

#[test]
fn writes_github_outputs_and_a_summary_under_actions() {
    let server = HttpServer::start(|_| Reply::text(200, "ok"));
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("output");
    let summary = dir.path().join("summary");
    let out = run(binary()
        .args(["--url", &server.url("/")])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(out.code, Some(0), "{out:?}");
    let written = std::fs::read_to_string(&output).expect("GITHUB_OUTPUT");
    assert!(written.starts_with("decision<<ghadelimiter_"), "{written}");
    assert!(written.contains("\ngo\n"));
    let summary = std::fs::read_to_string(&summary).expect("summary");
    assert!(summary.contains("## health-gate: go"), "{summary}");
    assert!(summary.contains("| url | http | pass |"), "{summary}");
    assert!(
        summary.contains("| cold dns / connect / tls / ttfb / total ms |"),
        "{summary}"
    );
}

#[test]
fn a_bad_gate_file_is_a_usage_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gate.yaml");
    std::fs::write(
        &file,
        "checks:\n  - name: api\n    htp: { url: 'http://x/' }\n",
    )
    .expect("write");
    let out = run(binary().arg("--gate-file").arg(&file));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("unknown field `htp`"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{}:3:5", file.display())),
        "{}",
        out.stderr
    );

    std::fs::write(
        &file,
        "checks:\n  - name: a\n    tcp: { addr: nope }\n  - name: a\n    tcp: { addr: 'h:1' }\n",
    )
    .expect("write");
    let out = run(binary().arg("--gate-file").arg(&file));
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("checks[0].tcp.addr"),
        "every problem is listed: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("duplicate check name `a`"),
        "{}",
        out.stderr
    );

    let out = run(&mut binary());
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("no checks"), "{}", out.stderr);
}

#[test]
fn header_secrets_from_the_environment_reach_the_server_but_never_the_output() {
    let secret = "s3cr3t-token-value";
    let server = HttpServer::start(|r| {
        if r.header("authorization") == Some("Bearer s3cr3t-token-value") {
            Reply::text(503, "authorised but s3cr3t-token-value not ready")
        } else {
            Reply::text(401, "no")
        }
    });
    let out = run(binary()
        .args([
            "--url",
            &server.url("/"),
            "--header",
            "Authorization: env:API_TOKEN",
            "--deadline",
            "300ms",
            "--interval",
            "50ms",
        ])
        .env("API_TOKEN", format!("Bearer {secret}"))
        .env("GITHUB_ACTIONS", "true"));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer s3cr3t-token-value")
    );
    // stdout carries the JSON outputs, so workflow commands go to stderr; the mask comes first.
    let (first, rest) = out.stderr.split_once('\n').expect("stderr lines");
    assert_eq!(first, "::add-mask::Bearer s3cr3t-token-value");
    assert!(!rest.contains(secret), "{rest}");
    assert!(!out.stdout.contains(secret), "{}", out.stdout);

    let unset = run(binary().args([
        "--url",
        &server.url("/"),
        "--header",
        "Authorization: env:API_TOKEN",
    ]));
    assert_eq!(unset.code, Some(2));
    assert!(
        unset.stderr.contains("reads $API_TOKEN, which is not set"),
        "{}",
        unset.stderr
    );
}

#[test]
fn sigterm_stops_within_a_second_with_a_partial_report() {
    let server = HttpServer::start(|_| Reply::Hang);
    let mut child = test_support::process::spawn(
        binary()
            .args([
                "--url",
                &server.url("/"),
                "--deadline",
                "120s",
                "--attempt-timeout",
                "60s",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // Wait (bounded) until the gate has sent its first request: it is then inside an attempt.
    let ready_by = Instant::now() + Duration::from_secs(20);
    while server.request_count() == 0 {
        assert!(
            Instant::now() < ready_by,
            "the gate never reached the server"
        );
        std::thread::yield_now();
    }
    let signalled = Instant::now();
    test_support::send_signal(&child, "TERM");
    let status = test_support::wait_for_exit(
        &mut child,
        Duration::from_secs(10),
        "health-gate ignored SIGTERM",
    );
    let stopped_after = signalled.elapsed();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(
        stopped_after < Duration::from_secs(1),
        "stopped after {stopped_after:?}"
    );
    let outputs: serde_json::Value = serde_json::from_str(&stdout).expect("outputs JSON");
    assert_eq!(outputs["decision"], "rollback");
    assert_eq!(outputs["report"]["interrupted"], true);
}

#[test]
fn records_a_baseline_and_refuses_one_recorded_differently() {
    let server = HttpServer::start(|_| Reply::text(200, "ok"));
    let dir = tempfile::tempdir().expect("tempdir");
    let baseline = dir.path().join("baseline.json");
    let url = server.url("/");
    let record = run(binary()
        .args([
            "--url",
            &url,
            "--observe-requests",
            "20",
            "--concurrency",
            "2",
        ])
        .arg("--record-baseline")
        .arg(&baseline));
    assert_eq!(record.code, Some(0), "{record:?}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).expect("baseline")).expect("json");
    assert!(
        file["checks"]["url"]["latency_us"]["p95"]
            .as_u64()
            .expect("p95")
            > 0
    );

    let compare = run(binary()
        .args([
            "--url",
            &url,
            "--observe-requests",
            "20",
            "--concurrency",
            "2",
            "--threshold",
            "p(95) < 1000",
        ])
        .arg("--baseline")
        .arg(&baseline));
    assert_eq!(compare.code, Some(0), "{compare:?}");

    let mismatched = run(binary()
        .args([
            "--url",
            &url,
            "--observe-requests",
            "20",
            "--concurrency",
            "4",
        ])
        .arg("--baseline")
        .arg(&baseline));
    assert_eq!(mismatched.code, Some(2), "{mismatched:?}");
    assert!(
        mismatched.stderr.contains("concurrency 2 vs 4"),
        "{}",
        mismatched.stderr
    );
}

#[test]
fn the_readme_gate_file_is_valid() {
    let readme = std::fs::read_to_string(
        test_support::workspace_root().join("actions/health-gate/README.md"),
    )
    .expect("README");
    let section = readme
        .split("## The seed's post-deploy gate")
        .nth(1)
        .expect("section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("yaml block");
    let gate = health_gate::config::GateFile::parse(yaml)
        .expect("parses")
        .resolve()
        .expect("resolves");
    let kinds: Vec<&str> = gate.checks.iter().map(|c| c.probe.kind()).collect();
    for kind in ["http", "sse", "grpc", "ws", "command", "metrics"] {
        assert!(
            kinds.contains(&kind),
            "the seed's gate covers {kind}: {kinds:?}"
        );
    }
}

#[test]
fn an_action_passing_every_input_empty_but_one_works() {
    let server = HttpServer::start(|_| Reply::text(200, "ok"));
    let mut command = binary();
    for flag in [
        "GATE_FILE",
        "HEADER",
        "BODY_CONTAINS",
        "GRPC_ADDR",
        "GRPC_SERVICE",
        "SSE_URL",
        "TCP_ADDR",
        "WS_URL",
        "WS_SUBPROTOCOL",
        "COMMAND",
        "THRESHOLD",
        "CA_FILE",
        "CLIENT_CERT",
        "CLIENT_KEY",
        "CONNECT_TO",
        "BASELINE",
        "RECORD_BASELINE",
        "REPORT_FILE",
        "VERBOSE",
        "INSECURE",
        "GRPC_TLS",
    ] {
        command.env(format!("HEALTH_GATE_{flag}"), "");
    }
    let out = run(command.env("HEALTH_GATE_URL", server.url("/")));
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn tls_server_name_lets_the_quick_form_verify_a_certificate_while_dialling_an_ip() {
    let ca = test_support::tls::TestCa::new("quick form CA");
    let cert = ca.issue("server", &["api.internal"]);
    let server = HttpServer::start_tls(ca.server_config(&cert, false), |_| Reply::text(200, "ok"));
    let ca_file = ca.cert_file().display().to_string();
    let base = [
        "--url",
        &server.url("/"),
        "--ca-file",
        &ca_file,
        "--interval",
        "50ms",
        "--deadline",
        "1s",
    ];
    let out = run(binary()
        .args(base)
        .args(["--tls-server-name", "api.internal"]));
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = run(binary().args(base));
    assert_eq!(
        out.code,
        Some(1),
        "the IP is not in the certificate: {out:?}"
    );
    assert!(out.stderr.contains("tls_verify"), "{}", out.stderr);
}

/// The report file and the recorded baseline go into directories that do not exist yet: they
/// are created, and a passing gate exits 0 (issue 17; it used to exit 3).
#[test]
fn report_and_baseline_directories_are_created() {
    let dir = tempfile::tempdir().expect("tmp");
    let report = dir.path().join("reports/gate/report.json");
    let baseline = dir.path().join("baselines/new/baseline.json");
    let out = run(binary().args(["--command", "true"]).args([
        "--report-file".as_ref(),
        report.as_os_str(),
        "--record-baseline".as_ref(),
        baseline.as_os_str(),
    ]));
    assert_eq!(out.code, Some(0), "{out:?}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    assert_eq!(written["decision"], "go");
    assert!(baseline.is_file());
}

/// What a peer says (a command's output, a redirect's `Location`, the URL) reaches the log,
/// but never as a workflow command, even indented or with `##[` mid-line (issue 25, point 17).
#[test]
fn peer_text_in_the_log_is_never_a_workflow_command() {
    let hostile =
        "x\n  ::error title=INJECTED::INJECTED\n##[warning]a ##[warning title=INJECTED]INJECTED";
    let server =
        HttpServer::start(|_| Reply::redirect(302, "/moved ##[warning title=INJECTED]INJECTED"));
    for args in [
        vec![
            "--command".to_owned(),
            format!("printf '%s\\n' '{hostile}'; printf '%s' '{hostile}' >&2; exit 3"),
        ],
        vec!["--url".to_owned(), server.url("/##[warning]INJECTED")],
    ] {
        let out = run(binary().env("GITHUB_ACTIONS", "true").args(&args).args([
            "--interval",
            "50ms",
            "--deadline",
            "300ms",
        ]));
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("INJECTED"),
            "the peer's text is shown: {out:?}"
        );
        for text in [&out.stdout, &out.stderr] {
            let injected = test_support::hostile::injected_commands(text);
            assert!(injected.is_empty(), "{injected:?}\n{text}");
        }
        let commands = runner_protocol::command_rules::workflow_commands(&out.stderr);
        assert!(
            commands.iter().any(|c| c.command == "error"),
            "the failure is still annotated: {}",
            out.stderr
        );
    }
}
