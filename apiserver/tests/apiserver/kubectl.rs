//! The real kubectl 1.33 driving the test API server. The server is a fake because no real
//! Kubernetes API server can run here; these tests check that kubectl accepts it and that
//! what kubectl prints matches what a real cluster would answer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use windlass_test_apiserver::{Options, TestApiServer};

/// A server, its kubeconfig, and a place for manifests.
struct Cluster {
    server: TestApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn cluster() -> Cluster {
    cluster_with(Options::default())
}

fn cluster_with(options: Options) -> Cluster {
    let server = TestApiServer::start(options).expect("the test API server starts");
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("kubeconfig written");
    Cluster {
        server,
        dir,
        kubeconfig,
    }
}

/// What kubectl printed.
pub(super) struct Printed {
    pub(super) success: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Printed {
    /// stdout, once kubectl `arguments` is asserted to have succeeded.
    pub(super) fn ok(self, arguments: &[&str]) -> String {
        assert!(
            self.success,
            "kubectl {} failed:\nstdout:\n{}\nstderr:\n{}",
            arguments.join(" "),
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

/// Runs the real kubectl `arguments` with `--kubeconfig kubeconfig` and no other configuration
/// (`KUBECONFIG` unset, `HOME` at `home`), bounded to a minute.
pub(super) fn run_kubectl(home: &Path, kubeconfig: &Path, arguments: &[&str]) -> Printed {
    let mut command = Command::new(windlass_testkit::kube_tools::kubectl());
    command
        .env_remove("KUBECONFIG")
        .env("HOME", home)
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(arguments);
    let output = windlass_testkit::output_within(
        &mut command,
        Duration::from_secs(60),
        &format!("kubectl {}", arguments.join(" ")),
    );
    Printed {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Cluster {
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("manifest written");
        path
    }

    fn kubectl(&self, arguments: &[&str]) -> Printed {
        run_kubectl(self.dir.path(), &self.kubeconfig, arguments)
    }

    fn kubectl_ok(&self, arguments: &[&str]) -> String {
        self.kubectl(arguments).ok(arguments)
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
";

/// Fake API server (no real one can run here): `kubectl apply --server-side` creates the
/// object, records kubectl's Apply entry in managedFields with keyed list items, and a
/// second identical apply changes nothing (the resourceVersion stays).
#[test]
fn server_side_apply_creates_and_records_managed_fields() {
    let cluster = cluster();
    let manifest = cluster.write("deployment.yaml", DEPLOYMENT);
    let manifest = manifest.to_str().expect("utf-8 path");
    let printed = cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
    assert_eq!(printed.trim(), "deployment.apps/web serverside-applied");
    let yaml = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(
        yaml.contains("manager: kubectl\n    operation: Apply"),
        "{yaml}"
    );
    assert!(
        yaml.contains(r#"k:{"containerPort":80,"protocol":"TCP"}:"#),
        "{yaml}"
    );
    let version = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
    let again = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(version, again, "an identical apply must not write");
    assert!(cluster.server.counts().verb("patch") >= 2);
}

/// Fake API server (no real one can run here): a field another manager changed makes
/// `kubectl apply --server-side` fail with the API server's conflict message naming that
/// manager and field; `--force-conflicts` takes the field over.
#[test]
fn server_side_apply_conflicts_name_the_manager_and_force_takes_over() {
    let cluster = cluster();
    let manifest = cluster.write("deployment.yaml", DEPLOYMENT);
    let manifest = manifest.to_str().expect("utf-8 path");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
    cluster.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":5}}"#,
    ]);
    let refused = cluster.kubectl(&["apply", "--server-side", "-f", manifest]);
    assert!(!refused.success, "the conflicting apply must fail");
    assert!(
        refused.stderr.contains(r#"Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas"#),
        "{}",
        refused.stderr
    );
    let printed = cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        manifest,
    ]);
    assert_eq!(printed.trim(), "deployment.apps/web serverside-applied");
    let replicas = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "2");
    let managers = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
        "--show-managed-fields",
    ]);
    assert_eq!(
        managers, "kubectl",
        "kubectl-patch owned only replicas and lost it"
    );
}

const LEGACY_CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: legacy
  labels: {app: legacy}
data:
  keep: \"1\"
  drop: \"2\"
";

/// Fake API server (no real one can run here): client-side `kubectl apply` creates with the
/// last-applied annotation and a `kubectl-client-side-apply` Update entry, answers
/// `unchanged` and `configured` as against a real cluster (strategic merge patch), and a later
/// `kubectl apply --server-side` migrates the client-side entry so a key dropped from the
/// manifest is removed.
#[test]
fn client_side_apply_then_server_side_apply_migrates_ownership() {
    let cluster = cluster();
    let manifest = cluster.write("configmap.yaml", LEGACY_CONFIGMAP);
    let manifest = manifest.to_str().expect("utf-8 path");
    assert_eq!(
        cluster.kubectl_ok(&["apply", "-f", manifest]).trim(),
        "configmap/legacy created"
    );
    assert_eq!(
        cluster.kubectl_ok(&["apply", "-f", manifest]).trim(),
        "configmap/legacy unchanged"
    );
    let yaml = cluster.kubectl_ok(&[
        "get",
        "configmap",
        "legacy",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(
        yaml.contains("kubectl.kubernetes.io/last-applied-configuration"),
        "{yaml}"
    );
    assert!(
        yaml.contains("manager: kubectl-client-side-apply\n    operation: Update"),
        "{yaml}"
    );
    cluster.write(
        "configmap.yaml",
        &LEGACY_CONFIGMAP.replace("  drop: \"2\"\n", "  extra: \"3\"\n"),
    );
    assert_eq!(
        cluster.kubectl_ok(&["apply", "-f", manifest]).trim(),
        "configmap/legacy configured"
    );
    let data = cluster.kubectl_ok(&["get", "configmap", "legacy", "-o", "jsonpath={.data}"]);
    assert_eq!(data, r#"{"extra":"3","keep":"1"}"#);
    cluster.write(
        "configmap.yaml",
        &LEGACY_CONFIGMAP.replace("  drop: \"2\"\n", ""),
    );
    assert_eq!(
        cluster
            .kubectl_ok(&["apply", "--server-side", "-f", manifest])
            .trim(),
        "configmap/legacy serverside-applied"
    );
    let data = cluster.kubectl_ok(&["get", "configmap", "legacy", "-o", "jsonpath={.data}"]);
    assert_eq!(
        data, r#"{"keep":"1"}"#,
        "the key only the client-side manager owned is gone"
    );
    let managers = cluster.kubectl_ok(&[
        "get",
        "configmap",
        "legacy",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
        "--show-managed-fields",
    ]);
    assert!(
        !managers.contains("kubectl-client-side-apply"),
        "{managers}"
    );
}

/// Fake API server (no real one can run here): `kubectl delete --wait` returns only once
/// the object is gone — here when its finalizer is removed, as its controller would.
#[test]
fn delete_wait_returns_when_the_finalizer_is_removed() {
    let cluster = cluster();
    let manifest = cluster.write(
        "configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guarded\n  finalizers: [windlass.test/guard]\ndata: {a: b}\n",
    );
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        manifest.to_str().expect("utf-8 path"),
    ]);
    let printed = cluster.kubectl_ok(&["delete", "configmap", "guarded", "--wait=false"]);
    assert_eq!(printed.trim(), r#"configmap "guarded" deleted"#);
    let object = cluster
        .server
        .get("v1", "ConfigMap", "default", "guarded")
        .expect("still there");
    assert!(
        object.pointer("/metadata/deletionTimestamp").is_some(),
        "{object}"
    );
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            cluster.kubectl(&["delete", "configmap", "guarded", "--wait", "--timeout=30s"])
        });
        // kubectl's own DELETE must arrive before the finalizer goes (else it would find nothing
        // to delete), and the object must still be there while kubectl waits.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while cluster
            .server
            .requests()
            .iter()
            .filter(|request| request.verb == "delete" && request.name == "guarded")
            .count()
            < 2
        {
            assert!(
                std::time::Instant::now() < deadline,
                "kubectl sent no DELETE"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !waiting.is_finished(),
            "kubectl must wait for the finalizer"
        );
        cluster
            .server
            .remove_finalizers("v1", "ConfigMap", "default", "guarded")
            .expect("finalizers removed");
        let printed = waiting.join().expect("kubectl thread");
        assert!(printed.success, "{}", printed.stderr);
    });
    assert!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "guarded")
            .is_none()
    );
    let gone = cluster.kubectl(&["get", "configmap", "guarded"]);
    assert!(
        gone.stderr.contains(r#"configmaps "guarded" not found"#),
        "{}",
        gone.stderr
    );
}

/// Fake API server (no real one can run here, and it runs no controllers): `kubectl wait
/// --for=condition=Available` sees the status the test writes as a controller would.
#[test]
fn wait_for_condition_sees_a_status_written_later() {
    let cluster = cluster();
    let manifest = cluster.write("deployment.yaml", DEPLOYMENT);
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        manifest.to_str().expect("utf-8 path"),
    ]);
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            cluster.kubectl(&[
                "wait",
                "--for=condition=Available",
                "deployment/web",
                "--timeout=30s",
            ])
        });
        std::thread::sleep(Duration::from_millis(500));
        cluster
            .server
            .make_ready("apps/v1", "Deployment", "default", "web")
            .expect("status written");
        let printed = waiting.join().expect("kubectl thread");
        assert!(printed.success, "{}", printed.stderr);
        assert_eq!(printed.stdout.trim(), "deployment.apps/web condition met");
    });
    let timed_out = cluster.kubectl(&[
        "wait",
        "--for=condition=Progressing=False",
        "deployment/web",
        "--timeout=1s",
    ]);
    assert!(!timed_out.success);
    assert!(
        timed_out
            .stderr
            .contains("timed out waiting for the condition"),
        "{}",
        timed_out.stderr
    );
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.windlass.test
spec:
  group: windlass.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  properties:
                    name: {type: string}
                    port: {type: integer}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
";

/// Fake API server (no real one can run here): a CRD's resource is not served until the CRD
/// is Established (after the configured delay), `kubectl wait --for condition=established`
/// sees it, and its custom resources merge keyed lists by the CRD's list-map keys.
#[test]
fn custom_resources_are_served_once_the_crd_is_established() {
    let cluster = cluster_with(Options {
        // Long enough that the next kubectl (a process start and discovery) asks before it.
        crd_established_delay: Duration::from_secs(10),
        ..Options::default()
    });
    let crd = cluster.write("crd.yaml", CRD);
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        crd.to_str().expect("utf-8 path"),
    ]);
    let early = cluster.kubectl(&["get", "widgets"]);
    assert!(
        !early.success,
        "widgets must not be served before the CRD is Established"
    );
    assert!(
        early
            .stderr
            .contains(r#"the server doesn't have a resource type "widgets""#),
        "{}",
        early.stderr
    );
    let printed = cluster.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.windlass.test",
        "--timeout=30s",
    ]);
    assert_eq!(
        printed.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.windlass.test condition met"
    );
    let widget = cluster.write(
        "widget.yaml",
        "apiVersion: windlass.test/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  size: 1\n  ports: [{name: http, port: 80}]\n",
    );
    let widget = widget.to_str().expect("utf-8 path");
    assert_eq!(
        cluster
            .kubectl_ok(&["apply", "--server-side", "-f", widget])
            .trim(),
        "widget.windlass.test/w serverside-applied"
    );
    cluster
        .server
        .apply_as(
            "operator",
            serde_json::json!({"apiVersion": "windlass.test/v1", "kind": "Widget",
                "metadata": {"name": "w", "namespace": "default"},
                "spec": {"ports": [{"name": "metrics", "port": 9090}]}}),
            false,
        )
        .expect("a second manager adds its own list item without conflict");
    let ports = cluster.kubectl_ok(&["get", "wd", "w", "-o", "jsonpath={.spec.ports[*].name}"]);
    assert_eq!(ports, "http metrics");
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "widget",
            "w",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "2",
        "the operator's spec change bumped the generation"
    );
    cluster
        .server
        .set_status(
            "windlass.test/v1",
            "Widget",
            "default",
            "w",
            serde_json::json!({"ready": true}),
        )
        .expect("status written");
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "widget",
            "w",
            "-o",
            "jsonpath={.metadata.generation} {.status.ready}"
        ]),
        "2 true",
        "a status change leaves the generation alone"
    );
}

/// Fake API server (no real one can run here): changing an immutable field is refused with
/// the API server's 422 message, which kubectl prints.
#[test]
fn immutable_fields_are_refused() {
    let cluster = cluster();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: frozen}\nimmutable: true\nstringData: {a: one}\n";
    let manifest = cluster.write("secret.yaml", secret);
    let manifest = manifest.to_str().expect("utf-8 path");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
    cluster.write("secret.yaml", &secret.replace("one", "two"));
    let refused = cluster.kubectl(&["apply", "--server-side", "-f", manifest]);
    assert!(!refused.success);
    assert!(
        // stringData is written into data before validation, as the real server does, so the
        // refusal names data.
        refused.stderr.contains(r#"Secret "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set"#),
        "{}",
        refused.stderr
    );
    let deployment = cluster.write("deployment.yaml", DEPLOYMENT);
    let deployment = deployment.to_str().expect("utf-8 path");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", deployment]);
    cluster.write(
        "deployment.yaml",
        &DEPLOYMENT
            .replace(
                "matchLabels: {app: web}",
                "matchLabels: {app: web, tier: x}",
            )
            .replace(
                "labels: {app: web}\n    spec",
                "labels: {app: web, tier: x}\n    spec",
            ),
    );
    let refused = cluster.kubectl(&["apply", "--server-side", "-f", deployment]);
    assert!(!refused.success);
    assert!(
        refused
            .stderr
            .contains(r#"The Deployment "web" is invalid: spec.selector: Invalid value"#),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("field is immutable"),
        "{}",
        refused.stderr
    );
}

/// Fake API server (no real one can run here): creating into a missing namespace is 404,
/// into a Terminating one 403; a deleted namespace stays Terminating (no namespace
/// controller runs, as with envtest).
#[test]
fn namespace_admission_and_termination() {
    let cluster = cluster();
    let manifest = cluster.write("configmap.yaml", LEGACY_CONFIGMAP);
    let manifest = manifest.to_str().expect("utf-8 path");
    let missing = cluster.kubectl(&["apply", "--server-side", "-n", "nope", "-f", manifest]);
    assert!(
        missing.stderr.contains(r#"namespaces "nope" not found"#),
        "{}",
        missing.stderr
    );
    let namespace = cluster.write(
        "namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n",
    );
    cluster.kubectl_ok(&["create", "-f", namespace.to_str().expect("utf-8 path")]);
    cluster.kubectl_ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let phase = cluster.kubectl_ok(&[
        "get",
        "namespace",
        "doomed",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(phase, "Terminating");
    let refused = cluster.kubectl(&["create", "-n", "doomed", "-f", manifest]);
    assert!(
        refused.stderr.contains(r#"configmaps "legacy" is forbidden: unable to create new content in namespace doomed because it is being terminated"#),
        "{}",
        refused.stderr
    );
}

/// Fake API server (no real one can run here): label selectors and paging (`--chunk-size`
/// makes kubectl follow `continue` tokens) select what a real server would.
#[test]
fn get_with_selectors_and_pages() {
    let cluster = cluster();
    let mut manifests = String::new();
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front"), ("d", "db")] {
        manifests.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{tier: {tier}}}\n"
        ));
    }
    let manifest = cluster.write("configmaps.yaml", &manifests);
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        manifest.to_str().expect("utf-8 path"),
    ]);
    let names = |arguments: &[&str]| {
        let mut all = vec![
            "get",
            "configmaps",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ];
        all.extend_from_slice(arguments);
        cluster.kubectl_ok(&all)
    };
    assert_eq!(names(&["-l", "tier=front"]), "a c");
    assert_eq!(names(&["-l", "tier in (back,db)"]), "b d");
    assert_eq!(names(&["-l", "tier!=front,tier notin (db)"]), "b");
    assert_eq!(names(&["--field-selector", "metadata.name!=a"]), "b c d");
    cluster.server.reset_requests();
    let table = cluster.kubectl_ok(&["get", "configmaps", "--chunk-size=1"]);
    let rows: Vec<&str> = table
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(rows, ["NAME", "a", "b", "c", "d"]);
    assert_eq!(
        cluster.server.counts().verb("list"),
        4,
        "one list request per page"
    );
}

/// Fake API server (no real one can run here): `--dry-run=server` answers as if applied but
/// stores nothing, and counts as a dry run, not a write.
#[test]
fn server_dry_run_stores_nothing() {
    let cluster = cluster();
    let manifest = cluster.write("deployment.yaml", DEPLOYMENT);
    cluster.server.reset_requests();
    let printed = cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        manifest.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        printed.trim(),
        "deployment.apps/web serverside-applied (server dry run)"
    );
    assert!(
        cluster
            .server
            .get("apps/v1", "Deployment", "default", "web")
            .is_none()
    );
    let counts = cluster.server.counts();
    assert_eq!(counts.writes, 0);
    assert_eq!(counts.dry_runs, 1);
}

/// A CRD of `gizmos.windlass.test` whose schema declares `spec.size`, `spec.mode` (default
/// `fast`) and `spec.ports[].port`/`protocol` (default `TCP`), and nothing else.
const STRUCTURAL_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.windlass.test
spec:
  group: windlass.test
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              mode: {type: string, default: fast}
              ports:
                type: array
                items:
                  type: object
                  properties:
                    port: {type: integer}
                    protocol: {type: string, default: TCP}
";

/// Fake API server (no real one can run here): what kubectl reads back of a custom resource is
/// pruned and defaulted by the CRD's schema, as from a real cluster: `apply --server-side`
/// stores the schema's defaults (owned by no applier), refuses an undeclared field with
/// structured-merge-diff's message, and `create` refuses undeclared fields (kubectl's default
/// `--validate=strict`) or drops them with a warning (`--validate=warn`).
#[test]
fn custom_resources_are_pruned_and_defaulted_for_kubectl() {
    let cluster = cluster();
    let crd = cluster.write("crd.yaml", STRUCTURAL_CRD);
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        crd.to_str().expect("utf-8 path"),
    ]);
    cluster.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/gizmos.windlass.test",
        "--timeout=30s",
    ]);
    let applied = cluster.write(
        "applied.yaml",
        "apiVersion: windlass.test/v1\nkind: Gizmo\nmetadata: {name: a}\nspec:\n  size: 1\n  ports: [{port: 80}]\n",
    );
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        applied.to_str().expect("utf-8 path"),
    ]);
    let read: serde_json::Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "gizmo",
        "a",
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .expect("kubectl prints JSON");
    assert_eq!(
        read["spec"],
        serde_json::json!({"size": 1, "ports": [{"port": 80, "protocol": "TCP"}], "mode": "fast"}),
        "{read:#}"
    );
    assert_eq!(
        read["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
        serde_json::json!({"f:size": {}, "f:ports": {}}),
        "{read:#}"
    );
    let undeclared = cluster.write(
        "undeclared.yaml",
        "apiVersion: windlass.test/v1\nkind: Gizmo\nmetadata: {name: b}\nspec:\n  size: 2\n  bogus: x\n",
    );
    let undeclared = undeclared.to_str().expect("utf-8 path");
    let refused = cluster.kubectl(&["apply", "--server-side", "-f", undeclared]);
    assert!(!refused.success, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(
            "failed to create typed patch object (default/b; windlass.test/v1, Kind=Gizmo): .spec.bogus: field not declared in schema"
        ),
        "{}",
        refused.stderr
    );
    // kubectl validates strictly by default (`fieldValidation=Strict`): the server refuses.
    let refused = cluster.kubectl(&["create", "-f", undeclared]);
    assert!(!refused.success, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(
            r#"Gizmo in version "v1" cannot be handled as a Gizmo: strict decoding error: unknown field "spec.bogus""#
        ),
        "{}",
        refused.stderr
    );
    let warned = cluster.kubectl(&["create", "--validate=warn", "-f", undeclared]);
    assert!(warned.success, "{}", warned.stderr);
    assert_eq!(
        warned.stderr.trim(),
        r#"Warning: unknown field "spec.bogus""#
    );
    let read: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "gizmo", "b", "-o", "json"]))
            .expect("kubectl prints JSON");
    assert_eq!(
        read["spec"],
        serde_json::json!({"size": 2, "mode": "fast"}),
        "{read:#}"
    );
}
