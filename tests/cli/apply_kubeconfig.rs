//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): how `--target kube[:CONTEXT]` finds its kubeconfig and context.
//! The README ("Applying"): the kubeconfig from `--kubeconfig`, else `$KUBECONFIG` (a
//! `:`-separated list of files, merged), else `~/.kube/config`; the context named after `kube:`,
//! else the kubeconfig's current one. Every command here runs with `HOME` and `KUBECONFIG` set by
//! the test, so neither the machine's `~/.kube/config` nor the caller's `$KUBECONFIG` is read.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use windlass_test_apiserver::Options;

use super::apply_kube::*;
use super::*;

/// The one object every release here holds.
const OBJECT: &str = "settings";

/// A release of one ConfigMap (`settings`, in the app namespace `default`).
fn one_configmap() -> tempfile::TempDir {
    release(&[("settings.yaml", &configmap(OBJECT, "1"))], "")
}

/// `install --offline --json RELEASE --target TARGET`, with `HOME` set to `home` and no
/// `KUBECONFIG` (a test adds what it means to give).
fn install_command(state: &Path, release: &Path, target: &str, home: &Path) -> Command {
    let mut command = windlass(state);
    command
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(release)
        .args(["--target", target])
        .env("HOME", home)
        .env_remove("KUBECONFIG");
    command
}

/// A directory to be `HOME`, with `~/.kube/config` holding `kubeconfig` when given.
fn home(kubeconfig: Option<&str>) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    if let Some(text) = kubeconfig {
        std::fs::create_dir_all(home.path().join(".kube")).unwrap();
        std::fs::write(home.path().join(".kube/config"), text).unwrap();
    }
    home
}

/// Whether `cluster` holds the release's ConfigMap.
fn holds_it(cluster: &FakeCluster) -> bool {
    exists(cluster, "v1", "ConfigMap", "default", OBJECT)
}

/// The install completed; its one `ApplyCompleted`'s target is `cluster`'s server, with
/// `context` (absent: the current one); the ConfigMap's outcome was `outcome` and `cluster`
/// holds it.
fn assert_applied_to(
    state: &Path,
    output: Output,
    cluster: &FakeCluster,
    context: Option<&str>,
    outcome: &str,
) {
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();
    let events = events(state, install_id);
    let completed = payloads_of_type(&events, "ApplyCompleted");
    assert_eq!(completed.len(), 1, "{completed:?}");
    let target = &completed[0]["target"];
    assert_eq!(target["kind"], "kube", "{target}");
    // kube's URL type writes the root path: `http://127.0.0.1:PORT/`.
    assert_eq!(
        target["server"].as_str().unwrap().trim_end_matches('/'),
        cluster.server.url(),
        "{target}"
    );
    match context {
        Some(context) => assert_eq!(target["context"], context, "{target}"),
        None => assert!(target.get("context").is_none(), "{target}"),
    }
    let applied = applied(&events);
    assert_eq!(
        applied
            .get(&format!("ConfigMap/{OBJECT}"))
            .map(|object| object["outcome"].clone()),
        Some(json!(outcome)),
        "{applied:?}"
    );
    assert!(
        holds_it(cluster),
        "the ConfigMap reached {}",
        cluster.server.url()
    );
}

/// The JSON of an install refused as invalid input (exit code 3) in its apply stage, and the
/// message it gave.
fn refused_apply(output: &Output) -> (Value, String) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let failed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failure"]["stage"], "apply", "{failed}");
    assert_eq!(failed["failure"]["class"], "invalid_input", "{failed}");
    let message = failed["failure"]["message"].as_str().unwrap().to_string();
    (failed, message)
}

/// The install recorded no apply: no `ApplyStarted`, `ObjectsApplied` nor `ApplyCompleted`.
fn assert_nothing_recorded(state: &Path, install_id: &str) {
    let events = events(state, install_id);
    for event_type in ["ApplyStarted", "ObjectsApplied", "ApplyCompleted"] {
        assert!(
            payloads_of_type(&events, event_type).is_empty(),
            "{event_type}: {events:?}"
        );
    }
}

/// The server holds no ConfigMap and was never written to.
fn assert_untouched(cluster: &FakeCluster) {
    assert!(!holds_it(cluster));
    assert_eq!(
        cluster.server.counts().writes,
        0,
        "{:?}",
        cluster.server.requests()
    );
}

/// One kubeconfig with a context per `(name, cluster)` (each built from that server's own
/// kubeconfig, `kubeconfig_yaml(name)`: a cluster, a context and a user of that name) and
/// `current` as its current context.
fn kubeconfig_of(contexts: &[(&str, &FakeCluster)], current: &str) -> String {
    let mut merged = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "contexts": [],
        "users": [],
        "current-context": current,
        "preferences": {},
    });
    for (name, cluster) in contexts {
        let one: Value = serde_saphyr::from_str(&cluster.server.kubeconfig_yaml(name)).unwrap();
        assert_eq!(one["current-context"], *name, "{one}");
        for list in ["clusters", "contexts", "users"] {
            let entries = one[list].as_array().unwrap().clone();
            assert_eq!(entries.len(), 1, "{one}");
            merged[list].as_array_mut().unwrap().extend(entries);
        }
    }
    serde_saphyr::to_string(&merged).unwrap()
}

/// Runs against the fake API server. With no `--kubeconfig`, `$KUBECONFIG` names the kubeconfig
/// (`HOME` an empty directory: there is no `~/.kube/config` to fall back on).
#[test]
fn kubeconfig_env_is_used_without_the_flag() {
    let cluster = fake_cluster(Options::default());
    let release = one_configmap();
    let empty_home = home(None);
    let state = tempfile::tempdir().unwrap();
    let output = output_within(
        install_command(state.path(), release.path(), "kube", empty_home.path())
            .env("KUBECONFIG", &cluster.kubeconfig),
    );
    assert_applied_to(state.path(), output, &cluster, None, "created");
}

/// Runs against the fake API server. With neither `--kubeconfig` nor `$KUBECONFIG`,
/// `~/.kube/config` is read; and without it either, the install fails before applying, saying
/// where it looked.
#[test]
fn home_kube_config_is_used_without_flag_or_env() {
    let cluster = fake_cluster(Options::default());
    let release = one_configmap();
    let with_config = home(Some(&cluster.server.kubeconfig_yaml("at-home")));
    let state = tempfile::tempdir().unwrap();
    let output = output_within(&mut install_command(
        state.path(),
        release.path(),
        "kube",
        with_config.path(),
    ));
    assert_applied_to(state.path(), output, &cluster, None, "created");

    // No kubeconfig anywhere: nothing to reach, and the message says what was looked for.
    let other = fake_cluster(Options::default());
    let empty_home = home(None);
    let state = tempfile::tempdir().unwrap();
    let output = output_within(&mut install_command(
        state.path(),
        release.path(),
        "kube",
        empty_home.path(),
    ));
    let (failed, message) = refused_apply(&output);
    let looked_at = empty_home.path().join(".kube/config");
    assert!(
        message.starts_with("the kubeconfig ~/.kube/config: ")
            && message.contains(&looked_at.display().to_string()),
        "{message}"
    );
    assert_nothing_recorded(state.path(), failed["install_id"].as_str().unwrap());
    assert_untouched(&other);
}

/// Runs against the fake API server. `--kubeconfig` wins over `$KUBECONFIG`, and `$KUBECONFIG`
/// over `~/.kube/config`: three servers, one behind each, and only the first in that order is
/// applied to.
#[test]
fn the_flag_wins_over_the_env_which_wins_over_home() {
    let by_flag = fake_cluster(Options::default());
    let by_env = fake_cluster(Options::default());
    let by_home = fake_cluster(Options::default());
    let release = one_configmap();
    let home = home(Some(&by_home.server.kubeconfig_yaml("at-home")));

    let state = tempfile::tempdir().unwrap();
    let output = output_within(
        install_command(state.path(), release.path(), "kube", home.path())
            .env("KUBECONFIG", &by_env.kubeconfig)
            .arg("--kubeconfig")
            .arg(&by_flag.kubeconfig),
    );
    assert_applied_to(state.path(), output, &by_flag, None, "created");
    assert_untouched(&by_env);
    assert_untouched(&by_home);

    let state = tempfile::tempdir().unwrap();
    let output = output_within(
        install_command(state.path(), release.path(), "kube", home.path())
            .env("KUBECONFIG", &by_env.kubeconfig),
    );
    assert_applied_to(state.path(), output, &by_env, None, "created");
    assert_untouched(&by_home);
}

/// Runs against the fake API server. One kubeconfig, two contexts (`alpha`, `beta`) pointing at
/// two fake servers: `kube:CONTEXT` goes to the named context's server whatever the current
/// context is, and `kube` to the current context's.
#[test]
fn a_named_context_is_used_whatever_the_current_one_and_kube_alone_uses_the_current() {
    let alpha = fake_cluster(Options::default());
    let beta = fake_cluster(Options::default());
    let release = one_configmap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("two-contexts");
    let empty_home = home(None);
    let install = |target: &str| {
        let state = tempfile::tempdir().unwrap();
        let output = output_within(
            install_command(state.path(), release.path(), target, empty_home.path())
                .arg("--kubeconfig")
                .arg(&kubeconfig),
        );
        (state, output)
    };

    // Current context beta: `kube:alpha` reaches alpha alone.
    std::fs::write(
        &kubeconfig,
        kubeconfig_of(&[("alpha", &alpha), ("beta", &beta)], "beta"),
    )
    .unwrap();
    let (state, output) = install("kube:alpha");
    assert_applied_to(state.path(), output, &alpha, Some("alpha"), "created");
    assert_untouched(&beta);

    // `kube` alone: the current context, beta.
    let (state, output) = install("kube");
    assert_applied_to(state.path(), output, &beta, None, "created");

    // The current context switched to alpha; the named context beta still wins (its object is
    // updated there, on beta), and `kube` alone now follows the current context to alpha.
    std::fs::write(
        &kubeconfig,
        kubeconfig_of(&[("alpha", &alpha), ("beta", &beta)], "alpha"),
    )
    .unwrap();
    let before = (alpha.server.counts().writes, beta.server.counts().writes);
    std::fs::write(
        release.path().join("manifests/settings.yaml"),
        configmap(OBJECT, "2"),
    )
    .unwrap();
    let (state, output) = install("kube:beta");
    assert_applied_to(state.path(), output, &beta, Some("beta"), "configured");
    let value = |cluster: &FakeCluster| {
        cluster
            .server
            .get("v1", "ConfigMap", "default", OBJECT)
            .map(|object| object["data"]["value"].clone())
    };
    assert_eq!(value(&beta), Some(json!("2")));
    assert_eq!(value(&alpha), Some(json!("1")));
    assert_eq!(alpha.server.counts().writes, before.0);
    assert!(beta.server.counts().writes > before.1);

    let (state, output) = install("kube");
    assert_applied_to(state.path(), output, &alpha, None, "configured");
    assert_eq!(value(&alpha), Some(json!("2")));
}

/// Runs against the fake API server. A context the kubeconfig does not have: the install fails
/// with a message naming the context and the kubeconfig, and neither server (nor the event log)
/// sees an apply begin — through `--kubeconfig` and through `$KUBECONFIG` alike.
#[test]
fn an_unknown_context_fails_naming_it_before_anything_is_applied() {
    let alpha = fake_cluster(Options::default());
    let beta = fake_cluster(Options::default());
    let release = one_configmap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("two-contexts");
    std::fs::write(
        &kubeconfig,
        kubeconfig_of(&[("alpha", &alpha), ("beta", &beta)], "alpha"),
    )
    .unwrap();
    let empty_home = home(None);

    for through_env in [false, true] {
        let state = tempfile::tempdir().unwrap();
        let mut command = install_command(
            state.path(),
            release.path(),
            "kube:gamma",
            empty_home.path(),
        );
        let shown = if through_env {
            command.env("KUBECONFIG", &kubeconfig);
            format!(
                "the kubeconfig $KUBECONFIG names ({})",
                kubeconfig.display()
            )
        } else {
            command.arg("--kubeconfig").arg(&kubeconfig);
            format!("kubeconfig {}", kubeconfig.display())
        };
        let output = output_within(&mut command);
        let (failed, message) = refused_apply(&output);
        // The context named, not kube's "failed to load current context".
        assert_eq!(message, format!("{shown} has no context \"gamma\""));
        assert_nothing_recorded(state.path(), failed["install_id"].as_str().unwrap());
        if !through_env {
            // Without --json: the same message, on stderr.
            let state = tempfile::tempdir().unwrap();
            let output = output_within(
                windlass(state.path())
                    .args(OFFLINE_INSTALL)
                    .arg(release.path())
                    .args(["--target", "kube:gamma", "--kubeconfig"])
                    .arg(&kubeconfig)
                    .env("HOME", empty_home.path())
                    .env_remove("KUBECONFIG"),
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(3), "{stderr}");
            assert!(
                stderr.contains(&format!(
                    "error: stage apply failed (invalid input): {message}"
                )),
                "{stderr}"
            );
        }
        for cluster in [&alpha, &beta] {
            assert!(!holds_it(cluster));
            assert!(
                cluster.server.requests().is_empty(),
                "{:?}",
                cluster.server.requests()
            );
        }
    }
}

/// Runs against the fake API server. `$KUBECONFIG` as a `:`-separated list of two files (one
/// context each): they are merged, so `kube:beta` finds the second file's context, and `kube`
/// alone takes the first file's current context (the first file to set it wins).
#[test]
fn a_kubeconfig_env_list_is_merged() {
    let alpha = fake_cluster(Options::default());
    let beta = fake_cluster(Options::default());
    let release = one_configmap();
    let dir = tempfile::tempdir().unwrap();
    let alpha_file = dir.path().join("alpha");
    let beta_file = dir.path().join("beta");
    std::fs::write(&alpha_file, alpha.server.kubeconfig_yaml("alpha")).unwrap();
    std::fs::write(&beta_file, beta.server.kubeconfig_yaml("beta")).unwrap();
    let list = std::env::join_paths([&alpha_file, &beta_file]).unwrap();
    assert!(list.to_string_lossy().contains(':'));
    let empty_home = home(None);

    let state = tempfile::tempdir().unwrap();
    let output = output_within(
        install_command(state.path(), release.path(), "kube:beta", empty_home.path())
            .env("KUBECONFIG", &list),
    );
    assert_applied_to(state.path(), output, &beta, Some("beta"), "created");
    assert_untouched(&alpha);

    let state = tempfile::tempdir().unwrap();
    let output = output_within(
        install_command(state.path(), release.path(), "kube", empty_home.path())
            .env("KUBECONFIG", &list),
    );
    assert_applied_to(state.path(), output, &alpha, None, "created");
}
