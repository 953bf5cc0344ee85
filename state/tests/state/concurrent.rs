//! Several handles on one log. The redb backend opens its file in redb's multi-writer mode so that
//! `windlass history` can read while an install or the daemon writes, and two writers queue on
//! redb's write lock instead of failing. These tests check that promise with two independent
//! `RedbStore` handles in one process (redb's locks are per open file, so they behave like two
//! processes) and with a real second process (the `acked_writer` example) writing while this one
//! reads. Every snapshot a reader takes must be consistent: per-install sequences 1..n without
//! gaps and a verifying chain. The sled backend is single-process by design; its test checks that a
//! second handle is refused rather than allowed to corrupt the log.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use windlass_state::redb_store::RedbStore;
use windlass_state::{EventStore, StoreError, verify_chain};

use crate::child_writer::AckedWriter;
use crate::support::{LogBackend, Redb, event, read_all};

/// Reads every install's events and checks the snapshot is consistent; returns how many events
/// it saw. Installs are read one by one, so the total may include events committed in between.
fn consistent_snapshot(store: &dyn EventStore) -> usize {
    let mut seen = 0;
    for install in store
        .install_ids()
        .expect("install_ids while another handle writes")
    {
        let events = store
            .events_of(&install)
            .expect("events_of while another handle writes");
        let install_seqs: Vec<u64> = events.iter().map(|e| e.install_seq).collect();
        assert_eq!(
            install_seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "install {install} seen with a gap"
        );
        seen += events.len();
    }
    seen
}

#[test]
fn a_second_redb_handle_reads_while_the_first_writes() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = Redb::log_path(dir.path());
    let writer = RedbStore::open(&path).expect("open the writing handle");
    let reader = RedbStore::open(&path).expect("a second handle in the same process opens");

    let done = Arc::new(AtomicBool::new(false));
    let writing = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for batch in 0..60 {
                writer
                    .append(vec![
                        event("north", "Tick", json!({"batch": batch})),
                        event("south", "Tick", json!({"batch": batch})),
                        event("north", "Tock", json!({"batch": batch})),
                    ])
                    .expect("append through the first handle");
            }
            done.store(true, Ordering::SeqCst);
            writer
        })
    };

    let mut observed = Vec::new();
    while !done.load(Ordering::SeqCst) {
        let seen = consistent_snapshot(&reader);
        let chain = verify_chain(&reader).expect("the chain verifies mid-write");
        assert!(
            chain.records as usize >= seen,
            "the chain lags an earlier snapshot"
        );
        observed.push(chain.records);
    }
    let writer = writing.join().expect("writer thread panicked");
    assert!(
        observed.windows(2).all(|pair| pair[0] <= pair[1]),
        "the reader saw the log shrink: {observed:?}"
    );

    assert_eq!(
        consistent_snapshot(&reader),
        180,
        "the reader sees every commit"
    );
    assert_eq!(
        reader.install_ids().expect("install_ids"),
        vec!["north", "south"]
    );

    // And the second handle may write too; the first sees it.
    let appended = reader
        .append(vec![event("east", "Tick", json!({}))])
        .expect("append through the second handle");
    assert_eq!(appended[0].global_seq, 181);
    assert_eq!(writer.events_of("east").expect("events_of"), appended);
    assert_eq!(verify_chain(&writer).expect("verify").records, 181);
}

#[test]
fn two_redb_handles_writing_at_once_queue_instead_of_failing() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = Redb::log_path(dir.path());
    let handles: Vec<_> = (0..2)
        .map(|n| {
            let store = RedbStore::open(&path).expect("open a handle");
            std::thread::spawn(move || {
                let install = format!("writer-{n}");
                let mut seqs = Vec::new();
                for batch in 0..25 {
                    let stored = store
                        .append(vec![
                            event(&install, "Tick", json!({"batch": batch})),
                            event("shared", "Tick", json!({"writer": n})),
                        ])
                        .expect("concurrent append through separate handles");
                    seqs.extend(stored.iter().map(|e| e.global_seq));
                }
                seqs
            })
        })
        .collect();
    let mut all_seqs = BTreeSet::new();
    for handle in handles {
        for seq in handle.join().expect("writer thread panicked") {
            assert!(
                all_seqs.insert(seq),
                "global sequence {seq} handed out twice"
            );
        }
    }
    assert_eq!(all_seqs, (1..=100).collect());

    let store = RedbStore::open(&path).expect("reopen");
    let report = verify_chain(&store).expect("verify after two writers");
    assert_eq!((report.records, report.installs), (100, 3));
    assert_eq!(consistent_snapshot(&store), 100);
}

#[test]
fn redb_log_is_readable_while_another_process_writes() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = Redb::log_path(dir.path());
    let mut writer = AckedWriter::spawn(&path, Redb::NAME);
    writer.wait_for_acks(5, Duration::from_secs(60));

    let reader = RedbStore::open(&path).expect("open while another process writes");
    let mut counts = Vec::new();
    for target in [40, 80, 120] {
        writer.wait_for_acks(target, Duration::from_secs(60));
        let acked_so_far = *writer.acked().last().expect("some acks");
        let report = verify_chain(&reader).expect("the chain verifies while the writer runs");
        assert!(
            report.records >= acked_so_far,
            "the reader sees {} records but {acked_so_far} were acknowledged",
            report.records
        );
        consistent_snapshot(&reader);
        counts.push(report.records);
    }
    assert!(
        counts.windows(2).all(|pair| pair[0] < pair[1]),
        "one open handle keeps seeing the other process's commits: {counts:?}"
    );

    let acked = writer.kill();
    let all = read_all(&reader);
    for seq in acked {
        assert!(
            seq as usize <= all.len(),
            "acknowledged record {seq} is missing"
        );
    }
    verify_chain(&reader).expect("the chain verifies after the writer was killed");
}

#[test]
fn redb_reports_an_exclusive_holder_as_locked() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = Redb::log_path(dir.path());
    // A plain redb handle takes the whole file, as an older windlass or a stock tool would.
    let exclusive = redb::Database::create(&path).expect("plain redb open");
    match RedbStore::open(&path) {
        Err(StoreError::Locked {
            path: named,
            detail,
        }) => {
            assert_eq!(named, path.display().to_string());
            assert!(!detail.is_empty());
        }
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("opened a log another handle holds exclusively"),
    }
    drop(exclusive);
    RedbStore::open(&path).expect("opens once the exclusive holder is gone");
}

#[cfg(feature = "sled")]
#[test]
fn sled_refuses_a_second_handle() {
    use crate::support::Sled;
    use windlass_state::sled_store::SledStore;

    let dir = tempfile::tempdir().expect("scratch directory");
    let path = Sled::log_path(dir.path());
    let first = SledStore::open(&path).expect("first handle");
    first
        .append(vec![event("only", "Tick", json!({}))])
        .expect("append");
    let error = match SledStore::open(&path) {
        Err(error @ StoreError::Locked { .. }) => error,
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("sled opened a log that another handle holds"),
    };
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "the error names the log: {error}"
    );
    assert!(
        error.to_string().contains("lock"),
        "the error says why: {error}"
    );
    drop(first);
    let reopened =
        crate::support::wait_for_sled_lock("reopening once the first handle is gone", || {
            SledStore::open(&path)
        });
    assert_eq!(verify_chain(&reopened).expect("verify").records, 1);
}
