//! KOTS HelmCharts for windlass: which archive of the release a HelmChart means
//! ([`archive`]), the values KOTS hands helm ([`values`]), the real `helm template` run in a
//! bounded subprocess ([`run`]) and its output laid out as KOTS lays out a rendered chart
//! ([`layout`]); for installed charts, `helm upgrade --install`, `uninstall`, and freeing a
//! release a killed helm left pending ([`pending`]). [`render_chart`] puts the four together for one HelmChart of either version.
//!
//! This crate knows nothing of stages, events or the state directory: a caller records what
//! [`RenderedChart::output`] holds (helm's stdout, whole) as a blob, so that a replay never needs
//! helm.

pub mod archive;
pub mod layout;
pub mod pending;
pub mod run;
pub mod values;

use serde_json::{Map, Value};
use windlass_kots::{HelmChartV1Beta1, HelmChartV1Beta2, OptionalValues};

pub use archive::{ArchiveError, ArchiveLimits, ChartArchive, ChartWanted, ReleaseFile};
pub use layout::{LayoutError, RenderedFile};
pub use pending::{Release, ReleaseRevision, pending_release};
pub use run::{
    HELM_ENV, HelmError, HelmTool, ReleaseRequest, TemplateOutput, UninstallOutcome, UpgradeOutput,
    UpgradeRequest,
};
pub use values::ValuesError;

/// One HelmChart, either version, in the terms rendering needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartToRender {
    /// How to name it in messages: `HelmChart <metadata.name> (<file>)`.
    pub helm_chart: String,
    /// `apiVersion`: `kots.io/v1beta1` or `kots.io/v1beta2`.
    pub api_version: String,
    /// `spec.chart.name`.
    pub chart_name: String,
    /// `spec.chart.chartVersion`.
    pub chart_version: String,
    /// The directory KOTS writes it under (v1beta1: `chart.releaseName`, else `metadata.name`;
    /// v1beta2: `releaseName`, else `chart.name`).
    pub directory: String,
    /// The Helm release name (v1beta1: `chart.releaseName`, else `chart.name`; v1beta2:
    /// `releaseName`, else `chart.name`).
    pub release_name: String,
    /// `spec.namespace`, if set.
    pub namespace: Option<String>,
    /// `spec.exclude`.
    pub exclude: Option<Value>,
    /// `spec.values`.
    pub values: std::collections::BTreeMap<String, Value>,
    /// `spec.optionalValues`.
    pub optional_values: Vec<OptionalValues>,
    /// `spec.builder`.
    pub builder: std::collections::BTreeMap<String, Value>,
    /// `spec.useHelmInstall` (v1beta1; v1beta2 charts are always installed by helm).
    pub use_helm_install: bool,
    /// `spec.weight`.
    pub weight: i64,
    /// `spec.helmUpgradeFlags`.
    pub helm_upgrade_flags: Vec<String>,
}

/// Why a HelmChart document cannot be read as one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChartSpecError {
    /// `spec.chart.name` is missing.
    #[error("{helm_chart}: spec.chart.name is missing")]
    NoChartName {
        /// The HelmChart.
        helm_chart: String,
    },
}

/// A HelmChart's `metadata.name`, how messages name it (`HelmChart NAME (FILE)`) and its
/// `spec.chart.name`, which must be given.
fn named(
    metadata_name: Option<&str>,
    chart_name: Option<&str>,
    file: &str,
) -> Result<(String, String, String), ChartSpecError> {
    let name = metadata_name.unwrap_or_default().to_string();
    let helm_chart = format!("HelmChart {name} ({file})");
    let chart_name = chart_name
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ChartSpecError::NoChartName {
            helm_chart: helm_chart.clone(),
        })?;
    Ok((name, helm_chart, chart_name))
}

impl ChartToRender {
    /// A `kots.io/v1beta1` HelmChart found in `file`.
    pub fn from_v1beta1(chart: &HelmChartV1Beta1, file: &str) -> Result<Self, ChartSpecError> {
        let (name, helm_chart, chart_name) = named(
            chart.metadata.name.as_deref(),
            chart.spec.chart.name.as_deref(),
            file,
        )?;
        let release = chart
            .spec
            .chart
            .release_name
            .clone()
            .filter(|name| !name.is_empty());
        Ok(ChartToRender {
            helm_chart,
            api_version: "kots.io/v1beta1".into(),
            directory: release.clone().unwrap_or_else(|| name.clone()),
            release_name: release.unwrap_or_else(|| chart_name.clone()),
            chart_name,
            chart_version: chart.spec.chart.chart_version.clone().unwrap_or_default(),
            namespace: chart.spec.namespace.clone().filter(|ns| !ns.is_empty()),
            exclude: chart.spec.exclude.clone(),
            values: chart.spec.values.clone(),
            optional_values: chart.spec.optional_values.clone(),
            builder: chart.spec.builder.clone(),
            use_helm_install: chart.spec.use_helm_install.unwrap_or(false),
            weight: chart.spec.weight.unwrap_or(0),
            helm_upgrade_flags: chart.spec.helm_upgrade_flags.clone(),
        })
    }

    /// A `kots.io/v1beta2` HelmChart found in `file`.
    pub fn from_v1beta2(chart: &HelmChartV1Beta2, file: &str) -> Result<Self, ChartSpecError> {
        let (_, helm_chart, chart_name) = named(
            chart.metadata.name.as_deref(),
            chart.spec.chart.name.as_deref(),
            file,
        )?;
        let release = chart
            .spec
            .release_name
            .clone()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| chart_name.clone());
        Ok(ChartToRender {
            helm_chart,
            api_version: "kots.io/v1beta2".into(),
            directory: release.clone(),
            release_name: release,
            chart_name,
            chart_version: chart.spec.chart.chart_version.clone().unwrap_or_default(),
            namespace: chart.spec.namespace.clone().filter(|ns| !ns.is_empty()),
            exclude: chart.spec.exclude.clone(),
            values: chart.spec.values.clone(),
            optional_values: chart.spec.optional_values.clone(),
            builder: chart.spec.builder.clone(),
            use_helm_install: true,
            weight: chart.spec.weight.unwrap_or(0),
            helm_upgrade_flags: chart.spec.helm_upgrade_flags.clone(),
        })
    }

    /// Whether this is a `kots.io/v1beta2` HelmChart (never patched: its images are reported, and
    /// the apply stage installs it as shipped).
    pub fn is_v1beta2(&self) -> bool {
        self.api_version == "kots.io/v1beta2"
    }

    /// The merged values: `values` and the true `optionalValues`.
    pub fn merged_values(&self) -> Result<Map<String, Value>, ValuesError> {
        values::merge_values(&self.values, &self.optional_values)
    }

    /// The `builder` values alone, as kotskinds' `GetBuilderValues` gives them: what KOTS
    /// templates a chart with to list its images (for an air-gap bundle, or to copy them to a
    /// local registry). Neither `values` nor `optionalValues` take part; the chart's own
    /// `values.yaml` fills in the rest.
    pub fn builder_values(&self) -> Map<String, Value> {
        self.builder
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

/// Which values a chart is rendered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuesFor {
    /// `values` and `optionalValues`: what is installed.
    Install,
    /// `builder` alone: what lists a v1beta2 chart's images.
    Builder,
}

/// A rendered HelmChart.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedChart {
    /// The archive it was rendered from.
    pub archive: ChartArchive,
    /// The values helm was given.
    pub values: Map<String, Value>,
    /// helm's stdout, whole, and its arguments: what a caller records.
    pub output: TemplateOutput,
    /// The output laid out as KOTS lays it out.
    pub files: Vec<RenderedFile>,
}

/// Why a HelmChart could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Its values or `exclude` could not be read.
    #[error("{helm_chart}: {error}")]
    Values {
        /// The HelmChart.
        helm_chart: String,
        /// What is wrong.
        error: ValuesError,
    },
    /// Its archive could not be found or read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// helm failed.
    #[error("{helm_chart}: {error}")]
    Helm {
        /// The HelmChart.
        helm_chart: String,
        /// What helm did.
        error: HelmError,
    },
    /// helm's output could not be laid out.
    #[error("{helm_chart}: {error}")]
    Layout {
        /// The HelmChart.
        helm_chart: String,
        /// What is wrong.
        error: LayoutError,
    },
}

/// Whether `chart` is excluded (`spec.exclude` true).
pub fn is_excluded(chart: &ChartToRender) -> Result<bool, RenderError> {
    values::is_excluded(chart.exclude.as_ref()).map_err(|error| RenderError::Values {
        helm_chart: chart.helm_chart.clone(),
        error,
    })
}

/// Finds `chart`'s archive among `files`, merges its values and runs `helm template` on it with
/// `tool`, in `namespace` unless the chart names its own. Rendered under the chart's directory
/// name as release name, as KOTS's `helm template` does at pull time.
pub fn render_chart<'a>(
    chart: &ChartToRender,
    files: impl IntoIterator<Item = ReleaseFile<'a>>,
    namespace: &str,
    values_for: ValuesFor,
    tool: &HelmTool,
    limits: &ArchiveLimits,
) -> Result<RenderedChart, RenderError> {
    let values_error = |error| RenderError::Values {
        helm_chart: chart.helm_chart.clone(),
        error,
    };
    let values = match values_for {
        ValuesFor::Install => chart.merged_values().map_err(values_error)?,
        ValuesFor::Builder => chart.builder_values(),
    };
    let archive = archive::find_chart_archive(
        files,
        &ChartWanted {
            helm_chart: chart.helm_chart.clone(),
            name: chart.chart_name.clone(),
            version: chart.chart_version.clone(),
        },
        limits,
    )?;
    let namespace = chart.namespace.as_deref().unwrap_or(namespace);
    let output = tool
        .template(&run::TemplateRequest {
            archive: &archive.bytes,
            release_name: &chart.directory,
            namespace,
            values: &values,
        })
        .map_err(|error| RenderError::Helm {
            helm_chart: chart.helm_chart.clone(),
            error,
        })?;
    let files = layout::split_output(&output.stdout).map_err(|error| RenderError::Layout {
        helm_chart: chart.helm_chart.clone(),
        error,
    })?;
    Ok(RenderedChart {
        archive,
        values,
        output,
        files,
    })
}
