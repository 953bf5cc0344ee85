//! The proxy and registry hosts an install uses, and where each came from. Precedence, highest
//! first: the command line (`--proxy-domain`, `--registry-domain`), the KOTS `Installation`
//! (`spec.replicatedProxyDomain`, `spec.replicatedRegistryDomain`), the deprecated `Application`
//! fields (`spec.proxyRegistryDomain`, `spec.replicatedRegistryDomain`), then the defaults.

use windlass_manifest::documents::Document;

use crate::events::{DomainSource, Domains};

/// The proxy host KOTS uses by default.
pub const DEFAULT_PROXY_HOST: &str = "proxy.replicated.com";
/// The registry host KOTS uses by default.
pub const DEFAULT_REGISTRY_HOST: &str = "registry.replicated.com";

fn kots_field<'a>(documents: &'a [Document], kind: &str, field: &str) -> Option<&'a str> {
    documents
        .iter()
        .filter(|document| document.kind == kind && document.api_version.starts_with("kots.io/"))
        .find_map(|document| document.value.get("spec")?.get(field)?.as_str())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

fn pick(
    flag: Option<&str>,
    installation: Option<&str>,
    application: Option<&str>,
    default: &str,
) -> (String, DomainSource) {
    let host = |value: &str| value.trim_end_matches('/').to_string();
    if let Some(value) = flag.filter(|value| !value.is_empty()) {
        (host(value), DomainSource::CommandLine)
    } else if let Some(value) = installation {
        (host(value), DomainSource::Installation)
    } else if let Some(value) = application {
        (host(value), DomainSource::Application)
    } else {
        (default.to_string(), DomainSource::Default)
    }
}

impl Domains {
    /// Resolves both hosts from the flags and the release's KOTS documents.
    pub fn resolve(
        proxy_flag: Option<&str>,
        registry_flag: Option<&str>,
        documents: &[Document],
    ) -> Domains {
        let (proxy_host, proxy_source) = pick(
            proxy_flag,
            kots_field(documents, "Installation", "replicatedProxyDomain"),
            kots_field(documents, "Application", "proxyRegistryDomain"),
            DEFAULT_PROXY_HOST,
        );
        let (registry_host, registry_source) = pick(
            registry_flag,
            kots_field(documents, "Installation", "replicatedRegistryDomain"),
            kots_field(documents, "Application", "replicatedRegistryDomain"),
            DEFAULT_REGISTRY_HOST,
        );
        Domains {
            proxy_host,
            proxy_source,
            registry_host,
            registry_source,
        }
    }
}
