//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): the foundation waits' failures and the status informers of every kind.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use windlass_test_apiserver::Options;

#[allow(unused_imports)]
use super::apply_kube::*;
use super::*;

const WIDGET: &str =
    "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n";

/// The `WaitFinished` payloads recorded for `install_id`.
fn waits_of(state: &Path, install_id: &str) -> Vec<Value> {
    payloads_of_type(&events(state, install_id), "WaitFinished")
}

/// Runs against the FAKE API server (`windlass-test-apiserver`), which keeps a new CRD pending
/// (not Established, its resources not served) for 30 s: with `--wait-timeout 1` the CRD's wait
/// times out at its deadline, is recorded as `established`/`timed_out` with what it last saw,
/// the install fails (exit code 1), and the custom resource of that CRD is never sent (not even as a dry run).
#[test]
fn a_crd_not_established_by_the_deadline_fails_the_install_before_its_resources() {
    let cluster = fake_cluster(Options {
        crd_established_delay: Duration::from_secs(30),
        ..Options::default()
    });
    let state = tempfile::tempdir().unwrap();
    let release = release(&[("crd.yaml", CRD), ("widget.yaml", WIDGET)], "");
    let started = Instant::now();
    let output = install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "1"],
    );
    let took = started.elapsed();
    // Exit code 1, as the README's table says of an install whose wait timed out (3 is for
    // invalid input and refusals, which this is not).
    let failed = failed_json(&output);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(failed["status"], "failed", "{failed}");
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(
        progress.contains(
            "CustomResourceDefinition widgets.example.com was not established by the deadline"
        ),
        "{progress}"
    );
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("widgets.example.com")
            && message.contains("Established")
            && message.contains("not met after 1s (--wait-timeout)"),
        "{message}"
    );

    let install_id = failed["install_id"].as_str().unwrap();
    let waits = waits_of(state.path(), install_id);
    let established: Vec<&Value> = waits
        .iter()
        .filter(|wait| wait["wait"] == "established")
        .collect();
    assert_eq!(established.len(), 1, "{waits:?}");
    let established = established[0];
    assert_eq!(established["outcome"], "timed_out", "{established}");
    assert_eq!(
        established["key"]["name"], "widgets.example.com",
        "{established}"
    );
    assert_eq!(established["detail"], "no conditions yet", "{established}");
    let elapsed = established["elapsed_ms"].as_u64().unwrap();
    assert!((1000..10_000).contains(&elapsed), "{established}");
    // Nothing after the CRD's wait: no other wait, no app state.
    assert_eq!(waits.len(), 1, "{waits:?}");

    // The CRD was applied; its Widget was not, nor sent in any form.
    let recorded = applied(&events(state.path(), install_id));
    assert!(
        recorded.contains_key("CustomResourceDefinition/widgets.example.com"),
        "{recorded:?}"
    );
    assert!(!recorded.contains_key("Widget/w"), "{recorded:?}");
    let widget_requests: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.resource == "widgets")
        .map(|request| format!("{} {}", request.verb, request.name))
        .collect();
    assert!(widget_requests.is_empty(), "{widget_requests:?}");
    assert!(
        cluster
            .server
            .get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "",
                "widgets.example.com"
            )
            .is_some()
    );
    assert!(!exists(
        &cluster,
        "example.com/v1",
        "Widget",
        "default",
        "w"
    ));
}

/// Runs against the FAKE API server (`windlass-test-apiserver`), which (without its namespace
/// controller, as envtest) leaves a deleted Namespace `Terminating` for good: a release holding
/// that Namespace fails its wait at once — long before `--wait-timeout 60` — with a message
/// saying it is Terminating, recorded as an `active` wait that `failed`; what goes into the
/// namespace is not applied.
#[test]
fn a_namespace_found_terminating_fails_its_wait_at_once() {
    let cluster = fake_cluster(Options::default());
    cluster
        .server
        .create_as(
            "someone",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tools"}}),
        )
        .unwrap();
    cluster
        .server
        .delete("v1", "Namespace", "", "tools")
        .unwrap();
    let terminating = cluster.server.get("v1", "Namespace", "", "tools").unwrap();
    assert_eq!(
        terminating["status"]["phase"], "Terminating",
        "{terminating}"
    );

    let state = tempfile::tempdir().unwrap();
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: tools\ndata:\n  value: \"1\"\n";
    let release = release(
        &[
            (
                "namespace.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n",
            ),
            ("settings.yaml", settings),
        ],
        "",
    );
    let started = Instant::now();
    let output = install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "60"],
    );
    let took = started.elapsed();
    let failed = failed_json(&output);
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: the wait must not run to its 60 s deadline"
    );
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("Namespace tools is Terminating (being deleted)"),
        "{message}"
    );

    let install_id = failed["install_id"].as_str().unwrap();
    let waits = waits_of(state.path(), install_id);
    assert_eq!(waits.len(), 1, "{waits:?}");
    let wait = &waits[0];
    assert_eq!(wait["wait"], "active", "{wait}");
    assert_eq!(wait["outcome"], "failed", "{wait}");
    assert_eq!(wait["key"]["kind"], "Namespace", "{wait}");
    assert_eq!(wait["key"]["name"], "tools", "{wait}");
    assert!(
        wait["detail"].as_str().unwrap().contains("is Terminating"),
        "{wait}"
    );
    assert!(wait["elapsed_ms"].as_u64().unwrap() < 5_000, "{wait}");

    // The ConfigMap in the namespace was neither recorded nor sent.
    let recorded = applied(&events(state.path(), install_id));
    assert!(!recorded.contains_key("ConfigMap/settings"), "{recorded:?}");
    assert!(
        !cluster
            .server
            .requests()
            .iter()
            .any(|request| request.resource == "configmaps" && request.name == "settings"),
        "the ConfigMap in the Terminating namespace was sent"
    );
    assert!(!exists(&cluster, "v1", "ConfigMap", "tools", "settings"));
}

/// A workload with one replica and pods labelled `app: <name>`.
fn workload(kind: &str, name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{extra_spec}  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: {name}\n          image: nginx:1.25\n"
    )
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n  ports:\n    - port: 80\n"
    )
}

const INGRESS: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: site\nspec:\n  rules:\n    - http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: front\n                port:\n                  number: 80\n";

const CLAIM: &str = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";

/// A ready endpoint of Service `service`, as the EndpointSlice controller would write it.
fn ready_slice(service: &str, address: &str) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abc"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": true}}]})
}

/// The last `AppStateObserved` of `install_id`.
fn app_state(state: &Path, install_id: &str) -> Value {
    payloads_of_type(&events(state, install_id), "AppStateObserved")
        .last()
        .cloned()
        .expect("the app state is recorded")
}

fn informer_states(states: &[(&str, &str)]) -> Value {
    Value::Array(
        states
            .iter()
            .map(|(informer, state)| json!({"informer": informer, "state": state}))
            .collect(),
    )
}

/// Runs against the FAKE API server (`windlass-test-apiserver`), which runs no controllers: the
/// status informers of every kind KOTS watches (Deployment, StatefulSet, DaemonSet, Service,
/// Ingress, PersistentVolumeClaim) are judged by KOTS's rules. With no status written the
/// workloads are `updating` (generation not observed), the claim, the Service and the Ingress
/// `unavailable` (not Bound, no endpoints): the app is not ready and its wait times out without
/// failing the install. With the workloads ready, the claim Bound and the Service's endpoints,
/// only the Ingress, whose backend Service still has none, stays unavailable. With that endpoint
/// too, every informer and the app are `ready` and the `app_ready` wait is met.
#[test]
fn status_informers_of_every_kind_give_the_app_state() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let files = [
        ("web.yaml", workload("Deployment", "web", "  replicas: 1\n")),
        (
            "db.yaml",
            workload("StatefulSet", "db", "  serviceName: db\n  replicas: 1\n"),
        ),
        ("agent.yaml", workload("DaemonSet", "agent", "")),
        ("web-service.yaml", service("web")),
        ("front-service.yaml", service("front")),
        ("site.yaml", INGRESS.to_string()),
        ("data.yaml", CLAIM.to_string()),
    ];
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, text)| (*name, text.as_str()))
        .collect();
    let release = release(
        &files,
        "  statusInformers:\n    - deployment/web\n    - statefulset/db\n    - daemonset/agent\n    - service/web\n    - ingress/site\n    - persistentvolumeclaim/data\n",
    );

    // Nothing has a status yet.
    let started = Instant::now();
    let install = json(install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "1"],
    ));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap().to_string();
    let observed = app_state(state.path(), &install_id);
    assert_eq!(
        observed["resources"],
        informer_states(&[
            ("deployment/web", "updating"),
            ("statefulset/db", "updating"),
            ("daemonset/agent", "updating"),
            ("service/web", "unavailable"),
            ("ingress/site", "unavailable"),
            ("persistentvolumeclaim/data", "unavailable"),
        ]),
        "{observed}"
    );
    assert_eq!(observed["state"], "unavailable", "{observed}");
    let app_waits: Vec<Value> = waits_of(state.path(), &install_id)
        .into_iter()
        .filter(|wait| wait["wait"] == "app_ready")
        .collect();
    assert_eq!(app_waits.len(), 1, "{app_waits:?}");
    assert_eq!(app_waits[0]["outcome"], "timed_out", "{app_waits:?}");

    // Everything ready but the Ingress's backend, which has no endpoint.
    for (api_version, kind, name) in [
        ("apps/v1", "Deployment", "web"),
        ("apps/v1", "StatefulSet", "db"),
        ("apps/v1", "DaemonSet", "agent"),
        ("v1", "PersistentVolumeClaim", "data"),
    ] {
        cluster
            .server
            .make_ready(api_version, kind, "default", name)
            .unwrap();
    }
    cluster
        .server
        .create_as("endpointslice-controller", ready_slice("web", "10.0.0.1"))
        .unwrap();
    let again = json(apply_kube(
        state.path(),
        &install_id,
        &cluster,
        &["--wait-timeout", "1"],
    ));
    assert_eq!(again["status"], "completed", "{again}");
    let observed = app_state(state.path(), again["install_id"].as_str().unwrap());
    assert_eq!(
        observed["resources"],
        informer_states(&[
            ("deployment/web", "ready"),
            ("statefulset/db", "ready"),
            ("daemonset/agent", "ready"),
            ("service/web", "ready"),
            ("ingress/site", "unavailable"),
            ("persistentvolumeclaim/data", "ready"),
        ]),
        "{observed}"
    );
    assert_eq!(observed["state"], "unavailable", "{observed}");

    // The backend gets its endpoint: all ready.
    cluster
        .server
        .create_as("endpointslice-controller", ready_slice("front", "10.0.0.2"))
        .unwrap();
    let ready = json(apply_kube(
        state.path(),
        &install_id,
        &cluster,
        &["--wait-timeout", "5"],
    ));
    assert_eq!(ready["status"], "completed", "{ready}");
    let ready_id = ready["install_id"].as_str().unwrap();
    let observed = app_state(state.path(), ready_id);
    assert_eq!(
        observed["resources"],
        informer_states(&[
            ("deployment/web", "ready"),
            ("statefulset/db", "ready"),
            ("daemonset/agent", "ready"),
            ("service/web", "ready"),
            ("ingress/site", "ready"),
            ("persistentvolumeclaim/data", "ready"),
        ]),
        "{observed}"
    );
    assert_eq!(observed["state"], "ready", "{observed}");
    let app_waits: Vec<Value> = waits_of(state.path(), ready_id)
        .into_iter()
        .filter(|wait| wait["wait"] == "app_ready")
        .collect();
    assert_eq!(app_waits.len(), 1, "{app_waits:?}");
    assert_eq!(app_waits[0]["outcome"], "met", "{app_waits:?}");
    assert!(app_waits[0].get("key").is_none(), "{app_waits:?}");
    let shown = run(windlass(state.path()).args(["show", ready_id]));
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("app state ready"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
}
