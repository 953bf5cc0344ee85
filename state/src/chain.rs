//! The hash chain over the log: every record stores the blake3 hash of the previous record's exact
//! bytes, and the log keeps the last record's sequence and hash as its head, so editing, removing
//! or reordering any stored record, the last one included, is detectable. [`verify_chain`] walks
//! the whole log and reports the first break. An edited record `k` is reported at `k + 1`, whose
//! `prev_hash` no longer matches (or at the head, for the last record).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::store::{EventStore, StoreError};

/// A blake3 hash of one stored record's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordHash(pub [u8; 32]);

impl RecordHash {
    /// The `prev_hash` of the first record.
    pub const GENESIS: RecordHash = RecordHash([0; 32]);

    /// Hashes a record's bytes.
    pub fn of(bytes: &[u8]) -> RecordHash {
        RecordHash(*blake3::hash(bytes).as_bytes())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Debug for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordHash({})", self.to_hex())
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Number of records checked.
    pub records: u64,
    /// Number of distinct installs.
    pub installs: usize,
    /// Hex hash of the last record (the genesis hash for an empty log).
    pub head: String,
}

/// A break in the chain or in the sequence numbering.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record's `prev_hash` is not the hash of the record before it.
    #[error(
        "hash chain broken at record {global_seq}: it names {found} as previous hash, but the previous record hashes to {expected}"
    )]
    HashMismatch {
        /// Where the break is.
        global_seq: u64,
        /// The previous hash the record stores.
        found: String,
        /// The actual hash of the previous record.
        expected: String,
    },
    /// Global sequence numbers are not 1, 2, 3, ...
    #[error("record {found} follows record {previous}: the log has a gap or is reordered")]
    GlobalGap {
        /// The sequence before.
        previous: u64,
        /// The sequence found.
        found: u64,
    },
    /// A record's own `global_seq` field disagrees with its storage key.
    #[error("record stored at {key} says it is record {field}")]
    KeyMismatch {
        /// Storage key.
        key: u64,
        /// Field value.
        field: u64,
    },
    /// The records end somewhere other than where the log's head says (the last record was
    /// removed, edited, or records were appended behind the log's back).
    #[error(
        "the log's head names record {head_seq} with hash {head_hash}, but the records end at {last_seq} with hash {last_hash}"
    )]
    HeadMismatch {
        /// Sequence the head names.
        head_seq: u64,
        /// Hash the head names.
        head_hash: String,
        /// Last record found.
        last_seq: u64,
        /// Its hash.
        last_hash: String,
    },
    /// Per-install sequence numbers are not 1, 2, 3, ...
    #[error("record {global_seq}: install {install_id}: event {found} follows event {previous}")]
    InstallGap {
        /// The record where the gap shows.
        global_seq: u64,
        /// The install.
        install_id: String,
        /// The sequence before.
        previous: u64,
        /// The sequence found.
        found: u64,
    },
}

impl ChainError {
    /// The sequence of the first record the break concerns, when there is one: the record whose
    /// `prev_hash`, key or numbering is wrong, or the last record when the head disagrees.
    pub fn global_seq(&self) -> Option<u64> {
        match self {
            ChainError::Store(StoreError::CorruptRecord { global_seq, .. }) => Some(*global_seq),
            ChainError::Store(_) => None,
            ChainError::HashMismatch { global_seq, .. } => Some(*global_seq),
            ChainError::GlobalGap { found, .. } => Some(*found),
            ChainError::KeyMismatch { key, .. } => Some(*key),
            ChainError::HeadMismatch { last_seq, .. } => Some(*last_seq),
            ChainError::InstallGap { global_seq, .. } => Some(*global_seq),
        }
    }
}

/// A stored record's envelope, read with the same field rules as
/// [`StoredEvent`](crate::StoredEvent) but without building the payload: the chain needs four
/// fields, and building every payload as a JSON tree was most of the cost of verifying a large log.
/// The payload is still parsed, so a record that is not valid JSON is reported as corrupt exactly
/// as a full decode would.
#[derive(Deserialize)]
#[allow(dead_code)] // Some fields are decoded only so that their presence and type are checked.
struct RecordEnvelope<'a> {
    envelope_version: u32,
    global_seq: u64,
    #[serde(borrow)]
    install_id: Cow<'a, str>,
    install_seq: u64,
    recorded_at: IgnoredAny,
    actor: IgnoredAny,
    event_type: IgnoredAny,
    schema_version: u32,
    payload: IgnoredAny,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
}

impl<'a> RecordEnvelope<'a> {
    fn decode(global_seq: u64, bytes: &'a [u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|error| StoreError::CorruptRecord {
            global_seq,
            reason: error.to_string(),
        })
    }
}

/// Walks the whole log and checks the hash chain and both sequence numberings.
pub fn verify_chain(store: &dyn EventStore) -> Result<ChainReport, ChainError> {
    let head = store.head()?.unwrap_or((0, RecordHash::GENESIS));
    walk_chain(store, ChainPoint::genesis(), head).map(|(report, _)| report)
}

/// A point of the chain: the record at `global_seq` (0: before the first) hashes to `hash`, and
/// each install's newest record up to it has the install sequence in `install_heads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainPoint {
    pub(crate) global_seq: u64,
    pub(crate) hash: RecordHash,
    pub(crate) install_heads: HashMap<String, u64>,
}

impl ChainPoint {
    /// Before the first record.
    pub(crate) fn genesis() -> ChainPoint {
        ChainPoint {
            global_seq: 0,
            hash: RecordHash::GENESIS,
            install_heads: HashMap::new(),
        }
    }
}

/// Checks the records after `from` up to `head` (the log's head, read before: records appended
/// while verifying, by another process, lie beyond it and are left for the next verification);
/// answers what it saw (`records` counts those checked) and the point it reached.
pub(crate) fn walk_chain(
    store: &dyn EventStore,
    from: ChainPoint,
    head: (u64, RecordHash),
) -> Result<(ChainReport, ChainPoint), ChainError> {
    // Records are read a page at a time; a record can be up to `MAX_PAYLOAD_BYTES`, and the page
    // is kept small so that a log of large events is never held in memory whole.
    const PAGE: usize = 32;
    let ChainPoint {
        global_seq: mut previous_global,
        hash: mut expected_prev,
        mut install_heads,
    } = from;
    let mut records = 0u64;
    let (head_seq, head_hash) = head;
    while previous_global < head_seq {
        let page = store.scan(previous_global + 1, PAGE)?;
        if page.is_empty() {
            break;
        }
        for raw in page
            .into_iter()
            .take_while(|raw| raw.global_seq <= head_seq)
        {
            let event = RecordEnvelope::decode(raw.global_seq, &raw.bytes)?;
            if raw.global_seq != previous_global + 1 {
                return Err(ChainError::GlobalGap {
                    previous: previous_global,
                    found: raw.global_seq,
                });
            }
            if event.global_seq != raw.global_seq {
                return Err(ChainError::KeyMismatch {
                    key: raw.global_seq,
                    field: event.global_seq,
                });
            }
            if event.prev_hash != expected_prev.to_hex() {
                return Err(ChainError::HashMismatch {
                    global_seq: raw.global_seq,
                    found: event.prev_hash.into_owned(),
                    expected: expected_prev.to_hex(),
                });
            }
            let head = match install_heads.get_mut(event.install_id.as_ref()) {
                Some(head) => head,
                None => install_heads
                    .entry(event.install_id.clone().into_owned())
                    .or_insert(0),
            };
            if event.install_seq != *head + 1 {
                return Err(ChainError::InstallGap {
                    global_seq: raw.global_seq,
                    install_id: event.install_id.into_owned(),
                    previous: *head,
                    found: event.install_seq,
                });
            }
            *head = event.install_seq;
            expected_prev = RecordHash::of(&raw.bytes);
            previous_global = raw.global_seq;
            records += 1;
        }
    }
    if head_seq != previous_global || head_hash != expected_prev {
        return Err(ChainError::HeadMismatch {
            head_seq,
            head_hash: head_hash.to_hex(),
            last_seq: previous_global,
            last_hash: expected_prev.to_hex(),
        });
    }
    Ok((
        ChainReport {
            records,
            installs: install_heads.len(),
            head: expected_prev.to_hex(),
        },
        ChainPoint {
            global_seq: previous_global,
            hash: expected_prev,
            install_heads,
        },
    ))
}
