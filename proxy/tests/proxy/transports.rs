//! The proxy's other transports: serving TLS with the configured certificate, and an upstream
//! that challenges with `Bearer` (the testkit's token server signing JWTs for a real registry),
//! including one announcing an endless token lifetime and a stub answering far too much for a
//! token.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use windlass_proxy::{
    PullKind, PullPath, Upstream, UpstreamAccess, UpstreamClient, UpstreamError, UpstreamLimits,
};
use windlass_testkit::PaddedTokenRegistry;

use crate::support::{
    APP, Harness, LICENSE_ID, Options, assert_copy_gets, assert_inspect_gets, creds, inspect,
    stderr,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_serves_tls_with_the_configured_certificate() {
    let harness = Harness::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let pem = std::fs::read(harness.ca_certificate.as_ref().expect("CA")).expect("read CA");
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("CA PEM"))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client");
    let url = format!("https://{}/v2/", harness.address);
    let response = client.get(&url).send().await.expect("GET over TLS");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .get(&url)
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("GET over TLS");
    assert_eq!(response.status(), StatusCode::OK);

    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    assert!(
        plain
            .get(format!("http://{}/v2/", harness.address))
            .send()
            .await
            .is_err()
    );

    assert_inspect_gets(&harness.image(APP, "team/app:v1"), &harness.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_with_bearer_tokens_is_pulled_through() {
    let harness = Harness::start_with(Options {
        token_auth: true,
        ..Options::default()
    })
    .await;
    let image = harness.image(APP, "team/app:v1");
    let destination = harness.directory.path().join("copy");
    assert_copy_gets(&image, &destination, &harness.digest).await;
    // A second pull reuses the cached token and still succeeds.
    let output = inspect(&image, &creds(LICENSE_ID)).await;
    assert!(
        output.status.success(),
        "inspect failed: {}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_serving_tls_is_trusted_through_its_ca_file() {
    let harness = Harness::start_with(Options {
        upstream_tls: true,
        ..Options::default()
    })
    .await;
    assert_inspect_gets(&harness.image(APP, "team/app:v1"), &harness.digest).await;
}

/// An upstream token server announcing `expires_in: 18446744073709551615`: the token is used and
/// cached (for an hour at most) instead of the clock's arithmetic overflowing in the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_token_announcing_an_endless_lifetime_is_used() {
    let harness = Harness::start_with(Options {
        token_auth: true,
        ..Options::default()
    })
    .await;
    // Set after the harness pushed its image: skopeo refuses such a lifetime.
    harness.tokens().set_expires_in(u64::MAX);
    let image = harness.image(APP, "team/app:v1");
    let destination = harness.directory.path().join("copy");
    assert_copy_gets(&image, &destination, &harness.digest).await;
    assert_inspect_gets(&image, &harness.digest).await;
}

/// An upstream whose token answer is 64 MiB (of JSON whitespace): the proxy reads at most
/// 64 KiB of it and fails the request, instead of holding the answer in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_upstream_token_answer_is_refused_at_the_cap() {
    const PADDING: u64 = 64 * 1024 * 1024;
    for announce_length in [true, false] {
        let stub = PaddedTokenRegistry::start(PADDING, announce_length).await;
        let upstream = Upstream {
            endpoint: format!("http://{}", stub.host()).parse().expect("URL"),
            credentials: None,
            ca_pem: None,
            access: UpstreamAccess::default(),
            max_concurrent_requests: 4,
        };
        let client = UpstreamClient::new(
            BTreeMap::from([("vendor.example".to_owned(), upstream)]),
            UpstreamLimits::default(),
            std::time::Duration::from_secs(5),
        )
        .expect("upstream client");
        let path = PullPath {
            app_slug: APP.to_owned(),
            upstream_host: "vendor.example".to_owned(),
            repository: "team/app".to_owned(),
            kind: PullKind::Manifest,
            reference: "v1".to_owned(),
        };
        let fetched = client.fetch(reqwest::Method::GET, &path, &[]).await;
        assert!(
            matches!(fetched, Err(UpstreamError::Token)),
            "announced length {announce_length}: {:?}",
            fetched.map(|answer| answer.response.status())
        );
        let written = stub.token_bytes_written();
        assert!(
            written < PADDING / 2,
            "the proxy read {written} bytes of the token answer (announced length: {announce_length})"
        );
    }
}
