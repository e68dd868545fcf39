//! Probes: one attempt against a target, classified on failure. Each probe is built once per
//! phase (readiness uses fresh connections per attempt; observation reuses a pool, like a load
//! generator would).

pub(crate) mod cloudwatch;
pub(crate) mod cold;
pub(crate) mod command;
pub(crate) mod dial;
pub(crate) mod grpc;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod sse;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod ws;

use std::time::Duration;

use crate::config::{Check, HeaderValue, ProbeSpec, ProxyPolicy};
use crate::failure::Failure;

/// A successful attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Start to the last byte needed for the verdict.
    pub latency: Duration,
}

/// Which phase a probe serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Fresh connection per attempt: "is it up now".
    Readiness,
    /// Pooled connections: "how does it behave under a burst".
    Observation,
}

/// A probe could not be built (bad TLS file, invalid header).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The HTTP client.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// A header from the environment is unset.
    #[error("header or metadata `{name}` reads ${variable}, which is not set")]
    MissingEnv {
        /// Header name.
        name: String,
        variable: String,
    },
    /// A value is not valid in a header or gRPC metadata.
    #[error("header or metadata `{name}` has a value that is not allowed there")]
    InvalidValue {
        /// Header name.
        name: String,
    },
}

/// Header values resolved from literals and the environment; secret values are sensitive.
#[derive(Debug, Clone, Default)]
pub struct ResolvedHeaders(pub Vec<(String, String, bool)>);

impl ResolvedHeaders {
    /// Resolves `headers`, reading `env:NAME` values through `lookup` (which masks them).
    pub fn resolve(
        headers: &[(String, HeaderValue)],
        lookup: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<Self, SetupError> {
        let mut resolved = Vec::new();
        for (name, value) in headers {
            match value {
                HeaderValue::Literal(text) => resolved.push((name.clone(), text.clone(), false)),
                HeaderValue::Env(variable) => {
                    let text = lookup(variable).ok_or_else(|| SetupError::MissingEnv {
                        name: name.clone(),
                        variable: variable.clone(),
                    })?;
                    resolved.push((name.clone(), text, true));
                }
            }
        }
        Ok(Self(resolved))
    }
}

/// A built probe.
#[derive(Debug)]
pub(crate) enum Probe {
    Http(http::HttpProbe),
    Sse(sse::SseProbe),
    /// gRPC health.
    Grpc(grpc::GrpcProbe),
    /// TCP connect.
    Tcp(tcp::TcpProbe),
    /// WebSocket.
    Ws(ws::WsProbe),
    Command(command::CommandProbe),
    /// Metrics (readiness: the source answers with data for every rule).
    Metrics(metrics::MetricsProbe),
}

impl Probe {
    /// Builds the probe for `check` in `phase`.
    pub(crate) fn build(
        check: &Check,
        headers: &ResolvedHeaders,
        phase: Phase,
    ) -> Result<Self, SetupError> {
        Ok(match &check.probe {
            ProbeSpec::Http(spec) => {
                Probe::Http(http::HttpProbe::build(spec, check, headers, phase)?)
            }
            ProbeSpec::Sse(spec) => Probe::Sse(sse::SseProbe::build(spec, check, headers)?),
            ProbeSpec::Grpc(spec) => {
                Probe::Grpc(grpc::GrpcProbe::build(spec, check, headers, phase)?)
            }
            ProbeSpec::Tcp(spec) => Probe::Tcp(tcp::TcpProbe::new(spec, check.connect_timeout)),
            ProbeSpec::Ws(spec) => Probe::Ws(ws::WsProbe::build(spec, check, headers)?),
            ProbeSpec::Command(spec) => {
                Probe::Command(command::CommandProbe::new(spec, check.attempt_timeout))
            }
            ProbeSpec::Metrics(spec) => {
                Probe::Metrics(metrics::MetricsProbe::build(spec, check, headers)?)
            }
        })
    }

    /// One attempt. Callers bound it with the attempt timeout as well; probes also enforce
    /// their own per-phase timeouts so the failure class is precise.
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        match self {
            Probe::Http(probe) => probe.attempt().await,
            Probe::Sse(probe) => probe.attempt().await,
            Probe::Grpc(probe) => probe.attempt().await,
            Probe::Tcp(probe) => probe.attempt().await,
            Probe::Ws(probe) => probe.attempt().await,
            Probe::Command(probe) => probe.attempt().await,
            Probe::Metrics(probe) => probe.attempt().await,
        }
    }
}

/// True when `host` is a loopback name or address: never sent through a proxy.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Applies the proxy policy to a reqwest client builder. A check with a fixed address
/// (`connect_to`) never goes through a proxy: the proxy would pick the address.
pub(crate) fn apply_proxy(
    builder: reqwest::ClientBuilder,
    policy: &ProxyPolicy,
    url: &reqwest::Url,
    connect_to: Option<std::net::SocketAddr>,
) -> Result<reqwest::ClientBuilder, SetupError> {
    let loopback = url.host_str().is_some_and(is_loopback_host);
    Ok(match policy {
        _ if loopback || connect_to.is_some() => builder.no_proxy(),
        ProxyPolicy::None => builder.no_proxy(),
        ProxyPolicy::Env => builder,
        ProxyPolicy::Url(proxy) => builder
            .proxy(reqwest::Proxy::all(proxy).map_err(|e| SetupError::Client(e.to_string()))?),
    })
}

/// Builds a reqwest header map from resolved headers.
pub(crate) fn header_map(
    headers: &ResolvedHeaders,
) -> Result<reqwest::header::HeaderMap, SetupError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value, sensitive) in &headers.0 {
        let header_name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SetupError::InvalidValue { name: name.clone() })?;
        let mut header_value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| SetupError::InvalidValue { name: name.clone() })?;
        header_value.set_sensitive(*sensitive);
        map.append(header_name, header_value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.3.4.5",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1", "localhost.example.com", "[::2]"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn env_headers_resolve_or_name_the_variable() {
        let headers = vec![
            ("Authorization".to_owned(), HeaderValue::Env("TOKEN".into())),
            ("X-Plain".to_owned(), HeaderValue::Literal("v".into())),
        ];
        let resolved = ResolvedHeaders::resolve(&headers, &mut |name| {
            (name == "TOKEN").then(|| "Bearer s3cret".to_owned())
        })
        .expect("resolves");
        assert_eq!(
            resolved.0[0],
            ("Authorization".into(), "Bearer s3cret".into(), true)
        );
        assert!(!resolved.0[1].2);
        let missing = ResolvedHeaders::resolve(&headers, &mut |_| None).expect_err("unset");
        assert_eq!(
            missing.to_string(),
            "header or metadata `Authorization` reads $TOKEN, which is not set"
        );
    }
}
