//! `fetch_base` and `write_base` end to end through the real engine: the default pipeline built
//! from this crate's registration list, a `Runner` over a redb `StateDir` in a temporary directory,
//! and an `InstallRequest` made as the binary makes it. The good release's `base/` is compared with
//! `fixtures/good/expected/base/`; `upstream/`, the recorded facts and their blobs are checked
//! against the release itself; and every byte of the state and output directories is searched for
//! the license ID. Then: a second install after changing the release leaves nothing stale, and a
//! release that changed since the install started, or that is invalid, fails `fetch_base` as
//! invalid input: so do a file holding the license ID (never stored), an empty release or one
//! without Kubernetes objects, a license for another app and an invalid namespace. License copies
//! are left out and never stored; a chart no HelmChart refers to is a warning, recorded.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use windlass_state::EventPayload;

use windlass_engine::{FailureClass, InstallState, InstallStatus, StageStatus};
use windlass_stages::events::{BaseFetched, BaseWritten, FileClass};
use windlass_stages::release::{FileContents, Release};
use windlass_state::{BlobId, BlobStore};

use crate::support::{
    Installer, LICENSE_ID, assert_no_license_id, copy_fixture, expect_tree, fact, files_containing,
    files_under, fixture, scan_ok, temp_dir,
};

/// The license file of the good release.
const LICENSE_FILE: &str = "userdata/license.yaml";

fn blob(blobs: &BlobStore, hex: &str) -> Vec<u8> {
    let id = BlobId::parse(hex).unwrap_or_else(|error| panic!("{error}"));
    assert!(blobs.contains(&id), "blob {hex} is not in the store");
    blobs.get(&id).unwrap_or_else(|error| panic!("{error}"))
}

fn assert_completed(state: &InstallState) {
    assert_eq!(
        state.status,
        InstallStatus::Completed,
        "install failed: {:?}",
        state.failure
    );
}

/// `base/kustomization.yaml`'s `resources`, checking its `apiVersion` and `kind` on the way.
fn kustomization_resources(out: &Path) -> Vec<String> {
    let text = fs::read_to_string(out.join("base/kustomization.yaml")).expect("read");
    let value: serde_json::Value = serde_saphyr::from_str(&text).expect("kustomization parses");
    assert_eq!(value["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(value["kind"], "Kustomization");
    serde_json::from_value(value["resources"].clone()).expect("resources is a list of strings")
}

/// The release's files as `upstream/` must hold them: everything but the license.
fn expected_upstream(release_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = files_under(release_dir);
    assert!(
        files.remove(LICENSE_FILE).is_some(),
        "the fixture has a license"
    );
    files
}

/// The text of the document at (`file`, `index`) of a scanned release.
fn document_text<'a>(release: &'a Release, file: &str, index: usize) -> &'a str {
    release
        .files
        .iter()
        .filter_map(|candidate| match &candidate.contents {
            FileContents::Yaml(documents) if candidate.path == file => Some(documents),
            _ => None,
        })
        .flatten()
        .find(|document| document.index == index)
        .map(|document| document.text.as_str())
        .unwrap_or_else(|| panic!("no document {index} in {file}"))
}

#[tokio::test]
async fn install_writes_base_and_upstream_and_never_records_the_license_id() {
    let installer = Installer::new();
    let release_dir = fixture("good/release");
    let out_parent = temp_dir();
    let out = out_parent.path().join("out");
    let request = installer.request(&release_dir, &out);
    let fingerprint = request
        .license
        .as_ref()
        .expect("licensed")
        .fingerprint
        .clone();
    let state = installer.install(request, "install-1").await;
    assert_completed(&state);
    assert_eq!(
        state.license.as_ref().map(|record| &record.fingerprint),
        Some(&fingerprint)
    );
    let release = scan_ok(&release_dir);

    // base/: one file per Kubernetes document, KOTS kinds left out, multi-document files split.
    expect_tree(&fixture("good/expected/base"), &out.join("base"));
    let expected_base = [
        ("manifests/configmap.yaml", 0, "manifests/configmap.yaml"),
        ("manifests/multi.yaml", 0, "manifests/multi-1.yaml"),
        ("manifests/multi.yaml", 1, "manifests/multi-2.yaml"),
        ("manifests/multi.yaml", 2, "manifests/multi-3.yaml"),
        (
            "manifests/nested/deep/service.yaml",
            0,
            "manifests/nested/deep/service.yaml",
        ),
    ];
    let base_files = files_under(&out.join("base"));
    let mut wanted_names: Vec<&str> = expected_base.iter().map(|(_, _, name)| *name).collect();
    wanted_names.push("kustomization.yaml");
    wanted_names.sort();
    assert_eq!(
        base_files.keys().map(String::as_str).collect::<Vec<_>>(),
        wanted_names
    );
    for (file, index, name) in expected_base {
        assert_eq!(
            String::from_utf8_lossy(&base_files[name]),
            document_text(&release, file, index),
            "base/{name} holds exactly document {index} of {file}"
        );
        assert!(!String::from_utf8_lossy(&base_files[name]).contains("kots.io/"));
    }
    assert_eq!(
        kustomization_resources(&out),
        expected_base
            .iter()
            .map(|(_, _, name)| *name)
            .collect::<Vec<_>>()
    );

    // upstream/: the release without its license.
    assert_eq!(
        files_under(&out.join("upstream")),
        expected_upstream(&release_dir)
    );

    // BaseFetched: every file and document of the release, with blobs in the store.
    let blobs = &installer.state.blobs;
    let fetched: BaseFetched = fact(&state, "fetch_base", BaseFetched::EVENT_TYPE);
    assert_eq!(fetched.release_digest, release.digest());
    let listed: Vec<(&str, FileClass, u64)> = fetched
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.class, file.size))
        .collect();
    let scanned: Vec<(&str, FileClass, u64)> = release
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.class(), file.size))
        .collect();
    assert_eq!(listed, scanned);
    for file in &fetched.files {
        match (&file.blob, file.class) {
            (None, FileClass::License) => assert_eq!(file.path, LICENSE_FILE),
            (Some(hex), class) if class != FileClass::License => assert_eq!(
                blob(blobs, hex),
                fs::read(release_dir.join(&file.path)).expect("read"),
                "{}",
                file.path
            ),
            (blob, class) => panic!("{}: {class:?} with blob {blob:?}", file.path),
        }
    }
    let documents: Vec<String> = fetched
        .documents
        .iter()
        .map(|document| {
            assert_eq!(
                String::from_utf8(blob(blobs, document.blob.as_deref().unwrap_or_default()))
                    .expect("UTF-8"),
                document_text(&release, &document.file, document.index)
            );
            format!(
                "{}[{}]@{} {:?} {}/{} {:?}/{:?}",
                document.file,
                document.index,
                document.line,
                document.class,
                document.api_version,
                document.kind,
                document.namespace,
                document.name
            )
        })
        .collect();
    assert_eq!(
        documents,
        [
            "kots-app.yaml[0]@1 KotsKind kots.io/v1beta1/Application None/Some(\"example-app\")",
            "kots-helmchart.yaml[0]@1 KotsKind kots.io/v1beta2/HelmChart None/Some(\"redis\")",
            "manifests/configmap.yaml[0]@1 KubernetesObject v1/ConfigMap Some(\"example\")/Some(\"settings\")",
            "manifests/multi.yaml[0]@1 KubernetesObject apps/v1/Deployment None/Some(\"web\")",
            "manifests/multi.yaml[1]@9 KubernetesObject v1/ServiceAccount None/Some(\"web\")",
            "manifests/multi.yaml[2]@17 KubernetesObject v1/ConfigMap None/Some(\"tagged\")",
            "manifests/multi.yaml[3]@23 KotsKind kots.io/v1beta1/Config None/Some(\"example-config\")",
            "manifests/nested/deep/service.yaml[0]@1 KubernetesObject v1/Service None/Some(\"web\")",
        ]
    );
    assert!(
        fetched
            .documents
            .iter()
            .all(|document| document.file != LICENSE_FILE),
        "the license's documents are not recorded"
    );

    // BaseWritten: every file under the output directory, with its blob.
    let written: BaseWritten = fact(&state, "write_base", BaseWritten::EVENT_TYPE);
    assert_eq!(
        Path::new(&written.out_dir),
        fs::canonicalize(&out).expect("canonical out")
    );
    let on_disk = files_under(&out);
    assert_eq!(
        written
            .files
            .iter()
            .map(|file| file.path.as_str())
            .collect::<Vec<_>>(),
        on_disk.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for file in &written.files {
        assert_eq!(
            blob(blobs, file.blob.as_deref().unwrap_or_default()),
            on_disk[&file.path],
            "{}",
            file.path
        );
    }
    assert!(
        written
            .files
            .iter()
            .all(|file| !file.path.ends_with("license.yaml")),
        "the license is never written"
    );

    // The license ID is nowhere on disk; the search does find what the log does hold.
    assert!(
        !files_containing(installer.state_root(), fingerprint.as_bytes()).is_empty(),
        "the search must see into the event log"
    );
    assert!(!files_containing(installer.state_root(), b"tagged").is_empty());
    // `BaseFetched` is big enough to be stored compressed: the search sees into it too.
    assert!(
        !files_containing(installer.state_root(), b"\"event_type\":\"BaseFetched\"").is_empty()
    );
    assert_no_license_id(installer.state_root());
    assert_no_license_id(&out);
    assert_eq!(
        files_containing(&release_dir, LICENSE_ID.as_bytes()),
        [release_dir.join(LICENSE_FILE).display().to_string()],
        "the release did hold the ID, in its license file only"
    );
}

#[tokio::test]
async fn a_second_install_leaves_no_stale_file() {
    let installer = Installer::new();
    let (_release_parent, release_dir) = copy_fixture("good/release");
    let out_parent = temp_dir();
    let out = out_parent.path().join("out");
    let first = installer
        .install(installer.request(&release_dir, &out), "first")
        .await;
    assert_completed(&first);
    assert!(
        out.join("base/manifests/nested/deep/service.yaml")
            .is_file()
    );
    assert!(out.join("base/manifests/multi-3.yaml").is_file());

    // Remove a manifest and a document of the multi-document file; leave strays in the output.
    fs::remove_file(release_dir.join("manifests/nested/deep/service.yaml")).expect("remove");
    let multi = release_dir.join("manifests/multi.yaml");
    let text = fs::read_to_string(&multi).expect("read");
    let service_account = "---\n# A comment opening the second document.\napiVersion: v1\n\
                           kind: ServiceAccount\nmetadata:\n  name: web\n";
    assert!(text.contains(service_account));
    fs::write(&multi, text.replace(service_account, "")).expect("rewrite");
    fs::write(out.join("base/stray.yaml"), "kind: Stray\n").expect("write a stray");
    fs::write(out.join("upstream/stray.txt"), "stray\n").expect("write a stray");

    let second = installer
        .install(installer.request(&release_dir, &out), "second")
        .await;
    assert_completed(&second);
    assert_ne!(
        second.install_id, first.install_id,
        "a changed release is a new install"
    );
    let base: Vec<String> = files_under(&out.join("base")).into_keys().collect();
    assert_eq!(
        base,
        [
            "kustomization.yaml",
            "manifests/configmap.yaml",
            "manifests/multi-1.yaml",
            "manifests/multi-2.yaml",
        ]
    );
    assert_eq!(
        kustomization_resources(&out),
        [
            "manifests/configmap.yaml",
            "manifests/multi-1.yaml",
            "manifests/multi-2.yaml"
        ]
    );
    assert!(
        fs::read_to_string(out.join("base/manifests/multi-2.yaml"))
            .expect("read")
            .contains("name: tagged")
    );
    assert_eq!(
        files_under(&out.join("upstream")),
        expected_upstream(&release_dir)
    );
    assert!(
        !out.join("base/manifests/nested").exists(),
        "empty directories go too"
    );
    let written: BaseWritten = fact(&second, "write_base", BaseWritten::EVENT_TYPE);
    assert_eq!(written.files.len(), files_under(&out).len());
}

#[tokio::test]
async fn a_changed_release_fails_fetch_base_as_invalid_input() {
    let installer = Installer::new();
    let out_parent = temp_dir();
    let out = out_parent.path().join("out");
    let mut request = installer.request(&fixture("good/release"), &out);
    request.release_digest = format!("blake3:{}", "0".repeat(64));
    let state = installer.install(request, "changed").await;

    assert_eq!(state.status, InstallStatus::Failed);
    let failure = state.failure.as_ref().expect("a failure is recorded");
    assert_eq!(failure.stage, "fetch_base");
    assert_eq!(failure.class, FailureClass::InvalidInput);
    assert!(
        failure
            .message
            .contains("changed since this install started"),
        "{}",
        failure.message
    );
    let stages: Vec<(&str, StageStatus, u32)> = state
        .stages
        .iter()
        .map(|stage| (stage.name.as_str(), stage.status, stage.attempts))
        .collect();
    assert_eq!(
        stages,
        [
            ("fetch_base", StageStatus::Failed, 1),
            ("write_base", StageStatus::Pending, 0),
        ],
        "invalid input is not retried and nothing runs after it"
    );
    assert!(!out.exists(), "nothing is written");
    assert_no_license_id(installer.state_root());
}

#[tokio::test]
async fn an_invalid_release_fails_fetch_base_as_invalid_input() {
    let installer = Installer::new();
    let out_parent = temp_dir();
    let mut request = installer.request(&fixture("good/release"), &out_parent.path().join("out"));
    request.release_dir = fixture("bad/no-kind");
    let state = installer.install(request, "invalid").await;

    assert_eq!(state.status, InstallStatus::Failed);
    let failure = state.failure.as_ref().expect("a failure is recorded");
    assert_eq!(failure.stage, "fetch_base");
    assert_eq!(failure.class, FailureClass::InvalidInput);
    assert_eq!(
        failure.message,
        "objects.yaml (document 2, line 6): document has no `kind`"
    );
}

/// Installs `release` with the good release's license (whatever `release` holds), and returns
/// the final state; `install_id` names the install.
async fn install_with_good_license(
    installer: &Installer,
    release: &Path,
    install_id: &str,
) -> InstallState {
    let out_parent = temp_dir();
    let mut request = installer.request(&fixture("good/release"), &out_parent.path().join("out"));
    request.release_dir = release.to_path_buf();
    request.release_digest = windlass_stages::release::digest(release, &Default::default())
        .expect("the digest pre-scan never fails on release contents");
    installer.install(request, install_id).await
}

fn assert_fetch_base_refused(state: &InstallState, expected: &[&str]) {
    assert_eq!(state.status, InstallStatus::Failed, "{:?}", state.failure);
    let failure = state.failure.as_ref().expect("a failure is recorded");
    assert_eq!(failure.stage, "fetch_base");
    assert_eq!(failure.class, FailureClass::InvalidInput);
    for wanted in expected {
        assert!(
            failure.message.contains(wanted),
            "{:?} does not contain {wanted:?}",
            failure.message
        );
    }
    assert!(!failure.message.contains(LICENSE_ID), "{}", failure.message);
}

#[tokio::test]
async fn license_copies_are_left_out_and_never_stored() {
    let (_dir, release_dir) = copy_fixture("good/release");
    let license = fs::read(release_dir.join(LICENSE_FILE)).expect("read");
    for copy in [
        "userdata/license.yaml.orig",
        "userdata/license.yaml.bak",
        "license.txt",
    ] {
        fs::write(release_dir.join(copy), &license).expect("copy the license");
    }
    let installer = Installer::new();
    let out_parent = temp_dir();
    let out = out_parent.path().join("out");
    let request = installer.request(&release_dir, &out);
    let state = installer.install(request, "copies").await;
    assert_completed(&state);
    let fetched: BaseFetched = fact(&state, "fetch_base", BaseFetched::EVENT_TYPE);
    let licenses: Vec<(&str, Option<&String>)> = fetched
        .files
        .iter()
        .filter(|file| file.class == FileClass::License)
        .map(|file| (file.path.as_str(), file.blob.as_ref()))
        .collect();
    assert_eq!(
        licenses,
        [
            ("license.txt", None),
            ("userdata/license.yaml", None),
            ("userdata/license.yaml.bak", None),
            ("userdata/license.yaml.orig", None),
        ]
    );
    let summary = state.stages[0].summary.as_deref().unwrap_or_default();
    assert!(
        summary.contains(
            "left out as license files: license.txt, userdata/license.yaml, \
             userdata/license.yaml.bak, userdata/license.yaml.orig"
        ),
        "{summary}"
    );
    assert!(!out.join("upstream/license.txt").exists());
    assert!(!out.join("upstream/userdata/license.yaml.bak").exists());
    assert_no_license_id(installer.state_root());
    assert_no_license_id(&out);
}

#[tokio::test]
async fn a_file_holding_the_license_id_fails_fetch_base_and_is_never_stored() {
    let (_dir, release_dir) = copy_fixture("good/release");
    // Not YAML, and the license in use is not in the release: only its ID in a plain file.
    fs::remove_file(release_dir.join(LICENSE_FILE)).expect("remove the license");
    fs::write(
        release_dir.join("support-notes.md"),
        format!("Support: quote {LICENSE_ID} when you call.\n"),
    )
    .expect("write");
    let installer = Installer::new();
    let state = install_with_good_license(&installer, &release_dir, "holds-id").await;
    assert_fetch_base_refused(
        &state,
        &["support-notes.md: holds the license ID of the license in use"],
    );
    assert_no_license_id(installer.state_root());
}

#[tokio::test]
async fn an_empty_release_or_one_without_kubernetes_objects_fails_fetch_base() {
    let installer = Installer::new();
    let empty = temp_dir();
    let state = install_with_good_license(&installer, empty.path(), "empty").await;
    assert_fetch_base_refused(
        &state,
        &[&format!(
            "release directory {} is empty: nothing to install",
            fs::canonicalize(empty.path()).expect("canonical").display()
        )],
    );

    let kots_only = temp_dir();
    fs::copy(
        fixture("good/release/kots-app.yaml"),
        kots_only.path().join("kots-app.yaml"),
    )
    .expect("copy");
    fs::write(kots_only.path().join("README.md"), "read me\n").expect("write");
    let state = install_with_good_license(&installer, kots_only.path(), "kots-only").await;
    assert_fetch_base_refused(
        &state,
        &[
            "holds 2 file(s) but no Kubernetes object",
            "nothing to install",
        ],
    );
}

#[tokio::test]
async fn a_license_for_another_app_fails_fetch_base_naming_both_apps() {
    let (_dir, release_dir) = copy_fixture("good/release");
    let application = release_dir.join("kots-app.yaml");
    let text = fs::read_to_string(&application).expect("read");
    fs::write(&application, text.replace("example-app", "other-app")).expect("write");
    let installer = Installer::new();
    let state = install_with_good_license(&installer, &release_dir, "other-app").await;
    assert_fetch_base_refused(
        &state,
        &[
            "the license is for app \"example-app\", but this release is app \"other-app\" \
             (the Application in kots-app.yaml (document 1, line 1))",
        ],
    );
}

#[tokio::test]
async fn a_chart_no_helm_chart_refers_to_is_a_warning_in_the_summary_and_the_event() {
    let (_dir, release_dir) = copy_fixture("good/release");
    fs::write(
        release_dir.join("charts/postgres-15.0.1.tgz"),
        crate::support::chart_archive("postgres", "15.0.1"),
    )
    .expect("write");
    let installer = Installer::new();
    let out_parent = temp_dir();
    let request = installer.request(&release_dir, &out_parent.path().join("out"));
    let state = installer.install(request, "unreferenced").await;
    assert_completed(&state);
    let fetched: BaseFetched = fact(&state, "fetch_base", BaseFetched::EVENT_TYPE);
    assert_eq!(
        fetched.unreferenced_charts,
        [windlass_stages::events::UnreferencedChart {
            path: "charts/postgres-15.0.1.tgz".into(),
            chart_name: Some("postgres".into()),
            chart_version: Some("15.0.1".into()),
        }]
    );
    let summary = state.stages[0].summary.as_deref().unwrap_or_default();
    assert!(
        summary.contains(
            "warning: no HelmChart refers to charts/postgres-15.0.1.tgz (chart postgres 15.0.1): \
             it is copied to upstream/ but not deployed"
        ),
        "{summary}"
    );
}

#[tokio::test]
async fn an_invalid_namespace_fails_fetch_base() {
    let installer = Installer::new();
    let out_parent = temp_dir();
    let mut request = installer.request(&fixture("good/release"), &out_parent.path().join("out"));
    request.namespace = "../etc".into();
    let state = installer.install(request, "bad-namespace").await;
    assert_fetch_base_refused(
        &state,
        &["namespace \"../etc\" is not a valid namespace: a DNS-1123 label"],
    );
}
