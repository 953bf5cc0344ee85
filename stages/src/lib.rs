//! `windlass-stages` holds the built-in pipeline stages and the release model they share: reading a
//! release directory safely ([`release`]), splitting and classifying its YAML documents
//! ([`documents`]), reading a KOTS license ([`license`]), and the stages themselves —
//! [`fetch_base`] records the release in the log and blob store, [`write_base`] materialises
//! `upstream/` and `base/` from what was recorded. [`stage_kinds`] is the explicit registration
//! list and [`default_pipeline`] the stages that exist today, in order.

pub mod documents;
pub mod events;
pub mod fetch_base;
pub mod images;
pub mod license;
pub mod output;
pub mod release;
pub mod write_base;

use windlass_engine::{StageKind, StageSpec};

/// Every event type the built-in stages record, with upcasters.
pub use events::SCHEMAS;

/// The stage kinds this crate provides.
pub fn stage_kinds() -> Vec<StageKind> {
    vec![fetch_base::KIND, write_base::KIND]
}

/// The default install pipeline: the stages that exist, in order.
pub fn default_pipeline() -> Vec<StageSpec> {
    vec![
        StageSpec::new("fetch_base", "fetch_base", &[]),
        StageSpec::new("write_base", "write_base", &["fetch_base"]),
    ]
}
