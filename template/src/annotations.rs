//! `kots.io/exclude` and `kots.io/when` on a rendered document (`kots pkg/base/base.go
//! isExcludedByAnnotation`): when `kots.io/exclude` is present it alone decides (true leaves the
//! document out); otherwise `kots.io/when` false leaves it out. A value is a YAML bool or a string
//! Go's `strconv.ParseBool` reads (`1 t T TRUE true True 0 f F FALSE false False`); anything else
//! is an error, as in KOTS. The annotation stays on the deployed object.

use crate::functions::args::parse_go_bool;

/// `kots.io/exclude`.
pub const EXCLUDE: &str = "kots.io/exclude";
/// `kots.io/when`.
pub const WHEN: &str = "kots.io/when";

/// An annotation whose value is not a bool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation} is {value}, not a bool (use true or false)")]
pub struct AnnotationError {
    /// The annotation.
    pub annotation: &'static str,
    /// Its value, as JSON.
    pub value: String,
}

/// Why a document is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The annotation that decided.
    pub annotation: &'static str,
}

/// Whether `document` (parsed) is left out: `Ok(Some(..))` names the annotation that decided.
pub fn excluded(document: &serde_json::Value) -> Result<Option<Excluded>, AnnotationError> {
    let annotations = document.pointer("/metadata/annotations");
    let read = |annotation: &'static str| -> Result<Option<bool>, AnnotationError> {
        let Some(value) = annotations.and_then(|annotations| annotations.get(annotation)) else {
            return Ok(None);
        };
        let parsed = match value {
            serde_json::Value::Bool(value) => Some(*value),
            serde_json::Value::String(text) => parse_go_bool(text),
            serde_json::Value::Number(number) => parse_go_bool(&number.to_string()),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| AnnotationError {
            annotation,
            value: value.to_string(),
        })
    };
    if let Some(exclude) = read(EXCLUDE)? {
        return Ok(exclude.then_some(Excluded {
            annotation: EXCLUDE,
        }));
    }
    Ok(match read(WHEN)? {
        Some(false) => Some(Excluded { annotation: WHEN }),
        _ => None,
    })
}
