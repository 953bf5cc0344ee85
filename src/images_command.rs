//! `windlass images`: reads a release (the same safe scan as `install`, nothing recorded) and lists
//! its distinct images, with `--why` every place each was found. With `--probe` it asks each image's
//! registry anonymously whether the image is public and prints the outcome, the policy's decision
//! and the reason (`--offline` never touches the network; `Application.spec.proxyPublicImages`
//! makes every image private without asking).

use anyhow::anyhow;
use serde::Serialize;
use std::time::Duration;

use windlass_registry::{ProbeConfig, ProbeOutcome, Prober, RegistrySettings};
use windlass_stages::images::discovery::{FoundImage, ImageUse, discover, proxies_public_images};
use windlass_stages::images::policy::{Decision, ProbePolicy};
use windlass_stages::images::rules::WindlassConfig;
use windlass_stages::release::{FileContents, Limits, scan};

use crate::cli::{GlobalArgs, ImagesArgs};
use crate::exit::{CliError, CliResult, Code};
use crate::read_commands::print_json;

/// One image as printed by `windlass images --json`.
#[derive(Serialize)]
struct ImageView<'a> {
    image: &'a str,
    registry: &'a str,
    repository: &'a str,
    normalized_name: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
    runtime_only: bool,
    uses: &'a [ImageUse],
}

/// Runs `windlass images`.
pub fn run(global: &GlobalArgs, args: &ImagesArgs) -> CliResult {
    let invalid = |error: anyhow::Error| CliError::new(Code::InvalidInput, error);
    let config = match &args.config {
        Some(path) => WindlassConfig::load(path).map_err(|error| invalid(error.into()))?,
        None => WindlassConfig::default(),
    };
    if !args.release_dir.is_dir() {
        return Err(invalid(anyhow!(
            "release directory {}: not a directory",
            args.release_dir.display()
        )));
    }
    let release = scan(&args.release_dir, &Limits::default(), |_, _| {})
        .map_err(|error| invalid(error.into()))?;
    let documents = release.files.iter().flat_map(|file| match &file.contents {
        FileContents::Yaml(documents) => documents.as_slice(),
        _ => &[],
    });
    let images = discover(
        documents.clone().map(|document| document.as_source()),
        &config.images.rules,
    )
    .map_err(|error| invalid(error.into()))?;
    if args.probe {
        let proxy_everything =
            proxies_public_images(documents.map(|document| document.as_source()));
        return probe(global, args, &images, proxy_everything);
    }
    if global.json {
        let views: Vec<ImageView> = images.iter().map(view).collect();
        print_json(&views)?;
    } else {
        print_human(&images, args.why);
    }
    Ok(Code::Success)
}

fn view(image: &FoundImage) -> ImageView<'_> {
    ImageView {
        image: image.reference.written(),
        registry: image.reference.registry(),
        repository: image.reference.repository(),
        normalized_name: image.reference.normalized_name(),
        tag: image.reference.tag(),
        digest: image.reference.digest(),
        runtime_only: image.runtime_only(),
        uses: &image.uses,
    }
}

fn print_human(images: &[FoundImage], why: bool) {
    if images.is_empty() {
        println!("no images found");
        return;
    }
    for image in images {
        let note = if image.runtime_only() {
            "  (additionalImages: started at run time, not patched)"
        } else {
            ""
        };
        println!(
            "{}  [{} use{}]{note}",
            image.reference.written(),
            image.uses.len(),
            if image.uses.len() == 1 { "" } else { "s" }
        );
        if why {
            for image_use in &image.uses {
                let object = match (&image_use.namespace, &image_use.name) {
                    (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
                    (None, Some(name)) => name.clone(),
                    _ => "(unnamed)".into(),
                };
                println!(
                    "    {} (document {}) {} {object}: {}",
                    image_use.file,
                    image_use.document + 1,
                    image_use.kind,
                    image_use.field
                );
            }
        }
    }
}

/// One probed image as printed by `windlass images --probe --json`.
#[derive(Serialize)]
struct ProbedView<'a> {
    image: &'a str,
    outcome: &'static str,
    decision: Decision,
    private: bool,
    digest: Option<String>,
    reason: String,
    normalized_name: String,
    runtime_only: bool,
    evidence: Option<windlass_registry::ProbeEvidence>,
}

fn probe(
    global: &GlobalArgs,
    args: &ImagesArgs,
    images: &[FoundImage],
    proxy_everything: bool,
) -> CliResult {
    let policy = ProbePolicy::parse(&args.probe_policy).ok_or_else(|| {
        CliError::new(
            Code::InvalidInput,
            anyhow!(
                "unknown probe policy {:?}: use kots or strict",
                args.probe_policy
            ),
        )
    })?;
    let settings = match &args.registries {
        Some(path) => RegistrySettings::load(path)
            .map_err(|error| CliError::new(Code::InvalidInput, anyhow!(error)))?,
        None => RegistrySettings::empty(),
    };
    let mut views = Vec::with_capacity(images.len());
    if proxy_everything || args.offline {
        let (outcome, reason) = if proxy_everything {
            (
                "not_probed",
                "Application.spec.proxyPublicImages is true: every image is private",
            )
        } else {
            ("unreachable", "offline: the registry was not asked")
        };
        for image in images {
            let decision = if proxy_everything {
                Decision::Private
            } else {
                policy.decide(ProbeOutcome::Unreachable)
            };
            views.push(ProbedView {
                image: image.reference.written(),
                outcome,
                decision,
                private: decision == Decision::Private,
                digest: None,
                reason: reason.to_string(),
                normalized_name: image.reference.normalized_name(),
                runtime_only: image.runtime_only(),
                evidence: None,
            });
        }
    } else {
        let config = ProbeConfig {
            request_deadline: Duration::from_secs(args.request_timeout.max(1)),
            ..ProbeConfig::default()
        };
        let prober = Prober::new(settings, config)
            .map_err(|error| CliError::new(Code::InvalidInput, anyhow!(error)))?;
        let targets = images
            .iter()
            .map(|image| image.reference.probe_target())
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|error| CliError::new(Code::Failure, error))?;
        let results = runtime.block_on(prober.probe_all(targets, |_, _| {}));
        for (image, result) in images.iter().zip(results) {
            let decision = policy.decide(result.outcome);
            views.push(ProbedView {
                image: image.reference.written(),
                outcome: result.outcome.as_str(),
                decision,
                private: decision == Decision::Private,
                digest: result.evidence.digest.clone(),
                reason: result.evidence.reason.clone(),
                normalized_name: image.reference.normalized_name(),
                runtime_only: image.runtime_only(),
                evidence: Some(result.evidence),
            });
        }
    }
    if global.json {
        print_json(&views)?;
    } else {
        for view in &views {
            println!(
                "{:<8} {:<14} {}  ({})",
                match view.decision {
                    Decision::Public => "public",
                    Decision::Private => "private",
                    Decision::Error => "ERROR",
                },
                view.outcome,
                view.image,
                view.reason
            );
        }
    }
    let errors: Vec<&str> = views
        .iter()
        .filter(|view| view.decision == Decision::Error)
        .map(|view| view.image)
        .collect();
    if errors.is_empty() {
        Ok(Code::Success)
    } else {
        Err(CliError::new(
            Code::Failure,
            anyhow!(
                "the {} probe policy refuses to decide for: {}",
                args.probe_policy,
                errors.join(", ")
            ),
        ))
    }
}
