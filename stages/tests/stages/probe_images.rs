//! The `probe_images` stage through the real engine, for every way a result is decided without a
//! registry: `--offline` (the policy for `unreachable`), `--known-images` (a KOTS `Installation`),
//! `Application.spec.proxyPublicImages`, the strict policy stopping the install, and which earlier
//! results the cache reuses. Probing real registries is tested in `windlass-registry` and, end to
//! end, in the binary's tests.

use std::path::Path;
use std::time::Duration;
use windlass_state::EventPayload;

use serde_json::json;
use windlass_engine::{FailureClass, InstallState, InstallStatus};
use windlass_stages::events::{Decision, ImagesProbed, ProbePolicy, ResultSource};
use windlass_stages::probe_images::{ProbeImagesConfig, cached_results};
use windlass_state::{LazyEvent, StoredEvent};

use crate::support::{Installer, fact, temp_dir};

const RELEASE: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: ghcr.io/my-org/init:0.3
      containers:
        - name: api
          image: quay.io/my-org/api:v1.0.1
        - name: proxy
          image: nginx:1.25
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: quay.io/my-org/api:v1.0.1
";

const LICENSE: &str = "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: probe-test-license\n  licenseSequence: 1\n";

fn release(extra: &str) -> tempfile::TempDir {
    let dir = temp_dir();
    std::fs::write(dir.path().join("app.yaml"), RELEASE).unwrap();
    std::fs::create_dir(dir.path().join("userdata")).unwrap();
    std::fs::write(dir.path().join("userdata/license.yaml"), LICENSE).unwrap();
    if !extra.is_empty() {
        std::fs::write(dir.path().join("kots-app.yaml"), extra).unwrap();
    }
    dir
}

async fn install(config: ProbeImagesConfig, release: &Path) -> (Installer, InstallState) {
    let options = windlass_stages::PipelineOptions {
        probe: config,
        ..Default::default()
    };
    let installer = Installer::with_pipeline(&windlass_stages::default_pipeline(&options));
    let out = temp_dir();
    let request = installer.request(release, out.path());
    let state = installer.install(request, "probe-test").await;
    (installer, state)
}

fn offline() -> ProbeImagesConfig {
    ProbeImagesConfig {
        offline: true,
        ..ProbeImagesConfig::default()
    }
}

#[tokio::test]
async fn offline_installs_follow_the_policy_for_unreachable_and_keep_provenance() {
    let release = release("");
    let (_installer, state) = install(offline(), release.path()).await;
    assert_eq!(state.status, InstallStatus::Completed);
    let probed: ImagesProbed = fact(&state, "probe_images", ImagesProbed::EVENT_TYPE);
    assert_eq!(probed.requests_made, 0);
    let images: Vec<(&str, &str, bool)> = probed
        .images
        .iter()
        .map(|image| (image.image.as_str(), image.outcome.as_str(), image.private))
        .collect();
    assert_eq!(
        images,
        vec![
            ("quay.io/my-org/api:v1.0.1", "unreachable", true),
            ("nginx:1.25", "unreachable", true),
            ("ghcr.io/my-org/init:0.3", "unreachable", true),
        ]
    );
    assert!(
        probed
            .images
            .iter()
            .all(|image| image.source == ResultSource::Offline)
    );
    let api = &probed.images[0];
    assert_eq!(api.normalized_name, "quay.io/my-org/api");
    let fields: Vec<&str> = api
        .uses
        .iter()
        .map(|image_use| image_use.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.template.spec.containers[0].image",
            "spec.jobTemplate.spec.template.spec.containers[0].image"
        ]
    );
    let summary = state
        .stages
        .iter()
        .find(|stage| stage.name == "probe_images")
        .unwrap();
    assert_eq!(
        summary.summary.as_deref(),
        Some(
            "3 images: 0 public, 3 private (3 unreachable); 0 registry requests \
             — 3 unreachable image(s) proxied, as KOTS does (--probe-policy strict refuses instead)"
        )
    );
}

#[tokio::test]
async fn known_images_decide_without_asking_the_registry() {
    let release = release("");
    let known = temp_dir();
    let known_file = known.path().join("installation.yaml");
    std::fs::write(
        &known_file,
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: my-app\nspec:\n  knownImages:\n    - image: quay.io/my-org/api:v1.0.1\n      isPrivate: true\n    - image: nginx:1.25\n      isPrivate: false\n    - image: ghcr.io/my-org/init:0.3\n      isPrivate: true\n",
    )
    .unwrap();
    // Not offline: every image is known, so nothing may be probed.
    let config = ProbeImagesConfig {
        known_images_file: Some(known_file),
        ..ProbeImagesConfig::default()
    };
    let (_installer, state) = install(config, release.path()).await;
    let probed: ImagesProbed = fact(&state, "probe_images", ImagesProbed::EVENT_TYPE);
    assert_eq!(probed.requests_made, 0);
    let decided: Vec<(&str, Decision, &ResultSource)> = probed
        .images
        .iter()
        .map(|image| (image.image.as_str(), image.decision, &image.source))
        .collect();
    assert_eq!(
        decided,
        vec![
            (
                "quay.io/my-org/api:v1.0.1",
                Decision::Private,
                &ResultSource::KnownImages
            ),
            ("nginx:1.25", Decision::Public, &ResultSource::KnownImages),
            (
                "ghcr.io/my-org/init:0.3",
                Decision::Private,
                &ResultSource::KnownImages
            ),
        ]
    );
}

#[tokio::test]
async fn proxy_public_images_makes_everything_private_without_probing() {
    let release = release(
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  proxyPublicImages: true\n  additionalImages:\n    - quay.io/my-org/operator-worker:1\n",
    );
    let (_installer, state) = install(ProbeImagesConfig::default(), release.path()).await;
    let probed: ImagesProbed = fact(&state, "probe_images", ImagesProbed::EVENT_TYPE);
    assert!(probed.proxy_public_images);
    assert_eq!(probed.requests_made, 0);
    assert_eq!(probed.images.len(), 4);
    for image in &probed.images {
        assert_eq!(
            (image.outcome.as_str(), image.private),
            ("not_probed", true)
        );
        assert_eq!(image.source, ResultSource::ProxyPublicImages);
    }
    let worker = probed
        .images
        .iter()
        .find(|image| image.runtime_only)
        .unwrap();
    assert_eq!(worker.image, "quay.io/my-org/operator-worker:1");
}

#[tokio::test]
async fn the_strict_policy_stops_the_install_naming_the_images() {
    let release = release("");
    let config = ProbeImagesConfig {
        policy: ProbePolicy::Strict,
        ..offline()
    };
    let (_installer, state) = install(config, release.path()).await;
    assert_eq!(state.status, InstallStatus::Failed);
    let failure = state.failure.expect("recorded");
    assert_eq!(failure.stage, "probe_images");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert!(
        failure
            .message
            .contains("strict probe policy refuses to decide for 3 image(s)")
            && failure.message.contains("nginx:1.25 (unreachable"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_bad_image_reference_fails_the_stage_as_invalid_input() {
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: Not/Valid\n",
    )
    .unwrap();
    let (_installer, state) = install(offline(), dir.path()).await;
    let failure = state.failure.expect("recorded");
    assert_eq!(failure.class, FailureClass::InvalidInput);
    assert!(
        failure
            .message
            .contains("pod.yaml (document 1) Pod p: field spec.containers[0].image"),
        "{}",
        failure.message
    );
}

fn recorded(install_id: &str, global_seq: u64, images: serde_json::Value) -> StoredEvent {
    StoredEvent {
        envelope_version: 1,
        global_seq,
        install_id: install_id.into(),
        install_seq: 3,
        recorded_at: "2026-01-01T00:00:00Z".into(),
        actor: "tester@ci".into(),
        event_type: ImagesProbed::EVENT_TYPE.into(),
        schema_version: 1,
        payload: json!({
            "policy": "kots", "offline": false, "proxy_public_images": false,
            "requests_made": 3, "rules": [], "images": images,
        }),
        prev_hash: "0".repeat(64),
    }
}

fn image(
    name: &str,
    outcome: &str,
    probed_at: &str,
    source: serde_json::Value,
) -> serde_json::Value {
    json!({
        "image": name, "normalized_name": name, "registry": "quay.io", "repository": "x",
        "outcome": outcome, "decision": "private", "private": true, "source": source,
        "probed_at": probed_at, "digest": null, "reason": "r", "runtime_only": false,
        "uses": [],
        "evidence": {"status_codes": [401], "challenge": null, "digest": null, "attempts": 1,
                      "latency_ms": 3, "endpoint": "https://quay.io", "reason": "401"}
    })
}

#[test]
fn the_cache_reuses_fresh_decisive_results_newest_first() {
    let now = time::OffsetDateTime::now_utc();
    let at = |age: Duration| {
        (now - age)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let probed = json!({"kind": "probed"});
    let history = vec![
        // newest first, as FactHistory returns them
        recorded(
            "newer",
            20,
            json!([
                image(
                    "quay.io/a:1",
                    "auth_required",
                    &at(Duration::from_secs(60)),
                    probed.clone()
                ),
                image(
                    "quay.io/down:1",
                    "unreachable",
                    &at(Duration::from_secs(60)),
                    probed.clone()
                ),
                image(
                    "quay.io/chained:1",
                    "public",
                    &at(Duration::from_secs(90)),
                    json!({"kind": "cache", "install_id": "first", "global_seq": 5})
                ),
            ]),
        ),
        recorded(
            "older",
            10,
            json!([
                image(
                    "quay.io/a:1",
                    "public",
                    &at(Duration::from_secs(120)),
                    probed.clone()
                ),
                image(
                    "quay.io/stale:1",
                    "public",
                    &at(Duration::from_secs(7200)),
                    probed.clone()
                ),
                image(
                    "quay.io/offline:1",
                    "unreachable",
                    &at(Duration::from_secs(60)),
                    json!({"kind": "offline"})
                ),
            ]),
        ),
    ];
    // One fact as the log hands over a current one (its payload as text), the others decoded.
    let history: Vec<LazyEvent> = history
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            if index == 0 {
                LazyEvent {
                    payload_text: Some(event.payload.to_string().into()),
                    event: StoredEvent {
                        payload: serde_json::Value::Null,
                        ..event
                    },
                }
            } else {
                LazyEvent::decoded(event)
            }
        })
        .collect();
    let cached = cached_results(
        &history,
        Duration::from_secs(3600),
        time::OffsetDateTime::now_utc(),
    );
    let mut images: Vec<&str> = cached.keys().map(String::as_str).collect();
    images.sort();
    assert_eq!(
        images,
        ["quay.io/a:1", "quay.io/chained:1"],
        "stale, transient and offline results are not reused"
    );
    assert_eq!(
        cached["quay.io/a:1"].outcome.as_str(),
        "auth_required",
        "the newest result wins"
    );
    assert_eq!(
        cached["quay.io/a:1"].source,
        ResultSource::Cache {
            install_id: "newer".into(),
            global_seq: 20
        }
    );
    assert_eq!(
        cached["quay.io/chained:1"].source,
        ResultSource::Cache {
            install_id: "first".into(),
            global_seq: 5
        },
        "a reused result keeps pointing at the install that probed it"
    );
}

#[tokio::test]
async fn plan_overrides_records_entries_with_their_evidence() {
    use windlass_stages::events::OverridesPlanned;
    use windlass_stages::plan_overrides::PlanOverridesConfig;
    let release = release("");
    let options = windlass_stages::PipelineOptions {
        probe: offline(),
        plan: PlanOverridesConfig {
            proxy_domain: Some("images.example.com".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let installer = Installer::with_pipeline(&windlass_stages::default_pipeline(&options));
    let out = temp_dir();
    let state = installer
        .install(installer.request(release.path(), out.path()), "plan-test")
        .await;
    assert_eq!(state.status, InstallStatus::Completed);
    let planned: OverridesPlanned = fact(&state, "plan_overrides", OverridesPlanned::EVENT_TYPE);
    assert_eq!(planned.app_slug, "my-app");
    assert_eq!(planned.domains.proxy_host, "images.example.com");
    let first = &planned.plan.entries[0];
    assert_eq!(
        (first.name.as_str(), first.new_name.as_str()),
        (
            "quay.io/my-org/api",
            "images.example.com/proxy/my-app/quay.io/my-org/api"
        )
    );
    assert_eq!(
        first.because,
        "unreachable: offline: the registry was not asked"
    );
}

#[tokio::test]
async fn plan_overrides_refuses_a_host_with_a_port_naming_where_it_is() {
    let dir = release("");
    std::fs::write(
        dir.path().join("app.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: registry.example.com:5000/team/app:2\n",
    )
    .unwrap();
    let (_installer, state) = install(offline(), dir.path()).await;
    let failure = state.failure.expect("recorded");
    assert_eq!(failure.stage, "plan_overrides");
    assert_eq!(failure.class, FailureClass::InvalidInput);
    assert!(failure.message.contains("registry.example.com:5000/team/app:2 (found at app.yaml (document 1) Pod p: spec.containers[0].image)"), "{}", failure.message);
}

/// A `--registries` file with a password written inline, or with a YAML error on the password
/// line, fails `probe_images` as invalid input naming the file and key; the recorded failure (and
/// every byte of the state directory) holds no part of the password.
#[tokio::test]
async fn a_registries_file_with_a_password_in_it_fails_without_recording_the_password() {
    const SECRET: &str = "hunter2-secret";
    let release = release("");
    let settings = temp_dir();
    let cases = [
        (
            "inline.yaml",
            format!(
                "registries:\n  vendor.example:\n    username: reader\n    password: {SECRET}\n"
            ),
            r#"registries["vendor.example"].password: passwords are not written in this file"#,
        ),
        (
            "broken.yaml",
            format!(
                "registries:\n  vendor.example:\n    username: reader\n    password: \"{SECRET}\n"
            ),
            "broken.yaml:4:15: registries.vendor.example.password: not valid YAML",
        ),
    ];
    for (name, text, expected) in cases {
        let path = settings.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (installer, state) = install(
            ProbeImagesConfig {
                registries_file: Some(path),
                ..offline()
            },
            release.path(),
        )
        .await;
        let failure = state.failure.expect("the install fails");
        assert_eq!(failure.stage, "probe_images");
        assert_eq!(failure.class, FailureClass::InvalidInput);
        assert!(
            failure.message.contains(expected) && !failure.message.contains("hunter2"),
            "{}",
            failure.message
        );
        let leaks = crate::support::files_containing(installer.state_root(), SECRET.as_bytes());
        assert!(leaks.is_empty(), "the password leaked into {leaks:?}");
    }
}
