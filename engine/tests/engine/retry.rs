//! The retry policy as the runner applies it: transient failures are retried with backoff (each
//! `StageFailed` says when the next attempt comes) until the attempt budget is spent; permanent and
//! invalid-input failures end the install at once with `InstallFailed`. Time is paused, so the
//! backoff sleeps advance tokio's clock instead of costing wall time (tokio does not auto-advance
//! while the runner's `spawn_blocking` appends are in flight, so they still complete).

use std::time::Duration;

use windlass_engine::events::{
    INSTALL_COMPLETED, INSTALL_FAILED, InstallFailed, STAGE_FAILED, STAGE_STARTED, StageFailed,
    StageStarted,
};
use windlass_engine::install_state::InstallFailureRecord;
use windlass_engine::retry::MAX_ATTEMPTS;
use windlass_engine::{FailureClass, InstallStatus, StageStatus};

use crate::support::{Probe, TestEnv, payloads, pipeline, scripted};

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff_until_success() {
    let env = TestEnv::new();
    let flaky = Probe::new()
        .failing_with(&[FailureClass::Transient, FailureClass::Transient])
        .register("retry/flaky");
    let pipeline = pipeline(&[scripted("flaky", &[], Some("retry/flaky"))]);
    let clock = tokio::time::Instant::now();

    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "flaky-1")
        .await
        .expect("the runner itself does not fail");

    assert!(
        clock.elapsed() >= Duration::from_millis(250 + 500),
        "the runner must back off 250ms then 500ms, only {:?} passed",
        clock.elapsed()
    );
    assert_eq!(flaky.runs(), 3);
    assert_eq!(
        flaky
            .seen()
            .iter()
            .map(|run| run.attempt)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(state.status, InstallStatus::Completed);
    assert_eq!(state.stages[0].status, StageStatus::Completed);
    assert_eq!(state.stages[0].attempts, 3);
    assert_eq!(
        state,
        env.runner.state_of("flaky-1").unwrap(),
        "the state the run returns is what its recorded events fold to"
    );

    let events = env.events("flaky-1");
    let started: Vec<StageStarted> = payloads(&events, STAGE_STARTED);
    assert_eq!(
        started.iter().map(|s| s.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let failed: Vec<StageFailed> = payloads(&events, STAGE_FAILED);
    assert_eq!(
        failed
            .iter()
            .map(|f| (f.stage.as_str(), f.attempt, f.class, f.retry_in_ms))
            .collect::<Vec<_>>(),
        vec![
            ("flaky", 1, FailureClass::Transient, Some(250)),
            ("flaky", 2, FailureClass::Transient, Some(500)),
        ]
    );
    assert_eq!(
        failed[0].message, "scripted transient failure on attempt 1",
        "the stage's own message is recorded"
    );
    assert_eq!(
        events.last().unwrap().event_type,
        INSTALL_COMPLETED,
        "no InstallFailed for a failure that was retried away"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_give_up_after_the_attempt_budget() {
    let env = TestEnv::new();
    let always = vec![FailureClass::Transient; MAX_ATTEMPTS as usize];
    let probe = Probe::new()
        .failing_with(&always)
        .register("retry/always-transient");
    let pipeline = pipeline(&[scripted("flaky", &[], Some("retry/always-transient"))]);

    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "exhausted-1")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(probe.runs(), MAX_ATTEMPTS);
    assert_eq!(state.status, InstallStatus::Failed);
    assert_eq!(state.stages[0].attempts, MAX_ATTEMPTS);
    assert_eq!(state, env.runner.state_of("exhausted-1").unwrap());
    let events = env.events("exhausted-1");
    let failed: Vec<StageFailed> = payloads(&events, STAGE_FAILED);
    assert_eq!(
        failed.iter().map(|f| f.retry_in_ms).collect::<Vec<_>>(),
        vec![Some(250), Some(500), Some(1000), None]
    );
    let install_failed: Vec<InstallFailed> = payloads(&events, INSTALL_FAILED);
    assert_eq!(install_failed.len(), 1);
    assert_eq!(install_failed[0].class, FailureClass::Transient);
    assert_eq!(events.last().unwrap().event_type, INSTALL_FAILED);
}

/// Runs `first -> second` where `first` fails once with `class`, and checks it was not retried.
async fn check_not_retried(class: FailureClass, probe_key: &str, wire_name: &str) {
    let env = TestEnv::new();
    let probe = Probe::new().failing_with(&[class]).register(probe_key);
    let pipeline = pipeline(&[
        scripted("first", &[], Some(probe_key)),
        scripted("second", &["first"], None),
    ]);

    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "doomed-1")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(probe.runs(), 1, "a {class} failure must not be retried");
    let events = env.events("doomed-1");
    let failed: Vec<StageFailed> = payloads(&events, STAGE_FAILED);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].class, class);
    assert_eq!(failed[0].retry_in_ms, None);
    let message = format!("scripted {class} failure on attempt 1");
    let install_failed: Vec<InstallFailed> = payloads(&events, INSTALL_FAILED);
    assert_eq!(
        install_failed,
        vec![InstallFailed {
            stage: "first".into(),
            class,
            message: message.clone(),
        }]
    );
    let last = events.last().unwrap();
    assert_eq!(last.event_type, INSTALL_FAILED);
    assert_eq!(last.payload["class"], wire_name, "the class as stored");

    assert_eq!(state.status, InstallStatus::Failed);
    assert_eq!(
        state.failure,
        Some(InstallFailureRecord {
            stage: "first".into(),
            class,
            message,
        })
    );
    assert_eq!(state.stages[0].status, StageStatus::Failed);
    assert_eq!(state.stages[0].attempts, 1);
    assert_eq!(
        state.stages[1].status,
        StageStatus::Pending,
        "a stage whose input failed never starts"
    );
    assert_eq!(state.stages[1].attempts, 0);
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_is_not_retried() {
    check_not_retried(FailureClass::Permanent, "retry/permanent", "permanent").await;
}

#[tokio::test(start_paused = true)]
async fn invalid_input_failure_is_not_retried() {
    check_not_retried(
        FailureClass::InvalidInput,
        "retry/invalid-input",
        "invalid_input",
    )
    .await;
}

#[tokio::test]
async fn a_panicking_stage_is_recorded_as_a_permanent_failure_of_that_stage() {
    let env = TestEnv::new();
    let probe = Probe::new().panicking().register("retry-panicking-stage");
    let pipeline = pipeline(&[scripted("explodes", &[], Some("retry-panicking-stage"))]);
    let (state, _) = env
        .runner
        .start(&pipeline, env.request(), "install-panic")
        .await
        .expect("a stage panic is a stage failure, not a runner error");
    assert_eq!(probe.runs(), 1, "a panic is permanent: no retry");
    assert_eq!(state.status, InstallStatus::Failed);
    let failure = state.failure.expect("the failure is recorded");
    assert_eq!(failure.stage, "explodes");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert!(
        failure.message.contains("stage explodes crashed")
            && failure.message.contains("scripted panic"),
        "{}",
        failure.message
    );
    assert_eq!(
        env.event_types("install-panic"),
        [
            "InstallStarted",
            "StageStarted",
            "StageFailed",
            "InstallFailed"
        ]
    );
}
