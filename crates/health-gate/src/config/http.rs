//! An `http:` check: its validated spec and how it is resolved.

use std::net::SocketAddr;

use crate::expect::json::JsonAssertion;
use crate::expect::status::StatusSet;

use super::defaults;
use super::endpoint::{
    ProxyPolicy, check_connect_to, resolve_connect_to, resolve_proxy, resolve_url,
};
use super::error::{ConfigError, config_error};
use super::expect::resolve_json;
use super::file::{DefaultsConfig, HttpConfig};
use super::headers::{HeaderValue, merge_headers};
use super::tls::{TlsSpec, resolve_tls};
use super::units::parse_size;

/// Validated HTTP check.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub url: reqwest::Url,
    pub method: reqwest::Method,
    pub headers: Vec<(String, HeaderValue)>,
    pub body: Option<String>,
    /// Accepted statuses.
    pub statuses: StatusSet,
    /// Required media type.
    pub content_type: Option<String>,
    /// Required substrings.
    pub body_contains: Vec<String>,
    /// Required regex.
    pub body_regex: Option<regex::Regex>,
    /// JSON assertions.
    pub json: Vec<JsonAssertion>,
    /// Body byte limit.
    pub max_body: u64,
    pub follow_redirects: bool,
    /// Maximum redirects.
    pub max_redirects: usize,
    /// Refuse cross-host redirects.
    pub same_host_only: bool,
    pub tls: TlsSpec,
    /// Fixed address.
    pub connect_to: Option<SocketAddr>,
    pub proxy: ProxyPolicy,
}

fn yaml_status_items(values: &[serde_yaml_ng::Value]) -> Result<Vec<String>, String> {
    values
        .iter()
        .map(|v| match v {
            serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
            serde_yaml_ng::Value::String(s) => Ok(s.clone()),
            other => Err(format!("{other:?} is not a status")),
        })
        .collect()
}

pub(super) fn resolve_http(
    config: HttpConfig,
    defaults: &DefaultsConfig,
    field: &str,
) -> Result<HttpSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let url = resolve_url(&config.url, &format!("{field}.url"))
        .map_err(|e| errors.push(e))
        .ok();
    let method =
        match reqwest::Method::from_bytes(config.method.as_deref().unwrap_or("GET").as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                errors.push(config_error(
                    format!("{field}.method"),
                    "not an HTTP method",
                ));
                reqwest::Method::GET
            }
        };
    let headers = merge_headers(&defaults.headers, &config.headers, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let statuses = yaml_status_items(&config.expect.status)
        .and_then(|items| StatusSet::parse_list(&items))
        .map_err(|m| errors.push(config_error(format!("{field}.expect.status"), m)))
        .unwrap_or_else(|()| StatusSet::default_success());
    let body_regex = config
        .expect
        .body_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| {
            errors.push(config_error(
                format!("{field}.expect.body_regex"),
                e.to_string(),
            ))
        })
        .ok()
        .flatten();
    let json = resolve_json(&config.expect.json, &format!("{field}.expect.json"))
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let max_body = config
        .max_body
        .as_deref()
        .map(parse_size)
        .transpose()
        .map_err(|m| errors.push(config_error(format!("{field}.max_body"), m)))
        .ok()
        .flatten()
        .unwrap_or(defaults::MAX_BODY);
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
    match url {
        Some(url) if errors.is_empty() => Ok(HttpSpec {
            url,
            method,
            headers,
            body: config.body,
            statuses,
            content_type: config.expect.content_type,
            body_contains: config.expect.body_contains,
            body_regex,
            json,
            max_body,
            follow_redirects: config.redirects.follow.unwrap_or(false),
            max_redirects: config.redirects.max.unwrap_or(defaults::MAX_REDIRECTS),
            same_host_only: config.redirects.same_host_only.unwrap_or(true),
            tls,
            connect_to,
            proxy,
        }),
        _ => Err(errors),
    }
}
