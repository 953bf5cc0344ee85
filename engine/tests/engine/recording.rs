//! What a completed run leaves in the log: the lifecycle events and each stage's facts in order,
//! `StageCompleted.facts` counting exactly the fact events recorded just before it, the license
//! recorded only as a fingerprint, and the fold (`windlass_engine::fold`) turning it all into stage
//! statuses, attempts, summaries and fact references.

use windlass_engine::events::{
    INSTALL_COMPLETED, INSTALL_STARTED, InstallStarted, STAGE_COMPLETED, STAGE_STARTED,
    StageCompleted, StageStarted,
};
use windlass_engine::install_state::FactRef;
use windlass_engine::{InstallStatus, StageStatus, fold};

use crate::support::{
    ACTOR, FACT_RECORDED, FactRecorded, LICENSE_ID, TestEnv, payloads, pipeline, scripted,
};

#[tokio::test]
async fn completed_run_records_lifecycle_and_facts_in_order() {
    let env = TestEnv::new();
    let mut first = scripted("first", &[], None);
    first.config = serde_json::json!({ "facts": 2, "summary": "two facts" });
    let mut second = scripted("second", &["first"], None);
    second.config = serde_json::json!({ "facts": 0 });
    let pipeline = pipeline(&[first, second]);
    let request = env.licensed_request();

    env.runner
        .start(&pipeline, request.clone(), "recorded-1")
        .await
        .expect("the runner itself does not fail");

    let events = env.events("recorded-1");
    assert_eq!(
        env.event_types("recorded-1"),
        vec![
            INSTALL_STARTED,
            STAGE_STARTED,
            FACT_RECORDED,
            FACT_RECORDED,
            STAGE_COMPLETED,
            STAGE_STARTED,
            STAGE_COMPLETED,
            INSTALL_COMPLETED,
        ]
    );
    assert_eq!(
        events
            .iter()
            .map(|event| event.install_seq)
            .collect::<Vec<_>>(),
        (1..=8).collect::<Vec<u64>>()
    );
    assert!(events.iter().all(|event| event.actor == ACTOR));

    let started: Vec<StageStarted> = payloads(&events, STAGE_STARTED);
    assert_eq!(
        started,
        vec![
            StageStarted {
                stage: "first".into(),
                attempt: 1
            },
            StageStarted {
                stage: "second".into(),
                attempt: 1
            },
        ]
    );
    let facts: Vec<FactRecorded> = payloads(&events, FACT_RECORDED);
    assert_eq!(
        facts,
        vec![
            FactRecorded {
                stage: "first".into(),
                index: 1,
                attempt: 1
            },
            FactRecorded {
                stage: "first".into(),
                index: 2,
                attempt: 1
            },
        ]
    );
    let completed: Vec<StageCompleted> = payloads(&events, STAGE_COMPLETED);
    assert_eq!(
        completed
            .iter()
            .map(|stage| (
                stage.stage.as_str(),
                stage.attempt,
                stage.facts,
                stage.summary.as_str()
            ))
            .collect::<Vec<_>>(),
        vec![("first", 1, 2, "two facts"), ("second", 1, 0, "0 fact(s)")]
    );

    // `StageCompleted.facts` is exactly the run of fact events right before it.
    for (position, event) in events.iter().enumerate() {
        if event.event_type != STAGE_COMPLETED {
            continue;
        }
        let completed: StageCompleted = serde_json::from_value(event.payload.clone()).unwrap();
        let preceding_facts = events[..position]
            .iter()
            .rev()
            .take_while(|earlier| earlier.event_type == FACT_RECORDED)
            .count();
        assert_eq!(
            completed.facts as usize, preceding_facts,
            "StageCompleted of {} at seq {}",
            completed.stage, event.install_seq
        );
    }

    // The license is recorded as a fingerprint, never as the license ID.
    let install_started: Vec<InstallStarted> = payloads(&events, INSTALL_STARTED);
    let license = request.license.as_ref().unwrap();
    assert_eq!(
        install_started[0].license,
        Some(license.record()),
        "InstallStarted records the license's app slug, sequence, fingerprint and expiry"
    );
    assert_eq!(install_started[0].pipeline, pipeline.record());
    let whole_log = serde_json::to_string(&events).unwrap();
    assert!(
        !whole_log.contains(LICENSE_ID),
        "the license ID leaked into the log"
    );

    let state = fold("recorded-1", &events).expect("the log folds");
    assert_eq!(state, env.runner.state_of("recorded-1").unwrap());
    assert_eq!(state.status, InstallStatus::Completed);
    assert_eq!(state.app_slug, "acme");
    assert_eq!(
        state.install_key,
        request.install_key(pipeline.fingerprint())
    );
    assert_eq!(state.namespace, "acme");
    assert_eq!(state.resumed, 0);
    assert_eq!(state.events, 8);
    assert!(state.failure.is_none());
    assert!(state.finished_at.is_some());
    assert!(state.duration_ms.is_some());

    let [first, second] = state.stages.as_slice() else {
        panic!("expected two stages, got {:#?}", state.stages);
    };
    assert_eq!(first.name, "first");
    assert_eq!(first.status, StageStatus::Completed);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.summary.as_deref(), Some("two facts"));
    assert!(first.last_error.is_none());
    assert_eq!(
        first.facts,
        vec![
            FactRef {
                seq: 3,
                event_type: FACT_RECORDED.into()
            },
            FactRef {
                seq: 4,
                event_type: FACT_RECORDED.into()
            },
        ]
    );
    assert_eq!(first.fact_events, events[2..4].to_vec());

    assert_eq!(second.name, "second");
    assert_eq!(second.inputs, vec!["first"]);
    assert_eq!(second.status, StageStatus::Completed);
    assert_eq!(second.attempts, 1);
    assert_eq!(second.summary.as_deref(), Some("0 fact(s)"));
    assert!(second.facts.is_empty());
}

/// `events_decoding` (what `find_resumable`'s lifecycle fold and `windlass apply`'s fold of the
/// rendered install read): every event in log order, the lifecycle events and the facts asked for
/// decoded as `events_of` decodes them, every other fact with a `null` payload; a log of more
/// than half a megabyte is skimmed on two threads and still comes back in order.
#[tokio::test]
async fn events_decoding_skims_the_facts_not_asked_for_in_order() {
    let env = TestEnv::new();
    let mut first = scripted("first", &[], None);
    first.config = serde_json::json!({ "facts": 3 });
    let pipeline = pipeline(&[first]);
    env.runner
        .start(&pipeline, env.licensed_request(), "skimmed-1")
        .await
        .expect("the runner itself does not fail");
    // Big facts of a type nobody registered (as a rendered install's facts are big).
    let big = "x".repeat(100 * 1024);
    let batch = (0..8)
        .map(|index| {
            windlass_state::NewEvent::new(
                "skimmed-1",
                ACTOR,
                if index % 2 == 0 {
                    "test.Big"
                } else {
                    "test.Kept"
                },
                1,
                serde_json::json!({ "index": index, "text": big }),
            )
        })
        .collect();
    env.runner.log.append(batch).expect("appended");
    let whole = env.runner.log.events_of("skimmed-1").expect("read");
    for decoded_types in [&["test.Kept"][..], &[][..]] {
        let skimmed =
            windlass_engine::runner::events_decoding(&env.runner.log, "skimmed-1", &|event_type| {
                decoded_types.contains(&event_type)
            })
            .expect("read");
        assert_eq!(skimmed.len(), whole.len());
        for (skimmed, whole) in skimmed.iter().zip(&whole) {
            assert_eq!(skimmed.global_seq, whole.global_seq);
            assert_eq!(skimmed.install_seq, whole.install_seq);
            assert_eq!(skimmed.event_type, whole.event_type);
            let kept = windlass_engine::runner::LIFECYCLE_EVENTS
                .contains(&whole.event_type.as_str())
                || decoded_types.contains(&whole.event_type.as_str());
            if kept {
                assert_eq!(skimmed.payload, whole.payload, "{}", whole.event_type);
            } else {
                assert_eq!(
                    skimmed.payload,
                    serde_json::Value::Null,
                    "{}",
                    whole.event_type
                );
            }
        }
    }
    // The lifecycle fold of a completed install says so without the facts' payloads.
    let lifecycle = env.runner.lifecycle_of("skimmed-1").expect("folded");
    let state = env.runner.state_of("skimmed-1").expect("folded");
    assert_eq!(lifecycle.status, InstallStatus::Completed);
    assert_eq!(lifecycle.install_key, state.install_key);
    assert_eq!(lifecycle.events, state.events);
}
