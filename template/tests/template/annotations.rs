//! `kots.io/exclude` and `kots.io/when`.

use windlass_template::annotations::{EXCLUDE, WHEN, excluded};

fn document(annotations: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "x", "annotations": annotations}})
}

#[test]
fn exclude_decides_alone_then_when() {
    let cases = [
        (serde_json::json!({}), None),
        (
            serde_json::json!({"kots.io/exclude": "true"}),
            Some(EXCLUDE),
        ),
        (
            serde_json::json!({"kots.io/exclude": true, "kots.io/when": "true"}),
            Some(EXCLUDE),
        ),
        (
            serde_json::json!({"kots.io/exclude": "false", "kots.io/when": "false"}),
            None,
        ),
        (serde_json::json!({"kots.io/when": "false"}), Some(WHEN)),
        (serde_json::json!({"kots.io/when": "F"}), Some(WHEN)),
        (serde_json::json!({"kots.io/when": "0"}), Some(WHEN)),
        (serde_json::json!({"kots.io/when": "True"}), None),
        (serde_json::json!({"kots.io/when": false}), Some(WHEN)),
    ];
    for (annotations, want) in cases {
        let got = excluded(&document(annotations.clone())).expect("a bool");
        assert_eq!(got.map(|e| e.annotation), want, "{annotations}");
    }
}

#[test]
fn a_value_that_is_not_a_go_bool_is_an_error() {
    for value in ["yes", "", "maybe"] {
        let error = excluded(&document(serde_json::json!({"kots.io/when": value})))
            .expect_err("not a bool");
        assert_eq!(
            error.to_string(),
            format!(
                "annotation kots.io/when is {}, not a bool (use true or false)",
                serde_json::json!(value)
            )
        );
    }
}
