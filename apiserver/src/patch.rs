//! The non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902, including
//! `test`, which kubectl's managedFields migration relies on; an operation that cannot be
//! applied is the real server's bare 422), and strategic merge patch for
//! built-in types, driven by the merge schemas' lists: keyed lists merge by their first key,
//! sets merge as sets, `$patch: delete|replace`, `$retainKeys` and `$deleteFromPrimitiveList/`
//! are honoured, `$setElementOrder/` is accepted and ignored (items keep the live order, new
//! ones are appended). Maps and structs always merge key by key, a `null` deleting its key, even
//! those server-side apply treats as atomic.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::schema::{ListKind, Schema};

/// Applies a JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(patch_map) => {
            let mut out = match target {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            };
            for (key, value) in patch_map {
                if value.is_null() {
                    out.shift_remove(key);
                } else {
                    let merged = merge_patch(out.get(key).unwrap_or(&Value::Null), value);
                    out.insert(key.clone(), merged);
                }
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Why one operation of a JSON patch could not be applied (the JSON patch library's error, which
/// the real server does not show).
type OperationFailure = String;

fn tokens(pointer: &str) -> Result<Vec<String>, OperationFailure> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("json patch path {pointer:?} does not start with /"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(
    document: &'a mut Value,
    path: &[String],
    whole: &str,
) -> Result<&'a mut Value, OperationFailure> {
    let mut current = document;
    for token in path {
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {whole:?}"))?;
    }
    Ok(current)
}

fn add(document: &mut Value, pointer: &str, value: Value) -> Result<(), OperationFailure> {
    let path = tokens(pointer)?;
    let Some((last, parent)) = path.split_last() else {
        *document = value;
        return Ok(());
    };
    match parent_mut(document, parent, pointer)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|index| *index <= items.len())
                    .ok_or_else(|| format!("json patch index in {pointer:?} is out of range"))?
            };
            items.insert(index, value);
        }
        _ => {
            return Err(format!(
                "json patch path {pointer:?} does not name a container"
            ));
        }
    }
    Ok(())
}

fn remove(document: &mut Value, pointer: &str) -> Result<Value, OperationFailure> {
    let path = tokens(pointer)?;
    let Some((last, parent)) = path.split_last() else {
        return Err("json patch cannot remove the whole document".to_owned());
    };
    let missing = || format!("doc is missing path: {pointer:?}");
    match parent_mut(document, parent, pointer)? {
        Value::Object(map) => map.shift_remove(last).ok_or_else(missing),
        Value::Array(items) => {
            let index = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < items.len())
                .ok_or_else(missing)?;
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

/// Applies a JSON patch.
///
/// # Errors
///
/// 400 when the patch is not a list of operations (it does not decode); 422 `Invalid` when an
/// operation cannot be applied (a missing path, an index out of range, a failed `test`, an
/// unknown `op`), with the message the real server gives every such failure: its patch handler
/// wraps the JSON patch library's error in `NewGenericServerResponse(422, ...)`, which keeps
/// only "the server rejected our request due to an error in our request".
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let undecodable = |value: &Value, go_type: &str| {
        ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type {go_type}",
            json_type_name(value)
        ))
    };
    let operations = patch
        .as_array()
        .ok_or_else(|| undecodable(patch, "jsonpatch.Patch"))?;
    if let Some(not_an_object) = operations.iter().find(|operation| !operation.is_object()) {
        return Err(undecodable(not_an_object, "jsonpatch.Operation"));
    }
    let mut document = target.clone();
    for operation in operations {
        apply_operation(&mut document, operation).map_err(|_failure| {
            let mut error = ApiError::custom(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
            );
            error.details = Some(Box::new(Value::Object(Map::new())));
            error
        })?;
    }
    Ok(document)
}

/// The name Go's JSON decoder gives a value's type in its errors.
fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn apply_operation(document: &mut Value, operation: &Value) -> Result<(), OperationFailure> {
    let op = operation.get("op").and_then(Value::as_str).unwrap_or("");
    let path = operation
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("json patch operation {operation} has no path"))?;
    let value = || {
        operation
            .get("value")
            .cloned()
            .ok_or_else(|| format!("json patch operation {operation} has no value"))
    };
    let from = || {
        operation
            .get("from")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("json patch operation {operation} has no from"))
    };
    match op {
        "add" => add(document, path, value()?)?,
        "remove" => {
            remove(document, path)?;
        }
        "replace" => {
            remove(document, path)?;
            add(document, path, value()?)?;
        }
        "move" => {
            let moved = remove(document, from()?)?;
            add(document, path, moved)?;
        }
        "copy" => {
            let from = from()?;
            let copied = document
                .pointer(from)
                .cloned()
                .ok_or_else(|| format!("doc is missing from path: {from:?}"))?;
            add(document, path, copied)?;
        }
        "test" => {
            if document.pointer(path) != Some(&value()?) {
                return Err(format!("testing value {path} failed"));
            }
        }
        other => return Err(format!("Unexpected kind: {other}")),
    }
    Ok(())
}

/// Applies a strategic merge patch under `schema`.
pub fn strategic_merge_patch(target: &Value, patch: &Value, schema: &Schema) -> Value {
    smp_value(Some(target), patch, schema).unwrap_or(Value::Null)
}

fn smp_value(target: Option<&Value>, patch: &Value, schema: &Schema) -> Option<Value> {
    match patch {
        Value::Object(patch_map) => {
            match patch_map.get("$patch").and_then(Value::as_str) {
                Some("delete") => return None,
                Some("replace") => {
                    let mut replaced = patch_map.clone();
                    replaced.shift_remove("$patch");
                    return Some(Value::Object(replaced));
                }
                _ => {}
            }
            // Every struct and map merges key by key (a `null` deletes its key), whatever its
            // apply schema says: a strategic merge patch knows maps only through Go struct tags,
            // and none of them makes a map atomic (a Service's `spec.selector`, atomic for
            // server-side apply, still merges here).
            let mut out = match target {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            for (key, value) in patch_map {
                if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
                    continue;
                }
                if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Some(remove)) =
                        (out.get_mut(field), value.as_array())
                    {
                        items.retain(|item| !remove.contains(item));
                    }
                    continue;
                }
                if value.is_null() {
                    out.shift_remove(key);
                    continue;
                }
                let child_schema = schema.field(key);
                let merged = match value {
                    Value::Array(items) => Some(smp_list(out.get(key), items, child_schema)),
                    _ => smp_value(out.get(key), value, child_schema),
                };
                match merged {
                    Some(merged) => {
                        out.insert(key.clone(), merged);
                    }
                    None => {
                        out.shift_remove(key);
                    }
                }
            }
            if let Some(Value::Array(retain)) = patch_map.get("$retainKeys") {
                out.retain(|key, _| retain.iter().any(|kept| kept.as_str() == Some(key)));
            }
            Some(Value::Object(out))
        }
        _ => Some(patch.clone()),
    }
}

fn smp_list(target: Option<&Value>, patch_items: &[Value], schema: &Schema) -> Value {
    let (kind, item_schema) = schema.as_list();
    let mut out: Vec<Value> = match target {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    if patch_items
        .iter()
        .any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Value::Array(
            patch_items
                .iter()
                .filter(|item| item.get("$patch").is_none())
                .cloned()
                .collect(),
        );
    }
    match kind {
        ListKind::Atomic => Value::Array(patch_items.to_vec()),
        ListKind::Set => {
            for item in patch_items {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Value::Array(out)
        }
        ListKind::Map(keys) => {
            let merge_key = keys.first().cloned().unwrap_or_default();
            for item in patch_items {
                let wanted = item.get(&merge_key);
                let position = out
                    .iter()
                    .position(|existing| existing.get(&merge_key) == wanted);
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(index), true) => {
                        out.remove(index);
                    }
                    (None, true) => {}
                    (Some(index), false) => {
                        if let Some(merged) = smp_value(Some(&out[index]), item, item_schema) {
                            out[index] = merged;
                        }
                    }
                    (None, false) => {
                        if let Some(merged) = smp_value(None, item, item_schema) {
                            out.push(merged);
                        }
                    }
                }
            }
            Value::Array(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_supports_test_and_replace() {
        let target = json!({"metadata": {"annotations": {"a": "1"}}, "list": [1, 2]});
        let patch = json!([
            {"op": "test", "path": "/metadata/annotations/a", "value": "1"},
            {"op": "remove", "path": "/metadata/annotations/a"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "replace", "path": "/list/0", "value": 0}
        ]);
        assert_eq!(
            json_patch(&target, &patch).unwrap(),
            json!({"metadata": {"annotations": {}}, "list": [0, 2, 3]})
        );
        let failing = json!([{"op": "test", "path": "/list/0", "value": 9}]);
        assert_eq!(json_patch(&target, &failing).unwrap_err().code, 422);
    }

    #[test]
    fn merge_patch_removes_nulls() {
        let target = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        let patch = json!({"a": {"b": null, "e": 3}, "d": [2]});
        assert_eq!(
            merge_patch(&target, &patch),
            json!({"a": {"c": 2, "e": 3}, "d": [2]})
        );
    }
}
