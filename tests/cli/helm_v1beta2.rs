//! `kots.io/v1beta2` HelmCharts installed as KOTS installs them, end to end with the real helm 4
//! (`target/tools/bin/helm`) against `windlass-test-apiserver`, a FAKE Kubernetes API server (no
//! real one can be installed on these machines): after the plain manifests, each goes to
//! `helm upgrade --install <release> <chart>-<version>.tgz --values values.yaml` from
//! `helm/<directory>/` (the archive as shipped, its values and true `optionalValues` merged), in
//! weight order with the `useHelmInstall: true` charts; installing again upgrades it, a release
//! that drops it uninstalls it; `--target dir:` writes the archive and its values for a GitOps
//! tool; a values file changed on disk is refused before anything is applied.

use std::path::{Path, PathBuf};

use serde_json::Value;
use windlass_testkit::charts::chart_archive;

use super::{json, payloads_of_type, run, windlass};
use crate::helm_install::{fake_cluster, helm, install_with_helm, release_with_charts};
use windlass_test_apiserver::TestApiServer;

/// The chart `web` 1.2.0: a Deployment whose image and pull secret come from the values, and a
/// ConfigMap printing `greeting`. Its own defaults name the vendor's registry and no pull secret.
fn web_chart() -> Vec<(String, String)> {
    let file = |path: &str, contents: &str| (format!("web/{path}"), contents.to_string());
    vec![
        file("Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.2.0\n"),
        file(
            "values.yaml",
            "image: registry.vendor.example/team/web:3.1\npullSecret: \"\"\ngreeting: from the chart\n",
        ),
        file(
            "templates/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      {{- if .Values.pullSecret }}\n      imagePullSecrets:\n        - name: {{ .Values.pullSecret }}\n      {{- end }}\n      containers:\n        - name: web\n          image: {{ .Values.image }}\n",
        ),
        file(
            "templates/greeting.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
        ),
    ]
}

/// The `kots.io/v1beta2` HelmChart of `web` (release `storefront`, weight 0): its values name the
/// proxied image and the pull secret as a vendor's must, and an `optionalValues` entry sets
/// `greeting`.
fn web_helm_chart(greeting: &str) -> String {
    format!(
        "apiVersion: kots.io/v1beta2\nkind: HelmChart\nmetadata:\n  name: web\nspec:\n  chart:\n    name: web\n    chartVersion: 1.2.0\n  releaseName: storefront\n  weight: 0\n  values:\n    image: proxy.replicated.com/proxy/my-app/registry.vendor.example/team/web:3.1\n    pullSecret: repl{{{{ ImagePullSecretName }}}}\n  optionalValues:\n    - when: \"true\"\n      values:\n        greeting: {greeting}\n  helmUpgradeFlags: [--description, web by windlass]\n"
    )
}

/// [`release_with_charts`] (the quickstart release, `useHelmInstall: true` charts `tiny` as
/// release `first` at weight -5 and `shop` at weight 10) plus `web` as a `kots.io/v1beta2` chart.
pub(crate) fn release_with_a_v1beta2_chart() -> (tempfile::TempDir, PathBuf) {
    let (dir, release) = release_with_charts();
    std::fs::write(
        release.join("charts/web-1.2.0.tgz"),
        chart_archive(&web_chart()),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/web.yaml"),
        web_helm_chart("from the HelmChart"),
    )
    .unwrap();
    (dir, release)
}

/// A FAKE API server with a kubeconfig for it, an empty state directory, and a release (with
/// the directory that holds it).
pub(crate) struct Scene {
    pub(crate) server: TestApiServer,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) state: tempfile::TempDir,
    pub(crate) release: PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

pub(crate) fn scene((release_dir, release): (tempfile::TempDir, PathBuf)) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    Scene {
        server,
        kubeconfig,
        state: tempfile::tempdir().unwrap(),
        release,
        _dirs: (dir, release_dir),
    }
}

/// `windlass install --offline --json --helm <helm> RELEASE EXTRA...` (no cluster): what it printed.
fn render(state: &Path, release: &Path, extra: &[&str]) -> Value {
    json(crate::helm_install::output_within(
        windlass(state)
            .args(super::OFFLINE_INSTALL)
            .args(["--json", "--helm"])
            .arg(helm())
            .arg(release)
            .args(extra),
    ))
}

/// The payloads of the `event_type` facts of `install`, in order.
pub(crate) fn facts_of(state: &Path, install: &Value, event_type: &str) -> Vec<Value> {
    let events = json(run(windlass(state).args([
        "events",
        install["install_id"].as_str().unwrap(),
        "--json",
    ])));
    payloads_of_type(events.as_array().unwrap(), event_type)
}

/// The arguments helm ran with, as a `HelmReleaseInstalled` record holds them.
pub(crate) fn arguments_of(record: &Value) -> Vec<&str> {
    record["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|argument| argument.as_str().unwrap())
        .collect()
}

/// The record of release `name` among `records`.
fn release_record<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|record| record["release_name"] == name)
        .unwrap_or_else(|| panic!("no record of release {name}: {records:#?}"))
}

/// The releases helm lists in every namespace, by name, as helm's JSON prints them.
pub(crate) fn helm_releases(kubeconfig: &Path) -> Vec<Value> {
    let listed = std::process::Command::new(helm())
        .args([
            "list",
            "--all-namespaces",
            "--output",
            "json",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    serde_json::from_slice::<Value>(&listed.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn apply_summary(install: &Value) -> String {
    super::stage_summary(install, "apply")
}

#[test]
fn a_v1beta2_chart_is_installed_from_its_archive_and_values_in_weight_order_with_the_other_charts()
{
    let scene = scene(release_with_a_v1beta2_chart());
    let Scene {
        server,
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    let install = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(install["status"], "completed", "{install:#}");

    // What helm made of the archive with the HelmChart's values: the proxied image and the pull
    // secret the values name (provisioned by windlass in the app namespace), and the greeting
    // of the true optionalValues entry over the chart's default.
    let deployment = server
        .get("apps/v1", "Deployment", "default", "storefront-web")
        .expect("helm made the chart's Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/web:3.1"
    );
    assert_eq!(
        pod["imagePullSecrets"],
        serde_json::json!([{"name": "my-app-registry"}])
    );
    assert!(
        server
            .get("v1", "Secret", "default", "my-app-registry")
            .is_some()
    );
    let greeting = server
        .get("v1", "ConfigMap", "default", "storefront-greeting")
        .expect("helm made the chart's ConfigMap");
    assert_eq!(greeting["data"]["greeting"], "from the HelmChart");
    let releases = helm_releases(kubeconfig);
    let storefront = releases
        .iter()
        .find(|release| release["name"] == "storefront")
        .unwrap_or_else(|| panic!("helm lists storefront: {releases:#?}"));
    assert_eq!(storefront["chart"], "web-1.2.0");
    assert_eq!(storefront["status"], "deployed");
    assert_eq!(storefront["namespace"], "default");

    // One order for every chart handed to helm: weight -5, 0, 10.
    let installed = facts_of(state.path(), &install, "HelmReleaseInstalled");
    let order: Vec<&str> = installed
        .iter()
        .map(|record| record["release_name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["first", "storefront", "shop"]);
    let web = &installed[1];
    assert_eq!(web["helm_chart"], "web");
    assert_eq!(web["chart"], "web-1.2.0");
    assert_eq!(web["chart_dir"], "helm/storefront");
    assert_eq!(web["outcome"], "installed", "{web:#}");
    assert_eq!(web["revision"], 1);
    let arguments = arguments_of(web);
    assert_eq!(
        arguments[..4],
        ["upgrade", "--install", "storefront", "chart/web-1.2.0.tgz"]
    );
    assert!(
        arguments
            .windows(2)
            .any(|pair| pair == ["--values", "chart/values.yaml"]),
        "{arguments:?}"
    );
    assert!(
        arguments.ends_with(&["--description", "web by windlass"]),
        "{arguments:?}"
    );
    let summary = apply_summary(&install);
    assert!(
        summary.contains("storefront revision 1 in default") && !summary.contains("not installed"),
        "{summary}"
    );
}

#[test]
fn installing_again_upgrades_the_v1beta2_release_and_a_release_without_it_uninstalls_it() {
    let scene = scene(release_with_a_v1beta2_chart());
    let Scene {
        server,
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    let first = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(first["status"], "completed", "{first:#}");

    std::fs::write(
        release.join("kots/web.yaml"),
        web_helm_chart("from the next release"),
    )
    .unwrap();
    let second = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(second["status"], "completed", "{second:#}");
    let greeting = server
        .get("v1", "ConfigMap", "default", "storefront-greeting")
        .unwrap();
    assert_eq!(greeting["data"]["greeting"], "from the next release");
    let installed = facts_of(state.path(), &second, "HelmReleaseInstalled");
    let web = release_record(&installed, "storefront");
    assert_eq!(web["revision"], 2, "{web:#}");
    let digests: Vec<Value> = [&first, &second]
        .iter()
        .map(|install| {
            release_record(
                &facts_of(state.path(), install, "HelmReleaseInstalled"),
                "storefront",
            )["chart_digest"]
                .clone()
        })
        .collect();
    assert_ne!(digests[0], digests[1], "the values changed, so the digest");

    std::fs::remove_file(release.join("kots/web.yaml")).unwrap();
    std::fs::remove_file(release.join("charts/web-1.2.0.tgz")).unwrap();
    let third = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(third["status"], "completed", "{third:#}");
    let uninstalled = facts_of(state.path(), &third, "HelmReleaseUninstalled");
    assert_eq!(uninstalled.len(), 1, "{uninstalled:#?}");
    assert_eq!(uninstalled[0]["release_name"], "storefront");
    assert_eq!(uninstalled[0]["outcome"], "uninstalled");
    assert_eq!(uninstalled[0]["installed_by"], second["install_id"]);
    assert!(
        !helm_releases(kubeconfig)
            .iter()
            .any(|release| release["name"] == "storefront")
    );
    assert!(
        server
            .get("v1", "ConfigMap", "default", "storefront-greeting")
            .is_none(),
        "helm uninstall removed what the chart made"
    );
    // The useHelmInstall charts stay.
    assert!(
        helm_releases(kubeconfig)
            .iter()
            .any(|release| release["name"] == "shop")
    );
}

#[test]
fn the_directory_target_writes_a_v1beta2_chart_as_shipped_with_its_values() {
    let state = tempfile::tempdir().unwrap();
    let (release_dir, release) = release_with_a_v1beta2_chart();
    let target = release_dir.path().join("gitops");
    let install = render(
        state.path(),
        &release,
        &["--target", &format!("dir:{}", target.display())],
    );
    assert_eq!(install["status"], "completed", "{install:#}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    assert_eq!(
        std::fs::read(target.join("charts/storefront/web-1.2.0.tgz")).unwrap(),
        std::fs::read(release.join("charts/web-1.2.0.tgz")).unwrap(),
        "the archive as shipped"
    );
    assert_eq!(
        std::fs::read(target.join("charts/storefront/values.yaml")).unwrap(),
        std::fs::read(out.join("helm/storefront/values.yaml")).unwrap()
    );
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(target.join("charts/storefront/values.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(values["greeting"], "from the HelmChart");
    assert_eq!(values["pullSecret"], "my-app-registry");
    let installed = facts_of(state.path(), &install, "HelmReleaseInstalled");
    let web = release_record(&installed, "storefront");
    assert_eq!(web["outcome"], "written", "{web:#}");
    assert_eq!(web["written_to"], "charts/storefront");
}

#[test]
fn a_v1beta2_values_file_changed_on_disk_is_refused_before_anything_is_applied() {
    let scene = scene(release_with_a_v1beta2_chart());
    let Scene {
        server,
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    let rendered = render(state.path(), release, &[]);
    assert_eq!(rendered["status"], "completed", "{rendered:#}");
    let out = PathBuf::from(rendered["out"].as_str().unwrap());
    let values = out.join("helm/storefront/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(
        &values,
        text.replace("from the HelmChart", "edited by hand"),
    )
    .unwrap();

    let applied = crate::helm_install::output_within(
        windlass(state.path())
            .args([
                "apply",
                rendered["install_id"].as_str().unwrap(),
                "--json",
                "--helm",
            ])
            .arg(helm())
            .args(["--target", "kube", "--kubeconfig"])
            .arg(kubeconfig),
    );
    assert!(!applied.status.success(), "{applied:?}");
    let report: Value = serde_json::from_slice(&applied.stdout).unwrap();
    assert!(
        report
            .to_string()
            .contains("helm/storefront/values.yaml in ")
            && report
                .to_string()
                .contains("changed since it was rendered: render the install again"),
        "{report:#}"
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.method == "GET"),
        "nothing was written before the check"
    );
    assert!(helm_releases(kubeconfig).is_empty());
}

/// The chart `tiny` 1.0.0 of the migration: one ConfigMap, annotated `kots.io/keep: "true"` as
/// KOTS asks of the objects a chart moving to `kots.io/v1beta2` takes over.
fn kept_tiny_chart() -> Vec<(String, String)> {
    vec![
        (
            "tiny/Chart.yaml".into(),
            "apiVersion: v2\nname: tiny\nversion: 1.0.0\n".into(),
        ),
        ("tiny/values.yaml".into(), "size: small\n".into()),
        (
            "tiny/templates/config.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n  annotations:\n    kots.io/keep: \"true\"\ndata:\n  size: {{ .Values.size }}\n".into(),
        ),
    ]
}

/// KOTS's documented migration of a `useHelmInstall: false` chart (its objects applied by windlass
/// with the plain manifests) to `kots.io/v1beta2`: `--take-ownership` in `helmUpgradeFlags` and
/// `kots.io/keep` on the old objects. helm 4 applies server-side by default and then meets a
/// conflict with windlass's fields; windlass adds `--server-side=false` before such flags, as
/// KOTS does, so helm adopts the ConfigMap, and the prune keeps it. The release is nothing but
/// the chart, so the second install applies no object of its own: pruning only kept objects is
/// not refused as an empty prune.
#[test]
fn a_chart_moving_to_v1beta2_with_take_ownership_adopts_what_windlass_applied() {
    let scene = scene(release_with_charts());
    let Scene {
        server,
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    // Nothing but the chart: once it moves, the release applies no object of its own.
    for dropped in ["kots/shop.yaml", "kots/tiny.yaml", "charts/shop-0.3.0.tgz"] {
        std::fs::remove_file(release.join(dropped)).unwrap();
    }
    std::fs::remove_dir_all(release.join("manifests")).unwrap();
    std::fs::write(
        release.join("charts/tiny-1.0.0.tgz"),
        chart_archive(&kept_tiny_chart()),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/tiny.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: tiny\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n",
    )
    .unwrap();
    let first = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(first["status"], "completed", "{first:#}");
    let applied = server
        .get("v1", "ConfigMap", "default", "tiny-config")
        .expect("windlass applied the chart's ConfigMap with the manifests");
    assert_eq!(applied["data"]["size"], "small");
    assert!(helm_releases(kubeconfig).is_empty());

    std::fs::write(
        release.join("kots/tiny.yaml"),
        "apiVersion: kots.io/v1beta2\nkind: HelmChart\nmetadata:\n  name: tiny\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n  values:\n    size: large\n  helmUpgradeFlags: [--take-ownership]\n",
    )
    .unwrap();
    let second = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(second["status"], "completed", "{second:#}");
    let adopted = server
        .get("v1", "ConfigMap", "default", "tiny-config")
        .expect("the ConfigMap stays");
    assert_eq!(adopted["data"]["size"], "large");
    assert_eq!(adopted["metadata"]["uid"], applied["metadata"]["uid"]);
    assert_eq!(
        adopted["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "tiny"
    );
    let installed = facts_of(state.path(), &second, "HelmReleaseInstalled");
    assert_eq!(installed.len(), 1, "{installed:#?}");
    let arguments = arguments_of(&installed[0]);
    assert!(
        arguments.ends_with(&["--server-side=false", "--take-ownership"]),
        "{arguments:?}"
    );
    let pruned = facts_of(state.path(), &second, "ObjectPruned");
    let kept = pruned
        .iter()
        .find(|record| record["key"]["name"] == "tiny-config")
        .unwrap_or_else(|| panic!("{pruned:#?}"));
    assert_eq!(kept["outcome"], "kept", "{kept:#}");
    assert_eq!(kept["kept_because"], "keep_annotation", "{kept:#}");
}

/// The app state is observed once the charts are installed: a status informer naming the
/// Deployment of the v1beta2 chart finds it (the FAKE API server runs no controller, so it is
/// `updating` rather than `ready`, and the short deadline passes), where an app state observed
/// before helm ran would have found it `missing`. The state is the last fact before the stage
/// completes.
#[test]
fn the_app_state_is_observed_after_the_charts_are_installed() {
    let scene = scene(release_with_a_v1beta2_chart());
    let Scene {
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    std::fs::write(
        release.join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: My App\n  statusInformers:\n    - deployment/storefront-web\n",
    )
    .unwrap();
    let install = install_with_helm(state.path(), release, kubeconfig, &["--wait-timeout", "2s"]);
    assert_eq!(install["status"], "completed", "{install:#}");
    let observed = facts_of(state.path(), &install, "AppStateObserved");
    assert_eq!(observed.len(), 1, "{observed:#?}");
    assert_eq!(
        observed[0]["resources"],
        serde_json::json!([{"informer": "deployment/storefront-web", "state": "updating"}]),
        "{observed:#?}"
    );
    let events = json(run(windlass(state.path()).args([
        "events",
        install["install_id"].as_str().unwrap(),
        "--json",
    ])));
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    let state_at = types.iter().position(|kind| *kind == "AppStateObserved");
    let last_helm = types
        .iter()
        .rposition(|kind| *kind == "HelmReleaseInstalled");
    assert!(last_helm.is_some() && state_at > last_helm, "{types:?}");
}

/// `windlass apply INSTALL_ID` installs the v1beta2 chart of an install rendered earlier, with the
/// helm `--helm` names (a helm that is not there fails naming it; the real one installs).
#[test]
fn windlass_apply_installs_a_rendered_v1beta2_chart_with_the_helm_named() {
    let scene = scene(release_with_a_v1beta2_chart());
    let Scene {
        server,
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    let rendered = render(state.path(), release, &[]);
    assert_eq!(rendered["status"], "completed", "{rendered:#}");
    let apply = |helm: &Path| {
        crate::helm_install::output_within(
            windlass(state.path())
                .args([
                    "apply",
                    rendered["install_id"].as_str().unwrap(),
                    "--json",
                    "--helm",
                ])
                .arg(helm)
                .args(["--target", "kube", "--kubeconfig"])
                .arg(kubeconfig),
        )
    };
    let missing = apply(Path::new("/nonexistent/helm"));
    assert!(!missing.status.success(), "{missing:?}");
    let report = String::from_utf8_lossy(&missing.stdout);
    assert!(report.contains("/nonexistent/helm"), "{report}");
    assert!(helm_releases(kubeconfig).is_empty());

    let applied = json(apply(&helm()));
    assert_eq!(applied["status"], "completed", "{applied:#}");
    assert!(
        server
            .get("apps/v1", "Deployment", "default", "storefront-web")
            .is_some()
    );
    let installed = facts_of(state.path(), &applied, "HelmReleaseInstalled");
    let storefront = release_record(&installed, "storefront");
    assert_eq!(storefront["outcome"], "installed", "{storefront:#}");
}

/// A release holding both a `useHelmInstall: true` chart and a `kots.io/v1beta2` chart of the
/// same release name: the v1beta1 one is set aside (KOTS's `FilterV1Beta1ChartsWithV1Beta2Charts`),
/// so helm gets the release once, from `helm/first/`.
#[test]
fn a_v1beta1_chart_a_v1beta2_chart_supersedes_is_not_installed_beside_it() {
    let scene = scene(release_with_charts());
    let Scene {
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    std::fs::write(
        release.join("kots/tiny-v2.yaml"),
        "apiVersion: kots.io/v1beta2\nkind: HelmChart\nmetadata:\n  name: tiny-v2\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n  releaseName: first\n  weight: -5\n",
    )
    .unwrap();
    let install = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(install["status"], "completed", "{install:#}");
    let installed = facts_of(state.path(), &install, "HelmReleaseInstalled");
    let first: Vec<&Value> = installed
        .iter()
        .filter(|record| record["release_name"] == "first")
        .collect();
    assert_eq!(first.len(), 1, "{installed:#?}");
    assert_eq!(first[0]["helm_chart"], "tiny-v2");
    assert_eq!(first[0]["chart_dir"], "helm/first");
}

/// A v1beta2 chart with `spec.namespace` is installed there; `--dry-run` hands nothing to helm
/// and records the chart `not_run_dry_run`; a later release that excludes it
/// (`spec.exclude: true`) uninstalls it.
#[test]
fn a_v1beta2_chart_goes_to_its_namespace_is_not_run_in_a_dry_run_and_is_uninstalled_once_excluded()
{
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    server
        .apply_as(
            "setup",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shopfront"}}),
            true,
        )
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let (_release_dir, release) = release_with_a_v1beta2_chart();
    let in_namespace = |exclude: &str| {
        web_helm_chart("from the HelmChart").replace(
            "  releaseName: storefront\n",
            &format!("  releaseName: storefront\n  namespace: shopfront\n  exclude: {exclude}\n"),
        )
    };
    std::fs::write(release.join("kots/web.yaml"), in_namespace("false")).unwrap();

    let dry = install_with_helm(state.path(), &release, &kubeconfig, &["--dry-run"]);
    assert_eq!(dry["status"], "completed", "{dry:#}");
    let recorded = facts_of(state.path(), &dry, "HelmReleaseInstalled");
    let storefront = release_record(&recorded, "storefront");
    assert_eq!(storefront["outcome"], "not_run_dry_run", "{storefront:#}");
    assert_eq!(storefront["namespace"], "shopfront");
    assert!(helm_releases(&kubeconfig).is_empty());

    let install = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(install["status"], "completed", "{install:#}");
    assert!(
        server
            .get("apps/v1", "Deployment", "shopfront", "storefront-web")
            .is_some()
    );
    assert!(
        helm_releases(&kubeconfig)
            .iter()
            .any(|release| release["name"] == "storefront" && release["namespace"] == "shopfront")
    );

    std::fs::write(release.join("kots/web.yaml"), in_namespace("true")).unwrap();
    let excluded = install_with_helm(state.path(), &release, &kubeconfig, &[]);
    assert_eq!(excluded["status"], "completed", "{excluded:#}");
    let uninstalled = facts_of(state.path(), &excluded, "HelmReleaseUninstalled");
    assert_eq!(uninstalled.len(), 1, "{uninstalled:#?}");
    assert_eq!(uninstalled[0]["release_name"], "storefront");
    assert_eq!(uninstalled[0]["namespace"], "shopfront");
    assert!(
        server
            .get("apps/v1", "Deployment", "shopfront", "storefront-web")
            .is_none()
    );
}
