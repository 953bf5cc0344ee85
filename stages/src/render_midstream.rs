//! The `render_midstream` stage: writes the KOTS layout of section 6 — the midstream overlay
//! (`kustomization.yaml` with the planned `images:` entries, `pullsecrets.yaml` with one
//! strategic-merge patch per workload that has images), the user-owned downstream overlay (written
//! only if absent) — and builds `overlays/downstreams/this-cluster` into
//! `rendered/this-cluster/<name>-<kind>.yaml`. The build is windlass's own
//! ([`windlass_kustomize::build`]); when the downstream overlay uses kustomize features the native
//! build does not implement, or a patched workload has a list kustomize merges by key with an
//! element lacking or repeating its key (which kustomize's strategic merge drops, merges or
//! repeats), the configured external kustomize runs instead and the summary and
//! `MidstreamRendered` say so. Rendered secrets are written 0600 and recorded by fingerprint only.
//! When an install resumes after this stage completed, [`Stage::restore`] checks the midstream
//! overlay and `rendered/this-cluster/` against what was recorded and renders them again if a file
//! is missing or changed.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
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
    BaseFetched, Builder, ImagesProbed, MidstreamRendered, OverridesPlanned, RenderedFile,
};
use crate::output::{OutputDir, TreeWriter, fit_file_name};
use crate::recorded_blobs::ReleaseBlobs;
use crate::write_base::{BaseSource, base_layout};
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

fn workloads(probed: &ImagesProbed) -> Vec<Workload> {
    let mut found = BTreeSet::new();
    for image in &probed.images {
        for image_use in image
            .uses
            .iter()
            .filter(|image_use| !image_use.runtime_only)
        {
            let (Some(pod_spec), Some(name)) = (&image_use.pod_spec, &image_use.name) else {
                continue;
            };
            found.insert(Workload {
                api_version: image_use.api_version.clone(),
                kind: image_use.kind.clone(),
                namespace: image_use.namespace.clone(),
                name: name.clone(),
                pod_spec: *pod_spec,
            });
        }
    }
    found.into_iter().collect()
}

fn pull_secret_patch(workload: &Workload, secret: &str) -> Value {
    let mut metadata = json!({ "name": workload.name });
    if let Some(namespace) = &workload.namespace {
        metadata["namespace"] = json!(namespace);
    }
    let mut body = json!({ "imagePullSecrets": [{ "name": secret }] });
    for &key in workload.pod_spec.keys().iter().rev() {
        body = json!({ key: body });
    }
    let mut patch = json!({
        "apiVersion": workload.api_version,
        "kind": workload.kind,
        "metadata": metadata,
    });
    if let (Some(object), Some(spec)) = (patch.as_object_mut(), body.as_object()) {
        for (key, value) in spec {
            object.insert(key.clone(), value.clone());
        }
    }
    patch
}

fn yaml(value: &impl Serialize) -> Result<String, StageError> {
    serde_saphyr::to_string(value).map_err(|error| StageError::permanent(error.to_string()))
}

/// `values` as one multi-document text, each document serialised on any core.
fn multi_document(values: &[Value]) -> Result<String, StageError> {
    let mut text = String::new();
    for document in windlass_manifest::parallel::parallel_map(values, 64, yaml) {
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
    let base = |object: &Value| {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("unnamed");
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object");
        format!("{name}-{}", kind.to_lowercase())
    };
    let mut counts = std::collections::HashMap::new();
    for object in objects {
        *counts.entry(base(object)).or_insert(0) += 1;
    }
    let mut taken = BTreeSet::new();
    objects
        .iter()
        .map(|object| {
            // Names come from object metadata: never let one leave the directory.
            let file_name =
                |name: String| fit_file_name(&name.replace(['/', '\\'], "_")).into_owned();
            let stem = base(object);
            let mut name = file_name(if counts[&stem] > 1 {
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

/// [`external_build`] when `base/` is only planned (`write_base` may still be writing it): runs
/// the external kustomize on a copy of `overlays/` beside a `base/` written from the plan, in a
/// scratch directory of the output directory that is removed afterwards.
fn external_build_on_copy(
    command: &[String],
    out: &OutputDir,
    base: &Files,
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
    for (path, bytes) in base {
        scratch
            .write(&format!("base/{path}"), bytes, 0o644)
            .map_err(|error| failure(&error))?;
    }
    let overlays = out.root().join("overlays");
    for entry in walkdir::WalkDir::new(&overlays) {
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
            .write(&relative.to_string_lossy(), &bytes, 0o644)
            .map_err(|error| failure(&error))?;
    }
    let built = external_build(command, &scratch_root.join(DOWNSTREAM));
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
        let bytes = out
            .read_file(&file.path)
            .map_err(|error| StageError::permanent(error.to_string()))?
            .ok_or_else(|| {
                StageError::permanent(format!(
                    "{} is missing from the output directory",
                    file.path
                ))
            })?;
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
    rendered: TreeWriter,
    context: &StageContext,
    credential_objects: &HashSet<(String, String)>,
) -> Result<Vec<RenderedFile>, StageError> {
    const WRITERS: usize = 2;
    let write_failure =
        |error: crate::output::OutputError| StageError::permanent(error.to_string());
    let blob_failure = |error: windlass_state::BlobError| StageError::permanent(error.to_string());
    let texts = windlass_manifest::parallel::parallel_map(objects, 64, yaml);
    let mut rendered_files = Vec::with_capacity(objects.len());
    let mut files = Vec::with_capacity(objects.len());
    for ((object, name), text) in objects.iter().zip(rendered_names(objects)).zip(texts) {
        let text = text?;
        let path = format!("{RENDERED}/{name}");
        let object_kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let object_name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Secrets, and the objects of base documents holding a password value.
        let is_secret = object_kind == "Secret"
            || credential_objects.contains(&(object_kind.to_string(), object_name.to_string()));
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

#[async_trait::async_trait]
impl Stage for RenderMidstream {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let clock = std::time::Instant::now();
        let probed: ImagesProbed = context.input::<ImagesProbed>()?;
        let planned: OverridesPlanned = context.input::<OverridesPlanned>()?;
        let secret_name = format!("{}-registry", planned.app_slug);
        let out_dir: PathBuf = context.request.out_dir.clone();
        let out = OutputDir::create(&out_dir)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        let write_failure =
            |error: crate::output::OutputError| StageError::permanent(error.to_string());
        let blobs = context.blobs.clone();
        let mut overlay_files = Vec::new();
        let mut write_recorded = |path: String, text: String| -> Result<(), StageError> {
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

        let workloads = workloads(&probed);
        let patches: Vec<Value> = workloads
            .iter()
            .map(|workload| pull_secret_patch(workload, &secret_name))
            .collect();
        let has_patches = !patches.is_empty();
        let parsed_cache = context.memo.get::<ParsedCache>();
        if has_patches {
            let text = multi_document(&patches)?;
            // The native build reads this file next: let it take the patches instead of parsing.
            parsed_cache.remember_written(&text, patches);
            write_recorded(format!("{MIDSTREAM}/pullsecrets.yaml"), text)?;
        } else {
            out.remove_tree(&format!("{MIDSTREAM}/pullsecrets.yaml"))
                .map_err(write_failure)?;
        }
        write_recorded(
            format!("{MIDSTREAM}/kustomization.yaml"),
            yaml(&midstream_kustomization(&planned, has_patches))?,
        )?;
        let downstream = out.root().join(DOWNSTREAM).join("kustomization.yaml");
        let downstream_kept = downstream.exists();
        if !downstream_kept {
            write_recorded(
                format!("{DOWNSTREAM}/kustomization.yaml"),
                yaml(&json!({
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "bases": ["../../midstream"],
                }))?,
            )?;
        }

        tracing::debug!(patches = workloads.len(), elapsed = ?clock.elapsed(), "wrote overlays");
        let overlay = out.root().join(DOWNSTREAM);
        // With the recorded release among the inputs, `base/` comes from it; a pipeline recorded
        // when this stage ran after `write_base` instead reads `base/` from the disk.
        let base = match fetched_by(context) {
            Some(_) => Some(planned_base(
                context,
                &*context.input_shared::<BaseFetched>()?,
            )?),
            None => None,
        };
        let mut planned = PlannedTree::default();
        if let Some(base) = &base {
            planned.add_directory(out.root().join("base"), base.iter().cloned());
        }
        let (objects, builder) = match build_cached(&overlay, &parsed_cache, &planned) {
            Ok(objects) => (objects, Builder::Native),
            Err(BuildError::Unsupported { file, fields }) => {
                let objects = match &base {
                    Some(base) => {
                        external_build_on_copy(&self.config.external_kustomize, &out, base)?
                    }
                    None => external_build(&self.config.external_kustomize, &overlay)?,
                };
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
        let credential_objects = credential_objects(context, &out)?;
        let rendered_files = write_rendered(&objects, rendered, context, &credential_objects)?;
        tracing::debug!(files = rendered_files.len(), elapsed = ?clock.elapsed(), "wrote rendered files and stored their blobs");
        let summary = match &builder {
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
        let out = OutputDir::create(&context.request.out_dir)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        // The downstream overlay is the user's: whatever it holds now is what they want.
        let files: Vec<&RenderedFile> = recorded
            .overlay_files
            .iter()
            .filter(|file| !file.path.starts_with(DOWNSTREAM))
            .chain(&recorded.rendered_files)
            .collect();
        let checked = windlass_manifest::parallel::parallel_map(&files, 64, |file| {
            let bytes = out.read_file(&file.path)?;
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
