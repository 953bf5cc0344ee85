//! The runner: starts or resumes an install and drives its pipeline. Each stage attempt is
//! recorded as `StageStarted`, then either the stage's facts plus `StageCompleted` in one atomic
//! batch, or `StageFailed`. Stages whose inputs have all completed run concurrently. Transient
//! failures are retried as [`retry_delay`] says. When an install of the same release, license,
//! namespace, output and pipeline was interrupted, `start` resumes it instead of starting a
//! duplicate: completed stages keep their recorded facts and only the rest run. Before a resume,
//! each completed stage [restores](crate::Stage::restore) the output it wrote (derived data a crash
//! can lose) from its recorded facts; what was written again is recorded in `InstallResumed` and
//! reported through [`Progress::note`]. [`Runner::plan_start`] and [`Runner::start_planned`] split
//! `start` so that a caller can prepare the output directory the install will use in between.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use windlass_state::log::{LogError, envelope_of};
use windlass_state::{
    BlobStore, ChainError, EventLog, EventPayload, FingerprintKey, LazyEvent, NewEvent, StoredEvent,
};

use crate::events::{
    InstallCompleted, InstallFailed, InstallResumed, InstallStarted, RederivedOutput,
    StageCompleted, StageFailed, StageStarted,
};
use crate::install::InstallRequest;
use crate::install_state::{FoldError, InstallState, InstallStatus, StageStatus, fold, fold_owned};
use crate::pipeline::{Pipeline, PipelineStage};
use crate::progress::Progress;
use crate::retry::retry_delay;
use crate::services::Services;
use crate::stage::{BuildContext, FactHistory, RecordedFacts, Stage, StageContext, StageError};

/// The lifecycle events a fold reads the payloads of (those of facts it only counts and keeps).
pub const LIFECYCLE_EVENTS: [&str; 8] = [
    crate::events::INSTALL_STARTED,
    crate::events::INSTALL_RESUMED,
    crate::events::INSTALL_COMPLETED,
    crate::events::INSTALL_FAILED,
    crate::events::STAGE_STARTED,
    crate::events::STAGE_COMPLETED,
    crate::events::STAGE_FAILED,
    crate::events::STAGE_FACTS_RECORDED,
];

/// The events of `install_id` as a fold reads them: the lifecycle events ([`LIFECYCLE_EVENTS`])
/// and the facts whose type `decode` accepts decoded and upcast as [`EventLog::events_of`]
/// decodes them; every other fact in its place with a `null` payload (skimmed over, not decoded:
/// the big facts of an install are most of its bytes).
pub fn events_decoding(
    log: &EventLog,
    install_id: &str,
    decode: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<StoredEvent>, RunError> {
    Ok(events_reading(log, install_id, decode, &|_| false)?
        .into_iter()
        .map(|lazy| lazy.event)
        .collect())
}

/// [`events_decoding`], except that the facts whose type `keep_text` accepts (and `decode` does
/// not) come with their payload's text when they are stored at the current version, for the
/// reader to decode into its own type ([`LazyEvent::decode`]); at an older version they are
/// decoded and upcast.
pub fn events_reading(
    log: &EventLog,
    install_id: &str,
    decode: &(dyn Fn(&str) -> bool + Sync),
    keep_text: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<LazyEvent>, RunError> {
    let raw = log
        .store()
        .raw_events_of(install_id)
        .map_err(LogError::from)?;
    let read = |records: &[windlass_state::RawRecord]| -> Result<Vec<LazyEvent>, RunError> {
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            let envelope = envelope_of(record)?;
            let event_type = envelope.event_type.as_str();
            let kept = if LIFECYCLE_EVENTS.contains(&event_type) || decode(event_type) {
                None
            } else if keep_text(event_type) {
                log.text_if_current(envelope)
            } else {
                Some(LazyEvent::decoded(
                    envelope.with_payload(serde_json::Value::Null),
                ))
            };
            events.push(match kept {
                Some(lazy) => lazy,
                None => LazyEvent::decoded(log.decode_upcast(record)?),
            });
        }
        Ok(events)
    };
    // A rendered install's events are megabytes (skimming them is lexing every byte): the
    // second half by size is read on a thread of its own.
    let total: usize = raw.iter().map(|record| record.bytes.len()).sum();
    if total < SKIMMED_APART_FROM_BYTES || raw.len() < 2 {
        return read(&raw);
    }
    let mut half = 0;
    let mut seen = 0;
    for (index, record) in raw.iter().enumerate() {
        seen += record.bytes.len();
        half = index + 1;
        if seen * 2 >= total {
            break;
        }
    }
    let half = half.min(raw.len() - 1);
    let (first, second) = raw.split_at(half);
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| read(second));
        let first = read(first);
        (
            first,
            second
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    });
    let mut events = first?;
    events.extend(second?);
    Ok(events)
}

/// From how many bytes of records [`events_decoding`] reads on two threads.
const SKIMMED_APART_FROM_BYTES: usize = 512 * 1024;

/// Environment variable naming a stage after whose durable completion the runner stops and waits
/// for ever. Crash tests set it, wait for the announcement on stderr, and kill the process, so that
/// "killed between stages" is exact rather than a race.
pub const PAUSE_AFTER_STAGE_ENV: &str = "WINDLASS_PAUSE_AFTER_STAGE";

/// Errors that stop the runner itself (as opposed to a stage failing, which is recorded).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The log could not be read or written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The event log fails verification (a record is unreadable, or the hash chain or numbering
    /// is broken), so nothing is appended to it.
    #[error(
        "refusing to append to the event log: it failed verification ({0}); run `windlass verify-log` for details"
    )]
    DamagedLog(ChainError),
    /// The install's events do not fold.
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// A payload could not be encoded.
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
    /// A runner task panicked (stage panics are recorded as stage failures instead).
    #[error("{task} panicked: {message}")]
    Panicked {
        /// The task.
        task: String,
        /// The panic message.
        message: String,
    },
}

/// Runs installs against one state directory.
#[derive(Clone)]
pub struct Runner {
    /// The event log.
    pub log: EventLog,
    /// The blob store.
    pub blobs: Arc<BlobStore>,
    /// The fingerprint key.
    pub fingerprint_key: Arc<FingerprintKey>,
    /// Recorded as each event's actor.
    pub actor: String,
    /// Where progress goes.
    pub progress: Arc<dyn Progress>,
    /// Derived data the stages share while this runner runs (see [`crate::Memo`]).
    pub memo: Arc<crate::Memo>,
    /// What the stages' `build` and `run` are given (HTTP, Kubernetes, clock, random source).
    pub services: Services,
}

/// How `start` began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// A new install.
    Fresh,
    /// An interrupted install was resumed.
    Resumed,
}

/// A check of the log's hash chain and numbering running on a thread of its own: the records
/// appended since the last check, from its checkpoint (the whole log without one;
/// [`windlass_state::verify_chain_since_checkpoint`]). Nothing is appended to a log that fails it; starting it before the
/// work that precedes an install's first record (reading and digesting the release, folding the
/// install an apply applies) lets the two overlap, and [`Runner::plan_start`] waits for it.
#[derive(Debug)]
pub struct ChainCheck(std::thread::JoinHandle<Result<(), ChainError>>);

impl ChainCheck {
    /// Starts checking `log`.
    pub fn start(log: &EventLog) -> ChainCheck {
        let log = log.clone();
        ChainCheck(std::thread::spawn(move || {
            let clock = std::time::Instant::now();
            let report = windlass_state::verify_chain_since_checkpoint(log.store())?;
            tracing::debug!(records = report.records, from_checkpoint = report.from_checkpoint, elapsed = ?clock.elapsed(), "chain checked");
            Ok(())
        }))
    }

    /// Waits for the answer.
    fn finish(self) -> Result<(), RunError> {
        let waited = std::time::Instant::now();
        let answer = self.0.join();
        tracing::debug!(waited = ?waited.elapsed(), "chain check finished");
        answer
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map_err(RunError::DamagedLog)
    }
}

/// What [`Runner::plan_start`] found: whether a new install starts or an interrupted one resumes,
/// under which id, and where it writes.
#[derive(Debug)]
pub struct StartPlan {
    /// The install that will run: the new id, or the resumed install's.
    pub install_id: String,
    /// Where it writes: the request's output directory, or the one the resumed install recorded.
    pub out_dir: PathBuf,
    /// The interrupted install to resume, if any.
    resume: Option<InstallState>,
    /// The request's install key.
    install_key: String,
}

impl StartPlan {
    /// Whether the plan starts a new install or resumes one.
    pub fn kind(&self) -> StartKind {
        match self.resume {
            Some(_) => StartKind::Resumed,
            None => StartKind::Fresh,
        }
    }
}

impl Runner {
    fn event<T: EventPayload>(&self, install_id: &str, payload: &T) -> Result<NewEvent, RunError> {
        Ok(NewEvent::of(install_id, self.actor.clone(), payload)?)
    }

    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<StoredEvent>, RunError> {
        let log = self.log.clone();
        let events = batch.len();
        let clock = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || log.append(batch))
            .await
            .map_err(|error| RunError::Panicked {
                task: "event log append".into(),
                message: error.to_string(),
            })?;
        tracing::debug!(events, elapsed = ?clock.elapsed(), "events appended");
        Ok(result?)
    }

    /// Folds one install.
    pub fn state_of(&self, install_id: &str) -> Result<InstallState, RunError> {
        let events = self.log.events_of(install_id)?;
        Ok(fold_owned(install_id, events)?)
    }

    /// Folds one install's lifecycle: its status, stages and install key as [`Runner::state_of`]
    /// folds them, each fact in its place with a `null` payload (the facts of an apply of a
    /// thousand objects are most of its bytes, and nothing here reads them).
    pub fn lifecycle_of(&self, install_id: &str) -> Result<InstallState, RunError> {
        let events = events_decoding(&self.log, install_id, &|_| false)?;
        Ok(fold_owned(install_id, events)?)
    }

    /// The newest install with this install key that did not complete, if any. Installs whose
    /// events cannot be read (for example, written by a newer windlass) cannot be resumed by this
    /// binary and are skipped with a warning rather than blocking every new install.
    ///
    /// With current projections this reads the `install_key` index and folds that one install;
    /// otherwise (or when that install does not read) it folds installs newest first.
    pub fn find_resumable(&self, install_key: &str) -> Result<Option<InstallState>, RunError> {
        match crate::install_index::install_for_key(&self.log, install_key)? {
            Some(None) => return Ok(None),
            Some(Some(install_id)) => {
                // Its lifecycle first: a completed install (the common case) is not folded whole.
                if let Ok(state) = self.lifecycle_of(&install_id)
                    && state.install_key == install_key
                {
                    if state.status == InstallStatus::Completed {
                        return Ok(None);
                    }
                    if let Ok(state) = self.state_of(&install_id) {
                        return Ok(Some(state));
                    }
                }
            }
            None => {}
        }
        for install_id in self.log.install_ids()?.iter().rev() {
            let state = match self.state_of(install_id) {
                Ok(state) => state,
                Err(error) => {
                    tracing::warn!(%install_id, %error, "skipping an unreadable install while looking for one to resume");
                    continue;
                }
            };
            if state.install_key == install_key {
                return Ok((state.status != InstallStatus::Completed).then_some(state));
            }
        }
        Ok(None)
    }

    /// Starts a new install with id `new_install_id`, or resumes an interrupted one of the same
    /// request, and runs it to the end.
    pub async fn start(
        &self,
        pipeline: &Pipeline,
        request: Arc<InstallRequest>,
        new_install_id: &str,
    ) -> Result<(InstallState, StartKind), RunError> {
        self.start_checked(
            ChainCheck::start(&self.log),
            pipeline,
            request,
            new_install_id,
        )
        .await
    }

    /// [`Runner::start`] with the log's chain check `chain` started earlier, so that it ran while
    /// the caller prepared the install.
    pub async fn start_checked(
        &self,
        chain: ChainCheck,
        pipeline: &Pipeline,
        request: Arc<InstallRequest>,
        new_install_id: &str,
    ) -> Result<(InstallState, StartKind), RunError> {
        let plan = self.plan_start(chain, pipeline, &request, new_install_id)?;
        self.start_planned(pipeline, request, plan).await
    }

    /// Decides what [`Runner::start`] would do, recording nothing: resume the interrupted install
    /// of the same request (writing where it wrote before) or start `new_install_id`. Waits for
    /// `chain` first: appending to a damaged log would chain new records onto a break and bury it.
    pub fn plan_start(
        &self,
        chain: ChainCheck,
        pipeline: &Pipeline,
        request: &InstallRequest,
        new_install_id: &str,
    ) -> Result<StartPlan, RunError> {
        chain.finish()?;
        let install_key = request.install_key(pipeline.fingerprint());
        Ok(match self.find_resumable(&install_key)? {
            Some(previous) => StartPlan {
                install_id: previous.install_id.clone(),
                out_dir: previous.out.clone().into(),
                resume: Some(previous),
                install_key,
            },
            None => StartPlan {
                install_id: new_install_id.to_string(),
                out_dir: request.out_dir.clone(),
                resume: None,
                install_key,
            },
        })
    }

    /// Carries out `plan` (from [`Runner::plan_start`] with the same pipeline and request) and
    /// runs the install to the end.
    pub async fn start_planned(
        &self,
        pipeline: &Pipeline,
        request: Arc<InstallRequest>,
        plan: StartPlan,
    ) -> Result<(InstallState, StartKind), RunError> {
        let StartPlan {
            install_id,
            out_dir,
            resume,
            install_key,
        } = plan;
        if let Some(previous) = resume {
            // A resumed install keeps writing where it started.
            let mut request = (*request).clone();
            request.out_dir = out_dir;
            let request = Arc::new(request);
            let completed_stages = previous
                .stages
                .iter()
                .filter(|stage| stage.status == StageStatus::Completed)
                .map(|stage| stage.name.clone())
                .collect();
            let (rederived, failure) = self.restore_outputs(previous, pipeline, &request).await?;
            let resumed = self.event(
                &install_id,
                &InstallResumed {
                    completed_stages,
                    rederived,
                },
            )?;
            self.append(vec![resumed]).await?;
            if let Some((stage, error)) = failure {
                let failed = self.event(
                    &install_id,
                    &InstallFailed {
                        stage,
                        class: error.class,
                        message: error.message,
                    },
                )?;
                self.append(vec![failed]).await?;
                return Ok((self.state_of(&install_id)?, StartKind::Resumed));
            }
            let state = self.run(&install_id, pipeline, request).await?;
            return Ok((state, StartKind::Resumed));
        }
        let started = InstallStarted {
            release_dir: request.release_dir.display().to_string(),
            release_digest: request.release_digest.clone(),
            install_key,
            app_slug: request.app_slug().to_string(),
            license: request.license.as_ref().map(|license| license.record()),
            namespace: request.namespace.clone(),
            out_dir: request.out_dir.display().to_string(),
            pipeline: pipeline.record(),
            upgrades: crate::install_index::upgraded_install(
                &self.log,
                request.app_slug(),
                &request.release_digest,
            )?,
            kind: Some(request.kind),
        };
        let event = self.event(&install_id, &started)?;
        self.append(vec![event]).await?;
        let state = self.run(&install_id, pipeline, request).await?;
        Ok((state, StartKind::Fresh))
    }

    /// Has every completed stage of `previous`, in pipeline order, restore the output it wrote.
    /// Returns what was written again and, if a stage could not restore its output, that stage
    /// and its error (the stages after it are not asked).
    async fn restore_outputs(
        &self,
        mut previous: InstallState,
        pipeline: &Pipeline,
        request: &Arc<InstallRequest>,
    ) -> Result<(Vec<RederivedOutput>, Option<(String, StageError)>), RunError> {
        let mut completed: HashMap<String, Arc<[StoredEvent]>> = HashMap::new();
        for stage in &mut previous.stages {
            if stage.status == StageStatus::Completed {
                // Moved, not copied: fact payloads of large releases are big.
                completed.insert(
                    stage.name.clone(),
                    Arc::from(std::mem::take(&mut stage.fact_events)),
                );
            }
        }
        let mut rederived = Vec::new();
        for stage in pipeline.stages() {
            let Some(recorded) = completed.get(&stage.name).cloned() else {
                continue;
            };
            let context = StageContext {
                install_id: previous.install_id.clone(),
                stage_name: stage.name.clone(),
                attempt: 0,
                request: request.clone(),
                blobs: self.blobs.clone(),
                fingerprint_key: self.fingerprint_key.clone(),
                inputs: stage
                    .inputs
                    .iter()
                    .filter_map(|input| Some((input.clone(), completed.get(input)?.clone())))
                    .collect(),
                progress: self.progress.clone(),
                history: Arc::new(LogHistory {
                    log: self.log.clone(),
                }),
                memo: self.memo.clone(),
                services: self.services.clone(),
                recorded: Arc::new(RecordedFacts::new(None, self.actor.clone(), Vec::new())),
            };
            let build = BuildContext {
                install_id: previous.install_id.clone(),
                stage_name: stage.name.clone(),
                request: request.clone(),
                services: self.services.clone(),
            };
            let config = stage.config.clone();
            let name = stage.name.clone();
            // In its own task, so that a panic becomes this stage's failure.
            let restored = tokio::spawn(async move {
                let runtime_stage = config.build(&build).await?;
                runtime_stage.restore(&context, &recorded).await
            })
            .await
            .unwrap_or_else(|join_error| {
                Err(StageError::permanent(format!(
                    "stage {name} crashed while checking its output: {}",
                    panic_message(join_error)
                )))
            });
            match restored {
                Ok(None) => {}
                Ok(Some(detail)) => {
                    self.progress.note(&format!("{}: {detail}", stage.name));
                    rederived.push(RederivedOutput {
                        stage: stage.name.clone(),
                        detail,
                    });
                }
                Err(error) => {
                    self.progress.note(&format!(
                        "{}: cannot restore its output: {}",
                        stage.name, error.message
                    ));
                    return Ok((rederived, Some((stage.name.clone(), error))));
                }
            }
        }
        Ok((rederived, None))
    }

    /// Runs every stage of `install_id` that has not completed, then records the outcome.
    pub async fn run(
        &self,
        install_id: &str,
        pipeline: &Pipeline,
        request: Arc<InstallRequest>,
    ) -> Result<InstallState, RunError> {
        let run_started = Instant::now();
        let earlier_events = self.log.events_of(install_id)?;
        let state = fold(install_id, &earlier_events)?;
        let mut completed: HashMap<String, Arc<[StoredEvent]>> = HashMap::new();
        let mut attempts_so_far: HashMap<String, u32> = HashMap::new();
        // Facts stages recorded as they went in earlier runs without completing.
        let mut recorded_before: HashMap<String, Vec<StoredEvent>> = HashMap::new();
        for stage in &state.stages {
            attempts_so_far.insert(stage.name.clone(), stage.attempts);
            if stage.status == StageStatus::Completed {
                completed.insert(stage.name.clone(), Arc::from(stage.fact_events.as_slice()));
            } else if !stage.fact_events.is_empty() {
                recorded_before.insert(stage.name.clone(), stage.fact_events.clone());
            }
        }
        let mut launched: HashSet<String> = completed.keys().cloned().collect();
        let mut running: JoinSet<Result<StageRunOutcome, RunError>> = JoinSet::new();
        let mut failure: Option<(String, StageError)> = None;
        // What this run records, so that the final state is folded without reading it back.
        let mut recorded: Vec<StoredEvent> = Vec::new();
        let mut completed_now: Vec<String> = Vec::new();
        loop {
            if failure.is_none() {
                for stage in pipeline.stages() {
                    let ready = !launched.contains(&stage.name)
                        && stage
                            .inputs
                            .iter()
                            .all(|input| completed.contains_key(input));
                    if !ready {
                        continue;
                    }
                    launched.insert(stage.name.clone());
                    // Shared, not copied: fact payloads of large releases are big.
                    let inputs: BTreeMap<String, Arc<[StoredEvent]>> = stage
                        .inputs
                        .iter()
                        .map(|input| (input.clone(), completed[input].clone()))
                        .collect();
                    let first_attempt = attempts_so_far.get(&stage.name).copied().unwrap_or(0) + 1;
                    let runner = self.clone();
                    let task = StageTask {
                        install_id: install_id.to_string(),
                        stage: PipelineStageHandle::from(stage),
                        request: request.clone(),
                        inputs,
                        first_attempt,
                        recorded_before: recorded_before.remove(&stage.name).unwrap_or_default(),
                    };
                    running.spawn(async move { runner.run_stage(task).await });
                }
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let outcome = joined.map_err(|error| RunError::Panicked {
                task: "stage runner task".into(),
                message: error.to_string(),
            })??;
            match outcome {
                StageRunOutcome::Completed {
                    stage,
                    facts,
                    lifecycle,
                } => {
                    recorded.extend(lifecycle);
                    completed_now.push(stage.clone());
                    completed.insert(stage, Arc::from(facts));
                }
                StageRunOutcome::Failed {
                    stage,
                    error,
                    lifecycle,
                } => {
                    recorded.extend(lifecycle);
                    failure.get_or_insert((stage, error));
                }
            }
        }
        let final_event = match failure {
            Some((stage, error)) => self.event(
                install_id,
                &InstallFailed {
                    stage,
                    class: error.class,
                    message: error.message,
                },
            )?,
            None => self.event(
                install_id,
                &InstallCompleted {
                    duration_ms: run_started.elapsed().as_millis() as u64,
                },
            )?,
        };
        recorded.extend(self.append(vec![final_event]).await?);
        let mut events = earlier_events;
        events.extend(recorded);
        for stage in completed_now {
            if let Some(facts) = completed.remove(&stage) {
                events.extend(into_owned(facts));
            }
        }
        events.sort_by_key(|event| event.install_seq);
        // Facts a stage recorded as it went in an earlier run are both in `earlier_events` and
        // among its facts.
        events.dedup_by_key(|event| event.install_seq);
        Ok(fold_owned(install_id, events)?)
    }

    async fn run_stage(&self, task: StageTask) -> Result<StageRunOutcome, RunError> {
        let StageTask {
            install_id,
            stage,
            request,
            inputs,
            first_attempt,
            recorded_before,
        } = task;
        let mut attempt = first_attempt;
        let mut lifecycle = Vec::new();
        let recorded = Arc::new(RecordedFacts::new(
            Some(self.log.clone()),
            self.actor.clone(),
            recorded_before,
        ));
        let mut built: Option<Arc<dyn Stage>> = None;
        loop {
            let started = self.event(
                &install_id,
                &StageStarted {
                    stage: stage.name.clone(),
                    attempt,
                },
            )?;
            lifecycle.extend(self.append(vec![started]).await?);
            self.progress.stage_started(&stage.name, attempt);
            let context = StageContext {
                install_id: install_id.clone(),
                stage_name: stage.name.clone(),
                attempt,
                request: request.clone(),
                blobs: self.blobs.clone(),
                fingerprint_key: self.fingerprint_key.clone(),
                inputs: inputs.clone(),
                progress: self.progress.clone(),
                history: Arc::new(LogHistory {
                    log: self.log.clone(),
                }),
                memo: self.memo.clone(),
                services: self.services.clone(),
                recorded: recorded.clone(),
            };
            let build = BuildContext {
                install_id: install_id.clone(),
                stage_name: stage.name.clone(),
                request: request.clone(),
                services: self.services.clone(),
            };
            let clock = Instant::now();
            let config = stage.config.clone();
            let already_built = built.clone();
            // The stage is built and runs in its own task so that a panic becomes a recorded,
            // permanent failure of this stage instead of tearing down the runner. It is built
            // once per run; a failed build is a failed attempt.
            let result = tokio::spawn(async move {
                let runtime_stage = match already_built {
                    Some(runtime_stage) => runtime_stage,
                    None => config.build(&build).await.map_err(|error| StageError {
                        message: format!("cannot build the stage: {}", error.message),
                        ..error
                    })?,
                };
                let output = runtime_stage.run(&context).await;
                Ok::<_, StageError>((runtime_stage, output))
            })
            .await
            .unwrap_or_else(|join_error| {
                Err(StageError::permanent(format!(
                    "stage {} crashed: {}",
                    stage.name,
                    panic_message(join_error)
                )))
            })
            .and_then(|(runtime_stage, output)| {
                built = Some(runtime_stage);
                output
            });
            let duration_ms = clock.elapsed().as_millis() as u64;
            tracing::debug!(stage = %stage.name, attempt, duration_ms, ok = result.is_ok(), "stage ran");
            // Facts held back for the next recorded one go with the stage's own facts, or
            // nowhere when it failed.
            let deferred = std::mem::take(&mut recorded.events.lock().await.deferred);
            match result {
                Ok(output) => {
                    let fact_count = (deferred.len() + output.facts.len()) as u32;
                    let mut batch = Vec::with_capacity(deferred.len() + output.facts.len() + 1);
                    for fact in deferred.into_iter().chain(output.facts) {
                        batch.push(fact.into_event(&install_id, self.actor.clone()));
                    }
                    batch.push(self.event(
                        &install_id,
                        &StageCompleted {
                            stage: stage.name.clone(),
                            attempt,
                            duration_ms,
                            facts: fact_count,
                            summary: output.summary.clone(),
                        },
                    )?);
                    let mut stored = self.append(batch).await?;
                    tracing::debug!(stage = %stage.name, recorded_ms = clock.elapsed().as_millis() as u64, "stage recorded");
                    lifecycle.extend(stored.pop());
                    // Facts recorded as the stage went come first; their markers are lifecycle.
                    // What the stage held until now is let go with the rest.
                    let as_it_went = std::mem::take(&mut *recorded.events.lock().await);
                    lifecycle.extend(as_it_went.markers);
                    let mut facts = as_it_went.facts;
                    facts.extend(stored);
                    let stored = facts;
                    self.progress
                        .stage_finished(&stage.name, true, &output.summary);
                    pause_if_asked(&stage.name).await;
                    return Ok(StageRunOutcome::Completed {
                        stage: stage.name.clone(),
                        facts: stored,
                        lifecycle,
                    });
                }
                Err(error) => {
                    let retry = retry_delay(error.class, attempt);
                    let failed = self.event(
                        &install_id,
                        &StageFailed {
                            stage: stage.name.clone(),
                            attempt,
                            duration_ms,
                            class: error.class,
                            message: error.message.clone(),
                            retry_in_ms: retry.map(|delay| delay.as_millis() as u64),
                            stale_inputs: error.stale_inputs.clone(),
                        },
                    )?;
                    lifecycle.extend(self.append(vec![failed]).await?);
                    self.progress
                        .stage_finished(&stage.name, false, &error.to_string());
                    match retry {
                        Some(delay) => {
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                        }
                        None => {
                            // What it recorded as it went stays in the log for the next run.
                            let as_it_went = std::mem::take(&mut *recorded.events.lock().await);
                            lifecycle.extend(as_it_went.markers);
                            lifecycle.extend(as_it_went.facts);
                            return Ok(StageRunOutcome::Failed {
                                stage: stage.name.clone(),
                                error,
                                lifecycle,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// The events of `shared`, moved out when nothing else holds them (the stages that read them as
/// inputs have finished), copied otherwise.
fn into_owned(mut shared: Arc<[StoredEvent]>) -> Vec<StoredEvent> {
    match Arc::get_mut(&mut shared) {
        Some(events) => events.iter_mut().map(std::mem::take).collect(),
        None => shared.to_vec(),
    }
}

/// [`FactHistory`] over the event log.
struct LogHistory {
    log: EventLog,
}

impl FactHistory for LogHistory {
    fn visit_recent_facts(
        &self,
        event_type: &str,
        since: time::OffsetDateTime,
        exclude_install: &str,
        visit: &mut dyn FnMut(LazyEvent) -> std::ops::ControlFlow<()>,
    ) -> Result<(), String> {
        use time::format_description::well_known::Rfc3339;
        if crate::install_index::visit_recent_facts(
            &self.log,
            event_type,
            since,
            exclude_install,
            visit,
        )
        .map_err(|error| error.to_string())?
        .is_some()
        {
            return Ok(());
        }
        let mut found = Vec::new();
        for install_id in self
            .log
            .install_ids()
            .map_err(|error| error.to_string())?
            .iter()
            .rev()
        {
            if install_id == exclude_install {
                continue;
            }
            // An install this binary cannot read contributes nothing.
            let Ok(events) = self.log.events_of(install_id) else {
                continue;
            };
            found.extend(events.into_iter().filter(|event| {
                event.event_type == event_type
                    && time::OffsetDateTime::parse(&event.recorded_at, &Rfc3339)
                        .is_ok_and(|recorded| recorded >= since)
            }));
        }
        found.sort_by_key(|event| std::cmp::Reverse(event.global_seq));
        for event in found {
            if visit(LazyEvent::decoded(event)).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// What one stage task ended with.
enum StageRunOutcome {
    Completed {
        stage: String,
        facts: Vec<StoredEvent>,
        /// The stage's lifecycle events (`StageStarted`, `StageFailed`, `StageCompleted`).
        lifecycle: Vec<StoredEvent>,
    },
    Failed {
        stage: String,
        error: StageError,
        lifecycle: Vec<StoredEvent>,
    },
}

/// The owned parts of a pipeline stage that a spawned task needs.
struct PipelineStageHandle {
    name: String,
    config: Arc<dyn crate::stage::StageConfig>,
}

impl From<&PipelineStage> for PipelineStageHandle {
    fn from(stage: &PipelineStage) -> PipelineStageHandle {
        PipelineStageHandle {
            name: stage.name.clone(),
            config: stage.config.clone(),
        }
    }
}

struct StageTask {
    install_id: String,
    stage: PipelineStageHandle,
    request: Arc<InstallRequest>,
    inputs: BTreeMap<String, Arc<[StoredEvent]>>,
    first_attempt: u32,
    /// Facts the stage recorded as it went in earlier runs of the install.
    recorded_before: Vec<StoredEvent>,
}

fn panic_message(join_error: tokio::task::JoinError) -> String {
    if !join_error.is_panic() {
        return join_error.to_string();
    }
    let payload = join_error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".to_string())
}

async fn pause_if_asked(stage: &str) {
    if std::env::var(PAUSE_AFTER_STAGE_ENV).is_ok_and(|value| value == stage) {
        eprintln!("windlass: paused after stage {stage} ({PAUSE_AFTER_STAGE_ENV})");
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}
