//! The engine's projections against the fold: with `InstallProjector` attached, the summary of
//! every install equals what folding its events gives, `find_resumable` finds the same install
//! through the install-key index as by folding every install, the newest install of each app and
//! the facts by type (the probe cache's lookup) agree with the events, and a log written without
//! the projector is indexed by a rebuild with the same result.

use std::sync::Arc;

use windlass_engine::install_index::{self, InstallProjector};
use windlass_engine::{FailureClass, InstallState, InstallStatus, InstallSummary};
use windlass_state::ProjectionStatus;

use crate::support::{FACT_RECORDED, Probe, TestEnv, pipeline, scripted};

/// Key, app, status, started, finished, duration, resumes and events of an install.
type Summary = (
    String,
    String,
    InstallStatus,
    String,
    Option<String>,
    Option<u64>,
    u32,
    u64,
);

/// The summary folding the install's events gives.
fn folded_summary(state: &InstallState) -> Summary {
    (
        state.install_key.clone(),
        state.app_slug.clone(),
        state.status,
        state.started_at.clone(),
        state.finished_at.clone(),
        state.duration_ms,
        state.resumed,
        state.events,
    )
}

fn indexed_summary(summary: &InstallSummary) -> Summary {
    (
        summary.install_key.clone(),
        summary.app_slug.clone(),
        summary.status.into(),
        summary.started_at.clone(),
        summary.finished_at.clone(),
        summary.duration_ms(),
        summary.resumed,
        summary.events,
    )
}

#[tokio::test]
async fn projections_answer_what_the_fold_answers() {
    let mut env = TestEnv::new();
    let plain = env.runner.log.clone();
    env.runner.log = env
        .runner
        .log
        .clone()
        .with_projector(Arc::new(InstallProjector));
    assert_eq!(
        env.runner.log.ensure_projections(true).unwrap(),
        ProjectionStatus::Rebuilt(0)
    );
    let flaky = Probe::new()
        .failing_with(&[FailureClass::Permanent])
        .register("indexes/flaky");
    let pipeline = pipeline(&[
        scripted("a", &[], None),
        scripted("b", &["a"], Some("indexes/flaky")),
    ]);
    // install-1 fails (resumable); install-2 and install-3 complete under other namespaces;
    // install-1 is then resumed to completion and a fourth install of its request starts anew.
    let failing = env.request();
    env.runner
        .start(&pipeline, failing.clone(), "install-1")
        .await
        .unwrap();
    for (id, namespace) in [("install-2", "second"), ("install-3", "third")] {
        let mut request = env.unlicensed_request();
        request.namespace = namespace.into();
        env.runner
            .start(&pipeline, Arc::new(request), id)
            .await
            .unwrap();
    }
    let key = failing.install_key(pipeline.fingerprint());
    let through_index = env.runner.find_resumable(&key).unwrap().expect("resumable");
    assert_eq!(through_index.install_id, "install-1");
    assert_eq!(
        install_index::install_for_key(&env.runner.log, &key).unwrap(),
        Some(Some("install-1".to_string()))
    );
    // The same answer by folding every install (a log without projections).
    let mut folding = TestEnv::new();
    folding.runner.log = plain.clone();
    assert_eq!(
        folding.runner.find_resumable(&key).unwrap(),
        Some(through_index)
    );
    drop(flaky);

    env.runner
        .start(&pipeline, failing.clone(), "install-ignored")
        .await
        .unwrap();
    assert_eq!(env.runner.find_resumable(&key).unwrap(), None);
    env.runner
        .start(&pipeline, failing.clone(), "install-4")
        .await
        .unwrap();

    let ids = env.runner.log.install_ids().unwrap();
    assert_eq!(ids, ["install-1", "install-2", "install-3", "install-4"]);
    let summaries = install_index::summaries(&env.runner.log, &ids)
        .unwrap()
        .expect("current");
    assert_eq!(summaries.len(), 4);
    for (id, summary) in ids.iter().zip(&summaries) {
        let folded = env.runner.state_of(id).unwrap();
        assert_eq!(summary.install_id, *id);
        assert_eq!(indexed_summary(summary), folded_summary(&folded), "{id}");
        assert_eq!(summary.release_digest, folded.release_digest);
        assert_eq!(summary.release_dir, folded.release_dir);
    }
    assert_eq!(summaries[0].resumed, 1);
    assert_eq!(
        install_index::latest_install_of_app(&env.runner.log, &summaries[0].app_slug).unwrap(),
        Some(Some("install-4".to_string()))
    );

    // Facts by type: every FactRecorded of the other installs, newest first.
    let since = time::OffsetDateTime::UNIX_EPOCH;
    let indexed = install_index::recent_facts(&env.runner.log, FACT_RECORDED, since, "install-2")
        .unwrap()
        .expect("current");
    let mut expected: Vec<_> = ids
        .iter()
        .filter(|id| *id != "install-2")
        .flat_map(|id| env.runner.log.events_of(id).unwrap())
        .filter(|event| event.event_type == FACT_RECORDED)
        .collect();
    expected.sort_by_key(|event| std::cmp::Reverse(event.global_seq));
    assert!(!expected.is_empty());
    assert_eq!(indexed, expected);
    // A visitor that breaks is handed nothing after the break.
    let mut visited = Vec::new();
    install_index::visit_recent_facts(
        &env.runner.log,
        FACT_RECORDED,
        since,
        "install-2",
        &mut |event| {
            visited.push(event.event.global_seq);
            std::ops::ControlFlow::Break(())
        },
    )
    .unwrap()
    .expect("current");
    assert_eq!(visited, [expected[0].global_seq]);

    // The same log without the projector's rows: stale, and rebuilt to the same rows.
    let before = env.runner.log.projection_scan("install", "").unwrap();
    plain
        .append(vec![windlass_state::NewEvent::new(
            "install-4",
            "tester@test",
            "SomethingNoted",
            1,
            serde_json::json!({}),
        )])
        .unwrap();
    assert!(
        install_index::summaries(&env.runner.log, &ids)
            .unwrap()
            .is_none(),
        "stale rows are never read"
    );
    assert!(matches!(
        env.runner.log.ensure_projections(true).unwrap(),
        ProjectionStatus::Rebuilt(_)
    ));
    let after = env.runner.log.projection_scan("install", "").unwrap();
    assert_eq!(after.len(), before.len());
    let summary = install_index::summaries(&env.runner.log, &ids[3..])
        .unwrap()
        .expect("current");
    assert_eq!(
        indexed_summary(&summary[0]),
        folded_summary(&env.runner.state_of("install-4").unwrap())
    );
}
