//! The default [`EventStore`] backend, on redb. Every append is one write transaction committed
//! with redb's immediate durability (fsync before `commit` returns). The database is opened in
//! redb's multi-process mode, so `windlass history` can read while an install or the daemon writes,
//! and two writers serialise on redb's write lock instead of failing. The read-only commands open
//! it with [`RedbStore::open_read_only`], which never creates or writes the file (a missing file is
//! an empty log), so they work on a state directory the user cannot write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, TableError,
};

use crate::chain::RecordHash;
use crate::durable::{CreateError, create_or_open_database};
use crate::event::{NewEvent, StoredEvent, now_rfc3339};
use crate::projection::{Indexer, ProjectionHead, ProjectionRows, check_row};
use crate::record_encoding::{record_of, stored_form};
use crate::store::{
    EventStore, RawRecord, SCAN_PAGE_BYTES, StoreError, build_record, decode_record, validate,
};

/// global sequence → stored record bytes.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// (install id, install sequence) → global sequence.
const BY_INSTALL: TableDefinition<(&str, u64), u64> = TableDefinition::new("by_install");
/// install id → global sequence of its first event.
const INSTALLS: TableDefinition<&str, u64> = TableDefinition::new("installs");
/// "head" → last global sequence (8 bytes, big endian) followed by its record hash (32 bytes).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// (projection table, key) → row bytes, see [`crate::projection`].
const PROJECTIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("projections");

const HEAD_KEY: &str = "head";
/// In `META`: the chain checkpoint, see [`crate::chain_checkpoint`].
const CHAIN_CHECKPOINT_KEY: &str = "chain_checkpoint";
/// In `META`: the [`ProjectionHead`] of the rows in `PROJECTIONS`.
const PROJECTION_HEAD_KEY: &str = "projection_head";
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The redb-backed event log.
pub struct RedbStore {
    db: Opened,
    path: PathBuf,
}

/// How the log file is open.
enum Opened {
    /// For reading and appending.
    Writable(Database),
    /// For reading only; appends are refused.
    ReadOnly(ReadOnlyDatabase),
    /// Opened read-only where no log file exists yet: an empty log.
    Absent,
}

fn backend_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl RedbStore {
    /// Opens (creating if needed) the log file at `path`. A new log file is created whole under
    /// a temporary name and renamed into place, so a process killed while creating it never
    /// leaves a file the next open refuses (see [`crate::durable`]).
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES);
        builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
        let db = create_or_open_database(path, &builder).map_err(|error| match error {
            CreateError::Database(error) => open_error(path, error),
            other => backend_error(other),
        })?;
        Ok(RedbStore {
            db: Opened::Writable(db),
            path: path.to_path_buf(),
        })
    }

    /// Opens the log file at `path` for reading only: the file is opened read-only and never
    /// created (a missing file reads as an empty log), so this works on a read-only state
    /// directory and alongside a writer in another process. The one write is redb's repair of a
    /// file a killed writer left unclean. [`EventStore::append`] is
    /// refused.
    pub fn open_read_only(path: &Path) -> Result<RedbStore, StoreError> {
        let db = match open_read_only(path, CACHE_BYTES) {
            Ok(Some(db)) => Opened::ReadOnly(db),
            Ok(None) => Opened::Absent,
            Err(ReadOnlyOpenError::Open(error)) => return Err(open_error(path, error)),
            Err(error) => return Err(backend_error(format!("{}: {error}", path.display()))),
        };
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read transaction, or `None` for an absent log.
    fn begin_read(&self) -> Result<Option<ReadTransaction>, StoreError> {
        match &self.db {
            Opened::Writable(db) => db.begin_read().map(Some).map_err(backend_error),
            Opened::ReadOnly(db) => db.begin_read().map(Some).map_err(backend_error),
            Opened::Absent => Ok(None),
        }
    }

    /// `read` of the `META` table in a read transaction; `None` when there is no log yet.
    fn read_meta<T>(
        &self,
        read: impl FnOnce(
            &redb::ReadOnlyTable<&'static str, &'static [u8]>,
        ) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(None);
        };
        match txn.open_table(META) {
            Ok(meta) => read(&meta),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(error) => Err(backend_error(error)),
        }
    }
}

/// Opens an existing redb file for reading only, in the multi-process mode windlass writes it in;
/// `None` when there is no file, or only the zero-length file a windlass from before atomic
/// creation left when killed as it created the file (see [`crate::durable`]). A file left unclean by a writer that died (killed mid-write) can
/// only be read after redb's repair, which writes: it is then opened for writing once (never
/// created) so that redb repairs it, and opened read-only again.
pub(crate) fn open_read_only(
    path: &Path,
    cache_bytes: usize,
) -> Result<Option<ReadOnlyDatabase>, ReadOnlyOpenError> {
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Ok(metadata) if metadata.is_file() && metadata.len() == 0 => return Ok(None),
        _ => {}
    }
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    match builder.open_read_only(path) {
        Err(redb::DatabaseError::RepairAborted) => {
            drop(builder.open(path).map_err(ReadOnlyOpenError::Repair)?);
            builder
                .open_read_only(path)
                .map(Some)
                .map_err(ReadOnlyOpenError::Open)
        }
        other => other.map(Some).map_err(ReadOnlyOpenError::Open),
    }
}

/// Why [`open_read_only`] failed.
#[derive(Debug)]
pub(crate) enum ReadOnlyOpenError {
    /// The read-only open failed.
    Open(redb::DatabaseError),
    /// The file needed redb's repair, which failed (often: no write access).
    Repair(redb::DatabaseError),
}

impl std::fmt::Display for ReadOnlyOpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadOnlyOpenError::Open(error) => write!(f, "{error}"),
            ReadOnlyOpenError::Repair(error) => write!(
                f,
                "it was left unclean by an interrupted windlass process and must be repaired before it can be read, which needs write access: {error}"
            ),
        }
    }
}

fn open_error(path: &Path, error: redb::DatabaseError) -> StoreError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            path: path.display().to_string(),
            detail: error.to_string(),
        },
        other => backend_error(format!("{}: {other}", path.display())),
    }
}

fn read_head(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<(u64, RecordHash), StoreError> {
    match meta.get(HEAD_KEY).map_err(backend_error)? {
        None => Ok((0, RecordHash::GENESIS)),
        Some(value) => {
            let bytes = value.value();
            if bytes.len() != 40 {
                return Err(StoreError::Backend(
                    "log head record has the wrong size".into(),
                ));
            }
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&bytes[..8]);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&bytes[8..]);
            Ok((u64::from_be_bytes(seq), RecordHash(hash)))
        }
    }
}

/// Projection rows inside a redb write transaction.
struct RedbRows<'t, 'txn> {
    table: &'t mut redb::Table<'txn, (&'static str, &'static str), &'static [u8]>,
}

impl ProjectionRows for RedbRows<'_, '_> {
    fn get(&mut self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .table
            .get((table, key))
            .map_err(backend_error)?
            .map(|value| value.value().to_vec()))
    }

    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_row(table, key, value)?;
        self.table
            .insert((table, key), value)
            .map_err(backend_error)?;
        Ok(())
    }
}

fn read_projection_head(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<ProjectionHead>, StoreError> {
    match meta.get(PROJECTION_HEAD_KEY).map_err(backend_error)? {
        None => Ok(None),
        Some(value) => ProjectionHead::from_bytes(value.value())
            .map(Some)
            .ok_or_else(|| StoreError::Backend("projection head record has the wrong size".into())),
    }
}

impl RedbStore {
    fn append_with(
        &self,
        batch: Vec<NewEvent>,
        indexer: Option<&Indexer<'_>>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        for event in &batch {
            validate(event)?;
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let Opened::Writable(db) = &self.db else {
            return Err(StoreError::ReadOnly {
                path: self.path.display().to_string(),
            });
        };
        let txn = db.begin_write().map_err(backend_error)?;
        let recorded_at = now_rfc3339();
        let mut stored_events = Vec::with_capacity(batch.len());
        {
            let mut events = txn.open_table(EVENTS).map_err(backend_error)?;
            let mut by_install = txn.open_table(BY_INSTALL).map_err(backend_error)?;
            let mut installs = txn.open_table(INSTALLS).map_err(backend_error)?;
            let mut meta = txn.open_table(META).map_err(backend_error)?;
            let (mut last_global, mut prev_hash) = read_head(&meta)?;
            // The rows follow this batch only if they reflected the log up to it.
            let indexer = match indexer {
                Some(indexer)
                    if read_projection_head(&meta)?
                        == Some(ProjectionHead {
                            version: indexer.version,
                            seq: last_global,
                            hash: prev_hash,
                        }) =>
                {
                    Some(indexer)
                }
                _ => None,
            };
            let mut projections = match indexer {
                Some(_) => Some(txn.open_table(PROJECTIONS).map_err(backend_error)?),
                None => None,
            };
            let mut install_heads: HashMap<String, u64> = HashMap::new();
            for event in batch {
                let install_seq = match install_heads.get(&event.install_id) {
                    Some(last) => last + 1,
                    None => {
                        let id = event.install_id.as_str();
                        let last = by_install
                            .range((id, 0u64)..=(id, u64::MAX))
                            .map_err(backend_error)?
                            .next_back()
                            .transpose()
                            .map_err(backend_error)?
                            .map(|(key, _)| key.value().1)
                            .unwrap_or(0);
                        last + 1
                    }
                };
                let global_seq = last_global + 1;
                let install_id = event.install_id.clone();
                let (stored, bytes, hash) =
                    build_record(event, global_seq, install_seq, &prev_hash, &recorded_at)?;
                events
                    .insert(global_seq, stored_form(&bytes).as_ref())
                    .map_err(backend_error)?;
                by_install
                    .insert((install_id.as_str(), install_seq), global_seq)
                    .map_err(backend_error)?;
                if install_seq == 1 {
                    installs
                        .insert(install_id.as_str(), global_seq)
                        .map_err(backend_error)?;
                }
                install_heads.insert(install_id, install_seq);
                last_global = global_seq;
                prev_hash = hash;
                if let (Some(indexer), Some(table)) = (indexer, projections.as_mut()) {
                    (indexer.apply)(&stored, &mut RedbRows { table })?;
                }
                stored_events.push(stored);
            }
            let mut head = [0u8; 40];
            head[..8].copy_from_slice(&last_global.to_be_bytes());
            head[8..].copy_from_slice(&prev_hash.0);
            meta.insert(HEAD_KEY, head.as_slice())
                .map_err(backend_error)?;
            if let Some(indexer) = indexer {
                let projection_head = ProjectionHead {
                    version: indexer.version,
                    seq: last_global,
                    hash: prev_hash,
                };
                meta.insert(PROJECTION_HEAD_KEY, projection_head.to_bytes().as_slice())
                    .map_err(backend_error)?;
            }
        }
        txn.commit().map_err(backend_error)?;
        Ok(stored_events)
    }
}

impl EventStore for RedbStore {
    fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<StoredEvent>, StoreError> {
        self.append_with(batch, None)
    }

    fn keeps_projections(&self) -> bool {
        true
    }

    fn append_indexed(
        &self,
        batch: Vec<NewEvent>,
        indexer: &Indexer<'_>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.append_with(batch, Some(indexer))
    }

    fn projection_head(&self) -> Result<Option<ProjectionHead>, StoreError> {
        self.read_meta(read_projection_head)
    }

    fn projection_get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(None);
        };
        let rows = match txn.open_table(PROJECTIONS) {
            Ok(rows) => rows,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(backend_error(error)),
        };
        Ok(rows
            .get((table, key))
            .map_err(backend_error)?
            .map(|value| value.value().to_vec()))
    }

    fn projection_scan(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(Vec::new());
        };
        let rows = match txn.open_table(PROJECTIONS) {
            Ok(rows) => rows,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(backend_error(error)),
        };
        let mut out = Vec::new();
        for entry in rows.range((table, prefix)..).map_err(backend_error)? {
            let (key, value) = entry.map_err(backend_error)?;
            let (row_table, row_key) = key.value();
            if row_table != table || !row_key.starts_with(prefix) {
                break;
            }
            out.push((row_key.to_string(), value.value().to_vec()));
        }
        Ok(out)
    }

    fn rebuild_projections(&self, indexer: &Indexer<'_>) -> Result<u64, StoreError> {
        let Opened::Writable(db) = &self.db else {
            return Err(StoreError::ReadOnly {
                path: self.path.display().to_string(),
            });
        };
        let txn = db.begin_write().map_err(backend_error)?;
        let mut records = 0;
        {
            txn.delete_table(PROJECTIONS).map_err(backend_error)?;
            let mut table = txn.open_table(PROJECTIONS).map_err(backend_error)?;
            let events = txn.open_table(EVENTS).map_err(backend_error)?;
            let mut meta = txn.open_table(META).map_err(backend_error)?;
            let (seq, hash) = read_head(&meta)?;
            for entry in events.iter().map_err(backend_error)? {
                let (key, value) = entry.map_err(backend_error)?;
                records += 1;
                let Ok(event) = record_of(key.value(), value.value())
                    .and_then(|record| decode_record(key.value(), &record))
                else {
                    continue;
                };
                (indexer.apply)(&event, &mut RedbRows { table: &mut table })?;
            }
            let head = ProjectionHead {
                version: indexer.version,
                seq,
                hash,
            };
            meta.insert(PROJECTION_HEAD_KEY, head.to_bytes().as_slice())
                .map_err(backend_error)?;
        }
        txn.commit().map_err(backend_error)?;
        Ok(records)
    }

    fn raw_events_of(&self, install_id: &str) -> Result<Vec<RawRecord>, StoreError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(Vec::new());
        };
        let by_install = match txn.open_table(BY_INSTALL) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(backend_error(error)),
        };
        let events = txn.open_table(EVENTS).map_err(backend_error)?;
        let mut out = Vec::new();
        for entry in by_install
            .range((install_id, 0u64)..=(install_id, u64::MAX))
            .map_err(backend_error)?
        {
            let (_, global) = entry.map_err(backend_error)?;
            let global_seq = global.value();
            let bytes = events
                .get(global_seq)
                .map_err(backend_error)?
                .ok_or_else(|| StoreError::CorruptRecord {
                    global_seq,
                    reason: "indexed but missing".into(),
                })?;
            out.push(RawRecord {
                global_seq,
                bytes: record_of(global_seq, bytes.value())?,
            });
        }
        Ok(out)
    }

    fn install_ids(&self) -> Result<Vec<String>, StoreError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(Vec::new());
        };
        let installs = match txn.open_table(INSTALLS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(backend_error(error)),
        };
        let mut ids = Vec::new();
        for entry in installs.iter().map_err(backend_error)? {
            let (id, first) = entry.map_err(backend_error)?;
            ids.push((first.value(), id.value().to_string()));
        }
        ids.sort();
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    fn scan(&self, from: u64, limit: usize) -> Result<Vec<RawRecord>, StoreError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(Vec::new());
        };
        let events = match txn.open_table(EVENTS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(backend_error(error)),
        };
        let mut out = Vec::new();
        let mut held = 0;
        for entry in events.range(from..).map_err(backend_error)?.take(limit) {
            let (key, value) = entry.map_err(backend_error)?;
            let bytes = record_of(key.value(), value.value())?;
            held += bytes.len();
            out.push(RawRecord {
                global_seq: key.value(),
                bytes,
            });
            if held >= SCAN_PAGE_BYTES {
                break;
            }
        }
        Ok(out)
    }

    fn head(&self) -> Result<Option<(u64, RecordHash)>, StoreError> {
        self.read_meta(|meta| {
            let (seq, hash) = read_head(meta)?;
            Ok((seq > 0).then_some((seq, hash)))
        })
    }

    fn backend_name(&self) -> &'static str {
        "redb"
    }

    fn chain_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_meta(|meta| {
            Ok(meta
                .get(CHAIN_CHECKPOINT_KEY)
                .map_err(backend_error)?
                .map(|value| value.value().to_vec()))
        })
    }

    fn save_chain_checkpoint(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let Opened::Writable(db) = &self.db else {
            return Err(StoreError::ReadOnly {
                path: self.path.display().to_string(),
            });
        };
        let txn = db.begin_write().map_err(backend_error)?;
        {
            let mut meta = txn.open_table(META).map_err(backend_error)?;
            meta.insert(CHAIN_CHECKPOINT_KEY, bytes)
                .map_err(backend_error)?;
        }
        txn.commit().map_err(backend_error)
    }
}
