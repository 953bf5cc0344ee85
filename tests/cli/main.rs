//! End-to-end tests of the `windlass` binary: the README's main job on `examples/quickstart`, the
//! JSON shapes scripts rely on, exit codes, the license ID staying out of the state directory, the
//! CLI reading the log while another process writes it, and resume after the process is killed
//! (SIGKILL) between stages.

mod apply;
mod apply_guards;
mod apply_hook_jobs;
mod apply_instances;
mod apply_kube;
mod apply_kubeconfig;
mod apply_order_retries;
mod apply_unheard;
mod apply_waits;
mod audit;
mod carried_values;
mod console;
mod daemon;
mod diff;
mod files_and_credentials;
mod helm;
mod helm_install;
mod helm_passwords;
mod helm_pending;
mod helm_v1beta2;
mod indexes;
mod local_registry;
mod output_dir;
mod pipeline_file;
mod plugins;
mod probe;
mod proxy;
mod release_input;
mod replay;
mod state_integrity;
mod templates;
mod undeploy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const QUICKSTART_LICENSE_ID: &str = "qs-2Yw8xT4mK9pLr7VbN3cJ5hQ";
/// base64 of `LICENSE_ID:<quickstart license id>`, the `auth` of the pull secret.
const QUICKSTART_LICENSE_AUTH: &str = "TElDRU5TRV9JRDpxcy0yWXc4eFQ0bUs5cExyN1ZiTjNjSjVoUQ==";

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart")
}

/// `install --offline <quickstart>`: these tests must not depend on reaching public registries.
const OFFLINE_INSTALL: [&str; 2] = ["install", "--offline"];

fn windlass(state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_windlass"));
    command
        .arg("--state")
        .arg(state)
        .env_remove("WINDLASS_STATE")
        .env_remove("WINDLASS_PAUSE_AFTER_STAGE")
        .env("RUST_LOG", "warn");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("windlass runs")
}

fn json(output: Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "windlass failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The payloads of the events of type `event_type` among `events` (the items of
/// `windlass events ID --json`), in order.
fn payloads_of_type(events: &[serde_json::Value], event_type: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|event| event["type"] == event_type)
        .map(|event| event["payload"].clone())
        .collect()
}

/// The summary of stage `stage` in an install's JSON report.
fn stage_summary(install: &serde_json::Value, stage: &str) -> String {
    install["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|candidate| candidate["name"] == stage)
        .unwrap_or_else(|| panic!("no stage {stage} in {install:#}"))["summary"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Whether `haystack` holds `needle`, byte for byte.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The permission bits of `path`.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Asserts that none of `needles` (credentials) is in `printed` (what windlass wrote to its
/// streams) or in any file of the state directory `state` but the installs' output, where the
/// rendered pull secret lives, 0600.
fn assert_no_credential_outside_the_output(state: &Path, printed: &[u8], needles: &[&str]) {
    for needle in needles {
        assert!(
            !contains(printed, needle),
            "{needle} printed: {}",
            String::from_utf8_lossy(printed)
        );
    }
    for file in files_under(state) {
        if file.starts_with(state.join("installs")) {
            continue;
        }
        let bytes = windlass_testkit::scannable_bytes(&file);
        for needle in needles {
            assert!(!contains(&bytes, needle), "{needle} in {}", file.display());
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn install_of_the_quickstart_writes_upstream_and_base_and_reports_json() {
    let state = tempfile::tempdir().unwrap();
    let install = install_quickstart(state.path());
    assert_eq!(install["status"], "completed");
    let install_id = install["install_id"].as_str().unwrap();
    let out = PathBuf::from(install["out"].as_str().unwrap());
    assert_eq!(out, state.path().join("installs").join(install_id));
    let kustomization = std::fs::read_to_string(out.join("base/kustomization.yaml")).unwrap();
    for resource in [
        "manifests/api.yaml",
        "manifests/networking-1.yaml",
        "manifests/networking-2.yaml",
        "manifests/nightly-report.yaml",
    ] {
        assert!(
            kustomization.contains(resource),
            "{resource} missing from {kustomization}"
        );
        assert!(out.join("base").join(resource).is_file());
    }
    assert!(
        !kustomization.contains("kots-app"),
        "KOTS kinds stay out of base"
    );
    assert!(out.join("upstream/kots-app.yaml").is_file());
    assert!(
        !out.join("upstream/userdata/license.yaml").exists(),
        "the license file is never copied"
    );
    assert_eq!(install["license"]["sequence"], 3);
    assert_eq!(install["app_slug"], "my-app");
}

#[test]
fn history_events_and_show_print_the_documented_json() {
    let state = tempfile::tempdir().unwrap();
    let install = install_quickstart(state.path());
    let install_id = install["install_id"].as_str().unwrap();

    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 1);
    for field in [
        "install_id",
        "status",
        "out",
        "app_slug",
        "release_digest",
        "started_at",
    ] {
        assert!(!history[0][field].is_null(), "history lacks {field}");
    }

    let events = json(run(
        windlass(state.path()).args(["events", install_id, "--json"])
    ));
    let events = events.as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    // write_base and probe_images both need only fetch_base, so they run concurrently and their
    // events interleave; each stage's facts still sit right before its StageCompleted.
    assert_eq!(
        types[..4],
        [
            "InstallStarted",
            "StageStarted",
            "BaseFetched",
            "StageCompleted"
        ]
    );
    assert_eq!(types.last(), Some(&"InstallCompleted"));
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "BaseFetched",
            "BaseWritten",
            "ImagesProbed",
            "InstallCompleted",
            "InstallStarted",
            "MidstreamRendered",
            "OverridesPlanned",
            "SecretsProvisioned",
            "StageCompleted",
            "StageCompleted",
            "StageCompleted",
            "StageCompleted",
            "StageCompleted",
            "StageCompleted",
            "StageStarted",
            "StageStarted",
            "StageStarted",
            "StageStarted",
            "StageStarted",
            "StageStarted"
        ]
    );
    for (position, event) in events.iter().enumerate() {
        if event["type"] == "StageCompleted" {
            let fact = match event["payload"]["stage"].as_str().unwrap() {
                "fetch_base" => "BaseFetched",
                "write_base" => "BaseWritten",
                "probe_images" => "ImagesProbed",
                "plan_overrides" => "OverridesPlanned",
                "provision_secrets" => "SecretsProvisioned",
                "render_midstream" => "MidstreamRendered",
                other => panic!("unexpected stage {other}"),
            };
            assert_eq!(events[position - 1]["type"], fact);
        }
    }
    for (position, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], position as u64 + 1);
        assert!(event["schema_version"].as_u64().unwrap() >= 1);
        assert!(event["recorded_at"].as_str().unwrap().ends_with('Z'));
        assert!(event["payload"].is_object());
    }

    let show = json(run(
        windlass(state.path()).args(["show", install_id, "--json"])
    ));
    assert_eq!(show["status"], "completed");
    let stages: Vec<&str> = show["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages.len(), 6);
    assert_eq!(stages[0], "fetch_base");

    let shown = run(windlass(state.path()).args(["show", install_id]));
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("  rewrite quay.io/my-org/api:v1.0.1  (unreachable: offline: the registry was not asked)\n            quay.io/my-org/api → proxy.replicated.com/proxy/my-app/quay.io/my-org/api\n"),
        "show explains why an image is proxied: {shown}"
    );
    assert!(
        shown.contains("keep    quay.io/my-org/sidecar:1"),
        "{shown}"
    );

    let verify = json(run(windlass(state.path()).args(["verify-log", "--json"])));
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["records"], 20);
}

#[test]
fn the_license_id_never_reaches_the_state_directory() {
    let state = tempfile::tempdir().unwrap();
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart()));
    assert!(output.status.success());
    let files = files_under(state.path());
    assert!(
        files.len() > 10,
        "expected log, key and blobs, found {files:?}"
    );
    let contains = |bytes: &[u8], needle: &str| {
        bytes
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    let log = state.path().join("events.redb");
    assert!(
        windlass_testkit::scannable_bytes(&log).len() > std::fs::read(&log).unwrap().len(),
        "the scan sees into the records the log stores compressed"
    );
    let mut secret_files = 0;
    for file in files {
        let bytes = windlass_testkit::scannable_bytes(&file);
        // The rendered pull secret necessarily carries the license, base64-encoded: it lives only
        // in the install's output, in files readable by their owner alone. Nothing else (log,
        // blobs, indexes, other output) may hold the license in any form.
        if contains(&bytes, ".dockerconfigjson") {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} holds a secret", file.display());
            assert!(
                file.starts_with(state.path().join("installs")),
                "{}",
                file.display()
            );
            secret_files += 1;
        }
        for needle in [QUICKSTART_LICENSE_ID, QUICKSTART_LICENSE_AUTH] {
            assert!(
                !contains(&bytes, needle),
                "license found in {}",
                file.display()
            );
        }
    }
    assert_eq!(
        secret_files, 2,
        "overlays/midstream/secret.yaml and the rendered secret"
    );
    for stream in [&output.stdout, &output.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(QUICKSTART_LICENSE_ID));
    }
}

#[test]
fn invalid_input_exits_3_naming_file_and_document() {
    let state = tempfile::tempdir().unwrap();
    let release = tempfile::tempdir().unwrap();
    std::fs::write(
        release.path().join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nmetadata:\n  name: b\n",
    )
    .unwrap();
    let output = run(windlass(state.path()).arg("install").arg(release.path()));
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("app.yaml (document 2, line 6)") && stderr.contains("kind"),
        "{stderr}"
    );
}

#[test]
fn unknown_install_exits_5() {
    let state = tempfile::tempdir().unwrap();
    let output = run(windlass(state.path()).args(["show", "no-such-install"]));
    assert_eq!(output.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-install"));
}

/// Kills `windlass install` with SIGKILL right after `fetch_base` completed (the runner pauses
/// there when `WINDLASS_PAUSE_AFTER_STAGE` names it), reads the log from other processes while the
/// writer is alive, then checks that installing the same release again resumes the same install
/// and runs only the stage that had not completed.
#[test]
fn install_killed_between_stages_resumes_instead_of_starting_again() {
    let state = tempfile::tempdir().unwrap();
    let mut child = windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(quickstart())
        .env("WINDLASS_PAUSE_AFTER_STAGE", "fetch_base")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_pause(&mut child, "fetch_base");

    // The writer is alive and holds the log open: other processes can still read it.
    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    assert_eq!(history[0]["status"], "incomplete");
    let install_id = history[0]["install_id"].as_str().unwrap().to_string();
    let show = json(run(windlass(state.path()).args([
        "show",
        &install_id,
        "--json",
    ])));
    assert_eq!(show["stages"][0]["status"], "completed");
    assert_eq!(show["stages"][1]["status"], "pending");

    // A second install of the same release while the first is alive must not resume it underneath.
    let concurrent = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart()));
    assert_eq!(concurrent.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&concurrent.stderr).contains("another windlass process"),
        "{}",
        String::from_utf8_lossy(&concurrent.stderr)
    );

    child.kill().unwrap(); // SIGKILL: the lock dies with the process
    child.wait().unwrap();

    let resumed = install_quickstart(state.path());
    assert_eq!(
        resumed["install_id"],
        install_id.as_str(),
        "the same install is resumed"
    );
    assert_eq!(resumed["status"], "completed");
    assert_eq!(resumed["resumed"], 1);

    let events = json(run(windlass(state.path()).args([
        "events",
        &install_id,
        "--json",
    ])));
    let started: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "StageStarted")
        .map(|event| event["payload"]["stage"].as_str().unwrap())
        .collect();
    let mut started = started;
    started.sort();
    assert_eq!(
        started,
        [
            "fetch_base",
            "plan_overrides",
            "probe_images",
            "provision_secrets",
            "render_midstream",
            "write_base"
        ],
        "fetch_base ran once; the others ran after the resume"
    );
    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    assert_eq!(history.as_array().unwrap().len(), 1, "no duplicate install");
    let out = PathBuf::from(resumed["out"].as_str().unwrap());
    assert!(out.join("base/kustomization.yaml").is_file());
    assert_eq!(
        json(run(windlass(state.path()).args(["verify-log", "--json"])))["ok"],
        true
    );
}

#[test]
fn images_lists_distinct_images_with_provenance() {
    let state = tempfile::tempdir().unwrap();
    let images = json(run(windlass(state.path())
        .args(["images", "--json"])
        .arg(quickstart())));
    let images = images.as_array().unwrap();
    let written: Vec<&str> = images
        .iter()
        .map(|image| image["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        written,
        [
            "quay.io/my-org/sidecar:1",
            "quay.io/my-org/api:v1.0.1",
            "nginx:1.25",
            "quay.io/my-org/api-migrations:v1.0.1",
            "myorg/private-reporter:2.0"
        ]
    );
    let nginx = &images[2];
    assert_eq!(nginx["normalized_name"], "docker.io/library/nginx");
    assert_eq!(
        nginx["uses"][0]["field"],
        "spec.template.spec.containers[1].image"
    );
    assert_eq!(images[0]["runtime_only"], true);

    let why = run(windlass(state.path())
        .args(["images", "--why"])
        .arg(quickstart()));
    assert!(why.status.success());
    let text = String::from_utf8_lossy(&why.stdout);
    assert!(
        text.contains("manifests/nightly-report.yaml (document 1) CronJob nightly-report: spec.jobTemplate.spec.template.spec.containers[0].image"),
        "{text}"
    );
    assert!(
        !state.path().join("events.redb").exists(),
        "images records nothing"
    );
}

#[test]
fn images_with_a_bad_reference_exits_3_naming_the_field() {
    let state = tempfile::tempdir().unwrap();
    let release = tempfile::tempdir().unwrap();
    std::fs::write(
        release.path().join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns\nspec:\n  containers:\n    - name: c\n      image: \"\"\n",
    )
    .unwrap();
    let output = run(windlass(state.path()).arg("images").arg(release.path()));
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pod.yaml (document 1) Pod ns/p: field spec.containers[0].image: the image reference is empty"),
        "{stderr}"
    );
}

/// Uppercase in a repository path or in a digest's hex is an invalid reference (exit 3 naming the
/// field); an uppercase first segment is a registry host, as Docker reads it, which `install`
/// refuses to put in a proxied path (exit 3 naming the image and the ways out).
#[test]
fn uppercase_in_a_reference_is_refused_or_read_as_a_registry_host() {
    let pod = |image: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns\nspec:\n  containers:\n    - name: c\n      image: {image}\n"
        )
    };
    let upper_digest = format!("quay.io/my-org/api@sha256:{}", "AB".repeat(32));
    for (image, reason) in [
        ("myorg/App:1", "invalid reference format"),
        ("quay.io/MyOrg/app:1", "invalid reference format"),
        (upper_digest.as_str(), "invalid checksum digest format"),
    ] {
        let state = tempfile::tempdir().unwrap();
        let release = tempfile::tempdir().unwrap();
        std::fs::write(release.path().join("pod.yaml"), pod(image)).unwrap();
        let output = run(windlass(state.path()).arg("images").arg(release.path()));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{image}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "pod.yaml (document 1) Pod ns/p: field spec.containers[0].image: {image:?} is not a valid image reference: {reason}"
            )),
            "{stderr}"
        );
    }

    let (_dir, release) = release_input::quickstart_copy();
    std::fs::write(release.join("manifests/pod.yaml"), pod("MyOrg/app:1")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let listed = json(run(windlass(state.path())
        .args(["images", "--json"])
        .arg(&release)));
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["image"] == "MyOrg/app:1")
        .unwrap()
        .clone();
    assert_eq!(
        (&listed["registry"], &listed["repository"]),
        (&serde_json::json!("MyOrg"), &serde_json::json!("app"))
    );
    let output = run(windlass(state.path()).args(OFFLINE_INSTALL).arg(&release));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("MyOrg/app:1 (found at manifests/pod.yaml (document 1) Pod p: spec.containers[0].image): Docker reads MyOrg as its registry host"),
        "{stderr}"
    );
}

/// A host alias stands in a proxied image's path, so one that is not a repository path component
/// (a port, uppercase) is refused when the config file is read, by `install` before anything runs.
#[test]
fn a_host_alias_that_is_not_a_path_component_exits_3_naming_the_file_and_key() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("windlass.yaml");
    std::fs::write(
        &config,
        "images:\n  host_aliases:\n    registry.example.com:5000: Local_5000\n",
    )
    .unwrap();
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--config")
        .arg(&config)
        .arg(quickstart()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "config file {}: images.host_aliases.registry.example.com:5000: \"Local_5000\" is not one repository path component",
            config.display()
        )),
        "{stderr}"
    );
}

#[test]
fn images_probe_offline_follows_the_policy_without_touching_the_network() {
    let state = tempfile::tempdir().unwrap();
    let probed = json(run(windlass(state.path())
        .args(["images", "--probe", "--offline", "--json"])
        .arg(quickstart())));
    let probed = probed.as_array().unwrap();
    assert_eq!(probed.len(), 5);
    for image in probed {
        assert_eq!(image["outcome"], "unreachable");
        assert_eq!(
            image["private"], true,
            "KOTS policy: not public means private"
        );
        assert!(image["reason"].as_str().unwrap().contains("offline"));
        assert!(image["image"].is_string());
    }

    let strict = run(windlass(state.path())
        .args(["images", "--probe", "--offline", "--probe-policy", "strict"])
        .arg(quickstart()));
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("strict probe policy refuses"));
}

/// `true`, and the YAML 1.1 words KOTS reads as true (`yes`, `On`).
#[test]
fn proxy_public_images_makes_every_image_private_without_probing() {
    for value in ["true", "yes", "On"] {
        let state = tempfile::tempdir().unwrap();
        let release = tempfile::tempdir().unwrap();
        std::fs::write(
            release.path().join("app.yaml"),
            format!("apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: app\nspec:\n  proxyPublicImages: {value}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: redis:7\n"),
        )
        .unwrap();
        // No --offline: if windlass tried the network, the outcome would be `unreachable`.
        let probed = json(run(windlass(state.path())
            .args(["images", "--probe", "--json"])
            .arg(release.path())));
        assert_eq!(probed[0]["image"], "redis:7");
        assert_eq!(probed[0]["outcome"], "not_probed", "{value}");
        assert_eq!(probed[0]["private"], true, "{value}");
        assert!(
            probed[0]["reason"]
                .as_str()
                .unwrap()
                .contains("proxyPublicImages")
        );
    }
}

/// An image whose only use is an ephemeral container, beside a Deployment using another tag of
/// the same repository: the Deployment's image claims the repository's `images:` entry first,
/// yet the ephemeral one is still reported as not patched (kustomize rewrites only `containers`
/// and `initContainers`), with the reference it must name.
#[test]
fn an_image_only_in_an_ephemeral_container_is_reported_though_another_tag_claims_its_entry() {
    let (_dir, release) = release_input::quickstart_copy();
    std::fs::write(
        release.join("manifests/debug-a-deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: debug\nspec:\n  selector:\n    matchLabels:\n      app: debug\n  template:\n    metadata:\n      labels:\n        app: debug\n    spec:\n      containers:\n        - name: debug\n          image: quay.io/my-org/debug:2\n",
    )
    .unwrap();
    std::fs::write(
        release.join("manifests/debug-b-pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: debugger\nspec:\n  containers:\n    - name: main\n      image: quay.io/my-org/api:v1.0.1\n  ephemeralContainers:\n    - name: debug\n      image: quay.io/my-org/debug:1\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(&release)));
    assert_eq!(install["status"], "completed", "{install:#}");
    let plan = stage_summary(&install, "plan_overrides");
    let expected = "not patched: quay.io/my-org/debug:1 (found only outside containers and initContainers, first at manifests/debug-b-pod.yaml (document 1) Pod debugger: spec.ephemeralContainers[0].image, which kustomize's images: does not rewrite; it must name proxy.replicated.com/proxy/my-app/quay.io/my-org/debug instead)";
    assert!(plan.contains(expected), "{plan}");
    assert!(
        !plan.contains("not patched: quay.io/my-org/debug:2"),
        "{plan}"
    );
    let out = Path::new(install["out"].as_str().unwrap());
    let deployment =
        std::fs::read_to_string(out.join("rendered/this-cluster/debug-deployment.yaml")).unwrap();
    assert!(
        deployment.contains("image: proxy.replicated.com/proxy/my-app/quay.io/my-org/debug:2"),
        "{deployment}"
    );
}

/// A reader that stops early (`windlass events ID --json | head -1`) closes the pipe: windlass
/// exits 0 without a panic about the broken pipe.
#[test]
fn json_output_into_a_closed_pipe_exits_quietly() {
    let state = tempfile::tempdir().unwrap();
    let installed = json(run(windlass(state.path())
        .args(["install", "--offline", "--json"])
        .arg(quickstart())));
    let install_id = installed["install_id"].as_str().unwrap().to_string();
    let mut child = windlass(state.path())
        .args(["events", &install_id, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before windlass writes
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The text output of the commands that print what they read into a pipe the reader closed
/// (`windlass events ID | head -1`): each exits 0, without the standard library's panic about the
/// broken pipe.
#[test]
fn text_output_into_a_closed_pipe_exits_quietly() {
    let state = tempfile::tempdir().unwrap();
    let installed = install_quickstart(state.path());
    let install_id = installed["install_id"].as_str().unwrap().to_string();
    let release = quickstart();
    let release = release.to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["events", &install_id],
        &["show", &install_id],
        &["history"],
        &["verify-log"],
        &["images", release],
        &["config", release],
    ];
    for arguments in commands {
        let mut child = windlass(state.path())
            .args(arguments)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away before windlass writes
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{arguments:?}: {stderr}");
        assert!(stderr.is_empty(), "{arguments:?}: {stderr}");
    }
}

/// `--backend` naming a backend this build does not have is a bad command line (exit 2).
#[test]
fn an_unknown_backend_is_a_bad_command_line() {
    let state = tempfile::tempdir().unwrap();
    let mut backends = vec!["foo"];
    if !cfg!(feature = "sled") {
        backends.push("sled");
    }
    for backend in backends {
        let output = run(windlass(state.path())
            .args(["--backend", backend, "history"])
            .env_remove("WINDLASS_BACKEND"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "--backend {backend}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("unknown backend \"{backend}\"")),
            "--backend {backend}: {stderr}"
        );
    }
}

/// Waits (at most 60 s) until `child`, started with `WINDLASS_PAUSE_AFTER_STAGE=<stage>` and a
/// piped stderr, announces that it paused after `stage`.
fn wait_for_pause(child: &mut std::process::Child, stage: &str) {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines_sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let announced = format!("paused after stage {stage}");
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("windlass announces the pause within 60 s");
        if line.contains(&announced) {
            return;
        }
    }
}

/// `windlass install --offline ... --json` of the quickstart into `state` (at most 120 s), its
/// JSON outcome.
fn install_quickstart(state: &Path) -> serde_json::Value {
    json(state_integrity::run_within(
        windlass(state)
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg(quickstart()),
        120,
    ))
}
