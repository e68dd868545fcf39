//! What the seed services share: their release (the directory above `bin/`), its VERSION line,
//! ports from the environment, a minimal HTTP/1.1 server (one request per connection), the
//! readiness file the custom service manager waits for, and a gRPC health client.
//!
//! Every service binds `0.0.0.0:<port>`: on a fleet host (its own network namespace) the
//! runner's gate reaches it at the host's address.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The release directory this binary runs from (`<root>/releases/<id>`; `bin/<name>` below it).
pub fn release_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The first line of the release's VERSION file (`<id> built <time>`), or `unknown`.
pub fn version() -> String {
    std::fs::read_to_string(release_dir().join("VERSION"))
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The release id (the VERSION line's first word).
pub fn release_id() -> String {
    version()
        .split_whitespace()
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

/// The port in `$name`; exits with a message when it is missing or invalid.
pub fn port(name: &str) -> u16 {
    match std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
    {
        Some(port) => port,
        None => fail(&format!("{name} is not set to a port (shared/.env)")),
    }
}

/// Prints `message` on stderr and exits 2.
pub fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}

/// Tells the service manager the service is ready: writes this process's id to
/// `$SERVICE_READY_FILE` (the custom manager's equivalent of systemd's `READY=1`).
pub fn notify_ready(service: &str) {
    eprintln!("{service} {} ready", version());
    if let Ok(path) = std::env::var("SERVICE_READY_FILE") {
        let temp = format!("{path}.tmp");
        if std::fs::write(&temp, format!("{}\n", std::process::id())).is_ok() {
            let _ = std::fs::rename(temp, path);
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads a request head (at most 16 KiB) from `stream`, consuming it.
pub async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return None;
        }
        // One byte at a time past the first read would be slow; the heads here are small and
        // nothing follows them (GET), so reading what arrived is enough.
        let read = stream.read(&mut byte).await.ok()?;
        if read == 0 {
            return None;
        }
        head.extend_from_slice(&byte[..read]);
        if head.windows(4).any(|window| window == b"\r\n\r\n") {
            break;
        }
    }
    parse_head(&head)
}

/// Peeks at a request head without consuming it (for a WebSocket handshake that reads it again).
pub async fn peek_request(stream: &TcpStream) -> Option<Request> {
    let mut buffer = vec![0u8; 16 * 1024];
    for _ in 0..200 {
        let seen = stream.peek(&mut buffer).await.ok()?;
        if seen == 0 {
            return None;
        }
        if buffer[..seen]
            .windows(4)
            .any(|window| window == b"\r\n\r\n")
        {
            return parse_head(&buffer[..seen]);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let headers = lines
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Request {
        method,
        path,
        headers,
    })
}

/// Writes a whole response (`Connection: close`) with `extra` headers.
pub async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    extra: &[(&str, String)],
) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Binds `0.0.0.0:port` or exits saying why.
pub async fn bind(service: &str, port: u16) -> TcpListener {
    match TcpListener::bind(("0.0.0.0", port)).await {
        Ok(listener) => listener,
        Err(error) => fail(&format!("{service}: cannot listen on port {port}: {error}")),
    }
}

/// Accepts connections on `listener` forever, each handled by `handler` on its own task.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static + Clone,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move { handler(stream).await });
    }
}

/// GET `http://127.0.0.1:port/path`: the status code and body (bounded by 2 s).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())?;
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// The gRPC health status of `service` on `127.0.0.1:port` (`SERVING`, `NOT_SERVING`, or the
/// error), bounded by 2 s.
pub async fn grpc_health(port: u16, service: &str) -> String {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let check = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .map_err(|error| error.to_string())?
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
            .map_err(|error| format!("connect: {error}"))?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|status| format!("{:?}", status.code()))?;
        Ok::<_, String>(match reply.into_inner().status {
            1 => "SERVING".to_owned(),
            2 => "NOT_SERVING".to_owned(),
            other => format!("status {other}"),
        })
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(status)) | Ok(Err(status)) => status,
        Err(_) => "timeout".to_owned(),
    }
}

/// Runs a tonic-health server for `service` on `0.0.0.0:port`; `serving` says whether it
/// reports SERVING (else NOT_SERVING, for ever). Returns when the server stops.
pub async fn grpc_health_server(name: &str, port: u16, service: &str, serving: bool) {
    use tonic_health::ServingStatus;
    let listener = bind(name, port).await;
    let (reporter, health) = tonic_health::server::health_reporter();
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status(service, status).await;
    reporter.set_service_status("", status).await;
    notify_ready(name);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    if let Err(error) = tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(incoming)
        .await
    {
        fail(&format!("{name}: {error}"));
    }
}
