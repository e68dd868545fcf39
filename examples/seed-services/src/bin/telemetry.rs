//! telemetry: HTTP on $TELEMETRY_PORT. `/events` is a server-sent event stream: a `telemetry`
//! event every 200 ms, naming the release.

use std::time::Duration;

use seed_services::{port, respond, version};
use tokio::io::AsyncWriteExt as _;

#[tokio::main]
async fn main() {
    let listener = seed_services::bind("telemetry", port("TELEMETRY_PORT")).await;
    seed_services::notify_ready("telemetry");
    seed_services::serve(listener, |mut stream| async move {
        let Some(request) = seed_services::read_request(&mut stream).await else {
            return;
        };
        match request.path.as_str() {
            "/events" => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let version = version();
                for sequence in 0u64.. {
                    let event = format!(
                        "event: telemetry\ndata: {{\"seq\":{sequence},\"version\":\"{version}\"}}\n\n"
                    );
                    if stream.write_all(event.as_bytes()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            "/health" => respond(&mut stream, 200, "text/plain", "ok\n", &[]).await,
            "/version" => respond(&mut stream, 200, "text/plain", &(version() + "\n"), &[]).await,
            _ => respond(&mut stream, 404, "text/plain", "not found\n", &[]).await,
        }
    })
    .await;
}
