//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): one app installed into two or three namespaces of one cluster
//! (instances) sharing an object (cluster-scoped, in a namespace a release names, or another
//! instance's app namespace). The instance whose release drops it leaves it to another which
//! still applies it; once no instance applies it, or the one that does is gone with its
//! namespace, it is deleted.

use serde_json::Value;
use windlass_test_apiserver::{Fault, FaultAction, FaultMatch, Options};

use super::apply_kube::*;
use super::*;

fn cluster_role(name: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"configmaps\"]\n    verbs: [\"get\"]\n"
    )
}

/// ConfigMap `common-settings` in namespace `common` (which a release names), holding `value`.
pub(crate) fn common_settings(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: common-settings\n  namespace: common\ndata:\n  value: \"{value}\"\n"
    )
}

/// A release of ConfigMap `settings` and ClusterRole `shared`.
fn settings_and_shared() -> tempfile::TempDir {
    release(
        &[
            ("settings.yaml", &configmap("settings", "one")),
            ("shared.yaml", &cluster_role("shared")),
        ],
        "",
    )
}

/// Makes `release` hold ConfigMap `settings` alone (dropping whatever else it had).
fn keep_only_settings(release: &Path) {
    rewrite(release, &[("settings.yaml", &configmap("settings", "one"))]);
}

fn role_exists(cluster: &FakeCluster, name: &str) -> bool {
    exists(
        cluster,
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "",
        name,
    )
}

/// The `ObjectPruned` payload of `name` in `install`, if any.
fn pruned_of(state: &Path, install: &Value, name: &str) -> Option<Value> {
    payloads_of_type(
        &events(state, install["install_id"].as_str().unwrap()),
        "ObjectPruned",
    )
    .into_iter()
    .find(|pruned| pruned["key"]["name"] == name)
}

/// The inventory entry of `name` in `install`'s `ApplyCompleted`, if any.
fn inventory_entry(state: &Path, install: &Value, name: &str) -> Option<Value> {
    let completed = &payloads_of_type(
        &events(state, install["install_id"].as_str().unwrap()),
        "ApplyCompleted",
    )[0];
    completed["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["key"]["name"] == name)
        .cloned()
}

/// Asserts that `install` kept `name` as left to another instance, with `detail` in what it
/// says.
pub(crate) fn assert_left_to(state: &Path, install: &Value, name: &str, detail: &str) {
    let kept = pruned_of(state, install, name)
        .unwrap_or_else(|| panic!("no prune decision on {name}: {install}"));
    assert_eq!(kept["outcome"], "kept", "{kept}");
    assert_eq!(kept["kept_because"], "other_instance", "{kept}");
    assert!(kept["detail"].as_str().unwrap().contains(detail), "{kept}");
}

/// team1 and team2 both apply ClusterRole `shared`; team1 alone applies `solo`. team1's next
/// release drops both: `solo` is deleted, `shared` is kept (`other_instance`, naming team2) and
/// marked in team1's inventory as left to another instance. team2's next release drops
/// `shared`: no other instance applies it now (team1's marked entry does not count), so it is
/// deleted.
#[test]
fn a_cluster_scoped_object_another_instance_applies_is_left_to_it() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let settings = configmap("settings", "one");
    let shared = cluster_role("shared");
    let team1 = release(
        &[
            ("settings.yaml", &settings),
            ("shared.yaml", &shared),
            ("solo.yaml", &cluster_role("solo")),
        ],
        "",
    );
    let team2 = settings_and_shared();
    install_into_new_namespace(state.path(), team1.path(), &cluster, "team1");
    install_into_new_namespace(state.path(), team2.path(), &cluster, "team2");
    assert!(role_exists(&cluster, "shared") && role_exists(&cluster, "solo"));

    keep_only_settings(team1.path());
    let dropped = install_in(state.path(), team1.path(), &cluster, "team1");
    let dropped = json(dropped);
    assert_eq!(dropped["status"], "completed", "{dropped}");
    let solo = pruned_of(state.path(), &dropped, "solo").expect("solo's prune decision");
    assert_eq!(solo["outcome"], "deleted", "{solo}");
    assert!(!role_exists(&cluster, "solo"));
    assert_left_to(
        state.path(),
        &dropped,
        "shared",
        "the instance of my-app in namespace team2 applies it too",
    );
    assert!(role_exists(&cluster, "shared"));
    // Still listed by team1, marked as left to another instance: team1's next install looks
    // at it again, and team2 does not count it as team1's.
    let left = inventory_entry(state.path(), &dropped, "shared").expect("shared stays listed");
    assert_eq!(left["left_to_other_instance"], true, "{left}");
    let shown = run(windlass(state.path()).args(["show", dropped["install_id"].as_str().unwrap()]));
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("namespace team2 applies it too"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );

    keep_only_settings(team2.path());
    let last = json(install_in(state.path(), team2.path(), &cluster, "team2"));
    assert_eq!(last["status"], "completed", "{last}");
    let deleted = pruned_of(state.path(), &last, "shared").expect("shared's prune decision");
    assert_eq!(deleted["outcome"], "deleted", "{deleted}");
    assert!(!role_exists(&cluster, "shared"));
    assert!(exists(&cluster, "v1", "ConfigMap", "team1", "settings"));
    assert!(exists(&cluster, "v1", "ConfigMap", "team2", "settings"));
}

/// The same app in another namespace of another cluster is another cluster's business: an
/// instance whose release drops a cluster-scoped object deletes it from its own cluster even
/// though the other instance applied one of the same name to its own.
#[test]
fn an_instance_on_another_cluster_does_not_keep_the_object() {
    let here = fake_cluster(Options::default());
    let there = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let settings = configmap("settings", "one");
    let release = release(
        &[
            ("settings.yaml", &settings),
            ("shared.yaml", &cluster_role("shared")),
        ],
        "",
    );
    install_into_new_namespace(state.path(), release.path(), &here, "team1");
    install_into_new_namespace(state.path(), release.path(), &there, "team2");
    keep_only_settings(release.path());
    let dropped = json(install_kube(
        state.path(),
        release.path(),
        &here,
        &["--namespace", "team1"],
    ));
    assert_eq!(dropped["status"], "completed", "{dropped}");
    let pruned = pruned_of(state.path(), &dropped, "shared").expect("shared's prune decision");
    assert_eq!(pruned["outcome"], "deleted", "{pruned}");
    assert!(!role_exists(&here, "shared"));
    assert!(
        role_exists(&there, "shared"),
        "the other cluster's is untouched"
    );
}

/// An instance whose apply never completed still counts: team2's completed apply has no
/// `shared`, but its next apply created `shared` and then failed (another object refused). team1
/// dropping `shared` leaves it to team2, whose resumed or next apply still wants it.
#[test]
fn an_object_an_unfinished_apply_of_another_instance_applied_is_left_to_it() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let settings = configmap("settings", "one");
    let shared = cluster_role("shared");
    let team1 = settings_and_shared();
    let team2 = release(&[("settings.yaml", &settings)], "");
    install_into_new_namespace(state.path(), team1.path(), &cluster, "team1");
    install_into_new_namespace(state.path(), team2.path(), &cluster, "team2");
    rewrite(
        team2.path(),
        &[
            ("settings.yaml", &settings),
            ("shared.yaml", &shared),
            ("refused.yaml", &configmap("refused", "1")),
        ],
    );
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").name("refused"),
        action: FaultAction::Refuse("not now".into()),
        remaining: None,
    });
    let failed = install_in(state.path(), team2.path(), &cluster, "team2");
    assert_eq!(failed.status.code(), Some(3), "team2's apply fails");
    cluster.server.clear_faults();

    keep_only_settings(team1.path());
    let dropped = json(install_in(state.path(), team1.path(), &cluster, "team1"));
    assert_eq!(dropped["status"], "completed", "{dropped}");
    assert_left_to(
        state.path(),
        &dropped,
        "shared",
        "namespace team2 applies it too (an apply there that never completed)",
    );
    assert!(role_exists(&cluster, "shared"));
}

/// A namespaced object in a namespace the release names (not the app namespace) is shared by
/// two instances as a cluster-scoped one is: team1 dropping it leaves it to team2.
#[test]
fn an_object_in_a_namespace_the_release_names_is_left_to_the_other_instance() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    create_namespace(&cluster, "common");
    let settings = configmap("settings", "one");
    let common = &common_settings("1");
    let release = release(&[("settings.yaml", &settings), ("common.yaml", common)], "");
    install_into_new_namespace(state.path(), release.path(), &cluster, "team1");
    install_into_new_namespace(state.path(), release.path(), &cluster, "team2");
    keep_only_settings(release.path());
    let dropped = json(install_in(state.path(), release.path(), &cluster, "team1"));
    assert_left_to(state.path(), &dropped, "common-settings", "namespace team2");
    assert!(exists(
        &cluster,
        "v1",
        "ConfigMap",
        "common",
        "common-settings"
    ));
    let last = json(install_in(state.path(), release.path(), &cluster, "team2"));
    let deleted = pruned_of(state.path(), &last, "common-settings").expect("its prune decision");
    assert_eq!(deleted["outcome"], "deleted", "{deleted}");
    assert!(!exists(
        &cluster,
        "v1",
        "ConfigMap",
        "common",
        "common-settings"
    ));
}

/// An instance whose app namespace is gone went with it: team2 applied `shared`, then its
/// namespace was deleted (still Terminating, or gone once the namespace controller emptied
/// it); team1 dropping `shared` deletes it, saying why team2 no longer counts.
#[test]
fn an_instance_whose_namespace_is_gone_does_not_keep_the_object() {
    for namespace_controller in [false, true] {
        an_instance_whose_namespace_is_deleted_does_not_keep_the_object(namespace_controller);
    }
}

fn an_instance_whose_namespace_is_deleted_does_not_keep_the_object(namespace_controller: bool) {
    let cluster = fake_cluster(Options {
        namespace_controller,
        ..Options::default()
    });
    let state = tempfile::tempdir().unwrap();
    let both = settings_and_shared();
    install_into_new_namespace(state.path(), both.path(), &cluster, "team1");
    install_into_new_namespace(state.path(), both.path(), &cluster, "team2");
    cluster
        .server
        .delete("v1", "Namespace", "", "team2")
        .unwrap();
    // The namespace controller empties and removes it in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut left = cluster.server.get("v1", "Namespace", "", "team2");
    while namespace_controller && left.is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = cluster.server.get("v1", "Namespace", "", "team2");
    }
    assert_eq!(
        left.as_ref()
            .and_then(|namespace| namespace.pointer("/status/phase"))
            .and_then(Value::as_str),
        if namespace_controller {
            None
        } else {
            Some("Terminating")
        },
        "{left:?}"
    );

    keep_only_settings(both.path());
    let dropped = install_in(state.path(), both.path(), &cluster, "team1");
    let stderr = String::from_utf8_lossy(&dropped.stderr).to_string();
    let dropped = json(dropped);
    assert_eq!(dropped["status"], "completed", "{dropped}");
    let deleted = pruned_of(state.path(), &dropped, "shared").expect("shared's prune decision");
    assert_eq!(deleted["outcome"], "deleted", "{deleted}");
    assert!(!role_exists(&cluster, "shared"));
    assert!(
        stderr.contains(
            "namespace team2, where another instance of my-app was applied, is gone: what it applied is not left to it"
        ),
        "{stderr}"
    );
}

/// The other instance's release may name this instance's app namespace: team1's release puts
/// ConfigMap `common-settings` into `common`, which is team2's app namespace, and team2's
/// release has it too. team2 dropping it leaves it to team1 (an object in one's own app
/// namespace is not one's alone).
#[test]
fn an_object_in_this_app_namespace_another_instances_release_names_is_left_to_it() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let settings = configmap("settings", "one");
    let common = &common_settings("1");
    let team1 = release(&[("settings.yaml", &settings), ("common.yaml", common)], "");
    let team2 = release(&[("settings.yaml", &settings), ("common.yaml", common)], "");
    install_into_new_namespace(state.path(), team2.path(), &cluster, "common");
    install_into_new_namespace(state.path(), team1.path(), &cluster, "team1");

    keep_only_settings(team2.path());
    let dropped = json(install_in(state.path(), team2.path(), &cluster, "common"));
    assert_eq!(dropped["status"], "completed", "{dropped}");
    assert_left_to(
        state.path(),
        &dropped,
        "common-settings",
        "namespace team1 applies it too",
    );
    assert!(exists(
        &cluster,
        "v1",
        "ConfigMap",
        "common",
        "common-settings"
    ));
}

/// Each other instance is judged by its own records since its own newest completion, though
/// all are read in one pass: team3's apply that never completed created `shared`; team2's
/// failed apply created it too, but team2's later completed apply dropped it (leaving it to
/// the others). team1 dropping `shared` leaves it to team3, not to team2.
#[test]
fn each_other_instance_is_judged_by_its_records_since_its_own_completion() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let settings = configmap("settings", "one");
    let shared = cluster_role("shared");
    let refused = configmap("refused", "1");
    let team1 = settings_and_shared();
    install_into_new_namespace(state.path(), team1.path(), &cluster, "team1");

    let failing = release(
        &[
            ("settings.yaml", &settings),
            ("shared.yaml", &shared),
            ("refused.yaml", &refused),
        ],
        "",
    );
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").name("refused"),
        action: FaultAction::Refuse("not now".into()),
        remaining: None,
    });
    for namespace in ["team3", "team2"] {
        create_namespace(&cluster, namespace);
        let failed = install_in(state.path(), failing.path(), &cluster, namespace);
        assert_eq!(failed.status.code(), Some(3), "{namespace}'s apply fails");
    }
    cluster.server.clear_faults();
    let team2 = release(&[("settings.yaml", &settings)], "");
    let completed = json(install_in(state.path(), team2.path(), &cluster, "team2"));
    assert_eq!(completed["status"], "completed", "{completed}");
    assert_left_to(state.path(), &completed, "shared", "namespace team1");

    keep_only_settings(team1.path());
    let dropped = json(install_in(state.path(), team1.path(), &cluster, "team1"));
    assert_left_to(
        state.path(),
        &dropped,
        "shared",
        "namespace team3 applies it too (an apply there that never completed)",
    );
    assert!(role_exists(&cluster, "shared"));
}

/// A gone instance takes nothing from a live one: team1, team2 and team3 all apply `shared`;
/// team1's namespace is deleted; team3 dropping `shared` leaves it to team2 (team1, first in
/// namespace order, is passed over as gone).
#[test]
fn a_gone_instance_leaves_what_a_live_one_holds_to_it() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let both = settings_and_shared();
    for namespace in ["team1", "team2", "team3"] {
        install_into_new_namespace(state.path(), both.path(), &cluster, namespace);
    }
    cluster
        .server
        .delete("v1", "Namespace", "", "team1")
        .unwrap();

    keep_only_settings(both.path());
    let dropped = install_in(state.path(), both.path(), &cluster, "team3");
    let stderr = String::from_utf8_lossy(&dropped.stderr).to_string();
    let dropped = json(dropped);
    assert_eq!(dropped["status"], "completed", "{dropped}");
    assert_left_to(
        state.path(),
        &dropped,
        "shared",
        "in namespace team2 applies it too",
    );
    assert!(role_exists(&cluster, "shared"));
    assert!(
        stderr.contains("namespace team1, where another instance of my-app was applied, is gone"),
        "{stderr}"
    );
}

/// Another instance's app namespace is that instance's, whatever a release says: team1's
/// release ships Namespace `common`, which is team2's app namespace. team1's next release
/// drops it: it is kept (left to team2), and team2's objects in it stay.
#[test]
fn the_app_namespace_of_another_instance_is_left_to_it() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let settings = configmap("settings", "one");
    let common = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: common\n";
    let team2 = release(&[("settings.yaml", &settings)], "");
    install_into_new_namespace(state.path(), team2.path(), &cluster, "common");
    let team1 = release(&[("settings.yaml", &settings), ("common.yaml", common)], "");
    install_into_new_namespace(state.path(), team1.path(), &cluster, "team1");

    keep_only_settings(team1.path());
    let dropped = json(install_in(state.path(), team1.path(), &cluster, "team1"));
    assert_eq!(dropped["status"], "completed", "{dropped}");
    assert_left_to(
        state.path(),
        &dropped,
        "common",
        "it is the app namespace of the instance of my-app in namespace common",
    );
    let namespace = cluster.server.get("v1", "Namespace", "", "common");
    assert!(
        namespace
            .as_ref()
            .is_some_and(|namespace| namespace.pointer("/metadata/deletionTimestamp").is_none()),
        "{namespace:?}"
    );
    assert!(exists(&cluster, "v1", "ConfigMap", "common", "settings"));
}

/// The read of another instance's app namespace decides only when the server answers it: team2
/// applied `shared`, then its namespace was deleted (Terminating). A 403 on that read keeps
/// team2 as the holder (`shared` kept); at the next install a 503 outlasting the retries fails
/// the apply stage as transient, and the stage, tried again once the server answers, finds the
/// namespace Terminating and deletes `shared`.
#[test]
fn another_instances_namespace_counts_as_gone_only_when_read_as_gone() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let both = settings_and_shared();
    install_into_new_namespace(state.path(), both.path(), &cluster, "team1");
    install_into_new_namespace(state.path(), both.path(), &cluster, "team2");
    cluster
        .server
        .delete("v1", "Namespace", "", "team2")
        .unwrap();
    let read_of_team2 = || FaultMatch::verb("get").resource("namespaces").name("team2");

    cluster.server.add_fault(Fault {
        matcher: read_of_team2(),
        action: FaultAction::Refuse("not for you".into()),
        remaining: None,
    });
    keep_only_settings(both.path());
    let refused = json(install_in(state.path(), both.path(), &cluster, "team1"));
    assert_eq!(refused["status"], "completed", "{refused}");
    assert_left_to(state.path(), &refused, "shared", "namespace team2");
    assert!(role_exists(&cluster, "shared"));
    cluster.server.clear_faults();

    // Four failed answers fail the first attempt's read; two more, then the server answers.
    cluster.server.add_fault(Fault {
        matcher: read_of_team2(),
        action: FaultAction::ServerError(503),
        remaining: Some(6),
    });
    let retried = json(install_in(state.path(), both.path(), &cluster, "team1"));
    assert_eq!(retried["status"], "completed", "{retried}");
    let runs = super::apply_order_retries::apply_stage_runs(&events(
        state.path(),
        retried["install_id"].as_str().unwrap(),
    ));
    assert!(
        runs.iter()
            .any(|(kind, _, class)| kind == "StageFailed" && class == "transient"),
        "{runs:?}"
    );
    let deleted = pruned_of(state.path(), &retried, "shared").expect("shared's prune decision");
    assert_eq!(deleted["outcome"], "deleted", "{deleted}");
    assert!(!role_exists(&cluster, "shared"));
}
