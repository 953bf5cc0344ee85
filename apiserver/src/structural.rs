//! Structural pruning and defaulting of custom resources by their CRD version's
//! `openAPIV3Schema`, as the real apiextensions server does on every write: fields the schema
//! does not declare are dropped (unless `x-kubernetes-preserve-unknown-fields` or
//! `additionalProperties` keeps them), then every absent declared property with a `default` is
//! set to it, recursively (inside array items and `additionalProperties` values too). A
//! resource's root, and every `x-kubernetes-embedded-resource` node, keeps `apiVersion`, `kind`
//! and `metadata` whatever the schema says (metadata follows `ObjectMeta`'s own rules, not the
//! schema). Server-side apply does not prune: it refuses a configuration with undeclared fields
//! ([`undeclared_in_apply`]), as structured-merge-diff does when it types the configuration.

use serde_json::{Map, Value};

/// The fields a resource (or an embedded resource) always keeps, whatever its schema declares.
const RESOURCE_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Whether the schema node `node` sets the boolean extension `name`.
fn flag(node: &Value, name: &str) -> bool {
    node.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// The declared properties of a schema node, if it declares any.
fn properties(node: &Value) -> Option<&Map<String, Value>> {
    node.get("properties").and_then(Value::as_object)
}

/// The schema of a map's values when it is one (`additionalProperties: {...}`).
fn additional_schema(node: &Value) -> Option<&Value> {
    node.get("additionalProperties")
        .filter(|schema| schema.is_object())
}

/// Removes from `object` every field its `schema` (a CRD version's `openAPIV3Schema`) does not
/// declare, and returns their paths in the form the real server's warnings use
/// (`spec.bogus`, `spec.items[0].bogus`), sorted as the real server sorts them.
pub fn prune(object: &mut Value, schema: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_node(object, Some(schema), true, &mut String::new(), &mut pruned);
    pruned.sort();
    pruned
}

fn prune_node(
    value: &mut Value,
    schema: Option<&Value>,
    resource_root: bool,
    path: &mut String,
    pruned: &mut Vec<String>,
) {
    // Without a schema (under a node that preserves unknown fields), everything stays.
    let Some(schema) = schema else {
        return;
    };
    match value {
        Value::Object(fields) => {
            let declared = properties(schema);
            let additional = schema.get("additionalProperties");
            let keeps_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields")
                || additional.is_some_and(|additional| additional == &Value::Bool(true));
            let mut removed = Vec::new();
            for (name, child) in fields.iter_mut() {
                if resource_root && RESOURCE_FIELDS.contains(&name.as_str()) {
                    continue;
                }
                let child_schema = declared
                    .and_then(|declared| declared.get(name))
                    .or_else(|| additional.filter(|additional| additional.is_object()));
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                match child_schema {
                    Some(child_schema) => {
                        let embedded = flag(child_schema, "x-kubernetes-embedded-resource");
                        prune_node(child, Some(child_schema), embedded, path, pruned);
                    }
                    None if keeps_unknown => {}
                    None => {
                        pruned.push(path.clone());
                        removed.push(name.clone());
                    }
                }
                path.truncate(length);
            }
            for name in removed {
                fields.shift_remove(&name);
            }
        }
        Value::Array(items) => {
            let item_schema = schema.get("items").filter(|items| items.is_object());
            let embedded =
                item_schema.is_some_and(|item| flag(item, "x-kubernetes-embedded-resource"));
            for (index, item) in items.iter_mut().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                prune_node(item, item_schema, embedded, path, pruned);
                path.truncate(length);
            }
        }
        _ => {}
    }
}

/// Sets every absent declared property of `object` that has a `default` in `schema` to a copy
/// of it, recursively (a default's own declared defaults too). A declared property that is
/// `null` without `nullable: true` is defaulted as if absent, or removed when it has no
/// default, as the real server does.
pub fn default(object: &mut Value, schema: &Value) {
    default_node(object, schema, true);
}

fn default_node(value: &mut Value, schema: &Value, resource_root: bool) {
    match value {
        Value::Object(fields) => {
            let declared = properties(schema);
            if let Some(declared) = declared {
                for (name, property) in declared {
                    if resource_root && RESOURCE_FIELDS.contains(&name.as_str()) {
                        continue;
                    }
                    let nullable = flag(property, "nullable");
                    match (fields.get(name), property.get("default")) {
                        (None, Some(default)) => {
                            fields.insert(name.clone(), default.clone());
                        }
                        (Some(Value::Null), Some(default)) if !nullable => {
                            fields.insert(name.clone(), default.clone());
                        }
                        (Some(Value::Null), None) if !nullable => {
                            fields.shift_remove(name);
                        }
                        _ => {}
                    }
                }
            }
            let additional = additional_schema(schema);
            for (name, child) in fields.iter_mut() {
                if resource_root && RESOURCE_FIELDS.contains(&name.as_str()) {
                    continue;
                }
                if let Some(child_schema) = declared
                    .and_then(|declared| declared.get(name))
                    .or(additional)
                {
                    let embedded = flag(child_schema, "x-kubernetes-embedded-resource");
                    default_node(child, child_schema, embedded);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|items| items.is_object()) {
                let embedded = flag(item_schema, "x-kubernetes-embedded-resource");
                for item in items {
                    default_node(item, item_schema, embedded);
                }
            }
        }
        _ => {}
    }
}

/// The fields of a server-side apply configuration that `schema` does not declare, as
/// structured-merge-diff names them when it fails to type the configuration (`.spec.bogus`,
/// `.spec.items[0].bogus`); empty when the configuration is fully declared.
pub fn undeclared_in_apply(config: &Value, schema: &Value) -> Vec<String> {
    let mut copy = config.clone();
    prune(&mut copy, schema)
        .into_iter()
        .map(|path| format!(".{path}"))
        .collect()
}

/// The message of the real server's refusal of an apply configuration it cannot type (an
/// error structured-merge-diff returns, served as a 500 without a reason): `failed to create
/// typed patch object (<namespace>/<name>; <group>/<version>, Kind=<kind>): <problem>` (e.g.
/// `<path>: field not declared in schema`), several problems listed under `errors:`.
pub fn apply_refusal_message(
    namespace: &str,
    name: &str,
    api_version: &str,
    kind: &str,
    problems: &[String],
) -> String {
    let group_version = if api_version.contains('/') {
        api_version.to_owned()
    } else {
        format!("/{api_version}")
    };
    let errors = match problems {
        [one] => one.clone(),
        _ => format!("errors:\n  {}", problems.join("\n  ")),
    };
    format!(
        "failed to create typed patch object ({namespace}/{name}; {group_version}, Kind={kind}): {errors}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "default": 3},
                "mode": {"type": "string", "default": "fast"},
                "note": {"type": "string", "nullable": true, "default": "n"},
                "limits": {"type": "object", "default": {},
                           "properties": {"cpu": {"type": "string", "default": "1"}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "port": {"type": "integer"},
                    "protocol": {"type": "string", "default": "TCP"}}}},
                "labels": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"value": {"type": "string", "default": "v"}}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                          "properties": {"known": {"type": "string"}}},
                "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                             "properties": {"spec": {"type": "object"}}}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn undeclared_fields_are_pruned_unless_preserved() {
        let mut object = json!({
            "apiVersion": "windlass.test/v1", "kind": "Widget",
            "metadata": {"name": "w", "bogusMeta": 1},
            "bogus": true,
            "spec": {"size": 1, "bogus": "x",
                     "ports": [{"port": 80, "bogus": 1}, {"port": 81}],
                     "labels": {"a": {"value": "1", "bogus": 2}},
                     "extra": {"known": "k", "anything": {"deep": [1]}},
                     "open": {"anything": {"deep": true}},
                     "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                  "spec": {"kept": "no"}, "bogus": 1}},
            "status": {"ready": true, "bogus": 1}
        });
        let pruned = prune(&mut object, &widget_schema());
        assert_eq!(
            pruned,
            [
                "bogus",
                "spec.bogus",
                "spec.labels.a.bogus",
                "spec.ports[0].bogus",
                "spec.template.bogus",
                "spec.template.spec.kept",
                "status.bogus"
            ]
        );
        assert_eq!(
            object,
            json!({
                "apiVersion": "windlass.test/v1", "kind": "Widget",
                "metadata": {"name": "w", "bogusMeta": 1},
                "spec": {"size": 1,
                         "ports": [{"port": 80}, {"port": 81}],
                         "labels": {"a": {"value": "1"}},
                         "extra": {"known": "k", "anything": {"deep": [1]}},
                         "open": {"anything": {"deep": true}},
                         "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                      "spec": {}}},
                "status": {"ready": true}
            })
        );
    }

    #[test]
    fn a_root_that_preserves_unknown_fields_keeps_everything() {
        let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        let mut object = json!({"spec": {"a": 1}, "other": [1, 2]});
        assert!(prune(&mut object, &schema).is_empty());
        assert_eq!(object, json!({"spec": {"a": 1}, "other": [1, 2]}));
    }

    #[test]
    fn absent_and_non_nullable_null_properties_are_defaulted() {
        let mut object = json!({
            "metadata": {"name": "w"},
            "spec": {"mode": null, "note": null, "ports": [{"port": 80}, {"port": 81, "protocol": "UDP"}],
                     "labels": {"a": {}}, "extra": null}
        });
        default(&mut object, &widget_schema());
        assert_eq!(
            object,
            json!({
                "metadata": {"name": "w"},
                "spec": {"mode": "fast", "note": null,
                         "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "UDP"}],
                         "labels": {"a": {"value": "v"}},
                         "size": 3, "limits": {"cpu": "1"}}
            })
        );
        // No spec: nothing declares a default for it, so nothing below it is defaulted.
        let mut bare = json!({"metadata": {"name": "w"}});
        default(&mut bare, &widget_schema());
        assert_eq!(bare, json!({"metadata": {"name": "w"}}));
    }

    #[test]
    fn apply_refusals_name_each_undeclared_field() {
        let config = json!({"apiVersion": "windlass.test/v1", "kind": "Widget",
                            "metadata": {"name": "w"}, "spec": {"size": 1, "bogus": 1}});
        let paths = undeclared_in_apply(&config, &widget_schema());
        assert_eq!(paths, [".spec.bogus"]);
        let problems: Vec<String> = paths
            .iter()
            .map(|path| format!("{path}: field not declared in schema"))
            .collect();
        assert_eq!(
            apply_refusal_message("default", "w", "windlass.test/v1", "Widget", &problems),
            "failed to create typed patch object (default/w; windlass.test/v1, Kind=Widget): .spec.bogus: field not declared in schema"
        );
        assert_eq!(
            apply_refusal_message(
                "",
                "w",
                "v1",
                "Thing",
                &[
                    ".a: field not declared in schema".into(),
                    ".b: field not declared in schema".into()
                ]
            ),
            "failed to create typed patch object (/w; /v1, Kind=Thing): errors:\n  .a: field not declared in schema\n  .b: field not declared in schema"
        );
    }
}
