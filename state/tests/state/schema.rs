//! Schema table and upcasting: the registry must refuse an inconsistent table at start-up (a
//! missing, extra or out-of-order upcaster, a duplicate type, version 0), reading must bring old
//! payloads to the current version by applying the upcasters in order, a record from a newer
//! windlass must be refused with a message telling the user to upgrade, and event types the
//! registry does not know (plugins) must pass through untouched. The last tests go through
//! [`EventLog`] on a real redb log, where writing uses the current version and reading upcasts.

use std::sync::Arc;

use serde_json::{Value, json};
use windlass_state::redb_store::RedbStore;
use windlass_state::{
    EventLog, EventSchema, EventStore, NewEvent, SchemaError, SchemaRegistry, StoredEvent, Upcaster,
};

/// Appends a marker to `payload["trail"]`, so tests can see which upcasters ran and in what order.
fn mark(mut payload: Value, step: &str) -> Value {
    payload["trail"]
        .as_array_mut()
        .expect("payload has a trail")
        .push(json!(step));
    payload
}

fn one_to_two(payload: Value) -> Result<Value, String> {
    let mut payload = mark(payload, "1->2");
    // Version 2 renamed `name` to `title`.
    let name = payload["name"].take();
    payload["title"] = name;
    payload.as_object_mut().expect("object").remove("name");
    Ok(payload)
}

fn two_to_three(payload: Value) -> Result<Value, String> {
    let mut payload = mark(payload, "2->3");
    // Version 3 added a required `replicas`, defaulting to 1.
    payload["replicas"] = json!(1);
    Ok(payload)
}

fn always_fails(_: Value) -> Result<Value, String> {
    Err("field `legacy` has no modern equivalent".into())
}

const RELEASE_PLANNED: EventSchema = EventSchema {
    event_type: "ReleasePlanned",
    current_version: 3,
    upcasters: &[
        Upcaster {
            from_version: 1,
            upcast: one_to_two,
        },
        Upcaster {
            from_version: 2,
            upcast: two_to_three,
        },
    ],
};

const IMAGES_PROBED: EventSchema = EventSchema {
    event_type: "ImagesProbed",
    current_version: 1,
    upcasters: &[],
};

const BROKEN_UPGRADE: EventSchema = EventSchema {
    event_type: "BrokenUpgrade",
    current_version: 2,
    upcasters: &[Upcaster {
        from_version: 1,
        upcast: always_fails,
    }],
};

fn registry() -> SchemaRegistry {
    SchemaRegistry::new(&[&[RELEASE_PLANNED, IMAGES_PROBED], &[BROKEN_UPGRADE]])
        .expect("a consistent table")
}

fn stored(event_type: &str, schema_version: u32, payload: Value) -> StoredEvent {
    StoredEvent {
        envelope_version: 1,
        global_seq: 42,
        install_id: "web".into(),
        install_seq: 7,
        recorded_at: "2025-01-01T00:00:00Z".into(),
        actor: "tester@test".into(),
        event_type: event_type.into(),
        schema_version,
        payload,
        prev_hash: "0".repeat(64),
    }
}

fn bad_table(lists: &[&[EventSchema]]) -> String {
    match SchemaRegistry::new(lists) {
        Err(SchemaError::BadTable(message)) => message,
        Err(other) => panic!("expected BadTable, got {other:?}"),
        Ok(_) => panic!("an inconsistent table was accepted"),
    }
}

#[test]
fn registry_rejects_a_missing_upcaster() {
    let missing_second = EventSchema {
        upcasters: &RELEASE_PLANNED.upcasters[..1],
        ..RELEASE_PLANNED
    };
    let message = bad_table(&[&[missing_second]]);
    assert!(message.contains("ReleasePlanned"), "message: {message}");

    let none_at_all = EventSchema {
        upcasters: &[],
        ..RELEASE_PLANNED
    };
    bad_table(&[&[none_at_all]]);
}

#[test]
fn registry_rejects_extra_or_misordered_upcasters() {
    const REVERSED: &[Upcaster] = &[
        Upcaster {
            from_version: 2,
            upcast: two_to_three,
        },
        Upcaster {
            from_version: 1,
            upcast: one_to_two,
        },
    ];
    bad_table(&[&[EventSchema {
        upcasters: REVERSED,
        ..RELEASE_PLANNED
    }]]);
    bad_table(&[&[EventSchema {
        current_version: 2,
        ..RELEASE_PLANNED
    }]]);
}

#[test]
fn registry_rejects_duplicate_types() {
    let message = bad_table(&[&[RELEASE_PLANNED], &[IMAGES_PROBED, RELEASE_PLANNED]]);
    assert!(message.contains("ReleasePlanned"), "message: {message}");
    bad_table(&[&[IMAGES_PROBED, IMAGES_PROBED]]);
}

#[test]
fn registry_rejects_version_zero() {
    bad_table(&[&[EventSchema {
        event_type: "Nothing",
        current_version: 0,
        upcasters: &[],
    }]]);
}

#[test]
fn registry_lists_every_schema() {
    let registry = registry();
    let mut names: Vec<_> = registry.iter().map(|schema| schema.event_type).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["BrokenUpgrade", "ImagesProbed", "ReleasePlanned"]
    );
    assert_eq!(
        registry.get("ReleasePlanned").map(|s| s.current_version),
        Some(3)
    );
    assert!(registry.get("Unknown").is_none());
}

#[test]
fn upcast_applies_upcasters_in_order() {
    let registry = registry();
    let old = stored("ReleasePlanned", 1, json!({"name": "web", "trail": []}));
    let upcast = registry.upcast(old.clone()).expect("upcast from version 1");
    assert_eq!(upcast.schema_version, 3);
    assert_eq!(
        upcast.payload,
        json!({"trail": ["1->2", "2->3"], "title": "web", "replicas": 1})
    );
    // Only the payload and its version change; the envelope is the stored one.
    assert_eq!(
        StoredEvent {
            payload: old.payload.clone(),
            schema_version: 1,
            ..upcast
        },
        old
    );

    let middle = stored("ReleasePlanned", 2, json!({"title": "web", "trail": []}));
    let upcast = registry.upcast(middle).expect("upcast from version 2");
    assert_eq!(upcast.schema_version, 3);
    assert_eq!(upcast.payload["trail"], json!(["2->3"]));
}

#[test]
fn current_version_is_left_alone() {
    let current = stored("ReleasePlanned", 3, json!({"title": "web", "replicas": 4}));
    assert_eq!(registry().upcast(current.clone()).expect("upcast"), current);
}

#[test]
fn newer_version_than_known_asks_for_an_upgrade() {
    let future = stored("ReleasePlanned", 4, json!({"from": "the future"}));
    let error = registry()
        .upcast(future)
        .expect_err("a newer version must be refused");
    let message = error.to_string();
    match error {
        SchemaError::NewerThanKnown {
            global_seq,
            event_type,
            found,
            known,
        } => {
            assert_eq!(
                (global_seq, event_type.as_str(), found, known),
                (42, "ReleasePlanned", 4, 3)
            );
        }
        other => panic!("expected NewerThanKnown, got {other:?}"),
    }
    assert!(
        message.to_lowercase().contains("upgrade windlass"),
        "the message must tell the user to upgrade: {message}"
    );
    assert!(message.contains("newer"), "message: {message}");
}

#[test]
fn unknown_event_types_pass_through() {
    let plugin = stored("HelmChartPulled", 9, json!({"chart": "nginx"}));
    assert_eq!(
        registry().upcast(plugin.clone()).expect("pass through"),
        plugin
    );
}

#[test]
fn failing_upcaster_is_reported_with_its_version() {
    let old = stored("BrokenUpgrade", 1, json!({"legacy": true}));
    match registry().upcast(old) {
        Err(SchemaError::UpcastFailed {
            global_seq: 42,
            event_type,
            version: 1,
            reason,
        }) => {
            assert_eq!(event_type, "BrokenUpgrade");
            assert!(reason.contains("legacy"), "reason: {reason}");
        }
        other => panic!("expected UpcastFailed, got {other:?}"),
    }
}

/// A redb log (in a scratch directory) holding one `ReleasePlanned` record written by an older
/// windlass at version 1, for install `web`, read through the registry.
fn log_with_a_version_1_record() -> (tempfile::TempDir, Arc<RedbStore>, EventLog) {
    let dir = tempfile::tempdir().expect("scratch directory");
    let store = Arc::new(RedbStore::open(&dir.path().join("events.redb")).expect("open log"));
    store
        .append(vec![NewEvent::new(
            "web",
            "tester@test",
            "ReleasePlanned",
            1,
            json!({"name": "web", "trail": []}),
        )])
        .expect("raw append at version 1");
    let log = EventLog::new(store.clone(), Arc::new(registry()));
    (dir, store, log)
}

#[test]
fn event_log_upcasts_on_read_and_writes_only_current_versions() {
    let (_dir, store, log) = log_with_a_version_1_record();
    let refused = log.append(vec![NewEvent::new(
        "web",
        "tester@test",
        "ReleasePlanned",
        2,
        json!({}),
    )]);
    assert!(refused.is_err(), "writing an old version must be refused");

    log.append(vec![
        NewEvent::new(
            "web",
            "tester@test",
            "ReleasePlanned",
            3,
            json!({"title": "v3", "replicas": 2}),
        ),
        NewEvent::new(
            "web",
            "tester@test",
            "PluginSaidHello",
            5,
            json!({"hi": true}),
        ),
    ])
    .expect("current versions and unknown types are accepted");

    let events = log.events_of("web").expect("read through the log");
    let versions: Vec<u32> = events.iter().map(|e| e.schema_version).collect();
    assert_eq!(versions, vec![3, 3, 5]);
    assert_eq!(events[0].payload["title"], json!("web"));
    assert_eq!(events[0].payload["replicas"], json!(1));
    // The stored record is not rewritten by reading.
    assert_eq!(
        store.events_of("web").expect("raw read")[0].schema_version,
        1
    );
    assert_eq!(log.install_ids().expect("install ids"), vec!["web"]);
}

/// Lazy reads (`lazy_event_at`, `events_of_leaving_raw`): a payload stored at its type's current
/// version comes as its text, decoded into the reader's type only when asked; one stored at an
/// older version comes upcast, as `events_of` gives it; both decode to the same thing.
#[test]
fn lazy_reads_keep_current_payloads_as_text_and_upcast_old_ones() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Planned {
        title: String,
        replicas: u32,
    }
    let (_dir, _store, log) = log_with_a_version_1_record();
    log.append(vec![NewEvent::new(
        "web",
        "tester@test",
        "ReleasePlanned",
        3,
        json!({"title": "v3", "replicas": 2}),
    )])
    .expect("current version");

    let old = log.lazy_event_at(1).expect("read").expect("record 1");
    assert_eq!(
        old.payload_text, None,
        "an old version is upcast, not left as text"
    );
    assert_eq!(old.event.schema_version, 3);
    assert_eq!(
        old.decode::<Planned>().expect("decodes"),
        Planned {
            title: "web".into(),
            replicas: 1
        }
    );
    let current = log.lazy_event_at(2).expect("read").expect("record 2");
    assert_eq!(current.event.payload, serde_json::Value::Null);
    assert_eq!(
        current.payload_text.as_deref(),
        Some(r#"{"title":"v3","replicas":2}"#)
    );
    assert_eq!(
        current.decode::<Planned>().expect("decodes"),
        Planned {
            title: "v3".into(),
            replicas: 2
        }
    );
    assert!(log.lazy_event_at(3).expect("read").is_none(), "no record 3");

    // Whole, both are what `events_of` reads.
    let whole = log.events_of("web").expect("read");
    let lazy: Vec<_> = log
        .events_of_leaving_raw("web", &|event_type| event_type == "ReleasePlanned")
        .expect("read")
        .into_iter()
        .map(|lazy| lazy.into_event().expect("the text decodes"))
        .collect();
    assert_eq!(lazy, whole);
}

#[test]
fn version_zero_of_a_known_type_is_an_error_not_a_panic() {
    let broken = stored("ReleasePlanned", 0, json!({}));
    match registry().upcast(broken) {
        Err(SchemaError::UpcastFailed { version: 0, .. }) => {}
        other => panic!("expected UpcastFailed at version 0, got {other:?}"),
    }
}
