//! `Pipeline::build`: every problem of a pipeline definition is reported in one `PipelineErrors`
//! (so a user fixes the definition in one go), and a valid pipeline is ordered so that each stage
//! comes after its inputs. Stages are the test kind `scripted` from [`crate::support`].

use windlass_engine::{Pipeline, PipelineError, PipelineErrors, StageSpec};

use crate::support::{scripted, stage_registry};

fn build_errors(specs: &[StageSpec]) -> PipelineErrors {
    match Pipeline::build(specs, &stage_registry()) {
        Ok(pipeline) => panic!(
            "expected the pipeline to be refused, it built as {:?}",
            pipeline.stage_names()
        ),
        Err(errors) => errors,
    }
}

#[test]
fn build_reports_every_problem_at_once() {
    let mut over_configured = StageSpec::new("bloated", "scripted", &[]);
    over_configured.config = serde_json::json!({ "facts": 1000, "summary": "" });
    let specs = [
        StageSpec::new("fetch", "no_such_kind", &[]),
        scripted("render", &[], None),
        scripted("render", &[], None),
        scripted("deploy", &["missing"], None),
        scripted("ping", &["pong"], None),
        scripted("pong", &["ping"], None),
        over_configured,
    ];

    let errors = build_errors(&specs);

    let expected = [
        PipelineError::UnknownKind {
            stage: "fetch".into(),
            kind: "no_such_kind".into(),
        },
        PipelineError::DuplicateName {
            name: "render".into(),
        },
        PipelineError::MissingInput {
            stage: "deploy".into(),
            input: "missing".into(),
        },
        PipelineError::Cycle {
            stages: vec!["ping".into(), "pong".into()],
        },
        PipelineError::InvalidConfig {
            stage: "bloated".into(),
            problems: vec![
                "facts must be at most 100, got 1000".into(),
                "summary must not be empty".into(),
            ],
        },
    ];
    assert_eq!(
        errors.0.len(),
        expected.len(),
        "expected exactly one error per problem, got {:#?}",
        errors.0
    );
    for error in &expected {
        assert!(
            errors.0.contains(error),
            "{error:?} is missing from {:#?}",
            errors.0
        );
    }

    let display = errors.to_string();
    assert!(
        display.starts_with("the pipeline has 5 problem(s):"),
        "{display}"
    );
    for line in [
        r#"stage "fetch": unknown stage kind "no_such_kind""#,
        r#"stage name "render" is used more than once"#,
        r#"stage "deploy": input "missing" is not a stage of this pipeline"#,
        "stages depend on each other in a cycle: ping → pong",
        r#"stage "bloated": invalid configuration: facts must be at most 100, got 1000; summary must not be empty"#,
    ] {
        assert!(
            display.contains(&format!("\n  - {line}")),
            "display lacks {line:?}:\n{display}"
        );
    }
}

#[test]
fn a_stage_that_is_its_own_input_is_a_cycle() {
    let errors = build_errors(&[scripted("loop", &["loop"], None)]);
    assert_eq!(
        errors.0,
        vec![PipelineError::Cycle {
            stages: vec!["loop".into()]
        }]
    );
}

#[test]
fn a_config_that_does_not_deserialize_is_invalid_config() {
    let mut spec = StageSpec::new("typo", "scripted", &[]);
    spec.config = serde_json::json!({ "factz": 2 });
    let errors = build_errors(&[spec]);
    match errors.0.as_slice() {
        [PipelineError::InvalidConfig { stage, problems }] => {
            assert_eq!(stage, "typo");
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("cannot read the configuration: unknown field `factz`"),
                "{problems:?}"
            );
        }
        other => panic!("expected one InvalidConfig, got {other:#?}"),
    }
}

#[test]
fn diamond_pipeline_orders_inputs_first() {
    // Declared in the worst order: every stage before its inputs.
    let specs = [
        scripted("join", &["left", "right"], None),
        scripted("right", &["root"], None),
        scripted("left", &["root"], None),
        scripted("root", &[], None),
    ];
    let pipeline = Pipeline::build(&specs, &stage_registry()).expect("the diamond is valid");

    let names = pipeline.stage_names();
    let position = |name: &str| {
        names
            .iter()
            .position(|candidate| candidate == name)
            .unwrap_or_else(|| panic!("{name} is missing from {names:?}"))
    };
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(position("root") < position("left"), "{names:?}");
    assert!(position("root") < position("right"), "{names:?}");
    assert!(position("left") < position("join"), "{names:?}");
    assert!(position("right") < position("join"), "{names:?}");

    let join = pipeline
        .record()
        .into_iter()
        .find(|stage| stage.name == "join")
        .expect("join is recorded");
    assert_eq!(join.kind, "scripted");
    assert_eq!(join.inputs, vec!["left", "right"]);
}
