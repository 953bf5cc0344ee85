//! Probes of an open (no auth) real registry: the outcome, the digest, each way of naming the
//! manifest (tag, digest, tag+digest, no tag), a host with a port over TLS trusted through
//! `ca_file`, an endpoint override, and the request count.

use std::sync::Mutex;

use windlass_registry::{ProbeOutcome, Prober, RegistrySettings};

use windlass_testkit::certs::server_certificates;
use windlass_testkit::oci::{build_layout, push};
use windlass_testkit::{HostSettings, RegistriesFile, RegistryAuth, TestRegistry};

use crate::support::{load_settings, plain_http, probe, quick_config, target};

#[tokio::test(flavor = "multi_thread")]
async fn open_registry_image_is_public_with_the_pushed_digest() {
    let registry = TestRegistry::open().await;
    let host = registry.host();
    let digest = registry.push_image("team/app:v1", "open");

    let (_settings_dir, settings) = plain_http(&[&host]);
    let image = format!("{host}/team/app:v1");
    let (results, requests) = probe(
        settings,
        quick_config(),
        vec![target(&image, &host, "team/app", "v1")],
    )
    .await;

    let result = &results[0];
    assert_eq!(result.outcome, ProbeOutcome::Public, "{result:?}");
    assert_eq!(result.target.image, image);
    assert_eq!(result.evidence.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(result.evidence.status_codes, vec![200, 200]);
    assert_eq!(result.evidence.challenge, None);
    assert_eq!(result.evidence.attempts, 1);
    assert_eq!(result.evidence.endpoint, format!("http://{host}"));
    assert!(
        result.evidence.reason.contains("anonymous"),
        "{}",
        result.evidence.reason
    );
    assert_eq!(requests, 2, "one GET /v2/ and one HEAD");
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_digest_tag_and_digest_and_no_tag_name_the_same_manifest() {
    let registry = TestRegistry::open().await;
    let scratch = tempfile::tempdir().unwrap();
    let host = registry.host();
    let digest = build_layout(scratch.path(), "v1", "references");
    for tag in ["v1", "latest"] {
        let pushed = push(
            scratch.path(),
            "v1",
            &format!("{host}/team/app:{tag}"),
            None,
        );
        assert_eq!(pushed, digest);
    }
    let missing_digest = format!("sha256:{}", "0".repeat(64));

    let targets = vec![
        target(&format!("{host}/team/app:v1"), &host, "team/app", "v1"),
        target(
            &format!("{host}/team/app@{digest}"),
            &host,
            "team/app",
            &digest,
        ),
        target(
            &format!("{host}/team/app:v1@{digest}"),
            &host,
            "team/app",
            &digest,
        ),
        // A digest wins over the tag, even a tag that does not exist.
        target(
            &format!("{host}/team/app:gone@{digest}"),
            &host,
            "team/app",
            &digest,
        ),
        target(&format!("{host}/team/app"), &host, "team/app", "latest"),
        target(&format!("{host}/team/app:gone"), &host, "team/app", "gone"),
        target(
            &format!("{host}/team/app@{missing_digest}"),
            &host,
            "team/app",
            &missing_digest,
        ),
        target(
            &format!("{host}/team/nothing:v1"),
            &host,
            "team/nothing",
            "v1",
        ),
    ];
    let (_settings_dir, settings) = plain_http(&[&host]);
    let prober = Prober::new(settings, quick_config()).unwrap();
    let progress = Mutex::new(Vec::new());
    let results = prober
        .probe_all(targets.clone(), |done, total| {
            progress.lock().unwrap().push((done, total));
        })
        .await;

    let outcomes: Vec<_> = results.iter().map(|result| result.outcome).collect();
    use ProbeOutcome::{NotFound, Public};
    assert_eq!(
        outcomes,
        vec![
            Public, Public, Public, Public, Public, NotFound, NotFound, NotFound
        ],
        "{results:#?}"
    );
    for (result, target) in results.iter().zip(&targets) {
        assert_eq!(
            &result.target, target,
            "results keep the order of the targets"
        );
        if result.outcome == Public {
            assert_eq!(result.evidence.digest.as_deref(), Some(digest.as_str()));
        } else {
            assert_eq!(result.evidence.digest, None);
            assert_eq!(result.evidence.status_codes, vec![200, 404]);
        }
    }
    let progress = progress.into_inner().unwrap();
    assert_eq!(progress.len(), 8);
    assert_eq!(progress.last(), Some(&(8, 8)));
    assert_eq!(
        prober.requests_made(),
        1 + 8,
        "the /v2/ check is shared by all eight"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_override_routes_a_vendor_host_to_the_registry() {
    let registry = TestRegistry::open().await;
    let digest = registry.push_image("app:1", "vendor");
    let settings_dir = tempfile::tempdir().unwrap();
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().route("vendor.example", &registry),
    );
    let (results, _) = probe(
        settings,
        quick_config(),
        vec![target("vendor.example/app:1", "vendor.example", "app", "1")],
    )
    .await;
    let result = &results[0];
    assert_eq!(result.outcome, ProbeOutcome::Public, "{result:?}");
    assert_eq!(result.evidence.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(
        result.evidence.endpoint,
        format!("http://127.0.0.1:{}", registry.port())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn host_with_port_over_tls_is_trusted_through_ca_file_only() {
    let certificates_dir = tempfile::tempdir().unwrap();
    let certificates = server_certificates(certificates_dir.path());
    let registry = TestRegistry::start(RegistryAuth::Open, Some(certificates.registry_tls())).await;
    let host = registry.host();
    let digest = registry.push_image("secure/app:v1", "tls");
    let image = format!("{host}/secure/app:v1");
    let probe_target = target(&image, &host, "secure/app", "v1");

    // No endpoint override: `127.0.0.1:<port>` is reached at https://127.0.0.1:<port>.
    let settings_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        &certificates.ca_certificate,
        settings_dir.path().join("ca.pem"),
    )
    .unwrap();
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().host(&host, HostSettings::new().ca_file("ca.pem")),
    );
    let (results, _) = probe(settings, quick_config(), vec![probe_target.clone()]).await;
    let result = &results[0];
    assert_eq!(result.outcome, ProbeOutcome::Public, "{result:?}");
    assert_eq!(result.evidence.endpoint, format!("https://{host}"));
    assert_eq!(result.evidence.digest.as_deref(), Some(digest.as_str()));

    // Without the CA the certificate is not trusted: a TLS failure, unreachable, not retried.
    let (results, requests) = probe(
        RegistrySettings::empty(),
        quick_config(),
        vec![probe_target],
    )
    .await;
    let result = &results[0];
    assert_eq!(result.outcome, ProbeOutcome::Unreachable, "{result:?}");
    assert!(
        result
            .evidence
            .reason
            .to_lowercase()
            .contains("certificate"),
        "{}",
        result.evidence.reason
    );
    assert_eq!(requests, 1);
}
