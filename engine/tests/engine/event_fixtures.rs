//! Golden fixtures of the engine's events (`fixtures/events/<EventType>.v<N>[.<variant>].json`,
//! never edited once committed, see `fixtures/README.md`): every stored envelope must still upcast
//! through the schema table and decode into today's typed struct without losing a field, the
//! upcasters' results are pinned field by field, and every `(type, version)` the engine has ever
//! written must have a fixture, so no version is added without one.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use windlass_engine::LicenseRecord;
use windlass_engine::events::{
    INSTALL_COMPLETED, INSTALL_FAILED, INSTALL_RESUMED, INSTALL_STARTED, InstallCompleted,
    InstallFailed, InstallKind, InstallResumed, InstallStarted, PipelineStageRecord, SCHEMAS,
    STAGE_COMPLETED, STAGE_FACTS_RECORDED, STAGE_FAILED, STAGE_STARTED, StageCompleted,
    StageFactsRecorded, StageFailed, StageStarted,
};
use windlass_state::{SchemaRegistry, StoredEvent};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engine/fixtures/events")
}

/// One fixture file, parsed.
struct Fixture {
    file_name: String,
    event_type: String,
    version: u32,
    event: StoredEvent,
}

/// Splits `<EventType>.v<N>[.<variant>].json` into the type and version.
fn parse_file_name(file_name: &str) -> Option<(String, u32)> {
    let stem = file_name.strip_suffix(".json")?;
    let mut parts = stem.split('.');
    let event_type = parts.next()?.to_string();
    let version = parts.next()?.strip_prefix('v')?.parse().ok()?;
    let variant = parts.next();
    if parts.next().is_some() || variant == Some("") || event_type.is_empty() {
        return None;
    }
    Some((event_type, version))
}

fn load_fixtures() -> Vec<Fixture> {
    let mut fixtures: Vec<Fixture> = fs::read_dir(fixtures_dir())
        .expect("read the fixtures directory")
        .map(|entry| {
            let path = entry.expect("read a fixtures directory entry").path();
            let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
            let (event_type, version) = parse_file_name(&file_name).unwrap_or_else(|| {
                panic!("{file_name} is not named <EventType>.v<N>[.<variant>].json")
            });
            let text = fs::read_to_string(&path).expect("read a fixture");
            let event: StoredEvent = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{file_name} is not a StoredEvent: {error}"));
            Fixture {
                file_name,
                event_type,
                version,
                event,
            }
        })
        .collect();
    fixtures.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    fixtures
}

fn fixture(file_name: &str) -> StoredEvent {
    load_fixtures()
        .into_iter()
        .find(|fixture| fixture.file_name == file_name)
        .unwrap_or_else(|| panic!("fixture {file_name} is missing"))
        .event
}

fn registry() -> SchemaRegistry {
    SchemaRegistry::new(&[SCHEMAS]).expect("the engine's schema table is consistent")
}

/// The fixture brought to the current version and decoded into `T`.
fn upcast_into<T: DeserializeOwned>(file_name: &str) -> T {
    let event = registry()
        .upcast(fixture(file_name))
        .unwrap_or_else(|error| panic!("{file_name} does not upcast: {error}"));
    serde_json::from_value(event.payload)
        .unwrap_or_else(|error| panic!("{file_name} does not decode: {error}"))
}

fn reencode<T: DeserializeOwned + Serialize>(payload: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(payload.clone()).map_err(|error| error.to_string())?;
    serde_json::to_value(&typed).map_err(|error| error.to_string())
}

/// Decodes a current-version payload into its typed struct and encodes it again.
fn decode_current(event: &StoredEvent) -> Result<Value, String> {
    match event.event_type.as_str() {
        INSTALL_STARTED => reencode::<InstallStarted>(&event.payload),
        INSTALL_RESUMED => reencode::<InstallResumed>(&event.payload),
        STAGE_STARTED => reencode::<StageStarted>(&event.payload),
        STAGE_COMPLETED => reencode::<StageCompleted>(&event.payload),
        STAGE_FAILED => reencode::<StageFailed>(&event.payload),
        STAGE_FACTS_RECORDED => reencode::<StageFactsRecorded>(&event.payload),
        INSTALL_COMPLETED => reencode::<InstallCompleted>(&event.payload),
        INSTALL_FAILED => reencode::<InstallFailed>(&event.payload),
        other => Err(format!(
            "no typed struct is known for {other}: add it to decode_current"
        )),
    }
}

/// Records where `decoded` (the payload after a typed round trip) lost or changed something that
/// `stored` held. A stored `null` may come back absent (optional fields skipped when empty).
fn find_losses(stored: &Value, decoded: &Value, at: &str, losses: &mut Vec<String>) {
    match (stored, decoded) {
        (Value::Object(stored), Value::Object(decoded)) => {
            for (key, value) in stored {
                let here = format!("{at}.{key}");
                match decoded.get(key) {
                    Some(decoded_value) => find_losses(value, decoded_value, &here, losses),
                    None if value.is_null() => {}
                    None => losses.push(format!("{here} is ignored by the current struct")),
                }
            }
        }
        (Value::Array(stored), Value::Array(decoded)) if stored.len() == decoded.len() => {
            for (index, (value, decoded_value)) in stored.iter().zip(decoded).enumerate() {
                find_losses(value, decoded_value, &format!("{at}[{index}]"), losses);
            }
        }
        _ if stored == decoded => {}
        _ => losses.push(format!("{at} was {stored} and decodes as {decoded}")),
    }
}

#[test]
fn every_fixture_upcasts_and_decodes_into_the_current_type() {
    let registry = registry();
    let fixtures = load_fixtures();
    assert!(
        !fixtures.is_empty(),
        "no fixtures found in {:?}",
        fixtures_dir()
    );
    let mut problems = Vec::new();
    for Fixture {
        file_name,
        event_type,
        version,
        event,
    } in fixtures
    {
        if (event.event_type.as_str(), event.schema_version) != (event_type.as_str(), version) {
            problems.push(format!(
                "{file_name}: holds {} version {}",
                event.event_type, event.schema_version
            ));
            continue;
        }
        let Some(schema) = registry.get(&event_type) else {
            problems.push(format!(
                "{file_name}: {event_type} is not an engine event type"
            ));
            continue;
        };
        let current_version = schema.current_version;
        let upcast = match registry.upcast(event) {
            Ok(upcast) => upcast,
            Err(error) => {
                problems.push(format!("{file_name}: {error}"));
                continue;
            }
        };
        assert_eq!(upcast.schema_version, current_version, "{file_name}");
        match decode_current(&upcast) {
            Ok(decoded) => {
                let mut losses = Vec::new();
                find_losses(&upcast.payload, &decoded, "payload", &mut losses);
                problems.extend(
                    losses
                        .into_iter()
                        .map(|loss| format!("{file_name}: {loss}")),
                );
            }
            Err(error) => problems.push(format!(
                "{file_name}: upcast to version {current_version} but does not decode: {error}"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "fixtures no longer read back:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_schema_version_has_a_fixture() {
    let present: Vec<String> = load_fixtures()
        .into_iter()
        .map(|fixture| fixture.file_name)
        .collect();
    let missing: Vec<String> = SCHEMAS
        .iter()
        .flat_map(|schema| {
            (1..=schema.current_version)
                .map(move |version| format!("{}.v{version}.json", schema.event_type))
        })
        .filter(|file_name| !present.contains(file_name))
        .collect();
    assert!(
        missing.is_empty(),
        "every event type and version needs a golden fixture in {:?}; missing: {missing:?}",
        fixtures_dir()
    );
}

fn fetch_then_write_pipeline() -> Vec<PipelineStageRecord> {
    vec![
        PipelineStageRecord {
            name: "fetch_base".into(),
            kind: "fetch_base".into(),
            inputs: vec![],
            config: Value::Null,
        },
        PipelineStageRecord {
            name: "write_base".into(),
            kind: "write_base".into(),
            inputs: vec!["fetch_base".into()],
            config: Value::Null,
        },
    ]
}

#[test]
fn install_started_v1_with_a_license_upcasts_to_a_license_record() {
    let started: InstallStarted = upcast_into("InstallStarted.v1.json");
    assert_eq!(
        started,
        InstallStarted {
            release_dir: "/home/ops/releases/acme-2.4.1".into(),
            release_digest: "8830d4e9c6e669acc4d0e4a3519cc0063b3a919f421ee0d4aa6a3913b75ed1ce"
                .into(),
            install_key: "ff465e02beaecdb499dac308e5fe2f5b".into(),
            app_slug: "acme".into(),
            license: Some(LicenseRecord {
                app_slug: "acme".into(),
                sequence: 7,
                fingerprint: "fp1:3699e3b6dde46736d5feaffe3b649504".into(),
                expires_at: None,
            }),
            namespace: "acme".into(),
            out_dir: "/var/lib/windlass/installs/01HZX5Q9K3T7VW2B8C4D6F0GJM".into(),
            pipeline: fetch_then_write_pipeline(),
            upgrades: None,
            kind: None,
        }
    );
}

#[test]
fn install_started_v1_without_a_license_upcasts_to_no_license() {
    let started: InstallStarted = upcast_into("InstallStarted.v1.no-license.json");
    assert_eq!(started.app_slug, "app", "the default slug replaces null");
    assert_eq!(started.license, None);
    assert_eq!(started.namespace, "tools");
    assert_eq!(started.out_dir, "/srv/deploy/internal-tools");
    assert_eq!(started.install_key, "f2de0a07fe056f6a3d2b2a7dd26d4456");
    assert_eq!(started.pipeline, fetch_then_write_pipeline());
}

#[test]
fn install_started_v2_keeps_the_license_expiry() {
    let started: InstallStarted = upcast_into("InstallStarted.v2.json");
    assert_eq!(
        started.license,
        Some(LicenseRecord {
            app_slug: "acme".into(),
            sequence: 9,
            fingerprint: "fp1:d572000f0262ea12add21a9af7dc635b".into(),
            expires_at: Some("2026-06-30T00:00:00Z".into()),
        })
    );
    assert_eq!(started.namespace, "acme-prod");
}

#[test]
fn install_started_v2_upcasts_to_stage_configurations_not_recorded() {
    let started: InstallStarted = upcast_into("InstallStarted.v2.json");
    assert_eq!(started.pipeline, fetch_then_write_pipeline());
    assert!(
        started.pipeline.iter().all(|stage| stage.config.is_null()),
        "version 2 recorded no configuration: null, not an invented one"
    );
}

#[test]
fn install_started_v3_records_each_stage_configuration_in_full() {
    let started: InstallStarted = upcast_into("InstallStarted.v3.json");
    assert_eq!(started.pipeline[0].config, serde_json::json!({}));
    let probe = &started.pipeline[1];
    assert_eq!(
        (probe.name.as_str(), probe.kind.as_str()),
        ("probe_images", "probe_images")
    );
    assert_eq!(probe.config["offline"], Value::Bool(true));
    assert_eq!(
        probe.config["known_images_file"],
        Value::from("/etc/windlass/installation.yaml")
    );
}

#[test]
fn install_started_v3_names_the_install_it_upgrades_when_there_is_one() {
    let upgrade: InstallStarted = upcast_into("InstallStarted.v3.upgrades.json");
    assert_eq!(
        upgrade.upgrades.as_deref(),
        Some("01HZX5Q9K3T7VW2B8C4D6F0GJK")
    );
    let first: InstallStarted = upcast_into("InstallStarted.v3.json");
    assert_eq!(first.upgrades, None, "absent in installs recorded before");
}

#[test]
fn install_started_v3_tells_an_apply_or_undeploy_recorded_before_its_kind_from_its_pipeline() {
    let install: InstallStarted = upcast_into("InstallStarted.v3.json");
    assert_eq!((install.kind, install.kind()), (None, InstallKind::Install));
    let apply: InstallStarted = upcast_into("InstallStarted.v3.apply.json");
    assert_eq!((apply.kind, apply.kind()), (None, InstallKind::Apply));
    let undeploy: InstallStarted = upcast_into("InstallStarted.v3.undeploy.json");
    assert_eq!(
        (undeploy.kind, undeploy.kind()),
        (None, InstallKind::Undeploy)
    );
    let recorded: InstallStarted = upcast_into("InstallStarted.v3.kind.json");
    assert_eq!(recorded.kind, Some(InstallKind::Undeploy));
}

#[test]
fn stage_facts_recorded_v1_names_the_stage_and_how_many_facts_precede_it() {
    let recorded: StageFactsRecorded = upcast_into("StageFactsRecorded.v1.json");
    assert_eq!(
        recorded,
        StageFactsRecorded {
            stage: "apply".into(),
            attempt: 2,
            facts: 1,
        }
    );
}

#[test]
fn stage_failed_v1_reads_its_class_and_retry_delay() {
    let retried: StageFailed = upcast_into("StageFailed.v1.json");
    assert_eq!(
        (retried.class, retried.retry_in_ms),
        (windlass_engine::FailureClass::Transient, Some(250))
    );
    let given_up: StageFailed = upcast_into("StageFailed.v1.permanent.json");
    assert_eq!(
        (given_up.class, given_up.retry_in_ms),
        (windlass_engine::FailureClass::Permanent, None)
    );
    let install_failed: InstallFailed = upcast_into("InstallFailed.v1.json");
    assert_eq!(
        install_failed.class,
        windlass_engine::FailureClass::InvalidInput
    );
}

#[test]
fn install_resumed_v1_reads_with_and_without_rederived_output() {
    let before: InstallResumed = upcast_into("InstallResumed.v1.json");
    assert_eq!(before.completed_stages, ["fetch_base"]);
    assert!(
        before.rederived.is_empty(),
        "written before the field existed"
    );
    let rederived: InstallResumed = upcast_into("InstallResumed.v1.rederived.json");
    assert_eq!(rederived.rederived.len(), 1);
    assert_eq!(rederived.rederived[0].stage, "write_base");
}
