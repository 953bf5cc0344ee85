//! The apply stage's helm step, after the plain manifests on the kube target: each release the
//! previous real apply of the app to the same cluster installed (or an apply since that never
//! completed did) and no chart installs now (a `useHelmInstall: true` chart, or a
//! `kots.io/v1beta2` one) goes to `helm uninstall` (higher weight first), then each chart to
//! `helm upgrade --install` (in install order), every outcome recorded as it comes
//! ([`crate::helm_release`] runs helm and makes the records). Each upgrade holds the release's
//! helm lock and is announced (`HelmUpgradeStarted`) before helm starts; a release a killed
//! helm that windlass started left pending is freed first ([`crate::helm_pending`]).

use std::time::Duration;

use windlass_engine::{Fact, StageContext, StageError};
use windlass_helm::Release;
use windlass_state::StateLock;

use crate::events::{
    HelmFreeAction, HelmReleaseFreed, HelmReleaseInstalled, HelmReleaseOutcome,
    HelmReleaseUninstalled, HelmUninstallOutcome, HelmUpgradeStarted,
};
use crate::helm_pending::{interrupted_upgrade, take_helm_lock};
use crate::helm_release::HelmCluster;
use crate::prune_candidates::ClusterIdentity;
use crate::source::HelmChartSource;
use crate::stage::ApplyStage;

impl ApplyStage {
    /// After the plain manifests: each release installed before (`installed_before`, each with
    /// the install that did: [`crate::helm_release::installed_before`]) that no chart installs
    /// now through `helm uninstall`, then each chart (`useHelmInstall: true`, or
    /// `kots.io/v1beta2`) through `helm upgrade --install`, in install order, each
    /// outcome recorded as it comes. A failed chart fails the stage (after its record); a dry run
    /// runs no helm. Returns what the summary adds.
    pub(crate) async fn install_helm_charts(
        &self,
        context: &StageContext,
        charts: &[crate::source::HelmChartSource],
        installed_before: Vec<(String, crate::events::HelmReleaseInstalled)>,
        target: &HelmTarget<'_>,
    ) -> Result<String, StageError> {
        let HelmTarget {
            cluster,
            kubeconfig,
            kube_context,
        } = *target;
        let app_namespace = context.request.namespace.clone();
        let namespace_of = |chart: &crate::source::HelmChartSource| {
            chart
                .chart
                .namespace
                .clone()
                .unwrap_or_else(|| app_namespace.clone())
        };
        let dropped = crate::helm_release::dropped(installed_before, charts, namespace_of);
        if charts.is_empty() && dropped.is_empty() {
            return Ok(String::new());
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
                "; dry run: {} chart(s) not handed to helm upgrade --install, {} not to helm uninstall",
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
                        "the HelmCharts windlass installs (kots.io/v1beta1 with useHelmInstall: true, and kots.io/v1beta2) are installed with helm: {error}"
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
        let mut freed = Vec::new();
        for chart in crate::helm_release::install_order(charts) {
            let namespace = namespace_of(chart);
            let upgrade_flags = crate::helm_release::upgrade_flags(context, chart)?;
            let release = &chart.chart.release_name;
            // helm's deadline: the wait deadline, or a longer `--timeout` of the chart's flags.
            let helm_seconds = crate::helm_release::helm_timeout_seconds(
                self.config.wait_timeout_seconds,
                &upgrade_flags,
            );
            let lock = take_helm_lock(
                context,
                release,
                &namespace,
                Duration::from_secs(helm_seconds),
            )
            .await?;
            let started = HelmUpgradeStarted {
                helm_chart: chart.chart.name.clone(),
                release_name: release.clone(),
                namespace: namespace.clone(),
                target: cluster.record(kube_context.map(str::to_string)),
                timeout_seconds: helm_seconds,
            };
            let started = context.record_fact(Fact::of(&started)?).await?;
            let mut attempt = helm
                .upgrade(
                    chart,
                    &upgrade_flags,
                    &namespace,
                    lock.as_ref(),
                    helm_seconds,
                )
                .await?;
            if attempt.1 {
                let pending = PendingRelease {
                    chart,
                    namespace: &namespace,
                    cluster,
                    own_seq: started.global_seq,
                    lock: lock.as_ref(),
                };
                let freeing = helm.free_pending(context, &pending).await?;
                if let Freeing::LeftAlone(why) = freeing {
                    attempt.0.error = Some(why);
                } else {
                    if let Freeing::Freed(note) = freeing {
                        freed.push(note);
                    }
                    attempt = helm
                        .upgrade(
                            chart,
                            &upgrade_flags,
                            &namespace,
                            lock.as_ref(),
                            helm_seconds,
                        )
                        .await?;
                }
            }
            let record = attempt.0;
            context.record_fact(Fact::of(&record)?).await?;
            drop(lock);
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
        if !freed.is_empty() {
            summary += &format!(
                "; freed from a killed helm ({version}): {}",
                freed.join(", ")
            );
        }
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

/// The cluster the helm step installs into.
#[derive(Clone, Copy)]
pub(crate) struct HelmTarget<'a> {
    /// Which cluster it is.
    pub cluster: &'a ClusterIdentity,
    /// The kubeconfig helm reads.
    pub kubeconfig: &'a std::ffi::OsStr,
    /// The kubeconfig context.
    pub kube_context: Option<&'a str>,
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
    /// Runs `job` with the tool, its version and the cluster on a blocking thread, helm handed
    /// the file of `lock` when there is one (see [`crate::helm_pending`]).
    async fn run<T: Send + 'static>(
        &self,
        lock: Option<&StateLock>,
        job: impl FnOnce(&windlass_helm::HelmTool, &str, &HelmCluster<'_>) -> T + Send + 'static,
    ) -> Result<T, StageError> {
        let helm = self.clone();
        let held_open = lock
            .map(|lock| lock.file().try_clone())
            .transpose()
            .map_err(|error| StageError::permanent(format!("the helm lock's file: {error}")))?;
        tokio::task::spawn_blocking(move || {
            job(
                &helm.tool,
                &helm.version,
                &HelmCluster {
                    kubeconfig: &helm.kubeconfig,
                    context: helm.context.as_deref(),
                    timeout_seconds: helm.timeout_seconds,
                    held_open: held_open.as_ref(),
                },
            )
        })
        .await
        .map_err(|error| StageError::permanent(format!("helm task failed: {error}")))
    }

    /// `helm upgrade --install` of `chart` (see [`crate::helm_release::install_chart`]), the
    /// process given `helm_seconds` (helm's deadline) and a minute more.
    async fn upgrade(
        &self,
        chart: &HelmChartSource,
        upgrade_flags: &[String],
        namespace: &str,
        lock: Option<&StateLock>,
        helm_seconds: u64,
    ) -> Result<(HelmReleaseInstalled, bool), StageError> {
        let (chart, upgrade_flags, namespace) =
            (chart.clone(), upgrade_flags.to_vec(), namespace.to_string());
        // helm's deadline (a `--timeout` of the chart's own flags may be longer than the wait
        // deadline: the last one given wins): the process gets it and a minute more, as above.
        let mut helm = self.clone();
        helm.tool.timeout = helm
            .tool
            .timeout
            .max(Duration::from_secs(helm_seconds.saturating_add(60)));
        helm.run(lock, move |tool, version, cluster| {
            crate::helm_release::install_chart(
                tool,
                version,
                &chart,
                &upgrade_flags,
                &namespace,
                cluster,
            )
        })
        .await
    }

    /// Frees the release of `pending.chart` when helm refused it because a revision is pending
    /// and that revision is a killed helm's that windlass started (see [`crate::helm_pending`]):
    /// rolled back to its newest deployed revision, or uninstalled when none was, recorded as
    /// `HelmReleaseFreed`. A failure to free it fails the stage (after its record).
    async fn free_pending(
        &self,
        context: &StageContext,
        pending: &PendingRelease<'_>,
    ) -> Result<Freeing, StageError> {
        let release = pending.chart.chart.release_name.clone();
        let namespace = pending.namespace.to_string();
        let history = {
            let (release, namespace) = (release.clone(), namespace.clone());
            self.run(pending.lock, move |tool, _, cluster| {
                tool.history(&cluster.release(&release, &namespace))
            })
            .await?
        };
        let holds_password = pending.chart.chart.holds_password;
        let history = match history {
            Ok(history) => history,
            Err(error) => {
                let error = crate::helm_release::recorded_error(
                    error,
                    holds_password,
                    &format!("helm history {release} --namespace {namespace}"),
                );
                return Ok(Freeing::LeftAlone(format!(
                    "release {release} in namespace {namespace} has a pending revision, and its history could not be read: {error}"
                )));
            }
        };
        let Some((revision, how)) = windlass_helm::pending_release(&history) else {
            return Ok(Freeing::NoLongerPending);
        };
        let manual = match how {
            Release::RollBackTo(to) => {
                format!("helm rollback {release} {to} --namespace {namespace}")
            }
            Release::Uninstall => format!("helm uninstall {release} --namespace {namespace}"),
        };
        let left_alone = |why: &str| {
            Freeing::LeftAlone(format!(
                "release {release} in namespace {namespace} is {} (revision {}, since {}): {why}; once no helm works on it, `{manual}` frees it; then apply again",
                revision.status, revision.revision, revision.updated
            ))
        };
        let Ok(since) = time::OffsetDateTime::parse(
            &revision.updated,
            &time::format_description::well_known::Rfc3339,
        ) else {
            return Ok(left_alone("helm's time of that revision cannot be read"));
        };
        if pending.lock.is_none() {
            return Ok(left_alone(
                "without a state directory windlass cannot tell whether the helm working on it is alive",
            ));
        }
        let Some(interrupted) = interrupted_upgrade(
            context,
            &release,
            &namespace,
            pending.cluster,
            pending.own_seq,
            since,
        )
        .await?
        else {
            return Ok(left_alone(
                "no windlass apply from this state directory started a helm on it that never finished, so windlass leaves it to whoever did",
            ));
        };
        let started = std::time::Instant::now();
        let (action, to_revision, result) = {
            let (release, namespace) = (release.clone(), namespace.clone());
            match how {
                Release::RollBackTo(to) => (
                    HelmFreeAction::RolledBack,
                    Some(to),
                    self.run(pending.lock, move |tool, _, cluster| {
                        tool.rollback(&cluster.release(&release, &namespace), to)
                    })
                    .await?,
                ),
                Release::Uninstall => (
                    HelmFreeAction::Uninstalled,
                    None,
                    self.run(pending.lock, move |tool, _, cluster| {
                        tool.uninstall(&cluster.release(&release, &namespace))
                            .map(|(_, arguments)| arguments)
                    })
                    .await?,
                ),
            }
        };
        let mut record = HelmReleaseFreed {
            helm_chart: pending.chart.chart.name.clone(),
            release_name: release.clone(),
            namespace: namespace.clone(),
            interrupted_install: interrupted.install_id.clone(),
            pending_revision: revision.revision,
            pending_status: revision.status.clone(),
            pending_since: revision.updated.clone(),
            action,
            to_revision,
            helm_version: self.version.clone(),
            arguments: Vec::new(),
            error: None,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        match result {
            Ok(arguments) => record.arguments = arguments,
            Err(error) => {
                record.error = Some(crate::helm_release::recorded_error(
                    error,
                    holds_password,
                    &manual,
                ));
            }
        }
        context.record_fact(Fact::of(&record)?).await?;
        if let Some(error) = &record.error {
            return Err(StageError::permanent(format!(
                "release {release} in namespace {namespace} was left {} by a helm that install {} started and never saw finish; freeing it failed: {error}",
                record.pending_status, record.interrupted_install
            )));
        }
        let done = match to_revision {
            Some(to) => format!("rolled back to revision {to}"),
            None => "uninstalled".to_string(),
        };
        Ok(Freeing::Freed(format!(
            "{release} in {namespace} ({} by install {}, {done})",
            record.pending_status, record.interrupted_install
        )))
    }
}

/// A release helm refused because a revision of it is pending.
struct PendingRelease<'a> {
    /// Its chart.
    chart: &'a HelmChartSource,
    /// Its namespace.
    namespace: &'a str,
    /// The cluster.
    cluster: &'a ClusterIdentity,
    /// This run's `HelmUpgradeStarted` of it, where it sits in the log.
    own_seq: u64,
    /// The helm lock of the release, held.
    lock: Option<&'a StateLock>,
}

/// What [`HelmOnCluster::free_pending`] did.
enum Freeing {
    /// The release was freed (the summary's words).
    Freed(String),
    /// No revision is pending any more: the helm working on it finished.
    NoLongerPending,
    /// The pending revision is not a killed helm's that windlass started: why, and what to run.
    LeftAlone(String),
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
            gone_before.insert((record.release_name, record.namespace, record.installed_by));
        }
    }
    let mut uninstalled = Vec::new();
    for (installed_by, release) in dropped {
        // (What the same install installed: an install since, that installed the release
        // again, makes it one to uninstall again.)
        if gone_before.contains(&(
            release.release_name.clone(),
            release.namespace.clone(),
            installed_by.clone(),
        )) {
            continue;
        }
        // Not while a helm a killed windlass run started still works on the release.
        let lock = take_helm_lock(
            context,
            &release.release_name,
            &release.namespace,
            Duration::from_secs(helm.timeout_seconds),
        )
        .await?;
        let record = helm
            .run(lock.as_ref(), move |tool, version, cluster| {
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
