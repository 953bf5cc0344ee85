//! `windlass apply INSTALL_ID`: applies what a completed install rendered, as an install of its
//! own whose pipeline is the apply stage alone (configured with the source install), so that it
//! is recorded, resumable and listed like any other install. `windlass undeploy INSTALL_ID` is
//! the same with `ApplyConfig::undeploy` set, from any install that recorded its license (a
//! failed one too): the stage then reads nothing the install rendered. The new install carries the source
//! install's release, namespace, output directory and license record (app slug, sequence and
//! fingerprint — the license ID itself is neither known nor needed here), so running the same
//! command again after an interruption finds and resumes it.

use std::path::Path;
use std::sync::Arc;

use windlass_engine::runner::{ChainCheck, RunError, StartKind};
use windlass_engine::{
    InstallKind, InstallRequest, InstallState, InstallStatus, License, Pipeline, PipelineErrors,
    Progress, Runner, Services, StageRegistry,
};
use windlass_state::{EventLog, LazyEvent, SecretString, StateDir, StateDirError};

use crate::source::SourceFacts;
use crate::stage::{ApplyConfig, KIND};

/// Why `windlass apply` did not run.
#[derive(Debug, thiserror::Error)]
pub enum ApplyInstallError {
    /// No install has this id.
    #[error("no install {0} (see `windlass history`)")]
    NoSuchInstall(String),
    /// The install did not complete, so its rendered output is not whole.
    #[error(
        "install {install} is {status}, not completed: only a completed install's rendered output can be applied (an undeploy takes any install that recorded its license)"
    )]
    NotCompleted {
        /// The install.
        install: String,
        /// Its status.
        status: String,
    },
    /// The apply configuration is invalid.
    #[error(transparent)]
    Pipeline(#[from] PipelineErrors),
    /// The state directory's lock cannot be taken.
    #[error(transparent)]
    Lock(#[from] StateDirError),
    /// The same apply runs in another process.
    #[error("another windlass process is applying install {0} with the same options right now")]
    Busy(String),
    /// The runner stopped (the log is damaged or cannot be written).
    #[error("apply stopped")]
    Stopped(#[source] RunError),
}

/// Who runs it.
pub struct ApplyEnvironment<'a> {
    /// The state directory.
    pub state: &'a StateDir,
    /// Recorded as each event's actor.
    pub actor: String,
    /// The id a new apply install gets.
    pub new_install_id: String,
    /// Where progress goes.
    pub progress: Arc<dyn Progress>,
    /// The services (the Kubernetes client factory above all).
    pub services: Services,
}

/// Applies the rendered output of `source` with `config` (its `source_install` is set here).
pub async fn apply_install(
    source: &str,
    config: &ApplyConfig,
    environment: ApplyEnvironment<'_>,
) -> Result<(InstallState, StartKind), ApplyInstallError> {
    let state = environment.state;
    let started = std::time::Instant::now();
    let memo: Arc<windlass_engine::Memo> = Arc::default();
    let runner = Runner {
        log: state.log.clone(),
        blobs: state.blobs.clone(),
        fingerprint_key: state.fingerprint_key.clone(),
        actor: environment.actor,
        progress: environment.progress,
        memo: memo.clone(),
        services: environment.services.with_state_dir(state.root()),
    };
    // The log's chain is checked while the source install is read (it is read whole).
    let chain = ChainCheck::start(&state.log);
    let installs = state
        .log
        .install_ids()
        .map_err(|error| ApplyInstallError::Stopped(error.into()))?;
    if !installs.iter().any(|known| known == source) {
        return Err(ApplyInstallError::NoSuchInstall(source.to_string()));
    }
    let (events, mut texts) = LazyEvent::split_texts(
        source_events(&state.log, source).map_err(ApplyInstallError::Stopped)?,
    );
    let mut rendered = windlass_engine::fold_owned(source, events)
        .map_err(|error| ApplyInstallError::Stopped(error.into()))?;
    // An undeploy reads only who the install is (app, namespace): any install of the app names
    // it, a failed one too (an apply that failed half-way is undeployed so).
    let names_the_app = config.undeploy && rendered.license.is_some();
    if rendered.status != InstallStatus::Completed && !names_the_app {
        return Err(ApplyInstallError::NotCompleted {
            install: source.to_string(),
            status: rendered.status.as_str().to_string(),
        });
    }
    // The facts the stage reads, just read: handed to it instead of read again.
    let facts: Vec<LazyEvent> = rendered
        .stages
        .iter_mut()
        .flat_map(|stage| std::mem::take(&mut stage.fact_events))
        .filter(|event| SourceFacts::TYPES.contains(&event.event_type.as_str()))
        .map(|event| LazyEvent {
            payload_text: texts.remove(&event.global_seq),
            event,
        })
        .collect();
    memo.get::<SourceFacts>().keep(source, facts);
    tracing::debug!(elapsed = ?started.elapsed(), "apply: source install folded");
    let mut config = config.clone();
    config.source_install = Some(source.to_string());
    let mut spec = windlass_engine::StageSpec::new(KIND, KIND, &[]);
    spec.config = serde_json::to_value(&config).expect("stage configurations are plain data");
    let pipeline = Pipeline::build(&[spec], &StageRegistry::new(&[crate::kind()]))?;
    let out = Path::new(&rendered.out).to_path_buf();
    let request = InstallRequest {
        release_dir: rendered.release_dir.clone().into(),
        release_digest: rendered.release_digest.clone(),
        out_dir: out.clone(),
        requested_out: Some(out),
        namespace: rendered.namespace.clone(),
        license: rendered.license.as_ref().map(|record| License {
            app_slug: record.app_slug.clone(),
            // Not known here and not needed: no stage of this pipeline derives anything from
            // it. Only the record (slug, sequence, fingerprint) is written.
            license_id: SecretString::new(""),
            sequence: record.sequence,
            expires_at: record.expires_at.clone(),
            fingerprint: record.fingerprint.clone(),
            fields: Default::default(),
        }),
        // Templates are rendered by fetch_base, which this pipeline does not run.
        config_values: None,
        local_registry: None,
        carried_config_values: None,
        kind: if config.undeploy {
            InstallKind::Undeploy
        } else {
            InstallKind::Apply
        },
    };
    let key = request.install_key(pipeline.fingerprint());
    let _lock = state
        .try_lock(&key)?
        .ok_or_else(|| ApplyInstallError::Busy(source.to_string()))?;
    runner
        .start_checked(
            chain,
            &pipeline,
            Arc::new(request),
            &environment.new_install_id,
        )
        .await
        .map_err(ApplyInstallError::Stopped)
}

/// The events of install `source` as the fold and the apply stage read them: the install's
/// lifecycle decoded, the facts the stage reads ([`SourceFacts::TYPES`]) as text for the stage
/// to decode into its own types, and every other fact (the big ones: every image probed, every
/// file written) in its place without its payload, which nothing here reads.
fn source_events(log: &EventLog, source: &str) -> Result<Vec<LazyEvent>, RunError> {
    windlass_engine::runner::events_reading(log, source, &|_| false, &|event_type| {
        SourceFacts::TYPES.contains(&event_type)
    })
}
