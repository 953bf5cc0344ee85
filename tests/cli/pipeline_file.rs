//! `windlass install --pipeline FILE`: the stages, kinds, inputs and configs come from the file
//! instead of the built-in pipeline (recorded in full in the install's first event); a file with
//! problems is refused with exit 3 naming the file and every key, before anything is recorded;
//! stage options of the built-in pipeline given together with `--pipeline` are refused with exit 2
//! rather than silently ignored.

use std::path::Path;

use crate::{json, quickstart, run, windlass};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn install_runs_the_stages_of_the_pipeline_file() {
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let pipeline = write(
        files.path(),
        "base-only.yaml",
        "stages:\n  - name: fetch\n    kind: fetch_base\n    config: {max_files: 500}\n  - name: write\n    kind: write_base\n    inputs: [fetch]\n",
    );
    let install = json(run(windlass(state.path())
        .args(["install", "--json", "--pipeline"])
        .arg(&pipeline)
        .arg(quickstart())));
    assert_eq!(install["status"], "completed");
    let stages: Vec<(&str, &str)> = install["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| {
            (
                stage["name"].as_str().unwrap(),
                stage["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(stages, [("fetch", "fetch_base"), ("write", "write_base")]);
    let out = Path::new(install["out"].as_str().unwrap());
    assert!(out.join("base/kustomization.yaml").is_file());
    assert!(
        !out.join("rendered").exists(),
        "no render stage in this pipeline"
    );
    let install_id = install["install_id"].as_str().unwrap();
    let events = json(run(
        windlass(state.path()).args(["events", install_id, "--json"])
    ));
    let started = &events.as_array().unwrap()[0];
    assert_eq!(started["type"], "InstallStarted");
    assert_eq!(started["schema_version"], 3);
    assert_eq!(
        started["payload"]["pipeline"][0]["config"],
        serde_json::json!({ "max_files": 500 }),
        "the stage's configuration is recorded in full"
    );
}

#[test]
fn a_bad_pipeline_file_exits_3_naming_the_file_and_every_key() {
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let pipeline = write(
        files.path(),
        "broken.yaml",
        "stages:\n  - name: fetch\n    kind: fetch_everything\n  - name: write\n    kind: write_base\n    inputs: [fetch]\n    config: [1]\n",
    );
    let output = run(windlass(state.path())
        .args(["install", "--pipeline"])
        .arg(&pipeline)
        .arg(quickstart()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let shown = pipeline.display();
    assert!(
        stderr.contains(&format!(
            "pipeline file {shown}: stages[1].config: must be a mapping, not a list"
        )),
        "{stderr}"
    );
    let output = run(windlass(state.path())
        .args(["install", "--pipeline"])
        .arg(write(
            files.path(),
            "unknown.yaml",
            "stages:\n  - name: fetch\n    kind: fetch_everything\n  - name: write\n    kind: write_base\n    inputs: [fetch, render]\n",
        ))
        .arg(quickstart()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for problem in [
        "has 2 problems:",
        "- stages[0]: stage \"fetch\": unknown stage kind \"fetch_everything\"",
        "- stages[1]: stage \"write\": input \"render\" is not a stage of this pipeline",
    ] {
        assert!(
            stderr.contains(problem),
            "{problem:?} missing from {stderr}"
        );
    }
    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    assert_eq!(history, serde_json::json!([]), "nothing was recorded");
}

#[test]
fn stage_options_with_a_pipeline_file_exit_2_naming_the_stages() {
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let pipeline = write(
        files.path(),
        "base.yaml",
        "stages:\n  - name: fetch_base\n    kind: fetch_base\n",
    );
    let output = run(windlass(state.path())
        .args(["install", "--offline", "--kots-compat", "--pipeline"])
        .arg(&pipeline)
        .arg(quickstart()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--pipeline: options that configure the built-in pipeline's probe_images, provision_secrets stage(s) were given too"),
        "{stderr}"
    );
}
