//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): the order of what windlass sends, and its retries.
//!
//! The fake server's request log holds each request once it is answered, in the order answered,
//! without a time: where a test needs times (Retry-After), a thread of the test watches the log
//! and stamps each record when it appears.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use windlass_test_apiserver::{
    Fault, FaultAction, FaultMatch, Options, RequestRecord, TestApiServer,
};

use super::apply_kube::*;
use super::{json, payloads_of_type};

/// `resource/name`, or `resource/namespace/name` for a namespaced object.
fn target(request: &RequestRecord) -> String {
    if request.namespace.is_empty() {
        format!("{}/{}", request.resource, request.name)
    } else {
        format!(
            "{}/{}/{}",
            request.resource, request.namespace, request.name
        )
    }
}

/// The writes (POST, PUT, PATCH, DELETE that are not dry runs) of the log, in order.
fn writes(server: &TestApiServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|request| request.is_write())
        .map(target)
        .collect()
}

/// A request record and when the test's watcher first saw it in the log (a few milliseconds
/// after the server answered it).
struct Stamped {
    record: RequestRecord,
    seen: Instant,
}

/// Runs `body` while a thread stamps each request the server logs; the log must be empty (or
/// reset) before.
fn with_timeline<T>(server: &TestApiServer, body: impl FnOnce() -> T) -> (T, Vec<Stamped>) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut stamped: Vec<Stamped> = Vec::new();
            let mut last_total = u64::MAX;
            loop {
                let finished = stop.load(Ordering::SeqCst);
                let total = server.counts().total;
                if total != last_total {
                    last_total = total;
                    let now = Instant::now();
                    let records = server.requests();
                    for record in records.into_iter().skip(stamped.len()) {
                        stamped.push(Stamped { record, seen: now });
                    }
                }
                if finished {
                    return stamped;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let result = body();
        stop.store(true, Ordering::SeqCst);
        (result, watcher.join().expect("the log watcher"))
    })
}

fn annotated(phase: &str) -> String {
    format!("  annotations:\n    kots.io/creation-phase: \"{phase}\"\n")
}

fn phased_configmap(name: &str, phase: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{}data:\n  value: \"1\"\n",
        annotated(phase)
    )
}

fn deployment(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{annotations}spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: {name}\n          image: nginx:1.25\n"
    )
}

/// Against the FAKE API server `windlass-test-apiserver`: the writes of a first install come in
/// README's order. The `additionalNamespaces` namespace is created, then the pull secrets (the
/// app namespace's and its copy in `extra`) go before any release object; then CRDs, Namespaces
/// and ClusterRoles; then the StorageClass (a `*Class` kind, after them although its creation
/// phase is the lowest of all); then the rest. Inside a step `kots.io/creation-phase` ascending
/// comes before KOTS's kind order: the ClusterRole (phase -1) before the Namespace and the CRD
/// (KOTS lists both kinds before ClusterRole), the Deployment (-1) before the ConfigMaps (0, 5).
#[test]
fn writes_go_in_steps_then_creation_phase_order() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            // Manifest order is the opposite of the apply order, so none of it comes from there.
            ("late.yaml", &phased_configmap("late", "5")),
            ("settings.yaml", &phased_configmap("settings", "0")),
            ("web.yaml", &deployment("web", &annotated("-1"))),
            (
                "storageclass.yaml",
                &format!(
                    "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\n{}provisioner: example.com/fast\n",
                    annotated("-10")
                ),
            ),
            ("crd.yaml", CRD),
            (
                "namespace.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n",
            ),
            (
                "clusterrole.yaml",
                &format!(
                    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n{}rules:\n  - apiGroups: [\"\"]\n    resources: [configmaps]\n    verbs: [get]\n",
                    annotated("-1")
                ),
            ),
        ],
        "  additionalNamespaces:\n    - extra\n",
    );
    assert!(!exists(&cluster, "v1", "Namespace", "", "extra"));
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let order = writes(&cluster.server);
    assert_eq!(order.len(), 10, "{order:#?}");
    assert_eq!(order[0], "namespaces/extra", "{order:#?}");
    // The two pull secrets are one group (one kind, one phase), sent concurrently.
    assert_eq!(
        order[1..3].iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "secrets/default/my-app-registry".to_string(),
            "secrets/extra/my-app-registry".to_string(),
        ]),
        "{order:#?}"
    );
    assert_eq!(
        order[3..],
        [
            "clusterroles/reader",
            "namespaces/tools",
            "customresourcedefinitions/widgets.example.com",
            "storageclasses/fast",
            "deployments/default/web",
            "configmaps/default/settings",
            "configmaps/default/late",
        ],
        "{order:#?}"
    );
    // Every one of them a write of a missing object, recorded as created.
    let recorded = applied(&events(
        state.path(),
        install["install_id"].as_str().unwrap(),
    ));
    for key in [
        "Namespace/extra",
        "Secret/my-app-registry",
        "ClusterRole/reader",
        "Namespace/tools",
        "CustomResourceDefinition/widgets.example.com",
        "StorageClass/fast",
        "Deployment/web",
        "ConfigMap/settings",
        "ConfigMap/late",
    ] {
        assert_eq!(
            recorded.get(key).map(|object| &object["outcome"]),
            Some(&Value::from("created")),
            "{key}: {recorded:?}"
        );
    }
    assert!(exists(&cluster, "v1", "Secret", "extra", "my-app-registry"));
    assert!(exists(
        &cluster,
        "storage.k8s.io/v1",
        "StorageClass",
        "",
        "fast"
    ));
}

/// The stamped apply PATCHes (not dry runs) of one ConfigMap: (status, when seen).
fn patches_of(timeline: &[Stamped], name: &str) -> Vec<(u16, Instant)> {
    timeline
        .iter()
        .filter(|stamped| {
            stamped.record.verb == "patch"
                && !stamped.record.dry_run
                && stamped.record.resource == "configmaps"
                && stamped.record.name == name
        })
        .map(|stamped| (stamped.record.status, stamped.seen))
        .collect()
}

/// Against the FAKE API server `windlass-test-apiserver`: a 429 with `Retry-After: 1` is retried
/// no sooner than a second later (the engine's own first delay is 250 ms), and one with
/// `Retry-After: 30` after about five seconds, README's cap, not thirty. The times are the test's
/// (a thread stamping the server's log as records appear), since the log holds none.
#[test]
fn retry_after_is_waited_for_up_to_five_seconds() {
    let cluster = fake_cluster(Options::default());
    for (name, seconds) in [("throttled", 1), ("capped", 30)] {
        cluster.server.add_fault(Fault {
            matcher: FaultMatch::verb("patch")
                .resource("configmaps")
                .name(name)
                .dry_run(false),
            action: FaultAction::TooManyRequests {
                retry_after_seconds: seconds,
            },
            remaining: Some(1),
        });
    }
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("throttled.yaml", &configmap("throttled", "1")),
            ("capped.yaml", &configmap("capped", "1")),
            ("plain.yaml", &configmap("plain", "1")),
        ],
        "",
    );
    cluster.server.reset_requests();
    let started = Instant::now();
    let (output, timeline) = with_timeline(&cluster.server, || {
        install_kube(state.path(), release.path(), &cluster, &[])
    });
    let took = started.elapsed();
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install}");
    assert!(took < Duration::from_secs(20), "took {took:?}");

    let gap = |name: &str| {
        let patches = patches_of(&timeline, name);
        let statuses: Vec<u16> = patches.iter().map(|(status, _)| *status).collect();
        assert_eq!(statuses, [429, 201], "{name}: 429, then created");
        patches[1].1.duration_since(patches[0].1)
    };
    let throttled = gap("throttled");
    assert!(
        throttled >= Duration::from_millis(800),
        "Retry-After: 1, retried after {throttled:?}"
    );
    let capped = gap("capped");
    assert!(
        capped >= Duration::from_millis(4500) && capped < Duration::from_secs(10),
        "Retry-After: 30, retried after {capped:?} (README: waits up to 5 s)"
    );
    // The object nobody throttled went through with its group, at once.
    assert_eq!(
        patches_of(&timeline, "plain")
            .iter()
            .map(|(status, _)| *status)
            .collect::<Vec<_>>(),
        [201]
    );
    let recorded = applied(&events(
        state.path(),
        install["install_id"].as_str().unwrap(),
    ));
    for name in ["throttled", "capped", "plain"] {
        assert_eq!(recorded[&format!("ConfigMap/{name}")]["outcome"], "created");
        assert!(exists(&cluster, "v1", "ConfigMap", "default", name));
    }
}

/// The release of the retry tests: three ConfigMaps in three creation phases, so three groups
/// applied (and recorded) one after another, `flaky` in the middle.
fn three_phases() -> tempfile::TempDir {
    release(
        &[
            ("before.yaml", &phased_configmap("before", "0")),
            ("flaky.yaml", &phased_configmap("flaky", "1")),
            ("after.yaml", &phased_configmap("after", "2")),
        ],
        "",
    )
}

fn fail_flaky_with_503(cluster: &FakeCluster, times: Option<u32>) {
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch")
            .resource("configmaps")
            .name("flaky")
            .dry_run(false),
        action: FaultAction::ServerError(503),
        remaining: times,
    });
}

/// The statuses of the requests of `verb` on ConfigMap `name` (real writes only for writes).
fn statuses(cluster: &FakeCluster, verb: &str, name: &str) -> Vec<u16> {
    cluster
        .server
        .requests()
        .iter()
        .filter(|request| {
            request.verb == verb
                && request.resource == "configmaps"
                && request.name == name
                && !request.dry_run
        })
        .map(|request| request.status)
        .collect()
}

/// How many writes of `wanted` (`resource/namespace/name`) were sent, answered or not.
fn write_count(cluster: &FakeCluster, wanted: &str) -> usize {
    writes(&cluster.server)
        .iter()
        .filter(|written| *written == wanted)
        .count()
}

/// The `StageFailed` and `StageCompleted` of the apply stage: (type, attempt, class).
pub(crate) fn apply_stage_runs(events: &[Value]) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter(|event| {
            (event["type"] == "StageFailed" || event["type"] == "StageCompleted")
                && event["payload"]["stage"] == "apply"
        })
        .map(|event| {
            (
                event["type"].as_str().unwrap().to_string(),
                event["payload"]["attempt"].as_u64().unwrap(),
                event["payload"]["class"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Against the FAKE API server `windlass-test-apiserver`: a 503 that outlasts the engine's retry
/// budget for one request (`MAX_ATTEMPTS`, 4, in engine/src/retry.rs) fails the apply stage as
/// transient, naming the object; the runner tries the stage again (after 250 ms), which resumes:
/// what the first attempt recorded as applied (the pull secret, `before`) is read but not sent
/// again, `flaky` is sent until the fault clears, and the install completes.
#[test]
fn a_server_error_outlasting_the_retries_fails_the_stage_transient_and_it_resumes() {
    let cluster = fake_cluster(Options::default());
    // Four answers fail the first attempt's request; two more, then the server recovers.
    fail_flaky_with_503(&cluster, Some(6));
    let state = tempfile::tempdir().unwrap();
    let release = three_phases();
    cluster.server.reset_requests();
    let install = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let all = events(state.path(), install_id);

    assert_eq!(
        apply_stage_runs(&all),
        [
            ("StageFailed".to_string(), 1, "transient".to_string()),
            ("StageCompleted".to_string(), 2, String::new()),
        ],
        "the stage failed once, transient, and its second attempt completed"
    );
    let failed = &payloads_of_type(&all, "StageFailed")[0];
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("ConfigMap default/flaky") && message.contains("503"),
        "{message}"
    );
    assert_eq!(failed["retry_in_ms"], 250, "{failed}");

    // Four 503s (the request's budget), then the resumed attempt's two and its success.
    assert_eq!(
        statuses(&cluster, "patch", "flaky"),
        [503, 503, 503, 503, 503, 503, 201]
    );
    // Recorded as applied by the first attempt, not sent again by the second (which read them,
    // to check they are still there).
    for already in [
        "secrets/default/my-app-registry",
        "configmaps/default/before",
    ] {
        assert_eq!(write_count(&cluster, already), 1, "{already}");
    }
    let log = cluster.server.requests();
    let fourth_failure = log
        .iter()
        .enumerate()
        .filter(|(_, request)| request.name == "flaky" && request.status == 503)
        .nth(3)
        .map(|(index, _)| index)
        .unwrap();
    assert!(
        log[fourth_failure..]
            .iter()
            .any(|request| request.name == "before" && request.verb == "get"),
        "the resumed attempt reads before"
    );
    // Every write, answered or not: `after` only once `flaky` went through.
    let mut expected = vec![
        "secrets/default/my-app-registry".to_string(),
        "configmaps/default/before".to_string(),
    ];
    expected.extend(std::iter::repeat_n(
        "configmaps/default/flaky".to_string(),
        7,
    ));
    expected.push("configmaps/default/after".to_string());
    assert_eq!(writes(&cluster.server), expected);
    // Each object recorded once: the second attempt did not record again what it skipped.
    let batches = payloads_of_type(&all, "ObjectsApplied");
    let recorded_names: Vec<String> = batches
        .iter()
        .flat_map(|batch| batch["objects"].as_array().unwrap().clone())
        .map(|object| object["key"]["name"].as_str().unwrap().to_string())
        .collect();
    for name in ["my-app-registry", "before", "flaky", "after"] {
        assert_eq!(
            recorded_names.iter().filter(|n| *n == name).count(),
            1,
            "{name}: {recorded_names:?}"
        );
    }
    for name in ["before", "flaky", "after"] {
        assert!(exists(&cluster, "v1", "ConfigMap", "default", name));
    }
}

/// Against the FAKE API server `windlass-test-apiserver`: a 503 that outlasts the stage's
/// attempts too (4 × 4 requests) fails the install with exit code 1 (README's exit codes: "whose
/// retries of 429/5xx ran out"), naming the object; the same command once the server recovers
/// resumes that install, and sends neither what was applied before the failure nor `flaky` more
/// than once more.
#[test]
fn a_server_error_outlasting_every_attempt_fails_the_install_and_the_rerun_resumes_it() {
    let cluster = fake_cluster(Options::default());
    fail_flaky_with_503(&cluster, None);
    let state = tempfile::tempdir().unwrap();
    let release = three_phases();
    cluster.server.reset_requests();
    let started = Instant::now();
    let failed = failed_json(&install_kube(state.path(), release.path(), &cluster, &[]));
    assert!(started.elapsed() < Duration::from_secs(25));
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("ConfigMap default/flaky") && message.contains("503"),
        "{message}"
    );
    let failed_id = failed["install_id"].as_str().unwrap();
    let runs = apply_stage_runs(&events(state.path(), failed_id));
    assert_eq!(
        runs,
        (1..=4)
            .map(|attempt| ("StageFailed".to_string(), attempt, "transient".to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(statuses(&cluster, "patch", "flaky"), [503; 16]);
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "after"));

    cluster.server.clear_faults();
    let resumed = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(resumed["status"], "completed", "{resumed}");
    assert_eq!(resumed["install_id"], failed["install_id"], "{resumed}");
    for already in [
        "secrets/default/my-app-registry",
        "configmaps/default/before",
    ] {
        assert_eq!(write_count(&cluster, already), 1, "{already}");
    }
    // `flaky`: sixteen refused, then one sent by the resumed run.
    assert_eq!(statuses(&cluster, "patch", "flaky"), {
        let mut expected = vec![503; 16];
        expected.push(201);
        expected
    });
    assert_eq!(write_count(&cluster, "configmaps/default/after"), 1);
    let last = apply_stage_runs(&events(state.path(), failed_id));
    assert_eq!(
        last.last().map(|(kind, _, _)| kind.as_str()),
        Some("StageCompleted"),
        "{last:?}"
    );
}

/// Against the FAKE API server `windlass-test-apiserver` (no controllers: a thread of the test
/// makes the Deployment ready with `make_ready` a moment after it is created): a second release
/// drops `goner` and adds a `kots.io/wait-for-ready` Deployment; `goner` is deleted only after the
/// Deployment was applied and its readiness reads (GETs) saw it ready.
#[test]
fn prune_comes_after_the_apply_and_the_waits() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[
            ("stays.yaml", &configmap("stays", "1")),
            ("goner.yaml", &configmap("goner", "1")),
        ],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    rewrite(
        release.path(),
        &[
            ("stays.yaml", &configmap("stays", "1")),
            (
                "web.yaml",
                &deployment(
                    "web",
                    "  annotations:\n    kots.io/wait-for-ready: \"true\"\n",
                ),
            ),
        ],
    );
    cluster.server.reset_requests();
    let second = install_making_web_ready(
        state.path(),
        release.path(),
        &cluster,
        &["--wait-timeout", "20"],
        Duration::from_millis(500),
    );
    let second = json(second);
    assert_eq!(second["status"], "completed", "{second}");
    let second_id = second["install_id"].as_str().unwrap();

    let log = cluster.server.requests();
    let position = |what: &str, wanted: &dyn Fn(&RequestRecord) -> bool| {
        log.iter().rposition(wanted).unwrap_or_else(|| {
            panic!(
                "no {what} in {:#?}",
                log.iter().map(target).collect::<Vec<_>>()
            )
        })
    };
    let is_web = |request: &RequestRecord| {
        request.resource == "deployments" && request.name == "web" && request.subresource.is_empty()
    };
    let apply_of_web = position("apply of web", &|request| {
        is_web(request) && request.is_write()
    });
    let reads_of_web: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(index, request)| {
            *index > apply_of_web && is_web(request) && request.verb == "get"
        })
        .map(|(index, _)| index)
        .collect();
    // Not ready at first (the helper waits half a second): more than one read.
    assert!(reads_of_web.len() >= 2, "readiness reads: {reads_of_web:?}");
    let last_read = *reads_of_web.last().unwrap();
    let delete_of_goner = position("delete of goner", &|request| {
        request.verb == "delete" && request.name == "goner" && request.is_write()
    });
    assert!(
        delete_of_goner > last_read && last_read > apply_of_web,
        "apply of web at {apply_of_web}, its last readiness read at {last_read}, the delete of \
         goner at {delete_of_goner}: {:#?}",
        log.iter().map(target).collect::<Vec<_>>()
    );
    // Nothing of the release was written after the delete.
    assert!(
        log[delete_of_goner + 1..]
            .iter()
            .all(|request| !request.is_write()),
        "{:#?}",
        log.iter().map(target).collect::<Vec<_>>()
    );

    let all = events(state.path(), second_id);
    let wait = payloads_of_type(&all, "WaitFinished")
        .into_iter()
        .find(|wait| wait["wait"] == "ready" && wait["key"]["name"] == "web")
        .expect("the Deployment's readiness wait");
    assert_eq!(wait["outcome"], "met", "{wait}");
    assert!(wait["elapsed_ms"].as_u64().unwrap() >= 300, "{wait}");
    // In the log too, the prune's record follows the wait's.
    let position_of = |event_type: &str| {
        all.iter()
            .position(|event| event["type"] == event_type)
            .unwrap_or_else(|| panic!("no {event_type}"))
    };
    assert!(position_of("WaitFinished") < position_of("ObjectPruned"));
    assert_eq!(
        prune_outcomes(state.path(), second_id)
            .get("goner")
            .map(String::as_str),
        Some("deleted")
    );
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "goner"));
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "stays"));
}
