//! Pulls that the license check refuses: revoked (while the proxy runs), expired, another app's
//! license, a wrong password; and pulls the upstream binding refuses: an app the upstream does not
//! serve (even with its own slug in the path), a repository outside `repositories:`. Each is a
//! denied attempt in the pull log.

use reqwest::StatusCode;
use windlass_state::SecretString;

use crate::support::{APP, Harness, LICENSE_ID, Options, creds, inspect, stderr};

/// `GET` of `team/...` manifests through the proxy with `id`, as a plain HTTP client sees it:
/// the status and the registry error code, if any.
async fn get_manifest(
    harness: &Harness,
    app: &str,
    repository: &str,
    id: &str,
) -> (StatusCode, String) {
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
        .get(format!(
            "http://{}/v2/proxy/{app}/vendor.example/{repository}/manifests/v1",
            harness.address
        ))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .basic_auth("LICENSE_ID", Some(id))
        .send()
        .await
        .expect("GET manifest");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["errors"][0]["code"].as_str().unwrap_or("").to_string();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_license_is_refused_at_once_without_restarting() {
    let harness = Harness::start().await;
    let image = harness.image(APP, "team/app:v1");
    let output = inspect(&image, &creds(LICENSE_ID)).await;
    assert!(
        output.status.success(),
        "inspect failed: {}",
        stderr(&output)
    );

    // A second handle on the store, as `windlass proxy license revoke` would open while the proxy runs.
    let cli = windlass_proxy::ProxyStore::open(&harness.directory.path().join("proxy-state"))
        .expect("open the store a second time");
    cli.revoke(&SecretString::new(LICENSE_ID)).expect("revoke");
    assert!(cli.list().expect("list")[0].revoked);

    let output = inspect(&image, &creds(LICENSE_ID)).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("401") || stderr(&output).contains("unauthorized"),
        "{}",
        stderr(&output)
    );
    assert!(harness.pulls().iter().any(|pull| pull.result == "revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_license_is_refused() {
    let harness = Harness::start().await;
    let id = "expired0license0id";
    let license = harness.write_license("expired.yaml", APP, id, Some("2020-01-01T00:00:00Z"));
    harness.store.add_license(&license).expect("add");
    let output = inspect(&harness.image(APP, "team/app:v1"), &creds(id)).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("401") || stderr(&output).contains("unauthorized"),
        "{}",
        stderr(&output)
    );
    assert!(harness.pulls().iter().any(|pull| pull.result == "expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_apps_license_is_refused() {
    let harness = Harness::start().await;
    let id = "other0app0license0id";
    let license = harness.write_license("other.yaml", "other-app", id, None);
    harness.store.add_license(&license).expect("add");
    let output = inspect(&harness.image(APP, "team/app:v1"), &creds(id)).await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("403") || message.contains("denied") || message.contains("401"),
        "{message}"
    );
    assert!(
        harness
            .pulls()
            .iter()
            .any(|pull| pull.result == "wrong_app")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_never_logged() {
    let harness = Harness::start().await;
    let output = inspect(
        &harness.image(APP, "team/app:v1"),
        &creds("not-the-license"),
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("401") || stderr(&output).contains("unauthorized"),
        "{}",
        stderr(&output)
    );
    let log = serde_json::to_string(&harness.pulls()).expect("log JSON");
    assert!(!log.contains("not-the-license"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_license_cannot_pull_another_apps_upstream_by_naming_its_own_app() {
    // The upstream serves `my-app` only; a valid license for `other-app` puts its own slug in the
    // path, so the license check alone passes.
    let harness = Harness::start().await;
    let id = "other0app0license0id";
    let license = harness.write_license("other.yaml", "other-app", id, None);
    harness.store.add_license(&license).expect("add");

    let (status, code) = get_manifest(&harness, "other-app", "team/app", id).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "DENIED"));
    let output = inspect(&harness.image("other-app", "team/app:v1"), &creds(id)).await;
    assert!(
        !output.status.success(),
        "skopeo pulled another app's image"
    );
    let refusals: Vec<_> = harness
        .pulls()
        .into_iter()
        .filter(|pull| pull.result == "app_not_bound_to_upstream")
        .collect();
    assert!(!refusals.is_empty(), "{:?}", harness.pulls());
    assert!(refusals.iter().all(|pull| {
        pull.app.as_deref() == Some("other-app")
            && pull.image.as_deref() == Some("vendor.example/team/app")
            && pull.license_fingerprint.is_some()
    }));

    // The bound app's license still pulls.
    let (status, _) = get_manifest(&harness, APP, "team/app", LICENSE_ID).await;
    assert_eq!(status, StatusCode::OK);
    crate::support::assert_inspect_gets(&harness.image(APP, "team/app:v1"), &harness.digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_narrow_what_a_bound_app_pulls() {
    let harness = Harness::start_with(Options {
        upstream_binding: Some("    apps: [second-app, my-app]\n    repositories: [team/app]\n"),
        ..Options::default()
    })
    .await;
    // `team/apple` shares the prefix's characters but not its path segment.
    harness.registry.push_image("team/apple:v1", "next door");
    harness
        .registry
        .push_image("team/app/sub:v1", "under the prefix");

    crate::support::assert_inspect_gets(&harness.image(APP, "team/app:v1"), &harness.digest).await;
    let (status, _) = get_manifest(&harness, APP, "team/app/sub", LICENSE_ID).await;
    assert_eq!(status, StatusCode::OK);

    let (status, code) = get_manifest(&harness, APP, "team/apple", LICENSE_ID).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "DENIED"));
    let output = inspect(&harness.image(APP, "team/apple:v1"), &creds(LICENSE_ID)).await;
    assert!(
        !output.status.success(),
        "a repository outside `repositories:` was served"
    );
    assert!(harness.pulls().iter().any(|pull| {
        pull.result == "repository_not_allowed"
            && pull.image.as_deref() == Some("vendor.example/team/apple")
    }));
}
