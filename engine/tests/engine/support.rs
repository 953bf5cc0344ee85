//! Shared test support: a [`TestEnv`] holding a real redb-backed `StateDir` in a temporary
//! directory with a [`Runner`] over it, and the `scripted` stage kind. `scripted` is a test double
//! of a *stage* (the engine never depends on a concrete stage, so tests bring their own), not a
//! fake of an external system: it records `FactRecorded` facts and, when its configuration names a
//! [`Probe`], counts its runs, remembers the inputs it was given, can wait on a shared barrier and
//! can fail with scripted failure classes. Stage factories are plain `fn` pointers, so probes are
//! found through a process-wide table keyed by a name unique to each test.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tempfile::TempDir;
use tokio::sync::Barrier;
use windlass_engine::{
    BuildContext, Fact, FailureClass, InstallRequest, License, NoProgress, Pipeline, Runner, Stage,
    StageConfig, StageContext, StageError, StageKind, StageOutput, StageRegistry, StageSpec,
};
use windlass_state::{Backend, EventSchema, SchemaRegistry, SecretString, StateDir, StoredEvent};

/// The fact type every `scripted` stage records.
pub const FACT_RECORDED: &str = "FactRecorded";

/// The event schemas of the test stages.
pub const TEST_SCHEMAS: &[EventSchema] = &[EventSchema {
    event_type: FACT_RECORDED,
    current_version: 1,
    upcasters: &[],
}];

/// The actor recorded on every event the test runner writes.
pub const ACTOR: &str = "tester@ci";

/// The license ID of [`TestEnv::licensed_request`]; it must never appear in the log.
pub const LICENSE_ID: &str = "2bq7WJxSecretLicenseIdDoNotLog";

/// How long a stage waits at its probe's barrier before concluding its partner never ran
/// alongside it. Generous, because it only matters when the test is already failing.
pub const BARRIER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most facts a `scripted` stage may be configured to record.
pub const MAX_FACTS: u32 = 100;

/// Payload of `FactRecorded` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactRecorded {
    /// The stage that recorded it.
    pub stage: String,
    /// Its position among that stage's facts, from 1.
    pub index: u32,
    /// The attempt that recorded it.
    pub attempt: u32,
}

/// What one run of a probed stage was given.
#[derive(Debug, Clone)]
pub struct SeenRun {
    /// `context.attempt`.
    pub attempt: u32,
    /// `context.inputs`.
    pub inputs: BTreeMap<String, Vec<StoredEvent>>,
    /// `context.request.out_dir`.
    pub out_dir: PathBuf,
}

/// The test's handle on a `scripted` stage: how it should behave and what happened to it.
#[derive(Debug, Default)]
pub struct Probe {
    runs: AtomicU32,
    failures: Mutex<VecDeque<FailureClass>>,
    barrier: Option<Arc<Barrier>>,
    seen: Mutex<Vec<SeenRun>>,
    panics: bool,
    restores: Mutex<VecDeque<Result<Option<String>, StageError>>>,
    restored: Mutex<Vec<Vec<StoredEvent>>>,
    stale_input: Option<String>,
}

static PROBES: LazyLock<Mutex<HashMap<String, Arc<Probe>>>> = LazyLock::new(Default::default);

impl Probe {
    /// A probe whose stage succeeds every time.
    pub fn new() -> Probe {
        Probe::default()
    }

    /// The stage's next runs fail with these classes, in order, before it succeeds.
    pub fn failing_with(self, classes: &[FailureClass]) -> Probe {
        *self.failures.lock().unwrap() = classes.iter().copied().collect();
        self
    }

    /// The stage's next `restore` calls answer these, in order (then `Ok(None)`: intact).
    pub fn restoring(self, answers: Vec<Result<Option<String>, StageError>>) -> Probe {
        *self.restores.lock().unwrap() = answers.into();
        self
    }

    /// The recorded facts each `restore` call was given, in order.
    pub fn restored(&self) -> Vec<Vec<StoredEvent>> {
        self.restored.lock().unwrap().clone()
    }

    /// Its scripted failures name input stage `input` as stale (its recorded results damaged).
    pub fn blaming_input(mut self, input: &str) -> Probe {
        self.stale_input = Some(input.to_string());
        self
    }

    /// Every run panics (after being counted).
    pub fn panicking(mut self) -> Probe {
        self.panics = true;
        self
    }

    /// Every run waits at `barrier` (for at most [`BARRIER_TIMEOUT`]) before doing anything else.
    pub fn waiting_at(mut self, barrier: Arc<Barrier>) -> Probe {
        self.barrier = Some(barrier);
        self
    }

    /// Makes the probe findable as `key`, which must be unique in the whole test binary.
    pub fn register(self, key: &str) -> Arc<Probe> {
        let probe = Arc::new(self);
        let previous = PROBES
            .lock()
            .unwrap()
            .insert(key.to_string(), probe.clone());
        assert!(previous.is_none(), "probe key {key:?} is used by two tests");
        probe
    }

    fn lookup(key: &str) -> Option<Arc<Probe>> {
        PROBES.lock().unwrap().get(key).cloned()
    }

    /// How many times the stage ran.
    pub fn runs(&self) -> u32 {
        self.runs.load(Ordering::SeqCst)
    }

    /// What each run was given, in order.
    pub fn seen(&self) -> Vec<SeenRun> {
        self.seen.lock().unwrap().clone()
    }
}

/// The configuration of a `scripted` stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedSettings {
    /// Key of the [`Probe`] to report to and take a script from.
    #[serde(default)]
    probe: Option<String>,
    /// How many `FactRecorded` facts a successful run records.
    #[serde(default = "one")]
    facts: u32,
    /// The summary of a successful run.
    #[serde(default)]
    summary: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug)]
struct ScriptedConfig {
    settings: ScriptedSettings,
    probe: Option<Arc<Probe>>,
}

fn scripted_factory(config: &serde_json::Value) -> Result<Box<dyn StageConfig>, String> {
    let settings: ScriptedSettings = serde_json::from_value(config.clone())
        .map_err(|error| format!("cannot read the configuration: {error}"))?;
    let probe = match &settings.probe {
        None => None,
        Some(key) => {
            Some(Probe::lookup(key).ok_or_else(|| format!("no probe is registered as {key:?}"))?)
        }
    };
    Ok(Box::new(ScriptedConfig { settings, probe }))
}

#[async_trait::async_trait]
impl StageConfig for ScriptedConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.settings.facts > MAX_FACTS {
            problems.push(format!(
                "facts must be at most {MAX_FACTS}, got {}",
                self.settings.facts
            ));
        }
        if self.settings.summary.as_deref() == Some("") {
            problems.push("summary must not be empty".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(ScriptedStage {
            facts: self.settings.facts,
            summary: self.settings.summary.clone(),
            probe: self.probe.clone(),
        }))
    }
}

struct ScriptedStage {
    facts: u32,
    summary: Option<String>,
    probe: Option<Arc<Probe>>,
}

#[async_trait::async_trait]
impl Stage for ScriptedStage {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        if let Some(probe) = &self.probe {
            probe.runs.fetch_add(1, Ordering::SeqCst);
            probe.seen.lock().unwrap().push(SeenRun {
                attempt: context.attempt,
                inputs: context
                    .inputs
                    .iter()
                    .map(|(name, facts)| (name.clone(), facts.to_vec()))
                    .collect(),
                out_dir: context.request.out_dir.clone(),
            });
            if let Some(barrier) = &probe.barrier {
                tokio::time::timeout(BARRIER_TIMEOUT, barrier.wait())
                    .await
                    .map_err(|_| {
                        StageError::permanent(format!(
                            "stage {} waited {BARRIER_TIMEOUT:?} at the barrier and its partner \
                             never arrived: the stages did not run concurrently",
                            context.stage_name
                        ))
                    })?;
            }
            assert!(
                !probe.panics,
                "scripted panic in stage {}",
                context.stage_name
            );
            let failure = probe.failures.lock().unwrap().pop_front();
            if let Some(class) = failure {
                let error = StageError {
                    class,
                    message: format!("scripted {class} failure on attempt {}", context.attempt),
                    stale_inputs: Vec::new(),
                };
                return Err(match &probe.stale_input {
                    Some(input) => error.with_stale_input(input.clone()),
                    None => error,
                });
            }
        }
        let facts = (1..=self.facts)
            .map(|index| {
                Fact::new(
                    FACT_RECORDED,
                    1,
                    &FactRecorded {
                        stage: context.stage_name.clone(),
                        index,
                        attempt: context.attempt,
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let summary = self
            .summary
            .clone()
            .unwrap_or_else(|| format!("{} fact(s)", self.facts));
        Ok(StageOutput { facts, summary })
    }

    async fn restore(
        &self,
        _context: &StageContext,
        recorded: &[StoredEvent],
    ) -> Result<Option<String>, StageError> {
        let Some(probe) = &self.probe else {
            return Ok(None);
        };
        probe.restored.lock().unwrap().push(recorded.to_vec());
        probe
            .restores
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(None))
    }
}

/// The stage kinds the tests register: only `scripted`.
pub fn stage_registry() -> StageRegistry {
    StageRegistry::new(&[StageKind::new(
        "scripted",
        "test double of a stage: records facts, reports to a probe",
        scripted_factory,
    )])
}

/// A `scripted` stage spec, reporting to the probe registered as `probe` if given.
pub fn scripted(name: &str, inputs: &[&str], probe: Option<&str>) -> StageSpec {
    let mut spec = StageSpec::new(name, "scripted", inputs);
    if let Some(key) = probe {
        spec.config = serde_json::json!({ "probe": key });
    }
    spec
}

/// Builds a pipeline of test stages, panicking with every problem if it is invalid.
pub fn pipeline(specs: &[StageSpec]) -> Pipeline {
    Pipeline::build(specs, &stage_registry()).unwrap_or_else(|errors| panic!("{errors}"))
}

/// A state directory in a temporary directory, with a runner over it.
pub struct TestEnv {
    /// The temporary directory; dropping it removes everything.
    pub dir: TempDir,
    /// The opened state directory.
    pub state: StateDir,
    /// A runner recording into `state`.
    pub runner: Runner,
}

impl TestEnv {
    /// Opens a fresh redb state directory with the engine's and the test stages' schemas.
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let schemas = SchemaRegistry::new(&[windlass_engine::events::SCHEMAS, TEST_SCHEMAS])
            .expect("the schema tables are consistent");
        let state = StateDir::open(&dir.path().join("state"), Backend::Redb, Arc::new(schemas))
            .expect("open the state directory");
        let runner = Runner {
            log: state.log.clone(),
            blobs: state.blobs.clone(),
            fingerprint_key: state.fingerprint_key.clone(),
            actor: ACTOR.to_string(),
            progress: Arc::new(NoProgress),
            memo: Default::default(),
            services: Default::default(),
        };
        TestEnv { dir, state, runner }
    }

    /// An install request without a license; equal requests come out of every call.
    pub fn request(&self) -> Arc<InstallRequest> {
        Arc::new(self.unlicensed_request())
    }

    /// The request of [`TestEnv::request`], unwrapped so a test can vary it.
    pub fn unlicensed_request(&self) -> InstallRequest {
        InstallRequest {
            release_dir: self.path("release"),
            release_digest: "9f2c4e1a7b3d5f60812a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d"
                .to_string(),
            out_dir: self.path("out"),
            requested_out: Some(self.path("out")),
            namespace: "acme".to_string(),
            license: None,
            config_values: None,
            local_registry: None,
            carried_config_values: None,
            kind: windlass_engine::InstallKind::Install,
        }
    }

    /// An install request with a license whose fingerprint uses this state directory's key.
    pub fn licensed_request(&self) -> Arc<InstallRequest> {
        let license_id = SecretString::new(LICENSE_ID);
        let fingerprint = self
            .state
            .fingerprint_key
            .fingerprint("license-id", &license_id);
        Arc::new(InstallRequest {
            license: Some(License {
                app_slug: "acme".to_string(),
                license_id,
                sequence: 7,
                expires_at: Some("2030-01-01T00:00:00Z".to_string()),
                fingerprint,
                fields: Default::default(),
            }),
            ..self.unlicensed_request()
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every event of an install, upcast, in install order.
    pub fn events(&self, install_id: &str) -> Vec<StoredEvent> {
        self.state
            .log
            .events_of(install_id)
            .expect("read the install's events")
    }

    /// The event types of an install, in install order.
    pub fn event_types(&self, install_id: &str) -> Vec<String> {
        self.events(install_id)
            .into_iter()
            .map(|event| event.event_type)
            .collect()
    }
}

/// The payloads of every event of type `event_type`, decoded.
pub fn payloads<T: serde::de::DeserializeOwned>(
    events: &[StoredEvent],
    event_type: &str,
) -> Vec<T> {
    events
        .iter()
        .filter(|event| event.event_type == event_type)
        .map(|event| {
            serde_json::from_value(event.payload.clone()).unwrap_or_else(|error| {
                panic!(
                    "event {} ({event_type}) does not decode: {error}",
                    event.install_seq
                )
            })
        })
        .collect()
}
