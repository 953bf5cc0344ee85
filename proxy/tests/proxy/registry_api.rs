//! The registry API surface seen with a plain HTTP client: the `Basic` challenge, the error
//! format and statuses for what the proxy does not serve, `HEAD` without a body, manifests by
//! digest, and no upstream credential in any answer.

use reqwest::StatusCode;
use windlass_testkit::{HTPASSWD_PASSWORD, HTPASSWD_USERNAME};

use crate::support::{APP, Harness, LICENSE_ID, Options, WRONG_UPSTREAM_PASSWORD};

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("error JSON");
    body["errors"][0]["code"]
        .as_str()
        .expect("error code")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_challenges_without_credentials_and_answers_with_them() {
    let harness = Harness::start().await;
    let url = format!("http://{}/v2/", harness.address);
    let response = client().get(&url).send().await.expect("GET /v2/");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"windlass\""
    );
    assert_eq!(error_code(response).await, "UNAUTHORIZED");

    let response = client()
        .get(&url)
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("GET /v2/");
    assert_eq!(response.status(), StatusCode::OK);

    let response = client()
        .get(&url)
        .basic_auth("LICENSE_ID", Some("wrong"))
        .send()
        .await
        .expect("GET /v2/");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_pull_gets_the_registry_error_format() {
    let harness = Harness::start().await;
    let base = format!("http://{}", harness.address);
    let authed =
        |request: reqwest::RequestBuilder| request.basic_auth("LICENSE_ID", Some(LICENSE_ID));

    let push = format!("{base}/v2/proxy/{APP}/vendor.example/team/app/blobs/uploads/");
    let response = authed(client().post(&push)).send().await.expect("POST");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(response).await, "UNSUPPORTED");

    let put = format!("{base}/v2/proxy/{APP}/vendor.example/team/app/manifests/v1");
    let response = authed(client().put(&put)).send().await.expect("PUT");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let response = authed(client().get(format!("{base}/v2/_catalog")))
        .send()
        .await
        .expect("catalog");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(response).await, "UNSUPPORTED");

    let response = authed(client().get(format!("{base}/metrics")))
        .send()
        .await
        .expect("other");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let unknown = format!("{base}/v2/proxy/{APP}/unknown.example/team/app/manifests/v1");
    let response = authed(client().get(&unknown))
        .send()
        .await
        .expect("unknown upstream");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(response).await, "NAME_UNKNOWN");

    let encoded = format!("{base}/v2/proxy/{APP}/vendor.example/team%2F..%2Fapp/manifests/v1");
    let response = authed(client().get(&encoded))
        .send()
        .await
        .expect("encoded");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "NAME_INVALID");

    let missing = format!("{base}/v2/proxy/{APP}/vendor.example/team/app/manifests/nope");
    let response = authed(client().get(&missing))
        .send()
        .await
        .expect("missing tag");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.expect("body");
    assert!(body.contains("MANIFEST_UNKNOWN"), "{body}");
    assert!(!body.contains(HTPASSWD_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_has_no_body_and_manifests_by_digest_are_verified() {
    let harness = Harness::start().await;
    let base = format!(
        "http://{}/v2/proxy/{APP}/vendor.example/team/app/manifests",
        harness.address
    );

    let response = client()
        .head(format!("{base}/v1"))
        .header("accept", MANIFEST_TYPES)
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["docker-content-digest"],
        harness.digest.as_str()
    );
    assert!(response.headers().contains_key("content-type"));
    assert_ne!(response.headers()["content-length"], "0");
    assert!(response.bytes().await.expect("body").is_empty());

    let response = client()
        .get(format!("{base}/{}", harness.digest))
        .header("accept", MANIFEST_TYPES)
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("GET by digest");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["docker-content-digest"],
        harness.digest.as_str()
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(windlass_testkit::oci::sha256_digest(&body), harness.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_streamed_with_their_length_and_digest() {
    let harness = Harness::start().await;
    let base = format!(
        "http://{}/v2/proxy/{APP}/vendor.example/team/app",
        harness.address
    );
    let manifest: serde_json::Value = client()
        .get(format!("{base}/manifests/{}", harness.digest))
        .header("accept", MANIFEST_TYPES)
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("GET manifest")
        .json()
        .await
        .expect("manifest JSON");
    let layer = &manifest["layers"][0];
    let digest = layer["digest"].as_str().expect("layer digest");
    let size = layer["size"].as_u64().expect("layer size");

    let response = client()
        .get(format!("{base}/blobs/{digest}"))
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("GET blob");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        size.to_string().as_str()
    );
    assert_eq!(response.headers()["docker-content-digest"], digest);
    let body = response.bytes().await.expect("blob");
    assert_eq!(windlass_testkit::oci::sha256_digest(&body), digest);

    let response = client()
        .head(format!("{base}/blobs/{digest}"))
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("HEAD blob");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        size.to_string().as_str()
    );
    assert!(response.bytes().await.expect("body").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_credentials_never_reach_the_client() {
    let harness = Harness::start_with(Options {
        wrong_upstream_password: true,
        ..Options::default()
    })
    .await;
    let response = client()
        .get(format!(
            "http://{}/v2/proxy/{APP}/vendor.example/team/app/manifests/v1",
            harness.address
        ))
        .header("accept", MANIFEST_TYPES)
        .basic_auth("LICENSE_ID", Some(LICENSE_ID))
        .send()
        .await
        .expect("GET manifest");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let headers = format!("{:?}", response.headers());
    let body = response.text().await.expect("body");
    for secret in [WRONG_UPSTREAM_PASSWORD, HTPASSWD_USERNAME] {
        assert!(
            !body.contains(secret) && !headers.contains(secret),
            "{headers} {body}"
        );
    }
    assert!(
        harness
            .pulls()
            .iter()
            .any(|pull| pull.result == "upstream_status_401")
    );
}

/// Sends `request_line` as a raw HTTP/1.1 request (no client normalises the path) and returns the
/// status line (empty if the server closed the connection without one).
async fn raw_status(address: std::net::SocketAddr, request_line: &str) -> String {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("LICENSE_ID:{LICENSE_ID}"));
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!(
        "{request_line}\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    );
    // The server may close the connection before reading all of an oversized request: a failed
    // write or a reset while reading then just means no status line.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answer in time");
    if read.is_err() && answer.is_empty() {
        return String::new();
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_malformed_paths_are_answered_with_400() {
    let harness = Harness::start().await;
    for path in [
        "/v2/proxy/my-app/vendor.example/../../etc/passwd/manifests/v1",
        "/v2/proxy/my-app/vendor.example/team/./app/manifests/v1",
        "/v2/proxy/my-app/vendor.example/team//app/manifests/v1",
        "/v2/proxy/my-app/vendor.example/team/%2e%2e/manifests/v1",
        "/v2/proxy/my-app/vendor.example/team/app/blobs/sha256:../../x",
    ] {
        let status = raw_status(harness.address, &format!("GET {path} HTTP/1.1")).await;
        assert!(status.starts_with("HTTP/1.1 400"), "{path}: {status}");
    }
    let huge = format!("GET /v2/{} HTTP/1.1", "a".repeat(1024 * 1024));
    let status = raw_status(harness.address, &huge).await;
    assert!(
        status.is_empty() || status.starts_with("HTTP/1.1 4"),
        "{status}"
    );
}

/// A client that starts a request and never finishes its headers is disconnected after the
/// configured timeout instead of holding a connection for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let harness = crate::support::Harness::start_with(crate::support::Options {
        client_header_timeout_seconds: Some(1),
        ..Default::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(harness.address)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("send part of the headers");
    let started = std::time::Instant::now();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut buffer),
    )
    .await
    .expect("the proxy closes the connection well before 20 s");
    // Closed cleanly or with a reset: either way the read ended before the deadline above.
    drop(read);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "closed after {:?}",
        started.elapsed()
    );
    // A client that completes its request in time is served.
    let mut prompt = tokio::net::TcpStream::connect(harness.address)
        .await
        .expect("connect");
    prompt
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("send a whole request");
    let mut answer = String::new();
    prompt
        .read_to_string(&mut answer)
        .await
        .expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}
