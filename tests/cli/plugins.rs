//! Plugin stages through the real binary: the example exec plugin (`plugins/audit-label`, a KRM
//! function in Python) placed after `render_midstream` and before `plan_overrides`, declared in
//! the `--config` file and in a pipeline file; what is recorded (`PluginRan` with the
//! executable's sha256, the input and output `ResourceList` blobs, the results); a replay with the
//! plugin made unrunnable and then deleted; a resume after the process is killed past the
//! plugin; every failure mode (a non-zero exit, a signal, a
//! timeout, malformed output, output over the cap, an `error` result, a program that cannot
//! run); declaration errors refused before anything is recorded; and the in-process
//! `image_allowlist` plugin.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::state_integrity::{run_within, text};

fn audit_label() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/audit-label/audit-label.py")
}

/// Writes an executable `name` into `dir` with `body`.
fn executable(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Writes a config file declaring `plugins` (YAML list items, indented by two) into `dir`.
fn config_file(dir: &Path, plugins: &str) -> PathBuf {
    let path = dir.join("windlass.yaml");
    std::fs::write(&path, format!("plugins:\n{plugins}")).unwrap();
    path
}

/// `install --offline --json --config CONFIG <quickstart>`: its output (not asserted).
fn install_with(state: &Path, config: &Path) -> Output {
    run_within(
        windlass(state)
            .args(OFFLINE_INSTALL)
            .arg("--json")
            .arg("--config")
            .arg(config)
            .arg(quickstart()),
        120,
    )
}

fn events_of(state: &Path, install_id: &str) -> Vec<serde_json::Value> {
    json(run_within(
        windlass(state).args(["events", install_id, "--json"]),
        60,
    ))
    .as_array()
    .unwrap()
    .clone()
}

fn sha256_of(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    text(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn rendered(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join("rendered/this-cluster").join(name)).unwrap()
}

/// A plugin (Python, reading the JSON windlass sends) that adds a Deployment running
/// `vendor.example/team/added:1.0` to the items.
const ADD_DEPLOYMENT: &str = r#"#!/usr/bin/env python3
import json, sys
resource_list = json.load(sys.stdin)
resource_list["items"].append({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "added"},
    "spec": {"template": {"spec": {"containers": [{"name": "added", "image": "vendor.example/team/added:1.0"}]}}},
})
resource_list["results"] = [{"severity": "warning", "message": "added a Deployment"}]
json.dump(resource_list, sys.stdout)
"#;

#[test]
fn an_exec_plugin_after_render_midstream_labels_the_rendered_objects_and_is_recorded() {
    let work = tempfile::tempdir().unwrap();
    let config = config_file(
        work.path(),
        &format!(
            "  - name: audit-label\n    exec: {}\n    args: [--verbose]\n    after: render_midstream\n    timeout_seconds: 30\n    config: {{team: platform}}\n",
            audit_label().display()
        ),
    );
    let state = tempfile::tempdir().unwrap();
    let install = json(install_with(state.path(), &config));
    assert_eq!(install["status"], "completed", "{install}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    for file in [
        "api-deployment.yaml",
        "api-service.yaml",
        "api-settings-configmap.yaml",
        "nightly-report-cronjob.yaml",
    ] {
        assert!(
            rendered(&out, file).contains("audit.example.com/team: platform"),
            "{file} is not labelled:\n{}",
            rendered(&out, file)
        );
    }
    // The pull secret holds the license ID: never sent to a plugin, kept as rendered (0600).
    let secret = out.join("rendered/this-cluster/my-app-registry-secret.yaml");
    assert!(
        !std::fs::read_to_string(&secret)
            .unwrap()
            .contains("audit.example.com")
    );
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !out.join("base/manifests/api.yaml").exists()
            || !std::fs::read_to_string(out.join("base/manifests/api.yaml"))
                .unwrap()
                .contains("audit.example.com"),
        "base/ is not the plugin's"
    );

    let install_id = install["install_id"].as_str().unwrap();
    let events = events_of(state.path(), install_id);
    let ran = payloads_of_type(&events, "PluginRan");
    assert_eq!(ran.len(), 1);
    let ran = &ran[0];
    assert_eq!(ran["plugin"], "audit-label");
    assert_eq!(ran["documents"], "rendered");
    assert_eq!(ran["executable"], audit_label().display().to_string());
    assert_eq!(ran["executable_sha256"], sha256_of(&audit_label()));
    assert_eq!(ran["args"], serde_json::json!(["--verbose"]));
    assert_eq!(
        ran["input"]["items"], 4,
        "every rendered object but the secret"
    );
    assert_eq!(ran["output"]["items"], 4);
    assert_eq!(ran["results"][0]["severity"], "info");
    assert!(
        ran["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("labelled 4 objects")
    );
    let environment: Vec<&str> = ran["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    assert!(environment.contains(&"HOME") && !environment.contains(&"CARGO"));
    // The plugin's MidstreamRendered lists the files it wrote; apply and replay read that one.
    let rendered_facts = payloads_of_type(&events, "MidstreamRendered");
    assert_eq!(rendered_facts.len(), 2);
    let stages: Vec<&str> = install["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages.last(), Some(&"audit-label"));
    // The input and output ResourceLists are blobs the log names, checked by verify-log.
    let verified = run_within(windlass(state.path()).arg("verify-log"), 60);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
}

#[test]
fn an_exec_plugin_before_plan_overrides_gets_the_base_documents_and_its_images_are_rewritten() {
    let work = tempfile::tempdir().unwrap();
    let plugin = executable(work.path(), "add-deployment.py", ADD_DEPLOYMENT);
    let config = config_file(
        work.path(),
        "  - name: add-deployment\n    exec: ./add-deployment.py\n    before: plan_overrides\n",
    );
    let state = tempfile::tempdir().unwrap();
    let install = json(install_with(state.path(), &config));
    assert_eq!(install["status"], "completed", "{install}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    // The new object is a base document (under the plugin's directory), probed and rewritten.
    let base =
        std::fs::read_to_string(out.join("base/plugin-add-deployment/added-deployment.yaml"))
            .unwrap();
    assert!(
        base.contains("image: vendor.example/team/added:1.0"),
        "{base}"
    );
    let kustomization = std::fs::read_to_string(out.join("base/kustomization.yaml")).unwrap();
    assert!(kustomization.contains("plugin-add-deployment/added-deployment.yaml"));
    let deployment = rendered(&out, "added-deployment.yaml");
    assert!(
        deployment
            .contains("image: proxy.replicated.com/proxy/my-app/vendor.example/team/added:1.0"),
        "{deployment}"
    );
    assert!(
        deployment.contains("my-app-registry"),
        "patched with the pull secret"
    );
    // Objects it returned unchanged keep their bytes.
    assert_eq!(
        std::fs::read(out.join("base/manifests/api.yaml")).unwrap(),
        std::fs::read(quickstart().join("manifests/api.yaml")).unwrap()
    );
    let install_id = install["install_id"].as_str().unwrap();
    let events = events_of(state.path(), install_id);
    let probed = &payloads_of_type(&events, "ImagesProbed")[0];
    assert!(
        probed["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|image| image["image"] == "vendor.example/team/added:1.0"),
        "{probed}"
    );
    let ran = &payloads_of_type(&events, "PluginRan")[0];
    assert_eq!(ran["documents"], "base");
    assert_eq!(ran["executable"], plugin.display().to_string());
    assert_eq!(ran["results"][0]["severity"], "warning");
    assert_eq!(
        ran["output"]["items"].as_u64(),
        Some(ran["input"]["items"].as_u64().unwrap() + 1)
    );
}

#[test]
fn a_plugin_using_install_replays_identically_without_the_plugin() {
    let work = tempfile::tempdir().unwrap();
    let label = work.path().join("audit-label.py");
    std::fs::copy(audit_label(), &label).unwrap();
    executable(work.path(), "add-deployment.py", ADD_DEPLOYMENT);
    let config = config_file(
        work.path(),
        "  - name: add-deployment\n    exec: add-deployment.py\n    before: plan_overrides\n  - name: audit-label\n    exec: ./audit-label.py\n    after: render_midstream\n    config: {team: platform}\n",
    );
    let state = tempfile::tempdir().unwrap();
    let install = json(install_with(state.path(), &config));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap();

    // Not executable any more: a replay must not try to run it.
    for plugin in ["audit-label.py", "add-deployment.py"] {
        std::fs::set_permissions(
            work.path().join(plugin),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let license = quickstart().join("userdata/license.yaml");
    let replay = json(run_within(
        windlass(state.path())
            .args(["replay", install_id, "--json", "--license"])
            .arg(&license),
        120,
    ));
    assert_eq!(replay["differences"], serde_json::json!([]), "{replay}");
    let verdicts: Vec<(&str, &str)> = replay["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| {
            (
                stage["stage"].as_str().unwrap(),
                stage["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        verdicts.contains(&("audit-label", "identical")),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&("add-deployment", "identical")),
        "{verdicts:?}"
    );
    assert!(
        replay["secret_files_compared"].as_u64().unwrap() >= 2,
        "{replay}"
    );

    // Gone altogether: the same.
    std::fs::remove_dir_all(work.path()).unwrap();
    let replay = json(run_within(
        windlass(state.path()).args(["replay", install_id, "--json"]),
        120,
    ));
    assert_eq!(replay["differences"], serde_json::json!([]), "{replay}");
}

#[test]
fn plugins_declared_in_a_pipeline_file_run_relative_to_it() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("fns")).unwrap();
    std::fs::copy(audit_label(), work.path().join("fns/audit-label.py")).unwrap();
    let default = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("stages/default-pipeline.yaml"),
    )
    .unwrap();
    let pipeline = work.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "{default}plugins:\n  - name: label\n    exec: fns/audit-label.py\n    before: write_base\n    config: {{team: pipeline-team}}\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let install = json(run_within(
        windlass(state.path())
            .args(["install", "--json", "--pipeline"])
            .arg(&pipeline)
            .arg(quickstart()),
        120,
    ));
    assert_eq!(install["status"], "completed", "{install}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    assert!(
        std::fs::read_to_string(out.join("base/manifests/api.yaml"))
            .unwrap()
            .contains("audit.example.com/team: pipeline-team")
    );
    assert!(
        rendered(&out, "api-deployment.yaml").contains("audit.example.com/team: pipeline-team")
    );
}

/// Installs the quickstart with one plugin, `program`, declared with `extra` settings; returns
/// the output, asserting the install failed in stage `broken` with exit code `code` and a message
/// containing each of `expected`.
fn fails_with(program: &str, extra: &str, code: i32, expected: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    executable(work.path(), "broken.sh", program);
    let config = config_file(
        work.path(),
        &format!("  - name: broken\n    exec: ./broken.sh\n    after: render_midstream\n{extra}"),
    );
    let state = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let output = install_with(state.path(), &config);
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(output.status.code(), Some(code), "{}", text(&output.stderr));
    let install: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(install["status"], "failed", "{install}");
    assert_eq!(install["failure"]["stage"], "broken");
    let message = install["failure"]["message"].as_str().unwrap();
    assert!(message.starts_with("plugin broken"), "{message}");
    for expected in expected {
        assert!(
            message.contains(expected),
            "{message} (expected {expected})"
        );
    }
    // The rendered objects are render_midstream's, untouched.
    let out = PathBuf::from(install["out"].as_str().unwrap());
    assert!(!rendered(&out, "api-deployment.yaml").contains("broken"));
}

#[test]
fn a_plugin_exiting_non_zero_fails_its_stage_with_its_stderr() {
    fails_with(
        "#!/bin/sh\ncat >/dev/null\necho 'cannot parse the policy' >&2\nexit 4\n",
        "",
        1,
        &["broken.sh exited with status 4: cannot parse the policy"],
    );
}

#[test]
fn a_plugin_killed_by_a_signal_fails_its_stage() {
    fails_with(
        "#!/bin/sh\ncat >/dev/null\nkill -KILL $$\n",
        "",
        1,
        &["was killed by signal 9"],
    );
}

#[test]
fn a_plugin_past_its_timeout_is_killed_and_fails_its_stage() {
    fails_with(
        "#!/bin/sh\nsleep 30\n",
        "    timeout_seconds: 1\n",
        1,
        &["timed out after 1 s and was killed"],
    );
}

#[test]
fn malformed_plugin_output_fails_its_stage() {
    fails_with(
        "#!/bin/sh\ncat >/dev/null\necho 'items: ['\n",
        "",
        1,
        &["its output is not one YAML document"],
    );
    fails_with(
        "#!/bin/sh\ncat >/dev/null\necho '{\"apiVersion\": \"config.kubernetes.io/v1\", \"kind\": \"ResourceList\", \"items\": [{\"kind\": \"ConfigMap\"}]}'\n",
        "",
        1,
        &["its output is malformed: items[0]: apiVersion is missing or not a string"],
    );
}

#[test]
fn plugin_output_over_the_cap_fails_its_stage() {
    fails_with(
        "#!/bin/sh\ncat >/dev/null\nwhile true; do echo 'padding padding padding padding'; done\n",
        "    max_output_bytes: 4096\n",
        1,
        &["printed more than 4096 bytes on stdout (the output cap) and was killed"],
    );
}

#[test]
fn an_error_result_fails_its_stage_as_invalid_input() {
    fails_with(
        "#!/bin/sh\ncat >/dev/null\necho '{\"apiVersion\": \"config.kubernetes.io/v1\", \"kind\": \"ResourceList\", \"items\": [], \"results\": [{\"severity\": \"error\", \"message\": \"replicas must be 3\", \"resourceRef\": {\"kind\": \"Deployment\", \"name\": \"api\"}, \"field\": {\"path\": \"spec.replicas\"}}]}'\n",
        "",
        3,
        &["reported 1 error result(s): replicas must be 3 (Deployment/api, spec.replicas)"],
    );
}

#[test]
fn a_plugin_that_cannot_run_fails_its_stage_as_invalid_input() {
    // A script whose interpreter does not exist: the exec itself fails.
    fails_with("#!/nonexistent/interpreter\n", "", 3, &["cannot run "]);
}

#[test]
fn declaration_errors_are_refused_before_anything_is_recorded() {
    let work = tempfile::tempdir().unwrap();
    let config = config_file(
        work.path(),
        "  - name: missing\n    exec: ./missing.py\n    after: render_midstream\n  - name: misplaced\n    exec: ./windlass.yaml\n    after: probe_images\n",
    );
    let state = tempfile::tempdir().unwrap();
    let output = install_with(state.path(), &config);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "config file {}: plugins[0].exec: {}",
            config.display(),
            work.path().join("missing.py").display()
        )),
        "{stderr}"
    );
    let output = install_with(
        state.path(),
        &config_file(
            work.path(),
            "  - name: misplaced\n    exec: ./windlass.yaml\n    after: probe_images\n",
        ),
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("plugins[0].after: probe_images is a probe_images stage, which holds no documents to transform"),
        "{}",
        text(&output.stderr)
    );
    let history = json(run_within(
        windlass(state.path()).args(["history", "--json"]),
        60,
    ));
    assert_eq!(history, serde_json::json!([]), "nothing was recorded");
}

#[test]
fn the_in_process_image_allowlist_plugin_fails_an_install_with_an_image_off_its_list() {
    let work = tempfile::tempdir().unwrap();
    let declare = |allowed: &str| {
        config_file(
            work.path(),
            &format!(
                "  - name: allowed-images\n    stage: image_allowlist\n    before: plan_overrides\n    config:\n      allowed: [{allowed}]\n"
            ),
        )
    };
    let state = tempfile::tempdir().unwrap();
    let output = install_with(
        state.path(),
        &declare("quay.io/my-org/, docker.io/library/nginx"),
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let install: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(install["failure"]["stage"], "allowed-images");
    assert_eq!(
        install["failure"]["message"],
        "1 image(s) not on the allow-list of allowed-images: myorg/private-reporter:2.0 (CronJob nightly-report in manifests/nightly-report.yaml)"
    );
    let plan = install["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|stage| stage["name"] == "plan_overrides")
        .unwrap();
    assert_ne!(
        plan["status"], "completed",
        "the check holds plan_overrides back"
    );

    let install = json(install_with(
        state.path(),
        &declare("quay.io/my-org/, docker.io/library/nginx, docker.io/myorg/private-reporter"),
    ));
    assert_eq!(install["status"], "completed", "{install}");
}

#[test]
fn an_install_killed_after_a_rendered_plugin_resumes_with_what_the_plugin_returned() {
    let work = tempfile::tempdir().unwrap();
    let config = config_file(
        work.path(),
        &format!(
            "  - name: audit-label\n    exec: {}\n    after: render_midstream\n    config: {{team: platform}}\n",
            audit_label().display()
        ),
    );
    let state = tempfile::tempdir().unwrap();
    let mut child = windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--config")
        .arg(&config)
        .arg(quickstart())
        .env("WINDLASS_PAUSE_AFTER_STAGE", "audit-label")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::wait_for_pause(&mut child, "audit-label");
    child.kill().unwrap();
    child.wait().unwrap();
    // The resume restores render_midstream's files (which the plugin had changed) and then the
    // plugin's, from its recorded output: the plugin does not run again.
    let install = json(install_with(state.path(), &config));
    assert_eq!(install["status"], "completed", "{install}");
    assert_eq!(install["resumed"], 1, "{install}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    assert!(rendered(&out, "api-deployment.yaml").contains("audit.example.com/team: platform"));
    let install_id = install["install_id"].as_str().unwrap();
    assert_eq!(
        payloads_of_type(&events_of(state.path(), install_id), "PluginRan").len(),
        1,
        "the plugin ran once"
    );
}

#[test]
fn a_what_if_that_changes_a_plugins_input_says_the_recorded_output_does_not_apply() {
    let work = tempfile::tempdir().unwrap();
    let label = work.path().join("audit-label.py");
    std::fs::copy(audit_label(), &label).unwrap();
    let config = config_file(
        work.path(),
        "  - name: audit-label\n    exec: ./audit-label.py\n    after: render_midstream\n    config: {team: platform}\n",
    );
    let state = tempfile::tempdir().unwrap();
    let install = json(install_with(state.path(), &config));
    let install_id = install["install_id"].as_str().unwrap();
    std::fs::remove_file(&label).unwrap();
    let what_if = json(run_within(
        windlass(state.path()).args([
            "replay",
            install_id,
            "--json",
            "--proxy-domain",
            "proxy.other.example",
        ]),
        120,
    ));
    let plugin = what_if["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|difference| difference["stage"] == "audit-label")
        .unwrap_or_else(|| panic!("no difference for the plugin: {what_if}"));
    assert_eq!(plugin["kind"], "failed");
    let detail = plugin["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("plugin audit-label: its input differs from the recorded run's"),
        "{detail}"
    );
    // render_midstream's own files are compared on disk (the plugin lists none of its overlay).
    assert!(
        what_if["differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|difference| {
                difference["file"] == "overlays/midstream/kustomization.yaml"
                    && difference["detail"]
                        .as_str()
                        .unwrap()
                        .contains("proxy.other.example")
            }),
        "{what_if}"
    );
}

#[test]
fn a_pipeline_file_with_plugins_still_names_its_own_problems_by_key() {
    let work = tempfile::tempdir().unwrap();
    executable(work.path(), "fn.sh", "#!/bin/sh\ncat\n");
    let pipeline = work.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "stages:\n  - name: fetch_base\n    kind: fetch_base\n  - name: render\n    kind: render_everything\nplugins:\n  - name: x\n    exec: fn.sh\n    after: fetch_base\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = run_within(
        windlass(state.path())
            .args(["install", "--pipeline"])
            .arg(&pipeline)
            .arg(quickstart()),
        60,
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(&format!(
            "pipeline file {}: stages[1]: stage \"render\": unknown stage kind \"render_everything\"",
            pipeline.display()
        )),
        "{}",
        text(&output.stderr)
    );
}
