//! gateway: HTTP + WebSocket on $GATEWAY_PORT, in front of the others.
//!
//! - `/` and `/index.html`: the frontend (the release's `frontend/dist/index.html`)
//! - `/api/health`: 200 `{"status":"ok"}` when the orchestrator's `/health` is 200
//! - `/api/telemetry/stream`: telemetry's SSE stream, passed through
//! - `/api/chat`: WebSocket chat; `{"type":"ping"}` is answered `{"type":"pong",...}`
//! - `/version`: the release

use futures_util::{SinkExt as _, StreamExt as _};
use seed_services::{http_get, port, respond, version};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let own = port("GATEWAY_PORT");
    let orchestrator = port("ORCHESTRATOR_PORT");
    let telemetry = port("TELEMETRY_PORT");
    let listener = seed_services::bind("gateway", own).await;
    seed_services::notify_ready("gateway");
    seed_services::serve(listener, move |stream| async move {
        let Some(peeked) = seed_services::peek_request(&stream).await else {
            return;
        };
        let upgrade = peeked
            .header("upgrade")
            .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
        if upgrade && peeked.path == "/api/chat" {
            chat(stream).await;
        } else {
            http(stream, orchestrator, telemetry).await;
        }
    })
    .await;
}

async fn chat(stream: TcpStream) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = socket.next().await {
        let reply = match message {
            Message::Text(text) if text.contains("\"ping\"") => {
                format!("{{\"type\":\"pong\",\"version\":\"{}\"}}", version())
            }
            Message::Text(text) => format!("{{\"type\":\"echo\",\"text\":{:?}}}", text.as_str()),
            // Polling on answers the peer's close frame: a clean close handshake.
            Message::Close(_) => continue,
            _ => continue,
        };
        if socket.send(Message::text(reply)).await.is_err() {
            return;
        }
    }
}

async fn http(mut stream: TcpStream, orchestrator: u16, telemetry: u16) {
    let Some(request) = seed_services::read_request(&mut stream).await else {
        return;
    };
    let release = [("X-Release", seed_services::release_id())];
    match request.path.as_str() {
        "/" | "/index.html" => {
            let page = seed_services::release_dir().join("frontend/dist/index.html");
            match std::fs::read_to_string(page) {
                Ok(html) => respond(&mut stream, 200, "text/html", &html, &release).await,
                Err(_) => respond(&mut stream, 404, "text/plain", "no frontend\n", &release).await,
            }
        }
        "/api/health" => {
            let upstream = http_get(orchestrator, "/health").await;
            let ok = upstream.as_ref().is_some_and(|(status, _)| *status == 200);
            let body = format!(
                "{{\"status\":\"{}\",\"version\":\"{}\",\"orchestrator\":{}}}\n",
                if ok { "ok" } else { "degraded" },
                version(),
                upstream.map_or("null".to_owned(), |(_, body)| body.trim().to_owned())
            );
            respond(
                &mut stream,
                if ok { 200 } else { 503 },
                "application/json",
                &body,
                &release,
            )
            .await;
        }
        "/api/telemetry/stream" => {
            let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", telemetry)).await else {
                respond(
                    &mut stream,
                    502,
                    "text/plain",
                    "telemetry is down\n",
                    &release,
                )
                .await;
                return;
            };
            let forward = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n";
            if upstream.write_all(forward.as_bytes()).await.is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
            }
        }
        "/version" => {
            respond(
                &mut stream,
                200,
                "text/plain",
                &(version() + "\n"),
                &release,
            )
            .await
        }
        "/health" => respond(&mut stream, 200, "text/plain", "ok\n", &release).await,
        _ => respond(&mut stream, 404, "text/plain", "not found\n", &release).await,
    }
}
