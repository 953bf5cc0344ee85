//! `--target kube` end to end: the real `windlass` binary applies to `windlass-test-apiserver`,
//! which is a FAKE Kubernetes API server (a test double from this workspace, `apiserver/`): no
//! real kube-apiserver can be installed on these machines, so these tests show what windlass sends
//! and how it reacts to the answers a real server gives (server-side apply with managedFields and
//! conflicts, Status errors, faults), as far as the fake follows the Kubernetes API conventions.
//! The KOTS takeover case uses the real `kubectl` 1.33 for the client-side apply KOTS does.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use windlass_test_apiserver::{Fault, FaultAction, FaultMatch, Options, TestApiServer};

use super::*;

/// A fake API server with a kubeconfig pointing at it.
struct FakeCluster {
    server: TestApiServer,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

fn fake_cluster(options: Options) -> FakeCluster {
    let dir = tempfile::tempdir().unwrap();
    let server = TestApiServer::start(options).expect("the fake API server starts");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    FakeCluster {
        server,
        kubeconfig,
        _dir: dir,
    }
}

/// A release directory: `files` under `manifests/`, the quickstart license, and a KOTS
/// Application with `spec` (YAML lines indented two spaces).
fn release(files: &[(&str, &str)], application_spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
    std::fs::create_dir_all(dir.path().join("userdata")).unwrap();
    std::fs::copy(
        quickstart().join("userdata/license.yaml"),
        dir.path().join("userdata/license.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kots-app.yaml"),
        format!(
            "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: Test\n{application_spec}"
        ),
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("manifests").join(name), text).unwrap();
    }
    dir
}

fn rewrite(release: &Path, files: &[(&str, &str)]) {
    let manifests = release.join("manifests");
    std::fs::remove_dir_all(&manifests).unwrap();
    std::fs::create_dir_all(&manifests).unwrap();
    for (name, text) in files {
        std::fs::write(manifests.join(name), text).unwrap();
    }
}

fn install_kube(state: &Path, release: &Path, cluster: &FakeCluster, extra: &[&str]) -> Output {
    output_within(
        windlass(state)
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg(release)
            .arg("--target")
            .arg("kube")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(extra),
    )
}

fn apply_kube(state: &Path, install_id: &str, cluster: &FakeCluster, extra: &[&str]) -> Output {
    output_within(
        windlass(state)
            .args([
                "apply",
                install_id,
                "--json",
                "--target",
                "kube",
                "--kubeconfig",
            ])
            .arg(&cluster.kubeconfig)
            .args(extra),
    )
}

fn output_within(command: &mut Command) -> Output {
    windlass_testkit::output_within(command, Duration::from_secs(60), "windlass")
}

fn events(state: &Path, install_id: &str) -> Vec<Value> {
    json(run(windlass(state).args(["events", install_id, "--json"])))
        .as_array()
        .unwrap()
        .clone()
}

fn of_type(events: &[Value], event_type: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|event| event["type"] == event_type)
        .map(|event| event["payload"].clone())
        .collect()
}

/// Every object of every `ObjectsApplied`, by `Kind/name`.
fn applied(events: &[Value]) -> BTreeMap<String, Value> {
    of_type(events, "ObjectsApplied")
        .iter()
        .flat_map(|batch| batch["objects"].as_array().unwrap().clone())
        .map(|object| {
            (
                format!(
                    "{}/{}",
                    object["key"]["kind"].as_str().unwrap(),
                    object["key"]["name"].as_str().unwrap()
                ),
                object,
            )
        })
        .collect()
}

const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n";

fn configmap(name: &str, value: &str) -> String {
    CONFIGMAP.replace("{name}", name).replace("{value}", value)
}

#[test]
fn kube_apply_creates_objects_then_an_unchanged_apply_writes_nothing() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let install = json(install_kube(state.path(), &quickstart(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let recorded = applied(&events(state.path(), install_id));
    assert_eq!(
        recorded.keys().cloned().collect::<Vec<_>>(),
        [
            "ConfigMap/api-settings",
            "CronJob/nightly-report",
            "Deployment/api",
            "Secret/my-app-registry",
            "Service/api"
        ]
    );
    for object in recorded.values() {
        assert_eq!(object["outcome"], "created");
        assert!(object["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
        assert!(object["resource_version"].is_string());
    }
    let deployment = cluster
        .server
        .get("apps/v1", "Deployment", "default", "api")
        .expect("the Deployment was applied into the app namespace");
    assert_eq!(
        deployment["metadata"]["annotations"]["windlass.io/app"],
        "my-app"
    );
    let managers: Vec<(&str, &str)> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["manager"].as_str().unwrap(),
                entry["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(managers, [("windlass", "Apply")]);
    // The pull secret went first.
    let writes: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.is_write())
        .map(|request| request.resource)
        .collect();
    assert_eq!(
        writes.first().map(String::as_str),
        Some("secrets"),
        "{writes:?}"
    );
    let version = deployment["metadata"]["resourceVersion"].clone();

    // The same rendered install applied again: nothing is written.
    let before = cluster.server.counts();
    let again = json(apply_kube(state.path(), install_id, &cluster, &[]));
    assert_eq!(again["status"], "completed", "{again}");
    let after = cluster.server.counts();
    assert_eq!(
        after.writes, before.writes,
        "an unchanged apply writes nothing"
    );
    assert_eq!(
        after.dry_runs, before.dry_runs,
        "nor dry-runs what it knows is unchanged"
    );
    let second = applied(&events(state.path(), again["install_id"].as_str().unwrap()));
    assert!(
        second
            .values()
            .all(|object| object["outcome"] == "unchanged"),
        "{second:?}"
    );
    assert_eq!(
        cluster
            .server
            .get("apps/v1", "Deployment", "default", "api")
            .unwrap()["metadata"]["resourceVersion"],
        version
    );

    // `show` lists the applied objects and the app state (no informers: ready).
    let shown = run(windlass(state.path()).args(["show", install_id]));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("app state ready"), "{text}");
    assert!(
        text.contains("applied   created     Deployment default/api uid "),
        "{text}"
    );
    let shown = json(run(
        windlass(state.path()).args(["show", install_id, "--json"])
    ));
    assert_eq!(shown["apply"]["objects"].as_array().unwrap().len(), 5);
    assert_eq!(
        shown["apply"]["completed"]["inventory"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(shown["apply"]["app_state"]["state"], "ready");
}

#[test]
fn a_dry_run_writes_nothing_and_says_what_would_change() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let output = install_kube(state.path(), &quickstart(), &cluster, &["--dry-run"]);
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install}");
    assert_eq!(cluster.server.counts().writes, 0);
    assert!(cluster.server.counts().dry_runs >= 5);
    assert!(
        cluster
            .server
            .get("apps/v1", "Deployment", "default", "api")
            .is_none()
    );
    let install_id = install["install_id"].as_str().unwrap();
    let human = run(windlass(state.path())
        .args([
            "apply",
            install_id,
            "--target",
            "kube",
            "--dry-run",
            "--kubeconfig",
        ])
        .arg(&cluster.kubeconfig));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("would create    Deployment default/api"),
        "{text}"
    );
    assert_eq!(cluster.server.counts().writes, 0);
}

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

#[test]
fn crds_and_namespaces_come_first_and_are_waited_for() {
    let cluster = fake_cluster(Options {
        crd_established_delay: Duration::from_millis(400),
        ..Options::default()
    });
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            (
                "widget.yaml",
                "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: tools\nspec:\n  size: 3\n",
            ),
            ("config.yaml", &configmap("early", "x")),
            ("crd.yaml", CRD),
            (
                "namespace.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n",
            ),
        ],
        "",
    );
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let order: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.is_write())
        .map(|request| format!("{}/{}", request.resource, request.name))
        .collect();
    assert_eq!(
        order,
        [
            "secrets/my-app-registry",
            "namespaces/tools",
            "customresourcedefinitions/widgets.example.com",
            "configmaps/early",
            "widgets/w",
        ]
    );
    let waits = of_type(
        &events(state.path(), install["install_id"].as_str().unwrap()),
        "WaitFinished",
    );
    let established = waits
        .iter()
        .find(|wait| wait["wait"] == "established")
        .expect("the CRD's establishment is waited for");
    assert_eq!(established["outcome"], "met");
    assert!(
        established["elapsed_ms"].as_u64().unwrap() >= 300,
        "{established}"
    );
    assert!(
        waits
            .iter()
            .any(|wait| wait["wait"] == "active" && wait["outcome"] == "met")
    );
    assert!(
        cluster
            .server
            .get("example.com/v1", "Widget", "tools", "w")
            .is_some()
    );
}

#[test]
fn conflicts_are_recorded_then_forced_and_refusals_name_object_and_file() {
    let cluster = fake_cluster(Options::default());
    cluster
        .server
        .apply_as(
            "someone-else",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared", "namespace": "default"}, "data": {"value": "theirs"}}),
            true,
        )
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let release = release(&[("shared.yaml", &configmap("shared", "ours"))], "");
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let recorded = applied(&events(
        state.path(),
        install["install_id"].as_str().unwrap(),
    ));
    let shared = &recorded["ConfigMap/shared"];
    assert_eq!(shared["outcome"], "configured");
    assert_eq!(
        shared["conflicts"][0]["manager"], "someone-else",
        "{shared}"
    );
    assert!(
        shared["conflicts"][0]["field"]
            .as_str()
            .unwrap()
            .contains("data.value"),
        "{shared}"
    );
    let live = cluster
        .server
        .get("v1", "ConfigMap", "default", "shared")
        .unwrap();
    assert_eq!(live["data"]["value"], "ours");

    // An immutable field: refused, naming the object and its file, unless the object allows a
    // recreate.
    let frozen = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  value: {value}\n";
    rewrite(
        release.path(),
        &[("frozen.yaml", &frozen.replace("{value}", "one"))],
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    let uid = cluster
        .server
        .get("v1", "ConfigMap", "default", "frozen")
        .unwrap()["metadata"]["uid"]
        .clone();
    rewrite(
        release.path(),
        &[("frozen.yaml", &frozen.replace("{value}", "two"))],
    );
    let refused = install_kube(state.path(), release.path(), &cluster, &[]);
    assert_eq!(refused.status.code(), Some(3));
    let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let message = refused["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("ConfigMap default/frozen (rendered/this-cluster/frozen-configmap.yaml): the server refused it: 422")
            && message.contains("windlass.io/recreate-on-immutable"),
        "{message}"
    );
    let allowed = frozen.replace(
        "  name: frozen\n",
        "  name: frozen\n  annotations:\n    windlass.io/recreate-on-immutable: \"true\"\n",
    );
    rewrite(
        release.path(),
        &[("frozen.yaml", &allowed.replace("{value}", "two"))],
    );
    let recreated = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(recreated["status"], "completed", "{recreated}");
    let recorded = applied(&events(
        state.path(),
        recreated["install_id"].as_str().unwrap(),
    ));
    assert_eq!(recorded["ConfigMap/frozen"]["recreated"], true);
    let live = cluster
        .server
        .get("v1", "ConfigMap", "default", "frozen")
        .unwrap();
    assert_eq!(live["data"]["value"], "two");
    assert_ne!(live["metadata"]["uid"], uid);
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let cluster = fake_cluster(Options::default());
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").resource("configmaps"),
        action: FaultAction::TooManyRequests {
            retry_after_seconds: 1,
        },
        remaining: Some(1),
    });
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").resource("services"),
        action: FaultAction::ServerError(503),
        remaining: Some(2),
    });
    let state = tempfile::tempdir().unwrap();
    let install = json(install_kube(state.path(), &quickstart(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let statuses: Vec<(String, u16)> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "patch")
        .map(|request| (request.resource, request.status))
        .collect();
    assert!(
        statuses.contains(&("configmaps".into(), 429)),
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|(resource, status)| resource == "services" && *status == 503)
            .count(),
        2
    );
    assert!(
        cluster
            .server
            .get("v1", "Service", "default", "api")
            .is_some()
    );
}

#[test]
fn prune_deletes_dropped_objects_keeps_what_it_must_and_remembers_refusals() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  annotations:\n    kots.io/keep: \"true\"\ndata:\n  value: k\n";
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "1")),
            ("guarded.yaml", &configmap("guarded", "1")),
            ("kept.yaml", kept),
        ],
        "  additionalNamespaces:\n    - extra\n",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    assert!(
        cluster.server.get("v1", "Namespace", "", "extra").is_some(),
        "additionalNamespaces are created"
    );
    assert!(
        cluster
            .server
            .get("v1", "Secret", "extra", "my-app-registry")
            .is_some(),
        "with the pull secret"
    );
    // Someone else's object with a name windlass applied before, and a delete a webhook refuses.
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("delete").name("guarded"),
        action: FaultAction::Refuse("admission webhook \"guard\" denied the request".into()),
        remaining: None,
    });

    rewrite(release.path(), &[("a.yaml", &configmap("a", "1"))]);
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap();
    let second_events = events(state.path(), second_id);
    let pruned: BTreeMap<String, String> = of_type(&second_events, "ObjectPruned")
        .iter()
        .map(|pruned| {
            (
                pruned["key"]["name"].as_str().unwrap().to_string(),
                pruned["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pruned.get("b").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
    assert_eq!(pruned.get("kept").map(String::as_str), Some("kept"));
    assert_eq!(pruned.get("guarded").map(String::as_str), Some("refused"));
    assert_eq!(
        pruned.get("extra").map(String::as_str),
        Some("kept"),
        "an additionalNamespaces namespace stays"
    );
    assert!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "b")
            .is_none()
    );
    assert!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "kept")
            .is_some()
    );
    let deletes: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "delete")
        .map(|request| request.name)
        .collect();
    assert!(
        !deletes.contains(&"a".to_string()) && !deletes.contains(&"kept".to_string()),
        "{deletes:?}"
    );
    let completed = &of_type(&second_events, "ApplyCompleted")[0];
    let inventory: Vec<&str> = completed["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["key"]["name"].as_str().unwrap())
        .collect();
    assert!(
        inventory.contains(&"guarded"),
        "a refused delete stays in the inventory: {inventory:?}"
    );
    assert!(inventory.contains(&"kept"));

    // The refusal lifted, the next install prunes it; an object replaced by someone else (new uid,
    // no ownership annotation) is not deleted.
    cluster.server.clear_faults();
    cluster
        .server
        .delete("v1", "ConfigMap", "default", "kept")
        .unwrap();
    cluster
        .server
        .apply_as(
            "someone-else",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kept", "namespace": "default"}, "data": {"value": "mine"}}),
            true,
        )
        .unwrap();
    let third = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(third["status"], "completed", "{third}");
    let pruned: BTreeMap<String, String> = of_type(
        &events(state.path(), third["install_id"].as_str().unwrap()),
        "ObjectPruned",
    )
    .iter()
    .map(|pruned| {
        (
            pruned["key"]["name"].as_str().unwrap().to_string(),
            pruned["outcome"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    assert_eq!(
        pruned.get("guarded").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
    assert!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "guarded")
            .is_none()
    );
    assert!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "kept")
            .is_some(),
        "not windlass's any more"
    );
}
