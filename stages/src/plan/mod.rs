//! The override plan: the kustomize `images:` entries that send private images through the proxy,
//! exactly as KOTS plans them (section 4 of the behaviour notes), with the places where windlass
//! does better: an `index.docker.io/...` alias, no double prefix when a custom proxy domain is set,
//! and no invalid reference for a registry host with a port or an uppercase letter (refused, or
//! mapped through a configured host alias). [`plan_overrides`] is pure: images and domains in, entries out.
//! [`plan_local_registry`] plans local-registry mode instead (section 4 of the templating notes):
//! every image renamed to the customer's registry, collisions refused.

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
    /// Docker reads the image's first segment as a registry host because it has an uppercase
    /// letter, and a proxied path holds the host as a repository path component, which is
    /// lowercase.
    #[error(
        "{image} (found at {found_at}): Docker reads {host} as its registry host (a first segment with an uppercase letter), so `{proxy_path}/{host}/...` would not be a valid image reference; if the image is on Docker Hub, write its repository in lowercase, else map the host to the upstream name the proxy knows it by with `images.host_aliases` in the windlass config file"
    )]
    UppercaseHost {
        /// The image.
        image: String,
        /// Where it was found.
        found_at: String,
        /// The host.
        host: String,
        /// The proxy path prefix.
        proxy_path: String,
    },
    /// Local-registry mode: two different images have the same last path component, so both
    /// would become the same image on the local registry (KOTS lets that happen silently).
    #[error(
        "{first} (found at {first_found_at}) and {second} (found at {second_found_at}) would both become {new_name} on the local registry: local-registry mode keeps only the last path component of each image, so two different images must not share it"
    )]
    LocalRegistryCollision {
        /// The image found first.
        first: String,
        /// Where.
        first_found_at: String,
        /// The other image.
        second: String,
        /// Where.
        second_found_at: String,
        /// The name both would get.
        new_name: String,
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

/// The name an image gets on a local registry: `<host>/<namespace>/<last path component>`
/// (no namespace: `<host>/<last>`), as KOTS's `DestImage` and kustomize rewrite plan it.
pub fn local_registry_name(reference: &ImageReference, host: &str, namespace: &str) -> String {
    let repository = reference.repository();
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let namespace = namespace.trim_matches('/');
    if namespace.is_empty() {
        format!("{host}/{last}")
    } else {
        format!("{host}/{namespace}/{last}")
    }
}

/// Plans local-registry mode, as KOTS does: **every** image, public or private, those of
/// `Application.spec.additionalImages` included, gets `images:` entries renaming it to
/// `<host>/<namespace>/<last path component>` (tag and digest stay as written); the names matched
/// are the image as written without tag and digest, its normalised name and, for Docker Hub, every
/// other spelling. Two different images with the same last component are refused, both named.
pub fn plan_local_registry(
    images: &[ProbedImage],
    host: &str,
    namespace: &str,
) -> Result<OverridePlan, Vec<PlanError>> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut by_new_name: BTreeMap<String, &ProbedImage> = BTreeMap::new();
    let mut reported: HashSet<String> = HashSet::new();
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for image in images {
        let reference = recorded_reference(image);
        let new_name = local_registry_name(&reference, host, namespace);
        match by_new_name.get(&new_name) {
            Some(first) if first.normalized_name != image.normalized_name => {
                // Once per image: another spelling of an image already named is not named again.
                if !reported.insert(image.normalized_name.clone()) {
                    continue;
                }
                errors.push(PlanError::LocalRegistryCollision {
                    first: first.image.clone(),
                    first_found_at: found_at(first),
                    second: image.image.clone(),
                    second_found_at: found_at(image),
                    new_name: new_name.clone(),
                });
                continue;
            }
            Some(_) => {}
            None => {
                by_new_name.insert(new_name.clone(), image);
            }
        }
        let because = if image.runtime_only {
            "local-registry mode: every image is pulled from the local registry (listed in Application.spec.additionalImages)".to_string()
        } else {
            "local-registry mode: every image is pulled from the local registry".to_string()
        };
        let mut names = vec![reference.name_as_written().to_string()];
        for name in names_for(&reference) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for name in names {
            if taken.insert(name.clone()) {
                entries.push(PlannedEntry {
                    name,
                    new_name: new_name.clone(),
                    image: image.image.clone(),
                    rule: EntryRule::LocalRegistry,
                    because: because.clone(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(OverridePlan {
            entries,
            skipped: Vec::new(),
        })
    } else {
        Err(errors)
    }
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
        let reference = recorded_reference(image);
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
        let has_port = host.contains(':');
        let has_uppercase = host.bytes().any(|byte| byte.is_ascii_uppercase());
        let (written_name, rule) = if has_port || has_uppercase {
            match host_aliases.get(host) {
                Some(alias) => (
                    format!("{alias}/{}", reference.repository()),
                    EntryRule::ProxyByHostAlias,
                ),
                None => {
                    let (image, found_at, host, proxy_path) = (
                        image.image.clone(),
                        found_at(image),
                        host.to_string(),
                        proxy_path.clone(),
                    );
                    errors.push(if has_port {
                        PlanError::HostWithPort {
                            image,
                            found_at,
                            host,
                            proxy_path,
                        }
                    } else {
                        PlanError::UppercaseHost {
                            image,
                            found_at,
                            host,
                            proxy_path,
                        }
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

/// The reference `probe_images` recorded for `image`, rebuilt from its parts (never parsed again).
fn recorded_reference(image: &ProbedImage) -> ImageReference {
    ImageReference::from_recorded_parts(
        image.image.clone(),
        image.registry.clone(),
        image.repository.clone(),
        image.tag.clone(),
        image.pinned_digest.clone(),
    )
}
