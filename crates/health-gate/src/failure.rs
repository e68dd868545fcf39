//! Why one attempt failed, classified so the report says what happened and some kinds can be
//! declared fatal (stop at once instead of waiting out the deadline).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The class of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Nothing listens on the port (fast to retry).
    Refused,
    /// TCP connect did not finish in `connect_timeout` (filtered or blackholed).
    ConnectTimeout,
    /// The host name did not resolve.
    Dns,
    /// The server's certificate was rejected (unknown CA, wrong name, expired).
    TlsVerify,
    /// The TLS handshake failed for another reason (protocol, client certificate required).
    TlsHandshake,
    /// The response status was not an expected one.
    Status,
    /// The response did not satisfy an assertion (body, JSON, content type, gRPC status).
    Assertion,
    /// The body exceeded `max_body`.
    BodyTooLarge,
    /// Redirects exceeded `max` or left the host.
    RedirectLoop,
    /// The attempt did not complete within `attempt_timeout`.
    Timeout,
    /// The peer answered NOT_SERVING / UNKNOWN (gRPC) — not ready yet.
    NotServing,
    /// The server has no gRPC health service (UNIMPLEMENTED): a configuration error.
    GrpcUnimplemented,
    /// The gRPC health service does not know the service name (NOT_FOUND).
    GrpcNotFound,
    /// An SSE stream opened but delivered no complete event in time.
    NoEvent,
    /// An SSE stream stalled between events longer than `idle_timeout`.
    Stalled,
    /// The WebSocket handshake was malformed (wrong `Sec-WebSocket-Accept`, missing or
    /// listed `Connection`/`Upgrade` headers).
    WsHandshake,
    /// The server did not select one of the requested subprotocols (or selected one unasked).
    WsSubprotocol,
    /// The WebSocket ended without a close handshake.
    WsUncleanClose,
    /// A command could not be started (not found, not executable): a configuration error.
    CommandStart,
    /// A command exited with an unexpected code.
    ExitStatus,
    /// A metrics source answered without the samples a rule needs.
    NoData,
    /// The connection broke mid-response or another I/O error happened.
    Io,
}

impl FailureKind {
    /// Every kind, for documentation and config validation.
    pub const ALL: [FailureKind; 22] = [
        FailureKind::Refused,
        FailureKind::ConnectTimeout,
        FailureKind::Dns,
        FailureKind::TlsVerify,
        FailureKind::TlsHandshake,
        FailureKind::Status,
        FailureKind::Assertion,
        FailureKind::BodyTooLarge,
        FailureKind::RedirectLoop,
        FailureKind::Timeout,
        FailureKind::NotServing,
        FailureKind::GrpcUnimplemented,
        FailureKind::GrpcNotFound,
        FailureKind::NoEvent,
        FailureKind::Stalled,
        FailureKind::WsHandshake,
        FailureKind::WsSubprotocol,
        FailureKind::WsUncleanClose,
        FailureKind::CommandStart,
        FailureKind::ExitStatus,
        FailureKind::NoData,
        FailureKind::Io,
    ];

    /// The name used in config files and reports.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::ConnectTimeout => "connect_timeout",
            FailureKind::Dns => "dns",
            FailureKind::TlsVerify => "tls_verify",
            FailureKind::TlsHandshake => "tls_handshake",
            FailureKind::Status => "status",
            FailureKind::Assertion => "assertion",
            FailureKind::BodyTooLarge => "body_too_large",
            FailureKind::RedirectLoop => "redirect_loop",
            FailureKind::Timeout => "timeout",
            FailureKind::NotServing => "not_serving",
            FailureKind::GrpcUnimplemented => "grpc_unimplemented",
            FailureKind::GrpcNotFound => "grpc_not_found",
            FailureKind::NoEvent => "no_event",
            FailureKind::Stalled => "stalled",
            FailureKind::WsHandshake => "ws_handshake",
            FailureKind::WsSubprotocol => "ws_subprotocol",
            FailureKind::WsUncleanClose => "ws_unclean_close",
            FailureKind::CommandStart => "command_start",
            FailureKind::ExitStatus => "exit_status",
            FailureKind::NoData => "no_data",
            FailureKind::Io => "io",
        }
    }

    /// Kinds that stop readiness at once unless configured otherwise: waiting cannot fix them.
    pub fn fatal_by_default(self) -> bool {
        matches!(
            self,
            FailureKind::GrpcUnimplemented | FailureKind::GrpcNotFound | FailureKind::CommandStart
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One failed attempt: its class and what exactly went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The class.
    pub kind: FailureKind,
    /// Human detail (status seen, assertion, error chain).
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` with `detail`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// The error and its `source()` chain as one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Classifies a connection-level error by walking its source chain for the I/O and TLS errors
/// underneath (reqwest, hyper and tonic all wrap them).
pub fn classify_connect_error(error: &(dyn std::error::Error + 'static)) -> FailureKind {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut kind = None;
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return classify_tls(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // Connectors wrap I/O errors in I/O errors (hyper-util around hyper-rustls), and
            // `io::Error::source` skips the wrapped value: unwrap `get_ref` all the way down.
            let mut inner = io.get_ref();
            while let Some(wrapped) = inner {
                if let Some(tls) = wrapped.downcast_ref::<rustls::Error>() {
                    return classify_tls(tls);
                }
                inner = wrapped
                    .downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref());
            }
            kind = kind.or(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some(FailureKind::Refused),
                std::io::ErrorKind::TimedOut => Some(FailureKind::ConnectTimeout),
                _ => None,
            });
        }
        let text = err.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            kind = kind.or(Some(FailureKind::Dns));
        }
        current = err.source();
    }
    kind.unwrap_or(FailureKind::Io)
}

fn classify_tls(error: &rustls::Error) -> FailureKind {
    match error {
        rustls::Error::InvalidCertificate(_) => FailureKind::TlsVerify,
        _ => FailureKind::TlsHandshake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for kind in FailureKind::ALL {
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let back: FailureKind = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn classifies_io_errors_inside_wrappers() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Wrapper(#[source] std::io::Error);
        let refused = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify_connect_error(&refused), FailureKind::Refused);
        // As hyper-util wraps hyper-rustls: an I/O error inside an I/O error.
        let tls = Wrapper(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        assert_eq!(classify_connect_error(&tls), FailureKind::TlsVerify);
        let handshake = Wrapper(std::io::Error::other(rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        )));
        assert_eq!(
            classify_connect_error(&handshake),
            FailureKind::TlsHandshake
        );
    }
}
