//! `windlass replay`: an install probed against real registries replays identically after the
//! registries are stopped and the release directory deleted (so it needs neither), with the
//! files holding secrets compared by keyed fingerprint when the license is given; a tampered blob
//! or event stops the replay naming the place; an install recorded with older event versions
//! replays through the upcasters; and every what-if option prints its stage-by-stage difference
//! without recording anything.

use std::net::TcpStream;

use windlass_testkit::{RegistriesFile, TestRegistry};

use super::*;
use crate::state_integrity::{copy_dir, flip_byte, offsets_of, run_within, text};

const LICENSE: &str = "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: replay-test-license-7Qm2\n  licenseSequence: 4\n";

fn release_with(dir: &Path, images: &[&str]) {
    let containers: String = images
        .iter()
        .enumerate()
        .map(|(index, image)| format!("        - name: c{index}\n          image: {image}\n"))
        .collect();
    std::fs::create_dir_all(dir.join("userdata")).unwrap();
    std::fs::write(dir.join("userdata/license.yaml"), LICENSE).unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n{containers}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: My App\n",
    )
    .unwrap();
}

fn event_count(state: &Path, install_id: &str) -> usize {
    json(run_within(
        windlass(state).args(["events", install_id, "--json"]),
        60,
    ))
    .as_array()
    .unwrap()
    .len()
}

fn last_event(state: &Path, install_id: &str) -> serde_json::Value {
    let events = json(run_within(
        windlass(state).args(["events", install_id, "--json"]),
        60,
    ));
    events.as_array().unwrap().last().unwrap().clone()
}

/// The `--json` report of a replay `command` runs, which must exit 0 (identical).
fn identical_report(command: &mut Command) -> serde_json::Value {
    let replayed = run_within(command, 120);
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}\n{}",
        text(&replayed.stdout),
        text(&replayed.stderr)
    );
    serde_json::from_slice(&replayed.stdout).unwrap()
}

/// The verdict of stage `name` in a replay's report.
fn stage_verdict(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|stage| stage["stage"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no stage {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_needs_neither_the_registries_nor_the_release_directory() {
    let open = TestRegistry::open().await;
    let locked = TestRegistry::htpasswd().await;
    open.push_image("team/web:1.0", "public layer");
    locked.push_image("team/api:2.0", "private layer");
    let work = tempfile::tempdir().unwrap();
    let registries = RegistriesFile::new()
        .route("public.example", &open)
        .route("vendor.example", &locked)
        .write(work.path());
    let release = tempfile::tempdir().unwrap();
    release_with(
        release.path(),
        &["public.example/team/web:1.0", "vendor.example/team/api:2.0"],
    );
    let license = work.path().join("license.yaml");
    std::fs::write(&license, LICENSE).unwrap();
    let state = tempfile::tempdir().unwrap();
    let install = json(run_within(
        windlass(state.path())
            .args([
                "install",
                "--json",
                "--probe-cache-ttl",
                "0",
                "--registries",
            ])
            .arg(&registries)
            .arg(release.path()),
        120,
    ));
    assert_eq!(install["status"], "completed");
    let install_id = install["install_id"].as_str().unwrap().to_string();
    let stages: Vec<&str> = install["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["name"].as_str().unwrap())
        .collect();
    for kind in [
        "fetch_base",
        "write_base",
        "probe_images",
        "plan_overrides",
        "provision_secrets",
        "render_midstream",
    ] {
        assert!(stages.contains(&kind), "{kind} ran: {stages:?}");
    }

    // The registries stop; the release directory and the registries file go away.
    let ports = [open.port(), locked.port()];
    drop(open);
    drop(locked);
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the registry on port {port} is stopped"
        );
    }
    let release_dir = release.path().to_path_buf();
    drop(release);
    assert!(!release_dir.exists());
    std::fs::remove_file(&registries).unwrap();

    let before = event_count(state.path(), &install_id);
    let report = identical_report(windlass(state.path()).args(["replay", &install_id, "--json"]));
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert!(
        report["files_compared"].as_u64().unwrap() >= 4,
        "{report:#}"
    );
    assert_eq!(report["secret_files_unchecked"], 2, "{report:#}");
    for stage in report["stages"].as_array().unwrap() {
        assert_eq!(stage["status"], "identical", "{report:#}");
    }
    assert_eq!(event_count(state.path(), &install_id), before + 1);
    let verdict = last_event(state.path(), &install_id);
    assert_eq!(verdict["type"], "ReplayVerified");

    // With the license, the files holding secrets are compared by keyed fingerprint.
    let with_license = run_within(
        windlass(state.path())
            .args(["replay", &install_id, "--license"])
            .arg(&license),
        120,
    );
    assert_eq!(
        with_license.status.code(),
        Some(0),
        "{}",
        text(&with_license.stderr)
    );
    let said = text(&with_license.stdout);
    assert!(
        said.contains("identical") && said.contains("2 secret file(s) by keyed fingerprint"),
        "{said}"
    );
    let verdict = last_event(state.path(), &install_id);
    assert_eq!(verdict["payload"]["secret_files_compared"], 2);
    assert!(
        !serde_json::to_string(&verdict)
            .unwrap()
            .contains("replay-test-license-7Qm2"),
        "the license ID stays out of the log"
    );

    // Another license is refused by name.
    let other = work.path().join("other.yaml");
    std::fs::write(&other, LICENSE.replace("7Qm2", "8Rn3")).unwrap();
    let refused = run_within(
        windlass(state.path())
            .args(["replay", &install_id, "--license"])
            .arg(&other),
        120,
    );
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        text(&refused.stderr).contains("--license: the license's fingerprint is"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn a_tampered_blob_fails_the_replay_naming_stage_file_and_blob() {
    let state = tempfile::tempdir().unwrap();
    let install = crate::install_quickstart(state.path());
    let install_id = install["install_id"].as_str().unwrap();
    let blobs_file = state.path().join("blobs/blobs.redb");
    let api = std::fs::read(quickstart().join("manifests/api.yaml")).unwrap();
    let found = offsets_of(&std::fs::read(&blobs_file).unwrap(), &api);
    assert!(!found.is_empty());
    for offset in &found {
        flip_byte(&blobs_file, offset + api.len() / 2, 0x20);
    }
    let replayed = run_within(windlass(state.path()).args(["replay", install_id]), 120);
    assert_eq!(
        replayed.status.code(),
        Some(4),
        "{}",
        text(&replayed.stdout)
    );
    let stderr = text(&replayed.stderr);
    assert!(
        stderr.contains("stage fetch_base: manifests/api.yaml: blob ")
            && stderr.contains("is corrupted"),
        "{stderr}"
    );
}

#[test]
fn a_tampered_event_fails_the_replay_naming_the_record() {
    let state = tempfile::tempdir().unwrap();
    let install = crate::install_quickstart(state.path());
    let install_id = install["install_id"].as_str().unwrap();
    let events = json(run_within(
        windlass(state.path()).args(["events", install_id, "--json"]),
        60,
    ));
    // Edit the recorded plan: a proxy host of the same length, elsewhere.
    let planned = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "OverridesPlanned")
        .unwrap();
    let seq = planned["global_seq"].as_u64().unwrap();
    let log = state.path().join("events.redb");
    crate::state_integrity::edit_stored_record(&log, seq, |record| {
        let host = offsets_of(record, b"proxy.replicated.com")[0];
        record[host..host + 5].copy_from_slice(b"pwned");
    });
    let replayed = run_within(windlass(state.path()).args(["replay", install_id]), 120);
    assert_eq!(replayed.status.code(), Some(4));
    let stderr = text(&replayed.stderr);
    assert!(
        stderr.contains(&format!("the event log is damaged at record {}", seq + 1)),
        "{stderr}"
    );
}

/// Today's payloads written back as the versions an older windlass wrote: `InstallStarted` v2
/// (no stage configurations) and `ImagesProbed` v1 (no reference parts, no pod-spec locations).
fn as_older_version(
    event_type: &str,
    version: u64,
    payload: &serde_json::Value,
) -> (u32, serde_json::Value) {
    let mut payload = payload.clone();
    match event_type {
        "InstallStarted" => {
            for stage in payload["pipeline"].as_array_mut().unwrap() {
                stage.as_object_mut().unwrap().remove("config");
            }
            (2, payload)
        }
        "ImagesProbed" => {
            for image in payload["images"].as_array_mut().unwrap() {
                let image = image.as_object_mut().unwrap();
                image.remove("tag");
                image.remove("pinned_digest");
                for image_use in image["uses"].as_array_mut().unwrap() {
                    image_use.as_object_mut().unwrap().remove("pod_spec");
                }
            }
            (1, payload)
        }
        _ => (version as u32, payload),
    }
}

#[test]
fn an_install_recorded_with_older_event_versions_replays_through_the_upcasters() {
    let recorded = tempfile::tempdir().unwrap();
    let install = crate::install_quickstart(recorded.path());
    let install_id = install["install_id"].as_str().unwrap();
    let exported = run_within(windlass(recorded.path()).arg("export"), 60);
    assert!(exported.status.success());
    // A state directory holding the same install as an older windlass recorded it.
    let older = tempfile::tempdir().unwrap();
    copy_dir(&recorded.path().join("blobs"), &older.path().join("blobs"));
    std::fs::copy(
        recorded.path().join("fingerprint.key"),
        older.path().join("fingerprint.key"),
    )
    .unwrap();
    {
        let no_schemas = std::sync::Arc::new(windlass_state::SchemaRegistry::new(&[]).unwrap());
        let state =
            windlass_state::StateDir::open(older.path(), windlass_state::Backend::Redb, no_schemas)
                .unwrap();
        let mut downgraded = 0;
        for line in exported.stdout.split(|byte| *byte == b'\n') {
            if line.is_empty() {
                continue;
            }
            let line: serde_json::Value = serde_json::from_slice(line).unwrap();
            let event_type = line["event_type"].as_str().unwrap();
            let (version, payload) = as_older_version(
                event_type,
                line["schema_version"].as_u64().unwrap(),
                &line["payload"],
            );
            if u64::from(version) != line["schema_version"].as_u64().unwrap() {
                downgraded += 1;
            }
            state
                .log
                .append(vec![windlass_state::NewEvent {
                    install_id: line["install_id"].as_str().unwrap().to_string(),
                    actor: line["actor"].as_str().unwrap().to_string(),
                    event_type: event_type.to_string(),
                    schema_version: version,
                    payload,
                }])
                .unwrap();
        }
        assert_eq!(downgraded, 2);
    }
    let events = json(run_within(
        windlass(older.path()).args(["events", install_id, "--json"]),
        60,
    ));
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["type"] == "ImagesProbed"),
        "{events:#}"
    );
    let report = identical_report(windlass(older.path()).args(["replay", install_id, "--json"]));
    assert_eq!(report["differences"], serde_json::json!([]));
    assert_eq!(
        last_event(older.path(), install_id)["type"],
        "ReplayVerified"
    );
}

fn what_if(state: &Path, install_id: &str, options: &[&str]) -> serde_json::Value {
    let before = event_count(state, install_id);
    let output = run_within(
        windlass(state)
            .args(["replay", install_id, "--json"])
            .args(options),
        120,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        event_count(state, install_id),
        before,
        "a what-if records nothing"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["what_if"], true);
    report
}

fn details(report: &serde_json::Value, stage: &str) -> Vec<String> {
    report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|difference| difference["stage"] == stage)
        .map(|difference| {
            format!(
                "{} {} {}",
                difference["kind"].as_str().unwrap(),
                difference["file"].as_str().unwrap_or("-"),
                difference["detail"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn each_what_if_option_prints_its_stage_by_stage_difference_and_records_nothing() {
    let state = tempfile::tempdir().unwrap();
    let install = crate::install_quickstart(state.path());
    let install_id = install["install_id"].as_str().unwrap();
    let history_before = text(&run_within(windlass(state.path()).arg("history"), 60).stdout);

    let report = what_if(
        state.path(),
        install_id,
        &["--proxy-domain", "proxy.example.com"],
    );
    let plan = details(&report, "plan_overrides");
    assert!(
        plan.iter().any(|line| line
            .contains("domains.proxy_host: \"proxy.replicated.com\" → \"proxy.example.com\"")),
        "{plan:?}"
    );
    let render = details(&report, "render_midstream");
    assert!(
        render.iter().any(
            |line| line.starts_with("changed overlays/midstream/kustomization.yaml")
                && line.contains("proxy.example.com")
        ),
        "{render:?}"
    );
    assert!(
        details(&report, "write_base").is_empty(),
        "base does not change"
    );

    let report = what_if(
        state.path(),
        install_id,
        &["--registry-domain", "registry.example.com"],
    );
    let plan = details(&report, "plan_overrides");
    assert!(
        plan.iter().any(|line| line.contains(
            "domains.registry_host: \"registry.replicated.com\" → \"registry.example.com\""
        )),
        "{plan:?}"
    );
    assert!(
        details(&report, "provision_secrets")
            .iter()
            .any(|line| line.contains("registry.example.com")),
        "{report:#}"
    );

    let report = what_if(state.path(), install_id, &["--probe-policy", "strict"]);
    let probe = details(&report, "probe_images");
    assert!(
        probe.iter().any(|line| line.starts_with("failed")
            && line.contains("the strict probe policy refuses to decide")),
        "{probe:?}"
    );
    assert!(
        details(&report, "render_midstream")
            .iter()
            .any(|line| line.contains("not run")),
        "{report:#}"
    );

    let known = state.path().join("known.yaml");
    std::fs::write(
        &known,
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: i\nspec:\n  knownImages:\n    - image: nginx:1.25\n      isPrivate: false\n",
    )
    .unwrap();
    let report = what_if(
        state.path(),
        install_id,
        &["--known-images", known.to_str().unwrap()],
    );
    let probe = details(&report, "probe_images");
    assert!(
        probe
            .iter()
            .any(|line| line.contains("\"unreachable\" → \"known\"")),
        "{probe:?}"
    );
    assert!(
        details(&report, "render_midstream")
            .iter()
            .any(|line| line.contains("nginx")),
        "{report:#}"
    );

    let report = what_if(state.path(), install_id, &["--namespace", "elsewhere"]);
    assert!(
        details(&report, "provision_secrets")
            .iter()
            .any(|line| line.contains("\"elsewhere\"")),
        "{report:#}"
    );

    let report = what_if(state.path(), install_id, &["--kots-compat"]);
    assert!(
        details(&report, "provision_secrets")
            .iter()
            .any(|line| line.contains("kotsadm-replicated-registry")),
        "{report:#}"
    );

    let history_after = text(&run_within(windlass(state.path()).arg("history"), 60).stdout);
    assert_eq!(history_before, history_after, "no install was recorded");
}

/// An install whose pipeline ends in an apply to a directory (GitOps) replays that apply too,
/// into the replay's scratch directory: the directory it wrote is neither needed nor touched, each
/// applied object's digest is compared (the pull secret's only with the license, from which it
/// derives), and a what-if namespace shows in the apply stage's facts.
#[test]
fn an_apply_to_a_directory_is_replayed_into_the_scratch_directory() {
    let state = tempfile::tempdir().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let target = gitops.path().join("app");
    let install = json(run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg(quickstart())
            .arg("--target")
            .arg(format!("dir:{}", target.display())),
        120,
    ));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    std::fs::remove_dir_all(&target).unwrap();

    for license in [false, true] {
        let mut command = windlass(state.path());
        command.args(["replay", install_id, "--json"]);
        if license {
            command
                .arg("--license")
                .arg(quickstart().join("userdata/license.yaml"));
        }
        let report = identical_report(&mut command);
        let apply = stage_verdict(&report, "apply");
        assert_eq!(apply["status"], "identical", "{report}");
        assert_eq!(
            apply["facts"], 2,
            "ObjectsApplied and ApplyCompleted: {report}"
        );
    }
    assert!(
        !target.exists(),
        "the replay wrote into the recorded target"
    );

    let report = what_if(state.path(), install_id, &["--namespace", "elsewhere"]);
    let apply = details(&report, "apply");
    assert!(
        apply
            .iter()
            .any(|line| line.contains("ObjectsApplied") && line.contains("elsewhere")),
        "{apply:?}"
    );
}

/// The files under `dir`, relative, sorted.
fn relative_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = crate::files_under(dir)
        .iter()
        .map(|path| path.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

/// A replay keeps the release, the output directory and its own events in memory: paused after
/// its last stage, its scratch directory holds no file (no release file, no output file, no log),
/// and
/// it still reproduces every file, including a `rendered/` the external kustomize built (two
/// `initContainers` without a `name`), which it builds on a copy of the overlays taken from
/// memory.
#[test]
fn a_replay_writes_neither_release_nor_output_files_even_for_the_external_kustomize() {
    let release = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(release.path().join("userdata")).unwrap();
    std::fs::write(release.path().join("userdata/license.yaml"), LICENSE).unwrap();
    std::fs::write(
        release.path().join("web.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      initContainers:\n      - image: busybox:1\n        command: [a]\n      - image: busybox:2\n        command: [b]\n      containers:\n      - name: app\n        image: vendor.example/team/web:1.0\n",
    )
    .unwrap();
    let known = tempfile::tempdir().unwrap();
    let known_images = known.path().join("installation.yaml");
    std::fs::write(
        &known_images,
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: i\nspec:\n  knownImages:\n  - image: vendor.example/team/web:1.0\n    isPrivate: true\n",
    )
    .unwrap();
    let kubectl_dir = windlass_testkit::kube_tools::kubectl()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        kubectl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let state = tempfile::tempdir().unwrap();
    let installed = run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg("--known-images")
            .arg(&known_images)
            .arg(release.path())
            .env("PATH", &path),
        120,
    );
    assert!(installed.status.success(), "{}", text(&installed.stdout));
    let install = json(installed);
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let events = json(run_within(
        windlass(state.path()).args(["events", install_id, "--json"]),
        60,
    ));
    let rendered = payloads_of_type(events.as_array().unwrap(), "MidstreamRendered");
    assert!(
        rendered[0]["builder"]["kind"] == "external",
        "the external kustomize built it: {}",
        rendered[0]["builder"]
    );

    let scratch = tempfile::tempdir().unwrap();
    let mut paused = windlass(state.path())
        .args(["replay", install_id])
        .env("WINDLASS_REPLAY_SCRATCH", scratch.path())
        .env("WINDLASS_PAUSE_AFTER_STAGE", "render_midstream")
        .env("PATH", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::wait_for_pause(&mut paused, "render_midstream");
    let scratch_dirs: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paused.kill().unwrap();
    paused.wait().unwrap();
    assert_eq!(scratch_dirs.len(), 1, "{scratch_dirs:?}");
    // Paused after render_midstream, the replay has produced the release, base/ and rendered/
    // and recorded its events: all of it in memory.
    let files = relative_files(&scratch_dirs[0]);
    assert!(files.is_empty(), "a replay writes no file: {files:?}");

    let report = identical_report(
        windlass(state.path())
            .args(["replay", install_id, "--json"])
            .env("PATH", &path),
    );
    let render = stage_verdict(&report, "render_midstream");
    assert_eq!(render["status"], "identical", "{report}");
    assert!(render["files"].as_u64().unwrap() >= 2, "{report}");
}
