//! The `krm_function` stage kind: runs an exec plugin over a document set and records what it
//! returned as that set's fact again. With the base documents, it reads the input's
//! `BaseFetched`, sends its Kubernetes objects (annotated with their release file and position)
//! and records a `BaseFetched` whose documents are the items returned (an item returned
//! unchanged keeps its bytes and blob; others are written as YAML; KOTS kinds and other documents
//! KOTS never deploys are kept as they were and never sent). With the rendered objects, it reads
//! the input's `MidstreamRendered`, sends every rendered object but the secrets (which hold the
//! license ID and are never given to a plugin), writes `rendered/this-cluster/` afresh with the
//! items returned and the secrets as they were, and records a `MidstreamRendered` listing them
//! (and no overlay file: it writes none).
//! Either way it records `PluginRan`. In a replay (`Services::recorded`) the plugin never runs:
//! the input is rebuilt, checked to be the recorded one, and the recorded output used.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use windlass_engine::{
    BuildContext, EventPayload, Fact, Stage, StageConfig, StageContext, StageError, StageKind,
    StageOutput,
};
use windlass_stages::events::{
    BaseFetched, DocumentClass, FetchedDocument, MidstreamRendered, RenderedFile,
};
use windlass_stages::output::{OutputDir, fit_file_name};
use windlass_stages::render_midstream::RENDERED_SECRET_PURPOSE;
use windlass_state::{BlobId, StoredEvent};

use crate::events::{DocumentSet, PluginRan, PluginStream};
use crate::exec::{ExecRequest, file_sha256};
use crate::krm::{self, InputItem, OutputItem};

/// Where `render_midstream` writes the built objects.
const RENDERED: &str = "rendered/this-cluster";
/// The largest executable whose digest is taken.
const MAX_EXECUTABLE_BYTES: u64 = 512 * windlass_files::MIB;

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        crate::KRM_FUNCTION_KIND,
        "run an exec plugin (KRM function protocol) over the base documents or the rendered objects",
        |config| {
            let config: KrmFunctionConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("{}: {error}", crate::KRM_FUNCTION_KIND))?;
            Ok(Box::new(config))
        },
    )
}

/// The configuration of a `krm_function` stage (what a plugin declaration becomes; recorded in
/// `InstallStarted`, so it must hold no secret).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KrmFunctionConfig {
    /// The program, absolute.
    pub exec: PathBuf,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Which documents it transforms.
    pub documents: DocumentSet,
    /// Its deadline.
    pub timeout_seconds: u64,
    /// The cap on its stdout.
    pub max_output_bytes: u64,
    /// Handed to it as `functionConfig`.
    #[serde(default)]
    pub config: Value,
}

#[async_trait::async_trait]
impl StageConfig for KrmFunctionConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !self.exec.is_absolute() {
            problems.push(format!(
                "exec {} is not an absolute path",
                self.exec.display()
            ));
        }
        if self.timeout_seconds == 0 {
            problems.push("timeout_seconds must be at least 1".into());
        }
        if self.max_output_bytes == 0 {
            problems.push("max_output_bytes must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(KrmFunction {
            config: self.clone(),
        }))
    }
}

/// The runtime stage.
pub struct KrmFunction {
    config: KrmFunctionConfig,
}

/// Where the output comes from.
enum Output<'a> {
    /// Run the plugin.
    Run,
    /// Use what a recorded run printed (a replay, or restoring files).
    Recorded(&'a PluginRan),
}

/// What an item was before the plugin: its text, blob, first line and position among the items.
struct Original {
    text: Vec<u8>,
    blob: String,
    line: usize,
    position: usize,
}

/// The input of one run: the items and what is carried past the plugin.
struct Gathered {
    items: Vec<InputItem>,
    /// Each item's original text, blob, line and position in `items`, by (path, index).
    texts: HashMap<(String, usize), Original>,
}

#[async_trait::async_trait]
impl Stage for KrmFunction {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        match &context.services.recorded {
            Some(run) => match run.fact::<PluginRan>(&context.stage_name) {
                Some(recorded) => self.produce(context, Output::Recorded(&recorded)).await,
                None => Err(StageError::permanent(format!(
                    "plugin {}: the install recorded no PluginRan for it, so a replay cannot use its output (and never runs a plugin)",
                    context.stage_name
                ))),
            },
            None => self.produce(context, Output::Run).await,
        }
    }

    async fn restore(
        &self,
        context: &StageContext,
        recorded: &[StoredEvent],
    ) -> Result<Option<String>, StageError> {
        if self.config.documents == DocumentSet::Base {
            // write_base writes what this stage's BaseFetched lists, and restores it.
            return Ok(None);
        }
        let ran: PluginRan = windlass_engine::recorded_fact::<PluginRan>(recorded)?;
        let rendered: MidstreamRendered =
            windlass_engine::recorded_fact::<MidstreamRendered>(recorded)?;
        let out = OutputDir::for_stage(context)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        let mut damaged = 0;
        for file in &rendered.rendered_files {
            let bytes = out
                .read_recorded(&file.path, file.blob.as_deref(), &context.blobs)
                .map_err(|error| StageError::permanent(error.to_string()))?
                .into_bytes();
            let intact = match (bytes, &file.blob, &file.fingerprint) {
                (Some(bytes), Some(blob), _) => BlobId::of(&bytes).to_string() == *blob,
                (Some(bytes), None, Some(fingerprint)) => {
                    context
                        .fingerprint_key
                        .fingerprint_bytes(RENDERED_SECRET_PURPOSE, &bytes)
                        == *fingerprint
                }
                _ => false,
            };
            if !intact {
                damaged += 1;
            }
        }
        if damaged == 0 {
            return Ok(None);
        }
        self.produce(context, Output::Recorded(&ran)).await?;
        Ok(Some(format!(
            "{damaged} of {} files in {RENDERED}/ were missing or changed; wrote what plugin {} returned again from the recorded output",
            rendered.rendered_files.len(),
            context.stage_name
        )))
    }
}

fn permanent(plugin: &str, problem: impl std::fmt::Display) -> StageError {
    StageError::permanent(format!("plugin {plugin}: {problem}"))
}

impl KrmFunction {
    async fn produce(
        &self,
        context: &StageContext,
        output: Output<'_>,
    ) -> Result<StageOutput, StageError> {
        let plugin = context.stage_name.as_str();
        let config = &self.config;
        let fetched = match config.documents {
            DocumentSet::Base => Some(context.input_shared::<BaseFetched>()?),
            DocumentSet::Rendered => None,
        };
        let rendered = match config.documents {
            DocumentSet::Rendered => Some(context.input::<MidstreamRendered>()?),
            DocumentSet::Base => None,
        };
        let gathered = match (&fetched, &rendered) {
            (Some(fetched), _) => gather_base(context, fetched)?,
            (_, Some(rendered)) => gather_rendered(context, rendered)?,
            _ => unreachable!("one set is read"),
        };
        let function_config = krm::function_config(
            plugin,
            &config.config,
            config.documents.as_str(),
            &context.request.release_digest,
        );
        let input = krm::input_resource_list(&gathered.items, &function_config);
        let blob_failure = |error: windlass_state::BlobError| permanent(plugin, error);
        let input_blob = context.blobs.put(&input).map_err(blob_failure)?;
        let (stdout, sha256, environment) = match output {
            Output::Recorded(recorded) => {
                if recorded.input.blob != input_blob.to_string() {
                    return Err(permanent(
                        plugin,
                        format!(
                            "its input differs from the recorded run's (blob {} recorded, {input_blob} now), so the recorded output does not apply",
                            recorded.input.blob
                        ),
                    ));
                }
                let id = BlobId::parse(&recorded.output.blob).map_err(blob_failure)?;
                // In a replay the recorded output is in the replayed install's blob store.
                let store = context
                    .services
                    .recorded
                    .as_ref()
                    .and_then(|run| run.blobs.clone())
                    .unwrap_or_else(|| context.blobs.clone());
                let stdout = store.get(&id).map_err(blob_failure)?;
                (
                    stdout,
                    recorded.executable_sha256.clone(),
                    recorded.environment.clone(),
                )
            }
            Output::Run => {
                let shown = config.exec.display().to_string();
                let sha256 = file_sha256(&config.exec, MAX_EXECUTABLE_BYTES).map_err(|error| {
                    StageError::invalid_input(format!("plugin {plugin}: exec {shown}: {error}"))
                })?;
                let request = ExecRequest {
                    program: config.exec.clone(),
                    args: config.args.clone(),
                    stdin: input.clone(),
                    timeout: Duration::from_secs(config.timeout_seconds),
                    max_output_bytes: config.max_output_bytes,
                };
                let ran = tokio::task::spawn_blocking(move || crate::exec::run(&request))
                    .await
                    .map_err(|error| permanent(plugin, format!("its runner failed: {error}")))?
                    .map_err(|error| match error {
                        crate::exec::ExecError::Spawn { .. } => {
                            StageError::invalid_input(format!("plugin {plugin}: {error}"))
                        }
                        other => permanent(plugin, format!("{shown} {other}")),
                    })?;
                (ran.stdout, sha256, ran.environment)
            }
        };
        let returned = krm::read_output(&stdout).map_err(|problem| permanent(plugin, problem))?;
        let errors: Vec<String> = returned
            .results
            .iter()
            .filter(|result| result.severity == "error")
            .map(krm::describe_result)
            .collect();
        if !errors.is_empty() {
            return Err(StageError::invalid_input(format!(
                "plugin {plugin} reported {} error result(s): {}",
                errors.len(),
                errors.join("; ")
            )));
        }
        let output_blob = context.blobs.put(&stdout).map_err(blob_failure)?;
        let (transformed, summary) = match (&fetched, &rendered) {
            (Some(fetched), _) => {
                let documents =
                    base_documents(context, plugin, fetched, &gathered, &returned.items)?;
                let count = returned.items.len();
                let mut fetched = BaseFetched::clone(fetched);
                fetched.documents = documents;
                (
                    Fact::of(&fetched)?,
                    format!("{count} base objects returned"),
                )
            }
            (_, Some(rendered)) => {
                let files = write_rendered(context, plugin, rendered, &gathered, &returned.items)?;
                let mut rendered = rendered.clone();
                rendered.rendered_files = files;
                // This stage wrote no overlay: render_midstream's stay listed by it alone.
                rendered.overlay_files = Vec::new();
                (
                    Fact::of(&rendered)?,
                    format!("{} rendered objects returned", returned.items.len()),
                )
            }
            _ => unreachable!("one set is read"),
        };
        context.blobs.sync().map_err(blob_failure)?;
        let warnings = returned
            .results
            .iter()
            .filter(|result| result.severity == "warning")
            .count();
        let ran = PluginRan {
            plugin: plugin.to_string(),
            documents: config.documents,
            executable: config.exec.display().to_string(),
            executable_sha256: sha256.clone(),
            args: config.args.clone(),
            environment,
            input: PluginStream {
                file: format!("stdin of plugin {plugin}"),
                blob: input_blob.to_string(),
                bytes: input.len() as u64,
                items: gathered.items.len() as u64,
            },
            output: PluginStream {
                file: format!("stdout of plugin {plugin}"),
                blob: output_blob.to_string(),
                bytes: stdout.len() as u64,
                items: returned.items.len() as u64,
            },
            results: returned.results,
        };
        Ok(StageOutput {
            facts: vec![transformed, Fact::of(&ran)?],
            summary: format!(
                "{} items sent, {summary}, {warnings} warning(s) (sha256 {})",
                gathered.items.len(),
                &sha256[..12.min(sha256.len())]
            ),
        })
    }
}

/// The Kubernetes objects of `fetched`, read from their blobs.
fn gather_base(context: &StageContext, fetched: &BaseFetched) -> Result<Gathered, StageError> {
    let plugin = context.stage_name.as_str();
    let documents: Vec<&FetchedDocument> = fetched
        .documents
        .iter()
        .filter(|document| document.class == DocumentClass::KubernetesObject)
        .collect();
    // A document holding a password value (recorded by fingerprint, never stored) is never sent
    // to a plugin.
    if let Some(document) = documents
        .iter()
        .find(|document| document.fingerprint.is_some())
    {
        return Err(StageError::invalid_input(format!(
            "plugin {plugin}: {} holds a password value, which windlass never sends to a plugin; place the plugin after render_midstream (documents: rendered), where files holding passwords are kept out of what it is sent",
            document.file
        )));
    }
    let ids = documents
        .iter()
        .map(|document| BlobId::parse(document.blob.as_deref().unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| permanent(plugin, error))?;
    let bodies = context.blobs.get_many(&ids).map_err(|error| {
        let failure = permanent(plugin, format!("reading the base documents: {error}"));
        match context.input_stage_recording(BaseFetched::EVENT_TYPE) {
            Some(stage) => failure.with_stale_input(stage),
            None => failure,
        }
    })?;
    let mut items = Vec::with_capacity(documents.len());
    let mut texts = HashMap::new();
    let parsed = parse_all(&bodies);
    for ((document, body), object) in documents.iter().zip(bodies).zip(parsed) {
        let object = object.map_err(|error| {
            permanent(
                plugin,
                format!("document {} of {}: {error}", document.index, document.file),
            )
        })?;
        texts.insert(
            (document.file.clone(), document.index),
            Original {
                text: body,
                blob: document.blob.clone().unwrap_or_default(),
                line: document.line,
                position: items.len(),
            },
        );
        items.push(InputItem {
            object,
            path: document.file.clone(),
            index: document.index,
        });
    }
    Ok(Gathered { items, texts })
}

/// The non-secret rendered objects of `rendered`, read from their blobs.
fn gather_rendered(
    context: &StageContext,
    rendered: &MidstreamRendered,
) -> Result<Gathered, StageError> {
    let plugin = context.stage_name.as_str();
    let files: Vec<&RenderedFile> = rendered
        .rendered_files
        .iter()
        .filter(|file| file.blob.is_some())
        .collect();
    let ids = files
        .iter()
        .map(|file| BlobId::parse(file.blob.as_deref().unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| permanent(plugin, error))?;
    let bodies = context
        .blobs
        .get_many(&ids)
        .map_err(|error| permanent(plugin, format!("reading the rendered objects: {error}")))?;
    let mut items = Vec::with_capacity(files.len());
    let mut texts = HashMap::new();
    let parsed = parse_all(&bodies);
    for ((file, body), object) in files.iter().zip(bodies).zip(parsed) {
        let path = file
            .path
            .strip_prefix(&format!("{RENDERED}/"))
            .unwrap_or(&file.path)
            .to_string();
        let object =
            object.map_err(|error| permanent(plugin, format!("{}: {error}", file.path)))?;
        texts.insert(
            (path.clone(), 0),
            Original {
                text: body,
                blob: file.blob.clone().unwrap_or_default(),
                line: 1,
                position: items.len(),
            },
        );
        items.push(InputItem {
            object,
            path,
            index: 0,
        });
    }
    Ok(Gathered { items, texts })
}

/// Each body parsed as one YAML document, on every core.
fn parse_all(bodies: &[Vec<u8>]) -> Vec<Result<Value, String>> {
    windlass_manifest::parallel::parallel_map(bodies, 64, |body| {
        windlass_manifest::documents::parse_value(&String::from_utf8_lossy(body))
            .map_err(|error| error.to_string())
    })
}

fn text_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

fn describe(object: &Value) -> String {
    format!(
        "{}/{}",
        text_at(object, "/kind").unwrap_or("?"),
        text_at(object, "/metadata/name").unwrap_or("?")
    )
}

/// Refuses two items with the same kind, namespace and name.
fn check_unique(plugin: &str, items: &[OutputItem]) -> Result<(), StageError> {
    let mut seen = HashSet::new();
    for item in items {
        let key = (
            text_at(&item.object, "/apiVersion")
                .unwrap_or("")
                .to_string(),
            text_at(&item.object, "/kind").unwrap_or("").to_string(),
            text_at(&item.object, "/metadata/namespace")
                .unwrap_or("")
                .to_string(),
            text_at(&item.object, "/metadata/name")
                .unwrap_or("")
                .to_string(),
        );
        if !seen.insert(key) {
            return Err(permanent(
                plugin,
                format!(
                    "its output is malformed: {} is returned twice",
                    describe(&item.object)
                ),
            ));
        }
    }
    Ok(())
}

/// An item's text: the original bytes when it came back unchanged, else YAML.
fn item_text(
    plugin: &str,
    gathered: &Gathered,
    location: &(String, usize),
    object: &Value,
) -> Result<(Vec<u8>, Option<String>, usize), StageError> {
    let original = gathered.texts.get(location);
    if let Some(original) = original
        && krm::without_location(&gathered.items[original.position].object) == *object
    {
        return Ok((
            original.text.clone(),
            Some(original.blob.clone()),
            original.line,
        ));
    }
    let text = serde_saphyr::to_string(object)
        .map_err(|error| permanent(plugin, format!("writing {}: {error}", describe(object))))?;
    let line = original.map_or(1, |original| original.line);
    Ok((text.into_bytes(), None, line))
}

/// The documents of the transformed `BaseFetched`: the documents never sent (KOTS kinds and the
/// like), then the items returned.
fn base_documents(
    context: &StageContext,
    plugin: &str,
    fetched: &BaseFetched,
    gathered: &Gathered,
    items: &[OutputItem],
) -> Result<Vec<FetchedDocument>, StageError> {
    check_unique(plugin, items)?;
    let mut documents: Vec<FetchedDocument> = fetched
        .documents
        .iter()
        .filter(|document| document.class != DocumentClass::KubernetesObject)
        .cloned()
        .collect();
    let mut generated: HashMap<String, usize> = HashMap::new();
    let mut located = Vec::with_capacity(items.len());
    for item in items {
        let object = &item.object;
        let location = match &item.path {
            Some(path) => (path.clone(), item.index.unwrap_or(0)),
            None => {
                let file = format!(
                    "plugin-{plugin}/{}",
                    fit_file_name(&format!(
                        "{}-{}.yaml",
                        text_at(object, "/metadata/name").unwrap_or("object"),
                        text_at(object, "/kind").unwrap_or("object").to_lowercase()
                    ))
                    .replace(['/', '\\'], "_")
                );
                let index = generated.entry(file.clone()).or_default();
                *index += 1;
                (file, *index - 1)
            }
        };
        located.push((item, location));
    }
    // Serialising the changed objects is most of this stage's own time: on every core.
    let texts = windlass_manifest::parallel::parallel_map(&located, 64, |(item, location)| {
        item_text(plugin, gathered, location, &item.object)
    });
    for ((item, location), text) in located.into_iter().zip(texts) {
        let object = &item.object;
        let (text, blob, line) = text?;
        let blob = match blob {
            Some(blob) => blob,
            None => context
                .blobs
                .put(&text)
                .map_err(|error| permanent(plugin, error))?
                .to_string(),
        };
        let api_version = text_at(object, "/apiVersion")
            .unwrap_or_default()
            .to_string();
        let kind = text_at(object, "/kind").unwrap_or_default().to_string();
        documents.push(FetchedDocument {
            file: location.0,
            index: location.1,
            line,
            class: DocumentClass::of(&api_version, &kind),
            api_version,
            kind,
            namespace: text_at(object, "/metadata/namespace").map(str::to_string),
            name: text_at(object, "/metadata/name").map(str::to_string),
            blob: Some(blob),
            fingerprint: None,
        });
    }
    Ok(documents)
}

/// Writes `rendered/this-cluster/` afresh: the items returned (each at its path annotation, or
/// `<name>-<kind>.yaml`) and the secret files `render_midstream` wrote, checked against their
/// recorded fingerprints. Returns the files, in path order.
fn write_rendered(
    context: &StageContext,
    plugin: &str,
    rendered: &MidstreamRendered,
    gathered: &Gathered,
    items: &[OutputItem],
) -> Result<Vec<RenderedFile>, StageError> {
    check_unique(plugin, items)?;
    let failure = |error: windlass_stages::output::OutputError| permanent(plugin, error);
    let out = OutputDir::for_stage(context).map_err(failure)?;
    let secrets: Vec<&RenderedFile> = rendered
        .rendered_files
        .iter()
        .filter(|file| file.blob.is_none())
        .collect();
    let mut taken: HashSet<String> = secrets
        .iter()
        .map(|file| {
            file.path
                .strip_prefix(&format!("{RENDERED}/"))
                .unwrap_or(&file.path)
                .to_string()
        })
        .collect();
    let mut secret_bodies = Vec::with_capacity(secrets.len());
    for file in &secrets {
        let bytes = out
            .read_recorded(&file.path, file.blob.as_deref(), &context.blobs)
            .map_err(failure)?
            .into_bytes();
        let intact = bytes.as_ref().is_some_and(|bytes| {
            Some(
                context
                    .fingerprint_key
                    .fingerprint_bytes(RENDERED_SECRET_PURPOSE, bytes),
            ) == file.fingerprint
        });
        let Some(bytes) = bytes.filter(|_| intact) else {
            let stale = context
                .input_stage_recording(MidstreamRendered::EVENT_TYPE)
                .unwrap_or("render_midstream")
                .to_string();
            return Err(permanent(
                plugin,
                format!(
                    "{} is missing or not what {stale} wrote; run the install again",
                    file.path
                ),
            )
            .with_stale_input(stale));
        };
        secret_bodies.push((file.path.clone(), bytes, file.fingerprint.clone()));
    }
    let mut written: Vec<(String, Vec<u8>, Option<String>)> = Vec::new();
    let mut located = Vec::with_capacity(items.len());
    for item in items {
        let object = &item.object;
        if text_at(object, "/kind") == Some("Secret") {
            return Err(permanent(
                plugin,
                format!(
                    "it returned Secret {}: a plugin after render_midstream may not return secrets (their content would be recorded in the log)",
                    text_at(object, "/metadata/name").unwrap_or("?")
                ),
            ));
        }
        let path = match &item.path {
            Some(path) if !taken.contains(path) => path.clone(),
            _ => {
                let stem = format!(
                    "{}-{}",
                    text_at(object, "/metadata/name").unwrap_or("object"),
                    text_at(object, "/kind").unwrap_or("object").to_lowercase()
                )
                .replace(['/', '\\'], "_");
                let mut suffix = 1;
                let mut name = fit_file_name(&format!("{stem}.yaml")).into_owned();
                while taken.contains(&name) {
                    suffix += 1;
                    name = fit_file_name(&format!("{stem}-{suffix}.yaml")).into_owned();
                }
                name
            }
        };
        taken.insert(path.clone());
        let location = (
            item.path.clone().unwrap_or_default(),
            item.index.unwrap_or(0),
        );
        located.push((path, item, location));
    }
    let texts = windlass_manifest::parallel::parallel_map(&located, 64, |(_, item, location)| {
        item_text(plugin, gathered, location, &item.object)
    });
    for ((path, _, _), text) in located.into_iter().zip(texts) {
        let (text, blob, _) = text?;
        let blob = match blob {
            Some(blob) => blob,
            None => context
                .blobs
                .put(&text)
                .map_err(|error| permanent(plugin, error))?
                .to_string(),
        };
        written.push((path, text, Some(blob)));
    }
    let tree = out.replace_tree(RENDERED).map_err(failure)?;
    let mut files = Vec::with_capacity(written.len() + secret_bodies.len());
    for (path, text, blob) in &written {
        tree.write(path, text, 0o644).map_err(failure)?;
        files.push(RenderedFile {
            path: format!("{RENDERED}/{path}"),
            blob: blob.clone(),
            fingerprint: None,
        });
    }
    for (path, bytes, fingerprint) in &secret_bodies {
        let in_tree = path.strip_prefix(&format!("{RENDERED}/")).unwrap_or(path);
        tree.write(in_tree, bytes, 0o600).map_err(failure)?;
        files.push(RenderedFile {
            path: path.clone(),
            blob: None,
            fingerprint: fingerprint.clone(),
        });
    }
    tree.commit().map_err(failure)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
