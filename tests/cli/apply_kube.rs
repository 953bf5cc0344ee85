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
pub(crate) struct FakeCluster {
    pub(crate) server: TestApiServer,
    pub(crate) kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn fake_cluster(options: Options) -> FakeCluster {
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

/// Whether the fake cluster holds the object.
/// How many `verb` requests of `resource` (plural) the fake cluster served.
pub(crate) fn requests_of(cluster: &FakeCluster, verb: &str, resource: &str) -> usize {
    cluster
        .server
        .requests()
        .iter()
        .filter(|request| request.verb == verb && request.resource == resource)
        .count()
}

pub(crate) fn exists(
    cluster: &FakeCluster,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> bool {
    cluster
        .server
        .get(api_version, kind, namespace, name)
        .is_some()
}

/// A release directory: `files` under `manifests/`, the quickstart license, and a KOTS
/// Application with `spec` (YAML lines indented two spaces).
pub(crate) fn release(files: &[(&str, &str)], application_spec: &str) -> tempfile::TempDir {
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

pub(crate) fn rewrite(release: &Path, files: &[(&str, &str)]) {
    let manifests = release.join("manifests");
    std::fs::remove_dir_all(&manifests).unwrap();
    std::fs::create_dir_all(&manifests).unwrap();
    for (name, text) in files {
        std::fs::write(manifests.join(name), text).unwrap();
    }
}

pub(crate) fn install_kube(
    state: &Path,
    release: &Path,
    cluster: &FakeCluster,
    extra: &[&str],
) -> Output {
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

pub(crate) fn apply_kube(
    state: &Path,
    install_id: &str,
    cluster: &FakeCluster,
    extra: &[&str],
) -> Output {
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

/// `install --dry-run` of `release` to the fake cluster, printing what it would change.
pub(crate) fn dry_run_install(state: &Path, release: &Path, cluster: &FakeCluster) -> Output {
    run(windlass(state)
        .args(OFFLINE_INSTALL)
        .arg(release)
        .args(["--target", "kube", "--dry-run", "--kubeconfig"])
        .arg(&cluster.kubeconfig))
}

/// The JSON an install or apply that failed (exit code 1) printed.
pub(crate) fn failed_json(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// An install with `--wait-timeout timeout` that fails (a wait not met): the JSON it printed.
pub(crate) fn install_failing_wait(
    state: &Path,
    release: &Path,
    cluster: &FakeCluster,
    timeout: &str,
) -> Value {
    failed_json(&install_kube(
        state,
        release,
        cluster,
        &["--wait-timeout", timeout],
    ))
}

pub(crate) fn output_within(command: &mut Command) -> Output {
    windlass_testkit::output_within(command, Duration::from_secs(60), "windlass")
}

pub(crate) fn events(state: &Path, install_id: &str) -> Vec<Value> {
    json(run(windlass(state).args(["events", install_id, "--json"])))
        .as_array()
        .unwrap()
        .clone()
}

/// Every object of every `ObjectsApplied`, by `Kind/name`.
pub(crate) fn applied(events: &[Value]) -> BTreeMap<String, Value> {
    payloads_of_type(events, "ObjectsApplied")
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
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n";

/// [`install_kube`] while a controller stand-in makes Deployment `default/web` ready once it
/// exists, after `after` (within 20 s; the fake server runs no controllers).
pub(crate) fn install_making_web_ready(
    state: &Path,
    release: &Path,
    cluster: &FakeCluster,
    extra: &[&str],
    after: Duration,
) -> Output {
    let server = &cluster.server;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                if server
                    .get("apps/v1", "Deployment", "default", "web")
                    .is_some()
                {
                    std::thread::sleep(after);
                    let _ = server.make_ready("apps/v1", "Deployment", "default", "web");
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        install_kube(state, release, cluster, extra)
    })
}

pub(crate) fn configmap(name: &str, value: &str) -> String {
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
    // The pull secret's digest is keyed with the state's key (the log must not let anyone test
    // a guess of the license ID against it); the others are plain hashes.
    let secret_digest = recorded["Secret/my-app-registry"]["digest"]
        .as_str()
        .unwrap();
    assert!(secret_digest.starts_with("fp1:"), "{secret_digest}");
    assert!(
        !recorded["Deployment/api"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("fp1:")
    );
    let other_state = tempfile::tempdir().unwrap();
    let other = json(install_kube(
        other_state.path(),
        &quickstart(),
        &cluster,
        &["--dry-run"],
    ));
    let other = applied(&events(
        other_state.path(),
        other["install_id"].as_str().unwrap(),
    ));
    assert_ne!(other["Secret/my-app-registry"]["digest"], secret_digest);
    assert_eq!(
        other["Deployment/api"]["digest"],
        recorded["Deployment/api"]["digest"]
    );
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
    assert!(!exists(&cluster, "apps/v1", "Deployment", "default", "api"));
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

    // Namespaces the dry run would create, the release's own and an additional one: what goes
    // into them would be created with them (the server, which has no such namespace, is not
    // asked about it).
    let release = release(
        &[
            (
                "tools.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n",
            ),
            (
                "settings.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: tools\ndata:\n  value: \"1\"\n",
            ),
        ],
        "  additionalNamespaces:\n    - team-a\n",
    );
    let state = tempfile::tempdir().unwrap();
    let output = dry_run_install(state.path(), release.path(), &cluster);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "would create    Namespace tools",
        "would create    ConfigMap tools/settings",
        "would create    Namespace team-a",
        "would create    Secret team-a/my-app-registry",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    assert_eq!(cluster.server.counts().writes, 0);
    assert!(!exists(&cluster, "v1", "Namespace", "", "tools"));

    // Pruning in a dry run asks the server to delete in dry-run mode: the object stays.
    let state = tempfile::tempdir().unwrap();
    let pruned_release = super::apply_kube::release(
        &[
            ("kept.yaml", &configmap("kept", "1")),
            ("goner.yaml", &configmap("goner", "1")),
        ],
        "",
    );
    let first = json(install_kube(
        state.path(),
        pruned_release.path(),
        &cluster,
        &[],
    ));
    assert_eq!(first["status"], "completed", "{first}");
    std::fs::remove_file(pruned_release.path().join("manifests/goner.yaml")).unwrap();
    let writes = cluster.server.counts().writes;
    let output = dry_run_install(state.path(), pruned_release.path(), &cluster);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("would be deleted ConfigMap default/goner"),
        "{text}"
    );
    assert_eq!(cluster.server.counts().writes, writes, "{text}");
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "goner"));
}

/// A CRD serving `widgets.example.com/v1` (Widget), namespaced.
pub(crate) const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
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
    // Established 3 s after creation: the wait starts after a log append and the namespace's
    // wait, so a shorter delay could be over before it starts on a busy machine.
    let cluster = fake_cluster(Options {
        crd_established_delay: Duration::from_secs(3),
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
    // A dry run first: the CRD is not created, so its Widget is reported as to be created.
    let dry = json(install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--dry-run"],
    ));
    assert_eq!(dry["status"], "completed", "{dry}");
    assert_eq!(cluster.server.counts().writes, 0);
    let recorded = applied(&events(state.path(), dry["install_id"].as_str().unwrap()));
    assert_eq!(recorded["Widget/w"]["outcome"], "created");
    assert_eq!(recorded["Widget/w"]["dry_run"], true);
    cluster.server.reset_requests();

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
    let waits = payloads_of_type(
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
    assert!(exists(&cluster, "example.com/v1", "Widget", "tools", "w"));
}

/// A CRD that gains a version and makes it the storage version, with its object moved to the
/// new version: the same inventory entries (keyed by group, kind, namespace and name, not by
/// version), so nothing is pruned. KOTS keys CRDs by their apiVersion and objects without their
/// group, and would delete the CRD (and with it every Widget) on such a bump.
#[test]
fn a_crd_version_bump_prunes_nothing() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let widget = |version: &str| {
        format!(
            "apiVersion: example.com/{version}\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n"
        )
    };
    let release = release(&[("crd.yaml", CRD), ("widget.yaml", &widget("v1"))], "");
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    let crd_uid = cluster
        .server
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "",
            "widgets.example.com",
        )
        .unwrap()["metadata"]["uid"]
        .clone();
    let widget_uid = cluster
        .server
        .get("example.com/v1", "Widget", "default", "w")
        .unwrap()["metadata"]["uid"]
        .clone();
    let bumped = CRD.replace("      storage: true\n", "      storage: false\n")
        + "    - name: v2\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n";
    rewrite(
        release.path(),
        &[("crd.yaml", &bumped), ("widget.yaml", &widget("v2"))],
    );
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap();
    let recorded = events(state.path(), second_id);
    let pruned = payloads_of_type(&recorded, "ObjectPruned");
    assert!(pruned.is_empty(), "{pruned:?}");
    let applied = applied(&recorded);
    assert_eq!(applied["Widget/w"]["key"]["version"], "v2", "{applied:?}");
    let crd = cluster
        .server
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "",
            "widgets.example.com",
        )
        .unwrap();
    assert_eq!(crd["metadata"]["uid"], crd_uid);
    let widget = cluster
        .server
        .get("example.com/v2", "Widget", "default", "w")
        .expect("the Widget, served at v2");
    assert_eq!(widget["metadata"]["uid"], widget_uid);
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
    // A dry run says the object would be deleted and created again, and touches nothing; its
    // `--json` carries what it found for each object under `apply`.
    let dry = json(install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--dry-run"],
    ));
    assert_eq!(dry["status"], "completed", "{dry}");
    let objects = dry["apply"]["objects"].as_array().expect("apply.objects");
    let frozen_dry = objects
        .iter()
        .find(|object| object["key"]["name"] == "frozen")
        .expect("frozen in the dry run");
    assert_eq!(
        (
            &frozen_dry["outcome"],
            &frozen_dry["recreated"],
            &frozen_dry["dry_run"]
        ),
        (&json!("configured"), &json!(true), &json!(true)),
        "{frozen_dry}"
    );
    let still = cluster
        .server
        .get("v1", "ConfigMap", "default", "frozen")
        .unwrap();
    assert_eq!(
        (&still["metadata"]["uid"], &still["data"]["value"]),
        (&uid, &json!("one"))
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

    // The delete goes through and creating it again is refused: the deletion is recorded on
    // its own (with the old uid) and the failure says the object is gone.
    let deleted_uid = live["metadata"]["uid"].as_str().unwrap().to_string();
    let frozen_patch = || {
        FaultMatch::verb("patch")
            .resource("configmaps")
            .name("frozen")
    };
    // The forced apply meets the real 422; the apply after the delete meets a webhook.
    cluster.server.add_fault(Fault {
        matcher: frozen_patch().dry_run(false),
        action: FaultAction::Delay(Duration::ZERO),
        remaining: Some(1),
    });
    cluster.server.add_fault(Fault {
        matcher: frozen_patch().dry_run(false),
        action: FaultAction::Refuse("admission webhook \"freeze\" denied the request".into()),
        remaining: Some(1),
    });
    rewrite(
        release.path(),
        &[("frozen.yaml", &allowed.replace("{value}", "three"))],
    );
    let failed = install_kube(state.path(), release.path(), &cluster, &[]);
    assert_eq!(
        failed.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
    let failed: Value = serde_json::from_slice(&failed.stdout).unwrap();
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("deleted (uid {deleted_uid}) to recreate it"))
            && message.contains("denied the request"),
        "{message}"
    );
    let failed_id = failed["install_id"].as_str().unwrap();
    let deletion = payloads_of_type(&events(state.path(), failed_id), "ObjectDeletedToRecreate");
    assert_eq!(deletion.len(), 1, "{deletion:?}");
    assert_eq!(deletion[0]["uid"], deleted_uid.as_str());
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "frozen"));
    let shown = windlass(state.path())
        .args(["show", failed_id])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!(
            "deleted   to-recreate ConfigMap default/frozen uid {deleted_uid}"
        )),
        "{shown}"
    );
    let again = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "frozen")
            .unwrap()["data"]["value"],
        "three"
    );
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
    assert!(exists(&cluster, "v1", "Service", "default", "api"));
}

/// What prune must not delete even when the release dropped it: a Namespace objects of the
/// release still live in, a CRD whose kind the release still applies, a CRD with instances
/// windlass did not apply for this app; and a read refused before a delete leaves the object
/// where it is (recorded as refused) instead of failing the install.
#[test]
fn prune_keeps_what_remaining_objects_and_others_need() {
    let cluster = fake_cluster(Options {
        namespace_controller: true,
        ..Options::default()
    });
    let state = tempfile::tempdir().unwrap();
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n";
    let inside = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inside\n  namespace: tools\ndata:\n  value: \"1\"\n";
    let gadget_crd = CRD
        .replace("widgets", "gadgets")
        .replace("widget", "gadget")
        .replace("Widget", "Gadget");
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n";
    let release = release(
        &[
            ("namespace.yaml", namespace),
            ("inside.yaml", inside),
            ("widgets.yaml", CRD),
            ("widget.yaml", widget),
            ("gadgets.yaml", &gadget_crd),
            ("guarded.yaml", &configmap("guarded", "1")),
        ],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    // A Gadget someone made by hand.
    cluster
        .server
        .apply_as(
            "someone",
            json!({"apiVersion": "example.com/v1", "kind": "Gadget",
                   "metadata": {"name": "handmade", "namespace": "default"}}),
            true,
        )
        .unwrap();
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("get")
            .resource("configmaps")
            .name("guarded"),
        action: FaultAction::Refuse("reads of guarded are audited".into()),
        remaining: None,
    });
    for dropped in [
        "namespace.yaml",
        "widgets.yaml",
        "gadgets.yaml",
        "guarded.yaml",
    ] {
        std::fs::remove_file(release.path().join("manifests").join(dropped)).unwrap();
    }
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let pruned = pruned_by_name(state.path(), &second);
    let outcome = |name: &str| outcome_and_reason(&pruned, name);
    assert_eq!(
        outcome("tools"),
        ("kept".into(), "in_use".into()),
        "{pruned:?}"
    );
    assert_eq!(
        outcome("widgets.example.com"),
        ("kept".into(), "in_use".into()),
        "{pruned:?}"
    );
    assert_eq!(
        outcome("gadgets.example.com"),
        ("kept".into(), "holds_others".into()),
        "{pruned:?}"
    );
    assert!(
        pruned["gadgets.example.com"]["detail"]
            .as_str()
            .unwrap()
            .contains("default/handmade"),
        "{pruned:?}"
    );
    assert_eq!(
        outcome("guarded"),
        ("refused".into(), String::new()),
        "{pruned:?}"
    );
    assert!(exists(&cluster, "v1", "Namespace", "", "tools"));
    assert!(exists(&cluster, "v1", "ConfigMap", "tools", "inside"));
    assert!(exists(&cluster, "example.com/v1", "Widget", "default", "w"));
    assert!(exists(
        &cluster,
        "example.com/v1",
        "Gadget",
        "default",
        "handmade"
    ));
}

/// Deleting a CRD deletes its instances, deleting a Namespace what is in it: neither is deleted
/// while it holds something of the previous apply that the prune left (kept by its
/// `kots.io/keep` as applied or as found, refused by a webhook). A Namespace the release ships
/// and windlass also created for `additionalNamespaces` is never pruned, however many applies
/// later the release drops it.
#[test]
fn a_dropped_crd_or_namespace_stays_while_it_holds_what_the_prune_left() {
    let cluster = fake_cluster(Options {
        namespace_controller: true,
        ..Options::default()
    });
    let state = tempfile::tempdir().unwrap();
    let namespace =
        |name: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n");
    let kept_in = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: tools\n  annotations:\n    kots.io/keep: \"true\"\ndata:\n  value: \"1\"\n";
    let guarded_in = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guarded\n  namespace: jobs\ndata:\n  value: \"1\"\n";
    let gadget_crd = CRD
        .replace("widgets", "gadgets")
        .replace("widget", "gadget")
        .replace("Widget", "Gadget");
    let kept_gadget = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n  annotations:\n    kots.io/keep: \"true\"\nspec:\n  size: 1\n";
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n";
    let release = release(
        &[
            ("tools.yaml", &namespace("tools")),
            ("kept.yaml", kept_in),
            ("jobs.yaml", &namespace("jobs")),
            ("guarded.yaml", guarded_in),
            ("monitoring.yaml", &namespace("monitoring")),
            ("gadgets.yaml", &gadget_crd),
            ("gadget.yaml", kept_gadget),
            ("widgets.yaml", CRD),
            ("widget.yaml", widget),
            ("stays.yaml", &configmap("stays", "1")),
        ],
        "  additionalNamespaces:\n    - monitoring\n",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    // The same release again (the namespaces exist now): the marks carry over.
    let again = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(again["status"], "completed", "{again}");
    // Someone marks the Widget to keep after the apply; a webhook refuses guarded's delete.
    cluster
        .server
        .apply_as(
            "someone",
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "w", "namespace": "default",
                                "annotations": {"kots.io/keep": "true"}}}),
            false,
        )
        .unwrap();
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("delete").name("guarded"),
        action: FaultAction::Refuse("admission webhook \"guard\" denied the request".into()),
        remaining: None,
    });
    let second_release =
        super::apply_kube::release(&[("stays.yaml", &configmap("stays", "1"))], "");
    let second = json(install_kube(
        state.path(),
        second_release.path(),
        &cluster,
        &[],
    ));
    assert_eq!(second["status"], "completed", "{second}");
    let pruned = pruned_by_name(state.path(), &second);
    let outcome = |name: &str| outcome_and_reason(&pruned, name);
    for (name, expected) in [
        ("kept", ("kept", "keep_annotation")),
        ("tools", ("kept", "in_use")),
        ("guarded", ("refused", "")),
        ("jobs", ("kept", "in_use")),
        ("g", ("kept", "keep_annotation")),
        ("gadgets.example.com", ("kept", "holds_others")),
        ("w", ("kept", "keep_annotation")),
        ("widgets.example.com", ("kept", "holds_others")),
        ("monitoring", ("kept", "additional_namespace")),
    ] {
        assert_eq!(
            outcome(name),
            (expected.0.to_string(), expected.1.to_string()),
            "{name}: {pruned:#?}"
        );
    }
    assert!(
        pruned["tools"]["detail"]
            .as_str()
            .unwrap()
            .contains("ConfigMap kept"),
        "{pruned:#?}"
    );
    for (api_version, kind, namespace, name) in [
        ("v1", "ConfigMap", "tools", "kept"),
        ("v1", "ConfigMap", "jobs", "guarded"),
        ("example.com/v1", "Gadget", "default", "g"),
        ("example.com/v1", "Widget", "default", "w"),
        ("v1", "Namespace", "", "monitoring"),
    ] {
        assert!(
            exists(&cluster, api_version, kind, namespace, name),
            "{kind} {namespace}/{name} was deleted"
        );
    }
}

/// An app namespace the cluster does not have is created first (as `kubectl kots install`
/// creates its namespace), recorded as made for `--namespace`, and never pruned; the next
/// apply of the same rendering still compares recorded digests.
#[test]
fn a_missing_app_namespace_is_created_and_never_pruned() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(&[("a.yaml", &configmap("a", "1"))], "");
    assert!(!exists(&cluster, "v1", "Namespace", "", "shop"));
    let first = json(install_in(state.path(), release.path(), &cluster, "shop"));
    assert_eq!(first["status"], "completed", "{first}");
    let first_id = first["install_id"].as_str().unwrap();
    assert!(exists(&cluster, "v1", "Namespace", "", "shop"));
    assert!(exists(&cluster, "v1", "ConfigMap", "shop", "a"));
    let recorded = applied(&events(state.path(), first_id));
    assert_eq!(
        recorded["Namespace/shop"]["file"], "--namespace",
        "{recorded:#?}"
    );
    assert_eq!(
        recorded["Namespace/shop"]["outcome"], "created",
        "{recorded:#?}"
    );

    // The same rendering again: nothing parsed, nothing written.
    let writes = cluster.server.counts().writes;
    let again = json(apply_kube(state.path(), first_id, &cluster, &[]));
    assert_eq!(again["status"], "completed", "{again}");
    let summary = apply_summary(state.path(), again["install_id"].as_str().unwrap());
    assert!(summary.contains("compared by recorded digest"), "{summary}");
    assert_eq!(cluster.server.counts().writes, writes, "{summary}");

    // A release that drops the ConfigMap: pruned, the namespace it was in is not.
    rewrite(release.path(), &[("b.yaml", &configmap("b", "1"))]);
    let second = json(install_in(state.path(), release.path(), &cluster, "shop"));
    assert_eq!(second["status"], "completed", "{second}");
    let outcomes = prune_outcomes(state.path(), second["install_id"].as_str().unwrap());
    assert_eq!(
        outcomes.get("a").map(String::as_str),
        Some("deleted"),
        "{outcomes:?}"
    );
    assert_ne!(
        outcomes.get("shop").map(String::as_str),
        Some("deleted"),
        "{outcomes:?}"
    );
    assert!(exists(&cluster, "v1", "Namespace", "", "shop"));
}

/// An object applied in a version the server no longer serves (here a CRD's `v1alpha1`, turned
/// off by the next release, which drops the object) is still pruned: read and deleted in the
/// version of its group the server serves now, not forgotten as gone.
#[test]
fn an_object_of_a_version_no_longer_served_is_pruned_in_the_served_one() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let crd = |alpha_served: bool| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {{plural: widgets, singular: widget, kind: Widget}}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n    - name: v1alpha1\n      served: {alpha_served}\n      storage: false\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n"
        )
    };
    let old_widget =
        "apiVersion: example.com/v1alpha1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n";
    let release = release(&[("crd.yaml", &crd(true)), ("widget.yaml", old_widget)], "");
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    assert!(exists(&cluster, "example.com/v1", "Widget", "default", "w"));

    rewrite(release.path(), &[("crd.yaml", &crd(false))]);
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let outcomes = prune_outcomes(state.path(), second["install_id"].as_str().unwrap());
    assert_eq!(
        outcomes.get("w").map(String::as_str),
        Some("deleted"),
        "{outcomes:?}"
    );
    assert!(!exists(
        &cluster,
        "example.com/v1",
        "Widget",
        "default",
        "w"
    ));
}

/// Each `ObjectPruned` of `install`, by object name.
fn pruned_by_name(state: &Path, install: &Value) -> BTreeMap<String, Value> {
    payloads_of_type(
        &events(state, install["install_id"].as_str().unwrap()),
        "ObjectPruned",
    )
    .into_iter()
    .map(|pruned| (pruned["key"]["name"].as_str().unwrap().to_string(), pruned))
    .collect()
}

/// The outcome of the prune decision about `name`, and why it was kept (`""`: not kept).
fn outcome_and_reason(pruned: &BTreeMap<String, Value>, name: &str) -> (String, String) {
    (
        pruned[name]["outcome"].as_str().unwrap().to_string(),
        pruned[name]["kept_because"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// Creates `namespace` in the fake cluster (as a test's setup would, not windlass).
pub(crate) fn create_namespace(cluster: &FakeCluster, namespace: &str) {
    cluster
        .server
        .apply_as(
            "setup",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            true,
        )
        .unwrap();
}

/// `install --target kube` of `release` into app namespace `namespace`.
pub(crate) fn install_in(
    state: &Path,
    release: &Path,
    cluster: &FakeCluster,
    namespace: &str,
) -> Output {
    install_kube(state, release, cluster, &["--namespace", namespace])
}

/// Creates `namespace` in the fake cluster, then installs `release` into it (completed).
pub(crate) fn install_into_new_namespace(
    state: &Path,
    release: &Path,
    cluster: &FakeCluster,
    namespace: &str,
) -> Value {
    create_namespace(cluster, namespace);
    let install = json(install_in(state, release, cluster, namespace));
    assert_eq!(install["status"], "completed", "{install}");
    install
}

/// One app in two namespaces shares its CRD (cluster-scoped): dropping the CRD from the release
/// of one instance deletes that instance's custom resource, not the CRD, which the other
/// instance still applies (and its resource still needs).
#[test]
fn a_crd_shared_by_two_instances_of_an_app_is_kept() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n";
    let release = release(&[("crd.yaml", CRD), ("widget.yaml", widget)], "");
    for namespace in ["team1", "team2"] {
        install_into_new_namespace(state.path(), release.path(), &cluster, namespace);
    }
    std::fs::remove_file(release.path().join("manifests/crd.yaml")).unwrap();
    std::fs::remove_file(release.path().join("manifests/widget.yaml")).unwrap();
    rewrite(
        release.path(),
        &[("settings.yaml", &configmap("settings", "one"))],
    );
    let install = json(install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--namespace", "team1"],
    ));
    assert_eq!(install["status"], "completed", "{install}");
    let pruned = payloads_of_type(
        &events(state.path(), install["install_id"].as_str().unwrap()),
        "ObjectPruned",
    );
    let crd = pruned
        .iter()
        .find(|pruned| pruned["key"]["kind"] == "CustomResourceDefinition")
        .expect("the CRD's prune decision");
    assert_eq!(
        (&crd["outcome"], &crd["kept_because"]),
        (&json!("kept"), &json!("other_instance")),
        "{crd}"
    );
    assert!(
        crd["detail"].as_str().unwrap().contains("namespace team2"),
        "{crd}"
    );
    assert!(!exists(&cluster, "example.com/v1", "Widget", "team1", "w"));
    assert!(exists(&cluster, "example.com/v1", "Widget", "team2", "w"));
}

/// Two apps, or one app in two namespaces, in one cluster: neither takes the other's objects
/// over, nor prunes them.
#[test]
fn apps_and_instances_in_one_cluster_leave_each_other_alone() {
    let cluster = fake_cluster(Options::default());
    // One app in two namespaces: the second instance prunes nothing of the first.
    let state = tempfile::tempdir().unwrap();
    let release_a = release(&[("settings.yaml", &configmap("settings", "one"))], "");
    for namespace in ["team1", "team2"] {
        let install =
            install_into_new_namespace(state.path(), release_a.path(), &cluster, namespace);
        let pruned = payloads_of_type(
            &events(state.path(), install["install_id"].as_str().unwrap()),
            "ObjectPruned",
        );
        assert!(pruned.is_empty(), "{namespace}: {pruned:?}");
    }
    assert!(exists(&cluster, "v1", "ConfigMap", "team1", "settings"));
    assert!(exists(&cluster, "v1", "ConfigMap", "team2", "settings"));

    // Another app (another slug) with an object of the same name in the same namespace: not
    // taken over.
    let release_b = release(&[("settings.yaml", &configmap("settings", "two"))], "");
    let license = release_b.path().join("userdata/license.yaml");
    let text = std::fs::read_to_string(&license).unwrap();
    assert!(text.contains("appSlug: my-app"), "{text}");
    std::fs::write(
        &license,
        text.replace("appSlug: my-app", "appSlug: other-app"),
    )
    .unwrap();
    let application = release_b.path().join("kots-app.yaml");
    let text = std::fs::read_to_string(&application).unwrap();
    std::fs::write(
        &application,
        text.replace("name: my-app", "name: other-app"),
    )
    .unwrap();
    let refused = install_kube(
        tempfile::tempdir().unwrap().path(),
        release_b.path(),
        &cluster,
        &["--namespace", "team1"],
    );
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let message = refused["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("ConfigMap team1/settings")
            && message.contains("it belongs to app \"my-app\""),
        "{message}"
    );
    let live = cluster
        .server
        .get("v1", "ConfigMap", "team1", "settings")
        .unwrap();
    assert_eq!(live["data"]["value"], "one");
    assert_eq!(live["metadata"]["annotations"]["windlass.io/app"], "my-app");
}

/// Every object of every `ObjectPruned` of `install_id`, by name, with its outcome.
pub(crate) fn prune_outcomes(state: &Path, install_id: &str) -> BTreeMap<String, String> {
    payloads_of_type(&events(state, install_id), "ObjectPruned")
        .iter()
        .map(|pruned| {
            (
                pruned["key"]["name"].as_str().unwrap().to_string(),
                pruned["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_cluster_reached_through_another_url_is_the_same_cluster() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "1")),
        ],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    let kube_system = cluster
        .server
        .get("v1", "Namespace", "", "kube-system")
        .expect("the fake cluster has kube-system");
    let completed = &payloads_of_type(
        &events(state.path(), first["install_id"].as_str().unwrap()),
        "ApplyCompleted",
    )[0];
    assert_eq!(
        completed["target"]["cluster_uid"], kube_system["metadata"]["uid"],
        "{completed}"
    );

    // The same server by name instead of by address: the same cluster, so b is pruned.
    let url = cluster.server.url();
    let by_name = url.replace("127.0.0.1", "localhost");
    assert_ne!(url, by_name);
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    assert!(
        kubeconfig.contains(url.trim_end_matches('/')),
        "{kubeconfig}"
    );
    std::fs::write(
        &cluster.kubeconfig,
        kubeconfig.replace(url.trim_end_matches('/'), by_name.trim_end_matches('/')),
    )
    .unwrap();
    rewrite(release.path(), &[("a.yaml", &configmap("a", "1"))]);
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap();
    let completed = &payloads_of_type(&events(state.path(), second_id), "ApplyCompleted")[0];
    assert!(
        completed["target"]["server"]
            .as_str()
            .unwrap()
            .contains("localhost"),
        "{completed}"
    );
    let pruned = prune_outcomes(state.path(), second_id);
    assert_eq!(
        pruned.get("b").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "b"));
}

#[test]
fn a_cluster_whose_kube_system_cannot_be_read_is_known_by_its_url() {
    let cluster = fake_cluster(Options::default());
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("get").name("kube-system"),
        action: FaultAction::Refuse("namespaces \"kube-system\" is forbidden".into()),
        remaining: None,
    });
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "1")),
        ],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    let completed = &payloads_of_type(
        &events(state.path(), first["install_id"].as_str().unwrap()),
        "ApplyCompleted",
    )[0];
    assert!(
        completed["target"].get("cluster_uid").is_none(),
        "{completed}"
    );
    rewrite(release.path(), &[("a.yaml", &configmap("a", "1"))]);
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let pruned = prune_outcomes(state.path(), second["install_id"].as_str().unwrap());
    assert_eq!(
        pruned.get("b").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
}

#[test]
fn one_apply_of_an_app_into_a_namespace_runs_at_a_time() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(&[("a.yaml", &configmap("a", "1"))], "");
    // Another process applying the app: its lock, as windlass takes it.
    let held = windlass_state::try_lock_in(state.path(), "apply-6-my-app-default")
        .unwrap()
        .expect("the lock is free");
    let busy = install_kube(state.path(), release.path(), &cluster, &[]);
    assert_eq!(busy.status.code(), Some(1), "{busy:?}");
    let busy_json: Value = serde_json::from_slice(&busy.stdout).unwrap();
    let shown = format!("{busy_json}{}", String::from_utf8_lossy(&busy.stderr));
    assert!(
        shown.contains("another windlass process is applying my-app into namespace default"),
        "{shown}"
    );
    let busy_events = events(state.path(), busy_json["install_id"].as_str().unwrap());
    assert!(payloads_of_type(&busy_events, "ApplyStarted").is_empty());
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "a"));
    // A dry run takes no lock.
    let dry = dry_run_install(state.path(), release.path(), &cluster);
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    drop(held);
    let done = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(done["status"], "completed", "{done}");
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "a"));
}

#[test]
fn objects_of_an_apply_that_never_completed_are_pruned_by_the_next_one() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(&[("a.yaml", &configmap("a", "1"))], "");
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");

    // The second release adds two objects and a namespace; the server refuses one of the
    // objects, so that apply never completes, but it created the other and the namespace.
    let phased = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n    kots.io/deletion-phase: \"3\"\ndata:\n  value: b\n";
    rewrite(
        release.path(),
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", phased),
            ("refused.yaml", &configmap("refused", "1")),
            ("c.yaml", &configmap("c", "1")),
        ],
    );
    std::fs::write(
        release.path().join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: Test\n  additionalNamespaces:\n    - extra\n",
    )
    .unwrap();
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").name("refused"),
        action: FaultAction::Refuse("admission webhook \"guard\" denied the request".into()),
        remaining: None,
    });
    let refused = install_kube(state.path(), release.path(), &cluster, &[]);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "an object the server refused"
    );
    let second: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let second_id = second["install_id"].as_str().unwrap();
    let started = payloads_of_type(&events(state.path(), second_id), "ApplyStarted");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["app_namespace"], "default", "{started:?}");
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "b"));
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "c"));
    assert!(exists(&cluster, "v1", "Namespace", "", "extra"));
    cluster.server.clear_faults();

    // A third release drops them all again: what the failed apply created goes (b after c: its
    // deletion phase), the additional namespace it created stays, the refused object was never
    // there, and the first install's object stays.
    rewrite(release.path(), &[("a.yaml", &configmap("a", "1"))]);
    std::fs::write(
        release.path().join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: Test\n",
    )
    .unwrap();
    let third = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(third["status"], "completed", "{third}");
    let third_id = third["install_id"].as_str().unwrap();
    let pruned = prune_outcomes(state.path(), third_id);
    assert_eq!(
        pruned.get("b").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
    assert_eq!(
        pruned.get("c").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
    assert_eq!(
        pruned.get("extra").map(String::as_str),
        Some("kept"),
        "{pruned:?}"
    );
    assert!(
        !pruned.contains_key("refused") && !pruned.contains_key("a"),
        "{pruned:?}"
    );
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "b"));
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "c"));
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "a"));
    assert!(exists(&cluster, "v1", "Namespace", "", "extra"));
    let deletes: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "delete")
        .map(|request| request.name)
        .collect();
    // The pull secret the failed apply put in the namespace goes as a completed apply's would.
    assert_eq!(
        deletes,
        ["c", "my-app-registry", "b"],
        "the deletion phase orders them"
    );
    assert!(!exists(
        &cluster,
        "v1",
        "Secret",
        "extra",
        "my-app-registry"
    ));
    assert!(exists(
        &cluster,
        "v1",
        "Secret",
        "default",
        "my-app-registry"
    ));

    // Once an apply completed after it, the failed apply is not pruned against again.
    let fourth = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(fourth["status"], "completed", "{fourth}");
    let pruned = prune_outcomes(state.path(), fourth["install_id"].as_str().unwrap());
    assert_eq!(
        pruned,
        BTreeMap::from([("extra".to_string(), "kept".to_string())]),
        "only the kept namespace, which stays in the inventory"
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
        exists(&cluster, "v1", "Namespace", "", "extra"),
        "additionalNamespaces are created"
    );
    assert!(
        exists(&cluster, "v1", "Secret", "extra", "my-app-registry"),
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
    let pruned: BTreeMap<String, String> = payloads_of_type(&second_events, "ObjectPruned")
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
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "b"));
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "kept"));
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
    let completed = &payloads_of_type(&second_events, "ApplyCompleted")[0];
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

    // The refusal lifted, the next install prunes it; `kept` (replaced by someone else, and
    // annotated kots.io/keep in the release before) stays. The uid and ownership guards of the
    // prune are tested by apply_guards::prune_leaves_objects_whose_uid_changed_or_that_lost_the_ownership_annotation.
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
    let pruned = prune_outcomes(state.path(), third["install_id"].as_str().unwrap());
    assert_eq!(
        pruned.get("guarded").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "guarded"));
    assert!(
        exists(&cluster, "v1", "ConfigMap", "default", "kept"),
        "not windlass's any more"
    );

    // A later release that no longer lists the additional namespace leaves it, with whatever is
    // in it (KOTS never deletes them either).
    std::fs::write(
        release.path().join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: Test\n",
    )
    .unwrap();
    let fourth = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(fourth["status"], "completed", "{fourth}");
    let pruned: Vec<Value> = payloads_of_type(
        &events(state.path(), fourth["install_id"].as_str().unwrap()),
        "ObjectPruned",
    );
    let extra = pruned
        .iter()
        .find(|pruned| pruned["key"]["kind"] == "Namespace" && pruned["key"]["name"] == "extra")
        .unwrap_or_else(|| panic!("{pruned:?}"));
    assert_eq!(extra["outcome"], "kept", "{extra}");
    assert_eq!(extra["kept_because"], "additional_namespace", "{extra}");
    assert!(exists(&cluster, "v1", "Namespace", "", "extra"));
}

#[test]
fn a_killed_apply_resumes_without_sending_again_what_it_recorded() {
    let cluster = fake_cluster(Options::default());
    // The last map's write is held for ten minutes, so that the kill lands mid-apply however
    // slow the machine (the others are recorded meanwhile); the faults are gone before the
    // resumed run. The others are slowed, so that they come back in several batches.
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch")
            .resource("configmaps")
            .name("cm-159"),
        action: FaultAction::Delay(Duration::from_secs(600)),
        remaining: Some(1),
    });
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").resource("configmaps"),
        action: FaultAction::Delay(Duration::from_millis(150)),
        remaining: None,
    });
    let state = tempfile::tempdir().unwrap();
    let texts: Vec<(String, String)> = (0..160)
        .map(|index| {
            (
                format!("cm-{index:03}.yaml"),
                configmap(&format!("cm-{index:03}"), "v"),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let release = release(&files, "");
    let mut child = windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(release.path())
        .args(["--target", "kube", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (install_id, _) = loop {
        assert!(
            Instant::now() < deadline,
            "no ObjectsApplied was recorded in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "windlass ended before it was killed"
        );
        let history = run(windlass(state.path()).args(["history", "--json"]));
        if let Ok(history) = serde_json::from_slice::<Value>(&history.stdout)
            && let Some(install_id) = history[0]["install_id"].as_str()
        {
            let recorded = applied(&events(state.path(), install_id));
            if !recorded.is_empty() {
                break (install_id.to_string(), recorded);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // What the killed run recorded, read after it died (it may have recorded more meanwhile).
    let recorded: Vec<String> = applied(&events(state.path(), &install_id))
        .into_values()
        .map(|object| object["key"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        payloads_of_type(&events(state.path(), &install_id), "ApplyCompleted").is_empty(),
        "the kill landed mid-apply ({} of 161 recorded)",
        recorded.len()
    );
    cluster.server.reset_requests();
    cluster.server.clear_faults();

    let resumed = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(resumed["status"], "completed", "{resumed}");
    assert_eq!(
        resumed["install_id"],
        install_id.as_str(),
        "the same install resumed"
    );
    assert_eq!(resumed["resumed"], 1);
    // Read again (to see that the cluster still holds it), but not sent.
    let sent: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| !request.name.is_empty() && request.verb != "get")
        .map(|request| request.name)
        .collect();
    for name in &recorded {
        assert!(
            !sent.contains(name),
            "{name} was recorded as applied, yet sent again"
        );
    }
    for index in 0..160 {
        assert!(
            cluster
                .server
                .get("v1", "ConfigMap", "default", &format!("cm-{index:03}"))
                .is_some()
        );
    }
    let completed = &payloads_of_type(&events(state.path(), &install_id), "ApplyCompleted")[0];
    assert_eq!(
        completed["inventory"].as_array().unwrap().len(),
        161,
        "160 maps and the pull secret"
    );
}

#[test]
fn objects_kots_applied_client_side_are_taken_over() {
    let cluster = fake_cluster(Options::default());
    let scratch = tempfile::tempdir().unwrap();
    let kots_version = scratch.path().join("settings.yaml");
    std::fs::write(
        &kots_version,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  kept: \"1\"\n  dropped: \"1\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n  namespace: default\ndata:\n  kept: \"1\"\n",
    )
    .unwrap();
    // Real kubectl against the fake cluster; its standard output.
    let kubectl = |args: &[&std::ffi::OsStr]| kubectl_on(&cluster, args);
    kubectl(&["apply".as_ref(), "-f".as_ref(), kots_version.as_os_str()]);
    // A person's change after KOTS's apply (manager `kubectl-label`): not KOTS's, so not
    // taken over, and it stays.
    kubectl(&["label", "configmap", "settings", "team=payments"].map(std::ffi::OsStr::new));
    let before = cluster
        .server
        .get("v1", "ConfigMap", "default", "settings")
        .unwrap();
    assert!(
        before["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            (
                "settings.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  kept: \"1\"\n",
            ),
            (
                "same.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\ndata:\n  kept: \"1\"\n",
            ),
        ],
        "",
    );
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let recorded = applied(&events(
        state.path(),
        install["install_id"].as_str().unwrap(),
    ));
    assert_eq!(recorded["ConfigMap/settings"]["taken_over"], true);
    // Taken over with nothing else to change: still written (the takeover moved it).
    assert_eq!(recorded["ConfigMap/same"]["taken_over"], true);
    assert_eq!(
        recorded["ConfigMap/same"]["outcome"], "configured",
        "{recorded:#?}"
    );
    let shown = kubectl(
        &[
            "get",
            "configmap",
            "settings",
            "-o",
            "json",
            "--show-managed-fields",
        ]
        .map(std::ffi::OsStr::new),
    );
    let after: Value = serde_json::from_slice(&shown).unwrap();
    assert_eq!(
        after["data"],
        json!({"kept": "1"}),
        "the field the release dropped is gone"
    );
    assert!(
        after["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );
    let managers: Vec<&str> = after["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["manager"].as_str().unwrap())
        .collect();
    assert!(
        !managers.contains(&"kubectl-client-side-apply") && !managers.contains(&"kubectl"),
        "{managers:?}"
    );
    assert!(managers.contains(&"windlass"));
    assert!(managers.contains(&"kubectl-label"), "{managers:?}");
    assert_eq!(after["metadata"]["labels"]["team"], "payments", "{after}");
}

const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n{annotations}spec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25\n";

/// An install that stopped (here: a wait not met) and is run again with another kubeconfig
/// resumes under the same install key, but what it recorded as applied is in the first cluster:
/// the second gets every object, those already recorded included.
#[test]
fn a_run_resumed_against_another_cluster_sends_what_the_first_cluster_got() {
    let first_cluster = fake_cluster(Options::default());
    let second_cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let waited = WEB.replace(
        "{annotations}",
        "  annotations:\n    kots.io/wait-for-ready: \"true\"\n",
    );
    let release = release(
        &[("web.yaml", &waited), ("a.yaml", &configmap("a", "1"))],
        "",
    );
    let stopped = install_failing_wait(state.path(), release.path(), &first_cluster, "1s");
    assert!(exists(
        &first_cluster,
        "apps/v1",
        "Deployment",
        "default",
        "web"
    ));

    let resumed = install_failing_wait(state.path(), release.path(), &second_cluster, "1s");
    assert_eq!(resumed["install_id"], stopped["install_id"], "{resumed}");
    assert!(
        exists(&second_cluster, "apps/v1", "Deployment", "default", "web"),
        "the Deployment recorded as applied to the first cluster is sent to the second"
    );
    assert!(
        exists(&second_cluster, "v1", "ConfigMap", "default", "a"),
        "and so is the ConfigMap applied before it"
    );
}

/// `web` (waited for with `annotations`) and eight more Deployments, enough that windlass
/// reads them with a LIST before applying: a fault on GETs then meets only the waits.
fn web_among_others(annotations: &str) -> Vec<(String, String)> {
    let mut files = vec![(
        "web.yaml".to_string(),
        WEB.replace("{annotations}", annotations),
    )];
    for index in 0..8 {
        files.push((
            format!("other-{index}.yaml"),
            WEB.replace("{annotations}", "")
                .replace("web", &format!("other-{index}")),
        ));
    }
    files
}

/// A release of `files` under `manifests/` (the Application without a spec of its own).
pub(crate) fn release_of(files: &[(String, String)]) -> tempfile::TempDir {
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    release(&files, "")
}

/// A server that does not answer the wait's reads: the wait still ends at its deadline (plus
/// the moment its last check may take), recorded as timed out.
#[test]
fn a_wait_ends_at_its_deadline_when_the_server_does_not_answer() {
    let cluster = fake_cluster(Options::default());
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("get").resource("deployments").name("web"),
        action: FaultAction::Delay(Duration::from_secs(30)),
        remaining: None,
    });
    let state = tempfile::tempdir().unwrap();
    let release = release_of(&web_among_others(
        "  annotations:\n    kots.io/wait-for-ready: \"true\"\n",
    ));
    let started = Instant::now();
    let output = install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "1s"],
    );
    let took = started.elapsed();
    let failed = failed_json(&output);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let waits = payloads_of_type(
        &events(state.path(), failed["install_id"].as_str().unwrap()),
        "WaitFinished",
    );
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(waits[0]["outcome"], "timed_out", "{waits:?}");
    assert_eq!(
        waits[0]["detail"], "the API server did not answer in time",
        "{waits:?}"
    );
}

/// A read the server refuses ends the wait at once, recorded as failed with the refusal; the
/// install fails naming it.
#[test]
fn a_refused_read_fails_the_wait_and_is_recorded() {
    let cluster = fake_cluster(Options::default());
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("get").resource("deployments").name("web"),
        action: FaultAction::Refuse("access denied by policy".into()),
        remaining: None,
    });
    let state = tempfile::tempdir().unwrap();
    let release = release_of(&web_among_others(
        "  annotations:\n    kots.io/wait-for-ready: \"true\"\n",
    ));
    let started = Instant::now();
    let output = install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "60s"],
    );
    let failed = failed_json(&output);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        failed["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("access denied by policy"),
        "{failed}"
    );
    let waits = payloads_of_type(
        &events(state.path(), failed["install_id"].as_str().unwrap()),
        "WaitFinished",
    );
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(waits[0]["outcome"], "failed", "{waits:?}");
    assert!(
        waits[0]["detail"]
            .as_str()
            .unwrap()
            .contains("access denied by policy"),
        "{waits:?}"
    );
}

/// A LIST the server refuses (RBAC allowing get but not list: windlass lists a kind it applies
/// eight or more objects of) fails the apply at once, with the server's words: a refusal is
/// not retried as a 429 or a 5xx is.
#[test]
fn a_refused_list_fails_the_apply_without_retrying() {
    let cluster = fake_cluster(Options::default());
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("list").resource("configmaps"),
        action: FaultAction::Refuse("configmaps is forbidden: cannot list".into()),
        remaining: None,
    });
    let state = tempfile::tempdir().unwrap();
    let files: Vec<(String, String)> = (0..10)
        .map(|index| {
            (
                format!("cm-{index}.yaml"),
                configmap(&format!("cm-{index}"), "1"),
            )
        })
        .collect();
    let release = release_of(&files);
    let output = install_kube(state.path(), release.path(), &cluster, &[]);
    let failed = failed_json(&output);
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot list") && !message.contains("after retries"),
        "{failed}"
    );
    assert_eq!(
        requests_of(&cluster, "list", "configmaps"),
        1,
        "asked once, not retried"
    );
}

/// A Deployment the server cannot type (a container port without its key `containerPort`: a
/// real server answers 500 `failed to create typed patch object`) fails the apply at once, exit
/// 3, naming the object, its file and the server's words: that 500 is not retried as others are.
/// (Two env entries of one name never reach the server: the render merges them, as kustomize.)
#[test]
fn an_object_the_server_cannot_type_fails_naming_its_file_without_retrying() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let web = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25\n          ports:\n            - {name: http}\n";
    let release = release(&[("web.yaml", web)], "");
    let output = install_kube(state.path(), release.path(), &cluster, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let failed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("Deployment")
            && message.contains("web-deployment.yaml")
            && message.contains("500: failed to create typed patch object")
            && message.contains("omits key field \"containerPort\"")
            && !message.contains("after retries"),
        "{message}"
    );
    assert_eq!(
        requests_of(&cluster, "patch", "deployments"),
        1,
        "sent once, not retried"
    );
}

/// An object that is waited for holds back the rest of its kind: `seed` comes after `migrate`,
/// whose property never holds, so it is never applied.
#[test]
fn a_waited_object_holds_back_the_rest_of_its_kind() {
    let cluster = fake_cluster(Options::default());
    let job = |name: &str, annotations: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n{annotations}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: run\n          image: busybox:1.36\n"
        )
    };
    let migrate = job(
        "migrate",
        "  annotations:\n    kots.io/wait-for-properties: \".status.succeeded=1\"\n",
    );
    let seed = job("seed", "");
    let state = tempfile::tempdir().unwrap();
    let release = release(&[("migrate.yaml", &migrate), ("seed.yaml", &seed)], "");
    let output = install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "1s"],
    );
    failed_json(&output);
    assert!(exists(&cluster, "batch/v1", "Job", "default", "migrate"));
    assert!(
        !exists(&cluster, "batch/v1", "Job", "default", "seed"),
        "seed must wait for migrate's property"
    );
}

/// Status informers: one whose reads are refused counts as unavailable (the install still
/// completes), entries that name nothing are missing and said so, and the app is not ready.
#[test]
fn status_informers_that_cannot_be_read_or_parsed_are_reported() {
    let cluster = fake_cluster(Options::default());
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("list").resource("endpointslices"),
        action: FaultAction::Refuse("endpoint slices are not for you".into()),
        remaining: None,
    });
    // And a server that keeps failing the reads of another informer's Deployment.
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("get")
            .resource("deployments")
            .name("other"),
        action: FaultAction::ServerError(503),
        remaining: None,
    });
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n    - port: 80\n";
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[("service.yaml", service)],
        "  statusInformers:\n    - svc/web\n    - deployment-web\n    - deployment/other\n",
    );
    let output = install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "1s"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install}");
    let observed = payloads_of_type(
        &events(state.path(), install["install_id"].as_str().unwrap()),
        "AppStateObserved",
    );
    let resources = &observed.last().expect("the app state is recorded")["resources"];
    assert_eq!(
        resources,
        &json!([
            {"informer": "deployment-web", "state": "missing"},
            {"informer": "svc/web", "state": "unavailable"},
            {"informer": "deployment/other", "state": "unavailable"},
        ]),
        "{observed:?}"
    );
    assert!(
        stderr.contains("statusInformers entry \"deployment-web\" is not [namespace/]kind/name"),
        "{stderr}"
    );
    assert_eq!(observed.last().unwrap()["state"], "missing", "{observed:?}");
}

/// A wait as a user sees it on a terminal (tmux gives windlass a real one): the apply stage's
/// line says what is waited for, what the last check saw and how long it has waited, then a
/// line says how the wait ended.
#[test]
fn a_wait_shows_what_it_sees_on_a_terminal() {
    let tmux = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "tmux is needed ({error}): apt-get install -y tmux (scripts/test.sh installs it)"
            )
        });
    assert!(tmux.status.success());
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[(
            "web.yaml",
            &WEB.replace(
                "{annotations}",
                "  annotations:\n    kots.io/wait-for-ready: \"true\"\n",
            ),
        )],
        "",
    );
    let socket = state.path().join("tmux.sock");
    let command = format!(
        "RUST_LOG=warn {} --state {} install --offline {} --target kube --kubeconfig {} --wait-timeout 6s; echo DONE-$?; sleep 60",
        env!("CARGO_BIN_EXE_windlass"),
        state.path().join("state").display(),
        release.path().display(),
        cluster.kubeconfig.display()
    );
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        "wait",
        "-x",
        "220",
        "-y",
        "40",
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut saw_status = None;
    let screen = loop {
        let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "wait"]).stdout)
            .into_owned();
        if saw_status.is_none()
            && let Some(line) = screen.lines().find(|line| {
                line.contains("waiting for Deployment default/web to be ready: updating (")
                    && line.contains("s of 6s)")
            })
        {
            saw_status = Some(line.to_string());
        }
        if screen.contains("DONE-") || Instant::now() > deadline {
            break screen;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    tmux(&["kill-server"]);
    assert!(
        saw_status.is_some(),
        "no status line during the wait; last screen:\n{screen}"
    );
    assert!(screen.contains("DONE-1"), "{screen}");
    assert!(
        screen.contains("Deployment default/web was not ready by the deadline after 6."),
        "{screen}"
    );
}

#[test]
fn waits_have_deadlines_and_status_informers_give_the_app_state() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let waited = WEB.replace(
        "{annotations}",
        "  annotations:\n    kots.io/wait-for-ready: \"true\"\n",
    );
    let release = release(&[("web.yaml", &waited)], "");
    let started = Instant::now();
    let timed_out = install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "2s"],
    );
    let failed = failed_json(&timed_out);
    assert!(started.elapsed() < Duration::from_secs(30));
    let progress = String::from_utf8_lossy(&timed_out.stderr);
    assert!(
        progress.contains(
            "apply: waiting up to 2s for Deployment default/web to be ready (now updating)"
        ) && progress
            .contains("apply: Deployment default/web was not ready by the deadline after 2."),
        "{progress}"
    );
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("Deployment default/web (rendered/this-cluster/web-deployment.yaml): kots.io/wait-for-ready: not met after 2s"),
        "{message}"
    );
    let waits = payloads_of_type(
        &events(state.path(), failed["install_id"].as_str().unwrap()),
        "WaitFinished",
    );
    assert!(
        waits
            .iter()
            .any(|wait| wait["wait"] == "ready" && wait["outcome"] == "timed_out"),
        "{waits:?}"
    );

    // The same command again resumes that install: the Deployment, recorded as applied, is not
    // sent again, but it is still waited for (and still not ready).
    let writes_of_web = || {
        cluster
            .server
            .requests()
            .iter()
            .filter(|request| request.name == "web" && request.verb == "patch" && !request.dry_run)
            .count()
    };
    let writes_before = writes_of_web();
    let resumed = install_failing_wait(state.path(), release.path(), &cluster, "2s");
    assert_eq!(resumed["install_id"], failed["install_id"], "{resumed}");
    assert_eq!(writes_of_web(), writes_before, "not sent again");
    let timed_out_waits = payloads_of_type(
        &events(state.path(), failed["install_id"].as_str().unwrap()),
        "WaitFinished",
    )
    .iter()
    .filter(|wait| wait["wait"] == "ready" && wait["outcome"] == "timed_out")
    .count();
    assert_eq!(timed_out_waits, 2, "waited for again");

    // Ready while windlass waits: the wait is met, and the app state follows the informers.
    rewrite(
        release.path(),
        &[
            ("web.yaml", &waited),
            (
                "svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
            ),
        ],
    );
    std::fs::write(
        release.path().join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  statusInformers:\n    - deployment/web\n    - svc/web\n",
    )
    .unwrap();
    let install = install_making_web_ready(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "2"],
        Duration::ZERO,
    );
    let install = json(install);
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let all = events(state.path(), install_id);
    let observed = &payloads_of_type(&all, "AppStateObserved")[0];
    // No endpoint slice serves the Service yet: the app is unavailable, and says why.
    assert_eq!(observed["state"], "unavailable", "{observed}");
    assert_eq!(
        observed["resources"],
        json!([{"informer": "deployment/web", "state": "ready"}, {"informer": "svc/web", "state": "unavailable"}])
    );
    let shown = run(windlass(state.path()).args(["show", install_id]));
    assert!(String::from_utf8_lossy(&shown.stdout).contains("app state unavailable"));

    cluster
        .server
        .create_as("endpointslice-controller", json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}]}))
        .unwrap();
    let again = json(apply_kube(
        state.path(),
        install_id,
        &cluster,
        &["--wait-timeout", "5"],
    ));
    assert_eq!(again["status"], "completed", "{again}");
    let observed = &payloads_of_type(
        &events(state.path(), again["install_id"].as_str().unwrap()),
        "AppStateObserved",
    )[0];
    assert_eq!(observed["state"], "ready", "{observed}");
}

/// With `additionalNamespaces: ["*"]`, a namespace being deleted (held Terminating by a
/// finalizer on an object in it) gets no copy of the pull secret, and does not fail the install.
#[test]
fn every_namespace_leaves_out_a_namespace_being_deleted() {
    let cluster = fake_cluster(Options {
        namespace_controller: true,
        ..Options::default()
    });
    create_namespace(&cluster, "doomed");
    cluster
        .server
        .create_as(
            "someone",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "held", "namespace": "doomed",
                                "finalizers": ["example.com/hold"]}}),
        )
        .unwrap();
    create_namespace(&cluster, "team-a");
    cluster
        .server
        .delete("v1", "Namespace", "", "doomed")
        .unwrap();
    let doomed = cluster.server.get("v1", "Namespace", "", "doomed").unwrap();
    assert_eq!(doomed["status"]["phase"], "Terminating", "{doomed}");

    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[("a.yaml", &configmap("a", "1"))],
        "  additionalNamespaces:\n    - \"*\"\n",
    );
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    assert!(exists(
        &cluster,
        "v1",
        "Secret",
        "team-a",
        "my-app-registry"
    ));
    assert!(!exists(
        &cluster,
        "v1",
        "Secret",
        "doomed",
        "my-app-registry"
    ));
}

#[test]
fn every_namespace_gets_the_pull_secret_and_properties_are_waited_for() {
    let cluster = fake_cluster(Options::default());
    cluster
        .server
        .create_as(
            "someone",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        )
        .unwrap();
    let namespaces_before = cluster.server.list("v1", "Namespace", None).len();
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  annotations:\n    kots.io/wait-for-properties: \".status.phase=Bound\"\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
    let release = release(
        &[("claim.yaml", claim)],
        "  additionalNamespaces:\n    - \"*\"\n",
    );
    let state = tempfile::tempdir().unwrap();
    let server = &cluster.server;
    let install = std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(300));
                if server
                    .set_status(
                        "v1",
                        "PersistentVolumeClaim",
                        "default",
                        "data",
                        json!({"phase": "Bound"}),
                    )
                    .is_ok()
                {
                    return;
                }
            }
        });
        install_kube(
            state.path(),
            release.path(),
            &cluster,
            &["--wait-timeout", "20"],
        )
    });
    let install = json(install);
    assert_eq!(install["status"], "completed", "{install}");
    for namespace in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "team-a",
    ] {
        assert!(
            exists(&cluster, "v1", "Secret", namespace, "my-app-registry"),
            "no pull secret in {namespace}"
        );
    }
    assert_eq!(
        cluster.server.list("v1", "Namespace", None).len(),
        namespaces_before,
        "\"*\" creates no namespace"
    );
    let waits = payloads_of_type(
        &events(state.path(), install["install_id"].as_str().unwrap()),
        "WaitFinished",
    );
    let properties = waits
        .iter()
        .find(|wait| wait["wait"] == "properties")
        .expect("the property wait is recorded");
    assert_eq!(properties["outcome"], "met", "{properties}");
    assert_eq!(properties["detail"], ".status.phase=Bound");
}

#[test]
fn diff_lists_applied_and_pruned_objects_with_attribution() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  annotations:\n    kots.io/keep: \"true\"\ndata:\n  value: k\n";
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "1")),
            ("same.yaml", &configmap("same", "1")),
            ("kept.yaml", kept),
        ],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    let first_id = first["install_id"].as_str().unwrap().to_string();
    rewrite(
        release.path(),
        &[
            ("a.yaml", &configmap("a", "2")),
            ("same.yaml", &configmap("same", "1")),
            ("d.yaml", &configmap("d", "1")),
        ],
    );
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap().to_string();

    let diff = json(run(
        windlass(state.path()).args(["diff", &first_id, &second_id, "--json"])
    ));
    let of_kind = |kind: &str| -> BTreeMap<String, Value> {
        diff["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|change| change["kind"] == kind)
            .map(|change| {
                (
                    change["subject"].as_str().unwrap().to_string(),
                    change.clone(),
                )
            })
            .collect()
    };
    let changed = of_kind("applied_object_changed");
    assert_eq!(
        changed.keys().collect::<Vec<_>>(),
        ["ConfigMap default/a"],
        "{diff:#}"
    );
    let a = &changed["ConfigMap default/a"];
    assert_eq!(a["stage"], "apply", "{a}");
    assert_eq!(a["attribution"], "upstream changed", "{a}");
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains("rendered/this-cluster/a-configmap.yaml"),
        "{a}"
    );
    assert!(
        a["detail"].as_str().unwrap().ends_with("(configured)"),
        "{a}"
    );
    let added = of_kind("applied_object_added");
    assert_eq!(
        added.keys().collect::<Vec<_>>(),
        ["ConfigMap default/d"],
        "{diff:#}"
    );
    assert!(
        added["ConfigMap default/d"]["detail"]
            .as_str()
            .unwrap()
            .ends_with("(created)")
    );
    let pruned = of_kind("pruned_object");
    assert_eq!(
        pruned
            .iter()
            .map(|(subject, change)| (subject.as_str(), change["detail"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("ConfigMap default/b", "deleted"),
            ("ConfigMap default/kept", "kept (annotated kots.io/keep)"),
        ],
        "{diff:#}"
    );
    assert!(
        pruned
            .values()
            .all(|change| change["attribution"] == "upstream changed")
    );
    // An object applied again unchanged is no change; nothing is listed as removed without
    // having been pruned.
    assert!(
        !diff.to_string().contains("ConfigMap default/same"),
        "{diff:#}"
    );
    assert!(of_kind("applied_object_removed").is_empty(), "{diff:#}");
    // `--stage apply` keeps the apply stage's changes only.
    let only_apply =
        json(run(windlass(state.path()).args([
            "diff", &first_id, &second_id, "--json", "--stage", "apply",
        ])));
    assert_eq!(
        only_apply["changes"].as_array().unwrap().len(),
        4,
        "{only_apply:#}"
    );
    // The text output names them too.
    let text =
        String::from_utf8(run(windlass(state.path()).args(["diff", &first_id, &second_id])).stdout)
            .unwrap();
    assert!(
        text.contains("pruned_object ConfigMap default/b: deleted (upstream changed)"),
        "{text}"
    );
}

/// A replay never contacts a cluster: an install that applied to one (here the fake API server,
/// stopped before the replay) replays every stage but the apply, which is reported as not
/// replayed with the reason; an install made by `windlass apply` renders nothing and is refused,
/// naming the install to replay instead.
#[test]
fn a_replay_leaves_out_the_apply_to_a_cluster_and_says_so() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let install = json(install_kube(state.path(), &quickstart(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let applied_again = json(apply_kube(state.path(), install_id, &cluster, &[]));
    let apply_id = applied_again["install_id"].as_str().unwrap().to_string();
    drop(cluster);

    let replayed = output_within(windlass(state.path()).args(["replay", install_id, "--json"]));
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let report = json(replayed);
    let statuses: BTreeMap<String, String> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| {
            (
                stage["stage"].as_str().unwrap().to_string(),
                stage["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(statuses["apply"], "not_replayed", "{report}");
    assert_eq!(statuses["render_midstream"], "identical", "{report}");
    assert!(
        report["unverified"].as_array().unwrap().iter().any(|line| {
            line.as_str()
                .is_some_and(|line| line.contains("stage apply applied to a cluster (kube)"))
        }),
        "{report}"
    );

    let refused = output_within(windlass(state.path()).args(["replay", &apply_id]));
    assert_eq!(refused.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "is a `windlass apply` of what install {install_id} rendered"
        )),
        "{stderr}"
    );
}

/// The apply stage's summary of install `install_id`.
fn apply_summary(state: &Path, install_id: &str) -> String {
    payloads_of_type(&events(state, install_id), "StageCompleted")
        .iter()
        .find(|completed| completed["stage"] == "apply")
        .and_then(|completed| completed["summary"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_unchanged_apply_compares_recorded_digests_and_still_reapplies_what_drifted() {
    // Nine ConfigMaps: read with a LIST, as a big release's objects are.
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let files: Vec<(String, String)> = (0..9)
        .map(|index| {
            (
                format!("cm-{index}.yaml"),
                configmap(&format!("cm-{index}"), "ours"),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let release = release(&files, "");
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let first = applied(&events(state.path(), install_id));
    assert!(first.contains_key("ConfigMap/cm-8"), "{first:?}");
    let trusted = |apply: &str| format!("as install {apply} applied it");

    // Applied again unchanged: the digests the install's apply recorded are compared with the
    // cluster's, no rendered file is parsed, nothing is written.
    cluster.server.reset_requests();
    let again = json(apply_kube(state.path(), install_id, &cluster, &[]));
    assert_eq!(again["status"], "completed", "{again}");
    let again_id = again["install_id"].as_str().unwrap();
    assert_eq!(cluster.server.counts().writes, 0, "nothing is written");
    // The LIST asks for the objects' metadata only (all the comparison reads).
    let lists: Vec<_> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "list" && request.resource == "configmaps")
        .collect();
    assert!(!lists.is_empty());
    for list in &lists {
        assert!(
            list.accept
                .starts_with("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"),
            "{list:?}"
        );
    }
    let summary = apply_summary(state.path(), again_id);
    assert!(
        summary.contains(&trusted(install_id)) && summary.contains("nothing parsed"),
        "{summary}"
    );
    let second = applied(&events(state.path(), again_id));
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    for (name, object) in &second {
        assert_eq!(object["outcome"], "unchanged", "{name}");
        assert_eq!(object["digest"], first[name]["digest"], "{name}");
        assert_eq!(object["file"], first[name]["file"], "{name}");
        assert!(object["uid"].is_string() && object["resource_version"].is_string());
    }
    let completed = payloads_of_type(&events(state.path(), again_id), "ApplyCompleted");
    assert_eq!(
        completed[0]["inventory"].as_array().unwrap().len(),
        first.len()
    );
    assert_eq!(completed[0]["counts"]["unchanged"], first.len());

    let someone_else_patches = |name: &str, patch: Value| {
        cluster
            .server
            .merge_patch_as("someone-else", "v1", "ConfigMap", "default", name, patch)
            .unwrap()
    };
    // Someone else changes one object: the next apply finds it and applies it again, exactly as
    // an apply that parses everything would.
    someone_else_patches("cm-3", json!({"data": {"value": "theirs"}}));
    cluster.server.reset_requests();
    let third = json(apply_kube(state.path(), install_id, &cluster, &[]));
    assert_eq!(third["status"], "completed", "{third}");
    // The apply that sends what drifted reads whole objects (it compares a dry run's result
    // with the live object).
    assert!(
        cluster
            .server
            .requests()
            .iter()
            .any(|request| request.verb == "list"
                && request.resource == "configmaps"
                && request.accept == "application/json"),
        "{:?}",
        cluster.server.requests()
    );
    let third_id = third["install_id"].as_str().unwrap();
    let recorded = applied(&events(state.path(), third_id));
    assert_eq!(recorded["ConfigMap/cm-3"]["outcome"], "configured");
    assert_eq!(recorded["ConfigMap/cm-4"]["outcome"], "unchanged");
    assert!(!apply_summary(state.path(), third_id).contains("nothing parsed"));
    assert_eq!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "cm-3")
            .unwrap()["data"]["value"],
        "ours"
    );

    // Someone deletes one: it is created again.
    cluster
        .server
        .delete("v1", "ConfigMap", "default", "cm-5")
        .unwrap();
    let fourth = json(apply_kube(state.path(), install_id, &cluster, &[]));
    assert_eq!(fourth["status"], "completed", "{fourth}");
    let fourth_id = fourth["install_id"].as_str().unwrap();
    let recorded = applied(&events(state.path(), fourth_id));
    assert_eq!(recorded["ConfigMap/cm-5"]["outcome"], "created");
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "cm-5"));
    assert!(!apply_summary(state.path(), fourth_id).contains("nothing parsed"));

    // Nothing changed since: the digests of that last apply are trusted.
    let fifth = json(apply_kube(state.path(), install_id, &cluster, &[]));
    let fifth_id = fifth["install_id"].as_str().unwrap();
    assert!(apply_summary(state.path(), fifth_id).contains(&trusted(fourth_id)));

    // Someone else adds a field windlass does not apply: the object has another manager, so it
    // is compared by a dry run, whose result (read back from a LIST, whose items a real server
    // sends without apiVersion and kind) equals the live object: unchanged, and not written.
    someone_else_patches("cm-6", json!({"metadata": {"labels": {"team": "theirs"}}}));
    cluster.server.reset_requests();
    let sixth = json(apply_kube(state.path(), install_id, &cluster, &[]));
    assert_eq!(sixth["status"], "completed", "{sixth}");
    let recorded = applied(&events(state.path(), sixth["install_id"].as_str().unwrap()));
    assert_eq!(recorded["ConfigMap/cm-6"]["outcome"], "unchanged");
    assert_eq!(cluster.server.counts().writes, 0, "nothing is written");
    assert!(
        cluster
            .server
            .requests()
            .iter()
            .any(|request| request.name == "cm-6" && request.dry_run),
        "compared by a dry run"
    );

    // A rendered file changed on disk is refused, fast path or not, and nothing is written.
    let out = PathBuf::from(install["out"].as_str().unwrap());
    let file = out.join(first["ConfigMap/cm-7"]["file"].as_str().unwrap());
    std::fs::write(&file, configmap("cm-7", "injected")).unwrap();
    let writes = cluster.server.counts().writes;
    let refused = apply_kube(state.path(), install_id, &cluster, &[]);
    assert_eq!(refused.status.code(), Some(1));
    let failed = String::from_utf8_lossy(&refused.stdout);
    assert!(
        failed.contains(first["ConfigMap/cm-7"]["file"].as_str().unwrap())
            && failed.contains("changed since it was rendered"),
        "{failed}"
    );
    assert_eq!(cluster.server.counts().writes, writes);
    assert_eq!(
        cluster
            .server
            .get("v1", "ConfigMap", "default", "cm-7")
            .unwrap()["data"]["value"],
        "ours"
    );
}

/// Runs the real `kubectl` against `cluster`; its standard output.
pub(crate) fn kubectl_on<S: AsRef<std::ffi::OsStr>>(cluster: &FakeCluster, args: &[S]) -> Vec<u8> {
    let output = Command::new(windlass_testkit::kube_tools::kubectl())
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The `(manager, operation)` of each `managedFields` entry of `object`.
fn managers_of(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["manager"].as_str().unwrap().to_string(),
                entry["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that `object`, changed by another manager's update that only removed fields, still
/// looks as windlass left it but for those fields: windlass its only manager (the API server
/// drops the editor's entry, empty once the fields are gone; the fake server does as
/// structured-merge-diff does) and the digest annotation unchanged.
fn assert_only_windlass_manages(object: &Value, digest: &Value) {
    assert_eq!(
        managers_of(object),
        [("windlass".to_string(), "Apply".to_string())],
        "{object}"
    );
    assert_eq!(
        object["metadata"]["annotations"]["windlass.io/applied-digest"], *digest,
        "{object}"
    );
}

/// A ConfigMap labelled `app: web`.
fn labelled_configmap(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app: web\ndata:\n  value: \"ours\"\n"
    )
}

/// `kubectl label configmap cm-2 app-` removes a label windlass applied: the label leaves
/// windlass's fields and `kubectl-label` keeps no entry, so windlass is still the only manager
/// and the digest annotation is the same. The next unchanged apply (the same rendering) must
/// not trust the digests it recorded: the fields windlass owns are not those the server answered
/// its apply with, so it applies that object again (the label is back) and records it
/// `configured`; every other object stays `unchanged` without a dry run.
#[test]
fn an_unchanged_apply_reapplies_a_label_another_manager_only_removed() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    // Nine ConfigMaps: read with a LIST, as a big release's objects are.
    let files: Vec<(String, String)> = (0..9)
        .map(|index| {
            (
                format!("cm-{index}.yaml"),
                labelled_configmap(&format!("cm-{index}")),
            )
        })
        .collect();
    let release = release_of(&files);
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let first = applied(&events(state.path(), install_id));
    for (name, object) in &first {
        assert!(
            object["owned_fields_digest"]
                .as_str()
                .is_some_and(|digest| !digest.is_empty()),
            "{name}: {object}"
        );
    }
    // Applied again unchanged: trusted from the records, nothing parsed.
    let again = json(apply_kube(state.path(), install_id, &cluster, &[]));
    let again_id = again["install_id"].as_str().unwrap();
    assert!(
        apply_summary(state.path(), again_id).contains("nothing parsed"),
        "{again}"
    );

    kubectl_on(&cluster, &["label", "configmap", "cm-2", "app-"]);
    let edited = cluster
        .server
        .get("v1", "ConfigMap", "default", "cm-2")
        .unwrap();
    assert!(
        edited["metadata"]
            .get("labels")
            .is_none_or(|labels| labels.get("app").is_none())
    );
    assert_only_windlass_manages(&edited, &first["ConfigMap/cm-2"]["digest"]);

    cluster.server.reset_requests();
    let third = json(apply_kube(state.path(), install_id, &cluster, &[]));
    assert_eq!(third["status"], "completed", "{third}");
    let third_id = third["install_id"].as_str().unwrap();
    let recorded = applied(&events(state.path(), third_id));
    assert_eq!(
        recorded["ConfigMap/cm-2"]["outcome"], "configured",
        "{recorded:?}"
    );
    for (name, object) in recorded
        .iter()
        .filter(|(name, _)| *name != "ConfigMap/cm-2")
    {
        assert_eq!(object["outcome"], "unchanged", "{name}");
    }
    assert!(!apply_summary(state.path(), third_id).contains("nothing parsed"));
    let repaired = cluster
        .server
        .get("v1", "ConfigMap", "default", "cm-2")
        .unwrap();
    assert_eq!(repaired["metadata"]["labels"]["app"], "web", "{repaired}");
    // Only the drifted object was asked about; the others were known unchanged from the records
    // of the apply before (the full apply reads them too).
    let dry_runs: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.dry_run)
        .map(|request| request.name)
        .collect();
    assert_eq!(dry_runs, ["cm-2"]);
    assert_eq!(
        recorded["ConfigMap/cm-2"]["owned_fields_digest"],
        first["ConfigMap/cm-2"]["owned_fields_digest"],
        "the same body applied again: windlass owns the same fields"
    );

    // Repaired: the next apply trusts its records again.
    let fourth = json(apply_kube(state.path(), install_id, &cluster, &[]));
    let fourth_id = fourth["install_id"].as_str().unwrap();
    assert!(
        apply_summary(state.path(), fourth_id)
            .contains(&format!("as install {third_id} applied it")),
        "{fourth}"
    );
}

/// `kubectl patch` removing an env entry of a Deployment windlass applied leaves windlass the
/// only manager with the same digest annotation. `windlass install` of the release again (a new
/// rendering: the full apply, every object parsed) must apply that Deployment again (the entry
/// is back) and record it `configured`, while the objects nobody touched are still `unchanged`
/// without a dry run, as the records of the previous apply say.
#[test]
fn an_install_reapplies_an_env_entry_another_manager_only_removed() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let web = WEB.replace("{annotations}", "").replace(
        "          image: nginx:1.25\n",
        "          image: nginx:1.25\n          env:\n            - name: MODE\n              value: production\n            - name: REGION\n              value: north\n",
    );
    let mut files = vec![("web.yaml".to_string(), web)];
    files.extend((0..3).map(|index| {
        (
            format!("cm-{index}.yaml"),
            configmap(&format!("cm-{index}"), "ours"),
        )
    }));
    let release = release_of(&files);
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let first = applied(&events(
        state.path(),
        install["install_id"].as_str().unwrap(),
    ));

    kubectl_on(
        &cluster,
        &[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op": "remove", "path": "/spec/template/spec/containers/0/env/1"}]"#,
        ],
    );
    let edited = cluster
        .server
        .get("apps/v1", "Deployment", "default", "web")
        .unwrap();
    assert_eq!(
        edited["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "MODE", "value": "production"}])
    );
    assert_only_windlass_manages(&edited, &first["Deployment/web"]["digest"]);

    cluster.server.reset_requests();
    let again = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(again["status"], "completed", "{again}");
    let again_id = again["install_id"].as_str().unwrap();
    let recorded = applied(&events(state.path(), again_id));
    assert_eq!(
        recorded["Deployment/web"]["outcome"], "configured",
        "{recorded:?}"
    );
    for (name, object) in recorded
        .iter()
        .filter(|(name, _)| *name != "Deployment/web")
    {
        assert_eq!(object["outcome"], "unchanged", "{name}");
    }
    let repaired = cluster
        .server
        .get("apps/v1", "Deployment", "default", "web")
        .unwrap();
    assert_eq!(
        repaired["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "MODE", "value": "production"}, {"name": "REGION", "value": "north"}]),
        "{repaired}"
    );
    let dry_runs: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.dry_run)
        .map(|request| request.name)
        .collect();
    assert_eq!(dry_runs, ["web"]);
}

/// `show` lists the waits: a `kots.io/wait-for-ready` Deployment the fake API server (no
/// controllers) never makes ready times out, and its line says so, with the last state seen.
#[test]
fn show_lists_the_waits_with_their_outcome() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let waited = WEB.replace(
        "{annotations}",
        "  annotations:\n    kots.io/wait-for-ready: \"true\"\n",
    );
    let release = release(&[("web.yaml", &waited)], "");
    let failed = install_failing_wait(state.path(), release.path(), &cluster, "1s");
    let install_id = failed["install_id"].as_str().unwrap();
    let shown = run(windlass(state.path()).args(["show", install_id]));
    assert_eq!(shown.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&shown.stdout);
    let waits: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("wait "))
        .collect();
    assert_eq!(waits.len(), 1, "{stdout}");
    assert!(
        waits[0].starts_with("wait      timed_out   ready       Deployment default/web after ")
            && waits[0].ends_with(" s, last seen: updating"),
        "{stdout}"
    );
}

/// `kots.io/wait-for-properties` paths with the field names client-go's jsonpath takes (a hyphen,
/// escaped dots and a slash) are met, and `show` lists them met with the values seen.
#[test]
fn wait_for_properties_read_client_go_field_names() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    app.kubernetes.io/name: web\n  annotations:\n    kots.io/wait-for-properties: '.data.my-key=1,.metadata.labels.app\\.kubernetes\\.io/name=web'\ndata:\n  my-key: \"1\"\n";
    let release = release(&[("settings.yaml", settings)], "");
    let install = json(install_kube(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "20s"],
    ));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let shown = run(windlass(state.path()).args(["show", install_id]));
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(
        stdout.lines().any(|line| line
            .starts_with("wait      met         properties  ConfigMap default/settings after ")
            && line.ends_with(
                ", last seen: .data.my-key=1,.metadata.labels.app\\.kubernetes\\.io/name=web"
            )),
        "{stdout}"
    );
}
