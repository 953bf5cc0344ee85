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
//!
//! Before any chart is installed, each release the previous real apply of the app to the same
//! cluster installed and the release applied now no longer has is handed to `helm uninstall`,
//! higher `weight` first, as KOTS does; each outcome is recorded as `HelmReleaseUninstalled`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::Instant;

use windlass_engine::{StageContext, StageError};
use windlass_helm::{HelmTool, UninstallOutcome, UninstallRequest, UpgradeRequest};

use crate::events::{
    HELM_RELEASE_INSTALLED, HelmReleaseInstalled, HelmReleaseOutcome, HelmReleaseUninstalled,
    HelmUninstallOutcome,
};
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

/// The releases install `previous_apply` recorded as installed (the newest record of each
/// release and namespace), read from the stage's fact history.
pub fn installed_by(
    context: &StageContext,
    previous_apply: &str,
) -> Result<Vec<HelmReleaseInstalled>, StageError> {
    let mut seen = BTreeSet::new();
    let mut installed = Vec::new();
    context
        .history
        .visit_recent_facts(
            HELM_RELEASE_INSTALLED,
            time::OffsetDateTime::UNIX_EPOCH,
            &context.install_id,
            &mut |event| {
                if event.event.install_id != previous_apply {
                    return ControlFlow::Continue(());
                }
                let Ok(record) = event.decode::<HelmReleaseInstalled>() else {
                    return ControlFlow::Continue(());
                };
                if seen.insert((record.release_name.clone(), record.namespace.clone()))
                    && record.outcome == HelmReleaseOutcome::Installed
                {
                    installed.push(record);
                }
                ControlFlow::Continue(())
            },
        )
        .map_err(StageError::permanent)?;
    Ok(installed)
}

/// Of `previously_installed`, the releases none of `charts` installs now (a chart's release in
/// its namespace, `namespace_of`), in uninstall order: descending `weight`, then release name
/// descending (the reverse of the install order).
pub fn dropped(
    previously_installed: Vec<HelmReleaseInstalled>,
    charts: &[HelmChartSource],
    namespace_of: impl Fn(&HelmChartSource) -> String,
) -> Vec<HelmReleaseInstalled> {
    let current: BTreeSet<(String, String)> = charts
        .iter()
        .map(|chart| (chart.chart.release_name.clone(), namespace_of(chart)))
        .collect();
    let mut dropped: Vec<HelmReleaseInstalled> = previously_installed
        .into_iter()
        .filter(|record| {
            !current.contains(&(record.release_name.clone(), record.namespace.clone()))
        })
        .collect();
    dropped.sort_by(|a, b| (b.weight, &b.release_name).cmp(&(a.weight, &a.release_name)));
    dropped
}

/// The record of uninstalling `release` (installed by install `installed_by`) before helm runs.
pub fn uninstall_record_of(
    release: &HelmReleaseInstalled,
    installed_by: &str,
) -> HelmReleaseUninstalled {
    HelmReleaseUninstalled {
        helm_chart: release.helm_chart.clone(),
        release_name: release.release_name.clone(),
        namespace: release.namespace.clone(),
        weight: release.weight,
        installed_by: installed_by.to_string(),
        outcome: HelmUninstallOutcome::NotRunDryRun,
        helm_version: None,
        arguments: Vec::new(),
        error: None,
        elapsed_ms: 0,
    }
}

/// Runs `helm uninstall` for `release` (blocking: call it off the async runtime) and records how
/// it went.
pub fn uninstall_release(
    tool: &HelmTool,
    helm_version: &str,
    release: &HelmReleaseInstalled,
    installed_by: &str,
    cluster: &HelmCluster<'_>,
) -> HelmReleaseUninstalled {
    let mut record = uninstall_record_of(release, installed_by);
    record.helm_version = Some(helm_version.to_string());
    let started = Instant::now();
    let result = tool.uninstall(&UninstallRequest {
        release_name: &release.release_name,
        namespace: &release.namespace,
        kubeconfig: std::path::Path::new(cluster.kubeconfig),
        kube_context: cluster.context,
        timeout_seconds: cluster.timeout_seconds,
    });
    record.elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok((outcome, arguments)) => {
            record.arguments = arguments;
            record.outcome = match outcome {
                UninstallOutcome::Uninstalled => HelmUninstallOutcome::Uninstalled,
                UninstallOutcome::NotFound => HelmUninstallOutcome::NotFound,
            };
        }
        Err(error) => {
            record.outcome = HelmUninstallOutcome::Failed;
            record.error = Some(capped(error.to_string()));
        }
    }
    record
}

/// `message`, cut to [`MAX_ERROR_CHARS`] characters.
fn capped(message: String) -> String {
    if message.chars().count() > MAX_ERROR_CHARS {
        message.chars().take(MAX_ERROR_CHARS).collect::<String>() + " …"
    } else {
        message
    }
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
            record.error = Some(capped(error.to_string()));
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use windlass_stages::events::RenderedHelmChart;

    use super::*;

    fn installed(release: &str, namespace: &str, weight: i64) -> HelmReleaseInstalled {
        let mut record = record_of(&chart(release, Some(namespace), weight), namespace);
        record.outcome = HelmReleaseOutcome::Installed;
        record
    }

    fn chart(release: &str, namespace: Option<&str>, weight: i64) -> HelmChartSource {
        HelmChartSource {
            chart: RenderedHelmChart {
                name: format!("{release}-chart"),
                release_name: release.into(),
                namespace: namespace.map(str::to_string),
                weight,
                chart_name: release.into(),
                chart_version: "1.0.0".into(),
                helm_upgrade_flags: Vec::new(),
                chart_dir: format!("rendered/this-cluster/charts/{release}"),
                pull_secrets: Vec::new(),
                patched_workloads: Vec::new(),
                files: Vec::new(),
            },
            files: Vec::new(),
        }
    }

    #[test]
    fn releases_no_chart_installs_now_go_higher_weight_first() {
        let previous = vec![
            installed("low", "default", -5),
            installed("kept", "default", 0),
            installed("high", "default", 20),
            installed("moved", "old", 1),
            installed("also-high", "default", 20),
        ];
        // `moved` is now installed in another namespace: the old one is dropped.
        let current = [chart("kept", None, 0), chart("moved", Some("new"), 1)];
        let dropped = dropped(previous, &current, |chart| {
            chart
                .chart
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into())
        });
        let order: Vec<(&str, &str)> = dropped
            .iter()
            .map(|record| (record.release_name.as_str(), record.namespace.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("high", "default"),
                ("also-high", "default"),
                ("moved", "old"),
                ("low", "default")
            ]
        );
    }
}
