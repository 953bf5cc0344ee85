//! Stages with no path between them run concurrently, proved without timing: both wait on one
//! two-party barrier, which only opens if both are in flight at once (a runner that ran them one
//! after the other would make the first time out and fail the install). A stage depending on both
//! receives both their recorded facts in `context.inputs`.

use std::sync::Arc;

use tokio::sync::Barrier;
use windlass_engine::{InstallStatus, StageStatus};

use crate::support::{FACT_RECORDED, FactRecorded, Probe, TestEnv, payloads, pipeline, scripted};

#[tokio::test]
async fn independent_stages_run_concurrently_and_their_dependent_sees_both() {
    let env = TestEnv::new();
    let barrier = Arc::new(Barrier::new(2));
    let left = Probe::new()
        .waiting_at(barrier.clone())
        .register("concurrency/left");
    let right = Probe::new()
        .waiting_at(barrier)
        .register("concurrency/right");
    let join = Probe::new().register("concurrency/join");
    let mut left_spec = scripted("left", &[], Some("concurrency/left"));
    left_spec.config["facts"] = 2.into();
    let pipeline = pipeline(&[
        left_spec,
        scripted("right", &[], Some("concurrency/right")),
        scripted("join", &["left", "right"], Some("concurrency/join")),
    ]);

    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "concurrent-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(
        state,
        env.runner.state_of("concurrent-1").unwrap(),
        "the state the run returns is what its recorded events fold to"
    );

    assert_eq!(
        state.status,
        InstallStatus::Completed,
        "failure: {:?}",
        state.failure
    );
    assert_eq!((left.runs(), right.runs(), join.runs()), (1, 1, 1));
    assert!(
        state
            .stages
            .iter()
            .all(|stage| stage.status == StageStatus::Completed)
    );

    let seen = join.seen();
    let inputs = &seen[0].inputs;
    assert_eq!(
        inputs.keys().collect::<Vec<_>>(),
        vec!["left", "right"],
        "join must see exactly its declared inputs"
    );
    let facts_of = |name: &str| {
        state
            .stages
            .iter()
            .find(|stage| stage.name == name)
            .expect("stage is in the fold")
            .fact_events
            .clone()
    };
    assert_eq!(inputs["left"], facts_of("left"));
    assert_eq!(inputs["right"], facts_of("right"));
    let left_facts: Vec<FactRecorded> = payloads(&inputs["left"], FACT_RECORDED);
    let right_facts: Vec<FactRecorded> = payloads(&inputs["right"], FACT_RECORDED);
    assert_eq!(
        left_facts
            .iter()
            .map(|fact| (fact.stage.as_str(), fact.index))
            .collect::<Vec<_>>(),
        vec![("left", 1), ("left", 2)]
    );
    assert_eq!(
        right_facts
            .iter()
            .map(|fact| (fact.stage.as_str(), fact.index))
            .collect::<Vec<_>>(),
        vec![("right", 1)]
    );
}
