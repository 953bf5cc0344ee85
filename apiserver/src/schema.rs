//! The structural schemas that server-side apply merges by: scalars, maps (structs with named
//! fields, or string-keyed maps, each either granular or atomic) and lists (atomic, sets of
//! scalars, or maps keyed by one or more fields), following structured-merge-diff's model.
//!
//! Built-in types get hand-written schemas (`builtin_schemas.rs`); custom resources get theirs
//! from the CRD's `openAPIV3Schema` (`from_openapi_v3`), honouring `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type` and
//! `x-kubernetes-preserve-unknown-fields`. Anything a schema does not describe is "deduced" as
//! structured-merge-diff does: maps are granular, lists atomic.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// How the items of a list are merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// The list is replaced whole and owned as one field.
    Atomic,
    /// A set of scalars: each value is owned on its own.
    Set,
    /// A list of objects keyed by these fields: each item is owned on its own.
    Map(Vec<String>),
}

/// A map: a struct with named fields, or a map from strings to `element`, or both.
#[derive(Clone, Debug, Default)]
pub struct MapSchema {
    /// The named fields.
    pub fields: BTreeMap<String, Arc<Schema>>,
    /// The schema of any other key (None: deduced).
    pub element: Option<Arc<Schema>>,
    /// Whether the map is replaced whole and owned as one field.
    pub atomic: bool,
    /// Whether creating the map makes it a field of its own (`.` in `FieldsV1`): true for
    /// string-keyed maps and for optional structs; false for Go value structs such as `spec`.
    pub pointer: bool,
}

/// A list and how its items merge.
#[derive(Clone, Debug)]
pub struct ListSchema {
    /// The schema of every item.
    pub item: Arc<Schema>,
    /// How items are merged.
    pub kind: ListKind,
    /// Whether creating the list makes it a field of its own (`.` in `FieldsV1`): true for the
    /// lists Go omits when empty, false for required lists such as `containers`.
    pub pointer: bool,
}

/// A structural schema.
#[derive(Clone, Debug)]
pub enum Schema {
    /// A leaf value; `default` is used when it is a list-map key missing from an item.
    Scalar {
        /// The value the API server defaults it to, if any.
        default: Option<Value>,
    },
    /// A map or struct.
    Map(MapSchema),
    /// A list.
    List(ListSchema),
    /// Unknown structure: maps granular, lists atomic, scalars leaves.
    Deduced,
}

static DEDUCED: Schema = Schema::Deduced;

impl Schema {
    /// The schema of the map field `name` (deduced when not described).
    pub fn field(&self, name: &str) -> &Schema {
        match self {
            Schema::Map(map) => map
                .fields
                .get(name)
                .or(map.element.as_ref())
                .map_or(&DEDUCED, |schema| schema.as_ref()),
            _ => &DEDUCED,
        }
    }

    /// Whether `name` is a declared (named) field of this struct.
    pub fn is_named_field(&self, name: &str) -> bool {
        matches!(self, Schema::Map(map) if map.fields.contains_key(name))
    }

    /// The map view of this schema for a value that is a JSON object.
    pub fn as_map(&self) -> MapView<'_> {
        match self {
            Schema::Map(map) => MapView {
                atomic: map.atomic,
                pointer: map.pointer,
                schema: self,
            },
            _ => MapView {
                atomic: false,
                pointer: true,
                schema: &DEDUCED,
            },
        }
    }

    /// The list view of this schema for a value that is a JSON array.
    pub fn as_list(&self) -> (ListKind, &Schema) {
        match self {
            Schema::List(list) => (list.kind.clone(), list.item.as_ref()),
            _ => (ListKind::Atomic, &DEDUCED),
        }
    }

    /// Whether a list under this schema is a node of its own when created.
    pub fn list_is_pointer(&self) -> bool {
        match self {
            Schema::List(list) => list.pointer,
            _ => true,
        }
    }

    /// The schema of the child reached by a `FieldsV1` path element.
    pub fn child(&self, element: &str) -> &Schema {
        match element.strip_prefix("f:") {
            Some(name) => self.field(name),
            None => self.as_list().1,
        }
    }

    /// The default of a scalar, if any.
    pub fn default_value(&self) -> Option<&Value> {
        match self {
            Schema::Scalar { default } => default.as_ref(),
            _ => None,
        }
    }
}

/// How a JSON object is treated under a schema.
pub struct MapView<'a> {
    /// Replaced whole.
    pub atomic: bool,
    /// Owned as a node of its own when created.
    pub pointer: bool,
    /// The schema, to look fields up in.
    pub schema: &'a Schema,
}

/// A scalar.
pub fn scalar() -> Arc<Schema> {
    Arc::new(Schema::Scalar { default: None })
}

/// A scalar the API server defaults to `default`.
pub fn scalar_default(default: Value) -> Arc<Schema> {
    Arc::new(Schema::Scalar {
        default: Some(default),
    })
}

/// Unknown structure.
pub fn deduced() -> Arc<Schema> {
    Arc::new(Schema::Deduced)
}

/// A value struct (never absent in Go, so creating it is not a field of its own).
pub fn object(fields: &[(&str, Arc<Schema>)]) -> Arc<Schema> {
    Arc::new(Schema::Map(MapSchema {
        fields: fields
            .iter()
            .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
            .collect(),
        element: None,
        atomic: false,
        pointer: false,
    }))
}

/// An optional struct (a pointer in Go: creating it is a field of its own).
pub fn optional_object(fields: &[(&str, Arc<Schema>)]) -> Arc<Schema> {
    let mut built = MapSchema {
        fields: fields
            .iter()
            .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
            .collect(),
        ..MapSchema::default()
    };
    built.pointer = true;
    Arc::new(Schema::Map(built))
}

/// A struct replaced and owned whole (`x-kubernetes-map-type: atomic`).
pub fn atomic_object() -> Arc<Schema> {
    Arc::new(Schema::Map(MapSchema {
        atomic: true,
        pointer: true,
        ..MapSchema::default()
    }))
}

/// A granular map from strings to `element`.
pub fn map_of(element: Arc<Schema>) -> Arc<Schema> {
    Arc::new(Schema::Map(MapSchema {
        element: Some(element),
        pointer: true,
        ..MapSchema::default()
    }))
}

/// A granular map from strings to strings (labels, annotations, data).
pub fn string_map() -> Arc<Schema> {
    map_of(scalar())
}

/// A list replaced whole.
pub fn atomic_list() -> Arc<Schema> {
    Arc::new(Schema::List(ListSchema {
        item: deduced(),
        kind: ListKind::Atomic,
        pointer: true,
    }))
}

/// A set of scalars.
pub fn set_list() -> Arc<Schema> {
    Arc::new(Schema::List(ListSchema {
        item: scalar(),
        kind: ListKind::Set,
        pointer: true,
    }))
}

/// A list of `item` objects keyed by `keys`.
pub fn keyed_list(keys: &[&str], item: Arc<Schema>) -> Arc<Schema> {
    Arc::new(Schema::List(ListSchema {
        item,
        kind: ListKind::Map(keys.iter().map(|key| (*key).to_owned()).collect()),
        pointer: true,
    }))
}

/// A keyed list that Go always serialises (even empty), such as `containers`.
pub fn required_keyed_list(keys: &[&str], item: Arc<Schema>) -> Arc<Schema> {
    Arc::new(Schema::List(ListSchema {
        item,
        kind: ListKind::Map(keys.iter().map(|key| (*key).to_owned()).collect()),
        pointer: false,
    }))
}

/// Builds a schema from a CRD version's `openAPIV3Schema`; `metadata` is always `ObjectMeta`.
pub fn from_openapi_v3(root: &Value, object_meta: Arc<Schema>) -> Arc<Schema> {
    let built = convert(root);
    let mut map = match built.as_ref() {
        Schema::Map(map) => map.clone(),
        _ => MapSchema {
            element: Some(deduced()),
            ..MapSchema::default()
        },
    };
    map.fields.insert("metadata".to_owned(), object_meta);
    map.fields.insert("apiVersion".to_owned(), scalar());
    map.fields.insert("kind".to_owned(), scalar());
    map.pointer = false;
    Arc::new(Schema::Map(map))
}

fn convert(node: &Value) -> Arc<Schema> {
    let preserve = node
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let kind = node.get("type").and_then(Value::as_str).unwrap_or("");
    let properties = node.get("properties").and_then(Value::as_object);
    match kind {
        "object" => {
            let mut map = MapSchema {
                pointer: true,
                atomic: node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"),
                ..MapSchema::default()
            };
            if let Some(properties) = properties {
                for (name, property) in properties {
                    map.fields.insert(name.clone(), convert(property));
                }
            }
            match node.get("additionalProperties") {
                Some(Value::Object(schema)) => {
                    map.element = Some(convert(&Value::Object(schema.clone())))
                }
                Some(Value::Bool(true)) => map.element = Some(deduced()),
                _ if preserve || properties.is_none() => map.element = Some(deduced()),
                _ => {}
            }
            Arc::new(Schema::Map(map))
        }
        "array" => {
            let item = node.get("items").map_or_else(deduced, convert);
            let list_kind = match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListKind::Set,
                Some("map") => ListKind::Map(
                    node.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| {
                            keys.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListKind::Atomic,
            };
            Arc::new(Schema::List(ListSchema {
                item,
                kind: list_kind,
                pointer: true,
            }))
        }
        "" if properties.is_none() && preserve => deduced(),
        "" if properties.is_some() => convert(&{
            let mut with_type = node.clone();
            with_type["type"] = Value::from("object");
            with_type
        }),
        _ => Arc::new(Schema::Scalar {
            default: node.get("default").cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_schemas_honour_list_and_map_types() {
        let root = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["port", "protocol"],
                      "items": {"type": "object", "properties": {
                          "port": {"type": "integer"},
                          "protocol": {"type": "string", "default": "TCP"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                         "additionalProperties": {"type": "string"}}
        }}}});
        let schema = from_openapi_v3(&root, string_map());
        let spec = schema.field("spec");
        let (kind, item) = spec.field("ports").as_list();
        assert_eq!(kind, ListKind::Map(vec!["port".into(), "protocol".into()]));
        assert_eq!(item.field("protocol").default_value(), Some(&json!("TCP")));
        assert_eq!(spec.field("tags").as_list().0, ListKind::Set);
        assert!(spec.field("selector").as_map().atomic);
        assert!(matches!(spec.field("unknown"), Schema::Deduced));
    }
}
