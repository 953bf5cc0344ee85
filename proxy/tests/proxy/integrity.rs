//! An upstream that serves corrupted bytes: the blob file in the registry's storage is tampered
//! with (same length), and the proxy refuses to serve it — the stream is cut before the last bytes
//! and the pull log says `digest_mismatch`.

use crate::support::{APP, Harness, LICENSE_ID, copy, creds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_upstream_blob_is_not_served() {
    let harness = Harness::start().await;
    let blobs = harness
        .registry
        .storage_directory()
        .join("docker/registry/v2/blobs/sha256");
    // Tamper with every blob that is not the manifest: the layer and the config.
    let manifest_hex = harness.digest.trim_start_matches("sha256:").to_string();
    let mut tampered = 0;
    for prefix in std::fs::read_dir(&blobs).expect("blob directory") {
        for blob in std::fs::read_dir(prefix.expect("entry").path()).expect("prefix directory") {
            let blob = blob.expect("entry").path();
            if blob.file_name().and_then(|name| name.to_str()) == Some(manifest_hex.as_str()) {
                continue;
            }
            let data = blob.join("data");
            let mut bytes = std::fs::read(&data).expect("read blob");
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&data, bytes).expect("write blob");
            tampered += 1;
        }
    }
    assert!(tampered >= 1);

    let destination = harness.directory.path().join("copy");
    let output = copy(
        &harness.image(APP, "team/app:v1"),
        &creds(LICENSE_ID),
        &destination,
    )
    .await;
    assert!(!output.status.success(), "skopeo copied a corrupted image");
    let pulls = harness.pulls();
    assert!(
        pulls.iter().any(|pull| pull.result == "digest_mismatch"),
        "{pulls:#?}"
    );
    assert!(
        !pulls
            .iter()
            .any(|pull| pull.kind.as_deref() == Some("blob") && pull.result == "served")
    );
}
