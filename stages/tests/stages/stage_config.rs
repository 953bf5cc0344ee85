//! The configuration halves of `fetch_base` and `write_base` as a pipeline definition sees them:
//! each case is a stage config in, the pipeline built or the problems reported out, through the
//! real `Pipeline::build` and this crate's registration list. One install then checks that a
//! configured limit reaches the release scan.

use std::sync::Arc;

use serde_json::json;
use windlass_engine::{FailureClass, InstallStatus, Pipeline, StageRegistry, StageSpec};

use crate::support::{Installer, fixture, temp_dir};

fn pipeline_with(fetch_base: serde_json::Value, write_base: serde_json::Value) -> Vec<StageSpec> {
    let mut specs = windlass_stages::base_pipeline();
    specs[0].config = fetch_base;
    specs[1].config = write_base;
    specs
}

/// Builds the default pipeline with the given configs: `Ok(())` or every problem, joined.
fn build(fetch_base: serde_json::Value, write_base: serde_json::Value) -> Result<(), String> {
    Pipeline::build(
        &pipeline_with(fetch_base, write_base),
        &StageRegistry::new(&windlass_stages::stage_kinds()),
    )
    .map(|_| ())
    .map_err(|errors| errors.to_string())
}

/// A pair of stage configs and the problems building them must report (none: it builds).
struct Case {
    fetch_base: serde_json::Value,
    write_base: serde_json::Value,
    problems: &'static [&'static str],
}

#[test]
fn stage_configs_are_validated_when_the_pipeline_is_built() {
    let case = |fetch_base, write_base, problems| Case {
        fetch_base,
        write_base,
        problems,
    };
    let cases = [
        case(json!({}), json!({}), &[]),
        case(
            json!({"max_files": 5, "max_file_bytes": 10, "max_total_bytes": 10}),
            json!({}),
            &[],
        ),
        case(
            json!({"max_file": 5}),
            json!({}),
            &["stage \"fetch_base\": invalid configuration: fetch_base: unknown field `max_file`"],
        ),
        case(
            json!({"max_files": 0, "max_file_bytes": 0}),
            json!({}),
            &["max_file_bytes must be positive; max_files must be positive"],
        ),
        case(
            json!({"max_file_bytes": 10, "max_total_bytes": 5}),
            json!({}),
            &["max_total_bytes must be at least max_file_bytes"],
        ),
        case(
            json!({"max_files": 0}),
            json!({"out": "x"}),
            &[
                "the pipeline has 2 problem(s)",
                "max_files must be positive",
                "stage \"write_base\": invalid configuration: write_base: unknown field `out`",
            ],
        ),
    ];
    for case in cases {
        let built = build(case.fetch_base.clone(), case.write_base.clone());
        match (case.problems, &built) {
            ([], Ok(())) => {}
            (wanted, Err(message)) if !wanted.is_empty() => {
                for wanted in wanted {
                    assert!(message.contains(wanted), "{message:?} lacks {wanted:?}");
                }
            }
            (wanted, _) => panic!(
                "{} / {}: expected problems {wanted:?}, got {built:?}",
                case.fetch_base, case.write_base
            ),
        }
    }
}

#[tokio::test]
async fn configured_limits_reach_the_release_scan() {
    let installer = Installer::new();
    let pipeline = Pipeline::build(
        &pipeline_with(json!({"max_files": 3}), json!({})),
        &StageRegistry::new(&windlass_stages::stage_kinds()),
    )
    .expect("builds");
    let out = temp_dir();
    let request = installer.request(&fixture("good/release"), &out.path().join("out"));
    let (state, _) = installer
        .runner
        .start(&pipeline, Arc::new(request), "limited")
        .await
        .expect("the runner runs");
    assert_eq!(state.status, InstallStatus::Failed);
    let failure = state.failure.expect("recorded");
    assert_eq!(failure.class, FailureClass::InvalidInput);
    assert_eq!(failure.message, "release has more than 3 files");
}
