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
    /// The `useHelmInstall: true` HelmCharts, each built into a chart under
    /// `rendered/this-cluster/charts/<directory>/` that apply installs with `helm upgrade -i`
    /// (absent in records written before they were supported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_charts: Vec<RenderedHelmChart>,
}

/// One `useHelmInstall: true` HelmChart, rendered into an installable chart (wire format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedHelmChart {
    /// The HelmChart's `metadata.name`.
    pub name: String,
    /// The Helm release name.
    pub release_name: String,
    /// `spec.namespace`, if set (else the app namespace).
    pub namespace: Option<String>,
    /// `spec.weight`: charts are installed in ascending weight, then by name.
    pub weight: i64,
    /// `spec.chart.name`.
    pub chart_name: String,
    /// `spec.chart.chartVersion`.
    pub chart_version: String,
    /// `spec.helmUpgradeFlags`, passed to `helm upgrade --install` after windlass's arguments
    /// (recorded redacted when the chart holds a password value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_upgrade_flags: Vec<String>,
    /// Keyed fingerprint of the flags as written, when they are recorded redacted: apply takes
    /// them from the install's memory, where `fetch_base` kept them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_upgrade_flags_fingerprint: Option<String>,
    /// Its HelmChart's file held a password value: the chart's files rendered from its documents
    /// are written 0600 and listed by fingerprint, and helm's error output for it is never
    /// recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_password: bool,
    /// The chart's directory relative to the output directory,
    /// `rendered/this-cluster/charts/<directory>`.
    pub chart_dir: String,
    /// The pull secrets rendered into it as pre-install hooks, one per chart and subchart
    /// (`<slug>-<chart>-registry`).
    pub pull_secrets: Vec<String>,
    /// Workloads patched with their chart's pull secret, as `kind/namespace/name`.
    pub patched_workloads: Vec<String>,
    /// Every file of the chart (`Chart.yaml`, `templates/`, `charts/<sub>/…`, `crds/`).
    pub files: Vec<RenderedFile>,
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
