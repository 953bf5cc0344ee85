//! [`StateDir`]: the on-disk layout of a windlass state directory and how to open it.
//!
//! ```text
//! <state>/events.redb        the event log (redb backend)   or  <state>/events.sled/ (sled backend)
//! <state>/blobs/blobs.redb   the content-addressed blob store
//! <state>/fingerprint.key    the key behind keyed fingerprints (0600)
//! <state>/installs/<id>/     default output directory of each install
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blobs::{BlobError, BlobStore};
use crate::fingerprint::FingerprintKey;
use crate::log::EventLog;
use crate::redb_store::RedbStore;
use crate::schema::SchemaRegistry;
use crate::store::{EventStore, StoreError};

/// Which storage engine holds the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// redb, the default.
    Redb,
    /// sled, behind the `sled` cargo feature.
    #[cfg(feature = "sled")]
    Sled,
}

impl Backend {
    /// Parses a backend name.
    pub fn parse(name: &str) -> Option<Backend> {
        match name {
            "redb" => Some(Backend::Redb),
            #[cfg(feature = "sled")]
            "sled" => Some(Backend::Sled),
            _ => None,
        }
    }

    fn log_path(self, root: &Path) -> PathBuf {
        match self {
            Backend::Redb => root.join("events.redb"),
            #[cfg(feature = "sled")]
            Backend::Sled => root.join("events.sled"),
        }
    }
}

/// Errors from opening a state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// The directory could not be created or read.
    #[error("state directory {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The event log could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store could not be opened.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The directory holds a log of another backend.
    #[error(
        "state directory {path} holds a {found} event log, but the {requested} backend was requested"
    )]
    WrongBackend {
        /// The state directory.
        path: PathBuf,
        /// What is there.
        found: &'static str,
        /// What was asked for.
        requested: &'static str,
    },
}

/// An opened state directory.
pub struct StateDir {
    root: PathBuf,
    /// The event log, upcasting on read.
    pub log: EventLog,
    /// The blob store.
    pub blobs: Arc<BlobStore>,
    /// The fingerprint key.
    pub fingerprint_key: Arc<FingerprintKey>,
}

impl StateDir {
    /// Opens (creating if needed) the state directory at `root`.
    pub fn open(
        root: &Path,
        backend: Backend,
        schemas: Arc<SchemaRegistry>,
    ) -> Result<StateDir, StateDirError> {
        fs::create_dir_all(root).map_err(|source| StateDirError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let found = [
            ("redb", Backend::Redb.log_path(root)),
            ("sled", root.join("events.sled")),
        ]
        .into_iter()
        .find(|(_, path)| path.exists())
        .map(|(name, _)| name);
        let requested = match backend {
            Backend::Redb => "redb",
            #[cfg(feature = "sled")]
            Backend::Sled => "sled",
        };
        if let Some(found) = found
            && found != requested
        {
            return Err(StateDirError::WrongBackend {
                path: root.to_path_buf(),
                found,
                requested,
            });
        }
        let store: Arc<dyn EventStore> = match backend {
            Backend::Redb => Arc::new(RedbStore::open(&backend.log_path(root))?),
            #[cfg(feature = "sled")]
            Backend::Sled => Arc::new(crate::sled_store::SledStore::open(&backend.log_path(root))?),
        };
        let blobs = BlobStore::open(&root.join("blobs"))?;
        let key_path = root.join("fingerprint.key");
        let fingerprint_key =
            FingerprintKey::load_or_create(&key_path).map_err(|source| StateDirError::Io {
                path: key_path,
                source,
            })?;
        Ok(StateDir {
            root: root.to_path_buf(),
            log: EventLog::new(store, schemas),
            blobs: Arc::new(blobs),
            fingerprint_key: Arc::new(fingerprint_key),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the exclusive lock named `name` (e.g. an install key) under `<state>/locks/`, or
    /// returns `Ok(None)` at once if another process holds it. The lock is released when the guard
    /// is dropped or the process dies.
    pub fn try_lock(&self, name: &str) -> Result<Option<StateLock>, StateDirError> {
        let dir = self.root.join("locks");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateDirError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let safe_name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe_name}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(StateLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(errno) => Err(io(&path)(errno.into())),
        }
    }

    /// The default output directory of an install.
    pub fn default_out(&self, install_id: &str) -> PathBuf {
        self.root.join("installs").join(install_id)
    }
}

/// An exclusive lock in the state directory, held until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: fs::File,
}
