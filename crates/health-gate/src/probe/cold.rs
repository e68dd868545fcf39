//! The cold request: once a check is ready, one more request on a brand-new connection, timed
//! phase by phase — DNS (only when there is a name to look up), TCP connect, TLS handshake,
//! time to the first response byte, total — so a slow check can be pinned on the network
//! (connect is one round trip), on TLS, or on the service itself (TTFB).
//!
//! Why a hand-built connection (`tokio::net::lookup_host`, `TcpStream`, `tokio-rustls`, hyper's
//! client `conn` handshake) rather than timing reqwest: reqwest reports no phase timings, and
//! its only hook, `connector_layer`, sees DNS + TCP + TLS as one future. Timestamps taken from
//! inside rustls (its session store is consulted when the ClientHello is built) would rest on
//! rustls internals. Dialing ourselves puts each phase between two `Instant::now()` calls, with
//! the check's own TLS configuration, method, headers and body. It times the first hop only (no
//! redirects) and is never made through a proxy: a check that goes through one is not timed.

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Body as _;
use rustls_pki_types::ServerName;
use serde::Serialize;

use crate::config::{Check, ProbeSpec, ProxyPolicy, TlsSpec};

use super::{ResolvedHeaders, header_map, is_loopback_host};

/// Phase timings of the cold request, in milliseconds. A phase that was not reached (or does
/// not apply: no DNS for an IP address, no TLS for `http://`) is `None`.
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
        if let Some(error) = &self.error {
            if self.connect_ms.is_none() {
                return format!("- ({error})");
            }
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
}

/// What the cold request sends: the parts of an http or sse check it needs.
struct Exchange {
    method: hyper::Method,
    url: reqwest::Url,
    headers: hyper::HeaderMap,
    body: String,
    /// Stop reading after this many bytes; `None`: do not read the body (SSE never ends).
    max_body: Option<u64>,
}

struct Target {
    host: String,
    port: u16,
    connect_to: Option<SocketAddr>,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    exchange: Option<Exchange>,
}

/// Times one cold request for `check`; `None` for kinds that are not timed (gRPC, WebSocket,
/// command, metrics).
pub async fn measure(
    check: &Check,
    headers: &ResolvedHeaders,
    proxy_env: &(dyn Fn(&hyper::Uri) -> bool + Sync),
) -> Option<ColdRequest> {
    let mut cold = ColdRequest::default();
    let target = match target(check, headers, proxy_env)? {
        Ok(target) => target,
        Err(reason) => {
            cold.error = Some(reason);
            return Some(cold);
        }
    };
    let timed = run(&target, check.connect_timeout, &mut cold);
    if tokio::time::timeout(check.attempt_timeout, timed)
        .await
        .is_err()
    {
        cold.error = Some(format!(
            "not finished within the attempt timeout ({})",
            humantime::format_duration(check.attempt_timeout)
        ));
    }
    Some(cold)
}

/// True when reqwest would send a request to `uri` through a proxy taken from the environment
/// (`HTTPS_PROXY`, `NO_PROXY`, ...), as reqwest's `system-proxy` reads them.
pub fn env_proxy_applies(uri: &hyper::Uri) -> bool {
    hyper_util::client::proxy::matcher::Matcher::from_system()
        .intercept(uri)
        .is_some()
}

fn target(
    check: &Check,
    headers: &ResolvedHeaders,
    proxy_env: &(dyn Fn(&hyper::Uri) -> bool + Sync),
) -> Option<Result<Target, String>> {
    let (url, tls, connect_to, proxy, exchange) = match &check.probe {
        ProbeSpec::Http(spec) => (
            &spec.url,
            &spec.tls,
            spec.connect_to,
            &spec.proxy,
            (
                spec.method.clone(),
                spec.body.clone().unwrap_or_default(),
                Some(spec.max_body),
            ),
        ),
        ProbeSpec::Sse(spec) => (
            &spec.url,
            &spec.tls,
            spec.connect_to,
            &spec.proxy,
            (hyper::Method::GET, String::new(), None),
        ),
        ProbeSpec::Tcp(spec) => {
            return Some(tcp_target(&spec.addr));
        }
        ProbeSpec::Grpc(_) | ProbeSpec::Ws(_) | ProbeSpec::Command(_) | ProbeSpec::Metrics(_) => {
            return None;
        }
    };
    Some(http_target(
        url, tls, connect_to, proxy, exchange, check, headers, proxy_env,
    ))
}

fn tcp_target(addr: &str) -> Result<Target, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse().ok()?)))
        .ok_or_else(|| format!("`{addr}` is not HOST:PORT"))?;
    Ok(Target {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        connect_to: None,
        tls: None,
        exchange: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn http_target(
    url: &reqwest::Url,
    tls: &TlsSpec,
    connect_to: Option<SocketAddr>,
    proxy: &ProxyPolicy,
    (method, body, max_body): (hyper::Method, String, Option<u64>),
    check: &Check,
    headers: &ResolvedHeaders,
    proxy_env: &(dyn Fn(&hyper::Uri) -> bool + Sync),
) -> Result<Target, String> {
    let host = url
        .host_str()
        .ok_or("the URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let uri: hyper::Uri = url.as_str().parse().map_err(|e| format!("{e}"))?;
    let proxied = !is_loopback_host(&host)
        && match proxy {
            ProxyPolicy::None => false,
            ProxyPolicy::Url(_) => true,
            ProxyPolicy::Env => proxy_env(&uri),
        };
    if proxied {
        return Err("not timed: the check goes through a proxy".into());
    }
    let tls = if url.scheme() == "https" {
        let config =
            super::tls::client_config(tls, &[b"h2", b"http/1.1"]).map_err(|e| e.to_string())?;
        let name = tls.server_name.clone().unwrap_or_else(|| host.clone());
        let name = ServerName::try_from(name).map_err(|e| format!("TLS server name: {e}"))?;
        Some((Arc::new(config), name))
    } else {
        None
    };
    let mut map = header_map(headers).map_err(|e| e.to_string())?;
    map.insert(
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static(concat!("health-gate/", env!("CARGO_PKG_VERSION"))),
    );
    if let ProbeSpec::Sse(_) = &check.probe {
        map.insert(
            hyper::header::ACCEPT,
            hyper::header::HeaderValue::from_static("text/event-stream"),
        );
    }
    Ok(Target {
        host,
        port,
        connect_to,
        tls,
        exchange: Some(Exchange {
            method,
            url: url.clone(),
            headers: map,
            body,
            max_body,
        }),
    })
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Cancels the connection task when the request is done (or cut by the timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run(target: &Target, connect_timeout: Duration, cold: &mut ColdRequest) {
    let start = Instant::now();
    if let Err(error) = phases(target, connect_timeout, cold, start).await {
        cold.error = Some(error);
    }
}

async fn phases(
    target: &Target,
    connect_timeout: Duration,
    cold: &mut ColdRequest,
    start: Instant,
) -> Result<(), String> {
    let addresses: Vec<SocketAddr> = match (target.connect_to, target.host.parse::<IpAddr>()) {
        (Some(address), _) => vec![address],
        (None, Ok(ip)) => vec![SocketAddr::new(ip, target.port)],
        (None, Err(_)) => {
            let looked_up = tokio::net::lookup_host((target.host.as_str(), target.port)).await;
            cold.dns_ms = Some(ms(start.elapsed()));
            looked_up
                .map_err(|e| format!("dns: cannot resolve {}: {e}", target.host))?
                .collect()
        }
    };
    let connecting = Instant::now();
    let mut last_error = format!("{} resolved to no address", target.host);
    let mut connected = None;
    for address in addresses {
        match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                connected = Some((stream, address));
                break;
            }
            Ok(Err(error)) => last_error = format!("connect {address}: {error}"),
            Err(_) => {
                last_error = format!(
                    "connect {address}: no connection within {}",
                    humantime::format_duration(connect_timeout)
                );
            }
        }
    }
    cold.connect_ms = Some(ms(connecting.elapsed()));
    let (stream, address) = connected.ok_or(last_error)?;
    cold.address = Some(address);
    // As reqwest does: small requests must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let Some(exchange) = &target.exchange else {
        cold.protocol = Some("tcp");
        cold.total_ms = Some(ms(start.elapsed()));
        return Ok(());
    };
    match &target.tls {
        Some((config, name)) => {
            let handshaking = Instant::now();
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name.clone(), stream)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            cold.tls_ms = Some(ms(handshaking.elapsed()));
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = hyper_util::rt::TokioIo::new(tls);
            request(io, h2, exchange, cold, start).await
        }
        None => {
            let io = hyper_util::rt::TokioIo::new(stream);
            request(io, false, exchange, cold, start).await
        }
    }
}

async fn request<T>(
    io: T,
    h2: bool,
    exchange: &Exchange,
    cold: &mut ColdRequest,
    start: Instant,
) -> Result<(), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let failed = |e: hyper::Error| format!("HTTP: {}", crate::failure::error_chain(&e));
    let mut builder = hyper::Request::builder().method(exchange.method.clone());
    builder = if h2 {
        builder.uri(exchange.url.as_str())
    } else {
        // HTTP/1.1: origin-form target plus Host (hyper's `conn` API adds neither).
        let host = match exchange.url.port() {
            Some(port) => format!("{}:{port}", exchange.url.host_str().unwrap_or_default()),
            None => exchange.url.host_str().unwrap_or_default().to_owned(),
        };
        let path = match exchange.url.query() {
            Some(query) => format!("{}?{query}", exchange.url.path()),
            None => exchange.url.path().to_owned(),
        };
        builder.uri(path).header(hyper::header::HOST, host)
    };
    let mut request = builder
        .body(exchange.body.clone())
        .map_err(|e| format!("request: {e}"))?;
    request.headers_mut().extend(exchange.headers.clone());
    let (response, _driver) = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(failed)?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        cold.protocol = Some("h2");
        let sent = Instant::now();
        let response = sender.send_request(request).await.map_err(failed)?;
        cold.ttfb_ms = Some(ms(sent.elapsed()));
        (response, driver)
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(failed)?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        cold.protocol = Some("http/1.1");
        let sent = Instant::now();
        let response = sender.send_request(request).await.map_err(failed)?;
        cold.ttfb_ms = Some(ms(sent.elapsed()));
        (response, driver)
    };
    cold.status = Some(response.status().as_u16());
    if let Some(max_body) = exchange.max_body {
        let mut body = response.into_body();
        let mut read = 0u64;
        while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            if let Some(data) = frame.map_err(failed)?.data_ref() {
                read += data.len() as u64;
                if read > max_body {
                    return Err(format!("body exceeded max_body ({max_body} bytes)"));
                }
            }
        }
    }
    cold.total_ms = Some(ms(start.elapsed()));
    Ok(())
}
