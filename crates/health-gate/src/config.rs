//! The gate file (YAML) and the quick-form flags, both resolved into one validated [`Gate`].
//!
//! ```yaml
//! defaults:
//!   attempt_timeout: 2s
//!   readiness: { interval: 1s, success_threshold: 2, deadline: 120s }
//!   observe: { requests: 100, concurrency: 5, thresholds: { error_rate: "<= 5%" } }
//! checks:
//!   - name: gateway
//!     http: { url: "http://127.0.0.1:8080/api/health", expect: { json: [{ path: "$.status", equals: "ok" }] } }
//!     observe: { thresholds: { latency: { p95: "< 2x baseline" } } }
//!   - name: memory
//!     grpc: { addr: "127.0.0.1:50051", service: "memory.v1.Memory" }
//!   - name: telemetry
//!     sse: { url: "http://127.0.0.1:8080/api/telemetry/stream", event: telemetry }
//!   - name: db-port
//!     tcp: { addr: "127.0.0.1:5432" }
//! gate: { require: all }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::failure::FailureKind;
use crate::threshold::{ErrorRateLimit, K6Threshold, LatencyThreshold, ThresholdError};

/// A configuration problem: where (field path) and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// Dotted field path (`checks[1].http.url`).
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

pub(crate) fn config_error(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// A duration written like `250ms`, `2s`, `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `250ms`, `2s`, `1m30s`; a bare number is refused (the unit is never guessed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("`{text}` is not a duration: write it with a unit, e.g. 250ms, 2s, 1m30s")
    })
}

/// Parses a byte size: `65536`, `64KiB`, `1MiB`, `10kB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: write e.g. 65536, 64KiB or 1MiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1024 * 1024,
        other => {
            return Err(format!(
                "unknown size unit `{other}`: use B, KiB, MiB, kB or MB"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

// ----------------------------------------------------------------------------------------
// The file as written.

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
    /// `env` (default; loopback is never proxied), `none`, or a proxy URL.
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
    /// Thresholds.
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
    /// `env`, `none` or a proxy URL.
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
    /// `env`, `none` or a proxy URL.
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
    /// Regex.
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
    /// Observation window (default 30s).
    pub window: Option<HumanDuration>,
    /// Rules.
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
    pub expr: String,
    /// Must stay below this (`0.05`, `512Mi`, `2G`).
    pub below: Option<serde_yaml_ng::Value>,
    /// Must stay below this multiple of the value recorded in the baseline (`2x`).
    pub below_baseline: Option<String>,
}

// ----------------------------------------------------------------------------------------
// The resolved, validated gate.

/// A validated gate.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Checks, in file order.
    pub checks: Vec<Check>,
    /// How many must pass.
    pub require: Require,
    /// Baseline to compare relative thresholds with.
    pub baseline_file: Option<PathBuf>,
}

/// How many checks must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    /// Every check.
    All,
    /// At least this many.
    Quorum(usize),
}

/// One validated check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Unique name.
    pub name: String,
    /// What to probe.
    pub probe: ProbeSpec,
    /// Whole-attempt timeout.
    pub attempt_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Readiness settings.
    pub readiness: Readiness,
    /// Observation settings, if any.
    pub observe: Option<Observation>,
}

/// What a check probes.
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    /// HTTP(S).
    Http(HttpSpec),
    /// gRPC health.
    Grpc(GrpcSpec),
    /// Server-sent events.
    Sse(SseSpec),
    /// TCP connect.
    Tcp(TcpSpec),
    /// WebSocket.
    Ws(crate::probe::ws::WsSpec),
    /// A local command.
    Command(crate::probe::command::CommandSpec),
    /// Prometheus metrics.
    Metrics(crate::probe::metrics::MetricsSpec),
}

impl ProbeSpec {
    /// `http`, `grpc`, `sse`, `tcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Grpc(_) => "grpc",
            ProbeSpec::Sse(_) => "sse",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Ws(_) => "ws",
            ProbeSpec::Command(_) => "command",
            ProbeSpec::Metrics(_) => "metrics",
        }
    }

    /// The target, for reports and baselines.
    pub fn target(&self) -> String {
        match self {
            ProbeSpec::Http(spec) => display_url(&spec.url),
            ProbeSpec::Grpc(spec) => format!(
                "{}{}",
                spec.addr,
                spec.services
                    .first()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            ),
            ProbeSpec::Sse(spec) => display_url(&spec.url),
            ProbeSpec::Tcp(spec) => spec.addr.clone(),
            ProbeSpec::Ws(spec) => display_url(&spec.url),
            ProbeSpec::Command(spec) => spec.display(),
            ProbeSpec::Metrics(spec) => spec.source_url(),
        }
    }
}

/// A URL as shown in reports, baselines and logs: a password in it (`user:pass@`) is
/// replaced by `****`; the request still sends it (as basic auth).
pub fn display_url(url: &reqwest::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    match shown.set_password(Some("****")) {
        Ok(()) => shown.to_string(),
        Err(()) => format!(
            "{}://****@{}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ),
    }
}

/// [`display_url`] for text that may not parse as a URL (configuration errors echo it).
pub fn display_url_text(text: &str) -> String {
    let Some(start) = text.find("://").map(|at| at + 3) else {
        return text.to_owned();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| start + at);
    match text[start..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &text[start..start + at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let password = if userinfo.contains(':') { ":****" } else { "" };
            format!("{}{user}{password}{}", &text[..start], &text[start + at..])
        }
        None => text.to_owned(),
    }
}

/// A header value: literal or read from the environment (masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Written in the file.
    Literal(String),
    /// `env:NAME`.
    Env(String),
}

impl HeaderValue {
    fn parse(text: &str) -> Self {
        match text.strip_prefix("env:") {
            Some(name) => HeaderValue::Env(name.trim().to_owned()),
            None => HeaderValue::Literal(text.to_owned()),
        }
    }
}

/// Validated TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSpec {
    /// Verify the server (false only when explicitly configured).
    pub verify: bool,
    /// Extra CA file.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key files.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Verification name override (gRPC).
    pub server_name: Option<String>,
}

/// Proxy policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyPolicy {
    /// `HTTPS_PROXY`/`NO_PROXY` from the environment, never for loopback targets.
    Env,
    /// Never.
    None,
    /// This proxy URL (still never for loopback).
    Url(String),
}

/// Accepted statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    /// 200-299.
    pub fn default_success() -> Self {
        StatusSet(vec![(200, 299)])
    }

    /// True when `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }

    /// Parses `200`, `200-299`, `2xx`, comma lists.
    pub fn parse_list(items: &[String]) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in items.iter().flat_map(|i| i.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let range = if let Some(class) = item.strip_suffix("xx") {
                let digit: u16 = class.parse().map_err(|_| status_error(item))?;
                (digit * 100, digit * 100 + 99)
            } else if let Some((low, high)) = item.split_once('-') {
                let low: u16 = low.trim().parse().map_err(|_| status_error(item))?;
                let high: u16 = high.trim().parse().map_err(|_| status_error(item))?;
                (low, high)
            } else {
                let code: u16 = item.parse().map_err(|_| status_error(item))?;
                (code, code)
            };
            if range.0 < 100 || range.1 > 599 || range.0 > range.1 {
                return Err(status_error(item));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Ok(Self::default_success());
        }
        Ok(StatusSet(ranges))
    }
}

fn status_error(item: &str) -> String {
    format!("`{item}` is not a status: write 200, 200-299 or 2xx (100..599)")
}

/// A compiled JSONPath assertion.
#[derive(Debug, Clone)]
pub struct JsonAssertion {
    /// The path as written.
    pub path_text: String,
    /// Compiled path.
    pub path: serde_json_path::JsonPath,
    /// What must hold.
    pub expectation: JsonExpectation,
}

/// What a JSONPath assertion requires.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpectation {
    /// Equal to.
    Equals(serde_json::Value),
    /// One of.
    OneOf(Vec<serde_json::Value>),
    /// Exists (true) or is absent (false).
    Exists(bool),
}

/// Validated HTTP check.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// URL.
    pub url: reqwest::Url,
    /// Method.
    pub method: reqwest::Method,
    /// Headers.
    pub headers: Vec<(String, HeaderValue)>,
    /// Body.
    pub body: Option<String>,
    /// Accepted statuses.
    pub statuses: StatusSet,
    /// Required media type.
    pub content_type: Option<String>,
    /// Required substrings.
    pub body_contains: Vec<String>,
    /// Required regex.
    pub body_regex: Option<regex::Regex>,
    /// JSON assertions.
    pub json: Vec<JsonAssertion>,
    /// Body byte limit.
    pub max_body: u64,
    /// Follow redirects.
    pub follow_redirects: bool,
    /// Maximum redirects.
    pub max_redirects: usize,
    /// Refuse cross-host redirects.
    pub same_host_only: bool,
    /// TLS.
    pub tls: TlsSpec,
    /// Fixed address.
    pub connect_to: Option<SocketAddr>,
    /// Proxy.
    pub proxy: ProxyPolicy,
}

/// Validated gRPC check.
#[derive(Debug, Clone)]
pub struct GrpcSpec {
    /// `host:port`.
    pub addr: String,
    /// Services to check (`""` = overall).
    pub services: Vec<String>,
    /// TLS on.
    pub use_tls: bool,
    /// TLS settings.
    pub tls: TlsSpec,
    /// `:authority`.
    pub authority: Option<String>,
    /// Metadata.
    pub metadata: Vec<(String, HeaderValue)>,
    /// RPC deadline.
    pub rpc_timeout: Duration,
}

/// Validated SSE check.
#[derive(Debug, Clone)]
pub struct SseSpec {
    /// URL.
    pub url: reqwest::Url,
    /// Headers.
    pub headers: Vec<(String, HeaderValue)>,
    /// First-event deadline.
    pub first_event_within: Duration,
    /// Event name filter.
    pub event: Option<String>,
    /// Data substring filter.
    pub data_contains: Option<String>,
    /// JSON filters.
    pub json: Vec<JsonAssertion>,
    /// Events required.
    pub events: u32,
    /// Max silence between events.
    pub idle_timeout: Duration,
    /// Heartbeats count.
    pub heartbeat_counts: bool,
    /// TLS.
    pub tls: TlsSpec,
    /// Fixed address.
    pub connect_to: Option<SocketAddr>,
    /// Proxy.
    pub proxy: ProxyPolicy,
}

/// Validated TCP check.
#[derive(Debug, Clone)]
pub struct TcpSpec {
    /// `host:port`.
    pub addr: String,
}

/// Validated readiness settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// Wait before the first attempt.
    pub initial_delay: Duration,
    /// Time between attempt starts (fixed rate unless backoff).
    pub interval: Duration,
    /// Interval multiplier after a failure.
    pub backoff_multiplier: f64,
    /// Interval cap.
    pub max_interval: Duration,
    /// Jitter fraction.
    pub jitter: f64,
    /// Consecutive successes needed.
    pub success_threshold: u32,
    /// Give up after this long (from the gate's start).
    pub deadline: Duration,
    /// Kinds that stop at once.
    pub fatal: BTreeSet<FailureKind>,
}

/// Validated observation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Number of requests, or
    pub requests: Option<u64>,
    /// a duration.
    pub duration: Option<Duration>,
    /// In flight at once.
    pub concurrency: u32,
    /// Samples ignored at the start.
    pub warmup: u64,
    /// Minimum counted samples.
    pub min_samples: u64,
    /// Stop once lost.
    pub abort_early: bool,
    /// Error-rate limit.
    pub error_rate: ErrorRateLimit,
    /// Latency limits.
    pub latency: Vec<LatencyThreshold>,
}

/// Built-in defaults.
pub mod defaults {
    use std::time::Duration;

    /// Attempt timeout.
    pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Connect timeout.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// Readiness interval.
    pub const INTERVAL: Duration = Duration::from_secs(1);
    /// Readiness deadline.
    pub const DEADLINE: Duration = Duration::from_secs(60);
    /// Backoff cap.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(5);
    /// Body limit.
    pub const MAX_BODY: u64 = 64 * 1024;
    /// Observation requests.
    pub const REQUESTS: u64 = 50;
    /// Observation concurrency.
    pub const CONCURRENCY: u32 = 5;
    /// Warm-up samples.
    pub const WARMUP: u64 = 1;
    /// Error-rate limit (the seeds' runbooks roll back above 5 %).
    pub const ERROR_RATE: &str = "<= 5%";
    /// SSE idle timeout.
    pub const SSE_IDLE: Duration = Duration::from_secs(15);
    /// Redirect limit.
    pub const MAX_REDIRECTS: usize = 5;
}

/// A gate file that is not valid YAML for the model, or nested too deep.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// serde_yaml_ng's error (it carries its location).
    #[error(transparent)]
    Yaml(#[from] serde_yaml_ng::Error),
    /// Nested deeper than [`crate::limits::MAX_YAML_DEPTH`].
    #[error("{}", .0.to_string().split(" at line ").next().unwrap_or_default())]
    TooDeep(#[from] crate::limits::TooDeep),
}

impl ParseError {
    /// 1-based line and column.
    pub fn location(&self) -> Option<(u32, u32)> {
        let number = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match self {
            ParseError::Yaml(error) => error
                .location()
                .map(|l| (number(l.line()), number(l.column()))),
            ParseError::TooDeep(deep) => Some((number(deep.line), number(deep.column))),
        }
    }
}

impl GateFile {
    /// Parses YAML text; errors carry line and column. YAML nested deeper than
    /// [`crate::limits::MAX_YAML_DEPTH`] is refused before serde_yaml_ng sees it.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        crate::limits::check_yaml_depth(text)?;
        Ok(serde_yaml_ng::from_str(text)?)
    }

    /// Validates and resolves into a [`Gate`]; reports every problem, not only the first.
    pub fn resolve(self) -> Result<Gate, Vec<ConfigError>> {
        let mut errors = Vec::new();
        if let Some(version) = self.version {
            if version != 1 {
                errors.push(config_error(
                    "version",
                    format!("version {version} is not supported; use 1"),
                ));
            }
        }
        if self.checks.is_empty() {
            errors.push(config_error("checks", "at least one check is required"));
        }
        let mut names = BTreeSet::new();
        let mut checks = Vec::new();
        for (index, check) in self.checks.into_iter().enumerate() {
            let field = format!("checks[{index}]");
            if check.name.trim().is_empty() {
                errors.push(config_error(
                    format!("{field}.name"),
                    "a check needs a non-empty name",
                ));
            } else if !names.insert(check.name.clone()) {
                errors.push(config_error(
                    format!("{field}.name"),
                    format!("duplicate check name `{}`", check.name),
                ));
            }
            match resolve_check(check, &self.defaults, &field) {
                Ok(check) => checks.push(check),
                Err(mut more) => errors.append(&mut more),
            }
        }
        let require = match self.gate.require {
            None => Require::All,
            Some(RequireConfig::Word(word)) if word == "all" => Require::All,
            Some(RequireConfig::Word(word)) => {
                errors.push(config_error(
                    "gate.require",
                    format!("`{word}` is not valid: use `all` or `{{ quorum: N }}`"),
                ));
                Require::All
            }
            Some(RequireConfig::Quorum { quorum }) => {
                if quorum == 0 || quorum > checks.len().max(1) {
                    errors.push(config_error(
                        "gate.require.quorum",
                        format!("quorum {quorum} must be between 1 and the number of checks"),
                    ));
                }
                Require::Quorum(quorum)
            }
        };
        if errors.is_empty() {
            Ok(Gate {
                checks,
                require,
                baseline_file: self.baseline.map(|b| b.file),
            })
        } else {
            Err(errors)
        }
    }
}

fn resolve_check(
    check: CheckConfig,
    defaults: &DefaultsConfig,
    field: &str,
) -> Result<Check, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let attempt_timeout = check
        .attempt_timeout
        .or(defaults.attempt_timeout)
        .map_or(defaults::ATTEMPT_TIMEOUT, |d| d.0);
    let connect_timeout = check
        .connect_timeout
        .or(defaults.connect_timeout)
        .map_or(defaults::CONNECT_TIMEOUT, |d| d.0);
    if attempt_timeout.is_zero() || connect_timeout.is_zero() {
        errors.push(config_error(
            format!("{field}.attempt_timeout"),
            "timeouts must be greater than zero",
        ));
    }
    let kinds = [
        check.http.is_some(),
        check.grpc.is_some(),
        check.sse.is_some(),
        check.tcp.is_some(),
        check.ws.is_some(),
        check.command.is_some(),
        check.metrics.is_some(),
    ];
    let probe = match kinds.iter().filter(|k| **k).count() {
        1 => {
            let probe = if let Some(http) = check.http {
                resolve_http(http, defaults, &format!("{field}.http")).map(ProbeSpec::Http)
            } else if let Some(grpc) = check.grpc {
                resolve_grpc(grpc, defaults, attempt_timeout, &format!("{field}.grpc"))
                    .map(ProbeSpec::Grpc)
            } else if let Some(sse) = check.sse {
                resolve_sse(sse, defaults, attempt_timeout, &format!("{field}.sse"))
                    .map(ProbeSpec::Sse)
            } else if let Some(tcp) = check.tcp {
                resolve_tcp(tcp, &format!("{field}.tcp")).map(ProbeSpec::Tcp)
            } else if let Some(ws) = check.ws {
                crate::probe::ws::resolve(ws, defaults, attempt_timeout, &format!("{field}.ws"))
                    .map(ProbeSpec::Ws)
            } else if let Some(command) = check.command {
                crate::probe::command::resolve(command, &format!("{field}.command"))
                    .map(ProbeSpec::Command)
            } else if let Some(metrics) = check.metrics {
                crate::probe::metrics::resolve(metrics, defaults, &format!("{field}.metrics"))
                    .map(ProbeSpec::Metrics)
            } else {
                unreachable!("one kind is present")
            };
            match probe {
                Ok(probe) => Some(probe),
                Err(mut more) => {
                    errors.append(&mut more);
                    None
                }
            }
        }
        0 => {
            errors.push(config_error(
                field,
                "a check needs one of `http`, `grpc`, `sse`, `tcp`, `ws`, `command` or `metrics`",
            ));
            None
        }
        _ => {
            errors.push(config_error(field, "a check has exactly one of `http`, `grpc`, `sse`, `tcp`, `ws`, `command` or `metrics`; split it into several checks"));
            None
        }
    };
    let readiness = merge_readiness(
        &defaults.readiness,
        check.readiness.as_ref(),
        &format!("{field}.readiness"),
    )
    .map_err(|e| errors.push(e))
    .ok();
    let observe = match check.observe {
        Some(ObserveSetting::Off) => Ok(None),
        Some(ObserveSetting::On(config)) => merge_observe(
            &defaults.observe,
            Some(&config),
            &format!("{field}.observe"),
        )
        .map(Some),
        None if observe_configured(&defaults.observe) => {
            merge_observe(&defaults.observe, None, &format!("{field}.observe")).map(Some)
        }
        None => Ok(None),
    };
    let observe = match observe {
        Ok(observe) => observe,
        Err(mut more) => {
            errors.append(&mut more);
            None
        }
    };
    match (probe, readiness, errors.is_empty()) {
        (Some(probe), Some(readiness), true) => Ok(Check {
            name: check.name,
            probe,
            attempt_timeout,
            connect_timeout,
            readiness,
            observe,
        }),
        _ => Err(errors),
    }
}

fn observe_configured(config: &ObserveConfig) -> bool {
    config.requests.is_some() || config.duration.is_some() || config.thresholds.is_some()
}

pub(crate) fn merge_headers(
    defaults: &BTreeMap<String, String>,
    own: &BTreeMap<String, String>,
    field: &str,
) -> Result<Vec<(String, HeaderValue)>, ConfigError> {
    let mut merged = defaults.clone();
    merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut headers = Vec::new();
    for (name, value) in merged {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(config_error(
                format!("{field}.headers"),
                format!("`{name}` is not a valid header name"),
            ));
        }
        let value = HeaderValue::parse(&value);
        if let HeaderValue::Literal(text) = &value {
            if reqwest::header::HeaderValue::from_str(text).is_err() {
                return Err(config_error(
                    format!("{field}.headers.{name}"),
                    "the value contains characters not allowed in a header (newline, control characters)",
                ));
            }
        }
        headers.push((name, value));
    }
    Ok(headers)
}

pub(crate) fn resolve_tls(
    defaults: &TlsConfig,
    own: Option<&TlsConfig>,
    field: &str,
) -> Result<TlsSpec, ConfigError> {
    let pick = |f: fn(&TlsConfig) -> Option<PathBuf>| own.and_then(f).or_else(|| f(defaults));
    let verify = own
        .and_then(|t| t.verify)
        .or(defaults.verify)
        .unwrap_or(true);
    let client_cert = pick(|t| t.client_cert.clone());
    let client_key = pick(|t| t.client_key.clone());
    let client_identity = match (client_cert, client_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(config_error(
                format!("{field}.tls"),
                "client_cert and client_key go together",
            ));
        }
    };
    Ok(TlsSpec {
        verify,
        ca_file: pick(|t| t.ca_file.clone()),
        client_identity,
        server_name: own
            .and_then(|t| t.server_name.clone())
            .or_else(|| defaults.server_name.clone()),
    })
}

fn resolve_proxy(
    own: Option<&str>,
    defaults: Option<&str>,
    field: &str,
) -> Result<ProxyPolicy, ConfigError> {
    match own.or(defaults).unwrap_or("env") {
        "env" => Ok(ProxyPolicy::Env),
        "none" => Ok(ProxyPolicy::None),
        url if url.starts_with("http://")
            || url.starts_with("https://")
            || url.starts_with("socks5://") =>
        {
            Ok(ProxyPolicy::Url(url.to_owned()))
        }
        other => Err(config_error(
            format!("{field}.proxy"),
            format!("`{other}` is not valid: use env, none or a proxy URL"),
        )),
    }
}

fn resolve_url(text: &str, field: &str) -> Result<reqwest::Url, ConfigError> {
    let shown = display_url_text(text);
    let url = reqwest::Url::parse(text)
        .map_err(|e| config_error(field, format!("`{shown}` is not a URL: {e}")))?;
    let text = &shown;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(
            field,
            format!("`{text}` must be an http:// or https:// URL"),
        ));
    }
    if url.host_str().is_none() {
        return Err(config_error(field, format!("`{text}` has no host")));
    }
    Ok(url)
}

/// A check with `connect_to` talks to exactly that address, or refuses to start: a gate must
/// never pass against a backend other than the configured one.
///
/// - The URL's port must not disagree: reqwest (hyper) dials the URL's explicit port
///   whatever `connect_to` says, so `http://localhost:18080/` with `127.0.0.1:9` reached
///   :18080. Written without a port, the URL's host is only the name (Host header, TLS);
///   with the same port as `connect_to`, both agree.
/// - A proxy URL decides the address itself (the proxy resolves the URL's host), so it cannot
///   be combined with `connect_to`; the environment's proxy (`HTTP(S)_PROXY`) is not used for
///   a check with `connect_to`.
fn check_connect_to(
    url: Option<&reqwest::Url>,
    connect_to: Option<SocketAddr>,
    proxy: &ProxyPolicy,
    field: &str,
) -> Result<(), ConfigError> {
    let Some(address) = connect_to else {
        return Ok(());
    };
    if let Some(port) = url.and_then(reqwest::Url::port) {
        if port != address.port() {
            return Err(config_error(
                format!("{field}.connect_to"),
                format!(
                    "`{address}` and the URL's port {port} disagree: give the port once, in `connect_to` (and leave it out of the URL, whose host then only names the server), or make them the same"
                ),
            ));
        }
    }
    if let ProxyPolicy::Url(_) = proxy {
        return Err(config_error(
            format!("{field}.connect_to"),
            "`connect_to` and a proxy URL cannot be combined: the proxy would choose the address; use `proxy: none` or drop `connect_to`",
        ));
    }
    Ok(())
}

fn resolve_connect_to(text: Option<&str>, field: &str) -> Result<Option<SocketAddr>, ConfigError> {
    text.map(|t| {
        t.parse::<SocketAddr>().map_err(|_| {
            config_error(
                field,
                format!("`{t}` must be an ip:port such as 10.0.0.12:443 or [::1]:8443"),
            )
        })
    })
    .transpose()
}

pub(crate) fn resolve_json(
    assertions: &[JsonAssertionConfig],
    field: &str,
) -> Result<Vec<JsonAssertion>, ConfigError> {
    assertions
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let field = format!("{field}[{index}]");
            let path = serde_json_path::JsonPath::parse(&a.path).map_err(|e| {
                config_error(
                    format!("{field}.path"),
                    format!("`{}` is not a JSONPath: {e}", a.path),
                )
            })?;
            let expectation = match (&a.equals, &a.one_of, a.exists) {
                (Some(value), None, None) => JsonExpectation::Equals(value.clone()),
                (None, Some(values), None) => JsonExpectation::OneOf(values.clone()),
                (None, None, Some(exists)) => JsonExpectation::Exists(exists),
                _ => {
                    return Err(config_error(
                        field,
                        "a JSON assertion has exactly one of `equals`, `in`, `exists`",
                    ));
                }
            };
            Ok(JsonAssertion {
                path_text: a.path.clone(),
                path,
                expectation,
            })
        })
        .collect()
}

fn yaml_status_items(values: &[serde_yaml_ng::Value]) -> Result<Vec<String>, String> {
    values
        .iter()
        .map(|v| match v {
            serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
            serde_yaml_ng::Value::String(s) => Ok(s.clone()),
            other => Err(format!("{other:?} is not a status")),
        })
        .collect()
}

fn resolve_http(
    config: HttpConfig,
    defaults: &DefaultsConfig,
    field: &str,
) -> Result<HttpSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let url = resolve_url(&config.url, &format!("{field}.url"))
        .map_err(|e| errors.push(e))
        .ok();
    let method =
        match reqwest::Method::from_bytes(config.method.as_deref().unwrap_or("GET").as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                errors.push(config_error(
                    format!("{field}.method"),
                    "not an HTTP method",
                ));
                reqwest::Method::GET
            }
        };
    let headers = merge_headers(&defaults.headers, &config.headers, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let statuses = yaml_status_items(&config.expect.status)
        .and_then(|items| StatusSet::parse_list(&items))
        .map_err(|m| errors.push(config_error(format!("{field}.expect.status"), m)))
        .unwrap_or_else(|()| StatusSet::default_success());
    let body_regex = config
        .expect
        .body_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| {
            errors.push(config_error(
                format!("{field}.expect.body_regex"),
                e.to_string(),
            ))
        })
        .ok()
        .flatten();
    let json = resolve_json(&config.expect.json, &format!("{field}.expect.json"))
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let max_body = config
        .max_body
        .as_deref()
        .map(parse_size)
        .transpose()
        .map_err(|m| errors.push(config_error(format!("{field}.max_body"), m)))
        .ok()
        .flatten()
        .unwrap_or(defaults::MAX_BODY);
    let tls = resolve_tls(&defaults.tls, config.tls.as_ref(), field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let connect_to =
        resolve_connect_to(config.connect_to.as_deref(), &format!("{field}.connect_to"))
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
    let proxy = resolve_proxy(config.proxy.as_deref(), defaults.proxy.as_deref(), field)
        .map_err(|e| errors.push(e))
        .unwrap_or(ProxyPolicy::Env);
    if let Err(error) = check_connect_to(url.as_ref(), connect_to, &proxy, field) {
        errors.push(error);
    }
    match url {
        Some(url) if errors.is_empty() => Ok(HttpSpec {
            url,
            method,
            headers,
            body: config.body,
            statuses,
            content_type: config.expect.content_type,
            body_contains: config.expect.body_contains,
            body_regex,
            json,
            max_body,
            follow_redirects: config.redirects.follow.unwrap_or(false),
            max_redirects: config.redirects.max.unwrap_or(defaults::MAX_REDIRECTS),
            same_host_only: config.redirects.same_host_only.unwrap_or(true),
            tls,
            connect_to,
            proxy,
        }),
        _ => Err(errors),
    }
}

fn resolve_grpc(
    config: GrpcConfig,
    defaults: &DefaultsConfig,
    attempt_timeout: Duration,
    field: &str,
) -> Result<GrpcSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    if config.addr.parse::<SocketAddr>().is_err()
        && !config
            .addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    {
        errors.push(config_error(
            format!("{field}.addr"),
            format!("`{}` must be host:port", config.addr),
        ));
    }
    let services = match (config.service, config.services) {
        (Some(service), None) => vec![service],
        (None, Some(services)) if !services.is_empty() => services,
        (None, None) => vec![String::new()],
        _ => {
            errors.push(config_error(
                field,
                "use either `service` or a non-empty `services` list",
            ));
            Vec::new()
        }
    };
    let metadata = merge_headers(&BTreeMap::new(), &config.metadata, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let tls = resolve_tls(&defaults.tls, None, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    if errors.is_empty() {
        Ok(GrpcSpec {
            addr: config.addr,
            services,
            use_tls: config.tls,
            tls,
            authority: config.authority,
            metadata,
            rpc_timeout: config.rpc_timeout.map_or(attempt_timeout, |d| d.0),
        })
    } else {
        Err(errors)
    }
}

fn resolve_sse(
    config: SseConfig,
    defaults: &DefaultsConfig,
    attempt_timeout: Duration,
    field: &str,
) -> Result<SseSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let url = resolve_url(&config.url, &format!("{field}.url"))
        .map_err(|e| errors.push(e))
        .ok();
    let headers = merge_headers(&defaults.headers, &config.headers, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let json = resolve_json(&config.json, &format!("{field}.json"))
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let tls = resolve_tls(&defaults.tls, config.tls.as_ref(), field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let connect_to =
        resolve_connect_to(config.connect_to.as_deref(), &format!("{field}.connect_to"))
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
    let proxy = resolve_proxy(config.proxy.as_deref(), defaults.proxy.as_deref(), field)
        .map_err(|e| errors.push(e))
        .unwrap_or(ProxyPolicy::Env);
    if let Err(error) = check_connect_to(url.as_ref(), connect_to, &proxy, field) {
        errors.push(error);
    }
    let events = config.events.unwrap_or(1);
    if events == 0 {
        errors.push(config_error(format!("{field}.events"), "at least 1 event"));
    }
    match url {
        Some(url) if errors.is_empty() => Ok(SseSpec {
            url,
            headers,
            first_event_within: config.first_event_within.map_or(attempt_timeout, |d| d.0),
            event: config.event,
            data_contains: config.data_contains,
            json,
            events,
            idle_timeout: config.idle_timeout.map_or(defaults::SSE_IDLE, |d| d.0),
            heartbeat_counts: config.heartbeat_counts.unwrap_or(false),
            tls,
            connect_to,
            proxy,
        }),
        _ => Err(errors),
    }
}

fn resolve_tcp(config: TcpConfig, field: &str) -> Result<TcpSpec, Vec<ConfigError>> {
    match config.addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(TcpSpec { addr: config.addr })
        }
        _ => Err(vec![config_error(
            format!("{field}.addr"),
            format!("`{}` must be host:port", config.addr),
        )]),
    }
}

fn merge_readiness(
    defaults: &ReadinessConfig,
    own: Option<&ReadinessConfig>,
    field: &str,
) -> Result<Readiness, ConfigError> {
    let own = own.cloned().unwrap_or_default();
    let backoff = own.backoff.or_else(|| defaults.backoff.clone());
    let readiness = Readiness {
        initial_delay: own
            .initial_delay
            .or(defaults.initial_delay)
            .map_or(Duration::ZERO, |d| d.0),
        interval: own
            .interval
            .or(defaults.interval)
            .map_or(defaults::INTERVAL, |d| d.0),
        backoff_multiplier: backoff.as_ref().map_or(1.0, |b| b.multiplier),
        max_interval: backoff
            .as_ref()
            .and_then(|b| b.max_interval)
            .map_or(defaults::MAX_INTERVAL, |d| d.0),
        jitter: backoff.as_ref().map_or(0.0, |b| b.jitter),
        success_threshold: own
            .success_threshold
            .or(defaults.success_threshold)
            .unwrap_or(1),
        deadline: own
            .deadline
            .or(defaults.deadline)
            .map_or(defaults::DEADLINE, |d| d.0),
        fatal: own
            .fatal
            .or_else(|| defaults.fatal.clone())
            .map(|kinds| kinds.into_iter().collect())
            .unwrap_or_else(|| {
                FailureKind::ALL
                    .into_iter()
                    .filter(|k| k.fatal_by_default())
                    .collect()
            }),
    };
    if readiness.interval.is_zero() {
        return Err(config_error(
            format!("{field}.interval"),
            "must be greater than zero",
        ));
    }
    if readiness.success_threshold == 0 {
        return Err(config_error(
            format!("{field}.success_threshold"),
            "must be at least 1",
        ));
    }
    if !(1.0..=10.0).contains(&readiness.backoff_multiplier) {
        return Err(config_error(
            format!("{field}.backoff.multiplier"),
            "must be between 1.0 (fixed rate) and 10.0",
        ));
    }
    if !(0.0..=1.0).contains(&readiness.jitter) {
        return Err(config_error(
            format!("{field}.backoff.jitter"),
            "must be between 0.0 and 1.0",
        ));
    }
    if readiness.deadline.is_zero() {
        return Err(config_error(
            format!("{field}.deadline"),
            "must be greater than zero",
        ));
    }
    Ok(readiness)
}

fn merge_observe(
    defaults: &ObserveConfig,
    own: Option<&ObserveConfig>,
    field: &str,
) -> Result<Observation, Vec<ConfigError>> {
    let own = own.cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let duration = own.duration.or(defaults.duration).map(|d| d.0);
    let requests = own
        .requests
        .or(defaults.requests)
        .or(if duration.is_some() {
            None
        } else {
            Some(defaults::REQUESTS)
        });
    if requests.is_some() && duration.is_some() && own.requests.is_some() && own.duration.is_some()
    {
        errors.push(config_error(
            field,
            "give `requests` or `duration`, not both",
        ));
    }
    let concurrency = own
        .concurrency
        .or(defaults.concurrency)
        .unwrap_or(defaults::CONCURRENCY);
    if concurrency == 0 || concurrency > 1000 {
        errors.push(config_error(
            format!("{field}.concurrency"),
            "must be between 1 and 1000",
        ));
    }
    let warmup = own.warmup.or(defaults.warmup).unwrap_or(defaults::WARMUP);
    if let Some(requests) = requests {
        if requests <= warmup {
            errors.push(config_error(
                format!("{field}.requests"),
                format!("{requests} requests leave no sample after {warmup} warm-up"),
            ));
        }
    }
    let min_samples = own
        .min_samples
        .or(defaults.min_samples)
        .unwrap_or_else(|| requests.map_or(10, |r| r.saturating_sub(warmup)));
    let thresholds = own.thresholds.or_else(|| defaults.thresholds.clone());
    let mut error_rate = None;
    let mut latency = Vec::new();
    let mut push_threshold_error =
        |e: ThresholdError| errors.push(config_error(format!("{field}.thresholds"), e.to_string()));
    match thresholds {
        Some(ThresholdsConfig::K6(lines)) => {
            for line in lines {
                match K6Threshold::parse(&line) {
                    Ok(K6Threshold::ErrorRate(limit)) => error_rate = Some(limit),
                    Ok(K6Threshold::Latency(threshold)) => latency.push(threshold),
                    Err(e) => push_threshold_error(e),
                }
            }
        }
        Some(ThresholdsConfig::Map(map)) => {
            if let Some(text) = map.error_rate {
                match ErrorRateLimit::parse(&text) {
                    Ok(limit) => error_rate = Some(limit),
                    Err(e) => push_threshold_error(e),
                }
            }
            for (statistic, text) in map.latency {
                match LatencyThreshold::parse_entry(&statistic, &text) {
                    Ok(threshold) => latency.push(threshold),
                    Err(e) => push_threshold_error(e),
                }
            }
        }
        None => {}
    }
    let error_rate = match error_rate {
        Some(limit) => limit,
        None => match ErrorRateLimit::parse(defaults::ERROR_RATE) {
            Ok(limit) => limit,
            Err(e) => {
                errors.push(config_error(field, e.to_string()));
                return Err(errors);
            }
        },
    };
    if errors.is_empty() {
        Ok(Observation {
            requests,
            duration,
            concurrency,
            warmup,
            min_samples,
            abort_early: own.abort_early.or(defaults.abort_early).unwrap_or(true),
            error_rate,
            latency,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            http.statuses.contains(302)
                && http.statuses.contains(200)
                && !http.statuses.contains(201)
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
        let error =
            GateFile::parse("checks:\n  - name: a\n    htp: {}\n").expect_err("unknown key");
        assert!(error.to_string().contains("unknown field `htp`"), "{error}");
        assert!(error.location().is_some());
        let error = GateFile::parse("defaults:\n  attempt_timeout: 5\n").expect_err("no unit");
        assert!(error.to_string().contains("with a unit"), "{error}");
    }

    #[test]
    fn status_lists() {
        let set = StatusSet::parse_list(&["2xx, 304".into()]).expect("valid");
        assert!(set.contains(204) && set.contains(304) && !set.contains(301));
        assert!(StatusSet::parse_list(&["99".into()]).is_err());
        assert!(StatusSet::parse_list(&["300-200".into()]).is_err());
        assert_eq!(
            StatusSet::parse_list(&[]).expect("empty"),
            StatusSet::default_success()
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1GB").is_err());
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
}
