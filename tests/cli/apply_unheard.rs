//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): objects the server made whose answer windlass never heard.
//! The fake holds the answers of some writes after making them (`FaultAction::DelayAnswer`, as a
//! connection lost after the server committed would), windlass is killed with SIGKILL meanwhile,
//! and a later install of a release without those objects must still find and prune them, from
//! the `ObjectsSending` record written before they were sent, but only while each still carries
//! the digest sent; another instance's unheard write holds the object for that instance, and a
//! refused write, answered, leaves nothing to prune.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use windlass_test_apiserver::{Fault, FaultAction, FaultMatch, Options};

use super::apply_guards::deletes_of;
use super::apply_kube::*;
use super::*;

/// The `ObjectPruned` payloads of `install_id`, by object name.
fn pruned_by_name(state: &Path, install_id: &str) -> BTreeMap<String, Value> {
    payloads_of_type(&events(state, install_id), "ObjectPruned")
        .into_iter()
        .map(|pruned| (pruned["key"]["name"].as_str().unwrap().to_string(), pruned))
        .collect()
}

/// The names in `install_id`'s records of `event_type` (`ObjectsSending` or `ObjectsApplied`).
fn names_recorded(state: &Path, install_id: &str, event_type: &str) -> Vec<String> {
    payloads_of_type(&events(state, install_id), event_type)
        .iter()
        .flat_map(|batch| batch["objects"].as_array().unwrap().clone())
        .map(|object| object["key"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// The live object's uid (it must exist).
fn uid_of(cluster: &FakeCluster, name: &str) -> String {
    let live = cluster
        .server
        .get("v1", "ConfigMap", "default", name)
        .unwrap_or_else(|| panic!("ConfigMap {name} exists"));
    live["metadata"]["uid"].as_str().unwrap().to_string()
}

/// Starts `install --target kube` of `release`, waits until the cluster holds every map of
/// `made` (their answers held by the fake), and kills windlass with SIGKILL. Returns the
/// install's id.
fn install_killed_once_made(
    state: &Path,
    release: &Path,
    cluster: &FakeCluster,
    made: &[&str],
) -> String {
    install_killed_once(state, release, cluster, &[], &|| {
        made.iter()
            .all(|name| exists(cluster, "v1", "ConfigMap", "default", name))
    })
}

/// Starts `install --target kube` of `release` with `args`, waits until `made` says the
/// cluster holds what the held answers are for, and kills windlass with SIGKILL. Returns the
/// install's id.
fn install_killed_once(
    state: &Path,
    release: &Path,
    cluster: &FakeCluster,
    args: &[&str],
    made: &dyn Fn() -> bool,
) -> String {
    let before = install_ids(state);
    let mut child = windlass(state)
        .args(OFFLINE_INSTALL)
        .arg(release)
        .args(["--target", "kube", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !made() {
        assert!(
            Instant::now() < deadline,
            "the server did not make what was awaited in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "windlass ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut started: Vec<String> = install_ids(state)
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(started.len(), 1, "one install started: {started:?}");
    started.remove(0)
}

/// The ids of the installs `state` holds.
pub(crate) fn install_ids(state: &Path) -> Vec<String> {
    if !state.join("events.redb").exists() {
        return Vec::new();
    }
    let history = json(run(windlass(state).args(["history", "--json"])));
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|install| install["install_id"].as_str().unwrap().to_string())
        .collect()
}

/// A kill while the server held the answers of three writes it had made: the next install,
/// of a release without them, deletes the one still as sent, leaves the one someone replaced
/// with another of the same name (ownership annotation copied, not the digest), and records
/// the one whose delete the server refuses in its inventory by the uid it then read, so that
/// the install after it deletes it through the usual uid guard.
#[test]
fn objects_sent_whose_answer_never_came_are_pruned_while_they_carry_the_digest_sent() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    for name in ["held", "replaced", "stuck"] {
        cluster.server.add_fault(Fault {
            matcher: FaultMatch::verb("patch")
                .resource("configmaps")
                .name(name)
                .dry_run(false),
            action: FaultAction::DelayAnswer(Duration::from_secs(600)),
            remaining: Some(1),
        });
    }
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("held.yaml", &configmap("held", "1")),
            ("replaced.yaml", &configmap("replaced", "1")),
            ("stuck.yaml", &configmap("stuck", "1")),
        ],
        "",
    );
    let killed = install_killed_once_made(
        state.path(),
        release.path(),
        &cluster,
        &["held", "replaced", "stuck"],
    );
    let killed_events = events(state.path(), &killed);
    assert!(
        payloads_of_type(&killed_events, "ApplyCompleted").is_empty(),
        "the kill landed mid-apply"
    );
    let sending = names_recorded(state.path(), &killed, "ObjectsSending");
    for name in ["held", "replaced", "stuck"] {
        assert!(
            sending.contains(&name.to_string()),
            "{name} was recorded as being sent before it was: {sending:?}"
        );
    }
    let answered = names_recorded(state.path(), &killed, "ObjectsApplied");
    assert!(
        !answered
            .iter()
            .any(|name| ["held", "replaced", "stuck"].contains(&name.as_str())),
        "no answer was heard for the held writes: {answered:?}"
    );
    let shown = run(windlass(state.path()).args(["show", &killed]));
    let shown = String::from_utf8_lossy(&shown.stdout);
    for name in ["held", "replaced", "stuck"] {
        assert!(
            shown.contains(&format!(
                "sent      no-answer   ConfigMap default/{name}: announced before its group's requests"
            )),
            "{shown}"
        );
    }
    let shown_json = json(run(windlass(state.path()).args(["show", &killed, "--json"])));
    let mut unanswered: Vec<&str> = shown_json["apply"]["unanswered"]
        .as_array()
        .unwrap_or_else(|| panic!("{shown_json}"))
        .iter()
        .map(|object| object["key"]["name"].as_str().unwrap())
        .collect();
    unanswered.sort_unstable();
    // `a`'s answer came, but may not have been recorded before the kill (answers are recorded
    // in batches); once recorded, it is not listed.
    let answered = names_recorded(state.path(), &killed, "ObjectsApplied");
    if answered.contains(&"a".to_string()) {
        assert!(!unanswered.contains(&"a"), "{unanswered:?}");
    }
    unanswered.retain(|name| *name != "a");
    assert_eq!(
        unanswered,
        ["held", "replaced", "stuck"],
        "the held answers"
    );
    cluster.server.clear_faults();
    let held_uid = uid_of(&cluster, "held");
    let stuck_uid = uid_of(&cluster, "stuck");

    // Outside windlass, `replaced` is deleted and made again by someone else, who copied the
    // ownership annotation and wrote another digest: not the object windlass sent.
    cluster
        .server
        .delete("v1", "ConfigMap", "default", "replaced")
        .unwrap();
    cluster
        .server
        .create_as(
            "someone-else",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "replaced", "namespace": "default",
                                "annotations": {"windlass.io/app": "my-app",
                                                "windlass.io/applied-digest": "0000"}},
                   "data": {"value": "theirs"}}),
        )
        .unwrap();
    let replaced_uid = uid_of(&cluster, "replaced");
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("delete")
            .resource("configmaps")
            .name("stuck"),
        action: FaultAction::Refuse("stuck stays".into()),
        remaining: None,
    });
    cluster.server.reset_requests();

    // A release without them: a new install, which prunes against the killed one.
    rewrite(release.path(), &[("a.yaml", &configmap("a", "2"))]);
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap();
    assert_ne!(second_id, killed, "a new install");
    let pruned = pruned_by_name(state.path(), second_id);
    let held = pruned
        .get("held")
        .unwrap_or_else(|| panic!("the object made without an answer is pruned: {pruned:?}"));
    assert_eq!(held["outcome"], "deleted", "{pruned:?}");
    assert_eq!(
        held["uid"],
        held_uid.as_str(),
        "the uid read before the delete"
    );
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "held"));
    let replaced = &pruned["replaced"];
    assert_eq!(replaced["outcome"], "not_owned", "{pruned:?}");
    assert!(
        replaced["detail"].as_str().unwrap().contains(
            "its windlass.io/applied-digest is none that an apply which never heard back sent"
        ),
        "{replaced}"
    );
    let live = cluster
        .server
        .get("v1", "ConfigMap", "default", "replaced")
        .expect("the other `replaced` is left alone");
    assert_eq!(live["metadata"]["uid"], replaced_uid.as_str());
    assert_eq!(live["data"]["value"], "theirs");
    assert_eq!(pruned["stuck"]["outcome"], "refused", "{pruned:?}");
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "stuck"));
    // (The objects of one kind are deleted concurrently: in either order.)
    let mut deletes = deletes_of(&cluster, "configmaps");
    deletes.sort_unstable();
    assert_eq!(
        deletes,
        ["held", "stuck"],
        "no DELETE for the replaced map: the re-read decided"
    );
    // The refused one stays in the inventory, now by the uid the prune read.
    let completed = &payloads_of_type(&events(state.path(), second_id), "ApplyCompleted")[0];
    let stuck_entry = completed["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["key"]["name"] == "stuck")
        .unwrap_or_else(|| panic!("stuck stays in the inventory: {completed}"));
    assert_eq!(stuck_entry["uid"], stuck_uid.as_str(), "{stuck_entry}");
    assert!(stuck_entry.get("sent_digests").is_none(), "{stuck_entry}");

    // The next install deletes it once the server allows, by that uid.
    cluster.server.clear_faults();
    rewrite(release.path(), &[("a.yaml", &configmap("a", "3"))]);
    let third = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(third["status"], "completed", "{third}");
    let pruned = pruned_by_name(state.path(), third["install_id"].as_str().unwrap());
    assert_eq!(pruned["stuck"]["outcome"], "deleted", "{pruned:?}");
    assert_eq!(pruned["stuck"]["uid"], stuck_uid.as_str());
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "stuck"));
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "a"));
}

/// An object the server made for a killed apply that never heard back, then refused to a later
/// apply (its record says `failed`, with no uid): the refusal says nothing about the object the
/// first send made, so the install that drops it still deletes it.
#[test]
fn an_object_made_unanswered_then_refused_to_a_later_apply_is_still_pruned() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch")
            .resource("configmaps")
            .name("made")
            .dry_run(false),
        action: FaultAction::DelayAnswer(Duration::from_secs(600)),
        remaining: Some(1),
    });
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("made.yaml", &configmap("made", "1")),
        ],
        "",
    );
    let killed = install_killed_once_made(state.path(), release.path(), &cluster, &["made"]);
    cluster.server.clear_faults();
    let made_uid = uid_of(&cluster, "made");

    // The next release changes it, and the server refuses that write: failed, recorded.
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").name("made"),
        action: FaultAction::Refuse("not now".into()),
        remaining: None,
    });
    rewrite(
        release.path(),
        &[
            ("a.yaml", &configmap("a", "2")),
            ("made.yaml", &configmap("made", "2")),
        ],
    );
    let refused = install_kube(state.path(), release.path(), &cluster, &[]);
    assert_eq!(refused.status.code(), Some(3), "the write was refused");
    let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let refused_id = refused["install_id"].as_str().unwrap();
    assert_ne!(refused_id, killed);
    let outcomes: Vec<String> =
        payloads_of_type(&events(state.path(), refused_id), "ObjectsApplied")
            .iter()
            .flat_map(|batch| batch["objects"].as_array().unwrap().clone())
            .filter(|object| object["key"]["name"] == "made")
            .map(|object| object["outcome"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(outcomes, ["failed"], "the refusal is recorded");
    cluster.server.clear_faults();

    rewrite(release.path(), &[("a.yaml", &configmap("a", "3"))]);
    let last = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(last["status"], "completed", "{last}");
    let pruned = pruned_by_name(state.path(), last["install_id"].as_str().unwrap());
    let made = pruned
        .get("made")
        .unwrap_or_else(|| panic!("the object made without an answer is pruned: {pruned:?}"));
    assert_eq!(made["outcome"], "deleted", "{made}");
    assert_eq!(made["uid"], made_uid.as_str());
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "made"));
}

/// Only what may be written is announced: an install finds `a` as the cluster holds it and
/// lists only the changed `b` as being sent; an install that changes nothing lists nothing.
#[test]
fn only_objects_that_may_be_written_are_recorded_as_being_sent() {
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
    let first_id = first["install_id"].as_str().unwrap();
    let mut sent = names_recorded(state.path(), first_id, "ObjectsSending");
    sent.sort();
    assert_eq!(sent, ["a", "b", "my-app-registry"], "everything is new");

    rewrite(
        release.path(),
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "2")),
        ],
    );
    let second = json(install_kube(state.path(), release.path(), &cluster, &[]));
    let second_id = second["install_id"].as_str().unwrap();
    assert_ne!(second_id, first_id);
    assert_eq!(
        names_recorded(state.path(), second_id, "ObjectsSending"),
        ["b"],
        "a and the pull secret are as the cluster holds them"
    );

    rewrite(
        release.path(),
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "2")),
            ("c.yaml", &configmap("c", "1")),
        ],
    );
    let third = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(
        names_recorded(
            state.path(),
            third["install_id"].as_str().unwrap(),
            "ObjectsSending"
        ),
        ["c"]
    );
    let again = json(install_kube(state.path(), release.path(), &cluster, &[]));
    let again_id = again["install_id"].as_str().unwrap();
    assert!(
        names_recorded(state.path(), again_id, "ObjectsSending").is_empty(),
        "nothing to write, nothing announced"
    );
    let applied = names_recorded(state.path(), again_id, "ObjectsApplied");
    assert!(applied.contains(&"c".to_string()), "{applied:?}");
}

/// Another instance's write whose answer it never heard still counts as that instance's:
/// team1 and team2 both apply ConfigMap `common-settings` in namespace `common`; team2's
/// changed version is made by the server while team2 is killed before the answer. team1's
/// release then drops it: it is left to team2 (whose apply never completed), not deleted.
#[test]
fn an_object_another_instance_sent_without_hearing_back_is_left_to_it() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    create_namespace(&cluster, "common");
    let common = super::apply_instances::common_settings;
    let settings = configmap("settings", "1");
    let team1 = release(
        &[("settings.yaml", &settings), ("common.yaml", &common("1"))],
        "",
    );
    install_into_new_namespace(state.path(), team1.path(), &cluster, "team1");

    create_namespace(&cluster, "team2");
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch")
            .resource("configmaps")
            .name("common-settings")
            .dry_run(false),
        action: FaultAction::DelayAnswer(Duration::from_secs(600)),
        remaining: Some(1),
    });
    let team2 = release(
        &[("settings.yaml", &settings), ("common.yaml", &common("2"))],
        "",
    );
    let value_made = || {
        cluster
            .server
            .get("v1", "ConfigMap", "common", "common-settings")
            .is_some_and(|live| live["data"]["value"] == "2")
    };
    let killed = install_killed_once(
        state.path(),
        team2.path(),
        &cluster,
        &["--namespace", "team2"],
        &value_made,
    );
    cluster.server.clear_faults();
    assert!(
        !names_recorded(state.path(), &killed, "ObjectsApplied")
            .contains(&"common-settings".to_string()),
        "team2 heard no answer for it"
    );

    rewrite(team1.path(), &[("settings.yaml", &settings)]);
    let dropped = json(install_in(state.path(), team1.path(), &cluster, "team1"));
    assert_eq!(dropped["status"], "completed", "{dropped}");
    super::apply_instances::assert_left_to(
        state.path(),
        &dropped,
        "common-settings",
        "namespace team2 applies it too (an apply there that never completed)",
    );
    assert!(value_made(), "team2's object stays");
}

/// A refused write made nothing, and its refusal is its answer: an install whose write of the
/// new `x` the server refuses (after a dry run it allowed) announced `x`, but the install that
/// drops `x` has nothing to prune for it and asks the server nothing about it.
#[test]
fn a_refused_write_is_answered_and_leaves_nothing_to_prune() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("x.yaml", &configmap("x", "1")),
        ],
        "",
    );
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").name("x").dry_run(false),
        action: FaultAction::Refuse("not now".into()),
        remaining: None,
    });
    let refused = install_kube(state.path(), release.path(), &cluster, &[]);
    assert_eq!(refused.status.code(), Some(3), "the write was refused");
    let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let refused_id = refused["install_id"].as_str().unwrap();
    assert!(
        names_recorded(state.path(), refused_id, "ObjectsSending").contains(&"x".to_string()),
        "x was announced"
    );
    cluster.server.clear_faults();
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "x"));

    rewrite(release.path(), &[("a.yaml", &configmap("a", "2"))]);
    cluster.server.reset_requests();
    let last = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(last["status"], "completed", "{last}");
    let pruned = pruned_by_name(state.path(), last["install_id"].as_str().unwrap());
    assert!(!pruned.contains_key("x"), "{pruned:?}");
    let asked: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.resource == "configmaps" && request.name == "x")
        .map(|request| format!("{} {}", request.method, request.uri))
        .collect();
    assert!(asked.is_empty(), "{asked:?}");
}
