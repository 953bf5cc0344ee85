//! `--target`: `none` by default (nothing applied, the pipeline of old), `dir:PATH` (one file per
//! object in apply order, written safely), and `windlass apply INSTALL_ID` for an install rendered
//! earlier; the options that need a cluster are refused without one.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn target_none_is_the_default_and_applies_nothing() {
    let state = tempfile::tempdir().unwrap();
    let install = install_quickstart(state.path());
    let stages: Vec<&str> = install["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["name"].as_str().unwrap())
        .collect();
    assert!(
        !stages.contains(&"apply"),
        "no apply stage without --target: {stages:?}"
    );
}

#[test]
fn target_dir_writes_one_file_per_object_in_apply_order() {
    let state = tempfile::tempdir().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let target = gitops.path().join("gitops");
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(quickstart())
        .arg("--target")
        .arg(format!("dir:{}", target.display()))));
    assert_eq!(install["status"], "completed");
    assert_eq!(
        listing(&target),
        [
            ".windlass-target",
            "0001-secret-my-app-registry.yaml",
            "0002-configmap-api-settings.yaml",
            "0003-service-api.yaml",
            "0004-deployment-api.yaml",
            "0005-cronjob-nightly-report.yaml",
        ]
    );
    let secret = target.join("0001-secret-my-app-registry.yaml");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let deployment: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(target.join("0004-deployment-api.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["metadata"]["name"], "api");

    // `windlass apply` of the same install into another directory, and again into the first (the
    // files windlass wrote there are replaced).
    let install_id = install["install_id"].as_str().unwrap();
    let second = gitops.path().join("second");
    let applied = json(run(windlass(state.path())
        .args(["apply", install_id, "--json", "--target"])
        .arg(format!("dir:{}", second.display()))));
    assert_eq!(applied["status"], "completed");
    assert_eq!(listing(&second), listing(&target));
    std::fs::write(target.join("0003-service-api.yaml"), "edited").unwrap();
    let again = json(run(windlass(state.path())
        .args(["apply", install_id, "--json", "--target"])
        .arg(format!("dir:{}", target.display()))));
    assert_eq!(again["status"], "completed");
    assert!(
        std::fs::read_to_string(target.join("0003-service-api.yaml"))
            .unwrap()
            .contains("kind: Service"),
        "a file windlass wrote is written again"
    );
}

#[test]
fn target_dir_refuses_a_directory_windlass_did_not_write() {
    let state = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("mine");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), "mine").unwrap();
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--target")
        .arg(format!("dir:{}", target.display())));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--target dir:")
            && stderr.contains("not empty and windlass did not write it"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn cluster_options_and_bad_targets_are_refused_on_the_command_line() {
    let state = tempfile::tempdir().unwrap();
    for (arguments, expected) in [
        (vec!["--target", "cluster"], "unknown target \"cluster\""),
        (vec!["--target", "kube:"], "needs a value after the colon"),
        (vec!["--dry-run"], "--dry-run needs --target kube"),
        (vec!["--wait-timeout", "5y"], "is not a duration"),
    ] {
        let output = run(windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg(quickstart())
            .args(&arguments));
        assert_eq!(output.status.code(), Some(2), "{arguments:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{arguments:?}: {stderr}");
    }
    let output = run(windlass(state.path()).args(["apply", "nope", "--target", "kube"]));
    assert_eq!(output.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no install nope"));
    let output = run(windlass(state.path()).args(["apply", "nope"]));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_pipeline_file_may_use_the_apply_stage_kind() {
    let state = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("from-pipeline");
    let mut pipeline = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("stages/default-pipeline.yaml"),
    )
    .unwrap()
    .replace("offline: false", "offline: true");
    pipeline.push_str(&format!(
        "  - name: apply\n    kind: apply\n    inputs: [fetch_base, write_base, provision_secrets, render_midstream]\n    config:\n      target: dir:{}\n",
        target.display()
    ));
    let file = state.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline).unwrap();
    let install = json(run(windlass(state.path())
        .args(["install", "--json"])
        .arg("--pipeline")
        .arg(&file)
        .arg(quickstart())));
    assert_eq!(install["status"], "completed", "{install}");
    assert_eq!(listing(&target).len(), 6);
    let output = run(windlass(state.path())
        .arg("install")
        .arg("--pipeline")
        .arg(&file)
        .arg(quickstart())
        .args(["--target", "kube"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--target with --pipeline"));
}

#[test]
fn a_rendered_file_changed_after_rendering_is_not_applied() {
    let state = tempfile::tempdir().unwrap();
    let install = install_quickstart(state.path());
    let install_id = install["install_id"].as_str().unwrap();
    let out = PathBuf::from(install["out"].as_str().unwrap());
    std::fs::write(
        out.join("rendered/this-cluster/api-settings-configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api-settings\ndata:\n  injected: x\n",
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("gitops");
    let output = run(windlass(state.path())
        .args(["apply", install_id, "--target"])
        .arg(format!("dir:{}", target.display())));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rendered/this-cluster/api-settings-configmap.yaml in")
            && stderr.contains("changed since it was rendered"),
        "{stderr}"
    );
    assert!(!target.exists(), "nothing was written");
}

/// `windlass apply ID --target dir:PATH`, its output.
fn apply_to_dir(state: &Path, install_id: &str, target: &Path) -> Output {
    run(windlass(state)
        .args(["apply", install_id, "--json", "--target"])
        .arg(format!("dir:{}", target.display())))
}

/// The files under `dir` (recursively) with their bytes, to show nothing changed.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = files_under(dir)
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(&file).unwrap();
            (file, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The reviewer's reproduction: a state directory made inside a directory target windlass wrote
/// is refused (it would have been deleted with the old directory), by `apply`, by `install`, and
/// by the apply stage of a pipeline file (which finds the state directory itself); PATH inside the
/// state directory too.
#[test]
fn a_dir_target_holding_or_inside_the_state_directory_is_refused_and_nothing_deleted() {
    let first_state = tempfile::tempdir().unwrap();
    let install = install_quickstart(first_state.path());
    let first_id = install["install_id"].as_str().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let target = gitops.path().join("g");
    assert_eq!(
        json(apply_to_dir(first_state.path(), first_id, &target))["status"],
        "completed"
    );
    let state = target.join("state");
    let install = install_quickstart(&state);
    let install_id = install["install_id"].as_str().unwrap();
    let before = contents(&target);
    assert!(state.join("fingerprint.key").is_file());

    let output = apply_to_dir(&state, install_id, &target);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "--target dir:{}: it holds the state directory",
            target.display()
        )),
        "{stderr}"
    );
    let output = run(windlass(&state)
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--target")
        .arg(format!("dir:{}", target.display())));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("it holds the state directory"));
    assert_eq!(contents(&target), before, "nothing was written or deleted");

    // Inside the state directory (where nothing of the user's is yet to lose).
    let inside = state.join("gitops");
    let output = apply_to_dir(&state, install_id, &inside);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "--target dir:{}: it is inside the state directory",
            inside.display()
        )),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!inside.exists());

    // A pipeline file's apply stage (no command-line check) finds the state directory itself.
    let pipeline = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("stages/default-pipeline.yaml"),
    )
    .unwrap()
    .replace("offline: false", "offline: true")
        + &format!(
            "  - name: apply\n    kind: apply\n    inputs: [fetch_base, write_base, provision_secrets, render_midstream]\n    config:\n      target: dir:{}\n",
            inside.display()
        );
    let file = gitops.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline).unwrap();
    let output = run(windlass(&state)
        .args(["install", "--pipeline"])
        .arg(&file)
        .arg(quickstart()));
    assert_eq!(output.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("it is inside the state directory"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!inside.exists());
    assert!(state.join("fingerprint.key").is_file() && state.join("events.redb").is_file());
}

/// A file the user added to a directory windlass wrote is refused, named, and kept; a `.git`
/// (a GitOps checkout) is kept in place across the swap, the same directory moved, not copied.
#[test]
fn entries_windlass_did_not_write_are_refused_and_git_is_kept() {
    use std::os::unix::fs::MetadataExt;
    let state = tempfile::tempdir().unwrap();
    let install = install_quickstart(state.path());
    let install_id = install["install_id"].as_str().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let target = gitops.path().join("gitops");
    assert_eq!(
        json(apply_to_dir(state.path(), install_id, &target))["status"],
        "completed"
    );
    let marker = std::fs::read_to_string(target.join(".windlass-target")).unwrap();
    assert!(marker.contains("\"0004-deployment-api.yaml\""), "{marker}");

    std::fs::write(target.join("kustomization.yaml"), "resources: []\n").unwrap();
    std::fs::create_dir(target.join("overlays")).unwrap();
    let before = contents(&target);
    let output = apply_to_dir(state.path(), install_id, &target);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("--target dir:{}: ", target.display()))
            && stderr.contains("entries windlass did not write")
            && stderr.contains("kustomization.yaml, overlays/"),
        "{stderr}"
    );
    assert_eq!(contents(&target), before);
    assert!(target.join("overlays").is_dir());

    std::fs::remove_file(target.join("kustomization.yaml")).unwrap();
    std::fs::remove_dir(target.join("overlays")).unwrap();
    std::fs::create_dir_all(target.join(".git/refs/heads")).unwrap();
    std::fs::write(target.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let git = std::fs::metadata(target.join(".git")).unwrap().ino();
    assert_eq!(
        json(apply_to_dir(state.path(), install_id, &target))["status"],
        "completed"
    );
    assert_eq!(std::fs::metadata(target.join(".git")).unwrap().ino(), git);
    assert_eq!(
        std::fs::read_to_string(target.join(".git/HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    assert_eq!(listing(&target).len(), 7, "{:?}", listing(&target));
    assert_eq!(listing(gitops.path()), ["gitops"], "nothing left beside it");
}

/// A ConfigMap templated with a password config item is recorded by fingerprint and written
/// 0600 in `rendered/`; the directory target writes it 0600 too, by `install` and by `apply`.
#[test]
fn a_dir_target_writes_an_object_holding_a_password_value_0600() {
    let release_parent = tempfile::tempdir().unwrap();
    let release = release_parent.path().join("release");
    for file in [
        "kots-app.yaml",
        "manifests/api.yaml",
        "manifests/networking.yaml",
        "manifests/nightly-report.yaml",
        "userdata/license.yaml",
    ] {
        std::fs::create_dir_all(release.join(file).parent().unwrap()).unwrap();
        std::fs::copy(quickstart().join(file), release.join(file)).unwrap();
    }
    std::fs::write(
        release.join("config.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Config\nmetadata:\n  name: config\nspec:\n  groups:\n    - name: auth\n      title: Auth\n      items:\n        - name: api_token\n          title: API token\n          type: password\n          required: true\n",
    )
    .unwrap();
    std::fs::write(
        release.join("manifests/token.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: token\ndata:\n  token: '{{repl ConfigOption \"api_token\" }}'\n",
    )
    .unwrap();
    let values = release_parent.path().join("values.yaml");
    std::fs::write(
        &values,
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    api_token:\n      valuePlaintext: tok-3Jd8Qw1ZpX\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let target = gitops.path().join("gitops");
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg("--config-values")
        .arg(&values)
        .arg(&release)
        .arg("--target")
        .arg(format!("dir:{}", target.display()))));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let second = gitops.path().join("second");
    assert_eq!(
        json(apply_to_dir(state.path(), install_id, &second))["status"],
        "completed"
    );
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for dir in [&target, &second] {
        let names = listing(dir);
        let named = |suffix: &str| {
            dir.join(
                names
                    .iter()
                    .find(|name| name.ends_with(suffix))
                    .unwrap_or_else(|| panic!("no *{suffix} in {names:?}")),
            )
        };
        let token = named("-configmap-token.yaml");
        assert!(
            std::fs::read_to_string(&token)
                .unwrap()
                .contains("tok-3Jd8Qw1ZpX")
        );
        assert_eq!(mode(&token), 0o600, "{}", token.display());
        assert_eq!(mode(&named("-secret-my-app-registry.yaml")), 0o600);
        assert_eq!(mode(&named("-configmap-api-settings.yaml")), 0o644);
    }
}

/// `dir:` naming a symbolic link (to an empty directory) is refused on the command line, before
/// anything is rendered or recorded, naming the directory to give instead.
#[test]
fn a_dir_target_that_is_a_symbolic_link_is_refused_on_the_command_line() {
    let state = tempfile::tempdir().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let real = gitops.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = gitops.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--target")
        .arg(format!("dir:{}", link.display())));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let real = std::fs::canonicalize(&real).unwrap();
    assert!(
        stderr.contains(&format!(
            "--target dir:{}: it is a symbolic link (to {})",
            link.display(),
            real.display()
        )) && stderr.contains(&format!("--target dir:{})", real.display())),
        "{stderr}"
    );
    assert!(listing(&real).is_empty());
    assert!(
        !state.path().join("installs").exists(),
        "nothing was rendered"
    );
}

/// With `additionalNamespaces`, the directory target writes each listed namespace first, before the
/// pull secrets windlass writes into them (`"*"` names none): the release's own Namespace moved
/// ahead, else one annotated so that Flux, Argo CD and kapp create it but never prune it.
#[test]
fn target_dir_writes_the_additional_namespaces_first_never_to_be_pruned() {
    let state = tempfile::tempdir().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let target = gitops.path().join("gitops");
    let release = crate::apply_kube::release(
        &[
            ("web.yaml", &crate::apply_kube::configmap("web", "1")),
            (
                "tools.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n",
            ),
        ],
        "  additionalNamespaces:\n    - reports\n    - tools\n    - default\n    - \"*\"\n",
    );
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(release.path())
        .arg("--target")
        .arg(format!("dir:{}", target.display()))));
    assert_eq!(install["status"], "completed", "{install:#}");
    let files = listing(&target);
    assert_eq!(
        files[1..4],
        [
            "0001-namespace-reports.yaml",
            "0002-namespace-tools.yaml",
            "0003-secret-my-app-registry.yaml"
        ],
        "{files:?}"
    );
    assert_eq!(
        files
            .iter()
            .filter(|file| file.contains("-namespace-"))
            .count(),
        2,
        "the release's own tools once, and not the app namespace: {files:?}"
    );
    let tools = std::fs::read_to_string(target.join("0002-namespace-tools.yaml")).unwrap();
    assert!(
        !tools.contains("annotations"),
        "the release's object: {tools}"
    );
    let reports: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(target.join("0001-namespace-reports.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        reports["metadata"]["annotations"],
        serde_json::json!({
            "kustomize.toolkit.fluxcd.io/prune": "disabled",
            "argocd.argoproj.io/sync-options": "Prune=false",
            "kapp.k14s.io/delete-strategy": "orphan",
        }),
        "{reports:#}"
    );
    let secret_in_reports = files
        .iter()
        .position(|file| {
            file.contains("-secret-")
                && std::fs::read_to_string(target.join(file))
                    .unwrap()
                    .contains("namespace: reports")
        })
        .expect("the pull secret is written into reports");
    assert!(secret_in_reports > 1, "{files:?}");
}

/// An `additionalNamespaces` entry that is no namespace name (here one that would reach another
/// resource's path) is refused before anything is written or applied, exit 3, naming the file,
/// the document and the entry.
#[test]
fn an_additional_namespace_that_is_no_namespace_name_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let gitops = tempfile::tempdir().unwrap();
    let target = gitops.path().join("gitops");
    let release = crate::apply_kube::release(
        &[("web.yaml", &crate::apply_kube::configmap("web", "1"))],
        "  additionalNamespaces:\n    - reports\n    - \"kube-system/configmaps/x?dryRun=All&\"\n",
    );
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(release.path())
        .arg("--target")
        .arg(format!("dir:{}", target.display())));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("kots-app.yaml")
            && stderr
                .contains("spec.additionalNamespaces[1] \"kube-system/configmaps/x?dryRun=All&\"")
            && stderr.contains("DNS-1123 label"),
        "{stderr}"
    );
    assert!(!target.exists(), "nothing written");
}
