//! Writing a `serde_json::Value` as YAML text, byte for byte as serde-saphyr writes it. Rendered
//! files are compared byte for byte by replays and diffs, so serde-saphyr's layout is the
//! contract; this module only makes the common case fast. A document made of mappings, non-empty
//! sequences, integers, booleans, and keys and strings of the characters that are plain in every
//! position (a letter, then letters, digits and `. _ / : @ -`, at most 80 characters, no `:` in
//! keys, never a word YAML gives a meaning) is written here directly; any other document is
//! handed whole to serde-saphyr. The property tests at the end hold the direct writer to
//! serde-saphyr's output.

use std::fmt::Write as _;

use serde_json::Value;

/// The YAML text of `value`, exactly as `serde_saphyr::to_string` writes it.
pub fn to_yaml(value: &Value) -> Result<String, serde_saphyr::ser::Error> {
    let mut text = String::with_capacity(512);
    if write_root(value, &mut text).is_some() {
        debug_assert_eq!(
            serde_saphyr::to_string(value).ok().as_deref(),
            Some(text.as_str()),
            "the direct YAML writer disagrees with serde-saphyr on {value}"
        );
        return Ok(text);
    }
    serde_saphyr::to_string(value)
}

/// Writes a document whose root is a mapping; `None` for any other shape.
fn write_root(value: &Value, out: &mut String) -> Option<()> {
    let Value::Object(map) = value else {
        return None;
    };
    if map.is_empty() {
        return None;
    }
    write_mapping_entries(map, 0, false, out)
}

/// Writes the entries of a non-empty mapping at `indent`; the first key continues the current
/// line when `first_on_line` (after a sequence's `- `).
fn write_mapping_entries(
    map: &serde_json::Map<String, Value>,
    indent: usize,
    first_on_line: bool,
    out: &mut String,
) -> Option<()> {
    for (position, (key, value)) in map.iter().enumerate() {
        if !is_plain_everywhere(key) || key.contains(':') {
            return None;
        }
        if position > 0 || !first_on_line {
            push_indent(indent, out);
        }
        out.push_str(key);
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_mapping_entries(inner, indent + 2, false, out)?;
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_sequence_items(items, indent, out)?;
            }
            scalar => {
                out.push(' ');
                write_scalar(scalar, out)?;
                out.push('\n');
            }
        }
    }
    Some(())
}

/// Writes the items of a non-empty sequence as `- ` lines at `indent`.
fn write_sequence_items(items: &[Value], indent: usize, out: &mut String) -> Option<()> {
    for item in items {
        push_indent(indent, out);
        out.push_str("- ");
        match item {
            Value::Object(inner) if !inner.is_empty() => {
                write_mapping_entries(inner, indent + 2, true, out)?;
            }
            Value::Array(_) | Value::Object(_) => return None,
            scalar => {
                write_scalar(scalar, out)?;
                out.push('\n');
            }
        }
    }
    Some(())
}

/// Writes an integer, a boolean or a plain string; `None` for anything else.
fn write_scalar(value: &Value, out: &mut String) -> Option<()> {
    match value {
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) if number.is_u64() || number.is_i64() => {
            write!(out, "{number}").ok()?;
        }
        Value::String(text) if is_plain_everywhere(text) => out.push_str(text),
        _ => return None,
    }
    Some(())
}

fn push_indent(indent: usize, out: &mut String) {
    for _ in 0..indent {
        out.push(' ');
    }
}

/// Whether `text` is written plain as a value (and, without a `:`, as a key): it has at most
/// [`LONGEST_PLAIN`] characters, starts with a letter, holds only letters, digits and
/// `. _ / : @ -`, does not end with `:`, and is not a word with a meaning in YAML 1.1 or 1.2
/// (booleans, nulls, `inf`, `nan`), which serde-saphyr quotes.
fn is_plain_everywhere(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    if bytes.len() > LONGEST_PLAIN {
        // serde-saphyr writes longer strings as folded block scalars (`>-`).
        return false;
    }
    if !first.is_ascii_alphabetic() || bytes.last() == Some(&b':') {
        return false;
    }
    let characters_fine = bytes.iter().all(|byte| {
        byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'/' | b':' | b'@' | b'-')
    });
    characters_fine && !is_special_word(text)
}

/// The longest string serde-saphyr writes on one line (its folding width).
const LONGEST_PLAIN: usize = 80;

/// The short words serde-saphyr quotes so that no YAML reader takes them for something else.
fn is_special_word(text: &str) -> bool {
    const WORDS: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "inf", "nan",
    ];
    // Compared without case and without a lowered copy: this runs for every scalar written.
    WORDS.iter().any(|word| text.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::*;

    /// Strings from the plain class and from just outside it.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z][a-zA-Z0-9._/:@-]{0,12}",
            1 => "[a-z][a-z0-9./:@-]{70,90}",
            1 => proptest::sample::select(
                &[
                    "yes", "No", "ON", "off", "Y", "n", "true", "False", "NULL", "Inf", "nan",
                    "Infinity", "NaN", "a:", "a: b", "a #b", "1.0", "80", "", " a", "a ", "-a",
                    "a\nb", "~", "é", "a'b", "y1", "on-call", "nullable", "a:b", "a::b",
                    "http://x", "x@sha256:00", "true1", "e1", "E5", "o1",
                ][..]
            )
            .prop_map(str::to_string),
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => text().prop_map(Value::String),
            1 => any::<i64>().prop_map(Value::from),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => Just(Value::Null),
            1 => Just(json!(1.5)),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec((text(), inner.clone()), 0..5)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
                proptest::collection::vec(inner, 0..4).prop_map(Value::Array),
            ]
        })
    }

    /// Documents inside the direct writer's shape (so that it is exercised, not just declined).
    fn common_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            // Not `n`, `o`, `y` first, nor the words left with another first letter: YAML
            // reads each of those as something other than a string, so they are quoted.
            4 => "[a-mp-xz][a-z0-9.-]{0,10}"
                .prop_filter("a word YAML gives a meaning", |text| {
                    !matches!(text.as_str(), "inf" | "true" | "false")
                })
                .prop_map(Value::String),
            1 => (0u32..1000).prop_map(Value::from),
            1 => any::<bool>().prop_map(Value::Bool),
        ];
        leaf.prop_recursive(5, 64, 5, |inner| {
            prop_oneof![
                proptest::collection::btree_map("k[a-zA-Z]{0,8}", inner.clone(), 1..5)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
                // A sequence in a sequence is left to serde-saphyr: wrapped in a mapping here.
                proptest::collection::vec(
                    inner.prop_map(|item| match item {
                        Value::Array(_) => json!({ "kItems": item }),
                        other => other,
                    }),
                    1..4
                )
                .prop_map(Value::Array),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn whenever_the_direct_writer_answers_serde_saphyr_writes_the_same(root in value()) {
            let mut direct = String::new();
            if write_root(&root, &mut direct).is_some() {
                prop_assert_eq!(Some(direct), serde_saphyr::to_string(&root).ok(), "{}", root);
            }
        }

        #[test]
        fn documents_of_the_common_shape_take_the_direct_writer(
            entries in proptest::collection::btree_map("k[a-zA-Z]{0,8}", common_value(), 1..6)
        ) {
            let root = Value::Object(entries.into_iter().collect::<Map<_, _>>());
            let mut direct = String::new();
            prop_assert!(write_root(&root, &mut direct).is_some(), "declined: {}", root);
            prop_assert_eq!(Some(direct), serde_saphyr::to_string(&root).ok(), "{}", root);
        }
    }

    #[test]
    fn a_rendered_deployment_is_written_directly_as_serde_saphyr_would() {
        let deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app-0", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {
                "replicas": 2,
                "paused": false,
                "template": {"spec": {
                    "initContainers": [{"name": "init", "image": "proxy.example.com/proxy/app/quay.io/org/init:1.0"}],
                    "containers": [
                        {"name": "main", "image": "quay.io/org/api@sha256:0123abcd", "args": ["serve", "port"]},
                    ],
                    "imagePullSecrets": [{"name": "app-registry"}],
                }},
            },
        });
        let mut direct = String::new();
        assert!(write_root(&deployment, &mut direct).is_some());
        assert_eq!(
            Some(direct.clone()),
            serde_saphyr::to_string(&deployment).ok()
        );
        assert!(
            direct.contains("      initContainers:\n      - name: init\n"),
            "{direct}"
        );
    }

    #[test]
    fn other_documents_are_written_by_serde_saphyr() {
        for value in [
            json!({"a": "80"}),
            json!({"a": ""}),
            json!({"a": {}}),
            json!({"a": []}),
            json!({"a": null}),
            json!({"a": 1.5}),
            json!({"a": [[1]]}),
            json!({"a": "yes"}),
            json!({"a": "two\nlines"}),
            json!({"1": "numeric key"}),
            json!(["root", "sequence"]),
        ] {
            let mut direct = String::new();
            assert!(write_root(&value, &mut direct).is_none(), "{value}");
            assert_eq!(
                to_yaml(&value).ok(),
                serde_saphyr::to_string(&value).ok(),
                "{value}"
            );
        }
    }
}
