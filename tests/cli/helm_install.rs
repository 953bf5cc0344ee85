//! `kots.io/v1beta1` HelmCharts with `useHelmInstall: true`, end to end with the real helm 4
//! (`target/tools/bin/helm`): each chart and subchart gets its own midstream under
//! `overlays/midstream/charts/<path>/` (its own `images:` and pull secret
//! `<slug>-<chart>-registry`), built into `rendered/this-cluster/charts/<path>/` — checked against
//! the real `kubectl kustomize` of each midstream — and `--target kube` installs each chart with
//! `helm upgrade --install` after the plain manifests, in weight order, against
//! `windlass-test-apiserver`, a FAKE Kubernetes API server (no real one can be installed on these
//! machines) that helm's release storage reaches with protobuf bodies. `--target dir:` writes each
//! chart for a GitOps tool; a replay of the rendering never runs helm. A chart a later release
//! drops is removed with `helm uninstall`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use windlass_test_apiserver::{Options, TestApiServer};
use windlass_testkit::charts::chart_archive;

use super::{OFFLINE_INSTALL, files_under, json, payloads_of_type, quickstart, run, windlass};

/// The chart `shop` 0.3.0: a Deployment, a ConfigMap whose rendered text holds `{{ }}`, and the
/// subchart `worker` under the alias `jobs` with a Deployment of its own.
fn shop_chart() -> Vec<(String, String)> {
    let file = |path: &str, contents: &str| (format!("shop/{path}"), contents.to_string());
    let deployment = |name: &str, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{{{ .Release.Name }}}}-{name}\nspec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n"
        )
    };
    vec![
        file(
            "Chart.yaml",
            "apiVersion: v2\nname: shop\nversion: 0.3.0\ndependencies:\n  - name: worker\n    version: 0.1.0\n    alias: jobs\n",
        ),
        file(
            "values.yaml",
            "image: registry.vendor.example/team/shop:2.0\njobs:\n  image: registry.vendor.example/team/worker:1.5\n",
        ),
        file(
            "templates/deployment.yaml",
            &deployment("web", "{{ .Values.image }}"),
        ),
        file(
            "templates/greeting.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  template: {{ \"Hello {{ name }}\" | quote }}\n",
        ),
        file(
            "charts/worker/Chart.yaml",
            "apiVersion: v2\nname: worker\nversion: 0.1.0\n",
        ),
        file("charts/worker/values.yaml", "image: busybox:1\n"),
        file(
            "charts/worker/templates/deployment.yaml",
            &deployment("worker", "{{ .Values.image }}"),
        ),
    ]
}

/// The chart `tiny` 1.0.0: one ConfigMap.
pub(crate) fn tiny_chart() -> Vec<(String, String)> {
    vec![
        (
            "tiny/Chart.yaml".into(),
            "apiVersion: v2\nname: tiny\nversion: 1.0.0\n".into(),
        ),
        (
            "tiny/templates/config.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  size: small\n".into(),
        ),
    ]
}

/// The quickstart release plus `shop` (weight 10) and `tiny` (weight -5, release `first`), both
/// `useHelmInstall: true`.
pub(crate) fn release_with_charts() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    for file in files_under(&quickstart()) {
        let relative = file.strip_prefix(quickstart()).unwrap();
        let target = release.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    std::fs::create_dir_all(release.join("charts")).unwrap();
    std::fs::create_dir_all(release.join("kots")).unwrap();
    std::fs::write(
        release.join("charts/shop-0.3.0.tgz"),
        chart_archive(&shop_chart()),
    )
    .unwrap();
    std::fs::write(
        release.join("charts/tiny-1.0.0.tgz"),
        chart_archive(&tiny_chart()),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/shop.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: shop\nspec:\n  chart:\n    name: shop\n    chartVersion: 0.3.0\n  useHelmInstall: true\n  weight: 10\n  helmUpgradeFlags: [--description, shop by windlass]\n",
    )
    .unwrap();
    std::fs::write(
        release.join("kots/tiny.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: tiny\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n    releaseName: first\n  useHelmInstall: true\n  weight: -5\n",
    )
    .unwrap();
    (dir, release)
}

/// The FAKE API server, with a kubeconfig for it written in `dir`.
pub(crate) fn fake_cluster(dir: &Path) -> (TestApiServer, PathBuf) {
    let server = TestApiServer::start(Options::default()).expect("the fake API server starts");
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    (server, kubeconfig)
}

/// `windlass install --offline --json --helm <helm> RELEASE --target kube --kubeconfig FILE
/// EXTRA...`.
pub(crate) fn install_with_helm(
    state: &Path,
    release: &Path,
    kubeconfig: &Path,
    extra: &[&str],
) -> Value {
    json(output_within(
        windlass(state)
            .args(OFFLINE_INSTALL)
            .args(["--json", "--helm"])
            .arg(helm())
            .arg(release)
            .args(["--target", "kube", "--kubeconfig"])
            .arg(kubeconfig)
            .args(extra),
    ))
}

pub(crate) fn helm() -> PathBuf {
    windlass_testkit::helm()
}

pub(crate) fn output_within(command: &mut std::process::Command) -> std::process::Output {
    windlass_testkit::output_within(command, Duration::from_secs(120), "windlass")
}

fn yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_saphyr::from_str(&text).unwrap()
}

/// The objects of every file directly in `dir`, as helm would print them (braces unescaped).
fn chart_objects(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .unwrap()
                .replace("{{`{{`}}", "{{")
                .replace("{{`}}`}}", "}}");
            serde_saphyr::from_str(&text).unwrap()
        })
        .collect()
}

fn kubectl_kustomize(dir: &Path) -> Vec<Value> {
    let output = std::process::Command::new(windlass_testkit::kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap()
}

fn sorted(mut objects: Vec<Value>) -> Vec<Value> {
    objects.sort_by_key(|object| {
        format!(
            "{}/{}",
            object["kind"].as_str().unwrap_or(""),
            object["metadata"]["name"].as_str().unwrap_or("")
        )
    });
    objects
}

#[test]
fn each_helm_install_chart_and_subchart_gets_its_own_midstream_built_as_kubectl_kustomize_does() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release) = release_with_charts();
    // A copy of helm that is deleted after the install: the replay cannot run it.
    let helm_copy = dir.path().join("helm");
    std::fs::copy(helm(), &helm_copy).unwrap();
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .args(["--json", "--helm"])
        .arg(&helm_copy)
        .arg(&release)));
    assert_eq!(install["status"], "completed", "{install:#}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    let install_id = install["install_id"].as_str().unwrap().to_string();

    // The charts' bases stand apart from the common one and from each other.
    let base = yaml(&out.join("base/kustomization.yaml"));
    let resources: Vec<&str> = base["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| resource.as_str().unwrap())
        .collect();
    assert!(
        resources
            .iter()
            .all(|resource| !resource.starts_with("charts")),
        "{resources:?}"
    );
    let mut chart_resources: Vec<String> =
        yaml(&out.join("base/charts/shop/kustomization.yaml"))["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|resource| resource.as_str().unwrap().to_string())
            .collect();
    chart_resources.sort();
    // Not the subchart: it is a base of its own.
    assert_eq!(
        chart_resources,
        ["templates/deployment.yaml", "templates/greeting.yaml"]
    );
    // The common midstream patches none of the charts' workloads.
    let common = std::fs::read_to_string(out.join("overlays/midstream/pullsecrets.yaml")).unwrap();
    assert!(!common.contains("shop-"), "{common}");

    // One midstream per chart and subchart, each with its own images: and secret.
    let shop = yaml(&out.join("overlays/midstream/charts/shop/kustomization.yaml"));
    assert_eq!(
        shop["bases"],
        serde_json::json!(["../../../../base/charts/shop"])
    );
    assert_eq!(
        shop["images"],
        serde_json::json!([{
            "name": "registry.vendor.example/team/shop",
            "newName": "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/shop"
        }])
    );
    let jobs = yaml(&out.join("overlays/midstream/charts/shop/charts/jobs/kustomization.yaml"));
    assert_eq!(
        jobs["images"][0]["name"],
        "registry.vendor.example/team/worker"
    );
    for (secret, name) in [
        (
            "overlays/midstream/charts/shop/secret.yaml",
            "my-app-shop-registry",
        ),
        (
            "overlays/midstream/charts/shop/charts/jobs/secret.yaml",
            "my-app-jobs-registry",
        ),
        (
            "overlays/midstream/charts/first/secret.yaml",
            "my-app-first-registry",
        ),
    ] {
        let path = out.join(secret);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "{secret}"
        );
        let object = yaml(&path);
        assert_eq!(object["metadata"]["name"], name);
        assert_eq!(
            object["metadata"]["annotations"]["helm.sh/hook"],
            "pre-install,pre-upgrade"
        );
        assert_eq!(object["type"], "kubernetes.io/dockerconfigjson");
    }

    // What is rendered for helm is what kubectl kustomize builds of each midstream.
    for (midstream, rendered) in [
        ("charts/shop", "charts/shop/templates"),
        (
            "charts/shop/charts/jobs",
            "charts/shop/charts/jobs/templates",
        ),
        ("charts/first", "charts/first/templates"),
    ] {
        let expected = kubectl_kustomize(&out.join("overlays/midstream").join(midstream));
        let actual = chart_objects(&out.join("rendered/this-cluster").join(rendered));
        assert_eq!(sorted(actual), sorted(expected), "{midstream}");
    }
    let web =
        yaml(&out.join("rendered/this-cluster/charts/shop/templates/shop-web-deployment.yaml"));
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/shop:2.0"
    );
    assert_eq!(
        web["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{"name": "my-app-shop-registry"}])
    );
    // Braces helm must print as they are are escaped.
    let greeting = std::fs::read_to_string(
        out.join("rendered/this-cluster/charts/shop/templates/shop-greeting-configmap.yaml"),
    )
    .unwrap();
    assert!(
        greeting.contains("Hello {{`{{`}} name {{`}}`}}"),
        "{greeting}"
    );
    assert_eq!(
        yaml(&out.join("rendered/this-cluster/charts/shop/Chart.yaml"))["name"],
        "shop"
    );
    assert_eq!(
        yaml(&out.join("rendered/this-cluster/charts/shop/charts/jobs/Chart.yaml"))["name"],
        "jobs"
    );
    // The plain manifests' rendered/ holds no chart object.
    assert!(
        !out.join("rendered/this-cluster/shop-web-deployment.yaml")
            .exists()
    );

    // A replay renders the same midstreams and charts without helm.
    std::fs::remove_file(&helm_copy).unwrap();
    let report = json(run(windlass(state.path())
        .args(["replay", &install_id, "--json"])
        .env("WINDLASS_HELM", "/nonexistent/helm")));
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");

    // windlass images names each chart's images with their chart and template.
    let images = json(run(windlass(state.path())
        .args(["images", "--json", "--helm"])
        .arg(helm())
        .arg(&release)));
    let worker = images
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["image"] == "registry.vendor.example/team/worker:1.5")
        .expect("the subchart's image is listed");
    assert_eq!(worker["uses"][0]["chart"], "shop");
}

#[test]
fn helm_install_charts_go_to_the_cluster_with_helm_after_the_manifests_by_weight() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts();
    let install = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(install["status"], "completed", "{install:#}");
    let install_id = install["install_id"].as_str().unwrap().to_string();

    // The charts' workloads carry the rewritten image and their chart's pull secret.
    for (name, image, secret) in [
        (
            "shop-web",
            "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/shop:2.0",
            "my-app-shop-registry",
        ),
        (
            "shop-worker",
            "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/worker:1.5",
            "my-app-jobs-registry",
        ),
    ] {
        let deployment = server
            .get("apps/v1", "Deployment", "default", name)
            .unwrap_or_else(|| panic!("Deployment {name} is on the server"));
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["image"], image, "{name}");
        assert_eq!(
            pod["imagePullSecrets"],
            serde_json::json!([{"name": secret}]),
            "{name}"
        );
        assert!(
            server.get("v1", "Secret", "default", secret).is_some(),
            "secret {secret}"
        );
    }
    let greeting = server
        .get("v1", "ConfigMap", "default", "shop-greeting")
        .unwrap();
    assert_eq!(greeting["data"]["template"], "Hello {{ name }}");
    // helm's release records, written as protobuf.
    for release_secret in ["sh.helm.release.v1.shop.v1", "sh.helm.release.v1.first.v1"] {
        let secret = server
            .get("v1", "Secret", "default", release_secret)
            .unwrap_or_else(|| panic!("{release_secret} is on the server"));
        assert_eq!(secret["type"], "helm.sh/release.v1");
    }
    let listed = std::process::Command::new(helm())
        .args(["list", "--namespace", "default"])
        .env_clear()
        .env("HOME", dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    for line in ["shop-0.3.0", "tiny-1.0.0"] {
        assert!(
            listed_text
                .lines()
                .any(|row| row.contains(line) && row.contains("deployed")),
            "{listed_text}"
        );
    }

    // After the plain manifests, by weight: tiny (release first, -5) before shop (10).
    let requests = server.requests();
    let last_windlass = requests
        .iter()
        .rposition(|request| {
            !request.user_agent.to_lowercase().contains("helm") && request.method == "PATCH"
        })
        .expect("windlass applied the manifests");
    let first_helm = requests
        .iter()
        .position(|request| {
            request.user_agent.to_lowercase().contains("helm") && request.method != "GET"
        })
        .expect("helm wrote");
    assert!(
        last_windlass < first_helm,
        "helm wrote before the manifests were applied"
    );
    // The release `first` was recorded deployed (its record's last write) before helm created
    // anything of `shop` (its pull secret is its first hook).
    let version = |kind: &str, name: &str| -> u64 {
        let api_version = if kind == "Deployment" {
            "apps/v1"
        } else {
            "v1"
        };
        server.get(api_version, kind, "default", name).unwrap()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        version("Secret", "sh.helm.release.v1.first.v1")
            < version("Secret", "my-app-shop-registry")
    );
    assert!(version("Deployment", "api") < version("Secret", "my-app-first-registry"));
    let events = json(run(windlass(state.path()).args([
        "events",
        &install_id,
        "--json",
    ])));
    let installed = payloads_of_type(events.as_array().unwrap(), "HelmReleaseInstalled");
    let order: Vec<&str> = installed
        .iter()
        .map(|record| record["release_name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["first", "shop"]);
    assert_eq!(installed[1]["outcome"], "installed");
    assert_eq!(installed[1]["revision"], 1);
    assert_eq!(installed[1]["status"], "deployed");
    assert_eq!(installed[1]["chart"], "shop-0.3.0");
    assert_eq!(installed[0]["weight"], -5);
    // spec.helmUpgradeFlags come after windlass's arguments, and helm took them.
    let arguments = installed[1]["arguments"].as_array().unwrap();
    assert_eq!(
        arguments[arguments.len() - 2..],
        [
            Value::from("--description"),
            Value::from("shop by windlass")
        ]
    );
    let release_secret = server
        .get("v1", "Secret", "default", "sh.helm.release.v1.shop.v1")
        .unwrap();
    assert_eq!(release_secret["metadata"]["labels"]["status"], "deployed");
    let record_text = installed[1].to_string();
    assert!(!record_text.contains("dockerconfigjson"), "{record_text}");
}

#[test]
fn the_directory_target_writes_each_helm_install_chart_for_helm() {
    let state = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let target_dir = target.path().join("gitops");
    let (_dir, release) = release_with_charts();
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .args(["--json", "--helm"])
        .arg(helm())
        .arg(&release)
        .arg("--target")
        .arg(format!("dir:{}", target_dir.display()))));
    assert_eq!(install["status"], "completed", "{install:#}");
    for file in [
        "charts/shop/Chart.yaml",
        "charts/shop/templates/shop-web-deployment.yaml",
        "charts/shop/charts/jobs/Chart.yaml",
        "charts/shop/charts/jobs/templates/shop-worker-deployment.yaml",
        "charts/first/templates/first-config-configmap.yaml",
    ] {
        assert!(target_dir.join(file).is_file(), "{file} was not written");
    }
    use std::os::unix::fs::PermissionsExt;
    let secret = target_dir.join("charts/shop/templates/my-app-shop-registry-secret.yaml");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The written chart is one helm renders as it is.
    let rendered = windlass_testkit::helm_template(&target_dir.join("charts/shop"), "shop", None);
    assert!(
        rendered
            .iter()
            .any(|object| object["metadata"]["name"] == "shop-greeting"
                && object["data"]["template"] == "Hello {{ name }}"),
        "{rendered:#?}"
    );
    let install_id = install["install_id"].as_str().unwrap();
    let events = json(run(
        windlass(state.path()).args(["events", install_id, "--json"])
    ));
    let written = payloads_of_type(events.as_array().unwrap(), "HelmReleaseInstalled");
    assert_eq!(written.len(), 2);
    assert_eq!(written[1]["outcome"], "written");
    assert_eq!(written[1]["written_to"], "charts/shop");
}

/// The testkit's sample chart (CRDs in the chart's and a subchart's `crds/`, a `pre-install` Job
/// hook) with `useHelmInstall: true`: the `crds/` bases are rendered into each chart's `crds/`,
/// which helm creates first; then helm waits for the Job hook to complete, which never happens
/// on the FAKE API server (no controllers), so helm stops at its `--timeout` (`--wait-timeout`)
/// and the apply stage fails naming the HelmChart, after recording the failure.
#[test]
fn a_failing_helm_install_is_recorded_and_fails_the_apply_naming_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts();
    std::fs::remove_file(release.join("kots/shop.yaml")).unwrap();
    std::fs::remove_file(release.join("kots/tiny.yaml")).unwrap();
    std::fs::write(
        release.join("charts/app-1.2.0.tgz"),
        chart_archive(&windlass_testkit::charts::sample_chart("1.2.0")),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: app\nspec:\n  chart:\n    name: app\n    chartVersion: 1.2.0\n  useHelmInstall: true\n",
    )
    .unwrap();
    let output = output_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .args(["--helm"])
            .arg(helm())
            .arg(&release)
            .args(["--target", "kube", "--wait-timeout", "2", "--kubeconfig"])
            .arg(&kubeconfig),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HelmChart app (chart rendered/this-cluster/charts/app): helm upgrade --install app failed")
            && stderr.contains("app-migrate"),
        "{stderr}"
    );
    // Both crds/ directories reached the cluster through helm.
    for crd in ["widgets.example.com", "backups.db.example.com"] {
        assert!(
            server
                .get(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    "",
                    crd
                )
                .is_some(),
            "{crd}"
        );
    }
    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    let install_id = history[0]["install_id"].as_str().unwrap().to_string();
    let events = json(run(windlass(state.path()).args([
        "events",
        &install_id,
        "--json",
    ])));
    let failed = payloads_of_type(events.as_array().unwrap(), "HelmReleaseInstalled");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["outcome"], "failed");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("app-migrate"),
        "{failed:#?}"
    );
}

/// A chart the previous apply installed that the next release no longer has is uninstalled with
/// `helm uninstall` before the remaining charts are upgraded (as KOTS does): its objects and its
/// release records leave the FAKE API server, the chart that stays gets a new revision, the
/// uninstall is recorded, and an apply after that uninstalls nothing more.
#[test]
fn a_chart_dropped_from_the_release_is_uninstalled_with_helm() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts();
    let install = |release: &Path| install_with_helm(state.path(), release, &kubeconfig, &[]);
    let first = install(&release);
    assert_eq!(first["status"], "completed", "{first:#}");
    let first_id = first["install_id"].as_str().unwrap().to_string();
    assert!(
        server
            .get("apps/v1", "Deployment", "default", "shop-web")
            .is_some()
    );

    let shop_files: Vec<(PathBuf, Vec<u8>)> = ["kots/shop.yaml", "charts/shop-0.3.0.tgz"]
        .iter()
        .map(|file| {
            (
                release.join(file),
                std::fs::read(release.join(file)).unwrap(),
            )
        })
        .collect();
    let drop_shop = || {
        for (path, _) in &shop_files {
            std::fs::remove_file(path).unwrap();
        }
    };
    drop_shop();
    // A dry run records what it would uninstall and runs no helm.
    let dry = install_with_helm(state.path(), &release, &kubeconfig, &["--dry-run"]);
    assert_eq!(dry["status"], "completed", "{dry:#}");
    let events = json(run(windlass(state.path()).args([
        "events",
        dry["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let would = payloads_of_type(events.as_array().unwrap(), "HelmReleaseUninstalled");
    assert_eq!(would.len(), 1, "{would:#?}");
    assert_eq!(would[0]["outcome"], "not_run_dry_run");
    assert!(
        server
            .get("apps/v1", "Deployment", "default", "shop-web")
            .is_some()
    );
    let second = install(&release);
    assert_eq!(second["status"], "completed", "{second:#}");
    let second_id = second["install_id"].as_str().unwrap().to_string();
    let events = json(run(
        windlass(state.path()).args(["events", &second_id, "--json"])
    ));
    let events = events.as_array().unwrap();
    let uninstalled = payloads_of_type(events, "HelmReleaseUninstalled");
    assert_eq!(uninstalled.len(), 1, "{uninstalled:#?}");
    assert_eq!(uninstalled[0]["release_name"], "shop");
    assert_eq!(uninstalled[0]["helm_chart"], "shop");
    assert_eq!(uninstalled[0]["namespace"], "default");
    assert_eq!(uninstalled[0]["weight"], 10);
    assert_eq!(uninstalled[0]["installed_by"], first_id.as_str());
    assert_eq!(
        uninstalled[0]["outcome"], "uninstalled",
        "{:#}",
        uninstalled[0]
    );
    assert_eq!(uninstalled[0]["arguments"][0], "uninstall");
    // Before the charts that stay are upgraded.
    let position = |event_type: &str| {
        events
            .iter()
            .position(|event| event["type"] == event_type)
            .unwrap()
    };
    assert!(position("HelmReleaseUninstalled") < position("HelmReleaseInstalled"));
    let installed = payloads_of_type(events, "HelmReleaseInstalled");
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0]["release_name"], "first");
    assert_eq!(installed[0]["revision"], 2);
    // `show` lists both.
    let shown = run(windlass(state.path()).args(["show", &second_id]));
    let shown = String::from_utf8_lossy(&shown.stdout);
    for line in [
        "helm      uninstalled shop in default (HelmChart shop)",
        "helm      installed   first in default (tiny-1.0.0) revision 2",
    ] {
        assert!(
            shown.lines().any(|shown| shown == line),
            "{line:?} in\n{shown}"
        );
    }
    // `diff` lists the uninstall, attributed to the release's change.
    let diff = json(run(
        windlass(state.path()).args(["diff", &first_id, &second_id, "--json"])
    ));
    let helm_changes: Vec<&Value> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| {
            change["kind"]
                .as_str()
                .unwrap()
                .starts_with("helm_release_")
        })
        .collect();
    assert_eq!(helm_changes.len(), 1, "{helm_changes:#?}");
    assert_eq!(helm_changes[0]["kind"], "helm_release_uninstalled");
    assert_eq!(helm_changes[0]["subject"], "release shop in default");
    assert_eq!(helm_changes[0]["detail"], "HelmChart shop: uninstalled");
    assert_eq!(helm_changes[0]["attribution"], "upstream changed");
    let shown = json(run(
        windlass(state.path()).args(["show", &second_id, "--json"])
    ));
    assert_eq!(
        shown["apply"]["helm_uninstalled"][0]["release_name"],
        "shop"
    );
    assert_eq!(shown["apply"]["helm_releases"][0]["release_name"], "first");

    for (api_version, kind, name) in [
        ("apps/v1", "Deployment", "shop-web"),
        ("apps/v1", "Deployment", "shop-worker"),
        ("v1", "ConfigMap", "shop-greeting"),
        ("v1", "Secret", "sh.helm.release.v1.shop.v1"),
    ] {
        assert!(
            server.get(api_version, kind, "default", name).is_none(),
            "{kind} {name} is still on the server"
        );
    }
    assert!(
        server
            .get("v1", "ConfigMap", "default", "first-config")
            .is_some()
    );
    assert!(
        server
            .get("v1", "Secret", "default", "sh.helm.release.v1.first.v2")
            .is_some()
    );

    // The next apply compares with the second install, which installed `first` alone.
    let third = install(&release);
    assert_eq!(third["status"], "completed", "{third:#}");
    let third_id = third["install_id"].as_str().unwrap();
    let events = json(run(
        windlass(state.path()).args(["events", third_id, "--json"])
    ));
    assert!(payloads_of_type(events.as_array().unwrap(), "HelmReleaseUninstalled").is_empty());

    // A dropped release someone already uninstalled is recorded as not found, not as a failure.
    for (path, bytes) in &shop_files {
        std::fs::write(path, bytes).unwrap();
    }
    let fourth = install(&release);
    assert_eq!(fourth["status"], "completed");
    let diff = json(run(windlass(state.path()).args([
        "diff",
        third_id,
        fourth["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let added: Vec<&Value> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["kind"] == "helm_release_added")
        .collect();
    assert_eq!(added.len(), 1, "{diff:#}");
    assert_eq!(added[0]["subject"], "release shop in default");
    let by_hand = std::process::Command::new(helm())
        .args(["uninstall", "shop", "--namespace", "default"])
        .env_clear()
        .env("HOME", dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert!(
        by_hand.status.success(),
        "{}",
        String::from_utf8_lossy(&by_hand.stderr)
    );
    drop_shop();
    let fifth = install(&release);
    assert_eq!(fifth["status"], "completed", "{fifth:#}");
    let events = json(run(windlass(state.path()).args([
        "events",
        fifth["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let uninstalled = payloads_of_type(events.as_array().unwrap(), "HelmReleaseUninstalled");
    assert_eq!(uninstalled.len(), 1, "{uninstalled:#?}");
    assert_eq!(
        uninstalled[0]["outcome"], "not_found",
        "{:#}",
        uninstalled[0]
    );
}

/// A chart installed by an apply that then failed (a later chart's helm failed) is not in any
/// completed apply's records, nor is the failed chart's release helm left behind; the next
/// release that drops them still has them uninstalled, recorded as installed by the failed
/// install.
#[test]
fn a_chart_a_failed_apply_installed_is_uninstalled_when_a_later_release_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts();
    // `app` waits for a hook Job the fake cluster never runs: it fails after `first` and `shop`.
    std::fs::write(
        release.join("charts/app-1.2.0.tgz"),
        chart_archive(&windlass_testkit::charts::sample_chart("1.2.0")),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: app\nspec:\n  chart:\n    name: app\n    chartVersion: 1.2.0\n  useHelmInstall: true\n  weight: 20\n",
    )
    .unwrap();
    let failed = output_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .args(["--json", "--helm"])
            .arg(helm())
            .arg(&release)
            .args(["--target", "kube", "--wait-timeout", "2", "--kubeconfig"])
            .arg(&kubeconfig),
    );
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let failed: Value = serde_json::from_slice(&failed.stdout).unwrap();
    let failed_id = failed["install_id"].as_str().unwrap().to_string();
    assert!(
        server
            .get("apps/v1", "Deployment", "default", "shop-web")
            .is_some(),
        "shop was installed before app failed"
    );

    for file in [
        "kots/shop.yaml",
        "charts/shop-0.3.0.tgz",
        "kots/app.yaml",
        "charts/app-1.2.0.tgz",
    ] {
        std::fs::remove_file(release.join(file)).unwrap();
    }
    let next = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(next["status"], "completed", "{next:#}");
    let events = json(run(windlass(state.path()).args([
        "events",
        next["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let uninstalled = payloads_of_type(events.as_array().unwrap(), "HelmReleaseUninstalled");
    let names: Vec<&str> = uninstalled
        .iter()
        .map(|record| record["release_name"].as_str().unwrap())
        .collect();
    // Higher weight first: `app`, whose own install failed and left a failed release, then
    // `shop`; both recorded as installed by the failed install.
    assert_eq!(names, ["app", "shop"], "{uninstalled:#?}");
    for record in &uninstalled {
        assert_eq!(record["installed_by"], failed_id.as_str());
        assert_eq!(record["outcome"], "uninstalled", "{record:#}");
    }
    assert!(
        server
            .get("v1", "Secret", "default", "sh.helm.release.v1.app.v1")
            .is_none(),
        "the failed release's record is gone"
    );
    assert!(
        server
            .get("apps/v1", "Deployment", "default", "shop-web")
            .is_none()
    );
    assert!(
        server
            .get("v1", "ConfigMap", "default", "first-config")
            .is_some(),
        "the chart that stays"
    );
}

/// A chart moved from `kots.io/v1beta1` to `kots.io/v1beta2` under the same release name (KOTS's
/// migration): the release is not uninstalled as "dropped" (that would remove what the v1beta2
/// chart is); the v1beta2 chart upgrades it, from `helm/first/`.
#[test]
fn a_chart_moved_to_v1beta2_is_upgraded_by_helm_and_not_uninstalled() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts();
    let first = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(first["status"], "completed", "{first:#}");
    std::fs::write(
        release.join("kots/tiny.yaml"),
        "apiVersion: kots.io/v1beta2\nkind: HelmChart\nmetadata:\n  name: tiny\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n  releaseName: first\n  weight: -5\n",
    )
    .unwrap();
    let second = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(second["status"], "completed", "{second:#}");
    let events = json(run(windlass(state.path()).args([
        "events",
        second["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let uninstalled = payloads_of_type(events.as_array().unwrap(), "HelmReleaseUninstalled");
    assert!(uninstalled.is_empty(), "{uninstalled:#?}");
    let installed = payloads_of_type(events.as_array().unwrap(), "HelmReleaseInstalled");
    let tiny = installed
        .iter()
        .find(|record| record["release_name"] == "first")
        .expect("the v1beta2 chart was handed to helm");
    assert_eq!(tiny["chart_dir"], "helm/first", "{tiny:#}");
    assert_eq!(tiny["outcome"], "installed", "{tiny:#}");
    assert_eq!(tiny["revision"], 2, "an upgrade of the release: {tiny:#}");
    let releases = crate::helm_v1beta2::helm_releases(&kubeconfig);
    let first_release = releases
        .iter()
        .find(|release| release["name"] == "first")
        .unwrap_or_else(|| panic!("{releases:#?}"));
    assert_eq!(first_release["revision"], "2", "{first_release:#}");
    assert_eq!(first_release["status"], "deployed", "{first_release:#}");
}

/// Asserts that chart `shop` is installed in `namespace` with its own pull secret there: helm's,
/// made by the chart's hook, not a copy of windlass's.
fn assert_shop_installed_with_its_own_pull_secret(server: &TestApiServer, namespace: &str) {
    let hook = server
        .get("v1", "Secret", namespace, "my-app-shop-registry")
        .unwrap();
    assert_eq!(
        hook["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade",
        "{hook:#}"
    );
    assert!(
        server
            .get("apps/v1", "Deployment", namespace, "shop-web")
            .is_some()
    );
}

/// With `additionalNamespaces`, each namespace listed gets the pull secret of each
/// `useHelmInstall: true` chart besides `<slug>-registry`, as KOTS copies every
/// `overlays/midstream/charts/<directory>/secret.yaml` there (a chart's workloads in that namespace
/// name it); not the namespace the chart installs it into itself, as a hook (`shop` goes into
/// `extra` here: a copy of windlass's there would make helm's hook fail, "already exists").
/// [`release_with_charts`] whose Application lists `additional` (as written) in
/// `additionalNamespaces`, with `shop` installed into `shop_namespace` when given.
fn release_with_charts_listing(
    additional: &str,
    shop_namespace: Option<&str>,
) -> (tempfile::TempDir, PathBuf) {
    let (dir, release) = release_with_charts();
    let application = std::fs::read_to_string(release.join("kots-app.yaml")).unwrap();
    std::fs::write(
        release.join("kots-app.yaml"),
        format!("{application}  additionalNamespaces:\n    - {additional}\n"),
    )
    .unwrap();
    if let Some(namespace) = shop_namespace {
        let shop = std::fs::read_to_string(release.join("kots/shop.yaml")).unwrap();
        std::fs::write(
            release.join("kots/shop.yaml"),
            shop.replace(
                "  useHelmInstall: true\n",
                &format!("  useHelmInstall: true\n  namespace: {namespace}\n"),
            ),
        )
        .unwrap();
    }
    (dir, release)
}

/// With `"*"`, every namespace but the app namespace gets `<slug>-registry` and each
/// `useHelmInstall: true` chart's `<slug>-<directory>-registry` (KOTS copies every
/// `overlays/midstream/charts/<directory>/secret.yaml`), except the namespace a chart makes its
/// own in (a hook: a copy there would make helm fail "already exists").
#[test]
fn every_namespace_gets_each_helm_install_charts_pull_secret_but_where_its_hook_makes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    for namespace in ["team-a", "extra"] {
        server
            .create_as(
                "someone",
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            )
            .unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts_listing("\"*\"", Some("extra"));
    let install = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(install["status"], "completed", "{install:#}");
    let copy_of_windlass = |namespace: &str, name: &str| {
        let secret = server
            .get("v1", "Secret", namespace, name)
            .unwrap_or_else(|| panic!("{name} is in namespace {namespace}"));
        assert_eq!(
            secret["type"], "kubernetes.io/dockerconfigjson",
            "{secret:#}"
        );
        assert_eq!(
            secret["metadata"]["annotations"]["windlass.io/app"], "my-app",
            "{secret:#}"
        );
    };
    for name in [
        "my-app-registry",
        "my-app-shop-registry",
        "my-app-first-registry",
    ] {
        copy_of_windlass("team-a", name);
    }
    copy_of_windlass("extra", "my-app-registry");
    copy_of_windlass("extra", "my-app-first-registry");
    assert_shop_installed_with_its_own_pull_secret(&server, "extra");
}

/// With `"*"`, a chart's pull secret is not copied into the app namespace of another instance of
/// the app, where that instance's own hook made it: the copy would take helm's Secret over (and
/// this instance's prune could then delete it).
#[test]
fn every_namespace_leaves_another_instances_chart_pull_secrets_to_its_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    server
        .create_as(
            "someone",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "inst-b"}}),
        )
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts_listing("\"*\"", None);
    let other = install_with_helm(
        state.path(),
        &release,
        &kubeconfig,
        &["--namespace", "inst-b"],
    );
    assert_eq!(other["status"], "completed", "{other:#}");
    let install = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(install["status"], "completed", "{install:#}");
    for name in ["my-app-shop-registry", "my-app-first-registry"] {
        let hooks = server.get("v1", "Secret", "inst-b", name).unwrap();
        assert!(
            hooks["metadata"]["annotations"]["helm.sh/hook"].is_string()
                && hooks["metadata"]["annotations"]["windlass.io/app"].is_null(),
            "{name} in inst-b is still helm's: {hooks:#}"
        );
    }
}

#[test]
fn the_additional_namespaces_get_each_helm_install_charts_pull_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts_listing("extra", Some("extra"));
    let install = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(install["status"], "completed", "{install:#}");
    for secret in [
        "my-app-registry",
        "my-app-shop-registry",
        "my-app-first-registry",
    ] {
        let copy = server
            .get("v1", "Secret", "extra", secret)
            .unwrap_or_else(|| panic!("{secret} is in namespace extra"));
        assert_eq!(copy["type"], "kubernetes.io/dockerconfigjson", "{secret}");
    }
    assert_shop_installed_with_its_own_pull_secret(&server, "extra");
    let events = json(run(windlass(state.path()).args([
        "events",
        install["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let provisioned = &payloads_of_type(events.as_array().unwrap(), "SecretsProvisioned")[0];
    let mut names: Vec<String> = provisioned["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|secret| {
            format!(
                "{}/{}",
                secret["namespace"].as_str().unwrap(),
                secret["name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "default/my-app-registry",
            "extra/my-app-first-registry",
            "extra/my-app-registry"
        ]
    );
}

/// helm's error quoting a chart's hook pull secret (a webhook refusing the Secrets helm creates,
/// echoing one it was sent) is recorded and printed with its words and without the Secret's credentials: the
/// chart holds no password value, so helm's words are kept, and the docker config in them is
/// recognised by its shape.
#[test]
fn helms_error_quoting_the_charts_pull_secret_is_kept_without_its_credentials() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_charts();
    std::fs::remove_file(release.join("kots/shop.yaml")).unwrap();
    let docker_config = base64::engine::general_purpose::STANDARD.encode(format!(
        "{{\"auths\":{{\"proxy.example\":{{\"auth\":\"{}\"}}}}}}",
        super::QUICKSTART_LICENSE_AUTH
    ));
    server.add_fault(windlass_test_apiserver::Fault {
        matcher: windlass_test_apiserver::FaultMatch::verb("create").resource("secrets"),
        action: windlass_test_apiserver::FaultAction::Refuse(format!(
            "admission webhook \"audit\" denied the request: object {{\"kind\":\"Secret\",\"type\":\"kubernetes.io/dockerconfigjson\",\"data\":{{\".dockerconfigjson\":\"{docker_config}\"}}}}"
        )),
        remaining: None,
    });
    let output = output_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .args(["--json", "--helm"])
            .arg(helm())
            .arg(&release)
            .args(["--target", "kube", "--wait-timeout", "2", "--kubeconfig"])
            .arg(&kubeconfig),
    );
    let printed = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&printed)
    );
    let failed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let install_id = failed["install_id"].as_str().unwrap();
    let events = json(run(
        windlass(state.path()).args(["events", install_id, "--json"])
    ));
    let helm_records = payloads_of_type(events.as_array().unwrap(), "HelmReleaseInstalled");
    let error = helm_records[0]["error"].as_str().unwrap();
    assert!(
        error.contains("denied the request") && error.contains("<redacted>"),
        "{error}"
    );
    super::assert_no_credential_outside_the_output(
        state.path(),
        &printed,
        &[
            super::QUICKSTART_LICENSE_ID,
            super::QUICKSTART_LICENSE_AUTH,
            &docker_config,
        ],
    );
}
