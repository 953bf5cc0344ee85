//! The API conventions at the HTTP level: Status errors, preconditions, stale updates,
//! generateName, patches, generation, status, watch (including 410 Expired), paging, fault
//! injection and request counts. The server is a fake Kubernetes API server because no real
//! one can run here; these tests pin the behaviour the Kubernetes "API Concepts" page
//! documents, which kube-rs and kubectl rely on.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use windlass_test_apiserver::{Fault, FaultAction, FaultMatch, Options, TestApiServer};

pub(crate) fn server() -> TestApiServer {
    TestApiServer::start(Options::default()).expect("the test API server starts")
}

/// Sends `body` (when given) with `content_type`; the status, the headers and the parsed answer.
pub(crate) async fn call(
    server: &TestApiServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let client = Client::new();
    let mut request = client
        .request(method, format!("{}{path}", server.url()))
        .header("User-Agent", "http-test/1.0");
    if let Some(body) = body {
        request = request
            .header("Content-Type", content_type)
            .body(body.to_string());
    }
    let response = tokio::time::timeout(Duration::from_secs(10), request.send())
        .await
        .expect("answered in time")
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// Fake API server (no real one can run here): a POST with `generateName` gets a generated
/// name; a POST of an existing name is 409 AlreadyExists as a Status.
#[tokio::test]
async fn create_generates_names_and_refuses_duplicates() {
    let server = server();
    let (status, _, created) = call(
        &server,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        Some(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cfg-"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let name = created["metadata"]["name"].as_str().expect("a name");
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|uid| uid.len() == 36)
    );
    let (status, _, error) = call(
        &server,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["kind"], "Status");
    assert_eq!(error["reason"], "AlreadyExists");
    assert_eq!(
        error["message"],
        format!("configmaps {name:?} already exists")
    );
    assert_eq!(
        error["details"],
        json!({"name": name, "kind": "configmaps"})
    );
}

/// Fake API server (no real one can run here): a PUT with a stale resourceVersion is 409;
/// DELETE preconditions on uid and resourceVersion are checked.
#[tokio::test]
async fn stale_updates_and_failed_preconditions_conflict() {
    let server = server();
    let (_, _, created) = call(&server, Method::POST, CONFIGMAPS, "application/json",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}}))).await;
    let stale = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_owned();
    let mut updated = created.clone();
    updated["data"]["k"] = json!("2");
    let (status, _, fresh) = call(
        &server,
        Method::PUT,
        &format!("{CONFIGMAPS}/a"),
        "application/json",
        Some(updated.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(
        fresh["metadata"]["resourceVersion"].as_str(),
        Some(stale.as_str())
    );
    let (status, _, error) = call(
        &server,
        Method::PUT,
        &format!("{CONFIGMAPS}/a"),
        "application/json",
        Some(updated),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        error["message"],
        r#"Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again"#
    );
    let (status, _, error) = call(&server, Method::DELETE, &format!("{CONFIGMAPS}/a"), "application/json",
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-the-uid"}}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("Precondition failed: UID in precondition: not-the-uid")),
        "{error}"
    );
    let (status, _, _) = call(&server, Method::DELETE, &format!("{CONFIGMAPS}/a"), "application/json",
        Some(json!({"preconditions": {"uid": fresh["metadata"]["uid"], "resourceVersion": fresh["metadata"]["resourceVersion"]}}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, error) = call(&server, Method::GET, &format!("{CONFIGMAPS}/a"), "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["reason"], "NotFound");
}

/// Fake API server (no real one can run here): generation moves on spec changes only, not on
/// labels or status; an apply that creates answers 201, one that updates 200; an identical
/// apply keeps the resourceVersion; apply needs a field manager; a JSON patch `test` that
/// fails is refused.
#[tokio::test]
async fn generation_no_op_applies_and_patch_types() {
    let server = server();
    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}});
    let (status, _, error) = call(
        &server,
        Method::PATCH,
        path,
        "application/apply-patch+yaml",
        Some(deployment.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let apply = format!("{path}?fieldManager=tester");
    let (status, _, first) = call(
        &server,
        Method::PATCH,
        &apply,
        "application/apply-patch+yaml",
        Some(deployment.clone()),
    )
    .await;
    // An apply that creates answers 201 Created, one that updates (even a no-op) 200.
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["metadata"]["generation"], 1);
    let (status, _, again) = call(
        &server,
        Method::PATCH,
        &apply,
        "application/apply-patch+yaml",
        Some(deployment.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
        "no-op apply"
    );
    let (_, _, labelled) = call(
        &server,
        Method::PATCH,
        path,
        "application/merge-patch+json",
        Some(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await;
    assert_eq!(labelled["metadata"]["generation"], 1);
    server
        .make_ready("apps/v1", "Deployment", "default", "web")
        .expect("status written");
    let (_, _, ready) = call(&server, Method::GET, path, "", None).await;
    assert_eq!(ready["metadata"]["generation"], 1);
    assert_eq!(ready["status"]["readyReplicas"], 1);
    let (_, _, strategic) = call(&server, Method::PATCH, path, "application/strategic-merge-patch+json",
        Some(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}))).await;
    assert_eq!(strategic["metadata"]["generation"], 2);
    assert_eq!(
        strategic["spec"]["template"]["spec"]["containers"][0]["image"],
        "app:2"
    );
    let (status, _, error) = call(&server, Method::PATCH, path, "application/json-patch+json",
        Some(json!([{"op": "test", "path": "/spec/replicas", "value": 7}, {"op": "replace", "path": "/spec/replicas", "value": 3}]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let (status, _, patched) = call(&server, Method::PATCH, path, "application/json-patch+json",
        Some(json!([{"op": "test", "path": "/spec/replicas", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 3}]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["spec"]["replicas"], 3);
    assert_eq!(patched["metadata"]["generation"], 3);
    let managers: Vec<&str> = patched["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|entry| entry["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"tester")
            && managers.contains(&"http-test")
            && managers.contains(&"test-controller"),
        "{managers:?}"
    );
}

/// Reads `count` events, skipping periodic bookmarks unless `keep_bookmarks`.
async fn read_events(
    response: &mut reqwest::Response,
    count: usize,
    keep_bookmarks: bool,
) -> Vec<Value> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a watch event in time")
            .expect("watch stream readable")
            .expect("watch stream still open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_str(line.trim()).expect("an event is JSON");
            if keep_bookmarks || event["type"] != "BOOKMARK" {
                events.push(event);
            }
        }
    }
    events
}

/// Fake API server (no real one can run here): a watch lists current objects as ADDED, then
/// streams changes; resuming from a resourceVersion replays what followed it; a
/// resourceVersion older than the kept history gets an ERROR event with 410 Expired.
#[tokio::test]
async fn watch_streams_changes_and_expires_old_versions() {
    // No periodic bookmark within the test: the last watch counts its first events.
    let server = TestApiServer::start(Options {
        bookmark_interval: Duration::from_secs(600),
        ..Options::default()
    })
    .expect("the test API server starts");
    server.create_as("seed", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one", "namespace": "default"}})).expect("created");
    let client = Client::new();
    let mut response = client
        .get(format!(
            "{}{CONFIGMAPS}?watch=true&allowWatchBookmarks=true",
            server.url()
        ))
        .send()
        .await
        .expect("watch opened");
    let added = read_events(&mut response, 1, false).await;
    assert_eq!(added[0]["type"], "ADDED");
    assert_eq!(added[0]["object"]["metadata"]["name"], "one");
    let since = server.resource_version();
    server
        .merge_patch_as(
            "editor",
            "v1",
            "ConfigMap",
            "default",
            "one",
            json!({"data": {"a": "b"}}),
        )
        .expect("patched");
    server
        .delete("v1", "ConfigMap", "default", "one")
        .expect("deleted");
    let events = read_events(&mut response, 2, false).await;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    assert_eq!(kinds, ["MODIFIED", "DELETED"]);
    drop(response);
    let mut replay = client
        .get(format!(
            "{}{CONFIGMAPS}?watch=1&resourceVersion={since}",
            server.url()
        ))
        .send()
        .await
        .expect("watch opened");
    let replayed = read_events(&mut replay, 2, false).await;
    assert_eq!(replayed[0]["type"], "MODIFIED");
    assert_eq!(replayed[1]["type"], "DELETED");
    drop(replay);
    server.compact_history();
    let mut expired = client
        .get(format!(
            "{}{CONFIGMAPS}?watch=1&resourceVersion={since}",
            server.url()
        ))
        .send()
        .await
        .expect("watch opened");
    let error = read_events(&mut expired, 1, true).await;
    assert_eq!(error[0]["type"], "ERROR");
    assert_eq!(error[0]["object"]["code"], 410);
    assert_eq!(error[0]["object"]["reason"], "Expired");
    drop(expired);
    let mut streaming = client
        .get(format!("{}{CONFIGMAPS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", server.url()))
        .send().await.expect("watch opened");
    server.create_as("seed", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two", "namespace": "default"}})).expect("created");
    let initial = read_events(&mut streaming, 2, true).await;
    assert_eq!(
        initial[0]["type"], "BOOKMARK",
        "no objects, so the initial events end at once"
    );
    assert_eq!(
        initial[0]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(initial[1]["type"], "ADDED");
    assert_eq!(initial[1]["object"]["metadata"]["name"], "two");
}

/// Fake API server (no real one can run here): a client that asks in `Accept` for
/// `PartialObjectMetadataList` (as controllers and `windlass apply` do) gets each object's
/// metadata only, paged like a full LIST; `PartialObjectMetadata` does the same for a GET; a
/// client that lists plain JSON first gets whole objects.
#[tokio::test]
async fn metadata_only_lists_and_gets() {
    let server = server();
    for name in ["a", "b", "c"] {
        let (status, _, _) = call(
            &server,
            Method::POST,
            CONFIGMAPS,
            "application/json",
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "labels": {"tier": name}},
                        "data": {"key": "value"}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let get = |path: String, accept: &'static str| {
        let url = format!("{}{path}", server.url());
        async move {
            let response = Client::new()
                .get(url)
                .header("Accept", accept)
                .send()
                .await
                .expect("request sent");
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.expect("JSON")
        }
    };
    const LIST: &str =
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let page = get(format!("{CONFIGMAPS}?limit=2"), LIST).await;
    assert_eq!(page["kind"], "PartialObjectMetadataList");
    assert_eq!(page["apiVersion"], "meta.k8s.io/v1");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["kind"], "PartialObjectMetadata");
        assert_eq!(item["apiVersion"], "meta.k8s.io/v1");
        assert!(item.get("data").is_none(), "{item}");
        assert!(item["metadata"]["uid"].is_string(), "{item}");
        assert!(item["metadata"]["resourceVersion"].is_string(), "{item}");
        assert_eq!(
            item["metadata"]["labels"]["tier"], item["metadata"]["name"],
            "{item}"
        );
        assert_eq!(item["metadata"]["managedFields"][0]["operation"], "Update");
    }
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let rest = get(format!("{CONFIGMAPS}?limit=2&continue={token}"), LIST).await;
    assert_eq!(rest["kind"], "PartialObjectMetadataList");
    assert_eq!(rest["items"][0]["metadata"]["name"], "c");
    let one = get(
        format!("{CONFIGMAPS}/b"),
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(one["kind"], "PartialObjectMetadata");
    assert_eq!(one["metadata"]["name"], "b");
    assert!(one.get("data").is_none(), "{one}");
    let whole = get(
        format!("{CONFIGMAPS}?labelSelector=tier%3Da"),
        "application/json, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(whole["kind"], "ConfigMapList");
    assert_eq!(whole["items"][0]["data"]["key"], "value");
    assert_eq!(whole["items"].as_array().map(Vec::len), Some(1));
}

/// Fake API server (no real one can run here): a LIST across namespaces, one object a page,
/// serves every object once, in the store's (namespace, name) order, though namespace `app-2`
/// sorts before `app/...` as text.
#[tokio::test]
async fn a_paged_list_across_namespaces_serves_every_object_once() {
    let server = server();
    let expected = [("app", "s-app"), ("app-2", "s-app-2"), ("b", "s-b")];
    for (namespace, name) in expected {
        let (status, _, _) = call(
            &server,
            Method::POST,
            "/api/v1/namespaces",
            "application/json",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _, _) = call(
            &server,
            Method::POST,
            &format!("/api/v1/namespaces/{namespace}/secrets"),
            "application/json",
            Some(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut served = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let (status, _, page) = call(
            &server,
            Method::GET,
            &format!("/api/v1/secrets?limit=1&continue={token}"),
            "",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().expect("items") {
            served.push((
                item["metadata"]["namespace"].as_str().unwrap().to_string(),
                item["metadata"]["name"].as_str().unwrap().to_string(),
            ));
        }
        match page["metadata"]["continue"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_string(),
            _ => break,
        }
    }
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(namespace, name)| (namespace.to_string(), name.to_string()))
        .collect();
    assert_eq!(served, expected);
}

/// Fake API server (no real one can run here): `dryRun` knows only `All`; any other value is
/// refused 422 (a real server neither writes nor dry-runs it), and a DELETE with a body reads
/// its options from the body alone, so a `?dryRun=All` beside a body without one deletes.
#[tokio::test]
async fn dry_run_values_and_where_a_delete_reads_its_options() {
    let server = server();
    let configmap =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    let (status, _, refused) = call(
        &server,
        Method::POST,
        &format!("{CONFIGMAPS}?dryRun=true"),
        "application/json",
        Some(configmap("c1")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["reason"], "Invalid", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value"),
        "{refused}"
    );
    let (status, _, _) = call(&server, Method::GET, &format!("{CONFIGMAPS}/c1"), "", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused dry run stores nothing"
    );

    let (status, _, _) = call(
        &server,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        Some(configmap("c1")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, refused) = call(
        &server,
        Method::DELETE,
        &format!("{CONFIGMAPS}/c1"),
        "application/json",
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["true"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, _, _) = call(&server, Method::GET, &format!("{CONFIGMAPS}/c1"), "", None).await;
    assert_eq!(status, StatusCode::OK, "a refused delete deletes nothing");

    let (status, _, deleted) = call(
        &server,
        Method::DELETE,
        &format!("{CONFIGMAPS}/c1?dryRun=All"),
        "application/json",
        Some(
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, _, _) = call(&server, Method::GET, &format!("{CONFIGMAPS}/c1"), "", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the body's options, not the query's, were read"
    );
}

/// Fake API server (no real one can run here): injected faults answer 429 with Retry-After,
/// 5xx, and webhook-style refusals of DELETE, for as many requests as asked; the request
/// counts tell writes from reads and dry runs.
#[tokio::test]
async fn faults_and_request_counts() {
    let server = server();
    server.add_fault(Fault {
        matcher: FaultMatch::verb("create").resource("configmaps"),
        action: FaultAction::TooManyRequests {
            retry_after_seconds: 2,
        },
        remaining: Some(1),
    });
    server.add_fault(Fault {
        matcher: FaultMatch::verb("get").name("flaky"),
        action: FaultAction::ServerError(503),
        remaining: Some(1),
    });
    server.add_fault(Fault {
        matcher: FaultMatch::verb("delete").name("protected"),
        action: FaultAction::Refuse("protected objects stay".to_owned()),
        remaining: None,
    });
    let body = |name: &str| {
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}))
    };
    let (status, headers, error) = call(
        &server,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        body("flaky"),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_eq!(error["reason"], "TooManyRequests");
    assert_eq!(
        call(
            &server,
            Method::POST,
            CONFIGMAPS,
            "application/json",
            body("flaky")
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            &format!("{CONFIGMAPS}/flaky"),
            "",
            None
        )
        .await
        .0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            &format!("{CONFIGMAPS}/flaky"),
            "",
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    call(
        &server,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        body("protected"),
    )
    .await;
    for _ in 0..2 {
        let (status, _, error) = call(
            &server,
            Method::DELETE,
            &format!("{CONFIGMAPS}/protected"),
            "",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("denied the request: protected objects stay")),
            "{error}"
        );
    }
    assert!(
        server
            .get("v1", "ConfigMap", "default", "protected")
            .is_some()
    );
    call(
        &server,
        Method::POST,
        &format!("{CONFIGMAPS}?dryRun=All"),
        "application/json",
        body("dry"),
    )
    .await;
    let counts = server.counts();
    assert_eq!(counts.verb("create"), 4);
    assert_eq!(counts.verb("get"), 2);
    assert_eq!(counts.verb("delete"), 2);
    assert_eq!(
        counts.writes, 5,
        "creates and deletes that were not dry runs, refused or not"
    );
    assert_eq!(counts.dry_runs, 1);
    assert!(server.get("v1", "ConfigMap", "default", "dry").is_none());
}

/// Fake API server (no real one can run here): aggregated discovery answers with its own
/// content type when asked for, the legacy lists otherwise; a CRD's group appears once it is
/// Established.
#[tokio::test]
async fn discovery_aggregated_and_legacy() {
    let server = server();
    let client = Client::new();
    let aggregated = client
        .get(format!("{}/apis", server.url()))
        .header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .send()
        .await
        .expect("discovery answered");
    assert_eq!(
        aggregated
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let body: Value = aggregated.json().await.expect("JSON");
    let apps = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|group| group["metadata"]["name"] == "apps")
        .expect("apps group");
    let deployments = apps["versions"][0]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["resource"] == "deployments")
        .expect("deployments");
    assert_eq!(deployments["scope"], "Namespaced");
    assert_eq!(deployments["subresources"][0]["subresource"], "status");
    let (_, _, legacy) = call(&server, Method::GET, "/apis", "", None).await;
    assert_eq!(legacy["kind"], "APIGroupList");
    let (status, _, _) = call(&server, Method::GET, "/apis/windlass.test/v1", "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.create_as("tester", json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.windlass.test"},
        "spec": {"group": "windlass.test", "scope": "Cluster", "names": {"plural": "gadgets", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": true, "storage": true}]}})).expect("CRD created");
    let (status, _, list) = call(&server, Method::GET, "/apis/windlass.test/v1", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["resources"][0]["name"], "gadgets");
    assert_eq!(list["resources"][0]["namespaced"], false);
}

/// Fake API server (no real one can run here): a list, watch or deletecollection honours only
/// the field labels the real server supports for the kind, refusing any other with a 400
/// BadRequest worded as the kind's field label conversion words it (`"data.k1" is not a known
/// field selector: only "metadata.name", "metadata.namespace"` for a kind with none of its
/// own, `field label not supported: spec.containers` for a Pod, a custom resource's
/// `selectableFields` honoured), and a label selector that does not parse is a 400 with the
/// real parser's message (`found '=', expected: ',' or 'end of string'` for `a=b=c`), not an
/// empty list.
#[tokio::test]
async fn selectors_are_limited_to_what_the_real_server_parses_and_supports() {
    let server = server();
    for (name, node) in [("a", "n1"), ("b", "n2")] {
        let (status, _, _) = call(
            &server,
            Method::POST,
            "/api/v1/namespaces/default/pods",
            "application/json",
            Some(json!({"metadata": {"name": name, "labels": {"app": "web"}},
                        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    call(
        &server,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        Some(json!({"metadata": {"name": "c"}, "data": {"k1": "v"}})),
    )
    .await;
    let list = |path: String| {
        let server = &server;
        async move {
            let (status, _, answer) = call(server, Method::GET, &path, "", None).await;
            (status, answer)
        }
    };
    let names = |answer: &Value| -> Vec<String> {
        answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, pods) =
        list("/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3Dn2".into()).await;
    assert_eq!(status, StatusCode::OK, "{pods}");
    assert_eq!(names(&pods), ["b"]);
    let (status, refused) =
        list("/api/v1/namespaces/default/pods?fieldSelector=spec.containers%3Dx".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["reason"], "BadRequest");
    assert_eq!(
        refused["message"],
        "field label not supported: spec.containers"
    );
    let (status, refused) = list(format!("{CONFIGMAPS}?fieldSelector=data.k1%3Dv")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused["message"],
        "\"data.k1\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    let (status, refused) =
        list(format!("{CONFIGMAPS}?watch=true&fieldSelector=data.k1%3Dv")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, refused, _) = call(
        &server,
        Method::DELETE,
        &format!("{CONFIGMAPS}?fieldSelector=data.k1%3Dv"),
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused:?}");
    assert!(server.get("v1", "ConfigMap", "default", "c").is_some());
    let (status, kept) = list(format!("{CONFIGMAPS}?fieldSelector=metadata.name%3Dc")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&kept), ["c"]);
    let (status, refused) = list(format!("{CONFIGMAPS}?labelSelector=a%3Db%3Dc")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused["message"],
        "found '=', expected: ',' or 'end of string'"
    );
    let (status, refused) =
        list("/api/v1/namespaces/default/pods?labelSelector=app%20in%20web".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused["message"],
        "unable to parse requirement: found 'web' expected: '('"
    );
    // A custom resource: metadata.name and namespace, and its version's selectableFields.
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                     "selectableFields": [{"jsonPath": ".spec.color"}],
                     "schema": {"openAPIV3Schema": {"type": "object",
                         "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let (status, _, _) = call(
        &server,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        Some(crd),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let mut served = false;
    for _ in 0..100 {
        let (status, _) = list(widgets.to_owned()).await;
        if status == StatusCode::OK {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the CRD is established");
    for (name, color) in [("red", "red"), ("blue", "blue")] {
        let (status, _, created) = call(
            &server,
            Method::POST,
            widgets,
            "application/json",
            Some(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                        "metadata": {"name": name}, "spec": {"color": color, "size": 1}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    let (status, red) = list(format!("{widgets}?fieldSelector=spec.color%3Dred")).await;
    assert_eq!(status, StatusCode::OK, "{red}");
    assert_eq!(names(&red), ["red"]);
    let (status, refused) = list(format!("{widgets}?fieldSelector=spec.size%3D1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["message"], "field label not supported: spec.size");
}
