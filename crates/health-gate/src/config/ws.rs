//! A `ws:` check: its validated spec (URL, handshake, scripted steps) and how it is resolved.

use std::time::Duration;

use crate::expect::text::TextExpect;

use super::error::{ConfigError, config_error};
use super::expect::resolve_text;
use super::file::{DefaultsConfig, WsConfig};
use super::headers::{HeaderValue, merge_headers};
use super::tls::{TlsSpec, resolve_tls};
use super::units::HumanDuration;

/// Default deadline of a step.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// A validated WebSocket check.
#[derive(Debug, Clone)]
pub struct WsSpec {
    /// `ws://` or `wss://` URL.
    pub url: reqwest::Url,
    /// Handshake headers.
    pub headers: Vec<(String, HeaderValue)>,
    /// Offered subprotocols.
    pub subprotocols: Vec<String>,
    /// Handshake deadline.
    pub handshake_timeout: Duration,
    pub steps: Vec<(WsStep, Duration)>,
    pub tls: TlsSpec,
}

/// One step.
#[derive(Debug, Clone)]
pub enum WsStep {
    /// Send text.
    Send(String),
    /// Send bytes.
    SendBinary(Vec<u8>),
    /// Expect the next message.
    Expect(TextExpect),
    /// Ping and wait for the pong.
    Ping,
}

/// Validates a `ws:` config.
pub(crate) fn resolve_ws(
    config: WsConfig,
    defaults: &DefaultsConfig,
    attempt_timeout: Duration,
    field: &str,
) -> Result<WsSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let url = match reqwest::Url::parse(&config.url) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host_str().is_some() => Some(url),
        _ => {
            errors.push(config_error(
                format!("{field}.url"),
                format!(
                    "`{}` must be a ws:// or wss:// URL with a host",
                    crate::url::display_url_text(&config.url)
                ),
            ));
            None
        }
    };
    let headers = merge_headers(&defaults.headers, &config.headers, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let tls = resolve_tls(&defaults.tls, config.tls.as_ref(), field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let mut steps = Vec::new();
    for (index, step) in config.steps.iter().enumerate() {
        let step_field = format!("{field}.steps[{index}]");
        let timeout = step.timeout.map_or(STEP_TIMEOUT, |d: HumanDuration| d.0);
        let given = [
            step.send.is_some(),
            step.send_binary.is_some(),
            step.expect.is_some(),
            step.ping.unwrap_or(false),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            errors.push(config_error(
                &step_field,
                "a step has exactly one of `send`, `send_binary`, `expect`, `ping: true`",
            ));
            continue;
        }
        let action = if let Some(text) = &step.send {
            WsStep::Send(text.clone())
        } else if let Some(text) = &step.send_binary {
            WsStep::SendBinary(text.as_bytes().to_vec())
        } else if let Some(expect) = &step.expect {
            match resolve_text(Some(expect), &format!("{step_field}.expect")) {
                Ok(expect) => WsStep::Expect(expect),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        } else {
            WsStep::Ping
        };
        steps.push((action, timeout));
    }
    match url {
        Some(url) if errors.is_empty() => Ok(WsSpec {
            url,
            headers,
            subprotocols: config.subprotocols,
            handshake_timeout: config.handshake_timeout.map_or(attempt_timeout, |d| d.0),
            steps,
            tls,
        }),
        _ => Err(errors),
    }
}
