//! How the real API server refuses a merge, JSON or strategic merge patch whose result does not
//! decode into the typed object (a number where a `map[string]string` wants a string, a field
//! the schema does not declare under `fieldValidation=Strict`): not the decoder's 400 a create
//! or update body gets, but 422 `Invalid` with one cause on field `patch`, as the API server's
//! patch handler words it. Its value is the patched object's JSON for a merge or JSON patch,
//! and the patch as Go prints a map (`%+v`) for a strategic merge patch, whose typed conversion
//! also words a wrong type its own way (`cannot convert int64 to string`).

use serde_json::Value;

use crate::error::ApiError;

/// Which kind of patch produced the object being decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PatchMechanism<'a> {
    /// A merge patch or a JSON patch: the patched document is decoded from JSON.
    Document,
    /// A strategic merge patch (the patch itself, as sent): the patched map is converted into
    /// the typed object.
    Strategic(&'a Value),
}

/// 422 `"" is invalid: patch: Invalid value: "<value>": <detail>`.
pub fn invalid_patch(how: PatchMechanism<'_>, patched: &Value, detail: &str) -> ApiError {
    let value = match how {
        PatchMechanism::Document => patched.to_string(),
        PatchMechanism::Strategic(patch) => go_printed(patch),
    };
    ApiError::invalid(
        "",
        "",
        "",
        &[(
            "patch".to_owned(),
            "FieldValueInvalid".to_owned(),
            format!("Invalid value: {value:?}: {detail}"),
        )],
    )
}

/// Why `wrong` cannot go into a map of `go_type` values (`string` or `[]uint8`): the JSON
/// decoder's words for a patched document, the unstructured converter's for a strategic patch.
pub fn wrong_type(how: PatchMechanism<'_>, wrong: &Value, field: &str, go_type: &str) -> String {
    match how {
        PatchMechanism::Document => format!(
            "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
            json_kind(wrong)
        ),
        PatchMechanism::Strategic(_) => {
            let go_kind = match wrong {
                Value::Number(number) if number.is_i64() || number.is_u64() => "int64",
                Value::Number(_) => "float64",
                Value::Bool(_) => "bool",
                Value::Array(_) => "slice",
                Value::Object(_) => "map",
                Value::String(_) | Value::Null => "string",
            };
            match (go_type, go_kind) {
                ("string", "int64") => "cannot convert int64 to string".to_owned(),
                ("string", _) => "unrecognized type: string".to_owned(),
                (_, kind) => format!("cannot restore slice from {kind}"),
            }
        }
    }
}

/// The JSON decoder's name for the kind of `value`.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::String(_) => "string",
        Value::Null => "null",
    }
}

/// `value` as Go's `fmt` prints the `map[string]interface{}` it decodes to with `%+v`: maps as
/// `map[key:value ...]` in key order, slices as `[a b]`, strings bare, null as `<nil>`.
fn go_printed(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_printed).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let printed: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("{key}:{}", go_printed(value)))
                .collect();
            format!("map[{}]", printed.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_strategic_patch_is_printed_as_go_prints_a_map() {
        let patch = json!({"metadata": {"name": "d"}, "data": {"n": 1, "b": [true, null, "x"]}});
        assert_eq!(
            go_printed(&patch),
            "map[data:map[b:[true <nil> x] n:1] metadata:map[name:d]]"
        );
    }

    #[test]
    fn each_mechanism_words_a_wrong_type_its_own_way() {
        let field = "ConfigMap.data";
        let document = PatchMechanism::Document;
        let patch = json!({});
        let strategic = PatchMechanism::Strategic(&patch);
        assert_eq!(
            wrong_type(document, &json!(1), field, "string"),
            "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
        );
        assert_eq!(
            wrong_type(strategic, &json!(1), field, "string"),
            "cannot convert int64 to string"
        );
        assert_eq!(
            wrong_type(strategic, &json!(1.5), field, "string"),
            "unrecognized type: string"
        );
        assert_eq!(
            wrong_type(strategic, &json!(true), field, "[]uint8"),
            "cannot restore slice from bool"
        );
        let refusal = invalid_patch(document, &json!({"data": {"n": 1}}), "why").status();
        assert_eq!(refusal["code"], 422, "{refusal}");
        assert_eq!(
            refusal["message"],
            r#" "" is invalid: patch: Invalid value: "{\"data\":{\"n\":1}}": why"#
        );
        assert_eq!(
            refusal["details"],
            json!({"causes": [{"reason": "FieldValueInvalid", "field": "patch",
                               "message": r#"Invalid value: "{\"data\":{\"n\":1}}": why"#}]})
        );
    }
}
