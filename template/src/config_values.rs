//! Reading a KOTS `ConfigValues` file (`--config-values`, or `RELEASE_DIR/userdata/config.yaml`):
//! `apiVersion: kots.io/v1beta1`, `kind: ConfigValues`, `spec.values.<item>` with string fields
//! `value`, `valuePlaintext`, `default`, `filename`. Every field must be a string (KOTS fails to
//! decode anything else); messages name the file, the item and the field, never a value.

use std::collections::BTreeMap;

use serde_saphyr::{Budget, Options};

/// Largest ConfigValues file accepted.
pub const MAX_CONFIG_VALUES_BYTES: usize = 4 * 1024 * 1024;

/// A ConfigValues file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config values file {file}: {problem}")]
pub struct ConfigValuesError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

/// One item's entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GivenValue {
    /// `value`, or `valuePlaintext` when that is given.
    pub value: Option<String>,
    /// Whether the value came from `valuePlaintext` (allowed for password items only).
    pub plaintext: bool,
    /// `filename`.
    pub filename: Option<String>,
}

/// The values a ConfigValues file gives, by item name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GivenValues {
    /// Item name → entry.
    pub values: BTreeMap<String, GivenValue>,
}

const FIELDS: [&str; 7] = [
    "value",
    "valuePlaintext",
    "default",
    "filename",
    "data",
    "dataPlaintext",
    "repeatableItem",
];

/// Parses the text of a ConfigValues file named `file`.
pub fn parse_config_values(file: &str, text: &str) -> Result<GivenValues, ConfigValuesError> {
    let problem = |problem: String| ConfigValuesError {
        file: file.to_string(),
        problem,
    };
    if text.len() > MAX_CONFIG_VALUES_BYTES {
        return Err(problem(format!(
            "over the limit of {MAX_CONFIG_VALUES_BYTES} bytes"
        )));
    }
    let mut budget = Budget::default();
    budget.max_aliases = 100;
    budget.max_anchors = 100;
    budget.max_depth = 16;
    budget.max_nodes = 100_000;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    let document: serde_json::Value = serde_saphyr::from_str_with_options(text, options)
        .map_err(|error| problem(format!("not valid YAML: {error}")))?;
    let api_version = document.get("apiVersion").and_then(|v| v.as_str());
    let kind = document.get("kind").and_then(|v| v.as_str());
    if kind != Some("ConfigValues") || api_version != Some("kots.io/v1beta1") {
        return Err(problem(
            "not a KOTS ConfigValues (apiVersion: kots.io/v1beta1, kind: ConfigValues)".into(),
        ));
    }
    let mut given = GivenValues::default();
    let values = match document.pointer("/spec/values") {
        None | Some(serde_json::Value::Null) => return Ok(given),
        Some(serde_json::Value::Object(values)) => values,
        Some(_) => return Err(problem("spec.values is not a mapping".into())),
    };
    for (name, entry) in values {
        let entry = match entry {
            serde_json::Value::Object(entry) => entry,
            serde_json::Value::Null => {
                given.values.insert(name.clone(), GivenValue::default());
                continue;
            }
            _ => {
                return Err(problem(format!(
                    "spec.values.{name} is not a mapping (value, valuePlaintext, filename)"
                )));
            }
        };
        let field = |key: &str| -> Result<Option<String>, ConfigValuesError> {
            match entry.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(problem(format!(
                    "spec.values.{name}.{key} must be a string (quote it)"
                ))),
            }
        };
        for key in entry.keys() {
            if !FIELDS.contains(&key.as_str()) {
                return Err(problem(format!(
                    "spec.values.{name}: unknown field {key} (expected one of {})",
                    FIELDS.join(", ")
                )));
            }
        }
        let value = field("value")?;
        let plaintext = field("valuePlaintext")?;
        let filename = field("filename")?;
        for unsupported in ["data", "dataPlaintext", "repeatableItem"] {
            if field(unsupported)?.is_some() {
                return Err(problem(format!(
                    "spec.values.{name}.{unsupported} is not supported by windlass (use value, or valuePlaintext for a password)"
                )));
            }
        }
        field("default")?;
        let entry = match plaintext {
            Some(plaintext) => GivenValue {
                value: Some(plaintext),
                plaintext: true,
                filename,
            },
            None => GivenValue {
                value,
                plaintext: false,
                filename,
            },
        };
        given.values.insert(name.clone(), entry);
    }
    Ok(given)
}
