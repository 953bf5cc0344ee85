//! The `plan_overrides` stage: turns the private images recorded by `probe_images` into the
//! kustomize `images:` entries of the midstream overlay (see [`crate::plan`]), with the proxy and
//! registry hosts resolved from the command line, the release's KOTS `Installation` and
//! `Application`, and records them, each with the evidence that caused it, as `OverridesPlanned` —
//! so `windlass show` can answer "why was this image proxied?". In local-registry mode (the
//! request's `local_registry`) every image is renamed to the customer's registry instead
//! ([`crate::plan::plan_local_registry`]) and the mode is recorded in the fact. Images windlass
//! cannot patch (a `kots.io/v1beta2` chart's, one found only outside `containers` and
//! `initContainers`) are reported in the summary, each judged by its own uses and given its own
//! proxied reference, whichever image claimed a shared `images:` entry first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use windlass_engine::{
    BuildContext, Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};

use crate::events::{
    BaseFetched, Domains, ImagesProbed, LocalRegistryRecord, OverridePlan, OverridesPlanned,
    ProbedImage, SkippedImage,
};
use crate::plan::{PlanError, plan_local_registry, plan_overrides};
use crate::probe_images::kots_documents_of;
use windlass_manifest::images::rules::WindlassConfig;

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        "plan_overrides",
        "plan the kustomize images: entries that send private images through the proxy",
        |config| {
            let config: PlanOverridesConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("plan_overrides: {error}"))?;
            Ok(Box::new(config))
        },
    )
}

/// Configuration of `plan_overrides`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanOverridesConfig {
    /// `--proxy-domain`.
    pub proxy_domain: Option<String>,
    /// `--registry-domain`.
    pub registry_domain: Option<String>,
    /// A windlass config file (for `images.host_aliases`).
    pub config_file: Option<PathBuf>,
}

#[async_trait::async_trait]
impl StageConfig for PlanOverridesConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let problems: Vec<String> = [
            ("proxy_domain", &self.proxy_domain),
            ("registry_domain", &self.registry_domain),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .as_deref()
                .filter(|host| !crate::plan::domains::is_host_name(host))
                .map(|host| {
                    format!(
                        "{name} {host:?} is not a host name (a host with an optional :port, no scheme, no path)"
                    )
                })
        })
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(PlanOverrides {
            config: self.clone(),
        }))
    }
}

/// The runtime stage.
pub struct PlanOverrides {
    config: PlanOverridesConfig,
}

#[async_trait::async_trait]
impl Stage for PlanOverrides {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let fetched = context.input_shared::<BaseFetched>()?;
        let probed: ImagesProbed = context.input::<ImagesProbed>()?;
        let documents = kots_documents_of(&fetched, context)?;
        let domains = Domains::resolve(
            self.config.proxy_domain.as_deref(),
            self.config.registry_domain.as_deref(),
            &documents,
        )
        .map_err(|error| StageError::invalid_input(error.to_string()))?;
        // A replay takes the host aliases the original run read from its config file.
        let recorded = context
            .services
            .recorded
            .as_ref()
            .and_then(|run| run.fact::<OverridesPlanned>(&context.stage_name));
        let host_aliases = match &self.config.config_file {
            Some(_) if recorded.is_some() => recorded
                .map(|recorded| recorded.host_aliases)
                .unwrap_or_default(),
            Some(path) => {
                WindlassConfig::load(path)
                    .map_err(|error| StageError::invalid_input(error.to_string()))?
                    .images
                    .host_aliases
            }
            None => BTreeMap::new(),
        };
        let local_registry = context.request.local_registry.as_ref();
        let needs_license = local_registry.is_none()
            && probed
                .images
                .iter()
                .any(|image| image.private && !image.runtime_only);
        let app_slug = match &context.request.license {
            Some(license) => license.app_slug.clone(),
            None if needs_license => {
                return Err(StageError::invalid_input(
                    "private images must be pulled through the proxy at <proxy host>/proxy/<app slug>, and the app slug comes from the license: pass --license FILE (or put it at RELEASE_DIR/userdata/license.yaml)",
                ));
            }
            None => context.request.app_slug().to_string(),
        };
        let planner = match local_registry {
            Some(registry) => Planner::LocalRegistry {
                host: &registry.host,
                namespace: &registry.namespace,
            },
            None => Planner::Proxy {
                app_slug: &app_slug,
                domains: &domains,
                host_aliases: &host_aliases,
            },
        };
        let plan = plan_release_images(&planner, &probed, &fetched, &app_slug).map_err(
            |errors: Vec<PlanError>| {
                StageError::invalid_input(
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            },
        )?;
        let mut summary = match local_registry {
            Some(registry) => format!(
                "{} kustomize image entries: local-registry mode, every image ({}) pulled from {}, {} images left alone",
                plan.entries.len(),
                probed.images.len(),
                [registry.host.as_str(), registry.namespace.trim_matches('/')]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join("/"),
                plan.skipped.len(),
            ),
            None => format!(
                "{} kustomize image entries, {} images left alone (proxy host {}, registry host {})",
                plan.entries.len(),
                plan.skipped.len(),
                domains.proxy_host,
                domains.registry_host
            ),
        };
        for skipped in plan
            .skipped
            .iter()
            .filter(|skipped| is_not_patched(skipped))
        {
            summary.push_str(&format!(
                "; not patched: {} ({})",
                skipped.image, skipped.reason
            ));
        }
        // Each image on its own uses: another image sharing its `images:` entry may be patched
        // while this one is not.
        for image in &probed.images {
            let Some(reason) = outside_containers_reason(&image.uses) else {
                continue;
            };
            let reported = plan
                .skipped
                .iter()
                .any(|skipped| skipped.image == image.image);
            if reported {
                continue; // a v1beta2 chart's image, reported above
            }
            if let Some(new_name) = planner.own_new_name(image) {
                summary.push_str(&format!(
                    "; not patched: {} ({reason}; it must name {new_name} instead)",
                    image.image
                ));
            }
        }
        let fact = Fact::of(&OverridesPlanned {
            app_slug,
            domains,
            host_aliases,
            plan,
            local_registry: local_registry.map(|registry| LocalRegistryRecord {
                host: registry.host.clone(),
                namespace: registry.namespace.clone(),
                username: registry.username.clone(),
                password_fingerprint: registry.password_fingerprint.clone(),
            }),
        })?;
        Ok(StageOutput {
            facts: vec![fact],
            summary,
        })
    }
}

/// Whether a skipped image is one windlass cannot patch (as opposed to one that needs no patch:
/// public, or already on the registry host).
pub fn is_not_patched(skipped: &crate::events::SkippedImage) -> bool {
    skipped.reason.contains("not patched")
}

/// How this install renames images: through the proxy, or to the customer's local registry.
enum Planner<'a> {
    /// [`plan_overrides`].
    Proxy {
        app_slug: &'a str,
        domains: &'a Domains,
        host_aliases: &'a BTreeMap<String, String>,
    },
    /// [`plan_local_registry`].
    LocalRegistry { host: &'a str, namespace: &'a str },
}

impl Planner<'_> {
    fn plan(&self, images: &[ProbedImage]) -> Result<OverridePlan, Vec<PlanError>> {
        match self {
            Planner::Proxy {
                app_slug,
                domains,
                host_aliases,
            } => plan_overrides(images, app_slug, domains, host_aliases),
            Planner::LocalRegistry { host, namespace } => {
                plan_local_registry(images, host, namespace)
            }
        }
    }

    /// The `newName` `image` gets when planned on its own, whichever image claimed the names it
    /// shares with others first (kustomize's `images:` holds one entry per name); `None` when it
    /// needs no entry (public, on the registry host, started at run time) or cannot be planned.
    fn own_new_name(&self, image: &ProbedImage) -> Option<String> {
        let own = self.plan(std::slice::from_ref(image)).ok()?;
        own.entries.into_iter().next().map(|entry| entry.new_name)
    }
}

/// Plans the images kustomize patches. Each image found only in `kots.io/v1beta2` HelmCharts
/// (KOTS never patches those charts) is left out of that plan, planned on its own, and listed as
/// skipped with the exact reference the vendor's values must give it and the pull secret to name:
/// it never claims a name another image's entry needs, nor loses its report to one.
fn plan_release_images(
    planner: &Planner<'_>,
    probed: &ImagesProbed,
    fetched: &BaseFetched,
    app_slug: &str,
) -> Result<OverridePlan, Vec<PlanError>> {
    // Every image is checked (a host with a port, a local-registry collision), chart images too.
    let everything = planner.plan(&probed.images)?;
    if fetched.helm_charts.is_empty() {
        return Ok(everything);
    }
    let mut deployed = Vec::new();
    let mut in_charts = Vec::new();
    for image in &probed.images {
        match crate::helm_charts::not_patched_reason(
            image.uses.iter().map(|image_use| image_use.file.as_str()),
            &fetched.helm_charts,
            app_slug,
        ) {
            Some(reason) => in_charts.push((image, reason)),
            None => deployed.push(image.clone()),
        }
    }
    if in_charts.is_empty() {
        return Ok(everything);
    }
    let mut plan = planner.plan(&deployed)?;
    for (image, reason) in in_charts {
        let own = planner.plan(std::slice::from_ref(image))?;
        let Some(entry) = own.entries.first() else {
            // Public, additionalImages, or on the registry host: skipped for its own reason.
            plan.skipped.extend(own.skipped);
            continue;
        };
        let suffix = match (&image.pinned_digest, &image.tag) {
            (Some(digest), _) => format!("@{digest}"),
            (None, Some(tag)) => format!(":{tag}"),
            (None, None) => String::new(),
        };
        plan.skipped.push(SkippedImage {
            image: image.image.clone(),
            reason: reason.replacen(
                "this image to its proxied reference",
                &format!("this image to {}{suffix}", entry.new_name),
                1,
            ),
        });
    }
    Ok(plan)
}

/// Why kustomize's `images:` cannot rewrite an image, when none of its uses (besides
/// `additionalImages`) is the `image` of an element of a `containers` or `initContainers` list —
/// an operator's custom-resource field found by an image rule, or an ephemeral container.
pub fn outside_containers_reason(
    uses: &[windlass_manifest::images::discovery::ImageUse],
) -> Option<String> {
    let deployed: Vec<_> = uses
        .iter()
        .filter(|image_use| !image_use.runtime_only)
        .collect();
    let patchable = |field: &str| {
        let Some(rest) = field.strip_suffix(".image") else {
            return false;
        };
        let list = rest.rsplit('.').next().unwrap_or(rest);
        let name = list.split('[').next().unwrap_or(list);
        list.ends_with(']') && (name == "containers" || name == "initContainers")
    };
    if deployed.is_empty() || deployed.iter().any(|image_use| patchable(&image_use.field)) {
        return None;
    }
    let first = deployed[0];
    Some(format!(
        "found only outside containers and initContainers, first at {} (document {}) {} {}: {}, which kustomize's images: does not rewrite",
        first.file,
        first.document + 1,
        first.kind,
        first.name.as_deref().unwrap_or("(unnamed)"),
        first.field
    ))
}
