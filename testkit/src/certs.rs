//! Certificates made with `rcgen` for tests: a CA and a server certificate for 127.0.0.1 (a TLS
//! registry a client trusts through `ca_file`), and the self-signed certificate whose key signs
//! the token server's JWTs (the registry's `rootcertbundle`).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::registry::RegistryTls;

/// PEM files of a test CA and a server certificate it signed for 127.0.0.1.
#[derive(Clone, Debug)]
pub struct ServerCertificates {
    /// The CA's certificate, what a client must trust (`ca_file`).
    pub ca_certificate: PathBuf,
    /// The server certificate, valid for the IP address 127.0.0.1.
    pub server_certificate: PathBuf,
    /// The server certificate's private key.
    pub server_key: PathBuf,
}

impl ServerCertificates {
    /// The server certificate and key as a registry's TLS settings.
    pub fn registry_tls(&self) -> RegistryTls {
        RegistryTls {
            certificate: self.server_certificate.clone(),
            key: self.server_key.clone(),
        }
    }
}

fn params(common_name: &str, names: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("certificate parameters");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
}

/// Writes a fresh CA and a 127.0.0.1 server certificate into `directory` (`ca.pem`,
/// `server.pem`, `server-key.pem`).
///
/// # Panics
///
/// When the files cannot be written.
pub fn server_certificates(directory: &Path) -> ServerCertificates {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = params("windlass test CA", &[]);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_certificate = ca_params.self_signed(&ca_key).expect("self-sign the CA");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let server_certificate = params("127.0.0.1", &["127.0.0.1"])
        .signed_by(&server_key, &issuer)
        .expect("sign the server certificate");

    let files = ServerCertificates {
        ca_certificate: directory.join("ca.pem"),
        server_certificate: directory.join("server.pem"),
        server_key: directory.join("server-key.pem"),
    };
    std::fs::write(&files.ca_certificate, ca_certificate.pem()).expect("write CA");
    std::fs::write(&files.server_certificate, server_certificate.pem()).expect("write cert");
    std::fs::write(&files.server_key, server_key.serialize_pem()).expect("write key");
    files
}

/// A signing key with its self-signed certificate (PEM and DER).
pub struct SigningIdentity {
    /// The P-256 private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The self-signed certificate (PEM).
    pub certificate_pem: String,
    /// The same certificate (DER), as JWT `x5c` headers carry it.
    pub certificate_der: Vec<u8>,
}

/// A P-256 key and a self-signed certificate for it, to sign registry tokens with (ES256).
pub fn token_signing_identity() -> SigningIdentity {
    let key = KeyPair::generate().expect("token signing key");
    let certificate = params("windlass test token issuer", &[])
        .self_signed(&key)
        .expect("self-sign the token certificate");
    SigningIdentity {
        key_pem: key.serialize_pem(),
        certificate_pem: certificate.pem(),
        certificate_der: certificate.der().to_vec(),
    }
}
