//! The `useHelmInstall: true` HelmCharts: after the plain manifests, each rendered chart
//! (`rendered/this-cluster/charts/<directory>/`, see `windlass_stages::helm_install`) is handed to
//! the real `helm upgrade --install <release> <chart> --namespace <ns>`, in ascending `weight`
//! and then by HelmChart name, as KOTS installs them. The chart helm gets is already rendered:
//! its images rewritten by its midstream's `images:`, its workloads patched with
//! `imagePullSecrets: [<slug>-<chart>-registry]` and that secret among its templates as a
//! `pre-install,pre-upgrade` hook, so no values and no post-renderer are passed and what the
//! cluster gets is exactly what `render_midstream` recorded. helm runs bounded (`HelmTool`: a
//! deadline, an output cap, its own temporary directory, a cleared environment with only the
//! kubeconfig added) and without `--wait`. Each outcome is recorded as `HelmReleaseInstalled`,
//! without helm's output (a chart's NOTES may print anything). The directory target writes
//! each chart under `charts/<release>/` instead.

use std::time::Instant;

use windlass_helm::{HelmTool, UpgradeRequest};

use crate::events::{HelmReleaseInstalled, HelmReleaseOutcome};
use crate::source::HelmChartSource;

/// Most characters of helm's error kept in the record.
const MAX_ERROR_CHARS: usize = 4000;

/// The charts in install order: ascending `weight`, then HelmChart name.
pub fn install_order(charts: &[HelmChartSource]) -> Vec<&HelmChartSource> {
    let mut ordered: Vec<&HelmChartSource> = charts.iter().collect();
    ordered.sort_by(|a, b| (a.chart.weight, &a.chart.name).cmp(&(b.chart.weight, &b.chart.name)));
    ordered
}

/// The record of `chart` before helm runs.
pub fn record_of(chart: &HelmChartSource, namespace: &str) -> HelmReleaseInstalled {
    HelmReleaseInstalled {
        helm_chart: chart.chart.name.clone(),
        release_name: chart.chart.release_name.clone(),
        namespace: namespace.to_string(),
        weight: chart.chart.weight,
        chart: format!("{}-{}", chart.chart.chart_name, chart.chart.chart_version),
        chart_dir: chart.chart.chart_dir.clone(),
        chart_digest: chart.digest(),
        outcome: HelmReleaseOutcome::NotRunDryRun,
        helm_version: None,
        arguments: Vec::new(),
        revision: None,
        status: None,
        written_to: None,
        error: None,
        elapsed_ms: 0,
    }
}

/// Where a cluster is, for helm.
pub struct HelmCluster<'a> {
    /// `KUBECONFIG` for helm.
    pub kubeconfig: &'a std::ffi::OsStr,
    /// The kubeconfig context.
    pub context: Option<&'a str>,
    /// helm's `--timeout`, in seconds.
    pub timeout_seconds: u64,
}

/// Runs `helm upgrade --install` for `chart` in `namespace` (blocking: call it off the async
/// runtime) and records how it went.
pub fn install_chart(
    tool: &HelmTool,
    helm_version: &str,
    chart: &HelmChartSource,
    namespace: &str,
    cluster: &HelmCluster<'_>,
) -> HelmReleaseInstalled {
    let mut record = record_of(chart, namespace);
    record.helm_version = Some(helm_version.to_string());
    let files: Vec<(String, Vec<u8>)> = chart
        .files
        .iter()
        .map(|(path, bytes, _)| (path.clone(), bytes.clone()))
        .collect();
    let started = Instant::now();
    let result = tool.upgrade_install(&UpgradeRequest {
        release_name: &chart.chart.release_name,
        namespace,
        files: &files,
        kubeconfig: std::path::Path::new(cluster.kubeconfig),
        kube_context: cluster.context,
        timeout_seconds: cluster.timeout_seconds,
        extra_arguments: &chart.chart.helm_upgrade_flags,
    });
    record.elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(output) => {
            record.outcome = HelmReleaseOutcome::Installed;
            record.arguments = output.arguments;
            record.revision = output.revision;
            record.status = output.status;
        }
        Err(error) => {
            record.outcome = HelmReleaseOutcome::Failed;
            let mut message = error.to_string();
            if message.chars().count() > MAX_ERROR_CHARS {
                message = message.chars().take(MAX_ERROR_CHARS).collect::<String>() + " …";
            }
            record.error = Some(message);
        }
    }
    record
}
