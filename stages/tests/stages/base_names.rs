//! `write_base::base_file_names`, the naming rules of `base/`: a single-document file keeps its
//! path, each Kubernetes document of a multi-document file becomes `<stem>-<n><ext>` (n counting
//! every document of the file, from 1), KOTS kinds get no file, and a name already taken — by
//! another file or by the root `kustomization.yaml` — gets a further `-<k>` suffix. Each case is a
//! list of recorded documents in, the names out; every case also checks the names are unique.

use std::collections::HashSet;

use windlass_stages::events::{DocumentClass, FetchedDocument};
use windlass_stages::write_base::base_file_names;

const K8S: DocumentClass = DocumentClass::KubernetesObject;
const KOTS: DocumentClass = DocumentClass::KotsKind;

fn document(file: &str, index: usize, class: DocumentClass) -> FetchedDocument {
    FetchedDocument {
        file: file.to_string(),
        index,
        line: 1 + index * 10,
        api_version: match class {
            DocumentClass::KubernetesObject => "v1".into(),
            DocumentClass::KotsKind => "kots.io/v1beta1".into(),
            DocumentClass::NotDeployed => "troubleshoot.sh/v1beta2".into(),
        },
        kind: "ConfigMap".into(),
        namespace: None,
        name: Some(format!("{file}-{index}")),
        class,
        blob: Some("0".repeat(64)),
        fingerprint: None,
    }
}

/// Names `documents` and compares the result with `expected` (position in the list, name).
fn check(documents: &[(&str, usize, DocumentClass)], expected: &[(usize, &str)]) {
    let documents: Vec<FetchedDocument> = documents
        .iter()
        .map(|(file, index, class)| document(file, *index, *class))
        .collect();
    let names = base_file_names(&documents);
    let actual: Vec<(usize, &str)> = names
        .iter()
        .map(|(position, name)| (*position, name.as_str()))
        .collect();
    assert_eq!(actual, expected, "for {documents:#?}");
    let unique: HashSet<&str> = actual.iter().map(|(_, name)| *name).collect();
    assert_eq!(unique.len(), actual.len(), "names are unique: {actual:?}");
}

#[test]
fn single_document_files_keep_their_path() {
    check(&[("a.yaml", 0, K8S)], &[(0, "a.yaml")]);
    check(&[("dir/sub/x.yml", 0, K8S)], &[(0, "dir/sub/x.yml")]);
    check(
        &[("sub/kustomization.yaml", 0, K8S)],
        &[(0, "sub/kustomization.yaml")],
    );
}

#[test]
fn multi_document_files_are_split_by_document_number() {
    check(
        &[("m.yaml", 0, K8S), ("m.yaml", 1, K8S), ("m.yaml", 2, K8S)],
        &[(0, "m-1.yaml"), (1, "m-2.yaml"), (2, "m-3.yaml")],
    );
    check(
        &[("dir/m.yml", 0, K8S), ("dir/m.yml", 1, K8S)],
        &[(0, "dir/m-1.yml"), (1, "dir/m-2.yml")],
    );
}

#[test]
fn kots_kinds_get_no_file_but_count_as_documents() {
    check(&[("app.yaml", 0, KOTS)], &[]);
    check(
        &[("mixed.yaml", 0, KOTS), ("mixed.yaml", 1, K8S)],
        &[(1, "mixed-2.yaml")],
    );
}

#[test]
fn clashing_names_get_a_further_suffix() {
    // In path order `a-2.yaml` comes first and keeps its name; `a.yaml`'s second document yields.
    check(
        &[("a-2.yaml", 0, K8S), ("a.yaml", 0, K8S), ("a.yaml", 1, K8S)],
        &[(0, "a-2.yaml"), (1, "a-1.yaml"), (2, "a-2-2.yaml")],
    );
    // Whoever comes first keeps the plain name.
    check(
        &[("a.yaml", 0, K8S), ("a.yaml", 1, K8S), ("a-2.yaml", 0, K8S)],
        &[(0, "a-1.yaml"), (1, "a-2.yaml"), (2, "a-2-1-2.yaml")],
    );
    // The suffixed name may itself be taken: the suffix counts on.
    check(
        &[
            ("a-1-2.yaml", 0, K8S),
            ("a-1.yaml", 0, K8S),
            ("a.yaml", 0, K8S),
            ("a.yaml", 1, K8S),
        ],
        &[
            (0, "a-1-2.yaml"),
            (1, "a-1.yaml"),
            (2, "a-1-3.yaml"),
            (3, "a-2.yaml"),
        ],
    );
}

#[test]
fn the_root_kustomization_name_is_reserved() {
    check(
        &[("kustomization.yaml", 0, K8S)],
        &[(0, "kustomization-1-2.yaml")],
    );
}

#[test]
fn a_name_never_turns_a_file_into_a_directory_or_back() {
    // `x.yaml` has two documents, so its first becomes `x-1.yaml`, which a directory of the
    // release already uses as a directory name.
    check(
        &[
            ("x-1.yaml/z.yaml", 0, K8S),
            ("x.yaml", 0, K8S),
            ("x.yaml", 1, K8S),
        ],
        &[(0, "x-1.yaml/z.yaml"), (1, "x-1-2.yaml"), (2, "x-2.yaml")],
    );
}

#[test]
fn a_split_file_name_too_long_for_a_file_system_is_shortened() {
    use windlass_stages::output::{MAX_FILE_NAME_BYTES, fit_file_name};
    // 255 bytes: the longest name a release file can have; `-<n>` made it 257 (too long).
    let long = format!("dir/{}.yaml", "l".repeat(250));
    let first = format!("{}-1.yaml", "l".repeat(250));
    let second = format!("{}-2.yaml", "l".repeat(250));
    let expected = [
        format!("dir/{}", fit_file_name(&first)),
        format!("dir/{}", fit_file_name(&second)),
    ];
    check(
        &[(&long, 0, K8S), (&long, 1, K8S)],
        &[(0, &expected[0]), (1, &expected[1])],
    );
    for name in &expected {
        let file_name = name.strip_prefix("dir/").unwrap();
        assert_eq!(file_name.len(), MAX_FILE_NAME_BYTES, "{name}");
        assert!(file_name.ends_with(".yaml"));
    }
}
