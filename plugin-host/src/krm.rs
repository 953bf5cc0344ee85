//! The KRM function protocol (`config.kubernetes.io/v1` `ResourceList`), as `kustomize fn` and
//! kpt speak it: the input list (`items` annotated with where each came from, `functionConfig`),
//! and the checks on what a function prints (a `ResourceList` of KRM objects, `results` with a
//! `message` each). Pure: no I/O.

use serde_json::{Value, json};

use crate::events::PluginResult;

/// The `apiVersion` written; `config.kubernetes.io/v1beta1` is accepted on output too.
pub const API_VERSION: &str = "config.kubernetes.io/v1";
/// The annotation holding an item's file, relative and `/`-separated.
pub const PATH_ANNOTATION: &str = "internal.config.kubernetes.io/path";
/// The annotation holding an item's position in its file, from 0.
pub const INDEX_ANNOTATION: &str = "internal.config.kubernetes.io/index";
/// The older spellings kustomize still sets beside the internal ones.
const LEGACY_PATH_ANNOTATION: &str = "config.kubernetes.io/path";
const LEGACY_INDEX_ANNOTATION: &str = "config.kubernetes.io/index";

/// An item sent to a function: the object and where it came from.
#[derive(Debug, Clone)]
pub struct InputItem {
    /// The object as windlass holds it.
    pub object: Value,
    /// Its file, relative to `base/`'s source (the release) or to `rendered/this-cluster/`.
    pub path: String,
    /// Its position in that file, from 0.
    pub index: usize,
}

/// An item a function returned: the object without the location annotations, and the location
/// it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputItem {
    /// The object, location annotations removed.
    pub object: Value,
    /// `internal.config.kubernetes.io/path` (or the older spelling), when set.
    pub path: Option<String>,
    /// `internal.config.kubernetes.io/index` (or the older spelling), when set and a number.
    pub index: Option<usize>,
}

/// What a function printed, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceListOutput {
    /// The items, in the order printed.
    pub items: Vec<OutputItem>,
    /// The results.
    pub results: Vec<PluginResult>,
}

/// The `ResourceList` sent to a function, as JSON text (which is YAML): `items` annotated with
/// their location, and `functionConfig`.
pub fn input_resource_list(items: &[InputItem], function_config: &Value) -> Vec<u8> {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut object = item.object.clone();
            if let Some(metadata) = object
                .as_object_mut()
                .map(|object| object.entry("metadata").or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut)
            {
                let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
                if let Some(annotations) = annotations.as_object_mut() {
                    let index = item.index.to_string();
                    annotations.insert(PATH_ANNOTATION.into(), Value::String(item.path.clone()));
                    annotations.insert(INDEX_ANNOTATION.into(), Value::String(index.clone()));
                    annotations.insert(
                        LEGACY_PATH_ANNOTATION.into(),
                        Value::String(item.path.clone()),
                    );
                    annotations.insert(LEGACY_INDEX_ANNOTATION.into(), Value::String(index));
                }
            }
            object
        })
        .collect();
    let list = json!({
        "apiVersion": API_VERSION,
        "kind": "ResourceList",
        "items": items,
        "functionConfig": function_config,
    });
    let mut text = serde_json::to_vec_pretty(&list).expect("JSON values serialise");
    text.push(b'\n');
    text
}

/// The `functionConfig` for a plugin: its `config` as given when that is a KRM object (it has
/// `apiVersion` and `kind`, as a function's own config type does), otherwise wrapped as the
/// `spec` of a `windlass.dev/v1` `PluginConfig` named after the plugin. Either way `context`
/// says which documents the function is given and the release's digest.
pub fn function_config(
    plugin: &str,
    config: &Value,
    documents: &str,
    release_digest: &str,
) -> Value {
    let is_krm_object = config.get("apiVersion").is_some_and(Value::is_string)
        && config.get("kind").is_some_and(Value::is_string);
    if is_krm_object {
        return config.clone();
    }
    json!({
        "apiVersion": "windlass.dev/v1",
        "kind": "PluginConfig",
        "metadata": {"name": plugin},
        "spec": config,
        "context": {"documents": documents, "releaseDigest": release_digest},
    })
}

/// Checks and reads what a function printed: one YAML (or JSON) document, a `ResourceList` whose
/// `items` are KRM objects (a mapping each with string `apiVersion`, `kind` and `metadata.name`)
/// and whose `results`, if any, each have a `message` and a known `severity`. Every problem is
/// one line naming the item or result.
pub fn read_output(stdout: &[u8]) -> Result<ResourceListOutput, String> {
    let text = std::str::from_utf8(stdout).map_err(|_| "its output is not UTF-8".to_string())?;
    if text.trim().is_empty() {
        return Err("it printed nothing (a ResourceList was expected on stdout)".into());
    }
    // JSON (what most functions print, and YAML too) is read by the JSON parser, many times
    // faster; anything else by the YAML parser, which also reports the problems.
    let as_json = text
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str::<Value>(text).ok())
        .flatten();
    let list: Value = match as_json {
        Some(list) => list,
        None => serde_saphyr::from_str(text).map_err(|error| {
            let location = error
                .location()
                .map(|location| format!(" at line {}", location.line()))
                .unwrap_or_default();
            let message = error.without_snippet().to_string();
            let message = message.lines().next().unwrap_or_default().to_string();
            format!("its output is not one YAML document{location}: {message}")
        })?,
    };
    let Some(list) = list.as_object() else {
        return Err("its output is not a ResourceList (not a mapping)".into());
    };
    let kind = list.get("kind").and_then(Value::as_str);
    let api_version = list.get("apiVersion").and_then(Value::as_str);
    if kind != Some("ResourceList")
        || !matches!(
            api_version,
            Some("config.kubernetes.io/v1" | "config.kubernetes.io/v1beta1")
        )
    {
        return Err(format!(
            "its output is not a ResourceList (apiVersion {}, kind {}; expected config.kubernetes.io/v1 ResourceList)",
            api_version.unwrap_or("missing"),
            kind.unwrap_or("missing")
        ));
    }
    let items = match list.get("items") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => {
            return Err(
                "its output has no `items` list (return the items, even if empty: `items: []`)"
                    .into(),
            );
        }
        Some(_) => return Err("its output's `items` is not a list".into()),
    };
    let mut problems = Vec::new();
    let mut read = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        match output_item(item) {
            Ok(item) => read.push(item),
            Err(problem) => problems.push(format!("items[{position}]: {problem}")),
        }
    }
    let results = match list.get("results") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(results)) => results
            .iter()
            .enumerate()
            .filter_map(|(position, result)| match plugin_result(result) {
                Ok(result) => Some(result),
                Err(problem) => {
                    problems.push(format!("results[{position}]: {problem}"));
                    None
                }
            })
            .collect(),
        Some(_) => {
            problems.push("results: not a list".into());
            Vec::new()
        }
    };
    if let Some(first) = problems.first() {
        let more = match problems.len() {
            1 => String::new(),
            count => format!(" (and {} more problems)", count - 1),
        };
        return Err(format!("its output is malformed: {first}{more}"));
    }
    Ok(ResourceListOutput {
        items: read,
        results,
    })
}

fn output_item(item: &Value) -> Result<OutputItem, String> {
    let Some(object) = item.as_object() else {
        return Err("not a mapping".into());
    };
    for key in ["apiVersion", "kind"] {
        match object.get(key) {
            Some(Value::String(text)) if !text.is_empty() => {}
            _ => return Err(format!("{key} is missing or not a string")),
        }
    }
    match item.pointer("/metadata/name") {
        Some(Value::String(name)) if !name.is_empty() => {}
        _ => return Err("metadata.name is missing or not a string".into()),
    }
    let mut object = item.clone();
    let mut path = None;
    let mut index = None;
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            let mut take = |keys: [&str; 2]| {
                let values: Vec<Option<Value>> =
                    keys.iter().map(|key| annotations.remove(*key)).collect();
                values.into_iter().flatten().next()
            };
            path = take([PATH_ANNOTATION, LEGACY_PATH_ANNOTATION])
                .and_then(|value| value.as_str().map(str::to_string));
            index =
                take([INDEX_ANNOTATION, LEGACY_INDEX_ANNOTATION]).and_then(|value| match value {
                    Value::String(text) => text.parse().ok(),
                    Value::Number(number) => number.as_u64().map(|n| n as usize),
                    _ => None,
                });
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
        if metadata.is_empty() {
            object
                .as_object_mut()
                .expect("checked to be a mapping")
                .remove("metadata");
        }
    }
    if let Some(path) = &path {
        check_relative_path(path)?;
    }
    Ok(OutputItem {
        object,
        path,
        index,
    })
}

/// A path annotation must stay inside the tree it names a file of.
fn check_relative_path(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(format!(
            "annotation {PATH_ANNOTATION} {path:?} is not a relative path inside the tree"
        ));
    }
    Ok(())
}

fn plugin_result(result: &Value) -> Result<PluginResult, String> {
    let Some(fields) = result.as_object() else {
        return Err("not a mapping".into());
    };
    let message = match fields.get("message") {
        Some(Value::String(message)) => message.clone(),
        _ => return Err("message is missing or not a string".into()),
    };
    let severity = match fields.get("severity") {
        None | Some(Value::Null) => "info".to_string(),
        Some(Value::String(severity)) if severity.is_empty() => "info".to_string(),
        Some(Value::String(severity))
            if ["error", "warning", "info"].contains(&severity.as_str()) =>
        {
            severity.clone()
        }
        Some(other) => {
            return Err(format!("severity {other} is not error, warning or info"));
        }
    };
    let field = |key: &str| fields.get(key).filter(|value| !value.is_null()).cloned();
    Ok(PluginResult {
        severity,
        message,
        resource_ref: field("resourceRef"),
        field: field("field"),
        file: field("file"),
        tags: field("tags"),
    })
}

/// `object` without the location annotations windlass adds (for comparing an item returned with
/// the one sent).
pub fn without_location(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
    {
        for key in [
            PATH_ANNOTATION,
            INDEX_ANNOTATION,
            LEGACY_PATH_ANNOTATION,
            LEGACY_INDEX_ANNOTATION,
        ] {
            annotations.remove(key);
        }
    }
    object
}

/// A one-line description of a result, for messages: `message (Kind/name, field path)`.
pub fn describe_result(result: &PluginResult) -> String {
    let mut at = Vec::new();
    if let Some(reference) = &result.resource_ref {
        let text = |key: &str| reference.get(key).and_then(Value::as_str).unwrap_or("");
        at.push(format!("{}/{}", text("kind"), text("name")));
    }
    if let Some(path) = result
        .field
        .as_ref()
        .and_then(|field| field.get("path"))
        .and_then(Value::as_str)
    {
        at.push(path.to_string());
    }
    if at.is_empty() {
        result.message.clone()
    } else {
        format!("{} ({})", result.message, at.join(", "))
    }
}
