//! Pulls that succeed: `skopeo inspect` and `skopeo copy` through the proxy get the upstream's
//! manifest digest, and the pull log records them without the license ID.

use crate::support::{
    APP, Harness, LICENSE_ID, assert_copy_gets, assert_inspect_gets, inspect, stderr,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_inspect_and_copy_through_the_proxy_get_the_upstream_digest() {
    let harness = Harness::start().await;
    let image = harness.image(APP, "team/app:v1");

    assert_inspect_gets(&image, &harness.digest).await;

    let destination = harness.directory.path().join("copy");
    assert_copy_gets(&image, &destination, &harness.digest).await;

    let pulls = harness.pulls();
    let served: Vec<_> = pulls
        .iter()
        .filter(|pull| pull.result == "served")
        .collect();
    assert!(
        served
            .iter()
            .any(|pull| pull.kind.as_deref() == Some("blob") && pull.bytes > 0),
        "{pulls:#?}"
    );
    assert!(
        served
            .iter()
            .any(|pull| pull.kind.as_deref() == Some("manifest")
                && pull.digest.as_deref() == Some(harness.digest.as_str())),
        "{pulls:#?}"
    );
    let fingerprint = harness.store.list().expect("list")[0].fingerprint.clone();
    for pull in &served {
        assert_eq!(pull.app.as_deref(), Some(APP));
        assert_eq!(pull.image.as_deref(), Some("vendor.example/team/app"));
        assert_eq!(
            pull.license_fingerprint.as_deref(),
            Some(fingerprint.as_str())
        );
    }
    let log = serde_json::to_string(&pulls).expect("log JSON");
    assert!(!log.contains(LICENSE_ID));
    let state = harness.state_bytes();
    assert!(
        !state
            .windows(LICENSE_ID.len())
            .any(|window| window == LICENSE_ID.as_bytes()),
        "the license ID was written to the proxy's state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_id_colon_id_credentials_are_accepted() {
    let harness = Harness::start().await;
    let output = inspect(
        &harness.image(APP, "team/app:v1"),
        &format!("{LICENSE_ID}:{LICENSE_ID}"),
    )
    .await;
    assert!(
        output.status.success(),
        "inspect failed: {}",
        stderr(&output)
    );
}
