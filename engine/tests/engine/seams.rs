//! The engine's plug-in points: a stage kind registered at run time under an owned name with a
//! factory closure; a `build` that is async, fallible (a failed build is a failed, retried attempt)
//! and gets the injected services (a replay's clock and random source reach the stage); facts a
//! long stage records as it goes, durable at once and handed back to it when the install resumes,
//! so it continues where it stopped; and each stage's full configuration in `InstallStarted`.
//! The `stepwise` and `stamped` kinds below are test doubles of *stages* (the engine never
//! depends on a concrete stage), defined here because they exercise exactly these seams.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use windlass_engine::EventPayload;

use serde::{Deserialize, Serialize};
use windlass_engine::events::{
    INSTALL_STARTED, InstallStarted, STAGE_FACTS_RECORDED, STAGE_FAILED, StageFactsRecorded,
    StageFailed,
};
use windlass_engine::{
    BuildContext, Fact, FailureClass, FixedClock, InstallStatus, Pipeline, RandomSource,
    ServiceError, Services, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
    StageSpec, StageStatus,
};
use windlass_state::StoredEvent;

use crate::support::{FACT_RECORDED, TestEnv, payloads, scripted, stage_registry};

/// The fact a `stepwise` stage records for each item it finished.
const ITEM_DONE: &str = "ItemDone";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ItemDone {
    item: u32,
    attempt: u32,
}

/// `stepwise`: works through `items` items, recording `ItemDone` for each as soon as it is done
/// (with `record_fact`), skipping the items its recorded facts say are done already. While the
/// shared `crashes` budget lasts, a run stops with a failure of class `class` after `stop_after`
/// items of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepwiseSettings {
    items: u32,
    stop_after: u32,
    class: FailureClass,
    /// Defer (`defer_fact`) an `ItemDone` for item 0 at the start of each run.
    #[serde(default)]
    defer_start: bool,
    /// Hold (`hold_until_recorded`) a guard counted by the handles, unless one is held already.
    #[serde(default)]
    hold: bool,
}

/// Counts how often it was made and dropped.
struct CountedGuard(Arc<AtomicU32>);

impl Drop for CountedGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct StepwiseConfig {
    settings: StepwiseSettings,
    crashes: Arc<AtomicU32>,
    runs: Arc<AtomicU32>,
    taken: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl StageConfig for StepwiseConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(Stepwise {
            hold: self.settings.hold,
            taken: self.taken.clone(),
            dropped: self.dropped.clone(),
            defer_start: self.settings.defer_start,
            items: self.settings.items,
            stop_after: self.settings.stop_after,
            class: self.settings.class,
            crashes: self.crashes.clone(),
            runs: self.runs.clone(),
        }))
    }
}

struct Stepwise {
    hold: bool,
    taken: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
    defer_start: bool,
    items: u32,
    stop_after: u32,
    class: FailureClass,
    crashes: Arc<AtomicU32>,
    runs: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl Stage for Stepwise {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let done: Vec<u32> = context
            .recorded_facts()
            .await
            .iter()
            .map(|event| {
                serde_json::from_value::<ItemDone>(event.payload.clone())
                    .unwrap()
                    .item
            })
            .collect();
        if self.hold && !context.holds("guard").await {
            self.taken.fetch_add(1, Ordering::SeqCst);
            context
                .hold_until_recorded("guard", Box::new(CountedGuard(self.dropped.clone())))
                .await;
        }
        if self.defer_start {
            let started = ItemDone {
                item: 0,
                attempt: context.attempt,
            };
            context
                .defer_fact(Fact::new(ITEM_DONE.to_string(), 1, &started)?)
                .await;
        }
        let mut done_now = 0;
        for item in 1..=self.items {
            if done.contains(&item) {
                continue;
            }
            if done_now == self.stop_after
                && self
                    .crashes
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                        left.checked_sub(1)
                    })
                    .is_ok()
            {
                return Err(StageError {
                    class: self.class,
                    message: format!("stopped before item {item}"),
                    stale_inputs: Vec::new(),
                });
            }
            let fact = Fact::new(
                ITEM_DONE.to_string(),
                1,
                &ItemDone {
                    item,
                    attempt: context.attempt,
                },
            )?;
            context.record_fact(fact).await?;
            done_now += 1;
        }
        Ok(StageOutput {
            facts: Vec::new(),
            summary: format!("{} item(s), {done_now} now", self.items),
        })
    }
}

/// Test handles on the `stepwise` kind.
struct StepwiseHandles {
    crashes: Arc<AtomicU32>,
    runs: Arc<AtomicU32>,
    /// Guards held (`hold`), and guards let go.
    taken: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
}

/// The registry of the tests plus `stepwise`, registered at run time under an owned name with a
/// closure that captures the test's handles (no process-wide table needed).
fn registry_with_stepwise(crashes: u32) -> (windlass_engine::StageRegistry, StepwiseHandles) {
    let handles = StepwiseHandles {
        crashes: Arc::new(AtomicU32::new(crashes)),
        runs: Arc::new(AtomicU32::new(0)),
        taken: Arc::new(AtomicU32::new(0)),
        dropped: Arc::new(AtomicU32::new(0)),
    };
    let (crashes, runs) = (handles.crashes.clone(), handles.runs.clone());
    let (taken, dropped) = (handles.taken.clone(), handles.dropped.clone());
    // An owned name, as a plugin loaded at run time would bring.
    let kind_name = String::from("stepwise");
    let mut registry = stage_registry();
    registry
        .register(StageKind::new(
            kind_name,
            "test double of a long stage that records facts as it goes",
            move |config: &serde_json::Value| {
                let settings: StepwiseSettings =
                    serde_json::from_value(config.clone()).map_err(|error| error.to_string())?;
                Ok(Box::new(StepwiseConfig {
                    settings,
                    crashes: crashes.clone(),
                    runs: runs.clone(),
                    taken: taken.clone(),
                    dropped: dropped.clone(),
                }) as Box<dyn StageConfig>)
            },
        ))
        .expect("stepwise is a new kind");
    (registry, handles)
}

fn stepwise(items: u32, stop_after: u32, class: FailureClass) -> StageSpec {
    let mut spec = StageSpec::new("long", "stepwise", &[]);
    spec.config = serde_json::json!({ "items": items, "stop_after": stop_after, "class": class });
    spec
}

fn deferring(items: u32, stop_after: u32) -> StageSpec {
    let mut spec = stepwise(items, stop_after, FailureClass::Permanent);
    spec.config["defer_start"] = serde_json::json!(true);
    spec
}

fn items_of(events: &[StoredEvent]) -> Vec<u32> {
    events
        .iter()
        .filter(|event| event.event_type == ITEM_DONE)
        .map(|event| {
            serde_json::from_value::<ItemDone>(event.payload.clone())
                .unwrap()
                .item
        })
        .collect()
}

#[test]
fn a_kind_name_is_registered_once() {
    let mut registry = stage_registry();
    let error = registry
        .register(StageKind::new(
            "scripted",
            "again",
            |_: &serde_json::Value| Err("never built".to_string()),
        ))
        .expect_err("scripted is registered already");
    assert_eq!(
        error.to_string(),
        "stage kind \"scripted\" is registered twice"
    );
}

#[tokio::test]
async fn a_resumed_stage_continues_from_the_facts_it_recorded_as_it_went() {
    let env = TestEnv::new();
    let (registry, handles) = registry_with_stepwise(1);
    let specs = [
        stepwise(5, 2, FailureClass::Permanent),
        scripted("after", &["long"], None),
    ];
    let pipeline = Pipeline::build(&specs, &registry).expect("valid pipeline");

    let (first, _) = env
        .runner
        .start(&pipeline, env.request(), "long-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(first.status, InstallStatus::Failed);
    let long = &first.stages[0];
    assert_eq!(long.status, StageStatus::Failed);
    assert_eq!(
        items_of(&long.fact_events),
        [1, 2],
        "the facts recorded before the failure are durable and the stage's"
    );
    let events = env.events("long-1");
    let markers: Vec<StageFactsRecorded> = payloads(&events, STAGE_FACTS_RECORDED);
    assert_eq!(markers.len(), 2, "one marker per recorded fact");
    assert!(
        markers
            .iter()
            .all(|marker| marker.stage == "long" && marker.facts == 1)
    );

    let (second, _) = env
        .runner
        .start(&pipeline, env.request(), "long-2")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(second.install_id, "long-1", "the failed install is resumed");
    assert_eq!(second.status, InstallStatus::Completed);
    assert_eq!(handles.runs.load(Ordering::SeqCst), 2);
    let long = &second.stages[0];
    assert_eq!(
        items_of(&long.fact_events),
        [1, 2, 3, 4, 5],
        "every item once: the resumed run did not start over"
    );
    assert_eq!(long.summary.as_deref(), Some("5 item(s), 3 now"));
    let attempts: Vec<u32> = long
        .fact_events
        .iter()
        .map(|event| {
            serde_json::from_value::<ItemDone>(event.payload.clone())
                .unwrap()
                .attempt
        })
        .collect();
    assert_eq!(attempts, [1, 1, 2, 2, 2]);
    assert_eq!(
        second,
        env.runner.state_of("long-1").unwrap(),
        "the state the run returns is what its recorded events fold to"
    );
    let after = &second.stages[1];
    assert_eq!(after.status, StageStatus::Completed);
    assert_eq!(
        after.facts.len(),
        1,
        "the downstream stage ran once, after the stage completed"
    );
}

#[tokio::test]
async fn a_deferred_fact_goes_with_the_next_recorded_one_or_the_stage_end_or_nowhere() {
    let env = TestEnv::new();
    // Recorded with the first item, in its batch, and counted by its marker.
    let (registry, _) = registry_with_stepwise(0);
    let pipeline = Pipeline::build(&[deferring(2, 0)], &registry).expect("valid pipeline");
    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "defer-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(state.status, InstallStatus::Completed);
    assert_eq!(items_of(&state.stages[0].fact_events), [0, 1, 2]);
    let events = env.events("defer-1");
    let markers: Vec<StageFactsRecorded> = payloads(&events, STAGE_FACTS_RECORDED);
    assert_eq!(
        markers
            .iter()
            .map(|marker| marker.facts)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let first_marker = events
        .iter()
        .position(|event| event.event_type == STAGE_FACTS_RECORDED)
        .unwrap();
    assert_eq!(items_of(&events[..first_marker]), [0, 1], "one batch");
    assert_eq!(state, env.runner.state_of("defer-1").unwrap());

    // Nothing recorded after it: among the facts the stage completes with.
    let env = TestEnv::new();
    let (registry, _) = registry_with_stepwise(0);
    let pipeline = Pipeline::build(&[deferring(0, 0)], &registry).expect("valid pipeline");
    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "defer-2")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(state.status, InstallStatus::Completed);
    assert_eq!(items_of(&state.stages[0].fact_events), [0]);
    assert!(
        payloads::<StageFactsRecorded>(&env.events("defer-2"), STAGE_FACTS_RECORDED).is_empty()
    );

    // A failure before anything else was recorded drops it; the resumed run defers it again.
    let env = TestEnv::new();
    let (registry, _) = registry_with_stepwise(1);
    let pipeline = Pipeline::build(&[deferring(2, 0)], &registry).expect("valid pipeline");
    let (failed, _) = env
        .runner
        .start(&pipeline, env.request(), "defer-3")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(failed.status, InstallStatus::Failed);
    assert!(items_of(&env.events("defer-3")).is_empty());
    let (resumed, _) = env
        .runner
        .start(&pipeline, env.request(), "defer-4")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(resumed.install_id, "defer-3");
    assert_eq!(resumed.status, InstallStatus::Completed);
    let attempts: Vec<(u32, u32)> = resumed.stages[0]
        .fact_events
        .iter()
        .map(|event| {
            let done: ItemDone = serde_json::from_value(event.payload.clone()).unwrap();
            (done.item, done.attempt)
        })
        .collect();
    assert_eq!(attempts, [(0, 2), (1, 2), (2, 2)]);
}

#[tokio::test(start_paused = true)]
async fn what_a_stage_holds_lasts_across_its_retries_until_its_outcome_is_recorded() {
    let env = TestEnv::new();
    let (registry, handles) = registry_with_stepwise(2);
    let mut spec = stepwise(3, 1, FailureClass::Transient);
    spec.config["hold"] = serde_json::json!(true);
    let pipeline = Pipeline::build(&[spec], &registry).expect("valid pipeline");
    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "hold-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(state.status, InstallStatus::Completed);
    assert_eq!(
        handles.runs.load(Ordering::SeqCst),
        3,
        "two retried attempts"
    );
    assert_eq!(
        handles.taken.load(Ordering::SeqCst),
        1,
        "the retried attempts found it held"
    );
    assert_eq!(
        handles.dropped.load(Ordering::SeqCst),
        1,
        "let go at the end"
    );

    // A stage that fails for good lets go too.
    let env = TestEnv::new();
    let (registry, handles) = registry_with_stepwise(1);
    let mut spec = stepwise(3, 1, FailureClass::Permanent);
    spec.config["hold"] = serde_json::json!(true);
    let pipeline = Pipeline::build(&[spec], &registry).expect("valid pipeline");
    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "hold-2")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(state.status, InstallStatus::Failed);
    assert_eq!(handles.dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retried_attempt_sees_what_the_failed_attempt_recorded() {
    let env = TestEnv::new();
    let (registry, handles) = registry_with_stepwise(2);
    let pipeline = Pipeline::build(&[stepwise(4, 1, FailureClass::Transient)], &registry)
        .expect("valid pipeline");

    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "retry-1")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(state.status, InstallStatus::Completed);
    assert_eq!(handles.runs.load(Ordering::SeqCst), 3);
    assert_eq!(items_of(&state.stages[0].fact_events), [1, 2, 3, 4]);
    let failures: Vec<StageFailed> = payloads(&env.events("retry-1"), STAGE_FAILED);
    assert_eq!(failures.len(), 2);
}

/// `stamped`: its `build` fails transiently while `build_failures` lasts; its run records the
/// injected clock's time and 8 bytes of the injected random source.
#[derive(Debug)]
struct StampedConfig {
    build_failures: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl StageConfig for StampedConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn build(&self, context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        tokio::task::yield_now().await;
        if self
            .build_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
        {
            return Err(StageError::transient(format!(
                "no connection for {} yet",
                context.stage_name
            )));
        }
        Ok(Arc::new(Stamped {
            built_at: context.services.clock.now(),
        }))
    }
}

struct Stamped {
    built_at: time::OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamp {
    built_at: i64,
    ran_at: i64,
    random: Vec<u8>,
}

#[async_trait::async_trait]
impl Stage for Stamped {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let mut random = [0u8; 8];
        context
            .services
            .random
            .fill(&mut random)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        let stamp = Stamp {
            built_at: self.built_at.unix_timestamp(),
            ran_at: context.services.clock.now().unix_timestamp(),
            random: random.to_vec(),
        };
        Ok(StageOutput {
            facts: vec![Fact::new(FACT_RECORDED, 1, &stamp)?],
            summary: "stamped".into(),
        })
    }
}

/// A random source that replays recorded bytes.
struct RecordedRandom(Vec<u8>);

impl RandomSource for RecordedRandom {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), ServiceError> {
        let source = self
            .0
            .get(..bytes.len())
            .ok_or_else(|| ServiceError("not enough recorded bytes".into()))?;
        bytes.copy_from_slice(source);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn build_is_async_fallible_and_gets_the_injected_services() {
    let mut env = TestEnv::new();
    let replayed_at = time::macros::datetime!(2026-02-03 04:05:06 UTC);
    env.runner.services = Services {
        clock: Arc::new(FixedClock(replayed_at)),
        random: Arc::new(RecordedRandom(vec![7, 6, 5, 4, 3, 2, 1, 0])),
        ..Services::default()
    };
    let build_failures = Arc::new(AtomicU32::new(1));
    let mut registry = stage_registry();
    let failures = build_failures.clone();
    registry
        .register(StageKind::new(
            "stamped",
            "test double: build fails once, run records the clock and random bytes",
            move |_: &serde_json::Value| {
                Ok(Box::new(StampedConfig {
                    build_failures: failures.clone(),
                }) as Box<dyn StageConfig>)
            },
        ))
        .unwrap();
    let pipeline = Pipeline::build(&[StageSpec::new("stamp", "stamped", &[])], &registry)
        .expect("valid pipeline");

    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "stamp-1")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(state.status, InstallStatus::Completed);
    let stage = &state.stages[0];
    assert_eq!(
        stage.attempts, 2,
        "the failed build was a failed attempt, retried"
    );
    let failures: Vec<StageFailed> = payloads(&env.events("stamp-1"), STAGE_FAILED);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].class, FailureClass::Transient);
    assert_eq!(
        failures[0].message,
        "cannot build the stage: no connection for stamp yet"
    );
    let stamp: Stamp = serde_json::from_value(stage.fact_events[0].payload.clone()).unwrap();
    assert_eq!(stamp.built_at, replayed_at.unix_timestamp());
    assert_eq!(stamp.ran_at, replayed_at.unix_timestamp());
    assert_eq!(stamp.random, [7, 6, 5, 4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn install_started_records_each_stage_configuration_in_full() {
    let env = TestEnv::new();
    let mut first = scripted("first", &[], None);
    first.config = serde_json::json!({ "facts": 3, "summary": "three" });
    let specs = [first, scripted("second", &["first"], None)];
    let pipeline = Pipeline::build(&specs, &stage_registry()).expect("valid pipeline");

    env.runner
        .start(&pipeline, env.request(), "configs-1")
        .await
        .expect("the runner itself does not fail");

    let events = env.events("configs-1");
    assert_eq!(events[0].schema_version, InstallStarted::VERSION);
    let started: Vec<InstallStarted> = payloads(&events, INSTALL_STARTED);
    let configs: Vec<_> = started[0]
        .pipeline
        .iter()
        .map(|stage| (stage.name.as_str(), stage.config.clone()))
        .collect();
    assert_eq!(
        configs,
        [
            (
                "first",
                serde_json::json!({ "facts": 3, "summary": "three" })
            ),
            ("second", serde_json::json!({})),
        ]
    );
}
