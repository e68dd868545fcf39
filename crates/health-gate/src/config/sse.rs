//! An `sse:` check: its validated spec and how it is resolved.

use std::net::SocketAddr;
use std::time::Duration;

use crate::expect::json::JsonAssertion;

use super::defaults;
use super::endpoint::{
    ProxyPolicy, check_connect_to, resolve_connect_to, resolve_proxy, resolve_url,
};
use super::error::{ConfigError, config_error};
use super::expect::resolve_json;
use super::file::{DefaultsConfig, SseConfig};
use super::headers::{HeaderValue, merge_headers};
use super::tls::{TlsSpec, resolve_tls};

/// Validated SSE check.
#[derive(Debug, Clone)]
pub struct SseSpec {
    pub url: reqwest::Url,
    pub headers: Vec<(String, HeaderValue)>,
    /// First-event deadline.
    pub first_event_within: Duration,
    /// Event name filter.
    pub event: Option<String>,
    /// Data substring filter.
    pub data_contains: Option<String>,
    /// JSON filters.
    pub json: Vec<JsonAssertion>,
    /// Events required.
    pub events: u32,
    /// Max silence between events.
    pub idle_timeout: Duration,
    /// Heartbeats count.
    pub heartbeat_counts: bool,
    pub tls: TlsSpec,
    /// Fixed address.
    pub connect_to: Option<SocketAddr>,
    pub proxy: ProxyPolicy,
}

pub(super) fn resolve_sse(
    config: SseConfig,
    defaults: &DefaultsConfig,
    attempt_timeout: Duration,
    field: &str,
) -> Result<SseSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let url = resolve_url(&config.url, &format!("{field}.url"))
        .map_err(|e| errors.push(e))
        .ok();
    let headers = merge_headers(&defaults.headers, &config.headers, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let json = resolve_json(&config.json, &format!("{field}.json"))
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let tls = resolve_tls(&defaults.tls, config.tls.as_ref(), field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let connect_to =
        resolve_connect_to(config.connect_to.as_deref(), &format!("{field}.connect_to"))
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
    let proxy = resolve_proxy(config.proxy.as_deref(), defaults.proxy.as_deref(), field)
        .map_err(|e| errors.push(e))
        .unwrap_or(ProxyPolicy::None);
    if let Err(error) = check_connect_to(url.as_ref(), connect_to, &proxy, field) {
        errors.push(error);
    }
    let events = config.events.unwrap_or(1);
    if events == 0 {
        errors.push(config_error(format!("{field}.events"), "at least 1 event"));
    }
    match url {
        Some(url) if errors.is_empty() => Ok(SseSpec {
            url,
            headers,
            first_event_within: config.first_event_within.map_or(attempt_timeout, |d| d.0),
            event: config.event,
            data_contains: config.data_contains,
            json,
            events,
            idle_timeout: config.idle_timeout.map_or(defaults::SSE_IDLE, |d| d.0),
            heartbeat_counts: config.heartbeat_counts.unwrap_or(false),
            tls,
            connect_to,
            proxy,
        }),
        _ => Err(errors),
    }
}
