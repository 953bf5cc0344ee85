//! A `useHelmInstall: true` release that a killed helm left pending, end to end with the real
//! helm 4 against `windlass-test-apiserver`, a FAKE Kubernetes API server (no real one can be
//! installed on these machines; it runs no controllers, so the tests complete helm's hook Jobs
//! themselves with `make_ready`). The chart's `pre-install,pre-upgrade` Job hook holds helm
//! mid-operation, its revision `pending-*`, while the test kills windlass and its helm, as a
//! machine going away would. windlass frees what its own killed helm left and installs the chart;
//! it waits for an orphaned helm of its own that still runs; and it leaves alone a release
//! another helm left pending, saying what frees it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use windlass_test_apiserver::TestApiServer;
use windlass_testkit::charts::chart_archive;

use super::helm_install::fake_cluster;
use super::{OFFLINE_INSTALL, files_under, payloads_of_type, quickstart, run, windlass};

/// The chart `hooky` 0.1.0: a ConfigMap holding `round`, and the Job `hooky-migrate`, a
/// `pre-install,pre-upgrade` hook helm waits for.
fn hooky_chart(round: u32) -> Vec<(String, String)> {
    vec![
        (
            "hooky/Chart.yaml".into(),
            "apiVersion: v2\nname: hooky\nversion: 0.1.0\n".into(),
        ),
        (
            "hooky/templates/config.yaml".into(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hooky-config\ndata:\n  round: \"{round}\"\n"
            ),
        ),
        (
            "hooky/templates/migrate.yaml".into(),
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: hooky-migrate\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: migrate\n          image: busybox:1\n".into(),
        ),
    ]
}

/// The quickstart release plus `hooky` (round `round`) with `useHelmInstall: true`, in `dir`.
fn release_with_hooky(dir: &Path, round: u32) -> PathBuf {
    let release = dir.join(format!("release-{round}"));
    for file in files_under(&quickstart()) {
        let target = release.join(file.strip_prefix(quickstart()).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    std::fs::create_dir_all(release.join("charts")).unwrap();
    std::fs::create_dir_all(release.join("kots")).unwrap();
    std::fs::write(
        release.join("charts/hooky-0.1.0.tgz"),
        chart_archive(&hooky_chart(round)),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/hooky.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: hooky\nspec:\n  chart:\n    name: hooky\n    chartVersion: 0.1.0\n  useHelmInstall: true\n",
    )
    .unwrap();
    release
}

/// `windlass install` of `release` to the fake cluster, helm's `--timeout` a minute.
fn install_command(state: &Path, release: &Path, kubeconfig: &Path) -> Command {
    install_waiting(state, release, kubeconfig, 60)
}

/// [`install_command`] with `--wait-timeout` `seconds`.
fn install_waiting(state: &Path, release: &Path, kubeconfig: &Path, seconds: u32) -> Command {
    let mut command = windlass(state);
    command
        .args(OFFLINE_INSTALL)
        .args(["--json", "--helm"])
        .arg(windlass_testkit::helm())
        .arg(release)
        .args(["--target", "kube", "--wait-timeout", &seconds.to_string()])
        .arg("--kubeconfig")
        .arg(kubeconfig);
    command
}

/// The hook Job when it exists and has not completed: helm is waiting for it.
fn hook_waiting(server: &TestApiServer) -> bool {
    server
        .get("batch/v1", "Job", "default", "hooky-migrate")
        .is_some_and(|job| job.pointer("/status/succeeded").is_none())
}

/// Completes each hook Job helm waits for, as a controller would, until `stop`.
fn complete_hooks(server: &TestApiServer, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if hook_waiting(server) {
            let _ = server.make_ready("batch/v1", "Job", "default", "hooky-migrate");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `command` to its end while hook Jobs are completed; its output.
fn run_completing_hooks(server: &TestApiServer, command: &mut Command) -> std::process::Output {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| complete_hooks(server, &stop));
        let output = command.output().expect("windlass runs");
        stop.store(true, Ordering::Relaxed);
        output
    })
}

/// Starts `command` and waits (up to a minute) until helm waits for the hook Job.
fn start_until_hook_waits(server: &TestApiServer, command: &mut Command) -> Child {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("windlass starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hook_waiting(server) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "windlass ended before helm waited for the hook"
        );
        assert!(Instant::now() < deadline, "helm never waited for the hook");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The pids of `parent`'s children named `name`, read from `/proc`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold blanks, so split after its `)`.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if &stat[open + 1..close] == name && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// `kill -9 pid`.
fn kill_9(pid: u32) {
    assert_eq!(
        super::daemon::send_signal(pid, libc::SIGKILL),
        0,
        "kill -9 {pid}"
    );
}

/// Kills windlass and then the helm it was running, as a machine going away would: nothing
/// finishes helm's operation.
fn kill_windlass_and_its_helm(mut child: Child) {
    let helms = children_named(child.id(), "helm");
    assert_eq!(helms.len(), 1, "windlass runs one helm: {helms:?}");
    kill_9(child.id());
    child.wait().unwrap();
    kill_9(helms[0]);
}

/// `helm history hooky --output json` of the fake cluster: each revision's status.
fn history(kubeconfig: &Path) -> Vec<(u64, String, String)> {
    let output = Command::new(windlass_testkit::helm())
        .args([
            "history",
            "hooky",
            "--namespace",
            "default",
            "--output",
            "json",
        ])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    listed
        .iter()
        .map(|revision| {
            (
                revision["revision"].as_u64().unwrap(),
                revision["status"].as_str().unwrap().to_string(),
                revision["description"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Each revision of `hooky` with its status, oldest first.
fn statuses(kubeconfig: &Path) -> Vec<(u64, String)> {
    history(kubeconfig)
        .into_iter()
        .map(|(revision, status, _)| (revision, status))
        .collect()
}

/// The payloads of `event_type` among install `install_id`'s events.
fn recorded(state: &Path, install_id: &str, event_type: &str) -> Vec<Value> {
    payloads_of_type(&super::apply_kube::events(state, install_id), event_type)
}

/// The install id of a completed `install --json` run.
fn completed(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["status"], "completed", "{summary:#}");
    summary["install_id"].as_str().unwrap().to_string()
}

/// A first install killed with its helm while the `pre-install` hook runs leaves the release
/// `pending-install`, which every `helm upgrade` refuses; the same command again resumes the
/// install, uninstalls that never-finished first install (recorded as `HelmReleaseFreed` naming
/// the killed install) and installs the chart. A later release killed the same way mid-upgrade
/// leaves `pending-upgrade`: its rerun rolls back to revision 1 and upgrades. Without the fix
/// both reruns fail with helm's "another operation (install/upgrade/rollback) is in progress".
#[test]
fn a_release_a_killed_helm_left_pending_is_freed_and_installed_when_the_apply_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();

    let first = release_with_hooky(dir.path(), 1);
    let child = start_until_hook_waits(
        &server,
        &mut install_command(state.path(), &first, &kubeconfig),
    );
    kill_windlass_and_its_helm(child);
    assert_eq!(history(&kubeconfig)[0].1, "pending-install");
    let install_id = completed(&run_completing_hooks(
        &server,
        &mut install_command(state.path(), &first, &kubeconfig),
    ));
    let freed = recorded(state.path(), &install_id, "HelmReleaseFreed");
    assert_eq!(freed.len(), 1, "{freed:#?}");
    assert_eq!(freed[0]["action"], "uninstalled");
    assert_eq!(freed[0]["pending_status"], "pending-install");
    assert_eq!(freed[0]["pending_revision"], 1);
    assert_eq!(freed[0]["interrupted_install"], install_id.as_str());
    let installed = recorded(state.path(), &install_id, "HelmReleaseInstalled");
    assert_eq!(installed.last().unwrap()["outcome"], "installed");
    assert_eq!(statuses(&kubeconfig), [(1, "deployed".to_string())]);

    let second = release_with_hooky(dir.path(), 2);
    let child = start_until_hook_waits(
        &server,
        &mut install_command(state.path(), &second, &kubeconfig),
    );
    kill_windlass_and_its_helm(child);
    assert_eq!(history(&kubeconfig).last().unwrap().1, "pending-upgrade");
    let upgrade_id = completed(&run_completing_hooks(
        &server,
        &mut install_command(state.path(), &second, &kubeconfig),
    ));
    assert_ne!(upgrade_id, install_id);
    let freed = recorded(state.path(), &upgrade_id, "HelmReleaseFreed");
    assert_eq!(freed.len(), 1, "{freed:#?}");
    assert_eq!(freed[0]["action"], "rolled_back");
    assert_eq!(freed[0]["to_revision"], 1);
    assert_eq!(freed[0]["pending_status"], "pending-upgrade");
    assert_eq!(freed[0]["interrupted_install"], upgrade_id.as_str());
    let shown =
        String::from_utf8(run(windlass(state.path()).args(["show", &upgrade_id])).stdout).unwrap();
    assert!(
        shown.contains(&format!(
            "helm      rolled-back hooky in default (HelmChart hooky) to revision 1: revision 2 was left pending-upgrade by a killed helm of install {upgrade_id}"
        )),
        "{shown}"
    );
    let revisions = history(&kubeconfig);
    let (_, status, _) = revisions.last().unwrap();
    assert_eq!(status, "deployed", "{revisions:?}");
    assert!(
        revisions
            .iter()
            .any(|(_, _, description)| description == "Rollback to 1"),
        "{revisions:?}"
    );
    assert_eq!(
        server
            .get("v1", "ConfigMap", "default", "hooky-config")
            .unwrap()
            .pointer("/data/round")
            .and_then(Value::as_str),
        Some("2")
    );
}

/// windlass killed alone leaves its helm running, orphaned, holding the release's helm lock
/// through its stdin. The same command again (with a short `--wait-timeout`) waits for that helm
/// instead of failing on, or undoing, the operation it still runs, and gives up saying so: the
/// revision is still the orphan's, pending, nothing freed. Once the hook completes, the orphan
/// finishes its install, and the next run upgrades it.
#[test]
fn an_orphaned_helm_still_running_is_waited_for_not_undone() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let first = release_with_hooky(dir.path(), 1);
    let mut child = start_until_hook_waits(
        &server,
        &mut install_command(state.path(), &first, &kubeconfig),
    );
    let orphans = children_named(child.id(), "helm");
    assert_eq!(orphans.len(), 1);
    kill_9(child.id());
    child.wait().unwrap();
    assert_eq!(history(&kubeconfig)[0].1, "pending-install");

    let waited = install_waiting(state.path(), &first, &kubeconfig, 3)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(waited.status.code(), Some(1), "{summary:#}");
    assert!(
        summary.to_string().contains(
            "a helm another windlass run started on release hooky in namespace default (a killed run's helm still running, or another windlass process) still holds the lock helm-5-hooky-default in this state directory after 3s"
        ),
        "{summary:#}"
    );
    assert_eq!(
        statuses(&kubeconfig),
        [(1, "pending-install".to_string())],
        "the orphan's operation is left to it"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{}", orphans[0])).exists(),
        "the orphaned helm still runs"
    );

    let install_id = completed(&run_completing_hooks(
        &server,
        &mut install_command(state.path(), &first, &kubeconfig),
    ));
    assert!(recorded(state.path(), &install_id, "HelmReleaseFreed").is_empty());
    assert_eq!(
        statuses(&kubeconfig),
        [(1, "superseded".to_string()), (2, "deployed".to_string())],
        "the orphan's install finished, then the rerun's upgrade"
    );
}

/// A release that a helm windlass did not start left pending (here helm run by hand, then
/// killed) is left alone: the chart fails naming the pending revision and the command that
/// frees it, and the revision is still pending afterwards.
#[test]
fn a_release_another_helm_left_pending_is_left_alone_naming_what_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, kubeconfig) = fake_cluster(dir.path());
    let state = tempfile::tempdir().unwrap();
    let chart = dir.path().join("by-hand");
    for (path, contents) in hooky_chart(1) {
        let target = chart.join(path.strip_prefix("hooky/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, contents).unwrap();
    }
    let mut by_hand = Command::new(windlass_testkit::helm())
        .args(["upgrade", "--install", "hooky"])
        .arg(&chart)
        .args(["--namespace", "default", "--timeout", "60s"])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hook_waiting(&server) {
        assert!(Instant::now() < deadline, "helm never waited for the hook");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_9(by_hand.id());
    by_hand.wait().unwrap();
    assert_eq!(history(&kubeconfig)[0].1, "pending-install");

    let release = release_with_hooky(dir.path(), 1);
    let output = run_completing_hooks(
        &server,
        &mut install_command(state.path(), &release, &kubeconfig),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = summary.to_string();
    assert!(
        error.contains("release hooky in namespace default is pending-install (revision 1")
            && error.contains("no windlass apply from this state directory started a helm on it")
            && error.contains("`helm uninstall hooky --namespace default` frees it"),
        "{summary:#}"
    );
    assert_eq!(history(&kubeconfig)[0].1, "pending-install");
}
