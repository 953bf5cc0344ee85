//! The content-addressed blob store: identical bytes are stored once under their blake3 id, reads
//! check the hash so a blob corrupted on disk is reported (`Corrupted`) rather than served, an
//! absent blob is `Missing`, and `BlobId::parse` accepts only what `BlobId::of` produces (64
//! lowercase hex digits), since ids come back out of events and are turned into paths.

use std::fs;
use std::path::Path;

use windlass_state::{BlobError, BlobId, BlobStore};

/// Every regular file under `root`, outside the temporary directory.
fn blob_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("read blob directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if path != root.join("tmp") {
                    pending.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn put_stores_identical_bytes_once() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let root = dir.path().join("blobs");
    let blobs = BlobStore::open(&root).expect("open blob store");

    let first = blobs
        .put(b"apiVersion: v1\nkind: ConfigMap\n")
        .expect("put");
    let second = blobs
        .put(b"apiVersion: v1\nkind: ConfigMap\n")
        .expect("put again");
    assert_eq!(first, second);
    assert_eq!(first, BlobId::of(b"apiVersion: v1\nkind: ConfigMap\n"));
    assert_eq!(blob_files(&root), vec![blobs.path_of(&first)]);

    let other = blobs.put(b"kind: Secret\n").expect("put other bytes");
    assert_ne!(other, first);
    assert_eq!(blob_files(&root).len(), 2);
    assert_eq!(
        fs::read_dir(root.join("tmp")).expect("read tmp").count(),
        0,
        "no temporary files are left behind"
    );
    blobs.sync().expect("sync");

    let reopened = BlobStore::open(&root).expect("reopen");
    assert!(reopened.contains(&first));
    assert_eq!(
        reopened.put(b"kind: Secret\n").expect("put after reopen"),
        other
    );
    assert_eq!(blob_files(&root).len(), 2);
}

#[test]
fn get_returns_what_was_put() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let blobs = BlobStore::open(dir.path()).expect("open blob store");
    let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let id = blobs.put(&body).expect("put");
    assert_eq!(blobs.get(&id).expect("get"), body);
    let empty = blobs.put(b"").expect("put empty");
    assert_eq!(blobs.get(&empty).expect("get empty"), Vec::<u8>::new());
    assert!(
        blobs
            .path_of(&id)
            .starts_with(dir.path().join(&id.as_str()[..2]))
    );
}

#[test]
fn get_reports_a_corrupted_blob() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let blobs = BlobStore::open(dir.path()).expect("open blob store");
    let id = blobs
        .put(b"image: registry.example/app:1.0\n")
        .expect("put");

    fs::write(blobs.path_of(&id), b"image: evil.example/app:1.0\n").expect("corrupt the blob");
    match blobs.get(&id) {
        Err(BlobError::Corrupted(named)) => assert_eq!(named, id),
        other => panic!("expected Corrupted, got {other:?}"),
    }

    fs::write(blobs.path_of(&id), b"").expect("truncate the blob");
    assert!(matches!(blobs.get(&id), Err(BlobError::Corrupted(_))));
}

#[test]
fn get_reports_a_missing_blob() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let blobs = BlobStore::open(dir.path()).expect("open blob store");
    let id = BlobId::of(b"never stored");
    assert!(!blobs.contains(&id));
    match blobs.get(&id) {
        Err(error @ BlobError::Missing(_)) => {
            assert!(error.to_string().contains(id.as_str()), "message: {error}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
}

#[test]
fn parse_accepts_only_lowercase_hex_ids() {
    let good = BlobId::of(b"hello");
    assert_eq!(BlobId::parse(good.as_str()).expect("parse a real id"), good);
    assert_eq!(good.to_string(), good.as_str());

    let too_long = format!("{}0", good.as_str());
    let bad = [
        String::new(),
        good.as_str()[..63].to_string(),
        too_long,
        good.as_str().to_uppercase(),
        format!("g{}", &good.as_str()[1..]),
        format!("../{}", &good.as_str()[3..]),
        format!("{}/..", &good.as_str()[..61]),
        format!(" {}", &good.as_str()[1..]),
    ];
    for candidate in bad {
        match BlobId::parse(&candidate) {
            Err(BlobError::BadId(_)) => {}
            other => panic!("{candidate:?} should be refused, got {other:?}"),
        }
    }

    let huge = "z".repeat(10_000);
    match BlobId::parse(&huge) {
        Err(error @ BlobError::BadId(_)) => {
            assert!(
                error.to_string().len() < 200,
                "the message must not echo huge input"
            );
        }
        other => panic!("expected BadId, got {other:?}"),
    }
}
