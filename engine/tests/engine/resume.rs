//! Resume: `Runner::start` with the request of an install that did not complete picks that install
//! up again under its own id, runs only the stages that did not complete (feeding them the facts
//! recorded the first time) and records `InstallResumed`; a completed install, or a different
//! request, gets a new install instead. An install whose output directory defaulted to one named
//! after it keeps writing there when resumed. Before a resume, every completed stage restores its
//! output from what it recorded; what was written again is recorded in `InstallResumed`, and a
//! stage that cannot restore its output fails the install. A stage that fails naming an input as
//! stale makes the next resume run that input again.

use windlass_engine::events::{INSTALL_RESUMED, InstallResumed, RederivedOutput};
use windlass_engine::runner::StartKind;
use windlass_engine::{FailureClass, InstallStatus, StageError, StageStatus};

use crate::support::{Probe, TestEnv, payloads, pipeline, scripted};

#[tokio::test]
async fn failed_install_resumes_under_its_id_without_rerunning_completed_stages() {
    let env = TestEnv::new();
    let a = Probe::new().register("resume/a");
    let b = Probe::new()
        .failing_with(&[FailureClass::Permanent])
        .register("resume/b");
    let pipeline = pipeline(&[
        scripted("a", &[], Some("resume/a")),
        scripted("b", &["a"], Some("resume/b")),
    ]);

    let (first, kind) = env
        .runner
        .start(&pipeline, env.request(), "install-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(kind, StartKind::Fresh);
    assert_eq!(first.status, InstallStatus::Failed);
    assert_eq!((a.runs(), b.runs()), (1, 1));

    let (second, kind) = env
        .runner
        .start(&pipeline, env.request(), "install-2")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(kind, StartKind::Resumed);
    assert_eq!(second.install_id, "install-1");
    assert_eq!(
        env.state.log.install_ids().unwrap(),
        vec!["install-1"],
        "resuming must not create the new install id"
    );
    assert_eq!(a.runs(), 1, "completed stage a must not run again");
    assert_eq!(b.runs(), 2);
    assert_eq!(
        b.seen()[1].attempt,
        2,
        "attempts are counted across resumes"
    );
    assert_eq!(
        b.seen()[1].inputs["a"],
        first.stages[0].fact_events,
        "the resumed stage reads the facts a recorded the first time"
    );

    let events = env.events("install-1");
    let resumed: Vec<InstallResumed> = payloads(&events, INSTALL_RESUMED);
    assert_eq!(
        resumed,
        vec![InstallResumed {
            completed_stages: vec!["a".into()],
            rederived: vec![],
        }]
    );

    assert_eq!(second.status, InstallStatus::Completed);
    assert_eq!(second.resumed, 1);
    assert!(second.failure.is_none());
    assert_eq!(second.stages[0].status, StageStatus::Completed);
    assert_eq!(second.stages[0].attempts, 1);
    assert_eq!(second.stages[1].status, StageStatus::Completed);
    assert_eq!(second.stages[1].attempts, 2);
    assert_eq!(second, env.runner.state_of("install-1").unwrap());
}

#[tokio::test]
async fn completed_install_with_the_same_request_starts_fresh() {
    let env = TestEnv::new();
    let a = Probe::new().register("resume/completed-a");
    let pipeline = pipeline(&[scripted("a", &[], Some("resume/completed-a"))]);

    let (first, kind) = env
        .runner
        .start(&pipeline, env.request(), "install-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(kind, StartKind::Fresh);
    assert_eq!(first.status, InstallStatus::Completed);

    let (second, kind) = env
        .runner
        .start(&pipeline, env.request(), "install-2")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(kind, StartKind::Fresh);
    assert_eq!(second.install_id, "install-2");
    assert_eq!(second.status, InstallStatus::Completed);
    assert_eq!(second.resumed, 0);
    assert_eq!(a.runs(), 2);
    assert_eq!(
        env.state.log.install_ids().unwrap(),
        vec!["install-1", "install-2"]
    );
    assert!(
        !env.event_types("install-1")
            .iter()
            .any(|event_type| event_type == INSTALL_RESUMED),
        "the completed install is left alone"
    );
}

#[tokio::test]
async fn a_different_request_does_not_resume_a_failed_install() {
    let env = TestEnv::new();
    let probe = Probe::new()
        .failing_with(&[FailureClass::Permanent])
        .register("resume/other-request");
    let pipeline = pipeline(&[scripted("a", &[], Some("resume/other-request"))]);
    let (first, _) = env
        .runner
        .start(&pipeline, env.request(), "install-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(first.status, InstallStatus::Failed);

    let mut other = env.unlicensed_request();
    other.namespace = "acme-staging".into();
    let (second, kind) = env
        .runner
        .start(&pipeline, other.into(), "install-2")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(kind, StartKind::Fresh);
    assert_eq!(second.install_id, "install-2");
    assert_eq!(second.status, InstallStatus::Completed);
    assert_eq!(probe.runs(), 2);
    assert_eq!(
        env.runner.state_of("install-1").unwrap().status,
        InstallStatus::Failed,
        "the failed install of the other request is untouched"
    );
}

#[tokio::test]
async fn resumed_install_with_a_default_output_keeps_its_first_output_directory() {
    let env = TestEnv::new();
    let probe = Probe::new()
        .failing_with(&[FailureClass::Permanent])
        .register("resume/default-out");
    let pipeline = pipeline(&[scripted("a", &[], Some("resume/default-out"))]);
    let defaulted_to = |install_id: &str| {
        let mut request = env.unlicensed_request();
        request.requested_out = None;
        request.out_dir = env.dir.path().join("installs").join(install_id);
        std::sync::Arc::new(request)
    };
    let (first, _) = env
        .runner
        .start(&pipeline, defaulted_to("install-1"), "install-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(first.status, InstallStatus::Failed);

    let (second, kind) = env
        .runner
        .start(&pipeline, defaulted_to("install-2"), "install-2")
        .await
        .expect("the runner itself does not fail");

    assert_eq!(
        kind,
        StartKind::Resumed,
        "a default output directory is not part of the install key"
    );
    assert_eq!(second.install_id, "install-1");
    assert_eq!(second.status, InstallStatus::Completed);
    let out_dirs: Vec<_> = probe.seen().into_iter().map(|run| run.out_dir).collect();
    assert_eq!(
        out_dirs,
        vec![
            env.dir.path().join("installs/install-1"),
            env.dir.path().join("installs/install-1"),
        ],
        "the resumed run writes where the install started"
    );
    assert_eq!(second.out, first.out);
}

#[tokio::test]
async fn a_resume_has_completed_stages_restore_their_output_and_records_what_was_rederived() {
    let env = TestEnv::new();
    let a = Probe::new()
        .restoring(vec![Ok(Some("a/ was missing; written again".into()))])
        .register("resume/restore-a");
    let b = Probe::new()
        .failing_with(&[FailureClass::Permanent])
        .register("resume/restore-b");
    let pipeline = pipeline(&[
        scripted("a", &[], Some("resume/restore-a")),
        scripted("b", &["a"], Some("resume/restore-b")),
    ]);
    let (first, _) = env
        .runner
        .start(&pipeline, env.request(), "install-1")
        .await
        .unwrap();
    assert_eq!(first.status, InstallStatus::Failed);
    assert!(a.restored().is_empty(), "a fresh install restores nothing");

    let (second, kind) = env
        .runner
        .start(&pipeline, env.request(), "install-2")
        .await
        .unwrap();
    assert_eq!(kind, StartKind::Resumed);
    assert_eq!(second.status, InstallStatus::Completed);
    assert_eq!(
        a.restored(),
        vec![first.stages[0].fact_events.clone()],
        "the completed stage is asked once, with the facts it recorded"
    );
    assert!(
        b.restored().is_empty(),
        "b had not completed: it runs instead"
    );
    assert_eq!((a.runs(), b.runs()), (1, 2));
    let resumed: Vec<InstallResumed> = payloads(&env.events("install-1"), INSTALL_RESUMED);
    assert_eq!(
        resumed,
        vec![InstallResumed {
            completed_stages: vec!["a".into()],
            rederived: vec![RederivedOutput {
                stage: "a".into(),
                detail: "a/ was missing; written again".into(),
            }],
        }]
    );
}

#[tokio::test]
async fn a_stage_that_cannot_restore_its_output_fails_the_resumed_install_until_it_can() {
    let env = TestEnv::new();
    let a = Probe::new()
        .restoring(vec![Err(StageError::permanent("blob 00ff is missing"))])
        .register("resume/unrestorable-a");
    let b = Probe::new()
        .failing_with(&[FailureClass::Permanent])
        .register("resume/unrestorable-b");
    let pipeline = pipeline(&[
        scripted("a", &[], Some("resume/unrestorable-a")),
        scripted("b", &["a"], Some("resume/unrestorable-b")),
    ]);
    env.runner
        .start(&pipeline, env.request(), "install-1")
        .await
        .unwrap();
    let (second, kind) = env
        .runner
        .start(&pipeline, env.request(), "install-2")
        .await
        .unwrap();
    assert_eq!(kind, StartKind::Resumed);
    assert_eq!(second.status, InstallStatus::Failed);
    let failure = second.failure.expect("the failure is recorded");
    assert_eq!(
        (failure.stage.as_str(), failure.message.as_str()),
        ("a", "blob 00ff is missing")
    );
    assert_eq!(
        b.runs(),
        1,
        "nothing runs on output that could not be restored"
    );

    let (third, _) = env
        .runner
        .start(&pipeline, env.request(), "install-3")
        .await
        .unwrap();
    assert_eq!(third.install_id, "install-1");
    assert_eq!(third.status, InstallStatus::Completed);
    assert_eq!(a.restored().len(), 2);
    assert_eq!((a.runs(), b.runs()), (1, 2));
}

#[tokio::test]
async fn a_failure_naming_a_stale_input_makes_the_resume_run_that_input_again() {
    let env = TestEnv::new();
    let a = Probe::new().register("stale/a");
    let b = Probe::new()
        .failing_with(&[FailureClass::Permanent])
        .blaming_input("a")
        .register("stale/b");
    let pipeline = pipeline(&[
        scripted("a", &[], Some("stale/a")),
        scripted("b", &["a"], Some("stale/b")),
    ]);

    let (first, _) = env
        .runner
        .start(&pipeline, env.request(), "install-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(first.status, InstallStatus::Failed);
    assert_eq!(
        first.stages[0].status,
        StageStatus::Pending,
        "a's results are stale: it runs again next time"
    );
    assert!(first.stages[0].facts.is_empty());

    let (second, kind) = env
        .runner
        .start(&pipeline, env.request(), "install-2")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(kind, StartKind::Resumed);
    assert_eq!(second.status, InstallStatus::Completed);
    assert_eq!((a.runs(), b.runs()), (2, 2), "a ran again before b");
    let resumed = env
        .events("install-1")
        .into_iter()
        .find(|event| event.event_type == INSTALL_RESUMED)
        .expect("InstallResumed recorded");
    let resumed: InstallResumed = serde_json::from_value(resumed.payload).unwrap();
    assert!(resumed.completed_stages.is_empty(), "{resumed:?}");
}
