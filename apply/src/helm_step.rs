//! The apply stage's helm step, after the plain manifests on the kube target: each release the
//! previous real apply of the app to the same cluster installed (or an apply since that never
//! completed did) and no `useHelmInstall: true` chart installs now goes to `helm uninstall`
//! (higher weight first), then each chart to
//! `helm upgrade --install` (in install order), every outcome recorded as it comes
//! ([`crate::helm_release`] runs helm and makes the records).

use windlass_engine::{Fact, StageContext, StageError};

use crate::events::{HelmReleaseOutcome, HelmReleaseUninstalled, HelmUninstallOutcome};
use crate::helm_release::HelmCluster;
use crate::stage::ApplyStage;

impl ApplyStage {
    /// After the plain manifests: each release installed before (`installed_before`, each with
    /// the install that did: [`crate::helm_release::installed_before`]) that no chart installs
    /// now through `helm uninstall`, then each
    /// `useHelmInstall: true` chart through `helm upgrade --install`, in install order, each
    /// outcome recorded as it comes. A failed chart fails the stage (after its record); a dry run
    /// runs no helm. Returns what the summary adds.
    pub(crate) async fn install_helm_charts(
        &self,
        context: &StageContext,
        charts: &[crate::source::HelmChartSource],
        unmanaged: &[crate::source::UnmanagedChart],
        installed_before: Vec<(String, crate::events::HelmReleaseInstalled)>,
        kubeconfig: &std::ffi::OsStr,
        kube_context: Option<&str>,
    ) -> Result<String, StageError> {
        let app_namespace = context.request.namespace.clone();
        let namespace_of = |chart: &crate::source::HelmChartSource| {
            chart
                .chart
                .namespace
                .clone()
                .unwrap_or_else(|| app_namespace.clone())
        };
        // A release a kots.io/v1beta2 chart of this release now names (KOTS's migration from
        // v1beta1) is not "dropped": uninstalling it would remove what the new chart is.
        let kept_by_v1beta2: std::collections::BTreeSet<(String, String)> = unmanaged
            .iter()
            .map(|chart| {
                (
                    chart.release_name.clone(),
                    chart
                        .namespace
                        .clone()
                        .unwrap_or_else(|| app_namespace.clone()),
                )
            })
            .collect();
        let dropped: Vec<_> = crate::helm_release::dropped(installed_before, charts, namespace_of)
            .into_iter()
            .filter(|(_, release)| {
                !kept_by_v1beta2
                    .contains(&(release.release_name.clone(), release.namespace.clone()))
            })
            .collect();
        let unmanaged_note = if unmanaged.is_empty() {
            String::new()
        } else {
            format!(
                "; not installed by windlass (kots.io/v1beta2, install each with helm upgrade --install from helm/<directory>/: its archive and values.yaml): {}",
                unmanaged
                    .iter()
                    .map(|chart| format!("{} (helm/{}/)", chart.name, chart.directory))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if charts.is_empty() && dropped.is_empty() {
            return Ok(unmanaged_note);
        }
        if self.config.dry_run {
            for (installer, release) in &dropped {
                let record = crate::helm_release::uninstall_record_of(release, installer);
                context.record_fact(Fact::of(&record)?).await?;
            }
            for chart in crate::helm_release::install_order(charts) {
                let record = crate::helm_release::record_of(chart, &namespace_of(chart));
                context.record_fact(Fact::of(&record)?).await?;
            }
            return Ok(format!(
                "; dry run: {} chart(s) not handed to helm upgrade --install, {} not to helm uninstall{unmanaged_note}",
                charts.len(),
                dropped.len()
            ));
        }
        let mut tool = windlass_helm::HelmTool::new(
            self.config
                .helm
                .clone()
                .unwrap_or_else(windlass_helm::HelmTool::default_path),
        );
        // helm gets `--timeout <wait timeout>`: the process is given that and a minute more, so
        // that helm's own deadline ends it (and releases its lock on the release), not a kill.
        tool.timeout = tool.timeout.max(std::time::Duration::from_secs(
            self.config.wait_timeout_seconds + 60,
        ));
        let version = {
            let tool = tool.clone();
            tokio::task::spawn_blocking(move || tool.version())
                .await
                .map_err(|error| StageError::permanent(format!("helm task failed: {error}")))?
                .map_err(|error| {
                    StageError::invalid_input(format!(
                        "the useHelmInstall charts are installed with helm: {error}"
                    ))
                })?
        };
        let helm = HelmOnCluster {
            tool,
            version: version.clone(),
            kubeconfig: kubeconfig.to_os_string(),
            context: kube_context.map(str::to_string),
            timeout_seconds: self.config.wait_timeout_seconds,
        };
        let uninstalled = uninstall_dropped(context, &helm, dropped).await?;
        let mut installed = Vec::new();
        for chart in crate::helm_release::install_order(charts) {
            let namespace = namespace_of(chart);
            let upgrade_flags = crate::helm_release::upgrade_flags(context, chart)?;
            let chart = chart.clone();
            let record = helm
                .run(move |tool, version, cluster| {
                    crate::helm_release::install_chart(
                        tool,
                        version,
                        &chart,
                        &upgrade_flags,
                        &namespace,
                        cluster,
                    )
                })
                .await?;
            context.record_fact(Fact::of(&record)?).await?;
            if record.outcome == HelmReleaseOutcome::Failed {
                return Err(StageError::permanent(format!(
                    "HelmChart {} (chart {}): {}",
                    record.helm_chart,
                    record.chart_dir,
                    record.error.as_deref().unwrap_or("helm failed")
                )));
            }
            installed.push(format!(
                "{} revision {} in {}",
                record.release_name,
                record
                    .revision
                    .map_or_else(|| "?".to_string(), |revision| revision.to_string()),
                record.namespace
            ));
        }
        let mut summary = String::new();
        if !uninstalled.is_empty() {
            summary += &format!("; helm uninstall ({version}): {}", uninstalled.join(", "));
        }
        if !installed.is_empty() {
            summary += &format!(
                "; helm upgrade --install ({version}): {}",
                installed.join(", ")
            );
        }
        summary.push_str(&unmanaged_note);
        Ok(summary)
    }
}

/// helm as the step runs it, owned so that each run can move to a blocking thread (helm is a
/// subprocess): the tool, its `version --short`, and the cluster.
#[derive(Clone)]
struct HelmOnCluster {
    tool: windlass_helm::HelmTool,
    version: String,
    kubeconfig: std::ffi::OsString,
    context: Option<String>,
    timeout_seconds: u64,
}

impl HelmOnCluster {
    /// Runs `job` with the tool, its version and the cluster on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&windlass_helm::HelmTool, &str, &HelmCluster<'_>) -> T + Send + 'static,
    ) -> Result<T, StageError> {
        let helm = self.clone();
        tokio::task::spawn_blocking(move || {
            job(
                &helm.tool,
                &helm.version,
                &HelmCluster {
                    kubeconfig: &helm.kubeconfig,
                    context: helm.context.as_deref(),
                    timeout_seconds: helm.timeout_seconds,
                },
            )
        })
        .await
        .map_err(|error| StageError::permanent(format!("helm task failed: {error}")))
    }
}

/// `helm uninstall` of each of `dropped` (each with the install that installed it), in order,
/// each outcome recorded; one this stage recorded as gone before it was interrupted is not asked
/// again. A failure fails the stage (after its record). Returns the summary's words.
async fn uninstall_dropped(
    context: &StageContext,
    helm: &HelmOnCluster,
    dropped: Vec<(String, crate::events::HelmReleaseInstalled)>,
) -> Result<Vec<String>, StageError> {
    let mut gone_before = std::collections::BTreeSet::new();
    for event in context.recorded_facts().await {
        if event.event_type == crate::events::HELM_RELEASE_UNINSTALLED
            && let Ok(record) = serde_json::from_value::<HelmReleaseUninstalled>(event.payload)
            && record.outcome != HelmUninstallOutcome::Failed
        {
            gone_before.insert((record.release_name, record.namespace));
        }
    }
    let mut uninstalled = Vec::new();
    for (installed_by, release) in dropped {
        if gone_before.contains(&(release.release_name.clone(), release.namespace.clone())) {
            continue;
        }
        let record = helm
            .run(move |tool, version, cluster| {
                crate::helm_release::uninstall_release(
                    tool,
                    version,
                    &release,
                    &installed_by,
                    cluster,
                )
            })
            .await?;
        context.record_fact(Fact::of(&record)?).await?;
        match record.outcome {
            HelmUninstallOutcome::Failed => {
                return Err(StageError::permanent(format!(
                    "helm uninstall of release {} in {} (HelmChart {}, no longer in the release): {}",
                    record.release_name,
                    record.namespace,
                    record.helm_chart,
                    record.error.as_deref().unwrap_or("helm failed")
                )));
            }
            HelmUninstallOutcome::NotFound => uninstalled.push(format!(
                "{} in {} (already gone)",
                record.release_name, record.namespace
            )),
            _ => uninstalled.push(format!("{} in {}", record.release_name, record.namespace)),
        }
    }
    Ok(uninstalled)
}
