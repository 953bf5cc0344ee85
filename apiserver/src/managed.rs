//! Field managers: `metadata.managedFields` read and written, and the two ways an object changes
//! hands — server-side apply (`apply`: merge, conflicts, force, removal of fields the applier
//! alone owned and no longer applies) and any other write (`update`: the writer takes the fields
//! it changed from everyone else) — following structured-merge-diff's `merge.Updater`.
//!
//! Fields the API server sets itself (`apiVersion`, `kind`, `metadata.name`, `uid`,
//! `resourceVersion`, ...) are never owned; neither is `status` on the main resource of a type
//! with a status subresource, nor anything but `status` on the subresource.

use serde_json::{Map, Value, json};

use crate::fieldset::{self, FieldSet};
use crate::schema::Schema;
use crate::typed;

/// `Apply` or `Update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedEntry {
    /// The field manager.
    pub manager: String,
    /// How it wrote.
    pub operation: Operation,
    /// The version it wrote with.
    pub api_version: String,
    /// When its set last changed (RFC 3339, seconds).
    pub time: String,
    /// `""` for the main resource, else e.g. `status`.
    pub subresource: String,
    /// The fields it owns.
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_identity(&self, other: &Identity) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// How a conflict message names this manager.
    pub fn describe(&self) -> String {
        let mut text = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            text.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            text.push_str(&format!(" using {}", self.api_version));
        }
        text
    }
}

/// Who is writing: the key of a managedFields entry.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The field manager.
    pub manager: String,
    /// How it writes.
    pub operation: Operation,
    /// The version it writes with.
    pub api_version: String,
    /// `""` or `status`.
    pub subresource: String,
}

/// Reads `metadata.managedFields`.
///
/// # Errors
///
/// When an entry is malformed (the message names what is wrong).
pub fn decode(object: &Value) -> Result<Vec<ManagedEntry>, String> {
    let Some(entries) = object.pointer("/metadata/managedFields") else {
        return Ok(Vec::new());
    };
    let Value::Array(entries) = entries else {
        if entries.is_null() {
            return Ok(Vec::new());
        }
        return Err("metadata.managedFields must be a list".to_owned());
    };
    let mut decoded = Vec::new();
    for (position, entry) in entries.iter().enumerate() {
        let text = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let operation = match text("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => {
                return Err(format!(
                    "metadata.managedFields[{position}].operation: unsupported value {other:?}"
                ));
            }
        };
        let fields = match entry.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)
                .map_err(|error| format!("metadata.managedFields[{position}].fieldsV1: {error}"))?,
            None => FieldSet::new(),
        };
        decoded.push(ManagedEntry {
            manager: text("manager"),
            operation,
            api_version: text("apiVersion"),
            time: text("time"),
            subresource: text("subresource"),
            fields,
        });
    }
    Ok(decoded)
}

/// What the managedFields of a create or update body ask for, as the real field manager reads
/// them (`decodeLiveOrNew`).
#[derive(Clone, Debug, PartialEq)]
pub enum Requested {
    /// None, an empty list or a malformed one: the live managers stay.
    Live,
    /// Only empty entries (`[{}]`): every manager is forgotten.
    Reset,
    /// Well-formed entries: they replace the live managers.
    Replace(Vec<ManagedEntry>),
}

/// Reads the managedFields a create or update body sets; never fails (a malformed list is
/// ignored, as the real server ignores it).
pub fn requested(object: &Value) -> Requested {
    let Some(Value::Array(entries)) = object.pointer("/metadata/managedFields") else {
        return Requested::Live;
    };
    let is_empty_entry = |entry: &Value| {
        entry.as_object().is_some_and(|fields| {
            fields
                .values()
                .all(|value| value.is_null() || value.as_str() == Some(""))
        })
    };
    if !entries.is_empty() && entries.iter().all(is_empty_entry) {
        return Requested::Reset;
    }
    match decode(object) {
        Ok(decoded) if !decoded.is_empty() => Requested::Replace(decoded),
        _ => Requested::Live,
    }
}

/// Writes entries as `metadata.managedFields`, in the API server's order (Apply before Update,
/// then by time, manager, version and subresource).
pub fn encode(entries: &[ManagedEntry]) -> Value {
    let mut sorted: Vec<&ManagedEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|entry| {
                let mut object = Map::new();
                object.insert("manager".into(), json!(entry.manager));
                object.insert("operation".into(), json!(entry.operation.as_str()));
                object.insert("apiVersion".into(), json!(entry.api_version));
                object.insert("time".into(), json!(entry.time));
                object.insert("fieldsType".into(), json!("FieldsV1"));
                object.insert("fieldsV1".into(), entry.fields.to_fields_v1());
                if !entry.subresource.is_empty() {
                    object.insert("subresource".into(), json!(entry.subresource));
                }
                Value::Object(object)
            })
            .collect(),
    )
}

/// The fields no manager owns: set by the server, or reset by the subresource being written.
pub fn ignored_fields(subresource: &str, has_status_subresource: bool, object: &Value) -> FieldSet {
    let mut ignored = FieldSet::new();
    for name in ["apiVersion", "kind"] {
        ignored.insert(&[fieldset::field(name)]);
    }
    for name in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "selfLink",
        "managedFields",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        ignored.insert(&[fieldset::field("metadata"), fieldset::field(name)]);
    }
    if subresource == "status" {
        if let Some(map) = object.as_object() {
            for name in map.keys() {
                if !["status", "metadata", "apiVersion", "kind"].contains(&name.as_str()) {
                    ignored.insert(&[fieldset::field(name)]);
                }
            }
        }
        ignored.insert(&[fieldset::field("spec")]);
    } else if has_status_subresource {
        ignored.insert(&[fieldset::field("status")]);
    }
    ignored
}

/// One field another manager owns and the applier would change.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// The other manager.
    pub manager: ManagedEntry,
    /// The field, as the API server prints it (`.spec.replicas`).
    pub field: String,
}

/// What a write does to the managers.
pub struct Outcome {
    /// The new object (without managedFields).
    pub object: Value,
    /// The new managers.
    pub managers: Vec<ManagedEntry>,
}

#[allow(clippy::too_many_arguments)]
/// Server-side apply of `config` (already stripped of server-set fields) onto `live` (None when
/// creating) by `identity`.
///
/// # Errors
///
/// The conflicts, when another manager owns a field the config changes and `force` is false.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    schema: &Schema,
    mut managers: Vec<ManagedEntry>,
    identity: &Identity,
    force: bool,
    ignored: &FieldSet,
    now: &str,
) -> Result<Outcome, Vec<Conflict>> {
    let empty = json!({});
    let live_value = live.unwrap_or(&empty);
    let merged = typed::merge(live_value, config, schema);
    let position = managers
        .iter()
        .position(|entry| entry.same_identity(identity));
    let last = position
        .map(|index| managers[index].fields.clone())
        .unwrap_or_default();
    let applied = typed::fields_of(config, schema).recursive_difference(ignored);
    let before = managers.clone();
    match position {
        Some(index) => managers[index].fields = applied,
        None => managers.push(ManagedEntry {
            manager: identity.manager.clone(),
            operation: identity.operation,
            api_version: identity.api_version.clone(),
            time: now.to_owned(),
            subresource: identity.subresource.clone(),
            fields: applied,
        }),
    }
    let pruned = prune(merged, &managers, &last, schema);
    let managers = if managers.iter().all(|entry| entry.same_identity(identity)) {
        // Nobody else manages a field: nothing to take over and nothing to conflict with, so
        // the comparison `take_over` needs is skipped (all it would do is drop empty entries).
        managers
            .into_iter()
            .filter(|entry| !entry.fields.is_empty())
            .collect()
    } else {
        let comparison = typed::compare(live_value, &pruned, schema).without(ignored);
        take_over(managers, &comparison, identity, force, &before)?
    };
    let changed = pruned != *live_value;
    let managers = stamp(managers, &before, identity, changed, now);
    Ok(Outcome {
        object: pruned,
        managers,
    })
}

/// Any write that is not an apply: `identity` takes the fields it added, changed or removed.
pub fn update(
    live: Option<&Value>,
    new: &Value,
    schema: &Schema,
    managers: Vec<ManagedEntry>,
    identity: &Identity,
    ignored: &FieldSet,
    now: &str,
) -> Vec<ManagedEntry> {
    let empty = json!({});
    let live_value = live.unwrap_or(&empty);
    let before = managers.clone();
    let comparison = typed::compare(live_value, new, schema).without(ignored);
    let mut managers = take_over(managers, &comparison, identity, true, &before)
        .unwrap_or_else(|_| unreachable!("forced take-over never conflicts"));
    let position = managers
        .iter()
        .position(|entry| entry.same_identity(identity));
    let previous = position
        .map(|index| managers[index].fields.clone())
        .unwrap_or_default();
    let fields = previous
        .difference(&comparison.removed)
        .union(&comparison.modified)
        .union(&comparison.added)
        .recursive_difference(ignored);
    match position {
        Some(index) => managers[index].fields = fields,
        None => managers.push(ManagedEntry {
            manager: identity.manager.clone(),
            operation: identity.operation,
            api_version: identity.api_version.clone(),
            time: now.to_owned(),
            subresource: identity.subresource.clone(),
            fields,
        }),
    }
    managers.retain(|entry| !entry.fields.is_empty());
    stamp(managers, &before, identity, !comparison.is_same(), now)
}

/// Removes from `merged` the fields the applier owned last time, no longer applies, and no one
/// else owns (structured-merge-diff's prune, add-back-owned and add-back-dangling steps).
fn prune(merged: Value, managers: &[ManagedEntry], last: &FieldSet, schema: &Schema) -> Value {
    if last.is_empty() {
        return merged;
    }
    let merged = &merged;
    let ensure = |set: &FieldSet| typed::ensure_named_fields_are_members(set, schema);
    let last_e = ensure(last);
    let pruned = typed::remove_fields(merged, &last_e, schema);
    let managed = managers
        .iter()
        .fold(FieldSet::new(), |all, entry| all.union(&entry.fields));
    let merged_e = ensure(&typed::fields_of(merged, schema));
    let pruned_e = ensure(&typed::fields_of(&pruned, schema));
    let managed_e = ensure(&managed);
    let owned_back = typed::remove_fields(
        merged,
        &merged_e.difference(&pruned_e.union(&managed_e)),
        schema,
    );
    let owned_back_e = ensure(&typed::fields_of(&owned_back, schema));
    typed::remove_fields(
        merged,
        &merged_e.difference(&owned_back_e).intersection(&last_e),
        schema,
    )
}

/// Takes the changed fields away from every other manager; conflicts unless `force`.
fn take_over(
    mut managers: Vec<ManagedEntry>,
    comparison: &typed::Comparison,
    identity: &Identity,
    force: bool,
    before: &[ManagedEntry],
) -> Result<Vec<ManagedEntry>, Vec<Conflict>> {
    let changed = comparison.modified.union(&comparison.added);
    let mut conflicts = Vec::new();
    for entry in managers.iter_mut() {
        if entry.same_identity(identity) {
            continue;
        }
        let conflict = entry.fields.intersection(&changed);
        if !conflict.is_empty() {
            let described = before
                .iter()
                .find(|old| old.manager == entry.manager && old.operation == entry.operation)
                .unwrap_or(entry);
            for path in conflict.paths() {
                conflicts.push(Conflict {
                    manager: described.clone(),
                    field: fieldset::display_path(&path),
                });
            }
            entry.fields = entry.fields.difference(&conflict);
        }
        entry.fields = entry.fields.difference(&comparison.removed);
    }
    if !force && !conflicts.is_empty() {
        return Err(conflicts);
    }
    managers.retain(|entry| !entry.fields.is_empty());
    Ok(managers)
}

/// Times as the real field manager keeps them: only the writer's entry gets `now`, and only when
/// its write `changed` something (an Update that changed a field, an Apply that changed the
/// object) or the entry is new; every other entry keeps its time, even when the write took
/// fields from it.
fn stamp(
    mut managers: Vec<ManagedEntry>,
    before: &[ManagedEntry],
    writer: &Identity,
    changed: bool,
    now: &str,
) -> Vec<ManagedEntry> {
    for entry in managers.iter_mut() {
        let identity = Identity {
            manager: entry.manager.clone(),
            operation: entry.operation,
            api_version: entry.api_version.clone(),
            subresource: entry.subresource.clone(),
        };
        let previous = before.iter().find(|old| old.same_identity(&identity));
        entry.time = match previous {
            Some(old) if !(changed && entry.same_identity(writer)) => old.time.clone(),
            _ => now.to_owned(),
        };
    }
    managers
}

/// The API server's message for apply conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager.describe(),
            only.field
        );
    }
    let mut by_manager: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for conflict in conflicts {
        by_manager
            .entry(conflict.manager.describe())
            .or_default()
            .push(&conflict.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        for field in fields {
            lines.push(format!("- {field}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, operation: Operation, data: Value, schema: &Schema) -> ManagedEntry {
        ManagedEntry {
            manager: manager.to_owned(),
            operation,
            api_version: "v1".to_owned(),
            time: "2020-01-01T00:00:00Z".to_owned(),
            subresource: String::new(),
            fields: typed::fields_of(&json!({ "data": data }), schema),
        }
    }

    fn identity(manager: &str, operation: Operation) -> Identity {
        Identity {
            manager: manager.to_owned(),
            operation,
            api_version: "v1".to_owned(),
            subresource: String::new(),
        }
    }

    fn time_of<'a>(managers: &'a [ManagedEntry], manager: &str) -> &'a str {
        &managers
            .iter()
            .find(|entry| entry.manager == manager)
            .expect("the manager is there")
            .time
    }

    #[test]
    fn only_the_writer_that_changed_something_gets_a_new_time() {
        let schema = crate::builtin_schemas::schema_for("", "ConfigMap");
        let live = json!({"data": {"a": "1", "b": "1"}});
        let managers = vec![
            entry("writer", Operation::Update, json!({"a": "1"}), &schema),
            entry("applier", Operation::Apply, json!({"b": "1"}), &schema),
        ];
        let ignored = ignored_fields("", false, &live);
        let now = "2030-01-01T00:00:00Z";
        // The writer takes data.b from the applier: only the writer's time moves.
        let taken = update(
            Some(&live),
            &json!({"data": {"a": "1", "b": "2"}}),
            &schema,
            managers.clone(),
            &identity("writer", Operation::Update),
            &ignored,
            now,
        );
        assert_eq!(time_of(&taken, "writer"), now);
        assert!(taken.iter().all(|entry| entry.manager == "writer"));
        // A write that changes nothing keeps every time.
        let unchanged = update(
            Some(&live),
            &live,
            &schema,
            managers.clone(),
            &identity("writer", Operation::Update),
            &ignored,
            now,
        );
        assert_eq!(time_of(&unchanged, "writer"), "2020-01-01T00:00:00Z");
        assert_eq!(time_of(&unchanged, "applier"), "2020-01-01T00:00:00Z");
        // A third writer takes only a part: the others' times stay although their sets shrink.
        let three = vec![
            entry(
                "writer",
                Operation::Update,
                json!({"a": "1", "b": "1"}),
                &schema,
            ),
            entry("applier", Operation::Apply, json!({"b": "1"}), &schema),
        ];
        let shrunk = update(
            Some(&live),
            &json!({"data": {"a": "2", "b": "1"}}),
            &schema,
            three,
            &identity("third", Operation::Update),
            &ignored,
            now,
        );
        assert_eq!(time_of(&shrunk, "third"), now);
        assert_eq!(time_of(&shrunk, "writer"), "2020-01-01T00:00:00Z");
        assert_eq!(time_of(&shrunk, "applier"), "2020-01-01T00:00:00Z");
        // An apply that leaves the object as it was keeps its time; one that changes it moves it.
        let same = apply(
            Some(&live),
            &json!({"data": {"b": "1"}}),
            &schema,
            managers.clone(),
            &identity("applier", Operation::Apply),
            false,
            &ignored,
            now,
        )
        .expect("no conflict");
        assert_eq!(time_of(&same.managers, "applier"), "2020-01-01T00:00:00Z");
        let changed = apply(
            Some(&live),
            &json!({"data": {"b": "3"}}),
            &schema,
            managers,
            &identity("applier", Operation::Apply),
            false,
            &ignored,
            now,
        )
        .expect("no conflict");
        assert_eq!(time_of(&changed.managers, "applier"), now);
        assert_eq!(time_of(&changed.managers, "writer"), "2020-01-01T00:00:00Z");
    }
}
