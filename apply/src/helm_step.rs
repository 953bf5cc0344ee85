//! The apply stage's helm step, after the plain manifests on the kube target: each release the
//! previous real apply of the app to the same cluster installed and no `useHelmInstall: true`
//! chart installs now goes to `helm uninstall` (higher weight first), then each chart to
//! `helm upgrade --install` (in install order), every outcome recorded as it comes
//! ([`crate::helm_release`] runs helm and makes the records).

use windlass_engine::{Fact, StageContext, StageError};

use crate::events::{HelmReleaseOutcome, HelmReleaseUninstalled, HelmUninstallOutcome};
use crate::helm_release::HelmCluster;
use crate::stage::ApplyStage;

impl ApplyStage {
    /// After the plain manifests: each release the previous apply (install `previous_apply`)
    /// installed that no chart installs now through `helm uninstall`, then each
    /// `useHelmInstall: true` chart through `helm upgrade --install`, in install order, each
    /// outcome recorded as it comes. A failed chart fails the stage (after its record); a dry run
    /// runs no helm. Returns what the summary adds.
    pub(crate) async fn install_helm_charts(
        &self,
        context: &StageContext,
        charts: &[crate::source::HelmChartSource],
        previous_apply: Option<&str>,
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
        let dropped = match previous_apply {
            Some(previous_apply) => crate::helm_release::dropped(
                crate::helm_release::installed_by(context, previous_apply)?,
                charts,
                namespace_of,
            ),
            None => Vec::new(),
        };
        if charts.is_empty() && dropped.is_empty() {
            return Ok(String::new());
        }
        if self.config.dry_run {
            for release in &dropped {
                let record = crate::helm_release::uninstall_record_of(
                    release,
                    previous_apply.unwrap_or_default(),
                );
                context.record_fact(Fact::of(&record)?).await?;
            }
            for chart in crate::helm_release::install_order(charts) {
                let record = crate::helm_release::record_of(chart, &namespace_of(chart));
                context.record_fact(Fact::of(&record)?).await?;
            }
            return Ok(format!(
                "; dry run: {} chart(s) not handed to helm upgrade --install, {} not to helm uninstall",
                charts.len(),
                dropped.len()
            ));
        }
        let tool = windlass_helm::HelmTool::new(
            self.config
                .helm
                .clone()
                .unwrap_or_else(windlass_helm::HelmTool::default_path),
        );
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
        let uninstalled =
            uninstall_dropped(context, &helm, dropped, previous_apply.unwrap_or_default()).await?;
        let mut installed = Vec::new();
        for chart in crate::helm_release::install_order(charts) {
            let namespace = namespace_of(chart);
            let chart = chart.clone();
            let record = helm
                .run(move |tool, version, cluster| {
                    crate::helm_release::install_chart(tool, version, &chart, &namespace, cluster)
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

/// `helm uninstall` of each of `dropped` (installed by install `installed_by`), in order, each
/// outcome recorded; one this stage recorded as gone before it was interrupted is not asked
/// again. A failure fails the stage (after its record). Returns the summary's words.
async fn uninstall_dropped(
    context: &StageContext,
    helm: &HelmOnCluster,
    dropped: Vec<crate::events::HelmReleaseInstalled>,
    installed_by: &str,
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
    for release in dropped {
        if gone_before.contains(&(release.release_name.clone(), release.namespace.clone())) {
            continue;
        }
        let installed_by = installed_by.to_string();
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
