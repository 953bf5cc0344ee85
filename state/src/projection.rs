//! Projections: tables derived from the event log (indexes, per-stream summaries) that readers use
//! instead of folding every event. `state` stores them as opaque rows — a table name, a text key and
//! bytes — and never interprets them: a [`Projector`] supplied by the caller (the engine) says how
//! one event changes the rows. Rows are written in the same write transaction as the events that
//! produce them, and a [`ProjectionHead`] beside them records the log head (and projector version)
//! they reflect, so a reader can tell a current projection from a stale one (a log written by an
//! older windlass, or by a backend that keeps none) and fall back to the log, and a writer can
//! rebuild them from the log.

use crate::chain::RecordHash;
use crate::event::StoredEvent;
use crate::store::StoreError;

/// Largest projection row the log accepts. Rows are summaries and index entries, never payloads.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// Read and write access to projection rows inside one write transaction. Reads see the writes
/// made earlier in the same transaction.
pub trait ProjectionRows {
    /// The row `key` of `table`, if any.
    fn get(&mut self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets the row `key` of `table`.
    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

/// How events change the projection rows. Implementations must be pure functions of the event and
/// the rows (a backend may run them again when it retries a transaction) and must ignore events they
/// cannot read rather than fail: a projection never blocks an append.
pub trait Projector: Send + Sync {
    /// The rows' format version. Rows written under another version are stale and rebuilt.
    fn version(&self) -> u32;
    /// Applies one event (at its current schema version) to the rows.
    fn apply(&self, event: &StoredEvent, rows: &mut dyn ProjectionRows) -> Result<(), StoreError>;
}

/// What the projection rows reflect: a projector version and the log head after the last event
/// applied (global sequence 0 and the genesis hash for an empty log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionHead {
    /// [`Projector::version`] of the rows.
    pub version: u32,
    /// Global sequence of the last event applied.
    pub seq: u64,
    /// Hash of that record.
    pub hash: RecordHash,
}

impl ProjectionHead {
    /// Its stored form: version, sequence (both big endian) and hash.
    pub(crate) fn to_bytes(self) -> [u8; 44] {
        let mut bytes = [0u8; 44];
        bytes[..4].copy_from_slice(&self.version.to_be_bytes());
        bytes[4..12].copy_from_slice(&self.seq.to_be_bytes());
        bytes[12..].copy_from_slice(&self.hash.0);
        bytes
    }

    /// Reads the stored form; `None` when it has the wrong size.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<ProjectionHead> {
        if bytes.len() != 44 {
            return None;
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(&bytes[..4]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[4..12]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[12..]);
        Some(ProjectionHead {
            version: u32::from_be_bytes(version),
            seq: u64::from_be_bytes(seq),
            hash: RecordHash(hash),
        })
    }
}

/// A projector as a backend runs it: the version to record and the function applying one raw
/// stored event (the [`crate::EventLog`] upcasts it first).
pub struct Indexer<'a> {
    /// The rows' format version.
    pub version: u32,
    /// Applies one stored event.
    pub apply: &'a (dyn Fn(&StoredEvent, &mut dyn ProjectionRows) -> Result<(), StoreError> + Sync),
}

/// Checks a row before it is stored.
pub(crate) fn check_row(table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
    if table.is_empty() || table.len() > 64 || key.len() > 1024 || value.len() > MAX_ROW_BYTES {
        return Err(StoreError::Backend(format!(
            "projection row {table}/{key} is out of bounds (table 1 to 64 bytes, key up to 1024, value up to {MAX_ROW_BYTES})"
        )));
    }
    Ok(())
}
