//! What the `windlass` binary does with releases that hold more, or other, than a plain set of
//! manifests: license copies under other names (left out, the ID never reaching the state or
//! output directory), a file quoting the license ID, a license file hiding a Deployment, chart
//! archives (garbage refused, an archive no HelmChart refers to reported), documents KOTS never
//! deploys (kept out of `base/` and `rendered/`, a second Application refused), names and namespaces
//! Kubernetes refuses, an empty release, a license for another app, contradictory known images,
//! a custom domain that is not a host, and a release over a limit — each refused with the exit code the README documents, and the
//! failed `fetch_base` recorded with its error where an install started.

use std::path::{Path, PathBuf};

use super::{OFFLINE_INSTALL, QUICKSTART_LICENSE_ID, files_under, json, quickstart, run, windlass};

/// A copy of the quickstart release that a test may change.
pub(crate) fn quickstart_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    for file in files_under(&quickstart()) {
        let relative = file.strip_prefix(quickstart()).unwrap();
        let target = release.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    (dir, release)
}

/// Every file under `dir` whose bytes contain the quickstart license ID (the event log's
/// compressed records included).
fn files_with_the_license_id(dir: &Path) -> Vec<PathBuf> {
    let needle = QUICKSTART_LICENSE_ID.as_bytes();
    files_under(dir)
        .into_iter()
        .filter(|file| windlass_testkit::file_holds(file, needle))
        .collect()
}

/// Runs `windlass install --offline <release>` with `extra` arguments; returns the output.
fn install(state: &Path, release: &Path, extra: &[&str]) -> std::process::Output {
    run(windlass(state)
        .args(OFFLINE_INSTALL)
        .args(extra)
        .arg(release))
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit code 3 and that stderr contains every string of `expected` and not the ID.
fn assert_refused(output: &std::process::Output, expected: &[&str]) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for wanted in expected {
        assert!(stderr.contains(wanted), "{stderr:?} lacks {wanted:?}");
    }
    assert!(!stderr.contains(QUICKSTART_LICENSE_ID), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains(QUICKSTART_LICENSE_ID),
        "stdout quotes the license ID"
    );
}

/// The one install in `state`, as `show --json` prints it.
fn only_install(state: &Path) -> serde_json::Value {
    let history = json(run(windlass(state).args(["history", "--json"])));
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let id = history[0]["install_id"].as_str().unwrap();
    json(run(windlass(state).args(["show", id, "--json"])))
}

/// The events of install `id`, as `events --json` prints them.
fn events(state: &Path, id: &str) -> Vec<serde_json::Value> {
    json(run(windlass(state).args(["events", id, "--json"])))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn license_copies_and_files_quoting_the_id_never_reach_the_state_or_output() {
    let (_dir, release) = quickstart_copy();
    let license = std::fs::read(release.join("userdata/license.yaml")).unwrap();
    for copy in [
        "userdata/license.yaml.orig",
        "userdata/license.yaml.bak",
        "userdata/license.txt",
    ] {
        std::fs::write(release.join(copy), &license).unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let out_parent = tempfile::tempdir().unwrap();
    let out = out_parent.path().join("out");
    let output = install(state.path(), &release, &["--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "left out as license files: userdata/license.txt, userdata/license.yaml, \
             userdata/license.yaml.bak, userdata/license.yaml.orig"
        ),
        "{stdout}"
    );
    for needed in ["events.redb", "blobs/blobs.redb"] {
        assert!(state.path().join(needed).is_file(), "{needed} missing");
    }
    assert!(out.join("upstream/kots-app.yaml").is_file());
    assert!(
        !out.join("upstream/userdata").exists(),
        "no license copy is copied"
    );
    assert_eq!(
        files_with_the_license_id(state.path()),
        Vec::<PathBuf>::new()
    );

    // A plain-text file quoting the ID is refused, naming it; nothing of it is stored.
    let (_dir, release) = quickstart_copy();
    std::fs::write(
        release.join("SUPPORT.txt"),
        format!("Quote your license ID {QUICKSTART_LICENSE_ID} when you call us.\n"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = install(state.path(), &release, &[]);
    assert_refused(
        &output,
        &["SUPPORT.txt: holds the license ID of the license in use"],
    );
    assert!(state.path().join("blobs/blobs.redb").is_file());
    assert_eq!(
        files_with_the_license_id(state.path()),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn a_license_file_hiding_a_deployment_exits_3_naming_it() {
    let (_dir, release) = quickstart_copy();
    let license_path = release.join("userdata/license.yaml");
    let mut license = std::fs::read_to_string(&license_path).unwrap();
    let line = license.lines().count() + 2;
    license.push_str("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: sneaky\n");
    std::fs::write(&license_path, license).unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_refused(
        &install(state.path(), &release, &[]),
        &[
            &format!(
                "license.yaml:{line}: a license file may hold only its License, but it also holds"
            ),
            &format!("Deployment/sneaky (document 2, line {line})"),
        ],
    );
}

#[test]
fn documents_kots_never_deploys_stay_out_and_a_second_application_exits_3() {
    let (_dir, release) = quickstart_copy();
    std::fs::write(
        release.join("troubleshoot.yaml"),
        "apiVersion: troubleshoot.sh/v1beta2\nkind: Preflight\nmetadata:\n  name: checks\n---\n\
         apiVersion: troubleshoot.sh/v1beta2\nkind: SupportBundle\nmetadata:\n  name: bundle\n---\n\
         apiVersion: troubleshoot.sh/v1beta2\nkind: Redactor\nmetadata:\n  name: redact\n---\n\
         apiVersion: troubleshoot.sh/v1beta2\nkind: Redactor\nmetadata:\n  name: redact\n",
    )
    .unwrap();
    std::fs::write(
        release.join("velero.yaml"),
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: backup\n---\n\
         apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: nightly-backup\nspec:\n  schedule: 0 3 * * *\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    let output = install(state.path(), &release, &["--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let deployed: Vec<String> = files_under(&out.join("base"))
        .into_iter()
        .chain(files_under(&out.join("rendered")))
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .filter_map(|line| line.strip_prefix("kind: ").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        deployed.iter().any(|kind| kind == "Schedule"),
        "{deployed:?}"
    );
    for never in [
        "Preflight",
        "SupportBundle",
        "Redactor",
        "Backup",
        "Application",
    ] {
        assert!(
            !deployed.iter().any(|kind| kind == never),
            "{never} in {deployed:?}"
        );
    }

    std::fs::copy(
        release.join("kots-app.yaml"),
        release.join("kots-app-copy.yaml"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_refused(
        &install(state.path(), &release, &[]),
        &[
            "kots-app.yaml (document 1, line 1) and kots-app-copy.yaml (document 1, line 1) are both a KOTS Application: a release may hold one",
        ],
    );
}

/// A gzip-compressed tar of a chart named `name` at `version`.
fn chart(name: &str, version: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let chart_yaml = format!("apiVersion: v2\nname: {name}\nversion: {version}\n");
    let mut header = tar::Header::new_gnu();
    header.set_size(chart_yaml.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(
            &mut header,
            format!("{name}/Chart.yaml"),
            chart_yaml.as_bytes(),
        )
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn chart_archives_are_checked_and_unreferenced_ones_reported() {
    let (_dir, release) = quickstart_copy();
    std::fs::create_dir_all(release.join("charts")).unwrap();
    std::fs::write(release.join("charts/broken.tgz"), b"\x1f\x8b\x08garbage").unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_refused(
        &install(state.path(), &release, &[]),
        &["charts/broken.tgz: not a valid chart archive (a gzip-compressed tar)"],
    );

    std::fs::write(release.join("charts/broken.tgz"), chart("redis", "1.2.3")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = install(state.path(), &release, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "warning: no HelmChart refers to charts/broken.tgz (chart redis 1.2.3): \
             it is copied to upstream/ but not deployed"
        ),
        "{stdout}"
    );
    let installed = only_install(state.path());
    let fetched = events(state.path(), installed["install_id"].as_str().unwrap())
        .into_iter()
        .find(|event| event["type"] == "BaseFetched")
        .expect("fetch_base recorded BaseFetched");
    assert_eq!(
        fetched["payload"]["unreferenced_charts"],
        serde_json::json!([{
            "path": "charts/broken.tgz",
            "chart_name": "redis",
            "chart_version": "1.2.3",
        }])
    );

    // Once a HelmChart refers to it by name and version, there is nothing to report.
    std::fs::write(
        release.join("redis-chart.yaml"),
        "apiVersion: kots.io/v1beta2\nkind: HelmChart\nmetadata:\n  name: redis\nspec:\n  chart:\n    name: redis\n    chartVersion: 1.2.3\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = install(state.path(), &release, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("warning"));
}

#[test]
fn names_kubernetes_refuses_exit_3_with_file_document_and_line() {
    let (_dir, release) = quickstart_copy();
    std::fs::write(
        release.join("manifests/escape.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../etc/x\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_refused(
        &install(state.path(), &release, &[]),
        &[
            "manifests/escape.yaml (document 2, line 6): `metadata.name` \"../../etc/x\" is not a valid ConfigMap name",
        ],
    );
}

#[test]
fn an_invalid_namespace_flag_is_refused_before_anything_runs() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    for namespace in ["Prod", "a/b", "..", &"n".repeat(64)] {
        let output = install(&state_dir, &quickstart(), &["--namespace", namespace]);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("for '--namespace <NAMESPACE>': not a valid namespace"),
            "{stderr}"
        );
    }
    assert!(!state_dir.exists(), "nothing ran: no state directory");
}

#[test]
fn an_empty_release_fails_naming_the_directory_instead_of_completing() {
    let release = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = install(state.path(), release.path(), &[]);
    let canonical = std::fs::canonicalize(release.path()).unwrap();
    assert_refused(
        &output,
        &[&format!(
            "release directory {} is empty: nothing to install",
            canonical.display()
        )],
    );
    assert_eq!(only_install(state.path())["status"], "failed");
}

#[test]
fn a_license_for_another_app_exits_3_naming_both_apps() {
    let (_dir, release) = quickstart_copy();
    let application = release.join("kots-app.yaml");
    let text = std::fs::read_to_string(&application).unwrap();
    std::fs::write(
        &application,
        text.replace("name: my-app", "name: other-app"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_refused(
        &install(state.path(), &release, &[]),
        &["the license is for app \"my-app\", but this release is app \"other-app\""],
    );
}

/// A custom domain in the release is written into every proxied image and the pull secret, so a
/// URL there (scheme, path) is refused with exit 3 naming the file, document and field, before
/// anything is rendered.
#[test]
fn a_release_domain_with_a_scheme_exits_3_naming_the_file_document_and_field() {
    let (_dir, release) = quickstart_copy();
    std::fs::write(
        release.join("kots-installation.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: my-app\nspec:\n  replicatedProxyDomain: https://Images.Example.com/\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_refused(
        &install(state.path(), &release, &[]),
        &[
            "kots-installation.yaml (document 1) Installation spec.replicatedProxyDomain: \"https://Images.Example.com\" is not a host name",
        ],
    );
    assert_eq!(only_install(state.path())["status"], "failed");
}

#[test]
fn known_images_contradicting_each_other_exit_3_naming_both_entries() {
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("installation.yaml");
    std::fs::write(
        &known,
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: x\nspec:\n  knownImages:\n    - image: quay.io/my-org/api:v1.0.1\n      isPrivate: true\n    - image: quay.io/my-org/api:v1.0.1\n      isPrivate: false\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = install(
        state.path(),
        &quickstart(),
        &["--known-images", known.to_str().unwrap()],
    );
    assert_refused(
        &output,
        &[
            &format!("known-images file {}", known.display()),
            "`spec.knownImages[0]` (isPrivate true) and `spec.knownImages[1]` (isPrivate false) \
             disagree about image \"quay.io/my-org/api:v1.0.1\"",
        ],
    );
}

#[test]
fn a_release_over_a_limit_or_with_an_escaping_symlink_is_a_recorded_failed_fetch_base() {
    let (_dir, release) = quickstart_copy();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.yaml"), "x: 1\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        release.join("manifests/link.yaml"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_refused(
        &install(state.path(), &release, &[]),
        &["manifests/link.yaml: symlink leads outside the release directory"],
    );
    std::fs::remove_file(release.join("manifests/link.yaml")).unwrap();

    // A sparse 17 MiB file: over the 16 MiB per-file limit without writing 17 MiB.
    let big = std::fs::File::create(release.join("big.yaml")).unwrap();
    big.set_len(17 << 20).unwrap();
    let output = install(state.path(), &release, &[]);
    assert_refused(
        &output,
        &["big.yaml: file is 17825792 bytes, over the limit of 16777216 bytes"],
    );

    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2, "both refusals are recorded installs");
    for expected in [
        "symlink leads outside the release directory",
        "over the limit of 16777216 bytes",
    ] {
        let shown: Vec<serde_json::Value> = history
            .iter()
            .map(|install| {
                let id = install["install_id"].as_str().unwrap();
                json(run(windlass(state.path()).args(["show", id, "--json"])))
            })
            .filter(|show| {
                show["failure"]["message"]
                    .as_str()
                    .is_some_and(|message| message.contains(expected))
            })
            .collect();
        assert_eq!(
            shown.len(),
            1,
            "one install failed with {expected:?}: {history:?}"
        );
        let show = &shown[0];
        assert_eq!(show["status"], "failed");
        assert_eq!(show["failure"]["stage"], "fetch_base");
        assert_eq!(show["failure"]["class"], "invalid_input");
        let failed = events(state.path(), show["install_id"].as_str().unwrap())
            .into_iter()
            .find(|event| event["type"] == "StageFailed")
            .expect("a StageFailed event");
        assert_eq!(failed["payload"]["stage"], "fetch_base");
        assert!(
            failed["payload"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{failed}"
        );
    }
}
