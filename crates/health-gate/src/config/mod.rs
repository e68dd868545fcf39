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
//!   - name: chat
//!     ws: { url: "ws://127.0.0.1:8080/api/chat", steps: [{ send: ping }, { expect: { contains: pong } }] }
//!   - name: sandbox
//!     command: { shell: "command -v bwrap" }
//!   - name: errors
//!     metrics:
//!       scrape: http://127.0.0.1:8080/metrics     # or `prometheus:` / `cloudwatch:`
//!       window: 30s
//!       rules: [{ expr: 'increase(http_requests_total{code=~"5.."})', below: 5 }]
//! gate: { require: all }
//! ```
//!
//! Layout: [`file`] is the file as written; [`gate`] resolves it check by check, each probe
//! kind (http, grpc, sse, tcp, ws, command, metrics with its cloudwatch source) in its own
//! module (spec + resolution), with the shared pieces (headers, TLS, endpoint, expectations,
//! readiness, observation) beside them; `problems` places what is wrong with a file at its
//! lines. Nothing here depends on how a probe runs.

mod cloudwatch;
mod command;
mod defaults;
mod endpoint;
mod error;
mod expect;
mod file;
mod gate;
mod grpc;
mod headers;
mod http;
mod metrics;
mod observation;
mod parse;
mod problems;
mod readiness;
mod sse;
mod tcp;
mod tls;
mod units;
mod ws;

#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use file::GateFile;
pub use gate::Gate;
pub use parse::ParseError;
pub use problems::GateFileError;

pub(crate) use cloudwatch::{CloudWatchMetric, CloudWatchSource};
pub(crate) use command::{CommandSpec, Program};
pub(crate) use endpoint::ProxyPolicy;
pub(crate) use file::{
    CheckConfig, CommandConfig, DefaultsConfig, ExpectConfig, GrpcConfig, HttpConfig,
    ObserveConfig, ReadinessConfig, SseConfig, TcpConfig, ThresholdsConfig, TlsConfig, WsConfig,
};
pub(crate) use gate::{Check, ProbeSpec, Require};
pub(crate) use grpc::GrpcSpec;
pub(crate) use headers::HeaderValue;
pub(crate) use http::HttpSpec;
pub(crate) use metrics::{Bound, MetricsSpec, Rule, Source};
pub(crate) use observation::Observation;
pub(crate) use readiness::Readiness;
pub(crate) use sse::SseSpec;
pub(crate) use tcp::TcpSpec;
pub(crate) use tls::TlsSpec;
pub(crate) use units::{HumanDuration, parse_duration};
pub(crate) use ws::{STEP_TIMEOUT, WsSpec, WsStep};
