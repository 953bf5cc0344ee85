//! The proxy and registry hosts an install uses, and where each came from. Precedence, highest
//! first: the command line (`--proxy-domain`, `--registry-domain`), the KOTS `Installation`
//! (`spec.replicatedProxyDomain`, `spec.replicatedRegistryDomain`), the deprecated `Application`
//! fields (`spec.proxyRegistryDomain`, `spec.replicatedRegistryDomain`), then the defaults. Every
//! host, from the command line or the release, must be a bare host name with an optional port
//! ([`is_host_name`]): it is written into image references and the pull secret's `auths`.

use windlass_manifest::documents::Document;

use crate::events::{DomainSource, Domains};

/// The proxy host KOTS uses by default.
pub const DEFAULT_PROXY_HOST: &str = "proxy.replicated.com";
/// The registry host KOTS uses by default.
pub const DEFAULT_REGISTRY_HOST: &str = "registry.replicated.com";

/// A domain in the release that is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{file} (document {document}) {kind} spec.{field}: {value:?} is not a host name (a host with an optional :port, no scheme, no path)"
)]
pub struct DomainError {
    /// The release file.
    pub file: String,
    /// The document in it, from 1.
    pub document: usize,
    /// `Installation` or `Application`.
    pub kind: String,
    /// The field under `spec`, e.g. `replicatedProxyDomain`.
    pub field: String,
    /// The value as written (at most 100 characters of it).
    pub value: String,
}

/// Whether `host` is a host name (letters, digits and `-` in dot-separated labels, none starting
/// or ending with `-`) or an IPv4 address, with an optional `:port`: what can stand before the
/// first `/` of an image reference and be a key of a pull secret's `auths`.
pub fn is_host_name(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(label_ok)
        && port.is_none_or(|port| {
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
        })
}

/// A domain field of a KOTS kind in the release: the document holding it and its value, trimmed
/// (and without a trailing `/`).
struct Written<'a> {
    document: &'a Document,
    field: &'a str,
    value: &'a str,
}

fn kots_field<'a>(documents: &'a [Document], kind: &str, field: &'a str) -> Option<Written<'a>> {
    documents
        .iter()
        .filter(|document| document.kind == kind && document.api_version.starts_with("kots.io/"))
        .find_map(|document| {
            let value = document.value.get("spec")?.get(field)?.as_str()?;
            Some(Written {
                document,
                field,
                value: value.trim().trim_end_matches('/'),
            })
        })
        .filter(|written| !written.value.is_empty())
}

fn checked(written: Written<'_>) -> Result<String, DomainError> {
    if is_host_name(written.value) {
        return Ok(written.value.to_string());
    }
    Err(DomainError {
        file: written.document.file.clone(),
        document: written.document.index + 1,
        kind: written.document.kind.clone(),
        field: written.field.to_string(),
        value: written.value.chars().take(100).collect(),
    })
}

fn pick(
    flag: Option<&str>,
    installation: Option<Written<'_>>,
    application: Option<Written<'_>>,
    default: &str,
) -> Result<(String, DomainSource), DomainError> {
    // The command line's values are checked when the stage's configuration is.
    if let Some(value) = flag.filter(|value| !value.is_empty()) {
        Ok((
            value.trim_end_matches('/').to_string(),
            DomainSource::CommandLine,
        ))
    } else if let Some(written) = installation {
        Ok((checked(written)?, DomainSource::Installation))
    } else if let Some(written) = application {
        Ok((checked(written)?, DomainSource::Application))
    } else {
        Ok((default.to_string(), DomainSource::Default))
    }
}

impl Domains {
    /// Resolves both hosts from the flags and the release's KOTS documents, refusing a value in
    /// the release that is not a host name (the one in force; one a higher source overrides is not
    /// read).
    pub fn resolve(
        proxy_flag: Option<&str>,
        registry_flag: Option<&str>,
        documents: &[Document],
    ) -> Result<Domains, DomainError> {
        let (proxy_host, proxy_source) = pick(
            proxy_flag,
            kots_field(documents, "Installation", "replicatedProxyDomain"),
            kots_field(documents, "Application", "proxyRegistryDomain"),
            DEFAULT_PROXY_HOST,
        )?;
        let (registry_host, registry_source) = pick(
            registry_flag,
            kots_field(documents, "Installation", "replicatedRegistryDomain"),
            kots_field(documents, "Application", "replicatedRegistryDomain"),
            DEFAULT_REGISTRY_HOST,
        )?;
        Ok(Domains {
            proxy_host,
            proxy_source,
            registry_host,
            registry_source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_host_name;

    #[test]
    fn host_names_have_labels_and_an_optional_port() {
        for host in [
            "proxy.replicated.com",
            "Images.Example.com",
            "localhost",
            "127.0.0.1:5443",
            "registry-1.example:5000",
        ] {
            assert!(is_host_name(host), "{host}");
        }
        for host in [
            "",
            "https://images.example.com",
            "images.example.com/",
            "images.example.com/proxy",
            "images..example.com",
            "-images.example.com",
            "images.example.com:",
            "images.example.com:port",
            "images.example.com:123456",
            "images_example.com",
            "user@images.example.com",
        ] {
            assert!(!is_host_name(host), "{host}");
        }
    }
}
