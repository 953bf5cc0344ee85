//! Golden fixtures of the built-in stages' events (`fixtures/events/<EventType>.v<N>.json`, never
//! edited once committed): each stored envelope must upcast through the schema table and decode
//! into today's typed payload without losing a field, and every `(type, version)` in
//! `windlass_stages::SCHEMAS` must have a fixture.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use windlass_state::EventPayload;

use windlass_stages::events::{
    BaseFetched, BaseWritten, FileClass, ImagesProbed, MidstreamRendered, OverridesPlanned,
    ResultSource, SecretsProvisioned,
};
use windlass_state::{SchemaRegistry, StoredEvent};

fn fixtures() -> Vec<(String, StoredEvent)> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stages/fixtures/events");
    let mut fixtures: Vec<(String, StoredEvent)> = fs::read_dir(&dir)
        .expect("fixtures directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let event = serde_json::from_slice(&fs::read(&path).expect("read"))
                .unwrap_or_else(|error| panic!("{name} is not a stored event: {error}"));
            (name, event)
        })
        .collect();
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    fixtures
}

fn decode_losslessly<T: serde::de::DeserializeOwned + serde::Serialize>(
    name: &str,
    event: &StoredEvent,
) -> T {
    let typed: T = serde_json::from_value(event.payload.clone())
        .unwrap_or_else(|error| panic!("{name} does not decode: {error}"));
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        event.payload,
        "{name}: decoding dropped or changed a field"
    );
    typed
}

#[test]
fn every_fixture_decodes_into_the_current_payload() {
    let registry = SchemaRegistry::new(&[windlass_stages::SCHEMAS]).expect("table");
    let fixtures = fixtures();
    assert!(!fixtures.is_empty());
    for (name, stored) in fixtures {
        let event = registry.upcast(stored).expect("upcasts");
        match event.event_type.as_str() {
            BaseFetched::EVENT_TYPE => {
                let fetched: BaseFetched = decode_losslessly(&name, &event);
                assert!(fetched.release_digest.starts_with("blake3:"));
                let license = fetched
                    .files
                    .iter()
                    .find(|file| file.class == FileClass::License)
                    .expect("the fixture lists the license file");
                assert_eq!(license.blob, None, "a license file never has a blob");
                assert!(fetched.documents.iter().all(|document| {
                    document.blob.as_ref().map(String::len) == Some(64)
                        || document.blob.is_none() && document.fingerprint.is_some()
                }));
                // Version 3: a HelmChart holding a password value names its values, helm's
                // output and its flags by keyed fingerprint, and records the flags redacted.
                for chart in fetched
                    .helm_charts
                    .iter()
                    .filter(|chart| chart.holds_password)
                {
                    assert_eq!(chart.values, None, "{name}");
                    assert_eq!(chart.output_blob, None, "{name}");
                    for fingerprint in [&chart.values_fingerprint, &chart.output_fingerprint] {
                        assert!(
                            fingerprint
                                .as_deref()
                                .is_some_and(|fp| fp.starts_with("fp1:")),
                            "{name}: {}",
                            chart.name
                        );
                    }
                    assert_eq!(
                        chart.helm_upgrade_flags_fingerprint.is_some(),
                        !chart.helm_upgrade_flags.is_empty(),
                        "{name}: {}",
                        chart.name
                    );
                    assert_eq!(
                        chart.helm_upgrade_flags,
                        windlass_stages::events::redacted_flags(&chart.helm_upgrade_flags),
                        "{name}: recorded redacted"
                    );
                }
                for chart in fetched
                    .helm_charts
                    .iter()
                    .filter(|chart| !chart.holds_password && !chart.excluded)
                {
                    assert!(
                        chart.output_blob.is_some() && chart.values.is_some(),
                        "{name}"
                    );
                }
                if let Some(templates) = &fetched.templates {
                    assert!(!templates.files.is_empty(), "{name}");
                    assert!(
                        templates
                            .config_values_fingerprint
                            .as_deref()
                            .is_some_and(|fingerprint| fingerprint.starts_with("fp1:")),
                        "{name}: config values are recorded by fingerprint only"
                    );
                }
            }
            BaseWritten::EVENT_TYPE => {
                let written: BaseWritten = decode_losslessly(&name, &event);
                assert!(
                    written
                        .files
                        .iter()
                        .any(|file| file.path == "base/kustomization.yaml")
                );
            }
            ImagesProbed::EVENT_TYPE => {
                let probed: ImagesProbed = decode_losslessly(&name, &event);
                let sources: Vec<&ResultSource> =
                    probed.images.iter().map(|image| &image.source).collect();
                assert!(sources.contains(&&ResultSource::Probed));
                assert!(
                    sources
                        .iter()
                        .any(|source| matches!(source, ResultSource::Cache { .. }))
                );
                assert!(probed.images.iter().all(|image| !image.uses.is_empty()));
                // Version 2 (or the upcaster) keeps each reference's parts and each container
                // use's pod spec, so no later stage parses a recorded string again.
                for image in &probed.images {
                    assert!(image.tag.is_some(), "{name}: {} has no tag", image.image);
                    for image_use in &image.uses {
                        let in_pod_spec = image_use.field.contains("ontainers[");
                        assert_eq!(
                            image_use.pod_spec.is_some(),
                            in_pod_spec,
                            "{name}: {}",
                            image_use.field
                        );
                    }
                }
            }
            OverridesPlanned::EVENT_TYPE => {
                let planned: OverridesPlanned = decode_losslessly(&name, &event);
                assert_eq!(planned.domains.proxy_host, "proxy.replicated.com");
                assert!(
                    planned
                        .plan
                        .entries
                        .iter()
                        .all(|entry| !entry.because.is_empty())
                );
                assert!(!planned.plan.skipped.is_empty());
            }
            SecretsProvisioned::EVENT_TYPE => {
                let provisioned: SecretsProvisioned = decode_losslessly(&name, &event);
                assert!(
                    provisioned
                        .secrets
                        .iter()
                        .all(|secret| secret.content_fingerprint.starts_with("fp1:"))
                );
            }
            MidstreamRendered::EVENT_TYPE => {
                let rendered: MidstreamRendered = decode_losslessly(&name, &event);
                assert!(
                    rendered
                        .rendered_files
                        .iter()
                        .any(|file| file.blob.is_none() && file.fingerprint.is_some()),
                    "a rendered secret is recorded by fingerprint only"
                );
            }
            other => panic!("{name}: unexpected event type {other}"),
        }
    }
}

#[test]
fn every_schema_version_has_a_fixture() {
    let present: BTreeSet<String> = fixtures()
        .into_iter()
        .map(|(_, event)| format!("{}.v{}", event.event_type, event.schema_version))
        .collect();
    for schema in windlass_stages::SCHEMAS {
        for version in 1..=schema.current_version {
            let key = format!("{}.v{version}", schema.event_type);
            assert!(present.contains(&key), "no golden fixture for {key}");
        }
    }
}
