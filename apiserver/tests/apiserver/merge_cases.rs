//! Runs `tests/merge_cases.yaml`: server-side apply cases written from the scenarios of
//! structured-merge-diff's merge tests, against this crate's merge (`windlass_test_apiserver::
//! managed`). The test API server is a fake (no real API server can run here); these cases pin
//! its merge rules to the facts structured-merge-diff's tests establish.

use serde_json::{Value, json};
use windlass_test_apiserver::fieldset::FieldSet;
use windlass_test_apiserver::managed::{self, Identity, ManagedEntry, Operation};
use windlass_test_apiserver::schema;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/merge_cases.yaml");
    let text = std::fs::read_to_string(path).expect("merge_cases.yaml is readable");
    serde_saphyr::from_str(&text).expect("merge_cases.yaml parses")
}

fn identity(manager: &str, operation: Operation) -> Identity {
    Identity {
        manager: manager.to_owned(),
        operation,
        api_version: "v1".to_owned(),
        subresource: String::new(),
    }
}

/// Runs one case; returns a description of every mismatch.
fn run(case: &Value, schemas: &Value) -> Vec<String> {
    let name = case["name"].as_str().unwrap_or("?");
    let schema_name = case["schema"].as_str().expect("case names a schema");
    let schema = schema::from_openapi_v3(
        &schemas[schema_name],
        windlass_test_apiserver::builtin_schema("", "ConfigMap"),
    );
    let schema = schema.as_ref();
    let ignored = FieldSet::new();
    let mut object: Option<Value> = None;
    let mut managers: Vec<ManagedEntry> = Vec::new();
    let mut problems = Vec::new();
    for (step, op) in case["ops"]
        .as_array()
        .expect("ops is a list")
        .iter()
        .enumerate()
    {
        let config = op["object"].clone();
        if let Some(manager) = op.get("update").and_then(Value::as_str) {
            managers = managed::update(
                object.as_ref(),
                &config,
                schema,
                managers,
                &identity(manager, Operation::Update),
                &ignored,
                "t",
            );
            object = Some(config);
            continue;
        }
        let (manager, force) = match (op.get("apply"), op.get("force_apply")) {
            (Some(manager), None) => (manager.as_str().expect("manager name"), false),
            (None, Some(manager)) => (manager.as_str().expect("manager name"), true),
            _ => panic!("{name}: step {step} is neither apply, force_apply nor update"),
        };
        let outcome = managed::apply(
            object.as_ref(),
            &config,
            schema,
            managers.clone(),
            &identity(manager, Operation::Apply),
            force,
            &ignored,
            "t",
        );
        match (outcome, op.get("conflicts")) {
            (Ok(outcome), None) => {
                object = Some(outcome.object);
                managers = outcome.managers;
            }
            (Ok(_), Some(expected)) => problems.push(format!(
                "{name}: step {step} should conflict with {expected} but succeeded"
            )),
            (Err(conflicts), expected) => {
                let got: Vec<Value> = conflicts
                    .iter()
                    .map(|conflict| json!({"manager": conflict.manager.manager, "field": conflict.field}))
                    .collect();
                let expected = expected.cloned().unwrap_or(json!([]));
                if Value::Array(got.clone()) != expected {
                    problems.push(format!(
                        "{name}: step {step} conflicts {got:?}, expected {expected}"
                    ));
                }
            }
        }
    }
    let final_object = object.unwrap_or(json!({}));
    if final_object != case["object"] {
        problems.push(format!(
            "{name}: object {final_object}, expected {}",
            case["object"]
        ));
    }
    let expected_managers = case["managed"].as_object().cloned().unwrap_or_default();
    for entry in &managers {
        match expected_managers.get(&entry.manager) {
            None => problems.push(format!(
                "{name}: unexpected manager {} owning {}",
                entry.manager,
                entry.fields.to_fields_v1()
            )),
            Some(fields) => {
                let expected = FieldSet::from_fields_v1(fields).expect("expected fieldsV1 parses");
                if expected != entry.fields {
                    problems.push(format!(
                        "{name}: {} owns {}, expected {fields}",
                        entry.manager,
                        entry.fields.to_fields_v1()
                    ));
                }
            }
        }
    }
    for manager in expected_managers.keys() {
        if !managers.iter().any(|entry| entry.manager == *manager) {
            problems.push(format!("{name}: manager {manager} is missing"));
        }
    }
    problems
}

/// Every case of `tests/merge_cases.yaml` (scenarios of structured-merge-diff's merge tests,
/// checked on the fake API server's merge because no real API server can run here).
#[test]
fn structured_merge_diff_scenarios() {
    let data = load();
    let cases = data["cases"].as_array().expect("cases is a list");
    assert!(cases.len() >= 25, "the case file lost cases");
    let problems: Vec<String> = cases
        .iter()
        .flat_map(|case| run(case, &data["schemas"]))
        .collect();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
