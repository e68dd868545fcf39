//! gRPC probe: `grpc.health.v1.Health/Check` for one or several service names.
//! SERVING passes; NOT_SERVING and UNKNOWN mean "not ready yet"; UNIMPLEMENTED (no health
//! service) and NOT_FOUND (unknown service name) are configuration errors, fatal by default.

use std::time::{Duration, Instant};

use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::config::{Check, GrpcSpec};
use crate::failure::{Failure, FailureKind, classify_connect_error, error_chain};

use super::{Phase, ResolvedHeaders, Sample, SetupError};

/// A built gRPC probe.
#[derive(Debug)]
pub(crate) struct GrpcProbe {
    endpoint: Endpoint,
    /// A shared lazily-connected channel for observation; readiness connects per attempt.
    pooled: Option<Channel>,
    services: Vec<String>,
    metadata: Vec<(
        MetadataKey<tonic::metadata::Ascii>,
        MetadataValue<tonic::metadata::Ascii>,
    )>,
    attempt_timeout: Duration,
}

fn read(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, SetupError> {
    crate::limits::read_text(path, crate::limits::MAX_TLS_FILE_BYTES)
        .map(String::into_bytes)
        .map_err(|e| {
            SetupError::Tls(super::tls::TlsError::File {
                what,
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        })
}

impl GrpcProbe {
    /// Builds the endpoint for `spec`.
    pub(crate) fn build(
        spec: &GrpcSpec,
        check: &Check,
        headers: &ResolvedHeaders,
        phase: Phase,
    ) -> Result<Self, SetupError> {
        super::tls::install_crypto_provider();
        let scheme = if spec.use_tls { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", spec.addr))
            .map_err(|e| SetupError::Client(format!("invalid gRPC address {}: {e}", spec.addr)))?
            .connect_timeout(check.connect_timeout)
            .timeout(spec.rpc_timeout)
            .user_agent(concat!("health-gate/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| SetupError::Client(error_chain(&e)))?;
        if let Some(authority) = &spec.authority {
            let origin = format!("{scheme}://{authority}")
                .parse()
                .map_err(|_| SetupError::Client(format!("invalid authority `{authority}`")))?;
            endpoint = endpoint.origin(origin);
        }
        if spec.use_tls {
            if !spec.tls.verify {
                return Err(SetupError::Client(
                    "tls.verify: false is not supported for gRPC checks; trust the server with tls.ca_file".into(),
                ));
            }
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(ca) = &spec.tls.ca_file {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificates")?));
            }
            if let Some((cert, key)) = &spec.tls.client_identity {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "client certificate")?,
                    read(key, "client key")?,
                ));
            }
            if let Some(name) = spec.tls.server_name.as_ref().or(spec.authority.as_ref()) {
                let host = name
                    .rsplit_once(':')
                    .map_or(name.as_str(), |(host, _)| host);
                tls = tls.domain_name(host);
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| SetupError::Client(error_chain(&e)))?;
        }
        let mut metadata = Vec::new();
        for (name, value, _) in &headers.0 {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| SetupError::InvalidValue { name: name.clone() })?;
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|_| SetupError::InvalidValue { name: name.clone() })?;
            metadata.push((key, value));
        }
        let pooled = (phase == Phase::Observation).then(|| endpoint.connect_lazy());
        Ok(Self {
            endpoint,
            pooled,
            services: spec.services.clone(),
            metadata,
            attempt_timeout: check.attempt_timeout,
        })
    }

    /// Connects (readiness) or reuses the channel (observation), then checks every service.
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        let start = Instant::now();
        let work = async {
            let channel = match &self.pooled {
                Some(channel) => channel.clone(),
                None => self
                    .endpoint
                    .connect()
                    .await
                    .map_err(|e| Failure::new(classify_connect_error(&e), error_chain(&e)))?,
            };
            let mut client = HealthClient::new(channel);
            for service in &self.services {
                let mut request = tonic::Request::new(HealthCheckRequest {
                    service: service.clone(),
                });
                for (key, value) in &self.metadata {
                    request.metadata_mut().insert(key.clone(), value.clone());
                }
                let shown = if service.is_empty() {
                    "(overall)"
                } else {
                    service.as_str()
                };
                let response = client
                    .check(request)
                    .await
                    .map_err(|status| classify_status(&status, shown))?;
                match ServingStatus::try_from(response.into_inner().status) {
                    Ok(ServingStatus::Serving) => {}
                    Ok(other) => {
                        return Err(Failure::new(
                            FailureKind::NotServing,
                            format!("service {shown} is {}", other.as_str_name()),
                        ));
                    }
                    Err(_) => {
                        return Err(Failure::new(
                            FailureKind::NotServing,
                            format!("service {shown} answered an unknown status"),
                        ));
                    }
                }
            }
            Ok(Sample {
                latency: start.elapsed(),
            })
        };
        match tokio::time::timeout(self.attempt_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                FailureKind::Timeout,
                format!(
                    "no answer within {}",
                    humantime::format_duration(self.attempt_timeout)
                ),
            )),
        }
    }
}

fn classify_status(status: &tonic::Status, service: &str) -> Failure {
    use tonic::Code;
    let kind = match status.code() {
        Code::Unimplemented => FailureKind::GrpcUnimplemented,
        Code::NotFound => FailureKind::GrpcNotFound,
        Code::DeadlineExceeded => FailureKind::Timeout,
        Code::Unavailable | Code::Unknown => match std::error::Error::source(status) {
            Some(source) => classify_connect_error(source),
            None => FailureKind::Io,
        },
        _ => FailureKind::Io,
    };
    let hint = match kind {
        FailureKind::GrpcUnimplemented => " (the server has no grpc.health.v1 service)",
        FailureKind::GrpcNotFound => " (the health service does not know this service name)",
        _ => "",
    };
    Failure::new(
        kind,
        format!(
            "service {service}: {}: {}{hint}",
            status.code(),
            status.message()
        ),
    )
}
