//! The content-addressed blob store: file bodies (release files, rendered output) live under
//! `blobs/<first two hex digits>/<rest of the blake3 hex>`, written once and shared by every install
//! that has the same bytes. Events refer to them by [`BlobId`]. Writes go to a temporary file and are
//! renamed into place, so a reader never sees half a blob; [`BlobStore::sync`] makes every blob
//! written so far durable with one filesystem sync, and callers sync before recording an event that
//! names a blob. Reads check the hash, so a corrupted blob is reported, never served.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Reading or writing a blob file failed.
    #[error("blob store I/O error at {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
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
}

/// The blob store rooted at one directory.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    temp_counter: AtomicU64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl BlobStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<BlobStore, BlobError> {
        fs::create_dir_all(root.join("tmp")).map_err(io_error(root))?;
        Ok(BlobStore {
            root: root.to_path_buf(),
            temp_counter: AtomicU64::new(0),
        })
    }

    /// Where a blob lives.
    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        self.root.join(&id.0[..2]).join(&id.0[2..])
    }

    /// Stores `bytes` (once: an existing blob is left alone) and returns its id. The blob is not
    /// durable until [`BlobStore::sync`] returns.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobId, BlobError> {
        let id = BlobId::of(bytes);
        let path = self.path_of(&id);
        if path.exists() {
            return Ok(id);
        }
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let temp = self.root.join("tmp").join(format!(
            "{}-{}-{}",
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed),
            &id.0[..16]
        ));
        let mut file = fs::File::create(&temp).map_err(io_error(&temp))?;
        file.write_all(bytes).map_err(io_error(&temp))?;
        drop(file);
        fs::rename(&temp, &path).map_err(io_error(&path))?;
        Ok(id)
    }

    /// Makes every blob written so far durable (one `syncfs` of the store's filesystem).
    pub fn sync(&self) -> Result<(), BlobError> {
        let dir = fs::File::open(&self.root).map_err(io_error(&self.root))?;
        rustix::fs::syncfs(&dir).map_err(|errno| BlobError::Io {
            path: self.root.clone(),
            source: errno.into(),
        })
    }

    /// Reads a blob and checks its hash.
    pub fn get(&self, id: &BlobId) -> Result<Vec<u8>, BlobError> {
        let path = self.path_of(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(id.clone()));
            }
            Err(error) => return Err(io_error(&path)(error)),
        };
        if BlobId::of(&bytes) != *id {
            return Err(BlobError::Corrupted(id.clone()));
        }
        Ok(bytes)
    }

    /// Whether the store has a blob.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.path_of(id).is_file()
    }
}
