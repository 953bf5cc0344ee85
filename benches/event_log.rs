//! Event log benchmarks: appending 100,000 small events in stage-sized atomic batches (each batch is
//! one durable redb commit, as the runner records one stage's facts with its `StageCompleted`), and
//! reading plus folding one install of 10,000 events (what `windlass show` and resume do).

use std::sync::Arc;
use std::time::Duration;
use windlass_engine::EventPayload;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use windlass_engine::events::{
    INSTALL_STARTED, InstallStarted, PipelineStageRecord, STAGE_COMPLETED, STAGE_STARTED,
    StageCompleted, StageStarted,
};
use windlass_state::{Backend, NewEvent, SchemaRegistry, StateDir};

const TOTAL_EVENTS: usize = 100_000;

fn schemas() -> Arc<SchemaRegistry> {
    Arc::new(
        SchemaRegistry::new(&[windlass_engine::events::SCHEMAS, windlass_stages::SCHEMAS])
            .expect("schema table is consistent"),
    )
}

fn small_event(install: &str, index: usize) -> NewEvent {
    NewEvent::new(
        install,
        "bench@localhost",
        "ImageProbed",
        1,
        serde_json::json!({"image": format!("quay.io/my-org/app-{index}:1.0"), "outcome": "auth_required", "status": 401}),
    )
}

fn append_100k(c: &mut Criterion, batch_size: usize) {
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(format!("100k events in batches of {batch_size}"), |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let state = StateDir::open(dir.path(), Backend::Redb, schemas()).unwrap();
                (dir, state)
            },
            |(dir, state)| {
                for batch_start in (0..TOTAL_EVENTS).step_by(batch_size) {
                    let batch = (batch_start..batch_start + batch_size)
                        .map(|index| small_event("bench-install", index))
                        .collect();
                    state.log.append(batch).unwrap();
                }
                drop(state);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn append_benches(c: &mut Criterion) {
    append_100k(c, 1_000);
    append_100k(c, 100);
}

/// An install of `count` events: a start, then stages each with a start, facts and a completion.
fn install_events(install: &str, count: usize) -> Vec<NewEvent> {
    const STAGES: usize = 9;
    let pipeline = (0..STAGES)
        .map(|stage| PipelineStageRecord {
            name: format!("stage-{stage}"),
            kind: "bench".into(),
            inputs: vec![],
            config: serde_json::json!({}),
        })
        .collect();
    let started = InstallStarted {
        release_dir: "/releases/bench".into(),
        release_digest: "blake3:bench".into(),
        install_key: "bench".into(),
        app_slug: "bench".into(),
        license: None,
        namespace: "default".into(),
        out_dir: "/tmp/out".into(),
        pipeline,
        upgrades: None,
        kind: Some(windlass_engine::InstallKind::Install),
    };
    let event = |event_type: &str, version: u32, payload: serde_json::Value| {
        NewEvent::new(install, "bench@localhost", event_type, version, payload)
    };
    let mut events = vec![event(
        INSTALL_STARTED,
        InstallStarted::VERSION,
        serde_json::to_value(&started).unwrap(),
    )];
    // One InstallStarted, then per stage a StageStarted, its facts and a StageCompleted.
    assert_eq!(
        (count - 1) % STAGES,
        0,
        "count must be 1 + a multiple of {STAGES}"
    );
    let facts_per_stage = (count - 1) / STAGES - 2;
    for stage in 0..STAGES {
        let name = format!("stage-{stage}");
        events.push(event(
            STAGE_STARTED,
            1,
            serde_json::to_value(StageStarted {
                stage: name.clone(),
                attempt: 1,
            })
            .unwrap(),
        ));
        for fact in 0..facts_per_stage {
            events.push(small_event(install, fact));
        }
        events.push(event(
            STAGE_COMPLETED,
            1,
            serde_json::to_value(StageCompleted {
                stage: name,
                attempt: 1,
                duration_ms: 1,
                facts: facts_per_stage as u32,
                summary: String::new(),
            })
            .unwrap(),
        ));
    }
    events
}

fn fold_10k(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path(), Backend::Redb, schemas()).unwrap();
    let events = install_events("bench-install", 10_000);
    let count = events.len();
    state.log.append(events).unwrap();
    let stored = state.log.events_of("bench-install").unwrap();
    assert_eq!(stored.len(), count);
    let mut group = c.benchmark_group("fold");
    group.bench_function(format!("fold an install of {count} events"), |b| {
        b.iter(|| windlass_engine::fold("bench-install", &stored).unwrap())
    });
    group.bench_function(
        format!("read, upcast and fold an install of {count} events"),
        |b| {
            b.iter(|| {
                let events = state.log.events_of("bench-install").unwrap();
                windlass_engine::fold("bench-install", &events).unwrap()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, append_benches, fold_10k);
criterion_main!(benches);
