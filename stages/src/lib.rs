//! `windlass-stages` holds the built-in pipeline stages and the release model they share: reading a
//! release directory safely ([`release`]), splitting and classifying its YAML documents
//! ([`documents`]), reading a KOTS license ([`license`]), and the stages themselves —
//! [`fetch_base`] records the release in the log and blob store, [`write_base`] materialises
//! `upstream/` and `base/` from what was recorded, [`probe_images`] finds every image and decides
//! whether it is private. [`stage_kinds`] is the explicit registration list and
//! [`default_pipeline`] the stages that exist today.

pub mod documents;
pub mod events;
pub mod fetch_base;
pub mod images;
pub mod license;
pub mod output;
pub mod probe_images;
pub mod release;
pub mod write_base;

use windlass_engine::{StageKind, StageSpec};

/// Every event type the built-in stages record, with upcasters.
pub use events::SCHEMAS;

/// The stage kinds this crate provides.
pub fn stage_kinds() -> Vec<StageKind> {
    vec![fetch_base::KIND, write_base::KIND, probe_images::KIND]
}

/// The fetch and write stages alone: `fetch_base` → `write_base`.
pub fn base_pipeline() -> Vec<StageSpec> {
    vec![
        StageSpec::new("fetch_base", "fetch_base", &[]),
        StageSpec::new("write_base", "write_base", &["fetch_base"]),
    ]
}

/// The default install pipeline, every stage that exists: `fetch_base`, then `write_base` and
/// `probe_images` (which both read only `fetch_base`'s facts, so they run concurrently).
pub fn default_pipeline(probe: &probe_images::ProbeImagesConfig) -> Vec<StageSpec> {
    let mut stages = base_pipeline();
    let mut probe_images = StageSpec::new("probe_images", "probe_images", &["fetch_base"]);
    probe_images.config =
        serde_json::to_value(probe).expect("the probe configuration is plain data");
    stages.push(probe_images);
    stages
}
