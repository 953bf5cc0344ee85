//! Golden fixtures of the apply stage's events (`fixtures/events/<EventType>.v<N>.json`, never
//! edited once committed): each stored envelope must upcast through the schema table and decode
//! into today's typed payload without losing a field, and every `(type, version)` in
//! `windlass_apply::SCHEMAS` must have a fixture.

use std::collections::BTreeSet;
use std::path::Path;

use windlass_apply::events::{
    APP_STATE_OBSERVED, APPLY_COMPLETED, APPLY_STARTED, AppStateObserved, ApplyCompleted,
    ApplyStarted, HELM_RELEASE_FREED, HELM_RELEASE_INSTALLED, HELM_RELEASE_UNINSTALLED,
    HELM_UPGRADE_STARTED, HelmReleaseFreed, HelmReleaseInstalled, HelmReleaseUninstalled,
    HelmUpgradeStarted, OBJECT_DELETED_TO_RECREATE, OBJECT_PRUNED, OBJECTS_APPLIED,
    OBJECTS_DELETING, OBJECTS_SENDING, ObjectDeletedToRecreate, ObjectPruned, ObjectsApplied,
    ObjectsDeleting, ObjectsSending, WAIT_FINISHED, WaitFinished,
};
use windlass_state::{SchemaRegistry, StoredEvent};

fn decode_losslessly<T: serde::de::DeserializeOwned + serde::Serialize>(
    name: &str,
    event: &StoredEvent,
) {
    let typed: T = serde_json::from_value(event.payload.clone())
        .unwrap_or_else(|error| panic!("{name} does not decode: {error}"));
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        event.payload,
        "{name}: decoding dropped or changed a field"
    );
}

#[test]
fn every_fixture_decodes_into_the_current_payload() {
    let registry = SchemaRegistry::new(&[windlass_apply::SCHEMAS]).expect("table");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apply/fixtures/events");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let stored: StoredEvent = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|error| panic!("{name} is not a stored event: {error}"));
        seen.insert((stored.event_type.clone(), stored.schema_version));
        let event = registry.upcast(stored).expect("upcasts");
        match event.event_type.as_str() {
            OBJECTS_APPLIED => decode_losslessly::<ObjectsApplied>(&name, &event),
            OBJECTS_SENDING => decode_losslessly::<ObjectsSending>(&name, &event),
            OBJECTS_DELETING => decode_losslessly::<ObjectsDeleting>(&name, &event),
            WAIT_FINISHED => decode_losslessly::<WaitFinished>(&name, &event),
            OBJECT_PRUNED => decode_losslessly::<ObjectPruned>(&name, &event),
            OBJECT_DELETED_TO_RECREATE => {
                decode_losslessly::<ObjectDeletedToRecreate>(&name, &event);
            }
            APP_STATE_OBSERVED => decode_losslessly::<AppStateObserved>(&name, &event),
            APPLY_COMPLETED => decode_losslessly::<ApplyCompleted>(&name, &event),
            APPLY_STARTED => decode_losslessly::<ApplyStarted>(&name, &event),
            HELM_RELEASE_INSTALLED => decode_losslessly::<HelmReleaseInstalled>(&name, &event),
            HELM_RELEASE_UNINSTALLED => decode_losslessly::<HelmReleaseUninstalled>(&name, &event),
            HELM_UPGRADE_STARTED => decode_losslessly::<HelmUpgradeStarted>(&name, &event),
            HELM_RELEASE_FREED => decode_losslessly::<HelmReleaseFreed>(&name, &event),
            other => panic!("{name}: unexpected event type {other}"),
        }
    }
    for schema in windlass_apply::SCHEMAS {
        assert!(
            seen.contains(&(schema.event_type.to_string(), schema.current_version)),
            "no fixture for {} v{}",
            schema.event_type,
            schema.current_version
        );
    }
}
