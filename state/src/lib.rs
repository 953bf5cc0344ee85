//! `windlass-state` is the persistence layer: the append-only, hash-chained event log (behind the
//! [`EventStore`] trait, with a redb backend, an optional sled backend, and an in-memory one for
//! runs whose events are thrown away), the content-addressed
//! [`BlobStore`] for file bodies, the schema table that upcasts old event versions on read, and the
//! keyed fingerprints that stand in for credentials, all created so that a killed process never
//! leaves a half-made file behind ([`durable`]). It knows nothing about Kubernetes, stages or
//! the command line; it stores opaque JSON payloads under an event type and a schema version.

pub mod blobs;
pub mod chain;
pub mod chain_checkpoint;
pub mod durable;
pub mod event;
pub mod export;
pub mod fingerprint;
pub mod log;
pub mod memory_store;
pub mod projection;
mod record_encoding;
pub mod redb_store;
pub mod schema;
pub mod secret;
#[cfg(feature = "sled")]
pub mod sled_store;
pub mod state_dir;
pub mod store;

pub use blobs::{BlobCheck, BlobError, BlobId, BlobStore};
pub use chain::{ChainError, ChainReport, RecordHash, verify_chain};
pub use chain_checkpoint::{IncrementalCheck, verify_chain_since_checkpoint};
pub use event::{LazyEvent, NewEvent, StoredEnvelope, StoredEvent};
pub use export::{
    ExportCheck, ExportError, ExportFilter, ExportProblem, ExportSummary, export, verify_export,
};
pub use fingerprint::FingerprintKey;
pub use log::{EventLog, ProjectionStatus};
pub use memory_store::MemoryStore;
pub use projection::{Indexer, ProjectionHead, ProjectionRows, Projector};
pub use schema::{EventPayload, EventSchema, SchemaError, SchemaRegistry, Upcaster};
pub use secret::SecretString;
pub use state_dir::{Backend, StateDir, StateDirError, StateLock, StateView, try_lock_in};
pub use store::{EventStore, RawRecord, StoreError};
