//! KOTS HelmCharts end to end with the real helm 4 (`target/tools/bin/helm`) and the real
//! `kubectl kustomize` as the oracle for what is rendered: a `kots.io/v1beta1` chart (subchart
//! under an alias, a second subchart, CRDs in two `crds/` directories, a hook, `optionalValues`)
//! joins the common base and its images are proxied like any manifest's; `windlass images` names
//! the chart, template file and field of each; a replay never runs helm; a `kots.io/v1beta2`
//! chart is templated with its `builder` values and its images are listed as not patched; a
//! HelmChart whose archive is missing or whose `when` is not a boolean is refused naming it.

use std::path::{Path, PathBuf};

use serde_json::Value;
use windlass_testkit::charts::{chart_archive, sample_chart};

use super::{OFFLINE_INSTALL, files_under, json, quickstart, run, windlass};

const V1BETA1: &str = "apiVersion: kots.io/v1beta1
kind: HelmChart
metadata:
  name: app
spec:
  chart:
    name: app
    chartVersion: 1.2.0
  values:
    replicas: 2
  optionalValues:
    - when: \"true\"
      recursiveMerge: true
      values:
        image:
          tag: \"1.1\"
    - when: \"false\"
      values:
        replicas: 9
";

const V1BETA2: &str = "apiVersion: kots.io/v1beta2
kind: HelmChart
metadata:
  name: web
spec:
  releaseName: web
  chart:
    name: app
    chartVersion: 1.2.0
  values:
    replicas: 1
  builder:
    image:
      tag: builder
";

/// The quickstart release plus the sample chart archive (and another version of it) and
/// `helm_chart` as `kots/chart.yaml`.
fn release_with_chart(helm_chart: &str) -> (tempfile::TempDir, PathBuf) {
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
        release.join("charts/app-1.2.0.tgz"),
        chart_archive(&sample_chart("1.2.0")),
    )
    .unwrap();
    std::fs::write(
        release.join("charts/app-1.0.0.tgz"),
        chart_archive(&sample_chart("1.0.0")),
    )
    .unwrap();
    std::fs::write(release.join("kots/chart.yaml"), helm_chart).unwrap();
    (dir, release)
}

fn helm() -> PathBuf {
    windlass_testkit::helm()
}

fn install(state: &Path, release: &Path, helm: &Path) -> std::process::Output {
    run(windlass(state)
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg("--helm")
        .arg(helm)
        .arg(release))
}

/// `install --offline --helm <helm> <release>` printing text (errors on stderr).
fn install_text(state: &Path, release: &Path, helm: &Path) -> std::process::Output {
    run(windlass(state)
        .args(OFFLINE_INSTALL)
        .arg("--helm")
        .arg(helm)
        .arg(release))
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every object under `dir`, parsed.
fn objects_in(dir: &Path) -> Vec<Value> {
    let mut objects = Vec::new();
    let mut files = files_under(dir);
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        objects.extend(parsed.into_iter().filter(Value::is_object));
    }
    objects
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among the rendered objects"))
}

#[test]
fn a_v1beta1_chart_joins_the_common_base_and_its_images_are_proxied() {
    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(V1BETA1);
    let output = install(state.path(), &release, &helm());
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install:#}");
    let out = PathBuf::from(install["out"].as_str().unwrap());

    // The KOTS layout under base/charts/<directory>/: subcharts under their alias, both crds/.
    for file in [
        "base/charts/app/templates/deployment.yaml",
        "base/charts/app/templates/hook-job.yaml",
        "base/charts/app/templates/config.yaml",
        "base/charts/app/templates/config-2.yaml",
        "base/charts/app/crds/widget.yaml",
        "base/charts/app/charts/database/templates/statefulset.yaml",
        "base/charts/app/charts/database/crds/backup.yaml",
        "base/charts/app/charts/cache/templates/deployment.yaml",
    ] {
        assert!(out.join(file).is_file(), "{file} was not written");
    }
    // Sub-bases as KOTS lays them out: the chart, each subchart, each crds/.
    let resources = |directory: &str| -> Vec<String> {
        let text = std::fs::read_to_string(out.join(directory).join("kustomization.yaml"))
            .unwrap_or_else(|error| panic!("{directory}/kustomization.yaml: {error}"));
        let value: Value = serde_saphyr::from_str(&text).unwrap();
        let mut resources: Vec<String> = value["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|resource| resource.as_str().unwrap().to_string())
            .collect();
        resources.sort();
        resources
    };
    assert!(resources("base").contains(&"charts/app".to_string()));
    assert_eq!(
        resources("base/charts/app"),
        [
            "charts/cache",
            "charts/database",
            "crds",
            "templates/config-2.yaml",
            "templates/config.yaml",
            "templates/deployment.yaml",
            "templates/hook-job.yaml"
        ]
    );
    assert_eq!(
        resources("base/charts/app/charts/database"),
        ["crds", "templates/statefulset.yaml"]
    );
    assert_eq!(
        resources("base/charts/app/charts/database/crds"),
        ["backup.yaml"]
    );
    assert_eq!(resources("base/charts/app/crds"), ["widget.yaml"]);
    let summary = install["stages"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains(
            "HelmChart app (kots/chart.yaml kots.io/v1beta1): chart app 1.2.0 from charts/app-1.2.0.tgz rendered by helm into 8 document(s) under base/charts/app/"
        ),
        "{summary}"
    );

    // Chart images sit in the midstream's images: like the manifests' (offline: all private).
    let midstream =
        std::fs::read_to_string(out.join("overlays/midstream/kustomization.yaml")).unwrap();
    for image in [
        "registry.vendor.example/team/web",
        "registry.vendor.example/team/postgres",
        "docker.io/library/redis",
    ] {
        assert!(midstream.contains(&format!("name: {image}")), "{midstream}");
    }

    // The oracle: kubectl kustomize of the downstream overlay gives what windlass rendered.
    let expected =
        windlass_testkit::kustomize_build(&out.join("overlays/downstreams/this-cluster"));
    let rendered = objects_in(&out.join("rendered/this-cluster"));
    windlass_testkit::assert_same_objects(&expected, &rendered);

    let web = named(&rendered, "Deployment", "app-web");
    assert_eq!(
        web["spec"]["replicas"], 2,
        "values and optionalValues merged"
    );
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/web:1.1"
    );
    assert_eq!(
        web["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
        "my-app-registry"
    );
    let database = named(&rendered, "StatefulSet", "app-db");
    assert_eq!(
        database["spec"]["template"]["spec"]["containers"][0]["image"],
        "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/postgres:16"
    );
    named(&rendered, "Job", "app-migrate");
    named(&rendered, "CustomResourceDefinition", "widgets.example.com");
    named(
        &rendered,
        "CustomResourceDefinition",
        "backups.db.example.com",
    );

    // helm's output is a recorded blob, with helm's version and arguments.
    let install_id = install["install_id"].as_str().unwrap();
    let events = json(run(
        windlass(state.path()).args(["events", install_id, "--json"])
    ));
    let fetched = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .unwrap();
    let chart = &fetched["payload"]["helm_charts"][0];
    assert_eq!(chart["archive"], "charts/app-1.2.0.tgz");
    assert_eq!(chart["rendered_with"], "values");
    assert!(chart["helm_version"].as_str().unwrap().starts_with("v4."));
    assert!(
        chart["output_blob"]
            .as_str()
            .is_some_and(|blob| !blob.is_empty())
    );

    // windlass images names the chart, the template file and the field.
    let images = json(run(windlass(state.path())
        .args(["images", "--json", "--helm"])
        .arg(helm())
        .arg(&release)));
    let postgres = images
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["image"] == "registry.vendor.example/team/postgres:16")
        .expect("the subchart's image is listed");
    let place = &postgres["uses"][0];
    assert_eq!(place["chart"], "app");
    assert_eq!(
        place["template"],
        "charts/database/templates/statefulset.yaml"
    );
    assert_eq!(place["field"], "spec.template.spec.containers[0].image");
    assert!(postgres.get("not_patched").is_none());
}

#[test]
fn a_replay_of_a_chart_install_never_runs_helm() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release) = release_with_chart(V1BETA1);
    // And a kots.io/v1beta2 chart beside it (helm/web/ written, its images reported).
    std::fs::write(
        release.join("kots/web.yaml"),
        V1BETA2.replace("1.2.0", "1.0.0"),
    )
    .unwrap();
    // A copy of helm that is deleted after the install: the replay cannot run it.
    let copy = dir.path().join("helm");
    std::fs::copy(helm(), &copy).unwrap();
    let install = json(install(state.path(), &release, &copy));
    let install_id = install["install_id"].as_str().unwrap().to_string();
    assert_eq!(install["status"], "completed", "{install:#}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    assert!(out.join("helm/web/app-1.0.0.tgz").is_file());
    assert!(
        out.join("base/charts/app/templates/deployment.yaml")
            .is_file()
    );
    std::fs::remove_file(&copy).unwrap();
    let replayed = run(windlass(state.path())
        .args(["replay", &install_id, "--json"])
        .env("WINDLASS_HELM", "/nonexistent/helm"));
    let report = json(replayed);
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    for stage in report["stages"].as_array().unwrap() {
        assert_eq!(stage["status"], "identical", "{report:#}");
    }
}

#[test]
fn a_v1beta2_chart_is_templated_with_builder_values_and_its_images_listed_as_not_patched() {
    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(V1BETA2);
    let images = json(run(windlass(state.path())
        .args(["images", "--json", "--helm"])
        .arg(helm())
        .arg(&release)));
    let images = images.as_array().unwrap();
    let web = images
        .iter()
        .find(|image| image["image"] == "registry.vendor.example/team/web:builder")
        .unwrap_or_else(|| panic!("the builder values' image is listed: {images:#?}"));
    assert_eq!(web["uses"][0]["chart"], "web");
    assert_eq!(web["uses"][0]["template"], "templates/deployment.yaml");
    let reason = web["not_patched"].as_str().unwrap();
    assert!(
        reason.starts_with("in kots.io/v1beta2 HelmChart web: installed as shipped, not patched"),
        "{reason}"
    );
    assert!(reason.contains("[{name: my-app-registry}]"), "{reason}");
    // The manifests' images are patched as before.
    let api = images
        .iter()
        .find(|image| image["image"] == "quay.io/my-org/api:v1.0.1")
        .unwrap();
    assert!(api.get("not_patched").is_none());

    let text = run(windlass(state.path())
        .args(["images", "--why", "--helm"])
        .arg(helm())
        .arg(&release));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("registry.vendor.example/team/web:builder  [2 uses]  (not patched: in kots.io/v1beta2 HelmChart web"),
        "{text}"
    );
    assert!(
        text.contains("helm/web/templates/deployment.yaml (document 1) Deployment web-web: spec.template.spec.containers[0].image [HelmChart web, template templates/deployment.yaml]"),
        "{text}"
    );
}

#[test]
fn a_helm_chart_without_its_archive_or_with_a_bad_when_is_refused_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(&V1BETA1.replace("1.2.0", "2.0.0"));
    let output = install_text(state.path(), &release, &helm());
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "HelmChart app (kots/chart.yaml): no chart archive in the release is chart app version 2.0.0; found charts/app-1.0.0.tgz (chart app version 1.0.0), charts/app-1.2.0.tgz (chart app version 1.2.0)"
        ),
        "{}",
        stderr(&output)
    );

    let state = tempfile::tempdir().unwrap();
    let (_dir, release) =
        release_with_chart(&V1BETA1.replace("when: \"false\"", "when: \"maybe\""));
    let output = install_text(state.path(), &release, &helm());
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "HelmChart app (kots/chart.yaml): spec.optionalValues[1].when is \"maybe\", not a boolean (true, false, 1, 0, t, f)"
        ),
        "{}",
        stderr(&output)
    );

    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(V1BETA1);
    let output = install_text(state.path(), &release, Path::new("/nonexistent/helm"));
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("helm /nonexistent/helm could not be started"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_v1beta2_chart_is_written_as_shipped_and_each_image_reported_with_the_values_to_set() {
    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(V1BETA2);
    let install = json(install(state.path(), &release, &helm()));
    assert_eq!(install["status"], "completed", "{install:#}");
    let out = PathBuf::from(install["out"].as_str().unwrap());

    // helm/<release>/: the archive as shipped and the merged values (builder values only list
    // the images).
    assert_eq!(
        std::fs::read(out.join("helm/web/app-1.2.0.tgz")).unwrap(),
        std::fs::read(release.join("charts/app-1.2.0.tgz")).unwrap()
    );
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(out.join("helm/web/values.yaml")).unwrap())
            .unwrap();
    assert_eq!(values, serde_json::json!({"replicas": 1}));

    // Not patched: nothing of the chart in base/, the midstream or rendered/.
    assert!(!out.join("base/charts").exists());
    let midstream =
        std::fs::read_to_string(out.join("overlays/midstream/kustomization.yaml")).unwrap();
    assert!(!midstream.contains("team/web"), "{midstream}");
    let rendered = objects_in(&out.join("rendered/this-cluster"));
    assert!(
        !rendered
            .iter()
            .any(|object| object["metadata"]["name"] == "web-web"),
        "a v1beta2 chart is never rendered into rendered/"
    );

    // The install summary names every image windlass could not patch, and why; for a v1beta2
    // chart's image, the exact reference and pull secret its values must give it.
    let plan = super::stage_summary(&install, "plan_overrides");
    for expected in [
        "not patched: registry.vendor.example/team/web:builder (in kots.io/v1beta2 HelmChart web: installed as shipped, not patched; the vendor's values must set this image to proxy.replicated.com/proxy/my-app/registry.vendor.example/team/web:builder and imagePullSecrets to [{name: my-app-registry}] (ImagePullSecretName))",
        "not patched: registry.vendor.example/team/postgres:16 (in kots.io/v1beta2 HelmChart web: installed as shipped, not patched; the vendor's values must set this image to proxy.replicated.com/proxy/my-app/registry.vendor.example/team/postgres:16 and",
        "not patched: docker.io/library/redis:7 (in kots.io/v1beta2 HelmChart web: installed as shipped, not patched; the vendor's values must set this image to proxy.replicated.com/proxy/my-app/docker.io/library/redis:7 and",
        // An operator's image in Application.spec.additionalImages: probed, reported.
        "not patched: quay.io/my-org/sidecar:1 (listed in Application.spec.additionalImages only",
    ] {
        assert!(plan.contains(expected), "{plan}\nlacks {expected}");
    }
}

/// A `kots.io/v1beta2` chart's image beside a manifest using another tag of the same repository
/// (`registry.vendor.example/team/postgres:16` in the chart, `:15` in a Deployment): the chart's
/// image is reported with its own proxied reference, and the manifest's image keeps the
/// repository's `images:` entry, whichever of the two was found first.
#[test]
fn a_v1beta2_chart_image_sharing_a_repository_with_a_manifest_is_reported_and_the_manifest_patched()
{
    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(V1BETA2);
    std::fs::write(
        release.join("manifests/postgres.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: postgres\nspec:\n  selector:\n    matchLabels:\n      app: postgres\n  template:\n    metadata:\n      labels:\n        app: postgres\n    spec:\n      containers:\n        - name: postgres\n          image: registry.vendor.example/team/postgres:15\n",
    )
    .unwrap();
    let install = json(install(state.path(), &release, &helm()));
    assert_eq!(install["status"], "completed", "{install:#}");
    let plan = super::stage_summary(&install, "plan_overrides");
    let expected = "not patched: registry.vendor.example/team/postgres:16 (in kots.io/v1beta2 HelmChart web: installed as shipped, not patched; the vendor's values must set this image to proxy.replicated.com/proxy/my-app/registry.vendor.example/team/postgres:16 and";
    assert!(plan.contains(expected), "{plan}");
    assert!(
        !plan.contains("not patched: registry.vendor.example/team/postgres:15"),
        "{plan}"
    );
    let out = PathBuf::from(install["out"].as_str().unwrap());
    let rendered = objects_in(&out.join("rendered/this-cluster"));
    let postgres = named(&rendered, "Deployment", "postgres");
    assert_eq!(
        postgres["spec"]["template"]["spec"]["containers"][0]["image"],
        "proxy.replicated.com/proxy/my-app/registry.vendor.example/team/postgres:15"
    );
}

/// `windlass images` lists the images of a `useHelmInstall: true` chart like any other (the
/// install itself is covered in `helm_install.rs`).
#[test]
fn use_helm_install_true_chart_images_are_listed() {
    let chart = V1BETA1.replace("spec:\n  chart:", "spec:\n  useHelmInstall: true\n  chart:");
    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(&chart);
    let images = json(run(windlass(state.path())
        .args(["images", "--json", "--helm"])
        .arg(helm())
        .arg(&release)));
    let web = images
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["image"] == "registry.vendor.example/team/web:1.1")
        .expect("the chart's image is listed");
    assert_eq!(web["uses"][0]["chart"], "app");
    assert_eq!(web["uses"][0]["template"], "templates/deployment.yaml");
}

/// An operator's custom resource naming an image in a field an image rule points at: probed and
/// planned, but kustomize's `images:` rewrites only `containers`/`initContainers`, so the install
/// summary and `windlass images` say it is not patched, and what it must name instead.
#[test]
fn an_operator_image_in_a_custom_resource_field_is_reported_as_not_patched() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release) = release_with_chart(V1BETA1);
    std::fs::write(
        release.join("manifests/database.yaml"),
        "apiVersion: db.example.com/v1\nkind: MyDB\nmetadata:\n  name: main\nspec:\n  image: registry.vendor.example/team/db:5\n",
    )
    .unwrap();
    let config = dir.path().join("windlass.yaml");
    std::fs::write(
        &config,
        "images:\n  rules:\n    - kind: MyDB\n      path: spec.image\n",
    )
    .unwrap();
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .args(["--json", "--helm"])
        .arg(helm())
        .arg("--config")
        .arg(&config)
        .arg(&release)));
    assert_eq!(install["status"], "completed", "{install:#}");
    let plan = super::stage_summary(&install, "plan_overrides");
    let expected = "not patched: registry.vendor.example/team/db:5 (found only outside containers and initContainers, first at manifests/database.yaml (document 1) MyDB main: spec.image, which kustomize's images: does not rewrite; it must name proxy.replicated.com/proxy/my-app/registry.vendor.example/team/db instead)";
    assert!(plan.contains(expected), "{plan}");
    // The chart's own images are patched, so they are not in that list.
    assert!(
        !plan.contains("not patched: registry.vendor.example/team/web"),
        "{plan}"
    );

    let images = json(run(windlass(state.path())
        .args(["images", "--json", "--helm"])
        .arg(helm())
        .arg("--config")
        .arg(&config)
        .arg(&release)));
    let database = images
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["image"] == "registry.vendor.example/team/db:5")
        .unwrap();
    assert!(
        database["not_patched"]
            .as_str()
            .unwrap()
            .starts_with("found only outside containers and initContainers"),
        "{database:#}"
    );
}

#[test]
fn helm_with_a_pipeline_file_is_refused_naming_fetch_base() {
    let state = tempfile::tempdir().unwrap();
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR")).join("stages/default-pipeline.yaml");
    let output = run(windlass(state.path())
        .args(["install", "--offline", "--pipeline"])
        .arg(&pipeline)
        .arg("--helm")
        .arg(helm())
        .arg(quickstart()));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("fetch_base"),
        "{}",
        stderr(&output)
    );
}

/// The chart `toggles` 1.0.0: three ConfigMaps, one whose `kots.io/exclude` and one whose
/// `kots.io/when` the values decide, and one always there.
fn toggles_chart(when_value: &str) -> Vec<(String, String)> {
    let config_map = |name: &str, annotation: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n{annotation}data:\n  a: b\n"
        )
    };
    vec![
        (
            "toggles/Chart.yaml".into(),
            "apiVersion: v2\nname: toggles\nversion: 1.0.0\n".into(),
        ),
        (
            "toggles/values.yaml".into(),
            format!("skipDebug: true\nwithExtras: {when_value}\n"),
        ),
        (
            "toggles/templates/debug.yaml".into(),
            config_map(
                "debug",
                "    kots.io/exclude: {{ .Values.skipDebug | quote }}\n",
            ),
        ),
        (
            "toggles/templates/extras.yaml".into(),
            config_map(
                "extras",
                "    kots.io/when: {{ .Values.withExtras | quote }}\n",
            ),
        ),
        (
            "toggles/templates/always.yaml".into(),
            config_map("always", "    note: kept\n"),
        ),
    ]
}

/// `kots.io/exclude` and `kots.io/when` on the documents a `kots.io/v1beta1` chart renders leave
/// them out, as KOTS judges every file a chart renders (recorded with the release's own); a value
/// helm printed that is not a bool is refused naming the chart and the document.
#[test]
fn kots_exclude_and_when_leave_out_a_charts_rendered_documents() {
    let state = tempfile::tempdir().unwrap();
    let (_dir, release) = release_with_chart(
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: toggles\nspec:\n  chart:\n    name: toggles\n    chartVersion: 1.0.0\n",
    );
    std::fs::write(
        release.join("charts/toggles-1.0.0.tgz"),
        chart_archive(&toggles_chart("false")),
    )
    .unwrap();
    let installed = json(install(state.path(), &release, &helm()));
    assert_eq!(installed["status"], "completed", "{installed:#}");
    let out = PathBuf::from(installed["out"].as_str().unwrap());
    let rendered = objects_in(&out.join("rendered/this-cluster"));
    let names: Vec<&str> = rendered
        .iter()
        .filter(|object| object["kind"] == "ConfigMap")
        .map(|object| object["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"always"), "{names:?}");
    assert!(
        !names.contains(&"debug") && !names.contains(&"extras"),
        "{names:?}"
    );
    assert!(
        !out.join("base/charts/toggles/templates/debug.yaml")
            .exists()
    );
    let events = crate::apply_kube::events(state.path(), installed["install_id"].as_str().unwrap());
    let fetched = &crate::payloads_of_type(&events, "BaseFetched")[0];
    let excluded: Vec<(&str, &str)> = fetched["templates"]["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["file"].as_str().unwrap(),
                entry["annotation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        excluded,
        [
            ("charts/toggles/templates/debug.yaml", "kots.io/exclude"),
            ("charts/toggles/templates/extras.yaml", "kots.io/when"),
        ]
    );

    // A useHelmInstall: true chart's documents alike: what helm gets leaves them out.
    std::fs::write(
        release.join("kots/chart.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: toggles\nspec:\n  chart:\n    name: toggles\n    chartVersion: 1.0.0\n  useHelmInstall: true\n",
    )
    .unwrap();
    let helm_install = json(install(state.path(), &release, &helm()));
    assert_eq!(helm_install["status"], "completed", "{helm_install:#}");
    let chart_dir = PathBuf::from(helm_install["out"].as_str().unwrap())
        .join("rendered/this-cluster/charts/toggles/templates");
    let handed: Vec<String> = objects_in(&chart_dir)
        .iter()
        .filter_map(|object| object["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(handed.iter().any(|name| name == "always"), "{handed:?}");
    assert!(
        !handed
            .iter()
            .any(|name| name == "debug" || name == "extras"),
        "{handed:?}"
    );

    std::fs::write(
        release.join("charts/toggles-1.0.0.tgz"),
        chart_archive(&toggles_chart("maybe")),
    )
    .unwrap();
    let refused = install_text(state.path(), &release, &helm());
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let message = stderr(&refused);
    assert!(
        message.contains("HelmChart toggles (kots/chart.yaml): helm rendered charts/toggles/templates/extras.yaml")
            && message.contains("annotation kots.io/when is \"maybe\", not a bool"),
        "{message}"
    );
}
