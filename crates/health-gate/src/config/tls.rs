//! TLS settings of a check.

use std::path::PathBuf;

use super::error::{ConfigError, config_error};
use super::file::TlsConfig;

/// Validated TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSpec {
    /// Verify the server (false only when explicitly configured).
    pub verify: bool,
    /// Extra CA file.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key files.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Verification name override (gRPC).
    pub server_name: Option<String>,
}

pub(crate) fn resolve_tls(
    defaults: &TlsConfig,
    own: Option<&TlsConfig>,
    field: &str,
) -> Result<TlsSpec, ConfigError> {
    let pick = |f: fn(&TlsConfig) -> Option<PathBuf>| own.and_then(f).or_else(|| f(defaults));
    let verify = own
        .and_then(|t| t.verify)
        .or(defaults.verify)
        .unwrap_or(true);
    let client_cert = pick(|t| t.client_cert.clone());
    let client_key = pick(|t| t.client_key.clone());
    let client_identity = match (client_cert, client_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(config_error(
                format!("{field}.tls"),
                "client_cert and client_key go together",
            ));
        }
    };
    Ok(TlsSpec {
        verify,
        ca_file: pick(|t| t.ca_file.clone()),
        client_identity,
        server_name: own
            .and_then(|t| t.server_name.clone())
            .or_else(|| defaults.server_name.clone()),
    })
}
