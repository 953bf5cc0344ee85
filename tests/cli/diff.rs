//! `windlass diff` and `windlass history --app`: two releases differing in one file (a unified
//! diff, attributed to upstream, and the newer install records that it upgrades the older), two
//! installs differing in their namespace (pull secrets by name, namespace and fingerprint,
//! attributed to options), and two installs of one release whose image's registry visibility
//! changed between them (real registries; attributed to registry visibility).

use windlass_testkit::{RegistriesFile, TestRegistry};

use super::*;
use crate::state_integrity::{copy_dir, run_within, text};

fn install_id(output: Output) -> String {
    json(output)["install_id"].as_str().unwrap().to_string()
}

fn changes<'a>(diff: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["kind"] == kind)
        .collect()
}

#[test]
fn one_changed_file_is_a_unified_diff_attributed_to_upstream_and_an_upgrade() {
    let work = tempfile::tempdir().unwrap();
    let (old, new) = (work.path().join("v1"), work.path().join("v2"));
    copy_dir(&quickstart(), &old);
    copy_dir(&quickstart(), &new);
    let api = new.join("manifests/api.yaml");
    let text_before = std::fs::read_to_string(&api).unwrap();
    assert!(text_before.contains("replicas: 2"));
    std::fs::write(&api, text_before.replace("replicas: 2", "replicas: 3")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = install_id(run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg(&old),
        120,
    ));
    let second = install_id(run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg(&new),
        120,
    ));

    // `diff B` compares B with the install it upgrades.
    let output = run_within(windlass(state.path()).args(["diff", &second]), 60);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    assert!(
        said.starts_with(&format!(
            "diff {first} → {second}: 3 files changed, 3 lines added, 3 lines removed"
        )),
        "{said}"
    );
    assert!(
        said.contains("-  replicas: 2\n") && said.contains("+  replicas: 3\n"),
        "{said}"
    );
    let diff = json(run_within(
        windlass(state.path()).args(["diff", &first, &second, "--json"]),
        60,
    ));
    assert_eq!(diff["upstream_changed"], true);
    assert_eq!(diff["options_changed"], false);
    let files = changes(&diff, "file_changed");
    let paths: Vec<&str> = files
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["base/manifests/api.yaml", "upstream/manifests/api.yaml"]
    );
    for change in files {
        assert_eq!(change["attribution"], "upstream changed");
    }
    let objects = changes(&diff, "object_changed");
    assert_eq!(objects.len(), 1);
    assert_eq!(
        objects[0]["subject"],
        "rendered/this-cluster/api-deployment.yaml"
    );
    assert!(changes(&diff, "image_outcome_changed").is_empty());

    let only = json(run_within(
        windlass(state.path()).args([
            "diff",
            &first,
            &second,
            "--json",
            "--stage",
            "render_midstream",
        ]),
        60,
    ));
    assert_eq!(only["changes"].as_array().unwrap().len(), 1);
    assert_eq!(only["summary"]["files_changed"], 1);

    // The first install upgrades nothing.
    let refused = run_within(windlass(state.path()).args(["diff", &first]), 60);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains(&format!("install {first} upgrades no install")));

    let history = run_within(
        windlass(state.path()).args(["history", "--app", "my-app"]),
        60,
    );
    let said = text(&history.stdout);
    assert!(
        said.contains(&format!("upgrades {first}"))
            && said.contains(&format!("upgrade chain: {first} → {second}")),
        "{said}"
    );
    let listed = json(run_within(
        windlass(state.path()).args(["history", "--app", "my-app", "--json"]),
        60,
    ));
    assert_eq!(listed[1]["upgrades"], first.as_str());
    assert_eq!(listed[0]["upgrades"], serde_json::Value::Null);
    let unknown = run_within(
        windlass(state.path()).args(["history", "--app", "nope"]),
        60,
    );
    assert_eq!(unknown.status.code(), Some(5));
}

#[test]
fn another_namespace_changes_pull_secrets_by_name_and_fingerprint_only() {
    let state = tempfile::tempdir().unwrap();
    let first = install_id(run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg(quickstart()),
        120,
    ));
    let second = install_id(run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .args(["--json", "--namespace", "shop"])
            .arg(quickstart()),
        120,
    ));
    let output = run_within(
        windlass(state.path()).args(["diff", &first, &second, "--json"]),
        60,
    );
    let diff = json(output);
    assert_eq!(diff["upstream_changed"], false);
    assert_eq!(diff["options_changed"], true);
    let removed = changes(&diff, "pull_secret_removed");
    let added = changes(&diff, "pull_secret_added");
    assert_eq!(removed[0]["subject"], "default/my-app-registry");
    assert_eq!(added[0]["subject"], "shop/my-app-registry");
    assert!(
        added[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("fingerprint fp1:")
    );
    for change in diff["changes"].as_array().unwrap() {
        assert_eq!(change["attribution"], "options changed", "{change:#}");
    }
    let everything = serde_json::to_string(&diff).unwrap();
    assert!(
        !everything.contains(QUICKSTART_LICENSE_AUTH)
            && !everything.contains(QUICKSTART_LICENSE_ID),
        "no secret content in a diff"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_turned_private_is_attributed_to_registry_visibility() {
    let open = TestRegistry::open().await;
    let locked = TestRegistry::htpasswd().await;
    open.push_image("team/web:1.0", "web layer");
    locked.push_image("team/web:1.0", "web layer");
    let work = tempfile::tempdir().unwrap();
    let release = work.path().join("release");
    std::fs::create_dir_all(release.join("userdata")).unwrap();
    std::fs::write(
        release.join("userdata/license.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: diff-test-license\n  licenseSequence: 1\n",
    )
    .unwrap();
    std::fs::write(
        release.join("app.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: vendor.example/team/web:1.0\n",
    )
    .unwrap();
    // The same settings file, first routing the host to the open registry, then to the locked one.
    let settings = work.path().join("settings");
    std::fs::create_dir_all(&settings).unwrap();
    let registries = RegistriesFile::new()
        .route("vendor.example", &open)
        .write(&settings);
    let state = tempfile::tempdir().unwrap();
    let install = |state: &Path| {
        install_id(run_within(
            windlass(state)
                .args([
                    "install",
                    "--json",
                    "--probe-cache-ttl",
                    "0",
                    "--registries",
                ])
                .arg(&registries)
                .arg(&release),
            120,
        ))
    };
    let first = install(state.path());
    let rewritten = RegistriesFile::new()
        .route("vendor.example", &locked)
        .write(&settings);
    assert_eq!(rewritten, registries);
    let second = install(state.path());
    let diff = json(run_within(
        windlass(state.path()).args(["diff", &first, &second, "--json"]),
        60,
    ));
    assert_eq!(diff["upstream_changed"], false);
    assert_eq!(diff["options_changed"], false);
    let outcome = changes(&diff, "image_outcome_changed");
    assert_eq!(outcome.len(), 1, "{diff:#}");
    assert_eq!(outcome[0]["subject"], "vendor.example/team/web:1.0");
    assert!(
        outcome[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("public (public) → auth_required (private)"),
        "{}",
        outcome[0]["detail"]
    );
    assert_eq!(outcome[0]["attribution"], "registry visibility changed");
    let overrides = changes(&diff, "override_added");
    assert_eq!(overrides.len(), 1, "{diff:#}");
    assert_eq!(overrides[0]["attribution"], "registry visibility changed");
    let rendered = changes(&diff, "object_changed");
    assert!(
        rendered.iter().any(|change| change["subject"]
            == "rendered/this-cluster/web-deployment.yaml"
            && change["attribution"] == "registry visibility changed"),
        "{diff:#}"
    );
}
