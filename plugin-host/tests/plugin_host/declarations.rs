//! Plugin declarations: every problem named by file and key; `exec` relative to the declaring
//! file.

use serde_json::json;
use windlass_plugin_host::{Placement, PluginRun, read_declarations};

#[test]
fn exec_is_resolved_against_the_declaring_file_and_defaults_apply() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fn.py"), "").unwrap();
    let declared = read_declarations(
        "config file c.yaml",
        &dir.path().join("c.yaml"),
        Some(&json!([{"name": "audit", "exec": "./fn.py", "after": "render_midstream", "config": {"team": "x"}}])),
    )
    .expect("valid");
    assert_eq!(declared.len(), 1);
    assert_eq!(
        declared[0].run,
        PluginRun::Exec {
            program: dir.path().join("./fn.py"),
            args: vec![]
        }
    );
    assert_eq!(
        declared[0].placement,
        Placement::After("render_midstream".into())
    );
    assert_eq!(declared[0].timeout_seconds, 30);
    assert_eq!(declared[0].config, json!({"team": "x"}));
}

#[test]
fn every_problem_is_named_by_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let problems = read_declarations(
        "config file c.yaml",
        &dir.path().join("c.yaml"),
        Some(&json!([
            {"name": "a b", "exec": "./missing.py", "after": "x", "before": "y", "timeout_seconds": 0, "colour": 1},
            {"name": "c", "stage": "k", "exec": "./x"},
            7
        ])),
    )
    .expect_err("invalid");
    let expected = [
        "config file c.yaml: plugins[0].colour: unknown key",
        "config file c.yaml: plugins[0].name: \"a b\" may hold only letters, digits, - and _",
        "config file c.yaml: plugins[0].exec: ",
        "config file c.yaml: plugins[0]: give either after or before, not both",
        "config file c.yaml: plugins[0].timeout_seconds: must be a whole number from 1 to 3600",
        "config file c.yaml: plugins[1]: give either exec (a program) or stage (an in-process plugin), not both",
        "config file c.yaml: plugins[1]: missing after or before",
        "config file c.yaml: plugins[2]: must be a mapping",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(
            problem.starts_with(expected),
            "{problem} (expected {expected})"
        );
    }
}
