//! The write path's rules as the real API server applies them: what a DELETE answers and what a
//! dry-run DELETE leaves alone, and the rules of later fixes. The server is a fake Kubernetes
//! API server because no real one can run here; each test pins one rule of the real registry.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use windlass_test_apiserver::{Fault, FaultAction, FaultMatch, TestApiServer};

use super::http::server;

/// [`super::http::call`] without the headers.
pub(super) async fn call(
    server: &TestApiServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, value) = super::http::call(server, method, path, content_type, body).await;
    (status, value)
}

/// POST `body` to `path`, asserting 201 Created; the created object.
pub(super) async fn create(server: &TestApiServer, path: &str, body: Value) -> Value {
    let (status, created) = call(server, Method::POST, path, "application/json", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// `dryRun: ["All"]` in the DeleteOptions body (what kubectl `delete --dry-run=server` and
/// kube-rs send) deletes nothing, counts as a dry run for the log and for faults, and answers
/// as the real delete would.
#[tokio::test]
async fn a_dry_run_in_the_delete_body_deletes_nothing() {
    let server = server();
    create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "plain"}, "data": {"k": "v"}}),
    )
    .await;
    let kept = create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "kept", "finalizers": ["example.com/keep"]}}),
    )
    .await;
    let revision = server.resource_version();
    let dry_run = json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]});
    let (status, answer) = call(
        &server,
        Method::DELETE,
        &format!("{CONFIGMAPS}/plain"),
        "application/json",
        Some(dry_run.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "Success", "{answer}");
    assert!(server.get("v1", "ConfigMap", "default", "plain").is_some());
    let (status, answer) = call(
        &server,
        Method::DELETE,
        &format!("{CONFIGMAPS}/kept"),
        "application/json",
        Some(dry_run.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "{answer}"
    );
    assert_eq!(
        answer["metadata"]["resourceVersion"],
        kept["metadata"]["resourceVersion"]
    );
    let stored = server.get("v1", "ConfigMap", "default", "kept").unwrap();
    assert!(
        stored["metadata"]["deletionTimestamp"].is_null(),
        "{stored}"
    );
    assert_eq!(server.resource_version(), revision);
    let deletes: Vec<bool> = server
        .requests()
        .iter()
        .filter(|request| request.verb == "delete")
        .map(|request| request.dry_run)
        .collect();
    assert_eq!(deletes, [true, true]);
    // A fault for dry runs only matches the body's dry run.
    server.add_fault(Fault {
        matcher: FaultMatch::verb("delete").dry_run(true),
        action: FaultAction::ServerError(503),
        remaining: Some(1),
    });
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("{CONFIGMAPS}/plain"),
        "application/json",
        Some(dry_run),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

/// A DELETE that removes the object at once answers a `Status` of Success naming it, except for
/// the types whose registry returns the deleted object (pods); an object finalizers keep is
/// answered with its deletionTimestamp.
#[tokio::test]
async fn a_delete_answers_a_status_unless_the_object_stays() {
    let server = server();
    let created = create(&server, CONFIGMAPS, json!({"metadata": {"name": "a"}})).await;
    let (status, answer) = call(
        &server,
        Method::DELETE,
        &format!("{CONFIGMAPS}/a"),
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "a", "kind": "configmaps", "uid": created["metadata"]["uid"]},
        })
    );
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let deployment = json!({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
    create(&server, deployments, deployment).await;
    let (_, answer) = call(
        &server,
        Method::DELETE,
        &format!("{deployments}/web"),
        "",
        None,
    )
    .await;
    assert_eq!(answer["details"]["group"], "apps", "{answer}");
    assert_eq!(answer["details"]["kind"], "deployments", "{answer}");
    let pods = "/api/v1/namespaces/default/pods";
    create(
        &server,
        pods,
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    let (_, answer) = call(&server, Method::DELETE, &format!("{pods}/p"), "", None).await;
    assert_eq!(answer["kind"], "Pod", "{answer}");
    // Kept by a finalizer: the object, now with deletionTimestamp and a bumped generation.
    let kept = json!({"metadata": {"name": "kept", "finalizers": ["example.com/keep"]}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
    create(&server, deployments, kept).await;
    let (_, answer) = call(
        &server,
        Method::DELETE,
        &format!("{deployments}/kept"),
        "",
        None,
    )
    .await;
    assert_eq!(answer["kind"], "Deployment", "{answer}");
    assert!(answer["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(answer["metadata"]["generation"], 2, "{answer}");
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A Secret's `stringData` is written into `data` (base64, overwriting the same key) and
/// removed, on create, update, patch and apply; an apply records the applier's `stringData`.
#[tokio::test]
async fn secret_string_data_is_merged_into_data() {
    let server = server();
    let secrets = "/api/v1/namespaces/default/secrets";
    let created = create(
        &server,
        secrets,
        json!({"metadata": {"name": "s"}, "data": {"a": base64("old"), "b": base64("b")},
               "stringData": {"a": "new", "c": "c"}}),
    )
    .await;
    assert_eq!(
        created["data"],
        json!({"a": base64("new"), "b": base64("b"), "c": base64("c")})
    );
    assert!(created.get("stringData").is_none(), "{created}");
    let mut updated = created.clone();
    updated["stringData"] = json!({"b": "put"});
    let (status, updated) = call(
        &server,
        Method::PUT,
        &format!("{secrets}/s"),
        "application/json",
        Some(updated),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["data"]["b"], base64("put"));
    assert!(updated.get("stringData").is_none(), "{updated}");
    let (_, patched) = call(
        &server,
        Method::PATCH,
        &format!("{secrets}/s"),
        "application/merge-patch+json",
        Some(json!({"stringData": {"d": "patched"}})),
    )
    .await;
    assert_eq!(patched["data"]["d"], base64("patched"), "{patched}");
    assert!(patched.get("stringData").is_none(), "{patched}");
    let (status, applied) = call(
        &server,
        Method::PATCH,
        &format!("{secrets}/applied?fieldManager=tool"),
        "application/apply-patch+yaml",
        Some(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "applied"},
                    "stringData": {"k": "v"}}),
        ),
    )
    .await;
    assert!(status.is_success(), "{applied}");
    assert_eq!(applied["data"], json!({"k": base64("v")}));
    assert!(applied.get("stringData").is_none(), "{applied}");
    let fields = &applied["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields["f:stringData"], json!({"f:k": {}}), "{fields}");
}

/// A CRD of `gadgets.windlass.test` (namespaced, kind Gadget) with the given versions.
/// The Gadget CRD served at `v1` (with the status subresource when `status_subresource`) and a
/// Gadget `g` of size 1 in `default`; the Gadgets' collection path.
async fn gadget_g(server: &TestApiServer, status_subresource: bool) -> &'static str {
    create(
        server,
        CRDS,
        gadget_crd(json!([gadget_version("v1", true, status_subresource)])),
    )
    .await;
    let gadgets = "/apis/windlass.test/v1/namespaces/default/gadgets";
    create(
        server,
        gadgets,
        json!({"metadata": {"name": "g"}, "spec": {"size": 1}}),
    )
    .await;
    gadgets
}

fn gadget_crd(versions: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.windlass.test"},
        "spec": {"group": "windlass.test", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": versions},
    })
}

/// One CRD version serving an open schema, with or without the status subresource.
fn gadget_version(name: &str, storage: bool, status_subresource: bool) -> Value {
    let mut version = json!({"name": name, "served": true, "storage": storage,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
    if status_subresource {
        version["subresources"] = json!({"status": {}});
    }
    version
}

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

async fn merge_patch(server: &TestApiServer, path: &str, patch: Value) -> Value {
    let (status, patched) = call(
        server,
        Method::PATCH,
        path,
        "application/merge-patch+json",
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    patched
}

/// Generation follows the real strategies: a Deployment's annotations count as its spec does,
/// and a custom resource without the status subresource counts its status too.
#[tokio::test]
async fn generation_follows_the_real_strategies() {
    let server = server();
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    create(
        &server,
        deployments,
        json!({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}}),
    )
    .await;
    let web = format!("{deployments}/web");
    let patched = merge_patch(
        &server,
        &web,
        json!({"metadata": {"annotations": {"a": "1"}}}),
    )
    .await;
    assert_eq!(patched["metadata"]["generation"], 2);
    let patched = merge_patch(&server, &web, json!({"metadata": {"labels": {"l": "1"}}})).await;
    assert_eq!(patched["metadata"]["generation"], 2);
    let gadgets = gadget_g(&server, false).await;
    let patched = merge_patch(
        &server,
        &format!("{gadgets}/g"),
        json!({"status": {"ready": true}}),
    )
    .await;
    assert_eq!(patched["metadata"]["generation"], 2, "{patched}");
    let patched = merge_patch(
        &server,
        &format!("{gadgets}/g"),
        json!({"metadata": {"annotations": {"a": "1"}}}),
    )
    .await;
    assert_eq!(patched["metadata"]["generation"], 2, "{patched}");
}

/// With the status subresource, a custom resource's status (written through `/status`) does
/// not move its generation.
#[tokio::test]
async fn generation_ignores_the_status_of_a_status_subresource() {
    let server = server();
    let gadgets = gadget_g(&server, true).await;
    let patched = merge_patch(
        &server,
        &format!("{gadgets}/g/status"),
        json!({"status": {"ready": true}}),
    )
    .await;
    assert_eq!(patched["status"]["ready"], true, "{patched}");
    assert_eq!(patched["metadata"]["generation"], 1, "{patched}");
}

/// Asserts a 422 Invalid whose message is `<what> "<name>" is invalid: <field>: <detail>` and
/// whose one cause has the given type (`reason` in JSON) and field.
fn assert_invalid(answer: &(StatusCode, Value), message: &str, cause_type: &str, field: &str) {
    let (status, error) = answer;
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["status"], "Failure", "{error}");
    assert_eq!(error["reason"], "Invalid", "{error}");
    assert_eq!(error["message"], message, "{error}");
    assert_eq!(
        error["details"]["causes"][0]["reason"], cause_type,
        "{error}"
    );
    assert_eq!(error["details"]["causes"][0]["field"], field, "{error}");
}

/// The updates the real validation refuses: a Secret's type, a binding's roleRef, StatefulSet
/// spec fields other than the mutable ones, a bound claim's spec, and new finalizers on an
/// object being deleted.
#[tokio::test]
async fn immutable_and_forbidden_updates_are_refused() {
    let server = server();
    let patch = |path: String, body: Value| {
        let server = &server;
        async move {
            call(
                server,
                Method::PATCH,
                &path,
                "application/merge-patch+json",
                Some(body),
            )
            .await
        }
    };
    let secrets = "/api/v1/namespaces/default/secrets";
    create(
        &server,
        secrets,
        json!({"metadata": {"name": "s"}, "type": "Opaque"}),
    )
    .await;
    let answer = patch(format!("{secrets}/s"), json!({"type": "kubernetes.io/tls"})).await;
    assert_invalid(
        &answer,
        r#"Secret "s" is invalid: type: Invalid value: "kubernetes.io/tls": field is immutable"#,
        "FieldValueInvalid",
        "type",
    );
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
    create(
        &server,
        bindings,
        json!({"metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "one"}}),
    )
    .await;
    let answer = patch(format!("{bindings}/b"), json!({"roleRef": {"name": "two"}})).await;
    assert_invalid(
        &answer,
        r#"RoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"two"}: cannot change roleRef"#,
        "FieldValueInvalid",
        "roleRef",
    );
    let statefulsets = "/apis/apps/v1/namespaces/default/statefulsets";
    create(
        &server,
        statefulsets,
        json!({"metadata": {"name": "db"}, "spec": {
        "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}},
                     "spec": {"containers": [{"name": "db", "image": "db:1"}]}}}}),
    )
    .await;
    let (status, _) = patch(
        format!("{statefulsets}/db"),
        json!({"spec": {"replicas": 3, "minReadySeconds": 5}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer = patch(
        format!("{statefulsets}/db"),
        json!({"spec": {"serviceName": "other"}}),
    )
    .await;
    assert_invalid(
        &answer,
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        "FieldValueForbidden",
        "spec",
    );
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims";
    create(
        &server,
        claims,
        json!({"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;
    let (status, _) = patch(
        format!("{claims}/data"),
        json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}, "volumeName": "pv-1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer = patch(
        format!("{claims}/data"),
        json!({"spec": {"accessModes": ["ReadWriteMany"]}}),
    )
    .await;
    assert_invalid(
        &answer,
        r#"PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"#,
        "FieldValueForbidden",
        "spec",
    );
    let configmaps = "/api/v1/namespaces/default/configmaps";
    create(
        &server,
        configmaps,
        json!({"metadata": {"name": "going", "finalizers": ["example.com/a"]}}),
    )
    .await;
    call(
        &server,
        Method::DELETE,
        &format!("{configmaps}/going"),
        "",
        None,
    )
    .await;
    let answer = patch(
        format!("{configmaps}/going"),
        json!({"metadata": {"finalizers": ["example.com/a", "example.com/b"]}}),
    )
    .await;
    assert_invalid(
        &answer,
        r#"ConfigMap "going" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/b"}"#,
        "FieldValueForbidden",
        "metadata.finalizers",
    );
    let (status, _) = patch(
        format!("{configmaps}/going"),
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// The managers of an answer: `(manager, operation)` in order.
fn managers_of(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            (
                entry["manager"].as_str().unwrap_or("").to_owned(),
                entry["operation"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// `managedFields: [{}]` in an update resets the managers (the writer's own entry is added as
/// usual); a malformed list is ignored and the live managers stay, as the real server does.
#[tokio::test]
async fn managed_fields_reset_and_malformed_lists_in_updates() {
    let server = server();
    create(
        &server,
        &format!("{CONFIGMAPS}?fieldManager=first"),
        json!({"metadata": {"name": "m"}, "data": {"a": "1"}}),
    )
    .await;
    let (status, kept) = call(
        &server,
        Method::PATCH,
        &format!("{CONFIGMAPS}/m?fieldManager=second"),
        "application/merge-patch+json",
        Some(
            json!({"metadata": {"managedFields": [{"operation": "Bogus", "fieldsV1": 7}]},
                    "data": {"b": "1"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(
        managers_of(&kept),
        [
            ("first".to_owned(), "Update".to_owned()),
            ("second".to_owned(), "Update".to_owned())
        ]
    );
    let (status, reset) = call(
        &server,
        Method::PATCH,
        &format!("{CONFIGMAPS}/m?fieldManager=third"),
        "application/merge-patch+json",
        Some(json!({"metadata": {"managedFields": [{}]}, "data": {"c": "1"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(
        managers_of(&reset),
        [("third".to_owned(), "Update".to_owned())]
    );
    assert_eq!(
        reset["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {"f:c": {}}})
    );
    // An apply that sets managedFields is still refused, as the real server refuses it.
    let (status, _) = call(
        &server,
        Method::PATCH,
        &format!("{CONFIGMAPS}/m?fieldManager=applier"),
        "application/apply-patch+yaml",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "m", "managedFields": [{"manager": "x"}]}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A PUT of a custom resource without `metadata.resourceVersion` is refused (custom resources
/// do not allow an unconditional update); a built-in type's is accepted.
#[tokio::test]
async fn custom_resources_refuse_unconditional_updates() {
    let server = server();
    let gadgets = gadget_g(&server, false).await;
    let body = json!({"apiVersion": "windlass.test/v1", "kind": "Gadget",
                      "metadata": {"name": "g"}, "spec": {"size": 2}});
    let answer = call(
        &server,
        Method::PUT,
        &format!("{gadgets}/g"),
        "application/json",
        Some(body),
    )
    .await;
    assert_invalid(
        &answer,
        r#"Gadget.windlass.test "g" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"#,
        "FieldValueInvalid",
        "metadata.resourceVersion",
    );
    create(&server, CONFIGMAPS, json!({"metadata": {"name": "c"}})).await;
    let (status, _) = call(
        &server,
        Method::PUT,
        &format!("{CONFIGMAPS}/c"),
        "application/json",
        Some(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// A continued LIST page reports the revision of its token, and `remainingItemCount` is left
/// out under a selector.
#[tokio::test]
async fn continued_pages_report_the_token_revision() {
    let server = server();
    for name in ["a", "b", "c"] {
        create(
            &server,
            CONFIGMAPS,
            json!({"metadata": {"name": name, "labels": {"x": "y"}}}),
        )
        .await;
    }
    let (_, first) = call(
        &server,
        Method::GET,
        &format!("{CONFIGMAPS}?limit=1"),
        "",
        None,
    )
    .await;
    let revision = first["metadata"]["resourceVersion"].clone();
    assert_eq!(first["metadata"]["remainingItemCount"], 2, "{first}");
    create(&server, CONFIGMAPS, json!({"metadata": {"name": "d"}})).await;
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let (_, second) = call(
        &server,
        Method::GET,
        &format!("{CONFIGMAPS}?limit=1&continue={token}"),
        "",
        None,
    )
    .await;
    assert_eq!(second["metadata"]["resourceVersion"], revision, "{second}");
    let (_, selected) = call(
        &server,
        Method::GET,
        &format!("{CONFIGMAPS}?limit=1&labelSelector=x%3Dy"),
        "",
        None,
    )
    .await;
    assert!(selected["metadata"]["continue"].is_string(), "{selected}");
    assert!(
        selected["metadata"].get("remainingItemCount").is_none(),
        "{selected}"
    );
}

/// A watch from a resourceVersion past the server's ends with an ERROR event carrying a 504
/// Timeout Status, instead of silently waiting for revisions that may never carry its events.
#[tokio::test]
async fn a_watch_from_a_future_revision_ends_with_a_timeout_error() {
    let server = server();
    let current = server.resource_version();
    let asked = current + 100;
    let (status, event) = call(
        &server,
        Method::GET,
        &format!("{CONFIGMAPS}?watch=true&resourceVersion={asked}&timeoutSeconds=2"),
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["type"], "ERROR", "{event}");
    assert_eq!(event["object"]["code"], 504, "{event}");
    assert_eq!(event["object"]["reason"], "Timeout", "{event}");
    assert_eq!(
        event["object"]["message"],
        format!("Too large resource version: {asked}, current: {current}")
    );
}

/// An update of an Established CRD is served at once: a new version (the preferred one by
/// Kubernetes' version priority), `served: false`, and the storage version recorded in
/// `status.storedVersions`.
#[tokio::test]
async fn crd_updates_are_served() {
    let server = server();
    create(
        &server,
        CRDS,
        gadget_crd(json!([gadget_version("v1", true, false)])),
    )
    .await;
    let crd = server
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "",
            "gadgets.windlass.test",
        )
        .expect("the CRD");
    let mut updated = crd.clone();
    updated["spec"]["versions"] = json!([
        gadget_version("v1", false, false),
        gadget_version("v2beta1", false, false),
        gadget_version("v2", true, false),
    ]);
    let (status, answer) = call(
        &server,
        Method::PUT,
        &format!("{CRDS}/gadgets.windlass.test"),
        "application/json",
        Some(updated),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["status"]["storedVersions"],
        json!(["v1", "v2"]),
        "{answer}"
    );
    let (status, group) = call(&server, Method::GET, "/apis/windlass.test", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(group["preferredVersion"]["version"], "v2", "{group}");
    let (status, _) = call(
        &server,
        Method::GET,
        "/apis/windlass.test/v2/namespaces/default/gadgets",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut unserved = answer.clone();
    unserved["spec"]["versions"][0]["served"] = json!(false);
    let (status, answer) = call(
        &server,
        Method::PUT,
        &format!("{CRDS}/gadgets.windlass.test"),
        "application/json",
        Some(unserved),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = call(
        &server,
        Method::GET,
        "/apis/windlass.test/v1/namespaces/default/gadgets",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A CRD of `gadgets.windlass.test` whose v1 schema declares `spec.size` (default 3),
/// `spec.mode` (default `fast`), `spec.ports[].protocol` (default `TCP`) and an open
/// `spec.extra`, and nothing else: any other field is pruned.
fn structural_gadget_crd() -> Value {
    gadget_crd(json!([{"name": "v1", "served": true, "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "default": 3},
                "mode": {"type": "string", "default": "fast"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "port": {"type": "integer"},
                    "protocol": {"type": "string", "default": "TCP"}}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}}}]))
}

/// A custom resource is pruned and defaulted by its version's schema on create (and in a dry
/// run's answer), update, merge and JSON patch, as the real apiextensions server does; a
/// server-side apply with an undeclared field is refused (500, structured-merge-diff's
/// message), one without is defaulted, and the applier owns only what it applied.
#[tokio::test]
async fn custom_resources_are_pruned_and_defaulted_by_their_schema() {
    let server = server();
    create(&server, CRDS, structural_gadget_crd()).await;
    let gadgets = "/apis/windlass.test/v1/namespaces/default/gadgets";
    let created = create(
        &server,
        gadgets,
        json!({"apiVersion": "windlass.test/v1", "kind": "Gadget", "metadata": {"name": "g"},
               "bogus": 1,
               "spec": {"bogus": "x", "mode": null, "ports": [{"port": 80, "bogus": true}],
                        "extra": {"anything": {"kept": 1}}}}),
    )
    .await;
    let expected_spec = json!({"mode": "fast", "ports": [{"port": 80, "protocol": "TCP"}],
                               "extra": {"anything": {"kept": 1}}, "size": 3});
    assert_eq!(created["spec"], expected_spec, "{created}");
    assert!(created.get("bogus").is_none(), "{created}");
    let (status, stored) = call(&server, Method::GET, &format!("{gadgets}/g"), "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["spec"], expected_spec, "{stored}");
    assert!(stored.get("bogus").is_none(), "{stored}");
    // A dry run answers what would be stored, and stores nothing.
    let (status, dry) = call(
        &server,
        Method::POST,
        &format!("{gadgets}?dryRun=All"),
        "application/json",
        Some(json!({"metadata": {"name": "dry"}, "spec": {"bogus": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{dry}");
    assert_eq!(dry["spec"], json!({"size": 3, "mode": "fast"}), "{dry}");
    let (status, _) = call(&server, Method::GET, &format!("{gadgets}/dry"), "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Merge patch: the undeclared field goes, a removed defaulted field comes back.
    let patched = merge_patch(
        &server,
        &format!("{gadgets}/g"),
        json!({"spec": {"size": null, "other": 2}}),
    )
    .await;
    assert_eq!(patched["spec"], expected_spec, "{patched}");
    assert_eq!(
        patched["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"],
        "nothing changed once pruned and defaulted"
    );
    // JSON patch and update.
    let (status, patched) = call(
        &server,
        Method::PATCH,
        &format!("{gadgets}/g"),
        "application/json-patch+json",
        Some(json!([{"op": "add", "path": "/spec/ports/-", "value": {"port": 81, "x": 1}}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["spec"]["ports"],
        json!([{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}])
    );
    let mut replaced = patched.clone();
    replaced["spec"] = json!({"size": 5, "bogus": 1});
    let (status, updated) = call(
        &server,
        Method::PUT,
        &format!("{gadgets}/g"),
        "application/json",
        Some(replaced),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["spec"],
        json!({"size": 5, "mode": "fast"}),
        "{updated}"
    );
    // Apply: an undeclared field is refused as structured-merge-diff refuses it.
    let (status, refused) = call(
        &server,
        Method::PATCH,
        &format!("{gadgets}/a?fieldManager=applier"),
        "application/apply-patch+yaml",
        Some(
            json!({"apiVersion": "windlass.test/v1", "kind": "Gadget", "metadata": {"name": "a"},
                    "spec": {"size": 1, "bogus": 1}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{refused}");
    assert_eq!(
        refused["message"],
        "failed to create typed patch object (default/a; windlass.test/v1, Kind=Gadget): .spec.bogus: field not declared in schema"
    );
    assert!(refused.get("reason").is_none(), "{refused}");
    let (status, applied) = call(
        &server,
        Method::PATCH,
        &format!("{gadgets}/a?fieldManager=applier"),
        "application/apply-patch+yaml",
        Some(
            json!({"apiVersion": "windlass.test/v1", "kind": "Gadget", "metadata": {"name": "a"},
                    "spec": {"size": 1}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    assert_eq!(
        applied["spec"],
        json!({"size": 1, "mode": "fast"}),
        "{applied}"
    );
    assert_eq!(
        applied["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
        json!({"f:size": {}}),
        "the applier owns what it applied, not the defaults"
    );
}

/// Sends `body` with `content_type` and returns the status, the `Warning` headers and the
/// parsed answer.
async fn call_with_warnings(
    server: &TestApiServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Vec<String>, Value) {
    let (status, headers, value) =
        super::http::call(server, method, path, content_type, Some(body)).await;
    let warnings = headers
        .get_all("Warning")
        .iter()
        .map(|value| value.to_str().expect("an ASCII warning").to_owned())
        .collect();
    (status, warnings, value)
}

/// `fieldValidation` decides what an undeclared field of a custom resource costs: `Strict`
/// refuses the write (400, the real server's strict decoding error, worded for a body or for
/// a patched object), `Warn` (the default) drops it with a `Warning` header each, sorted by
/// path, and `Ignore` drops it silently.
#[tokio::test]
async fn field_validation_refuses_warns_or_ignores_undeclared_fields() {
    let server = server();
    create(&server, CRDS, structural_gadget_crd()).await;
    let gadgets = "/apis/windlass.test/v1/namespaces/default/gadgets";
    let body =
        json!({"metadata": {"name": "g"}, "spec": {"size": 1, "zeta": 1, "alpha": {"x": 1}}});
    let (status, warnings, refused) = call_with_warnings(
        &server,
        Method::POST,
        &format!("{gadgets}?fieldValidation=Strict"),
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused["message"],
        r#"Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: unknown field "spec.alpha", unknown field "spec.zeta""#
    );
    assert_eq!(refused["reason"], "BadRequest");
    assert!(warnings.is_empty());
    let (status, warnings, created) =
        call_with_warnings(&server, Method::POST, gadgets, "application/json", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        warnings,
        [
            r#"299 - "unknown field \"spec.alpha\"""#,
            r#"299 - "unknown field \"spec.zeta\"""#
        ]
    );
    let (status, _, refused) = call_with_warnings(
        &server,
        Method::PATCH,
        &format!("{gadgets}/g?fieldValidation=Strict"),
        "application/merge-patch+json",
        json!({"spec": {"other": 1}}),
    )
    .await;
    // A patched object is refused as an invalid `patch` (422), with the object the patch made.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["reason"], "Invalid");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#" "" is invalid: patch: Invalid value: "{"#)
            && message.contains(r#"\"other\":1"#)
            && message.ends_with(r#"": strict decoding error: unknown field "spec.other""#),
        "{refused}"
    );
    assert_eq!(
        refused["details"]["causes"][0]["field"], "patch",
        "{refused}"
    );
    let (status, warnings, patched) = call_with_warnings(
        &server,
        Method::PATCH,
        &format!("{gadgets}/g?fieldValidation=Ignore"),
        "application/merge-patch+json",
        json!({"spec": {"other": 1, "size": 2}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(patched["spec"], json!({"size": 2, "mode": "fast"}));
}

/// The maps a real server decodes into `map[string]string` (or `[]byte`) refuse any other
/// value as the real server does: a create's body by its decoder (400, "cannot unmarshal number
/// into Go struct field ..."), a server-side apply by structured-merge-diff (500, "failed to
/// create typed patch object"). A null in a body is stored as `""`. windlass's tests against
/// this fake would otherwise pass a release that a real cluster refuses.
#[tokio::test]
async fn string_maps_refuse_values_that_are_not_strings() {
    let server = server();
    let refused = [
        (
            json!({"metadata": {"name": "a"}, "data": {"port": 8080}}),
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string",
        ),
        (
            json!({"metadata": {"name": "b", "annotations": {"kots.io/creation-phase": 1}}}),
            "cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string",
        ),
        (
            json!({"metadata": {"name": "c", "labels": {"enabled": true}}}),
            "cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string",
        ),
        (
            json!({"metadata": {"name": "e"}, "binaryData": {"blob": 1}}),
            "cannot unmarshal number into Go struct field ConfigMap.binaryData of type []uint8",
        ),
    ];
    for (body, message) in refused {
        let (status, answer) = call(
            &server,
            Method::POST,
            CONFIGMAPS,
            "application/json",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
    let (status, answer) = call(
        &server,
        Method::PATCH,
        &format!("{CONFIGMAPS}/d?fieldManager=me"),
        "application/apply-patch+yaml",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "data": {"n": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(
        answer["message"],
        "failed to create typed patch object (default/d; v1, Kind=ConfigMap): .data.n: expected string, got &value.valueUnstructured{Value:1}",
        "{answer}"
    );
    let (status, answer) = call(
        &server,
        Method::POST,
        "/api/v1/namespaces/default/secrets",
        "application/json",
        Some(json!({"metadata": {"name": "s"}, "stringData": {"n": [1]}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("Secret.stringData of type string"),
        "{answer}"
    );
    for name in ["a", "b", "c", "d", "e", "s"] {
        assert!(server.get("v1", "ConfigMap", "default", name).is_none());
    }
    // A patch whose result holds such a value is refused as an invalid `patch` (422), worded
    // as the API server's patch handler words it for each kind of patch.
    create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "p"}, "data": {"n": "1"}}),
    )
    .await;
    let patches = [
        (
            "application/merge-patch+json",
            json!({"data": {"n": 2}}),
            r#"json: cannot unmarshal number into Go struct field ConfigMap.data of type string"#,
        ),
        (
            "application/json-patch+json",
            json!([{"op": "add", "path": "/metadata/labels", "value": {"on": true}}]),
            r#"json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"#,
        ),
        (
            "application/strategic-merge-patch+json",
            json!({"data": {"n": 2}}),
            r#" "" is invalid: patch: Invalid value: "map[data:map[n:2]]": cannot convert int64 to string"#,
        ),
    ];
    for (media, patch, wording) in patches {
        let (status, answer) = call(
            &server,
            Method::PATCH,
            &format!("{CONFIGMAPS}/p"),
            media,
            Some(patch),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{media}: {answer}"
        );
        assert_eq!(answer["reason"], "Invalid", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(r#" "" is invalid: patch: Invalid value: ""#)
                && message.ends_with(wording),
            "{media}: {answer}"
        );
        assert_eq!(
            answer["details"],
            json!({"causes": [{"reason": "FieldValueInvalid", "field": "patch",
                               "message": message.trim_start_matches(r#" "" is invalid: patch: "#)}]}),
            "{media}"
        );
    }
    let kept = server.get("v1", "ConfigMap", "default", "p").unwrap();
    assert_eq!(kept["data"], json!({"n": "1"}), "nothing was written");
    assert!(kept["metadata"].get("labels").is_none(), "{kept}");
    let fine = create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "fine", "labels": {"a": "1", "b": null}}, "data": {"port": "8080", "none": null}}),
    )
    .await;
    assert_eq!(fine["data"], json!({"port": "8080", "none": ""}), "{fine}");
    assert_eq!(
        fine["metadata"]["labels"],
        json!({"a": "1", "b": ""}),
        "{fine}"
    );
}

/// Namespaces serve no deletecollection (their verbs are create, delete, get, list, patch,
/// update and watch on a real server): discovery leaves it out and a DELETE of the collection
/// is 405, deleting nothing.
#[tokio::test]
async fn namespaces_serve_no_deletecollection() {
    let server = server();
    let (status, answer) = call(
        &server,
        Method::DELETE,
        "/api/v1/namespaces",
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");
    assert!(server.get("v1", "Namespace", "", "default").is_some());
    let (_, resources) = call(&server, Method::GET, "/api/v1", "application/json", None).await;
    let namespaces = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resource| resource["name"] == "namespaces")
        .unwrap()
        .clone();
    assert!(
        !namespaces["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("deletecollection")),
        "{namespaces}"
    );
    let configmaps = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resource| resource["name"] == "configmaps")
        .unwrap()
        .clone();
    assert!(
        configmaps["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("deletecollection")),
        "{configmaps}"
    );
}

/// An apply configuration structured-merge-diff cannot type is refused as the real server
/// refuses it, a 500 `failed to create typed patch object` naming each problem, and nothing is
/// stored: two env entries of one name, a container without its key `name`.
#[tokio::test]
async fn an_apply_with_duplicate_or_keyless_list_items_is_refused_untyped() {
    let server = server();
    let deployment = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": containers}}}})
    };
    let path = "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=applier";
    let (status, refused) = call(
        &server,
        Method::PATCH,
        path,
        "application/apply-patch+yaml",
        Some(deployment(json!([{"name": "app", "image": "nginx",
            "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}]))),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{refused}");
    assert_eq!(
        refused["message"],
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"app\"].env: duplicate entries for key [name=\"A\"]"
    );
    let (status, refused) = call(
        &server,
        Method::PATCH,
        path,
        "application/apply-patch+yaml",
        Some(deployment(json!([{"image": "nginx"}]))),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().ends_with(
            ".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\""
        ),
        "{refused}"
    );
    assert!(
        server
            .get("apps/v1", "Deployment", "default", "web")
            .is_none()
    );
}

/// Fake API server (no real one can run here): a strategic merge patch merges maps key by key,
/// as the real server's `strategicpatch` does for every map and struct (no Go struct tag makes
/// one atomic), even those server-side apply treats as atomic such as a Service's
/// `spec.selector`: a new key joins the live ones, a `null` deletes its key and is never
/// stored, and the same holds for a Deployment's `matchLabels` and for labels.
#[tokio::test]
async fn a_strategic_merge_patch_merges_maps_key_by_key() {
    let server = server();
    let services = "/api/v1/namespaces/default/services";
    create(
        &server,
        services,
        json!({"metadata": {"name": "web", "labels": {"app": "a"}},
               "spec": {"selector": {"app": "a", "tier": "web"}, "ports": [{"port": 80}]}}),
    )
    .await;
    let strategic = |body: Value| {
        let server = &server;
        async move {
            let (status, patched) = call(
                server,
                Method::PATCH,
                &format!("{services}/web"),
                "application/strategic-merge-patch+json",
                Some(body),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{patched}");
            patched
        }
    };
    let widened = strategic(json!({"spec": {"selector": {"extra": "x"}}})).await;
    assert_eq!(
        widened["spec"]["selector"],
        json!({"app": "a", "tier": "web", "extra": "x"})
    );
    let narrowed = strategic(json!({"spec": {"selector": {"extra": null}},
                                    "metadata": {"labels": {"app": null, "new": "n"}}}))
    .await;
    assert_eq!(
        narrowed["spec"]["selector"],
        json!({"app": "a", "tier": "web"})
    );
    assert_eq!(narrowed["metadata"]["labels"], json!({"new": "n"}));
    let stored = server.get("v1", "Service", "default", "web").unwrap();
    assert_eq!(
        stored["spec"]["selector"],
        json!({"app": "a", "tier": "web"})
    );
    assert_eq!(stored["spec"]["ports"][0]["port"], 80);
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    create(
        &server,
        deployments,
        json!({"metadata": {"name": "api"}, "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                         "spec": {"containers": [{"name": "api", "image": "api:1"}]}}}}),
    )
    .await;
    let (status, patched) = call(
        &server,
        Method::PATCH,
        &format!("{deployments}/api"),
        "application/strategic-merge-patch+json",
        Some(json!({"spec": {"template": {"metadata": {"labels": {"tier": "back"}}}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["spec"]["template"]["metadata"]["labels"],
        json!({"app": "api", "tier": "back"})
    );
}

/// Fake API server (no real one can run here): a uid in a write's object that is not the
/// stored object's is refused as the real registry refuses it, and nothing is written. A PUT's
/// uid is a precondition (`rest.DefaultUpdatedObjectInfo` hands the body's uid to storage),
/// so it is a 409 Conflict `Precondition failed: UID in precondition: X, UID in object meta:
/// Y` from etcd storage. A merge, JSON or strategic patch or an apply carries no precondition
/// (the patch handler builds its `UpdatedObjectInfo` without an object), so the changed uid
/// reaches metadata validation: 422 `metadata.uid: Invalid value: "X": field is immutable`.
/// An apply that would create the object with a uid is the patch handler's 409 `uid
/// mismatch: the provided object specified uid X, and no existing object was found`.
#[tokio::test]
async fn a_write_naming_another_uid_is_refused() {
    let server = server();
    let created = create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "u"}, "data": {"k": "1"}}),
    )
    .await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    let other = "00000000-0000-0000-0000-000000000000";
    let path = format!("{CONFIGMAPS}/u");
    let mut replaced = created.clone();
    replaced["metadata"]["uid"] = json!(other);
    replaced["data"] = json!({"k": "2"});
    let (status, refused) = call(
        &server,
        Method::PUT,
        &path,
        "application/json",
        Some(replaced.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["reason"], "Conflict");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Operation cannot be fulfilled on configmaps \"u\": StorageError: invalid object"
        ) && message.ends_with(&format!(
            "Precondition failed: UID in precondition: {other}, UID in object meta: {uid}"
        )),
        "{message}"
    );
    // Without a resourceVersion (an unconditional update) the uid still holds.
    replaced["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (status, _) = call(
        &server,
        Method::PUT,
        &path,
        "application/json",
        Some(replaced),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let immutable = format!(
        "ConfigMap \"u\" is invalid: metadata.uid: Invalid value: \"{other}\": field is immutable"
    );
    for (media, body) in [
        (
            "application/merge-patch+json",
            json!({"metadata": {"uid": other}, "data": {"k": "3"}}),
        ),
        (
            "application/strategic-merge-patch+json",
            json!({"metadata": {"uid": other}, "data": {"k": "3"}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/metadata/uid", "value": other}]),
        ),
    ] {
        let (status, refused) = call(&server, Method::PATCH, &path, media, Some(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{media}: {refused}"
        );
        assert_eq!(refused["reason"], "Invalid", "{media}");
        assert_eq!(refused["message"], immutable, "{media}");
    }
    let apply = |name: &str, uid: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "default", "uid": uid},
               "data": {"k": "4"}})
    };
    let (status, refused) = call(
        &server,
        Method::PATCH,
        &format!("{path}?fieldManager=applier"),
        "application/apply-patch+yaml",
        Some(apply("u", other)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["message"], immutable);
    let stored = server.get("v1", "ConfigMap", "default", "u").unwrap();
    assert_eq!(stored["data"], json!({"k": "1"}), "nothing was written");
    assert_eq!(stored["metadata"]["uid"], uid.as_str());
    // The stored uid itself is no change.
    let (status, same) = call(
        &server,
        Method::PATCH,
        &format!("{path}?fieldManager=applier&force=true"),
        "application/apply-patch+yaml",
        Some(apply("u", &uid)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    let (status, refused) = call(
        &server,
        Method::PATCH,
        &format!("{CONFIGMAPS}/new?fieldManager=applier"),
        "application/apply-patch+yaml",
        Some(apply("new", other)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(
        refused["message"],
        format!(
            "Operation cannot be fulfilled on configmaps \"new\": uid mismatch: the provided object specified uid {other}, and no existing object was found"
        )
    );
    assert!(server.get("v1", "ConfigMap", "default", "new").is_none());
}

/// Fake API server (no real one can run here): a POST whose object carries a resourceVersion
/// is refused as the real server refuses it. etcd storage's `Create` returns
/// `storage.ErrResourceVersionSetOnCreate`, a plain error, which the handler answers 500 with
/// no reason and the message `resourceVersion should not be set on objects to be created`
/// (what client issues quote, e.g. fabric8io/kubernetes-client#734), not a 400. Only a value
/// the versioner reads as a revision counts (`"0"` and non-numbers are dropped, as
/// kubernetes/kubernetes#113847 shows for `"-1"`), and a dry run, which stops short of
/// storage, succeeds.
#[tokio::test]
async fn a_create_with_a_resource_version_is_refused() {
    let server = server();
    let (status, refused) = call(
        &server,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        Some(json!({"metadata": {"name": "rv", "resourceVersion": "42"}})),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{refused}");
    assert_eq!(
        refused,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "resourceVersion should not be set on objects to be created",
               "code": 500})
    );
    assert!(server.get("v1", "ConfigMap", "default", "rv").is_none());
    let (status, dry) = call(
        &server,
        Method::POST,
        &format!("{CONFIGMAPS}?dryRun=All"),
        "application/json",
        Some(json!({"metadata": {"name": "rv", "resourceVersion": "42"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{dry}");
    assert!(server.get("v1", "ConfigMap", "default", "rv").is_none());
    for ignored in ["0", "-1", "abc", ""] {
        let name = format!("rv{}", ignored.len());
        let created = create(
            &server,
            CONFIGMAPS,
            json!({"metadata": {"name": name, "resourceVersion": ignored}}),
        )
        .await;
        assert_ne!(created["metadata"]["resourceVersion"], ignored, "{created}");
    }
}

/// Fake API server (no real one can run here): the namespaces `default`, `kube-system` and
/// `kube-public` cannot be deleted, as the NamespaceLifecycle admission plugin refuses them:
/// 403 Forbidden `namespaces "default" is forbidden: this namespace may not be deleted`,
/// also for a dry run (admission runs for dry runs too), after the 404 of a missing
/// namespace; any other namespace is deleted as before.
#[tokio::test]
async fn the_immortal_namespaces_cannot_be_deleted() {
    let server = server();
    for (name, query) in [
        ("default", ""),
        ("kube-system", ""),
        ("kube-public", "?dryRun=All"),
    ] {
        let (status, refused) = call(
            &server,
            Method::DELETE,
            &format!("/api/v1/namespaces/{name}{query}"),
            "application/json",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        assert_eq!(refused["reason"], "Forbidden");
        assert_eq!(
            refused["message"],
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted")
        );
        assert_eq!(
            refused["details"],
            json!({"name": name, "kind": "namespaces"})
        );
        let kept = server.get("v1", "Namespace", "", name).unwrap();
        assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");
    }
    let (status, _) = call(
        &server,
        Method::DELETE,
        "/api/v1/namespaces/kube-node-lease",
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &server,
        Method::DELETE,
        "/api/v1/namespaces/missing",
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Fake API server (no real one can run here), following the real patch handler
/// (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`): a JSON patch operation
/// that cannot be applied (a missing path, a failed `test`) is wrapped in
/// `NewGenericServerResponse(http.StatusUnprocessableEntity, ...)`, a 422 `Invalid` whose message
/// is only "the server rejected our request due to an error in our request"; a body that is not
/// a list of operations does not decode and stays a 400. And `force` on a merge, JSON or
/// strategic patch, even `force=false`, fails `ValidatePatchOptions` (`options.Force != nil` for
/// a non-apply patch type) before the object is read: 422 `PatchOptions.meta.k8s.io "" is
/// invalid: force: Forbidden: may not be specified for non-apply patch`. Nothing is written.
#[tokio::test]
async fn json_patch_failures_and_force_on_other_patches_are_invalid() {
    let server = server();
    create(
        &server,
        CONFIGMAPS,
        json!({"metadata": {"name": "p"}, "data": {"k": "1"}}),
    )
    .await;
    let path = format!("{CONFIGMAPS}/p");
    let generic = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid", "details": {}, "code": 422});
    for operations in [
        json!([{"op": "remove", "path": "/data/missing"}]),
        json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
        json!([{"op": "add", "path": "/no/such/parent", "value": 1}]),
        json!([{"op": "test", "path": "/data/k", "value": "2"}]),
    ] {
        let (status, refused) = call(
            &server,
            Method::PATCH,
            &path,
            "application/json-patch+json",
            Some(operations.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{operations}");
        assert_eq!(refused, generic, "{operations}");
    }
    let (status, refused) = call(
        &server,
        Method::PATCH,
        &path,
        "application/json-patch+json",
        Some(json!({"op": "remove", "path": "/data/k"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    for (media, body) in [
        ("application/merge-patch+json", json!({"data": {"k": "2"}})),
        (
            "application/strategic-merge-patch+json",
            json!({"data": {"k": "2"}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/data/k", "value": "2"}]),
        ),
    ] {
        for force in ["true", "false"] {
            let (status, refused) = call(
                &server,
                Method::PATCH,
                &format!("{path}?force={force}"),
                media,
                Some(body.clone()),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{media}: {refused}"
            );
            assert_eq!(
                refused["message"],
                "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
                "{media}"
            );
            assert_eq!(
                refused["details"],
                json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                    {"reason": "FieldValueForbidden", "field": "force",
                     "message": "Forbidden: may not be specified for non-apply patch"}]})
            );
        }
    }
    // Validated before the object is read: a missing object is not reached.
    let (status, _) = call(
        &server,
        Method::PATCH,
        &format!("{CONFIGMAPS}/missing?force=true"),
        "application/merge-patch+json",
        Some(json!({"data": {"k": "2"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let stored = server.get("v1", "ConfigMap", "default", "p").unwrap();
    assert_eq!(stored["data"], json!({"k": "1"}), "nothing was written");
    // Apply takes force.
    let (status, applied) = call(
        &server,
        Method::PATCH,
        &format!("{path}?fieldManager=applier&force=true"),
        "application/apply-patch+yaml",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "p", "namespace": "default"}, "data": {"k": "3"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
}
