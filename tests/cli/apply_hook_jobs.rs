//! KOTS's hook delete policy, against `windlass-test-apiserver`, a FAKE Kubernetes API server (no
//! real one can be installed on these machines; it runs no Job controller, so a test reports a
//! Job's status as one would): a Job annotated `kots.io/hook-delete-policy` (a plain manifest) or
//! `helm.sh/hook-delete-policy` (a chart's hook, rendered with the real helm 4), finished as the
//! policy says, is deleted and created again when the next release changes it, as KOTS's Job
//! informer would have deleted it; one that has not finished so is refused as immutable, as
//! before.

use serde_json::{Value, json};
use windlass_test_apiserver::Options;
use windlass_testkit::charts::chart_archive;

use crate::apply_kube::{applied, events, fake_cluster, install_kube, release, rewrite};
use crate::{json, payloads_of_type};

/// A Job `migrate` running `image`, annotated with `annotations` (YAML lines under
/// `annotations:`, indented four spaces).
fn job(image: &str, annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n{annotations}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: migrate\n          image: {image}\n"
    )
}

/// The failure message of an install the server refused (exit code 3).
fn refused(output: std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    report["failure"]["message"].as_str().unwrap().to_string()
}

const SUCCEEDED_POLICY: &str = "    kots.io/hook-delete-policy: hook-succeeded\n";

fn uid(cluster: &crate::apply_kube::FakeCluster) -> Value {
    cluster
        .server
        .get("batch/v1", "Job", "default", "migrate")
        .expect("the Job is on the server")["metadata"]["uid"]
        .clone()
}

/// Reports `status` for Job `default/migrate` as its controller would (merged: null removes).
fn report_status(cluster: &crate::apply_kube::FakeCluster, status: Value) {
    cluster
        .server
        .set_status("batch/v1", "Job", "default", "migrate", status)
        .unwrap();
}

#[test]
fn a_finished_job_whose_hook_delete_policy_says_so_is_created_again_when_it_changes() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(
        &[("migrate.yaml", &job("busybox:1.36", SUCCEEDED_POLICY))],
        "",
    );
    let first = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(first["status"], "completed", "{first}");
    let first_uid = uid(&cluster);

    // Not finished yet: the changed template is refused, as any immutable change.
    rewrite(
        release.path(),
        &[("migrate.yaml", &job("busybox:1.37", SUCCEEDED_POLICY))],
    );
    let running = refused(install_kube(state.path(), release.path(), &cluster, &[]));
    assert!(
        running.contains("Job default/migrate") && running.contains("immutable"),
        "{running}"
    );
    assert_eq!(uid(&cluster), first_uid);

    // Failed, where the policy asks only for success: refused still.
    report_status(&cluster, json!({"failed": 1}));
    let failed = refused(install_kube(state.path(), release.path(), &cluster, &[]));
    assert!(failed.contains("immutable"), "{failed}");

    // Succeeded once, with a pod still active (a parallel Job): refused still, as KOTS's informer
    // would not have deleted it yet.
    report_status(&cluster, json!({"succeeded": 1, "active": 1}));
    let active = refused(install_kube(state.path(), release.path(), &cluster, &[]));
    assert!(active.contains("immutable"), "{active}");
    // None of the refused installs deleted anything.
    for id in crate::apply_unheard::install_ids(state.path()) {
        assert!(
            payloads_of_type(&events(state.path(), &id), "ObjectDeletedToRecreate").is_empty(),
            "{id}"
        );
    }
    assert_eq!(uid(&cluster), first_uid);

    // Succeeded, no pod active any more (a merge: null removes it): a dry run says it would be
    // created again, and leaves it.
    report_status(&cluster, json!({"succeeded": 1, "active": null}));
    let dry = install_kube(state.path(), release.path(), &cluster, &["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    let dry = json(dry);
    assert_eq!(dry["status"], "completed", "{dry:#}");
    let dry_events = events(state.path(), dry["install_id"].as_str().unwrap());
    assert_eq!(applied(&dry_events)["Job/migrate"]["recreated"], true);
    assert_eq!(uid(&cluster), first_uid);

    // Then deleted and created again with the new template.
    let again = json(install_kube(state.path(), release.path(), &cluster, &[]));
    assert_eq!(again["status"], "completed", "{again:#}");
    let live = cluster
        .server
        .get("batch/v1", "Job", "default", "migrate")
        .unwrap();
    assert_ne!(live["metadata"]["uid"], first_uid);
    let image = live["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.ends_with("busybox:1.37"), "{image}");
    let recorded = events(state.path(), again["install_id"].as_str().unwrap());
    assert_eq!(applied(&recorded)["Job/migrate"]["recreated"], true);
    let deleted = payloads_of_type(&recorded, "ObjectDeletedToRecreate");
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    assert_eq!(deleted[0]["uid"], first_uid);
    let refusal = deleted[0]["refusal"].as_str().unwrap();
    assert!(
        refusal.contains(
            "a finished hook Job: it succeeded, and its kots.io/hook-delete-policy is \"hook-succeeded\""
        ),
        "{refusal}"
    );
}

/// The chart `jobs` 1.0.0: a `pre-install,pre-upgrade` hook Job whose image tag comes from the
/// values, with helm's `hook-delete-policy`.
fn jobs_chart() -> Vec<(String, String)> {
    vec![
        (
            "jobs/Chart.yaml".into(),
            "apiVersion: v2\nname: jobs\nversion: 1.0.0\n".into(),
        ),
        ("jobs/values.yaml".into(), "tag: \"1.36\"\n".into()),
        (
            "jobs/templates/migrate.yaml".into(),
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: migrate\n          image: busybox:{{ .Values.tag }}\n".into(),
        ),
    ]
}

/// A `kots.io/v1beta1` chart's hook Job joins the manifests as KOTS applies it; helm's
/// `hook-delete-policy` on it counts as KOTS's copy of it would.
#[test]
fn a_charts_hook_job_with_helms_delete_policy_is_created_again_once_it_succeeded() {
    let cluster = fake_cluster(Options::default());
    let state = tempfile::tempdir().unwrap();
    let release = release(&[], "");
    std::fs::create_dir_all(release.path().join("charts")).unwrap();
    std::fs::create_dir_all(release.path().join("kots")).unwrap();
    std::fs::write(
        release.path().join("charts/jobs-1.0.0.tgz"),
        chart_archive(&jobs_chart()),
    )
    .unwrap();
    let helm_chart = |tag: &str| {
        format!(
            "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: jobs\nspec:\n  chart:\n    name: jobs\n    chartVersion: 1.0.0\n  values:\n    tag: \"{tag}\"\n"
        )
    };
    std::fs::write(release.path().join("kots/jobs.yaml"), helm_chart("1.36")).unwrap();
    let install = |state: &std::path::Path| {
        crate::apply_kube::output_within(
            crate::windlass(state)
                .args(crate::OFFLINE_INSTALL)
                .args(["--json", "--helm"])
                .arg(windlass_testkit::helm())
                .arg(release.path())
                .args(["--target", "kube", "--kubeconfig"])
                .arg(&cluster.kubeconfig),
        )
    };
    let first = json(install(state.path()));
    assert_eq!(first["status"], "completed", "{first:#}");
    let first_uid = uid(&cluster);
    report_status(&cluster, json!({"succeeded": 1}));

    std::fs::write(release.path().join("kots/jobs.yaml"), helm_chart("1.37")).unwrap();
    let second = json(install(state.path()));
    assert_eq!(second["status"], "completed", "{second:#}");
    let live = cluster
        .server
        .get("batch/v1", "Job", "default", "migrate")
        .unwrap();
    assert_ne!(live["metadata"]["uid"], first_uid);
    let image = live["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.ends_with("busybox:1.37"), "{image}");
    let deleted = payloads_of_type(
        &events(state.path(), second["install_id"].as_str().unwrap()),
        "ObjectDeletedToRecreate",
    );
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    assert!(
        deleted[0]["refusal"]
            .as_str()
            .unwrap()
            .contains("its helm.sh/hook-delete-policy is \"before-hook-creation,hook-succeeded\""),
        "{deleted:#?}"
    );
}
