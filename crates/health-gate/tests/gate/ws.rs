//! WebSocket checks against an in-process tokio-tungstenite server with scripted behaviour,
//! and against the scripted HTTP server for broken handshakes.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use health_gate::failure::FailureKind;
use test_support::http_server::{HttpServer, Reply};
use test_support::tls::TestCa;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::{last_failure, last_kind, only, run_yaml};

#[derive(Clone, Copy)]
enum Behaviour {
    Echo,
    Silent,
    DropWithoutClose,
    SlowEcho(Duration),
    SelectSubprotocol(&'static str),
    GreetFirst,
}

struct WsServer {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl WsServer {
    fn start(behaviour: Behaviour, tls: Option<rustls::ServerConfig>) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor =
            tls.map(|config| tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)));
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, behaviour).await;
                            }
                        }
                        None => serve(tcp, behaviour).await,
                    }
                });
            }
        });
        Self {
            addr,
            _runtime: runtime,
        }
    }

    fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}/chat", self.addr.port())
    }
}

async fn serve<S>(stream: S, behaviour: Behaviour)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The callback's error type is tungstenite's (an HTTP response); its size is not ours to pick.
    #[expect(
        clippy::result_large_err,
        reason = "the signature is tungstenite's Callback"
    )]
    let callback = move |_request: &Request, mut response: Response| {
        if let Behaviour::SelectSubprotocol(name) = behaviour {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", name.parse().expect("header"));
        }
        Ok(response)
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    if let Behaviour::GreetFirst = behaviour {
        let _ = socket.send(Message::text("welcome")).await;
    }
    while let Some(Ok(message)) = socket.next().await {
        match (behaviour, message) {
            // tungstenite answers a Close by itself; reading on until the stream ends flushes it.
            (_, Message::Close(_)) => {}
            (Behaviour::Silent, _) => {}
            (Behaviour::DropWithoutClose, _) => return,
            (Behaviour::SlowEcho(delay), Message::Text(text)) => {
                tokio::time::sleep(delay).await;
                let _ = socket.send(Message::Text(text)).await;
            }
            (_, Message::Text(text)) => {
                let _ = socket.send(Message::Text(text)).await;
            }
            _ => {}
        }
    }
}

fn ws_gate(url: &str, extra: &str) -> String {
    format!(
        "checks:\n  - name: chat\n    attempt_timeout: 2s\n    ws: {{ url: '{url}' {extra} }}\n    readiness: {{ interval: 50ms, deadline: 800ms }}\n"
    )
}

const CHAT: &str = ", steps: [{ send: '{\"type\":\"ping\"}' }, { expect: { json: [{ path: '$.type', equals: ping }] }, timeout: 500ms }, { ping: true }]";

#[test]
fn echo_steps_pass_with_a_clean_close() {
    let server = WsServer::start(Behaviour::Echo, None);
    let report = run_yaml(&ws_gate(&server.url("ws", "127.0.0.1"), CHAT));
    assert!(only(&report).passed, "{:?}", only(&report));
}

#[test]
fn a_server_that_never_answers_fails_at_the_step_deadline() {
    let server = WsServer::start(Behaviour::Silent, None);
    let report = run_yaml(&ws_gate(&server.url("ws", "127.0.0.1"), CHAT));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::Timeout);
    assert!(
        failure.detail.starts_with("step 2: nothing within 500ms"),
        "{}",
        failure.detail
    );
}

#[test]
fn the_first_unprompted_message_can_be_expected() {
    let server = WsServer::start(Behaviour::GreetFirst, None);
    let report = run_yaml(&ws_gate(
        &server.url("ws", "127.0.0.1"),
        ", steps: [{ expect: { contains: welcome } }]",
    ));
    assert!(only(&report).passed, "{:?}", only(&report));
    let report = run_yaml(&ws_gate(
        &server.url("ws", "127.0.0.1"),
        ", steps: [{ expect: { regex: '^bye' } }]",
    ));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::Assertion);
    assert!(
        failure
            .detail
            .contains("message `welcome` does not match /^bye/"),
        "{}",
        failure.detail
    );
}

#[test]
fn a_slow_reply_passes_or_times_out_by_its_step_deadline() {
    let server = WsServer::start(Behaviour::SlowEcho(Duration::from_millis(300)), None);
    let slow = ", steps: [{ send: hi }, { expect: { contains: hi }, timeout: 100ms }]";
    assert_eq!(
        last_kind(only(&run_yaml(&ws_gate(
            &server.url("ws", "127.0.0.1"),
            slow
        )))),
        Some(FailureKind::Timeout)
    );
    let patient = ", steps: [{ send: hi }, { expect: { contains: hi }, timeout: 1500ms }]";
    assert!(only(&run_yaml(&ws_gate(&server.url("ws", "127.0.0.1"), patient))).passed);
}

#[test]
fn closing_without_a_close_frame_is_unclean() {
    let server = WsServer::start(Behaviour::DropWithoutClose, None);
    let report = run_yaml(&ws_gate(
        &server.url("ws", "127.0.0.1"),
        ", steps: [{ send: hi }, { expect: { contains: hi } }]",
    ));
    assert_eq!(
        last_kind(only(&report)),
        Some(FailureKind::WsUncleanClose),
        "{:?}",
        only(&report).readiness.last_failure
    );
}

#[test]
fn subprotocols_must_be_selected_by_the_server() {
    let plain = WsServer::start(Behaviour::Echo, None);
    let report = run_yaml(&ws_gate(
        &plain.url("ws", "127.0.0.1"),
        ", subprotocols: [chat.v1]",
    ));
    assert_eq!(last_kind(only(&report)), Some(FailureKind::WsSubprotocol));
    let selecting = WsServer::start(Behaviour::SelectSubprotocol("chat.v1"), None);
    let report = run_yaml(&ws_gate(
        &selecting.url("ws", "127.0.0.1"),
        ", subprotocols: [chat.v2, chat.v1]",
    ));
    assert!(only(&report).passed, "{:?}", only(&report));
}

#[test]
fn an_http_200_instead_of_101_and_a_wrong_accept_key_are_told_apart() {
    let spa = HttpServer::start(|_| Reply::text(200, "<html>app</html>"));
    let report = run_yaml(&ws_gate(&spa.url("/chat").replace("http://", "ws://"), ""));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::Status);
    assert!(
        failure.detail.contains("status 200 instead of 101"),
        "{}",
        failure.detail
    );

    let switching = |connection: &'static str, accept: &'static str| {
        HttpServer::start(move |_| Reply::Respond {
            status: 101,
            headers: vec![
                ("upgrade".into(), "websocket".into()),
                ("connection".into(), connection.into()),
                ("sec-websocket-accept".into(), accept.into()),
            ],
            body: Vec::new(),
        })
    };
    let wrong_key = switching("Upgrade", "d3JvbmcgYWNjZXB0IGtleQ==");
    let report = run_yaml(&ws_gate(
        &wrong_key.url("/chat").replace("http://", "ws://"),
        "",
    ));
    assert_eq!(last_kind(only(&report)), Some(FailureKind::WsHandshake));

    // Decision (documented): `Connection: keep-alive, Upgrade` is refused, and says so.
    let listed = switching("keep-alive, Upgrade", "d3JvbmcgYWNjZXB0IGtleQ==");
    let report = run_yaml(&ws_gate(
        &listed.url("/chat").replace("http://", "ws://"),
        "",
    ));
    let failure = last_failure(&report);
    assert_eq!(failure.kind, FailureKind::WsHandshake);
    assert!(
        failure.detail.contains("keep-alive, Upgrade"),
        "{}",
        failure.detail
    );
}

#[test]
fn wss_uses_the_gate_tls_settings() {
    let ca = TestCa::new("ws CA");
    let cert = ca.issue("server", &["localhost"]);
    let server = WsServer::start(Behaviour::Echo, Some(ca.server_config(&cert, false)));
    let url = server.url("wss", "localhost");
    let report = run_yaml(&ws_gate(
        &url,
        &format!(
            ", tls: {{ ca_file: '{}' }}, steps: [{{ send: hi }}, {{ expect: {{ contains: hi }} }}]",
            ca.cert_file().display()
        ),
    ));
    assert!(only(&report).passed, "{:?}", only(&report));
    let report = run_yaml(&ws_gate(&url, ""));
    assert_eq!(
        last_kind(only(&report)),
        Some(FailureKind::TlsVerify),
        "{:?}",
        only(&report).readiness.last_failure
    );
}

#[test]
fn refused_connections_are_classified() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let report = run_yaml(&ws_gate(&format!("ws://{addr}/chat"), ""));
    assert_eq!(last_kind(only(&report)), Some(FailureKind::Refused));
}
