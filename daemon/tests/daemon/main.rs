//! Tests of `windlass-daemon`: the golden fixtures of its events (never edited once committed)
//! decode through the schema table into today's types without losing a field, every
//! `(type, version)` it writes has a fixture, and release content is judged as documented
//! (digests, bundles and their limits). The daemon itself runs through the real binary in the
//! root package's `tests/cli/daemon.rs`.

mod content;

use std::path::{Path, PathBuf};

use windlass_daemon::events::{
    PullSecretsCopied, ReleaseDetected, ReleaseFinished, ReleaseKind, ReleaseResult, TakenBecause,
};
use windlass_state::{EventPayload, SchemaRegistry, StoredEvent};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/daemon/fixtures/events")
}

fn round_trips<T: EventPayload + serde::de::DeserializeOwned + serde::Serialize>(name: &str) -> T {
    let event: StoredEvent =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap();
    assert_eq!(event.event_type, T::EVENT_TYPE);
    let registry = SchemaRegistry::new(&[windlass_daemon::events::SCHEMAS]).unwrap();
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
fn release_detected_v1_fixture_decodes() {
    let detected: ReleaseDetected = round_trips("ReleaseDetected.v1.json");
    assert_eq!(detected.kind, ReleaseKind::Directory);
    assert_eq!(detected.taken_because, TakenBecause::ReadyMarker);
    assert_eq!(detected.version.as_deref(), Some("1.2.0"));
    assert_eq!(detected.install_id, "20261126-195747-ba621b");
}

#[test]
fn release_finished_v1_fixture_decodes() {
    let finished: ReleaseFinished = round_trips("ReleaseFinished.v1.json");
    assert_eq!(finished.result, ReleaseResult::Failed);
    assert!(finished.error.unwrap().contains("invalid YAML"));
}

#[test]
fn pull_secrets_copied_v1_fixture_decodes() {
    let copied: PullSecretsCopied = round_trips("PullSecretsCopied.v1.json");
    assert_eq!(copied.namespace, "team-b");
    assert_eq!(copied.secrets, ["my-app-registry"]);
}

#[test]
fn every_written_version_has_a_fixture() {
    for schema in windlass_daemon::events::SCHEMAS {
        for version in 1..=schema.current_version {
            let name = format!("{}.v{version}.json", schema.event_type);
            assert!(fixtures().join(&name).is_file(), "{name} is missing");
        }
    }
}

#[test]
fn release_streams_are_not_install_ids() {
    let digest = "sha256:ca6b13f25098d217da495ec9042cba2f23993a7ef724b585fbddedae7d2372f9";
    let stream = windlass_daemon::events::release_stream(digest);
    assert_eq!(stream.len(), 64, "a stream id holds at most 64 characters");
    assert!(windlass_daemon::events::is_release_stream(&stream));
    assert!(!windlass_daemon::events::is_release_stream(
        "20261126-195747-ba621b"
    ));
}
