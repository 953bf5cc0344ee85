//! The `render_midstream` stage: writes the KOTS layout of section 6 — the midstream overlay
//! (`kustomization.yaml` with the planned `images:` entries, `pullsecrets.yaml` with one
//! strategic-merge patch per workload that has images), the user-owned downstream overlay (written
//! only if absent) — and builds `overlays/downstreams/this-cluster` into
//! `rendered/this-cluster/<name>-<kind>.yaml`. The build is windlass's own
//! ([`windlass_kustomize::build`]), and takes `base/` from the recorded release in memory
//! ([`windlass_kustomize::PlannedTree`], laid out by `write_base`'s own function), never from the
//! disk, so it runs while `write_base` is still writing `base/`; when the downstream overlay uses kustomize features the native
//! build does not implement, or a patched workload has a list kustomize merges by key with an
//! element lacking or repeating its key (which kustomize's strategic merge drops, merges or
//! repeats), the configured external kustomize runs instead and the summary and
//! `MidstreamRendered` say so. Rendered secrets are written 0600 and recorded by fingerprint only.
//! When an install resumes after this stage completed, [`Stage::restore`] checks the midstream
//! overlay and `rendered/this-cluster/` against what was recorded and renders them again if a file
//! is missing or changed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use windlass_engine::{
    BuildContext, Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};
use windlass_state::{BlobId, StoredEvent};

use crate::credential_texts::{CredentialTexts, fetched_by, text_not_in_memory};
use crate::events::{
    BaseFetched, BaseWritten, Builder, HelmInstallBase, ImagesProbed, MidstreamRendered,
    OverridesPlanned, RenderedFile, RenderedHelmChart,
};
use crate::helm_install::{
    CHART_MIDSTREAMS, base_of_file, chart_bases, chart_yaml, check_release_names, escape_braces,
    images_of,
};
use crate::output::{FileRead, OutputDir, TreeWriter, fit_file_name};
use crate::recorded_blobs::ReleaseBlobs;
use crate::write_base::{BaseSource, base_layout, helm_install_bases};
use windlass_kustomize::{BuildError, PlannedTree, build_cached};
use windlass_manifest::documents::ParsedCache;
use windlass_manifest::images::discovery::PodSpec;

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        "render_midstream",
        "write the midstream and downstream overlays and build rendered/this-cluster",
        |config| {
            let config: RenderMidstreamConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("render_midstream: {error}"))?;
            Ok(Box::new(config))
        },
    )
}

/// Configuration of `render_midstream`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderMidstreamConfig {
    /// The external build command for overlays the native build cannot do: a program and its
    /// leading arguments, the overlay directory is appended (default `kubectl kustomize`).
    pub external_kustomize: Vec<String>,
}

impl Default for RenderMidstreamConfig {
    fn default() -> RenderMidstreamConfig {
        RenderMidstreamConfig {
            external_kustomize: vec!["kubectl".into(), "kustomize".into()],
        }
    }
}

#[async_trait::async_trait]
impl StageConfig for RenderMidstreamConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        if self.external_kustomize.is_empty() || self.external_kustomize[0].is_empty() {
            return Err(vec!["external_kustomize needs a program".into()]);
        }
        Ok(())
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(RenderMidstream {
            config: self.clone(),
        }))
    }
}

/// The runtime stage.
pub struct RenderMidstream {
    config: RenderMidstreamConfig,
}

/// The fingerprint purpose of rendered secret files (`RenderedFile::fingerprint`): apply and
/// replay check the files against it.
pub const RENDERED_SECRET_PURPOSE: &str = "rendered-secret";

const MIDSTREAM: &str = "overlays/midstream";
const DOWNSTREAM: &str = "overlays/downstreams/this-cluster";
const RENDERED: &str = "rendered/this-cluster";

/// One workload that gets the pull secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Workload {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
    /// Where its pod spec sits, as recorded at discovery.
    pod_spec: PodSpec,
}

/// The workloads with images among the documents whose files `keep` accepts.
fn workloads(probed: &ImagesProbed, keep: &dyn Fn(&str) -> bool) -> Vec<Workload> {
    // Sorted and made unique by borrowed fields (in `Workload`'s field order, so in its order),
    // copied once each: a big release has tens of thousands of uses.
    let mut found = BTreeSet::new();
    for image in &probed.images {
        for image_use in image
            .uses
            .iter()
            .filter(|image_use| !image_use.runtime_only && keep(&image_use.file))
        {
            let (Some(pod_spec), Some(name)) = (&image_use.pod_spec, &image_use.name) else {
                continue;
            };
            found.insert((
                image_use.api_version.as_str(),
                image_use.kind.as_str(),
                image_use.namespace.as_deref(),
                name.as_str(),
                *pod_spec,
            ));
        }
    }
    found
        .into_iter()
        .map(|(api_version, kind, namespace, name, pod_spec)| Workload {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            pod_spec,
        })
        .collect()
}

fn pull_secret_patch(workload: &Workload, secret: &str) -> Value {
    // Built field by field: `json!` around a `Value` serialises it again, and this runs once per
    // workload (ten thousand times on a big release).
    let object = |entries: Vec<(&str, Value)>| {
        Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect(),
        )
    };
    let mut metadata = vec![("name", Value::String(workload.name.clone()))];
    if let Some(namespace) = &workload.namespace {
        metadata.push(("namespace", Value::String(namespace.clone())));
    }
    let secret_ref = object(vec![("name", Value::String(secret.to_string()))]);
    let mut body = object(vec![("imagePullSecrets", Value::Array(vec![secret_ref]))]);
    let keys = workload.pod_spec.keys();
    for &key in keys[1..].iter().rev() {
        body = object(vec![(key, body)]);
    }
    object(vec![
        ("apiVersion", Value::String(workload.api_version.clone())),
        ("kind", Value::String(workload.kind.clone())),
        ("metadata", object(metadata)),
        (keys[0], body),
    ])
}

fn yaml(value: &impl Serialize) -> Result<String, StageError> {
    serde_saphyr::to_string(value).map_err(|error| StageError::permanent(error.to_string()))
}

/// [`yaml`] for a document, through the faster writer of the common shape.
fn document_yaml(value: &Value) -> Result<String, StageError> {
    windlass_manifest::yaml_text::to_yaml(value)
        .map_err(|error| StageError::permanent(error.to_string()))
}

/// `values` as one multi-document text, each document serialised on any core.
fn multi_document(values: &[Value]) -> Result<String, StageError> {
    let mut text = String::new();
    for document in windlass_manifest::parallel::parallel_map(values, 64, document_yaml) {
        text.push_str("---\n");
        text.push_str(&document?);
    }
    Ok(text)
}

fn midstream_kustomization(planned: &OverridesPlanned, has_patches: bool) -> Value {
    let mut kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "bases": ["../../base"],
        "resources": ["secret.yaml"],
    });
    if !planned.plan.entries.is_empty() {
        kustomization["images"] = Value::Array(
            planned
                .plan
                .entries
                .iter()
                .map(|entry| json!({ "name": entry.name, "newName": entry.new_name }))
                .collect(),
        );
    }
    if has_patches {
        kustomization["patches"] = json!([{ "path": "pullsecrets.yaml" }]);
    }
    kustomization
}

/// `<name>-<kind>.yaml`, with `-<namespace>` when two objects would share a name, `/` and `\`
/// replaced by `_`, and shortened with a hash by [`fit_file_name`] when longer than a file system
/// takes (a Kubernetes name may have 253 characters).
fn rendered_names(objects: &[Value]) -> Vec<String> {
    // Each object's stem is built once, on every core (ten thousand on a big release).
    let stems = windlass_manifest::parallel::parallel_map(objects, 256, |object: &Value| {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("unnamed");
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object");
        format!("{name}-{}", kind.to_lowercase())
    });
    let mut counts: HashMap<&str, usize> = HashMap::with_capacity(stems.len());
    for stem in &stems {
        *counts.entry(stem.as_str()).or_insert(0) += 1;
    }
    let mut taken: HashSet<String> = HashSet::with_capacity(stems.len());
    objects
        .iter()
        .zip(&stems)
        .map(|(object, stem)| {
            // Names come from object metadata: never let one leave the directory.
            let file_name =
                |name: String| fit_file_name(&name.replace(['/', '\\'], "_")).into_owned();
            let mut name = file_name(if counts[stem.as_str()] > 1 {
                let namespace = object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                format!("{stem}-{namespace}.yaml")
            } else {
                format!("{stem}.yaml")
            });
            let mut suffix = 1;
            while !taken.insert(name.clone()) {
                suffix += 1;
                name = file_name(format!("{stem}-{suffix}.yaml"));
            }
            name
        })
        .collect()
}

/// Files by path relative to their directory, with their bytes.
type Files = Vec<(String, Arc<[u8]>)>;

/// The files `base/` holds once `write_base` is done, from the recorded release (a document
/// holding a password value from the text `fetch_base` kept in memory): the native build takes
/// `base/` from here, so it need not wait for the files.
fn planned_base(context: &StageContext, fetched: &BaseFetched) -> Result<Files, StageError> {
    let layout = base_layout(fetched)?;
    let ids = layout
        .iter()
        .filter_map(|(_, source)| match source {
            BaseSource::Document(document) => document.blob.as_deref().map(BlobId::parse),
            BaseSource::Kustomization(_) => None,
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| StageError::permanent(error.to_string()))?;
    let source = ReleaseBlobs {
        fetched,
        release_dir: &context.request.release_dir,
        recorded_by: fetched_by(context),
    };
    let mut bodies = source.read(&context.blobs, &ids)?.into_iter();
    let texts = context.memo.get::<CredentialTexts>();
    layout
        .into_iter()
        .map(|(path, source)| {
            let bytes: Arc<[u8]> = match source {
                BaseSource::Document(document) => match &document.fingerprint {
                    Some(fingerprint) if document.blob.is_none() => {
                        let text = texts.get(fingerprint).ok_or_else(|| {
                            text_not_in_memory(fetched_by(context), &document.file)
                        })?;
                        Arc::from(text.as_bytes())
                    }
                    _ => Arc::from(bodies.next().expect("one body per id")),
                },
                BaseSource::Kustomization(text) => Arc::from(text.into_bytes()),
            };
            Ok((path, bytes))
        })
        .collect()
}

/// What a build of the output directory reads from memory: `planned` (the planned `base/`, if
/// it is) and, when the output directory is kept in memory, `overlays/` (and `base/` when it is
/// not planned) as written there so far.
fn readable_tree<'a>(
    out: &OutputDir,
    planned: &'a PlannedTree,
    base_planned: bool,
) -> std::borrow::Cow<'a, PlannedTree> {
    let Some(overlays) = out.memory_files_under("overlays") else {
        return std::borrow::Cow::Borrowed(planned);
    };
    let mut tree = planned.clone();
    tree.add_directory(out.root().join("overlays"), overlays);
    if !base_planned && let Some(base) = out.memory_files_under("base") {
        tree.add_directory(out.root().join("base"), base);
    }
    std::borrow::Cow::Owned(tree)
}

/// Whether rendered `object` holds a credential: a Secret, or one of `credential_objects` (the
/// (kind, name) of the objects of documents holding a password value).
fn holds_credential(object: &Value, credential_objects: &HashSet<(String, String)>) -> bool {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    kind == "Secret" || credential_objects.contains(&(kind.to_string(), name.to_string()))
}

/// The mode of the files of the external build's scratch copy.
const SCRATCH_MODE: u32 = 0o600;

/// [`external_build`] of `overlay` (relative to the output directory, inside `overlays/`) when
/// `base/` is only planned (`write_base` may still be writing it) or the output directory is kept
/// in memory: runs the external kustomize on a copy of `overlays/` beside a `base/` written from
/// the plan (or copied with the overlays from memory), in a scratch directory of the output
/// directory on the disk that is removed afterwards.
fn external_build_on_copy(
    command: &[String],
    out: &OutputDir,
    base: Option<&Files>,
    overlay: &str,
) -> Result<Vec<Value>, StageError> {
    let failure = |error: &dyn std::fmt::Display| StageError::permanent(error.to_string());
    let scratch_root = out.root().join(".windlass-external-build");
    let remove = || match std::fs::remove_dir_all(&scratch_root) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(failure(&format!("{}: {error}", scratch_root.display())))
        }
        _ => Ok(()),
    };
    remove()?;
    let scratch = OutputDir::create(&scratch_root).map_err(|error| failure(&error))?;
    // The copy holds every base/ file, those holding a password value or the pull secret's
    // credential among them: only this user may read it, whatever each file's mode in out/.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&scratch_root, std::fs::Permissions::from_mode(0o700))
            .map_err(|error| failure(&format!("{}: {error}", scratch_root.display())))?;
    }
    for (path, bytes) in base.into_iter().flatten() {
        scratch
            .write(&format!("base/{path}"), bytes, SCRATCH_MODE)
            .map_err(|error| failure(&error))?;
    }
    if out.is_in_memory() {
        // `base/` too when it is not planned (then it was written, in memory, before).
        let copied = if base.is_some() {
            &["overlays"][..]
        } else {
            &["overlays", "base"][..]
        };
        for directory in copied {
            for (path, bytes) in out.memory_files_under(directory).into_iter().flatten() {
                scratch
                    .write(&format!("{directory}/{path}"), &bytes, SCRATCH_MODE)
                    .map_err(|error| failure(&error))?;
            }
        }
    } else {
        for entry in walkdir::WalkDir::new(out.root().join("overlays")) {
            let entry = entry.map_err(|error| failure(&error))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(out.root())
                .map_err(|error| failure(&error))?;
            let bytes =
                windlass_files::read_regular_file(entry.path(), windlass_kustomize::MAX_FILE_BYTES)
                    .map_err(|error| failure(&error))?;
            scratch
                .write(&relative.to_string_lossy(), &bytes, SCRATCH_MODE)
                .map_err(|error| failure(&error))?;
        }
    }
    let built = external_build(command, &scratch_root.join(overlay));
    remove()?;
    built
}

fn external_build(command: &[String], overlay: &Path) -> Result<Vec<Value>, StageError> {
    let output = Command::new(&command[0])
        .args(&command[1..])
        .arg(overlay)
        .output()
        .map_err(|error| {
            StageError::permanent(format!(
                "the downstream overlay needs the external kustomize, and `{}` could not run: {error}",
                command.join(" ")
            ))
        })?;
    if !output.status.success() {
        return Err(StageError::invalid_input(format!(
            "`{} {}` failed: {}",
            command.join(" "),
            overlay.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let documents =
        windlass_manifest::documents::parse_documents("kustomize output", text.as_bytes())
            .map_err(|error| StageError::permanent(error.to_string()))?;
    Ok(documents
        .into_iter()
        .map(|document| std::sync::Arc::unwrap_or_clone(document.value))
        .collect())
}

/// The (kind, name) of every object of a `base/` document holding a password value (recorded
/// by fingerprint in `BaseFetched`, or listed so in `BaseWritten` when this stage reads that
/// instead): their rendered files are recorded by fingerprint and written 0600, like secrets.
fn credential_objects(
    context: &StageContext,
    out: &OutputDir,
) -> Result<HashSet<(String, String)>, StageError> {
    let mut objects = HashSet::new();
    if fetched_by(context).is_some() {
        let fetched = context.input_shared::<BaseFetched>()?;
        for document in fetched
            .documents
            .iter()
            .filter(|document| document.fingerprint.is_some())
        {
            objects.insert((
                document.kind.clone(),
                document.name.clone().unwrap_or_default(),
            ));
        }
        return Ok(objects);
    }
    // A pipeline where this stage reads `write_base` instead: from the files it wrote.
    let Ok(written) = context.input_shared::<crate::events::BaseWritten>() else {
        return Ok(objects);
    };
    for file in written
        .files
        .iter()
        .filter(|file| file.fingerprint.is_some())
    {
        let bytes = match out
            .read_recorded(&file.path, file.blob.as_deref(), &context.blobs)
            .map_err(|error| StageError::permanent(error.to_string()))?
        {
            FileRead::Bytes(bytes) => bytes,
            FileRead::Missing => {
                return Err(StageError::permanent(format!(
                    "{} is missing from the output directory",
                    file.path
                )));
            }
            FileRead::Larger => {
                return Err(StageError::permanent(format!(
                    "{} in the output directory is larger than write_base recorded it",
                    file.path
                )));
            }
        };
        let documents = windlass_manifest::documents::parse_documents(&file.path, &bytes)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        for document in documents {
            objects.insert((document.kind, document.name.unwrap_or_default()));
        }
    }
    Ok(objects)
}

/// Writes each built object to `rendered/this-cluster/<name>-<kind>.yaml` (secrets 0600, recorded
/// by fingerprint only; everything else stored as a blob), makes the blobs durable and commits the
/// tree. The objects are serialised on every core first; then the blob store's commit, which
/// mostly waits for the disk, runs beside the two threads creating the files, which is most of
/// the time for big releases.
fn write_rendered(
    objects: &[Value],
    extra: Vec<(String, String, bool)>,
    rendered: TreeWriter,
    context: &StageContext,
    credential_objects: &HashSet<(String, String)>,
) -> Result<Vec<RenderedFile>, StageError> {
    const WRITERS: usize = 2;
    let write_failure =
        |error: crate::output::OutputError| StageError::permanent(error.to_string());
    let blob_failure = |error: windlass_state::BlobError| StageError::permanent(error.to_string());
    let texts = windlass_manifest::parallel::parallel_map(objects, 64, document_yaml);
    let mut rendered_files = Vec::with_capacity(objects.len() + extra.len());
    let mut files = Vec::with_capacity(objects.len() + extra.len());
    let mut all = Vec::with_capacity(objects.len() + extra.len());
    for ((object, name), text) in objects.iter().zip(rendered_names(objects)).zip(texts) {
        // Secrets, and the objects of base documents holding a password value.
        let is_secret = holds_credential(object, credential_objects);
        all.push((name, text?, is_secret));
    }
    all.extend(extra);
    for (name, text, is_secret) in all {
        let path = format!("{RENDERED}/{name}");
        let mode = if is_secret {
            rendered_files.push(RenderedFile {
                path,
                blob: None,
                fingerprint: Some(
                    context
                        .fingerprint_key
                        .fingerprint_bytes(RENDERED_SECRET_PURPOSE, text.as_bytes()),
                ),
            });
            0o600
        } else {
            let blob = context.blobs.put(text.as_bytes()).map_err(blob_failure)?;
            rendered_files.push(RenderedFile {
                path,
                blob: Some(blob.to_string()),
                fingerprint: None,
            });
            0o644
        };
        files.push((name, text, mode));
    }
    let chunk = files.len().div_ceil(WRITERS).max(1);
    std::thread::scope(|scope| {
        let tree = &rendered;
        let blobs_synced = scope.spawn(|| context.blobs.sync().map_err(blob_failure));
        let writers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<(), StageError> {
                    for (name, text, mode) in part {
                        tree.write(name, text.as_bytes(), *mode)
                            .map_err(write_failure)?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut outcome = Ok(());
        for writer in writers {
            let written = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            outcome = outcome.and(written);
        }
        let synced = blobs_synced
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        outcome.and(synced)
    })?;
    rendered.commit().map_err(write_failure)?;
    Ok(rendered_files)
}

/// What rendering a `useHelmInstall: true` chart reads.
struct ChartInputs<'a> {
    probed: &'a ImagesProbed,
    planned: &'a OverridesPlanned,
    docker_config: &'a str,
    app_namespace: &'a str,
    out: &'a OutputDir,
    parsed_cache: &'a ParsedCache,
    planned_tree: &'a PlannedTree,
    /// `base/` as planned, when it is (see [`planned_base`]).
    base: Option<&'a Files>,
    /// The objects of base documents holding a password value (see [`credential_objects`]).
    credential_objects: &'a HashSet<(String, String)>,
}

/// A `useHelmInstall: true` chart rendered: its record (files still empty) and its files
/// relative to `rendered/this-cluster/` (path, text, whether it holds a secret).
struct ChartRendered {
    record: RenderedHelmChart,
    files: Vec<(String, String, bool)>,
}

impl RenderMidstream {
    /// Writes the midstream of every base of `chart` (see [`crate::helm_install`]) and builds
    /// each into the files of the chart apply installs.
    fn chart_midstreams(
        &self,
        chart: &HelmInstallBase,
        inputs: &ChartInputs<'_>,
        write_recorded: &mut dyn FnMut(String, String, bool) -> Result<(), StageError>,
    ) -> Result<ChartRendered, StageError> {
        let bases = chart_bases(chart, &inputs.planned.app_slug);
        let namespace = chart.namespace.as_deref().unwrap_or(inputs.app_namespace);
        let mut files = Vec::new();
        let mut patched_workloads = Vec::new();
        let mut pull_secrets = Vec::new();
        for base in &bases {
            let in_base = |file: &str| {
                base_of_file(file, chart, &bases).is_some_and(|found| found.base == base.base)
            };
            let midstream = base.midstream();
            let base_workloads = workloads(inputs.probed, &in_base);
            let patches: Vec<Value> = match &base.secret {
                Some(secret) => base_workloads
                    .iter()
                    .map(|workload| pull_secret_patch(workload, secret))
                    .collect(),
                None => Vec::new(),
            };
            if !patches.is_empty() {
                let text = multi_document(&patches)?;
                inputs.parsed_cache.remember_written(&text, patches.clone());
                write_recorded(format!("{midstream}/pullsecrets.yaml"), text, false)?;
                patched_workloads.extend(base_workloads.iter().map(|workload| {
                    format!(
                        "{}/{}/{}",
                        workload.kind,
                        workload.namespace.as_deref().unwrap_or(""),
                        workload.name
                    )
                }));
            }
            if let Some(secret) = &base.secret {
                let object = crate::secrets::pull_secret(secret, namespace, inputs.docker_config);
                write_recorded(
                    format!("{midstream}/secret.yaml"),
                    format!(
                        "---
{}",
                        yaml(&object)?
                    ),
                    true,
                )?;
                pull_secrets.push(secret.clone());
            }
            let images = images_of(inputs.probed, inputs.planned, in_base);
            write_recorded(
                format!("{midstream}/kustomization.yaml"),
                yaml(&crate::helm_install::kustomization(
                    base,
                    images,
                    !patches.is_empty(),
                ))?,
                false,
            )?;
            let overlay = inputs.out.root().join(&midstream);
            let readable = readable_tree(inputs.out, inputs.planned_tree, inputs.base.is_some());
            let objects = match build_cached(&overlay, inputs.parsed_cache, &readable) {
                Ok(objects) => objects,
                Err(BuildError::Unsupported { .. })
                    if inputs.base.is_none() && !inputs.out.is_in_memory() =>
                {
                    external_build(&self.config.external_kustomize, &overlay)?
                }
                Err(BuildError::Unsupported { .. }) => external_build_on_copy(
                    &self.config.external_kustomize,
                    inputs.out,
                    inputs.base,
                    &midstream,
                )?,
                Err(error) => return Err(StageError::invalid_input(error.to_string())),
            };
            let directory = base.rendered_dir();
            for (object, name) in objects.iter().zip(rendered_names(&objects)) {
                // Secrets, and the objects of a chart's documents holding a password value.
                let is_secret = holds_credential(object, inputs.credential_objects);
                files.push((
                    format!("{directory}/{name}"),
                    escape_braces(&yaml(object)?),
                    is_secret,
                ));
            }
            if !base.is_crds {
                files.push((
                    format!("{}/Chart.yaml", base.base),
                    yaml(&chart_yaml(chart, base))?,
                    false,
                ));
            }
        }
        if bases.is_empty() {
            // helm rendered nothing for it: still a chart helm can install (an empty release).
            let top = crate::helm_install::ChartBase {
                base: format!("charts/{}", chart.directory),
                is_crds: false,
                secret: None,
            };
            files.push((
                format!("{}/Chart.yaml", top.base),
                yaml(&chart_yaml(chart, &top))?,
                false,
            ));
        }
        Ok(ChartRendered {
            record: RenderedHelmChart {
                name: chart.name.clone(),
                release_name: chart.release_name.clone(),
                namespace: chart.namespace.clone(),
                weight: chart.weight,
                chart_name: chart.chart_name.clone(),
                chart_version: chart.chart_version.clone(),
                helm_upgrade_flags: chart.helm_upgrade_flags.clone(),
                helm_upgrade_flags_fingerprint: chart.helm_upgrade_flags_fingerprint.clone(),
                holds_password: chart.holds_password,
                chart_dir: format!("{RENDERED}/charts/{}", chart.directory),
                pull_secrets,
                patched_workloads,
                files: Vec::new(),
            },
            files,
        })
    }
}

#[async_trait::async_trait]
impl Stage for RenderMidstream {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let clock = std::time::Instant::now();
        let probed: ImagesProbed = context.input::<ImagesProbed>()?;
        let planned: OverridesPlanned = context.input::<OverridesPlanned>()?;
        let secret_name = crate::secrets::app_pull_secret_name(&planned.app_slug);
        let out = OutputDir::for_stage(context)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        let write_failure =
            |error: crate::output::OutputError| StageError::permanent(error.to_string());
        let blobs = context.blobs.clone();
        let mut overlay_files = Vec::new();
        let fingerprint_key = context.fingerprint_key.clone();
        let mut write_recorded =
            |path: String, text: String, secret: bool| -> Result<(), StageError> {
                if secret {
                    out.write(&path, text.as_bytes(), 0o600)
                        .map_err(write_failure)?;
                    overlay_files.push(RenderedFile {
                        path,
                        blob: None,
                        fingerprint: Some(
                            fingerprint_key
                                .fingerprint_bytes(RENDERED_SECRET_PURPOSE, text.as_bytes()),
                        ),
                    });
                    return Ok(());
                }
                let blob = blobs
                    .put(text.as_bytes())
                    .map_err(|error| StageError::permanent(error.to_string()))?;
                out.write(&path, text.as_bytes(), 0o644)
                    .map_err(write_failure)?;
                overlay_files.push(RenderedFile {
                    path,
                    blob: Some(blob.to_string()),
                    fingerprint: None,
                });
                Ok(())
            };

        // With the recorded release among the inputs, `base/` comes from it; a pipeline recorded
        // when this stage ran after `write_base` instead reads `base/` from the disk.
        let fetched = match fetched_by(context) {
            Some(_) => Some(context.input_shared::<BaseFetched>()?),
            None => None,
        };
        let base = match &fetched {
            Some(fetched) => Some(planned_base(context, fetched)?),
            None => None,
        };
        let mut planned_tree = PlannedTree::default();
        if let Some(base) = &base {
            planned_tree.add_directory(out.root().join("base"), base.iter().cloned());
        }
        let helm_install: Vec<HelmInstallBase> = match (&fetched, &base) {
            (Some(fetched), Some(base)) => {
                helm_install_bases(fetched, base.iter().map(|(path, _)| path.as_str()))
            }
            _ => context
                .input_shared::<BaseWritten>()?
                .helm_install_charts
                .clone(),
        };
        let helm_install = &helm_install;
        let in_helm_chart = |file: &str| {
            helm_install.iter().any(|chart| {
                file.strip_prefix("charts/")
                    .and_then(|rest| rest.strip_prefix(chart.directory.as_str()))
                    .is_some_and(|rest| rest.starts_with('/'))
            })
        };
        let workloads = workloads(&probed, &|file| !in_helm_chart(file));
        let patches: Vec<Value> =
            windlass_manifest::parallel::parallel_map(&workloads, 256, |workload| {
                pull_secret_patch(workload, &secret_name)
            });
        let has_patches = !patches.is_empty();
        let parsed_cache = context.memo.get::<ParsedCache>();
        if has_patches {
            let text = multi_document(&patches)?;
            // The native build reads this file next: let it take the patches instead of parsing.
            parsed_cache.remember_written(&text, patches);
            write_recorded(format!("{MIDSTREAM}/pullsecrets.yaml"), text, false)?;
        } else {
            out.remove_tree(&format!("{MIDSTREAM}/pullsecrets.yaml"))
                .map_err(write_failure)?;
        }
        write_recorded(
            format!("{MIDSTREAM}/kustomization.yaml"),
            yaml(&midstream_kustomization(&planned, has_patches))?,
            false,
        )?;
        let downstream_kept = out
            .exists(&format!("{DOWNSTREAM}/kustomization.yaml"))
            .map_err(write_failure)?;
        if !downstream_kept {
            write_recorded(
                format!("{DOWNSTREAM}/kustomization.yaml"),
                yaml(&json!({
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "bases": ["../../midstream"],
                }))?,
                false,
            )?;
        }
        out.remove_tree(CHART_MIDSTREAMS).map_err(write_failure)?;
        let credential_objects = credential_objects(context, &out)?;
        let charts = if helm_install.is_empty() {
            Vec::new()
        } else {
            check_release_names(helm_install, &context.request.namespace)?;
            let license = context.request.license.as_ref().ok_or_else(|| {
                StageError::invalid_input(
                    "the useHelmInstall charts' pull secrets are derived from the license: pass --license FILE",
                )
            })?;
            let docker_config = crate::secrets::docker_config_json(
                &license.license_id,
                &[
                    planned.domains.proxy_host.clone(),
                    planned.domains.registry_host.clone(),
                ],
            );
            let mut charts = Vec::with_capacity(helm_install.len());
            for chart in helm_install.iter() {
                charts.push(self.chart_midstreams(
                    chart,
                    &ChartInputs {
                        probed: &probed,
                        planned: &planned,
                        docker_config: &docker_config,
                        app_namespace: &context.request.namespace,
                        out: &out,
                        parsed_cache: &parsed_cache,
                        planned_tree: &planned_tree,
                        base: base.as_ref(),
                        credential_objects: &credential_objects,
                    },
                    &mut write_recorded,
                )?);
            }
            charts
        };

        tracing::debug!(patches = workloads.len(), elapsed = ?clock.elapsed(), "wrote overlays");
        let overlay = out.root().join(DOWNSTREAM);
        let readable = readable_tree(&out, &planned_tree, base.is_some());
        let (objects, builder) = match build_cached(&overlay, &parsed_cache, &readable) {
            Ok(objects) => (objects, Builder::Native),
            Err(BuildError::Unsupported { file, fields }) => {
                let objects = if base.is_none() && !out.is_in_memory() {
                    external_build(&self.config.external_kustomize, &overlay)?
                } else {
                    external_build_on_copy(
                        &self.config.external_kustomize,
                        &out,
                        base.as_ref(),
                        DOWNSTREAM,
                    )?
                };
                // The file is named relative to the output directory, so that the fact is the
                // same wherever the output went (a replay renders elsewhere).
                let file = file.strip_prefix(out.root()).unwrap_or(&file);
                let unsupported = fields
                    .iter()
                    .map(|field| format!("{field} (in {})", file.display()))
                    .collect();
                (
                    objects,
                    Builder::External {
                        command: self.config.external_kustomize.clone(),
                        unsupported,
                    },
                )
            }
            Err(error) => return Err(StageError::invalid_input(error.to_string())),
        };

        tracing::debug!(objects = objects.len(), elapsed = ?clock.elapsed(), "built overlay");
        // Written beside the old tree and swapped in whole, so a failure leaves the old one intact.
        let rendered = out.replace_tree(RENDERED).map_err(write_failure)?;
        let extra: Vec<(String, String, bool)> = charts
            .iter()
            .flat_map(|chart| chart.files.iter().cloned())
            .collect();
        let mut rendered_files =
            write_rendered(&objects, extra, rendered, context, &credential_objects)?;
        let mut chart_files = rendered_files.split_off(objects.len()).into_iter();
        // Ten thousand built objects take a while to free, and nothing waits for it.
        windlass_manifest::parallel::free_apart(objects);
        let helm_charts: Vec<RenderedHelmChart> = charts
            .into_iter()
            .map(|chart| {
                let mut record = chart.record;
                record.files = chart_files.by_ref().take(chart.files.len()).collect();
                record
            })
            .collect();
        tracing::debug!(files = rendered_files.len(), elapsed = ?clock.elapsed(), "wrote rendered files and stored their blobs");
        let mut summary = match &builder {
            Builder::Native => format!(
                "{} objects rendered to {RENDERED} (native build), {} workloads patched",
                rendered_files.len(),
                workloads.len()
            ),
            Builder::External {
                command,
                unsupported,
            } => format!(
                "{} objects rendered to {RENDERED} by `{}` because the overlay uses {}, which the native build does not implement; {} workloads patched",
                rendered_files.len(),
                command.join(" "),
                unsupported.join(", "),
                workloads.len()
            ),
        };
        for chart in &helm_charts {
            summary.push_str(&format!(
                "; HelmChart {} (useHelmInstall): {} files in {}, {} workloads patched, pull secrets [{}], installed by apply with helm upgrade -i {}",
                chart.name,
                chart.files.len(),
                chart.chart_dir,
                chart.patched_workloads.len(),
                chart.pull_secrets.join(", "),
                chart.release_name
            ));
        }
        let fact = Fact::of(&MidstreamRendered {
            overlay_files,
            downstream_kept,
            patched_workloads: workloads
                .iter()
                .map(|workload| {
                    format!(
                        "{}/{}/{}",
                        workload.kind,
                        workload.namespace.as_deref().unwrap_or(""),
                        workload.name
                    )
                })
                .collect(),
            builder,
            rendered_files,
            helm_charts,
        })?;
        Ok(StageOutput {
            facts: vec![fact],
            summary,
        })
    }

    async fn restore(
        &self,
        context: &StageContext,
        recorded: &[StoredEvent],
    ) -> Result<Option<String>, StageError> {
        let recorded: MidstreamRendered =
            windlass_engine::recorded_fact::<MidstreamRendered>(recorded)?;
        let out = OutputDir::for_stage(context)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        // The downstream overlay is the user's: whatever it holds now is what they want.
        let files: Vec<&RenderedFile> = recorded
            .overlay_files
            .iter()
            .filter(|file| !file.path.starts_with(DOWNSTREAM))
            .chain(&recorded.rendered_files)
            .chain(recorded.helm_charts.iter().flat_map(|chart| &chart.files))
            .collect();
        let checked = windlass_manifest::parallel::parallel_map(&files, 64, |file| {
            let bytes = out
                .read_recorded(&file.path, file.blob.as_deref(), &context.blobs)?
                .into_bytes();
            Ok::<bool, crate::output::OutputError>(match (bytes, &file.blob, &file.fingerprint) {
                (Some(bytes), Some(blob), _) => BlobId::of(&bytes).to_string() == *blob,
                (Some(bytes), None, Some(fingerprint)) => {
                    context
                        .fingerprint_key
                        .fingerprint_bytes(RENDERED_SECRET_PURPOSE, &bytes)
                        == *fingerprint
                }
                _ => false,
            })
        });
        let mut damaged = Vec::new();
        for (file, intact) in files.iter().zip(checked) {
            if !intact.map_err(|error| StageError::permanent(error.to_string()))? {
                damaged.push(file.path.as_str());
            }
        }
        let Some(first) = damaged.first() else {
            return Ok(None);
        };
        self.run(context).await?;
        Ok(Some(format!(
            "{} of {} recorded files in {MIDSTREAM}/ and {RENDERED}/ were missing or changed \
             (first: {first}); rendered them again from the recorded facts",
            damaged.len(),
            files.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_nests_the_secret_at_the_pod_spec() {
        let workload = Workload {
            api_version: "batch/v1".into(),
            kind: "CronJob".into(),
            namespace: Some("jobs".into()),
            name: "report".into(),
            pod_spec: PodSpec::JobTemplate,
        };
        assert_eq!(
            pull_secret_patch(&workload, "my-app-registry"),
            json!({
                "apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": "report", "namespace": "jobs"},
                "spec": {"jobTemplate": {"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "my-app-registry"}]}}}}}
            })
        );
    }
}
