//! `windlass images`: reads a release (the same safe scan as `install`, nothing recorded) and lists
//! its distinct images, with `--why` every place each was found. With `--probe` it asks each image's
//! registry anonymously whether the image is public and prints the outcome, the policy's decision
//! and the reason (`--offline` never touches the network; `Application.spec.proxyPublicImages`
//! makes every image private without asking).

use anyhow::anyhow;
use serde::Serialize;
use std::collections::HashMap;

use windlass_engine::{StageError, SystemClock};
use windlass_manifest::documents::Document;
use windlass_manifest::images::discovery::{FoundImage, ImageUse, discover, proxies_public_images};
use windlass_manifest::images::rules::WindlassConfig;
use windlass_stages::events::{Decision, HelmChartRendered};
use windlass_stages::helm_charts;
use windlass_stages::probe_images::{ProbeDriver, ProbeImagesConfig, summarise};

use windlass_engine::Services;
use windlass_stages::release::{FileContents, Limits, scan_templated};
use windlass_stages::templates::Templates;

use crate::cli::{GlobalArgs, ImagesArgs};
use crate::exit::{CliError, CliResult, Code};
use crate::install_command::parse_policy;
use crate::read_commands::print_json;
// Ends quietly when the reader closes the pipe (`windlass images ... | head`).
use crate::stdout::println;

/// One image as printed by `windlass images --json`.
#[derive(Serialize)]
struct ImageView<'a> {
    /// Why windlass cannot patch it, when it cannot (a `kots.io/v1beta2` chart's image).
    #[serde(skip_serializing_if = "Option::is_none")]
    not_patched: Option<String>,
    image: &'a str,
    registry: &'a str,
    repository: &'a str,
    normalized_name: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
    runtime_only: bool,
    uses: Vec<UseView<'a>>,
}

/// One use of an image: where it was found and, inside a rendered HelmChart, which chart and
/// which template file of it.
#[derive(Serialize)]
struct UseView<'a> {
    #[serde(flatten)]
    found: &'a ImageUse,
    /// The HelmChart (`metadata.name`) whose rendering holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    chart: Option<&'a str>,
    /// The template file inside the chart (`templates/deployment.yaml`,
    /// `charts/<subchart>/templates/...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<&'a str>,
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
    // Templates are rendered first, as an install renders them: an image field may be a
    // template (`repl{{ ConfigOption "web_repository" }}:1`), and what is discovered is its
    // rendered value.
    let crate::config_command::TemplateInputs { given, license, .. } =
        crate::config_command::template_inputs(
            &args.release_dir,
            args.config_values.as_ref(),
            args.license.as_ref(),
        )?;
    let templates = Templates::for_release(
        given,
        license.as_ref(),
        &args.namespace,
        &Services::default(),
    );
    let release = scan_templated(
        &args.release_dir,
        &Limits::default(),
        None,
        None,
        license.as_ref().map(|license| &license.license_id),
        Some(&templates),
        |_, _| {},
    )
    .map_err(|error| invalid(error.into()))?;
    let tool = helm_charts::helm_tool(args.helm.as_ref());
    let charts = helm_charts::render_release_charts(
        &release,
        &helm_charts::ChartRendering {
            tool: &tool,
            namespace: &args.namespace,
            recorded: None,
            parsed_cache: None,
            holds_password: &|file| templates.holds_password(file),
            excluded: &|_, _, _| {},
        },
    )
    .map_err(|error| invalid(anyhow!(error)))?;
    let records: Vec<HelmChartRendered> = charts.iter().map(|chart| chart.record.clone()).collect();
    let slug = release
        .documents()
        .find(|document| {
            document.kind == "Application" && document.api_version.starts_with("kots.io/")
        })
        .and_then(|document| document.name.clone())
        .unwrap_or_else(|| "<app slug>".into());
    let documents: Vec<&Document> = release
        .files
        .iter()
        .flat_map(|file| match &file.contents {
            FileContents::Yaml(documents) => documents.as_slice(),
            _ => &[],
        })
        .chain(charts.iter().flat_map(|chart| chart.documents.iter()))
        .collect();
    let images = discover(
        documents.iter().map(|document| document.as_source()),
        &config.images.rules,
    )
    .map_err(|error| invalid(error.into()))?;
    if args.probe {
        let proxy_everything =
            proxies_public_images(documents.iter().map(|document| document.as_source()));
        return probe(global, args, &images, proxy_everything);
    }
    let charts = Charts {
        records: &records,
        slug: &slug,
    };
    if global.json {
        let views: Vec<ImageView> = images.iter().map(|image| view(image, &charts)).collect();
        print_json(&views)?;
    } else {
        print_human(&images, args.why, &charts);
    }
    Ok(Code::Success)
}

/// The release's rendered HelmCharts, to say which chart and template an image is in.
struct Charts<'a> {
    records: &'a [HelmChartRendered],
    slug: &'a str,
}

impl Charts<'_> {
    fn not_patched(&self, image: &FoundImage) -> Option<String> {
        helm_charts::not_patched_reason(
            image.uses.iter().map(|image_use| image_use.file.as_str()),
            self.records,
            self.slug,
        )
        .or_else(|| windlass_stages::plan_overrides::outside_containers_reason(&image.uses))
    }

    /// The chart and the template file inside it of a use's file.
    fn place<'a>(&'a self, file: &'a str) -> Option<(&'a str, &'a str)> {
        let record = helm_charts::chart_of(file, self.records)?;
        let template = file
            .split_once('/')
            .and_then(|(_, rest)| rest.strip_prefix(record.directory.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))?;
        Some((record.name.as_str(), template))
    }
}

fn view<'a>(image: &'a FoundImage, charts: &'a Charts<'a>) -> ImageView<'a> {
    ImageView {
        not_patched: charts.not_patched(image),
        image: image.reference.written(),
        registry: image.reference.registry(),
        repository: image.reference.repository(),
        normalized_name: image.reference.normalized_name(),
        tag: image.reference.tag(),
        digest: image.reference.digest(),
        runtime_only: image.runtime_only(),
        uses: image
            .uses
            .iter()
            .map(|found| {
                let place = charts.place(&found.file);
                UseView {
                    found,
                    chart: place.map(|(chart, _)| chart),
                    template: place.map(|(_, template)| template),
                }
            })
            .collect(),
    }
}

fn print_human(images: &[FoundImage], why: bool, charts: &Charts<'_>) {
    if images.is_empty() {
        println!("no images found");
        return;
    }
    for image in images {
        let note = if image.runtime_only() {
            "  (additionalImages: started at run time, not patched)".to_string()
        } else if let Some(reason) = charts.not_patched(image) {
            format!("  (not patched: {reason})")
        } else {
            String::new()
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
                let chart = match charts.place(&image_use.file) {
                    Some((chart, template)) => format!(" [HelmChart {chart}, template {template}]"),
                    None => String::new(),
                };
                println!(
                    "    {} (document {}) {} {object}: {}{chart}",
                    image_use.file,
                    image_use.document + 1,
                    image_use.kind,
                    image_use.field
                );
            }
        }
    }
}

fn probe(
    global: &GlobalArgs,
    args: &ImagesArgs,
    images: &[FoundImage],
    proxy_public_images: bool,
) -> CliResult {
    let probing = &args.probing;
    let config = ProbeImagesConfig {
        policy: parse_policy(&probing.probe_policy)?,
        offline: probing.offline,
        cache_ttl_seconds: 0,
        registries_file: probing.registries.clone(),
        known_images_file: probing.known_images.clone(),
        config_file: None,
        request_timeout_seconds: probing.request_timeout.max(1),
    };
    let stage_error = |error: StageError| CliError::new(Code::InvalidInput, anyhow!(error.message));
    let driver = ProbeDriver::new(&config).map_err(stage_error)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::new(Code::Failure, error))?;
    let no_progress = |_: u64, _: u64| {};
    let resolved = runtime
        .block_on(driver.resolve(
            images,
            proxy_public_images,
            &HashMap::new(),
            &no_progress,
            &SystemClock,
        ))
        .map_err(stage_error)?;
    if global.json {
        print_json(&resolved.images)?;
    } else {
        for image in &resolved.images {
            println!(
                "{:<8} {:<14} {}  ({})",
                match image.decision {
                    Decision::Public => "public",
                    Decision::Private => "private",
                    Decision::Error => "ERROR",
                },
                image.outcome,
                image.image,
                image.reason
            );
        }
        println!("{}", summarise(&resolved.images, resolved.requests_made));
    }
    match resolved.refusal() {
        None => Ok(Code::Success),
        Some(refusal) => Err(CliError::new(Code::Failure, anyhow!(refusal))),
    }
}
