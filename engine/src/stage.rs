//! The stage contract. A stage has two halves, like a Vector transform: a [`StageConfig`] that is
//! deserialized from the pipeline definition and validated without I/O, and the [`Stage`] it
//! builds — asynchronously, possibly failing, with the injected [`Services`] at hand (see
//! [`BuildContext`]) — whose async `run` does the work. A stage returns its results as [`Fact`]s,
//! which the runner records as events in the same atomic batch as `StageCompleted`; a long stage
//! may also record facts as it goes ([`StageContext::record_fact`], durable at once), and a resumed
//! stage finds them in [`StageContext::recorded_facts`] so it continues instead of starting over.
//! It reads the facts of the stages it declared as inputs from its [`StageContext`], never from
//! anywhere else, so that every input and output of a stage can be recovered from the log.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use windlass_state::{
    BlobStore, EventLog, EventPayload, FingerprintKey, LazyEvent, NewEvent, StoredEvent,
};

pub use crate::events::FailureClass;
use crate::events::StageFactsRecorded;
use crate::install::InstallRequest;
use crate::progress::Progress;
use crate::services::Services;

/// A classified stage failure. The message is recorded in the log, so it must never contain a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageError {
    /// How to treat it.
    pub class: FailureClass,
    /// What went wrong, for a user.
    pub message: String,
    /// Input stages whose recorded results turned out to be damaged (a blob they stored no longer
    /// matches its hash, or is gone). Recorded in `StageFailed`; the install's next run runs them
    /// again before this stage, instead of failing on the same damage for ever.
    pub stale_inputs: Vec<String>,
}

impl StageError {
    /// A transient failure.
    pub fn transient(message: impl Into<String>) -> StageError {
        StageError {
            class: FailureClass::Transient,
            message: message.into(),
            stale_inputs: Vec::new(),
        }
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> StageError {
        StageError {
            class: FailureClass::Permanent,
            message: message.into(),
            stale_inputs: Vec::new(),
        }
    }

    /// A failure caused by the user's input.
    pub fn invalid_input(message: impl Into<String>) -> StageError {
        StageError {
            class: FailureClass::InvalidInput,
            message: message.into(),
            stale_inputs: Vec::new(),
        }
    }
}

impl StageError {
    /// Marks the results of input stage `stage` as damaged: the next run of the install runs it
    /// again (see [`StageError::stale_inputs`]).
    pub fn with_stale_input(mut self, stage: impl Into<String>) -> StageError {
        let stage = stage.into();
        if !self.stale_inputs.contains(&stage) {
            self.stale_inputs.push(stage);
        }
        self
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.class)
    }
}

impl std::error::Error for StageError {}

/// One fact a stage established, to be recorded as an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// Past-tense event type, e.g. `BaseFetched` (owned, so a plugin can name its own types).
    pub event_type: Cow<'static, str>,
    /// The payload's schema version (the current one of that type).
    pub schema_version: u32,
    /// The payload. Never a secret.
    pub payload: serde_json::Value,
}

impl Fact {
    /// The event recording this fact for install `install_id`, by `actor`.
    pub(crate) fn into_event(self, install_id: &str, actor: String) -> NewEvent {
        NewEvent::new(
            install_id,
            actor,
            self.event_type,
            self.schema_version,
            self.payload,
        )
    }

    /// Builds a fact of `payload`'s own event type, at the version this binary writes.
    pub fn of<T: EventPayload>(payload: &T) -> Result<Fact, StageError> {
        Fact::new(T::EVENT_TYPE, T::VERSION, payload)
    }

    /// Builds a fact from a serializable payload.
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
        schema_version: u32,
        payload: &impl Serialize,
    ) -> Result<Fact, StageError> {
        let event_type = event_type.into();
        let payload = serde_json::to_value(payload).map_err(|error| {
            StageError::permanent(format!("cannot encode {event_type}: {error}"))
        })?;
        Ok(Fact {
            event_type,
            schema_version,
            payload,
        })
    }
}

/// What a successful stage run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageOutput {
    /// Facts to record, in order.
    pub facts: Vec<Fact>,
    /// One line for humans, e.g. `12 files, 30 documents`.
    pub summary: String,
}

/// Everything a running stage may use.
pub struct StageContext {
    /// The install being run.
    pub install_id: String,
    /// This stage's name in the pipeline.
    pub stage_name: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// What the user asked for.
    pub request: Arc<InstallRequest>,
    /// Where file bodies go.
    pub blobs: Arc<BlobStore>,
    /// For fingerprints of secrets.
    pub fingerprint_key: Arc<FingerprintKey>,
    /// The recorded facts of each declared input stage, by input stage name.
    pub inputs: BTreeMap<String, Arc<[StoredEvent]>>,
    /// Where to report progress.
    pub progress: Arc<dyn Progress>,
    /// Facts recorded by earlier installs, for stages that reuse earlier results.
    pub history: Arc<dyn FactHistory>,
    /// Derived data shared by the stages of this runner (never a fact; see [`crate::Memo`]).
    pub memo: Arc<crate::Memo>,
    /// The injected services (HTTP, Kubernetes, clock, random source).
    pub services: Services,
    /// Facts this stage recorded while running, and where new ones go.
    pub(crate) recorded: Arc<RecordedFacts>,
}

/// The facts a stage recorded while running (in earlier attempts, earlier runs of the install and
/// this one), and the log they are appended to.
pub(crate) struct RecordedFacts {
    /// Where [`StageContext::record_fact`] appends; `None` while a stage restores its output,
    /// which records nothing.
    pub(crate) log: Option<EventLog>,
    /// Recorded as each event's actor.
    pub(crate) actor: String,
    /// What was recorded so far. Held across an append so facts keep their order.
    pub(crate) events: tokio::sync::Mutex<Recorded>,
}

/// The events behind [`RecordedFacts`].
#[derive(Default)]
pub(crate) struct Recorded {
    /// The facts, in order (earlier runs' first).
    pub(crate) facts: Vec<StoredEvent>,
    /// The `StageFactsRecorded` markers appended by this run.
    pub(crate) markers: Vec<StoredEvent>,
    /// Facts [`StageContext::defer_fact`] holds back until the next recorded fact or the
    /// stage's end, whichever comes first.
    pub(crate) deferred: Vec<Fact>,
    /// What [`StageContext::hold_until_recorded`] keeps, by name, until the stage's outcome is
    /// in the log (across its retried attempts).
    pub(crate) held: Vec<(String, Box<dyn std::any::Any + Send + Sync>)>,
}

impl RecordedFacts {
    /// Facts recorded earlier, appended to `log` from now on.
    pub(crate) fn new(log: Option<EventLog>, actor: String, earlier: Vec<StoredEvent>) -> Self {
        RecordedFacts {
            log,
            actor,
            events: tokio::sync::Mutex::new(Recorded {
                facts: earlier,
                markers: Vec::new(),
                deferred: Vec::new(),
                held: Vec::new(),
            }),
        }
    }
}

/// What a stage's [`StageConfig::build`] may use.
#[derive(Clone)]
pub struct BuildContext {
    /// The install the stage will run in.
    pub install_id: String,
    /// The stage's name in the pipeline.
    pub stage_name: String,
    /// What the user asked for.
    pub request: Arc<InstallRequest>,
    /// The injected services.
    pub services: Services,
}

/// Read access to facts recorded by other installs, for stages that reuse earlier results (such as
/// a probe cache). Whatever a stage takes from here it must copy into its own facts, so that the
/// install's own log is enough to explain and replay it.
pub trait FactHistory: Send + Sync {
    /// Hands `visit` the facts of `event_type` recorded at or after `since` by installs other than
    /// `exclude_install`, newest first, until it breaks. Facts after the break are never read,
    /// so a stage that needs only the newest ones does not pay for a long history. Each comes
    /// with its payload as text when stored at the current version, for the reader to decode
    /// into its own type ([`LazyEvent::decode`]).
    fn visit_recent_facts(
        &self,
        event_type: &str,
        since: time::OffsetDateTime,
        exclude_install: &str,
        visit: &mut dyn FnMut(LazyEvent) -> std::ops::ControlFlow<()>,
    ) -> Result<(), String>;
}

/// The newest fact of type `event_type` among `recorded` (what a stage recorded, as
/// [`Stage::restore`] is given it), decoded.
pub fn recorded_payload<T: serde::de::DeserializeOwned>(
    recorded: &[StoredEvent],
    event_type: &str,
) -> Result<T, StageError> {
    let event = recorded
        .iter()
        .rev()
        .find(|event| event.event_type == event_type)
        .ok_or_else(|| StageError::permanent(format!("no {event_type} was recorded")))?;
    decode_payload(event)
}

/// Decoded input facts of one runner, by global sequence (see [`StageContext::input_shared`]).
#[derive(Default)]
struct DecodedFacts(std::sync::Mutex<HashMap<u64, Arc<dyn std::any::Any + Send + Sync>>>);

impl DecodedFacts {
    fn get<T: Send + Sync + 'static>(&self, global_seq: u64) -> Option<Arc<T>> {
        let held = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        held.get(&global_seq)?.clone().downcast::<T>().ok()
    }

    fn insert<T: Send + Sync + 'static>(&self, global_seq: u64, value: Arc<T>) {
        let mut held = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        held.insert(global_seq, value);
    }
}

/// The newest fact of payload type `T` among `recorded` (see [`recorded_payload`]).
pub fn recorded_fact<T: EventPayload>(recorded: &[StoredEvent]) -> Result<T, StageError> {
    recorded_payload(recorded, T::EVENT_TYPE)
}

fn decode_payload<T: serde::de::DeserializeOwned>(event: &StoredEvent) -> Result<T, StageError> {
    T::deserialize(&event.payload).map_err(|error| {
        StageError::permanent(format!("{} is unreadable: {error}", event.event_type))
    })
}

impl StageContext {
    /// Records `fact` now, durably, as this stage's (before the stage completes): for long stages
    /// that must not lose work when interrupted (apply records each object it applied). The fact
    /// and a `StageFactsRecorded` marker are appended in one atomic batch. Once the stage
    /// completes, these facts and the ones it returns are its facts, in that order.
    pub async fn record_fact(&self, fact: Fact) -> Result<StoredEvent, StageError> {
        let Some(log) = self.recorded.log.clone() else {
            return Err(StageError::permanent(format!(
                "stage {} cannot record facts while restoring its output",
                self.stage_name
            )));
        };
        let mut recorded = self.recorded.events.lock().await;
        // The held-back facts go first; they leave `deferred` only once the batch is recorded.
        let count = recorded.deferred.len() + 1;
        let mut batch: Vec<NewEvent> = recorded
            .deferred
            .iter()
            .cloned()
            .chain(std::iter::once(fact))
            .map(|fact| fact.into_event(&self.install_id, self.recorded.actor.clone()))
            .collect();
        batch.push(
            NewEvent::of(
                self.install_id.as_str(),
                self.recorded.actor.clone(),
                &StageFactsRecorded {
                    stage: self.stage_name.clone(),
                    attempt: self.attempt,
                    facts: count as u32,
                },
            )
            .map_err(|error| StageError::permanent(error.to_string()))?,
        );
        let mut stored = tokio::task::spawn_blocking(move || log.append(batch))
            .await
            .map_err(|error| StageError::permanent(format!("recording a fact crashed: {error}")))?
            .map_err(|error| {
                StageError::permanent(format!(
                    "stage {} cannot record a fact: {error}",
                    self.stage_name
                ))
            })?;
        recorded.deferred.clear();
        let (Some(marker), Some(fact)) = (stored.pop(), stored.last().cloned()) else {
            unreachable!("the log returns every event it appended");
        };
        recorded.facts.extend(stored);
        recorded.markers.push(marker);
        Ok(fact)
    }

    /// Keeps `guard` (a lock, say) alive until this stage's outcome is in the log: its
    /// completion, or its last failure; a failed attempt that will be retried keeps it. Under
    /// `name`, which [`StageContext::holds`] answers for (a retried attempt finds its earlier
    /// attempt's lock held instead of taking it again).
    pub async fn hold_until_recorded(
        &self,
        name: &str,
        guard: Box<dyn std::any::Any + Send + Sync>,
    ) {
        self.recorded
            .events
            .lock()
            .await
            .held
            .push((name.to_string(), guard));
    }

    /// Whether something is held under `name` ([`StageContext::hold_until_recorded`]).
    pub async fn holds(&self, name: &str) -> bool {
        self.recorded
            .events
            .lock()
            .await
            .held
            .iter()
            .any(|(held, _)| held == name)
    }

    /// Holds `fact` back and records it, in the same atomic batch, before the next fact
    /// [`StageContext::record_fact`] records, or among the stage's facts when it completes
    /// first; a stage that fails without recording anything after it loses it. For a fact that
    /// matters only together with what follows it (the apply stage's `ApplyStarted`), without a
    /// durable commit of its own.
    pub async fn defer_fact(&self, fact: Fact) {
        self.recorded.events.lock().await.deferred.push(fact);
    }

    /// The facts this stage recorded with [`StageContext::record_fact`] so far: in this attempt,
    /// earlier attempts, and earlier runs of the install that were interrupted. A resumed stage
    /// reads them to continue where it stopped.
    pub async fn recorded_facts(&self) -> Vec<StoredEvent> {
        self.recorded.events.lock().await.facts.clone()
    }

    /// The newest fact of type `event_type` recorded by any input stage, decoded (the last such
    /// fact of the last input stage, in name order, that records one).
    pub fn input_payload<T: serde::de::DeserializeOwned>(
        &self,
        event_type: &str,
    ) -> Result<T, StageError> {
        decode_payload(self.input_event(event_type)?)
    }

    fn input_event(&self, event_type: &str) -> Result<&StoredEvent, StageError> {
        self.inputs
            .values()
            .flat_map(|facts| facts.iter())
            .rev()
            .find(|event| event.event_type == event_type)
            .ok_or_else(|| {
                StageError::permanent(format!(
                    "stage {} needs an input stage that records {event_type}",
                    self.stage_name
                ))
            })
    }

    /// The newest fact of payload type `T` recorded by any input stage (see
    /// [`StageContext::input_payload`]).
    pub fn input<T: EventPayload>(&self) -> Result<T, StageError> {
        self.input_payload(T::EVENT_TYPE)
    }

    /// [`StageContext::input`], decoded once per runner and shared: the stages of one install that
    /// read the same recorded fact (four read `BaseFetched`) share one decoded copy, kept in the
    /// memo under the event's global sequence.
    pub fn input_shared<T: EventPayload + Send + Sync + 'static>(
        &self,
    ) -> Result<Arc<T>, StageError> {
        let event = self.input_event(T::EVENT_TYPE)?;
        let decoded = self.memo.get::<DecodedFacts>();
        if let Some(found) = decoded.get(event.global_seq) {
            return Ok(found);
        }
        let value = Arc::new(decode_payload::<T>(event)?);
        decoded.insert(event.global_seq, value.clone());
        Ok(value)
    }

    /// The name of the input stage that recorded the newest fact of type `event_type` (the one
    /// [`StageContext::input_payload`] reads), for [`StageError::with_stale_input`].
    pub fn input_stage_recording(&self, event_type: &str) -> Option<&str> {
        self.inputs
            .iter()
            .rev()
            .find(|(_, facts)| facts.iter().any(|event| event.event_type == event_type))
            .map(|(name, _)| name.as_str())
    }

    /// The single fact of type `event_type` recorded by input stage `input`.
    pub fn input_fact(&self, input: &str, event_type: &str) -> Result<&StoredEvent, StageError> {
        let facts = self.inputs.get(input).ok_or_else(|| {
            StageError::permanent(format!(
                "stage {} has no input named {input}",
                self.stage_name
            ))
        })?;
        facts
            .iter()
            .rev()
            .find(|event| event.event_type == event_type)
            .ok_or_else(|| {
                StageError::permanent(format!(
                    "input stage {input} recorded no {event_type} event"
                ))
            })
    }
}

/// The runtime half of a stage. Runs must be idempotent: a resumed install runs again any stage
/// that did not complete.
#[async_trait::async_trait]
pub trait Stage: Send + Sync {
    /// Does the work.
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError>;

    /// Called when an install is resumed, for a stage that completed before, with the facts it
    /// `recorded` then: checks that what it wrote outside the log (files in the output directory,
    /// which are derived data a crash can lose) still matches those facts, and writes it again
    /// from the facts and the blob store where it does not. Returns what was written again, for
    /// the user, or `None` when everything was intact. Records nothing. The default: nothing to
    /// check.
    async fn restore(
        &self,
        _context: &StageContext,
        _recorded: &[StoredEvent],
    ) -> Result<Option<String>, StageError> {
        Ok(None)
    }
}

/// The configuration half of a stage.
#[async_trait::async_trait]
pub trait StageConfig: Send + Sync + fmt::Debug {
    /// Checks the configuration without any I/O, returning every problem found.
    fn validate(&self) -> Result<(), Vec<String>>;
    /// Builds the runtime stage for one install, with the injected services at hand. Called only
    /// after `validate` succeeded, by the runner when the stage is about to run (or to restore its
    /// output); a failure is recorded as a failed attempt of the stage and retried as its class
    /// says.
    async fn build(&self, context: &BuildContext) -> Result<Arc<dyn Stage>, StageError>;
}
