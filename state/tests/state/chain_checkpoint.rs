//! The chain check an install runs before it appends (`verify_chain_since_checkpoint`), on the
//! redb backend with records rewritten underneath the store: it walks only what was appended since
//! the last check, catches damage from the checkpointed record on, walks the whole log again when
//! that record changed, and (the trade-off it makes) leaves damage to older records to
//! `verify_chain`, the walk `windlass verify-log` runs.

use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;
use windlass_state::{
    ChainError, EventStore, IncrementalCheck, StoredEvent, verify_chain,
    verify_chain_since_checkpoint,
};

use crate::support::{LogBackend, Redb, event, raw_bytes};

fn log_with(records: u64) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Redb::log_path(dir.path());
    append(&path, 0..records);
    (dir, path)
}

fn append(path: &Path, numbers: std::ops::Range<u64>) {
    let store = Redb::open(path);
    for n in numbers {
        let install = if n % 2 == 0 { "left" } else { "right" };
        store
            .append(vec![event(install, "Tick", json!({ "n": n }))])
            .expect("append");
    }
}

fn check(path: &Path) -> Result<IncrementalCheck, ChainError> {
    verify_chain_since_checkpoint(&Redb::open(path))
}

fn edit_payload(path: &Path, global_seq: u64) {
    let bytes = raw_bytes(&Redb::open(path), global_seq);
    let mut record: StoredEvent = serde_json::from_slice(&bytes).expect("a record");
    record.payload = json!({ "n": "edited" });
    let edited = serde_json::to_vec(&record).expect("encodes");
    Redb::rewrite_record(path, global_seq, Some(&edited));
}

#[test]
fn each_check_walks_only_what_was_appended_since_the_last() {
    let (_dir, path) = log_with(5);
    assert_eq!(
        check(&path).unwrap(),
        IncrementalCheck {
            records: 5,
            from_checkpoint: false
        }
    );
    append(&path, 5..8);
    assert_eq!(
        check(&path).unwrap(),
        IncrementalCheck {
            records: 3,
            from_checkpoint: true
        }
    );
    assert_eq!(
        check(&path).unwrap(),
        IncrementalCheck {
            records: 0,
            from_checkpoint: true
        }
    );
    assert_eq!(verify_chain(&Redb::open(&path)).unwrap().records, 8);
}

#[test]
fn damage_after_the_checkpoint_is_caught() {
    let (_dir, path) = log_with(5);
    check(&path).unwrap();
    append(&path, 5..8);
    edit_payload(&path, 7);
    match check(&path) {
        Err(ChainError::HashMismatch { global_seq, .. }) => assert_eq!(global_seq, 8),
        other => panic!("expected a break at record 8, got {other:?}"),
    }
}

#[test]
fn a_changed_checkpointed_record_sends_the_check_over_the_whole_log() {
    let (_dir, path) = log_with(5);
    check(&path).unwrap();
    append(&path, 5..8);
    edit_payload(&path, 5);
    match check(&path) {
        Err(ChainError::HashMismatch { global_seq, .. }) => assert_eq!(global_seq, 6),
        other => panic!("expected a break at record 6, got {other:?}"),
    }
    // The last record checked, edited with nothing after it: the head catches it.
    let (_dir, path) = log_with(5);
    check(&path).unwrap();
    edit_payload(&path, 5);
    assert!(
        matches!(check(&path), Err(ChainError::HeadMismatch { .. })),
        "{:?}",
        check(&path)
    );
}

#[test]
fn damage_before_the_checkpoint_is_left_to_the_full_walk() {
    let (_dir, path) = log_with(5);
    check(&path).unwrap();
    edit_payload(&path, 2);
    append(&path, 5..6);
    assert_eq!(
        check(&path).unwrap(),
        IncrementalCheck {
            records: 1,
            from_checkpoint: true
        },
        "the check before an append reads only the new record"
    );
    match verify_chain(&Redb::open(&path)) {
        Err(ChainError::HashMismatch { global_seq, .. }) => assert_eq!(global_seq, 3),
        other => panic!("verify-log's walk must find it at record 3, got {other:?}"),
    }
}
