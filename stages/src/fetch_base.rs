//! The `fetch_base` stage: reads the release (see [`crate::release::scan`]), checks that it is the
//! release the install was started with, that it holds Kubernetes objects, that the license is for
//! its `Application`, and that the namespace is one Kubernetes accepts, stores every file and
//! document body in the blob store, and records one `BaseFetched` fact listing files, documents
//! (apiVersion, kind, namespace, name), blobs, the chart archives no `HelmChart` refers to and the
//! `kots.io/v1beta1` HelmCharts a `kots.io/v1beta2` one supersedes.
//! License files are recognised by content and never stored, and no file holding the license ID
//! is. A document whose text holds a password value, and a HelmChart whose file does (its values,
//! helm's output, its documents and its `helmUpgradeFlags`), are recorded by keyed fingerprint and
//! kept in the install's memory only ([`CredentialTexts`]). It writes nothing to the output directory; [`crate::write_base`] does that from the
//! recorded facts.

use std::sync::Arc;

use serde::Deserialize;
use windlass_engine::{
    BuildContext, Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};

use crate::credential_texts::CredentialTexts;
use crate::events::{
    BaseFetched, DocumentClass, FetchedDocument, FetchedFile, SupersededHelmChart,
    UnreferencedChart,
};
use crate::names::{check_dns_label, shown};
use crate::release::{
    FileContents, Limits, Release, ReleaseError, ReleaseSnapshot, scan_templated,
};
use crate::templates::Templates;
use windlass_manifest::documents::ParsedCache;

/// The part of a recorded `BaseFetched` a replay's template rendering reads.
#[derive(Deserialize)]
struct RecordedTemplates {
    templates: Option<crate::events::TemplatesRecord>,
}

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        "fetch_base",
        "read the release, store its files as blobs and record BaseFetched",
        |config| {
            let config: FetchBaseConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("fetch_base: {error}"))?;
            Ok(Box::new(config))
        },
    )
}

/// Configuration: the size limits for reading the release, and the helm that renders its
/// HelmCharts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchBaseConfig {
    /// Limits for the release.
    #[serde(flatten)]
    pub limits: Limits,
    /// The helm executable (Helm 4); when absent, `$WINDLASS_HELM`, else `tools/bin/helm` beside
    /// the binary's directory, else `helm` on `PATH` (see `windlass_helm::HelmTool::default_path`).
    pub helm: Option<std::path::PathBuf>,
}

#[async_trait::async_trait]
impl StageConfig for FetchBaseConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.limits.max_file_bytes == 0 {
            problems.push("max_file_bytes must be positive".to_string());
        }
        if self.limits.max_total_bytes < self.limits.max_file_bytes {
            problems.push("max_total_bytes must be at least max_file_bytes".to_string());
        }
        if self.limits.max_files == 0 {
            problems.push("max_files must be positive".to_string());
        }
        if self.limits.max_chart_unpacked_bytes == 0 {
            problems.push("max_chart_unpacked_bytes must be positive".to_string());
        }
        if self.limits.max_chart_entries == 0 {
            problems.push("max_chart_entries must be positive".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(FetchBase {
            limits: self.limits,
            helm: crate::helm_charts::helm_tool(self.helm.as_ref()),
        }))
    }
}

/// The runtime stage.
pub struct FetchBase {
    limits: Limits,
    helm: windlass_helm::HelmTool,
}

/// Maps a release problem to a stage failure: a release directory that cannot be opened is a
/// permanent failure, anything wrong with what it holds (an unreadable file included) is invalid
/// input.
pub fn release_failure(error: ReleaseError) -> StageError {
    match error {
        ReleaseError::Root { .. } => StageError::permanent(error.to_string()),
        other => StageError::invalid_input(other.to_string()),
    }
}

#[async_trait::async_trait]
impl Stage for FetchBase {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let limits = self.limits;
        let root = context.request.release_dir.clone();
        let progress = context.progress.clone();
        let stage_name = context.stage_name.clone();
        let blobs = context.blobs.clone();
        let expected_digest = context.request.release_digest.clone();
        let parsed_cache = context.memo.get::<ParsedCache>();
        let snapshot = context.memo.get::<ReleaseSnapshot>();
        let request = context.request.clone();
        let credentials = Credentials {
            key: context.fingerprint_key.clone(),
            texts: context.memo.get::<CredentialTexts>(),
        };
        check_dns_label(&request.namespace).map_err(|problem| {
            StageError::invalid_input(format!(
                "namespace {} is not a valid namespace: {problem}",
                shown(&request.namespace)
            ))
        })?;
        // A replay renders with what the install recorded (time, random draws, the values of
        // the user's ConfigValues that are not passwords).
        let recorded_templates = context
            .services
            .recorded
            .as_ref()
            .and_then(|run| {
                let fact = run
                    .facts
                    .get(&context.stage_name)?
                    .iter()
                    .find(|fact| fact.is::<BaseFetched>())?;
                Some(
                    run.decode::<RecordedTemplates>(fact)
                        .map(|recorded| recorded.templates.unwrap_or_default()),
                )
            })
            .transpose()
            .map_err(|error| {
                StageError::permanent(format!("the recorded BaseFetched.templates: {error}"))
            })?;
        let templates = Templates::new(
            &request,
            &context.services,
            context.fingerprint_key.clone(),
            recorded_templates.as_ref(),
        )
        .map_err(release_failure)?;
        let helm = self.helm.clone();
        let recorded_charts: Option<Vec<crate::events::HelmChartRendered>> =
            context.services.recorded.as_ref().map(|recorded| {
                recorded
                    .fact::<BaseFetched>(&context.stage_name)
                    .map(|fetched| fetched.helm_charts)
                    .unwrap_or_default()
            });
        tokio::task::spawn_blocking(move || {
            let clock = std::time::Instant::now();
            let on_file = |done, total| progress.stage_advanced(&stage_name, done, total);
            let license_id = request.license.as_ref().map(|license| &license.license_id);
            let release = scan_templated(
                &root,
                &limits,
                Some(&parsed_cache),
                Some(&snapshot),
                license_id,
                Some(&templates),
                on_file,
            )
            .map_err(release_failure)?;
            tracing::debug!(files = release.files.len(), elapsed = ?clock.elapsed(), "read and parsed the release");
            let digest = release.digest();
            if digest != expected_digest {
                return Err(StageError::invalid_input(format!(
                    "the release in {} changed since this install started (digest {digest}, expected {expected_digest}); run `windlass install` again to start a new install",
                    root.display()
                )));
            }
            if let Some(license) = &request.license {
                check_license_is_for_the_app(&release, &license.app_slug)?;
            }
            let read_blob = |hex: &str| {
                let id = windlass_state::BlobId::parse(hex).ok()?;
                String::from_utf8(blobs.get(&id).ok()?).ok()
            };
            let charts = crate::helm_charts::render_release_charts(
                &release,
                &crate::helm_charts::ChartRendering {
                    tool: &helm,
                    namespace: &request.namespace,
                    recorded: recorded_charts
                        .as_deref()
                        .map(|records| (records, &read_blob as &crate::helm_charts::ReadBlob)),
                    parsed_cache: Some(&parsed_cache),
                    holds_password: &|file| templates.holds_password(file),
                    excluded: &|file, index, annotation| {
                        templates.excluded(file, index, annotation);
                    },
                },
            )
            .map_err(StageError::invalid_input)?;
            tracing::debug!(charts = charts.len(), elapsed = ?clock.elapsed(), "rendered the HelmCharts");
            // Something to install: a v1beta1 chart's objects, or a v1beta2 chart (installed
            // as shipped by helm: a release of nothing else is a KOTS app too).
            let chart_objects = charts.iter().any(|chart| {
                crate::helm_charts::joins_common_base(chart)
                    && chart
                        .documents
                        .iter()
                        .any(|document| document.class == DocumentClass::KubernetesObject)
                    || crate::helm_charts::installed_as_shipped(chart)
            });
            if !chart_objects {
                check_has_kubernetes_objects(&release)?;
            }
            let password_files: std::collections::HashSet<String> = release
                .files
                .iter()
                .filter(|file| templates.holds_password(&file.path))
                .map(|file| file.path.clone())
                .collect();
            let mut templates_record = templates.record();
            if let Some(effective) = templates.effective_values() {
                templates_record.effective_values =
                    Some(record_effective_values(&effective, &blobs, &credentials)?);
            }
            let recorded = record(
                &release,
                &blobs,
                digest,
                templates_record,
                charts,
                &password_files,
                &credentials,
            );
            tracing::debug!(elapsed = ?clock.elapsed(), "stored the release");
            recorded
        })
        .await
        .map_err(|error| StageError::permanent(format!("fetch_base task failed: {error}")))?
    }
}

/// A release with nothing to deploy is refused rather than "installed".
fn check_has_kubernetes_objects(release: &Release) -> Result<(), StageError> {
    if release
        .documents()
        .any(|document| document.class == DocumentClass::KubernetesObject)
    {
        return Ok(());
    }
    let holds = if release.files.is_empty() {
        "is empty".to_string()
    } else {
        format!(
            "holds {} file(s) but no Kubernetes object (only KOTS custom resources, licenses, chart archives or other files)",
            release.files.len()
        )
    };
    Err(StageError::invalid_input(format!(
        "release directory {} {holds}: nothing to install",
        release.root.display()
    )))
}

/// The license's `spec.appSlug` must be the release's app: KOTS's slug is the `metadata.name` of
/// the release's `Application`, compared exactly.
fn check_license_is_for_the_app(release: &Release, license_slug: &str) -> Result<(), StageError> {
    let application = release.documents().find(|document| {
        document.class == DocumentClass::KotsKind
            && document.kind == "Application"
            && document
                .name
                .as_deref()
                .is_some_and(|name| name != license_slug)
    });
    match application {
        None => Ok(()),
        Some(application) => Err(StageError::invalid_input(format!(
            "the license is for app {license_slug:?}, but this release is app {:?} (the Application in {}): use a license for {:?}",
            application.name.as_deref().unwrap_or_default(),
            application.location(),
            application.name.as_deref().unwrap_or_default(),
        ))),
    }
}

/// Where the texts holding password values go: fingerprinted with `key`, kept in `texts`.
struct Credentials {
    key: Arc<windlass_state::FingerprintKey>,
    texts: Arc<CredentialTexts>,
}

fn record(
    release: &Release,
    blobs: &windlass_state::BlobStore,
    release_digest: String,
    templates: crate::events::TemplatesRecord,
    charts: Vec<crate::helm_charts::ChartRender>,
    password_files: &std::collections::HashSet<String>,
    credentials: &Credentials,
) -> Result<StageOutput, StageError> {
    let blob_failure = |error: windlass_state::BlobError| StageError::permanent(error.to_string());
    let mut files = Vec::with_capacity(release.files.len());
    let mut documents = Vec::new();
    for file in &release.files {
        // A file holding a KOTS ConfigValues (`userdata/config.yaml`) may hold passwords: like a
        // license file, it is never stored (its values reach the install as --config-values do).
        let withheld = file.holds_config_values();
        let blob = match file.contents {
            FileContents::License => None,
            _ if withheld => None,
            _ => Some(blobs.put(&file.bytes).map_err(blob_failure)?.to_string()),
        };
        files.push(FetchedFile {
            path: file.path.clone(),
            class: file.class(),
            size: file.size,
            blob,
        });
        if let FileContents::Yaml(parsed) = &file.contents
            && !withheld
        {
            // A file whose rendered text holds a password value: its documents are recorded by
            // keyed fingerprint and their texts kept in memory only.
            let holds_password = password_files.contains(&file.path);
            for document in parsed {
                documents.push(fetched_document(
                    document,
                    blobs,
                    holds_password.then_some(credentials),
                )?);
            }
        }
    }
    let mut helm_charts = Vec::with_capacity(charts.len());
    for mut chart in charts {
        let holds_password = chart.record.holds_password;
        if holds_password {
            withhold_chart_credentials(&mut chart, credentials)?;
        } else if !chart.record.excluded {
            chart.record.output_blob = Some(
                blobs
                    .put(chart.output.as_bytes())
                    .map_err(blob_failure)?
                    .to_string(),
            );
        }
        if crate::helm_charts::joins_common_base(&chart) {
            for document in &chart.documents {
                documents.push(fetched_document(
                    document,
                    blobs,
                    holds_password.then_some(credentials),
                )?);
            }
        }
        helm_charts.push(chart.record);
    }
    // Blobs must be durable before the event that names them.
    blobs.sync().map_err(blob_failure)?;
    let unreferenced_charts: Vec<UnreferencedChart> = release
        .unreferenced_archives()
        .into_iter()
        .map(|(path, chart)| UnreferencedChart {
            path: path.to_string(),
            chart_name: chart.name.clone(),
            chart_version: chart.version.clone(),
        })
        .collect();
    let superseded_helm_charts: Vec<SupersededHelmChart> = release
        .superseded_helm_charts()
        .into_iter()
        .map(|(old, new)| SupersededHelmChart {
            release_name: old
                .helm_chart_release_name()
                .unwrap_or_default()
                .to_string(),
            file: old.file.clone(),
            index: old.index,
            superseded_by_file: new.file.clone(),
            superseded_by_index: new.index,
        })
        .collect();
    let mut summary = summary(
        release,
        &files,
        &documents,
        &unreferenced_charts,
        &superseded_helm_charts,
    );
    summary.push_str(&templates_summary(&templates));
    summary.push_str(&crate::helm_charts::summary(&helm_charts, &documents));
    let fact = Fact::of(&BaseFetched {
        release_digest,
        files,
        documents,
        unreferenced_charts,
        superseded_helm_charts,
        templates: (!templates.is_empty()).then_some(templates),
        helm_charts,
    })?;
    Ok(StageOutput {
        facts: vec![fact],
        summary,
    })
}

/// Where the effective ConfigValues are kept until `write_base` writes them: a blob, or when
/// they hold a password value, this process's memory under their keyed fingerprint.
fn record_effective_values(
    effective: &crate::effective_values::EffectiveValues,
    blobs: &windlass_state::BlobStore,
    credentials: &Credentials,
) -> Result<crate::events::EffectiveValuesRecord, StageError> {
    Ok(if effective.holds_password {
        crate::events::EffectiveValuesRecord {
            blob: None,
            fingerprint: Some(
                credentials
                    .texts
                    .remember(&credentials.key, &effective.text),
            ),
        }
    } else {
        crate::events::EffectiveValuesRecord {
            blob: Some(
                blobs
                    .put(effective.text.as_bytes())
                    .map_err(|error| StageError::permanent(error.to_string()))?
                    .to_string(),
            ),
            fingerprint: None,
        }
    })
}

/// For a HelmChart whose file held a password value: its values and helm's output kept in memory
/// and named by keyed fingerprint, its `helmUpgradeFlags` recorded redacted and kept in memory
/// under their fingerprint (as JSON), so that nothing of them is stored.
fn withhold_chart_credentials(
    chart: &mut crate::helm_charts::ChartRender,
    credentials: &Credentials,
) -> Result<(), StageError> {
    let record = &mut chart.record;
    let flags = std::mem::take(&mut record.helm_upgrade_flags);
    if !flags.is_empty() {
        let written = serde_json::to_string(&flags)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        record.helm_upgrade_flags_fingerprint =
            Some(credentials.texts.remember(&credentials.key, &written));
        record.helm_upgrade_flags = crate::events::redacted_flags(&flags);
    }
    if record.excluded {
        return Ok(());
    }
    let values = crate::helm_charts::values_yaml(record.values.take().as_ref())
        .map_err(StageError::permanent)?;
    record.values_fingerprint = Some(credentials.texts.remember(&credentials.key, &values));
    record.output_fingerprint = Some(credentials.texts.remember(&credentials.key, &chart.output));
    Ok(())
}

/// What templating did, for the summary `windlass show` prints: the files templated, the config
/// items they read (names only, never values), the documents left out.
fn templates_summary(templates: &crate::events::TemplatesRecord) -> String {
    let mut summary = String::new();
    if !templates.files.is_empty() {
        let mut items: Vec<&str> = templates
            .files
            .iter()
            .flat_map(|file| file.config_items.iter().map(String::as_str))
            .collect();
        items.sort_unstable();
        items.dedup();
        summary.push_str(&format!("; templated {} file(s)", templates.files.len()));
        if !items.is_empty() {
            summary.push_str(&format!(", config items used: {}", items.join(", ")));
        }
        let holding: Vec<&str> = templates
            .files
            .iter()
            .filter(|file| file.holds_password)
            .map(|file| file.path.as_str())
            .collect();
        if !holding.is_empty() {
            summary.push_str(&format!(
                "; holding password values (recorded by keyed fingerprint, never stored): {}",
                holding.join(", ")
            ));
        }
    }
    if !templates.excluded.is_empty() {
        summary.push_str(&format!(
            "; left out by kots.io/exclude or kots.io/when: {}",
            templates
                .excluded
                .iter()
                .map(|excluded| format!("{} (document {})", excluded.file, excluded.index + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for warning in &templates.warnings {
        summary.push_str(&format!("; warning: {warning}"));
    }
    summary
}

/// "N files, M documents", the license files left out, a warning per chart archive no
/// HelmChart refers to, and a note per HelmChart set aside for a newer one.
fn summary(
    release: &Release,
    files: &[FetchedFile],
    documents: &[FetchedDocument],
    unreferenced_charts: &[UnreferencedChart],
    superseded_helm_charts: &[SupersededHelmChart],
) -> String {
    let mut summary = format!("{} files, {} documents", files.len(), documents.len());
    let licenses: Vec<&str> = release.license_files().collect();
    if !licenses.is_empty() {
        summary.push_str(&format!(
            "; left out as license files: {}",
            licenses.join(", ")
        ));
    }
    for chart in unreferenced_charts {
        let named = match (&chart.chart_name, &chart.chart_version) {
            (Some(name), Some(version)) => format!(" (chart {name} {version})"),
            (Some(name), None) => format!(" (chart {name})"),
            _ => " (no Chart.yaml with a name)".to_string(),
        };
        summary.push_str(&format!(
            "; warning: no HelmChart refers to {}{named}: it is copied to upstream/ but not deployed",
            chart.path
        ));
    }
    for chart in superseded_helm_charts {
        summary.push_str(&format!(
            "; set aside: the kots.io/v1beta1 HelmChart in {} (document {}) for the kots.io/v1beta2 one in {} (document {}), both release {}",
            chart.file,
            chart.index + 1,
            chart.superseded_by_file,
            chart.superseded_by_index + 1,
            chart.release_name
        ));
    }
    summary
}

/// The record of one parsed document, its text stored as a blob, or, when it holds a password
/// value (`credentials` given), fingerprinted and kept in memory only.
fn fetched_document(
    document: &windlass_manifest::documents::Document,
    blobs: &windlass_state::BlobStore,
    credentials: Option<&Credentials>,
) -> Result<FetchedDocument, StageError> {
    let (blob, fingerprint) = match credentials {
        Some(credentials) => (
            None,
            Some(credentials.texts.remember(&credentials.key, &document.text)),
        ),
        None => (
            Some(
                blobs
                    .put(document.text.as_bytes())
                    .map_err(|error| StageError::permanent(error.to_string()))?
                    .to_string(),
            ),
            None,
        ),
    };
    Ok(FetchedDocument {
        file: document.file.clone(),
        index: document.index,
        line: document.line,
        api_version: document.api_version.clone(),
        kind: document.kind.clone(),
        namespace: document.namespace.clone(),
        name: document.name.clone(),
        class: document.class,
        blob,
        fingerprint,
    })
}
