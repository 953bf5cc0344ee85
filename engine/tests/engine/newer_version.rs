//! A log that holds an event written by a newer windlass (a schema version this binary does not
//! know) is refused with an error saying so, rather than misread. The event is written through the
//! raw store, because the `EventLog` façade only ever writes current versions.

use windlass_engine::RunError;
use windlass_engine::events::{INSTALL_COMPLETED, STAGE_STARTED};
use windlass_state::log::LogError;
use windlass_state::{NewEvent, SchemaError};

use crate::support::{ACTOR, TestEnv, pipeline, scripted};

#[tokio::test]
async fn event_from_a_newer_windlass_makes_state_of_fail_clearly() {
    let env = TestEnv::new();
    let pipeline = pipeline(&[scripted("a", &[], None)]);
    env.runner
        .start(&pipeline, env.request(), "install-1")
        .await
        .expect("the runner itself does not fail");
    assert_eq!(
        env.event_types("install-1").last().unwrap(),
        INSTALL_COMPLETED
    );

    let stored = env
        .state
        .log
        .store()
        .append(vec![NewEvent::new(
            "install-1",
            ACTOR,
            STAGE_STARTED,
            99,
            serde_json::json!({ "stage": "a", "attempt": 2, "lane": "fast" }),
        )])
        .expect("the raw store accepts any version");
    let stored_count = env.state.log.store().events_of("install-1").unwrap().len();

    let error = env
        .runner
        .state_of("install-1")
        .expect_err("a version-99 StageStarted must not be folded");
    let message = error.to_string();
    assert!(
        message.contains("written by a newer windlass"),
        "the message must say why: {message}"
    );
    assert!(
        message.contains("StageStarted version 99"),
        "the message must name the event: {message}"
    );
    match error {
        RunError::Log(LogError::Schema(SchemaError::NewerThanKnown {
            global_seq,
            event_type,
            found,
            known,
        })) => {
            assert_eq!(global_seq, stored[0].global_seq);
            assert_eq!(event_type, STAGE_STARTED);
            assert_eq!((found, known), (99, 1));
        }
        other => panic!("expected NewerThanKnown, got {other:?}"),
    }

    // This binary cannot resume an install it cannot read; a new install of the same request
    // starts beside it instead of being blocked by it, and the unreadable one stays untouched.
    let (fresh, _) = env
        .runner
        .start(&pipeline, env.request(), "install-2")
        .await
        .expect("an unreadable install does not block new installs");
    assert_eq!(fresh.install_id, "install-2");
    assert_eq!(
        env.state.log.install_ids().unwrap(),
        vec!["install-1", "install-2"]
    );
    assert_eq!(
        env.state.log.store().events_of("install-1").unwrap().len(),
        stored_count
    );
}
