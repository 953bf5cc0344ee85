//! The content-addressed blob store: file bodies (release files, rendered output) keyed by their
//! blake3 hash, stored once and shared by every install that has the same bytes. Events refer to
//! them by [`BlobId`].
//!
//! Blobs live in their own redb database (`<state>/blobs/blobs.redb`) rather than one file each:
//! a release of thousands of manifests then costs one durable commit instead of thousands of file
//! creations and a filesystem-wide sync. [`BlobStore::put`] only stages a blob in memory;
//! [`BlobStore::sync`] commits everything staged in one durable transaction, and callers sync
//! before recording an event that names a blob. Reads see staged blobs too, and check the hash, so
//! a corrupted blob is reported, never served. Storing bytes whose blob is already stored but
//! damaged (its stored bytes no longer hash to its id) replaces the damaged copy, so reading the
//! release again repairs the store. [`BlobStore::verify`] checks every stored blob against its id,
//! for `windlass verify-log`; [`BlobStore::open_read_only`] never creates or writes the file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableError,
};

/// blob id (hex) → bytes.
const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// [`BlobStore::get_many`] reads at least this many blobs on every core.
const PARALLEL_READS_FROM: usize = 512;

/// A blob's identity: the lowercase hex blake3 hash of its bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobId(String);

impl BlobId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(blake3::hash(bytes).to_hex().to_string())
    }

    /// Parses a hex id as found in an event.
    pub fn parse(hex: &str) -> Result<BlobId, BlobError> {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(BlobId(hex.to_string()))
        } else {
            Err(BlobError::BadId(hex.chars().take(80).collect()))
        }
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The blake3 hash the id spells, as bytes.
    pub fn hash_bytes(&self) -> Option<[u8; 32]> {
        blake3::Hash::from_hex(&self.0)
            .ok()
            .map(|hash| *hash.as_bytes())
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.0[..12])
    }
}

/// Errors from the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob database could not be opened, read or written.
    #[error("blob store {path}: {detail}")]
    Storage {
        /// The database file.
        path: PathBuf,
        /// What the storage engine said.
        detail: String,
    },
    /// A blob named by an event is not in the store.
    #[error("blob {0} is missing from the blob store")]
    Missing(BlobId),
    /// A blob's bytes do not hash to its id.
    #[error("blob {0} is corrupted: its bytes no longer match its hash")]
    Corrupted(BlobId),
    /// A string is not a blob id.
    #[error("{0:?} is not a blob id (64 lowercase hex digits)")]
    BadId(String),
    /// The store was opened read-only and something asked to store a blob.
    #[error("blob store {0} was opened read-only")]
    ReadOnly(PathBuf),
}

/// What [`BlobStore::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobCheck {
    /// How many stored blobs were read and hashed.
    pub checked: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The keys of stored blobs whose bytes do not hash to the key (a damaged key is listed as
    /// found, so it may not be a valid [`BlobId`]), in key order.
    pub damaged: Vec<String>,
}

/// How the blob database is open.
enum Opened {
    /// For reading and storing.
    Writable(Database),
    /// For reading only (the read-only commands).
    ReadOnly(ReadOnlyDatabase),
    /// Opened read-only where no blob database exists yet: an empty store.
    Absent,
    /// Held in memory only, never written ([`BlobStore::in_memory`]).
    Memory,
}

/// The blob store of one state directory.
pub struct BlobStore {
    db: Opened,
    path: PathBuf,
    /// Blobs put but not yet committed by [`BlobStore::sync`].
    staged: Mutex<HashMap<BlobId, Arc<[u8]>>>,
    /// Blobs this process committed lately, kept for reads: a stage often reads back what the one
    /// before it stored. Their ids were computed from these very bytes, so no hash check is needed.
    recent: Mutex<RecentBlobs>,
}

/// The blobs of [`BlobStore::recent`], at most [`RECENT_BYTES`] of them in all.
#[derive(Default)]
struct RecentBlobs {
    blobs: HashMap<BlobId, Arc<[u8]>>,
    bytes: usize,
}

/// How many bytes of recently committed blobs a store keeps in memory for reads.
const RECENT_BYTES: usize = 64 * 1024 * 1024;

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("path", &self.path)
            .finish()
    }
}

impl BlobStore {
    /// Opens (creating if needed) the store in directory `root`. A new database is created whole
    /// under a temporary name and renamed into place (see [`crate::durable`]).
    pub fn open(root: &Path) -> Result<BlobStore, BlobError> {
        let path = root.join("blobs.redb");
        let storage = |detail: String| BlobError::Storage {
            path: path.clone(),
            detail,
        };
        crate::durable::create_directories(root).map_err(|error| storage(error.to_string()))?;
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES);
        builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
        let db = crate::durable::create_or_open_database(&path, &builder)
            .map_err(|error| storage(error.to_string()))?;
        Ok(BlobStore {
            db: Opened::Writable(db),
            path,
            staged: Mutex::new(HashMap::new()),
            recent: Mutex::new(RecentBlobs::default()),
        })
    }

    /// Opens the store in directory `root` for reading only: nothing is created (a missing
    /// database is an empty store) and nothing is written, except redb's repair of a database a
    /// killed writer left unclean, so this works on a read-only state directory.
    /// [`BlobStore::sync`] of anything put is refused.
    pub fn open_read_only(root: &Path) -> Result<BlobStore, BlobError> {
        let path = root.join("blobs.redb");
        let db = match crate::redb_store::open_read_only(&path, CACHE_BYTES) {
            Ok(Some(db)) => Opened::ReadOnly(db),
            Ok(None) => Opened::Absent,
            Err(error) => {
                return Err(BlobError::Storage {
                    path,
                    detail: error.to_string(),
                });
            }
        };
        Ok(BlobStore {
            db,
            path,
            staged: Mutex::new(HashMap::new()),
            recent: Mutex::new(RecentBlobs::default()),
        })
    }

    /// A store held in memory only, for a run whose blobs are thrown away (a replay's scratch
    /// run): [`BlobStore::sync`] keeps every blob put for reads and writes nothing, so storing
    /// the blobs of a big release again costs no database writes.
    pub fn in_memory() -> BlobStore {
        BlobStore {
            db: Opened::Memory,
            path: PathBuf::from("(in memory)"),
            staged: Mutex::new(HashMap::new()),
            recent: Mutex::new(RecentBlobs::default()),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read transaction, or `None` for an absent store.
    fn begin_read(&self) -> Result<Option<ReadTransaction>, BlobError> {
        match &self.db {
            Opened::Writable(db) => db
                .begin_read()
                .map(Some)
                .map_err(|error| self.storage_error(error)),
            Opened::ReadOnly(db) => db
                .begin_read()
                .map(Some)
                .map_err(|error| self.storage_error(error)),
            Opened::Absent | Opened::Memory => Ok(None),
        }
    }

    fn storage_error(&self, error: impl fmt::Display) -> BlobError {
        BlobError::Storage {
            path: self.path.clone(),
            detail: error.to_string(),
        }
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, HashMap<BlobId, Arc<[u8]>>> {
        self.staged
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Stages `bytes` and returns its id. It is not durable until [`BlobStore::sync`] returns.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobId, BlobError> {
        let id = BlobId::of(bytes);
        self.staged()
            .entry(id.clone())
            .or_insert_with(|| Arc::from(bytes));
        Ok(id)
    }

    /// Commits every staged blob in one durable transaction. A blob already stored intact is
    /// skipped; one stored with other bytes (damaged on disk: its id is the hash of the staged
    /// bytes) is replaced, which is how storing the same file again repairs the store.
    pub fn sync(&self) -> Result<(), BlobError> {
        let staged: Vec<(BlobId, Arc<[u8]>)> = self.staged().drain().collect();
        if staged.is_empty() {
            return Ok(());
        }
        if let Opened::Memory = self.db {
            self.keep_recent(staged, usize::MAX);
            return Ok(());
        }
        let result = (|| {
            let Opened::Writable(db) = &self.db else {
                return Err(BlobError::ReadOnly(self.path.clone()));
            };
            let txn = db
                .begin_write()
                .map_err(|error| self.storage_error(error))?;
            {
                let mut table = txn
                    .open_table(BLOBS)
                    .map_err(|error| self.storage_error(error))?;
                for (id, bytes) in &staged {
                    let intact = table
                        .get(id.as_str())
                        .map_err(|error| self.storage_error(error))?
                        .is_some_and(|stored| stored.value() == bytes.as_ref());
                    if !intact {
                        table
                            .insert(id.as_str(), bytes.as_ref())
                            .map_err(|error| self.storage_error(error))?;
                    }
                }
            }
            txn.commit().map_err(|error| self.storage_error(error))
        })();
        if result.is_err() {
            // Nothing was committed: keep the blobs staged so a retry can commit them.
            self.staged().extend(staged);
        } else {
            self.keep_recent(staged, RECENT_BYTES);
        }
        result
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentBlobs> {
        self.recent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Keeps committed blobs for reads, starting over when `budget` bytes would be passed.
    fn keep_recent(&self, committed: Vec<(BlobId, Arc<[u8]>)>, budget: usize) {
        let mut recent = self.recent();
        for (id, bytes) in committed {
            if recent.bytes + bytes.len() > budget {
                *recent = RecentBlobs::default();
            }
            if bytes.len() <= budget {
                recent.bytes += bytes.len();
                recent.blobs.insert(id, bytes);
            }
        }
    }

    /// Reads a blob (staged or stored) and checks its hash.
    pub fn get(&self, id: &BlobId) -> Result<Vec<u8>, BlobError> {
        let mut bodies = self.get_many(std::slice::from_ref(id))?;
        Ok(bodies.pop().expect("one body per id"))
    }

    /// Reads many blobs in one read transaction (much cheaper than one `get` each), checking the
    /// hash of every blob read from disk (blobs still in memory were hashed when they were put).
    pub fn get_many(&self, ids: &[BlobId]) -> Result<Vec<Vec<u8>>, BlobError> {
        let mut in_memory = self.staged().clone();
        {
            let recent = self.recent();
            in_memory.extend(
                ids.iter()
                    .filter_map(|id| Some((id.clone(), recent.blobs.get(id)?.clone()))),
            );
        }
        let staged = in_memory;
        // Many blobs (a big release's files) are read on every core, each thread in a read
        // transaction of its own, and returned in order.
        if ids.len() < PARALLEL_READS_FROM {
            return self.read_in_order(ids, &staged);
        }
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        if threads < 2 {
            return self.read_in_order(ids, &staged);
        }
        let chunk = ids.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let staged = &staged;
            let handles: Vec<_> = ids
                .chunks(chunk)
                .map(|part| scope.spawn(move || self.read_in_order(part, staged)))
                .collect();
            let mut bodies = Vec::with_capacity(ids.len());
            for handle in handles {
                let part = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                bodies.extend(part);
            }
            Ok(bodies)
        })
    }

    /// [`BlobStore::get_many`] on this thread, with the blobs not yet stored in `staged`.
    fn read_in_order(
        &self,
        ids: &[BlobId],
        staged: &HashMap<BlobId, Arc<[u8]>>,
    ) -> Result<Vec<Vec<u8>>, BlobError> {
        let txn = self.begin_read()?;
        let table = match txn.as_ref().map(|txn| txn.open_table(BLOBS)) {
            Some(Ok(table)) => Some(table),
            None | Some(Err(TableError::TableDoesNotExist(_))) => None,
            Some(Err(error)) => return Err(self.storage_error(error)),
        };
        ids.iter()
            .map(|id| {
                if let Some(bytes) = staged.get(id) {
                    return Ok(bytes.to_vec());
                }
                let bytes = table
                    .as_ref()
                    .map(|table| table.get(id.as_str()))
                    .transpose()
                    .map_err(|error| self.storage_error(error))?
                    .flatten()
                    .ok_or_else(|| BlobError::Missing(id.clone()))?
                    .value()
                    .to_vec();
                if BlobId::of(&bytes) != *id {
                    return Err(BlobError::Corrupted(id.clone()));
                }
                Ok(bytes)
            })
            .collect()
    }

    /// The size of a blob (staged or stored) in bytes, or `None` when the store does not have it,
    /// without reading it through or checking its hash: what a file recorded by this blob must
    /// hold, so that a reader of the file need not read more.
    pub fn size_of(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        if let Some(bytes) = self.staged().get(id) {
            return Ok(Some(bytes.len() as u64));
        }
        if let Some(bytes) = self.recent().blobs.get(id) {
            return Ok(Some(bytes.len() as u64));
        }
        let Some(txn) = self.begin_read()? else {
            return Ok(None);
        };
        let table = match txn.open_table(BLOBS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.storage_error(error)),
        };
        let stored = table
            .get(id.as_str())
            .map_err(|error| self.storage_error(error))?;
        Ok(stored.map(|bytes| bytes.value().len() as u64))
    }

    /// Whether the store has a blob (staged or stored).
    pub fn contains(&self, id: &BlobId) -> bool {
        self.get(id).is_ok()
    }

    /// Reads every stored blob and checks that its bytes hash to its key. Reading a damaged
    /// database can make the storage engine itself fail (redb panics on some damaged pages, for
    /// example a key that is no longer UTF-8); that is returned as a [`BlobError::Storage`], not
    /// a finding and not a crash.
    pub fn verify(&self) -> Result<BlobCheck, BlobError> {
        self.guarded(|| self.verify_unguarded())
    }

    /// Runs a read of the whole database, turning a panic of the storage engine into an error.
    fn guarded<T>(&self, read: impl FnOnce() -> Result<T, BlobError>) -> Result<T, BlobError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|message| message.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(self.storage_error(format!(
                "the database is damaged: the storage engine failed reading it ({message})"
            )))
        })
    }

    fn verify_unguarded(&self) -> Result<BlobCheck, BlobError> {
        let mut check = BlobCheck::default();
        let Some(txn) = self.begin_read()? else {
            return Ok(check);
        };
        let table = match txn.open_table(BLOBS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(check),
            Err(error) => return Err(self.storage_error(error)),
        };
        for entry in table.iter().map_err(|error| self.storage_error(error))? {
            let (key, value) = entry.map_err(|error| self.storage_error(error))?;
            let bytes = value.value();
            check.checked += 1;
            check.bytes += bytes.len() as u64;
            if blake3::hash(bytes).to_hex().as_str() != key.value() {
                check.damaged.push(key.value().chars().take(80).collect());
            }
        }
        Ok(check)
    }

    /// Which of `ids` are not stored (committed) at all. A failure of the storage engine on a
    /// damaged database is an error, as for [`BlobStore::verify`].
    pub fn missing(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, BlobError> {
        self.guarded(|| self.missing_unguarded(ids))
    }

    fn missing_unguarded(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, BlobError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(ids.to_vec());
        };
        let table = match txn.open_table(BLOBS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(ids.to_vec()),
            Err(error) => return Err(self.storage_error(error)),
        };
        let mut missing = Vec::new();
        for id in ids {
            if table
                .get(id.as_str())
                .map_err(|error| self.storage_error(error))?
                .is_none()
            {
                missing.push(id.clone());
            }
        }
        Ok(missing)
    }

    /// How many blobs are stored (committed).
    pub fn len(&self) -> Result<u64, BlobError> {
        let Some(txn) = self.begin_read()? else {
            return Ok(0);
        };
        match txn.open_table(BLOBS) {
            Ok(table) => table.len().map_err(|error| self.storage_error(error)),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(error) => Err(self.storage_error(error)),
        }
    }

    /// Whether no blob is stored.
    pub fn is_empty(&self) -> Result<bool, BlobError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_memory_store_keeps_every_blob_synced_and_writes_nothing() {
        let store = BlobStore::in_memory();
        let bodies: Vec<Vec<u8>> = (0..100u8).map(|index| vec![index; 1_000_000]).collect();
        let ids: Vec<BlobId> = bodies
            .iter()
            .map(|body| store.put(body).expect("put"))
            .collect();
        store.sync().expect("sync");
        assert!(store.staged().is_empty());
        assert_eq!(
            store
                .get_many(&ids)
                .expect("every blob, beyond the 64 MiB of a store on disk"),
            bodies
        );
        assert!(!store.path().exists());
    }

    #[test]
    fn committed_blobs_are_kept_for_reads_within_the_memory_budget() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let store = BlobStore::open(dir.path()).expect("open");
        let bodies: Vec<Vec<u8>> = (0..10u8).map(|index| vec![index; 1000]).collect();
        let ids: Vec<BlobId> = bodies
            .iter()
            .map(|body| store.put(body).expect("put"))
            .collect();
        store.sync().expect("sync");
        assert_eq!(
            store.recent().blobs.len(),
            10,
            "all kept under the real budget"
        );

        let committed: Vec<(BlobId, Arc<[u8]>)> = ids
            .iter()
            .zip(&bodies)
            .map(|(id, body)| (id.clone(), Arc::from(body.as_slice())))
            .collect();
        *store.recent() = RecentBlobs::default();
        store.keep_recent(committed, 3500);
        {
            let recent = store.recent();
            assert!(recent.bytes <= 3500, "{} bytes kept", recent.bytes);
            assert!(
                (1..=3).contains(&recent.blobs.len()),
                "{}",
                recent.blobs.len()
            );
        }
        assert_eq!(
            store.get_many(&ids).expect("read all back"),
            bodies,
            "from memory or from disk, every body comes back"
        );
    }

    #[test]
    fn many_blobs_are_read_on_every_core_in_order_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let store = BlobStore::open(dir.path()).expect("open");
        let count = PARALLEL_READS_FROM * 2 + 7;
        let bodies: Vec<Vec<u8>> = (0..count)
            .map(|index| format!("body {index}").into_bytes())
            .collect();
        let ids: Vec<BlobId> = bodies
            .iter()
            .map(|body| store.put(body).expect("put"))
            .collect();
        store.sync().expect("sync");
        // Read from the database, not from the blobs kept since the commit.
        *store.recent() = RecentBlobs::default();
        assert_eq!(store.get_many(&ids).expect("read all back"), bodies);
        let mut with_missing = ids.clone();
        let missing = BlobId::of(b"never stored");
        with_missing[count - 3] = missing.clone();
        match store.get_many(&with_missing) {
            Err(BlobError::Missing(id)) => assert_eq!(id, missing),
            other => panic!("expected the missing blob named, got {other:?}"),
        }
    }
}
