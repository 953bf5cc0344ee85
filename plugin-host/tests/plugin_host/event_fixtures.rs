//! Golden fixtures of the plugin host's events (`fixtures/events/<EventType>.v<N>.json`, never
//! edited once committed): each decodes into today's payload without losing a field, and every
//! `(type, version)` in `windlass_plugin_host::SCHEMAS` has one.

use std::path::Path;

use windlass_plugin_host::{PluginRan, SCHEMAS};
use windlass_state::{EventPayload, SchemaRegistry, StoredEvent};

#[test]
fn every_event_version_has_a_fixture_that_decodes_losslessly() {
    let registry = SchemaRegistry::new(&[SCHEMAS]).expect("table");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugin_host/fixtures/events");
    for schema in SCHEMAS {
        for version in 1..=schema.current_version {
            let path = dir.join(format!("{}.v{version}.json", schema.event_type));
            let stored: StoredEvent =
                serde_json::from_slice(&std::fs::read(&path).expect("fixture exists"))
                    .expect("a stored event");
            let event = registry.upcast(stored).expect("upcasts");
            assert_eq!(event.event_type, PluginRan::EVENT_TYPE);
            let typed: PluginRan = serde_json::from_value(event.payload.clone()).expect("decodes");
            assert_eq!(
                serde_json::to_value(&typed).unwrap(),
                event.payload,
                "{}: decoding dropped or changed a field",
                path.display()
            );
        }
    }
}
