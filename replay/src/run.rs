//! The replay itself: re-runs a recorded install offline through the stages' own code, into a
//! scratch directory, from what the log holds, and compares what it produced with what the install
//! recorded, stage by stage. The release comes from the blobs `BaseFetched` names; each stage gets
//! the configuration `InstallStarted` recorded (for installs recorded before configurations were,
//! what the facts say and the defaults otherwise); the clock is stopped at the install's start;
//! there is no network (a refusing HTTP client, and `probe_images` answers from its recorded
//! `ImagesProbed`), no cluster and no random source; the facts the install recorded reach every
//! stage through `Services::recorded`. A what-if is the same run with some options changed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use windlass_apply::target::Target;
use windlass_engine::events::InstallStarted;
use windlass_engine::{
    ConfigValuesInput, FixedClock, HttpClient, InstallRequest, InstallState, InstallStatus,
    License, Memo, NoKubernetes, NoProgress, NoRandom, Pipeline, RecordedRun, Runner, Services,
    StageRegistry, StageSpec, StageStatus, fold_owned,
};
use windlass_stages::events::{
    BaseFetched, ImagesProbed, OverridesPlanned, ProbePolicy, SecretsProvisioned,
};
use windlass_stages::release::{Limits, ReleaseSnapshot, digest_keeping_files};
use windlass_state::{
    BlobId, EventPayload, LazyEvent, NewEvent, SchemaRegistry, SecretString, StateDir, StoredEvent,
    verify_chain,
};

use crate::ReplayError;
use crate::compare::{
    Known, base_fetched_equal_but_for_license, comparable_fields, field_differences,
    first_differing_line, output_files, written_as,
};
use crate::events::{Difference, ReplayDiffered, ReplayVerified};
use crate::scratch::{Scratch, read_blobs, release_files};

/// Options a what-if changes; `None` keeps what the install recorded.
#[derive(Debug, Clone, Default)]
pub struct WhatIf {
    /// `plan_overrides`' proxy host.
    pub proxy_domain: Option<String>,
    /// `plan_overrides`' registry host.
    pub registry_domain: Option<String>,
    /// `probe_images`' policy.
    pub probe_policy: Option<ProbePolicy>,
    /// A KOTS `Installation` whose known images replace the recorded ones.
    pub known_images: Option<PathBuf>,
    /// The app namespace.
    pub namespace: Option<String>,
    /// `provision_secrets`' legacy secret.
    pub kots_compat: Option<bool>,
    /// Local-registry mode with this host (an install recorded in proxy mode gets no
    /// credentials).
    pub registry_host: Option<String>,
    /// This local registry namespace.
    pub registry_namespace: Option<String>,
}

impl WhatIf {
    /// Whether nothing is changed (a plain replay).
    pub fn is_empty(&self) -> bool {
        self.proxy_domain.is_none()
            && self.registry_domain.is_none()
            && self.probe_policy.is_none()
            && self.known_images.is_none()
            && self.namespace.is_none()
            && self.kots_compat.is_none()
            && self.registry_host.is_none()
            && self.registry_namespace.is_none()
    }
}

/// How to replay.
#[derive(Default)]
pub struct ReplayOptions {
    /// The license (`--license`), read by the caller; its fingerprint must be the recorded one.
    pub license: Option<License>,
    /// Its file's bytes, put where the release held its license file.
    pub license_bytes: Option<Vec<u8>>,
    /// The user's ConfigValues (`--config-values`), read by the caller; its fingerprint must be
    /// the recorded one. Without it the install's recorded values are used (all but passwords).
    pub config_values: Option<ConfigValuesInput>,
    /// The local registry's password (`--registry-password-file`), read by the caller, with its
    /// keyed fingerprint, which must be the recorded one. Without it, an install in
    /// local-registry mode with a password replays with a placeholder and its pull secrets are
    /// not compared.
    pub registry_password: Option<(SecretString, String)>,
    /// Options changed for a what-if.
    pub what_if: WhatIf,
    /// Stage kinds registered besides the built-in ones (the plugin host's and the in-process
    /// plugins the binary was built with), so that an install that ran them replays.
    pub kinds: Vec<windlass_engine::StageKind>,
}

/// One stage's verdict (wire format: `replay --json`).
#[derive(Debug, Clone, Serialize)]
pub struct StageVerdict {
    /// The stage.
    pub stage: String,
    /// `identical`, `differs`, `failed` (in the replay), `not_run`, or `not_replayed` (an apply
    /// to a cluster, which a replay never contacts).
    pub status: &'static str,
    /// Facts compared.
    pub facts: u64,
    /// Files compared (byte for byte or by fingerprint).
    pub files: u64,
}

/// What a replay found (wire format: `replay --json`).
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The install replayed.
    pub install_id: String,
    /// Whether options were changed (a what-if).
    pub what_if: bool,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageVerdict>,
    /// Every difference, in pipeline order.
    pub differences: Vec<Difference>,
    /// Files compared byte for byte.
    pub files_compared: u64,
    /// Files holding secrets compared by keyed fingerprint.
    pub secret_files_compared: u64,
    /// Files holding secrets left unchecked (no `--license`).
    pub secret_files_unchecked: u64,
    /// Facts compared.
    pub facts_compared: u64,
    /// The fingerprint of the license given, if one was.
    pub license_fingerprint: Option<String>,
    /// How long the replay took.
    pub duration_ms: u64,
    /// What could not be verified, and why.
    pub unverified: Vec<String>,
}

impl ReplayReport {
    /// Whether the replay produced exactly what was recorded.
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }
}

/// At most this many differences are listed per fact.
const FIELD_LIMIT: usize = 20;

/// Replays `install_id` of `state` (see the module documentation). Records nothing.
///
/// The log's hash chain is checked on a thread of its own while the replay runs (it reads the
/// whole log, the replay only the install's records); a damaged log is the answer whatever the
/// replay found.
pub async fn replay(
    state: &StateDir,
    schemas: Arc<SchemaRegistry>,
    install_id: &str,
    options: ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let began = Instant::now();
    let chain_log = state.log.clone();
    let chain_check = std::thread::spawn(move || {
        verify_chain(chain_log.store())
            .map(|_| ())
            .map_err(|error| ReplayError::DamagedLog {
                global_seq: error.global_seq(),
                message: error.to_string(),
            })
    });
    let result = replay_unchecked(state, schemas, install_id, options, began).await;
    chain_check
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    tracing::debug!(elapsed = ?began.elapsed(), "verified the log");
    let mut report = result?;
    report.duration_ms = began.elapsed().as_millis() as u64;
    Ok(report)
}

/// [`replay`] without the chain check.
async fn replay_unchecked(
    state: &StateDir,
    schemas: Arc<SchemaRegistry>,
    install_id: &str,
    options: ReplayOptions,
    began: Instant,
) -> Result<ReplayReport, ReplayError> {
    // The two largest facts of a big release are read as text and decoded only in the parts
    // read (BaseFetched's files and templates, ImagesProbed's answers); compared as text.
    let leave_raw = |event_type: &str| {
        event_type == BaseFetched::EVENT_TYPE || event_type == ImagesProbed::EVENT_TYPE
    };
    let (events, raw_payloads) = LazyEvent::split_texts(
        state
            .log
            .events_of_leaving_raw(install_id, &leave_raw)
            .map_err(|error| ReplayError::Log(error.to_string()))?,
    );
    if events.is_empty() {
        return Err(ReplayError::NotFound(install_id.to_string()));
    }
    let started = InstallStarted::deserialize(&events[0].payload)
        .map_err(|error| ReplayError::Recorded(format!("InstallStarted: {error}")))?;
    let started_at = events[0].recorded_at.clone();
    let mut recorded_install =
        fold_owned(install_id, events).map_err(|error| ReplayError::Recorded(error.to_string()))?;
    if recorded_install.status != InstallStatus::Completed {
        return Err(ReplayError::NotCompleted {
            install_id: install_id.to_string(),
            status: recorded_install.status.as_str().to_string(),
        });
    }
    // The facts move into what the replayed stages consult, and are compared from there (the
    // facts of a big release are large: they are never copied).
    let recorded_facts: HashMap<String, Vec<StoredEvent>> = recorded_install
        .stages
        .iter_mut()
        .map(|stage| (stage.name.clone(), std::mem::take(&mut stage.fact_events)))
        .collect();
    let recorded_run = Arc::new(RecordedRun {
        install_id: install_id.to_string(),
        facts: recorded_facts,
        blobs: Some(state.blobs.clone()),
        raw_payloads,
    });
    let recorded_facts = &recorded_run.facts;
    let license_given = options.license.is_some();
    let license = replay_license(&started, options.license)?;
    let license_fingerprint = license_given
        .then(|| license.as_ref().map(|l| l.fingerprint.clone()))
        .flatten();

    tracing::debug!(elapsed = ?began.elapsed(), "folded the install");
    let scratch = Scratch::new()?;
    if let Some((source, undeploy)) = started.pipeline.iter().find_map(|stage| {
        (stage.kind == windlass_apply::stage::KIND)
            .then(|| {
                let source = stage.config.get("source_install")?.as_str()?;
                let undeploy = stage.config.get("undeploy") == Some(&serde_json::Value::Bool(true));
                Some((source, undeploy))
            })
            .flatten()
    }) {
        return Err(ReplayError::Recorded(if undeploy {
            format!(
                "install {install_id} is a `windlass undeploy` of the app install {source} names: it renders nothing to replay"
            )
        } else {
            format!(
                "install {install_id} is a `windlass apply` of what install {source} rendered: it renders nothing to replay (replay {source})"
            )
        }));
    }
    let (fetch_stage, fetched) = recorded_install
        .stages
        .iter()
        .find_map(|stage| {
            recorded_facts
                .get(&stage.name)?
                .iter()
                .find(|event| event.is::<BaseFetched>())
                .map(|event| (stage.name.clone(), event))
        })
        .ok_or_else(|| ReplayError::Recorded("the install recorded no BaseFetched".into()))?;
    let fetched = recorded_run
        .decode::<BaseFetched>(fetched)
        .map_err(|error| ReplayError::Recorded(format!("BaseFetched: {error}")))?;
    let templates = fetched.templates.clone().unwrap_or_default();
    let mut license = license;
    if !license_given && let Some(license) = &mut license {
        // Without the license file, templates read the fields the install recorded.
        license.fields = templates.license_fields.clone();
    }
    if let Some(values) = &options.config_values
        && templates.config_values_fingerprint.as_ref() != Some(&values.fingerprint)
    {
        return Err(ReplayError::ConfigValuesMismatch {
            given: values.fingerprint.clone(),
            recorded: templates
                .config_values_fingerprint
                .clone()
                .unwrap_or_else(|| "none (the install ran without ConfigValues)".into()),
        });
    }
    let mut unverified = Vec::new();
    if options.config_values.is_none() && !templates.given_password_fingerprints.is_empty() {
        unverified.push(format!(
            "the password values the install's ConfigValues gave ({}) are recorded by keyed fingerprint only: their fingerprints are carried over, not checked, and a render reading them is not reproduced (pass --config-values FILE)",
            templates
                .given_password_fingerprints
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (local_registry, secrets_known) = replay_local_registry(
        recorded_facts,
        options.registry_password,
        &options.what_if,
        license_given,
        &mut unverified,
    )?;
    // The files whose rendered text held a password value render the same only when every
    // password they may hold is known: the user's (--config-values), a generated one (its draws
    // are withheld: only the user's file, which wins over them, helps) and, in local-registry
    // mode, the registry's (--registry-password-file).
    let mut password_files: Vec<&str> = templates
        .files
        .iter()
        .filter(|file| file.holds_password)
        .map(|file| file.path.as_str())
        .collect();
    // The effective ConfigValues, when they hold a password value.
    if templates
        .effective_values
        .as_ref()
        .is_some_and(|effective| effective.fingerprint.is_some())
    {
        password_files.push(windlass_stages::install::EFFECTIVE_CONFIG_VALUES_FILE);
    }
    let config_given = options.config_values.is_some();
    let mut missing = Vec::new();
    if !config_given
        && (!templates.given_password_fingerprints.is_empty()
            || templates.config_random_draws_withheld)
    {
        missing.push("--config-values FILE");
    }
    if local_registry.is_some() && !secrets_known {
        missing.push("--registry-password-file FILE");
    }
    let passwords_known = password_files.is_empty() || missing.is_empty();
    if !passwords_known {
        unverified.push(format!(
            "the rendered text of {} held password values, which are recorded by keyed fingerprint only: the files holding secrets are not compared (pass {})",
            password_files.join(", "),
            missing.join(" and ")
        ));
    }
    let release = release_files(
        &fetched,
        &fetch_stage,
        &state.blobs,
        options.license_bytes.as_deref(),
    )?;
    let release_dir = std::fs::canonicalize(scratch.release())
        .map_err(|error| ReplayError::Scratch(error.to_string()))?;

    tracing::debug!(elapsed = ?began.elapsed(), "rebuilt the release from its blobs");
    let ReplaySpecs { specs, left_out } = replay_specs(
        &started,
        &recorded_run,
        &options.what_if,
        &scratch.apply_targets(),
    )?;
    for stage in &left_out {
        unverified.push(format!(
            "stage {} applied to a cluster ({}): a replay never contacts a cluster, so it is not run again and its recorded results are not checked (`windlass show` lists them)",
            stage.name, stage.target
        ));
    }
    let mut kinds = windlass_stages::stage_kinds();
    kinds.push(windlass_apply::stage::kind());
    kinds.extend(options.kinds.iter().cloned());
    let registry = StageRegistry::new(&kinds);
    let pipeline = Pipeline::build(&specs, &registry)
        .map_err(|error| ReplayError::Recorded(format!("the recorded pipeline: {error}")))?;
    let memo = Arc::new(Memo::default());
    let snapshot = memo.get::<ReleaseSnapshot>();
    // fetch_base takes the release from the snapshot: nothing is written or read on the disk.
    let release_digest =
        digest_keeping_files(release_dir.clone(), &Limits::default(), release, &snapshot);
    // The replayed run's events are compared and thrown away: they are kept in memory, never
    // written (a stored log would sync each batch to disk).
    let scratch_log =
        windlass_state::EventLog::new(Arc::new(windlass_state::MemoryStore::new()), schemas);
    // The replayed run's blobs are thrown away: held in memory, never written.
    let replay_blobs = Arc::new(windlass_state::BlobStore::in_memory());
    // helm's recorded output for each HelmChart: fetch_base takes it from the blob store instead
    // of running helm. A chart holding a password value has no blob (its output was never
    // stored): fetch_base runs helm again for it.
    let chart_outputs: Vec<BlobId> = fetched
        .helm_charts
        .iter()
        .filter_map(|chart| chart.output_blob.as_deref())
        .map(|hex| {
            BlobId::parse(hex).map_err(|_| {
                ReplayError::Recorded(format!("BaseFetched: invalid helm output blob id {hex}"))
            })
        })
        .collect::<Result<_, _>>()?;
    if !chart_outputs.is_empty() {
        let outputs = read_blobs(&state.blobs, &chart_outputs, &fetch_stage, |index| {
            format!(
                "helm output of HelmChart {}",
                fetched.helm_charts[index].name
            )
        })?;
        for output in &outputs {
            replay_blobs
                .put(output)
                .map_err(|error| ReplayError::Scratch(error.to_string()))?;
        }
        replay_blobs
            .sync()
            .map_err(|error| ReplayError::Scratch(error.to_string()))?;
    }
    let started_at =
        time::OffsetDateTime::parse(&started_at, &time::format_description::well_known::Rfc3339)
            .map_err(|error| {
                ReplayError::Recorded(format!("InstallStarted.recorded_at: {error}"))
            })?;
    let runner = Runner {
        log: scratch_log.clone(),
        blobs: replay_blobs,
        fingerprint_key: state.fingerprint_key.clone(),
        actor: "windlass replay".into(),
        progress: Arc::new(NoProgress),
        memo,
        services: Services {
            http: HttpClient::refusing("a replay answers from the recorded facts"),
            kubernetes: Arc::new(NoKubernetes),
            clock: Arc::new(FixedClock(started_at)),
            random: Arc::new(NoRandom),
            recorded: Some(recorded_run.clone()),
            output_in_memory: Some(scratch.output().clone()),
            locks: None,
            state_dir: None,
        },
    };
    let request = InstallRequest {
        release_dir,
        release_digest: release_digest.clone(),
        out_dir: scratch.out(),
        requested_out: None,
        namespace: options
            .what_if
            .namespace
            .clone()
            .unwrap_or_else(|| started.namespace.clone()),
        license,
        // Without the file, fetch_base renders with the values the install recorded.
        config_values: options.config_values.clone(),
        local_registry,
        carried_config_values: None,
        kind: started.kind(),
    };
    let (replayed, _) = runner
        // Under the recorded install's id, so that facts naming the install (an apply's
        // `rendered_by`) are those it recorded.
        .start(&pipeline, Arc::new(request), install_id)
        .await
        .map_err(|error| ReplayError::Scratch(format!("the replayed run stopped: {error}")))?;

    tracing::debug!(elapsed = ?began.elapsed(), "ran the pipeline");
    let mut report = ReplayReport {
        install_id: install_id.to_string(),
        what_if: !options.what_if.is_empty(),
        stages: Vec::new(),
        differences: Vec::new(),
        files_compared: 0,
        secret_files_compared: 0,
        secret_files_unchecked: 0,
        facts_compared: 0,
        license_fingerprint,
        duration_ms: 0,
        unverified,
    };
    if release_digest != started.release_digest {
        report.differences.push(Difference {
            stage: fetch_stage.clone(),
            file: None,
            kind: "fact".into(),
            detail: format!(
                "release digest: {} → {release_digest}",
                started.release_digest
            ),
        });
    }
    compare_stages(
        state,
        &scratch,
        Recorded {
            install: &recorded_install,
            run: &recorded_run,
            fetched: &fetched,
        },
        &replayed,
        Known {
            license: license_given,
            secrets: secrets_known,
            passwords: passwords_known,
        },
        &mut report,
    )?;
    for verdict in &mut report.stages {
        if left_out.iter().any(|stage| stage.name == verdict.stage) {
            verdict.status = "not_replayed";
        }
    }
    tracing::debug!(elapsed = ?began.elapsed(), "compared every stage");
    // Freeing what both runs recorded and produced (tens of megabytes of JSON trees on a big
    // release) takes a while and decides nothing: it happens on a thread of its own.
    windlass_manifest::parallel::free_apart((
        recorded_install,
        recorded_run,
        replayed,
        runner,
        scratch_log,
    ));
    drop(scratch);
    tracing::debug!(elapsed = ?began.elapsed(), "removed the scratch directory");
    Ok(report)
}

/// The license the replayed run gets: the one given (which must be the recorded one), or, without
/// `--license`, the recorded app slug, sequence, expiry and fingerprint with a placeholder ID
/// (then the files holding secrets cannot be compared).
fn replay_license(
    started: &InstallStarted,
    given: Option<License>,
) -> Result<Option<License>, ReplayError> {
    let recorded = started.license.as_ref();
    match (given, recorded) {
        (Some(given), Some(recorded)) if given.fingerprint != recorded.fingerprint => {
            Err(ReplayError::LicenseMismatch {
                given: given.fingerprint,
                recorded: recorded.fingerprint.clone(),
            })
        }
        (Some(_), None) => Err(ReplayError::LicenseMismatch {
            given: "a license".into(),
            recorded: "none (the install ran without a license)".into(),
        }),
        (Some(given), Some(_)) => Ok(Some(given)),
        (None, Some(recorded)) => Ok(Some(License {
            app_slug: recorded.app_slug.clone(),
            license_id: SecretString::new("windlass-replay-without-a-license"),
            sequence: recorded.sequence,
            expires_at: recorded.expires_at.clone(),
            fingerprint: recorded.fingerprint.clone(),
            // Filled from BaseFetched's record of the fields templates could read.
            fields: Default::default(),
        })),
        (None, None) => Ok(None),
    }
}

/// The local registry the replayed run gets: the one `OverridesPlanned` recorded (with the
/// password given, whose fingerprint must be the recorded one, else a placeholder), or the
/// what-if's. Also whether the secrets can be compared: in local-registry mode they derive from
/// the registry's credentials, not the license.
fn replay_local_registry(
    recorded_facts: &HashMap<String, Vec<StoredEvent>>,
    password: Option<(SecretString, String)>,
    what_if: &WhatIf,
    license_given: bool,
    unverified: &mut Vec<String>,
) -> Result<(Option<windlass_engine::LocalRegistryInput>, bool), ReplayError> {
    let recorded = recorded_facts
        .values()
        .flatten()
        .find(|event| event.is::<OverridesPlanned>())
        .map(|event| {
            OverridesPlanned::deserialize(&event.payload)
                .map_err(|error| ReplayError::Recorded(format!("OverridesPlanned: {error}")))
        })
        .transpose()?
        .and_then(|planned| planned.local_registry);
    let recorded_fingerprint = recorded
        .as_ref()
        .and_then(|registry| registry.password_fingerprint.clone());
    if let Some((_, given)) = &password
        && recorded_fingerprint.as_ref() != Some(given)
    {
        return Err(ReplayError::RegistryPasswordMismatch {
            given: given.clone(),
            recorded: recorded_fingerprint.unwrap_or_else(|| {
                "none (the install did not run in local-registry mode with a password)".into()
            }),
        });
    }
    let Some(recorded) = recorded else {
        let registry =
            what_if
                .registry_host
                .as_ref()
                .map(|host| windlass_engine::LocalRegistryInput {
                    host: host.clone(),
                    namespace: what_if.registry_namespace.clone().unwrap_or_default(),
                    username: None,
                    password: None,
                    password_fingerprint: None,
                });
        return Ok((registry, license_given));
    };
    let secrets_known = recorded.password_fingerprint.is_none() || password.is_some();
    if !secrets_known {
        unverified.push(
            "the local registry's password is recorded by keyed fingerprint only: the pull secrets are not compared (pass --registry-password-file FILE)".into(),
        );
    }
    let password_secret = password.map(|(password, _)| password).or_else(|| {
        recorded
            .password_fingerprint
            .as_ref()
            .map(|_| SecretString::new("windlass-replay-without-the-registry-password"))
    });
    Ok((
        Some(windlass_engine::LocalRegistryInput {
            host: what_if.registry_host.clone().unwrap_or(recorded.host),
            namespace: what_if
                .registry_namespace
                .clone()
                .unwrap_or(recorded.namespace),
            username: recorded.username,
            password: password_secret,
            password_fingerprint: recorded.password_fingerprint,
        }),
        secrets_known,
    ))
}

/// The pipeline as recorded, made to run offline: files naming registries and known images are
/// not read (their answers come from the record), and the what-if's changes applied. A stage
/// recorded without its configuration (before `InstallStarted` version 3) gets what its facts say
/// (`probe_images`: policy and offline) and the defaults otherwise. An `apply` stage writing to a
/// directory writes into `apply_targets/<stage>` instead; one applying to a cluster is left out
/// (a replay never contacts a cluster) and returned with its target, unless another stage reads
/// its facts, which cannot be replayed.
fn replay_specs(
    started: &InstallStarted,
    recorded: &RecordedRun,
    what_if: &WhatIf,
    apply_targets: &std::path::Path,
) -> Result<ReplaySpecs, ReplayError> {
    let mut left_out = Vec::new();
    let specs = started
        .pipeline
        .iter()
        .filter(|stage| {
            let to_a_cluster = matches!(apply_target(stage), Some(Target::Kube { .. }));
            if to_a_cluster {
                left_out.push(LeftOutStage {
                    name: stage.name.clone(),
                    target: stage.config["target"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                });
            }
            !to_a_cluster
        })
        .map(|stage| {
            let mut config = match &stage.config {
                Value::Object(_) => stage.config.clone(),
                _ => Value::Object(Default::default()),
            };
            let object = config.as_object_mut().expect("an object");
            match stage.kind.as_str() {
                "probe_images" => {
                    if stage.config.is_null()
                        && let Some(probed) = recorded.fact::<ImagesProbed>(&stage.name)
                    {
                        object.insert("policy".into(), serde_json::json!(probed.policy));
                        object.insert("offline".into(), Value::Bool(probed.offline));
                    }
                    object.remove("registries_file");
                    object.remove("known_images_file");
                    if let Some(policy) = what_if.probe_policy {
                        object.insert("policy".into(), serde_json::json!(policy));
                    }
                    if let Some(path) = &what_if.known_images {
                        object.insert("known_images_file".into(), serde_json::json!(path));
                    }
                }
                "plan_overrides" => {
                    if let Some(host) = &what_if.proxy_domain {
                        object.insert("proxy_domain".into(), Value::String(host.clone()));
                    }
                    if let Some(host) = &what_if.registry_domain {
                        object.insert("registry_domain".into(), Value::String(host.clone()));
                    }
                }
                "provision_secrets" => {
                    if let Some(kots_compat) = what_if.kots_compat {
                        object.insert("kots_compat".into(), Value::Bool(kots_compat));
                    }
                }
                windlass_apply::stage::KIND
                    if matches!(apply_target(stage), Some(Target::Dir(_))) =>
                {
                    let target = apply_targets.join(&stage.name);
                    object.insert(
                        "target".into(),
                        Value::String(format!("dir:{}", target.display())),
                    );
                }
                _ => {}
            }
            StageSpec {
                name: stage.name.clone(),
                kind: stage.kind.clone(),
                inputs: stage.inputs.clone(),
                config,
            }
        })
        .collect::<Vec<_>>();
    for spec in &specs {
        if let Some(stage) = left_out
            .iter()
            .find(|stage| spec.inputs.contains(&stage.name))
        {
            return Err(ReplayError::Recorded(format!(
                "stage {} reads the facts of stage {}, which applied to a cluster: a replay never contacts a cluster, so neither can be replayed",
                spec.name, stage.name
            )));
        }
    }
    Ok(ReplaySpecs { specs, left_out })
}

/// The target of a recorded `apply` stage (`None` for other stages, or an unreadable target,
/// which the stage itself then refuses).
fn apply_target(stage: &windlass_engine::events::PipelineStageRecord) -> Option<Target> {
    (stage.kind == windlass_apply::stage::KIND)
        .then(|| Target::parse(stage.config.get("target")?.as_str()?).ok())
        .flatten()
}

/// The pipeline a replay runs, and the recorded stages it leaves out.
struct ReplaySpecs {
    specs: Vec<StageSpec>,
    left_out: Vec<LeftOutStage>,
}

/// A recorded `apply` stage that applied to a cluster, which a replay never contacts.
struct LeftOutStage {
    name: String,
    /// Its recorded target (`kube` or `kube:CONTEXT`).
    target: String,
}

/// What the install recorded, as [`compare_stages`] reads it.
#[derive(Clone, Copy)]
struct Recorded<'a> {
    install: &'a InstallState,
    run: &'a RecordedRun,
    /// Its `BaseFetched`, decoded.
    fetched: &'a BaseFetched,
}

/// Compares every stage of `replayed` with `recorded` (whose facts are `recorded_facts`), in
/// pipeline order. Facts are compared field by field without being copied; a file is identical
/// when the blob id the replayed stage computed from the bytes it wrote is the recorded one (both
/// facts are hash-chained records), and only a file whose ids differ is read, with its recorded
/// blob, to show where.
fn compare_stages(
    state: &StateDir,
    scratch: &Scratch,
    recorded: Recorded<'_>,
    replayed: &InstallState,
    known: Known,
    report: &mut ReplayReport,
) -> Result<(), ReplayError> {
    let Recorded {
        install: recorded,
        run: recorded_run,
        fetched: recorded_fetched,
    } = recorded;
    let recorded_facts = &recorded_run.facts;
    // Tens of thousands of paths on a big release: hashed with Fx, not SipHash.
    let mut listed: FxHashSet<&str> = FxHashSet::default();
    // The pull-secret files, listed by a fact decoded here.
    let mut secret_files_listed: FxHashSet<String> = FxHashSet::default();
    let no_facts = Vec::new();
    // A file a later stage wrote again (a plugin placed after render_midstream rewrites
    // rendered/) is compared on disk for the last stage that lists it; for the earlier ones, the
    // replayed fact's blob or fingerprint is compared with the recorded one.
    let mut last_lister: FxHashMap<&str, &str> = FxHashMap::default();
    for stage in &recorded.stages {
        for fact in recorded_facts.get(&stage.name).unwrap_or(&no_facts) {
            for file in output_files(&fact.event_type, &fact.payload) {
                last_lister.insert(file.path, stage.name.as_str());
            }
        }
    }
    let superseded =
        |stage: &str, path: &str| last_lister.get(path).is_some_and(|last| *last != stage);
    for recorded_stage in &recorded.stages {
        let name = &recorded_stage.name;
        let recorded_events = recorded_facts.get(name).unwrap_or(&no_facts);
        let before = report.differences.len();
        let mut verdict = StageVerdict {
            stage: name.clone(),
            status: "identical",
            facts: 0,
            files: 0,
        };
        let Some(replayed_stage) = replayed.stages.iter().find(|stage| &stage.name == name) else {
            verdict.status = "not_run";
            report.stages.push(verdict);
            continue;
        };
        match replayed_stage.status {
            StageStatus::Completed => {}
            StageStatus::Failed => {
                report.differences.push(Difference {
                    stage: name.clone(),
                    file: None,
                    kind: "failed".into(),
                    detail: replayed_stage
                        .last_error
                        .as_ref()
                        .map_or("failed".into(), |error| error.message.clone()),
                });
                verdict.status = "failed";
                report.stages.push(verdict);
                continue;
            }
            _ => {
                report.differences.push(Difference {
                    stage: name.clone(),
                    file: None,
                    kind: "failed".into(),
                    detail: "not run: an input stage did not complete".into(),
                });
                verdict.status = "not_run";
                report.stages.push(verdict);
                continue;
            }
        }
        // Facts, by type and position. When every fact is the one recorded, so are the files
        // they list, blob ids and fingerprints included.
        let mut every_fact_equal = true;
        let recorded_by_type = by_type(recorded_events);
        let replayed_by_type = by_type(&replayed_stage.fact_events);
        for (event_type, events) in &recorded_by_type {
            let others = replayed_by_type.get(event_type);
            for (index, event) in events.iter().enumerate() {
                verdict.facts += 1;
                report.facts_compared += 1;
                let Some(other) = others.and_then(|others| others.get(index)) else {
                    every_fact_equal = false;
                    report.differences.push(Difference {
                        stage: name.clone(),
                        file: None,
                        kind: "fact".into(),
                        detail: format!("{event_type}: recorded, not produced by the replay"),
                    });
                    continue;
                };
                let mut fields = Vec::new();
                // Equal as a whole, they are equal in every field compared (the usual case:
                // taking the output file lists out of a big fact copies it). A fact read as text
                // is equal when the replayed one is written the same.
                let equal = match recorded_run.raw_payload(event) {
                    Some(text) => written_as(&other.payload, text),
                    None => event.payload == other.payload,
                };
                // Without `--license`, the release lacks its license file: BaseFetched is then
                // compared decoded, without the license files, before its JSON tree is.
                let equal_as_compared = equal
                    || (!known.license
                        && known.passwords
                        && event.is::<BaseFetched>()
                        && base_fetched_equal_but_for_license(recorded_fetched, &other.payload));
                if !equal {
                    every_fact_equal = false;
                }
                if !equal_as_compared {
                    let payload = recorded_run
                        .payload(event)
                        .map_err(|error| ReplayError::Recorded(format!("{event_type}: {error}")))?;
                    field_differences(
                        &comparable_fields(event_type, &payload, known),
                        &comparable_fields(event_type, &other.payload, known),
                        &mut fields,
                        FIELD_LIMIT,
                    );
                }
                for field in fields {
                    report.differences.push(Difference {
                        stage: name.clone(),
                        file: None,
                        kind: "fact".into(),
                        detail: format!("{event_type}: {field}"),
                    });
                }
            }
        }
        for (event_type, payloads) in &replayed_by_type {
            let recorded_count = recorded_by_type.get(event_type).map_or(0, Vec::len);
            if payloads.len() > recorded_count {
                every_fact_equal = false;
                report.differences.push(Difference {
                    stage: name.clone(),
                    file: None,
                    kind: "fact".into(),
                    detail: format!("{event_type}: produced by the replay, not recorded"),
                });
            }
        }
        // Files.
        let recorded_files: Vec<_> = recorded_events
            .iter()
            .flat_map(|fact| output_files(&fact.event_type, &fact.payload))
            .collect();
        // The replayed stage's files, looked up by path: not needed when its facts are the
        // recorded ones (then each file is the recorded one).
        let replayed_files: FxHashMap<&str, _> = if every_fact_equal {
            FxHashMap::default()
        } else {
            replayed_stage
                .fact_events
                .iter()
                .flat_map(|fact| output_files(&fact.event_type, &fact.payload))
                .map(|file| (file.path, file))
                .collect()
        };
        for file in recorded_files.iter().filter(|file| file.blob.is_some()) {
            let blob = file.blob.unwrap_or_default();
            verdict.files += 1;
            report.files_compared += 1;
            if every_fact_equal {
                continue;
            }
            if superseded(name, file.path) {
                if let Some(difference) = superseded_difference(name, file, &replayed_files) {
                    report.differences.push(difference);
                }
                continue;
            }
            if replayed_files
                .get(file.path)
                .is_some_and(|produced| produced.blob == Some(blob))
            {
                continue;
            }
            let id = BlobId::parse(blob).map_err(|_| {
                ReplayError::Recorded(format!("{name}: invalid blob id for {}", file.path))
            })?;
            match read_produced(scratch, file.path) {
                Some(produced) if BlobId::of(&produced) == id => {}
                Some(produced) => {
                    let recorded =
                        read_blobs(&state.blobs, std::slice::from_ref(&id), name, |_| {
                            file.path.to_string()
                        })?;
                    report.differences.push(Difference {
                        stage: name.clone(),
                        file: Some(file.path.to_string()),
                        kind: "changed".into(),
                        detail: first_differing_line(&recorded[0], &produced),
                    });
                }
                None => report.differences.push(Difference {
                    stage: name.clone(),
                    file: Some(file.path.to_string()),
                    kind: "removed".into(),
                    detail: "recorded, not produced by the replay".into(),
                }),
            }
        }
        for file in recorded_files.iter().filter(|file| file.blob.is_none()) {
            let Some(fingerprint) = file.fingerprint else {
                continue;
            };
            if superseded(name, file.path) {
                verdict.files += 1;
                if !known.every_secret() {
                    report.secret_files_unchecked += 1;
                    continue;
                }
                report.secret_files_compared += 1;
                if !every_fact_equal
                    && let Some(difference) = superseded_difference(name, file, &replayed_files)
                {
                    report.differences.push(difference);
                }
                continue;
            }
            compare_secret_file(
                state,
                scratch,
                name,
                file.path,
                Some(fingerprint),
                known.every_secret(),
                &mut verdict,
                report,
            )?;
        }
        let recorded_paths: FxHashSet<&str> = recorded_files.iter().map(|file| file.path).collect();
        let mut added: Vec<&str> = replayed_files
            .keys()
            .copied()
            .filter(|path| !recorded_paths.contains(path))
            .collect();
        added.sort();
        for path in added {
            report.differences.push(Difference {
                stage: name.clone(),
                file: Some(path.to_string()),
                kind: "added".into(),
                detail: "produced by the replay, not recorded".into(),
            });
        }
        listed.extend(recorded_files.into_iter().map(|file| file.path));
        listed.extend(replayed_files.into_keys());
        // The pull-secret file: its secrets are recorded by fingerprint in the fact compared
        // above; the file itself counts as a secret file.
        for fact in recorded_events {
            if fact.is::<SecretsProvisioned>()
                && let Ok(secrets) = SecretsProvisioned::deserialize(&fact.payload)
            {
                secret_files_listed.insert(secrets.file.clone());
                compare_secret_file(
                    state,
                    scratch,
                    name,
                    &secrets.file,
                    None,
                    known.every_secret(),
                    &mut verdict,
                    report,
                )?;
            }
        }
        if report.differences.len() > before {
            verdict.status = "differs";
        }
        report.stages.push(verdict);
    }
    // Anything else the replay wrote that no fact lists.
    for path in scratch.output().paths() {
        if !listed.contains(path.as_str()) && !secret_files_listed.contains(&path) {
            report.differences.push(Difference {
                stage: "(none)".into(),
                file: Some(path),
                kind: "added".into(),
                detail: "written by the replay and listed by no fact".into(),
            });
        }
    }
    Ok(())
}

/// For a file a later stage wrote again: where the replayed fact of `stage` names other bytes for
/// it than the recorded one (compared by blob id or keyed fingerprint).
fn superseded_difference(
    stage: &str,
    recorded: &crate::compare::OutputFile<'_>,
    replayed: &FxHashMap<&str, crate::compare::OutputFile<'_>>,
) -> Option<Difference> {
    let difference = |kind: &str, detail: String| Difference {
        stage: stage.to_string(),
        file: Some(recorded.path.to_string()),
        kind: kind.into(),
        detail,
    };
    match replayed.get(&recorded.path) {
        None => Some(difference(
            "removed",
            "recorded, not produced by the replay".into(),
        )),
        Some(produced)
            if produced.blob == recorded.blob && produced.fingerprint == recorded.fingerprint =>
        {
            None
        }
        Some(produced) => Some(difference(
            "changed",
            format!(
                "{} → {} (a later stage wrote the file again; compared by the facts)",
                recorded.blob.or(recorded.fingerprint).unwrap_or("-"),
                produced.blob.or(produced.fingerprint).unwrap_or("-")
            ),
        )),
    }
}

/// Facts by event type, in recorded order.
fn by_type(facts: &[StoredEvent]) -> BTreeMap<&str, Vec<&StoredEvent>> {
    let mut grouped: BTreeMap<&str, Vec<&StoredEvent>> = BTreeMap::new();
    for fact in facts {
        grouped
            .entry(fact.event_type.as_str())
            .or_default()
            .push(fact);
    }
    grouped
}

/// Counts a file holding secrets: compared by keyed fingerprint when the secrets can be derived
/// again (the license was given, or in local-registry mode the registry password) —
/// `fingerprint` names the recorded one; `None` when the fact compared above covers it — left
/// unchecked otherwise.
#[allow(clippy::too_many_arguments)]
fn compare_secret_file(
    state: &StateDir,
    scratch: &Scratch,
    stage: &str,
    path: &str,
    fingerprint: Option<&str>,
    secrets_known: bool,
    verdict: &mut StageVerdict,
    report: &mut ReplayReport,
) -> Result<(), ReplayError> {
    verdict.files += 1;
    if !secrets_known {
        report.secret_files_unchecked += 1;
        return Ok(());
    }
    report.secret_files_compared += 1;
    let produced = read_produced(scratch, path);
    let Some(produced) = produced else {
        report.differences.push(Difference {
            stage: stage.to_string(),
            file: Some(path.to_string()),
            kind: "removed".into(),
            detail: "recorded, not produced by the replay".into(),
        });
        return Ok(());
    };
    if let Some(fingerprint) = fingerprint {
        let now = state.fingerprint_key.fingerprint_bytes(
            windlass_stages::render_midstream::RENDERED_SECRET_PURPOSE,
            &produced,
        );
        if now != fingerprint {
            report.differences.push(Difference {
                stage: stage.to_string(),
                file: Some(path.to_string()),
                kind: "changed".into(),
                detail: format!("keyed fingerprint {fingerprint} → {now}"),
            });
        }
    }
    Ok(())
}

/// The bytes the replayed stages wrote at `path` of the output directory, if any.
fn read_produced(scratch: &Scratch, path: &str) -> Option<std::sync::Arc<[u8]>> {
    scratch.output().get(path).map(|file| file.bytes)
}

/// Appends the replay's verdict to the replayed install's stream: `ReplayVerified` when it was
/// identical, `ReplayDiffered` with the first differences otherwise. A what-if records nothing.
pub fn record_verdict(
    state: &StateDir,
    actor: &str,
    report: &ReplayReport,
) -> Result<Option<StoredEvent>, ReplayError> {
    if report.what_if {
        return Ok(None);
    }
    let event = if report.identical() {
        NewEvent::of(
            &report.install_id,
            actor.to_string(),
            &ReplayVerified {
                files_compared: report.files_compared,
                secret_files_compared: report.secret_files_compared,
                secret_files_unchecked: report.secret_files_unchecked,
                facts_compared: report.facts_compared,
                license_fingerprint: report.license_fingerprint.clone(),
                duration_ms: report.duration_ms,
                unverified: report.unverified.clone(),
            },
        )
    } else {
        NewEvent::of(
            &report.install_id,
            actor.to_string(),
            &ReplayDiffered {
                total: report.differences.len() as u64,
                differences: report.differences.iter().take(100).cloned().collect(),
                license_fingerprint: report.license_fingerprint.clone(),
                duration_ms: report.duration_ms,
                unverified: report.unverified.clone(),
            },
        )
    }
    .map_err(|error| ReplayError::Log(error.to_string()))?;
    let _ = ReplayVerified::EVENT_TYPE;
    let stored = state
        .log
        .append(vec![event])
        .map_err(|error| ReplayError::Log(error.to_string()))?;
    Ok(stored.into_iter().next())
}
