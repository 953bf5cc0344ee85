//! The `apply` stage: its configuration (the target as `--target` writes it, dry run, the wait
//! deadline, empty-prune consent, and — for `windlass apply INSTALL_ID` — the install whose
//! rendered output to apply), validated without I/O, and the runtime stage that reads the
//! rendered objects ([`crate::source`]), orders them ([`crate::order`]) and hands them to the
//! directory target ([`crate::dir`]) or the cluster ([`crate::kube_apply`]), then the
//! charts handed to helm, `useHelmInstall: true` and `kots.io/v1beta2` ([`crate::helm_release`]). The stage completes
//! with `ApplyCompleted`, the inventory the next install of the same app prunes against. With
//! `undeploy` set (`windlass undeploy`) it reads no rendered output and runs `undeploy.rs`
//! instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use windlass_engine::{
    BuildContext, Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};

use crate::cluster::{Cluster, KubeConnection};
use crate::events::{
    AppliedObject, ApplyCompleted, ApplyCounts, ApplyOutcome, ApplyStarted, HelmReleaseOutcome,
    ObjectsApplied, TargetRecord,
};
use crate::kube_apply::{BODY_VERSION, KubeApply};
use crate::order::{PlannedObject, plan_apply};
use crate::prune_candidates::{
    ClusterIdentity, Unfinished, applied_before, prune_against, record_start, take_apply_lock,
};
use crate::source::ApplySource;
use crate::target::Target;

/// The stage kind's name.
pub const KIND: &str = "apply";

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        KIND,
        "apply the rendered objects: server-side apply to a cluster, or one file per object to a directory",
        |config| {
            let config: ApplyConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("apply: {error}"))?;
            Ok(Box::new(config))
        },
    )
}

/// Configuration of `apply`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplyConfig {
    /// `none`, `dir:PATH` (absolute) or `kube[:CONTEXT]`.
    pub target: String,
    /// Server-side dry run: report what would change, write nothing.
    pub dry_run: bool,
    /// Every wait's deadline, in seconds.
    pub wait_timeout_seconds: u64,
    /// Prune even when the new release applies nothing.
    pub allow_empty_prune: bool,
    /// Apply the rendered output of this (completed) install instead of the input stages'.
    pub source_install: Option<String>,
    /// The helm (Helm 4) that installs `useHelmInstall: true` and `kots.io/v1beta2` charts; default: `$WINDLASS_HELM`,
    /// else `tools/bin/helm` beside the binary's directory, else `helm` on PATH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<std::path::PathBuf>,
    /// `windlass undeploy`: apply nothing, and delete what the previous apply of the app to the
    /// cluster left there (`undeploy.rs`); needs a cluster target and `source_install`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub undeploy: bool,
}

impl Default for ApplyConfig {
    fn default() -> ApplyConfig {
        ApplyConfig {
            target: "none".into(),
            dry_run: false,
            wait_timeout_seconds: 600,
            allow_empty_prune: false,
            source_install: None,
            helm: None,
            undeploy: false,
        }
    }
}

impl ApplyConfig {
    /// The target, parsed.
    pub fn parsed_target(&self) -> Result<Target, String> {
        let target = Target::parse(&self.target).map_err(|error| error.to_string())?;
        if let Target::Dir(path) = &target
            && !path.is_absolute()
        {
            return Err(format!(
                "target {}: the directory must be absolute",
                self.target
            ));
        }
        Ok(target)
    }
}

/// The longest wait timeout: 7 days. Each wait's deadline is its start plus the timeout, and a
/// far longer one would not fit the clock (the addition overflows) instead of never passing.
pub const MAX_WAIT_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;

#[async_trait::async_trait]
impl StageConfig for ApplyConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        match self.parsed_target() {
            Err(problem) => problems.push(problem),
            Ok(Target::Kube { .. }) => {}
            Ok(_) if self.undeploy => {
                problems.push(format!(
                    "undeploy needs a cluster target (kube or kube:CONTEXT), not {}",
                    self.target
                ));
            }
            Ok(_) => {}
        }
        if self.undeploy && self.source_install.is_none() {
            problems
                .push("undeploy needs source_install: the install of the app to undeploy".into());
        }
        if self.wait_timeout_seconds == 0 {
            problems.push("wait_timeout_seconds must be at least 1".into());
        }
        if self.wait_timeout_seconds > MAX_WAIT_TIMEOUT_SECONDS {
            problems.push(format!(
                "wait_timeout_seconds must be at most {MAX_WAIT_TIMEOUT_SECONDS} (7 days), not {}",
                self.wait_timeout_seconds
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        let target = self.parsed_target().map_err(StageError::invalid_input)?;
        Ok(Arc::new(ApplyStage {
            config: self.clone(),
            target,
        }))
    }
}

/// The runtime stage.
pub struct ApplyStage {
    pub(crate) config: ApplyConfig,
    target: Target,
}

#[async_trait::async_trait]
impl Stage for ApplyStage {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        if self.config.undeploy {
            let Target::Kube {
                context: kube_context,
            } = &self.target
            else {
                return Err(StageError::invalid_input(
                    "undeploy needs a cluster target (kube or kube:CONTEXT)",
                ));
            };
            return self.undeploy(context, kube_context.as_deref()).await;
        }
        if self.target.is_none() {
            return Ok(StageOutput {
                facts: Vec::new(),
                summary: "target none: nothing applied".into(),
            });
        }
        let started = std::time::Instant::now();
        let mut source =
            crate::source::read_source(context, self.config.source_install.as_deref())?;
        tracing::debug!(elapsed = ?started.elapsed(), files = source.file_paths.len(), "apply: source facts read");
        let app_namespace = context.request.namespace.clone();
        let app_slug = context.request.app_slug().to_string();
        match &self.target {
            Target::None => unreachable!("handled above"),
            Target::Dir(path) => {
                let mut planned = plan(&mut source, &app_namespace)?;
                crate::dir::additional_namespaces_first(
                    &additional_namespaces(&source),
                    &app_namespace,
                    &mut planned,
                );
                let charts: Vec<crate::dir::ChartFiles<'_>> = source
                    .helm_charts
                    .iter()
                    .map(|chart| {
                        (
                            format!("charts/{}", chart.chart.release_name),
                            chart.files.as_slice(),
                        )
                    })
                    .collect();
                let files: Vec<crate::dir::ObjectFile<'_>> = planned
                    .iter()
                    .map(|object| crate::dir::ObjectFile {
                        object,
                        holds_secret: crate::source::holds_secret(
                            &object.key,
                            &object.file,
                            &source.secret_files,
                        ),
                    })
                    .collect();
                let names =
                    crate::dir::write_dir(path, &files, &charts, &dir_target_protected(context))
                        .map_err(|error| StageError::invalid_input(error.to_string()))?;
                let objects: Vec<AppliedObject> = planned
                    .iter()
                    .zip(&names)
                    .map(|(object, name)| AppliedObject {
                        key: object.key.clone(),
                        file: object.file.clone(),
                        step: object.step,
                        outcome: ApplyOutcome::Written,
                        digest: crate::kube_apply::object_digest(
                            &object.object,
                            crate::source::holds_secret(
                                &object.key,
                                &object.file,
                                &source.secret_files,
                            )
                            .then_some(context.fingerprint_key.as_ref()),
                        ),
                        uid: None,
                        resource_version: None,
                        conflicts: Vec::new(),
                        taken_over: false,
                        recreated: false,
                        written_to: Some(name.clone()),
                        error: None,
                        dry_run: false,
                        waits: false,
                        deletion_phase: 0,
                        owned_fields_digest: None,
                    })
                    .collect();
                let written = objects.len() as u64;
                context
                    .record_fact(Fact::of(&ObjectsApplied { objects })?)
                    .await?;
                for chart in crate::helm_release::install_order(&source.helm_charts) {
                    let namespace = chart
                        .chart
                        .namespace
                        .clone()
                        .unwrap_or_else(|| app_namespace.clone());
                    let mut record = crate::helm_release::record_of(chart, &namespace);
                    record.outcome = HelmReleaseOutcome::Written;
                    record.written_to = Some(format!("charts/{}", chart.chart.release_name));
                    context.record_fact(Fact::of(&record)?).await?;
                }
                let completed = ApplyCompleted {
                    app_slug,
                    target: TargetRecord::Dir {
                        path: path.display().to_string(),
                    },
                    rendered_by: source.rendered_by.clone(),
                    inventory: Vec::new(),
                    counts: ApplyCounts {
                        written,
                        ..ApplyCounts::default()
                    },
                    app_state: None,
                    dry_run: false,
                    body_version: None,
                    app_namespace: Some(app_namespace.clone()),
                    undeployed: false,
                };
                Ok(StageOutput {
                    facts: vec![Fact::of(&completed)?],
                    summary: format!(
                        "{written} objects written to {} in apply order{}",
                        path.display(),
                        if source.helm_charts.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", and {} chart(s) for helm upgrade --install under charts/",
                                source.helm_charts.len()
                            )
                        }
                    ),
                })
            }
            Target::Kube {
                context: kube_context,
            } => {
                // The rendered files are read and checked on their own threads while the
                // cluster and the log are asked (reads only until the files are checked).
                let mut reading = source
                    .reader
                    .take()
                    .map(|reader| tokio::task::spawn_blocking(move || reader.read()));
                let connected = connect(context, kube_context.as_deref()).await;
                let (cluster, kubeconfig, identity) =
                    after_files(connected, &mut reading, &mut source).await?;
                let start = ApplyStarted {
                    app_slug: app_slug.clone(),
                    target: identity.record(kube_context.clone()),
                    app_namespace: app_namespace.clone(),
                    dry_run: self.config.dry_run,
                };
                if !self.config.dry_run {
                    let locked = take_apply_lock(context, &app_slug, &app_namespace).await;
                    after_files(locked, &mut reading, &mut source).await?;
                }
                let recorded = record_start(context, &start).await;
                after_files(recorded, &mut reading, &mut source).await?;
                let applied = applied_before(context, &app_slug, &app_namespace, &identity);
                // (A record that does not read was noted; what it names is not pruned.)
                let (
                    previous_apply,
                    Unfinished {
                        objects: unfinished_objects,
                        helm_releases: unfinished_releases,
                        unreadable: _,
                    },
                ) = after_files(applied, &mut reading, &mut source).await?;
                tracing::debug!(elapsed = ?started.elapsed(), unfinished = unfinished_objects.len(), "apply: previous apply read");
                let previous_installer = previous_apply
                    .as_ref()
                    .map(|previous| previous.installer.clone());
                let namespaces = source.secret_namespaces.clone();
                let additional = additional_namespaces(&source);
                let every_namespace = namespaces
                    .as_ref()
                    .is_some_and(|namespaces| namespaces.every_namespace)
                    || additional.iter().any(|name| name == "*");
                let apply = KubeApply {
                    cluster: &cluster,
                    context,
                    app_slug: app_slug.clone(),
                    app_namespace: context.request.namespace.clone(),
                    dry_run: self.config.dry_run,
                    wait_timeout: Duration::from_secs(self.config.wait_timeout_seconds),
                    additional_namespaces: additional,
                    every_namespace,
                    chart_pull_secrets: windlass_stages::secrets::chart_pull_secrets(
                        source
                            .helm_charts
                            .iter()
                            .filter(|chart| chart.shipped_archive.is_none())
                            .map(|chart| &chart.chart),
                        &app_slug,
                        &app_namespace,
                    ),
                    status_informers: source.status_informers.clone(),
                    previous: prune_against(
                        previous_apply
                            .as_ref()
                            .map(|previous| previous.completed.inventory.as_slice()),
                        unfinished_objects,
                    ),
                    allow_empty_prune: self.config.allow_empty_prune,
                    secret_files: source.secret_files.clone(),
                    cluster_identity: identity.clone(),
                    undeploy: false,
                };
                // The rendered files as the previous apply of the same rendering applied them,
                // found unchanged in the cluster: nothing to parse or send.
                let unchanged = match &previous_apply {
                    Some(previous)
                        if previous.completed.rendered_by == source.rendered_by
                            && !self.config.dry_run =>
                    {
                        let found = apply
                            .find_unchanged(&source, &previous.installer, &previous.completed)
                            .await;
                        after_files(found, &mut reading, &mut source).await?
                    }
                    _ => None,
                };
                join_files(&mut reading, &mut source).await?;
                let result = match unchanged {
                    Some(unchanged) => apply.record_unchanged(unchanged).await?,
                    None => {
                        let planned = plan(&mut source, &app_namespace)?;
                        // What the previous apply left, to find unchanged without asking.
                        let recorded_before = match &previous_apply {
                            Some(previous) => {
                                apply.records_of(&previous.installer, &previous.completed)?
                            }
                            None => HashMap::new(),
                        };
                        apply.run(planned, recorded_before).await?
                    }
                };
                tracing::debug!(elapsed = ?started.elapsed(), "apply: objects applied");
                let installed_before = crate::helm_release::installed_before(
                    context,
                    previous_installer.as_deref(),
                    unfinished_releases,
                )?;
                let helm_summary = self
                    .install_helm_charts(
                        context,
                        &source.helm_charts,
                        installed_before,
                        &crate::helm_step::HelmTarget {
                            cluster: &identity,
                            kubeconfig: &kubeconfig,
                            kube_context: kube_context.as_deref(),
                        },
                    )
                    .await?;
                // Last, once the charts' workloads exist too: the app state.
                let (app_state, state_notes) = apply.app_state().await?;
                for note in &state_notes {
                    context.progress.note(note);
                }
                let counts = result.counts.clone();
                let mut summary =
                    summary(&counts, cluster.server(), self.config.dry_run, app_state);
                if let Some(installer) = &result.unchanged_since {
                    summary.push_str(&format!(
                        "; every rendered file as install {installer} applied it and every object as it left it: compared by recorded digest, nothing parsed"
                    ));
                }
                summary.push_str(&helm_summary);
                let completed = ApplyCompleted {
                    app_slug,
                    target: identity.record(kube_context.clone()),
                    rendered_by: source.rendered_by.clone(),
                    inventory: if self.config.dry_run {
                        Vec::new()
                    } else {
                        result.inventory
                    },
                    counts,
                    app_state,
                    dry_run: self.config.dry_run,
                    body_version: (!self.config.dry_run).then_some(BODY_VERSION),
                    app_namespace: Some(app_namespace.clone()),
                    undeployed: false,
                };
                Ok(StageOutput {
                    facts: vec![Fact::of(&completed)?],
                    summary,
                })
            }
        }
    }
}

/// The cluster `kube_context` names (the current one when `None`), through the injected client
/// factory: the client, the kubeconfig that reaches it (for helm), and which cluster it is.
pub(crate) async fn connect(
    context: &StageContext,
    kube_context: Option<&str>,
) -> Result<(Cluster, std::ffi::OsString, ClusterIdentity), StageError> {
    let client = context
        .services
        .kubernetes
        .client(kube_context)
        .await
        .map_err(|error| StageError::invalid_input(error.0))?;
    let connection = client.downcast::<KubeConnection>().map_err(|_| {
        StageError::permanent(
            "the injected kubernetes client factory does not hand out windlass-apply connections",
        )
    })?;
    let kubeconfig = connection.kubeconfig.clone();
    let cluster = Cluster::new((*connection).clone());
    let uid = cluster.identity().await.map_err(|failure| {
        StageError::transient(format!(
            "reading the cluster's kube-system namespace (which names the cluster): {failure} (after retries)"
        ))
    })?;
    let identity = ClusterIdentity {
        server: cluster.server().to_string(),
        uid,
    };
    Ok((cluster, kubeconfig, identity))
}

/// The directories a directory target must not be, lie inside or hold: the state directory
/// (none in a replay), the output directory and the release.
fn dir_target_protected(context: &StageContext) -> Vec<crate::dir::ProtectedDir> {
    let mut protected = Vec::with_capacity(3);
    if let Some(state) = &context.services.state_dir {
        protected.push(crate::dir::ProtectedDir::new("state directory", state));
    }
    protected.push(crate::dir::ProtectedDir::new(
        "output directory",
        &context.request.out_dir,
    ));
    protected.push(crate::dir::ProtectedDir::new(
        "release directory",
        &context.request.release_dir,
    ));
    protected
}

/// The rendered files being read and checked on their own threads.
type Reading = Option<tokio::task::JoinHandle<Result<Vec<(String, Vec<u8>)>, StageError>>>;

/// Waits for the rendered files into `source`.
async fn join_files(reading: &mut Reading, source: &mut ApplySource) -> Result<(), StageError> {
    if let Some(handle) = reading.take() {
        source.files = handle.await.map_err(|error| {
            StageError::permanent(format!("reading the rendered files crashed: {error}"))
        })??;
    }
    Ok(())
}

/// `result`, unless reading the rendered files failed: a damaged file is the error to report,
/// as when the files were read before anything else.
async fn after_files<T>(
    result: Result<T, StageError>,
    reading: &mut Reading,
    source: &mut ApplySource,
) -> Result<T, StageError> {
    if result.is_err() {
        join_files(reading, source).await?;
    }
    result
}

/// The namespaces the pull secrets go to besides the app namespace: the Application's
/// `additionalNamespaces` as written (`"*"` included), then those `provision_secrets` recorded.
fn additional_namespaces(source: &ApplySource) -> Vec<String> {
    let mut additional = source.additional_namespaces.clone();
    if let Some(namespaces) = &source.secret_namespaces {
        for name in &namespaces.additional {
            if !additional.contains(name) {
                additional.push(name.clone());
            }
        }
    }
    additional
}

/// The rendered objects of `source`, parsed and in apply order (moved out of `source`, not
/// copied: a thousand objects).
fn plan(source: &mut ApplySource, app_namespace: &str) -> Result<Vec<PlannedObject>, StageError> {
    source.parse_objects()?;
    let pull_secrets = &source.pull_secrets;
    plan_apply(std::mem::take(&mut source.objects), |key| {
        pull_secrets.contains(&(
            key.namespace
                .clone()
                .unwrap_or_else(|| app_namespace.to_string()),
            key.name.clone(),
        ))
    })
    .map_err(StageError::invalid_input)
}

fn summary(
    counts: &ApplyCounts,
    server: &str,
    dry_run: bool,
    app_state: Option<crate::events::AppState>,
) -> String {
    if dry_run {
        return format!(
            "dry run against {server}: would create {}, configure {}; {} unchanged; would prune {}",
            counts.created, counts.configured, counts.unchanged, counts.pruned
        );
    }
    format!(
        "applied to {server}: {} created, {} configured, {} unchanged; {} pruned, {} kept, {} deletes refused; app {}",
        counts.created,
        counts.configured,
        counts.unchanged,
        counts.pruned,
        counts.kept,
        counts.refused,
        app_state.map_or("-", |state| state.as_str())
    )
}

/// The stage spec that appends apply to an install pipeline, reading the rendered output of
/// `render_midstream`, the pull secrets of `provision_secrets`, the Application and HelmCharts of
/// `fetch_base`, and `write_base`'s `helm/<directory>/` of each `kots.io/v1beta2` chart.
pub fn pipeline_stage(config: &ApplyConfig) -> windlass_engine::StageSpec {
    let mut spec = windlass_engine::StageSpec::new(
        KIND,
        KIND,
        &[
            "fetch_base",
            "write_base",
            "provision_secrets",
            "render_midstream",
        ],
    );
    spec.config = serde_json::to_value(config).expect("stage configurations are plain data");
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_timeout_is_between_one_second_and_seven_days() {
        let with = |seconds: u64| ApplyConfig {
            target: "kube".into(),
            wait_timeout_seconds: seconds,
            ..ApplyConfig::default()
        };
        assert!(with(600).validate().is_ok());
        assert!(with(MAX_WAIT_TIMEOUT_SECONDS).validate().is_ok());
        let problems = with(MAX_WAIT_TIMEOUT_SECONDS + 1).validate().unwrap_err();
        assert!(problems[0].contains("at most 604800"), "{problems:?}");
        let problems = with(u64::MAX).validate().unwrap_err();
        assert!(problems[0].contains("at most"), "{problems:?}");
        assert!(with(0).validate().unwrap_err()[0].contains("at least 1"));
    }

    #[test]
    fn an_undeploy_needs_a_cluster_and_the_install_to_undeploy() {
        let undeploy = |target: &str, source: Option<&str>| ApplyConfig {
            target: target.into(),
            undeploy: true,
            source_install: source.map(str::to_string),
            ..ApplyConfig::default()
        };
        assert!(undeploy("kube:staging", Some("i-1")).validate().is_ok());
        let problems = undeploy("dir:/srv/gitops", Some("i-1"))
            .validate()
            .unwrap_err();
        assert!(
            problems[0].contains("needs a cluster target"),
            "{problems:?}"
        );
        let problems = undeploy("kube", None).validate().unwrap_err();
        assert!(problems[0].contains("needs source_install"), "{problems:?}");
        // Not written when false: the configurations of pipelines before it keep their
        // fingerprints.
        let written = serde_json::to_value(ApplyConfig::default()).unwrap();
        assert!(written.get("undeploy").is_none(), "{written}");
    }
}
