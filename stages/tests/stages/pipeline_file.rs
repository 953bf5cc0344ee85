//! The pipeline file with the built-in stage kinds: `default-pipeline.yaml` at the crate root is
//! today's default pipeline written as data, and reading it gives exactly the pipeline
//! `default_pipeline` builds in code (same stages, inputs, configurations and fingerprint, so an
//! install started with either resumes with the other); a file with problems in its shape and in
//! its stages is refused with every problem, each named by the file and its key.

use std::path::Path;

use windlass_engine::pipeline_file::{PipelineFileError, load_pipeline, read_pipeline_file};
use windlass_engine::{Pipeline, StageRegistry};
use windlass_stages::{PipelineOptions, default_pipeline, stage_kinds};

use crate::support::temp_dir;

fn default_pipeline_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("default-pipeline.yaml")
}

#[test]
fn the_default_pipeline_file_is_the_built_in_default() {
    let registry = StageRegistry::new(&stage_kinds());
    let in_code = default_pipeline(&PipelineOptions::default());
    let from_file = read_pipeline_file(&default_pipeline_file()).expect("the file reads");
    assert_eq!(
        from_file,
        in_code,
        "default-pipeline.yaml differs from default_pipeline(); the code's pipeline as JSON:\n{}",
        serde_json::to_string_pretty(
            &in_code
                .iter()
                .map(|spec| serde_json::json!({
                    "name": spec.name, "kind": spec.kind, "inputs": spec.inputs, "config": spec.config
                }))
                .collect::<Vec<_>>()
        )
        .unwrap()
    );
    let built = load_pipeline(&default_pipeline_file(), &registry).expect("the file builds");
    let in_code = Pipeline::build(&in_code, &registry).expect("the default builds");
    assert_eq!(built.fingerprint(), in_code.fingerprint());
    assert_eq!(built.stage_names(), in_code.stage_names());
}

#[test]
fn every_problem_of_a_pipeline_file_is_named_by_file_and_key() {
    let dir = temp_dir();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "stages:\n  - name: fetch_base\n    kind: fetch_base\n    config: {max_files: 0}\n  - name: probe\n    kind: probe_everything\n    inputs: [fetch_base]\n  - name: write_base\n    kind: write_base\n    inputs: [fetch]\n",
    )
    .unwrap();
    let shown = path.display().to_string();
    let error = load_pipeline(&path, &StageRegistry::new(&stage_kinds()))
        .err()
        .expect("the pipeline is refused");
    assert!(
        matches!(error, PipelineFileError::Invalid { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "pipeline file {shown} has 3 problems:\n  \
             - stages[0]: stage \"fetch_base\": invalid configuration: max_files must be positive\n  \
             - stages[1]: stage \"probe\": unknown stage kind \"probe_everything\"\n  \
             - stages[2]: stage \"write_base\": input \"fetch\" is not a stage of this pipeline"
        )
    );
}
