//! Tests of `windlass-replay`: the golden fixtures of its events (never edited once committed)
//! decode through the schema table into today's types without losing a field, and every
//! `(type, version)` it writes has a fixture. Replays themselves are tested through the real
//! binary in the root package's `tests/cli/replay.rs`.

use std::path::{Path, PathBuf};

use windlass_replay::events::{ReplayDiffered, ReplayVerified};
use windlass_state::{EventPayload, SchemaRegistry, StoredEvent};

fn fixture(name: &str) -> StoredEvent {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/replay/fixtures/events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn round_trips<T: EventPayload + serde::de::DeserializeOwned + serde::Serialize>(name: &str) -> T {
    let event = fixture(name);
    assert_eq!(event.event_type, T::EVENT_TYPE);
    let registry = SchemaRegistry::new(&[windlass_replay::SCHEMAS]).unwrap();
    let upcast = registry.upcast(event.clone()).unwrap();
    let decoded: T = serde_json::from_value(upcast.payload.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&decoded).unwrap(),
        event.payload,
        "{name} decodes without losing a field"
    );
    decoded
}

#[test]
fn replay_verified_v1_fixture_decodes() {
    let verified: ReplayVerified = round_trips("ReplayVerified.v1.json");
    assert_eq!(verified.files_compared, 16);
    assert_eq!(verified.secret_files_compared, 2);
}

#[test]
fn replay_differed_v1_fixture_decodes() {
    let differed: ReplayDiffered = round_trips("ReplayDiffered.v1.json");
    assert_eq!(differed.total, 2);
    assert_eq!(differed.differences[0].stage, "render_midstream");
    assert_eq!(differed.differences[1].file, None);
}

#[test]
fn every_written_version_has_a_fixture() {
    for schema in windlass_replay::SCHEMAS {
        for version in 1..=schema.current_version {
            let name = format!("{}.v{version}.json", schema.event_type);
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/replay/fixtures/events")
                    .join(&name)
                    .is_file(),
                "{name} is missing"
            );
        }
    }
}
