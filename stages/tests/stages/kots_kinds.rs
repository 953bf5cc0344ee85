//! Documents KOTS never deploys, as the whole default pipeline treats them: troubleshoot
//! preflights, support bundles and redactors (two sharing a name, one named as no Kubernetes object
//! may be, one with no name at all), a kURL installer, a Velero
//! `Backup`, an `app.k8s.io` Application and KOTS's own kinds never reach `base/` or `rendered/`,
//! while a Velero `Schedule` does; a `kots.io/v1beta1` HelmChart that a `kots.io/v1beta2` one with
//! the same release name supersedes is recorded as set aside; two KOTS Applications (Configs,
//! ConfigValues, Installations) are refused naming both.

use std::path::Path;
use windlass_state::EventPayload;

use windlass_engine::InstallStatus;
use windlass_stages::PipelineOptions;
use windlass_stages::events::{BaseFetched, DocumentClass, SupersededHelmChart};
use windlass_stages::probe_images::ProbeImagesConfig;
use windlass_stages::release::{Limits, scan};

use crate::support::{Installer, fact, files_under, temp_dir};

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n        - name: c\n          image: quay.io/my-org/api:1\n";

const LICENSE: &str = "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: kots-kinds-test-license\n  licenseSequence: 1\n";

/// Every document family KOTS reads and never deploys, and a Velero `Schedule`, which it deploys.
const NOT_DEPLOYED: &[(&str, &str)] = &[
    (
        "kots-app.yaml",
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: My App\n",
    ),
    (
        "preflight.yaml",
        "apiVersion: troubleshoot.sh/v1beta2\nkind: Preflight\nmetadata:\n  name: checks\nspec:\n  analyzers:\n    - clusterVersion:\n        outcomes:\n          - pass:\n              message: ok\n",
    ),
    (
        "support-bundle.yaml",
        "apiVersion: troubleshoot.sh/v1beta2\nkind: SupportBundle\nmetadata:\n  name: Support_Bundle\nspec:\n  collectors:\n    - clusterInfo: {}\n",
    ),
    (
        "redactors.yaml",
        "apiVersion: troubleshoot.sh/v1beta2\nkind: Redactor\nmetadata:\n  name: redact\nspec:\n  redactors:\n    - name: one\n---\napiVersion: troubleshoot.sh/v1beta2\nkind: Redactor\nmetadata:\n  name: redact\nspec:\n  redactors:\n    - name: two\n",
    ),
    (
        "old-redactor.yaml",
        "apiVersion: troubleshoot.replicated.com/v1beta1\nkind: Redactor\nspec:\n  redactors: []\n",
    ),
    (
        "installer.yaml",
        "apiVersion: kurl.sh/v1beta1\nkind: Installer\nmetadata:\n  name: cluster\nspec:\n  kubernetes:\n    version: 1.30.x\n",
    ),
    (
        "backup.yaml",
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: backup\nspec:\n  includedNamespaces: ['*']\n",
    ),
    (
        "app-k8s.yaml",
        "apiVersion: app.k8s.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  descriptor:\n    type: my-app\n",
    ),
];

const SCHEDULE: &str = "apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: nightly\nspec:\n  schedule: 0 3 * * *\n  template:\n    includedNamespaces: ['*']\n";

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn options() -> PipelineOptions {
    PipelineOptions {
        probe: ProbeImagesConfig {
            offline: true,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn documents_kots_never_deploys_stay_out_of_base_and_rendered() {
    let release = temp_dir();
    write(
        release.path(),
        &[
            ("app.yaml", DEPLOYMENT),
            ("schedule.yaml", SCHEDULE),
            ("userdata/license.yaml", LICENSE),
        ],
    );
    write(release.path(), NOT_DEPLOYED);
    let out = temp_dir();
    let installer = Installer::with_pipeline(&windlass_stages::default_pipeline(&options()));
    let state = installer
        .install(installer.request(release.path(), out.path()), "kinds")
        .await;
    assert_eq!(
        state.status,
        InstallStatus::Completed,
        "{:?}",
        state.failure
    );

    let fetched: BaseFetched = fact(&state, "fetch_base", BaseFetched::EVENT_TYPE);
    for document in &fetched.documents {
        let expected = match document.file.as_str() {
            "app.yaml" | "schedule.yaml" => DocumentClass::KubernetesObject,
            "kots-app.yaml" => DocumentClass::KotsKind,
            _ => DocumentClass::NotDeployed,
        };
        assert_eq!(document.class, expected, "{document:?}");
    }
    assert_eq!(fetched.documents.len(), 11, "{:?}", fetched.documents);

    let base: Vec<String> = files_under(&out.path().join("base")).into_keys().collect();
    assert_eq!(base, ["app.yaml", "kustomization.yaml", "schedule.yaml"]);
    let rendered = files_under(&out.path().join("rendered"));
    let kinds: Vec<String> = rendered
        .values()
        .flat_map(|text| {
            String::from_utf8_lossy(text)
                .lines()
                .filter_map(|line| line.strip_prefix("kind: ").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(kinds.contains(&"Deployment".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"Schedule".to_string()), "{kinds:?}");
    for never in [
        "Preflight",
        "SupportBundle",
        "Redactor",
        "Installer",
        "Backup",
        "Application",
    ] {
        assert!(!kinds.contains(&never.to_string()), "{never} in {kinds:?}");
    }
    // Every document KOTS never deploys is still stored and copied to upstream/ as it was.
    let upstream = files_under(&out.path().join("upstream"));
    for (path, text) in NOT_DEPLOYED {
        assert_eq!(upstream[*path], text.as_bytes(), "{path}");
    }
}

#[tokio::test]
async fn a_v1beta2_helm_chart_supersedes_the_v1beta1_one_with_its_release_name() {
    let release = temp_dir();
    write(
        release.path(),
        &[
            ("app.yaml", DEPLOYMENT),
            ("userdata/license.yaml", LICENSE),
            (
                "charts/web-v1beta1.yaml",
                "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: web\nspec:\n  chart:\n    name: web-chart\n    chartVersion: 1.0.0\n    releaseName: web\n",
            ),
            (
                "charts/web-v1beta2.yaml",
                "apiVersion: kots.io/v1beta2\nkind: HelmChart\nmetadata:\n  name: web\nspec:\n  chart:\n    name: web-chart\n    chartVersion: 1.0.0\n  releaseName: web\n",
            ),
            (
                "charts/other.yaml",
                "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: other\nspec:\n  chart:\n    name: other-chart\n",
            ),
        ],
    );
    // The archives both HelmCharts name: helm renders the ones windlass keeps.
    let chart = |name: &str, version: &str| {
        windlass_testkit::charts::chart_archive(&[
            (
                format!("{name}/Chart.yaml"),
                format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
            ),
            (
                format!("{name}/templates/config.yaml"),
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n".into(),
            ),
        ])
    };
    std::fs::write(
        release.path().join("charts/web-chart-1.0.0.tgz"),
        chart("web-chart", "1.0.0"),
    )
    .unwrap();
    std::fs::write(
        release.path().join("charts/other-chart-2.0.0.tgz"),
        chart("other-chart", "2.0.0"),
    )
    .unwrap();
    let out = temp_dir();
    let installer = Installer::with_pipeline(&windlass_stages::default_pipeline(&options()));
    let state = installer
        .install(installer.request(release.path(), out.path()), "superseded")
        .await;
    assert_eq!(
        state.status,
        InstallStatus::Completed,
        "{:?}",
        state.failure
    );
    let fetched: BaseFetched = fact(&state, "fetch_base", BaseFetched::EVENT_TYPE);
    assert_eq!(
        fetched.superseded_helm_charts,
        [SupersededHelmChart {
            release_name: "web".into(),
            file: "charts/web-v1beta1.yaml".into(),
            index: 0,
            superseded_by_file: "charts/web-v1beta2.yaml".into(),
            superseded_by_index: 0,
        }]
    );
    let summary = &state
        .stages
        .iter()
        .find(|stage| stage.name == "fetch_base")
        .expect("fetch_base ran")
        .summary;
    assert!(
        summary.as_deref().is_some_and(|summary| summary.contains(
            "set aside: the kots.io/v1beta1 HelmChart in charts/web-v1beta1.yaml (document 1) for the kots.io/v1beta2 one in charts/web-v1beta2.yaml (document 1), both release web"
        )),
        "{summary:?}"
    );
}

#[test]
fn two_single_instance_kots_kinds_are_refused_naming_both() {
    for (kind, extra) in [
        ("Application", "spec:\n  title: x\n"),
        ("Config", "spec:\n  groups: []\n"),
        ("Installation", "spec: {}\n"),
        ("ConfigValues", "spec:\n  values: {}\n"),
    ] {
        let release = temp_dir();
        let one =
            format!("apiVersion: kots.io/v1beta1\nkind: {kind}\nmetadata:\n  name: one\n{extra}");
        let two =
            format!("apiVersion: kots.io/v1beta1\nkind: {kind}\nmetadata:\n  name: two\n{extra}");
        write(
            release.path(),
            &[
                ("app.yaml", DEPLOYMENT),
                ("kots/a.yaml", &one),
                ("kots/b.yaml", &format!("# second\n---\n{two}")),
            ],
        );
        let error = scan(release.path(), &Limits::default(), |_, _| {})
            .err()
            .unwrap_or_else(|| panic!("two {kind}s were accepted"));
        assert_eq!(
            error.to_string(),
            format!(
                "kots/b.yaml (document 1, line 3) and kots/a.yaml (document 1, line 1) are both a KOTS {kind}: a release may hold one (KOTS would use only one of them)"
            )
        );
    }
}
