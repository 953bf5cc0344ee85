//! The state of one install as a pure fold over its events. `windlass show`, `windlass history`
//! and resume all read installs this way, so what the user sees is exactly what resume acts on.

use serde::Serialize;
use windlass_state::StoredEvent;

use crate::events::{
    INSTALL_COMPLETED, INSTALL_FAILED, INSTALL_RESUMED, INSTALL_STARTED, InstallFailed,
    InstallKind, InstallStarted, STAGE_COMPLETED, STAGE_FACTS_RECORDED, STAGE_FAILED,
    STAGE_STARTED, StageCompleted, StageFactsRecorded, StageFailed, StageStarted,
};
use crate::install::LicenseRecord;
use crate::stage::FailureClass;

/// Where an install stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallStatus {
    /// Started and not finished: still running, or interrupted (the next `windlass install` of the
    /// same release and state resumes it).
    Incomplete,
    /// Every stage completed.
    Completed,
    /// A stage failed for good.
    Failed,
}

impl InstallStatus {
    /// The status as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallStatus::Incomplete => "incomplete",
            InstallStatus::Completed => "completed",
            InstallStatus::Failed => "failed",
        }
    }
}

/// Where a stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not started.
    Pending,
    /// An attempt started and has not ended (or the process died during it).
    Running,
    /// An attempt succeeded.
    Completed,
    /// The last attempt failed.
    Failed,
}

/// A recorded stage failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRecord {
    /// How it was classified.
    pub class: FailureClass,
    /// The message.
    pub message: String,
}

/// A reference to a fact event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactRef {
    /// Its install sequence.
    pub seq: u64,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
}

/// One stage of an install.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageState {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// Input stages.
    pub inputs: Vec<String>,
    /// Status.
    pub status: StageStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Wall time of the successful attempt.
    pub duration_ms: Option<u64>,
    /// The successful attempt's summary.
    pub summary: Option<String>,
    /// The last failure, if any.
    pub last_error: Option<FailureRecord>,
    /// The stage's facts: those it recorded as it went (also while not completed yet), then those
    /// its successful attempt returned.
    pub facts: Vec<FactRef>,
    /// Those facts in full.
    #[serde(skip)]
    pub fact_events: Vec<StoredEvent>,
}

/// One install, folded from its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstallState {
    /// The install id.
    pub install_id: String,
    /// Status.
    pub status: InstallStatus,
    /// The app slug.
    pub app_slug: String,
    /// What is recorded about the license.
    pub license: Option<LicenseRecord>,
    /// The release directory.
    pub release_dir: String,
    /// The release digest.
    pub release_digest: String,
    /// See [`crate::InstallRequest::install_key`].
    pub install_key: String,
    /// The app namespace.
    pub namespace: String,
    /// The output directory.
    pub out: String,
    /// When the install started.
    pub started_at: String,
    /// When it completed or failed.
    pub finished_at: Option<String>,
    /// From start to finish, across resumes.
    pub duration_ms: Option<u64>,
    /// How many times it was resumed.
    pub resumed: u32,
    /// The stages, in pipeline order.
    pub stages: Vec<StageState>,
    /// Why it failed.
    pub failure: Option<InstallFailureRecord>,
    /// How many events it has.
    pub events: u64,
    /// The install it upgrades, if any.
    pub upgrades: Option<String>,
    /// Which command began it.
    pub kind: InstallKind,
}

/// Why an install failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallFailureRecord {
    /// The stage that failed.
    pub stage: String,
    /// How.
    pub class: FailureClass,
    /// What went wrong.
    pub message: String,
}

/// Events that do not make a valid install history.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// The install has no events at all.
    #[error("no install with id {0:?}")]
    UnknownInstall(String),
    /// The first event is not `InstallStarted`.
    #[error("install {install_id}: first event is {found}, not InstallStarted")]
    NoStart {
        /// The install.
        install_id: String,
        /// What was found.
        found: String,
    },
    /// A payload does not match its type's schema.
    #[error("install {install_id}: event {seq} ({event_type}) has an invalid payload: {reason}")]
    BadPayload {
        /// The install.
        install_id: String,
        /// Install sequence of the event.
        seq: u64,
        /// Its type.
        event_type: String,
        /// What serde said.
        reason: String,
    },
    /// A lifecycle event names a stage the pipeline does not have.
    #[error("install {install_id}: event {seq} names unknown stage {stage:?}")]
    UnknownStage {
        /// The install.
        install_id: String,
        /// Install sequence of the event.
        seq: u64,
        /// The stage.
        stage: String,
    },
}

fn decode<T: serde::de::DeserializeOwned>(event: &StoredEvent) -> Result<T, FoldError> {
    serde_json::from_value(event.payload.clone()).map_err(|error| FoldError::BadPayload {
        install_id: event.install_id.clone(),
        seq: event.install_seq,
        event_type: event.event_type.clone(),
        reason: error.to_string(),
    })
}

pub(crate) fn millis_between(start: &str, end: &str) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    let start = time::OffsetDateTime::parse(start, &Rfc3339).ok()?;
    let end = time::OffsetDateTime::parse(end, &Rfc3339).ok()?;
    u64::try_from((end - start).whole_milliseconds()).ok()
}

/// Folds an install's events (already upcast, in install order) into its state.
pub fn fold(install_id: &str, events: &[StoredEvent]) -> Result<InstallState, FoldError> {
    let (mut state, fact_ranges) = fold_lifecycle(install_id, events)?;
    for (stage, ranges) in state.stages.iter_mut().zip(fact_ranges) {
        stage.fact_events = ranges
            .into_iter()
            .flat_map(|range| events[range].iter().cloned())
            .collect();
    }
    Ok(state)
}

/// [`fold`], moving the facts out of `events` instead of copying them (facts of big releases are
/// large).
pub fn fold_owned(install_id: &str, events: Vec<StoredEvent>) -> Result<InstallState, FoldError> {
    let (mut state, fact_ranges) = fold_lifecycle(install_id, &events)?;
    let mut events: Vec<Option<StoredEvent>> = events.into_iter().map(Some).collect();
    for (stage, ranges) in state.stages.iter_mut().zip(fact_ranges) {
        stage.fact_events = ranges
            .into_iter()
            .flat_map(|range| range.collect::<Vec<_>>())
            .filter_map(|position| events[position].take())
            .collect();
    }
    Ok(state)
}

/// The state without `fact_events`, and for each stage the positions of its facts in `events`.
type Folded = (InstallState, Vec<Vec<std::ops::Range<usize>>>);

fn fold_lifecycle(install_id: &str, events: &[StoredEvent]) -> Result<Folded, FoldError> {
    let first = events
        .first()
        .ok_or_else(|| FoldError::UnknownInstall(install_id.to_string()))?;
    if first.event_type != INSTALL_STARTED {
        return Err(FoldError::NoStart {
            install_id: install_id.to_string(),
            found: first.event_type.clone(),
        });
    }
    let started: InstallStarted = decode(first)?;
    let kind = started.kind();
    let mut state = InstallState {
        kind,
        install_id: install_id.to_string(),
        status: InstallStatus::Incomplete,
        app_slug: started.app_slug,
        license: started.license,
        release_dir: started.release_dir,
        release_digest: started.release_digest,
        install_key: started.install_key,
        namespace: started.namespace,
        out: started.out_dir,
        started_at: first.recorded_at.clone(),
        finished_at: None,
        duration_ms: None,
        resumed: 0,
        stages: started
            .pipeline
            .into_iter()
            .map(|stage| StageState {
                name: stage.name,
                kind: stage.kind,
                inputs: stage.inputs,
                status: StageStatus::Pending,
                attempts: 0,
                duration_ms: None,
                summary: None,
                last_error: None,
                facts: Vec::new(),
                fact_events: Vec::new(),
            })
            .collect(),
        failure: None,
        events: events.len() as u64,
        upgrades: started.upgrades,
    };
    let mut fact_ranges: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new(); state.stages.len()];
    for (position, event) in events.iter().enumerate().skip(1) {
        let stage_index = |stage: &str| {
            state
                .stages
                .iter()
                .position(|candidate| candidate.name == stage)
                .ok_or_else(|| FoldError::UnknownStage {
                    install_id: install_id.to_string(),
                    seq: event.install_seq,
                    stage: stage.to_string(),
                })
        };
        match event.event_type.as_str() {
            STAGE_STARTED => {
                let started: StageStarted = decode(event)?;
                let index = stage_index(&started.stage)?;
                let stage = &mut state.stages[index];
                stage.status = StageStatus::Running;
                stage.attempts = stage.attempts.max(started.attempt);
            }
            STAGE_COMPLETED => {
                let completed: StageCompleted = decode(event)?;
                let index = stage_index(&completed.stage)?;
                let facts_start = position.saturating_sub(completed.facts as usize);
                let stage = &mut state.stages[index];
                stage.status = StageStatus::Completed;
                stage.duration_ms = Some(completed.duration_ms);
                stage.summary = Some(completed.summary);
                fact_ranges[index].push(facts_start..position);
            }
            STAGE_FACTS_RECORDED => {
                let recorded: StageFactsRecorded = decode(event)?;
                let index = stage_index(&recorded.stage)?;
                let facts_start = position.saturating_sub(recorded.facts as usize);
                fact_ranges[index].push(facts_start..position);
            }
            STAGE_FAILED => {
                let failed: StageFailed = decode(event)?;
                let index = stage_index(&failed.stage)?;
                // Inputs whose recorded results the stage found damaged run again next time.
                let stale_indices = failed
                    .stale_inputs
                    .iter()
                    .map(|stale| stage_index(stale))
                    .collect::<Result<Vec<_>, _>>()?;
                for stale_index in stale_indices {
                    let stage = &mut state.stages[stale_index];
                    stage.status = StageStatus::Pending;
                    stage.duration_ms = None;
                    stage.summary = None;
                    fact_ranges[stale_index].clear();
                }
                let stage = &mut state.stages[index];
                stage.status = StageStatus::Failed;
                stage.last_error = Some(FailureRecord {
                    class: failed.class,
                    message: failed.message,
                });
            }
            INSTALL_RESUMED => {
                state.resumed += 1;
                state.status = InstallStatus::Incomplete;
                state.failure = None;
                state.finished_at = None;
            }
            INSTALL_COMPLETED => {
                state.status = InstallStatus::Completed;
                state.finished_at = Some(event.recorded_at.clone());
            }
            INSTALL_FAILED => {
                let failed: InstallFailed = decode(event)?;
                state.status = InstallStatus::Failed;
                state.finished_at = Some(event.recorded_at.clone());
                state.failure = Some(InstallFailureRecord {
                    stage: failed.stage,
                    class: failed.class,
                    message: failed.message,
                });
            }
            // Facts of stages, and event types from newer or plugin code: not lifecycle.
            _ => {}
        }
    }
    for (stage, ranges) in state.stages.iter_mut().zip(&fact_ranges) {
        stage.facts = ranges
            .iter()
            .flat_map(|range| &events[range.clone()])
            .map(|fact| FactRef {
                seq: fact.install_seq,
                event_type: fact.event_type.clone(),
            })
            .collect();
    }
    state.duration_ms = state
        .finished_at
        .as_deref()
        .and_then(|finished| millis_between(&state.started_at, finished));
    Ok((state, fact_ranges))
}
