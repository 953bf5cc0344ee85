//! The pipeline file: a pipeline described as data, in YAML, so that an install can run stages
//! other than the built-in default (`windlass install --pipeline FILE`). It lists the stages in
//! order, each with its name, kind, inputs and configuration:
//!
//! ```yaml
//! stages:
//!   - name: fetch_base
//!     kind: fetch_base
//!   - name: probe_images
//!     kind: probe_images
//!     inputs: [fetch_base]
//!     config:
//!       offline: true
//! ```
//!
//! A `plugins` list may sit beside `stages`: the engine lets it through unread, and the binary
//! hands it to `windlass-plugin-host`, which inserts the plugin stages it declares.
//!
//! Reading it collects every problem before failing, each named by the file and the key it is at
//! (`stages[1].inputs[0]`): first the shape of the file, then — when the shape is right — every
//! problem [`Pipeline::build`] finds (unknown kind, invalid configuration, duplicate name, missing
//! input, cycle). The text of the file never appears in a message beyond what is needed to point
//! at the problem; stage configurations are recorded in the log (`InstallStarted`), so a pipeline
//! file must hold no secret.

use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::pipeline::{Pipeline, StageRegistry, StageSpec};

/// The largest pipeline file read.
pub const MAX_PIPELINE_FILE_BYTES: u64 = windlass_files::MIB;

/// Why a pipeline file was not used.
#[derive(Debug, thiserror::Error)]
pub enum PipelineFileError {
    /// The file could not be read (missing, not a regular file, too large, not UTF-8).
    #[error("pipeline file {path}: {problem}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        problem: windlass_files::ReadError,
    },
    /// The file is not valid YAML.
    #[error("pipeline file {0}")]
    Syntax(windlass_files::YamlProblem),
    /// The file is YAML but not a valid pipeline: every problem found.
    #[error("{}", Problems { path, problems })]
    Invalid {
        /// The file.
        path: String,
        /// Each problem, led by the key it is at.
        problems: Vec<String>,
    },
}

struct Problems<'a> {
    path: &'a str,
    problems: &'a [String],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [problem] = self.problems {
            return write!(f, "pipeline file {}: {problem}", self.path);
        }
        write!(
            f,
            "pipeline file {} has {} problems:",
            self.path,
            self.problems.len()
        )?;
        for problem in self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Reads the pipeline file at `path` and builds it with the kinds of `registry`.
pub fn load_pipeline(path: &Path, registry: &StageRegistry) -> Result<Pipeline, PipelineFileError> {
    let shown = path.display().to_string();
    let specs = read_pipeline_file(path)?;
    build_specs(&shown, &specs, registry)
}

/// Builds `specs` read from the pipeline file `shown`, naming each problem by the stage's key.
fn build_specs(
    shown: &str,
    specs: &[StageSpec],
    registry: &StageRegistry,
) -> Result<Pipeline, PipelineFileError> {
    Pipeline::build(specs, registry).map_err(|errors| PipelineFileError::Invalid {
        path: shown.to_string(),
        problems: errors
            .0
            .iter()
            .map(|error| {
                let stage = match error {
                    crate::PipelineError::UnknownKind { stage, .. }
                    | crate::PipelineError::InvalidConfig { stage, .. }
                    | crate::PipelineError::MissingInput { stage, .. } => Some(stage),
                    crate::PipelineError::DuplicateName { name } => Some(name),
                    crate::PipelineError::Cycle { .. } => None,
                };
                let position =
                    stage.and_then(|stage| specs.iter().rposition(|spec| &spec.name == stage));
                match position {
                    Some(position) => format!("stages[{position}]: {error}"),
                    None => format!("stages: {error}"),
                }
            })
            .collect(),
    })
}

/// Reads the pipeline file at `path` into stage specs, checking its shape (not the kinds).
pub fn read_pipeline_file(path: &Path) -> Result<Vec<StageSpec>, PipelineFileError> {
    let shown = path.display().to_string();
    let text =
        windlass_files::read_regular_text(path, MAX_PIPELINE_FILE_BYTES).map_err(|problem| {
            PipelineFileError::Read {
                path: shown.clone(),
                problem,
            }
        })?;
    parse_pipeline(&shown, &text)
}

/// Parses the text of a pipeline file (named `shown` in messages) into stage specs.
pub fn parse_pipeline(shown: &str, text: &str) -> Result<Vec<StageSpec>, PipelineFileError> {
    let document: Value = serde_saphyr::from_str(text).map_err(|error| {
        let at = error
            .location()
            .map(|location| (location.line(), location.column()));
        let message = error.without_snippet().to_string();
        PipelineFileError::Syntax(windlass_files::yaml_problem(shown, text, &message, at))
    })?;
    let mut problems = Vec::new();
    let specs = read_document(&document, &mut problems);
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(PipelineFileError::Invalid {
            path: shown.to_string(),
            problems,
        })
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn read_document(document: &Value, problems: &mut Vec<String>) -> Vec<StageSpec> {
    let Some(top) = document.as_object() else {
        problems.push(format!(
            "the file must be a mapping with a `stages` list, not {}",
            kind_of(document)
        ));
        return Vec::new();
    };
    // `plugins` is read by whoever inserts plugin stages (the binary, through
    // `windlass-plugin-host`); the engine only lets it through.
    for key in top
        .keys()
        .filter(|key| !["stages", "plugins"].contains(&key.as_str()))
    {
        problems.push(format!(
            "{key}: unknown key (a pipeline file has only `stages` and `plugins`)"
        ));
    }
    let stages = match top.get("stages") {
        None => {
            problems.push("stages: missing (list the pipeline's stages)".into());
            return Vec::new();
        }
        Some(Value::Array(stages)) => stages,
        Some(other) => {
            problems.push(format!("stages: must be a list, not {}", kind_of(other)));
            return Vec::new();
        }
    };
    if stages.is_empty() {
        problems.push("stages: the list is empty".into());
    }
    stages
        .iter()
        .enumerate()
        .filter_map(|(index, stage)| read_stage(&format!("stages[{index}]"), stage, problems))
        .collect()
}

fn read_stage(at: &str, stage: &Value, problems: &mut Vec<String>) -> Option<StageSpec> {
    let Some(fields) = stage.as_object() else {
        problems.push(format!(
            "{at}: must be a mapping with name, kind, inputs and config, not {}",
            kind_of(stage)
        ));
        return None;
    };
    let before = problems.len();
    for key in fields.keys() {
        if !["name", "kind", "inputs", "config"].contains(&key.as_str()) {
            problems.push(format!(
                "{at}.{key}: unknown key (a stage has name, kind, inputs and config)"
            ));
        }
    }
    let mut text = |key: &str| match fields.get(key) {
        None => {
            problems.push(format!("{at}.{key}: missing"));
            None
        }
        Some(Value::String(value)) if value.trim().is_empty() => {
            problems.push(format!("{at}.{key}: must not be empty"));
            None
        }
        Some(Value::String(value)) => Some(value.clone()),
        Some(other) => {
            problems.push(format!(
                "{at}.{key}: must be a string, not {}",
                kind_of(other)
            ));
            None
        }
    };
    let name = text("name");
    let kind = text("kind");
    let inputs = match fields.get("inputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(inputs)) => inputs
            .iter()
            .enumerate()
            .filter_map(|(index, input)| match input {
                Value::String(input) if !input.trim().is_empty() => Some(input.clone()),
                other => {
                    problems.push(format!(
                        "{at}.inputs[{index}]: must be a stage name, not {}",
                        match other {
                            Value::String(_) => "an empty string",
                            other => kind_of(other),
                        }
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            problems.push(format!(
                "{at}.inputs: must be a list of stage names, not {}",
                kind_of(other)
            ));
            Vec::new()
        }
    };
    let config = match fields.get("config") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(config @ Value::Object(_)) => config.clone(),
        Some(other) => {
            problems.push(format!(
                "{at}.config: must be a mapping, not {}",
                kind_of(other)
            ));
            Value::Null
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(StageSpec {
        name: name?,
        kind: kind?,
        inputs,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse_pipeline("p.yaml", text) {
            Err(PipelineFileError::Invalid { problems, .. }) => problems,
            other => panic!("expected shape problems, got {other:?}"),
        }
    }

    #[test]
    fn a_well_formed_file_gives_its_specs_in_order() {
        let specs = parse_pipeline(
            "p.yaml",
            "stages:\n  - name: a\n    kind: k\n  - name: b\n    kind: k\n    inputs: [a]\n    config: {x: 1}\n",
        )
        .expect("valid");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].config, serde_json::json!({}));
        assert_eq!(specs[1].inputs, ["a"]);
        assert_eq!(specs[1].config, serde_json::json!({ "x": 1 }));
    }

    #[test]
    fn every_shape_problem_is_reported_with_its_key() {
        assert_eq!(
            problems(
                "stage: 1\nstages:\n  - name: a\n  - kind: k\n    inputs: a\n  - name: c\n    kind: [1]\n    inputs: ['', 3]\n    config: 4\n    when: never\n  - 5\n"
            ),
            [
                "stage: unknown key (a pipeline file has only `stages` and `plugins`)",
                "stages[0].kind: missing",
                "stages[1].name: missing",
                "stages[1].inputs: must be a list of stage names, not a string",
                "stages[2].when: unknown key (a stage has name, kind, inputs and config)",
                "stages[2].kind: must be a string, not a list",
                "stages[2].inputs[0]: must be a stage name, not an empty string",
                "stages[2].inputs[1]: must be a stage name, not a number",
                "stages[2].config: must be a mapping, not a number",
                "stages[3]: must be a mapping with name, kind, inputs and config, not a number",
            ]
        );
    }

    #[test]
    fn a_plugins_list_beside_the_stages_is_let_through_for_the_plugin_host() {
        let specs = parse_pipeline(
            "p.yaml",
            "stages:\n  - name: a\n    kind: k\nplugins:\n  - name: p\n    exec: ./p.py\n    after: a\n",
        )
        .expect("valid");
        assert_eq!(specs.len(), 1, "plugins are not stages of the file");
    }

    #[test]
    fn a_file_without_stages_says_so() {
        assert_eq!(
            problems("{}"),
            ["stages: missing (list the pipeline's stages)"]
        );
        assert_eq!(
            problems("- a\n"),
            ["the file must be a mapping with a `stages` list, not a list"]
        );
        assert_eq!(problems("stages: []\n"), ["stages: the list is empty"]);
    }

    #[test]
    fn a_syntax_error_names_the_file() {
        let error = parse_pipeline("p.yaml", "stages: [\n").expect_err("invalid YAML");
        assert!(
            error.to_string().starts_with("pipeline file p.yaml"),
            "{error}"
        );
    }
}
