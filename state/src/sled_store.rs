//! The optional sled [`EventStore`] backend (cargo feature `sled`). sled fsyncs on its own only
//! every 500 ms, so every append flushes before it returns; without that a killed process loses
//! acknowledged events. sled allows one process at a time, so with this backend the CLI cannot read
//! the log while an install is writing it; redb is the default for that reason.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::chain::RecordHash;
use crate::event::{NewEvent, StoredEvent, now_rfc3339};
use crate::record_encoding::{record_of, stored_form};
use crate::store::{EventStore, RawRecord, SCAN_PAGE_BYTES, StoreError, build_record, validate};

const HEAD_KEY: &[u8] = b"head";

/// The sled-backed event log.
pub struct SledStore {
    db: sled::Db,
    /// global sequence (big endian) → record bytes
    events: sled::Tree,
    /// install id ++ 0x00 ++ install sequence (big endian) → global sequence (big endian)
    by_install: sled::Tree,
    /// install id → first global sequence ++ last install sequence (both big endian)
    installs: sled::Tree,
    /// "head" → last global sequence ++ its record hash
    meta: sled::Tree,
}

fn backend_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(buf)
}

fn install_key(install_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(install_id.len() + 9);
    key.extend_from_slice(install_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl SledStore {
    /// Opens (creating if needed) the log directory at `path`.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        let db = sled::open(path).map_err(|error| match error {
            // sled 0.34 reports a held lock as an `Other` I/O error whose message says so.
            sled::Error::Io(ref io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked {
                    path: path.display().to_string(),
                    detail: error.to_string(),
                }
            }
            other => backend_error(format!("{}: {other}", path.display())),
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend_error);
        Ok(SledStore {
            events: tree("events")?,
            by_install: tree("by_install")?,
            installs: tree("installs")?,
            meta: tree("meta")?,
            db,
        })
    }
}

impl EventStore for SledStore {
    fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<StoredEvent>, StoreError> {
        for event in &batch {
            validate(event)?;
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let recorded_at = now_rfc3339();
        let result = (&self.events, &self.by_install, &self.installs, &self.meta).transaction(
            |(events, by_install, installs, meta)| {
                let (mut last_global, mut prev_hash) = match meta.get(HEAD_KEY)? {
                    None => (0, RecordHash::GENESIS),
                    Some(value) => {
                        let mut hash = [0u8; 32];
                        hash.copy_from_slice(&value[8..40]);
                        (be_u64(&value[..8]), RecordHash(hash))
                    }
                };
                let mut stored_events = Vec::with_capacity(batch.len());
                for event in batch.iter().cloned() {
                    let install_id = event.install_id.clone();
                    let (first_global, last_seq) = match installs.get(install_id.as_bytes())? {
                        None => (last_global + 1, 0),
                        Some(value) => (be_u64(&value[..8]), be_u64(&value[8..16])),
                    };
                    let global_seq = last_global + 1;
                    let install_seq = last_seq + 1;
                    let (stored, bytes, hash) =
                        build_record(event, global_seq, install_seq, &prev_hash, &recorded_at)
                            .map_err(ConflictableTransactionError::Abort)?;
                    events.insert(&global_seq.to_be_bytes(), stored_form(&bytes).as_ref())?;
                    by_install.insert(
                        install_key(&install_id, install_seq),
                        &global_seq.to_be_bytes(),
                    )?;
                    let mut install_value = [0u8; 16];
                    install_value[..8].copy_from_slice(&first_global.to_be_bytes());
                    install_value[8..].copy_from_slice(&install_seq.to_be_bytes());
                    installs.insert(install_id.as_bytes(), install_value.as_slice())?;
                    last_global = global_seq;
                    prev_hash = hash;
                    stored_events.push(stored);
                }
                let mut head = [0u8; 40];
                head[..8].copy_from_slice(&last_global.to_be_bytes());
                head[8..].copy_from_slice(&prev_hash.0);
                meta.insert(HEAD_KEY, head.as_slice())?;
                Ok(stored_events)
            },
        );
        let stored = match result {
            Ok(stored) => stored,
            Err(TransactionError::Abort(error)) => return Err(error),
            Err(TransactionError::Storage(error)) => return Err(backend_error(error)),
        };
        // sled does not fsync on commit; acknowledging before this flush would lose events.
        self.db.flush().map_err(backend_error)?;
        Ok(stored)
    }

    fn raw_events_of(&self, install_id: &str) -> Result<Vec<RawRecord>, StoreError> {
        let start = install_key(install_id, 0);
        let end = install_key(install_id, u64::MAX);
        let mut out = Vec::new();
        for entry in self.by_install.range(start..=end) {
            let (_, global) = entry.map_err(backend_error)?;
            let global_seq = be_u64(&global);
            let bytes = self
                .events
                .get(global_seq.to_be_bytes())
                .map_err(backend_error)?
                .ok_or_else(|| StoreError::CorruptRecord {
                    global_seq,
                    reason: "indexed but missing".into(),
                })?;
            out.push(RawRecord {
                global_seq,
                bytes: record_of(global_seq, &bytes)?,
            });
        }
        Ok(out)
    }

    fn install_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for entry in self.installs.iter() {
            let (id, value) = entry.map_err(backend_error)?;
            ids.push((
                be_u64(&value[..8]),
                String::from_utf8_lossy(&id).into_owned(),
            ));
        }
        ids.sort();
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    fn scan(&self, from: u64, limit: usize) -> Result<Vec<RawRecord>, StoreError> {
        let mut out = Vec::new();
        let mut held = 0;
        for entry in self.events.range(from.to_be_bytes()..).take(limit) {
            let (key, value) = entry.map_err(backend_error)?;
            let global_seq = be_u64(&key);
            let bytes = record_of(global_seq, &value)?;
            held += bytes.len();
            out.push(RawRecord { global_seq, bytes });
            if held >= SCAN_PAGE_BYTES {
                break;
            }
        }
        Ok(out)
    }

    fn head(&self) -> Result<Option<(u64, RecordHash)>, StoreError> {
        match self.meta.get(HEAD_KEY).map_err(backend_error)? {
            None => Ok(None),
            Some(value) if value.len() == 40 => {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&value[8..40]);
                Ok(Some((be_u64(&value[..8]), RecordHash(hash))))
            }
            Some(_) => Err(StoreError::Backend(
                "log head record has the wrong size".into(),
            )),
        }
    }

    fn backend_name(&self) -> &'static str {
        "sled"
    }
}
