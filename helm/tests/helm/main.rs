//! windlass-helm against the real helm 4 (`target/tools/bin/helm`, or `$WINDLASS_HELM`): archive
//! lookup among several release files, values and `optionalValues` as helm receives them, the KOTS
//! layout of subcharts with aliases, CRDs and hooks, checked against `helm template` run directly
//! (testkit's oracle), and the subprocess bounds (deadline, output cap, cleared environment)
//! against small shell scripts standing in for a misbehaving helm.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use windlass_helm::{
    ArchiveError, ArchiveLimits, ChartToRender, ChartWanted, HelmError, HelmTool, ReleaseFile,
    RenderError, ValuesFor, archive::find_chart_archive, render_chart,
};
use windlass_kots::{HelmChartV1Beta1, HelmChartV1Beta2};
use windlass_testkit::charts::{chart_archive, sample_chart};

fn helm() -> HelmTool {
    HelmTool::new(windlass_testkit::helm())
}

fn v1beta1(yaml: &str) -> ChartToRender {
    let chart: HelmChartV1Beta1 = serde_saphyr::from_str(yaml).expect("HelmChart yaml");
    ChartToRender::from_v1beta1(&chart, "kots/chart.yaml").expect("chart")
}

fn v1beta2(yaml: &str) -> ChartToRender {
    let chart: HelmChartV1Beta2 = serde_saphyr::from_str(yaml).expect("HelmChart yaml");
    ChartToRender::from_v1beta2(&chart, "kots/chart.yaml").expect("chart")
}

const HELM_CHART: &str = "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: app\nspec:\n  chart:\n    name: app\n    chartVersion: 1.2.0\n  values:\n    replicas: 2\n  optionalValues:\n    - when: \"true\"\n      recursiveMerge: true\n      values:\n        image:\n          tag: \"1.1\"\n    - when: \"false\"\n      values:\n        replicas: 9\n";

/// Release files: the wanted chart among another version, a gzip that is not a chart and a file
/// that is not gzip at all.
fn release_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "charts/app-1.1.0.tgz".into(),
            chart_archive(&sample_chart("1.1.0")),
        ),
        (
            "charts/app-1.2.0.tgz".into(),
            chart_archive(&sample_chart("1.2.0")),
        ),
        (
            "notes.tar.gz".into(),
            chart_archive(&[("notes/readme.txt".into(), "hello".into())]),
        ),
        ("kots/app.yaml".into(), b"kind: Application\n".to_vec()),
    ]
}

fn offered(files: &[(String, Vec<u8>)]) -> impl Iterator<Item = ReleaseFile<'_>> {
    files
        .iter()
        .map(|(path, bytes)| ReleaseFile { path, bytes })
}

#[test]
fn the_archive_matching_name_and_version_is_found_and_a_miss_names_what_was_found() {
    let files = release_files();
    let wanted = ChartWanted {
        helm_chart: "HelmChart app (kots/chart.yaml)".into(),
        name: "app".into(),
        version: "1.2.0".into(),
    };
    let found = find_chart_archive(offered(&files), &wanted, &ArchiveLimits::default()).unwrap();
    assert_eq!(found.path, "charts/app-1.2.0.tgz");
    assert_eq!(found.dependencies.len(), 2);
    assert_eq!(found.dependencies[0].alias.as_deref(), Some("database"));
    assert!(found.metadata_files.contains_key("Chart.yaml"));

    let missing = ChartWanted {
        version: "2.0.0".into(),
        ..wanted
    };
    let error = find_chart_archive(offered(&files), &missing, &ArchiveLimits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "HelmChart app (kots/chart.yaml): no chart archive in the release is chart app version 2.0.0; found charts/app-1.1.0.tgz (chart app version 1.1.0), charts/app-1.2.0.tgz (chart app version 1.2.0), notes.tar.gz (no root Chart.yaml with a name)"
    );
}

#[test]
fn unsafe_and_oversized_archives_are_refused_naming_the_file() {
    let wanted = ChartWanted {
        helm_chart: "HelmChart app (kots/chart.yaml)".into(),
        name: "app".into(),
        version: "1.0.0".into(),
    };
    let mut files = sample_chart("1.0.0");
    // The tar crate refuses to write `..` through its path API; write the name bytes directly.
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, contents.as_bytes())
            .unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..14].copy_from_slice(b"app/../evil.sh");
    header.set_size(0);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, std::io::empty()).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, &tar).unwrap();
    let escaping = gzip.finish().unwrap();
    let error = find_chart_archive(
        [ReleaseFile {
            path: "app.tgz",
            bytes: &escaping,
        }],
        &wanted,
        &ArchiveLimits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "chart archive app.tgz: entry app/../evil.sh climbs out of the archive with .."
    );

    files.push(("app/big.bin".into(), "0".repeat(2 * 1024 * 1024)));
    let big = chart_archive(&files);
    let small = ArchiveLimits {
        max_archive_bytes: 10 * 1024 * 1024,
        max_unpacked_bytes: 1024 * 1024,
        max_entries: 100,
    };
    let error = find_chart_archive(
        [ReleaseFile {
            path: "app.tgz",
            bytes: &big,
        }],
        &wanted,
        &small,
    )
    .unwrap_err();
    assert!(
        matches!(error, ArchiveError::UnpacksTooLarge { ref path, limit } if path == "app.tgz" && limit == 1024 * 1024),
        "{error}"
    );
    let tight = ArchiveLimits {
        max_archive_bytes: 100,
        ..small
    };
    let error = find_chart_archive(
        [ReleaseFile {
            path: "app.tgz",
            bytes: &big,
        }],
        &wanted,
        &tight,
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with("chart archive app.tgz is "),
        "{error}"
    );
}

/// The objects of `files`, parsed, in order.
fn objects(files: &[windlass_helm::RenderedFile]) -> Vec<Value> {
    files
        .iter()
        .map(|file| serde_saphyr::from_str::<Value>(&file.text).expect("rendered yaml"))
        .collect()
}

#[test]
fn a_v1beta1_chart_renders_with_merged_values_and_the_kots_layout() {
    let files = release_files();
    let chart = v1beta1(HELM_CHART);
    let rendered = render_chart(
        &chart,
        offered(&files),
        "app-namespace",
        ValuesFor::Install,
        &helm(),
        &ArchiveLimits::default(),
    )
    .unwrap();
    let layout: BTreeMap<&str, &str> = rendered
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.sub_base.as_str()))
        .collect();
    let expected: BTreeMap<&str, &str> = [
        ("crds/widget.yaml", "crds"),
        ("charts/database/crds/backup.yaml", "charts/database/crds"),
        (
            "charts/database/templates/statefulset.yaml",
            "charts/database",
        ),
        ("charts/cache/templates/deployment.yaml", "charts/cache"),
        ("templates/config.yaml", ""),
        ("templates/config-2.yaml", ""),
        ("templates/deployment.yaml", ""),
        ("templates/hook-job.yaml", ""),
    ]
    .into_iter()
    .collect();
    assert_eq!(layout, expected);
    let objects = objects(&rendered.files);
    let web = objects
        .iter()
        .find(|object| object["metadata"]["name"] == "app-web")
        .expect("the web Deployment, named after the directory");
    assert_eq!(web["spec"]["replicas"], json!(2));
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.vendor.example/team/web:1.1"
    );
    let config = objects
        .iter()
        .find(|object| object["metadata"]["name"] == "app-one")
        .unwrap();
    assert_eq!(config["data"]["namespace"], "app-namespace");
    assert!(
        objects.iter().any(|object| object["kind"] == "Job"),
        "the hook is a plain document"
    );

    // The oracle: helm template run directly with the same values gives the same objects.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("app.tgz"), &rendered.archive.bytes).unwrap();
    std::fs::write(
        work.path().join("values.json"),
        serde_json::to_string(&rendered.values).unwrap(),
    )
    .unwrap();
    let oracle = windlass_testkit::helm_template(
        &work.path().join("app.tgz"),
        "app",
        Some(&work.path().join("values.json")),
    );
    // The oracle runs without --include-crds and without --namespace: compare what both render.
    let ours: Vec<&Value> = objects
        .iter()
        .filter(|object| object["kind"] != "CustomResourceDefinition")
        .filter(|object| object["metadata"]["name"] != "app-one")
        .collect();
    let theirs: Vec<&Value> = oracle
        .iter()
        .filter(|object| object["metadata"]["name"] != "app-one")
        .collect();
    assert_eq!(ours.len(), theirs.len());
    for object in &theirs {
        assert!(
            ours.contains(object),
            "helm rendered {object} and windlass did not"
        );
    }
}

/// KOTS lists a v1beta2 chart's images by templating it with `builder` alone (kotskinds'
/// `GetBuilderValues`): its `values` and `optionalValues` take no part, the chart's own defaults
/// fill in what `builder` does not set.
#[test]
fn a_v1beta2_chart_renders_with_its_builder_values_alone() {
    let files = release_files();
    let chart = v1beta2(
        "apiVersion: kots.io/v1beta2\nkind: HelmChart\nmetadata:\n  name: app\nspec:\n  releaseName: web-release\n  chart:\n    name: app\n    chartVersion: 1.1.0\n  values:\n    replicas: 3\n    image:\n      repository: proxy.example/proxy/app/team/web\n  optionalValues:\n    - when: \"true\"\n      recursiveMerge: true\n      values:\n        image:\n          repository: proxy.example/proxy/app/optional/web\n  builder:\n    image:\n      tag: \"builder\"\n",
    );
    assert_eq!(chart.release_name, "web-release");
    let rendered = render_chart(
        &chart,
        offered(&files),
        "default",
        ValuesFor::Builder,
        &helm(),
        &ArchiveLimits::default(),
    )
    .unwrap();
    assert_eq!(rendered.archive.path, "charts/app-1.1.0.tgz");
    assert_eq!(
        Value::Object(rendered.values.clone()),
        json!({"image": {"tag": "builder"}})
    );
    let objects = objects(&rendered.files);
    let web = objects
        .iter()
        .find(|object| object["metadata"]["name"] == "web-release-web")
        .unwrap();
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.vendor.example/team/web:builder"
    );
    assert_eq!(web["spec"]["replicas"], 1);
    // Installed, it gets its values and true optionalValues.
    let installed = chart.merged_values().unwrap();
    assert_eq!(installed["replicas"], 3);
    assert_eq!(
        installed["image"]["repository"],
        "proxy.example/proxy/app/optional/web"
    );
}

#[test]
fn a_bad_when_and_a_missing_archive_fail_before_helm_runs() {
    let files = release_files();
    let chart = v1beta1(&HELM_CHART.replace("when: \"false\"", "when: \"\""));
    let error = render_chart(
        &chart,
        offered(&files),
        "default",
        ValuesFor::Install,
        // A helm that cannot start: the error must come before it is needed.
        &HelmTool::new(PathBuf::from("/nonexistent/helm")),
        &ArchiveLimits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "HelmChart app (kots/chart.yaml): spec.optionalValues[1].when is empty: it must be true or false"
    );
    let chart = v1beta1(&HELM_CHART.replace("1.2.0", "3.0.0"));
    let error = render_chart(
        &chart,
        offered(&files),
        "default",
        ValuesFor::Install,
        &HelmTool::new(PathBuf::from("/nonexistent/helm")),
        &ArchiveLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, RenderError::Archive(ArchiveError::NotFound { .. })),
        "{error}"
    );
}

/// A shell script standing in for helm.
fn fake_helm(dir: &Path, body: &str) -> HelmTool {
    let path = dir.join("helm");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut tool = HelmTool::new(path);
    tool.timeout = Duration::from_secs(30);
    tool.max_output_bytes = 64 * 1024;
    tool
}

fn template_with(tool: &HelmTool) -> Result<String, HelmError> {
    let archive = chart_archive(&sample_chart("1.0.0"));
    tool.template(&windlass_helm::run::TemplateRequest {
        archive: &archive,
        release_name: "app",
        namespace: "default",
        values: &serde_json::Map::new(),
    })
    .map(|output| output.stdout)
}

#[test]
fn helm_runs_bounded_in_a_cleared_environment_and_a_temporary_directory() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY of the check: the test's own environment has PATH; helm must not see it.
    let printed = template_with(&fake_helm(dir.path(), "env | sort; pwd; ls")).unwrap();
    let names: Vec<&str> = printed
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .filter(|name| *name != "PWD" && *name != "SHLVL" && *name != "_")
        .collect();
    assert_eq!(
        names,
        [
            "HELM_CACHE_HOME",
            "HELM_CONFIG_HOME",
            "HELM_DATA_HOME",
            "HOME"
        ]
    );
    assert!(printed.contains("windlass-helm-"), "{printed}");
    assert!(printed.contains("chart.tgz\nvalues.yaml"), "{printed}");

    let mut slow = fake_helm(dir.path(), "sleep 30");
    slow.timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let error = template_with(&slow).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        error.to_string(),
        "helm template ran longer than 2 s and was stopped"
    );

    let chatty = fake_helm(dir.path(), "yes windlass");
    let error = template_with(&chatty).unwrap_err();
    assert_eq!(
        error.to_string(),
        "helm template printed more than 65536 bytes and was stopped"
    );

    let failing = fake_helm(dir.path(), "echo 'Error: chart is broken' >&2; exit 1");
    let error = template_with(&failing).unwrap_err().to_string();
    assert_eq!(
        error,
        "helm template app chart.tgz failed (exit status: 1): Error: chart is broken"
    );

    let old = fake_helm(dir.path(), "echo v3.14.0+gabc");
    let error = old.version().unwrap_err().to_string();
    assert!(
        error.ends_with("is version \"v3.14.0+gabc\": windlass needs Helm 4 (v4.x)"),
        "{error}"
    );
    assert!(helm().version().unwrap().starts_with("v4."));
}
