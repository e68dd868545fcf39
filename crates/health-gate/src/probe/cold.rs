//! The cold request: once a check is ready, one more request on a brand-new connection, timed
//! phase by phase — DNS (only when there is a name to look up), TCP connect, TLS handshake,
//! time to the first response byte, total — so a slow check can be pinned on the network
//! (connect is one round trip), on TLS, or on the service itself (TTFB).
//!
//! Why a hand-built connection ([`super::dial`]: `tokio::net::lookup_host`, `TcpStream`,
//! `tokio-rustls`, hyper's client `conn` handshake) rather than timing reqwest: reqwest reports
//! no phase timings, and its only hook, `connector_layer`, sees DNS + TCP + TLS as one future.
//! Timestamps taken from inside rustls (its session store is consulted when the ClientHello is
//! built) would rest on rustls internals. Dialling ourselves puts each phase between two
//! `Instant::now()` calls, with the check's own TLS settings, method, headers and body. It
//! times the first hop only (no redirects), and a check that goes through a proxy is not timed.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use hyper::body::Body as _;
use serde::Serialize;

use crate::config::{Check, ProbeSpec};

use super::ResolvedHeaders;
use super::dial::{Endpoint, NotDirect, Phases, http_parts};

/// Phase timings of the cold request, in milliseconds. A phase that was not reached, or does
/// not apply (no DNS for an IP address, no TLS for `http://`), is `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ColdRequest {
    /// Name lookup.
    pub dns_ms: Option<f64>,
    /// TCP handshake (every address tried, until one connected).
    pub connect_ms: Option<f64>,
    /// TLS handshake.
    pub tls_ms: Option<f64>,
    /// From sending the request to its response head (the service's think time plus one
    /// round trip).
    pub ttfb_ms: Option<f64>,
    /// From the start (before DNS) to the last body byte (to the response head for SSE).
    pub total_ms: Option<f64>,
    /// The address connected to.
    pub address: Option<SocketAddr>,
    /// `http/1.1`, `h2` or `tcp`.
    pub protocol: Option<&'static str>,
    /// Response status.
    pub status: Option<u16>,
    /// Why the request failed or was not timed.
    pub error: Option<String>,
}

impl ColdRequest {
    /// `dns / connect / tls / ttfb / total` in ms, `-` for a phase that does not apply.
    pub fn summary(&self) -> String {
        if let (Some(error), None) = (&self.error, self.connect_ms) {
            return format!("- ({error})");
        }
        let cell = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.1}"));
        format!(
            "{} / {} / {} / {} / {}",
            cell(self.dns_ms),
            cell(self.connect_ms),
            cell(self.tls_ms),
            cell(self.ttfb_ms),
            cell(self.total_ms)
        )
    }

    fn record(&mut self, phases: &Phases) {
        self.dns_ms = phases.dns.map(ms);
        self.connect_ms = phases.connect.map(ms);
        self.tls_ms = phases.tls.map(ms);
        self.address = phases.address;
    }
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Times one cold request for `check`; `None` for kinds that are not timed (gRPC, WebSocket,
/// command, metrics).
pub(crate) async fn measure(
    check: &Check,
    headers: &ResolvedHeaders,
    proxy_env: &(dyn Fn(&hyper::Uri) -> bool + Sync),
) -> Option<ColdRequest> {
    let mut cold = ColdRequest::default();
    let parts = match &check.probe {
        ProbeSpec::Tcp(spec) => Endpoint::tcp(&spec.addr).map(|endpoint| (endpoint, None)),
        _ => http_parts(check, headers, proxy_env)?
            .map(|(endpoint, exchange)| (endpoint, Some(exchange))),
    };
    let (endpoint, exchange) = match parts {
        Ok(parts) => parts,
        Err(NotDirect::Proxied) => {
            cold.error = Some("not timed: the check goes through a proxy".into());
            return Some(cold);
        }
        Err(NotDirect::Invalid(reason)) => {
            cold.error = Some(reason);
            return Some(cold);
        }
    };
    // An http body is read to its end (at most `max_body`); an SSE stream never ends.
    let max_body = match &check.probe {
        ProbeSpec::Http(spec) => Some(spec.max_body),
        _ => None,
    };
    let mut phases = Phases::default();
    let start = Instant::now();
    let timed = async {
        let connection = endpoint
            .dial(check.connect_timeout, exchange.is_some(), &mut phases)
            .await
            .map_err(|failure| failure.to_string())?;
        let (Some(exchange), Some(mut connection)) = (&exchange, connection) else {
            return Ok(None);
        };
        let http_error = |e: hyper::Error| crate::failure::error_chain(&e);
        let sent = Instant::now();
        let response = connection.send(exchange).await.map_err(http_error)?;
        let ttfb = sent.elapsed();
        let status = response.status().as_u16();
        if let Some(max_body) = max_body {
            let mut body = response.into_body();
            let mut read = 0u64;
            while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                if let Some(data) = frame.map_err(http_error)?.data_ref() {
                    read += data.len() as u64;
                    if read > max_body {
                        return Err(format!("body exceeded max_body ({max_body} bytes)"));
                    }
                }
            }
        }
        Ok(Some((connection.protocol(), ttfb, status)))
    };
    match tokio::time::timeout(check.attempt_timeout, timed).await {
        Ok(Ok(Some((protocol, ttfb, status)))) => {
            cold.protocol = Some(protocol);
            cold.ttfb_ms = Some(ms(ttfb));
            cold.status = Some(status);
            cold.total_ms = Some(ms(start.elapsed()));
        }
        Ok(Ok(None)) => {
            cold.protocol = Some("tcp");
            cold.total_ms = Some(ms(start.elapsed()));
        }
        Ok(Err(error)) => cold.error = Some(error),
        Err(_) => {
            cold.error = Some(format!(
                "not finished within the attempt timeout ({})",
                humantime::format_duration(check.attempt_timeout)
            ));
        }
    }
    cold.record(&phases);
    Some(cold)
}
