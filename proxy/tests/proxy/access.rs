//! Pulls that the license check refuses: revoked (while the proxy runs), expired, another app's
//! license, a wrong password; each is a denied attempt in the pull log.

use crate::support::{APP, Harness, LICENSE_ID, creds, inspect, stderr};
use windlass_state::SecretString;

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
