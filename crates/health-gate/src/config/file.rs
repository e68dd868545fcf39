//! The gate file as written (serde model); [`super::gate`] resolves it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::failure::FailureKind;

use super::units::HumanDuration;

/// The gate file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFile {
    /// Format version; 1 when given.
    #[serde(default)]
    pub version: Option<u32>,
    /// Settings every check inherits.
    #[serde(default)]
    pub defaults: DefaultsConfig,
    /// Baseline file for relative latency thresholds.
    #[serde(default)]
    pub baseline: Option<BaselineConfig>,
    /// The checks.
    #[serde(default)]
    pub checks: Vec<CheckConfig>,
    /// How check results combine.
    #[serde(default)]
    pub gate: GateConfig,
}

/// `baseline:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// File written by `--record-baseline`.
    pub file: PathBuf,
}

/// `defaults:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsConfig {
    /// Whole-attempt timeout (DNS + connect + TLS + headers + body).
    pub attempt_timeout: Option<HumanDuration>,
    /// TCP connect timeout.
    pub connect_timeout: Option<HumanDuration>,
    /// Headers sent by http and sse checks (`env:NAME` reads a masked secret).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsConfig,
    /// `none` (default: direct), `env` (`HTTP(S)_PROXY`/`NO_PROXY`), or a proxy URL; loopback
    /// is never proxied.
    pub proxy: Option<String>,
    /// Readiness defaults.
    #[serde(default)]
    pub readiness: ReadinessConfig,
    /// Observation defaults.
    #[serde(default)]
    pub observe: ObserveConfig,
}

/// TLS settings.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Verify the server certificate (default true). `false` is loudly warned about.
    pub verify: Option<bool>,
    /// Extra CA certificates (PEM) trusted besides the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM).
    pub client_key: Option<PathBuf>,
    /// Name to verify (gRPC); for HTTP use the URL's host and `connect_to` for the address.
    pub server_name: Option<String>,
}

/// Readiness settings; every field optional so defaults can be merged.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadinessConfig {
    /// Wait before the first attempt.
    pub initial_delay: Option<HumanDuration>,
    /// Time between attempt starts.
    pub interval: Option<HumanDuration>,
    /// Backoff after failures.
    pub backoff: Option<BackoffConfig>,
    /// Consecutive successes needed.
    pub success_threshold: Option<u32>,
    /// Give up after this long.
    pub deadline: Option<HumanDuration>,
    /// Failure kinds that stop at once (replaces the default list).
    pub fatal: Option<Vec<FailureKind>>,
}

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// Interval multiplier after each failure (1.0 = fixed rate).
    #[serde(default = "one")]
    pub multiplier: f64,
    /// Upper bound of the interval.
    pub max_interval: Option<HumanDuration>,
    /// Random spread, 0.0..=1.0, as a fraction of the interval.
    #[serde(default)]
    pub jitter: f64,
}

fn one() -> f64 {
    1.0
}

/// `observe:` as written: `none` or settings.
#[derive(Debug, Clone)]
pub enum ObserveSetting {
    /// No observation phase.
    Off,
    /// Settings.
    On(ObserveConfig),
}

impl<'de> Deserialize<'de> for ObserveSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Config(ObserveConfig),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Word(word) if word == "none" => Ok(ObserveSetting::Off),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "observe must be `none` or a mapping, not `{word}`"
            ))),
            Raw::Config(config) => Ok(ObserveSetting::On(config)),
        }
    }
}

/// Observation settings; every field optional so defaults can be merged.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveConfig {
    /// Number of requests.
    pub requests: Option<u64>,
    /// Or: keep sending for this long.
    pub duration: Option<HumanDuration>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
    /// First samples left out of latency statistics and error counts.
    pub warmup: Option<u64>,
    /// Fewer counted samples than this fails the check.
    pub min_samples: Option<u64>,
    /// Stop as soon as a threshold is already lost.
    pub abort_early: Option<bool>,
    pub thresholds: Option<ThresholdsConfig>,
}

/// Thresholds as a mapping, or as a list of k6 strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ThresholdsConfig {
    /// `["p(95)<200", "rate<0.05"]`
    K6(Vec<String>),
    /// `{ error_rate: "<= 5%", latency: { p95: "< 200ms" } }`
    Map(ThresholdMap),
}

/// The mapping form of thresholds.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdMap {
    /// Upper bound on failed/total.
    pub error_rate: Option<String>,
    /// Upper bounds per statistic.
    #[serde(default)]
    pub latency: BTreeMap<String, String>,
}

/// `gate:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// `all` (default) or `{ quorum: N }`.
    pub require: Option<RequireConfig>,
}

/// How many checks must pass.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RequireConfig {
    /// `all`
    Word(String),
    /// `{ quorum: N }`
    Quorum {
        /// Checks that must pass.
        quorum: usize,
    },
}

/// One check as written: exactly one of `http`, `grpc`, `sse`, `tcp`, `ws`, `command`, `metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Unique name, used in reports and baselines.
    pub name: String,
    /// HTTP(S) check.
    pub http: Option<HttpConfig>,
    /// gRPC health check.
    pub grpc: Option<GrpcConfig>,
    /// Server-sent events check.
    pub sse: Option<SseConfig>,
    /// TCP connect check.
    pub tcp: Option<TcpConfig>,
    /// WebSocket check.
    pub ws: Option<WsConfig>,
    /// Command check.
    pub command: Option<CommandConfig>,
    /// Prometheus metrics check.
    pub metrics: Option<MetricsConfig>,
    /// Overrides of the defaults' attempt timeout.
    pub attempt_timeout: Option<HumanDuration>,
    /// Overrides of the defaults' connect timeout.
    pub connect_timeout: Option<HumanDuration>,
    /// Readiness overrides.
    pub readiness: Option<ReadinessConfig>,
    /// Observation overrides, or `none`.
    pub observe: Option<ObserveSetting>,
}

/// `http:` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Method (default GET).
    pub method: Option<String>,
    /// Extra headers (merged over the defaults).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Option<String>,
    /// Expectations.
    #[serde(default)]
    pub expect: ExpectConfig,
    /// Read at most this many body bytes (default 64KiB).
    pub max_body: Option<String>,
    /// Redirect policy.
    #[serde(default)]
    pub redirects: RedirectsConfig,
    /// TLS overrides.
    pub tls: Option<TlsConfig>,
    /// Connect to this `ip:port` instead of resolving the URL's host (like curl --resolve).
    pub connect_to: Option<String>,
    /// `none` (default), `env` or a proxy URL.
    pub proxy: Option<String>,
}

/// What an HTTP response must look like.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    /// Statuses and ranges: `[200, "200-299", 304]` (default 2xx).
    #[serde(default)]
    pub status: Vec<serde_yaml_ng::Value>,
    /// Media type the response must have (`application/json`).
    pub content_type: Option<String>,
    /// Substrings the body must contain.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// A regex the body must match.
    pub body_regex: Option<String>,
    /// JSONPath assertions.
    #[serde(default)]
    pub json: Vec<JsonAssertionConfig>,
}

/// One JSONPath assertion: exactly one of `equals`, `in`, `exists`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonAssertionConfig {
    /// JSONPath (`$.status`).
    pub path: String,
    /// The value must equal this.
    pub equals: Option<serde_json::Value>,
    /// The value must be one of these.
    #[serde(rename = "in")]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// The path must (or must not) exist.
    pub exists: Option<bool>,
}

/// Redirect policy.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectsConfig {
    /// Follow redirects (default false: a 3xx is checked against the expected statuses).
    pub follow: Option<bool>,
    /// Maximum redirects followed (default 5).
    pub max: Option<usize>,
    /// Refuse a redirect to another host (default true), e.g. to a login page.
    pub same_host_only: Option<bool>,
}

/// `grpc:` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// `host:port`.
    pub addr: String,
    /// Service name (`""` = the server's overall health).
    pub service: Option<String>,
    /// Several service names, all of which must be SERVING.
    pub services: Option<Vec<String>>,
    /// Use TLS (default false).
    #[serde(default)]
    pub tls: bool,
    /// `:authority` override.
    pub authority: Option<String>,
    /// Request metadata (`env:NAME` reads a masked secret).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Deadline of the Check RPC (default: the attempt timeout).
    pub rpc_timeout: Option<HumanDuration>,
}

/// `sse:` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseConfig {
    /// Stream URL.
    pub url: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A complete event must arrive within this (default: the attempt timeout).
    pub first_event_within: Option<HumanDuration>,
    /// Only events with this `event:` name count.
    pub event: Option<String>,
    /// Only events whose data contains this count.
    pub data_contains: Option<String>,
    /// JSONPath assertions on the event data.
    #[serde(default)]
    pub json: Vec<JsonAssertionConfig>,
    /// Number of matching events required (default 1).
    pub events: Option<u32>,
    /// Maximum silence between events once the stream delivers (default 15s).
    pub idle_timeout: Option<HumanDuration>,
    /// Comment heartbeats (`: ping`) count as readiness (default false).
    pub heartbeat_counts: Option<bool>,
    /// TLS overrides.
    pub tls: Option<TlsConfig>,
    /// Connect to this `ip:port` instead of resolving the URL's host.
    pub connect_to: Option<String>,
    /// `none` (default), `env` or a proxy URL.
    pub proxy: Option<String>,
}

/// `tcp:` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// `host:port`; every resolved address is tried.
    pub addr: String,
}

/// `ws:` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsConfig {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Handshake headers (`Authorization`, `Origin`; `env:NAME` reads a masked secret).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Subprotocols offered; the server must select one of them.
    #[serde(default)]
    pub subprotocols: Vec<String>,
    /// Handshake deadline (default: the attempt timeout).
    pub handshake_timeout: Option<HumanDuration>,
    /// Steps after the handshake, in order; a close handshake always follows.
    #[serde(default)]
    pub steps: Vec<WsStepConfig>,
    /// TLS overrides.
    pub tls: Option<TlsConfig>,
}

/// One WebSocket step: exactly one of `send`, `send_binary`, `expect`, `ping`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsStepConfig {
    /// Send a text message.
    pub send: Option<String>,
    /// Send a binary message (the UTF-8 bytes of this text).
    pub send_binary: Option<String>,
    /// Expect the next message (sent by the server on its own, or in reply).
    pub expect: Option<TextExpectConfig>,
    /// Send a ping and expect the pong.
    pub ping: Option<bool>,
    /// Step deadline (default 5s).
    pub timeout: Option<HumanDuration>,
}

/// Expectations on a text (message, stdout, stderr); all optional, all must hold.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextExpectConfig {
    /// Substring.
    pub contains: Option<String>,
    pub regex: Option<String>,
    /// JSONPath assertions on the text parsed as JSON.
    #[serde(default)]
    pub json: Vec<JsonAssertionConfig>,
}

/// `command:` check: exactly one of `argv` (no shell) or `shell` (`sh -c`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// Program and arguments, run without a shell.
    pub argv: Option<Vec<String>>,
    /// A shell command line (`sh -c`), for builtins such as `command -v bwrap`.
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Accepted exit codes (default `[0]`).
    pub exit_codes: Option<Vec<i32>>,
    /// Expectations on stdout.
    pub stdout: Option<TextExpectConfig>,
    /// Expectations on stderr.
    pub stderr: Option<TextExpectConfig>,
}

/// `metrics:` check: exactly one of `scrape` (a `/metrics` endpoint) or `prometheus` (a
/// Prometheus server's HTTP API).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Prometheus text exposition URL, scraped at the start and end of the window.
    pub scrape: Option<String>,
    /// Prometheus server base URL; each rule's `expr` is an instant PromQL query.
    pub prometheus: Option<String>,
    /// Amazon CloudWatch (GetMetricData); each rule names a `metric`.
    pub cloudwatch: Option<CloudWatchConfig>,
    /// Observation window (default 30s).
    pub window: Option<HumanDuration>,
    #[serde(default)]
    pub rules: Vec<MetricRuleConfig>,
    /// `fail` (default) or `pass` when a rule has no data.
    pub no_data: Option<String>,
    /// Headers for the scrape or the API (`env:NAME` reads a masked secret).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Read at most this many bytes of a scrape or query response (default 16MiB).
    pub max_body: Option<String>,
}

/// One metrics rule: an expression and an upper bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRuleConfig {
    /// For `scrape`: `metric{label="v"}`, `increase(m)`, `rate(m)`, and `a / b`, `a * b` of those;
    /// for `prometheus`: any PromQL that returns one sample.
    pub expr: Option<String>,
    /// For `cloudwatch`: the metric and statistic.
    pub metric: Option<CloudWatchMetricConfig>,
    /// Must stay below this (`0.05`, `512Mi`, `2G`).
    pub below: Option<serde_yaml_ng::Value>,
    /// Must stay below this multiple of the value recorded in the baseline (`2x`).
    pub below_baseline: Option<String>,
}

/// `metrics.cloudwatch:` where GetMetricData is called; credentials come from the default
/// AWS chain (environment, web identity, profile, container and instance roles).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchConfig {
    /// Otherwise `AWS_REGION` or the profile's region.
    pub region: Option<String>,
    /// A VPC endpoint or an emulator; otherwise `AWS_ENDPOINT_URL` or AWS's own.
    pub endpoint_url: Option<String>,
    /// Length of one datapoint: 1s, 5s, 10s, 30s (high-resolution metrics) or a multiple of
    /// 60s (default 60s).
    pub period: Option<HumanDuration>,
}

/// The CloudWatch metric a rule reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchMetricConfig {
    /// `AWS/ApplicationELB`, `AWS/ECS`, ...
    pub namespace: String,
    /// `HTTPCode_Target_5XX_Count`, `TargetResponseTime`, ...
    pub name: String,
    /// Exactly the metric's dimensions (CloudWatch matches all of them).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// `Sum`, `Average`, `Minimum`, `Maximum`, `SampleCount` or a percentile `p99`, `p99.9`.
    pub stat: String,
    /// Only datapoints published with this unit (`Count`, `Seconds`, ...).
    pub unit: Option<String>,
}
