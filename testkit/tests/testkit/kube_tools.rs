//! `windlass_testkit::kube_tools` against the real `kubectl` and `helm`: an overlay with an
//! `images:` entry and a strategic-merge patch built by kustomize, a chart rendered by helm with
//! and without a values file, and `assert_same_objects` accepting equal sets in any order and
//! rejecting (by panicking) a changed, missing or duplicated object.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use serde_json::{Value, json};
use windlass_testkit::{assert_same_objects, helm_template, kustomize_build, objects_by_identity};

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The panic message of `action`, which must panic.
fn panic_message(action: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(action)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_default()
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: shop
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      imagePullSecrets:
        - name: vendor-secret
      initContainers:
        - name: init
          image: quay.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000
      containers:
        - name: app
          image: quay.io/a/b:1.2
        - name: sidecar
          image: nginx:1.27
";

#[test]
fn kustomize_build_rewrites_images_and_merges_pull_secrets() {
    let directory = tempfile::tempdir().unwrap();
    let root = directory.path();
    write(root, "base/deployment.yaml", DEPLOYMENT);
    write(
        root,
        "base/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n",
    );
    write(
        root,
        "overlay/kustomization.yaml",
        "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
images:
  - name: quay.io/a/b
    newName: proxy.example/proxy/app/quay.io/a/b
patches:
  - path: pullsecrets.yaml
",
    );
    write(
        root,
        "overlay/pullsecrets.yaml",
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: shop
spec:
  template:
    spec:
      imagePullSecrets:
        - name: app-registry
",
    );

    let objects = kustomize_build(&root.join("overlay"));

    assert_eq!(objects.len(), 1, "{objects:#?}");
    let pod = &objects[0]["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "proxy.example/proxy/app/quay.io/a/b:1.2"
    );
    assert_eq!(
        pod["initContainers"][0]["image"],
        "proxy.example/proxy/app/quay.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    );
    assert_eq!(pod["containers"][1]["image"], "nginx:1.27");
    let secrets: Vec<&str> = pod["imagePullSecrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|secret| secret["name"].as_str().unwrap())
        .collect();
    let mut sorted = secrets.clone();
    sorted.sort();
    assert_eq!(sorted, ["app-registry", "vendor-secret"], "{secrets:?}");
    assert!(objects_by_identity(&objects).contains_key("apps/v1/Deployment/shop/app"));
}

#[test]
fn kustomize_build_failure_names_the_tool_and_its_stderr() {
    let directory = tempfile::tempdir().unwrap();
    let message = panic_message(|| {
        kustomize_build(directory.path());
    });
    assert!(message.contains("kubectl kustomize"), "{message}");
    assert!(message.contains("kustomization"), "{message}");
}

fn write_chart(root: &Path) {
    write(
        root,
        "Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n",
    );
    write(
        root,
        "values.yaml",
        "image: quay.io/a/b:1.2\nreplicas: 1\nconfig:\n  greeting: hello\n",
    );
    write(
        root,
        "templates/configmap.yaml",
        "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.config.greeting | quote }}
",
    );
    write(
        root,
        "templates/deployment.yaml",
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: {{ .Values.image | quote }}
",
    );
    // A template that renders to nothing: helm still prints its `# Source:` header.
    write(
        root,
        "templates/optional.yaml",
        "{{- if .Values.optional }}\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n{{- end }}\n",
    );
}

#[test]
fn helm_template_renders_a_chart_with_and_without_values() {
    let directory = tempfile::tempdir().unwrap();
    let chart = directory.path().join("demo");
    write_chart(&chart);

    let defaults = objects_by_identity(&helm_template(&chart, "shop", None));
    assert_eq!(
        defaults.keys().collect::<Vec<_>>(),
        ["apps/v1/Deployment//shop", "v1/ConfigMap//shop-config"]
    );
    let deployment = &defaults["apps/v1/Deployment//shop"];
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "quay.io/a/b:1.2"
    );
    assert_eq!(
        defaults["v1/ConfigMap//shop-config"]["data"],
        json!({"greeting": "hello"})
    );

    let values = directory.path().join("values.yaml");
    std::fs::write(&values, "replicas: 3\nconfig:\n  greeting: bonjour\n").unwrap();
    let overridden = objects_by_identity(&helm_template(&chart, "shop", Some(&values)));
    assert_eq!(
        overridden["apps/v1/Deployment//shop"]["spec"]["replicas"],
        3
    );
    assert_eq!(
        overridden["v1/ConfigMap//shop-config"]["data"]["greeting"],
        "bonjour"
    );
}

fn config_map(namespace: &str, name: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"key": value},
    })
}

#[test]
fn assert_same_objects_ignores_order() {
    let first = config_map("a", "one", "1");
    let second = config_map("b", "one", "1");
    assert_same_objects(&[first.clone(), second.clone()], &[second, first]);
}

#[test]
fn assert_same_objects_shows_the_first_differing_object() {
    let expected = [config_map("a", "one", "1"), config_map("a", "two", "2")];
    let actual = [
        config_map("a", "one", "1"),
        config_map("a", "two", "changed"),
    ];
    let message = panic_message(|| assert_same_objects(&expected, &actual));
    assert!(
        message.contains("object v1/ConfigMap/a/two differs at /data/key"),
        "{message}"
    );
    assert!(message.contains("\"key\": \"2\""), "{message}");
    assert!(message.contains("\"key\": \"changed\""), "{message}");
}

#[test]
fn assert_same_objects_lists_missing_and_unexpected_objects() {
    let expected = [config_map("a", "one", "1")];
    let actual = [config_map("", "one", "1")];
    let message = panic_message(|| assert_same_objects(&expected, &actual));
    assert!(
        message.contains("objects expected but missing:\n  v1/ConfigMap/a/one"),
        "{message}"
    );
    assert!(
        message.contains("objects not expected:\n  v1/ConfigMap//one"),
        "{message}"
    );
}

#[test]
fn objects_by_identity_refuses_duplicates() {
    let message = panic_message(|| {
        objects_by_identity(&[config_map("a", "one", "1"), config_map("a", "one", "2")]);
    });
    assert!(
        message.contains("two objects have the identity v1/ConfigMap/a/one"),
        "{message}"
    );
}
