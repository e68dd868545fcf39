//! Connections dialled by hand — `tokio::net::lookup_host`, `TcpStream`, `tokio-rustls`,
//! hyper's client `conn` handshake — for the two places where reqwest is in the way:
//!
//! - the cold request ([`super::cold`]) times every phase, which reqwest does not expose;
//! - the observation burst gives each worker its own keep-alive connection ([`DirectHttp`]),
//!   as wrk and hey do: no pool lookup, no URL re-parsing, no layered timeouts per request.
//!
//! Only for targets reached directly: a check that goes through a proxy, or follows redirects,
//! keeps using reqwest.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Body as _;
use rustls_pki_types::ServerName;

use crate::config::{Check, HttpSpec, ProbeSpec, ProxyPolicy, TlsSpec};
use crate::failure::{Failure, FailureKind, classify_connect_error, error_chain};

use super::{ResolvedHeaders, header_map, is_loopback_host};

/// Where and how to connect.
#[derive(Debug)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    connect_to: Option<SocketAddr>,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

/// What to send on a connection.
#[derive(Debug)]
pub(crate) struct Exchange {
    method: hyper::Method,
    /// `https://host:port/path?query` (HTTP/2 `:scheme`/`:authority`/`:path`).
    absolute: hyper::Uri,
    /// `/path?query` (HTTP/1.1 request target).
    origin: hyper::Uri,
    /// `host[:port]` for the HTTP/1.1 `Host` header.
    host: hyper::header::HeaderValue,
    headers: hyper::HeaderMap,
    body: String,
}

/// When each phase of a dial ended; `None` when it did not happen.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Phases {
    /// Name lookup.
    pub dns: Option<Duration>,
    /// TCP handshake.
    pub connect: Option<Duration>,
    /// TLS handshake.
    pub tls: Option<Duration>,
    /// The address connected to.
    pub address: Option<SocketAddr>,
}

/// A request sender over HTTP/1.1 or HTTP/2 (as ALPN decided).
pub(crate) enum Sender {
    /// HTTP/1.1.
    H1(hyper::client::conn::http1::SendRequest<String>),
    /// HTTP/2.
    H2(hyper::client::conn::http2::SendRequest<String>),
}

/// An open connection: its sender and the task driving it (stopped on drop).
pub(crate) struct Connection {
    /// Sends requests.
    pub sender: Sender,
    _driver: AbortOnDrop,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.protocol())
    }
}

impl Connection {
    /// `http/1.1` or `h2`.
    pub(crate) fn protocol(&self) -> &'static str {
        match self.sender {
            Sender::H1(_) => "http/1.1",
            Sender::H2(_) => "h2",
        }
    }

    /// Still usable for another request.
    pub(crate) fn is_open(&self) -> bool {
        match &self.sender {
            Sender::H1(sender) => !sender.is_closed(),
            Sender::H2(sender) => !sender.is_closed(),
        }
    }

    /// Sends `exchange`'s request; resolves at the response head.
    pub(crate) async fn send(
        &mut self,
        exchange: &Exchange,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        match &mut self.sender {
            Sender::H1(sender) => {
                sender.ready().await?;
                sender.send_request(exchange.request(false)).await
            }
            Sender::H2(sender) => {
                sender.ready().await?;
                sender.send_request(exchange.request(true)).await
            }
        }
    }
}

/// Stops the connection task when the connection is dropped (or cut by a timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// True when reqwest would send a request to `uri` through a proxy taken from the environment
/// (`HTTPS_PROXY`, `NO_PROXY`, ...), read as reqwest's `system-proxy` reads it.
pub(crate) fn env_proxy_applies(uri: &hyper::Uri) -> bool {
    hyper_util::client::proxy::matcher::Matcher::from_system()
        .intercept(uri)
        .is_some()
}

/// Why an endpoint cannot be dialled by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotDirect {
    /// Reached through a proxy.
    Proxied,
    /// The target is not usable (bad TLS file, ...).
    Invalid(String),
}

impl Endpoint {
    /// The endpoint of a `HOST:PORT` TCP target.
    pub(crate) fn tcp(addr: &str) -> Result<Self, NotDirect> {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse().ok()?)))
            .ok_or_else(|| NotDirect::Invalid(format!("`{addr}` is not HOST:PORT")))?;
        Ok(Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            connect_to: None,
            tls: None,
        })
    }

    /// The endpoint of an http(s) URL, unless a proxy is in the way.
    pub(crate) fn http(
        url: &reqwest::Url,
        tls: &TlsSpec,
        connect_to: Option<SocketAddr>,
        proxy: &ProxyPolicy,
        proxy_env: &(dyn Fn(&hyper::Uri) -> bool + Sync),
    ) -> Result<Self, NotDirect> {
        let invalid = |e: String| NotDirect::Invalid(e);
        let host = url
            .host_str()
            .ok_or_else(|| invalid("the URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("the URL has no port".into()))?;
        let uri: hyper::Uri = url.as_str().parse().map_err(|e| invalid(format!("{e}")))?;
        let proxied = !is_loopback_host(&host)
            && connect_to.is_none()
            && match proxy {
                ProxyPolicy::None => false,
                ProxyPolicy::Url(_) => true,
                ProxyPolicy::Env => proxy_env(&uri),
            };
        if proxied {
            return Err(NotDirect::Proxied);
        }
        let tls = if url.scheme() == "https" {
            let config = super::tls::client_config(tls, &[b"h2", b"http/1.1"])
                .map_err(|e| invalid(e.to_string()))?;
            let name = tls.server_name.clone().unwrap_or_else(|| host.clone());
            let name =
                ServerName::try_from(name).map_err(|e| invalid(format!("TLS server name: {e}")))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            connect_to,
            tls,
        })
    }

    /// Resolves (unless the host is an address or `connect_to` is set) and connects to the
    /// first address that answers; with `http`, completes TLS and the HTTP handshake.
    pub(crate) async fn dial(
        &self,
        connect_timeout: Duration,
        http: bool,
        phases: &mut Phases,
    ) -> Result<Option<Connection>, Failure> {
        let addresses: Vec<SocketAddr> = match (self.connect_to, self.host.parse::<IpAddr>()) {
            (Some(address), _) => vec![address],
            (None, Ok(ip)) => vec![SocketAddr::new(ip, self.port)],
            (None, Err(_)) => {
                let start = Instant::now();
                let looked_up = tokio::net::lookup_host((self.host.as_str(), self.port)).await;
                phases.dns = Some(start.elapsed());
                looked_up
                    .map_err(|e| {
                        Failure::new(
                            FailureKind::Dns,
                            format!("cannot resolve {}: {e}", self.host),
                        )
                    })?
                    .collect()
            }
        };
        let start = Instant::now();
        let mut last = Failure::new(
            FailureKind::Dns,
            format!("{} resolved to no address", self.host),
        );
        let mut connected = None;
        for address in addresses {
            match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(address))
                .await
            {
                Ok(Ok(stream)) => {
                    connected = Some((stream, address));
                    break;
                }
                Ok(Err(error)) => {
                    let kind = match classify_connect_error(&error) {
                        FailureKind::Refused => FailureKind::Refused,
                        _ => FailureKind::Io,
                    };
                    last = Failure::new(kind, format!("connect {address}: {error}"));
                }
                Err(_) => {
                    last = Failure::new(
                        FailureKind::ConnectTimeout,
                        format!(
                            "connect {address}: no connection within {}",
                            humantime::format_duration(connect_timeout)
                        ),
                    );
                }
            }
        }
        phases.connect = Some(start.elapsed());
        let (stream, address) = connected.ok_or(last)?;
        phases.address = Some(address);
        if !http {
            return Ok(None);
        }
        // As reqwest does: small requests must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let http_failure = |e: hyper::Error| Failure::new(FailureKind::Io, error_chain(&e));
        match &self.tls {
            Some((config, name)) => {
                let start = Instant::now();
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| {
                        Failure::new(
                            classify_connect_error(&e),
                            format!("TLS handshake: {}", error_chain(&e)),
                        )
                    })?;
                phases.tls = Some(start.elapsed());
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                handshake(hyper_util::rt::TokioIo::new(tls), h2)
                    .await
                    .map(Some)
                    .map_err(http_failure)
            }
            None => handshake(hyper_util::rt::TokioIo::new(stream), false)
                .await
                .map(Some)
                .map_err(http_failure),
        }
    }
}

async fn handshake<T>(io: T, h2: bool) -> Result<Connection, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if h2 {
        let (sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        Ok(Connection {
            sender: Sender::H2(sender),
            _driver: driver,
        })
    } else {
        let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        Ok(Connection {
            sender: Sender::H1(sender),
            _driver: driver,
        })
    }
}

impl Exchange {
    /// The request of an http or sse check (`sse` adds `Accept: text/event-stream`).
    pub(crate) fn new(
        method: hyper::Method,
        url: &reqwest::Url,
        headers: &ResolvedHeaders,
        body: Option<&str>,
        sse: bool,
    ) -> Result<Self, NotDirect> {
        let invalid = |e: String| NotDirect::Invalid(e);
        let absolute: hyper::Uri = url.as_str().parse().map_err(|e| invalid(format!("{e}")))?;
        let origin: hyper::Uri = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
        .parse()
        .map_err(|e| invalid(format!("{e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(invalid("the URL has no host".into())),
        };
        let mut map = header_map(headers).map_err(|e| invalid(e.to_string()))?;
        map.insert(
            hyper::header::USER_AGENT,
            hyper::header::HeaderValue::from_static(concat!(
                "health-gate/",
                env!("CARGO_PKG_VERSION")
            )),
        );
        if sse {
            map.insert(
                hyper::header::ACCEPT,
                hyper::header::HeaderValue::from_static("text/event-stream"),
            );
        }
        Ok(Self {
            method,
            absolute,
            origin,
            host: hyper::header::HeaderValue::from_str(&host)
                .map_err(|e| invalid(format!("{e}")))?,
            headers: map,
            body: body.unwrap_or_default().to_owned(),
        })
    }

    fn request(&self, h2: bool) -> hyper::Request<String> {
        let mut request = hyper::Request::new(self.body.clone());
        *request.method_mut() = self.method.clone();
        *request.headers_mut() = self.headers.clone();
        if h2 {
            *request.uri_mut() = self.absolute.clone();
        } else {
            // HTTP/1.1: origin-form target plus Host (hyper's `conn` API adds neither).
            *request.uri_mut() = self.origin.clone();
            request
                .headers_mut()
                .insert(hyper::header::HOST, self.host.clone());
        }
        request
    }
}

/// The endpoint and request of `check`, when it is an http or sse check.
pub(crate) fn http_parts(
    check: &Check,
    headers: &ResolvedHeaders,
    proxy_env: &(dyn Fn(&hyper::Uri) -> bool + Sync),
) -> Option<Result<(Endpoint, Exchange), NotDirect>> {
    let parts = |url, tls, connect_to, proxy, method, body: Option<&str>, sse| {
        let endpoint = Endpoint::http(url, tls, connect_to, proxy, proxy_env)?;
        let exchange = Exchange::new(method, url, headers, body, sse)?;
        Ok((endpoint, exchange))
    };
    match &check.probe {
        ProbeSpec::Http(spec) => Some(parts(
            &spec.url,
            &spec.tls,
            spec.connect_to,
            &spec.proxy,
            spec.method.clone(),
            spec.body.as_deref(),
            false,
        )),
        ProbeSpec::Sse(spec) => Some(parts(
            &spec.url,
            &spec.tls,
            spec.connect_to,
            &spec.proxy,
            hyper::Method::GET,
            None,
            true,
        )),
        _ => None,
    }
}

/// One observation worker's own keep-alive connection to an http check, judged exactly as
/// [`super::http::HttpProbe`] judges reqwest's responses. Redialled when the server closes it.
#[derive(Debug)]
pub(crate) struct DirectHttp {
    shared: Arc<DirectShared>,
    connection: Option<Connection>,
}

#[derive(Debug)]
struct DirectShared {
    endpoint: Endpoint,
    exchange: Exchange,
    spec: HttpSpec,
    connect_timeout: Duration,
}

/// Builds [`DirectHttp`] workers for one check.
#[derive(Debug, Clone)]
pub(crate) struct DirectHttpFactory(Arc<DirectShared>);

impl DirectHttpFactory {
    /// A factory for `check`, when its observation can run on direct connections: an http
    /// check that does not follow redirects and is not proxied.
    pub(crate) fn for_check(
        check: &Check,
        headers: &ResolvedHeaders,
        proxy_env: &(dyn Fn(&hyper::Uri) -> bool + Sync),
    ) -> Option<Self> {
        let ProbeSpec::Http(spec) = &check.probe else {
            return None;
        };
        if spec.follow_redirects {
            return None;
        }
        let (endpoint, exchange) = http_parts(check, headers, proxy_env)?.ok()?;
        Some(Self(Arc::new(DirectShared {
            endpoint,
            exchange,
            spec: spec.clone(),
            connect_timeout: check.connect_timeout,
        })))
    }

    /// A worker with no connection yet (it dials on its first request).
    pub(crate) fn worker(&self) -> DirectHttp {
        DirectHttp {
            shared: self.0.clone(),
            connection: None,
        }
    }
}

impl DirectHttp {
    /// One request on this worker's connection (dialled or redialled when needed).
    pub(crate) async fn attempt(&mut self) -> Result<super::Sample, Failure> {
        let start = Instant::now();
        let shared = &*self.shared;
        let mut connection = match self.connection.take() {
            Some(connection) if connection.is_open() => connection,
            _ => shared
                .endpoint
                .dial(shared.connect_timeout, true, &mut Phases::default())
                .await?
                .ok_or_else(|| Failure::new(FailureKind::Io, "no HTTP connection"))?,
        };
        let response = match connection.send(&shared.exchange).await {
            Ok(response) => response,
            // Closed by the server before the request went out (a keep-alive timeout): the
            // request was never sent, so send it on a new connection, as reqwest's pool does.
            Err(error) if error.is_canceled() || error.is_closed() => {
                connection = shared
                    .endpoint
                    .dial(shared.connect_timeout, true, &mut Phases::default())
                    .await?
                    .ok_or_else(|| Failure::new(FailureKind::Io, "no HTTP connection"))?;
                connection
                    .send(&shared.exchange)
                    .await
                    .map_err(|e| Failure::new(FailureKind::Io, error_chain(&e)))?
            }
            Err(error) => return Err(Failure::new(FailureKind::Io, error_chain(&error))),
        };
        let (head, mut body) = response.into_parts();
        let judged = async {
            super::http::check_head(&shared.spec, head.status.as_u16(), &head.headers)?;
            let mut sink = super::http::BodySink::new(&shared.spec);
            read_body(&mut body, &mut sink).await?;
            sink.finish(&shared.spec)
        }
        .await;
        // Keep the connection for the next request unless the body was left unread.
        if judged.is_ok() || body.is_end_stream() {
            self.connection = Some(connection);
        }
        judged.map(|()| super::Sample {
            latency: start.elapsed(),
        })
    }
}

async fn read_body(
    body: &mut hyper::body::Incoming,
    sink: &mut super::http::BodySink,
) -> Result<(), Failure> {
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| Failure::new(FailureKind::Io, error_chain(&e)))?;
        if let Some(data) = frame.data_ref() {
            sink.push(data)?;
        }
    }
    Ok(())
}
