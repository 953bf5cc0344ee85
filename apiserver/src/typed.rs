//! Schema-directed operations on JSON values, as structured-merge-diff's `typed` package defines
//! them: the set of fields a value sets, merging an applied configuration onto a live object,
//! removing a set of fields, and comparing two values into added, modified and removed fields.
//!
//! Associative list items are identified by their keys (or by value, for sets); atomic lists
//! and maps are single leaves. A missing key field of a list-map item takes the schema's default
//! (so a container port without `protocol` is keyed as `TCP`).

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use crate::fieldset::{self, FieldSet, PathElement};
use crate::schema::{ListKind, Schema};

/// The element identifying `item` at `position` of a list of kind `kind`.
pub fn item_element(
    item: &Value,
    kind: &ListKind,
    item_schema: &Schema,
    position: usize,
) -> PathElement {
    match kind {
        ListKind::Set => fieldset::value(item),
        ListKind::Map(keys) if !keys.is_empty() => {
            let pairs: Vec<(String, Value)> = keys
                .iter()
                .filter_map(|key| {
                    item.get(key)
                        .cloned()
                        .or_else(|| item_schema.field(key).default_value().cloned())
                        .map(|value| (key.clone(), value))
                })
                .collect();
            fieldset::key(&pairs)
        }
        ListKind::Map(_) => fieldset::value(item),
        ListKind::Atomic => fieldset::index(position),
    }
}

/// What structured-merge-diff refuses to type in an applied configuration, each as
/// `<path>: <problem>` in its words: an associative-list item without one of its key fields
/// (and no default for it), and two items with the same key (or two equal values of a set).
pub fn config_problems(config: &Value, schema: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    collect_problems(config, schema, &mut String::new(), &mut problems);
    problems
}

fn collect_problems(value: &Value, schema: &Schema, path: &mut String, problems: &mut Vec<String>) {
    match value {
        Value::Object(map) if !schema.as_map().atomic => {
            for (name, child) in map {
                let at = path.len();
                path.push('.');
                path.push_str(name);
                collect_problems(child, schema.field(name), path, problems);
                path.truncate(at);
            }
        }
        Value::Array(items) => {
            let (kind, item_schema) = schema.as_list();
            if kind == ListKind::Atomic {
                return;
            }
            let mut seen = HashSet::new();
            for (position, item) in items.iter().enumerate() {
                let shown = match &kind {
                    ListKind::Map(keys) if !keys.is_empty() => {
                        let missing = keys.iter().find(|key| {
                            item.get(key.as_str()).is_none()
                                && item_schema.field(key).default_value().is_none()
                        });
                        if let Some(missing) = missing {
                            problems.push(format!(
                                "{path}: element {position}: associative list with keys has an element that omits key field {missing:?}"
                            ));
                            continue;
                        }
                        let pairs: Vec<String> = keys
                            .iter()
                            .map(|key| {
                                let value = item
                                    .get(key.as_str())
                                    .or_else(|| item_schema.field(key).default_value())
                                    .map(Value::to_string)
                                    .unwrap_or_default();
                                format!("{key}={value}")
                            })
                            .collect();
                        format!("[{}]", pairs.join(","))
                    }
                    _ => format!("[={item}]"),
                };
                if !seen.insert(item_element(item, &kind, item_schema, position)) {
                    problems.push(format!("{path}: duplicate entries for key {shown}"));
                    continue;
                }
                let at = path.len();
                path.push_str(&shown);
                collect_problems(item, item_schema, path, problems);
                path.truncate(at);
            }
        }
        _ => {}
    }
}

fn is_leaf(value: &Value, schema: &Schema) -> bool {
    match value {
        Value::Object(_) => schema.as_map().atomic,
        Value::Array(_) => schema.as_list().0 == ListKind::Atomic,
        _ => true,
    }
}

/// The set of fields `value` sets: every leaf, and every associative list item.
pub fn fields_of(value: &Value, schema: &Schema) -> FieldSet {
    let mut set = FieldSet::new();
    match value {
        Value::Object(map) if !schema.as_map().atomic => {
            for (name, child) in map {
                let child_schema = schema.field(name);
                let element = fieldset::field(name);
                if is_leaf(child, child_schema) {
                    set.insert_member(element.clone());
                }
                set.set_child(element, fields_of(child, child_schema));
            }
        }
        Value::Array(items) => {
            let (kind, item_schema) = schema.as_list();
            if kind != ListKind::Atomic {
                for (position, item) in items.iter().enumerate() {
                    let element = item_element(item, &kind, item_schema, position);
                    set.insert_member(element.clone());
                    set.set_child(element, fields_of(item, item_schema));
                }
            }
        }
        _ => {}
    }
    set
}

/// Merges `config` onto `live`: config wins on leaves, maps merge key by key, associative lists
/// merge item by item (keeping live items the config does not mention, in a stable order).
pub fn merge(live: &Value, config: &Value, schema: &Schema) -> Value {
    match (live, config) {
        (Value::Object(left), Value::Object(right)) if !schema.as_map().atomic => {
            let mut out = left.clone();
            for (name, right_child) in right {
                let merged = match left.get(name) {
                    Some(left_child) => merge(left_child, right_child, schema.field(name)),
                    None => right_child.clone(),
                };
                out.insert(name.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(left), Value::Array(right)) => {
            let (kind, item_schema) = schema.as_list();
            if kind == ListKind::Atomic {
                return config.clone();
            }
            Value::Array(merge_lists(left, right, &kind, item_schema))
        }
        _ => config.clone(),
    }
}

type Indexed<'a> = (Vec<PathElement>, HashMap<PathElement, &'a Value>);

fn index_items<'a>(items: &'a [Value], kind: &ListKind, item_schema: &Schema) -> Indexed<'a> {
    let mut order = Vec::new();
    let mut observed = HashMap::new();
    for (position, item) in items.iter().enumerate() {
        let element = item_element(item, kind, item_schema, position);
        if observed.contains_key(&element) {
            continue;
        }
        observed.insert(element.clone(), item);
        order.push(element);
    }
    (order, observed)
}

/// The list merge of structured-merge-diff: items shared by both lists keep the config's
/// relative order, live-only items stay where they were, config-only items follow their
/// predecessor in the config.
fn merge_lists(
    left: &[Value],
    right: &[Value],
    kind: &ListKind,
    item_schema: &Schema,
) -> Vec<Value> {
    let (left_order, left_items) = index_items(left, kind, item_schema);
    let (right_order, right_items) = index_items(right, kind, item_schema);
    let mut shared: VecDeque<&PathElement> = right_order
        .iter()
        .filter(|element| left_items.contains_key(*element))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_right: HashSet<&PathElement> = HashSet::new();
    let mut out = Vec::with_capacity(left_order.len().max(right_order.len()));
    let merge_item = |element: &PathElement| -> Value {
        let right_item = right_items[element];
        match left_items.get(element) {
            Some(left_item) => merge(left_item, right_item, item_schema),
            None => right_item.clone(),
        }
    };
    let (mut l, mut r) = (0, 0);
    while l < left_order.len() || r < right_order.len() {
        if l < left_order.len() && r < right_order.len() {
            let element = &left_order[l];
            if *element == right_order[r] {
                merged_right.insert(element);
                out.push(merge_item(element));
                l += 1;
                r += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if right_items.contains_key(element) && next_shared.is_some_and(|next| next != element)
            {
                l += 1;
                continue;
            }
        }
        if l < left_order.len() {
            let element = &left_order[l];
            if !right_items.contains_key(element) {
                out.push(left_items[element].clone());
                l += 1;
                continue;
            } else if merged_right.contains(element) {
                l += 1;
                continue;
            }
        }
        if r < right_order.len() {
            let element = &right_order[r];
            merged_right.insert(element);
            out.push(merge_item(element));
            r += 1;
            if next_shared == Some(element) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

/// `value` without the fields of `set` (a member removes its whole subtree). A map or list
/// emptied by the removal is dropped from its parent.
pub fn remove_fields(value: &Value, set: &FieldSet, schema: &Schema) -> Value {
    match value {
        Value::Object(map) if !schema.as_map().atomic => {
            let mut out = Map::new();
            for (name, child) in map {
                let element = fieldset::field(name);
                if set.has_member(&element) {
                    continue;
                }
                let kept = match set.child(&element) {
                    Some(below) => {
                        let kept = remove_fields(child, below, schema.field(name));
                        if is_emptied(child, &kept) {
                            continue;
                        }
                        kept
                    }
                    None => child.clone(),
                };
                out.insert(name.clone(), kept);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let (kind, item_schema) = schema.as_list();
            if kind == ListKind::Atomic {
                return value.clone();
            }
            let mut out = Vec::new();
            for (position, item) in items.iter().enumerate() {
                let element = item_element(item, &kind, item_schema, position);
                if set.has_member(&element) {
                    continue;
                }
                match set.child(&element) {
                    Some(below) => out.push(remove_fields(item, below, item_schema)),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        _ => value.clone(),
    }
}

fn is_emptied(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => !b.is_empty() && a.is_empty(),
        (Value::Array(b), Value::Array(a)) => !b.is_empty() && a.is_empty(),
        _ => false,
    }
}

/// Adds every declared struct field along the set's paths as a member, as structured-merge-diff's
/// `EnsureNamedFieldsAreMembers` does (map keys and list items are not added).
pub fn ensure_named_fields_are_members(set: &FieldSet, schema: &Schema) -> FieldSet {
    let mut out = FieldSet::new();
    for member in set.members() {
        out.insert_member(member.clone());
    }
    for (element, child) in set.children() {
        if let Some(name) = element.strip_prefix("f:")
            && schema.is_named_field(name)
        {
            out.insert_member(element.clone());
        }
        out.set_child(
            element.clone(),
            ensure_named_fields_are_members(child, schema.child(element)),
        );
    }
    out
}

/// What changed between two values.
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    /// Fields present only in the new value.
    pub added: FieldSet,
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Fields present only in the old value.
    pub removed: FieldSet,
}

impl Comparison {
    /// Whether nothing changed.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// The comparison without the fields of `ignored` (and what is below them).
    pub fn without(&self, ignored: &FieldSet) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}

/// Compares `old` and `new` under `schema`.
pub fn compare(old: &Value, new: &Value, schema: &Schema) -> Comparison {
    let mut comparison = Comparison::default();
    compare_node(
        Some(old),
        Some(new),
        schema,
        &mut Vec::new(),
        &mut comparison,
        false,
    );
    comparison
}

fn is_empty_container(value: Option<&Value>) -> bool {
    match value {
        None => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    }
}

fn compare_node(
    old: Option<&Value>,
    new: Option<&Value>,
    schema: &Schema,
    path: &mut Vec<PathElement>,
    comparison: &mut Comparison,
    own_node: bool,
) {
    let sample = new.or(old);
    let leaf = match (old, new) {
        (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None) => {
            schema.as_map().atomic || (is_empty_container(old) && is_empty_container(new))
        }
        (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None) => {
            schema.as_list().0 == ListKind::Atomic
                || (is_empty_container(old) && is_empty_container(new))
        }
        _ => true,
    };
    if leaf || sample.is_none() {
        match (old, new) {
            (None, Some(_)) => comparison.added.insert(path),
            (Some(_), None) => comparison.removed.insert(path),
            (Some(a), Some(b)) if a != b => comparison.modified.insert(path),
            _ => {}
        }
        return;
    }
    match sample {
        Some(Value::Object(_)) => {
            let empty = Map::new();
            let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
            let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
            let mut names: Vec<&String> = old_map.keys().collect();
            names.extend(new_map.keys().filter(|name| !old_map.contains_key(*name)));
            for name in names {
                let child_schema = schema.field(name);
                let child_owned = match new_map.get(name).or(old_map.get(name)) {
                    Some(Value::Object(_)) => child_schema.as_map().pointer,
                    Some(Value::Array(_)) => child_schema.list_is_pointer(),
                    _ => true,
                };
                path.push(fieldset::field(name));
                compare_node(
                    old_map.get(name),
                    new_map.get(name),
                    child_schema,
                    path,
                    comparison,
                    child_owned,
                );
                path.pop();
            }
        }
        Some(Value::Array(_)) => {
            let (kind, item_schema) = schema.as_list();
            let empty = Vec::new();
            let old_items = old.and_then(Value::as_array).unwrap_or(&empty);
            let new_items = new.and_then(Value::as_array).unwrap_or(&empty);
            let (old_order, old_index) = index_items(old_items, &kind, item_schema);
            let (new_order, new_index) = index_items(new_items, &kind, item_schema);
            let mut elements = old_order.clone();
            elements.extend(
                new_order
                    .iter()
                    .filter(|e| !old_index.contains_key(*e))
                    .cloned(),
            );
            for element in elements {
                path.push(element.clone());
                compare_node(
                    old_index.get(&element).copied(),
                    new_index.get(&element).copied(),
                    item_schema,
                    path,
                    comparison,
                    true,
                );
                path.pop();
            }
        }
        _ => {}
    }
    if own_node {
        match (old, new) {
            (None, Some(_)) => comparison.added.insert(path),
            (Some(_), None) => comparison.removed.insert(path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{keyed_list, object, scalar, scalar_default};
    use serde_json::json;

    #[test]
    fn keyed_lists_merge_by_key_and_default_missing_keys() {
        let schema = object(&[(
            "ports",
            keyed_list(
                &["port", "protocol"],
                object(&[
                    ("port", scalar()),
                    ("protocol", scalar_default(json!("TCP"))),
                    ("name", scalar()),
                ]),
            ),
        )]);
        let live = json!({"ports": [{"port": 80, "protocol": "TCP", "name": "a"}, {"port": 90}]});
        let config = json!({"ports": [{"port": 80, "name": "b"}, {"port": 70}]});
        let merged = merge(&live, &config, &schema);
        assert_eq!(
            merged,
            json!({"ports": [{"port": 80, "protocol": "TCP", "name": "b"}, {"port": 90}, {"port": 70}]})
        );
        let set = fields_of(&config, &schema);
        assert!(set.has(&[
            fieldset::field("ports"),
            r#"k:{"port":80,"protocol":"TCP"}"#.to_owned(),
            fieldset::field("name")
        ]));
    }
}
