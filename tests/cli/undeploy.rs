//! `windlass undeploy INSTALL_ID --target kube`, end to end: the real `windlass` binary against
//! `windlass-test-apiserver`, a FAKE Kubernetes API server (no real one can be installed on
//! these machines), and the real helm 4 for the charts. What the newest apply of the app left is
//! deleted, as a prune of everything would delete it; Namespaces, `kots.io/keep` objects and
//! refused deletes stay and are listed; a dry run deletes nothing; the charts windlass
//! installed are uninstalled, higher weight first, before anything else is deleted; the undeploy
//! waits until what it deleted is gone; a killed or failed undeploy resumes without deleting
//! again what it recorded (but what an apply since made again); an app never applied there is
//! refused.

use std::collections::BTreeMap;

use serde_json::{Value, json as json_value};
use windlass_test_apiserver::{Fault, FaultAction, FaultMatch, Options};

use super::apply_kube::{
    FakeCluster, apply_kube, configmap, events, exists, fake_cluster, install_kube, output_within,
    release, release_of,
};
use super::*;

/// `windlass undeploy INSTALL_ID --json --target kube --kubeconfig <the fake's> EXTRA...`.
fn undeploy(state: &Path, install_id: &str, kubeconfig: &Path, extra: &[&str]) -> Output {
    output_within(
        windlass(state)
            .args(["undeploy", install_id, "--json", "--target", "kube"])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(extra),
    )
}

/// Each `ObjectPruned` of `install`, by `Kind/namespace/name`: its outcome, and why kept.
fn prune_decisions(state: &Path, install: &Value) -> BTreeMap<String, (String, Value)> {
    payloads_of_type(
        &events(state, install["install_id"].as_str().unwrap()),
        "ObjectPruned",
    )
    .into_iter()
    .map(|pruned| {
        let key = &pruned["key"];
        (
            format!(
                "{}/{}/{}",
                key["kind"].as_str().unwrap(),
                key["namespace"].as_str().unwrap_or(""),
                key["name"].as_str().unwrap()
            ),
            (
                pruned["outcome"].as_str().unwrap().to_string(),
                pruned["kept_because"].clone(),
            ),
        )
    })
    .collect()
}

/// The `ApplyCompleted` of `install`.
fn completed(state: &Path, install: &Value) -> Value {
    payloads_of_type(
        &events(state, install["install_id"].as_str().unwrap()),
        "ApplyCompleted",
    )
    .pop()
    .expect("an ApplyCompleted")
}

/// Two string fields of each of `records`, as pairs.
fn field_pairs<'a>(records: &'a [Value], first: &str, second: &str) -> Vec<(&'a str, &'a str)> {
    records
        .iter()
        .map(|record| {
            (
                record[first].as_str().unwrap(),
                record[second].as_str().unwrap(),
            )
        })
        .collect()
}

/// The names an `ApplyCompleted` lists in its inventory.
fn inventory_names(completed: &Value) -> Vec<String> {
    completed["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["key"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// The release: ConfigMaps `a` and `b`, `kept` annotated `kots.io/keep`, a Namespace `tools` of
/// its own with ConfigMap `c` in it, and `additionalNamespaces: [extra]`.
fn app_release() -> tempfile::TempDir {
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  annotations:\n    kots.io/keep: \"true\"\ndata:\n  value: k\n";
    let tools = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n";
    let in_tools = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: tools\ndata:\n  value: \"1\"\n";
    release(
        &[
            ("a.yaml", &configmap("a", "1")),
            ("b.yaml", &configmap("b", "1")),
            ("kept.yaml", kept),
            ("tools.yaml", tools),
            ("c.yaml", in_tools),
        ],
        "  additionalNamespaces:\n    - extra\n",
    )
}

/// The deletes the server was asked for that were not dry runs, by object name.
fn real_deletes(cluster: &FakeCluster) -> Vec<String> {
    cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "delete" && !request.dry_run)
        .map(|request| request.name)
        .collect()
}

#[test]
fn undeploy_deletes_what_the_app_applied_and_leaves_namespaces_kept_objects_and_refusals() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = app_release();
    let installed = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(installed["status"], "completed", "{installed}");
    let install_id = installed["install_id"].as_str().unwrap();
    for (namespace, name) in [("default", "my-app-registry"), ("extra", "my-app-registry")] {
        assert!(exists(&cluster, "v1", "Secret", namespace, name));
    }
    // Someone else's object in the release's namespace `tools`, and a delete a webhook refuses.
    cluster
        .server
        .apply_as(
            "someone-else",
            json_value!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "theirs", "namespace": "tools"}, "data": {"value": "x"}}),
            true,
        )
        .unwrap();
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("delete").name("b"),
        action: FaultAction::Refuse("admission webhook \"guard\" denied the request".into()),
        remaining: None,
    });

    // A dry run: every decision reported, nothing deleted.
    let dry = undeploy(
        state.path(),
        install_id,
        &cluster.kubeconfig,
        &["--dry-run"],
    );
    let dry = json(dry);
    assert_eq!(dry["status"], "completed", "{dry:#}");
    let decisions = prune_decisions(state.path(), &dry);
    assert_eq!(
        decisions["ConfigMap/default/a"].0, "deleted",
        "{decisions:#?}"
    );
    assert!(
        real_deletes(&cluster).is_empty(),
        "a dry run deletes nothing"
    );
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "a"));
    assert!(
        !completed(state.path(), &dry)["undeployed"]
            .as_bool()
            .unwrap_or(false)
    );

    cluster.server.reset_requests();
    let undeployed = json(undeploy(state.path(), install_id, &cluster.kubeconfig, &[]));
    assert_eq!(undeployed["status"], "completed", "{undeployed:#}");
    // Every object is core `v1`: discovery is asked once, though 16 objects go at a time.
    let discovery: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "discovery")
        .map(|request| request.uri)
        .collect();
    assert_eq!(discovery, ["/api/v1"], "{discovery:?}");
    for (kind, namespace, name) in [
        ("ConfigMap", "default", "a"),
        ("ConfigMap", "tools", "c"),
        ("Secret", "default", "my-app-registry"),
        ("Secret", "extra", "my-app-registry"),
    ] {
        assert!(
            !exists(&cluster, "v1", kind, namespace, name),
            "{kind} {namespace}/{name} deleted"
        );
    }
    for (kind, namespace, name) in [
        ("ConfigMap", "default", "kept"),
        ("ConfigMap", "default", "b"),
        ("Namespace", "", "tools"),
        ("ConfigMap", "tools", "theirs"),
        ("Namespace", "", "extra"),
    ] {
        assert!(
            exists(&cluster, "v1", kind, namespace, name),
            "{kind} {namespace}/{name} stays"
        );
    }
    let decisions = prune_decisions(state.path(), &undeployed);
    let decision = |key: &str| {
        decisions
            .get(key)
            .unwrap_or_else(|| panic!("no decision about {key}: {decisions:#?}"))
            .clone()
    };
    assert_eq!(
        decision("Namespace//tools"),
        ("kept".into(), json_value!("namespace_on_undeploy"))
    );
    assert_eq!(
        decision("Namespace//extra"),
        ("kept".into(), json_value!("additional_namespace"))
    );
    assert_eq!(
        decision("ConfigMap/default/kept"),
        ("kept".into(), json_value!("keep_annotation"))
    );
    assert_eq!(decision("ConfigMap/default/b").0, "refused");
    let record = completed(state.path(), &undeployed);
    assert_eq!(record["undeployed"], true, "{record:#}");
    assert_eq!(record["counts"]["created"], 0);
    let mut left = inventory_names(&record);
    left.sort();
    // The Namespace left is forgotten: no later apply deletes it on the strength of this record.
    assert_eq!(left, ["b", "extra", "kept"], "{record:#}");
    let summary = undeployed["stages"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("undeployed from") && summary.contains("1 deletes refused"),
        "{summary}"
    );

    // Once the webhook lets it go, undeploying again deletes the refused one, and only it.
    cluster.server.clear_faults();
    let again = json(undeploy(state.path(), install_id, &cluster.kubeconfig, &[]));
    assert_eq!(again["status"], "completed", "{again:#}");
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "b"));
    let decisions = prune_decisions(state.path(), &again);
    assert_eq!(
        decisions["ConfigMap/default/b"].0, "deleted",
        "{decisions:#?}"
    );
    assert!(
        !decisions.contains_key("ConfigMap/default/a"),
        "{decisions:#?}"
    );

    // Applying the install again after an undeploy creates what was deleted (the undeploy is no
    // rendering to find unchanged) and prunes nothing: what the undeploy left is in the release.
    let applied = json(apply_kube(state.path(), install_id, &cluster, &[]));
    assert_eq!(applied["status"], "completed", "{applied:#}");
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "a"));
    assert!(exists(
        &cluster,
        "v1",
        "Secret",
        "default",
        "my-app-registry"
    ));
    let counts = &completed(state.path(), &applied)["counts"];
    // a, b, c and the two pull secrets; `kept`, `tools` and `extra` were there.
    assert_eq!(counts["created"], 5, "{counts}");
    assert_eq!(counts["pruned"], 0, "{counts}");
    // (`extra`, which existed, is not applied again: the apply's prune keeps it, as ever.)
    let decisions = prune_decisions(state.path(), &applied);
    assert_eq!(
        decisions,
        BTreeMap::from([(
            "Namespace//extra".to_string(),
            ("kept".to_string(), json_value!("additional_namespace"))
        )])
    );
}

#[test]
fn an_install_that_failed_half_way_is_undeployed_with_what_it_applied() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let service =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80\n";
    let release = release(
        &[("a.yaml", &configmap("a", "1")), ("web.yaml", service)],
        "",
    );
    // ConfigMaps go before Services: the Service is refused, the ConfigMap stays applied.
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("patch").resource("services"),
        action: FaultAction::Refuse("admission webhook \"guard\" denied the request".into()),
        remaining: None,
    });
    let failed: Value =
        serde_json::from_slice(&install_kube(state.path(), release.path(), &cluster, &[]).stdout)
            .unwrap();
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "a"));
    cluster.server.clear_faults();

    let undeployed = json(undeploy(
        state.path(),
        failed["install_id"].as_str().unwrap(),
        &cluster.kubeconfig,
        &[],
    ));
    assert_eq!(undeployed["status"], "completed", "{undeployed:#}");
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "a"));
    assert!(!exists(
        &cluster,
        "v1",
        "Secret",
        "default",
        "my-app-registry"
    ));
    let decisions = prune_decisions(state.path(), &undeployed);
    assert_eq!(
        decisions["ConfigMap/default/a"].0, "deleted",
        "{decisions:#?}"
    );
    assert!(
        !decisions.contains_key("Service/default/web"),
        "{decisions:#?}"
    );
}

#[test]
fn undeploy_refuses_an_app_never_applied_there_and_a_target_that_is_no_cluster() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = app_release();
    // Rendered only (`--target none`): nothing was applied to the cluster.
    let rendered = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(release.path())));
    let install_id = rendered["install_id"].as_str().unwrap();
    let refused = undeploy(state.path(), install_id, &cluster.kubeconfig, &[]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let report: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let error = report["failure"]["message"].as_str().unwrap_or_default();
    assert!(
        error.contains("nothing to undeploy") && error.contains("namespace default"),
        "{report:#}"
    );
    assert!(real_deletes(&cluster).is_empty());

    let directory = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", directory.path().display());
    let refused = run(windlass(state.path()).args(["undeploy", install_id, "--target", &target]));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("needs --target kube"),
        "{refused:?}"
    );
    let unknown = undeploy(state.path(), "no-such-install", &cluster.kubeconfig, &[]);
    assert_eq!(unknown.status.code(), Some(5), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no install no-such-install"),
        "{unknown:?}"
    );
}

#[test]
fn undeploy_uninstalls_the_charts_windlass_installed_higher_weight_first() {
    use super::helm_install::{helm, install_with_helm};
    use super::helm_v1beta2::{
        Scene, facts_of, helm_releases, release_with_a_v1beta2_chart, scene,
    };
    let scene = scene(release_with_a_v1beta2_chart());
    let Scene {
        server,
        kubeconfig,
        state,
        release,
        ..
    } = &scene;
    let installed = install_with_helm(state.path(), release, kubeconfig, &[]);
    assert_eq!(installed["status"], "completed", "{installed:#}");
    assert_eq!(helm_releases(kubeconfig).len(), 3);
    let install_id = installed["install_id"].as_str().unwrap();
    let helm_path = helm();
    let with_helm = ["--helm", helm_path.to_str().unwrap()];

    // A helm that cannot run stops the undeploy before anything is deleted.
    let no_helm = undeploy(
        state.path(),
        install_id,
        kubeconfig,
        &["--helm", "/nonexistent/helm"],
    );
    assert_eq!(no_helm.status.code(), Some(3), "{no_helm:?}");
    assert!(
        String::from_utf8_lossy(&no_helm.stdout).contains("/nonexistent/helm"),
        "{no_helm:?}"
    );
    assert!(
        server
            .get("apps/v1", "Deployment", "default", "api")
            .is_some()
    );
    assert!(
        server
            .get("v1", "Secret", "default", "my-app-registry")
            .is_some()
    );
    assert_eq!(helm_releases(kubeconfig).len(), 3);

    // A dry run hands nothing to helm and says so.
    let dry = json(undeploy(
        state.path(),
        install_id,
        kubeconfig,
        &[&with_helm[..], &["--dry-run"]].concat(),
    ));
    assert_eq!(dry["status"], "completed", "{dry:#}");
    let not_run = facts_of(state.path(), &dry, "HelmReleaseUninstalled");
    assert!(
        not_run.len() == 3
            && not_run
                .iter()
                .all(|record| record["outcome"] == "not_run_dry_run"),
        "{not_run:#?}"
    );
    assert_eq!(helm_releases(kubeconfig).len(), 3);

    let undeployed = json(undeploy(state.path(), install_id, kubeconfig, &with_helm));
    assert_eq!(undeployed["status"], "completed", "{undeployed:#}");
    let uninstalled = facts_of(state.path(), &undeployed, "HelmReleaseUninstalled");
    assert_eq!(
        field_pairs(&uninstalled, "release_name", "outcome"),
        [
            ("shop", "uninstalled"),
            ("storefront", "uninstalled"),
            ("first", "uninstalled")
        ],
        "weight 10, 0, -5"
    );
    assert!(helm_releases(kubeconfig).is_empty());
    // helm uninstall leaves each chart's hook pull secret: named, not counted as deleted.
    let summary = undeployed["stages"][0]["summary"].as_str().unwrap();
    for left in [
        "default/my-app-shop-registry",
        "default/my-app-first-registry",
    ] {
        assert!(
            summary.contains("left by helm uninstall") && summary.contains(left),
            "{summary}"
        );
        let name = left.split('/').nth(1).unwrap();
        assert!(
            server.get("v1", "Secret", "default", name).is_some(),
            "{name}"
        );
    }
    // The kots.io/v1beta2 chart, installed as shipped, has no such secret: none named.
    assert!(!summary.contains("storefront-registry"), "{summary}");
    for (api_version, kind, name) in [
        ("apps/v1", "Deployment", "storefront-web"),
        ("apps/v1", "Deployment", "api"),
        ("v1", "Service", "api"),
        ("v1", "Secret", "my-app-registry"),
    ] {
        assert!(
            server.get(api_version, kind, "default", name).is_none(),
            "{kind} {name} removed"
        );
    }
}

/// An undeploy killed mid-way: three Services and twenty ConfigMaps installed, then the undeploy
/// killed once it recorded the Services' group and the server answered 19 ConfigMap deletes
/// (the 20th, `cm-19`, held); the faults are cleared.
struct KilledUndeploy {
    cluster: FakeCluster,
    state: tempfile::TempDir,
    install_id: String,
    undeploy_id: String,
    _release: tempfile::TempDir,
}

fn killed_undeploy() -> KilledUndeploy {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let service = |index: usize| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{index}\nspec:\n  ports:\n    - port: 80\n"
        )
    };
    let texts: Vec<(String, String)> = (0..3)
        .map(|index| (format!("svc-{index}.yaml"), service(index)))
        .chain((0..20).map(|index| {
            (
                format!("cm-{index:02}.yaml"),
                configmap(&format!("cm-{index:02}"), "v"),
            )
        }))
        .collect();
    let release = release_of(&texts);
    let installed = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(installed["status"], "completed", "{installed}");
    let install_id = installed["install_id"].as_str().unwrap().to_string();
    // Services are deleted before ConfigMaps (KOTS's deletion order), each kind as one group
    // recorded in one commit: the Services' group is recorded, then one ConfigMap's delete is
    // held for ten minutes, so that the kill lands mid-undeploy however slow the machine.
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("delete")
            .resource("configmaps")
            .name("cm-19"),
        action: FaultAction::Delay(Duration::from_secs(600)),
        remaining: Some(1),
    });
    let mut child = windlass(state.path())
        .args(["undeploy", &install_id, "--target", "kube", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let configmap_deletes = || {
        cluster
            .server
            .requests()
            .iter()
            .filter(|request| request.verb == "delete" && request.resource == "configmaps")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let undeploy_id = loop {
        assert!(
            Instant::now() < deadline,
            "the Services' group was not recorded and the other 19 ConfigMaps not deleted in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "windlass ended before it was killed"
        );
        let history = run(windlass(state.path()).args(["history", "--json"]));
        if let Ok(history) = serde_json::from_slice::<Value>(&history.stdout)
            && let Some(newest) = history.as_array().and_then(|all| all.last())
            && newest["install_id"] != install_id
        {
            let undeploy_id = newest["install_id"].as_str().unwrap().to_string();
            let recorded = payloads_of_type(&events(state.path(), &undeploy_id), "ObjectPruned");
            // cm-19's delete is held (and counted once served): the other 19 are answered.
            if !recorded.is_empty() && configmap_deletes() >= 19 {
                std::thread::sleep(Duration::from_millis(200));
                break undeploy_id;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_events = events(state.path(), &undeploy_id);
    assert!(
        payloads_of_type(&killed_events, "ApplyCompleted").is_empty(),
        "the kill landed mid-undeploy"
    );
    let recorded: Vec<String> = payloads_of_type(&killed_events, "ObjectPruned")
        .iter()
        .map(|pruned| pruned["key"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        recorded,
        ["svc-0", "svc-1", "svc-2"],
        "one group, one commit"
    );
    assert!(exists(&cluster, "v1", "ConfigMap", "default", "cm-19"));
    cluster.server.clear_faults();
    KilledUndeploy {
        cluster,
        state,
        install_id,
        undeploy_id,
        _release: release,
    }
}

#[test]
fn a_killed_undeploy_resumes_and_does_not_delete_again_what_it_recorded() {
    let KilledUndeploy {
        cluster,
        state,
        install_id,
        undeploy_id,
        ..
    } = killed_undeploy();
    let install_id = install_id.as_str();
    cluster.server.reset_requests();

    let resumed = json(undeploy(state.path(), install_id, &cluster.kubeconfig, &[]));
    assert_eq!(resumed["status"], "completed", "{resumed:#}");
    assert_eq!(
        resumed["install_id"],
        undeploy_id.as_str(),
        "the same install, resumed"
    );
    // (Read again only to see them gone.)
    let deleted: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|request| request.verb == "delete")
        .map(|request| request.name)
        .collect();
    assert!(
        !deleted.iter().any(|name| name.starts_with("svc-")),
        "what was recorded is not deleted again: {deleted:?}"
    );
    for index in 0..20 {
        let name = format!("cm-{index:02}");
        assert!(
            !exists(&cluster, "v1", "ConfigMap", "default", &name),
            "{name}"
        );
    }
    // cm-19's delete was held, so the resumed run deleted it; the other 19 were deleted by the
    // killed run but not recorded by it: the resumed run finds them gone, and since the killed
    // run recorded them about to be deleted (`ObjectsDeleting`), records them deleted.
    let decisions = prune_decisions(state.path(), &resumed);
    let outcomes_of = |prefix: &str| -> BTreeMap<String, usize> {
        let mut outcomes = BTreeMap::new();
        for (key, (outcome, _)) in &decisions {
            if key.starts_with(prefix) {
                *outcomes.entry(outcome.clone()).or_default() += 1;
            }
        }
        outcomes
    };
    assert_eq!(
        decisions["ConfigMap/default/cm-19"].0, "deleted",
        "{decisions:#?}"
    );
    assert_eq!(
        outcomes_of("ConfigMap/"),
        BTreeMap::from([("deleted".to_string(), 20)])
    );
    let cm_00 = payloads_of_type(&events(state.path(), &undeploy_id), "ObjectPruned")
        .into_iter()
        .find(|pruned| pruned["key"]["name"] == "cm-00")
        .unwrap();
    assert!(
        cm_00["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("an earlier run of this apply was deleting it")),
        "{cm_00:#}"
    );
    assert_eq!(
        outcomes_of("Service/"),
        BTreeMap::from([("deleted".to_string(), 3)])
    );
    let completed = completed(state.path(), &resumed);
    assert_eq!(completed["undeployed"], true);
    // Every deletion recorded counts: the killed run's 3 Services, the 20 ConfigMaps and the
    // pull secret.
    assert_eq!(completed["counts"]["pruned"], 24, "{completed:#}");
}

#[test]
fn an_undeploy_resumed_after_an_apply_deletes_again_what_that_apply_made_again() {
    let KilledUndeploy {
        cluster,
        state,
        install_id,
        undeploy_id,
        ..
    } = killed_undeploy();
    // The app is applied again before the killed undeploy is run again: the Services it
    // recorded as deleted are made anew (other uids).
    let applied = json(apply_kube(state.path(), &install_id, &cluster, &[]));
    assert_eq!(applied["status"], "completed", "{applied:#}");
    assert!(exists(&cluster, "v1", "Service", "default", "svc-0"));

    let resumed = json(undeploy(
        state.path(),
        &install_id,
        &cluster.kubeconfig,
        &[],
    ));
    assert_eq!(resumed["install_id"], undeploy_id.as_str(), "{resumed:#}");
    assert_eq!(resumed["status"], "completed", "{resumed:#}");
    for index in 0..3 {
        assert!(
            !exists(
                &cluster,
                "v1",
                "Service",
                "default",
                &format!("svc-{index}")
            ),
            "svc-{index}: the record of the earlier deletion is of another object"
        );
    }
    for index in 0..20 {
        let name = format!("cm-{index:02}");
        assert!(
            !exists(&cluster, "v1", "ConfigMap", "default", &name),
            "{name}"
        );
    }
}

#[test]
fn undeploy_waits_until_what_it_deleted_is_gone_and_fails_at_the_deadline() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers:\n    - example.com/hold\ndata:\n  value: h\n";
    let release = release(&[("a.yaml", &configmap("a", "1")), ("held.yaml", held)], "");
    let installed = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(installed["status"], "completed", "{installed}");
    let install_id = installed["install_id"].as_str().unwrap();

    // A finalizer nobody removes: deleted, but not gone by the deadline.
    let started = Instant::now();
    let stuck = undeploy(
        state.path(),
        install_id,
        &cluster.kubeconfig,
        &["--wait-timeout", "2s"],
    );
    let report: Value = serde_json::from_slice(&stuck.stdout).unwrap();
    assert_eq!(stuck.status.code(), Some(1), "{report:#}");
    let message = report["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("not met after 2s")
            && message.contains("1 of 3 deleted objects still there, ConfigMap default/held first"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let held_now = cluster
        .server
        .get("v1", "ConfigMap", "default", "held")
        .expect("held back by its finalizer");
    assert!(held_now["metadata"]["deletionTimestamp"].is_string());
    assert!(!exists(&cluster, "v1", "ConfigMap", "default", "a"));

    // Once the finalizer goes, the same command resumes and finishes: nothing deleted again.
    cluster
        .server
        .remove_finalizers("v1", "ConfigMap", "default", "held")
        .unwrap();
    cluster.server.reset_requests();
    let finished = json(undeploy(
        state.path(),
        install_id,
        &cluster.kubeconfig,
        &["--wait-timeout", "2s"],
    ));
    assert_eq!(finished["status"], "completed", "{finished:#}");
    assert_eq!(finished["install_id"], report["install_id"], "resumed");
    assert!(
        !cluster
            .server
            .requests()
            .iter()
            .any(|request| request.verb == "delete"),
        "the deletions are recorded: not sent again"
    );
    let waits = payloads_of_type(
        &events(state.path(), finished["install_id"].as_str().unwrap()),
        "WaitFinished",
    );
    assert_eq!(
        field_pairs(&waits, "wait", "outcome"),
        [("gone", "timed_out"), ("gone", "met")],
        "{waits:#?}"
    );
}

/// A webhook that refuses the pull secret's delete and quotes the Secret it was sent (as an
/// audit webhook quoting `oldObject` does): the refusal is recorded and printed, its words kept,
/// the Secret's credentials (license ID, `auth`, the `.dockerconfigjson`) not, in any file of the
/// state directory nor on the terminal. The Secret is one windlass no longer holds the values
/// of (an undeploy reads no rendered file), so they are recognised by their shape.
#[test]
fn a_webhooks_echo_of_the_pull_secret_reaches_neither_the_log_nor_the_terminal() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(&[("a.yaml", &configmap("a", "1"))], "");
    let installed = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(installed["status"], "completed", "{installed}");
    let secret = cluster
        .server
        .get("v1", "Secret", "default", "my-app-registry")
        .expect("the pull secret was applied");
    let docker_config = secret["data"][".dockerconfigjson"]
        .as_str()
        .unwrap()
        .to_string();
    cluster.server.add_fault(Fault {
        matcher: FaultMatch::verb("delete").name("my-app-registry"),
        action: FaultAction::Refuse(format!(
            "admission webhook \"audit\" denied the request: oldObject {secret}"
        )),
        remaining: None,
    });

    let output = undeploy(
        state.path(),
        installed["install_id"].as_str().unwrap(),
        &cluster.kubeconfig,
        &[],
    );
    let printed = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
    let undeployed = json(output);
    assert_eq!(undeployed["status"], "completed", "{undeployed:#}");
    let decisions = prune_decisions(state.path(), &undeployed);
    let (outcome, _) = &decisions["Secret/default/my-app-registry"];
    assert_eq!(outcome, "refused", "{decisions:#?}");
    let details = payloads_of_type(
        &events(state.path(), undeployed["install_id"].as_str().unwrap()),
        "ObjectPruned",
    )
    .into_iter()
    .filter_map(|pruned| pruned["detail"].as_str().map(str::to_string))
    .collect::<Vec<_>>()
    .join("\n");
    assert!(
        details.contains("denied the request: oldObject")
            && details.contains("my-app-registry")
            && details.contains("<redacted>"),
        "{details}"
    );
    assert!(exists(
        &cluster,
        "v1",
        "Secret",
        "default",
        "my-app-registry"
    ));

    assert_no_credential_outside_the_output(
        state.path(),
        &printed,
        &[
            QUICKSTART_LICENSE_ID,
            QUICKSTART_LICENSE_AUTH,
            &docker_config,
        ],
    );
}

/// An undeploy of an app whose namespace is gone already (deleted by hand, with what was in it)
/// deletes what is left elsewhere (here a ClusterRole) and does not make the namespace again.
#[test]
fn an_undeploy_never_creates_the_app_namespace() {
    let cluster = fake_cluster(Options {
        namespace_controller: true,
        ..Options::default()
    });
    let state = tempfile::tempdir().unwrap();
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: shop-reader\nrules: []\n";
    let release = release(&[("a.yaml", &configmap("a", "1")), ("role.yaml", role)], "");
    let installed = json(super::apply_kube::install_in(
        state.path(),
        release.path(),
        &cluster,
        "shop",
    ));
    assert_eq!(installed["status"], "completed", "{installed}");
    assert!(exists(&cluster, "v1", "Namespace", "", "shop"));
    cluster
        .server
        .delete("v1", "Namespace", "", "shop")
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while exists(&cluster, "v1", "Namespace", "", "shop") {
        assert!(
            std::time::Instant::now() < deadline,
            "the namespace controller removed shop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let undeployed = json(undeploy(
        state.path(),
        installed["install_id"].as_str().unwrap(),
        &cluster.kubeconfig,
        &[],
    ));
    assert_eq!(undeployed["status"], "completed", "{undeployed:#}");
    assert!(!exists(
        &cluster,
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "",
        "shop-reader"
    ));
    assert!(
        !exists(&cluster, "v1", "Namespace", "", "shop"),
        "the undeploy made the namespace again"
    );
}

/// `history` (from the summaries and, with `--json`, from the folds), `history --app` and `show`
/// tell an install, a `windlass apply` and a `windlass undeploy` apart, and the next install
/// after an undeploy upgrades nothing: the app was no longer there.
#[test]
fn history_and_show_tell_installs_applies_and_undeploys_apart() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let first = release(&[("a.yaml", &configmap("a", "1"))], "");
    let installed = json(install_kube(state.path(), first.path(), &cluster, &[]));
    let install_id = installed["install_id"].as_str().unwrap().to_string();
    let applied = json(apply_kube(state.path(), &install_id, &cluster, &[]));
    assert_eq!(applied["status"], "completed", "{applied:#}");
    let undeployed = json(undeploy(
        state.path(),
        &install_id,
        &cluster.kubeconfig,
        &[],
    ));
    assert_eq!(undeployed["status"], "completed", "{undeployed:#}");
    let second = release(&[("a.yaml", &configmap("a", "2"))], "");
    let reinstalled = json(install_kube(state.path(), second.path(), &cluster, &[]));
    assert_eq!(reinstalled["status"], "completed", "{reinstalled:#}");
    assert_eq!(
        reinstalled["upgrades"],
        Value::Null,
        "an install after an undeploy upgrades nothing"
    );

    let expected = [
        (install_id.as_str(), "install"),
        (applied["install_id"].as_str().unwrap(), "apply"),
        (undeployed["install_id"].as_str().unwrap(), "undeploy"),
        (reinstalled["install_id"].as_str().unwrap(), "install"),
    ];
    let stdout = |args: &[&str]| {
        let output = run(windlass(state.path()).args(args));
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    let kinds: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|install| {
            (
                install["install_id"].as_str().unwrap(),
                install["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, expected, "{history:#}");
    let listing = stdout(&["history"]);
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["INSTALL", "KIND", "APP"], "{listing}");
    let listed: Vec<(&str, &str)> = rows[1..].iter().map(|row| (row[0], row[1])).collect();
    assert_eq!(listed, expected, "{listing}");
    let by_app = stdout(&["history", "--app", "my-app"]);
    for (id, kind) in expected {
        assert!(
            by_app
                .lines()
                .any(|line| line.split_whitespace().take(2).eq([id, kind])),
            "{id} {kind} in\n{by_app}"
        );
    }
    let shown = stdout(&["show", expected[2].0]);
    assert!(
        shown.lines().any(|line| line == "kind      undeploy"),
        "{shown}"
    );
}
