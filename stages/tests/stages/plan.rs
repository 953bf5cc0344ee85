//! The override plan against the cases of section 9 of the behaviour notes (app slug `my-app`,
//! `P` = `proxy.replicated.com/proxy/my-app`), plus the places where windlass deliberately does
//! better than KOTS: the `index.docker.io` alias, no double prefix under a custom proxy domain, and
//! hosts with a port refused or mapped through an alias. Each case is images in, entries out.

use std::collections::BTreeMap;

use windlass_manifest::images::discovery::{ImageUse, PodSpec};
use windlass_manifest::images::reference::ImageReference;
use windlass_stages::events::{
    Decision, DomainSource, Domains, EntryRule, ImageOutcome, ProbedImage, ResultSource,
};
use windlass_stages::plan::{PlanError, plan_local_registry, plan_overrides};

const P: &str = "proxy.replicated.com/proxy/my-app";
const DIGEST: &str = "sha256:4c8f8d6e6a0b3f2c9d1e7a5b8c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d";

/// An image as `probe_images` records it: parsed once, its parts kept beside the string.
fn probed(image: &str, private: bool) -> ProbedImage {
    let reference = ImageReference::parse(image).expect("a valid test reference");
    ProbedImage {
        image: image.into(),
        normalized_name: reference.normalized_name(),
        registry: reference.registry().into(),
        repository: reference.repository().into(),
        tag: reference.tag().map(String::from),
        pinned_digest: reference.digest().map(String::from),
        outcome: if private {
            ImageOutcome::AuthRequired
        } else {
            ImageOutcome::Public
        },
        decision: if private {
            Decision::Private
        } else {
            Decision::Public
        },
        private,
        source: ResultSource::Probed,
        probed_at: None,
        digest: None,
        reason: if private {
            "manifest answered 401"
        } else {
            "manifest answered 200"
        }
        .into(),
        evidence: None,
        runtime_only: false,
        uses: vec![ImageUse {
            file: "app.yaml".into(),
            document: 0,
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: None,
            name: Some("api".into()),
            field: "spec.template.spec.containers[0].image".into(),
            runtime_only: false,
            pod_spec: Some(PodSpec::Template),
        }],
    }
}

fn domains(proxy: Option<&str>, registry: Option<&str>) -> Domains {
    Domains::resolve(proxy, registry, &[]).expect("no release domains")
}

fn entries(images: &[ProbedImage], domains: &Domains) -> Vec<(String, String)> {
    plan_overrides(images, "my-app", domains, &BTreeMap::new())
        .expect("plans")
        .entries
        .into_iter()
        .map(|entry| (entry.name, entry.new_name))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(name, new_name)| (name.to_string(), new_name.replace('P', P)))
        .collect()
}

/// Case number, images, domains, expected `(name, newName)` entries (`P` stands for the proxy path).
type Case<'a> = (&'a str, Vec<ProbedImage>, Domains, Vec<(&'a str, &'a str)>);

#[test]
fn section_9_cases_plan_exactly_the_documented_entries() {
    let default = domains(None, None);
    let with_digest = format!("quay.io/my-org/api@{DIGEST}");
    let with_both = format!("quay.io/my-org/api:v1@{DIGEST}");
    let cases: Vec<Case> = vec![
        (
            "1",
            vec![probed("quay.io/my-org/api:v1.0.1", true)],
            default.clone(),
            vec![("quay.io/my-org/api", "P/quay.io/my-org/api")],
        ),
        (
            "2",
            vec![probed("nginx:1.25", false)],
            default.clone(),
            vec![],
        ),
        (
            "3",
            vec![probed("myorg/private:2.0", true)],
            default.clone(),
            vec![
                ("docker.io/myorg/private", "P/myorg/private"),
                ("myorg/private", "P/myorg/private"),
                ("index.docker.io/myorg/private", "P/myorg/private"),
            ],
        ),
        (
            "4",
            vec![probed("docker.io/myorg/private:2.0", true)],
            default.clone(),
            vec![
                ("docker.io/myorg/private", "P/docker.io/myorg/private"),
                ("myorg/private", "P/docker.io/myorg/private"),
                ("index.docker.io/myorg/private", "P/docker.io/myorg/private"),
            ],
        ),
        (
            "5",
            vec![probed("redis:7", true)],
            default.clone(),
            vec![
                ("docker.io/library/redis", "P/redis"),
                ("library/redis", "P/redis"),
                ("redis", "P/redis"),
                ("docker.io/redis", "P/redis"),
                ("index.docker.io/library/redis", "P/redis"),
                ("index.docker.io/redis", "P/redis"),
            ],
        ),
        (
            "6",
            vec![probed(&with_digest, true)],
            default.clone(),
            vec![("quay.io/my-org/api", "P/quay.io/my-org/api")],
        ),
        (
            "7",
            vec![probed(&with_both, true)],
            default.clone(),
            vec![("quay.io/my-org/api", "P/quay.io/my-org/api")],
        ),
        (
            "8",
            vec![probed("quay.io/my-org/api", true)],
            default.clone(),
            vec![("quay.io/my-org/api", "P/quay.io/my-org/api")],
        ),
        (
            "9",
            vec![probed("registry.replicated.com/my-app/api:1", true)],
            default.clone(),
            vec![],
        ),
        (
            "10",
            vec![probed("registry.replicated.com/my-app/api:1", true)],
            domains(None, Some("registry.example.com")),
            vec![(
                "registry.replicated.com/my-app/api",
                "registry.example.com/my-app/api",
            )],
        ),
        (
            "11",
            vec![probed("registry.example.com/my-app/api:1", true)],
            domains(None, Some("registry.example.com")),
            vec![],
        ),
        (
            "12",
            vec![probed("quay.io/my-org/api:1", true)],
            domains(Some("images.example.com"), None),
            vec![(
                "quay.io/my-org/api",
                "images.example.com/proxy/my-app/quay.io/my-org/api",
            )],
        ),
        (
            "13",
            vec![probed(
                "proxy.replicated.com/proxy/my-app/quay.io/my-org/api:1",
                true,
            )],
            default.clone(),
            vec![(
                "proxy.replicated.com/proxy/my-app/quay.io/my-org/api",
                "proxy.replicated.com/proxy/my-app/quay.io/my-org/api",
            )],
        ),
        (
            "15",
            vec![
                probed("quay.io/my-org/api:1", true),
                probed("quay.io/my-org/api:2", true),
            ],
            default.clone(),
            vec![("quay.io/my-org/api", "P/quay.io/my-org/api")],
        ),
        (
            "16",
            vec![probed("ghcr.io/my-org/init:0.3", true)],
            default.clone(),
            vec![("ghcr.io/my-org/init", "P/ghcr.io/my-org/init")],
        ),
    ];
    for (case, images, domains, expected) in cases {
        assert_eq!(entries(&images, &domains), pairs(&expected), "case {case}");
    }
}

#[test]
fn additional_images_are_reported_not_planned() {
    let mut image = probed("quay.io/my-org/sidecar:1", true);
    image.runtime_only = true;
    let plan = plan_overrides(&[image], "my-app", &domains(None, None), &BTreeMap::new()).unwrap();
    assert!(plan.entries.is_empty());
    assert!(plan.skipped[0].reason.contains("additionalImages"));
}

#[test]
fn windlass_fixes_for_kots_bugs() {
    // index.docker.io spelling gets its own alias.
    let names: Vec<String> = entries(
        &[probed("index.docker.io/org/x:1", true)],
        &domains(None, None),
    )
    .into_iter()
    .map(|(name, _)| name)
    .collect();
    assert!(
        names.contains(&"index.docker.io/org/x".to_string()),
        "{names:?}"
    );

    // An image already on the default proxy host is not prefixed again under a custom proxy domain.
    let custom = domains(Some("images.example.com"), None);
    assert_eq!(
        entries(
            &[probed(
                "proxy.replicated.com/proxy/my-app/quay.io/a/b:1",
                true
            )],
            &custom
        ),
        pairs(&[(
            "proxy.replicated.com/proxy/my-app/quay.io/a/b",
            "proxy.replicated.com/proxy/my-app/quay.io/a/b"
        )])
    );
    assert_eq!(
        entries(
            &[probed(
                "images.example.com/proxy/my-app/quay.io/a/b:1",
                true
            )],
            &custom
        ),
        pairs(&[(
            "images.example.com/proxy/my-app/quay.io/a/b",
            "images.example.com/proxy/my-app/quay.io/a/b"
        )])
    );

    // A host with a port is refused with a message naming the image, where it is, and the fix...
    let errors = plan_overrides(
        &[probed("registry.example.com:5000/team/app:2", true)],
        "my-app",
        &domains(None, None),
        &BTreeMap::new(),
    )
    .expect_err("a port cannot sit in a proxy path");
    assert!(
        matches!(errors[..], [PlanError::HostWithPort { .. }]),
        "{errors:?}"
    );
    let message = errors[0].to_string();
    assert!(message.contains("registry.example.com:5000/team/app:2 (found at app.yaml (document 1) Deployment api: spec.template.spec.containers[0].image)"), "{message}");
    assert!(message.contains("images.host_aliases"), "{message}");
    // ... or mapped through a configured alias.
    let aliases = BTreeMap::from([(
        "registry.example.com:5000".to_string(),
        "vendor-5000".to_string(),
    )]);
    let plan = plan_overrides(
        &[probed("registry.example.com:5000/team/app:2", true)],
        "my-app",
        &domains(None, None),
        &aliases,
    )
    .unwrap();
    assert_eq!(plan.entries[0].name, "registry.example.com:5000/team/app");
    assert_eq!(
        plan.entries[0].new_name,
        format!("{P}/vendor-5000/team/app")
    );
    assert_eq!(plan.entries[0].rule, EntryRule::ProxyByHostAlias);
}

/// Docker reads `MyOrg/app` as the repository `app` on the registry host `MyOrg`; a proxied path
/// holds the host as a lowercase path component, so the plan refuses it, naming the image, where
/// it is and both ways out, unless `images.host_aliases` maps the host.
#[test]
fn a_registry_host_with_an_uppercase_letter_is_refused_or_mapped_through_an_alias() {
    let errors = plan_overrides(
        &[probed("MyOrg/app:1", true)],
        "my-app",
        &domains(None, None),
        &BTreeMap::new(),
    )
    .expect_err("an uppercase host cannot sit in a proxy path");
    assert!(
        matches!(&errors[..], [PlanError::UppercaseHost { host, .. }] if host == "MyOrg"),
        "{errors:?}"
    );
    let message = errors[0].to_string();
    assert!(
        message.starts_with("MyOrg/app:1 (found at app.yaml (document 1) Deployment api: spec.template.spec.containers[0].image): Docker reads MyOrg as its registry host"),
        "{message}"
    );
    assert!(
        message.contains("write its repository in lowercase"),
        "{message}"
    );
    assert!(message.contains("images.host_aliases"), "{message}");

    let aliases = BTreeMap::from([("MyOrg".to_string(), "myorg-registry".to_string())]);
    let plan = plan_overrides(
        &[probed("MyOrg/app:1", true)],
        "my-app",
        &domains(None, None),
        &aliases,
    )
    .unwrap();
    assert_eq!(
        (
            plan.entries[0].name.as_str(),
            plan.entries[0].new_name.as_str()
        ),
        ("MyOrg/app", &*format!("{P}/myorg-registry/app"))
    );

    // A public image on such a host is left alone, as written.
    let plan = plan_overrides(
        &[probed("MyOrg/app:1", false)],
        "my-app",
        &domains(None, None),
        &BTreeMap::new(),
    )
    .unwrap();
    assert!(plan.entries.is_empty());
}

#[test]
fn every_entry_carries_the_evidence_that_caused_it() {
    let plan = plan_overrides(
        &[
            probed("quay.io/my-org/api:1", true),
            probed("nginx:1.25", false),
        ],
        "my-app",
        &domains(None, None),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(plan.entries[0].image, "quay.io/my-org/api:1");
    assert_eq!(
        plan.entries[0].because,
        "auth_required: manifest answered 401"
    );
    assert_eq!(plan.skipped[0].image, "nginx:1.25");
    assert!(plan.skipped[0].reason.starts_with("public"));
}

#[test]
fn domain_precedence_is_flag_then_installation_then_application() {
    let documents = windlass_manifest::documents::parse_documents(
        "kots.yaml",
        b"apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: a\nspec:\n  proxyRegistryDomain: app-proxy.example.com\n  replicatedRegistryDomain: app-registry.example.com\n---\napiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: i\nspec:\n  replicatedProxyDomain: inst-proxy.example.com\n",
    )
    .unwrap();
    let resolved = Domains::resolve(None, None, &documents).unwrap();
    assert_eq!(
        (resolved.proxy_host.as_str(), resolved.proxy_source),
        ("inst-proxy.example.com", DomainSource::Installation)
    );
    assert_eq!(
        (resolved.registry_host.as_str(), resolved.registry_source),
        ("app-registry.example.com", DomainSource::Application)
    );
    let flagged = Domains::resolve(Some("flag-proxy.example.com"), None, &documents).unwrap();
    assert_eq!(
        (flagged.proxy_host.as_str(), flagged.proxy_source),
        ("flag-proxy.example.com", DomainSource::CommandLine)
    );
    let none = Domains::resolve(None, None, &[]).unwrap();
    assert_eq!(
        (none.proxy_host.as_str(), none.proxy_source),
        ("proxy.replicated.com", DomainSource::Default)
    );
}

/// A domain read from the release is written into image references and the pull secret's
/// `auths`, so one that is not a bare host (a scheme, a path) is refused, naming the file,
/// document, kind and field; a trailing `/` alone is dropped; a value a higher source overrides
/// is not read.
#[test]
fn a_release_domain_that_is_not_a_host_is_refused_naming_where_it_is_written() {
    let parse = |text: &str| {
        windlass_manifest::documents::parse_documents("kots/kots.yaml", text.as_bytes()).unwrap()
    };
    let documents = parse(
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: a\n---\napiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: i\nspec:\n  replicatedProxyDomain: https://Images.Example.com/\n",
    );
    let refused = Domains::resolve(None, None, &documents).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "kots/kots.yaml (document 2) Installation spec.replicatedProxyDomain: \"https://Images.Example.com\" is not a host name (a host with an optional :port, no scheme, no path)"
    );
    let flagged = Domains::resolve(Some("images.example.com"), None, &documents).unwrap();
    assert_eq!(flagged.proxy_host, "images.example.com");

    let documents = parse(
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: a\nspec:\n  replicatedRegistryDomain: registry.example.com/vendor\n",
    );
    let refused = Domains::resolve(None, None, &documents).unwrap_err();
    assert_eq!(
        (
            refused.kind.as_str(),
            refused.field.as_str(),
            refused.document
        ),
        ("Application", "replicatedRegistryDomain", 1)
    );

    let documents = parse(
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: i\nspec:\n  replicatedProxyDomain: \" images.example.com:8443/ \"\n",
    );
    let resolved = Domains::resolve(None, None, &documents).unwrap();
    assert_eq!(resolved.proxy_host, "images.example.com:8443");
}

/// Local-registry mode (section 4.2 of the templating notes, KOTS's `taganddigest-rewrite` and
/// `airgap` pull cases): every image, public or private, `additionalImages` included, is renamed
/// to `<host>/<namespace>/<last component>`, matched as written and by every Docker Hub spelling;
/// an empty namespace gives `<host>/<last>`; ports and deep paths are fine; two images with the
/// same last component are refused naming both, once.
#[test]
fn local_registry_mode_renames_every_image_and_refuses_collisions() {
    let mut additional = probed("quay.io/org/sidecar:2", false);
    additional.runtime_only = true;
    let images = vec![
        probed("nginx", false),
        probed(&format!("docker.io/library/nginx:1@{DIGEST}"), false),
        probed("reg.example:5000/deep/path/api:1", true),
        additional,
    ];
    let plan = plan_local_registry(&images, "ttl.sh", "test").expect("plans");
    assert!(plan.skipped.is_empty());
    let planned: Vec<(String, String)> = plan
        .entries
        .iter()
        .map(|entry| (entry.name.clone(), entry.new_name.clone()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("nginx", "ttl.sh/test/nginx"),
        ("docker.io/library/nginx", "ttl.sh/test/nginx"),
        ("library/nginx", "ttl.sh/test/nginx"),
        ("docker.io/nginx", "ttl.sh/test/nginx"),
        ("index.docker.io/library/nginx", "ttl.sh/test/nginx"),
        ("index.docker.io/nginx", "ttl.sh/test/nginx"),
        ("reg.example:5000/deep/path/api", "ttl.sh/test/api"),
        ("quay.io/org/sidecar", "ttl.sh/test/sidecar"),
    ]
    .iter()
    .map(|(name, new_name)| (name.to_string(), new_name.to_string()))
    .collect();
    assert_eq!(planned, expected);
    assert!(
        plan.entries
            .iter()
            .all(|entry| entry.rule == EntryRule::LocalRegistry)
    );
    assert!(plan.entries[7].because.contains("additionalImages"));

    let bare = plan_local_registry(&images[..1], "registry.internal:5000", "").unwrap();
    assert_eq!(bare.entries[0].new_name, "registry.internal:5000/nginx");

    let errors = plan_local_registry(
        &[
            probed("quay.io/a/redis:7", true),
            probed("docker.io/library/redis:7", false),
            probed("redis:6", false),
        ],
        "ttl.sh",
        "test",
    )
    .expect_err("a collision");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(matches!(
        &errors[0],
        PlanError::LocalRegistryCollision { first, second, new_name, .. }
            if first == "quay.io/a/redis:7"
                && second == "docker.io/library/redis:7"
                && new_name == "ttl.sh/test/redis"
    ));
}
