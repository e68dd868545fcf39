//! A `tcp:` check: its validated spec and how it is resolved.

use super::error::{ConfigError, config_error};
use super::file::TcpConfig;

/// Validated TCP check.
#[derive(Debug, Clone)]
pub struct TcpSpec {
    /// `host:port`.
    pub addr: String,
}

pub(super) fn resolve_tcp(config: TcpConfig, field: &str) -> Result<TcpSpec, Vec<ConfigError>> {
    match config.addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(TcpSpec { addr: config.addr })
        }
        _ => Err(vec![config_error(
            format!("{field}.addr"),
            format!("`{}` must be host:port", config.addr),
        )]),
    }
}
