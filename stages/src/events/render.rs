//! `MidstreamRendered`: the overlay files written, the workloads patched with the pull secret, how
//! the result was built, and the built files under `rendered/this-cluster/`.

use serde::{Deserialize, Serialize};
use windlass_state::EventPayload;

/// `MidstreamRendered` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MidstreamRendered {
    /// Overlay files written by this stage (the downstream one only when it was absent).
    pub overlay_files: Vec<RenderedFile>,
    /// Whether the downstream overlay already existed and was left as the user had it.
    pub downstream_kept: bool,
    /// Workloads patched with the pull secret, as `kind/namespace/name`.
    pub patched_workloads: Vec<String>,
    /// How the result was built.
    pub builder: Builder,
    /// The built result under `rendered/this-cluster/`.
    pub rendered_files: Vec<RenderedFile>,
}

/// How the result was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Builder {
    /// windlass's own build.
    Native,
    /// The external kustomize, because the overlay uses features the native build lacks (or
    /// patches an object whose merge lists the native build does not reproduce).
    External {
        /// The command run.
        command: Vec<String>,
        /// The features (or object lists) that required it.
        unsupported: Vec<String>,
    },
}

/// One file written (wire format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedFile {
    /// Path relative to the output directory.
    pub path: String,
    /// Blob of its bytes; absent for files holding secrets.
    pub blob: Option<String>,
    /// Keyed fingerprint of its bytes, for files holding secrets.
    pub fingerprint: Option<String>,
}

impl EventPayload for MidstreamRendered {
    const EVENT_TYPE: &'static str = "MidstreamRendered";
    const VERSION: u32 = 1;
}
