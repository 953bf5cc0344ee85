//! The proxy's other transports: serving TLS with the configured certificate, and an upstream
//! that challenges with `Bearer` (the testkit's token server signing JWTs for a real registry).

use reqwest::StatusCode;

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
