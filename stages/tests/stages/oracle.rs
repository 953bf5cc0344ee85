//! The real kustomize as the oracle for the whole render: for every case of section 9 of the
//! behaviour notes (and generated ones), windlass installs a release through the real engine —
//! offline, with `--known-images` deciding which images are private — and `kubectl kustomize
//! overlays/downstreams/this-cluster` (kustomize v5.6, installed by `scripts/install-kube-tools.sh`)
//! run on windlass's own output must produce exactly the objects of windlass's native
//! `rendered/this-cluster/` (compared as parsed YAML). Each case also pins the images and pull
//! secrets the section documents.

use std::path::Path;
use windlass_state::EventPayload;

use proptest::prelude::*;
use serde_json::Value;
use windlass_engine::{InstallState, InstallStatus};
use windlass_stages::PipelineOptions;
use windlass_stages::events::{Builder, MidstreamRendered};
use windlass_stages::plan_overrides::PlanOverridesConfig;
use windlass_stages::probe_images::ProbeImagesConfig;
use windlass_stages::render_midstream::RenderMidstreamConfig;
use windlass_testkit::kube_tools::{assert_same_objects, kubectl, kustomize_build};

use crate::support::{Installer, fact, temp_dir};

const LICENSE: &str = "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: abc\n  licenseSequence: 1\n";
const DIGEST: &str = "sha256:4c8f8d6e6a0b3f2c9d1e7a5b8c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d";

/// A release: manifests, which images are private, and plan settings.
struct Case {
    manifests: String,
    private: Vec<String>,
    public: Vec<String>,
    proxy_domain: Option<String>,
    registry_domain: Option<String>,
}

fn deployment(name: &str, namespace: Option<&str>, images: &[&str], init: &[&str]) -> String {
    let namespace = namespace
        .map(|ns| format!("  namespace: {ns}\n"))
        .unwrap_or_default();
    let list = |images: &[&str], prefix: &str| -> String {
        images
            .iter()
            .enumerate()
            .map(|(index, image)| {
                format!("        - name: {prefix}{index}\n          image: {image}\n")
            })
            .collect()
    };
    let init = if init.is_empty() {
        String::new()
    } else {
        format!("      initContainers:\n{}", list(init, "init"))
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{namespace}spec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n{init}      containers:\n{}",
        list(images, "c")
    )
}

fn known_images(case: &Case) -> String {
    let mut text = String::from(
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: my-app\nspec:\n  knownImages:\n",
    );
    for (images, private) in [(&case.private, true), (&case.public, false)] {
        for image in images {
            text.push_str(&format!(
                "    - image: \"{image}\"\n      isPrivate: {private}\n"
            ));
        }
    }
    text
}

/// Installs `case`, checks kustomize agrees with the native render, returns the rendered objects.
fn render(case: &Case) -> Vec<Value> {
    render_keeping_output(case).2
}

/// [`render`], also returning the output directory (kept while the `TempDir` lives).
fn render_keeping_output(case: &Case) -> (tempfile::TempDir, std::path::PathBuf, Vec<Value>) {
    let (_, work, out, native) = install_case(case);
    (work, out, native)
}

/// [`render_keeping_output`], also returning the install's state.
fn install_case(
    case: &Case,
) -> (
    InstallState,
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<Value>,
) {
    let release = temp_dir();
    std::fs::write(release.path().join("app.yaml"), &case.manifests).unwrap();
    std::fs::create_dir(release.path().join("userdata")).unwrap();
    std::fs::write(release.path().join("userdata/license.yaml"), LICENSE).unwrap();
    let work = temp_dir();
    let known = work.path().join("installation.yaml");
    std::fs::write(&known, known_images(case)).unwrap();
    let options = PipelineOptions {
        probe: ProbeImagesConfig {
            offline: true,
            known_images_file: Some(known),
            ..Default::default()
        },
        plan: PlanOverridesConfig {
            proxy_domain: case.proxy_domain.clone(),
            registry_domain: case.registry_domain.clone(),
            ..Default::default()
        },
        render: RenderMidstreamConfig {
            external_kustomize: vec![kubectl().display().to_string(), "kustomize".into()],
        },
        ..Default::default()
    };
    let installer = Installer::with_pipeline(&windlass_stages::default_pipeline(&options));
    let out = work.path().join("out");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state =
        runtime.block_on(installer.install(installer.request(release.path(), &out), "oracle"));
    assert_eq!(
        state.status,
        InstallStatus::Completed,
        "{:?}",
        state.failure
    );
    let native = read_rendered(&out.join("rendered/this-cluster"));
    let oracle = kustomize_build(&out.join("overlays/downstreams/this-cluster"));
    assert_same_objects(&oracle, &native);
    (state, work, out, native)
}

fn read_rendered(dir: &Path) -> Vec<Value> {
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        objects.push(serde_saphyr_value(&text));
    }
    objects
}

fn serde_saphyr_value(text: &str) -> Value {
    let document = windlass_manifest::documents::parse_documents("rendered", text.as_bytes())
        .unwrap()
        .pop()
        .unwrap();
    std::sync::Arc::unwrap_or_clone(document.value)
}

/// The pod spec of the `kind` object called `name`.
fn pod_spec<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let object = objects
        .iter()
        .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"));
    match kind {
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Pod" => &object["spec"],
        _ => &object["spec"]["template"]["spec"],
    }
}

fn images_of(objects: &[Value], kind: &str, name: &str) -> Vec<String> {
    let spec = pod_spec(objects, kind, name);
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| spec[list].as_array().cloned().unwrap_or_default())
        .map(|container| container["image"].as_str().unwrap().to_string())
        .collect()
}

fn pull_secrets_of(objects: &[Value], kind: &str, name: &str) -> Vec<String> {
    pod_spec(objects, kind, name)["imagePullSecrets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|secret| secret["name"].as_str().unwrap().to_string())
        .collect()
}

fn case(manifests: String, private: &[&str], public: &[&str]) -> Case {
    Case {
        manifests,
        private: private.iter().map(|image| image.to_string()).collect(),
        public: public.iter().map(|image| image.to_string()).collect(),
        proxy_domain: None,
        registry_domain: None,
    }
}

const P: &str = "proxy.replicated.com/proxy/my-app";

#[test]
fn section_9_images_render_as_documented_and_kustomize_agrees() {
    let with_digest = format!("quay.io/my-org/api@{DIGEST}");
    let with_both = format!("quay.io/my-org/api:v1@{DIGEST}");
    let rows: Vec<(&str, &str, String)> = vec![
        (
            "1",
            "quay.io/my-org/api:v1.0.1",
            format!("{P}/quay.io/my-org/api:v1.0.1"),
        ),
        ("3", "myorg/private:2.0", format!("{P}/myorg/private:2.0")),
        (
            "4",
            "docker.io/myorg/private:2.0",
            format!("{P}/docker.io/myorg/private:2.0"),
        ),
        ("5", "redis:7", format!("{P}/redis:7")),
        (
            "6",
            &with_digest,
            format!("{P}/quay.io/my-org/api@{DIGEST}"),
        ),
        (
            "7",
            &with_both,
            format!("{P}/quay.io/my-org/api:v1@{DIGEST}"),
        ),
        ("8", "quay.io/my-org/api", format!("{P}/quay.io/my-org/api")),
        (
            "9",
            "registry.replicated.com/my-app/api:1",
            "registry.replicated.com/my-app/api:1".into(),
        ),
        (
            "13",
            "proxy.replicated.com/proxy/my-app/quay.io/my-org/api:1",
            "proxy.replicated.com/proxy/my-app/quay.io/my-org/api:1".into(),
        ),
        (
            "16",
            "ghcr.io/my-org/init:0.3",
            format!("{P}/ghcr.io/my-org/init:0.3"),
        ),
        (
            "windlass: index.docker.io alias",
            "index.docker.io/org/x:1",
            format!("{P}/index.docker.io/org/x:1"),
        ),
    ];
    for (row, image, expected) in rows {
        let objects = render(&case(deployment("app", None, &[image], &[]), &[image], &[]));
        assert_eq!(
            images_of(&objects, "Deployment", "app"),
            vec![expected],
            "case {row}"
        );
        assert_eq!(
            pull_secrets_of(&objects, "Deployment", "app"),
            ["my-app-registry"],
            "case {row}"
        );
    }
    // 2: public, unchanged, still patched.
    let objects = render(&case(
        deployment("web", None, &["nginx:1.25"], &[]),
        &[],
        &["nginx:1.25"],
    ));
    assert_eq!(images_of(&objects, "Deployment", "web"), ["nginx:1.25"]);
    assert_eq!(
        pull_secrets_of(&objects, "Deployment", "web"),
        ["my-app-registry"]
    );
}

#[test]
fn custom_domains_cronjobs_tags_and_the_secret_render_as_documented() {
    // 10 and 12: custom registry and proxy domains.
    let mut custom = case(
        deployment(
            "app",
            None,
            &[
                "registry.replicated.com/my-app/api:1",
                "quay.io/my-org/api:1",
            ],
            &[],
        ),
        &[
            "registry.replicated.com/my-app/api:1",
            "quay.io/my-org/api:1",
        ],
        &[],
    );
    custom.proxy_domain = Some("images.example.com".into());
    custom.registry_domain = Some("registry.example.com".into());
    let objects = render(&custom);
    assert_eq!(
        images_of(&objects, "Deployment", "app"),
        [
            "registry.example.com/my-app/api:1",
            "images.example.com/proxy/my-app/quay.io/my-org/api:1"
        ]
    );
    let secret = objects
        .iter()
        .find(|object| object["kind"] == "Secret")
        .unwrap();
    let config = base64_decode(secret["data"][".dockerconfigjson"].as_str().unwrap());
    assert_eq!(
        config,
        r#"{"auths":{"images.example.com":{"auth":"TElDRU5TRV9JRDphYmM="},"registry.example.com":{"auth":"TElDRU5TRV9JRDphYmM="}}}"#
    );

    // 14 and 15: one image in a Deployment and a CronJob, two tags of one repository.
    let cronjob = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: report\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: r\n              image: quay.io/my-org/api:2\n";
    let manifests = format!(
        "{}---\n{cronjob}",
        deployment("app", None, &["quay.io/my-org/api:1"], &[])
    );
    let objects = render(&case(
        manifests,
        &["quay.io/my-org/api:1", "quay.io/my-org/api:2"],
        &[],
    ));
    assert_eq!(
        images_of(&objects, "Deployment", "app"),
        [format!("{P}/quay.io/my-org/api:1")]
    );
    assert_eq!(
        images_of(&objects, "CronJob", "report"),
        [format!("{P}/quay.io/my-org/api:2")]
    );
    assert_eq!(
        pull_secrets_of(&objects, "CronJob", "report"),
        ["my-app-registry"]
    );

    // 21: the secret of license `abc` with the default domains.
    let objects = render(&case(
        deployment("app", None, &["nginx:1"], &[]),
        &[],
        &["nginx:1"],
    ));
    let secret = objects
        .iter()
        .find(|object| object["kind"] == "Secret")
        .unwrap();
    assert_eq!(secret["metadata"]["name"], "my-app-registry");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        secret["metadata"]["annotations"]["kots.io/creation-phase"],
        "-9999"
    );
    assert_eq!(
        base64_decode(secret["data"][".dockerconfigjson"].as_str().unwrap()),
        r#"{"auths":{"proxy.replicated.com":{"auth":"TElDRU5TRV9JRDphYmM="},"registry.replicated.com":{"auth":"TElDRU5TRV9JRDphYmM="}}}"#
    );
}

#[test]
fn vendor_pull_secrets_are_kept_and_additional_namespaces_get_copies() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent\n  namespace: monitoring\nspec:\n  imagePullSecrets:\n    - name: vendor-secret\n  containers:\n    - name: a\n      image: ghcr.io/my-org/agent:1\n";
    let application = "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  additionalNamespaces:\n    - monitoring\n";
    let manifests = format!("{pod}---\n{application}");
    let objects = render(&case(manifests, &["ghcr.io/my-org/agent:1"], &[]));
    assert_eq!(
        images_of(&objects, "Pod", "agent"),
        [format!("{P}/ghcr.io/my-org/agent:1")]
    );
    // Both kept; kustomize puts the patched entry first.
    assert_eq!(
        pull_secrets_of(&objects, "Pod", "agent"),
        ["my-app-registry", "vendor-secret"]
    );
    let namespaces: Vec<&str> = objects
        .iter()
        .filter(|object| object["kind"] == "Secret")
        .map(|object| object["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces.len(), 2);
    // The app namespace of the test installer is `example`.
    assert!(
        namespaces.contains(&"example") && namespaces.contains(&"monitoring"),
        "{namespaces:?}"
    );
}

fn base64_decode(text: &str) -> String {
    use std::process::Command;
    let output = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

fn image_spelling() -> impl Strategy<Value = String> {
    let repository = prop_oneof![
        Just("redis".to_string()),
        Just("library/redis".to_string()),
        Just("docker.io/library/redis".to_string()),
        Just("myorg/app".to_string()),
        Just("docker.io/myorg/app".to_string()),
        Just("index.docker.io/myorg/app".to_string()),
        Just("quay.io/my-org/api".to_string()),
        Just("quay.io/my-org/api-extra".to_string()),
        Just("ghcr.io/team/tool".to_string()),
        Just("registry.replicated.com/my-app/api".to_string()),
    ];
    let suffix = prop_oneof![
        Just(String::new()),
        Just(":1".to_string()),
        Just(":v2.3".to_string()),
        Just(format!("@{DIGEST}")),
        Just(format!(":v1@{DIGEST}")),
    ];
    (repository, suffix).prop_map(|(repository, suffix)| format!("{repository}{suffix}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Random mixes of kinds, namespaces, image spellings, tags, digests and privacy: kustomize
    /// and the native build agree, and every workload carries the pull secret.
    #[test]
    fn generated_releases_render_like_kustomize(
        workloads in proptest::collection::vec(
            (prop_oneof![Just("Deployment"), Just("CronJob"), Just("Pod")],
             prop_oneof![Just(None), Just(Some("apps")), Just(Some("monitoring"))],
             proptest::collection::vec((image_spelling(), any::<bool>()), 1..4)),
            1..5),
    ) {
        let mut manifests = String::new();
        let mut private = Vec::new();
        let mut public = Vec::new();
        for (index, (kind, namespace, images)) in workloads.iter().enumerate() {
            let name = format!("w{index}");
            let refs: Vec<&str> = images.iter().map(|(image, _)| image.as_str()).collect();
            for (image, is_private) in images {
                // One decision per image string: the first one drawn wins.
                if !private.contains(image) && !public.contains(image) {
                    if *is_private { private.push(image.clone()) } else { public.push(image.clone()) }
                }
            }
            let ns = namespace.map(|ns| format!("  namespace: {ns}\n")).unwrap_or_default();
            let containers: String = refs.iter().enumerate()
                .map(|(i, image)| format!("CONTAINER- name: c{i}\nCONTAINER  image: \"{image}\"\n"))
                .collect();
            let document = match *kind {
                "Pod" => format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{ns}spec:\n  containers:\n{}", containers.replace("CONTAINER", "    ")),
                "CronJob" => format!("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n{ns}spec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n{}", containers.replace("CONTAINER", "            ")),
                _ => format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{ns}spec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n{}", containers.replace("CONTAINER", "        ")),
            };
            manifests.push_str("---\n");
            manifests.push_str(&document);
        }
        let objects = render(&Case {
            manifests,
            private: private.clone(),
            public,
            proxy_domain: None,
            registry_domain: None,
        });
        for (index, (kind, _, _)) in workloads.iter().enumerate() {
            let secrets = pull_secrets_of(&objects, kind, &format!("w{index}"));
            prop_assert_eq!(secrets, vec!["my-app-registry".to_string()]);
        }
    }
}

#[test]
fn custom_resources_with_a_pod_template_are_rewritten_and_patched() {
    // Case 19: a custom resource shaped like a workload (an Argo Rollout).
    let rollout = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: quay.io/my-org/web:3\n";
    let objects = render(&case(rollout.to_string(), &["quay.io/my-org/web:3"], &[]));
    assert_eq!(
        images_of(&objects, "Rollout", "web"),
        [format!("{P}/quay.io/my-org/web:3")]
    );
    assert_eq!(
        pull_secrets_of(&objects, "Rollout", "web"),
        ["my-app-registry"]
    );
}

#[test]
fn every_namespace_is_recorded_for_apply_not_expanded() {
    // Case 18: `additionalNamespaces: ["*"]` — no copy in the render, recorded for apply.
    use windlass_stages::events::SecretsProvisioned;
    let application = "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  additionalNamespaces:\n    - \"*\"\n    - tools\n";
    let manifests = format!(
        "{}---\n{application}",
        deployment("app", None, &["nginx:1"], &[])
    );
    let release = temp_dir();
    std::fs::write(release.path().join("app.yaml"), &manifests).unwrap();
    std::fs::create_dir(release.path().join("userdata")).unwrap();
    std::fs::write(release.path().join("userdata/license.yaml"), LICENSE).unwrap();
    let options = PipelineOptions {
        probe: ProbeImagesConfig {
            offline: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let installer = Installer::with_pipeline(&windlass_stages::default_pipeline(&options));
    let out = temp_dir();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state =
        runtime.block_on(installer.install(installer.request(release.path(), out.path()), "star"));
    let provisioned: SecretsProvisioned =
        crate::support::fact(&state, "provision_secrets", SecretsProvisioned::EVENT_TYPE);
    assert!(provisioned.namespaces.every_namespace);
    assert_eq!(
        provisioned.namespaces.additional,
        ["tools"],
        "named namespaces still get a copy, to be created if missing"
    );
    let native = read_rendered(&out.path().join("rendered/this-cluster"));
    let secret_namespaces: Vec<&str> = native
        .iter()
        .filter(|object| object["kind"] == "Secret")
        .map(|object| object["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(
        secret_namespaces.len(),
        2,
        "app namespace and tools, nothing for \"*\": {secret_namespaces:?}"
    );
    assert_same_objects(
        &kustomize_build(&out.path().join("overlays/downstreams/this-cluster")),
        &native,
    );
}

/// Plain scalars resolve as kustomize (go-yaml v3) resolves them: YAML 1.1 words such as `yes`
/// and `off` stay strings, only `true`/`false` spellings are booleans, and `0777` is octal.
/// windlass once read `yes` as `true` and `0777` as `777.0`, which made a ConfigMap's `data`
/// invalid. Known differences left out here: kustomize turns `2024-01-01` into a timestamp
/// string and `1e3` into an integer, and windlass refuses `.inf`.
#[test]
fn yaml_1_1_spellings_render_as_kustomize_keeps_them() {
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\ndata:\n  yes1: yes\n  no1: No\n  on1: ON\n  off1: off\n  y1: y\n  n1: N\n  t1: True\n  f1: FALSE\n  oct: 0777\n  hex: 0x1F\n  octo: 0o17\n  bin: 0b101\n  under: 1_000\n  half: .5\n  plus: +5\n  neg: -12\n  tilde: ~\n  empty:\n";
    let manifests = format!(
        "{}---\n{config_map}",
        deployment("web", None, &["nginx:1.25"], &[])
    );
    let objects = render(&case(manifests, &[], &["nginx:1.25"]));
    let data = objects
        .iter()
        .find(|object| object["kind"] == "ConfigMap")
        .map(|object| &object["data"])
        .expect("the ConfigMap is rendered");
    let expected = serde_json::json!({
        "yes1": "yes", "no1": "No", "on1": "ON", "off1": "off", "y1": "y", "n1": "N",
        "t1": true, "f1": false, "oct": 511, "hex": 31, "octo": 15, "bin": 5, "under": 1000,
        "half": 0.5, "plus": 5, "neg": -12, "tilde": null, "empty": null,
    });
    assert_eq!(data, &expected);
}

/// Kubernetes names may have 253 characters, and `<name>-<kind>.yaml` then exceeds the 255 bytes a
/// file name may have: the rendered files get shortened names (with a hash), the build still
/// works, and kustomize agrees with it.
#[test]
fn objects_with_253_character_names_render_to_shortened_file_names() {
    use windlass_stages::output::MAX_FILE_NAME_BYTES;
    let config_map_name = format!("c{}", "o".repeat(252));
    let deployment_name = format!("d{}", "e".repeat(252));
    let manifests = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {config_map_name}\ndata:\n  key: value\n---\n{}",
        deployment(
            &deployment_name,
            Some("apps"),
            &["quay.io/my-org/api:v1"],
            &[]
        )
    );
    let (_work, out, objects) =
        render_keeping_output(&case(manifests, &["quay.io/my-org/api:v1"], &[]));
    assert_eq!(
        images_of(&objects, "Deployment", &deployment_name),
        [format!("{P}/quay.io/my-org/api:v1")]
    );
    let mut names: Vec<String> = std::fs::read_dir(out.join("rendered/this-cluster"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        assert!(name.len() <= MAX_FILE_NAME_BYTES, "{name}");
    }
    for (prefix, object_name) in [("coo", &config_map_name), ("dee", &deployment_name)] {
        let shortened: Vec<&String> = names
            .iter()
            .filter(|name| name.starts_with(prefix))
            .collect();
        assert_eq!(shortened.len(), 1, "{names:?}");
        assert_eq!(
            shortened[0].len(),
            MAX_FILE_NAME_BYTES,
            "shortened: {}",
            shortened[0]
        );
        assert!(shortened[0].ends_with(".yaml"));
        assert!(!shortened[0].contains(object_name.as_str()));
    }
}

/// A Deployment `d` whose pod spec is `pod_spec` (YAML at column 0), and every image it names
/// (`image: <ref>` lines), public.
fn deployment_with(pod_spec: &str) -> Case {
    let indented: String = pod_spec
        .lines()
        .map(|line| format!("      {line}\n"))
        .collect();
    let manifests = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n    matchLabels:\n      app: d\n  template:\n    metadata:\n      labels:\n        app: d\n    spec:\n{indented}"
    );
    let mut images: Vec<String> = Vec::new();
    for line in pod_spec.lines() {
        if let Some((_, image)) = line.split_once("image: ") {
            let image = image.trim_end_matches('}').trim().to_string();
            if !images.contains(&image) {
                images.push(image);
            }
        }
    }
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    case(manifests, &[], &images)
}

/// How `render_midstream` built `rendered/`: `None` for the native build, else the reasons it gave
/// for running the external kustomize.
fn external_reasons(state: &InstallState) -> Option<Vec<String>> {
    let rendered: MidstreamRendered =
        fact(state, "render_midstream", MidstreamRendered::EVENT_TYPE);
    match rendered.builder {
        Builder::Native => None,
        Builder::External { unsupported, .. } => Some(unsupported),
    }
}

fn names_of(objects: &[Value], list: &str) -> Vec<Value> {
    pod_spec(objects, "Deployment", "d")[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list}"))
        .iter()
        .map(|item| item.get("name").cloned().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn init_containers_without_a_name_render_as_kustomize_merges_them() {
    // Issue 12 item 7: a chart whose two initContainers have no `name`. kustomize's strategic merge
    // (run because the pull secret is patched in) keeps only the last; windlass used to keep both.
    let case = deployment_with(
        "initContainers:\n- image: busybox:1\n  command: [a]\n- image: busybox:2\n  command: [b]\ncontainers:\n- name: app\n  image: redis:7\n",
    );
    let (state, _work, _out, objects) = install_case(&case);
    let init = pod_spec(&objects, "Deployment", "d")["initContainers"]
        .as_array()
        .unwrap();
    assert_eq!(init.len(), 1, "{init:?}");
    assert_eq!(init[0]["image"], "busybox:2");
    let reasons = external_reasons(&state).expect("the external kustomize built it");
    assert!(
        reasons.iter().any(|reason| reason
            .contains("`spec.template.spec.initContainers` of apps/v1 Deployment `d`")
            && reason.contains("no merge key `name`")),
        "{reasons:?}"
    );
    assert_eq!(
        pull_secrets_of(&objects, "Deployment", "d"),
        ["my-app-registry"]
    );
}

/// Pod specs whose merge lists kustomize re-builds (each rendered through the external kustomize,
/// which the oracle check in [`install_case`] compares with `kubectl kustomize`), with a piece of
/// the reason windlass gives.
const UNKEYED: &[(&str, &str)] = &[
    (
        "containers:\n- {name: a, image: redis:1}\n- {image: redis:2}\n- {name: b, image: redis:3}\n",
        "`spec.template.spec.containers` of apps/v1 Deployment `d`, whose element 1 has no merge key `name`",
    ),
    (
        "containers:\n- {image: redis:2}\n- {name: a, image: redis:1}\n",
        "element 0 has no merge key `name`",
    ),
    (
        "containers:\n- {image: redis:2}\n- {image: redis:4}\n- {name: a, image: redis:1}\n- {name: a, image: redis:5}\n",
        "element 0 has no merge key `name`",
    ),
    (
        "containers:\n- {name: \"\", image: redis:2}\n- {name: a, image: redis:1}\n",
        "element 0 has an empty or non-scalar merge key `name`",
    ),
    (
        "containers:\n- {name: a, image: redis:1}\n- {name: a, image: redis:2}\n",
        "elements 0 and 1 have the same `name`",
    ),
    (
        "containers:\n- name: a\n  image: redis:1\n  ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80}]\n",
        "`spec.template.spec.containers[0].ports`",
    ),
    (
        "containers:\n- name: a\n  image: redis:1\n  ports: [{containerPort: 80}, {containerPort: 80}]\n",
        "element 0 shares `containerPort` with another element and lacks `protocol`",
    ),
    (
        "containers:\n- name: a\n  image: redis:1\n  ports: [{containerPort: 53, protocol: UDP}, {containerPort: 53, protocol: UDP}]\n",
        "elements 0 and 1 have the same `containerPort`, `protocol`",
    ),
    (
        "containers:\n- name: a\n  image: redis:1\n  ports: [{name: http}]\n",
        "no merge key `containerPort`",
    ),
    (
        "containers:\n- name: a\n  image: redis:1\n  env: [{name: A, value: \"1\"}, {name: A, value: \"2\"}]\n",
        "`spec.template.spec.containers[0].env` of apps/v1 Deployment `d`, whose elements 0 and 1 have the same `name`",
    ),
    (
        "containers:\n- name: a\n  image: redis:1\n  env: [{value: \"1\"}]\n",
        "`spec.template.spec.containers[0].env` of apps/v1 Deployment `d`, whose element 0 has no merge key `name`",
    ),
    (
        "containers:\n- name: a\n  image: redis:1\n  volumeMounts: [{name: v, mountPath: /a}, {name: w, mountPath: /a}]\n",
        "`spec.template.spec.containers[0].volumeMounts` of apps/v1 Deployment `d`, whose elements 0 and 1 have the same `mountPath`",
    ),
    (
        "initContainers:\n- name: i\n  image: redis:1\n  env: [{value: \"1\"}, {value: \"2\"}]\ncontainers:\n- {name: a, image: redis:1}\n",
        "`spec.template.spec.initContainers[0].env`",
    ),
    (
        "containers:\n- {name: a, image: redis:1}\nvolumes: [{emptyDir: {}}, {name: v, emptyDir: {}}]\n",
        "`spec.template.spec.volumes` of apps/v1 Deployment `d`, whose element 0 has no merge key `name`",
    ),
    (
        "containers:\n- {name: a, image: redis:1}\nhostAliases: [{hostnames: [a]}, {ip: 1.2.3.4, hostnames: [b]}]\n",
        "`spec.template.spec.hostAliases`",
    ),
    (
        "containers:\n- {name: a, image: redis:1}\ntopologySpreadConstraints:\n- {topologyKey: zone, whenUnsatisfiable: DoNotSchedule, maxSkew: 1}\n- {topologyKey: zone, maxSkew: 2}\n",
        "`spec.template.spec.topologySpreadConstraints`",
    ),
];

#[test]
fn merge_lists_kustomize_rebuilds_are_left_to_kustomize_and_rendered_as_it_does() {
    for (pod_spec_text, reason) in UNKEYED {
        let (state, _work, _out, objects) = install_case(&deployment_with(pod_spec_text));
        let reasons =
            external_reasons(&state).unwrap_or_else(|| panic!("built natively: {pod_spec_text}"));
        assert!(
            reasons.iter().any(|given| given.contains(reason)),
            "{pod_spec_text}: {reasons:?} does not mention {reason}"
        );
        assert_eq!(
            pull_secrets_of(&objects, "Deployment", "d"),
            ["my-app-registry"],
            "{pod_spec_text}"
        );
    }
}

#[test]
fn the_lead_s_observed_container_lists_render_as_kustomize_left_them() {
    // What `kubectl kustomize` v5.6 was seen to make of these lists (a Deployment patched with
    // `imagePullSecrets` only); rendered/ must show the same.
    let observed: &[(&str, Value)] = &[
        (UNKEYED[0].0, serde_json::json!([null])),
        (UNKEYED[1].0, serde_json::json!([null])),
        (UNKEYED[2].0, serde_json::json!([null])),
        (UNKEYED[3].0, serde_json::json!(["", "", "a"])),
    ];
    for (pod_spec_text, names) in observed {
        let (_, _work, _out, objects) = install_case(&deployment_with(pod_spec_text));
        assert_eq!(
            Value::Array(names_of(&objects, "containers")),
            *names,
            "{pod_spec_text}"
        );
    }
}

#[test]
fn keyed_merge_lists_and_custom_resources_build_natively_as_kustomize_does() {
    let keyed = "containers:\n- name: a\n  image: redis:1\n  ports:\n  - {containerPort: 53, protocol: UDP}\n  - {containerPort: 53, protocol: TCP}\n  - {containerPort: 80}\n  - {containerPort: \"81\", name: m}\n  env:\n  - {name: B, value: \"1\"}\n  - name: A\n    valueFrom: {fieldRef: {fieldPath: metadata.name}}\n  volumeMounts:\n  - {mountPath: /b, name: v}\n  - {mountPath: /a, name: v}\n- {name: \"0\", image: redis:2}\ntopologySpreadConstraints:\n- {topologyKey: b, whenUnsatisfiable: DoNotSchedule, maxSkew: 1}\n- {topologyKey: a, whenUnsatisfiable: DoNotSchedule, maxSkew: 1}\n- {topologyKey: a, whenUnsatisfiable: ScheduleAnyway, maxSkew: 1}\nhostAliases:\n- {ip: 1.2.3.4, hostnames: [a, a]}\nvolumes:\n- {name: v, emptyDir: {}}\n- {name: 1, configMap: {name: c}}\n";
    let (state, _work, _out, objects) = install_case(&deployment_with(keyed));
    assert_eq!(external_reasons(&state), None);
    assert_eq!(
        Value::Array(names_of(&objects, "containers")),
        serde_json::json!(["a", "0"])
    );
    // A custom resource has no schema in kustomize: its lists are never merged by key.
    let rollout = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      initContainers:\n        - image: redis:1\n        - image: redis:2\n      containers:\n        - image: redis:3\n        - name: \"\"\n          image: redis:4\n";
    let (state, _work, _out, objects) = install_case(&case(
        rollout.to_string(),
        &[],
        &["redis:1", "redis:2", "redis:3", "redis:4"],
    ));
    assert_eq!(external_reasons(&state), None);
    assert_eq!(images_of(&objects, "Rollout", "web").len(), 4);
}

fn container_name() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("")),
        Just(Some("a")),
        Just(Some("b")),
        Just(Some("c"))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    /// Containers, init containers and env entries with or without their names, repeated or not:
    /// `rendered/` equals `kubectl kustomize` (checked by [`install_case`]), and the native build
    /// is used exactly when every list is keyed.
    #[test]
    fn generated_merge_lists_render_like_kustomize(
        containers in proptest::collection::vec((container_name(), proptest::collection::vec(container_name(), 0..3)), 1..4),
        init in proptest::collection::vec(container_name(), 0..3),
    ) {
        let entry = |name: &Option<&str>| match name {
            Some(name) => format!("name: \"{name}\", "),
            None => String::new(),
        };
        let keyed = |names: &[Option<&str>]| {
            names.iter().all(|name| name.is_some_and(|name| !name.is_empty()))
                && names.iter().enumerate().all(|(index, name)| !names[..index].contains(name))
        };
        let mut text = String::new();
        if !init.is_empty() {
            text.push_str("initContainers:\n");
            for (index, name) in init.iter().enumerate() {
                text.push_str(&format!("- {{{}image: busybox:{index}}}\n", entry(name)));
            }
        }
        text.push_str("containers:\n");
        let mut all_keyed = keyed(&init) && keyed(&containers.iter().map(|(name, _)| *name).collect::<Vec<_>>());
        for (index, (name, env)) in containers.iter().enumerate() {
            text.push_str(&format!("- {}image: redis:{index}\n", entry(name).replace(", ", "\n  ")));
            if !env.is_empty() {
                text.push_str("  env:\n");
                for name in env {
                    text.push_str(&format!("  - {{{}value: x}}\n", entry(name)));
                }
                all_keyed &= keyed(env);
            }
        }
        let (state, _work, _out, _objects) = install_case(&deployment_with(&text));
        prop_assert_eq!(external_reasons(&state).is_none(), all_keyed, "{}", text);
    }
}

#[test]
fn merge_lists_of_metadata_and_of_every_workload_kind_are_checked() {
    // (manifest, a piece of the reason, or None where kustomize has no schema and builds natively)
    let cases: &[(&str, Option<&str>)] = &[
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  finalizers: [a, b, a]\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: redis:1}]\n",
            Some(
                "`metadata.finalizers` of apps/v1 Deployment `d`, whose elements 0 and 2 are the same",
            ),
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  ownerReferences: [{apiVersion: v1, kind: X, name: n}, {apiVersion: v1, kind: Y, name: m}]\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: redis:1}]\n",
            Some(
                "`metadata.ownerReferences` of apps/v1 Deployment `d`, whose element 0 has no merge key `uid`",
            ),
        ),
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: d\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{image: redis:1}, {image: redis:2}]\n",
            Some("`spec.jobTemplate.spec.template.spec.containers` of batch/v1 CronJob `d`"),
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: d\nspec:\n  containers:\n  - name: a\n    image: redis:1\n    env: [{name: A, value: x}, {name: B}, {name: A}]\n",
            Some(
                "`spec.containers[0].env` of v1 Pod `d`, whose elements 0 and 2 have the same `name`",
            ),
        ),
        (
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: d\nspec:\n  serviceName: d\n  template:\n    spec:\n      containers: [{name: a, image: redis:1}]\n      volumes: [{name: v, emptyDir: {}}, {name: v, configMap: {name: c}}]\n",
            Some(
                "`spec.template.spec.volumes` of apps/v1 StatefulSet `d`, whose elements 0 and 1 have the same `name`",
            ),
        ),
        (
            "apiVersion: apps/v1beta2\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n      containers: [{image: redis:1}, {image: redis:2}]\n",
            None,
        ),
    ];
    for (manifest, reason) in cases {
        let (state, _work, _out, _objects) =
            install_case(&case(manifest.to_string(), &[], &["redis:1", "redis:2"]));
        match (external_reasons(&state), reason) {
            (None, None) => {}
            (Some(reasons), Some(reason)) => assert!(
                reasons.iter().any(|given| given.contains(reason)),
                "{manifest}: {reasons:?} does not mention {reason}"
            ),
            (reasons, _) => panic!("{manifest}: expected {reason:?}, got {reasons:?}"),
        }
    }
}
