//! The fast path against serde-saphyr, its oracle: on any text, whenever the fast path gives a
//! value, serde-saphyr (with the same options) must give the same one; and documents of the
//! common shape must take the fast path, so that agreement is not reached by always declining.

use proptest::prelude::*;

use super::*;
use crate::documents::parse_options;

fn general(text: &str) -> Option<Value> {
    serde_saphyr::from_str_with_options(text, parse_options()).ok()
}

/// Plain scalars, among them every spelling whose meaning differs between YAML versions or
/// parsers, numbers in every radix and form, and text that only looks like numbers.
const PLAIN: &[&str] = &[
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Y",
    "N",
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
    "null",
    "Null",
    "NULL",
    "~",
    "0",
    "7",
    "42",
    "0777",
    "0x1F",
    "0X1f",
    "0o17",
    "0b101",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "1.5",
    ".5",
    "5.",
    "1e3",
    "1E-3",
    "-.5e-3",
    "-12",
    "+5",
    "-0",
    "+0",
    "00",
    "0_1",
    "-.inf",
    ".inf",
    "+.INF",
    ".nan",
    ".NaN",
    "1e999",
    "-1e999",
    "1:30",
    "12:00:00",
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "500m",
    "128Mi",
    "1.5Gi",
    "nginx:1.25",
    "/data",
    "--flag=x",
    "-Xmx1g",
    "-",
    "a b c",
    "inf",
    "nan",
    "Infinity",
    "-inf",
    "1.2.3",
    "0.0.0.0",
    "v1",
    "apps/v1",
    "a#b",
    "deadbeef",
    "face1",
    "0xGG",
    "0b2",
    "0o8",
    "+.",
    "-.",
    ".",
    "._",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "1e",
    "e1",
    "0e0",
    "+-1",
    "1-2",
    "3.14.15",
];

/// Keys, including ones the fast path declines (numbers, booleans, null, merge keys).
const KEYS: &[&str] = &[
    "name",
    "image",
    "app.kubernetes.io/name",
    "a",
    "b",
    "replicas",
    "'quoted'",
    "\"dq\"",
    "true",
    "1",
    "~",
    "<<",
    "-k",
    "x y",
    "on",
    "0x1",
];

/// A scalar as written: plain, quoted either way, or a block scalar.
fn scalar_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(PLAIN).prop_map(str::to_string),
        1 => "[a-z0-9 ._:/+-]{0,10}",
        1 => "[a-z0-9 ._:#-]{0,8}".prop_map(|text| format!("'{}'", text.replace('\'', "''"))),
        1 => "[a-z0-9 ._:#-]{0,8}".prop_map(|text| format!("\"{text}\"")),
        1 => proptest::sample::select(PLAIN).prop_map(|text| format!("\"{text}\"")),
    ]
}

/// A YAML node, written in block style at `indent` (flow style for small collections).
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Block(String),
    Mapping(Vec<(String, Node)>),
    Sequence(Vec<Node>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        6 => scalar_text().prop_map(Node::Scalar),
        1 => "[a-z ]{0,12}".prop_map(Node::Block),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            (proptest::collection::vec(
                (
                    proptest::sample::select(KEYS).prop_map(str::to_string),
                    inner.clone()
                ),
                1..6
            ))
            .prop_map(Node::Mapping),
            proptest::collection::vec(inner, 1..5).prop_map(Node::Sequence),
        ]
    })
}

/// A literal block scalar (`|`) holding one line, for a node at indentation `pad`.
fn write_block_scalar(text: &str, pad: &str, out: &mut String) {
    out.push_str(" |\n");
    out.push_str(pad);
    out.push_str("  ");
    out.push_str(text);
    out.push('\n');
}

fn write(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Scalar(text) => {
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        }
        Node::Block(text) => write_block_scalar(text, &pad, out),
        Node::Mapping(entries) => {
            out.push('\n');
            for (key, value) in entries {
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                write(value, indent + 2, out);
            }
        }
        Node::Sequence(items) => {
            out.push('\n');
            for item in items {
                out.push_str(&pad);
                out.push('-');
                write(item, indent + 2, out);
            }
        }
    }
}

fn document(root: &Node) -> String {
    let mut text = String::new();
    match root {
        Node::Mapping(_) | Node::Sequence(_) => {
            write(root, 0, &mut text);
            text.remove(0);
        }
        _ => {
            text.push_str("root:");
            write(root, 2, &mut text);
        }
    }
    text
}

/// Whether the fast path is expected to take `node` (every key a plain word, no repeats).
fn common_shape(node: &Node) -> bool {
    match node {
        Node::Scalar(_) | Node::Block(_) => true,
        Node::Mapping(entries) => {
            let mut keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.len() == entries.len()
                && keys
                    .iter()
                    .all(|key| matches!(*key, "name" | "image" | "a" | "b" | "replicas"))
                && entries.iter().all(|(_, value)| common_shape(value))
        }
        Node::Sequence(items) => items.iter().all(common_shape),
    }
}

fn common_scalar() -> impl Strategy<Value = String> {
    proptest::sample::select(
        &[
            "web",
            "nginx:1.25",
            "500m",
            "128Mi",
            "80",
            "0",
            "true",
            "'80'",
            "\"yes\"",
            "/data",
            "--port=80",
            "1.5",
            "apps/v1",
            "",
        ][..],
    )
    .prop_map(str::to_string)
}

fn common_node() -> impl Strategy<Value = Node> {
    common_scalar()
        .prop_map(Node::Scalar)
        .prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::btree_map(
                    proptest::sample::select(&["name", "image", "a", "b", "replicas"][..]),
                    inner.clone(),
                    1..5
                )
                .prop_map(|entries| Node::Mapping(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key.to_string(), value))
                        .collect()
                )),
                proptest::collection::vec(inner, 1..4).prop_map(Node::Sequence),
            ]
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn whenever_the_fast_path_answers_serde_saphyr_agrees(root in node()) {
        let text = document(&root);
        if let Some(fast) = parse(&text) {
            prop_assert_eq!(Some(fast), general(&text), "{}", text);
        }
    }

    #[test]
    fn arbitrary_text_never_makes_the_paths_disagree(text in "[a-z0-9 :\\-\\[\\]{},.'\"#\n&*!|>~]{0,60}") {
        if let Some(fast) = parse(&text) {
            prop_assert_eq!(Some(fast), general(&text), "{:?}", text);
        }
    }

    #[test]
    fn documents_of_the_common_shape_take_the_fast_path(root in common_node()) {
        prop_assume!(common_shape(&root));
        let text = document(&root);
        let fast = parse(&text);
        prop_assert!(fast.is_some(), "declined:\n{}", text);
        prop_assert_eq!(fast, general(&text), "{}", text);
    }
}

#[test]
fn the_common_shape_is_built_directly() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web, 'tier': \"front\"}\nspec:\n  replicas: 3\n  paused: false\n  template:\n    spec:\n      containers:\n        - name: main\n          image: nginx:1.25\n          args: [--port, '80']\n          resources: {limits: {cpu: 500m, memory: 1.5}}\n          command: |\n            run\n      nodeSelector:\n";
    let value = parse(text).expect("the common shape");
    assert_eq!(Some(value.clone()), general(text));
    assert_eq!(value["spec"]["replicas"], 3);
    assert_eq!(
        value["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        1.5
    );
}

#[test]
fn every_listed_plain_scalar_means_the_same_on_both_paths() {
    for plain in PLAIN {
        let text = format!("value: {plain}\n");
        if let Some(fast) = parse(&text) {
            assert_eq!(Some(fast), general(&text), "{text:?}");
        }
    }
}

#[test]
fn other_shapes_take_the_general_path() {
    for text in [
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "base: &b {x: 1}\nderived:\n  <<: *b\n",
        "a: 1\na: 2\n",
        "? [complex]\n: key\n",
        "1: numeric key\n",
        "true: boolean key\n",
        "a: .inf\n",
        "a: 99999999999999999999999\n",
        "a: [unclosed\n",
        "a: 1\n---\nb: 2\n",
        "%YAML 1.2\n---\na: 1\n",
        "",
    ] {
        assert_eq!(parse(text), None, "{text:?}");
    }
}

/// Writes `node` the way people and tools usually do: a mapping in a sequence starts on the
/// dash's line (`- name: x`), a sequence under a key sits at the key's column, and, when
/// `comments` is set, every scalar line ends with a comment and blank lines separate entries.
fn write_compact(node: &Node, indent: usize, comments: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    let end_of_scalar_line = |out: &mut String| {
        if comments {
            out.push_str("  # note: x");
        }
        out.push('\n');
    };
    match node {
        Node::Scalar(text) => {
            out.push(' ');
            out.push_str(text);
            end_of_scalar_line(out);
        }
        Node::Block(text) => write_block_scalar(text, &pad, out),
        Node::Mapping(entries) => {
            // The caller has written `- ` (first key goes on that line) or a newline.
            for (position, (key, value)) in entries.iter().enumerate() {
                if position > 0 || !out.ends_with("- ") {
                    out.push_str(&pad);
                }
                out.push_str(key);
                out.push(':');
                match value {
                    Node::Sequence(_) => {
                        out.push('\n');
                        write_compact(value, indent, comments, out);
                    }
                    Node::Mapping(_) => {
                        out.push('\n');
                        write_compact(value, indent + 2, comments, out);
                    }
                    _ => write_compact(value, indent + 2, comments, out),
                }
                if comments {
                    out.push('\n');
                }
            }
        }
        Node::Sequence(items) => {
            for item in items {
                out.push_str(&pad);
                match item {
                    Node::Mapping(_) => {
                        out.push_str("- ");
                        write_compact(item, indent + 2, comments, out);
                    }
                    Node::Sequence(_) => {
                        out.push_str("-\n");
                        write_compact(item, indent + 2, comments, out);
                    }
                    _ => {
                        out.push('-');
                        write_compact(item, indent + 2, comments, out);
                    }
                }
            }
        }
    }
}

fn compact_document(root: &Node, comments: bool) -> String {
    let mut text = String::new();
    match root {
        Node::Mapping(_) | Node::Sequence(_) => write_compact(root, 0, comments, &mut text),
        _ => {
            text.push_str("root:");
            write_compact(root, 2, comments, &mut text);
        }
    }
    text
}

/// Whether the line reader is expected to take `node`: the common shape, without block scalars.
fn line_reader_shape(node: &Node) -> bool {
    common_shape(node)
        && match node {
            Node::Scalar(_) => true,
            Node::Block(_) => false,
            Node::Mapping(entries) => entries.iter().all(|(_, value)| line_reader_shape(value)),
            Node::Sequence(items) => items.iter().all(line_reader_shape),
        }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn whenever_the_line_reader_answers_serde_saphyr_agrees(root in node(), comments in any::<bool>()) {
        for text in [document(&root), compact_document(&root, comments)] {
            if let Some(fast) = block_lines::parse(&text) {
                prop_assert_eq!(Some(fast), general(&text), "{}", text);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_makes_the_line_reader_disagree(text in "[a-z0-9 :\\-\\[\\]{},.'\"#\n&*!|>~\\\\]{0,60}") {
        if let Some(fast) = block_lines::parse(&text) {
            prop_assert_eq!(Some(fast), general(&text), "{:?}", text);
        }
    }

    #[test]
    fn arbitrary_indentation_never_makes_the_line_reader_disagree(
        lines in proptest::collection::vec(("[ ]{0,5}", "(- )?", "(name|image|a)", "(:|: [a-z0-9'\"]{1,4}|: \\[\\])"), 1..8)
    ) {
        let text: String = lines
            .iter()
            .map(|(pad, dash, key, value)| format!("{pad}{dash}{key}{value}\n"))
            .collect();
        if let Some(fast) = block_lines::parse(&text) {
            prop_assert_eq!(Some(fast), general(&text), "{:?}", text);
        }
    }

    #[test]
    fn documents_of_the_common_shape_take_the_line_reader(root in common_node(), comments in any::<bool>()) {
        prop_assume!(line_reader_shape(&root));
        for text in [document(&root), compact_document(&root, comments)] {
            let fast = block_lines::parse(&text);
            prop_assert!(fast.is_some(), "declined:\n{}", text);
            prop_assert_eq!(fast, general(&text), "{}", text);
        }
    }
}

#[test]
fn a_deployment_as_people_write_it_takes_the_line_reader() {
    let text = "# a comment before the document\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web  # trailing comment\n  labels:\n    app.kubernetes.io/name: web\n  annotations:\n    kots.io/creation-phase: '-1'\n    note: \"say \\\"hi\\\"\\n\"\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: main\n        image: quay.io/my-org/api:1.0\n        args: []\n        env:\n          - name: EMPTY\n            value: ''\n          - name: IT\n            value: 'it''s'\n        resources: {}\n\n      nodeSelector:\n";
    let value = block_lines::parse(text).expect("the line reader takes it");
    assert_eq!(Some(value.clone()), general(text));
    assert_eq!(
        value["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"],
        "it's"
    );
    assert_eq!(value["metadata"]["annotations"]["note"], "say \"hi\"\n");
    assert_eq!(
        value["spec"]["template"]["spec"]["nodeSelector"],
        Value::Null
    );
}

#[test]
fn shapes_beyond_the_line_reader_go_to_the_other_paths_with_the_same_value() {
    for text in [
        "a: |\n  block\n",
        "a: [x, y]\n",
        "a: {b: 1}\n",
        "a: plain\n  continued\n",
        "a:\n  plain text\n",
        "a: \"two\n  lines\"\n",
        "a: \"\\u00e9\"\n",
        "'quoted': key\n",
        "a:\tb\n",
        "a: b\r\n",
        "- - nested\n",
        "a: &x 1\n",
        "a: !t 1\n",
        "\u{feff}a: 1\n",
        "a: b: c\n",
        "a:b\n",
    ] {
        assert_eq!(block_lines::parse(text), None, "{text:?}");
        assert_eq!(
            crate::documents::parse_value(text).ok(),
            general(text),
            "{text:?}"
        );
    }
}
