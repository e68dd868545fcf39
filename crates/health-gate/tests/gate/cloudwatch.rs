//! The cloudwatch metrics source against a real `moto_server`: the test publishes datapoints
//! with PutMetricData, then runs the binary on a gate file reading them with GetMetricData.
//!
//! What moto (5.2) emulates of GetMetricData, as read in `moto/cloudwatch/models.py`:
//! `MetricStat` queries with `Sum`, `Average`, `Minimum`, `Maximum` and `SampleCount`, one
//! value per `Period` counted from `StartTime` (no alignment to period boundaries), datapoints
//! filtered by namespace, metric name, the exact set of dimensions and the unit, with the
//! timestamps PutMetricData gave them (no ingestion delay). What it does not: percentile
//! statistics (`p99` yields no value), metric math (an `Expression` only copies the query it
//! names), Metrics Insights (`SELECT` sums everything), pagination (`NextToken` is never set),
//! per-metric access errors (`Forbidden` statuses), and the 1s/5s/10s/30s/60s period rules
//! for old data. These tests use `Sum` and `Maximum` with 1s periods; the combination of
//! periods and the validation of statistics and periods are unit-tested in the library.
//!
//! Timing: the gate reads readiness data over the window ending at its start, and, after
//! waiting one window, the observation data over the window ending then. The test publishes
//! a readiness datapoint 3s before the gate starts and an observation datapoint half a window
//! after it, so each phase sees exactly its own datapoint as long as readiness succeeds within
//! half a window (6s; it takes one GetMetricData call).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::config::{Credentials, Region};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use test_support::moto::Moto;

const WINDOW_SECS: u64 = 12;
const LOAD_BALANCER: &str = "app/web/50dc6c495c0c9188";

fn put(moto: &Moto, at: SystemTime, five_xx: f64, response_time: f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new("eu-west-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await;
        let client = aws_sdk_cloudwatch::Client::new(&sdk);
        let dimension = Dimension::builder()
            .name("LoadBalancer")
            .value(LOAD_BALANCER)
            .build();
        let datum = |name: &str, value: f64, unit: StandardUnit| {
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(dimension.clone())
                .timestamp(DateTime::from(at))
                .value(value)
                .unit(unit)
                .build()
        };
        client
            .put_metric_data()
            .namespace("AWS/ApplicationELB")
            .metric_data(datum(
                "HTTPCode_Target_5XX_Count",
                five_xx,
                StandardUnit::Count,
            ))
            .metric_data(datum(
                "TargetResponseTime",
                response_time,
                StandardUnit::Seconds,
            ))
            .send()
            .await
            .expect("PutMetricData");
    });
}

fn gate_file(dir: &Path, moto: &Moto, no_data: &str) -> std::path::PathBuf {
    let path = dir.join("gate.yaml");
    std::fs::write(
        &path,
        format!(
            r#"checks:
  - name: alb
    readiness: {{ interval: 200ms, deadline: 4s }}
    metrics:
      cloudwatch: {{ endpoint_url: "{endpoint}", period: 1s }}
      window: {WINDOW_SECS}s
      {no_data}
      rules:
        - metric:
            namespace: AWS/ApplicationELB
            name: HTTPCode_Target_5XX_Count
            dimensions: {{ LoadBalancer: {LOAD_BALANCER} }}
            stat: Sum
          below: 10
        - metric:
            namespace: AWS/ApplicationELB
            name: TargetResponseTime
            dimensions: {{ LoadBalancer: {LOAD_BALANCER} }}
            stat: Maximum
            unit: Seconds
          below: 0.5
"#,
            endpoint = moto.endpoint(),
        ),
    )
    .expect("write gate file");
    path
}

/// Runs the binary with credentials and the region from the environment (the default chain),
/// and no profile or instance metadata to fall back on.
fn run_gate(dir: &Path, gate: &Path) -> (test_support::Output, serde_json::Value) {
    std::fs::write(dir.join("no-aws-config"), "").expect("write");
    let mut command = test_support::tool_command(Path::new(env!("CARGO_BIN_EXE_health-gate")));
    command
        .env("HOME", dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-aws-config"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--output-format", "json", "--gate-file"])
        .arg(gate);
    let out = test_support::run(&mut command);
    let outputs: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out:?}"));
    (out, outputs)
}

/// Whole seconds, so that moto's truncation of StartTime/EndTime to seconds cannot move a
/// datapoint across the edge of a window.
fn whole_second_now() -> SystemTime {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// Publishes the readiness datapoint and the observation one (`five_xx` errors, `slowest`
/// seconds), runs the gate, and returns its exit code and outputs.
fn gate_over(five_xx: f64, slowest: f64) -> (test_support::Output, serde_json::Value, Moto) {
    let moto = Moto::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let now = whole_second_now();
    put(&moto, now - Duration::from_secs(3), 1.0, 0.1);
    put(
        &moto,
        now + Duration::from_secs(WINDOW_SECS / 2),
        five_xx,
        slowest,
    );
    let gate = gate_file(dir.path(), &moto, "");
    let (out, outputs) = run_gate(dir.path(), &gate);
    (out, outputs, moto)
}

#[test]
fn alb_5xx_and_response_time_below_their_bounds_pass() {
    let (out, outputs, _moto) = gate_over(3.0, 0.25);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(outputs["decision"], "go");
    let thresholds = &outputs["report"]["checks"][0]["observation"]["thresholds"];
    // Only the observation datapoint is in the observed window: the readiness one (1 error,
    // 0.1s) is not added in.
    assert_eq!(thresholds[0]["value"], 3.0, "{thresholds}");
    assert_eq!(thresholds[1]["value"], 0.25, "{thresholds}");
    assert_eq!(
        thresholds[0]["threshold"],
        format!(
            "AWS/ApplicationELB HTTPCode_Target_5XX_Count{{LoadBalancer=\"{LOAD_BALANCER}\"}} Sum < 10"
        )
    );
}

#[test]
fn too_many_5xx_fails_the_gate_with_exit_1() {
    let (out, outputs, _moto) = gate_over(25.0, 0.25);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(outputs["decision"], "rollback");
    let thresholds = &outputs["report"]["checks"][0]["observation"]["thresholds"];
    assert_eq!(thresholds[0]["passed"], false, "{thresholds}");
    assert_eq!(thresholds[0]["value"], 25.0, "{thresholds}");
    assert_eq!(thresholds[1]["passed"], true, "{thresholds}");
    assert!(
        out.stderr.contains("HTTPCode_Target_5XX_Count"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_datapoints_fail_readiness_by_default_and_pass_with_no_data_pass() {
    let moto = Moto::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing published: GetMetricData answers, with no datapoint for either rule.
    let gate = gate_file(dir.path(), &moto, "");
    let (out, outputs) = run_gate(dir.path(), &gate);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(outputs["decision"], "rollback");
    let readiness = &outputs["report"]["checks"][0]["readiness"];
    assert_eq!(readiness["last_failure"]["kind"], "no_data", "{readiness}");
    assert!(
        readiness["last_failure"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("HTTPCode_Target_5XX_Count")),
        "{readiness}"
    );

    let gate = gate_file(dir.path(), &moto, "no_data: pass");
    let (out, outputs) = run_gate(dir.path(), &gate);
    assert_eq!(out.code, Some(0), "{out:?}");
    let thresholds = &outputs["report"]["checks"][0]["observation"]["thresholds"];
    assert_eq!(thresholds[0]["detail"], "no data", "{thresholds}");
}

#[test]
fn the_readme_cloudwatch_gate_file_is_valid() {
    let readme = std::fs::read_to_string(
        test_support::workspace_root().join("actions/health-gate/README.md"),
    )
    .expect("README");
    let yaml = readme
        .split("## CloudWatch metrics")
        .nth(1)
        .and_then(|section| section.split("```yaml\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("a yaml block in the CloudWatch section");
    let gate = health_gate::config::GateFile::parse(yaml)
        .expect("parses")
        .resolve()
        .expect("resolves");
    assert_eq!(gate.checks[0].probe.kind(), "metrics");
}

#[test]
fn an_invalid_cloudwatch_rule_is_a_usage_error_with_file_line_column_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gate.yaml");
    std::fs::write(
        &file,
        "checks:\n  - name: alb\n    metrics:\n      cloudwatch: { period: 90s }\n      window: 5m\n      rules:\n        - metric: { namespace: AWS/ApplicationELB, name: TargetResponseTime, stat: P99 }\n          below: 1\n",
    )
    .expect("write");
    let out = test_support::run(
        test_support::tool_command(Path::new(env!("CARGO_BIN_EXE_health-gate")))
            .arg("--gate-file")
            .arg(&file),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    for expected in [
        format!("{}:4:29", file.display()),
        "checks[0].metrics.cloudwatch.period".to_owned(),
        "`1m 30s` is not a CloudWatch period".to_owned(),
        format!("{}:7:84", file.display()),
        "checks[0].metrics.rules[0].metric.stat".to_owned(),
        "`P99` is not a statistic".to_owned(),
    ] {
        assert!(
            out.stderr.contains(&expected),
            "no {expected} in {}",
            out.stderr
        );
    }

    // Under GitHub Actions the annotation carries the file and line.
    let out = test_support::run(
        test_support::tool_command(Path::new(env!("CARGO_BIN_EXE_health-gate")))
            .env("GITHUB_ACTIONS", "true")
            .arg("--gate-file")
            .arg(&file),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("::error file={},line=7,col=84", file.display()))
            || out
                .stderr
                .contains(&format!("::error file={},line=7,col=84", file.display())),
        "{out:?}"
    );
}
