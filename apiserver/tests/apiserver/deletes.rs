//! Deletes on the test API server: propagation policies, the garbage collector, deletecollection,
//! the namespace controller, and server-side apply conflicts as HTTP answers.
//!
//! The server is a fake Kubernetes API server because no real one can run here; each test pins
//! what the real API server (and, where the `garbage_collector` or `namespace_controller`
//! option is on, its controllers) answers and leaves behind.

use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use windlass_test_apiserver::{Options, TestApiServer};

use super::http::server;
use super::writes::{call, create};

fn server_with(garbage_collector: bool, namespace_controller: bool) -> TestApiServer {
    TestApiServer::start(Options {
        garbage_collector,
        namespace_controller,
        ..Options::default()
    })
    .expect("the test API server starts")
}

async fn delete(server: &TestApiServer, path: &str, options: Option<Value>) -> (StatusCode, Value) {
    call(server, Method::DELETE, path, "application/json", options).await
}

/// Polls `check` (every 10 ms, for at most 5 s: the fake's controllers run every 20 ms).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Long enough for the fake's controllers (a tick every 20 ms) to have run many times.
async fn let_controllers_run() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const REPLICASETS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}})
}

/// An ownerReference to `owner` as a controller sets it.
fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// A ReplicaSet owned by `owners` (ownerReferences as given), with `finalizers`.
fn replica_set(name: &str, owners: Vec<Value>, finalizers: &[&str]) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": name, "ownerReferences": owners, "finalizers": finalizers,
        "labels": {"app": "web"}}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}})
}

fn get(server: &TestApiServer, api_version: &str, kind: &str, name: &str) -> Option<Value> {
    let namespace = if kind == "Namespace" { "" } else { "default" };
    server.get(api_version, kind, namespace, name)
}

fn gone(server: &TestApiServer, api_version: &str, kind: &str, name: &str) -> bool {
    get(server, api_version, kind, name).is_none()
}

/// The resourceVersion of the DELETED event of `name` in a watch of `path` from `since`: the
/// revision at which the object went, to order deletions as a watching client sees them.
async fn deleted_at(server: &TestApiServer, path: &str, since: u64, name: &str) -> u64 {
    let mut response = Client::new()
        .get(format!(
            "{}{path}?watch=true&resourceVersion={since}",
            server.url()
        ))
        .send()
        .await
        .expect("watch opened");
    assert_eq!(response.status(), StatusCode::OK);
    let mut buffer = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no DELETED event of {name} in {path}"))
            .expect("watch stream readable")
            .expect("watch stream still open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_str(line.trim()).expect("an event is JSON");
            if event["type"] == "DELETED" && event["object"]["metadata"]["name"] == name {
                return event["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|version| version.parse().ok())
                    .expect("a numeric resourceVersion");
            }
        }
    }
}

/// A Deployment `web` and a ReplicaSet `web-1` it owns (plus `finalizers` on the ReplicaSet).
async fn owner_and_dependent(server: &TestApiServer, finalizers: &[&str]) -> (Value, Value) {
    let owner = create(server, DEPLOYMENTS, deployment("web")).await;
    let dependent = create(
        server,
        REPLICASETS,
        replica_set("web-1", vec![owner_reference(&owner)], finalizers),
    )
    .await;
    (owner, dependent)
}

/// The answer to a DELETE that leaves the object in place: the object itself, marked with
/// `deletionTimestamp`, the given finalizers and a bumped generation.
fn assert_marked_for_deletion(answer: &Value, finalizers: Value) {
    assert_eq!(answer["kind"], "Deployment", "{answer}");
    assert!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "{answer}"
    );
    assert_eq!(answer["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(answer["metadata"]["finalizers"], finalizers, "{answer}");
    assert_eq!(answer["metadata"]["generation"], 2, "{answer}");
}

/// With the garbage collector, `propagationPolicy: Orphan` (in the DeleteOptions body) marks the
/// owner with the `orphan` finalizer; the collector then removes the owner's reference from its
/// dependents (leaving their other owners) and the owner goes, the dependents staying. The
/// deprecated `orphanDependents: true` does the same.
#[tokio::test]
async fn orphan_propagation_leaves_dependents_without_the_owner_reference() {
    let server = server_with(true, false);
    let other = create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "other-owner"}}),
    )
    .await;
    let owner = create(&server, DEPLOYMENTS, deployment("web")).await;
    let mut other_reference = owner_reference(&other);
    other_reference["controller"] = json!(false);
    let dependent = create(
        &server,
        REPLICASETS,
        replica_set(
            "web-1",
            vec![owner_reference(&owner), other_reference.clone()],
            &[],
        ),
    )
    .await;
    let (status, answer) = delete(
        &server,
        &format!("{DEPLOYMENTS}/web"),
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_marked_for_deletion(&answer, json!(["orphan"]));
    eventually("the orphaned owner is gone", || {
        gone(&server, "apps/v1", "Deployment", "web")
    })
    .await;
    let orphan = get(&server, "apps/v1", "ReplicaSet", "web-1").expect("the dependent stays");
    assert_eq!(
        orphan["metadata"]["ownerReferences"],
        json!([other_reference]),
        "{orphan}"
    );
    assert!(
        orphan["metadata"]["deletionTimestamp"].is_null(),
        "{orphan}"
    );
    assert_eq!(orphan["metadata"]["uid"], dependent["metadata"]["uid"]);

    // The deprecated form, in the body.
    let owner = create(&server, DEPLOYMENTS, deployment("api")).await;
    create(
        &server,
        REPLICASETS,
        replica_set("api-1", vec![owner_reference(&owner)], &[]),
    )
    .await;
    let (status, answer) = delete(
        &server,
        &format!("{DEPLOYMENTS}/api"),
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["metadata"]["finalizers"], json!(["orphan"]));
    eventually("the second orphaned owner is gone", || {
        gone(&server, "apps/v1", "Deployment", "api")
    })
    .await;
    let orphan = get(&server, "apps/v1", "ReplicaSet", "api-1").expect("the dependent stays");
    // An emptied list is left out, as the real server stores it.
    assert!(
        orphan["metadata"].get("ownerReferences").is_none(),
        "{orphan}"
    );
}

/// With the garbage collector, `propagationPolicy=Foreground` (in the query) answers the owner
/// marked with the `foregroundDeletion` finalizer and a `deletionTimestamp`; its dependents
/// (and theirs) are deleted, and the owner goes after them, as a watch shows.
#[tokio::test]
async fn foreground_propagation_deletes_dependents_before_the_owner() {
    let server = server_with(true, false);
    let (_, dependent) = owner_and_dependent(&server, &[]).await;
    let grandchild = create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "web-1-config",
            "ownerReferences": [owner_reference(&dependent)]}}),
    )
    .await;
    let unrelated = create(
        &server,
        REPLICASETS,
        replica_set("unrelated", Vec::new(), &[]),
    )
    .await;
    let since = server.resource_version();
    let (status, answer) = delete(
        &server,
        &format!("{DEPLOYMENTS}/web?propagationPolicy=Foreground"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_marked_for_deletion(&answer, json!(["foregroundDeletion"]));
    eventually("the owner and its dependents are gone", || {
        gone(&server, "apps/v1", "Deployment", "web")
            && gone(&server, "apps/v1", "ReplicaSet", "web-1")
            && gone(&server, "v1", "ConfigMap", "web-1-config")
    })
    .await;
    let owner_went = deleted_at(&server, DEPLOYMENTS, since, "web").await;
    let dependent_went = deleted_at(&server, REPLICASETS, since, "web-1").await;
    let grandchild_went = deleted_at(&server, CONFIGMAPS, since, "web-1-config").await;
    assert!(
        dependent_went < owner_went && grandchild_went < owner_went,
        "the owner ({owner_went}) must go after its dependent ({dependent_went}) and theirs ({grandchild_went})"
    );
    assert_eq!(
        get(&server, "apps/v1", "ReplicaSet", "unrelated").map(|rs| rs["metadata"]["uid"].clone()),
        Some(unrelated["metadata"]["uid"].clone())
    );
    assert!(grandchild["metadata"]["uid"].is_string());
}

/// Foreground deletion waits for the dependents that block it (`blockOwnerDeletion: true`):
/// while a finalizer keeps the dependent, the owner stays with `foregroundDeletion`; once the
/// dependent goes, so does the owner. This is what the real garbage collector does
/// (`processDeletingDependentsItem` removes the finalizer only when no blocking dependent
/// remains).
#[tokio::test]
async fn foreground_propagation_waits_for_blocking_dependents() {
    let server = server_with(true, false);
    owner_and_dependent(&server, &["example.com/hold"]).await;
    let (status, answer) = delete(
        &server,
        &format!("{DEPLOYMENTS}/web?propagationPolicy=Foreground"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let_controllers_run().await;
    let dependent = get(&server, "apps/v1", "ReplicaSet", "web-1").expect("held by its finalizer");
    assert!(
        dependent["metadata"]["deletionTimestamp"].is_string(),
        "{dependent}"
    );
    let owner = get(&server, "apps/v1", "Deployment", "web")
        .expect("the owner waits for its blocking dependent");
    assert_eq!(
        owner["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    server
        .remove_finalizers("apps/v1", "ReplicaSet", "default", "web-1")
        .expect("finalizer removed");
    eventually("the owner is gone after its dependent", || {
        gone(&server, "apps/v1", "Deployment", "web")
    })
    .await;
}

/// With the garbage collector, a Background delete (the default, and named explicitly) answers
/// a `Status` of Success at once; the dependents are deleted after the owner, as a watch shows.
#[tokio::test]
async fn background_propagation_deletes_dependents_after_the_owner() {
    let server = server_with(true, false);
    for explicit in [false, true] {
        let (owner, _) = owner_and_dependent(&server, &[]).await;
        let since = server.resource_version();
        let (status, answer) = if explicit {
            delete(
                &server,
                &format!("{DEPLOYMENTS}/web"),
                Some(json!({"kind": "DeleteOptions", "apiVersion": "v1",
                    "propagationPolicy": "Background"})),
            )
            .await
        } else {
            delete(&server, &format!("{DEPLOYMENTS}/web"), None).await
        };
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": "web", "group": "apps", "kind": "deployments",
                    "uid": owner["metadata"]["uid"]}})
        );
        eventually("the dependent is gone", || {
            gone(&server, "apps/v1", "ReplicaSet", "web-1")
        })
        .await;
        let owner_went = deleted_at(&server, DEPLOYMENTS, since, "web").await;
        let dependent_went = deleted_at(&server, REPLICASETS, since, "web-1").await;
        assert!(
            owner_went < dependent_went,
            "explicit {explicit}: the dependent ({dependent_went}) must go after the owner ({owner_went})"
        );
    }
}

/// Without the garbage collector (the default, as envtest, which runs no controllers): Orphan
/// and Foreground leave the owner with its `orphan` or `foregroundDeletion` finalizer and the
/// dependents untouched, and a Background delete removes the owner but not its dependents.
#[tokio::test]
async fn without_the_garbage_collector_dependents_are_left_alone() {
    let server = server();
    let (_, dependent) = owner_and_dependent(&server, &[]).await;
    for (policy, name) in [("Orphan", "orphan"), ("Foreground", "foregroundDeletion")] {
        let owner = create(
            &server,
            DEPLOYMENTS,
            deployment(policy.to_lowercase().as_str()),
        )
        .await;
        create(
            &server,
            REPLICASETS,
            replica_set(
                &format!("{}-1", policy.to_lowercase()),
                vec![owner_reference(&owner)],
                &[],
            ),
        )
        .await;
        let (status, answer) = delete(
            &server,
            &format!(
                "{DEPLOYMENTS}/{}?propagationPolicy={policy}",
                policy.to_lowercase()
            ),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_marked_for_deletion(&answer, json!([name]));
    }
    let (status, _) = delete(&server, &format!("{DEPLOYMENTS}/web"), None).await;
    assert_eq!(status, StatusCode::OK);
    let_controllers_run().await;
    for (owner, finalizer) in [("orphan", "orphan"), ("foreground", "foregroundDeletion")] {
        let stored = get(&server, "apps/v1", "Deployment", owner).expect("the owner stays");
        assert_eq!(
            stored["metadata"]["finalizers"],
            json!([finalizer]),
            "{stored}"
        );
        let kept = get(&server, "apps/v1", "ReplicaSet", &format!("{owner}-1"))
            .expect("the dependent stays");
        assert_eq!(
            kept["metadata"]["ownerReferences"][0]["uid"], stored["metadata"]["uid"],
            "{kept}"
        );
        assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");
    }
    assert!(gone(&server, "apps/v1", "Deployment", "web"));
    let kept = get(&server, "apps/v1", "ReplicaSet", "web-1").expect("not collected");
    assert_eq!(
        kept["metadata"]["resourceVersion"],
        dependent["metadata"]["resourceVersion"]
    );
}

/// A propagation policy the API does not know is refused (400) and deletes nothing.
#[tokio::test]
async fn an_unknown_propagation_policy_is_refused() {
    let server = server_with(true, false);
    owner_and_dependent(&server, &[]).await;
    let (status, error) = delete(
        &server,
        &format!("{DEPLOYMENTS}/web?propagationPolicy=Sideways"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["reason"], "BadRequest");
    assert_eq!(
        error["message"],
        r#"propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan""#
    );
    assert!(get(&server, "apps/v1", "Deployment", "web").is_some());
    assert!(get(&server, "apps/v1", "ReplicaSet", "web-1").is_some());
}

/// The names of `items` (a JSON array), sorted.
fn names_of(items: &Value) -> Vec<String> {
    sorted_names(items.as_array().expect("a list of items"))
}

/// The names of the ConfigMaps of `namespace`, sorted.
fn config_map_names(server: &TestApiServer, namespace: &str) -> Vec<String> {
    sorted_names(&server.list("v1", "ConfigMap", Some(namespace)))
}

fn sorted_names(items: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .map(|item| {
            item["metadata"]["name"]
                .as_str()
                .expect("a name")
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

/// DELETE on a collection (deletecollection) deletes the objects of that namespace the label
/// or field selector matches and answers them as a `<Kind>List`; an object a finalizer keeps
/// stays with its deletionTimestamp; other namespaces are untouched; `dryRun=All` deletes
/// nothing; a malformed selector is 400.
#[tokio::test]
async fn deletecollection_deletes_what_the_selector_matches() {
    let server = server();
    for (name, tier, finalizers) in [
        ("a", "x", json!([])),
        ("b", "x", json!([])),
        ("c", "y", json!([])),
        ("held", "x", json!(["example.com/hold"])),
    ] {
        create(
            &server,
            CONFIGMAPS,
            json!({"metadata": {"name": name, "labels": {"tier": tier}, "finalizers": finalizers}}),
        )
        .await;
    }
    create(
        &server,
        "/api/v1/namespaces/kube-public/configmaps",
        json!({"metadata": {"name": "p", "labels": {"tier": "x"}}}),
    )
    .await;

    let revision = server.resource_version();
    let (status, answer) = delete(
        &server,
        &format!("{CONFIGMAPS}?labelSelector=tier%3Dx&dryRun=All"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["kind"], "ConfigMapList", "{answer}");
    assert_eq!(names_of(&answer["items"]), ["a", "b", "held"]);
    assert_eq!(
        server.resource_version(),
        revision,
        "a dry run writes nothing"
    );
    assert_eq!(
        config_map_names(&server, "default"),
        ["a", "b", "c", "held"]
    );

    let (status, answer) = delete(
        &server,
        &format!("{CONFIGMAPS}?labelSelector=tier%3Dx"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["kind"], "ConfigMapList", "{answer}");
    assert_eq!(answer["apiVersion"], "v1", "{answer}");
    assert!(
        answer["metadata"]["resourceVersion"].is_string(),
        "{answer}"
    );
    assert_eq!(names_of(&answer["items"]), ["a", "b", "held"]);
    assert_eq!(config_map_names(&server, "default"), ["c", "held"]);
    let held = get(&server, "v1", "ConfigMap", "held").expect("kept by its finalizer");
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    assert_eq!(config_map_names(&server, "kube-public"), ["p"]);

    let (status, answer) = delete(
        &server,
        &format!("{CONFIGMAPS}?fieldSelector=metadata.name%3Dc"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(names_of(&answer["items"]), ["c"]);
    assert_eq!(config_map_names(&server, "default"), ["held"]);

    let (status, error) = delete(
        &server,
        &format!("{CONFIGMAPS}?labelSelector=tier+in+%28"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["reason"], "BadRequest", "{error}");
    assert_eq!(config_map_names(&server, "default"), ["held"]);

    let verbs: Vec<(String, bool, u16)> = server
        .requests()
        .iter()
        .filter(|request| request.method == "DELETE")
        .map(|request| (request.verb.clone(), request.dry_run, request.status))
        .collect();
    assert_eq!(
        verbs,
        [
            ("deletecollection".to_owned(), true, 200),
            ("deletecollection".to_owned(), false, 200),
            ("deletecollection".to_owned(), false, 200),
            ("deletecollection".to_owned(), false, 400),
        ]
    );
}

/// The real API server serves deletecollection of a namespaced resource only in a namespace:
/// its all-namespaces path (`/api/v1/configmaps`) serves LIST and WATCH only, so a DELETE there
/// is 405 Method Not Allowed and deletes nothing.
#[tokio::test]
async fn deletecollection_across_namespaces_is_not_allowed() {
    let server = server();
    create(&server, CONFIGMAPS, json!({"metadata": {"name": "a"}})).await;
    create(
        &server,
        "/api/v1/namespaces/kube-public/configmaps",
        json!({"metadata": {"name": "p"}}),
    )
    .await;
    let (status, answer) = delete(&server, "/api/v1/configmaps", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");
    assert_eq!(config_map_names(&server, "default"), ["a"]);
    assert_eq!(config_map_names(&server, "kube-public"), ["p"]);
}

const DOOMED: &str = "/api/v1/namespaces/doomed";

/// A namespace `doomed` holding a ConfigMap `plain`, a ConfigMap `held` with a finalizer, and a
/// Deployment `web`; deleted. Returns the DELETE's answer.
async fn doomed_namespace(server: &TestApiServer) -> Value {
    let created = create(
        server,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    )
    .await;
    assert_eq!(created["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(created["status"], json!({"phase": "Active"}));
    create(
        server,
        &format!("{DOOMED}/configmaps"),
        json!({"metadata": {"name": "plain"}}),
    )
    .await;
    create(
        server,
        &format!("{DOOMED}/configmaps"),
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    create(
        server,
        "/apis/apps/v1/namespaces/doomed/deployments",
        deployment("web"),
    )
    .await;
    let (status, answer) = delete(server, DOOMED, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["kind"], "Namespace", "{answer}");
    assert_eq!(
        answer["status"],
        json!({"phase": "Terminating"}),
        "{answer}"
    );
    assert_eq!(
        answer["spec"],
        json!({"finalizers": ["kubernetes"]}),
        "{answer}"
    );
    assert!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "{answer}"
    );
    answer
}

/// Creating in a Terminating namespace is 403 Forbidden with the `NamespaceTerminating` cause,
/// as the NamespaceLifecycle admission plugin answers.
async fn assert_creation_refused(server: &TestApiServer) {
    let (status, error) = call(
        server,
        Method::POST,
        &format!("{DOOMED}/configmaps"),
        "application/json",
        Some(json!({"metadata": {"name": "late"}})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["reason"], "Forbidden", "{error}");
    assert_eq!(
        error["message"],
        r#"configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated"#
    );
    assert_eq!(error["details"]["name"], "late", "{error}");
    assert_eq!(error["details"]["kind"], "configmaps", "{error}");
    assert!(
        error["details"].get("group").is_none(),
        "an empty group is left out: {error}"
    );
    assert_eq!(
        error["details"]["causes"],
        json!([{"reason": "NamespaceTerminating",
            "message": "namespace doomed is being terminated", "field": "metadata.namespace"}])
    );
}

/// With the namespace controller, a deleted namespace is Terminating, its objects are deleted
/// (one a finalizer keeps stays, with its deletionTimestamp, and keeps the namespace), and once
/// it is empty the namespace disappears.
#[tokio::test]
async fn the_namespace_controller_empties_and_removes_a_deleted_namespace() {
    let server = server_with(false, true);
    doomed_namespace(&server).await;
    eventually("the namespace's free objects are deleted", || {
        server.get("v1", "ConfigMap", "doomed", "plain").is_none()
            && server
                .get("apps/v1", "Deployment", "doomed", "web")
                .is_none()
    })
    .await;
    let held = server
        .get("v1", "ConfigMap", "doomed", "held")
        .expect("kept by its finalizer");
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    let_controllers_run().await;
    let namespace = get(&server, "v1", "Namespace", "doomed").expect("kept by its content");
    assert_eq!(namespace["status"]["phase"], "Terminating", "{namespace}");
    assert_creation_refused(&server).await;

    let (status, answer) = call(
        &server,
        Method::PATCH,
        &format!("{DOOMED}/configmaps/held"),
        "application/merge-patch+json",
        Some(json!({"metadata": {"finalizers": null}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    eventually("the emptied namespace is gone", || {
        gone(&server, "v1", "Namespace", "doomed")
    })
    .await;
    let (status, error) = call(&server, Method::GET, DOOMED, "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["message"], r#"namespaces "doomed" not found"#);
    assert!(server.list("v1", "ConfigMap", Some("doomed")).is_empty());
}

/// Without the namespace controller (the default, as envtest), a deleted namespace stays
/// Terminating with its `kubernetes` finalizer and everything in it untouched.
#[tokio::test]
async fn without_the_namespace_controller_a_deleted_namespace_stays_terminating() {
    let server = server();
    doomed_namespace(&server).await;
    let_controllers_run().await;
    let namespace = get(&server, "v1", "Namespace", "doomed").expect("the namespace stays");
    assert_eq!(namespace["status"]["phase"], "Terminating", "{namespace}");
    assert_eq!(namespace["spec"]["finalizers"], json!(["kubernetes"]));
    for name in ["plain", "held"] {
        let kept = server
            .get("v1", "ConfigMap", "doomed", name)
            .expect("the content stays");
        assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");
    }
    assert!(
        server
            .get("apps/v1", "Deployment", "doomed", "web")
            .is_some()
    );
    assert_creation_refused(&server).await;
}

/// A server-side apply (`application/apply-patch+yaml`) by `manager`; `force=true` when asked.
async fn apply(
    server: &TestApiServer,
    path: &str,
    manager: &str,
    force: bool,
    yaml: &str,
) -> (StatusCode, Value) {
    let force = if force { "&force=true" } else { "" };
    let response = Client::new()
        .patch(format!(
            "{}{path}?fieldManager={manager}{force}",
            server.url()
        ))
        .header("Content-Type", "application/apply-patch+yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The `fieldsV1` of `manager`'s managedFields entry (with that operation), if it has one.
fn fields_of(object: &Value, manager: &str, operation: &str) -> Option<Value> {
    object["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|entry| entry["manager"] == manager && entry["operation"] == operation)
        .map(|entry| entry["fieldsV1"].clone())
}

const APPLIED_BY_A: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1
";

fn replicas_by_b(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n"
    )
}

/// The `(message, field)` of each cause of a conflict, sorted (the real server lists them in
/// no fixed order across managers).
fn conflict_causes(error: &Value) -> Vec<(String, String)> {
    let mut causes: Vec<(String, String)> = error["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("causes in {error}"))
        .iter()
        .map(|cause| {
            (
                cause["message"].as_str().expect("a message").to_owned(),
                cause["field"].as_str().expect("a field").to_owned(),
            )
        })
        .collect();
    causes.sort();
    causes
}

/// Asserts a 409 apply conflict: `message`, `reason: Conflict`, details holding only the
/// causes, whose messages and fields are `causes`.
fn assert_apply_conflict(answer: &(StatusCode, Value), message: &str, causes: &[(&str, &str)]) {
    let (status, error) = answer;
    assert_eq!(*status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["kind"], "Status", "{error}");
    assert_eq!(error["status"], "Failure", "{error}");
    assert_eq!(error["reason"], "Conflict", "{error}");
    assert_eq!(error["code"], 409, "{error}");
    assert_eq!(error["message"], message, "{error}");
    let details: Vec<&String> = error["details"]
        .as_object()
        .expect("details")
        .keys()
        .collect();
    assert_eq!(details, ["causes"], "{error}");
    let mut expected: Vec<(String, String)> = causes
        .iter()
        .map(|(message, field)| ((*message).to_owned(), (*field).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(conflict_causes(error), expected, "{error}");
}

/// Server-side apply conflicts over HTTP, as the real API server answers them: a manager
/// applying a different value for a field another manager owns gets 409 Conflict naming each
/// manager (an Update manager with its apiVersion) and field path (`.spec.replicas`,
/// `.spec.template.spec.containers[name="web"].image`), and nothing is written; applying the
/// same value shares the field; `force=true` takes the field over, the former owner's entry
/// losing it, and the former owner then conflicts in turn.
#[tokio::test]
async fn apply_conflicts_name_managers_and_fields_and_force_takes_over() {
    let server = server();
    let web = format!("{DEPLOYMENTS}/web");
    let (status, created) = apply(&server, &web, "a", false, APPLIED_BY_A).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, patched) = call(
        &server,
        Method::PATCH,
        &format!("{web}?fieldManager=c"),
        "application/merge-patch+json",
        Some(json!({"spec": {"minReadySeconds": 5}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let version = patched["metadata"]["resourceVersion"].clone();

    let answer = apply(
        &server,
        &web,
        "b",
        false,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  minReadySeconds: 10\n",
    )
    .await;
    assert_apply_conflict(
        &answer,
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\nconflicts with \"c\" using apps/v1:\n- .spec.minReadySeconds",
        &[
            (r#"conflict with "a""#, ".spec.replicas"),
            (
                r#"conflict with "c" using apps/v1"#,
                ".spec.minReadySeconds",
            ),
        ],
    );
    let answer = apply(
        &server,
        &web,
        "b",
        false,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:2\n",
    )
    .await;
    assert_apply_conflict(
        &answer,
        r#"Apply failed with 1 conflict: conflict with "a": .spec.template.spec.containers[name="web"].image"#,
        &[(
            r#"conflict with "a""#,
            r#".spec.template.spec.containers[name="web"].image"#,
        )],
    );
    let stored = get(&server, "apps/v1", "Deployment", "web").expect("stored");
    assert_eq!(
        stored["metadata"]["resourceVersion"], version,
        "a refused apply writes nothing"
    );
    assert_eq!(stored["spec"]["replicas"], 2);
    assert_eq!(fields_of(&stored, "b", "Apply"), None);

    // The same value is no conflict: both own the field.
    let (status, shared) = apply(&server, &web, "b", false, &replicas_by_b(2)).await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    assert_eq!(
        fields_of(&shared, "b", "Apply"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
    assert!(
        fields_of(&shared, "a", "Apply").expect("a's entry")["f:spec"]
            .get("f:replicas")
            .is_some(),
        "{shared}"
    );
    let answer = apply(&server, &web, "b", false, &replicas_by_b(3)).await;
    assert_apply_conflict(
        &answer,
        r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#,
        &[(r#"conflict with "a""#, ".spec.replicas")],
    );

    let (status, forced) = apply(&server, &web, "b", true, &replicas_by_b(3)).await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["spec"]["replicas"], 3, "{forced}");
    assert_eq!(
        fields_of(&forced, "b", "Apply"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
    let owned_by_a = fields_of(&forced, "a", "Apply").expect("a keeps its other fields");
    assert!(owned_by_a["f:spec"].get("f:replicas").is_none(), "{forced}");
    assert!(owned_by_a["f:spec"].get("f:selector").is_some(), "{forced}");
    assert_eq!(
        fields_of(&forced, "c", "Update"),
        Some(json!({"f:spec": {"f:minReadySeconds": {}}}))
    );

    // The former owner now conflicts with the new one.
    let answer = apply(&server, &web, "a", false, APPLIED_BY_A).await;
    assert_apply_conflict(
        &answer,
        r#"Apply failed with 1 conflict: conflict with "b": .spec.replicas"#,
        &[(r#"conflict with "b""#, ".spec.replicas")],
    );
}

/// The type of a conflict's cause is `FieldManagerConflict`, under the JSON key `reason`, as
/// metav1.StatusCause serializes its `Type` (`json:"reason,omitempty"`); there is no `type` key.
#[tokio::test]
async fn apply_conflict_causes_carry_their_type_as_reason() {
    let server = server();
    let web = format!("{DEPLOYMENTS}/web");
    let (status, created) = apply(&server, &web, "a", false, APPLIED_BY_A).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, error) = apply(&server, &web, "b", false, &replicas_by_b(3)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(
        error["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"a\"",
            "field": ".spec.replicas"}]),
        "{error}"
    );
}

/// Fake API server (no real one can run here): deleting a CRD deletes its custom resources, and
/// the CRD stays, Terminating (held by `customresourcecleanup.apiextensions.k8s.io`), until the
/// last is gone: a finalizer on a custom resource holds both back.
#[tokio::test]
async fn a_crd_goes_once_its_custom_resources_have() {
    let server = server_with(false, false);
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": true}}}]}});
    server.create_as("test", crd).unwrap();
    eventually("the CRD is served", || {
        server
            .create_as(
                "test",
                json!({"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": "held", "namespace": "default",
                                    "finalizers": ["example.com/hold"]}}),
            )
            .is_ok()
    })
    .await;
    server
        .create_as(
            "test",
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "free", "namespace": "default"}}),
        )
        .unwrap();

    let (status, answer) = delete(
        &server,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "{answer}"
    );
    let_controllers_run().await;
    let crd = get(
        &server,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "widgets.example.com",
    )
    .expect("held by the custom resource's finalizer");
    assert_eq!(
        crd["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    assert!(gone(&server, "example.com/v1", "Widget", "free"));
    let held = get(&server, "example.com/v1", "Widget", "held").expect("held by its finalizer");
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");

    server
        .remove_finalizers("example.com/v1", "Widget", "default", "held")
        .unwrap();
    eventually("the CRD is gone", || {
        gone(
            &server,
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "widgets.example.com",
        )
    })
    .await;
    assert!(gone(&server, "example.com/v1", "Widget", "held"));
}
