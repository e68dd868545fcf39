//! TCP connect probe. Documented as not sufficient for HTTP readiness: a proxy or docker-proxy
//! may accept connections before the application listens.

use std::time::{Duration, Instant};

use crate::config::TcpSpec;
use crate::failure::{Failure, FailureKind};

use super::Sample;

/// A TCP connect probe.
#[derive(Debug)]
pub(crate) struct TcpProbe {
    addr: String,
    connect_timeout: Duration,
}

impl TcpProbe {
    /// A probe of `spec.addr`.
    pub(crate) fn new(spec: &TcpSpec, connect_timeout: Duration) -> Self {
        Self {
            addr: spec.addr.clone(),
            connect_timeout,
        }
    }

    /// Resolves the address and tries every result until one connects.
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        let start = Instant::now();
        let addresses: Vec<_> = tokio::net::lookup_host(&self.addr)
            .await
            .map_err(|e| {
                Failure::new(
                    FailureKind::Dns,
                    format!("cannot resolve {}: {e}", self.addr),
                )
            })?
            .collect();
        if addresses.is_empty() {
            return Err(Failure::new(
                FailureKind::Dns,
                format!("{} resolved to no address", self.addr),
            ));
        }
        let mut last = None;
        for address in addresses {
            match tokio::time::timeout(
                self.connect_timeout,
                tokio::net::TcpStream::connect(address),
            )
            .await
            {
                Ok(Ok(_stream)) => {
                    return Ok(Sample {
                        latency: start.elapsed(),
                    });
                }
                Ok(Err(error)) => {
                    let kind = if error.kind() == std::io::ErrorKind::ConnectionRefused {
                        FailureKind::Refused
                    } else {
                        FailureKind::Io
                    };
                    last = Some(Failure::new(kind, format!("{address}: {error}")));
                }
                Err(_) => {
                    last = Some(Failure::new(
                        FailureKind::ConnectTimeout,
                        format!(
                            "{address}: no connection within {}",
                            humantime::format_duration(self.connect_timeout)
                        ),
                    ));
                }
            }
        }
        Err(last.unwrap_or_else(|| Failure::new(FailureKind::Io, "no address tried")))
    }
}
