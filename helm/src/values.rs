//! A HelmChart's values as KOTS merges them (`pkg/base/helm.go`, `MergeHelmChartValues`):
//! `spec.values`, then each `optionalValues` entry whose `when` is true, in order — with
//! `recursiveMerge: true` maps merge key by key (an overlay scalar or list replaces; a base map
//! stays when the overlay value is not a map), otherwise the entry's top-level keys replace the
//! merged ones wholesale. `when` and `exclude` are read as Go's `strconv.ParseBool` reads them; an
//! empty or unparsable `when` fails, as it fails KOTS's render.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use windlass_kots::OptionalValues;

/// Why values could not be merged, or `exclude` not decided.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValuesError {
    /// An `optionalValues` entry's `when` is missing or empty.
    #[error("spec.optionalValues[{index}].when is empty: it must be true or false")]
    EmptyWhen {
        /// The entry's position, from 0.
        index: usize,
    },
    /// An `optionalValues` entry's `when` is not a boolean.
    #[error(
        "spec.optionalValues[{index}].when is {shown}, not a boolean (true, false, 1, 0, t, f)"
    )]
    BadWhen {
        /// The entry's position, from 0.
        index: usize,
        /// The value, quoted.
        shown: String,
    },
    /// `spec.exclude` is not a boolean.
    #[error("spec.exclude is {shown}, not a boolean (true, false, 1, 0, t, f)")]
    BadExclude {
        /// The value, quoted.
        shown: String,
    },
}

impl ValuesError {
    /// The message without the value it quotes: for a chart whose values hold a password value,
    /// the value may be the password.
    pub fn message_without_value(&self) -> String {
        match self {
            ValuesError::BadWhen { index, .. } => format!(
                "spec.optionalValues[{index}].when is not a boolean (true, false, 1, 0, t, f); its value is not shown"
            ),
            ValuesError::BadExclude { .. } => {
                "spec.exclude is not a boolean (true, false, 1, 0, t, f); its value is not shown"
                    .to_string()
            }
            other => other.to_string(),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    };
    if text.len() > 80 {
        format!("{}...", &text[..text.floor_char_boundary(77)])
    } else {
        text
    }
}

/// Whether `spec.exclude` leaves the chart out: absent or empty is false (KOTS skips the check),
/// otherwise it must parse as a boolean.
pub fn is_excluded(exclude: Option<&Value>) -> Result<bool, ValuesError> {
    match exclude {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(false),
        Some(Value::String(text)) => {
            parse_go_bool(text.trim()).ok_or_else(|| ValuesError::BadExclude {
                shown: shown(&Value::String(text.clone())),
            })
        }
        Some(other) => Err(ValuesError::BadExclude {
            shown: shown(other),
        }),
    }
}

/// `spec.values` with every `optionalValues` entry whose `when` is true merged over it.
pub fn merge_values(
    values: &BTreeMap<String, Value>,
    optional_values: &[OptionalValues],
) -> Result<Map<String, Value>, ValuesError> {
    let mut merged: Map<String, Value> = values
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    for (index, optional) in optional_values.iter().enumerate() {
        let when = match &optional.when {
            None | Some(Value::Null) => return Err(ValuesError::EmptyWhen { index }),
            Some(Value::Bool(value)) => *value,
            Some(Value::String(text)) if text.trim().is_empty() => {
                return Err(ValuesError::EmptyWhen { index });
            }
            Some(Value::String(text)) => {
                parse_go_bool(text.trim()).ok_or_else(|| ValuesError::BadWhen {
                    index,
                    shown: shown(&Value::String(text.clone())),
                })?
            }
            Some(other) => {
                return Err(ValuesError::BadWhen {
                    index,
                    shown: shown(other),
                });
            }
        };
        if !when {
            continue;
        }
        for (key, value) in &optional.values {
            if optional.recursive_merge {
                merge_recursively(&mut merged, key, value);
            } else {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(merged)
}

fn merge_recursively(base: &mut Map<String, Value>, key: &str, overlay: &Value) {
    match (base.get_mut(key), overlay) {
        (None, _) => {
            base.insert(key.to_string(), overlay.clone());
        }
        (Some(Value::Object(base_map)), Value::Object(overlay_map)) => {
            for (child, value) in overlay_map {
                merge_recursively(base_map, child, value);
            }
        }
        // KOTS keeps a base map when the overlay value is not a map.
        (Some(Value::Object(_)), _) => {}
        (Some(slot), _) => *slot = overlay.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    fn optional(when: Value, recursive_merge: bool, values: Value) -> OptionalValues {
        OptionalValues {
            when: Some(when),
            recursive_merge,
            values: map(values),
        }
    }

    #[test]
    fn optional_values_merge_in_order_recursively_or_at_top_level() {
        let base = map(json!({"image": {"repository": "nginx", "tag": "1"}, "replicas": 1}));
        let merged = merge_values(
            &base,
            &[
                optional(json!("true"), true, json!({"image": {"tag": "2"}})),
                optional(json!("false"), false, json!({"replicas": 9})),
                optional(json!("1"), true, json!({"image": "scalar"})),
            ],
        )
        .unwrap();
        assert_eq!(
            Value::Object(merged),
            json!({"image": {"repository": "nginx", "tag": "2"}, "replicas": 1})
        );
        let merged = merge_values(
            &base,
            &[optional(json!("T"), false, json!({"image": {"tag": "3"}}))],
        )
        .unwrap();
        assert_eq!(
            Value::Object(merged),
            json!({"image": {"tag": "3"}, "replicas": 1})
        );
    }

    #[test]
    fn an_empty_or_unparsable_when_is_an_error() {
        let base = BTreeMap::new();
        assert_eq!(
            merge_values(&base, &[optional(json!(""), false, json!({}))]),
            Err(ValuesError::EmptyWhen { index: 0 })
        );
        let error = merge_values(
            &base,
            &[
                optional(json!("true"), false, json!({})),
                optional(json!("yes"), false, json!({})),
            ],
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "spec.optionalValues[1].when is \"yes\", not a boolean (true, false, 1, 0, t, f)"
        );
    }

    #[test]
    fn exclude_reads_go_booleans() {
        assert_eq!(is_excluded(None), Ok(false));
        assert_eq!(is_excluded(Some(&json!("True"))), Ok(true));
        assert_eq!(is_excluded(Some(&json!(""))), Ok(false));
        assert!(is_excluded(Some(&json!("maybe"))).is_err());
    }
}
