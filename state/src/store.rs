//! The [`EventStore`] trait that every log backend implements, the raw record type used by chain
//! verification, and the shared validation and record-building logic, so that both backends assign
//! sequences, timestamps and hashes in exactly the same way.

use crate::chain::RecordHash;
use crate::event::{ENVELOPE_VERSION, MAX_PAYLOAD_BYTES, NewEvent, StoredEvent};
use crate::projection::{Indexer, ProjectionHead};

/// Errors from an event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O, corruption, lock).
    #[error("event log storage error: {0}")]
    Backend(String),
    /// Another process holds the log in a way that excludes this one.
    #[error("the event log at {path} is in use by another process: {detail}")]
    Locked {
        /// The log file or directory.
        path: String,
        /// What the storage engine said.
        detail: String,
    },
    /// The log was opened read-only (by a read-only command) and cannot be appended to.
    #[error("the event log at {path} was opened read-only")]
    ReadOnly {
        /// The log file or directory.
        path: String,
    },
    /// An event handed to `append` is not acceptable.
    #[error("refusing to record event {event_type:?}: {reason}")]
    InvalidEvent {
        /// The event type that was refused.
        event_type: String,
        /// Why.
        reason: String,
    },
    /// A stored record could not be decoded.
    #[error("stored record {global_seq} is unreadable: {reason}")]
    CorruptRecord {
        /// Global sequence of the record.
        global_seq: u64,
        /// What went wrong.
        reason: String,
    },
}

/// One stored record as raw bytes, for hash-chain verification.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The record's global sequence (the storage key).
    pub global_seq: u64,
    /// The record's exact bytes, a JSON [`StoredEvent`] (decompressed when the log stores it as a
    /// zstd frame): what the hash chain hashes.
    pub bytes: Vec<u8>,
}

/// Most record bytes one [`EventStore::scan`] page holds (past the first record).
pub const SCAN_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// An append-only, hash-chained event log.
///
/// `append` is atomic and durable: when it returns `Ok`, every event of the batch is on disk, and
/// after a crash either the whole batch is there or none of it is.
pub trait EventStore: Send + Sync {
    /// Appends a batch atomically and durably, returning the stored events in order.
    fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<StoredEvent>, StoreError>;
    /// Every record of one install, in install order, as raw bytes.
    fn raw_events_of(&self, install_id: &str) -> Result<Vec<RawRecord>, StoreError>;
    /// Every event of one install, in install order, exactly as stored (not upcast).
    fn events_of(&self, install_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        decode_records(&self.raw_events_of(install_id)?)
    }
    /// Every install id, in the order of each install's first event.
    fn install_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Up to `limit` raw records starting at global sequence `from`; fewer (at least one) once
    /// they hold [`SCAN_PAGE_BYTES`], so that a page of records that decompress to their largest
    /// size stays bounded. Callers page on from the last record returned.
    fn scan(&self, from: u64, limit: usize) -> Result<Vec<RawRecord>, StoreError>;
    /// The last record's global sequence and hash as the backend keeps them beside the records
    /// (`None` for an empty log); chain verification checks the records against it.
    fn head(&self) -> Result<Option<(u64, RecordHash)>, StoreError>;
    /// The backend's name, for messages.
    fn backend_name(&self) -> &'static str;

    /// The chain checkpoint last saved ([`crate::verify_chain_since_checkpoint`]); `None` when
    /// none was, or the backend keeps none (then every check walks the whole log).
    fn chain_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    /// Saves a chain checkpoint in place of the last one.
    fn save_chain_checkpoint(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let _ = bytes;
        Ok(())
    }

    /// Whether this backend keeps projections. One that does not (sled) never has a current
    /// [`ProjectionHead`], so readers always fall back to the log.
    fn keeps_projections(&self) -> bool {
        false
    }
    /// [`EventStore::append`], also applying `indexer` to each stored event in the same write
    /// transaction. The rows are only touched when they were current before the batch (their head
    /// equals the log head); stale rows stay stale until [`EventStore::rebuild_projections`].
    fn append_indexed(
        &self,
        batch: Vec<NewEvent>,
        indexer: &Indexer<'_>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let _ = indexer;
        self.append(batch)
    }
    /// What the projection rows reflect (`None`: there are none).
    fn projection_head(&self) -> Result<Option<ProjectionHead>, StoreError> {
        Ok(None)
    }
    /// The row `key` of projection `table`.
    fn projection_get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (table, key);
        Ok(None)
    }
    /// Every row of projection `table` whose key starts with `prefix`, in key order.
    fn projection_scan(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let _ = (table, prefix);
        Ok(Vec::new())
    }
    /// Drops every projection row and derives them again from the whole log with `indexer`, in
    /// one write transaction; returns the number of records read. Records that do not decode are
    /// skipped (they are `verify_chain`'s to report).
    fn rebuild_projections(&self, indexer: &Indexer<'_>) -> Result<u64, StoreError> {
        let _ = indexer;
        Err(StoreError::Backend(format!(
            "the {} backend keeps no indexes",
            self.backend_name()
        )))
    }
}

/// Checks an event before it is recorded.
pub(crate) fn validate(event: &NewEvent) -> Result<(), StoreError> {
    let refuse = |reason: &str| StoreError::InvalidEvent {
        event_type: event.event_type.clone(),
        reason: reason.to_string(),
    };
    if event.event_type.is_empty() {
        return Err(refuse("empty event type"));
    }
    if event.schema_version == 0 {
        return Err(refuse("schema versions start at 1"));
    }
    if !is_valid_install_id(&event.install_id) {
        return Err(refuse(
            "install id must be 1 to 64 characters of [A-Za-z0-9._-]",
        ));
    }
    Ok(())
}

/// Whether a string is acceptable as an install id (also used as a directory name).
pub fn is_valid_install_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Builds the stored form of one event and its serialized bytes and hash. Every event of one
/// batch carries the same `recorded_at`: the batch is committed as one.
pub(crate) fn build_record(
    event: NewEvent,
    global_seq: u64,
    install_seq: u64,
    prev_hash: &RecordHash,
    recorded_at: &str,
) -> Result<(StoredEvent, Vec<u8>, RecordHash), StoreError> {
    let event_type = event.event_type.clone();
    let stored = StoredEvent {
        envelope_version: ENVELOPE_VERSION,
        global_seq,
        install_id: event.install_id,
        install_seq,
        recorded_at: recorded_at.to_string(),
        actor: event.actor,
        event_type: event.event_type,
        schema_version: event.schema_version,
        payload: event.payload,
        prev_hash: prev_hash.to_hex(),
    };
    let bytes = serde_json::to_vec(&stored).map_err(|error| StoreError::InvalidEvent {
        event_type: event_type.clone(),
        reason: error.to_string(),
    })?;
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(StoreError::InvalidEvent {
            event_type,
            reason: format!(
                "record is {} bytes, the limit is {MAX_PAYLOAD_BYTES}",
                bytes.len()
            ),
        });
    }
    let hash = RecordHash::of(&bytes);
    Ok((stored, bytes, hash))
}

/// Records at least this large are decoded on threads of their own by [`decode_records`].
const DECODED_APART_FROM_BYTES: usize = 256 * 1024;

/// Decodes `raws` in order. The large ones (a big release's facts run to megabytes of JSON) are
/// decoded on threads of their own while this one decodes the rest.
pub(crate) fn decode_records(raws: &[RawRecord]) -> Result<Vec<StoredEvent>, StoreError> {
    let apart = |raw: &RawRecord| raw.bytes.len() >= DECODED_APART_FROM_BYTES;
    if raws.len() < 2 || !raws.iter().any(apart) {
        return raws
            .iter()
            .map(|raw| decode_record(raw.global_seq, &raw.bytes))
            .collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = raws
            .iter()
            .map(|raw| {
                apart(raw).then(|| scope.spawn(move || decode_record(raw.global_seq, &raw.bytes)))
            })
            .collect();
        let mut decoded: Vec<Option<Result<StoredEvent, StoreError>>> = raws
            .iter()
            .map(|raw| (!apart(raw)).then(|| decode_record(raw.global_seq, &raw.bytes)))
            .collect();
        for (slot, handle) in decoded.iter_mut().zip(handles) {
            if let Some(handle) = handle {
                *slot = Some(
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
        }
        decoded
            .into_iter()
            .map(|event| event.expect("every record decoded, here or apart"))
            .collect()
    })
}

/// Decodes a stored record.
pub(crate) fn decode_record(global_seq: u64, bytes: &[u8]) -> Result<StoredEvent, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::CorruptRecord {
        global_seq,
        reason: error.to_string(),
    })
}
