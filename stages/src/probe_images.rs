//! The `probe_images` stage: finds every image of the fetched release (with provenance), decides
//! for each whether it is private, and records one `ImagesProbed` fact. A result comes, in order of
//! preference, from `Application.spec.proxyPublicImages` (private without asking), `--known-images`
//! (a KOTS `Installation`'s `spec.knownImages`), an earlier install's probe younger than the cache
//! TTL, `--offline` (the policy for `unreachable`), or an anonymous probe of the registry now.
//! [`resolve_images`] is the same decision procedure without the event log, used by
//! `windlass images --probe`.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use windlass_state::EventPayload;

use serde::Deserialize;
use windlass_engine::{
    BuildContext, Clock, Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};
use windlass_registry::{ProbeConfig, ProbeEvidence, ProbeOutcome, Prober, RegistrySettings};
use windlass_state::{BlobId, LazyEvent};

use crate::events::{
    BaseFetched, Decision, ImageOutcome, ImagesProbed, ProbePolicy, ProbedImage, ResultSource,
};
use windlass_manifest::documents::{Document, ParsedCache, Reuse, parse_documents_with};
use windlass_manifest::images::discovery::{FoundImage, discover, proxies_public_images};
use windlass_manifest::images::known_images::read_known_images;
use windlass_manifest::images::reference::ImageReference;
use windlass_manifest::images::rules::{ImageRule, WindlassConfig};

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        "probe_images",
        "find every image and record whether it is private (ImagesProbed)",
        |config| {
            let config: ProbeImagesConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("probe_images: {error}"))?;
            Ok(Box::new(config))
        },
    )
}

/// Configuration of `probe_images`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeImagesConfig {
    /// How outcomes become decisions.
    pub policy: ProbePolicy,
    /// Never touch the network.
    pub offline: bool,
    /// How long an earlier install's probe result may be reused, in seconds (0: never).
    pub cache_ttl_seconds: u64,
    /// The `--registries` settings file.
    pub registries_file: Option<PathBuf>,
    /// A KOTS `Installation` whose `spec.knownImages` seeds results.
    pub known_images_file: Option<PathBuf>,
    /// A windlass config file with image-field rules.
    pub config_file: Option<PathBuf>,
    /// Deadline of each registry request, in seconds.
    pub request_timeout_seconds: u64,
}

impl Default for ProbeImagesConfig {
    fn default() -> ProbeImagesConfig {
        ProbeImagesConfig {
            policy: ProbePolicy::Kots,
            offline: false,
            cache_ttl_seconds: 24 * 60 * 60,
            registries_file: None,
            known_images_file: None,
            config_file: None,
            request_timeout_seconds: 10,
        }
    }
}

#[async_trait::async_trait]
impl StageConfig for ProbeImagesConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.request_timeout_seconds == 0 {
            problems.push("request_timeout_seconds must be positive".to_string());
        }
        for (name, path) in [
            ("registries_file", &self.registries_file),
            ("known_images_file", &self.known_images_file),
            ("config_file", &self.config_file),
        ] {
            if path
                .as_ref()
                .is_some_and(|path| path.as_os_str().is_empty())
            {
                problems.push(format!("{name} is empty"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(ProbeImages {
            config: self.clone(),
        }))
    }
}

/// The runtime stage.
pub struct ProbeImages {
    config: ProbeImagesConfig,
}

/// The one probe driver, for the stage and for `windlass images --probe`: it loads what a
/// configuration names (registry settings, known images), then decides every found image with
/// [`resolve_images`].
pub struct ProbeDriver {
    policy: ProbePolicy,
    offline: bool,
    known: HashMap<String, bool>,
    settings: RegistrySettings,
    request_timeout: Duration,
}

impl ProbeDriver {
    /// Loads the files `config` names; a file that cannot be read is invalid input.
    pub fn new(config: &ProbeImagesConfig) -> Result<ProbeDriver, StageError> {
        let known = match &config.known_images_file {
            Some(path) => read_known_images(path)
                .map_err(|error| StageError::invalid_input(error.to_string()))?,
            None => HashMap::new(),
        };
        let settings = match &config.registries_file {
            Some(path) => RegistrySettings::load(path)
                .map_err(|error| StageError::invalid_input(error.to_string()))?,
            None => RegistrySettings::empty(),
        };
        Ok(ProbeDriver {
            policy: config.policy,
            offline: config.offline,
            known,
            settings,
            request_timeout: Duration::from_secs(config.request_timeout_seconds.max(1)),
        })
    }

    /// Whether `image` (as written) is answered by the known images, without asking.
    pub fn knows(&self, image: &str) -> bool {
        self.known.contains_key(image)
    }

    /// Adds known results (image as written → private) for images the loaded known-images file
    /// does not name: a replay passes those the original run recorded.
    pub fn with_known(mut self, extra: HashMap<String, bool>) -> ProbeDriver {
        for (image, private) in extra {
            self.known.entry(image).or_insert(private);
        }
        self
    }

    /// Never asks a registry: images without a known or cached result follow the policy for
    /// `unreachable` (a replay, which answers from the record and touches no network).
    pub fn without_network(mut self) -> ProbeDriver {
        self.offline = true;
        self
    }

    /// Decides every image of `found`, reusing `cached` results, reporting (done, total) to
    /// `on_probed` as probes finish.
    pub async fn resolve(
        &self,
        found: &[FoundImage],
        proxy_public_images: bool,
        cached: &HashMap<String, CachedResult>,
        on_probed: &(dyn Fn(u64, u64) + Send + Sync),
        clock: &dyn Clock,
    ) -> Result<Resolved, StageError> {
        let resolved = resolve_images(
            found,
            ResolveInputs {
                policy: self.policy,
                offline: self.offline,
                proxy_public_images,
                known: &self.known,
                cached,
                settings: self.settings.clone(),
                request_timeout: self.request_timeout,
                on_probed,
                clock,
            },
        )
        .await
        .map_err(StageError::invalid_input)?;
        Ok(resolved)
    }
}

/// A reusable earlier result.
#[derive(Debug, Clone)]
pub struct CachedResult {
    /// The outcome then.
    pub outcome: ProbeOutcome,
    /// The evidence then.
    pub evidence: ProbeEvidence,
    /// When it was probed.
    pub probed_at: String,
    /// Which install and event it came from.
    pub source: ResultSource,
    /// The reason recorded for the image (`cached: <the probe's reason>`, or in a replay the
    /// reason the original run recorded).
    pub reason: String,
}

/// Everything [`resolve_images`] decides with, besides the images.
pub struct ResolveInputs<'a> {
    /// The policy.
    pub policy: ProbePolicy,
    /// Never touch the network.
    pub offline: bool,
    /// `Application.spec.proxyPublicImages`.
    pub proxy_public_images: bool,
    /// Known results: image as written → private.
    pub known: &'a HashMap<String, bool>,
    /// Reusable earlier results by image as written.
    pub cached: &'a HashMap<String, CachedResult>,
    /// Registry settings.
    pub settings: RegistrySettings,
    /// Deadline of each request.
    pub request_timeout: Duration,
    /// Called with (done, total) as probes finish.
    pub on_probed: &'a (dyn Fn(u64, u64) + Send + Sync),
    /// The time recorded as each probe's `probed_at` (the injected clock in a stage).
    pub clock: &'a dyn Clock,
}

/// What [`resolve_images`] found.
pub struct Resolved {
    /// One entry per image, in the order given.
    pub images: Vec<ProbedImage>,
    /// Requests made to registries.
    pub requests_made: u64,
}

impl Resolved {
    /// The error for images the policy refused to decide, naming each with its outcome and
    /// reason; `None` when every image was decided.
    pub fn refusal(&self) -> Option<String> {
        let refused: Vec<String> = self
            .images
            .iter()
            .filter(|image| image.decision == Decision::Error)
            .map(|image| format!("{} ({}: {})", image.image, image.outcome, image.reason))
            .collect();
        (!refused.is_empty()).then(|| {
            format!(
                "the strict probe policy refuses to decide for {} image(s): {}",
                refused.len(),
                refused.join("; ")
            )
        })
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Decides, for each found image, whether it is private.
pub async fn resolve_images(
    found: &[FoundImage],
    inputs: ResolveInputs<'_>,
) -> Result<Resolved, String> {
    let mut images: Vec<Option<ProbedImage>> = Vec::with_capacity(found.len());
    let mut to_probe = Vec::new();
    let record = |image: &FoundImage,
                  outcome: ImageOutcome,
                  decision: Decision,
                  source: ResultSource,
                  reason: String,
                  evidence: Option<ProbeEvidence>,
                  probed_at: Option<String>| ProbedImage {
        image: image.reference.written().to_string(),
        normalized_name: image.reference.normalized_name(),
        registry: image.reference.registry().to_string(),
        repository: image.reference.repository().to_string(),
        tag: image.reference.tag().map(str::to_string),
        pinned_digest: image.reference.digest().map(str::to_string),
        outcome,
        decision,
        private: decision == Decision::Private,
        source,
        probed_at,
        digest: evidence
            .as_ref()
            .and_then(|evidence| evidence.digest.clone()),
        reason,
        evidence,
        runtime_only: image.runtime_only(),
        uses: image.uses.clone(),
    };
    for (position, image) in found.iter().enumerate() {
        let written = image.reference.written();
        let resolved = if inputs.proxy_public_images {
            Some(record(
                image,
                ImageOutcome::NotProbed,
                Decision::Private,
                ResultSource::ProxyPublicImages,
                "Application.spec.proxyPublicImages is true: every image is private".into(),
                None,
                None,
            ))
        } else if let Some(&private) = inputs.known.get(written) {
            let decision = if private {
                Decision::Private
            } else {
                Decision::Public
            };
            Some(record(
                image,
                ImageOutcome::Known,
                decision,
                ResultSource::KnownImages,
                format!("known image: isPrivate {private}"),
                None,
                None,
            ))
        } else if let Some(cached) = inputs.cached.get(written) {
            Some(record(
                image,
                cached.outcome.into(),
                inputs.policy.decide(cached.outcome),
                cached.source.clone(),
                cached.reason.clone(),
                Some(cached.evidence.clone()),
                Some(cached.probed_at.clone()),
            ))
        } else if inputs.offline {
            Some(record(
                image,
                ImageOutcome::Unreachable,
                inputs.policy.decide(ProbeOutcome::Unreachable),
                ResultSource::Offline,
                "offline: the registry was not asked".into(),
                None,
                None,
            ))
        } else {
            to_probe.push(position);
            None
        };
        images.push(resolved);
    }
    let mut requests_made = 0;
    if !to_probe.is_empty() {
        let config = ProbeConfig {
            request_deadline: inputs.request_timeout,
            ..ProbeConfig::default()
        };
        let prober = Prober::new(inputs.settings, config).map_err(|error| error.to_string())?;
        let targets = to_probe
            .iter()
            .map(|&position| probe_target(&found[position].reference))
            .collect();
        let on_probed = inputs.on_probed;
        let results = prober
            .probe_all(targets, |done, total| on_probed(done as u64, total as u64))
            .await;
        let probed_at = rfc3339(inputs.clock.now());
        for (&position, result) in to_probe.iter().zip(results) {
            images[position] = Some(record(
                &found[position],
                result.outcome.into(),
                inputs.policy.decide(result.outcome),
                ResultSource::Probed,
                result.evidence.reason.clone(),
                Some(result.evidence),
                Some(probed_at.clone()),
            ));
        }
        requests_made = prober.requests_made();
    }
    Ok(Resolved {
        images: images
            .into_iter()
            .map(|image| image.expect("every image resolved"))
            .collect(),
        requests_made,
    })
}

/// Outcomes worth reusing: a transient failure is asked again next time.
fn reusable(outcome: ProbeOutcome) -> bool {
    !matches!(
        outcome,
        ProbeOutcome::Unreachable | ProbeOutcome::ServerError | ProbeOutcome::RateLimited
    )
}

/// The part of an `ImagesProbed` payload a cached result is made of.
#[derive(Deserialize)]
struct ProbedForCache {
    images: Vec<ImageForCache>,
}

/// The part of one `ProbedImage` a cached result is made of.
#[derive(Deserialize)]
struct ImageForCache {
    image: String,
    outcome: ImageOutcome,
    source: ResultSource,
    probed_at: Option<String>,
    evidence: Option<ProbeEvidence>,
}

/// Earlier probe results still inside the TTL, newest first wins.
pub fn cached_results(
    history: &[LazyEvent],
    ttl: Duration,
    now: time::OffsetDateTime,
) -> HashMap<String, CachedResult> {
    let mut cached = HashMap::new();
    for event in history {
        add_cached_results(&mut cached, event, now - ttl);
    }
    cached
}

/// Adds to `cached` the reusable results of one `ImagesProbed` fact probed at or after `oldest`,
/// for images it has no result for yet (facts are taken newest first).
fn add_cached_results(
    cached: &mut HashMap<String, CachedResult>,
    event: &LazyEvent,
    oldest: time::OffsetDateTime,
) {
    use time::format_description::well_known::Rfc3339;
    // Only what a cached result needs is decoded (not every image's uses), from the payload in
    // place.
    let Ok(probed) = event.decode::<ProbedForCache>() else {
        return;
    };
    for image in probed.images {
        let (Some(evidence), Some(probed_at)) = (image.evidence, image.probed_at) else {
            continue;
        };
        let fresh = time::OffsetDateTime::parse(&probed_at, &Rfc3339).is_ok_and(|at| at >= oldest);
        let Some(outcome) = image.outcome.probe_outcome() else {
            continue;
        };
        let source = match image.source {
            ResultSource::Probed => ResultSource::Cache {
                install_id: event.event.install_id.clone(),
                global_seq: event.event.global_seq,
            },
            cache @ ResultSource::Cache { .. } => cache,
            _ => continue,
        };
        if fresh && reusable(outcome) {
            cached.entry(image.image).or_insert(CachedResult {
                outcome,
                reason: format!("cached: {}", evidence.reason),
                evidence,
                probed_at,
                source,
            });
        }
    }
}

/// Earlier installs' reusable results for the images in `found` that `driver` does not already
/// know, read newest first and only as far back as needed: reading stops once every such image
/// has a result, so a long history of large installs costs one fact, not all of them.
fn load_cached_results(
    context: &StageContext,
    driver: &ProbeDriver,
    found: &[FoundImage],
    ttl: Duration,
) -> Result<HashMap<String, CachedResult>, StageError> {
    let mut cached = HashMap::new();
    let mut wanted: HashSet<&str> = found
        .iter()
        .map(|image| image.reference.written())
        .filter(|written| !driver.knows(written))
        .collect();
    if wanted.is_empty() {
        return Ok(cached);
    }
    let now = context.services.clock.now();
    context
        .history
        .visit_recent_facts(
            ImagesProbed::EVENT_TYPE,
            now - ttl,
            &context.install_id,
            &mut |event| {
                add_cached_results(&mut cached, &event, now - ttl);
                wanted.retain(|written| !cached.contains_key(*written));
                if wanted.is_empty() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .map_err(StageError::transient)?;
    Ok(cached)
}

/// Reads every YAML document recorded in `BaseFetched` back from the blob store (parsed ones
/// are taken from the memo's [`ParsedCache`]), and the documents of each `kots.io/v1beta2`
/// HelmChart's builder render (from helm's recorded output), so that their images are probed and
/// reported although they are never patched.
pub(crate) fn documents_of(
    fetched: &BaseFetched,
    context: &StageContext,
) -> Result<Vec<Document>, StageError> {
    let mut documents = recorded_documents(fetched, context, |_| true)?;
    if fetched.helm_charts.is_empty() {
        return Ok(documents);
    }
    let read_blob = |hex: &str| {
        let id = BlobId::parse(hex).ok()?;
        String::from_utf8(context.blobs.get(&id).ok()?).ok()
    };
    let cache = context.memo.get::<ParsedCache>();
    documents.extend(
        crate::helm_charts::builder_documents(
            &fetched.helm_charts,
            &read_blob,
            &context
                .memo
                .get::<crate::credential_texts::CredentialTexts>(),
            Some(&cache),
        )
        .map_err(|problem| {
            let failure = StageError::permanent(problem);
            match context.input_stage_recording(BaseFetched::EVENT_TYPE) {
                Some(stage) => failure.with_stale_input(stage),
                None => failure,
            }
        })?,
    );
    Ok(documents)
}

/// The release's KOTS custom resources (`Application`, `Installation`, ...), read back.
pub(crate) fn kots_documents_of(
    fetched: &BaseFetched,
    context: &StageContext,
) -> Result<Vec<Document>, StageError> {
    recorded_documents(fetched, context, |recorded| {
        recorded.class == crate::events::DocumentClass::KotsKind
    })
}

fn recorded_documents(
    fetched: &BaseFetched,
    context: &StageContext,
    wanted: impl Fn(&crate::events::FetchedDocument) -> bool,
) -> Result<Vec<Document>, StageError> {
    let cache = context.memo.get::<ParsedCache>();
    // A document's blob id is the blake3 hash of its text, which is also the parsed cache's key:
    // a document this process parsed is rebuilt from its record without reading the blob back.
    let mut documents: Vec<Option<Document>> = Vec::new();
    let mut unread: Vec<(usize, &crate::events::FetchedDocument)> = Vec::new();
    let texts = context
        .memo
        .get::<crate::credential_texts::CredentialTexts>();
    for recorded in fetched.documents.iter().filter(|recorded| wanted(recorded)) {
        // A document holding a password value has no blob: its text is in this process's memory.
        if let Some(fingerprint) = &recorded.fingerprint {
            let text = texts.get(fingerprint).ok_or_else(|| {
                crate::credential_texts::text_not_in_memory(
                    crate::credential_texts::fetched_by(context),
                    &recorded.file,
                )
            })?;
            let mut parsed =
                parse_documents_with(&recorded.file, text.as_bytes(), Reuse::Share(&cache))
                    .map_err(|error| {
                        StageError::permanent(format!(
                            "recorded document no longer parses: {error}"
                        ))
                    })?;
            documents.push(parsed.pop().map(|mut document| {
                document.index = recorded.index;
                document.line = recorded.line;
                document
            }));
            continue;
        }
        let cached = recorded
            .blob
            .as_deref()
            .and_then(|blob| BlobId::parse(blob).ok())
            .and_then(|id| id.hash_bytes())
            .and_then(|hash| cache.get_by_text_hash(&hash));
        match cached {
            Some(value) => documents.push(Some(Document {
                file: recorded.file.clone(),
                index: recorded.index,
                line: recorded.line,
                text: String::new(),
                api_version: recorded.api_version.clone(),
                kind: recorded.kind.clone(),
                namespace: recorded.namespace.clone(),
                name: recorded.name.clone(),
                class: recorded.class,
                value,
            })),
            None => {
                unread.push((documents.len(), recorded));
                documents.push(None);
            }
        }
    }
    if !unread.is_empty() {
        let ids = unread
            .iter()
            .map(|(_, recorded)| BlobId::parse(recorded.blob.as_deref().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StageError::permanent(error.to_string()))?;
        let source = crate::recorded_blobs::ReleaseBlobs {
            fetched,
            release_dir: &context.request.release_dir,
            recorded_by: context.input_stage_recording(BaseFetched::EVENT_TYPE),
        };
        let bodies = source.read(&context.blobs, &ids)?;
        let reuse = Reuse::Share(&cache);
        let parse =
            |((_, recorded), bytes): (&(usize, &crate::events::FetchedDocument), &Vec<u8>)| {
                let mut parsed =
                    parse_documents_with(&recorded.file, bytes, reuse).map_err(|error| {
                        StageError::permanent(format!(
                            "recorded document no longer parses: {error}"
                        ))
                    })?;
                Ok(parsed.pop().map(|mut document| {
                    document.index = recorded.index;
                    document.line = recorded.line;
                    document
                }))
            };
        let pairs: Vec<_> = unread.iter().zip(bodies.iter()).collect();
        let parsed = windlass_manifest::parallel::parallel_map(&pairs, 64, |pair| parse(*pair));
        for ((position, _), document) in unread.iter().zip(parsed) {
            documents[*position] = document?;
        }
    }
    Ok(documents.into_iter().flatten().collect())
}

#[async_trait::async_trait]
impl Stage for ProbeImages {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let config = &self.config;
        // In a replay, what the registries answered (and which images were known) comes from
        // this stage's recorded fact; no registry is asked.
        let replaying = context.services.recorded.is_some();
        let recorded =
            context.services.recorded.as_ref().and_then(|run| {
                run.fact_part::<ImagesProbed, RecordedAnswers>(&context.stage_name)
            });
        let fetched = context.input_shared::<BaseFetched>()?;
        let clock = std::time::Instant::now();
        let documents = documents_of(&fetched, context)?;
        tracing::debug!(documents = documents.len(), elapsed = ?clock.elapsed(), "read recorded documents");
        let rules: Vec<ImageRule> = match &config.config_file {
            Some(_) if recorded.is_some() => recorded
                .as_ref()
                .map(|recorded| recorded.rules.clone())
                .unwrap_or_default(),
            Some(path) => {
                WindlassConfig::load(path)
                    .map_err(|error| StageError::invalid_input(error.to_string()))?
                    .images
                    .rules
            }
            None => Vec::new(),
        };
        let mut found = discover(documents.iter().map(Document::as_source), &rules)
            .map_err(|error| StageError::invalid_input(error.to_string()))?;
        // The documents after the recorded ones are kots.io/v1beta2 charts' builder renders: their
        // images are probed and reported, but no object of theirs is patched (no pull secret).
        let reported_only: std::collections::HashSet<&str> = documents
            [fetched.documents.len().min(documents.len())..]
            .iter()
            .map(|document| document.file.as_str())
            .collect();
        if !reported_only.is_empty() {
            for image in &mut found {
                for image_use in &mut image.uses {
                    if reported_only.contains(image_use.file.as_str()) {
                        image_use.pod_spec = None;
                    }
                }
            }
        }
        let proxy_public_images = proxies_public_images(documents.iter().map(Document::as_source));
        tracing::debug!(images = found.len(), elapsed = ?clock.elapsed(), "discovered images");
        let mut driver = ProbeDriver::new(config)?;
        if replaying {
            driver = driver.without_network();
        }
        if let (Some(recorded), None) = (&recorded, &config.known_images_file) {
            driver = driver.with_known(recorded_known(recorded));
        }
        let cached = if let Some(recorded) = &recorded {
            recorded_answers(recorded)
        } else if replaying || config.cache_ttl_seconds == 0 {
            HashMap::new()
        } else if proxy_public_images {
            // Every image is private without asking: nothing earlier is needed.
            HashMap::new()
        } else {
            let ttl = Duration::from_secs(config.cache_ttl_seconds);
            load_cached_results(context, &driver, &found, ttl)?
        };
        tracing::debug!(cached = cached.len(), elapsed = ?clock.elapsed(), "loaded earlier results");
        let progress = context.progress.clone();
        let stage_name = context.stage_name.clone();
        let on_probed =
            move |done: u64, total: u64| progress.stage_advanced(&stage_name, done, total);
        let resolved = driver
            .resolve(
                &found,
                proxy_public_images,
                &cached,
                &on_probed,
                context.services.clock.as_ref(),
            )
            .await?;
        // In local-registry mode every image is rewritten whatever its probe says: a decision
        // the policy refuses to make stops nothing.
        if let Some(refusal) = resolved.refusal()
            && context.request.local_registry.is_none()
        {
            return Err(StageError::permanent(refusal));
        }
        // A replay made no request: it reports what the original run cost.
        let requests_made = recorded
            .as_ref()
            .map_or(resolved.requests_made, |recorded| recorded.requests_made);
        let summary = match &context.request.local_registry {
            // The outcomes only report: every image is pulled from the local registry.
            Some(registry) => format!(
                "{}; local-registry mode: reported only, every image is pulled from {}",
                summarise_outcomes(&resolved.images, requests_made),
                registry.host
            ),
            None => summarise(&resolved.images, requests_made),
        };
        let fact = Fact::of(&ImagesProbed {
            policy: config.policy,
            offline: config.offline,
            proxy_public_images,
            requests_made,
            rules,
            images: resolved.images,
        })?;
        Ok(StageOutput {
            facts: vec![fact],
            summary,
        })
    }
}

/// What a replay reads of the recorded `ImagesProbed`: the answers, without the uses (a big
/// release's uses are most of the fact).
#[derive(Deserialize)]
struct RecordedAnswers {
    requests_made: u64,
    rules: Vec<ImageRule>,
    images: Vec<RecordedAnswer>,
}

/// One image's recorded answer (see [`ProbedImage`] for the fields).
#[derive(Deserialize)]
struct RecordedAnswer {
    image: String,
    outcome: ImageOutcome,
    private: bool,
    source: ResultSource,
    probed_at: Option<String>,
    reason: String,
    evidence: Option<ProbeEvidence>,
}

/// What the registries answered in the recorded run, as results to reuse: every image whose
/// result came from a probe (then or from the cache), with its recorded source and reason.
fn recorded_answers(recorded: &RecordedAnswers) -> HashMap<String, CachedResult> {
    let mut answers = HashMap::new();
    for image in &recorded.images {
        if !matches!(
            image.source,
            ResultSource::Probed | ResultSource::Cache { .. }
        ) {
            continue;
        }
        let (Some(evidence), Some(probed_at), Some(outcome)) = (
            &image.evidence,
            &image.probed_at,
            image.outcome.probe_outcome(),
        ) else {
            continue;
        };
        answers.entry(image.image.clone()).or_insert(CachedResult {
            outcome,
            evidence: evidence.clone(),
            probed_at: probed_at.clone(),
            source: image.source.clone(),
            reason: image.reason.clone(),
        });
    }
    answers
}

/// The known results of the recorded run (image as written → private).
fn recorded_known(recorded: &RecordedAnswers) -> HashMap<String, bool> {
    recorded
        .images
        .iter()
        .filter(|image| image.source == ResultSource::KnownImages)
        .map(|image| (image.image.clone(), image.private))
        .collect()
}

/// `5 images: 1 public, 4 private (4 unreachable); 12 registry requests`, plus a note when
/// images are private only because their registry could not be asked.
pub fn summarise(images: &[ProbedImage], requests_made: u64) -> String {
    let mut summary = summarise_outcomes(images, requests_made);
    let unanswered = images
        .iter()
        .filter(|image| image.private && image.outcome == ImageOutcome::Unreachable)
        .count();
    if unanswered > 0 {
        summary.push_str(&format!(
            " — {unanswered} unreachable image(s) proxied, as KOTS does (--probe-policy strict refuses instead)"
        ));
    }
    summary
}

/// `5 images: 1 public, 4 private (4 unreachable); 12 registry requests`.
fn summarise_outcomes(images: &[ProbedImage], requests_made: u64) -> String {
    let public = images.iter().filter(|image| !image.private).count();
    let private = images.len() - public;
    let mut by_outcome: Vec<(ImageOutcome, usize)> = Vec::new();
    for image in images.iter().filter(|image| image.private) {
        match by_outcome
            .iter_mut()
            .find(|(outcome, _)| *outcome == image.outcome)
        {
            Some((_, count)) => *count += 1,
            None => by_outcome.push((image.outcome, 1)),
        }
    }
    let detail = by_outcome
        .iter()
        .map(|(outcome, count)| format!("{count} {outcome}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cached = images
        .iter()
        .filter(|image| matches!(image.source, ResultSource::Cache { .. }))
        .count();
    let mut summary = format!(
        "{} images: {public} public, {private} private",
        images.len()
    );
    if !detail.is_empty() {
        summary.push_str(&format!(" ({detail})"));
    }
    if cached > 0 {
        summary.push_str(&format!("; {cached} from cache"));
    }
    summary.push_str(&format!("; {requests_made} registry requests"));
    summary
}

/// What the prober needs to ask the registry about `reference`.
fn probe_target(reference: &ImageReference) -> windlass_registry::ProbeTarget {
    windlass_registry::ProbeTarget {
        image: reference.written().to_string(),
        registry: reference.registry().to_string(),
        repository: reference.repository().to_string(),
        reference: reference.manifest_reference().to_string(),
    }
}
