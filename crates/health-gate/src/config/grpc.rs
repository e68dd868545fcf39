//! A `grpc:` check: its validated spec and how it is resolved.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::error::{ConfigError, config_error};
use super::file::{DefaultsConfig, GrpcConfig};
use super::headers::{HeaderValue, merge_headers};
use super::tls::{TlsSpec, resolve_tls};

/// Validated gRPC check.
#[derive(Debug, Clone)]
pub struct GrpcSpec {
    /// `host:port`.
    pub addr: String,
    /// Services to check (`""` = overall).
    pub services: Vec<String>,
    /// TLS on.
    pub use_tls: bool,
    /// TLS settings.
    pub tls: TlsSpec,
    pub authority: Option<String>,
    pub metadata: Vec<(String, HeaderValue)>,
    /// RPC deadline.
    pub rpc_timeout: Duration,
}

pub(super) fn resolve_grpc(
    config: GrpcConfig,
    defaults: &DefaultsConfig,
    attempt_timeout: Duration,
    field: &str,
) -> Result<GrpcSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    if config.addr.parse::<SocketAddr>().is_err()
        && !config
            .addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    {
        errors.push(config_error(
            format!("{field}.addr"),
            format!("`{}` must be host:port", config.addr),
        ));
    }
    let services = match (config.service, config.services) {
        (Some(service), None) => vec![service],
        (None, Some(services)) if !services.is_empty() => services,
        (None, None) => vec![String::new()],
        _ => {
            errors.push(config_error(
                field,
                "use either `service` or a non-empty `services` list",
            ));
            Vec::new()
        }
    };
    let metadata = merge_headers(&BTreeMap::new(), &config.metadata, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let tls = resolve_tls(&defaults.tls, None, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    if errors.is_empty() {
        Ok(GrpcSpec {
            addr: config.addr,
            services,
            use_tls: config.tls,
            tls,
            authority: config.authority,
            metadata,
            rpc_timeout: config.rpc_timeout.map_or(attempt_timeout, |d| d.0),
        })
    } else {
        Err(errors)
    }
}
