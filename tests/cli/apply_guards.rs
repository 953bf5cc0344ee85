//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): the prune guards (uid and ownership re-read), the empty-prune
//! refusal, and what the records of applied, failed, waited-for and pruned objects carry.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use windlass_test_apiserver::{Fault, FaultAction, FaultMatch, Options};

use super::apply_kube::*;
use super::*;

/// The live object's `metadata.uid` and `metadata.resourceVersion` (it must exist).
fn live_identity(
    cluster: &FakeCluster,
    api_version: &str,
    kind: &str,
    name: &str,
) -> (String, String) {
    let live = cluster
        .server
        .get(api_version, kind, "default", name)
        .unwrap_or_else(|| panic!("{kind} default/{name} is not in the fake cluster"));
    (
        live["metadata"]["uid"].as_str().unwrap().to_string(),
        live["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// Every `ObjectPruned` of `install_id`, by `Kind/name`.
fn pruned_records(state: &Path, install_id: &str) -> BTreeMap<String, Value> {
    payloads_of_type(&events(state, install_id), "ObjectPruned")
        .into_iter()
        .map(|pruned| {
            (
                format!(
                    "{}/{}",
                    pruned["key"]["kind"].as_str().unwrap(),
                    pruned["key"]["name"].as_str().unwrap()
                ),
                pruned,
            )
        })
        .collect()
}

/// The names of the DELETE requests the fake server received for `resource` (dry runs included).
pub(crate) fn deletes_of(cluster: &FakeCluster, resource: &str) -> Vec<String> {
    cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "delete" && request.resource == resource)
        .map(|request| request.name)
        .collect()
}

/// The prune guard, against the FAKE API server `windlass-test-apiserver`: before deleting a
/// dropped object windlass reads it again, and leaves it (`not_owned`, no DELETE sent) when its
/// uid is not the one recorded (someone deleted it and made another of the same name, ownership
/// annotation included) or when it no longer carries `windlass.io/app` (same uid); an object that
/// passes both checks is deleted. Objects found `not_owned` leave the inventory.
#[test]
fn prune_leaves_objects_whose_uid_changed_or_that_lost_the_ownership_annotation() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "1")),
            ("c.yaml", &configmap("c", "1")),
        ],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    let (old_a_uid, _) = live_identity(&cluster, "v1", "ConfigMap", "a");
    let (b_uid, _) = live_identity(&cluster, "v1", "ConfigMap", "b");
    let (c_uid, _) = live_identity(&cluster, "v1", "ConfigMap", "c");

    // Outside windlass: `a` deleted and made again (a new uid, the ownership annotation copied,
    // so that only the uid differs), and `b` stripped of its ownership annotation (same uid).
    let old_a = cluster
        .server
        .delete("v1", "ConfigMap", "default", "a")
        .unwrap();
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "a"));
    let owner = old_a["metadata"]["annotations"]["windlass.io/app"].clone();
    assert_eq!(owner, "my-app", "{old_a}");
    cluster
        .server
        .create_as(
            "someone-else",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "a", "namespace": "default",
                                "annotations": {"windlass.io/app": owner}},
                   "data": {"value": "theirs"}}),
        )
        .unwrap();
    let (new_a_uid, _) = live_identity(&cluster, "v1", "ConfigMap", "a");
    assert_ne!(new_a_uid, old_a_uid);
    cluster
        .server
        .merge_patch_as(
            "someone-else",
            "v1",
            "ConfigMap",
            "default",
            "b",
            json!({"metadata": {"annotations": {"windlass.io/app": null}}}),
        )
        .unwrap();
    let b_live = cluster
        .server
        .get("v1", "ConfigMap", "default", "b")
        .unwrap();
    assert!(
        b_live["metadata"]["annotations"]["windlass.io/app"].is_null(),
        "{b_live}"
    );
    assert_eq!(b_live["metadata"]["uid"], b_uid.as_str());

    // The next release drops all three (and applies `d`, so that the prune is not an empty one).
    rewrite(release.path(), &[("d.yaml", &configmap("d", "1"))]);
    cluster.server.reset_requests();
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap();
    let pruned = pruned_records(state.path(), second_id);
    let a = &pruned["ConfigMap/a"];
    assert_eq!(a["outcome"], "not_owned", "{pruned:?}");
    assert_eq!(
        a["uid"],
        old_a_uid.as_str(),
        "the uid the inventory recorded"
    );
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("its uid is now {new_a_uid}")),
        "{a}"
    );
    let b = &pruned["ConfigMap/b"];
    assert_eq!(b["outcome"], "not_owned", "{pruned:?}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("no longer carries windlass.io/app"),
        "{b}"
    );
    let c = &pruned["ConfigMap/c"];
    assert_eq!(c["outcome"], "deleted", "{pruned:?}");
    assert_eq!(c["uid"], c_uid.as_str());

    // The server's state: `a` (the new one) and `b` untouched, `c` gone.
    let a_live = cluster
        .server
        .get("v1", "ConfigMap", "default", "a")
        .expect("the other `a` is left alone");
    assert_eq!(a_live["metadata"]["uid"], new_a_uid.as_str());
    assert_eq!(a_live["data"]["value"], "theirs");
    let (b_now, _) = live_identity(&cluster, "v1", "ConfigMap", "b");
    assert_eq!(b_now, b_uid);
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "c"));
    // Not even a DELETE with a uid precondition (which the server would refuse for `a`) was
    // sent for `a` or `b`: the re-read decided.
    assert_eq!(deletes_of(&cluster, "configmaps"), ["c"]);

    // Not owned: out of the inventory, so the next install does not look at them again.
    let completed = &payloads_of_type(&events(state.path(), second_id), "ApplyCompleted")[0];
    let inventory: Vec<&str> = completed["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["key"]["name"].as_str().unwrap())
        .collect();
    assert!(
        !inventory.iter().any(|name| ["a", "b", "c"].contains(name)),
        "{inventory:?}"
    );
    rewrite(release.path(), &[("e.yaml", &configmap("e", "1"))]);
    let third = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(third["status"], "completed", "{third}");
    let pruned = prune_outcomes(state.path(), third["install_id"].as_str().unwrap());
    assert_eq!(
        pruned,
        BTreeMap::from([("d".to_string(), "deleted".to_string())]),
        "only `d` is pruned now"
    );
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "a"));
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "b"));
}

/// `kots/tiny.yaml` and `charts/tiny-1.0.0.tgz`: a `kots.io/v1beta1` HelmChart with
/// `useHelmInstall: true` whose one ConfigMap helm installs (not windlass's server-side apply).
fn add_helm_install_chart(release: &Path) {
    let chart = [
        (
            "tiny/Chart.yaml".to_string(),
            "apiVersion: v2\nname: tiny\nversion: 1.0.0\n".to_string(),
        ),
        (
            "tiny/templates/config.yaml".to_string(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  size: small\n".to_string(),
        ),
    ];
    std::fs::create_dir_all(release.join("charts")).unwrap();
    std::fs::create_dir_all(release.join("kots")).unwrap();
    std::fs::write(
        release.join("charts/tiny-1.0.0.tgz"),
        windlass_testkit::charts::chart_archive(&chart),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/tiny.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: tiny\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n  useHelmInstall: true\n",
    )
    .unwrap();
}

/// Against the FAKE API server `windlass-test-apiserver` (and the real helm, for the chart): a
/// release whose manifests windlass applies hold none of its own objects (only the pull secret
/// windlass always provides; the release's only Kubernetes objects are in a chart helm installs,
/// since a release with none at all is refused as nothing to install) would prune everything
/// the previous install applied. That is refused (exit code 3, naming `--allow-empty-prune`) and
/// nothing is deleted; with `--allow-empty-prune` the earlier objects are deleted and recorded so.
#[test]
fn an_empty_release_prunes_only_with_allow_empty_prune() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("x.yaml", &configmap("x", "1")),
            ("y.yaml", &configmap("y", "1")),
        ],
        "",
    );
    let helm = windlass_testkit::helm();
    let helm_arguments = ["--helm", helm.to_str().unwrap()];
    let first = json(install_kube(
        state.path(),
        release.path(),
        &cluster,
        &helm_arguments,
    ));
    assert_eq!(first["status"], "completed", "{first}");
    let (x_uid, _) = live_identity(&cluster, "v1", "ConfigMap", "x");
    let (y_uid, _) = live_identity(&cluster, "v1", "ConfigMap", "y");

    rewrite(release.path(), &[]);
    add_helm_install_chart(release.path());
    cluster.server.reset_requests();
    let refused = install_kube(state.path(), release.path(), &cluster, &helm_arguments);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let message = refused["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("refusing to prune all 2 objects of the previous install")
            && message.contains("--allow-empty-prune"),
        "{message}"
    );
    let refused_id = refused["install_id"].as_str().unwrap();
    assert!(
        payloads_of_type(&events(state.path(), refused_id), "ObjectPruned").is_empty(),
        "nothing pruned"
    );
    assert!(
        cluster
            .server
            .requests()
            .iter()
            .all(|request| request.verb != "delete"),
        "no DELETE was sent"
    );
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "x"));
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "y"));

    let mut allowed_arguments = helm_arguments.to_vec();
    allowed_arguments.push("--allow-empty-prune");
    let allowed = json(install_kube(
        state.path(),
        release.path(),
        &cluster,
        &allowed_arguments,
    ));
    assert_eq!(allowed["status"], "completed", "{allowed}");
    let pruned = pruned_records(state.path(), allowed["install_id"].as_str().unwrap());
    assert_eq!(
        pruned.keys().cloned().collect::<Vec<_>>(),
        ["ConfigMap/x", "ConfigMap/y"],
        "{pruned:?}"
    );
    for (name, uid) in [("ConfigMap/x", &x_uid), ("ConfigMap/y", &y_uid)] {
        assert_eq!(pruned[name]["outcome"], "deleted", "{pruned:?}");
        assert_eq!(pruned[name]["uid"], uid.as_str(), "{pruned:?}");
    }
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "x"));
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "y"));
    let mut deleted = deletes_of(&cluster, "configmaps");
    deleted.sort();
    assert_eq!(deleted, ["x", "y"]);
    assert!(
        exists(&cluster, "v1", "Secret", "default", "my-app-registry"),
        "the pull secret, applied by every install, stays"
    );
    assert!(
        exists(&cluster, "v1", "ConfigMap", "default", "tiny-config"),
        "helm installed the chart"
    );
}

/// Against the FAKE API server `windlass-test-apiserver`, which refuses one object with a 403 as
/// an admission webhook would: that object's `ObjectsApplied` record is `failed`, with an error
/// carrying the server's message and no uid, and the objects recorded as created carry the live
/// object's uid and resourceVersion.
#[test]
fn a_refused_object_is_recorded_failed_with_the_servers_message() {
    let cluster = fake_cluster(Options::default());
    // The fake answers 403 Forbidden with `admission webhook "deny.windlass.test" denied the
    // request: ` and this.
    let refusal = "no ConfigMap may be named refused in this cluster";
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch")
            .resource("configmaps")
            .name("refused")
            .dry_run(false),
        action: FaultAction::Refuse(refusal.into()),
        remaining: None,
    });
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("alpha.yaml", &configmap("alpha", "1")),
            ("refused.yaml", &configmap("refused", "1")),
        ],
        "",
    );
    let output = install_kube(state.path(), release.path(), &cluster, &[]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let failed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(message.contains(refusal), "{message}");
    let install_id = failed["install_id"].as_str().unwrap();
    let recorded = applied(&events(state.path(), install_id));
    let refused = &recorded["ConfigMap/refused"];
    assert_eq!(refused["outcome"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains(refusal)
            && error.contains("the server refused it: 403")
            && error.contains("ConfigMap default/refused"),
        "{error}"
    );
    assert!(refused.get("uid").is_none(), "{refused}");
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "refused"));

    let created: Vec<(&String, &Value)> = recorded
        .iter()
        .filter(|(_, object)| object["outcome"] == "created")
        .collect();
    let created_names: Vec<&str> = created.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        created_names,
        ["ConfigMap/alpha", "Secret/my-app-registry"],
        "{recorded:?}"
    );
    for (name, object) in created {
        let kind = object["key"]["kind"].as_str().unwrap();
        let api_version = if kind == "Secret" || kind == "ConfigMap" {
            "v1"
        } else {
            panic!("unexpected {name}")
        };
        let (uid, resource_version) = live_identity(
            &cluster,
            api_version,
            kind,
            object["key"]["name"].as_str().unwrap(),
        );
        assert_eq!(object["uid"], uid.as_str(), "{name}: {object}");
        assert_eq!(
            object["resource_version"],
            resource_version.as_str(),
            "{name}: {object}"
        );
    }
}

const WAITED_DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    kots.io/wait-for-ready: \"true\"\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25\n";

const WAITED_CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  annotations:\n    kots.io/wait-for-properties: \".data.x=1\"\ndata:\n  x: \"1\"\n";

/// Against the FAKE API server `windlass-test-apiserver` (no controllers: the test makes the
/// Deployment ready with `make_ready` while windlass waits): each `WaitFinished` of an object
/// carries the uid and resourceVersion of the object as the wait last saw it (the Deployment's
/// after its status changed, not as applied), and a later prune's `deleted` record carries the
/// uid the object had and the resourceVersion read before the delete.
#[test]
fn waits_and_prunes_record_the_uid_and_resource_version_they_saw() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("settings.yaml", WAITED_CONFIGMAP),
            ("web.yaml", WAITED_DEPLOYMENT),
        ],
        "",
    );
    let install = install_making_web_ready(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "20"],
        Duration::ZERO,
    );
    let install = json(install);
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let all = events(state.path(), install_id);
    let waits = payloads_of_type(&all, "WaitFinished");
    let wait_of = |kind: &str, name: &str| {
        waits
            .iter()
            .find(|wait| wait["key"]["kind"] == kind && wait["key"]["name"] == name)
            .unwrap_or_else(|| panic!("no wait of {kind}/{name}: {waits:?}"))
            .clone()
    };
    let (settings_uid, settings_version) = live_identity(&cluster, "v1", "ConfigMap", "settings");
    let properties = wait_of("ConfigMap", "settings");
    assert_eq!(
        (&properties["wait"], &properties["outcome"]),
        (&json!("properties"), &json!("met")),
        "{properties}"
    );
    assert_eq!(properties["uid"], settings_uid.as_str(), "{properties}");
    assert_eq!(
        properties["resource_version"],
        settings_version.as_str(),
        "{properties}"
    );
    let (web_uid, web_version) = live_identity(&cluster, "apps/v1", "Deployment", "web");
    let ready = wait_of("Deployment", "web");
    assert_eq!(
        (&ready["wait"], &ready["outcome"]),
        (&json!("ready"), &json!("met")),
        "{ready}"
    );
    assert_eq!(ready["uid"], web_uid.as_str(), "{ready}");
    assert_eq!(ready["resource_version"], web_version.as_str(), "{ready}");
    let recorded = applied(&all);
    assert_eq!(recorded["Deployment/web"]["uid"], web_uid.as_str());
    assert_ne!(
        recorded["Deployment/web"]["resource_version"],
        web_version.as_str(),
        "the wait saw the Deployment after its status changed, not as applied"
    );

    // The next release drops both: their deletions carry the uids they had.
    rewrite(release.path(), &[("other.yaml", &configmap("other", "1"))]);
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let pruned = pruned_records(state.path(), second["install_id"].as_str().unwrap());
    for (name, uid, version) in [
        ("ConfigMap/settings", &settings_uid, &settings_version),
        ("Deployment/web", &web_uid, &web_version),
    ] {
        let record = &pruned[name];
        assert_eq!(record["outcome"], "deleted", "{pruned:?}");
        assert_eq!(record["uid"], uid.as_str(), "{record}");
        assert_eq!(record["resource_version"], version.as_str(), "{record}");
    }
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "settings"));
    assert!(!exists(&cluster, "apps/v1", "Deployment", "default", "web"));
}

/// Against the FAKE API server `windlass-test-apiserver` (with its namespace controller on): a
/// Namespace the next release drops is deleted with what it holds, objects the app never applied
/// included, as KOTS deletes it (windlass does not list every kind of a namespace first).
#[test]
fn a_dropped_namespace_is_deleted_with_what_it_holds() {
    let cluster = fake_cluster(Options {
        namespace_controller: true,
        ..Options::default()
    });
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            (
                "tools.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n",
            ),
            ("stays.yaml", &configmap("stays", "1")),
        ],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    cluster
        .server
        .create_as(
            "someone-else",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "foreign", "namespace": "tools"}, "data": {"k": "v"}}),
        )
        .unwrap();
    std::fs::remove_file(release.path().join("manifests/tools.yaml")).unwrap();
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let pruned = prune_outcomes(state.path(), second["install_id"].as_str().unwrap());
    assert_eq!(
        pruned.get("tools").map(String::as_str),
        Some("deleted"),
        "{pruned:?}"
    );
    assert!(!exists(&cluster, "v1", "Namespace", "", "tools"));
    assert!(
        !exists(&cluster, "v1", "ConfigMap", "tools", "foreign"),
        "what the namespace held went with it"
    );
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "stays"));
}

/// Against the FAKE API server `windlass-test-apiserver`: a CRD the next release drops is
/// deleted only once its instances are known to be the app's own; when the server refuses the
/// list of its instances, the CRD stays, recorded `refused`, and stays in the inventory, so the
/// next install tries again (and then deletes it).
#[test]
fn a_dropped_crd_whose_instances_cannot_be_listed_stays_as_a_refused_delete() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[("crd.yaml", CRD), ("stays.yaml", &configmap("stays", "1"))],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("list").resource("widgets"),
        action: FaultAction::Refuse("no listing widgets".into()),
        remaining: None,
    });
    std::fs::remove_file(release.path().join("manifests/crd.yaml")).unwrap();
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap();
    assert_eq!(
        prune_outcomes(state.path(), second_id)
            .get("widgets.example.com")
            .map(String::as_str),
        Some("refused")
    );
    assert!(exists(
        &cluster,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "",
        "widgets.example.com"
    ));
    let completed = &payloads_of_type(&events(state.path(), second_id), "ApplyCompleted")[0];
    assert!(
        completed["inventory"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["key"]["name"] == "widgets.example.com"),
        "{completed}"
    );
    cluster.server.clear_faults();
    let third = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(third["status"], "completed", "{third}");
    assert_eq!(
        prune_outcomes(state.path(), third["install_id"].as_str().unwrap())
            .get("widgets.example.com")
            .map(String::as_str),
        Some("deleted")
    );
    assert!(!exists(
        &cluster,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "",
        "widgets.example.com"
    ));
}
