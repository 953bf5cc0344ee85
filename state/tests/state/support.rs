//! Shared test plumbing: the [`LogBackend`] trait that lets one generic test body run against every
//! event-log backend (how to name its log, open it, and reach under it to tamper with a stored
//! record with the store closed), plus small helpers for building events and reading a whole log.
//! Tampering goes through the storage engine's own API (redb's `events` table, sled's `events`
//! tree), exactly as someone editing the file with a stock tool would.

use std::path::{Path, PathBuf};

use redb::ReadableDatabase;

use windlass_state::redb_store::RedbStore;
use windlass_state::{EventStore, NewEvent, StoredEvent};

/// One event-log backend, as the generic tests see it.
pub trait LogBackend {
    /// The store type.
    type Store: EventStore + 'static;
    /// The name the `acked_writer` example takes on its command line.
    const NAME: &'static str;
    /// Where this backend's log lives inside a scratch directory.
    fn log_path(dir: &Path) -> PathBuf;
    /// Opens (creating if needed) the log, panicking with the store error on failure.
    fn open(path: &Path) -> Self::Store;
    /// With every store handle on `path` dropped, replaces the stored bytes of record
    /// `global_seq` (`Some`) or deletes the record (`None`), bypassing the store.
    fn rewrite_record(path: &Path, global_seq: u64, bytes: Option<&[u8]>);
    /// With every store handle on `path` dropped, the bytes stored for record `global_seq`,
    /// read past the store.
    fn stored_bytes(path: &Path, global_seq: u64) -> Vec<u8>;
}

/// The default redb backend.
pub struct Redb;

impl LogBackend for Redb {
    type Store = RedbStore;
    const NAME: &'static str = "redb";

    fn log_path(dir: &Path) -> PathBuf {
        dir.join("events.redb")
    }

    fn open(path: &Path) -> RedbStore {
        RedbStore::open(path)
            .unwrap_or_else(|error| panic!("opening redb log {}: {error}", path.display()))
    }

    fn rewrite_record(path: &Path, global_seq: u64, bytes: Option<&[u8]>) {
        const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
        let db = redb::Database::create(path).expect("open the log file with plain redb");
        let txn = db.begin_write().expect("begin a redb write transaction");
        {
            let mut events = txn.open_table(EVENTS).expect("open the events table");
            match bytes {
                Some(bytes) => {
                    events.insert(global_seq, bytes).expect("overwrite record");
                }
                None => {
                    events.remove(global_seq).expect("delete record");
                }
            }
        }
        txn.commit().expect("commit the tampering");
    }

    fn stored_bytes(path: &Path, global_seq: u64) -> Vec<u8> {
        const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
        let db = redb::Database::create(path).expect("open the log file with plain redb");
        let txn = db.begin_read().expect("begin a redb read transaction");
        let events = txn.open_table(EVENTS).expect("open the events table");
        let stored = events.get(global_seq).expect("read the record");
        stored.expect("the record is stored").value().to_vec()
    }
}

/// The optional sled backend.
#[cfg(feature = "sled")]
pub struct Sled;

#[cfg(feature = "sled")]
impl LogBackend for Sled {
    type Store = windlass_state::sled_store::SledStore;
    const NAME: &'static str = "sled";

    fn log_path(dir: &Path) -> PathBuf {
        dir.join("events.sled")
    }

    fn open(path: &Path) -> Self::Store {
        wait_for_sled_lock(&format!("opening sled log {}", path.display()), || {
            windlass_state::sled_store::SledStore::open(path)
        })
    }

    fn rewrite_record(path: &Path, global_seq: u64, bytes: Option<&[u8]>) {
        let db = wait_for_sled_lock("opening the log directory with plain sled", || {
            sled::open(path)
        });
        let events = db.open_tree("events").expect("open the events tree");
        let key = global_seq.to_be_bytes();
        match bytes {
            Some(bytes) => {
                events.insert(key, bytes).expect("overwrite record");
            }
            None => {
                events.remove(key).expect("delete record");
            }
        }
        db.flush().expect("flush the tampering");
    }

    fn stored_bytes(path: &Path, global_seq: u64) -> Vec<u8> {
        let db = wait_for_sled_lock("opening the log directory with plain sled", || {
            sled::open(path)
        });
        let events = db.open_tree("events").expect("open the events tree");
        let stored = events
            .get(global_seq.to_be_bytes())
            .expect("read the record");
        stored.expect("the record is stored").to_vec()
    }
}

/// Runs `open` until it stops failing on sled's directory lock, for up to five seconds. Dropping a
/// sled database does not release its lock at once: a background flusher thread holds it until
/// it exits (spacejam/sled#1289, "please do not rapidly open and close the same database"), so a
/// reopen straight after a drop in the same process can fail with `could not acquire lock`.
#[cfg(feature = "sled")]
pub fn wait_for_sled_lock<T, E: std::fmt::Display>(
    what: &str,
    mut open: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match open() {
            Ok(opened) => return opened,
            Err(error)
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("{what}: {error}"),
        }
    }
}

/// A valid event with the given install, type and payload (actor `tester@test`, version 1).
pub fn event(install_id: &str, event_type: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent::new(install_id, "tester@test", event_type, 1, payload)
}

/// Every record of the log, in global order, decoded as stored.
pub fn read_all(store: &dyn EventStore) -> Vec<StoredEvent> {
    store
        .scan(1, usize::MAX)
        .expect("scan the whole log")
        .into_iter()
        .map(|raw| {
            serde_json::from_slice(&raw.bytes).unwrap_or_else(|error| {
                panic!("record {} does not decode: {error}", raw.global_seq)
            })
        })
        .collect()
}

/// The exact stored bytes of one record.
pub fn raw_bytes(store: &dyn EventStore, global_seq: u64) -> Vec<u8> {
    let mut page = store.scan(global_seq, 1).expect("scan one record");
    let raw = page.pop().expect("the record exists");
    assert_eq!(
        raw.global_seq, global_seq,
        "scan started at the wrong record"
    );
    raw.bytes
}
