//! The event-log conformance suite: every [`EventStore`] backend must behave the same way, because
//! the rest of windlass (and `verify_chain`) only sees the trait. Each property is written once as a
//! generic function over [`LogBackend`] and instantiated per backend by `conformance_suite!`:
//! redb always, sled under the `sled` feature. Covered: append/read order and the stored envelope,
//! gap-free global and per-install sequences, batch atomicity when one event of a batch is
//! refused (up front or half-way through writing), install order, paging through `scan`, reopening
//! after drop, concurrent appends through one handle, and `verify_chain` on a good log and on logs
//! tampered with underneath the store.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tempfile::TempDir;
use windlass_state::event::MAX_PAYLOAD_BYTES;
use windlass_state::{
    ChainError, ChainReport, EventStore, NewEvent, RecordHash, StoreError, StoredEvent,
    verify_chain,
};

use crate::support::{LogBackend, event, raw_bytes, read_all};

fn scratch<B: LogBackend>() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a scratch directory");
    let path = B::log_path(dir.path());
    (dir, path)
}

fn genesis_hex() -> String {
    "0".repeat(64)
}

pub fn appended_events_read_back_in_order<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    let batch = vec![
        event("web", "BaseFetched", json!({"step": 1})),
        NewEvent::new("web", "daemon@host", "ImagesProbed", 3, json!({"step": 2})),
        event(
            "web",
            "OverridesPlanned",
            json!({"step": 3, "nested": {"a": [1, 2]}}),
        ),
    ];
    let stored = store.append(batch.clone()).expect("append");

    assert_eq!(stored.len(), 3);
    for (index, (sent, got)) in batch.iter().zip(&stored).enumerate() {
        let seq = index as u64 + 1;
        assert_eq!(got.global_seq, seq);
        assert_eq!(got.install_seq, seq);
        assert_eq!(
            got.envelope_version,
            windlass_state::event::ENVELOPE_VERSION
        );
        assert_eq!(got.install_id, sent.install_id);
        assert_eq!(got.actor, sent.actor);
        assert_eq!(got.event_type, sent.event_type);
        assert_eq!(got.schema_version, sent.schema_version);
        assert_eq!(got.payload, sent.payload);
        time::OffsetDateTime::parse(
            &got.recorded_at,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or_else(|error| {
            panic!("recorded_at {:?} is not RFC 3339: {error}", got.recorded_at)
        });
    }
    assert!(
        stored
            .iter()
            .all(|e| e.recorded_at == stored[0].recorded_at),
        "the events of one batch are committed as one and carry one timestamp"
    );
    assert_eq!(stored[0].prev_hash, genesis_hex());
    for pair in stored.windows(2) {
        let previous_bytes = raw_bytes(&store, pair[0].global_seq);
        assert_eq!(pair[1].prev_hash, RecordHash::of(&previous_bytes).to_hex());
    }
    assert_eq!(store.events_of("web").expect("events_of"), stored);
    assert_eq!(read_all(&store), stored);
    assert_eq!(store.backend_name(), B::NAME);
}

pub fn sequences_have_no_gaps<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    let batches: Vec<Vec<(&str, &str)>> = vec![
        vec![("a", "Started")],
        vec![("b", "Started"), ("a", "Progressed"), ("b", "Progressed")],
        vec![("c", "Started"), ("c", "Progressed"), ("a", "Progressed")],
        vec![("b", "Finished")],
        vec![
            ("a", "Finished"),
            ("c", "Finished"),
            ("c", "Audited"),
            ("b", "Audited"),
        ],
    ];
    let mut expected_global = 0u64;
    for batch in &batches {
        let events = batch
            .iter()
            .map(|(install, kind)| event(install, kind, json!({})))
            .collect();
        let stored = store.append(events).expect("append");
        for got in stored {
            expected_global += 1;
            assert_eq!(got.global_seq, expected_global, "global sequence has a gap");
        }
    }
    assert!(
        store.append(Vec::new()).expect("empty append").is_empty(),
        "an empty batch records nothing"
    );

    let all = read_all(&store);
    let globals: Vec<u64> = all.iter().map(|e| e.global_seq).collect();
    assert_eq!(globals, (1..=expected_global).collect::<Vec<_>>());

    let mut seen = 0;
    for install in ["a", "b", "c"] {
        let events = store.events_of(install).expect("events_of");
        let install_seqs: Vec<u64> = events.iter().map(|e| e.install_seq).collect();
        assert_eq!(
            install_seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "install {install} sequence has a gap"
        );
        assert!(
            events.windows(2).all(|w| w[0].global_seq < w[1].global_seq),
            "install {install} events are not in log order"
        );
        assert!(events.iter().all(|e| e.install_id == install));
        for got in &events {
            assert_eq!(&all[got.global_seq as usize - 1], got);
        }
        seen += events.len();
    }
    assert_eq!(
        seen,
        all.len(),
        "every event belongs to exactly one install"
    );
}

pub fn refused_event_records_nothing_of_its_batch<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    store
        .append(vec![event("kept", "Started", json!({}))])
        .expect("first append");

    let huge = "x".repeat(MAX_PAYLOAD_BYTES);
    let bad_events: Vec<(&str, NewEvent)> = vec![
        (
            "schema version 0",
            NewEvent::new("fresh", "tester@test", "Bad", 0, json!({})),
        ),
        ("empty event type", event("fresh", "", json!({}))),
        ("install id with a slash", event("../etc", "Bad", json!({}))),
        ("empty install id", event("", "Bad", json!({}))),
        (
            "install id of 65 characters",
            event(&"i".repeat(65), "Bad", json!({})),
        ),
        // Passes the up-front checks and is refused only while the batch is being written, after
        // the events before it are already in the transaction.
        (
            "payload over the size limit",
            event("fresh", "Bad", json!({"body": huge})),
        ),
    ];
    for (why, bad) in bad_events {
        let bad_type = bad.event_type.clone();
        let batch = vec![
            event("fresh", "Started", json!({})),
            event("kept", "Progressed", json!({})),
            bad,
            event("fresh", "Finished", json!({})),
        ];
        match store.append(batch) {
            Err(StoreError::InvalidEvent { event_type, reason }) => {
                assert_eq!(event_type, bad_type, "{why}: wrong event named");
                assert!(!reason.is_empty(), "{why}: no reason given");
            }
            other => panic!("{why}: expected InvalidEvent, got {other:?}"),
        }
        assert_eq!(
            read_all(&store).len(),
            1,
            "{why}: part of the batch was recorded"
        );
        assert_eq!(
            store.install_ids().expect("install_ids"),
            vec!["kept"],
            "{why}"
        );
        assert!(
            store.events_of("fresh").expect("events_of").is_empty(),
            "{why}"
        );
    }

    let next = store
        .append(vec![
            event("kept", "Progressed", json!({})),
            event("fresh", "Started", json!({})),
        ])
        .expect("append after refusals");
    assert_eq!((next[0].global_seq, next[0].install_seq), (2, 2));
    assert_eq!((next[1].global_seq, next[1].install_seq), (3, 1));
    verify_chain(&store).expect("the chain is intact after refused batches");
}

pub fn install_ids_follow_first_event<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    assert!(
        store
            .install_ids()
            .expect("install_ids of empty log")
            .is_empty()
    );
    assert!(store.events_of("nobody").expect("events_of").is_empty());

    store
        .append(vec![event("zeta", "Started", json!({}))])
        .expect("append");
    store
        .append(vec![
            event("alpha", "Started", json!({})),
            event("zeta", "Progressed", json!({})),
            event("mid", "Started", json!({})),
        ])
        .expect("append");
    store
        .append(vec![event("alpha", "Progressed", json!({}))])
        .expect("append");
    store
        .append(vec![event("beta", "Started", json!({}))])
        .expect("append");

    assert_eq!(
        store.install_ids().expect("install_ids"),
        vec!["zeta", "alpha", "mid", "beta"],
        "install ids must be ordered by first event, not by name"
    );
    assert!(store.events_of("nobody").expect("events_of").is_empty());
}

pub fn scan_pages_through_the_log<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    assert!(store.scan(1, 10).expect("scan empty log").is_empty());
    let events = (0..7)
        .map(|i| event("paged", "Tick", json!({"i": i})))
        .collect();
    store.append(events).expect("append");

    let seqs = |from, limit| -> Vec<u64> {
        store
            .scan(from, limit)
            .expect("scan")
            .iter()
            .map(|raw| raw.global_seq)
            .collect()
    };
    assert_eq!(seqs(0, 100), (1..=7).collect::<Vec<_>>());
    assert_eq!(seqs(3, 2), vec![3, 4]);
    assert_eq!(seqs(6, 10), vec![6, 7]);
    assert!(seqs(8, 10).is_empty());
    assert!(seqs(1, 0).is_empty());
}

pub fn reopen_keeps_everything<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let (before, ids_before, report_before) = {
        let store = B::open(&path);
        store
            .append(vec![
                event("one", "Started", json!({"n": 1})),
                event("two", "Started", json!({"n": 2})),
            ])
            .expect("append");
        store
            .append(vec![event("one", "Finished", json!({"n": 3}))])
            .expect("append");
        (
            read_all(&store),
            store.install_ids().expect("install_ids"),
            verify_chain(&store).expect("verify"),
        )
    };

    let store = B::open(&path);
    assert_eq!(read_all(&store), before);
    assert_eq!(store.install_ids().expect("install_ids"), ids_before);
    assert_eq!(
        verify_chain(&store).expect("verify after reopen"),
        report_before
    );

    let more = store
        .append(vec![
            event("two", "Finished", json!({})),
            event("three", "Started", json!({})),
        ])
        .expect("append after reopen");
    assert_eq!((more[0].global_seq, more[0].install_seq), (4, 2));
    assert_eq!((more[1].global_seq, more[1].install_seq), (5, 1));
    assert_eq!(
        more[0].prev_hash, report_before.head,
        "the chain continues from the old head"
    );
    drop(store);

    let store = B::open(&path);
    let report = verify_chain(&store).expect("verify after second reopen");
    assert_eq!((report.records, report.installs), (5, 3));
    assert_eq!(
        store.install_ids().expect("install_ids"),
        vec!["one", "two", "three"]
    );
}

pub fn concurrent_appends_through_one_handle_serialise<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = Arc::new(B::open(&path));
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for batch in 0..10 {
                    store
                        .append(vec![
                            event(&format!("t{thread}"), "Tick", json!({"batch": batch})),
                            event("shared", "Tick", json!({"thread": thread})),
                        ])
                        .expect("concurrent append");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("appending thread panicked");
    }
    let report = verify_chain(store.as_ref()).expect("chain after concurrent appends");
    assert_eq!((report.records, report.installs), (80, 5));
    assert_eq!(store.events_of("shared").expect("events_of").len(), 40);
    for thread in 0..4 {
        let payload_batches: Vec<_> = store
            .events_of(&format!("t{thread}"))
            .expect("events_of")
            .iter()
            .map(|e| e.payload["batch"].clone())
            .collect();
        assert_eq!(
            payload_batches,
            (0..10).map(|b| json!(b)).collect::<Vec<_>>()
        );
    }
}

pub fn verify_chain_accepts_a_good_log<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    assert_eq!(
        verify_chain(&store).expect("verify empty log"),
        ChainReport {
            records: 0,
            installs: 0,
            head: genesis_hex()
        }
    );
    for round in 0..5 {
        store
            .append(vec![
                event("x", "Tick", json!({"round": round})),
                event("y", "Tick", json!({"round": round})),
            ])
            .expect("append");
    }
    let report = verify_chain(&store).expect("verify good log");
    assert_eq!(report.records, 10);
    assert_eq!(report.installs, 2);
    assert_eq!(report.head, RecordHash::of(&raw_bytes(&store, 10)).to_hex());
}

/// Builds a five-record log over two installs, then, with the store closed, replaces record 3 by
/// what `edit` makes of its bytes (`None` deletes it). Returns the new bytes and what
/// `verify_chain` says about the reopened log.
fn tamper_with_record_3<B: LogBackend>(
    edit: impl FnOnce(Vec<u8>) -> Option<Vec<u8>>,
) -> (Option<Vec<u8>>, Result<ChainReport, ChainError>) {
    tamper_with_record::<B>(3, edit)
}

/// Like [`tamper_with_record_3`], for any record of the five.
fn tamper_with_record<B: LogBackend>(
    target: u64,
    edit: impl FnOnce(Vec<u8>) -> Option<Vec<u8>>,
) -> (Option<Vec<u8>>, Result<ChainReport, ChainError>) {
    let (_dir, path) = scratch::<B>();
    let original = {
        let store = B::open(&path);
        store
            .append(vec![
                event("left", "Started", json!({"n": 1})),
                event("right", "Started", json!({"n": 2})),
            ])
            .expect("append");
        store
            .append(vec![
                event("left", "Progressed", json!({"n": 3})),
                event("right", "Progressed", json!({"n": 4})),
                event("left", "Finished", json!({"n": 5})),
            ])
            .expect("append");
        verify_chain(&store).expect("the log is good before tampering");
        raw_bytes(&store, target)
    };
    let replacement = edit(original);
    B::rewrite_record(&path, target, replacement.as_deref());
    let store = B::open(&path);
    (replacement, verify_chain(&store))
}

fn edit_record(bytes: Vec<u8>, change: impl FnOnce(&mut StoredEvent)) -> Vec<u8> {
    let mut record: StoredEvent = serde_json::from_slice(&bytes).expect("decode record 3");
    change(&mut record);
    let edited = serde_json::to_vec(&record).expect("encode record 3");
    assert_ne!(edited, bytes, "the edit changed nothing");
    edited
}

pub fn edited_payload_breaks_the_chain<B: LogBackend>() {
    let (edited, result) = tamper_with_record_3::<B>(|bytes| {
        Some(edit_record(bytes, |record| {
            record.payload = json!({"n": 333})
        }))
    });
    let edited = edited.expect("record 3 was replaced");
    match result {
        // Record 3 itself still names the right predecessor; the break shows at record 4, whose
        // stored previous hash no longer matches the altered record 3.
        Err(ChainError::HashMismatch {
            global_seq,
            expected,
            found,
        }) => {
            assert_eq!(global_seq, 4);
            assert_eq!(expected, RecordHash::of(&edited).to_hex());
            assert_ne!(found, expected);
        }
        other => panic!("expected HashMismatch at record 4, got {other:?}"),
    }
}

pub fn edited_previous_hash_is_reported_at_that_record<B: LogBackend>() {
    let (_, result) = tamper_with_record_3::<B>(|bytes| {
        Some(edit_record(bytes, |record| {
            record.prev_hash = "ab".repeat(32)
        }))
    });
    match result {
        Err(error @ ChainError::HashMismatch { global_seq: 3, .. }) => {
            assert!(error.to_string().contains("record 3"), "message: {error}");
        }
        other => panic!("expected HashMismatch at record 3, got {other:?}"),
    }
}

pub fn unreadable_record_is_reported<B: LogBackend>() {
    let (_, result) = tamper_with_record_3::<B>(|_| Some(b"{ this is not json".to_vec()));
    match result {
        Err(ChainError::Store(StoreError::CorruptRecord { global_seq: 3, .. })) => {}
        other => panic!("expected CorruptRecord 3, got {other:?}"),
    }
}

pub fn deleted_record_is_reported_as_a_gap<B: LogBackend>() {
    let (_, result) = tamper_with_record_3::<B>(|_| None);
    match result {
        Err(ChainError::GlobalGap {
            previous: 2,
            found: 4,
        }) => {}
        other => panic!("expected GlobalGap 2 → 4, got {other:?}"),
    }
}

pub fn renumbered_record_is_reported<B: LogBackend>() {
    let (_, result) =
        tamper_with_record_3::<B>(|bytes| Some(edit_record(bytes, |record| record.global_seq = 9)));
    match result {
        Err(ChainError::KeyMismatch { key: 3, field: 9 }) => {}
        other => panic!("expected KeyMismatch at 3, got {other:?}"),
    }
}

pub fn edited_install_sequence_is_reported<B: LogBackend>() {
    let (_, result) = tamper_with_record_3::<B>(|bytes| {
        Some(edit_record(bytes, |record| record.install_seq = 5))
    });
    match result {
        Err(ChainError::InstallGap {
            global_seq: 3,
            install_id,
            previous: 1,
            found: 5,
        }) => assert_eq!(install_id, "left"),
        other => panic!("expected InstallGap for left at 1 → 5, got {other:?}"),
    }
}

pub fn edited_last_record_is_caught_by_the_head<B: LogBackend>() {
    let (edited, result) = tamper_with_record::<B>(5, |bytes| {
        Some(edit_record(bytes, |record| {
            record.payload = json!({"n": 555})
        }))
    });
    match result {
        Err(ChainError::HeadMismatch {
            head_seq: 5,
            last_seq: 5,
            last_hash,
            ..
        }) => assert_eq!(last_hash, RecordHash::of(&edited.unwrap()).to_hex()),
        other => panic!("expected HeadMismatch at 5, got {other:?}"),
    }
}

pub fn deleted_last_record_is_caught_by_the_head<B: LogBackend>() {
    let (_, result) = tamper_with_record::<B>(5, |_| None);
    match result {
        Err(
            error @ ChainError::HeadMismatch {
                head_seq: 5,
                last_seq: 4,
                ..
            },
        ) => assert!(error.to_string().contains("records end at 4"), "{error}"),
        other => panic!("expected HeadMismatch 5 vs 4, got {other:?}"),
    }
}

/// A record of applied objects, mostly uids and digests, as big as an apply's.
fn big_event() -> NewEvent {
    let objects: Vec<serde_json::Value> = (0..400)
        .map(|index| {
            json!({
                "key": {"group": "apps", "kind": "Deployment", "namespace": "default", "name": format!("app-{index}")},
                "uid": format!("{index:08x}-d861-49df-8f47-1eae901ec7d4"),
                "digest": format!("{}", RecordHash::of(format!("{index}").as_bytes()).to_hex()),
            })
        })
        .collect();
    event("web", "ObjectsApplied", json!({ "objects": objects }))
}

/// The first bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

pub fn big_records_are_stored_compressed_and_read_hashed_and_exported_as_json<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    let stored = store
        .append(vec![event("web", "Started", json!({})), big_event()])
        .expect("append");
    let record = raw_bytes(&store, 2);
    drop(store);
    // On disk: a zstd frame, several times smaller; a small record as itself.
    let on_disk = B::stored_bytes(&path, 2);
    assert!(on_disk.starts_with(&ZSTD_MAGIC), "stored as a frame");
    assert!(
        on_disk.len() * 4 < record.len(),
        "{} bytes stored for a record of {}",
        on_disk.len(),
        record.len()
    );
    assert!(B::stored_bytes(&path, 1).starts_with(b"{"));
    // Read back: the record itself, JSON, the bytes the chain hashes and export writes.
    let store = B::open(&path);
    assert!(record.starts_with(b"{"));
    assert_eq!(read_all(&store), stored);
    let (head_seq, head) = store.head().expect("head").expect("a head");
    assert_eq!((head_seq, head), (2, RecordHash::of(&record)));
    verify_chain(&store).expect("the chain holds");
    let mut exported = Vec::new();
    windlass_state::export::export(&store, &Default::default(), &mut exported).expect("export");
    let line: serde_json::Value = serde_json::from_slice(
        exported
            .split(|byte| *byte == b'\n')
            .nth(1)
            .expect("a second line"),
    )
    .expect("a JSON line");
    assert_eq!(
        line["record"].as_str().map(str::as_bytes),
        Some(record.as_slice())
    );
    drop(store);
    // A log of a windlass before compression holds the same record as itself: read the same.
    B::rewrite_record(&path, 2, Some(&record));
    let store = B::open(&path);
    assert_eq!(read_all(&store), stored);
    verify_chain(&store).expect("the chain holds");
}

pub fn a_damaged_compressed_record_is_reported_not_read<B: LogBackend>() {
    let (_dir, path) = scratch::<B>();
    let store = B::open(&path);
    store.append(vec![big_event()]).expect("append");
    drop(store);
    let mut on_disk = B::stored_bytes(&path, 1);
    let middle = on_disk.len() / 2;
    on_disk[middle] ^= 0x55;
    B::rewrite_record(&path, 1, Some(&on_disk));
    let store = B::open(&path);
    match verify_chain(&store) {
        Err(ChainError::Store(StoreError::CorruptRecord { global_seq: 1, .. })) => {}
        other => panic!("expected record 1 reported corrupt, got {other:?}"),
    }
}

macro_rules! conformance_suite {
    ($module:ident, $backend:ty) => {
        mod $module {
            #[test]
            fn big_records_are_stored_compressed_and_read_hashed_and_exported_as_json() {
                super::big_records_are_stored_compressed_and_read_hashed_and_exported_as_json::<
                    $backend,
                >();
            }
            #[test]
            fn a_damaged_compressed_record_is_reported_not_read() {
                super::a_damaged_compressed_record_is_reported_not_read::<$backend>();
            }
            #[test]
            fn appended_events_read_back_in_order() {
                super::appended_events_read_back_in_order::<$backend>();
            }
            #[test]
            fn sequences_have_no_gaps() {
                super::sequences_have_no_gaps::<$backend>();
            }
            #[test]
            fn refused_event_records_nothing_of_its_batch() {
                super::refused_event_records_nothing_of_its_batch::<$backend>();
            }
            #[test]
            fn install_ids_follow_first_event() {
                super::install_ids_follow_first_event::<$backend>();
            }
            #[test]
            fn scan_pages_through_the_log() {
                super::scan_pages_through_the_log::<$backend>();
            }
            #[test]
            fn reopen_keeps_everything() {
                super::reopen_keeps_everything::<$backend>();
            }
            #[test]
            fn concurrent_appends_through_one_handle_serialise() {
                super::concurrent_appends_through_one_handle_serialise::<$backend>();
            }
            #[test]
            fn verify_chain_accepts_a_good_log() {
                super::verify_chain_accepts_a_good_log::<$backend>();
            }
            #[test]
            fn edited_payload_breaks_the_chain() {
                super::edited_payload_breaks_the_chain::<$backend>();
            }
            #[test]
            fn edited_previous_hash_is_reported_at_that_record() {
                super::edited_previous_hash_is_reported_at_that_record::<$backend>();
            }
            #[test]
            fn unreadable_record_is_reported() {
                super::unreadable_record_is_reported::<$backend>();
            }
            #[test]
            fn deleted_record_is_reported_as_a_gap() {
                super::deleted_record_is_reported_as_a_gap::<$backend>();
            }
            #[test]
            fn renumbered_record_is_reported() {
                super::renumbered_record_is_reported::<$backend>();
            }
            #[test]
            fn edited_last_record_is_caught_by_the_head() {
                super::edited_last_record_is_caught_by_the_head::<$backend>();
            }

            #[test]
            fn deleted_last_record_is_caught_by_the_head() {
                super::deleted_last_record_is_caught_by_the_head::<$backend>();
            }

            #[test]
            fn edited_install_sequence_is_reported() {
                super::edited_install_sequence_is_reported::<$backend>();
            }
        }
    };
}

conformance_suite!(on_redb, crate::support::Redb);
#[cfg(feature = "sled")]
conformance_suite!(on_sled, crate::support::Sled);
