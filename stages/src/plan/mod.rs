//! The override plan: the kustomize `images:` entries that send private images through the proxy,
//! exactly as KOTS plans them (section 4 of the behaviour notes), with the places where windlass
//! does better: an `index.docker.io/...` alias, no double prefix when a custom proxy domain is set,
//! and no invalid reference for a registry host with a port (refused, or mapped through a
//! configured host alias). [`plan_overrides`] is pure: images and domains in, entries out.

pub mod domains;

use std::collections::{BTreeMap, HashSet};

use crate::events::{Domains, EntryRule, OverridePlan, PlannedEntry, ProbedImage, SkippedImage};
use windlass_manifest::images::reference::{DOCKER_HUB, ImageReference};

pub use domains::{DEFAULT_PROXY_HOST, DEFAULT_REGISTRY_HOST};

/// A private image that cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A host with a port would make an invalid proxied reference.
    #[error(
        "{image} (found at {found_at}): its registry host {host} has a port, so `{proxy_path}/{host}/...` would not be a valid image reference; map the host to the upstream name the proxy knows it by with `images.host_aliases` in the windlass config file"
    )]
    HostWithPort {
        /// The image.
        image: String,
        /// Where it was found.
        found_at: String,
        /// The host.
        host: String,
        /// The proxy path prefix.
        proxy_path: String,
    },
}

/// The names kustomize must match for one image, all mapped to the same `newName`: the normalised
/// name, and for Docker Hub every other spelling (`library/x`, `x`, `docker.io/x`,
/// `index.docker.io/...`), because kustomize compares names literally.
pub fn names_for(reference: &ImageReference) -> Vec<String> {
    let normalized = reference.normalized_name();
    if !reference.is_docker_hub() {
        return vec![normalized];
    }
    let repository = reference.repository();
    let mut names = vec![normalized];
    match repository.strip_prefix("library/") {
        Some(short) => {
            names.push(format!("library/{short}"));
            names.push(short.to_string());
            names.push(format!("{DOCKER_HUB}/{short}"));
            names.push(format!("index.docker.io/library/{short}"));
            names.push(format!("index.docker.io/{short}"));
        }
        None => {
            names.push(repository.to_string());
            names.push(format!("index.docker.io/{repository}"));
        }
    }
    names
}

fn found_at(image: &ProbedImage) -> String {
    image
        .uses
        .first()
        .map(|first| {
            format!(
                "{} (document {}) {} {}: {}",
                first.file,
                first.document + 1,
                first.kind,
                first.name.as_deref().unwrap_or("(unnamed)"),
                first.field
            )
        })
        .unwrap_or_else(|| "(no recorded use)".into())
}

/// Plans the `images:` entries for `images` (in the order they were found).
pub fn plan_overrides(
    images: &[ProbedImage],
    app_slug: &str,
    domains: &Domains,
    host_aliases: &BTreeMap<String, String>,
) -> Result<OverridePlan, Vec<PlanError>> {
    let proxy_path = format!("{}/proxy/{app_slug}", domains.proxy_host);
    let proxy_hosts: HashSet<&str> = [DEFAULT_PROXY_HOST, domains.proxy_host.as_str()].into();
    let mut taken: HashSet<String> = HashSet::new();
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    for image in images {
        let skip = |reason: &str| SkippedImage {
            image: image.image.clone(),
            reason: reason.to_string(),
        };
        if !image.private {
            skipped.push(skip("public: pulled directly"));
            continue;
        }
        if image.runtime_only {
            skipped.push(skip(
                "listed in Application.spec.additionalImages only: started at run time, not patched",
            ));
            continue;
        }
        let reference = ImageReference::from_recorded_parts(
            image.image.clone(),
            image.registry.clone(),
            image.repository.clone(),
            image.tag.clone(),
            image.pinned_digest.clone(),
        );
        let host = reference.registry();
        let because = format!("{}: {}", image.outcome, image.reason);
        let mut entry = |name: String, new_name: String, rule: EntryRule| {
            // One entry per name: the first image found wins.
            if taken.insert(name.clone()) {
                entries.push(PlannedEntry {
                    name,
                    new_name,
                    image: image.image.clone(),
                    rule,
                    because: because.clone(),
                });
            }
        };
        if host == DEFAULT_REGISTRY_HOST && domains.registry_host != DEFAULT_REGISTRY_HOST {
            entry(
                reference.normalized_name(),
                format!("{}/{}", domains.registry_host, reference.repository()),
                EntryRule::CustomRegistryDomain,
            );
            continue;
        }
        if host == domains.registry_host {
            skipped.push(skip(
                "already on the registry host: not rewritten, pulled with the pull secret",
            ));
            continue;
        }
        if proxy_hosts.contains(host) {
            let as_written = reference.name_as_written().to_string();
            entry(
                reference.normalized_name(),
                as_written,
                EntryRule::AlreadyProxied,
            );
            continue;
        }
        let (written_name, rule) = if host.contains(':') {
            match host_aliases.get(host) {
                Some(alias) => (
                    format!("{alias}/{}", reference.repository()),
                    EntryRule::ProxyByHostAlias,
                ),
                None => {
                    errors.push(PlanError::HostWithPort {
                        image: image.image.clone(),
                        found_at: found_at(image),
                        host: host.to_string(),
                        proxy_path: proxy_path.clone(),
                    });
                    continue;
                }
            }
        } else {
            (reference.name_as_written().to_string(), EntryRule::Proxy)
        };
        let new_name = format!("{proxy_path}/{written_name}");
        for name in names_for(&reference) {
            entry(name, new_name.clone(), rule);
        }
    }
    if errors.is_empty() {
        Ok(OverridePlan { entries, skipped })
    } else {
        Err(errors)
    }
}
