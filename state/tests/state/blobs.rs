//! The content-addressed blob store: identical bytes are stored once under their blake3 id, staged
//! blobs become durable together on `sync` (and survive reopening), reads check the hash so a blob
//! corrupted in storage is reported (`Corrupted`) rather than served, an absent blob is `Missing`,
//! and `BlobId::parse` accepts only what `BlobId::of` produces (64 lowercase hex digits), since ids
//! come back out of events. `size_of` gives a blob's size without reading it through.

use redb::{Database, TableDefinition};
use windlass_state::{BlobError, BlobId, BlobStore};

/// The table the store keeps blobs in, for tampering from outside.
const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");

#[test]
fn put_stores_identical_bytes_once_and_sync_makes_them_durable() {
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
    let other = blobs.put(b"kind: Secret\n").expect("put other bytes");
    assert_ne!(other, first);
    assert!(
        blobs.contains(&first),
        "staged blobs are readable before sync"
    );
    assert_eq!(
        blobs.len().expect("len"),
        0,
        "nothing is stored before sync"
    );
    blobs.sync().expect("sync");
    assert_eq!(
        blobs.len().expect("len"),
        2,
        "identical bytes are stored once"
    );
    drop(blobs);

    let reopened = BlobStore::open(&root).expect("reopen");
    assert!(reopened.contains(&first));
    assert_eq!(
        reopened.put(b"kind: Secret\n").expect("put after reopen"),
        other
    );
    reopened.sync().expect("sync again");
    assert_eq!(reopened.len().expect("len"), 2);
}

#[test]
fn unsynced_blobs_are_not_durable() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let blobs = BlobStore::open(dir.path()).expect("open blob store");
    let id = blobs.put(b"staged only\n").expect("put");
    drop(blobs);
    let reopened = BlobStore::open(dir.path()).expect("reopen");
    assert!(matches!(reopened.get(&id), Err(BlobError::Missing(_))));
}

#[test]
fn get_returns_what_was_put() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let blobs = BlobStore::open(dir.path()).expect("open blob store");
    let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let id = blobs.put(&body).expect("put");
    let empty = blobs.put(b"").expect("put empty");
    blobs.sync().expect("sync");
    assert_eq!(blobs.get(&id).expect("get"), body);
    assert_eq!(blobs.get(&empty).expect("get empty"), Vec::<u8>::new());
}

#[test]
fn get_reports_a_corrupted_blob() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let blobs = BlobStore::open(dir.path()).expect("open blob store");
    let id = blobs
        .put(b"image: registry.example/app:1.0\n")
        .expect("put");
    blobs.sync().expect("sync");
    let path = blobs.path().to_path_buf();
    drop(blobs);

    for corrupted in [&b"image: evil.example/app:1.0\n"[..], b""] {
        {
            let db = Database::create(&path).expect("open the blob database directly");
            let txn = db.begin_write().expect("write");
            txn.open_table(BLOBS)
                .expect("table")
                .insert(id.as_str(), corrupted)
                .expect("corrupt the blob");
            txn.commit().expect("commit");
        }
        let blobs = BlobStore::open(path.parent().unwrap()).expect("reopen");
        match blobs.get(&id) {
            Err(BlobError::Corrupted(named)) => assert_eq!(named, id),
            other => panic!("expected Corrupted, got {other:?}"),
        }
    }
}

#[test]
fn verify_names_a_damaged_blob_and_storing_the_bytes_again_repairs_it() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let blobs = BlobStore::open(dir.path()).expect("open blob store");
    let body = b"image: registry.example/app:1.0\n";
    let id = blobs.put(body).expect("put");
    let other = blobs.put(b"kind: Service\n").expect("put");
    blobs.sync().expect("sync");
    let path = blobs.path().to_path_buf();
    drop(blobs);
    {
        let db = Database::create(&path).expect("open the blob database directly");
        let txn = db.begin_write().expect("write");
        txn.open_table(BLOBS)
            .expect("table")
            .insert(id.as_str(), &b"image: evil.example/app:1.0\n"[..])
            .expect("corrupt the blob");
        txn.commit().expect("commit");
    }

    let read_only = BlobStore::open_read_only(dir.path()).expect("open read-only");
    let check = read_only.verify().expect("verify");
    assert_eq!(check.checked, 2);
    assert_eq!(check.damaged, vec![id.to_string()]);
    assert!(
        read_only
            .missing(&[id.clone(), other.clone()])
            .expect("missing")
            .is_empty()
    );
    assert!(matches!(
        read_only
            .missing(&[BlobId::of(b"never stored")])
            .expect("missing")
            .as_slice(),
        [_]
    ));
    read_only.put(body).expect("put stages in memory");
    assert!(matches!(read_only.sync(), Err(BlobError::ReadOnly(_))));
    drop(read_only);

    let blobs = BlobStore::open(dir.path()).expect("reopen");
    assert_eq!(blobs.put(body).expect("put the same bytes again"), id);
    blobs.sync().expect("sync replaces the damaged copy");
    drop(blobs);
    let blobs = BlobStore::open(dir.path()).expect("reopen");
    assert_eq!(blobs.get(&id).expect("repaired"), body);
    assert!(blobs.verify().expect("verify").damaged.is_empty());
}

#[test]
fn open_read_only_of_a_missing_store_creates_nothing() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let root = dir.path().join("blobs");
    let blobs = BlobStore::open_read_only(&root).expect("open read-only");
    assert_eq!(blobs.len().expect("len"), 0);
    assert_eq!(blobs.verify().expect("verify").checked, 0);
    assert!(!root.exists(), "nothing created");
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

/// `size_of` gives a blob's size, staged, stored (after reopening) or in memory only, and `None`
/// for a blob the store does not have.
#[test]
fn size_of_gives_the_size_of_a_staged_or_stored_blob() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let root = dir.path().join("blobs");
    let bytes = b"kind: ConfigMap\n";
    let absent = BlobId::of(b"never stored");
    {
        let blobs = BlobStore::open(&root).expect("open blob store");
        assert_eq!(blobs.size_of(&absent).expect("size"), None);
        let id = blobs.put(bytes).expect("put");
        assert_eq!(blobs.size_of(&id).expect("size of a staged blob"), Some(16));
        blobs.sync().expect("sync");
    }
    let reopened = BlobStore::open_read_only(&root).expect("reopen");
    assert_eq!(
        reopened
            .size_of(&BlobId::of(bytes))
            .expect("size of a stored blob"),
        Some(16)
    );
    assert_eq!(reopened.size_of(&absent).expect("size"), None);
    let memory = BlobStore::in_memory();
    let id = memory.put(bytes).expect("put");
    memory.sync().expect("sync");
    assert_eq!(memory.size_of(&id).expect("size in memory"), Some(16));
}
