//! The lists of a patched object that kustomize's strategic merge rewrites even where the patch
//! does not touch them. Applying a patch, kustomize v5.6 walks the whole object and re-builds every
//! list its embedded Kubernetes 1.21 OpenAPI data marks `x-kubernetes-patch-strategy: merge`,
//! pairing elements by their merge key. Where every element has its key and no two share it, the
//! list comes out as it went in (what the native merge assumes); otherwise kustomize drops,
//! merges or repeats elements (measured with `kubectl kustomize`, a Deployment patched with
//! `imagePullSecrets` only: `containers: [{name: a}, {image: y}, {name: b}]` becomes
//! `[{image: y}]`, `[{name: ""}, {name: a}]` becomes `[{name: ""}, {name: ""}, {name: a}]`,
//! `ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80}]` becomes
//! `[{containerPort: 80}]`). Those outcomes follow from the walker's internals rather than from a
//! rule, so [`check`] does not reproduce them: it finds every such list and reports it, and the
//! build is left to the real kustomize.
//!
//! A list is well-keyed when every element is a mapping whose first merge key is a non-empty
//! scalar and no two elements can pair up: elements sharing the first key must all carry every
//! key and differ in them (`ports` of `53/TCP` and `53/UDP`); primitive merge lists (`finalizers`)
//! must have no repeated value. The check is by field name, not by schema path, so it may also
//! flag a list kustomize leaves alone (the build is then slower, never different). It reads the
//! object once, copying nothing but the keys of the lists it checks.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::patch::UnsupportedPatch;

/// The merge keys of a list field kustomize merges, by its name; an empty slice is a list of
/// scalars merged by value. `in_container` says the list sits in an element of `containers`,
/// `initContainers` or `ephemeralContainers` (where `ports` are container ports).
fn merge_keys(field: &str, in_container: bool) -> Option<&'static [&'static str]> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "imagePullSecrets"
        | "volumes"
        | "env"
        | "secrets"
        | "webhooks"
        | "drivers" => &["name"],
        "hostAliases" | "podIPs" => &["ip"],
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "conditions" | "addresses" => &["type"],
        "ownerReferences" => &["uid"],
        "ports" if in_container => &["containerPort", "protocol"],
        "ports" => &["port", "protocol"],
        "topologySpreadConstraints" => &["topologyKey", "whenUnsatisfiable"],
        "finalizers" | "podCIDRs" => &[],
        _ => return None,
    })
}

/// One step of the path to a list, for the message.
#[derive(Clone, Copy)]
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

fn show(path: &[Step<'_>]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(name);
            }
            Step::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// Reports the first list of `object` (an object of a type kustomize has a schema for) whose
/// elements kustomize's merge walk would not keep as they are.
pub(crate) fn check(object: &Value, what: &dyn std::fmt::Display) -> Result<(), UnsupportedPatch> {
    let Value::Object(map) = object else {
        return Ok(());
    };
    let mut path = Vec::new();
    walk_map(map, false, &mut path).map_err(|problem| {
        UnsupportedPatch(format!(
            "a list kustomize's strategic merge re-builds, `{}` of {what}, whose {problem}",
            show(&path)
        ))
    })
}

/// Walks a mapping; on failure `path` is left pointing at the offending list.
fn walk_map<'a>(
    map: &'a Map<String, Value>,
    in_container: bool,
    path: &mut Vec<Step<'a>>,
) -> Result<(), String> {
    for (field, value) in map {
        match value {
            Value::Array(items) => {
                path.push(Step::Field(field));
                if let Some(keys) = merge_keys(field, in_container) {
                    check_list(items, keys)?;
                }
                let container_list = matches!(
                    field.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                );
                walk_list(items, container_list, path)?;
                path.pop();
            }
            Value::Object(inner) => {
                path.push(Step::Field(field));
                walk_map(inner, false, path)?;
                path.pop();
            }
            _ => {}
        }
    }
    Ok(())
}

fn walk_list<'a>(
    items: &'a [Value],
    container_list: bool,
    path: &mut Vec<Step<'a>>,
) -> Result<(), String> {
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::Object(map) => {
                path.push(Step::Index(index));
                walk_map(map, container_list, path)?;
                path.pop();
            }
            Value::Array(inner) => {
                path.push(Step::Index(index));
                walk_list(inner, false, path)?;
                path.pop();
            }
            _ => {}
        }
    }
    Ok(())
}

/// A scalar as kustomize compares it (its text); `None` for a missing key, `null`, an empty
/// string, a mapping or a list.
fn key_text(value: Option<&Value>) -> Option<Cow<'_, str>> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        Value::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        _ => None,
    }
}

/// Lists up to this long are checked for repeats pairwise, without a hash set.
const PAIRWISE: usize = 16;

fn check_list(items: &[Value], keys: &[&str]) -> Result<(), String> {
    let Some((primary, secondary)) = keys.split_first() else {
        return check_scalars(items);
    };
    let mut primaries: Vec<Cow<'_, str>> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(format!("element {index} is not a mapping"));
        };
        match key_text(map.get(*primary)) {
            Some(text) => primaries.push(text),
            None if map.contains_key(*primary) => {
                return Err(format!(
                    "element {index} has an empty or non-scalar merge key `{primary}`"
                ));
            }
            None => return Err(format!("element {index} has no merge key `{primary}`")),
        }
    }
    let Some((first, second)) = first_repeat(&primaries) else {
        return Ok(());
    };
    if secondary.is_empty() {
        return Err(format!(
            "elements {first} and {second} have the same `{primary}`"
        ));
    }
    // Elements sharing the first key pair up unless each carries every key and they differ.
    // (Only reached when a first key repeats; linear, so a long list cannot stall the build.)
    let mut sharing: HashMap<&str, usize> = HashMap::with_capacity(primaries.len());
    for primary_text in &primaries {
        *sharing.entry(primary_text.as_ref()).or_default() += 1;
    }
    let mut seen: HashMap<Vec<Cow<'_, str>>, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        if sharing[primaries[index].as_ref()] < 2 {
            continue;
        }
        let map = item.as_object().expect("checked above");
        let mut tuple = Vec::with_capacity(keys.len());
        tuple.push(primaries[index].clone());
        for key in secondary {
            let Some(text) = key_text(map.get(*key)) else {
                return Err(format!(
                    "element {index} shares `{primary}` with another element and lacks `{key}`"
                ));
            };
            tuple.push(text);
        }
        if let Some(other) = seen.insert(tuple, index) {
            return Err(format!(
                "elements {other} and {index} have the same `{}`",
                keys.join("`, `")
            ));
        }
    }
    Ok(())
}

fn check_scalars(items: &[Value]) -> Result<(), String> {
    let mut texts = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match key_text(Some(item)) {
            Some(text) => texts.push(text),
            None => return Err(format!("element {index} is not a non-empty scalar")),
        }
    }
    match first_repeat(&texts) {
        Some((first, second)) => Err(format!("elements {first} and {second} are the same")),
        None => Ok(()),
    }
}

/// The positions of the first two equal texts, if any.
fn first_repeat(texts: &[Cow<'_, str>]) -> Option<(usize, usize)> {
    if texts.len() <= PAIRWISE {
        for second in 1..texts.len() {
            if let Some(first) = texts[..second]
                .iter()
                .position(|text| *text == texts[second])
            {
                return Some((first, second));
            }
        }
        return None;
    }
    let mut seen = HashSet::with_capacity(texts.len());
    for (second, text) in texts.iter().enumerate() {
        if !seen.insert(text.as_ref()) {
            let first = texts
                .iter()
                .position(|earlier| earlier == text)
                .expect("seen");
            return Some((first, second));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;

    fn reason(object: serde_json::Value) -> Option<String> {
        check(&object, &"the object").err().map(|error| error.0)
    }

    #[test]
    fn a_long_list_of_repeated_keys_is_reported_in_linear_time() {
        let ports: Vec<_> = (0..200_000)
            .map(|index| json!({"containerPort": 53, "protocol": format!("P{}", index % 100_000)}))
            .collect();
        let object = json!({"spec": {"containers": [{"name": "a", "ports": ports}]}});
        let started = std::time::Instant::now();
        let reason = reason(object).expect("a repeat");
        assert!(
            reason.contains("`spec.containers[0].ports` of the object, whose elements 0 and 100000 have the same `containerPort`, `protocol`"),
            "{reason}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn keyed_lists_pass_and_service_ports_use_port() {
        assert_eq!(
            reason(
                json!({"spec": {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}, {"port": 80}]}})
            ),
            None
        );
        assert!(
            reason(json!({"spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}}))
                .is_some_and(|reason| reason
                    .contains("element 0 shares `port` with another element and lacks `protocol`"))
        );
    }
}
