//! What an apply applies: the objects `render_midstream` wrote to `rendered/this-cluster/` (read
//! back from the output directory and checked against the recorded blob hashes and secret
//! fingerprints, so a changed or missing file is refused rather than applied), which of them are
//! the pull secrets and where those go (`provision_secrets`), the `useHelmInstall: true` charts
//! rendered under `rendered/this-cluster/charts/` (checked the same way), the `kots.io/v1beta2`
//! charts as `write_base` wrote them to `helm/<directory>/` (checked against `BaseWritten`), and the app's
//! `Application.spec.statusInformers` (`fetch_base`). They come from the apply stage's input stages
//! in an install, or — for `windlass apply INSTALL_ID` — from the facts the named install
//! recorded, read through the stage's fact history.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde_json::Value;
use windlass_engine::{StageContext, StageError};
use windlass_manifest::parallel::{parallel_map, parallel_map_with};
use windlass_stages::events::{
    BaseFetched, BaseWritten, DocumentClass, FetchedDocument, MidstreamRendered, RenderedFile,
    RenderedHelmChart, SecretNamespaces, SecretsProvisioned, WrittenFile,
};
use windlass_stages::output::{FileRead, OutputDir};
use windlass_stages::render_midstream::RENDERED_SECRET_PURPOSE;
use windlass_state::{BlobId, EventPayload, LazyEvent};

/// Everything an apply needs from the rendering.
#[derive(Debug)]
pub struct ApplySource {
    /// The install that rendered it.
    pub rendered_by: String,
    /// Its output directory.
    pub out_dir: PathBuf,
    /// The rendered files' paths (relative to the output directory), in file order.
    pub file_paths: Vec<String>,
    /// The rendered files holding a secret or a password value: those recorded by fingerprint
    /// rather than as a blob (`render_midstream` writes them 0600, and so does the directory
    /// target).
    pub secret_files: BTreeSet<String>,
    /// The rendered files with their bytes, read and checked against what was recorded: empty
    /// until [`ApplySource::read_files`]; parsed by [`ApplySource::parse_objects`].
    pub files: Vec<(String, Vec<u8>)>,
    /// What reads them (taken by [`ApplySource::read_files`], or by the apply stage to read them
    /// on a thread of its own while the cluster is asked).
    pub reader: Option<FileReader>,
    /// The rendered objects with their files, in file order: empty until
    /// [`ApplySource::parse_objects`] (an unchanged apply may never need them).
    pub objects: Vec<(String, Value)>,
    /// The pull secrets, as `(namespace, name)`.
    pub pull_secrets: BTreeSet<(String, String)>,
    /// Where the pull secrets go (absent when the pipeline provisions none).
    pub secret_namespaces: Option<SecretNamespaces>,
    /// `Application.spec.additionalNamespaces`, as written (`"*"` included).
    pub additional_namespaces: Vec<String>,
    /// `Application.spec.statusInformers`.
    pub status_informers: Vec<String>,
    /// The charts windlass hands to helm, their files read and checked like the objects: the
    /// `kots.io/v1beta1` charts with `useHelmInstall: true` (rendered) and the `kots.io/v1beta2`
    /// ones (as shipped, with their values).
    pub helm_charts: Vec<HelmChartSource>,
}

/// Whether the object `key` rendered to `file` holds a secret: a Secret, or a file rendered from
/// a password item (one of `secret_files`). Such an object's digest is keyed and its file 0600.
pub fn holds_secret(
    key: &crate::order::ObjectKey,
    file: &str,
    secret_files: &BTreeSet<String>,
) -> bool {
    key.group.is_empty() && key.kind == "Secret" || secret_files.contains(file)
}

/// One chart windlass hands to helm: a rendered `useHelmInstall: true` chart, or a
/// `kots.io/v1beta2` chart as shipped.
#[derive(Debug, Clone)]
pub struct HelmChartSource {
    /// What `render_midstream` recorded of it; for a `kots.io/v1beta2` chart, the same facts
    /// from `fetch_base` (its directory `helm/<directory>`, no pull secrets, no patched
    /// workloads, its files the archive and `values.yaml`).
    pub chart: RenderedHelmChart,
    /// Its files, paths relative to the chart's directory, with whether each holds a secret.
    pub files: Vec<(String, Vec<u8>, bool)>,
    /// What `HelmReleaseInstalled.chart_digest` records of the files (see [`chart_digest`]).
    pub digest: String,
    /// For a `kots.io/v1beta2` chart, its archive among `files` (`<chart>-<version>.tgz`), which
    /// helm installs as shipped with [`SHIPPED_VALUES`]; `None` for a rendered chart directory.
    pub shipped_archive: Option<String>,
}

/// The values file of a `kots.io/v1beta2` chart, beside its archive in `helm/<directory>/`.
pub const SHIPPED_VALUES: &str = "values.yaml";

/// The fingerprint purpose of the digest of a chart holding a password value.
pub const CHART_FILES_PURPOSE: &str = "helm-chart-files";

/// blake3 over `files` (each path, a NUL, its bytes, a NUL, in path order); for a chart holding a
/// password value (`holds_password`), a keyed fingerprint of the same bytes instead, so that no
/// plain hash of a text holding the password is recorded (a weak password could be guessed from
/// it).
pub fn chart_digest(
    files: &[(String, Vec<u8>, bool)],
    holds_password: bool,
    key: &windlass_state::FingerprintKey,
) -> String {
    let mut sorted: Vec<&(String, Vec<u8>, bool)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hashed = Vec::new();
    for (path, bytes, _) in sorted {
        hashed.extend_from_slice(path.as_bytes());
        hashed.push(0);
        hashed.extend_from_slice(bytes);
        hashed.push(0);
    }
    if holds_password {
        key.fingerprint_bytes(CHART_FILES_PURPOSE, &hashed)
    } else {
        blake3::hash(&hashed).to_hex().to_string()
    }
}

/// The facts of the install `windlass apply` applies, as [`crate::apply_install`] read them when
/// it folded that install to check that it completed: kept in the runner's memo so that the stage
/// does not read and decode them from the log a second time. Only a cache of what the log holds
/// (see [`windlass_engine::Memo`]): without it the stage reads the same facts through its history.
#[derive(Default)]
pub struct SourceFacts(std::sync::Mutex<Option<(String, Vec<LazyEvent>)>>);

impl SourceFacts {
    /// The event types the stage reads from the source install.
    pub const TYPES: [&'static str; 4] = [
        MidstreamRendered::EVENT_TYPE,
        SecretsProvisioned::EVENT_TYPE,
        BaseFetched::EVENT_TYPE,
        BaseWritten::EVENT_TYPE,
    ];

    /// Keeps `facts` (of install `install`, in install order).
    pub fn keep(&self, install: &str, facts: Vec<LazyEvent>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((install.to_string(), facts));
    }

    /// The newest kept fact of `event_type` of `install`; `None` when nothing of `install` is kept.
    #[cfg(test)]
    fn newest(
        &self,
        install: &str,
        event_type: &str,
    ) -> Option<Option<windlass_state::StoredEvent>> {
        self.with_newest(install, event_type, |event| {
            event.map(|lazy| lazy.event.clone())
        })
    }

    /// `read` of the newest kept fact of `event_type` of `install` (a fact of these megabytes is
    /// read where it lies, never copied); `None` when nothing of `install` is kept.
    fn with_newest<R>(
        &self,
        install: &str,
        event_type: &str,
        read: impl FnOnce(Option<&LazyEvent>) -> R,
    ) -> Option<R> {
        let kept = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (id, facts) = kept.as_ref()?;
        if id != install || !Self::TYPES.contains(&event_type) {
            return None;
        }
        Some(read(
            facts
                .iter()
                .rev()
                .find(|lazy| lazy.event.event_type == event_type),
        ))
    }
}

/// Finds facts: from the input stages, or from another install's recorded facts.
enum Facts<'a> {
    Inputs(&'a StageContext),
    Install(&'a StageContext, &'a str),
}

impl Facts<'_> {
    fn newest<T: DeserializeOwned>(&self, event_type: &str) -> Result<Option<T>, StageError> {
        // Decoded from the fact where it lies, into `T` (a release's facts are megabytes; `T`
        // may read only part of one).
        let unreadable = |error: serde_json::Error| {
            StageError::permanent(format!("{event_type} is unreadable: {error}"))
        };
        let decode = |lazy: Option<&LazyEvent>| {
            lazy.map(|lazy| lazy.decode().map_err(unreadable))
                .transpose()
        };
        let lazy: Option<LazyEvent> = match self {
            Facts::Inputs(context) => {
                return context
                    .inputs
                    .values()
                    .flat_map(|facts| facts.iter())
                    .rev()
                    .find(|event| event.event_type == event_type)
                    .map(|event| T::deserialize(&event.payload).map_err(unreadable))
                    .transpose();
            }
            Facts::Install(context, install) => {
                if let Some(kept) = context
                    .memo
                    .get::<SourceFacts>()
                    .with_newest(install, event_type, decode)
                {
                    return kept;
                }
                let mut found = None;
                context
                    .history
                    .visit_recent_facts(
                        event_type,
                        time::OffsetDateTime::UNIX_EPOCH,
                        &context.install_id,
                        &mut |event| {
                            if event.event.install_id == *install {
                                found = Some(event);
                                std::ops::ControlFlow::Break(())
                            } else {
                                std::ops::ControlFlow::Continue(())
                            }
                        },
                    )
                    .map_err(StageError::permanent)?;
                found
            }
        };
        decode(lazy.as_ref())
    }
}

/// Reads the source of an apply: the input stages' facts, or those of `install` when given.
pub fn read_source(
    context: &StageContext,
    install: Option<&str>,
) -> Result<ApplySource, StageError> {
    let facts = match install {
        Some(install) => Facts::Install(context, install),
        None => Facts::Inputs(context),
    };
    let rendered: MidstreamRendered =
        facts
            .newest(MidstreamRendered::EVENT_TYPE)?
            .ok_or_else(|| {
                StageError::invalid_input(match install {
                    Some(install) => format!(
                        "install {install} rendered nothing to apply (no {}): did it complete?",
                        MidstreamRendered::EVENT_TYPE
                    ),
                    None => format!(
                        "stage {} needs an input stage that records {} (render_midstream)",
                        context.stage_name,
                        MidstreamRendered::EVENT_TYPE
                    ),
                })
            })?;
    let provisioned: Option<SecretsProvisioned> = facts.newest(SecretsProvisioned::EVENT_TYPE)?;
    let fetched: Option<FetchedDocuments> = facts.newest(BaseFetched::EVENT_TYPE)?;
    let out_dir = context.request.out_dir.clone();
    let out =
        OutputDir::for_stage(context).map_err(|error| StageError::permanent(error.to_string()))?;
    let stale_input = match install {
        None => Some(
            context
                .input_stage_recording(MidstreamRendered::EVENT_TYPE)
                .unwrap_or("render_midstream")
                .to_string(),
        ),
        Some(_) => None,
    };
    let stale = |message: String| stale_error(stale_input.as_deref(), message);
    let mut helm_charts = Vec::with_capacity(rendered.helm_charts.len());
    let mut chart_reader = out.reader();
    for chart in &rendered.helm_charts {
        let prefix = format!("{}/", chart.chart_dir);
        let mut files = Vec::with_capacity(chart.files.len());
        for file in &chart.files {
            let relative = file.path.strip_prefix(&prefix).ok_or_else(|| {
                StageError::permanent(format!(
                    "{} of HelmChart {} is not under its chart directory {}",
                    file.path, chart.name, chart.chart_dir
                ))
            })?;
            let bytes = read_checked(
                &mut chart_reader,
                &out_dir,
                file,
                (&context.fingerprint_key, &context.blobs),
                &stale,
            )?;
            files.push((relative.to_string(), bytes, file.blob.is_none()));
        }
        helm_charts.push(HelmChartSource {
            digest: chart_digest(&files, chart.holds_password, &context.fingerprint_key),
            chart: chart.clone(),
            files,
            shipped_archive: None,
        });
    }
    let shipped: Vec<&FetchedChart> = fetched
        .iter()
        .flat_map(|fetched| &fetched.helm_charts)
        .filter(|chart| chart.api_version == "kots.io/v1beta2" && !chart.excluded)
        .collect();
    if !shipped.is_empty() {
        let helm_tree_stale = |message: String| {
            stale_error(
                stale_input.as_ref().map(|_| {
                    context
                        .input_stage_recording(BaseWritten::EVENT_TYPE)
                        .unwrap_or("write_base")
                }),
                message,
            )
        };
        let written: WrittenTree = facts.newest(BaseWritten::EVENT_TYPE)?.ok_or_else(|| {
            StageError::invalid_input(format!(
                "the kots.io/v1beta2 HelmChart {} is installed from helm/{}/, which write_base writes, and no {} of {} is found (stage {} needs write_base among its inputs)",
                shipped[0].name,
                shipped[0].directory,
                BaseWritten::EVENT_TYPE,
                install.unwrap_or("this install"),
                context.stage_name
            ))
        })?;
        for chart in shipped {
            helm_charts.push(shipped_chart(
                chart,
                &written,
                &mut chart_reader,
                (&out_dir, &context.fingerprint_key, &context.blobs),
                &helm_tree_stale,
            )?);
        }
    }
    drop(chart_reader);
    let (additional_namespaces, status_informers) = match &fetched {
        Some(fetched) => application_lists(fetched, context)?,
        None => (Vec::new(), Vec::new()),
    };
    let reader = FileReader {
        out,
        out_dir: out_dir.clone(),
        files: rendered.rendered_files,
        key: context.fingerprint_key.clone(),
        blobs: context.blobs.clone(),
        stale_input,
    };
    Ok(ApplySource {
        rendered_by: install.unwrap_or(&context.install_id).to_string(),
        out_dir,
        file_paths: reader.files.iter().map(|file| file.path.clone()).collect(),
        secret_files: reader
            .files
            .iter()
            .filter(|file| file.blob.is_none())
            .map(|file| file.path.clone())
            .collect(),
        files: Vec::new(),
        reader: Some(reader),
        objects: Vec::new(),
        pull_secrets: provisioned
            .as_ref()
            .map(|provisioned| {
                provisioned
                    .secrets
                    .iter()
                    .map(|secret| (secret.namespace.clone(), secret.name.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        secret_namespaces: provisioned.map(|provisioned| provisioned.namespaces),
        additional_namespaces,
        status_informers,
        helm_charts,
    })
}

/// Reads the rendered files and checks each against its recorded blob id or secret
/// fingerprint (owned, so that it can run on its own thread while the cluster is asked).
pub struct FileReader {
    out: OutputDir,
    out_dir: PathBuf,
    files: Vec<RenderedFile>,
    key: std::sync::Arc<windlass_state::FingerprintKey>,
    /// The blob store, for the recorded sizes of large files.
    blobs: std::sync::Arc<windlass_state::BlobStore>,
    /// The input stage to mark stale when a file is damaged (an install's own apply).
    stale_input: Option<String>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FileReader")
            .field("out_dir", &self.out_dir)
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

impl FileReader {
    /// Every file's bytes, in file order, read and checked on every core (a thousand files one
    /// after another took most of an unchanged apply's time).
    pub fn read(self) -> Result<Vec<(String, Vec<u8>)>, StageError> {
        let stale = |message: String| stale_error(self.stale_input.as_deref(), message);
        // In as many runs of files as there are cores, each with one reader (which keeps the
        // directory of the files it reads open); the first error in file order wins, as in a
        // loop.
        parallel_map_with(
            &self.files,
            2,
            || self.out.reader(),
            |reader, file| {
                read_checked(
                    reader,
                    &self.out_dir,
                    file,
                    (&self.key, &self.blobs),
                    &stale,
                )
                .map(|bytes| (file.path.clone(), bytes))
            },
        )
        .into_iter()
        .collect()
    }
}

fn stale_error(stale_input: Option<&str>, message: String) -> StageError {
    let error = StageError::permanent(message);
    match stale_input {
        Some(stage) => error.with_stale_input(stage),
        None => error,
    }
}

impl ApplySource {
    /// Reads and checks the rendered files into [`ApplySource::files`] (once).
    pub fn read_files(&mut self) -> Result<(), StageError> {
        if let Some(reader) = self.reader.take() {
            self.files = reader.read()?;
        }
        Ok(())
    }

    /// Parses the rendered files into [`ApplySource::objects`] (on every core), once.
    pub fn parse_objects(&mut self) -> Result<(), StageError> {
        self.read_files()?;
        if !self.objects.is_empty() {
            return Ok(());
        }
        let parsed = parallel_map(&self.files, 2, |(path, bytes)| {
            let documents = windlass_manifest::documents::parse_documents(path, bytes)
                .map_err(|error| StageError::invalid_input(error.to_string()))?;
            Ok(documents
                .into_iter()
                .map(|document| {
                    (
                        path.clone(),
                        std::sync::Arc::unwrap_or_clone(document.value),
                    )
                })
                .collect::<Vec<_>>())
        })
        .into_iter()
        .collect::<Result<Vec<_>, StageError>>()?;
        self.objects = parsed.into_iter().flatten().collect();
        Ok(())
    }
}

/// One rendered file's bytes, read up to its recorded size and checked against its recorded
/// blob id or secret fingerprint.
fn read_checked(
    out: &mut windlass_stages::output::OutputReader<'_>,
    out_dir: &std::path::Path,
    file: &RenderedFile,
    (key, blobs): (&windlass_state::FingerprintKey, &windlass_state::BlobStore),
    stale: &(dyn Fn(String) -> StageError + Sync),
) -> Result<Vec<u8>, StageError> {
    let changed = || {
        stale(format!(
            "{} in {} changed since it was rendered: render the install again",
            file.path,
            out_dir.display()
        ))
    };
    // Read up to its recorded size: a larger file has changed.
    let bytes = match out
        .read_recorded(&file.path, file.blob.as_deref(), blobs)
        .map_err(|error| StageError::permanent(error.to_string()))?
    {
        FileRead::Bytes(bytes) => bytes,
        FileRead::Larger => return Err(changed()),
        FileRead::Missing => {
            return Err(stale(format!(
                "{} is missing from {}: render the install again",
                file.path,
                out_dir.display()
            )));
        }
    };
    let intact = match (&file.blob, &file.fingerprint) {
        (Some(blob), _) => BlobId::of(&bytes).to_string() == *blob,
        (None, Some(fingerprint)) => {
            key.fingerprint_bytes(RENDERED_SECRET_PURPOSE, &bytes) == *fingerprint
        }
        (None, None) => false,
    };
    if !intact {
        return Err(changed());
    }
    Ok(bytes)
}

/// The part of [`BaseFetched`] the stage reads: what each document of the release is. Every file
/// and template the fact also lists (thousands in a big release) is skipped over, not decoded.
#[derive(Debug, serde::Deserialize)]
struct FetchedDocuments {
    /// [`BaseFetched::documents`].
    documents: Vec<FetchedDocument>,
    /// [`BaseFetched::helm_charts`], as far as the stage reads them.
    #[serde(default)]
    helm_charts: Vec<FetchedChart>,
}

/// What the stage reads of one HelmChart as `fetch_base` recorded it
/// ([`windlass_stages::events::HelmChartRendered`]): enough to hand a `kots.io/v1beta2` chart to
/// helm.
#[derive(Debug, serde::Deserialize)]
struct FetchedChart {
    api_version: String,
    name: String,
    directory: String,
    release_name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    excluded: bool,
    #[serde(default)]
    weight: i64,
    #[serde(default)]
    chart_name: String,
    #[serde(default)]
    chart_version: String,
    #[serde(default)]
    helm_upgrade_flags: Vec<String>,
    #[serde(default)]
    helm_upgrade_flags_fingerprint: Option<String>,
    #[serde(default)]
    holds_password: bool,
}

/// The part of [`BaseWritten`] the stage reads for `kots.io/v1beta2` charts: every file written
/// (their blobs or fingerprints check `helm/<directory>/`).
#[derive(Debug, serde::Deserialize)]
struct WrittenTree {
    files: Vec<WrittenFile>,
}

/// The `kots.io/v1beta2` HelmChart `chart` as helm gets it: `helm/<directory>/<chart>-<version>.tgz`
/// and `helm/<directory>/values.yaml`, as `write_base` wrote them (`written`), read back from the
/// output directory and checked against their recorded blobs or fingerprints (a changed or
/// missing file is `stale`).
fn shipped_chart(
    chart: &FetchedChart,
    written: &WrittenTree,
    reader: &mut windlass_stages::output::OutputReader<'_>,
    (out_dir, key, blobs): (
        &std::path::Path,
        &windlass_state::FingerprintKey,
        &windlass_state::BlobStore,
    ),
    stale: &(dyn Fn(String) -> StageError + Sync),
) -> Result<HelmChartSource, StageError> {
    let chart_dir = format!("helm/{}", chart.directory);
    let archive = format!("{}-{}.tgz", chart.chart_name, chart.chart_version);
    let mut rendered_files = Vec::new();
    let mut files = Vec::new();
    for name in [archive.as_str(), SHIPPED_VALUES] {
        let path = format!("{chart_dir}/{name}");
        let recorded = written
            .files
            .iter()
            .find(|file| file.path == path)
            .ok_or_else(|| {
                stale(format!(
                    "{path} (kots.io/v1beta2 HelmChart {}) is not among the files write_base recorded: render the install again",
                    chart.name
                ))
            })?;
        let file = RenderedFile {
            path,
            blob: recorded.blob.clone(),
            fingerprint: recorded.fingerprint.clone(),
        };
        let bytes = read_checked(reader, out_dir, &file, (key, blobs), stale)?;
        files.push((name.to_string(), bytes, file.blob.is_none()));
        rendered_files.push(file);
    }
    Ok(HelmChartSource {
        digest: chart_digest(&files, chart.holds_password, key),
        chart: RenderedHelmChart {
            name: chart.name.clone(),
            release_name: chart.release_name.clone(),
            namespace: chart.namespace.clone(),
            weight: chart.weight,
            chart_name: chart.chart_name.clone(),
            chart_version: chart.chart_version.clone(),
            helm_upgrade_flags: chart.helm_upgrade_flags.clone(),
            helm_upgrade_flags_fingerprint: chart.helm_upgrade_flags_fingerprint.clone(),
            holds_password: chart.holds_password,
            chart_dir,
            pull_secrets: Vec::new(),
            patched_workloads: Vec::new(),
            files: rendered_files,
        },
        files,
        shipped_archive: Some(archive),
    })
}

/// `additionalNamespaces` and `statusInformers` of the release's KOTS `Application`.
fn application_lists(
    fetched: &FetchedDocuments,
    context: &StageContext,
) -> Result<(Vec<String>, Vec<String>), StageError> {
    let Some(recorded) = fetched.documents.iter().find(|document| {
        document.class == DocumentClass::KotsKind
            && document.kind == "Application"
            && document.api_version.starts_with("kots.io/")
    }) else {
        return Ok((Vec::new(), Vec::new()));
    };
    // An Application holding a password value is not stored (KOTS never deploys it, and its
    // lists hold names): without its blob there is nothing to read.
    let Some(blob) = recorded.blob.as_deref() else {
        return Err(StageError::invalid_input(format!(
            "{}: the KOTS Application's text holds a password value and is not stored: its additionalNamespaces and statusInformers cannot be read back",
            recorded.file
        )));
    };
    let blob = BlobId::parse(blob).map_err(|error| StageError::permanent(error.to_string()))?;
    let bytes = context
        .blobs
        .get(&blob)
        .map_err(|error| StageError::permanent(error.to_string()))?;
    let document = windlass_manifest::documents::parse_documents(&recorded.file, &bytes)
        .map_err(|error| StageError::invalid_input(error.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            StageError::permanent(format!("{}: the Application is empty", recorded.file))
        })?;
    let application: windlass_kots::resources::Application =
        windlass_kots::resources::from_value(&document.value).map_err(|error| {
            StageError::invalid_input(format!("{}: Application: {error}", recorded.file))
        })?;
    Ok((
        application.spec.additional_namespaces,
        application
            .spec
            .status_informers
            .into_iter()
            .filter(|informer| !informer.trim().is_empty())
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, seq: u64) -> LazyEvent {
        LazyEvent::decoded(windlass_state::StoredEvent {
            install_id: "rendered".into(),
            install_seq: seq,
            event_type: event_type.into(),
            payload: serde_json::json!({"seq": seq}),
            ..windlass_state::StoredEvent::default()
        })
    }

    #[test]
    fn a_chart_holding_a_password_gets_a_keyed_digest() {
        let files = vec![
            ("templates/b.yaml".to_string(), b"b".to_vec(), false),
            ("Chart.yaml".to_string(), b"name: x".to_vec(), false),
        ];
        let key = windlass_state::FingerprintKey::from_bytes([7; 32]);
        let plain = chart_digest(&files, false, &key);
        assert_eq!(
            plain,
            blake3::hash(b"Chart.yaml\0name: x\0templates/b.yaml\0b\0")
                .to_hex()
                .to_string(),
            "a plain hash over each path and its bytes, in path order"
        );
        let keyed = chart_digest(&files, true, &key);
        assert!(keyed.starts_with("fp1:"), "{keyed}");
        assert_ne!(
            keyed,
            chart_digest(
                &files,
                true,
                &windlass_state::FingerprintKey::from_bytes([8; 32])
            )
        );
    }

    #[test]
    fn kept_source_facts_answer_only_for_their_install_and_the_types_read() {
        let kept = SourceFacts::default();
        assert_eq!(kept.newest("rendered", MidstreamRendered::EVENT_TYPE), None);
        kept.keep(
            "rendered",
            vec![
                event(MidstreamRendered::EVENT_TYPE, 3),
                event(BaseFetched::EVENT_TYPE, 4),
                event(MidstreamRendered::EVENT_TYPE, 7),
            ],
        );
        // The newest of its type, as the fact history would find it.
        assert_eq!(
            kept.newest("rendered", MidstreamRendered::EVENT_TYPE)
                .flatten()
                .map(|event| event.install_seq),
            Some(7)
        );
        // Kept, but the install recorded none: none, without asking the log.
        assert_eq!(
            kept.newest("rendered", SecretsProvisioned::EVENT_TYPE),
            Some(None)
        );
        // Another install, or a type the stage does not keep: ask the log.
        assert_eq!(kept.newest("other", MidstreamRendered::EVENT_TYPE), None);
        assert_eq!(kept.newest("rendered", "ApplyCompleted"), None);
    }
}
