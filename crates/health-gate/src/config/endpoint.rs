//! Where a check connects: its URL, a fixed address (`connect_to`), a proxy.

use std::net::SocketAddr;

use crate::url::display_url_text;

use super::error::{ConfigError, config_error};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyPolicy {
    /// `HTTPS_PROXY`/`NO_PROXY` from the environment, never for loopback targets (`proxy: env`).
    Env,
    /// Never (the default): a gate probes the hosts it deploys to, which a runner behind a
    /// corporate proxy must reach directly, not through that proxy.
    None,
    /// This proxy URL (still never for loopback).
    Url(String),
}

pub(super) fn resolve_proxy(
    own: Option<&str>,
    defaults: Option<&str>,
    field: &str,
) -> Result<ProxyPolicy, ConfigError> {
    match own.or(defaults).unwrap_or("none") {
        "env" => Ok(ProxyPolicy::Env),
        "none" => Ok(ProxyPolicy::None),
        url if url.starts_with("http://")
            || url.starts_with("https://")
            || url.starts_with("socks5://") =>
        {
            Ok(ProxyPolicy::Url(url.to_owned()))
        }
        other => Err(config_error(
            format!("{field}.proxy"),
            format!("`{other}` is not valid: use env, none or a proxy URL"),
        )),
    }
}

pub(super) fn resolve_url(text: &str, field: &str) -> Result<reqwest::Url, ConfigError> {
    let shown = display_url_text(text);
    let url = reqwest::Url::parse(text)
        .map_err(|e| config_error(field, format!("`{shown}` is not a URL: {e}")))?;
    let text = &shown;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(
            field,
            format!("`{text}` must be an http:// or https:// URL"),
        ));
    }
    if url.host_str().is_none() {
        return Err(config_error(field, format!("`{text}` has no host")));
    }
    Ok(url)
}

/// A check with `connect_to` talks to exactly that address, or refuses to start: a gate must
/// never pass against a backend other than the configured one.
///
/// - The URL's port must not disagree: reqwest (hyper) dials the URL's explicit port
///   whatever `connect_to` says, so `http://localhost:18080/` with `127.0.0.1:9` reached
///   :18080. Written without a port, the URL's host is only the name (Host header, TLS);
///   with the same port as `connect_to`, both agree.
/// - A proxy URL decides the address itself (the proxy resolves the URL's host), so it cannot
///   be combined with `connect_to`; the environment's proxy (`HTTP(S)_PROXY`) is not used for
///   a check with `connect_to`.
pub(super) fn check_connect_to(
    url: Option<&reqwest::Url>,
    connect_to: Option<SocketAddr>,
    proxy: &ProxyPolicy,
    field: &str,
) -> Result<(), ConfigError> {
    let Some(address) = connect_to else {
        return Ok(());
    };
    if let Some(port) = url.and_then(reqwest::Url::port) {
        if port != address.port() {
            return Err(config_error(
                format!("{field}.connect_to"),
                format!(
                    "`{address}` and the URL's port {port} disagree: give the port once, in `connect_to` (and leave it out of the URL, whose host then only names the server), or make them the same"
                ),
            ));
        }
    }
    if let ProxyPolicy::Url(_) = proxy {
        return Err(config_error(
            format!("{field}.connect_to"),
            "`connect_to` and a proxy URL cannot be combined: the proxy would choose the address; use `proxy: none` or drop `connect_to`",
        ));
    }
    Ok(())
}

pub(super) fn resolve_connect_to(
    text: Option<&str>,
    field: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    text.map(|t| {
        t.parse::<SocketAddr>().map_err(|_| {
            config_error(
                field,
                format!("`{t}` must be an ip:port such as 10.0.0.12:443 or [::1]:8443"),
            )
        })
    })
    .transpose()
}
