//! `windlass-stages` holds the built-in pipeline stages and the release model they share: reading a
//! release directory safely ([`release`], checking chart archives with [`charts`] and object names
//! with [`names`]), reading a KOTS license ([`license`]), writing into an output directory
//! ([`output`]), the facts the stages record ([`events`], a wire-format module that imports no
//! stage), and the stages themselves — [`fetch_base`] records the release in the log and blob store,
//! [`write_base`] materialises `upstream/` and `base/` from what was recorded, [`probe_images`]
//! finds every image and decides whether it is private, [`plan_overrides`] plans the image
//! rewrites, [`provision_secrets`] writes the pull secrets and [`render_midstream`] the overlays and
//! the built result. Documents, image references and the parsed cache come from
//! `windlass-manifest`, the native build from `windlass-kustomize`. [`stage_kinds`] is the explicit
//! registration list and [`default_pipeline`] the stages that exist today.
//! [`install::install`] is the install API: it starts or resumes an install with these stages and
//! runs it, reporting progress through a trait (the binary, a daemon and a replay call it).

pub mod charts;
pub mod credential_texts;
pub mod effective_values;
pub mod events;
pub mod fetch_base;
pub mod helm_charts;
pub mod helm_install;
pub mod install;
pub mod license;
pub mod names;
pub mod output;
pub mod output_claim;
pub mod plan;
pub mod plan_overrides;
pub mod probe_images;
pub mod probe_policy;
pub mod provision_secrets;
mod recorded_blobs;
pub mod release;
pub mod render_midstream;
pub mod secrets;
pub mod templates;
pub mod unrendered_documents;
pub mod write_base;

use windlass_engine::{StageKind, StageSpec};

/// Every event type the built-in stages record, with upcasters.
pub use events::SCHEMAS;

/// The stage kinds this crate provides.
pub fn stage_kinds() -> Vec<StageKind> {
    vec![
        fetch_base::kind(),
        write_base::kind(),
        probe_images::kind(),
        plan_overrides::kind(),
        provision_secrets::kind(),
        render_midstream::kind(),
    ]
}

/// The fetch and write stages alone: `fetch_base` → `write_base`.
pub fn base_pipeline() -> Vec<StageSpec> {
    vec![
        StageSpec::new("fetch_base", "fetch_base", &[]),
        StageSpec::new("write_base", "write_base", &["fetch_base"]),
    ]
}

/// What the default pipeline's stages are configured with.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// `fetch_base`: the helm that renders HelmCharts (`None`: found as
    /// [`windlass_helm::HelmTool::default_path`] says).
    pub helm: Option<std::path::PathBuf>,
    /// `probe_images`.
    pub probe: probe_images::ProbeImagesConfig,
    /// `plan_overrides`.
    pub plan: plan_overrides::PlanOverridesConfig,
    /// `provision_secrets`.
    pub secrets: provision_secrets::ProvisionSecretsConfig,
    /// `render_midstream`.
    pub render: render_midstream::RenderMidstreamConfig,
}

fn spec(name: &str, inputs: &[&str], config: &impl serde::Serialize) -> StageSpec {
    let mut spec = StageSpec::new(name, name, inputs);
    spec.config = serde_json::to_value(config).expect("stage configurations are plain data");
    spec
}

/// The default install pipeline, every stage that exists: `fetch_base`; then `write_base` and
/// `probe_images` (both read only `fetch_base`'s facts, so they run concurrently); then
/// `plan_overrides`, `provision_secrets` and `render_midstream`, which reads `fetch_base` rather
/// than `write_base` and so runs while `write_base` is still writing.
pub fn default_pipeline(options: &PipelineOptions) -> Vec<StageSpec> {
    let mut stages = base_pipeline();
    if let Some(helm) = &options.helm {
        stages[0].config = serde_json::json!({ "helm": helm });
    }
    stages.push(spec("probe_images", &["fetch_base"], &options.probe));
    stages.push(spec(
        "plan_overrides",
        &["fetch_base", "probe_images"],
        &options.plan,
    ));
    stages.push(spec(
        "provision_secrets",
        &["fetch_base", "plan_overrides"],
        &options.secrets,
    ));
    stages.push(spec(
        "render_midstream",
        &[
            "fetch_base",
            "probe_images",
            "plan_overrides",
            "provision_secrets",
        ],
        &options.render,
    ));
    stages
}
