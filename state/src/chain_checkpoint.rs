//! Checking the hash chain from where the last check stopped. Before an install appends, the
//! engine must know the log is sound; walking the whole log each time made every command cost in
//! proportion to everything ever recorded. [`verify_chain_since_checkpoint`] checks that the record
//! where the previous check stopped still hashes as it did, walks only the records after it, and
//! saves where it stopped (a `ChainCheckpoint`, beside the log in the same store). Older records
//! are not read again: damage to them is found by `windlass verify-log`, which walks everything
//! ([`crate::verify_chain`]). Without a usable checkpoint (none saved, it does not decode, the
//! log is shorter than it, or its record changed), the whole log is walked, as before.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::chain::{ChainError, ChainPoint, RecordHash, walk_chain};
use crate::store::EventStore;

/// Where a chain check stopped, as saved (JSON, versioned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ChainCheckpoint {
    /// The format's version (1).
    version: u32,
    /// The last record checked.
    global_seq: u64,
    /// Its hash, lowercase hex.
    hash: String,
    /// Each install's newest install sequence up to it.
    install_heads: BTreeMap<String, u64>,
}

const CHECKPOINT_VERSION: u32 = 1;

/// What [`verify_chain_since_checkpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalCheck {
    /// Records walked.
    pub records: u64,
    /// Whether it started from a saved checkpoint (else it walked the whole log).
    pub from_checkpoint: bool,
}

/// Checks the records appended since the last check (the whole log when there is no usable
/// checkpoint), then saves where it stopped. A checkpoint that cannot be saved is only logged:
/// the next check walks more.
pub fn verify_chain_since_checkpoint(
    store: &dyn EventStore,
) -> Result<IncrementalCheck, ChainError> {
    let head = store.head()?.unwrap_or((0, RecordHash::GENESIS));
    let start = usable_checkpoint(store, head.0);
    let from_checkpoint = start.is_some();
    let from = start.unwrap_or_else(ChainPoint::genesis);
    let checked_before = from.global_seq;
    let (report, reached) = walk_chain(store, from, head)?;
    if reached.global_seq > checked_before {
        let saved = ChainCheckpoint {
            version: CHECKPOINT_VERSION,
            global_seq: reached.global_seq,
            hash: reached.hash.to_hex(),
            install_heads: reached.install_heads.into_iter().collect(),
        };
        let bytes = serde_json::to_vec(&saved).expect("a checkpoint serializes");
        if let Err(error) = store.save_chain_checkpoint(&bytes) {
            tracing::warn!(%error, "the chain checkpoint could not be saved; the next check walks more of the log");
        }
    }
    Ok(IncrementalCheck {
        records: report.records,
        from_checkpoint,
    })
}

/// The saved checkpoint as a point to walk on from, when it is one: it decodes, lies within the
/// log (`head_seq`), and its record still hashes as it did.
fn usable_checkpoint(store: &dyn EventStore, head_seq: u64) -> Option<ChainPoint> {
    let bytes = store.chain_checkpoint().ok()??;
    let saved: ChainCheckpoint = serde_json::from_slice(&bytes).ok()?;
    if saved.version != CHECKPOINT_VERSION || saved.global_seq == 0 || saved.global_seq > head_seq {
        return None;
    }
    let record = store.scan(saved.global_seq, 1).ok()?.into_iter().next()?;
    let hash = RecordHash::of(&record.bytes);
    if record.global_seq != saved.global_seq || hash.to_hex() != saved.hash {
        return None;
    }
    Some(ChainPoint {
        global_seq: saved.global_seq,
        hash,
        install_heads: saved.install_heads.into_iter().collect::<HashMap<_, _>>(),
    })
}
