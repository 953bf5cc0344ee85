//! Tiny OCI images built by hand — a one-file layer (tar.gz), a config, a manifest, `index.json`
//! and `oci-layout`, with sha256 digests computed here — and pushed to a registry with the real
//! `skopeo copy`. [`crate::TestRegistry::push_image`] is the short way; these are the steps, for
//! tests that push one layout under several names or to a registry they did not start.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::process::output_within;
use crate::tools::require_tool;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let directory = layout.join("blobs/sha256");
    std::fs::create_dir_all(&directory).expect("create blobs directory");
    std::fs::write(directory.join(&digest["sha256:".len()..]), bytes).expect("write blob");
    digest
}

/// Writes an OCI image layout at `layout` holding one image tagged `tag` whose only file is
/// `hello.txt` with `content`. Returns the manifest's digest. The bytes depend on `content`
/// only, so the digest is reproducible.
///
/// # Panics
///
/// When the layout cannot be written.
pub fn build_layout(layout: &Path, tag: &str, content: &str) -> String {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", content.as_bytes())
        .expect("append to tar");
    let layer_tar = tar.into_inner().expect("finish tar");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, &layer_tar).expect("gzip layer");
    let layer = gzip.finish().expect("finish gzip");

    let layer_digest = write_blob(layout, &layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer_tar)]},
    })
    .to_string();
    let config_digest = write_blob(layout, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    })
    .to_string();
    let manifest_digest = write_blob(layout, manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    })
    .to_string();
    std::fs::write(layout.join("index.json"), index).expect("write index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write oci-layout");
    manifest_digest
}

/// How long one `skopeo copy` may take.
const PUSH_DEADLINE: Duration = Duration::from_secs(120);

/// Pushes the image tagged `tag` in `layout` to `destination` (`127.0.0.1:<port>/<repo>:<tag>`)
/// with `skopeo copy`, over plain HTTP or unverified TLS, with `credentials` (`user:password`)
/// if given. Returns the digest skopeo reports.
///
/// # Panics
///
/// When `skopeo` is not installed, fails, or takes longer than two minutes.
pub fn push(layout: &Path, tag: &str, destination: &str, credentials: Option<&str>) -> String {
    let digest_file = layout.join(format!(
        "pushed-{}.digest",
        sha256_digest(destination.as_bytes())
    ));
    let skopeo = require_tool("skopeo", "skopeo");
    let mut command = Command::new(skopeo);
    command
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg("--digestfile")
        .arg(&digest_file);
    if let Some(credentials) = credentials {
        command.arg("--dest-creds").arg(credentials);
    }
    command
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{destination}"));
    let output = output_within(&mut command, PUSH_DEADLINE, "skopeo copy");
    assert!(
        output.status.success(),
        "skopeo copy to {destination} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(&digest_file)
        .expect("read skopeo's digest file")
        .trim()
        .to_owned()
}

/// Builds an image with `content` in a layout under `scratch` (named after the content) and
/// pushes it to `destination` with `credentials` (`user:password`) if given; returns the
/// manifest digest, checked to be the one computed here.
///
/// # Panics
///
/// As [`build_layout`] and [`push`] do, and when skopeo pushed another manifest.
pub fn build_and_push(
    scratch: &Path,
    content: &str,
    destination: &str,
    credentials: Option<&str>,
) -> String {
    let layout = scratch.join(&sha256_digest(content.as_bytes())["sha256:".len()..][..16]);
    std::fs::create_dir_all(&layout).expect("create layout directory");
    let computed = build_layout(&layout, "v1", content);
    let pushed = push(&layout, "v1", destination, credentials);
    assert_eq!(
        pushed, computed,
        "skopeo pushed a different manifest than the one built"
    );
    computed
}
