//! An event log held in memory, for a run whose events are thrown away: a replay's scratch run.
//! It assigns sequences, timestamps and hashes with the same shared code as the stored backends
//! (`store::build_record`), so its events are exactly what a stored log would hold, but nothing
//! survives the process: it never claims the durability [`EventStore::append`] promises of a
//! stored log, and it must never stand in for one.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::chain::RecordHash;
use crate::event::{NewEvent, StoredEvent, now_rfc3339};
use crate::store::{EventStore, RawRecord, StoreError, build_record, validate};

/// The records and indexes, behind one lock (appends are batches, as in a stored log).
#[derive(Default)]
struct Records {
    /// Every record's bytes, in global order (global sequence `index + 1`).
    bytes: Vec<Vec<u8>>,
    /// Each install's global sequences, in install order.
    by_install: HashMap<String, Vec<u64>>,
    /// Install ids in the order of their first event.
    installs: Vec<String>,
    /// The last record's hash.
    head: Option<RecordHash>,
    /// The chain checkpoint saved last.
    chain_checkpoint: Option<Vec<u8>>,
}

/// An [`EventStore`] in memory (see the module documentation).
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
}

impl MemoryStore {
    /// An empty log.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Records>, StoreError> {
        self.records
            .lock()
            .map_err(|_| StoreError::Backend("the in-memory log was poisoned by a panic".into()))
    }
}

impl EventStore for MemoryStore {
    fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<StoredEvent>, StoreError> {
        for event in &batch {
            validate(event)?;
        }
        // As in the stored logs, an empty batch records nothing (not even the head).
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut records = self.lock()?;
        let recorded_at = now_rfc3339();
        let mut prev_hash = records.head.unwrap_or(RecordHash::GENESIS);
        let mut built = Vec::with_capacity(batch.len());
        let mut next_install_seq: HashMap<String, u64> = HashMap::new();
        // Built in full before anything is kept, so that a refused event leaves the log as it was.
        for (offset, event) in batch.into_iter().enumerate() {
            let global_seq = (records.bytes.len() + offset + 1) as u64;
            let install_seq = next_install_seq
                .entry(event.install_id.clone())
                .or_insert_with(|| {
                    records
                        .by_install
                        .get(&event.install_id)
                        .map_or(0, |seqs| seqs.len() as u64)
                });
            *install_seq += 1;
            let (stored, bytes, hash) =
                build_record(event, global_seq, *install_seq, &prev_hash, &recorded_at)?;
            prev_hash = hash;
            built.push((stored, bytes));
        }
        let mut stored_events = Vec::with_capacity(built.len());
        for (stored, bytes) in built {
            if stored.install_seq == 1 {
                records.installs.push(stored.install_id.clone());
            }
            records
                .by_install
                .entry(stored.install_id.clone())
                .or_default()
                .push(stored.global_seq);
            records.bytes.push(bytes);
            stored_events.push(stored);
        }
        records.head = Some(prev_hash);
        Ok(stored_events)
    }

    fn raw_events_of(&self, install_id: &str) -> Result<Vec<RawRecord>, StoreError> {
        let records = self.lock()?;
        Ok(records
            .by_install
            .get(install_id)
            .into_iter()
            .flatten()
            .map(|&global_seq| RawRecord {
                global_seq,
                bytes: records.bytes[global_seq as usize - 1].clone(),
            })
            .collect())
    }

    fn install_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock()?.installs.clone())
    }

    fn scan(&self, from: u64, limit: usize) -> Result<Vec<RawRecord>, StoreError> {
        let records = self.lock()?;
        let first = from.max(1);
        Ok((first..)
            .take(limit)
            .map_while(|global_seq| {
                records
                    .bytes
                    .get(global_seq as usize - 1)
                    .map(|bytes| RawRecord {
                        global_seq,
                        bytes: bytes.clone(),
                    })
            })
            .collect())
    }

    fn head(&self) -> Result<Option<(u64, RecordHash)>, StoreError> {
        let records = self.lock()?;
        Ok(records.head.map(|hash| (records.bytes.len() as u64, hash)))
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn chain_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()?.chain_checkpoint.clone())
    }

    fn save_chain_checkpoint(&self, bytes: &[u8]) -> Result<(), StoreError> {
        self.lock()?.chain_checkpoint = Some(bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::verify_chain;

    fn event(install: &str, event_type: &str, step: u64) -> NewEvent {
        NewEvent::new(install, "test", event_type, 1, json!({ "step": step }))
    }

    #[test]
    fn an_empty_batch_records_nothing_not_even_a_head() {
        let store = MemoryStore::new();
        assert!(store.append(Vec::new()).expect("empty batch").is_empty());
        assert_eq!(store.head().expect("head"), None);
        assert!(store.install_ids().expect("ids").is_empty());
    }

    #[test]
    fn batches_read_back_in_order_with_gap_free_sequences_and_a_good_chain() {
        let store = MemoryStore::new();
        store
            .append(vec![event("a", "One", 1), event("b", "Two", 2)])
            .expect("first batch");
        let second = store
            .append(vec![event("a", "Three", 3)])
            .expect("second batch");
        assert_eq!((second[0].global_seq, second[0].install_seq), (3, 2));
        let of_a = store.events_of("a").expect("events of a");
        let seqs: Vec<(u64, u64)> = of_a.iter().map(|e| (e.global_seq, e.install_seq)).collect();
        assert_eq!(seqs, vec![(1, 1), (3, 2)]);
        assert_eq!(of_a[1].payload, json!({ "step": 3 }));
        assert_eq!(store.install_ids().expect("ids"), vec!["a", "b"]);
        let pages: Vec<u64> = store
            .scan(2, 5)
            .expect("scan")
            .iter()
            .map(|record| record.global_seq)
            .collect();
        assert_eq!(pages, vec![2, 3]);
        assert_eq!(store.head().expect("head").map(|(seq, _)| seq), Some(3));
        let report = verify_chain(&store).expect("the chain of an in-memory log holds");
        assert_eq!(report.records, 3);
    }

    #[test]
    fn a_refused_event_records_nothing_of_its_batch() {
        let store = MemoryStore::new();
        store
            .append(vec![event("a", "One", 1)])
            .expect("first batch");
        let refused = store.append(vec![event("a", "Two", 2), event("a", "", 3)]);
        assert!(
            matches!(refused, Err(StoreError::InvalidEvent { .. })),
            "{refused:?}"
        );
        assert_eq!(store.events_of("a").expect("events").len(), 1);
        assert_eq!(store.head().expect("head").map(|(seq, _)| seq), Some(1));
    }
}
