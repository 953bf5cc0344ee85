//! Release content: the digest of a directory is that of its sorted `path sha256` lines (the
//! `.ready` marker left out), a bundle with the same files has the same digest, the version label
//! is read from the Installation or Application, and bundles that escape their directory, hold
//! links or exceed their limits are refused by name.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use windlass_daemon::content::{
    BundleLimits, ContentError, DigestCache, bundle_content, directory_content, unpack_bundle,
};

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn write(dir: &Path, relative: &str, text: &str) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const APP: &str = "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: app\n  labels:\n    app.kubernetes.io/version: 2.4.1\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

#[test]
fn directory_digest_is_the_hash_of_sorted_path_sha256_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "kots-app.yaml", APP);
    write(dir.path(), "manifests/web.yaml", DEPLOYMENT);
    write(dir.path(), ".ready", "");
    let expected = format!(
        "sha256:{}",
        sha(format!(
            "kots-app.yaml {}\nmanifests/web.yaml {}\n",
            sha(APP.as_bytes()),
            sha(DEPLOYMENT.as_bytes())
        )
        .as_bytes())
    );
    let content = directory_content(dir.path(), &mut DigestCache::default()).unwrap();
    assert_eq!(content.digest, expected);
    assert_eq!(content.files, 2, "the .ready marker is not content");
    assert_eq!(content.version.as_deref(), Some("2.4.1"));
}

#[test]
fn installation_version_label_wins_over_the_application_label() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "kots-app.yaml", APP);
    write(
        dir.path(),
        "installation.yaml",
        "apiVersion: kots.io/v1beta1\nkind: Installation\nspec:\n  versionLabel: 3.0.0\n",
    );
    let content = directory_content(dir.path(), &mut DigestCache::default()).unwrap();
    assert_eq!(content.version.as_deref(), Some("3.0.0"));
}

#[test]
fn a_changed_file_changes_the_digest_even_with_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", DEPLOYMENT);
    let mut cache = DigestCache::default();
    let first = directory_content(dir.path(), &mut cache).unwrap();
    write(
        dir.path(),
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    let second = directory_content(dir.path(), &mut cache).unwrap();
    assert_ne!(first.digest, second.digest);
}

fn bundle(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".tar.gz")
        .tempfile()
        .unwrap();
    let encoder =
        flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Written raw, so that escaping paths reach the reader as an attacker would write them.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, *bytes).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
    file
}

#[test]
fn a_bundle_has_the_digest_of_the_same_files_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "kots-app.yaml", APP);
    write(dir.path(), "manifests/web.yaml", DEPLOYMENT);
    let file = bundle(&[
        ("./kots-app.yaml", APP.as_bytes()),
        ("manifests/web.yaml", DEPLOYMENT.as_bytes()),
    ]);
    let limits = BundleLimits::default();
    let from_bundle = bundle_content(file.path(), &limits, &mut DigestCache::default()).unwrap();
    let from_dir = directory_content(dir.path(), &mut DigestCache::default()).unwrap();
    assert_eq!(from_bundle, from_dir);
    let into = tempfile::tempdir().unwrap();
    let unpacked = unpack_bundle(file.path(), &limits, &into.path().join("release")).unwrap();
    assert_eq!(unpacked.digest, from_dir.digest);
    assert_eq!(
        std::fs::read_to_string(into.path().join("release/manifests/web.yaml")).unwrap(),
        DEPLOYMENT
    );
}

#[test]
fn bundle_paths_that_escape_are_refused_and_nothing_is_written_outside() {
    let file = bundle(&[("../evil.yaml", DEPLOYMENT.as_bytes())]);
    let into = tempfile::tempdir().unwrap();
    let error = unpack_bundle(
        file.path(),
        &BundleLimits::default(),
        &into.path().join("release"),
    )
    .unwrap_err();
    assert!(matches!(error, ContentError::Escapes { .. }), "{error}");
    assert!(error.to_string().contains("../evil.yaml"), "{error}");
    assert!(!into.path().join("evil.yaml").exists());
}

#[test]
fn bundle_limits_are_enforced() {
    let file = bundle(&[
        ("a.yaml", DEPLOYMENT.as_bytes()),
        ("b.yaml", APP.as_bytes()),
    ]);
    let too_few_entries = BundleLimits {
        max_entries: 1,
        ..BundleLimits::default()
    };
    let error =
        bundle_content(file.path(), &too_few_entries, &mut DigestCache::default()).unwrap_err();
    assert_eq!(error.to_string(), "more than 1 files");
    let too_small = BundleLimits {
        max_unpacked_bytes: 10,
        ..BundleLimits::default()
    };
    let error = bundle_content(file.path(), &too_small, &mut DigestCache::default()).unwrap_err();
    assert_eq!(error.to_string(), "unpacked content larger than 10 bytes");
}

#[test]
fn a_truncated_bundle_is_unreadable_not_taken() {
    let file = bundle(&[("a.yaml", DEPLOYMENT.repeat(500).as_bytes())]);
    let bytes = std::fs::read(file.path()).unwrap();
    std::fs::write(file.path(), &bytes[..bytes.len() / 2]).unwrap();
    let error = bundle_content(
        file.path(),
        &BundleLimits::default(),
        &mut DigestCache::default(),
    )
    .unwrap_err();
    assert!(matches!(error, ContentError::Archive(_)), "{error}");
}
