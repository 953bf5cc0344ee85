//! Sets of field paths, the unit of ownership in server-side apply, and their `FieldsV1`
//! encoding (`f:name`, `k:{"name":"x"}`, `v:"value"`, `i:3`, and `.` for "this node itself").
//!
//! A path element is kept in its `FieldsV1` spelling, which is canonical (key objects have their
//! fields sorted, values are compact JSON), so elements compare and sort as strings. A set is a
//! tree: `members` are paths that end here, `children` are sets below an element; an element may
//! be both (the `.` entry of `FieldsV1`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a field path, spelled as in `FieldsV1`.
pub type PathElement = String;

/// The element naming a map field or struct field.
pub fn field(name: &str) -> PathElement {
    format!("f:{name}")
}

/// The element naming an item of a list keyed by `keys` (field name, value), in any order.
pub fn key(keys: &[(String, Value)]) -> PathElement {
    let mut sorted: Vec<&(String, Value)> = keys.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut object = Map::new();
    for (name, value) in sorted {
        object.insert(name.clone(), value.clone());
    }
    format!("k:{}", Value::Object(object))
}

/// The element naming an item of a set-list by its value.
pub fn value(item: &Value) -> PathElement {
    format!("v:{item}")
}

/// The element naming a list item by position (lists that are neither atomic nor keyed).
pub fn index(position: usize) -> PathElement {
    format!("i:{position}")
}

/// Renders a path the way the Kubernetes API server prints it in conflict messages:
/// `.spec.template.spec.containers[name="app"].image`, `.metadata.finalizers[="a"]`.
pub fn display_path(path: &[PathElement]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(keys) = element.strip_prefix("k:") {
            out.push('[');
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(keys) {
                let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&parts.join(","));
            }
            out.push(']');
        } else if let Some(item) = element.strip_prefix("v:") {
            out.push_str(&format!("[={item}]"));
        } else if let Some(position) = element.strip_prefix("i:") {
            out.push_str(&format!("[{position}]"));
        }
    }
    out
}

/// A set of field paths, as a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds `path`; the empty path (the root) is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` itself is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|child| child.has(rest)),
        }
    }

    /// Whether the element is a member directly at this level.
    pub fn has_member(&self, element: &str) -> bool {
        self.members.contains(element)
    }

    /// The paths below `element` (relative to it), if any.
    pub fn child(&self, element: &str) -> Option<&FieldSet> {
        self.children.get(element).filter(|child| !child.is_empty())
    }

    /// Every element at this level, whether a member or a parent.
    pub fn elements(&self) -> BTreeSet<&PathElement> {
        self.members.iter().chain(self.children.keys()).collect()
    }

    /// The union of both sets.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            let merged = match out.children.get(element) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(element.clone(), merged);
        }
        out.prune();
        out
    }

    /// The paths of `self` that are not in `other` (paths, not subtrees: removing `a` keeps `a.b`).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            out.children.insert(element.clone(), rest);
        }
        out.prune();
        out
    }

    /// The paths of `self` that are not in `other`, where a member of `other` also removes
    /// everything below it.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (element, child) in &self.children {
            if other.members.contains(element) {
                continue;
            }
            let rest = match other.children.get(element) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            out.children.insert(element.clone(), rest);
        }
        out.prune();
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                out.children
                    .insert(element.clone(), child.intersection(theirs));
            }
        }
        out.prune();
        out
    }

    /// Every path in the set, in order.
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    /// Members of a level come before what is below it, as structured-merge-diff iterates.
    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for member in &self.members {
            prefix.push(member.clone());
            out.push(prefix.clone());
            prefix.pop();
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Only the paths with nothing below them in the set.
    pub fn leaves(&self) -> FieldSet {
        let mut out = FieldSet::new();
        for member in &self.members {
            if self.child(member).is_none() {
                out.members.insert(member.clone());
            }
        }
        for (element, child) in &self.children {
            out.children.insert(element.clone(), child.leaves());
        }
        out.prune();
        out
    }

    /// The child sets, by element.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// The members at this level.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// Adds `element` as a member at this level.
    pub fn insert_member(&mut self, element: PathElement) {
        self.members.insert(element);
    }

    /// The child set at `element`, created empty when missing.
    pub fn child_mut(&mut self, element: &str) -> &mut FieldSet {
        self.children.entry(element.to_owned()).or_default()
    }

    /// Sets the child at `element` (dropped when empty).
    pub fn set_child(&mut self, element: PathElement, child: FieldSet) {
        if child.is_empty() {
            self.children.remove(&element);
        } else {
            self.children.insert(element, child);
        }
    }

    fn prune(&mut self) {
        self.children.retain(|_, child| !child.is_empty());
    }

    /// The set as a `FieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut object = Map::new();
        for element in self.elements() {
            let mut inner = match self.children.get(element) {
                Some(child) if !child.is_empty() => match child.to_fields_v1() {
                    Value::Object(map) => map,
                    _ => Map::new(),
                },
                _ => Map::new(),
            };
            if self.members.contains(element) && !inner.is_empty() {
                let mut with_dot = Map::new();
                with_dot.insert(".".to_owned(), Value::Object(Map::new()));
                with_dot.extend(std::mem::take(&mut inner));
                inner = with_dot;
            }
            object.insert(element.clone(), Value::Object(inner));
        }
        Value::Object(object)
    }

    /// Reads a `FieldsV1` object.
    ///
    /// # Errors
    ///
    /// When it is not an object of objects whose keys start with `f:`, `k:`, `v:`, `i:` or are `.`.
    pub fn from_fields_v1(fields: &Value) -> Result<FieldSet, String> {
        let Value::Object(object) = fields else {
            return Err("fieldsV1 is not an object".to_owned());
        };
        let mut set = FieldSet::new();
        for (element, inner) in object {
            if element == "." {
                continue;
            }
            if !["f:", "k:", "v:", "i:"]
                .iter()
                .any(|prefix| element.starts_with(prefix))
            {
                return Err(format!("fieldsV1 has an unknown path element {element:?}"));
            }
            let Value::Object(inner_map) = inner else {
                return Err(format!("fieldsV1 entry {element:?} is not an object"));
            };
            if inner_map.is_empty() || inner_map.contains_key(".") {
                set.members.insert(element.clone());
            }
            let child = FieldSet::from_fields_v1(inner)?;
            set.set_child(element.clone(), child);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_dot_entries() {
        let fields = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}}}}
        });
        let set = FieldSet::from_fields_v1(&fields).unwrap();
        assert!(set.has(&[field("metadata"), field("labels")]));
        assert!(!set.has(&[field("metadata")]));
        assert_eq!(set.to_fields_v1(), fields);
    }

    #[test]
    fn keys_are_sorted_and_paths_print_like_the_api_server() {
        let element = key(&[
            ("protocol".to_owned(), json!("TCP")),
            ("containerPort".to_owned(), json!(80)),
        ]);
        assert_eq!(element, r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        let path = vec![field("spec"), field("ports"), element, field("name")];
        assert_eq!(
            display_path(&path),
            r#".spec.ports[containerPort=80,protocol="TCP"].name"#
        );
    }
}
