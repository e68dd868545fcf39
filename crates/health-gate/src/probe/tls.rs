//! rustls client configuration from a [`TlsSpec`]: web roots plus an optional CA file, an
//! optional client identity, and (only when explicitly configured) no verification at all.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::config::TlsSpec;

/// A TLS file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or parsing a PEM file failed.
    #[error("cannot load {what} from {path}: {reason}")]
    File {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Installs the ring crypto provider as the process default (idempotent).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads a PEM file within [`crate::limits::MAX_TLS_FILE_BYTES`].
fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    crate::limits::read_text(path, crate::limits::MAX_TLS_FILE_BYTES)
        .map(String::into_bytes)
        .map_err(|e| TlsError::File {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        what,
        path: path.display().to_string(),
        reason,
    };
    let pem = read_pem(path, what)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .map(|cert| cert.map(CertificateDer::into_owned))
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error("no PEM certificate found".into()));
    }
    Ok(certs)
}

/// The rustls client configuration for `spec`, with `alpn` protocols.
pub(crate) fn client_config(
    spec: &TlsSpec,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, TlsError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca_file) = &spec.ca_file {
        for cert in load_certs(ca_file, "CA certificates")? {
            roots.add(cert)?;
        }
    }
    let verify_as = match (&spec.server_name, spec.verify) {
        (Some(name), true) => {
            let name = ServerName::try_from(name.clone()).map_err(|_| TlsError::File {
                what: "a TLS server name",
                path: "tls.server_name".into(),
                reason: format!("`{name}` is not a DNS name or IP address"),
            })?;
            let inner = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots.clone()))
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            Some(Arc::new(VerifyAs { inner, name }))
        }
        _ => None,
    };
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match &spec.client_identity {
        Some((cert, key)) => {
            let chain = load_certs(cert, "client certificate")?;
            let pem = read_pem(key, "client key")?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::File {
                what: "client key",
                path: key.display().to_string(),
                reason: e.to_string(),
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    if !spec.verify {
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(AcceptAnyCertificate));
    } else if let Some(verifier) = verify_as {
        config.dangerous().set_certificate_verifier(verifier);
    }
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Verifies the server's certificate against `tls.server_name` instead of the name dialed
/// (reqwest has no SNI/verify-name override): a check can dial an IP address, or a name the
/// certificate does not carry, and still verify the certificate fully.
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any server certificate. Used only with `tls.verify: false`, which is warned about.
#[derive(Debug)]
struct AcceptAnyCertificate;

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
