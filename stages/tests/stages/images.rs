//! Image references and discovery: a table of references as vendors write them (Docker Hub short
//! names, ports, digests, tag plus digest, no tag) with what windlass must derive from each, invalid
//! references refused with the reason, and discovery over every place an image can live — pod specs
//! of any shape, `additionalImages`, user rules — with provenance and errors that name file, object
//! and field.

use serde_json::json;
use windlass_manifest::images::discovery::{SourceDocument, discover};
use windlass_manifest::images::reference::ImageReference;
use windlass_manifest::images::rules::{ImageRule, parse_path};

const DIGEST: &str = "sha256:4c8f8d6e6a0b3f2c9d1e7a5b8c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d";

/// written, registry, repository, tag, digest, name as written, manifest reference
type Row<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a str,
);

#[test]
fn references_normalise_like_docker_and_keep_what_was_written() {
    let with_digest = format!("quay.io/my-org/api@{DIGEST}");
    let with_both = format!("quay.io/my-org/api:v1@{DIGEST}");
    let rows: Vec<Row> = vec![
        (
            "redis:7",
            "docker.io",
            "library/redis",
            Some("7"),
            None,
            "redis",
            "7",
        ),
        (
            "redis",
            "docker.io",
            "library/redis",
            None,
            None,
            "redis",
            "latest",
        ),
        (
            "myorg/app:1",
            "docker.io",
            "myorg/app",
            Some("1"),
            None,
            "myorg/app",
            "1",
        ),
        (
            "docker.io/library/redis:7",
            "docker.io",
            "library/redis",
            Some("7"),
            None,
            "docker.io/library/redis",
            "7",
        ),
        (
            "index.docker.io/org/x:1",
            "docker.io",
            "org/x",
            Some("1"),
            None,
            "index.docker.io/org/x",
            "1",
        ),
        (
            "quay.io/my-org/api:v1.0.1",
            "quay.io",
            "my-org/api",
            Some("v1.0.1"),
            None,
            "quay.io/my-org/api",
            "v1.0.1",
        ),
        (
            &with_digest,
            "quay.io",
            "my-org/api",
            None,
            Some(DIGEST),
            "quay.io/my-org/api",
            DIGEST,
        ),
        (
            &with_both,
            "quay.io",
            "my-org/api",
            Some("v1"),
            Some(DIGEST),
            "quay.io/my-org/api",
            DIGEST,
        ),
        (
            "quay.io/my-org/api",
            "quay.io",
            "my-org/api",
            None,
            None,
            "quay.io/my-org/api",
            "latest",
        ),
        (
            "registry.example.com:5000/team/app:2",
            "registry.example.com:5000",
            "team/app",
            Some("2"),
            None,
            "registry.example.com:5000/team/app",
            "2",
        ),
        (
            "localhost/app:dev",
            "localhost",
            "app",
            Some("dev"),
            None,
            "localhost/app",
            "dev",
        ),
        (
            "localhost:5000/app",
            "localhost:5000",
            "app",
            None,
            None,
            "localhost:5000/app",
            "latest",
        ),
    ];
    for (written, registry, repository, tag, digest, name, manifest) in rows {
        let reference = ImageReference::parse(written)
            .unwrap_or_else(|error| panic!("{written} should parse: {error}"));
        assert_eq!(reference.written(), written);
        assert_eq!(reference.registry(), registry, "{written}");
        assert_eq!(reference.repository(), repository, "{written}");
        assert_eq!(reference.tag(), tag, "{written}");
        assert_eq!(reference.digest(), digest, "{written}");
        assert_eq!(reference.name_as_written(), name, "{written}");
        assert_eq!(reference.manifest_reference(), manifest, "{written}");
        assert_eq!(
            reference.normalized_name(),
            format!("{registry}/{repository}")
        );
        assert_eq!(
            reference.is_docker_hub(),
            registry == "docker.io",
            "{written}"
        );
    }
}

#[test]
fn invalid_references_are_refused_with_the_string() {
    for (written, expected) in [
        ("", "empty"),
        ("   ", "empty"),
        ("quay.io/My-Org/api:1", "not a valid image reference"),
        ("quay.io/my-org/api:bad tag", "not a valid image reference"),
        (
            "quay.io/my-org/api@sha256:abc",
            "not a valid image reference",
        ),
        ("quay.io/my-org/api:", "not a valid image reference"),
    ] {
        let error = ImageReference::parse(written).expect_err(written);
        assert!(error.to_string().contains(expected), "{written:?}: {error}");
    }
}

fn doc<'a>(
    kind: &'a str,
    api_version: &'a str,
    value: &'a serde_json::Value,
) -> SourceDocument<'a> {
    SourceDocument {
        file: "app.yaml",
        index: 1,
        api_version,
        kind,
        namespace: Some("shop"),
        name: Some("thing"),
        value,
    }
}

#[test]
fn images_are_found_in_every_pod_spec_shape_with_provenance() {
    let pod = json!({"spec": {
        "containers": [{"name": "a", "image": "quay.io/o/a:1"}],
        "initContainers": [{"name": "i", "image": "ghcr.io/o/init:0.3"}],
        "ephemeralContainers": [{"name": "d", "image": "busybox"}]}});
    let deployment =
        json!({"spec": {"template": {"spec": {"containers": [{"image": "quay.io/o/a:1"}]}}}});
    let cronjob = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "quay.io/o/cron:2"}]}}}}}});
    let rollout =
        json!({"spec": {"template": {"spec": {"containers": [{"image": "quay.io/o/rollout:3"}]}}}});
    let application = json!({"spec": {"additionalImages": ["quay.io/o/sidecar:1"]}});
    let custom = json!({"spec": {"image": "vendor.example/db:14", "sidecars": [{"image": "vendor.example/exporter:1"}, {"image": "quay.io/o/a:1"}]}});
    let documents = vec![
        doc("Pod", "v1", &pod),
        doc("Deployment", "apps/v1", &deployment),
        doc("CronJob", "batch/v1", &cronjob),
        doc("Rollout", "argoproj.io/v1alpha1", &rollout),
        doc("Application", "kots.io/v1beta1", &application),
        doc("MyDB", "db.example.com/v1", &custom),
    ];
    let rules = vec![
        ImageRule {
            kind: "MyDB".into(),
            api_version: Some("db.example.com/v1".into()),
            path: "spec.image".into(),
        },
        ImageRule {
            kind: "MyDB".into(),
            api_version: None,
            path: "spec.sidecars[].image".into(),
        },
        ImageRule {
            kind: "MyDB".into(),
            api_version: Some("db.example.com/v2".into()),
            path: "spec.other".into(),
        },
    ];
    let found = discover(documents, &rules).expect("discovers");
    let listed: Vec<(&str, usize, bool)> = found
        .iter()
        .map(|image| {
            (
                image.reference.written(),
                image.uses.len(),
                image.runtime_only(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("quay.io/o/a:1", 3, false),
            ("ghcr.io/o/init:0.3", 1, false),
            ("busybox", 1, false),
            ("quay.io/o/cron:2", 1, false),
            ("quay.io/o/rollout:3", 1, false),
            ("quay.io/o/sidecar:1", 1, true),
            ("vendor.example/db:14", 1, false),
            ("vendor.example/exporter:1", 1, false),
        ]
    );
    let fields: Vec<(&str, &str)> = found[0]
        .uses
        .iter()
        .map(|image_use| (image_use.kind.as_str(), image_use.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("Pod", "spec.containers[0].image"),
            ("Deployment", "spec.template.spec.containers[0].image"),
            ("MyDB", "spec.sidecars[1].image"),
        ]
    );
    assert_eq!(found[2].uses[0].field, "spec.ephemeralContainers[0].image");
    assert_eq!(
        found[3].uses[0].field,
        "spec.jobTemplate.spec.template.spec.containers[0].image"
    );
    assert_eq!(found[5].uses[0].field, "spec.additionalImages[0]");
    let first = &found[0].uses[0];
    assert_eq!((first.file.as_str(), first.document), ("app.yaml", 1));
    assert_eq!(
        (first.namespace.as_deref(), first.name.as_deref()),
        (Some("shop"), Some("thing"))
    );
}

#[test]
fn bad_image_fields_name_file_object_and_field() {
    let cases = [
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": ""}]}}}}),
            "spec.template.spec.containers[0].image: the image reference is empty",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}}),
            "spec.template.spec.containers[0].image: the container has no image",
        ),
        (
            json!({"spec": {"template": {"spec": {"initContainers": [{"image": "Bad/Image"}]}}}}),
            "spec.template.spec.initContainers[0].image: \"Bad/Image\" is not a valid image reference",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": 7}]}}}}),
            "expected an image reference string, found a number",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": {"image": "x"}}}}}),
            "spec.template.spec.containers: is not a list",
        ),
    ];
    for (value, expected) in cases {
        let error = discover([doc("Deployment", "apps/v1", &value)], &[]).expect_err(expected);
        let message = error.to_string();
        assert!(
            message.starts_with("app.yaml (document 2) Deployment shop/thing: field "),
            "{message}"
        );
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn rule_paths_are_checked() {
    assert!(parse_path("spec.image").is_ok());
    assert!(parse_path("spec.sidecars[].image").is_ok());
    for bad in ["", "spec..image", "spec.sidecars[0].image", "[].image"] {
        assert!(parse_path(bad).is_err(), "{bad:?} should be refused");
    }
}
