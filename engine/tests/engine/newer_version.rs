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

    // Starting the same install again must refuse too, not start over beside an unreadable log.
    let refused = env
        .runner
        .start(&pipeline, env.request(), "install-2")
        .await
        .expect_err("start must not proceed past an unreadable install");
    assert!(
        refused.to_string().contains("written by a newer windlass"),
        "{refused}"
    );
    assert_eq!(env.state.log.install_ids().unwrap(), vec!["install-1"]);
}
