//! Strategic-merge patches as kustomize v5.6 applies the ones windlass writes: maps merge
//! recursively, `null` deletes a field, scalars replace. Lists are where kustomize consults its
//! embedded Kubernetes 1.21 OpenAPI data; this implementation knows two cases for sure and refuses
//! the rest as unsupported:
//!
//! - `imagePullSecrets` at the pod spec of a built-in workload type whose schema kustomize has
//!   (`v1` Pod, PodTemplate, ReplicationController; `apps/v1` Deployment, StatefulSet, DaemonSet,
//!   ReplicaSet; `batch/v1` Job, CronJob; `batch/v1beta1` CronJob) merges by `name`: the patch's
//!   entries first, in the patch's order (each merged into the original entry of that name), then
//!   the original entries the patch does not name, in their order.
//! - any list of a custom resource (a group that is not Kubernetes' own), and `imagePullSecrets` of
//!   workload versions kustomize has no schema for (`apps/v1beta1`, `apps/v1beta2`,
//!   `extensions/v1beta1`, `batch/v2alpha1`), is replaced by the patch's list.
//!
//! Both were verified against `kubectl kustomize` v5.6. Before merging into an object of a type
//! kustomize has a schema for, `merge_keys` checks that every list kustomize merges by key (also
//! the ones the patch does not touch, which kustomize re-builds too) has every element keyed and no
//! key twice; an object where one does not is left to the real kustomize. Patch directives (`$patch`,
//! `$setElementOrder`, …) and the `retainKeys` fields of built-in types (`strategy`,
//! `updateStrategy`) are unsupported.

use serde_json::{Map, Value};

use super::merge_keys;
use super::resource::ResId;

/// Why a patch cannot be applied natively.
#[derive(Debug)]
pub(crate) struct UnsupportedPatch(pub String);

/// Where kustomize's schema puts the pod spec of the workload types whose `imagePullSecrets` it
/// merges by name.
fn merged_pod_spec(id: &ResId) -> Option<&'static [&'static str]> {
    const TEMPLATE: &[&str] = &["spec", "template", "spec"];
    const JOB_TEMPLATE: &[&str] = &["spec", "jobTemplate", "spec", "template", "spec"];
    match (id.group.as_str(), id.version.as_str(), id.kind.as_str()) {
        ("", "v1", "Pod") => Some(&["spec"]),
        ("", "v1", "PodTemplate") => Some(&["template", "spec"]),
        ("", "v1", "ReplicationController") => Some(TEMPLATE),
        ("apps", "v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => Some(TEMPLATE),
        ("batch", "v1", "Job") => Some(TEMPLATE),
        ("batch", "v1" | "v1beta1", "CronJob") => Some(JOB_TEMPLATE),
        _ => None,
    }
}

/// Workload versions kustomize has no schema for: their lists are replaced.
fn unschematized_workload(id: &ResId) -> bool {
    matches!(
        (id.group.as_str(), id.version.as_str()),
        ("apps", "v1beta1" | "v1beta2") | ("extensions", "v1beta1") | ("batch", "v2alpha1")
    )
}

/// Whether the group is one of Kubernetes' own (kustomize may hold a schema for it).
fn is_kubernetes_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

#[derive(Clone, Copy)]
enum ListRule {
    MergeByName,
    Replace,
}

struct Context<'a> {
    id: &'a ResId,
    pod_spec: Option<&'static [&'static str]>,
}

impl Context<'_> {
    fn list_rule(&self, path: &[String]) -> Result<ListRule, UnsupportedPatch> {
        let (key, parent) = path.split_last().expect("a list has a field name");
        if key == "imagePullSecrets"
            && let Some(pod_spec) = self.pod_spec
            && parent
                .iter()
                .map(String::as_str)
                .eq(pod_spec.iter().copied())
        {
            return Ok(ListRule::MergeByName);
        }
        if !is_kubernetes_group(&self.id.group)
            || (key == "imagePullSecrets" && unschematized_workload(self.id))
        {
            return Ok(ListRule::Replace);
        }
        Err(UnsupportedPatch(format!(
            "a patch of a list (`{}`) of {}",
            path.join("."),
            self.id
        )))
    }
}

/// Merges `patch` into `target` (an object kustomize identified as the patch's target).
pub(crate) fn apply(target: &mut Value, patch: &Value) -> Result<(), UnsupportedPatch> {
    let id = ResId::of(target);
    let context = Context {
        pod_spec: merged_pod_spec(&id),
        id: &id,
    };
    if is_kubernetes_group(&id.group) && !unschematized_workload(&id) {
        merge_keys::check(target, &id)?;
    }
    let (Value::Object(target), Value::Object(patch)) = (target, patch) else {
        return Err(UnsupportedPatch("a patch that is not a mapping".into()));
    };
    merge_map(target, patch, &mut Vec::new(), &context)?;
    keep_namespace(target, &id.namespace);
    Ok(())
}

/// Puts back the namespace the object had before the patch, as kustomize's `ApplySmPatch` does
/// (`r.SetNamespace(ns)`): a patch naming another one (`default` for an object without one, or
/// the namespace the object had before a `namespace:` moved it) does not move the object, and an
/// object with an empty namespace (none, or `namespace: ""`) comes out without the field, as
/// kustomize's `SetNamespace("")` leaves it (fixture `patches-of-objects-with-an-empty-namespace`).
/// Its kind and name, which kustomize also puts back, are those the patch named already.
fn keep_namespace(target: &mut Map<String, Value>, namespace: &str) {
    let Some(Value::Object(metadata)) = target.get_mut("metadata") else {
        return;
    };
    if namespace.is_empty() {
        metadata.shift_remove("namespace");
    } else if metadata.get("namespace").and_then(Value::as_str) != Some(namespace) {
        metadata.insert("namespace".into(), Value::String(namespace.to_string()));
    }
}

fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
    context: &Context<'_>,
) -> Result<(), UnsupportedPatch> {
    for (key, patch_value) in patch {
        if key.starts_with('$') {
            return Err(UnsupportedPatch(format!("the patch directive `{key}`")));
        }
        if is_kubernetes_group(&context.id.group)
            && matches!(key.as_str(), "strategy" | "updateStrategy")
        {
            return Err(UnsupportedPatch(format!(
                "a patch of `{key}` (merged with retainKeys) of {}",
                context.id
            )));
        }
        path.push(key.clone());
        match patch_value {
            Value::Null => {
                target.shift_remove(key);
            }
            Value::Object(patch_map) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                let target_map = slot.as_object_mut().expect("just made a map");
                merge_map(target_map, patch_map, path, context)?;
            }
            Value::Array(patch_list) => {
                let merged = match context.list_rule(path)? {
                    ListRule::Replace => patch_list.clone(),
                    ListRule::MergeByName => {
                        merge_by_name(target.get(key), patch_list, path, context)?
                    }
                };
                target.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                target.insert(key.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    Ok(())
}

fn element_name<'a>(element: &'a Value, path: &[String]) -> Result<&'a str, UnsupportedPatch> {
    element
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            UnsupportedPatch(format!(
                "an element of `{}` without a non-empty string `name`",
                path.join(".")
            ))
        })
}

fn merge_by_name(
    original: Option<&Value>,
    patch_list: &[Value],
    path: &mut Vec<String>,
    context: &Context<'_>,
) -> Result<Vec<Value>, UnsupportedPatch> {
    let original: &[Value] = match original {
        Some(Value::Array(items)) => items,
        _ => &[],
    };
    let mut merged = Vec::with_capacity(original.len() + patch_list.len());
    let mut named = Vec::with_capacity(patch_list.len());
    for element in patch_list {
        let name = element_name(element, path)?;
        if named.contains(&name) {
            return Err(UnsupportedPatch(format!(
                "two elements of `{}` named `{name}` in one patch",
                path.join(".")
            )));
        }
        named.push(name);
        let mut result = original
            .iter()
            .find(|item| item.get("name").and_then(Value::as_str) == Some(name))
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let (Value::Object(result_map), Value::Object(patch_map)) = (&mut result, element) else {
            return Err(UnsupportedPatch(format!(
                "an element of `{}` that is not a mapping",
                path.join(".")
            )));
        };
        merge_map(result_map, patch_map, path, context)?;
        merged.push(result);
    }
    for item in original {
        let name = element_name(item, path)?;
        if !named.contains(&name) {
            merged.push(item.clone());
        }
    }
    Ok(merged)
}
