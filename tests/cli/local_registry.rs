//! Local-registry mode (`--registry-host` and friends, or `local_registry:` in the config file),
//! end to end against a real `docker-registry` with htpasswd auth: every image, public or
//! private, `additionalImages` included, is rewritten to `<host>/<namespace>/<last component>`,
//! the rendered pull secret alone lets `skopeo inspect` read each rewritten image, the template
//! functions answer for the local registry, two images with the same last component are refused,
//! the password never reaches the state directory, and such an install replays.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use windlass_testkit::{HTPASSWD_PASSWORD, HTPASSWD_USERNAME, TestRegistry, require_tool};

use super::*;
use crate::state_integrity::{offsets_of, run_within, text};

const LICENSE: &str = "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: local-registry-license-9Tq4\n  licenseSequence: 2\n";

/// A release whose Deployment uses `images` and whose Application lists `additional` in
/// `additionalImages`, plus a ConfigMap whose values come from the registry template functions.
fn release_with(dir: &Path, images: &[&str], additional: &[&str]) {
    let containers: String = images
        .iter()
        .enumerate()
        .map(|(index, image)| format!("        - name: c{index}\n          image: {image}\n"))
        .collect();
    let additional: String = if additional.is_empty() {
        String::new()
    } else {
        additional
            .iter()
            .fold("  additionalImages:\n".to_string(), |list, image| {
                list + &format!("    - {image}\n")
            })
    };
    std::fs::create_dir_all(dir.join("userdata")).unwrap();
    std::fs::write(dir.join("userdata/license.yaml"), LICENSE).unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n{containers}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("kots-app.yaml"),
        format!(
            "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: My App\n{additional}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("registry-info.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: registry-info\ndata:\n  has: '{{repl HasLocalRegistry }}'\n  host: 'repl{{ LocalRegistryHost }}'\n  namespace: 'repl{{ LocalRegistryNamespace }}'\n  image: 'repl{{ LocalImageName \"quay.io/org/sidecar:9\" }}'\n  untagged: 'repl{{ LocalImageName \"quay.io/org/sidecar\" }}'\n  secret: 'repl{{ ImagePullSecretName }}'\n",
    )
    .unwrap();
}

/// `install --offline --out OUT --registry-host ... RELEASE --json` (probing only reports in this
/// mode, and these tests stay on loopback).
fn install_local(state: &Path, release: &Path, out: &Path, registry: &[&str]) -> Output {
    run_within(
        windlass(state)
            .args(["install", "--offline", "--json", "--out"])
            .arg(out)
            .args(registry)
            .arg(release),
        120,
    )
}

/// What a refused command said: the error (stderr) and, with `--json`, the failed install
/// (stdout).
fn said(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// A vendor's own pull secret made with `LocalRegistryImagePullSecret`: its rendered text holds
/// the registry password.
fn vendor_secret(release: &Path) {
    std::fs::write(
        release.join("vendor-secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: vendor-pull\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: 'repl{{ LocalRegistryImagePullSecret }}'\n",
    )
    .unwrap();
}

fn password_file(dir: &Path) -> PathBuf {
    let file = dir.join("registry-password");
    std::fs::write(&file, format!("{HTPASSWD_PASSWORD}\n")).unwrap();
    file
}

/// The `.dockerconfigjson` of the rendered `my-app-registry` Secret, decoded.
fn rendered_docker_config(out: &Path) -> Vec<u8> {
    let secret =
        std::fs::read_to_string(out.join("rendered/this-cluster/my-app-registry-secret.yaml"))
            .expect("the pull secret is rendered");
    let secret: serde_json::Value = serde_saphyr::from_str(&secret).unwrap();
    STANDARD
        .decode(secret["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap()
}

/// The images of the rendered Deployment `app`, in container order.
fn deployment_images(out: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(out.join("rendered/this-cluster/app-deployment.yaml")).unwrap();
    let deployment: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|container| container["image"].as_str().unwrap().to_string())
        .collect()
}

/// `skopeo inspect` of `reference` over plain HTTP, with `authfile` or with no credentials at all.
fn skopeo_inspect(reference: &str, authfile: Option<&Path>) -> Output {
    let mut command = Command::new(require_tool("skopeo", "skopeo"));
    command.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--retry-times",
        "0",
    ]);
    match authfile {
        Some(file) => command.arg("--authfile").arg(file),
        None => command.arg("--no-creds"),
    };
    command.arg(format!("docker://{reference}"));
    windlass_testkit::output_within(&mut command, Duration::from_secs(60), "skopeo inspect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_image_is_rewritten_and_the_rendered_pull_secret_alone_pulls_each_one() {
    let local = TestRegistry::htpasswd().await;
    local.push_image("team/nginx:1.25", "nginx layer");
    local.push_image("team/api:2.0", "api layer");
    let tool_digest = local.push_image("team/tool:1", "tool layer");
    local.push_image("team/worker:3", "worker layer");
    local.push_image("team/busybox:1.36", "busybox layer");
    let release = tempfile::tempdir().unwrap();
    let tool = format!("quay.io/org/tool@{tool_digest}");
    release_with(
        release.path(),
        &[
            "nginx:1.25",
            "vendor.example/acme/api:2.0",
            &tool,
            "registry.vendor.example:5000/deep/path/worker:3",
        ],
        &["docker.io/library/busybox:1.36"],
    );
    vendor_secret(release.path());
    let work = tempfile::tempdir().unwrap();
    let password = password_file(work.path());
    let state = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let host = local.host();
    let installed = install_local(
        state.path(),
        release.path(),
        &out,
        &[
            "--registry-host",
            &host,
            "--registry-namespace",
            "team",
            "--registry-username",
            HTPASSWD_USERNAME,
            "--registry-password-file",
            password.to_str().unwrap(),
        ],
    );
    assert_eq!(installed.status.code(), Some(0), "{}", said(&installed));
    let install: serde_json::Value = serde_json::from_slice(&installed.stdout).unwrap();
    assert_eq!(install["status"], "completed");

    // Every image of the Deployment is rewritten, public and private alike, tag and digest kept.
    let rendered = deployment_images(&out);
    let rewritten = [
        format!("{host}/team/nginx:1.25"),
        format!("{host}/team/api:2.0"),
        format!("{host}/team/tool@{tool_digest}"),
        format!("{host}/team/worker:3"),
    ];
    assert_eq!(rendered, rewritten);
    // additionalImages are rewritten too: their entry is in the overlay's images: list.
    let kustomization =
        std::fs::read_to_string(out.join("overlays/midstream/kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains("name: docker.io/library/busybox")
            && kustomization.contains(&format!("newName: {host}/team/busybox")),
        "{kustomization}"
    );

    // The pull secret carries only the local registry, with its user and password.
    let config: serde_json::Value = serde_json::from_slice(&rendered_docker_config(&out)).unwrap();
    let auths = config["auths"].as_object().unwrap();
    assert_eq!(auths.keys().collect::<Vec<_>>(), vec![&host], "{config}");
    assert_eq!(
        auths[&host]["auth"],
        STANDARD.encode(format!("{HTPASSWD_USERNAME}:{HTPASSWD_PASSWORD}"))
    );
    let authfile = work.path().join("auth.json");
    std::fs::write(&authfile, rendered_docker_config(&out)).unwrap();
    let additional = format!("{host}/team/busybox:1.36");
    for reference in rewritten.iter().chain([&additional]) {
        let with = skopeo_inspect(reference, Some(&authfile));
        assert!(
            with.status.success(),
            "skopeo inspect {reference} with the rendered secret: {}",
            text(&with.stderr)
        );
        let without = skopeo_inspect(reference, None);
        assert!(
            !without.status.success(),
            "skopeo inspect {reference} without credentials succeeded"
        );
    }

    // The mode is recorded in the plan event, with the password's fingerprint only.
    let events = json(run(windlass(state.path()).args([
        "events",
        install["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let planned = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "OverridesPlanned")
        .expect("OverridesPlanned recorded");
    let recorded = &planned["payload"]["local_registry"];
    assert_eq!(recorded["host"], host.as_str(), "{planned:#}");
    assert_eq!(recorded["namespace"], "team");
    assert_eq!(recorded["username"], HTPASSWD_USERNAME);
    assert!(
        recorded["password_fingerprint"]
            .as_str()
            .is_some_and(|fingerprint| !fingerprint.is_empty()),
        "{planned:#}"
    );

    // The vendor's secret made with LocalRegistryImagePullSecret holds the same credentials; its
    // documents are recorded by keyed fingerprint, its files written 0600.
    let vendor = std::fs::read_to_string(out.join("base/vendor-secret.yaml")).unwrap();
    let docker_config_base64 = STANDARD.encode(rendered_docker_config(&out));
    assert!(vendor.contains(&docker_config_base64), "{vendor}");
    let fetched = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .unwrap();
    let document = fetched["payload"]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|document| document["file"] == "vendor-secret.yaml")
        .unwrap();
    assert!(document.get("blob").is_none(), "{document}");
    assert!(document["fingerprint"].is_string(), "{document}");
    for path in [
        "base/vendor-secret.yaml",
        "rendered/this-cluster/vendor-pull-secret.yaml",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }

    // The password, plain, as the secret's auth or as the whole encoded config, is nowhere in
    // the state directory.
    let auth = STANDARD.encode(format!("{HTPASSWD_USERNAME}:{HTPASSWD_PASSWORD}"));
    for file in files_under(state.path()) {
        let bytes = windlass_testkit::scannable_bytes(&file);
        for needle in [
            HTPASSWD_PASSWORD.as_bytes(),
            auth.as_bytes(),
            docker_config_base64.as_bytes(),
        ] {
            assert!(
                offsets_of(&bytes, needle).is_empty(),
                "{} holds the registry password",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_functions_answer_for_the_local_registry() {
    let release = tempfile::tempdir().unwrap();
    release_with(release.path(), &["nginx:1.25"], &[]);
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let installed = install_local(
        state.path(),
        release.path(),
        &out,
        &[
            "--registry-host",
            "registry.internal:5000",
            "--registry-namespace",
            "apps/prod",
        ],
    );
    assert_eq!(installed.status.code(), Some(0), "{}", said(&installed));
    let info: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out.join("rendered/this-cluster/registry-info-configmap.yaml"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        info["data"],
        serde_json::json!({
            "has": "true",
            "host": "registry.internal:5000",
            "namespace": "apps/prod",
            "image": "registry.internal:5000/apps/prod/sidecar:9",
            "untagged": "registry.internal:5000/apps/prod/sidecar:latest",
            "secret": "my-app-registry",
        })
    );
    // Without credentials, the secret still names the registry's pods use, with no auth.
    let config: serde_json::Value = serde_json::from_slice(&rendered_docker_config(&out)).unwrap();
    assert_eq!(config, serde_json::json!({ "auths": {} }));
    assert_eq!(
        deployment_images(&out),
        ["registry.internal:5000/apps/prod/nginx:1.25"]
    );

    // The same release in proxy mode: HasLocalRegistry is false, LocalImageName is refused.
    let proxied = run_within(
        windlass(state.path())
            .args(["install", "--offline", "--json", "--out"])
            .arg(work.path().join("proxied"))
            .arg(release.path()),
        120,
    );
    assert_eq!(proxied.status.code(), Some(3), "{}", said(&proxied));
    assert!(
        said(&proxied).contains(
            "LocalImageName is not supported by windlass without a local registry (--registry-host)"
        ),
        "{}",
        said(&proxied)
    );

    // Without a license the app is `app`: ImagePullSecretName names the secret windlass writes.
    std::fs::remove_file(release.path().join("userdata/license.yaml")).unwrap();
    let unlicensed_out = work.path().join("unlicensed");
    let unlicensed = install_local(
        state.path(),
        release.path(),
        &unlicensed_out,
        &["--registry-host", "registry.internal:5000"],
    );
    assert_eq!(unlicensed.status.code(), Some(0), "{}", said(&unlicensed));
    let info: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(
            unlicensed_out.join("rendered/this-cluster/registry-info-configmap.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(info["data"]["secret"], "app-registry", "{info:#}");
    assert!(
        unlicensed_out
            .join("rendered/this-cluster/app-registry-secret.yaml")
            .exists()
    );
}

#[test]
fn two_images_with_the_same_last_component_are_refused_naming_both() {
    let release = tempfile::tempdir().unwrap();
    release_with(
        release.path(),
        &["quay.io/a/redis:7", "docker.io/library/redis:7", "redis:7"],
        &[],
    );
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let refused = run_within(
        windlass(state.path())
            .args(["install", "--offline", "--out"])
            .arg(work.path().join("out"))
            .args([
                "--registry-host",
                "registry.internal",
                "--registry-namespace",
                "team",
            ])
            .arg(release.path()),
        120,
    );
    assert_eq!(refused.status.code(), Some(3), "{}", said(&refused));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("quay.io/a/redis:7 (found at app.yaml")
            && stderr.contains("docker.io/library/redis:7 (found at app.yaml")
            && stderr.contains("would both become registry.internal/team/redis"),
        "{stderr}"
    );
    // `redis:7` is the same image as docker.io/library/redis:7: only one collision is named.
    assert_eq!(stderr.matches("would both become").count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_registry_install_replays_with_and_without_the_password_file() {
    let release = tempfile::tempdir().unwrap();
    release_with(
        release.path(),
        &["nginx:1.25", "vendor.example/acme/api:2.0"],
        &["busybox:1.36"],
    );
    vendor_secret(release.path());
    let work = tempfile::tempdir().unwrap();
    let password = password_file(work.path());
    let state = tempfile::tempdir().unwrap();
    let installed = install_local(
        state.path(),
        release.path(),
        &work.path().join("out"),
        &[
            "--registry-host",
            "registry.internal",
            "--registry-username",
            HTPASSWD_USERNAME,
            "--registry-password-file",
            password.to_str().unwrap(),
        ],
    );
    assert_eq!(installed.status.code(), Some(0), "{}", said(&installed));
    let install: serde_json::Value = serde_json::from_slice(&installed.stdout).unwrap();
    let install_id = install["install_id"].as_str().unwrap().to_string();

    // Without the password file: identical, the secrets left unchecked and said so.
    let replayed = run_within(
        windlass(state.path()).args(["replay", &install_id, "--json"]),
        120,
    );
    assert_eq!(replayed.status.code(), Some(0), "{}", said(&replayed));
    let report: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert!(
        report["secret_files_unchecked"].as_u64().unwrap() >= 2,
        "{report:#}"
    );
    assert!(
        report["unverified"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line.as_str().unwrap().contains("--registry-password-file")),
        "{report:#}"
    );

    // With it (and without the license: the secrets derive from the registry's credentials):
    // every secret file compared by keyed fingerprint.
    let replayed = run_within(
        windlass(state.path())
            .args(["replay", &install_id, "--json", "--registry-password-file"])
            .arg(&password),
        120,
    );
    assert_eq!(replayed.status.code(), Some(0), "{}", said(&replayed));
    let report: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["secret_files_unchecked"], 0, "{report:#}");
    // The pull secret files, and the vendor's secret in base/ and rendered/.
    assert!(
        report["secret_files_compared"].as_u64().unwrap() >= 4,
        "{report:#}"
    );

    // Another password is refused by fingerprint, without quoting it.
    let other = work.path().join("other-password");
    std::fs::write(&other, "not-the-password\n").unwrap();
    let refused = run_within(
        windlass(state.path())
            .args(["replay", &install_id, "--registry-password-file"])
            .arg(&other),
        120,
    );
    assert_eq!(refused.status.code(), Some(3), "{}", said(&refused));
    let stderr = said(&refused);
    assert!(
        stderr.contains("--registry-password-file: the password's fingerprint is"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");

    // A what-if with another local registry host re-plans every image.
    let what_if = run_within(
        windlass(state.path()).args([
            "replay",
            &install_id,
            "--json",
            "--registry-host",
            "mirror.internal",
        ]),
        120,
    );
    assert_eq!(what_if.status.code(), Some(0), "{}", said(&what_if));
    let report: serde_json::Value = serde_json::from_slice(&what_if.stdout).unwrap();
    assert_eq!(report["what_if"], true);
    assert!(
        report["differences"]
            .to_string()
            .contains("mirror.internal/nginx"),
        "{report:#}"
    );
}

#[test]
fn the_config_file_sets_local_registry_mode_and_flags_override_it() {
    let release = tempfile::tempdir().unwrap();
    release_with(release.path(), &["nginx:1.25"], &[]);
    let work = tempfile::tempdir().unwrap();
    password_file(work.path());
    let config = work.path().join("windlass.yaml");
    std::fs::write(
        &config,
        format!(
            "local_registry:\n  host: registry.internal\n  namespace: from-file\n  username: {HTPASSWD_USERNAME}\n  password_file: registry-password\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let installed = install_local(
        state.path(),
        release.path(),
        &out,
        &[
            "--config",
            config.to_str().unwrap(),
            "--registry-namespace",
            "from-flag",
        ],
    );
    assert_eq!(installed.status.code(), Some(0), "{}", said(&installed));
    assert_eq!(
        deployment_images(&out),
        ["registry.internal/from-flag/nginx:1.25"]
    );
    let config_json: serde_json::Value =
        serde_json::from_slice(&rendered_docker_config(&out)).unwrap();
    assert_eq!(
        config_json["auths"]["registry.internal"]["auth"],
        STANDARD.encode(format!("{HTPASSWD_USERNAME}:{HTPASSWD_PASSWORD}"))
    );

    // An inline password is refused by name, without quoting it.
    std::fs::write(
        &config,
        "local_registry:\n  host: registry.internal\n  username: u\n  password: hunter2-inline\n",
    )
    .unwrap();
    let refused = install_local(
        state.path(),
        release.path(),
        &work.path().join("out2"),
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", said(&refused));
    let stderr = said(&refused);
    assert!(
        stderr.contains("local_registry.password: a password is never written in a config file"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2-inline"), "{stderr}");

    // Bad command lines: a namespace without a host, a username without a password file.
    for (arguments, expected) in [
        (
            vec!["--registry-namespace", "team"],
            "needs its host: give --registry-host HOST",
        ),
        (
            vec![
                "--registry-host",
                "registry.internal",
                "--registry-username",
                "u",
            ],
            "--registry-username and --registry-password-file go together",
        ),
    ] {
        let refused = install_local(
            state.path(),
            release.path(),
            &work.path().join("out3"),
            &arguments,
        );
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{arguments:?}: {}",
            said(&refused)
        );
        assert!(said(&refused).contains(expected), "{}", said(&refused));
    }
    // A host with a path, and a password file that does not exist: invalid input, named.
    let refused = install_local(
        state.path(),
        release.path(),
        &work.path().join("out4"),
        &["--registry-host", "registry.internal/team"],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", said(&refused));
    assert!(
        said(&refused)
            .contains("local registry host \"registry.internal/team\" is not a host name"),
        "{}",
        said(&refused)
    );
    let refused = install_local(
        state.path(),
        release.path(),
        &work.path().join("out5"),
        &[
            "--registry-host",
            "registry.internal",
            "--registry-username",
            "u",
            "--registry-password-file",
            work.path().join("missing").to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", said(&refused));
    assert!(
        said(&refused).contains("registry password file"),
        "{}",
        said(&refused)
    );
}
