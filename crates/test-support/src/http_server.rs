//! A real HTTP/1.1 server on 127.0.0.1 (plain or TLS) whose every response is scripted by the
//! test: normal responses, hangs, trickled bodies, huge bodies, SSE streams, abrupt closes.
//! Keep-alive is supported, so pooled clients reuse connections as against a real service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server saw of a request.
#[derive(Debug, Clone)]
pub struct Request {
    /// 0-based index over the server's lifetime.
    pub index: u64,
    /// The server's own address (for absolute links such as GitHub's `Link` header).
    pub local_addr: SocketAddr,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header lines, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response.
    Respond {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// Read the request, then never answer (the connection stays open).
    Hang,
    /// Close the connection without answering.
    Close,
    /// Headers at once, then `chunks` body chunks (chunked encoding) `every` apart, optionally
    /// never finishing.
    Stream {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body pieces.
        chunks: Vec<Vec<u8>>,
        /// Delay before each chunk.
        every: Duration,
        /// After the chunks, keep the connection open without finishing.
        hold_open: bool,
    },
    /// Headers at once, then a chunked body that never ends (64 KiB chunks, as fast as the
    /// client reads) until the client goes away: an endless `/metrics`, a runaway stream.
    Endless {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The bytes repeated forever.
        pattern: Vec<u8>,
    },
    /// A body of `size` bytes written without holding it in memory.
    Huge {
        /// Bytes.
        size: u64,
    },
    /// Wait `delay` after reading the request, then send `then` (a slow first byte).
    Delayed {
        /// Time before the first byte of the response.
        delay: Duration,
        /// The reply sent after the delay.
        then: Box<Reply>,
    },
}

impl Reply {
    /// `status` with a text body.
    pub fn text(status: u16, body: &str) -> Self {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: &str) -> Self {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A JSON error as GitHub's API sends them: `{"message": ...}`.
    pub fn github_error(status: u16, message: &str) -> Self {
        Reply::json(status, &format!("{{\"message\":{}}}", quote_json(message)))
    }

    /// Adds a header to a `Respond` or `Stream` reply.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        if let Reply::Respond { headers, .. } | Reply::Stream { headers, .. } = &mut self {
            headers.push((name.to_ascii_lowercase(), value.into()));
        }
        self
    }

    /// `self`, sent `delay` after the request was read.
    pub fn after(self, delay: Duration) -> Self {
        Reply::Delayed {
            delay,
            then: Box::new(self),
        }
    }

    /// A redirect.
    pub fn redirect(status: u16, location: &str) -> Self {
        Reply::Respond {
            status,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server; stops when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    tls: bool,
    requests: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<Request>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl HttpServer {
    /// Starts a plain HTTP server on 127.0.0.1:0; returns once it accepts connections.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_inner(Arc::new(handler), None)
    }

    /// Starts an HTTPS server with `config`.
    pub fn start_tls(
        config: rustls::ServerConfig,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_inner(Arc::new(handler), Some(Arc::new(config)))
    }

    fn start_inner(handler: Arc<Handler>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test server runtime");
        // Bound before returning: connections queue in the backlog even before `accept` runs.
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let is_tls = tls.is_some();
        let (counter, log_ref) = (requests.clone(), log.clone());
        runtime.spawn(async move {
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (handler, counter, log, acceptor) = (
                    handler.clone(),
                    counter.clone(),
                    log_ref.clone(),
                    acceptor.clone(),
                );
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(socket).await {
                                serve(stream, addr, handler, counter, log).await;
                            }
                        }
                        None => serve(socket, addr, handler, counter, log).await,
                    }
                });
            }
        });
        Self {
            addr,
            tls: is_tls,
            requests,
            log,
            runtime: Some(runtime),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or https), without a trailing slash.
    pub fn base_url(&self) -> String {
        self.url("")
    }

    /// `http://127.0.0.1:PORT{path}` (or https).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// `https://localhost:PORT{path}`, for certificate names.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Requests received so far.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve<S>(
    mut stream: S,
    local_addr: SocketAddr,
    handler: Arc<Handler>,
    counter: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<Request>>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(position) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break position + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body_length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + body_length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buffer[head_end..head_end + body_length].to_vec();
        buffer.drain(..head_end + body_length);
        let request = Request {
            index: counter.fetch_add(1, Ordering::SeqCst),
            local_addr,
            method,
            path,
            headers,
            body,
        };
        if let Ok(mut log) = log.lock() {
            log.push(request.clone());
        }
        let mut reply = handler(&request);
        while let Reply::Delayed { delay, then } = reply {
            tokio::time::sleep(delay).await;
            reply = *then;
        }
        let keep_going = match reply {
            Reply::Respond {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n",
                    reason(status),
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                stream.write_all(head.as_bytes()).await.is_ok()
                    && stream.write_all(&body).await.is_ok()
                    && stream.flush().await.is_ok()
            }
            Reply::Hang => {
                std::future::pending::<()>().await;
                false
            }
            Reply::Close => false,
            Reply::Stream {
                status,
                headers,
                chunks,
                every,
                hold_open,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\ntransfer-encoding: chunked\r\n",
                    reason(status)
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() || stream.flush().await.is_err()
                {
                    return;
                }
                for chunk in chunks {
                    tokio::time::sleep(every).await;
                    let framed = [
                        format!("{:x}\r\n", chunk.len()).into_bytes(),
                        chunk,
                        b"\r\n".to_vec(),
                    ]
                    .concat();
                    if stream.write_all(&framed).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                }
                if hold_open {
                    std::future::pending::<()>().await;
                }
                stream.write_all(b"0\r\n\r\n").await.is_ok() && stream.flush().await.is_ok()
            }
            Reply::Endless {
                status,
                headers,
                pattern,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\ntransfer-encoding: chunked\r\n",
                    reason(status)
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut block = Vec::with_capacity(64 * 1024 + pattern.len());
                while block.len() < 64 * 1024 {
                    block.extend_from_slice(if pattern.is_empty() { b"x" } else { &pattern });
                }
                let framed = [
                    format!("{:x}\r\n", block.len()).into_bytes(),
                    block,
                    b"\r\n".to_vec(),
                ]
                .concat();
                // Until the client closes the connection (a write fails).
                while stream.write_all(&framed).await.is_ok() {}
                return;
            }
            Reply::Huge { size } => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let block = vec![b'x'; 64 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    if stream.write_all(&block[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                true
            }
            Reply::Delayed { .. } => unreachable!("unwrapped above"),
        };
        if !keep_going {
            return;
        }
    }
}

fn quote_json(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A listening socket whose accept queue is full, so new connections hang in SYN-SENT until
/// the client's connect timeout: the loopback stand-in for a blackholed (filtered) port.
pub struct Blackhole {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<std::net::TcpStream>,
}

impl std::fmt::Debug for Blackhole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blackhole")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Blackhole {
    /// Binds 127.0.0.1:0 with a backlog of 0 and fills the queue (never accepting).
    pub fn start() -> Self {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().expect("addr").into())
            .expect("bind");
        listener.listen(0).expect("listen");
        let addr = listener
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("inet");
        // Linux queues backlog + 1 connections; fill them so further SYNs are dropped.
        let mut fillers = Vec::new();
        for _ in 0..2 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => fillers.push(stream),
                Err(_) => break,
            }
        }
        Self {
            addr,
            _listener: listener,
            _fillers: fillers,
        }
    }

    /// The address that never completes a connection.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
