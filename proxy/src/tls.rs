//! Serving TLS: the certificate chain and key from the configuration loaded into a rustls server
//! configuration (aws-lc-rs, the workspace's one crypto provider). Handshakes run in each
//! connection's own task ([`crate::connections`]) under [`HANDSHAKE_TIMEOUT`], so a slow or broken
//! client never holds up the others.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Deadline of one TLS handshake (the connection's idle deadline may end it sooner).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS files cannot be used. Messages name the file, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file has no readable PEM certificate.
    #[error("tls.cert_file {path}: no PEM certificate could be read")]
    Certificate {
        /// The file.
        path: String,
    },
    /// The key file has no readable PEM private key.
    #[error("tls.key_file {path}: no PEM private key could be read")]
    Key {
        /// The file.
        path: String,
    },
    /// A file cannot be read: missing, not a regular file, over 1 MiB.
    #[error("{key} {path}: {problem}")]
    Unreadable {
        /// `tls.cert_file` or `tls.key_file`.
        key: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("tls: the certificate and key cannot be used together: {0}")]
    Config(String),
}

/// Builds the acceptor for `files`.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certificate_error = || TlsError::Certificate {
        path: files.cert_file.display().to_string(),
    };
    let key_error = || TlsError::Key {
        path: files.key_file.display().to_string(),
    };
    let certificates =
        windlass_files::read_regular_file(&files.cert_file, crate::config::MAX_REFERENCED_BYTES)
            .map_err(|problem| TlsError::Unreadable {
                key: "tls.cert_file",
                path: files.cert_file.display().to_string(),
                problem,
            })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&certificates)
        .collect::<Result<_, _>>()
        .map_err(|_| certificate_error())?;
    if chain.is_empty() {
        return Err(certificate_error());
    }
    let key_pem =
        windlass_files::read_regular_file(&files.key_file, crate::config::MAX_REFERENCED_BYTES)
            .map_err(|problem| TlsError::Unreadable {
                key: "tls.key_file",
                path: files.key_file.display().to_string(),
                problem,
            })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| key_error())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Config(error.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
