//! The real `kubectl` (1.33, with kustomize v5.6) and `helm` as test oracles: finding them, running
//! `kubectl kustomize` and `helm template` with a deadline, parsing what they print into JSON
//! objects, and comparing two sets of Kubernetes objects by identity with a readable diff.
//!
//! `scripts/install-kube-tools.sh` (run by `scripts/test.sh`) installs both into
//! `<workspace>/target/tools/bin/`; `$WINDLASS_KUBECTL` and `$WINDLASS_HELM` point elsewhere.
//! Their output is trusted, so it is parsed under a budget generous enough for the benchmark's
//! ten thousand objects; objects are compared as parsed values, never as bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use serde_saphyr::{Budget, Options};

use crate::process::output_within;

/// How long one `kubectl kustomize` or `helm template` may run: kustomize needs minutes for the
/// benchmark's largest overlays.
const TOOL_DEADLINE: Duration = Duration::from_secs(300);

/// The `kubectl` the tests use as the kustomize oracle: `$WINDLASS_KUBECTL`, else
/// `<workspace>/target/tools/bin/kubectl`.
///
/// # Panics
///
/// When neither exists, saying to run `scripts/install-kube-tools.sh`.
pub fn kubectl() -> PathBuf {
    find_tool("kubectl", "WINDLASS_KUBECTL")
}

/// The `helm` the tests use as the chart-rendering oracle: `$WINDLASS_HELM`, else
/// `<workspace>/target/tools/bin/helm`.
///
/// # Panics
///
/// When neither exists, saying to run `scripts/install-kube-tools.sh`.
pub fn helm() -> PathBuf {
    find_tool("helm", "WINDLASS_HELM")
}

fn find_tool(tool: &str, variable: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable).filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "${variable} is {}, which is not a file: unset it or point it at {tool}",
            path.display()
        );
        return path;
    }
    let installed = workspace_root().join("target/tools/bin").join(tool);
    if installed.is_file() {
        return installed;
    }
    panic!("{tool} is not installed: run scripts/install-kube-tools.sh (scripts/test.sh does this)")
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives inside the workspace")
}

/// Runs `kubectl kustomize <dir>` and returns the objects it prints, in its order.
///
/// # Panics
///
/// When kubectl is not installed, runs longer than five minutes, fails (its stderr is in the
/// message), or prints something that is not YAML objects.
pub fn kustomize_build(dir: &Path) -> Vec<Value> {
    let mut command = Command::new(kubectl());
    command.arg("kustomize").arg(dir);
    run_and_parse(
        &mut command,
        &format!("`kubectl kustomize {}`", dir.display()),
    )
}

/// Runs `helm template <release> <chart> [--values <values>]` and returns the objects it renders,
/// in its order. Helm's cache, configuration and data directories are a fresh temporary
/// directory, so nothing is read from or written to the user's home.
///
/// # Panics
///
/// When helm is not installed, runs longer than five minutes, fails (its stderr is in the
/// message), or prints something that is not YAML objects.
pub fn helm_template(chart: &Path, release: &str, values: Option<&Path>) -> Vec<Value> {
    let home = tempfile::tempdir().expect("temporary directory for helm");
    let mut command = Command::new(helm());
    command
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .arg("template")
        .arg(release)
        .arg(chart);
    if let Some(values) = values {
        command.arg("--values").arg(values);
    }
    let what = format!(
        "`helm template {release} {}{}`",
        chart.display(),
        values
            .map(|values| format!(" --values {}", values.display()))
            .unwrap_or_default()
    );
    run_and_parse(&mut command, &what)
}

fn run_and_parse(command: &mut Command, what: &str) -> Vec<Value> {
    let output = output_within(command, TOOL_DEADLINE, what);
    assert!(
        output.status.success(),
        "{what} failed ({}); its stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::str::from_utf8(&output.stdout)
        .unwrap_or_else(|error| panic!("{what} printed output that is not UTF-8: {error}"));
    parse_objects(text, what)
}

/// Parses multi-document YAML into one value per non-empty document.
fn parse_objects(text: &str, what: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(text, oracle_options())
        .unwrap_or_else(|error| panic!("{what} printed YAML that does not parse: {error}"));
    for (index, document) in documents.iter().enumerate() {
        assert!(
            document.is_object(),
            "{what} printed document {} that is not a mapping: {document}",
            index + 1
        );
    }
    documents
}

/// Budget for trusted tool output: roomy enough for tens of thousands of objects, still bounded.
fn oracle_options() -> Options {
    let mut budget = Budget::default();
    budget.max_documents = 1_000_000;
    budget.max_nodes = 200_000_000;
    budget.max_events = 1_000_000_000;
    budget.max_total_scalar_bytes = 4 * 1024 * 1024 * 1024;
    budget.max_depth = 256;
    let mut options = Options::default();
    options.budget = Some(budget);
    options
}

/// `apiVersion/kind/namespace/name` of a Kubernetes object, the namespace empty when absent.
fn identity(object: &Value) -> String {
    let field = |path: &[&str]| {
        path.iter()
            .try_fold(object, |value, key| value.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!(
        "{}/{}/{}/{}",
        field(&["apiVersion"]),
        field(&["kind"]),
        field(&["metadata", "namespace"]),
        field(&["metadata", "name"])
    )
}

/// Indexes objects by `apiVersion/kind/namespace/name` (the namespace empty when absent).
///
/// # Panics
///
/// When two objects have the same identity.
pub fn objects_by_identity(objects: &[Value]) -> BTreeMap<String, Value> {
    let mut by_identity = BTreeMap::new();
    for object in objects {
        let key = identity(object);
        if let Some(earlier) = by_identity.insert(key.clone(), object.clone()) {
            panic!(
                "two objects have the identity {key}:\n{}\nand\n{}",
                pretty(&earlier),
                pretty(object)
            );
        }
    }
    by_identity
}

/// Asserts that `expected` and `actual` hold the same objects, compared by identity
/// (`apiVersion/kind/namespace/name`) and then as parsed values; order does not matter.
///
/// # Panics
///
/// On a mismatch, listing the identities only one side has, then the first object (by identity)
/// that differs: the paths where it differs and both versions as pretty JSON. Also when either side
/// holds two objects with the same identity.
pub fn assert_same_objects(expected: &[Value], actual: &[Value]) {
    let expected = objects_by_identity(expected);
    let actual = objects_by_identity(actual);
    let mut report = String::new();
    let only_in = |left: &BTreeMap<String, Value>, right: &BTreeMap<String, Value>| {
        left.keys()
            .filter(|key| !right.contains_key(*key))
            .map(|key| format!("\n  {key}"))
            .collect::<String>()
    };
    let missing = only_in(&expected, &actual);
    if !missing.is_empty() {
        report.push_str(&format!("objects expected but missing:{missing}\n"));
    }
    let unexpected = only_in(&actual, &expected);
    if !unexpected.is_empty() {
        report.push_str(&format!("objects not expected:{unexpected}\n"));
    }
    let first_difference = expected.iter().find_map(|(key, want)| {
        actual
            .get(key)
            .filter(|got| *got != want)
            .map(|got| (key, want, got))
    });
    if let Some((key, want, got)) = first_difference {
        let mut paths = Vec::new();
        differing_paths(want, got, String::new(), &mut paths);
        let shown = paths.len().min(MAX_PATHS_SHOWN);
        let more = paths.len() - shown;
        report.push_str(&format!(
            "object {key} differs at {}{}\n--- expected\n{}\n+++ actual\n{}\n",
            paths[..shown].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            pretty(want),
            pretty(got)
        ));
    }
    if !report.is_empty() {
        panic!(
            "the two object sets differ ({} expected, {} actual):\n{report}",
            expected.len(),
            actual.len()
        );
    }
}

const MAX_PATHS_SHOWN: usize = 20;

/// Collects the JSON-pointer paths at which `left` and `right` differ.
fn differing_paths(left: &Value, right: &Value, at: String, paths: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: std::collections::BTreeSet<&String> =
                left.keys().chain(right.keys()).collect();
            for key in keys {
                let below = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (left.get(key), right.get(key)) {
                    (Some(left), Some(right)) => differing_paths(left, right, below, paths),
                    _ => paths.push(below),
                }
            }
        }
        (Value::Array(left_items), Value::Array(right_items))
            if left_items.len() == right_items.len() =>
        {
            for (index, (left, right)) in left_items.iter().zip(right_items).enumerate() {
                differing_paths(left, right, format!("{at}/{index}"), paths);
            }
        }
        _ if left == right => {}
        _ => paths.push(if at.is_empty() { "/".into() } else { at }),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let payload = std::panic::catch_unwind(|| {
            find_tool("windlass-no-such-tool", "WINDLASS_NO_SUCH_TOOL_VARIABLE")
        })
        .expect_err("a tool that is nowhere must panic");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            message,
            "windlass-no-such-tool is not installed: run scripts/install-kube-tools.sh \
             (scripts/test.sh does this)"
        );
    }

    #[test]
    fn identity_leaves_an_absent_namespace_empty() {
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}});
        assert_eq!(identity(&object), "v1/Namespace//a");
    }

    #[test]
    fn differing_paths_name_every_leaf_that_differs() {
        let left = json!({"a": {"b": 1, "c": [1, 2]}, "d/e": "x"});
        let right = json!({"a": {"b": 2, "c": [1, 3]}, "f": true});
        let mut paths = Vec::new();
        differing_paths(&left, &right, String::new(), &mut paths);
        assert_eq!(paths, ["/a/b", "/a/c/1", "/d~1e", "/f"]);
    }

    #[test]
    fn parse_objects_skips_empty_documents() {
        let text = "---\n# Source: chart/templates/a.yaml\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        let objects = parse_objects(text, "test");
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0]["kind"], "ConfigMap");
    }
}
