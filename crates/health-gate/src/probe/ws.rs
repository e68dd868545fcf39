//! WebSocket probe: handshake (101, accept key, subprotocol), then scripted steps (send, expect,
//! ping), each with its own deadline, then a close handshake reported as clean or unclean.
//!
//! Every attempt opens a new connection: a socket opened before a blue-green switch stays on
//! the old slot. The handshake is tungstenite's, which compares the response `Connection`
//! header with `Upgrade` as a whole: a server answering `Connection: keep-alive, Upgrade` is
//! refused as `ws_handshake` (RFC 6455 servers send exactly `Upgrade`; proxies that add
//! `keep-alive` break other strict clients too, so the gate reports it rather than hiding it).

use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::config::{Check, STEP_TIMEOUT, WsSpec, WsStep};
use crate::failure::{Failure, FailureKind, classify_connect_error, error_chain};

use super::{ResolvedHeaders, Sample, SetupError};
use crate::expect::text::excerpt;

/// A built WebSocket probe.
#[derive(Debug)]
pub(crate) struct WsProbe {
    spec: WsSpec,
    headers: ResolvedHeaders,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl WsProbe {
    /// Builds the probe (TLS configuration for `wss://`).
    pub(crate) fn build(
        spec: &WsSpec,
        _check: &Check,
        headers: &ResolvedHeaders,
    ) -> Result<Self, SetupError> {
        let tls = if spec.url.scheme() == "wss" {
            Some(Arc::new(super::tls::client_config(
                &spec.tls,
                &[b"http/1.1"],
            )?))
        } else {
            None
        };
        Ok(Self {
            spec: spec.clone(),
            headers: headers.clone(),
            tls,
        })
    }

    /// One connection: handshake, steps, close.
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        let start = Instant::now();
        let mut request = self
            .spec
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| Failure::new(FailureKind::Io, format!("invalid request: {e}")))?;
        for (name, value, _) in &self.headers.0 {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Failure::new(FailureKind::Io, format!("invalid header name {name}"))
            })?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| Failure::new(FailureKind::Io, "invalid header value"))?;
            value.set_sensitive(true);
            request.headers_mut().insert(name, value);
        }
        if !self.spec.subprotocols.is_empty() {
            let offered = self.spec.subprotocols.join(", ");
            let value = reqwest::header::HeaderValue::from_str(&offered)
                .map_err(|_| Failure::new(FailureKind::Io, "invalid subprotocol list"))?;
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let handshake =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector);
        let (mut socket, _response) =
            match tokio::time::timeout(self.spec.handshake_timeout, handshake).await {
                Ok(Ok(connected)) => connected,
                Ok(Err(error)) => return Err(classify_ws(&error)),
                Err(_) => {
                    return Err(Failure::new(
                        FailureKind::Timeout,
                        format!(
                            "no handshake within {}",
                            humantime::format_duration(self.spec.handshake_timeout)
                        ),
                    ));
                }
            };
        for (index, (step, timeout)) in self.spec.steps.iter().enumerate() {
            let label = index + 1;
            let outcome = tokio::time::timeout(*timeout, async {
                match step {
                    WsStep::Send(text) => socket
                        .send(Message::text(text.clone()))
                        .await
                        .map_err(|e| classify_ws(&e)),
                    WsStep::SendBinary(bytes) => socket
                        .send(Message::binary(bytes.clone()))
                        .await
                        .map_err(|e| classify_ws(&e)),
                    WsStep::Ping => {
                        socket
                            .send(Message::Ping(b"health-gate".to_vec().into()))
                            .await
                            .map_err(|e| classify_ws(&e))?;
                        loop {
                            match socket.next().await {
                                Some(Ok(Message::Pong(_))) => return Ok(()),
                                Some(Ok(Message::Close(frame))) => {
                                    return Err(closed_by_peer(frame.as_ref()));
                                }
                                Some(Ok(_)) => continue,
                                Some(Err(error)) => return Err(classify_ws(&error)),
                                None => {
                                    return Err(Failure::new(
                                        FailureKind::WsUncleanClose,
                                        "connection ended before the pong",
                                    ));
                                }
                            }
                        }
                    }
                    WsStep::Expect(expect) => loop {
                        let text = match socket.next().await {
                            Some(Ok(Message::Text(text))) => text.to_string(),
                            Some(Ok(Message::Binary(bytes))) => {
                                String::from_utf8_lossy(&bytes).into_owned()
                            }
                            Some(Ok(Message::Close(frame))) => {
                                return Err(closed_by_peer(frame.as_ref()));
                            }
                            Some(Ok(_)) => continue,
                            Some(Err(error)) => return Err(classify_ws(&error)),
                            None => {
                                return Err(Failure::new(
                                    FailureKind::WsUncleanClose,
                                    "connection ended before a message",
                                ));
                            }
                        };
                        return expect.check(&text).map_err(|reason| {
                            Failure::new(
                                FailureKind::Assertion,
                                format!("message `{}` {reason}", excerpt(&text, 200)),
                            )
                        });
                    },
                }
            })
            .await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(mut failure)) => {
                    failure.detail = format!("step {label}: {}", failure.detail);
                    return Err(failure);
                }
                Err(_) => {
                    return Err(Failure::new(
                        FailureKind::Timeout,
                        format!(
                            "step {label}: nothing within {}",
                            humantime::format_duration(*timeout)
                        ),
                    ));
                }
            }
        }
        let latency = start.elapsed();
        // Close handshake: send ours, wait for theirs.
        let close = tokio::time::timeout(STEP_TIMEOUT, async {
            socket.close(None).await.map_err(|e| classify_ws(&e))?;
            loop {
                match socket.next().await {
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => continue,
                    Some(Err(WsError::ConnectionClosed)) => return Ok(()),
                    Some(Err(error)) => {
                        return Err(Failure::new(
                            FailureKind::WsUncleanClose,
                            format!("close handshake: {}", error_chain(&error)),
                        ));
                    }
                }
            }
        })
        .await;
        match close {
            Ok(Ok(())) => Ok(Sample { latency }),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::new(
                FailureKind::WsUncleanClose,
                "the server did not answer the close handshake",
            )),
        }
    }
}

fn closed_by_peer(frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Failure {
    match frame {
        Some(frame) => Failure::new(
            FailureKind::WsUncleanClose,
            format!(
                "the server closed the connection ({} {})",
                u16::from(frame.code),
                frame.reason
            ),
        ),
        None => Failure::new(
            FailureKind::WsUncleanClose,
            "the server closed the connection",
        ),
    }
}

/// Classifies a tungstenite error.
fn classify_ws(error: &WsError) -> Failure {
    match error {
        WsError::Http(response) => Failure::new(
            FailureKind::Status,
            format!(
                "status {} instead of 101 Switching Protocols (not a WebSocket endpoint?)",
                response.status().as_u16()
            ),
        ),
        WsError::Protocol(ProtocolError::SecWebSocketAcceptKeyMismatch) => Failure::new(
            FailureKind::WsHandshake,
            "the server's Sec-WebSocket-Accept does not match the key sent",
        ),
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(problem)) => Failure::new(
            FailureKind::WsSubprotocol,
            format!("subprotocol: {problem}"),
        ),
        WsError::Protocol(ProtocolError::MissingConnectionUpgradeHeader) => Failure::new(
            FailureKind::WsHandshake,
            "the response's Connection header is not exactly `Upgrade` (a list such as `keep-alive, Upgrade` is refused)",
        ),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Failure::new(
            FailureKind::WsUncleanClose,
            "connection reset without a close handshake",
        ),
        WsError::Protocol(problem) => Failure::new(FailureKind::WsHandshake, problem.to_string()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            Failure::new(FailureKind::WsUncleanClose, error.to_string())
        }
        other => Failure::new(classify_connect_error(other), error_chain(other)),
    }
}
