//! Command-line interface. Every flag also reads `HEALTH_GATE_<FLAG>` (see
//! `runner_protocol::cli`); the action passes its inputs that way.

use std::path::PathBuf;
use std::time::Duration;

use runner_protocol::input::LineList;
use runner_protocol::{CommonArgs, ToolCli};

fn duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}

/// Gate a deploy: wait for readiness, then observe success rate and latency, and decide go or
/// rollback.
///
/// Checks come from a gate file (`--gate-file`, YAML: http, grpc, sse, tcp, ws, command and metrics checks with
/// per-check readiness, observation and thresholds) and/or the quick-form flags below (one
/// check per `--url`, `--grpc-addr`, `--sse-url`, `--tcp-addr`; the timing and threshold flags
/// apply to those quick checks only).
///
/// Phase 1, readiness: attempts start every `--interval` until `--success-threshold`
/// consecutive successes, or fail at `--deadline`; each attempt is cut at `--attempt-timeout`.
/// Phase 2, observation (when `--observe-requests` > 0): a burst at `--concurrency`, then the
/// error rate and latency thresholds decide.
///
/// Outputs: `decision` (go | rollback) and `report` (JSON). A failed gate (`rollback`) exits 1.
#[derive(Debug, clap::Parser)]
#[command(name = "health-gate", version, max_term_width = 100)]
pub struct Cli {
    /// Gate file (YAML) with the checks; see the README for the format.
    #[arg(long, value_name = "PATH")]
    pub gate_file: Option<PathBuf>,

    /// Quick form: an http(s) check of this URL (named `url`).
    #[arg(long, value_name = "URL", help_heading = "Quick form")]
    pub url: Option<String>,

    /// Quick form: HTTP method of the `--url` check.
    #[arg(
        long,
        value_name = "METHOD",
        default_value = "GET",
        help_heading = "Quick form"
    )]
    pub method: String,

    /// Quick form: request headers, one `Name: value` per line; `Name: env:VAR` reads the
    /// value from $VAR and masks it.
    #[arg(long, value_name = "LINES", help_heading = "Quick form")]
    pub header: Vec<LineList>,

    /// Quick form: accepted statuses of the `--url` check, e.g. `200`, `200-299,304`, `2xx`.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "2xx",
        help_heading = "Quick form"
    )]
    pub expect_status: String,

    /// Quick form: the `--url` response body must contain this text.
    #[arg(long, value_name = "TEXT", help_heading = "Quick form")]
    pub body_contains: Option<String>,

    /// Quick form: a gRPC health check (grpc.health.v1) of HOST:PORT (named `grpc`).
    #[arg(long, value_name = "HOST:PORT", help_heading = "Quick form")]
    pub grpc_addr: Option<String>,

    /// Quick form: gRPC service names to check, one per line (default: the overall health "").
    #[arg(long, value_name = "LINES", help_heading = "Quick form")]
    pub grpc_service: Vec<LineList>,

    /// Quick form: use TLS for the `--grpc-addr` check.
    #[arg(long, value_name = "BOOL", help_heading = "Quick form")]
    pub grpc_tls: bool,

    /// Quick form: a server-sent events check of this URL (named `sse`): 200, text/event-stream,
    /// then one complete event within the attempt timeout.
    #[arg(long, value_name = "URL", help_heading = "Quick form")]
    pub sse_url: Option<String>,

    /// Quick form: a TCP connect check of HOST:PORT (named `tcp`). Not sufficient for HTTP
    /// readiness: proxies accept connections before the application listens.
    #[arg(long, value_name = "HOST:PORT", help_heading = "Quick form")]
    pub tcp_addr: Option<String>,

    /// Quick form: a WebSocket check of this ws:// or wss:// URL (named `ws`): handshake, then
    /// a clean close.
    #[arg(long, value_name = "URL", help_heading = "Quick form")]
    pub ws_url: Option<String>,

    /// Quick form: subprotocols the `--ws-url` check offers, one per line; the server must
    /// select one.
    #[arg(long, value_name = "LINES", help_heading = "Quick form")]
    pub ws_subprotocol: Vec<LineList>,

    /// Quick form: a command check (named `command`) run with `sh -c`, e.g. `command -v bwrap`;
    /// ready when it exits 0.
    #[arg(long, value_name = "SHELL", help_heading = "Quick form")]
    pub command: Option<String>,

    /// Time between attempt starts while waiting for readiness.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration, help_heading = "Readiness (quick form)")]
    pub interval: Duration,

    /// Wait this long before the first attempt.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration, help_heading = "Readiness (quick form)")]
    pub initial_delay: Duration,

    /// Whole-attempt timeout: DNS + connect + TLS + headers + body.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration, help_heading = "Readiness (quick form)")]
    pub attempt_timeout: Duration,

    /// TCP connect timeout.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration, help_heading = "Readiness (quick form)")]
    pub connect_timeout: Duration,

    /// Give up waiting for readiness after this long (from the gate's start).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration, help_heading = "Readiness (quick form)")]
    pub deadline: Duration,

    /// Consecutive successful attempts needed to be ready.
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        help_heading = "Readiness (quick form)"
    )]
    pub success_threshold: u32,

    /// Requests in the observation burst after readiness (0: no observation phase).
    #[arg(
        long,
        value_name = "N",
        default_value = "0",
        help_heading = "Observation (quick form)"
    )]
    pub observe_requests: u64,

    /// Requests in flight at once during observation.
    #[arg(
        long,
        value_name = "N",
        default_value = "5",
        help_heading = "Observation (quick form)"
    )]
    pub concurrency: u32,

    /// First observation requests left out of the statistics (connection set-up).
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        help_heading = "Observation (quick form)"
    )]
    pub warmup: u64,

    /// Error-rate limit of the observation: `5%`, `<= 5%`, `< 0.05`, `== 0%`.
    #[arg(
        long,
        value_name = "LIMIT",
        default_value = "5%",
        help_heading = "Observation (quick form)"
    )]
    pub max_error_rate: String,

    /// More thresholds, k6 style, one per line: `p(95)<200` (ms), `max<1000`, `rate<0.01`.
    #[arg(long, value_name = "LINES", help_heading = "Observation (quick form)")]
    pub threshold: Vec<LineList>,

    /// Extra CA certificates (PEM) to trust for https/grpc checks.
    #[arg(long, value_name = "PATH", help_heading = "TLS (quick form)")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; needs --client-key.
    #[arg(long, value_name = "PATH", help_heading = "TLS (quick form)")]
    pub client_cert: Option<PathBuf>,

    /// Client private key (PEM) for mutual TLS.
    #[arg(long, value_name = "PATH", help_heading = "TLS (quick form)")]
    pub client_key: Option<PathBuf>,

    /// Verify server certificates against this name instead of the host dialled (e.g. a URL
    /// with an IP address); also the SNI of the cold request and gRPC.
    #[arg(long, value_name = "NAME", help_heading = "TLS (quick form)")]
    pub tls_server_name: Option<String>,

    /// Do not verify server certificates. Dangerous: any server is accepted; warned about loudly.
    #[arg(long, value_name = "BOOL", help_heading = "TLS (quick form)")]
    pub insecure: bool,

    /// Connect the `--url`/`--sse-url` checks to this IP:PORT, keeping the URL's host name
    /// for TLS and the Host header (like curl --resolve).
    #[arg(long, value_name = "IP:PORT", help_heading = "Quick form")]
    pub connect_to: Option<String>,

    /// Baseline file for relative thresholds (`p95 < 2x baseline`); overrides the gate file's.
    #[arg(long, value_name = "PATH", help_heading = "Baseline and report")]
    pub baseline: Option<PathBuf>,

    /// After a passing gate, write the observed latency statistics here as the new baseline.
    #[arg(long, value_name = "PATH", help_heading = "Baseline and report")]
    pub record_baseline: Option<PathBuf>,

    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH", help_heading = "Baseline and report")]
    pub report_file: Option<PathBuf>,

    /// Flags shared by every binary of the suite.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl ToolCli for Cli {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}
