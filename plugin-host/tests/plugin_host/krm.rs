//! The KRM function protocol: the input list windlass sends and the checks on what a function
//! prints.

use serde_json::json;
use windlass_plugin_host::krm::{
    INDEX_ANNOTATION, InputItem, PATH_ANNOTATION, function_config, input_resource_list, read_output,
};

#[test]
fn the_input_annotates_each_item_with_its_file_and_position() {
    let items = [InputItem {
        object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        path: "manifests/a.yaml".into(),
        index: 2,
    }];
    let config = function_config("audit", &json!({"team": "x"}), "base", "blake3:00");
    let list: serde_json::Value =
        serde_json::from_slice(&input_resource_list(&items, &config)).unwrap();
    assert_eq!(list["apiVersion"], "config.kubernetes.io/v1");
    assert_eq!(list["kind"], "ResourceList");
    let annotations = &list["items"][0]["metadata"]["annotations"];
    assert_eq!(annotations[PATH_ANNOTATION], "manifests/a.yaml");
    assert_eq!(annotations[INDEX_ANNOTATION], "2");
    assert_eq!(annotations["config.kubernetes.io/path"], "manifests/a.yaml");
    assert_eq!(list["functionConfig"]["kind"], "PluginConfig");
    assert_eq!(list["functionConfig"]["spec"]["team"], "x");
    assert_eq!(list["functionConfig"]["context"]["documents"], "base");
}

#[test]
fn a_krm_object_as_config_is_handed_over_as_it_is() {
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"team": "x"}});
    assert_eq!(function_config("p", &config, "base", "d"), config);
}

#[test]
fn output_items_lose_the_location_annotations_windlass_added() {
    let output = read_output(
        b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n    annotations:\n      internal.config.kubernetes.io/path: m/a.yaml\n      internal.config.kubernetes.io/index: '1'\n      config.kubernetes.io/path: m/a.yaml\nresults:\n- message: fine\n",
    )
    .expect("valid");
    assert_eq!(output.items.len(), 1);
    assert_eq!(output.items[0].path.as_deref(), Some("m/a.yaml"));
    assert_eq!(output.items[0].index, Some(1));
    assert_eq!(
        output.items[0].object,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    );
    assert_eq!(
        output.results[0].severity, "info",
        "an absent severity is info"
    );
}

#[test]
fn malformed_output_is_refused_with_what_is_wrong() {
    let cases: [(&[u8], &str); 8] = [
        (b"", "it printed nothing"),
        (b"items: [\n", "its output is not one YAML document"),
        (b"- 1\n", "not a ResourceList (not a mapping)"),
        (b"apiVersion: v1\nkind: List\nitems: []\n", "apiVersion v1, kind List"),
        (b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n", "no `items` list"),
        (
            b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- kind: X\n  metadata: {name: a}\n",
            "items[0]: apiVersion is missing",
        ),
        (
            b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- {apiVersion: v1, kind: X, metadata: {name: a, annotations: {internal.config.kubernetes.io/path: ../../etc/x}}}\n",
            "is not a relative path inside the tree",
        ),
        (
            b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nresults:\n- {severity: fatal, message: m}\n",
            "results[0]: severity \"fatal\" is not error, warning or info",
        ),
    ];
    for (output, expected) in cases {
        let problem = read_output(output).expect_err("malformed");
        assert!(
            problem.contains(expected),
            "{:?}: {problem}",
            String::from_utf8_lossy(output)
        );
    }
}
