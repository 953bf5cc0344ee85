//! The `write_base` stage: materialises `upstream/` (the release as fetched, license files left
//! out) and `base/` (one file per Kubernetes document, multi-document files split, KOTS custom
//! resources left out, and a `kustomization.yaml` listing them) in the install's output directory.
//! It reads only the `BaseFetched` fact of its input and the blob store, so a recorded install can
//! be written again byte for byte without the original release. Both directories are regenerated
//! from scratch on every run, each written beside the old one and swapped in whole, so no stale
//! file survives and each directory always holds either its previous or its new contents. When an
//! install resumes, [`Stage::restore`] checks every recorded file against its blob and writes both
//! directories again if any is missing or changed. A `base/` file name too long for a file system
//! is shortened with a hash ([`fit_file_name`]). A document holding a password value (recorded by
//! `fetch_base` by fingerprint, a HelmChart's documents when its values read one included), and a
//! `kots.io/v1beta2` chart's `helm/<release>/values.yaml` when they do, is written 0600 from the
//! text `fetch_base` kept in memory ([`CredentialTexts`]) and listed by fingerprint.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use windlass_state::EventPayload;

use serde::{Deserialize, Serialize};
use windlass_engine::{
    BuildContext, Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};
use windlass_state::{BlobId, BlobStore, FingerprintKey, StoredEvent};

use crate::credential_texts::{CredentialTexts, PASSWORD_TEXT_PURPOSE, text_not_in_memory};
use crate::events::{
    BaseFetched, BaseWritten, DocumentClass, FetchedDocument, HelmInstallBase, WrittenFile,
};
use crate::install::EFFECTIVE_CONFIG_VALUES_FILE;
use crate::output::{OutputDir, OutputError, fit_file_name};
use crate::recorded_blobs::ReleaseBlobs;

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        "write_base",
        "write upstream/ and base/ from the recorded BaseFetched",
        |config| {
            let config: WriteBaseConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("write_base: {error}"))?;
            Ok(Box::new(config))
        },
    )
}

/// Configuration: none yet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBaseConfig {}

#[async_trait::async_trait]
impl StageConfig for WriteBaseConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(WriteBase))
    }
}

/// The runtime stage.
pub struct WriteBase;

/// `base/kustomization.yaml` as written.
#[derive(Serialize)]
struct Kustomization<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    resources: Vec<String>,
}

#[async_trait::async_trait]
impl Stage for WriteBase {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        WriteInputs::of(context)?.on_blocking_thread(write).await
    }

    async fn restore(
        &self,
        context: &StageContext,
        recorded: &[StoredEvent],
    ) -> Result<Option<String>, StageError> {
        let recorded_written: BaseWritten =
            windlass_engine::recorded_fact::<BaseWritten>(recorded)?;
        let key = context.fingerprint_key.clone();
        WriteInputs::of(context)?
            .on_blocking_thread(move |source, out, blobs, texts| {
                restore(&recorded_written, source, out, blobs, texts, &key)
            })
            .await
    }
}

/// What writing (or restoring) `upstream/` and `base/` takes from the stage context, owned so that
/// it can move to a blocking thread.
struct WriteInputs {
    fetched: Arc<BaseFetched>,
    out: OutputDir,
    release_dir: std::path::PathBuf,
    recorded_by: Option<String>,
    blobs: Arc<BlobStore>,
    credential_texts: Arc<CredentialTexts>,
}

impl WriteInputs {
    fn of(context: &StageContext) -> Result<WriteInputs, StageError> {
        Ok(WriteInputs {
            fetched: context.input_shared::<BaseFetched>()?,
            out: OutputDir::for_stage(context).map_err(output_failure)?,
            release_dir: context.request.release_dir.clone(),
            recorded_by: context
                .input_stage_recording(BaseFetched::EVENT_TYPE)
                .map(str::to_string),
            blobs: context.blobs.clone(),
            credential_texts: context.memo.get::<CredentialTexts>(),
        })
    }

    /// Runs `work` on a blocking thread (it writes thousands of files) with the recorded release.
    async fn on_blocking_thread<T: Send + 'static>(
        self,
        work: impl FnOnce(
            &ReleaseBlobs,
            &OutputDir,
            &BlobStore,
            &CredentialTexts,
        ) -> Result<T, StageError>
        + Send
        + 'static,
    ) -> Result<T, StageError> {
        tokio::task::spawn_blocking(move || {
            let source = ReleaseBlobs {
                fetched: &self.fetched,
                release_dir: &self.release_dir,
                recorded_by: self.recorded_by.as_deref(),
            };
            work(&source, &self.out, &self.blobs, &self.credential_texts)
        })
        .await
        .map_err(|error| StageError::permanent(format!("write_base task failed: {error}")))?
    }
}

/// The recorded files of `written` that are missing from `out` or differ from their blob (or,
/// for a file holding a password value, their keyed fingerprint); each is read up to its recorded
/// size, so a larger one is changed ([`OutputDir::read_recorded`]).
fn damaged_files<'a>(
    written: &'a BaseWritten,
    out: &OutputDir,
    blobs: &BlobStore,
    key: &FingerprintKey,
) -> Result<Vec<&'a str>, StageError> {
    let checked = windlass_manifest::parallel::parallel_map(&written.files, 64, |file| {
        out.read_recorded(&file.path, file.blob.as_deref(), blobs)
            .map(|read| {
                read.into_bytes()
                    .is_some_and(|bytes| match (&file.blob, &file.fingerprint) {
                        (Some(blob), _) => BlobId::of(&bytes).to_string() == *blob,
                        (None, Some(fingerprint)) => {
                            key.fingerprint_bytes(PASSWORD_TEXT_PURPOSE, &bytes) == *fingerprint
                        }
                        (None, None) => false,
                    })
            })
    });
    let mut damaged = Vec::new();
    for (file, intact) in written.files.iter().zip(checked) {
        if !intact.map_err(output_failure)? {
            damaged.push(file.path.as_str());
        }
    }
    Ok(damaged)
}

/// Checks the files `recorded` lists; if any is missing or changed, writes `upstream/` and `base/`
/// again from the recorded release blobs, and says so.
fn restore(
    recorded: &BaseWritten,
    source: &ReleaseBlobs,
    out: &OutputDir,
    blobs: &BlobStore,
    texts: &CredentialTexts,
    key: &FingerprintKey,
) -> Result<Option<String>, StageError> {
    let damaged = damaged_files(recorded, out, blobs, key)?;
    let Some(first) = damaged.first() else {
        return Ok(None);
    };
    let output = write(source, out, blobs, texts)?;
    let rewritten: BaseWritten = serde_json::from_value(output.facts[0].payload.clone())
        .map_err(|error| StageError::permanent(error.to_string()))?;
    if rewritten.files != recorded.files {
        return Err(StageError::permanent(format!(
            "upstream/ and base/ written again from the recorded blobs differ from what write_base recorded in {}",
            out.root().display()
        )));
    }
    Ok(Some(format!(
        "{} of {} recorded files in upstream/ and base/ were missing or changed (first: {first}); \
         re-derived upstream/ and base/ from the recorded blobs",
        damaged.len(),
        recorded.files.len()
    )))
}

/// Names the `base/` file of each Kubernetes document: a single-document file keeps its path, a
/// document of a multi-document file gets `<stem>-<n><ext>`; clashes get a further `-<k>` suffix.
/// A file name (the last component) longer than [`crate::output::MAX_FILE_NAME_BYTES`] is
/// shortened with [`fit_file_name`].
pub fn base_file_names(documents: &[FetchedDocument]) -> Vec<(usize, String)> {
    let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
    for document in documents {
        *per_file.entry(document.file.as_str()).or_default() += 1;
    }
    let mut taken = TakenPaths::default();
    let mut names = Vec::new();
    for (position, document) in documents.iter().enumerate() {
        if document.class != DocumentClass::KubernetesObject {
            continue;
        }
        let (stem, extension) = split_extension(&document.file);
        let mut name = fitted(if per_file[document.file.as_str()] == 1 {
            document.file.clone()
        } else {
            format!("{stem}-{}{extension}", document.index + 1)
        });
        let mut clash = 1;
        while taken.clashes(&name) || name == "kustomization.yaml" {
            clash += 1;
            name = fitted(format!("{stem}-{}-{clash}{extension}", document.index + 1));
        }
        taken.insert(&name);
        names.push((position, name));
    }
    names
}

/// `path` with its last component passed through [`fit_file_name`].
fn fitted(path: String) -> String {
    let (directory, name) = match path.rsplit_once('/') {
        Some((directory, name)) => (Some(directory), name),
        None => (None, path.as_str()),
    };
    match (fit_file_name(name), directory) {
        (std::borrow::Cow::Borrowed(_), _) => path,
        (fitted, Some(directory)) => format!("{directory}/{fitted}"),
        (fitted, None) => fitted.into_owned(),
    }
}

/// File paths already used, and the directories they imply, so that a new name neither repeats
/// a file nor turns a file into a directory or the other way round.
#[derive(Default)]
struct TakenPaths {
    files: HashSet<String>,
    directories: HashSet<String>,
}

impl TakenPaths {
    fn parents(path: &str) -> impl Iterator<Item = &str> {
        path.match_indices('/')
            .map(move |(index, _)| &path[..index])
    }

    fn clashes(&self, path: &str) -> bool {
        self.files.contains(path)
            || self.directories.contains(path)
            || Self::parents(path).any(|parent| self.files.contains(parent))
    }

    fn insert(&mut self, path: &str) {
        self.directories
            .extend(Self::parents(path).map(str::to_string));
        self.files.insert(path.to_string());
    }
}

/// The bodies this stage writes, by blob id, read in one blob-store transaction.
struct Bodies(std::collections::HashMap<String, Vec<u8>>);

impl Bodies {
    fn get(&self, hex: &str) -> Result<&[u8], StageError> {
        self.0
            .get(hex)
            .map(Vec::as_slice)
            .ok_or_else(|| StageError::permanent(format!("blob {hex} was not read")))
    }
}

/// The effective ConfigValues `fetch_base` recorded, if the release has a Config.
fn effective_values(fetched: &BaseFetched) -> Option<&crate::events::EffectiveValuesRecord> {
    fetched.templates.as_ref()?.effective_values.as_ref()
}

/// Writes `upstream/`: every stored release file, as fetched, and the effective ConfigValues
/// (`userdata/config.yaml`, 0600: they may hold generated values that are secrets), which the
/// next install of the app starts from.
fn write_upstream(
    fetched: &BaseFetched,
    out: &OutputDir,
    bodies: &Bodies,
) -> Result<Vec<WrittenFile>, StageError> {
    let upstream = out.replace_tree("upstream").map_err(output_failure)?;
    let mut written = Vec::with_capacity(fetched.files.len() + 1);
    let effective = effective_values(fetched);
    let effective_path = EFFECTIVE_CONFIG_VALUES_FILE
        .strip_prefix("upstream/")
        .unwrap_or(EFFECTIVE_CONFIG_VALUES_FILE);
    if let Some(record) = effective {
        let key = record
            .fingerprint
            .as_ref()
            .or(record.blob.as_ref())
            .ok_or_else(|| {
                StageError::permanent(
                    "the effective config values record names neither a blob nor a fingerprint",
                )
            })?;
        upstream
            .write(effective_path, bodies.get(key)?, 0o600)
            .map_err(output_failure)?;
        written.push(WrittenFile {
            path: EFFECTIVE_CONFIG_VALUES_FILE.to_string(),
            blob: record.blob.clone(),
            fingerprint: record.fingerprint.clone(),
        });
    }
    for file in &fetched.files {
        let Some(hex) = &file.blob else { continue };
        if effective.is_some() && file.path == effective_path {
            // The release's own file of that name is no ConfigValues (those are never stored):
            // the effective values take its place.
            continue;
        }
        upstream
            .write(&file.path, bodies.get(hex)?, 0o644)
            .map_err(output_failure)?;
        written.push(WrittenFile {
            path: format!("upstream/{}", file.path),
            blob: Some(hex.clone()),
            fingerprint: None,
        });
    }
    upstream.commit().map_err(output_failure)?;
    Ok(written)
}

/// Where the bytes of one `base/` file come from.
pub(crate) enum BaseSource<'a> {
    /// A recorded release document (its text is a blob, or, when it holds a password value, kept
    /// in memory under its keyed fingerprint).
    Document(&'a FetchedDocument),
    /// A `kustomization.yaml` written for the layout.
    Kustomization(String),
}

/// Every file of `base/` (path relative to `base/`, source): one per Kubernetes document, in the
/// order of [`base_file_names`], then the `kustomization.yaml` files listing them. A function of
/// the recorded release alone, so `render_midstream` builds from it while this stage is still
/// writing the same files.
pub(crate) fn base_layout(
    fetched: &BaseFetched,
) -> Result<Vec<(String, BaseSource<'_>)>, StageError> {
    let mut layout = Vec::with_capacity(fetched.documents.len() + 1);
    let mut resources = Vec::new();
    for (position, name) in base_file_names(&fetched.documents) {
        layout.push((
            name.clone(),
            BaseSource::Document(&fetched.documents[position]),
        ));
        resources.push(name);
    }
    for (directory, resources) in kustomizations(fetched, resources) {
        let kustomization = serde_saphyr::to_string(&Kustomization {
            api_version: "kustomize.config.k8s.io/v1beta1",
            kind: "Kustomization",
            resources,
        })
        .map_err(|error| StageError::permanent(error.to_string()))?;
        let path = if directory.is_empty() {
            "kustomization.yaml".to_string()
        } else {
            format!("{directory}/kustomization.yaml")
        };
        layout.push((path, BaseSource::Kustomization(kustomization)));
    }
    Ok(layout)
}

/// Writes `base/` as [`base_layout`] lays it out; a document holding a password value is written
/// 0600 and listed by fingerprint. Returns the files written and the number of resources.
fn write_base_tree(
    fetched: &BaseFetched,
    out: &OutputDir,
    blobs: &BlobStore,
    bodies: &Bodies,
) -> Result<(Vec<WrittenFile>, usize), StageError> {
    let failure = |error: &dyn std::fmt::Display| StageError::permanent(error.to_string());
    let base = out.replace_tree("base").map_err(output_failure)?;
    let layout = base_layout(fetched)?;
    let mut written = Vec::with_capacity(layout.len());
    let mut resource_count = 0;
    for (path, source) in layout {
        let file = match source {
            BaseSource::Document(document) => {
                let mode = if document.fingerprint.is_some() {
                    0o600
                } else {
                    0o644
                };
                base.write(&path, bodies.get(document.content_key())?, mode)
                    .map_err(output_failure)?;
                resource_count += 1;
                WrittenFile {
                    path: format!("base/{path}"),
                    blob: document.blob.clone(),
                    fingerprint: document.fingerprint.clone(),
                }
            }
            BaseSource::Kustomization(text) => {
                base.write(&path, text.as_bytes(), 0o644)
                    .map_err(output_failure)?;
                let blob = blobs
                    .put(text.as_bytes())
                    .map_err(|error| failure(&error))?;
                WrittenFile {
                    path: format!("base/{path}"),
                    blob: Some(blob.to_string()),
                    fingerprint: None,
                }
            }
        };
        written.push(file);
    }
    base.commit().map_err(output_failure)?;
    Ok((written, resource_count))
}

/// The kustomization files of `base/` (directory, resources): `base/` itself, and for each
/// `kots.io/v1beta1` HelmChart, as KOTS lays a chart out, `charts/<directory>/` with a sub-base per
/// subchart (`charts/<alias>/`) and per `crds/` directory, each listed by the nearest kustomization
/// above it.
///
/// A `useHelmInstall: true` chart's kustomizations are listed by none: neither `base/` nor the
/// chart lists its subcharts or `crds/`, since each is built apart into the chart that
/// `helm upgrade -i` installs.
fn kustomizations(fetched: &BaseFetched, resources: Vec<String>) -> Vec<(String, Vec<String>)> {
    let charts: Vec<String> = fetched
        .helm_charts
        .iter()
        .filter(|chart| chart.api_version == "kots.io/v1beta1" && !chart.excluded)
        .map(|chart| format!("charts/{}", chart.directory))
        .collect();
    let helm_install: Vec<String> = helm_install_directories(fetched);
    let stands_apart = |name: &str| {
        helm_install
            .iter()
            .any(|chart| name == chart || name.starts_with(&format!("{chart}/")))
    };
    let mut directories: BTreeMap<String, Vec<String>> = BTreeMap::new();
    directories.insert(String::new(), Vec::new());
    for resource in resources {
        let sub_base = charts.iter().find_map(|chart| {
            let inside = resource.strip_prefix(chart.as_str())?.strip_prefix('/')?;
            let sub_base = windlass_helm::layout::sub_base_of(inside)?;
            Some(if sub_base.is_empty() {
                chart.clone()
            } else {
                format!("{chart}/{sub_base}")
            })
        });
        match sub_base {
            Some(directory) => {
                let relative = resource[directory.len() + 1..].to_string();
                directories.entry(directory).or_default().push(relative);
            }
            None => directories.entry(String::new()).or_default().push(resource),
        }
    }
    // Every chart directory has a kustomization, even with no file of its own.
    for chart in &charts {
        if directories
            .keys()
            .any(|directory| directory.starts_with(&format!("{chart}/")))
        {
            directories.entry(chart.clone()).or_default();
        }
    }
    let names: Vec<String> = directories.keys().cloned().collect();
    for name in names
        .iter()
        .filter(|name| !name.is_empty() && !stands_apart(name))
    {
        let parent = names
            .iter()
            .filter(|other| {
                *other != name && (other.is_empty() || name.starts_with(&format!("{other}/")))
            })
            .max_by_key(|other| other.len())
            .cloned()
            .unwrap_or_default();
        let relative = if parent.is_empty() {
            name.clone()
        } else {
            name[parent.len() + 1..].to_string()
        };
        directories.entry(parent).or_default().push(relative);
    }
    directories.into_iter().collect()
}

/// `charts/<directory>` of every `useHelmInstall: true` HelmChart.
fn helm_install_directories(fetched: &BaseFetched) -> Vec<String> {
    fetched
        .helm_charts
        .iter()
        .filter(|chart| {
            chart.api_version == "kots.io/v1beta1" && chart.use_helm_install && !chart.excluded
        })
        .map(|chart| format!("charts/{}", chart.directory))
        .collect()
}

/// The `useHelmInstall: true` HelmCharts and their kustomization directories among `base_files`
/// (paths relative to `base/`).
pub(crate) fn helm_install_bases<'a>(
    fetched: &BaseFetched,
    base_files: impl IntoIterator<Item = &'a str>,
) -> Vec<HelmInstallBase> {
    let base_files: Vec<&str> = base_files.into_iter().collect();
    fetched
        .helm_charts
        .iter()
        .filter(|chart| {
            chart.api_version == "kots.io/v1beta1" && chart.use_helm_install && !chart.excluded
        })
        .map(|chart| {
            let top = format!("charts/{}", chart.directory);
            let mut bases: Vec<String> = base_files
                .iter()
                .filter_map(|file| {
                    let directory = file.strip_suffix("/kustomization.yaml")?;
                    (directory == top || directory.starts_with(&format!("{top}/")))
                        .then(|| directory.to_string())
                })
                .collect();
            bases.sort();
            HelmInstallBase {
                name: chart.name.clone(),
                directory: chart.directory.clone(),
                release_name: chart.release_name.clone(),
                namespace: chart.namespace.clone(),
                weight: chart.weight,
                chart_name: chart.chart_name.clone(),
                chart_version: chart.chart_version.clone(),
                helm_upgrade_flags: chart.helm_upgrade_flags.clone(),
                helm_upgrade_flags_fingerprint: chart.helm_upgrade_flags_fingerprint.clone(),
                holds_password: chart.holds_password,
                bases,
            }
        })
        .collect()
}

/// Writes `helm/<release>/` for every `kots.io/v1beta2` HelmChart, as KOTS does: the chart
/// archive as shipped (`<chart>-<version>.tgz`) and the merged `values.yaml`, for `helm upgrade -i`.
/// Nothing is written when the release has no such chart. The values of a chart holding a
/// password value (among `bodies` by fingerprint, from the text `fetch_base` kept in memory) are
/// written 0600 and listed by fingerprint.
fn write_helm_tree(
    fetched: &BaseFetched,
    out: &OutputDir,
    blobs: &BlobStore,
    bodies: &Bodies,
) -> Result<Vec<WrittenFile>, StageError> {
    let failure = |error: &dyn std::fmt::Display| StageError::permanent(error.to_string());
    let charts: Vec<_> = fetched
        .helm_charts
        .iter()
        .filter(|chart| chart.installed_as_shipped())
        .collect();
    if charts.is_empty() {
        return Ok(Vec::new());
    }
    let tree = out.replace_tree("helm").map_err(output_failure)?;
    let mut written = Vec::new();
    for chart in charts {
        let archive = fetched
            .files
            .iter()
            .find(|file| Some(&file.path) == chart.archive.as_ref())
            .and_then(|file| file.blob.as_deref())
            .ok_or_else(|| {
                StageError::permanent(format!(
                    "HelmChart {} ({}): its archive {} is not among the recorded release files",
                    chart.name,
                    chart.file,
                    chart.archive.as_deref().unwrap_or("(none)")
                ))
            })?;
        let archive_name = format!(
            "{}/{}-{}.tgz",
            chart.directory, chart.chart_name, chart.chart_version
        );
        tree.write(&archive_name, bodies.get(archive)?, 0o644)
            .map_err(output_failure)?;
        written.push(WrittenFile {
            path: format!("helm/{archive_name}"),
            blob: Some(archive.to_string()),
            fingerprint: None,
        });
        let values_name = format!("{}/values.yaml", chart.directory);
        if let Some(fingerprint) = &chart.values_fingerprint {
            tree.write(&values_name, bodies.get(fingerprint)?, 0o600)
                .map_err(output_failure)?;
            written.push(WrittenFile {
                path: format!("helm/{values_name}"),
                blob: None,
                fingerprint: Some(fingerprint.clone()),
            });
            continue;
        }
        let values = crate::helm_charts::values_yaml(chart.values.as_ref())
            .map_err(|error| failure(&error))?;
        let values_blob = blobs
            .put(values.as_bytes())
            .map_err(|error| failure(&error))?;
        tree.write(&values_name, values.as_bytes(), 0o644)
            .map_err(output_failure)?;
        written.push(WrittenFile {
            path: format!("helm/{values_name}"),
            blob: Some(values_blob.to_string()),
            fingerprint: None,
        });
    }
    tree.commit().map_err(output_failure)?;
    Ok(written)
}

/// A path refused for safety is the release's fault; a path written twice (a naming bug) or an
/// I/O error is not.
fn output_failure(error: OutputError) -> StageError {
    match error {
        OutputError::UnsafePath { .. } => StageError::invalid_input(error.to_string()),
        OutputError::AlreadyWritten { .. } | OutputError::Io { .. } => {
            StageError::permanent(error.to_string())
        }
    }
}

fn split_extension(path: &str) -> (&str, &str) {
    for extension in [".yaml", ".yml"] {
        if let Some(stem) = path.strip_suffix(extension) {
            return (stem, extension);
        }
    }
    (path, "")
}

fn write(
    source: &ReleaseBlobs,
    out: &OutputDir,
    blobs: &BlobStore,
    texts: &CredentialTexts,
) -> Result<StageOutput, StageError> {
    let fetched = source.fetched;
    let failure = |error: &dyn std::fmt::Display| StageError::permanent(error.to_string());
    // A file of one document and that document have the same bytes, so the same blob: each blob
    // is read once.
    let mut seen = std::collections::HashSet::new();
    let wanted: Vec<&str> = fetched
        .files
        .iter()
        .filter_map(|file| file.blob.as_deref())
        .chain(
            fetched
                .documents
                .iter()
                .filter_map(|document| document.blob.as_deref()),
        )
        .chain(effective_values(fetched).and_then(|record| record.blob.as_deref()))
        .filter(|hex| seen.insert(*hex))
        .collect();
    let ids = wanted
        .iter()
        .map(|hex| BlobId::parse(hex))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| failure(&error))?;
    let mut bodies = Bodies(
        wanted
            .iter()
            .map(|hex| hex.to_string())
            .zip(source.read(blobs, &ids)?)
            .collect(),
    );
    // The texts holding password values, from this process's memory.
    for document in &fetched.documents {
        let Some(fingerprint) = &document.fingerprint else {
            continue;
        };
        let text = texts
            .get(fingerprint)
            .ok_or_else(|| text_not_in_memory(source.recorded_by, &document.file))?;
        bodies
            .0
            .insert(fingerprint.clone(), text.as_bytes().to_vec());
    }
    // The effective ConfigValues, when they hold a password value.
    if let Some(fingerprint) =
        effective_values(fetched).and_then(|record| record.fingerprint.as_ref())
    {
        let text = texts
            .get(fingerprint)
            .ok_or_else(|| text_not_in_memory(source.recorded_by, EFFECTIVE_CONFIG_VALUES_FILE))?;
        bodies
            .0
            .insert(fingerprint.clone(), text.as_bytes().to_vec());
    }
    // And the values of the kots.io/v1beta2 charts holding one, before anything is written.
    for chart in &fetched.helm_charts {
        if let Some(fingerprint) = &chart.values_fingerprint {
            let values = texts
                .get(fingerprint)
                .ok_or_else(|| text_not_in_memory(source.recorded_by, &chart.file))?;
            bodies
                .0
                .insert(fingerprint.clone(), values.as_bytes().to_vec());
        }
    }
    // Each tree is written afresh beside the old one and swapped in whole on commit. Creating
    // files is most of this stage's time, so the two trees are written on two threads.
    let (upstream_written, base_written) = std::thread::scope(|scope| {
        let upstream = scope.spawn(|| write_upstream(fetched, out, &bodies));
        let base = write_base_tree(fetched, out, blobs, &bodies);
        let upstream = upstream
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (upstream, base)
    });
    let mut written = upstream_written?;
    let (base_written, resource_count) = base_written?;
    written.extend(base_written);
    written.extend(write_helm_tree(fetched, out, blobs, &bodies)?);
    blobs.sync().map_err(|error| failure(&error))?;
    written.sort_by(|a, b| a.path.cmp(&b.path));
    let summary = format!(
        "{resource_count} base resources, {} files written to {}",
        written.len(),
        out.root().display()
    );
    let helm_install_charts = helm_install_bases(
        fetched,
        written
            .iter()
            .filter_map(|file| file.path.strip_prefix("base/")),
    );
    let fact = Fact::of(&BaseWritten {
        out_dir: out.root().display().to_string(),
        files: written,
        helm_install_charts,
    })?;
    Ok(StageOutput {
        facts: vec![fact],
        summary,
    })
}
