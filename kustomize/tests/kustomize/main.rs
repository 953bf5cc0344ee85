//! The native kustomize build (`windlass_kustomize`) over fixture layouts under
//! `fixtures/kustomize/<case>/` (`base/`, `overlays/midstream/`,
//! `overlays/downstreams/this-cluster/`, built from the last). A case holds one of:
//! `expected.yaml`, the objects the real `kubectl kustomize` (kustomize v5.6) prints for it (with
//! `UPDATE_EXPECT=1` rewritten from kubectl); `expected-error.txt`, text the native error must
//! contain (kubectl must fail too); or `expected-unsupported.txt`, the fields the native build must
//! report as unsupported, one a line (kubectl must succeed). [`native_build_agrees_with_real_kustomize`]
//! is the oracle: it runs the real kubectl on every case and compares parsed objects, not bytes.
//! kubectl is `$WINDLASS_KUBECTL` or `<workspace>/target/tools/bin/kubectl`, installed by
//! `scripts/install-kube-tools.sh` (which `scripts/test.sh` runs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use windlass_kustomize::{BuildError, MAX_FILE_BYTES, build, build_within};
use windlass_manifest::documents::split_documents;

use tempfile::TempDir;

const OVERLAY: &str = "overlays/downstreams/this-cluster";

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixture(""))
        .expect("read the kustomize fixtures")
        .map(|entry| entry.expect("a fixture entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no kustomize fixtures");
    cases
}

fn name(case: &Path) -> String {
    case.file_name()
        .expect("a case directory")
        .to_string_lossy()
        .into_owned()
}

fn parse_objects(text: &str) -> Vec<Value> {
    split_documents(text)
        .into_iter()
        .map(|(_, piece)| serde_saphyr::from_str::<Value>(&piece).expect("kubectl prints YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

fn kubectl() -> PathBuf {
    if let Some(path) = std::env::var_os("WINDLASS_KUBECTL").filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .join("target/tools/bin/kubectl");
    assert!(
        installed.is_file(),
        "kubectl is not installed: run scripts/install-kube-tools.sh (scripts/test.sh does this)"
    );
    installed
}

/// `kubectl kustomize <dir>`: the objects, or kubectl's error.
fn real_kustomize(dir: &Path) -> Result<(String, Vec<Value>), String> {
    let output = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8(output.stdout).expect("kubectl prints UTF-8");
    let objects = parse_objects(&text);
    Ok((text, objects))
}

fn updating() -> bool {
    std::env::var("UPDATE_EXPECT").is_ok_and(|value| value == "1")
}

fn show(objects: &[Value]) -> String {
    serde_json::to_string_pretty(objects).expect("JSON")
}

fn assert_same_objects(case: &str, what: &str, native: &[Value], expected: &[Value]) {
    assert!(
        native == expected,
        "{case}: native build differs from {what}\nnative:\n{}\nexpected:\n{}",
        show(native),
        show(expected)
    );
}

fn expected_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read an expectation")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn native_build_produces_the_expected_objects() {
    for case in cases() {
        let expected_file = case.join("expected.yaml");
        if !expected_file.exists() {
            continue;
        }
        if updating() {
            let (text, _) = real_kustomize(&case.join(OVERLAY))
                .unwrap_or_else(|error| panic!("{}: kubectl failed: {error}", name(&case)));
            fs::write(&expected_file, text).expect("write expected.yaml");
        }
        let expected = parse_objects(&fs::read_to_string(&expected_file).expect("read"));
        let native =
            build(&case.join(OVERLAY)).unwrap_or_else(|error| panic!("{}: {error}", name(&case)));
        assert_same_objects(&name(&case), "expected.yaml", &native, &expected);
    }
}

#[test]
fn native_build_agrees_with_real_kustomize() {
    for case in cases() {
        let case_name = name(&case);
        let overlay = case.join(OVERLAY);
        let real = real_kustomize(&overlay);
        let native = build(&overlay);
        if case.join("expected.yaml").exists() {
            let (_, real) = real.unwrap_or_else(|error| panic!("{case_name}: kubectl: {error}"));
            let native = native.unwrap_or_else(|error| panic!("{case_name}: {error}"));
            assert_same_objects(&case_name, "kubectl kustomize", &native, &real);
        } else if case.join("expected-error.txt").exists() {
            assert!(real.is_err(), "{case_name}: kubectl kustomize succeeded");
            assert!(native.is_err(), "{case_name}: the native build succeeded");
        } else if case.join("expected-unsupported.txt").exists() {
            real.unwrap_or_else(|error| panic!("{case_name}: kubectl: {error}"));
            assert!(
                matches!(native, Err(BuildError::Unsupported { .. })),
                "{case_name}: expected an unsupported feature, got {native:?}"
            );
        } else {
            panic!("{case_name}: no expected.yaml, expected-error.txt or expected-unsupported.txt");
        }
    }
}

#[test]
fn errors_name_the_file_and_the_problem() {
    for case in cases() {
        let expected_file = case.join("expected-error.txt");
        if !expected_file.exists() {
            continue;
        }
        let error = build(&case.join(OVERLAY))
            .expect_err(&name(&case))
            .to_string();
        for expected in expected_lines(&expected_file) {
            assert!(
                error.contains(&expected),
                "{}: error `{error}` does not contain `{expected}`",
                name(&case)
            );
        }
    }
}

#[test]
fn unsupported_features_are_all_listed() {
    for case in cases() {
        let expected_file = case.join("expected-unsupported.txt");
        if !expected_file.exists() {
            continue;
        }
        match build(&case.join(OVERLAY)) {
            Err(BuildError::Unsupported { fields, .. }) => {
                assert_eq!(fields, expected_lines(&expected_file), "{}", name(&case));
            }
            other => panic!(
                "{}: expected unsupported fields, got {other:?}",
                name(&case)
            ),
        }
    }
}

/// `<dir>/install` (the `kots-layout` fixture) beside `<dir>/outside/elsewhere.yaml` (a ConfigMap).
fn layout_beside_outside(dir: &Path) -> PathBuf {
    let layout = dir.join("install");
    copy_tree(&fixture("kots-layout"), &layout);
    fs::create_dir_all(dir.join("outside")).expect("mkdir");
    fs::write(
        dir.join("outside/elsewhere.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n",
    )
    .expect("write");
    layout
}

#[test]
fn paths_leading_outside_the_layout_are_refused() {
    let dir = temp_dir();
    let layout = layout_beside_outside(dir.path());
    fs::write(
        dir.path().join("outside/kustomization.yaml"),
        "resources: [elsewhere.yaml]\n",
    )
    .expect("write");
    fs::write(
        layout.join(OVERLAY).join("kustomization.yaml"),
        "resources:\n- ../../midstream\n- ../../../../outside\n",
    )
    .expect("write");
    let error = build(&layout.join(OVERLAY)).expect_err("outside the layout");
    assert!(
        matches!(&error, BuildError::OutsideRoot { reference, .. } if reference == "../../../../outside"),
        "{error}"
    );
    // With the whole temporary directory as the root the same tree builds.
    let objects = build_within(&layout.join(OVERLAY), dir.path()).expect("inside the root");
    assert!(
        objects
            .iter()
            .any(|object| object["metadata"]["name"] == "elsewhere")
    );
}

#[test]
fn symlinked_resources_are_followed_only_while_they_stay_inside_the_layout() {
    use std::os::unix::fs::symlink;
    let dir = temp_dir();
    let layout = layout_beside_outside(dir.path());
    let overlay = layout.join(OVERLAY);
    fs::write(
        overlay.join("real.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: real\n",
    )
    .expect("write");
    symlink("real.yaml", overlay.join("inside.yaml")).expect("symlink");
    symlink(
        "../../../../outside/elsewhere.yaml",
        overlay.join("escape.yaml"),
    )
    .expect("symlink");
    symlink("../../../../outside", overlay.join("escape-dir")).expect("symlink");
    let build_with = |resource: &str| {
        fs::write(
            overlay.join("kustomization.yaml"),
            format!("resources:\n- ../../midstream\n- {resource}\n"),
        )
        .expect("write");
        build(&overlay)
    };
    let objects = build_with("inside.yaml").expect("a link inside the overlay is followed");
    assert!(
        objects
            .iter()
            .any(|object| object["metadata"]["name"] == "real")
    );
    for escaping in ["escape.yaml", "escape-dir/elsewhere.yaml"] {
        let error = build_with(escaping).expect_err("a link out of the layout is refused");
        assert!(
            matches!(&error, BuildError::OutsideRoot { reference, .. } if reference == escaping),
            "{escaping}: {error}"
        );
    }
}

#[test]
fn oversized_files_are_refused() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("kustomization.yaml"),
        "resources: [huge.yaml]\n",
    )
    .expect("write");
    let huge = fs::File::create(dir.path().join("huge.yaml")).expect("create");
    huge.set_len(MAX_FILE_BYTES + 1).expect("grow");
    let error = build(dir.path()).expect_err("too large");
    assert!(matches!(error, BuildError::TooLarge { .. }), "{error}");
}

/// A layout of `count` workloads mixing kinds, namespaces, image spellings, tags, digests and
/// Docker Hub aliases, written the way windlass writes the midstream.
fn write_generated_layout(root: &Path, count: usize) {
    let base = root.join("base");
    let midstream = root.join("overlays/midstream");
    let downstream = root.join(OVERLAY);
    for dir in [&base, &midstream, &downstream] {
        fs::create_dir_all(dir).expect("mkdir");
    }
    let spellings = [
        "redis",
        "redis:7",
        "library/redis:7",
        "docker.io/library/redis@sha256:0011",
        "quay.io/org/app-0:1",
        "quay.io/org/app-1:2@sha256:aa",
        "quay.io/org/app-10",
        "quay.io/org/app-1x:3",
        "ghcr.io/org/tool:v1",
        "registry.local:5000/team/app:4",
    ];
    let mut files = Vec::new();
    let mut patches = String::new();
    for index in 0..count {
        let image = |offset: usize| spellings[(index * 7 + offset) % spellings.len()];
        let namespace = match index % 3 {
            0 => String::new(),
            1 => "  namespace: default\n".to_string(),
            _ => "  namespace: team-b\n".to_string(),
        };
        let pod = format!(
            "      imagePullSecrets: [{{name: vendor-{index}}}]\n      initContainers: [{{name: init, image: \"{}\"}}]\n      containers:\n      - {{name: main, image: \"{}\"}}\n      - {{name: side, image: \"{}\"}}\n",
            image(0),
            image(1),
            image(3)
        );
        let (api_version, kind, body, patch_path) = match index % 4 {
            0 | 1 => (
                "apps/v1",
                "Deployment",
                format!("spec:\n  template:\n    spec:\n{pod}"),
                "spec:\n  template:\n    spec:\n",
            ),
            2 => (
                "batch/v1",
                "CronJob",
                format!(
                    "spec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
                    indent(&pod, 6)
                ),
                "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n",
            ),
            _ => (
                "argoproj.io/v1alpha1",
                "Rollout",
                format!("spec:\n  template:\n    spec:\n{pod}"),
                "spec:\n  template:\n    spec:\n",
            ),
        };
        let file = format!("workload-{index}.yaml");
        fs::write(
            base.join(&file),
            format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: w-{index}\n{namespace}{body}"),
        )
        .expect("write");
        files.push(file);
        let depth = patch_path.lines().count() * 2;
        patches.push_str(&format!(
            "---\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: w-{index}\n{namespace}{patch_path}{}imagePullSecrets:\n{}- name: my-app-registry\n",
            " ".repeat(depth),
            " ".repeat(depth)
        ));
    }
    fs::write(
        base.join("kustomization.yaml"),
        format!(
            "resources:\n{}",
            files
                .iter()
                .map(|file| format!("- {file}\n"))
                .collect::<String>()
        ),
    )
    .expect("write");
    let mut images = String::new();
    let mut entry = |name: &str, new_name: &str| {
        images.push_str(&format!("- name: {name}\n  newName: {new_name}\n"));
    };
    for alias in [
        "docker.io/library/redis",
        "library/redis",
        "redis",
        "docker.io/redis",
    ] {
        entry(alias, "proxy.example.com/proxy/app/redis");
    }
    for repository in ["quay.io/org/app-0", "quay.io/org/app-1", "ghcr.io/org/tool"] {
        entry(
            repository,
            &format!("proxy.example.com/proxy/app/{repository}"),
        );
    }
    fs::write(
        midstream.join("kustomization.yaml"),
        format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nbases:\n- ../../base\nimages:\n{images}patchesStrategicMerge:\n- pullsecrets.yaml\nresources:\n- secret.yaml\n"),
    )
    .expect("write");
    fs::write(midstream.join("pullsecrets.yaml"), patches).expect("write");
    fs::write(
        midstream.join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: my-app-registry\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: e30=\n",
    )
    .expect("write");
    fs::write(
        downstream.join("kustomization.yaml"),
        "bases:\n- ../../midstream\n",
    )
    .expect("write");
}

fn indent(text: &str, spaces: usize) -> String {
    text.lines()
        .map(|line| format!("{}{line}\n", " ".repeat(spaces)))
        .collect()
}

#[test]
fn generated_layouts_agree_with_real_kustomize() {
    let dir = temp_dir();
    // More patches than one thread merges (`OBJECTS_PER_THREAD`), so they are merged on every core.
    write_generated_layout(dir.path(), 300);
    let overlay = dir.path().join(OVERLAY);
    let (_, real) = real_kustomize(&overlay).expect("kubectl kustomize");
    let native = build(&overlay).expect("native build");
    assert_eq!(native.len(), 301);
    assert_same_objects("generated", "kubectl kustomize", &native, &real);
}

#[test]
fn images_are_rewritten_per_kustomize_rules_without_a_tool() {
    // The same rules, pinned without kubectl so a failure points at the rule.
    let objects = build(&fixture("image-rules").join(OVERLAY)).expect("build");
    let pod = objects
        .iter()
        .find(|object| object["metadata"]["name"] == "spellings")
        .expect("the pod");
    let image = |name: &str| {
        pod["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .find(|container| container["name"] == name)
            .map(|container| container["image"].clone())
            .expect("a container")
    };
    assert_eq!(image("exact"), json!("proxy.example.com/quay.io/a/b"));
    assert_eq!(image("longer-repository"), json!("quay.io/a/bc"));
    assert_eq!(
        image("tag-and-digest"),
        json!("proxy.example.com/quay.io/a/b:v1@sha256:abcd")
    );
    assert_eq!(
        image("other-digest-algorithm"),
        json!("quay.io/a/b@sha512:abcd")
    );
    assert_eq!(
        image("dot-is-a-wildcard"),
        json!("proxy.example.com/quay.io/a/b")
    );
    assert_eq!(image("hub-full"), json!("docker.io/library/redis:7"));
    assert_eq!(image("chained"), json!("third:2"));
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["image"],
        json!("quay.io/a/b")
    );
}

#[test]
fn large_files_are_parsed_in_pieces_with_the_file_s_own_document_numbers_and_lines() {
    let dir = temp_dir();
    let mut text = String::new();
    for index in 0..4_000 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{index}\ndata:\n  key: \"{index}\"\n"
        ));
    }
    assert!(
        text.len() > 256 * 1024,
        "large enough to be cut into pieces"
    );
    fs::write(
        dir.path().join("kustomization.yaml"),
        "resources: [many.yaml]\n",
    )
    .expect("write");
    fs::write(dir.path().join("many.yaml"), &text).expect("write");
    let objects = build(dir.path()).expect("build");
    assert_eq!(objects.len(), 4_000);

    let broken = text.replacen("name: settings-3001\n", "name: [settings-3001\n", 1);
    fs::write(dir.path().join("many.yaml"), &broken).expect("write");
    let native = build(dir.path()).expect_err("broken document").to_string();
    let serial = windlass_manifest::documents::parse_documents("many.yaml", broken.as_bytes())
        .expect_err("broken document")
        .to_string();
    assert_eq!(native, serial);
    assert!(native.contains("(document 3002,"), "{native}");
}

/// `relative` under this suite's `fixtures/`.
fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kustomize/fixtures")
        .join(relative)
}

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// Copies the directory tree `from` to `to` (created), regular files and directories only.
fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk the fixture");
        let target = to.join(entry.path().strip_prefix(from).expect("inside the fixture"));
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).expect("create a directory");
        } else {
            fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}
