//! agent: seed 001's backend agent, one HTTP service. Listens on $PORT (a blue-green slot's
//! port) or $AGENT_PORT; names its slot ($SLOT) in `X-Slot` and its release in `X-Release`.
//! `/health` answers 200 unless `HEALTH_FAILS`; `/` and `/version` name the release (`/`
//! answers 500 when `API_FAILS`: healthy, yet failing its users).

/// A release whose health endpoint fails (a broken build, seen from outside).
const HEALTH_FAILS: bool = false;
/// A release whose API fails while /health still answers 200 (a subtler broken build).
const API_FAILS: bool = false;

use seed_services::{port, respond, version};

#[tokio::main]
async fn main() {
    let own = if std::env::var_os("PORT").is_some() {
        port("PORT")
    } else {
        port("AGENT_PORT")
    };
    let slot = std::env::var("SLOT").unwrap_or_else(|_| "none".to_owned());
    let listener = seed_services::bind("agent", own).await;
    seed_services::notify_ready("agent");
    seed_services::serve(listener, move |mut stream| {
        let slot = slot.clone();
        async move {
            let Some(request) = seed_services::read_request(&mut stream).await else {
                return;
            };
            let headers = [("X-Slot", slot), ("X-Release", seed_services::release_id())];
            match request.path.as_str() {
                "/health" if HEALTH_FAILS => {
                    respond(&mut stream, 503, "text/plain", "broken\n", &headers).await;
                }
                "/health" => respond(&mut stream, 200, "text/plain", "ok\n", &headers).await,
                "/" if API_FAILS => {
                    respond(&mut stream, 500, "text/plain", "internal error\n", &headers).await;
                }
                "/" | "/version" => {
                    respond(
                        &mut stream,
                        200,
                        "text/plain",
                        &(version() + "\n"),
                        &headers,
                    )
                    .await;
                }
                _ => respond(&mut stream, 404, "text/plain", "not found\n", &headers).await,
            }
        }
    })
    .await;
}
