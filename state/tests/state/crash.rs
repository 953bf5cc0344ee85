//! The crash test: the event log promises that when `append` returns `Ok` the batch is durable,
//! and that after a crash a batch is there whole or not at all. A real process (the `acked_writer`
//! example) appends batches of 1 to 20 events over three installs and prints each acknowledged
//! global sequence; the test SIGKILLs it after a hundred-odd acknowledgements plus a random few
//! milliseconds (so the kill lands at different points of an append), reopens the log, and checks
//! that every acknowledged batch is present, the hash chain and both sequence numberings verify,
//! no batch is torn, and at most the one in-flight batch exists beyond the last acknowledgement.
//! Four rounds run on the same log, so recovery after a kill is itself followed by more appends
//! and another kill. SIGKILL loses what the process had not handed to the kernel, not what the
//! kernel had not written to the disk, so this checks the backends' commit protocol, not the
//! drive's flush behaviour. The writer also keeps a projection (each install's event count) in
//! every append's transaction; after each kill its rows must match the surviving records exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use windlass_state::{EventStore, ProjectionHead, StoredEvent, verify_chain};

use crate::child_writer::AckedWriter;
use crate::support::{LogBackend, read_all};

const ROUNDS: usize = 4;
const ACKS_PER_ROUND: usize = 150;
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);
/// The kill lands up to this long after the last awaited acknowledgement, about two appends'
/// worth in a debug build, so that it hits different points of an append: building the batch,
/// inside the transaction, during the commit's fsync, or between append and acknowledgement.
const LARGEST_KILL_DELAY: Duration = Duration::from_millis(15);

/// A random delay below [`LARGEST_KILL_DELAY`], from the standard library's per-process random
/// hash keys.
fn random_kill_delay() -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let largest = LARGEST_KILL_DELAY.as_micros() as u64;
    Duration::from_micros(random % largest)
}

/// One batch as found in the log.
struct Batch<'log> {
    size: u64,
    events: Vec<&'log StoredEvent>,
}

fn payload_u64(event: &StoredEvent, field: &str) -> u64 {
    event.payload[field].as_u64().unwrap_or_else(|| {
        panic!(
            "record {} has no numeric {field:?}: {}",
            event.global_seq, event.payload
        )
    })
}

/// Checks the log against every acknowledgement so far; `writers` is how many writer processes
/// have run on it.
fn check_log_after_kill<B: LogBackend>(path: &Path, acked: &BTreeSet<u64>, writers: usize) {
    let store = B::open(path);
    let report = verify_chain(&store)
        .unwrap_or_else(|error| panic!("{} log does not verify after SIGKILL: {error}", B::NAME));
    let records = read_all(&store);
    assert_eq!(records.len() as u64, report.records);

    // writer → batch number → events
    let mut batches: BTreeMap<&str, BTreeMap<u64, Batch<'_>>> = BTreeMap::new();
    for event in &records {
        let writer = event.payload["writer"]
            .as_str()
            .expect("every payload names its writer");
        let batch = batches
            .entry(writer)
            .or_default()
            .entry(payload_u64(event, "batch"))
            .or_insert_with(|| Batch {
                size: payload_u64(event, "batch_size"),
                events: Vec::new(),
            });
        batch.events.push(event);
    }
    assert_eq!(
        batches.len(),
        writers,
        "every writer process left its batches"
    );

    for (writer, writer_batches) in &batches {
        let mut unacknowledged = Vec::new();
        for (number, batch) in writer_batches {
            assert_eq!(
                batch.events.len() as u64,
                batch.size,
                "{}: writer {writer} batch {number} is torn: {} of {} events survived",
                B::NAME,
                batch.events.len(),
                batch.size
            );
            let first = batch.events[0].global_seq;
            for (index, event) in batch.events.iter().enumerate() {
                assert_eq!(payload_u64(event, "index"), index as u64);
                assert_eq!(
                    event.global_seq,
                    first + index as u64,
                    "a batch occupies consecutive global sequences"
                );
            }
            let last = batch.events[batch.events.len() - 1].global_seq;
            if !acked.contains(&last) {
                unacknowledged.push(*number);
            }
        }
        let numbers: Vec<u64> = writer_batches.keys().copied().collect();
        assert_eq!(
            numbers,
            (0..numbers.len() as u64).collect::<Vec<_>>(),
            "{}: writer {writer} lost a batch in the middle",
            B::NAME
        );
        // Only the batch in flight when the kill landed may be there without its ack.
        assert!(
            unacknowledged.is_empty() || unacknowledged == [numbers[numbers.len() - 1]],
            "{}: writer {writer} has unacknowledged batches {unacknowledged:?} of {}",
            B::NAME,
            numbers.len()
        );
    }

    // The projection rows (each install's event count, kept by the writer in every append's
    // transaction) reflect exactly the records that survived.
    if store.keeps_projections() {
        let (seq, hash) = store.head().unwrap().expect("a head");
        assert_eq!(
            store.projection_head().unwrap(),
            Some(ProjectionHead {
                version: 7,
                seq,
                hash
            }),
            "{}: the projection head follows the log head",
            B::NAME
        );
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for event in &records {
            *counts.entry(event.install_id.clone()).or_default() += 1;
        }
        let rows: BTreeMap<String, u64> = store
            .projection_scan("count", "")
            .unwrap()
            .into_iter()
            .map(|(key, value)| (key, String::from_utf8(value).unwrap().parse().unwrap()))
            .collect();
        assert_eq!(rows, counts, "{}: projection rows after SIGKILL", B::NAME);
    }

    for &seq in acked {
        let event = records.get(seq as usize - 1).unwrap_or_else(|| {
            panic!(
                "{}: acknowledged record {seq} is missing; the log has {} records",
                B::NAME,
                records.len()
            )
        });
        assert_eq!(
            payload_u64(event, "index") + 1,
            payload_u64(event, "batch_size"),
            "acknowledged record {seq} must be the last event of its batch"
        );
    }
}

fn acknowledged_batches_survive_sigkill<B: LogBackend>() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = B::log_path(dir.path());
    let mut acked = BTreeSet::new();
    for round in 1..=ROUNDS {
        let mut writer = AckedWriter::spawn(&path, B::NAME);
        writer.wait_for_acks(ACKS_PER_ROUND, ROUND_TIMEOUT);
        std::thread::sleep(random_kill_delay());
        let round_acks = writer.kill();
        assert!(round_acks.len() >= ACKS_PER_ROUND);
        assert!(
            round_acks.windows(2).all(|pair| pair[0] < pair[1]),
            "acknowledgements go up"
        );
        if let Some(previous) = acked.last() {
            assert!(
                round_acks[0] > *previous,
                "round {round} reused sequence numbers: first ack {} after {previous}",
                round_acks[0]
            );
        }
        acked.extend(round_acks);
        check_log_after_kill::<B>(&path, &acked, round);
    }
}

#[test]
fn acknowledged_batches_survive_sigkill_on_redb() {
    acknowledged_batches_survive_sigkill::<crate::support::Redb>();
}

#[cfg(feature = "sled")]
#[test]
fn acknowledged_batches_survive_sigkill_on_sled() {
    acknowledged_batches_survive_sigkill::<crate::support::Sled>();
}
