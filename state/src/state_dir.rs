//! [`StateDir`]: the on-disk layout of a windlass state directory and how to open it.
//!
//! ```text
//! <state>/events.redb        the event log (redb backend), with its projections in the same file
//!                            or  <state>/events.sled/ (sled backend, no projections)
//! <state>/blobs/blobs.redb   the content-addressed blob store
//! <state>/fingerprint.key    the key behind keyed fingerprints (0600)
//! <state>/installs/<id>/     default output directory of each install
//! <state>/locks/             lock files of running installs
//! ```
//!
//! [`StateDir::open`] creates what is missing, durably and never half ([`crate::durable`]: a new
//! directory or file is fsynced into its parent, a new database renamed into place whole);
//! [`StateDir::open_read_only`] (the read-only
//! commands) creates nothing, writes nothing and opens every file read-only, so it works on a
//! state directory the user may not write and never leaves one behind.

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
    /// A read-only open found no state directory (read-only commands never create one).
    #[error("state directory {0} does not exist")]
    Missing(PathBuf),
    /// The state directory path names something other than a directory.
    #[error("state directory {0} is not a directory")]
    NotADirectory(PathBuf),
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
        if fs::metadata(root).is_ok_and(|metadata| !metadata.is_dir()) {
            return Err(StateDirError::NotADirectory(root.to_path_buf()));
        }
        // Durably: a directory first created here is fsynced into its parent.
        crate::durable::create_directories(root).map_err(|source| StateDirError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        check_backend(root, backend)?;
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

    /// Opens the existing state directory at `root` for reading only: nothing is created or
    /// written, every database is opened read-only, and no fingerprint key is loaded or made. A
    /// directory without a log reads as an empty log; a missing `root` is an error.
    pub fn open_read_only(
        root: &Path,
        backend: Backend,
        schemas: Arc<SchemaRegistry>,
    ) -> Result<StateView, StateDirError> {
        match fs::metadata(root) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(StateDirError::NotADirectory(root.to_path_buf())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateDirError::Missing(root.to_path_buf()));
            }
            Err(source) => {
                return Err(StateDirError::Io {
                    path: root.to_path_buf(),
                    source,
                });
            }
        }
        check_backend(root, backend)?;
        let store: Arc<dyn EventStore> = match backend {
            Backend::Redb => Arc::new(RedbStore::open_read_only(&backend.log_path(root))?),
            // sled has no read-only mode: an existing sled log is opened as usual (it may write),
            // an absent one reads as empty without creating it.
            #[cfg(feature = "sled")]
            Backend::Sled if backend.log_path(root).exists() => {
                Arc::new(crate::sled_store::SledStore::open(&backend.log_path(root))?)
            }
            #[cfg(feature = "sled")]
            Backend::Sled => Arc::new(RedbStore::open_read_only(&Backend::Redb.log_path(root))?),
        };
        let blobs = BlobStore::open_read_only(&root.join("blobs"))?;
        Ok(StateView {
            root: root.to_path_buf(),
            log: EventLog::new(store, schemas),
            blobs: Arc::new(blobs),
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
        try_lock_in(&self.root, name)
    }

    /// The default output directory of an install.
    pub fn default_out(&self, install_id: &str) -> PathBuf {
        self.root.join("installs").join(install_id)
    }
}

/// [`StateDir::try_lock`] in the state directory at `root`.
pub fn try_lock_in(root: &Path, name: &str) -> Result<Option<StateLock>, StateDirError> {
    let dir = root.join("locks");
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
        Ok(()) => Ok(Some(StateLock { file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(errno) => Err(io(&path)(errno.into())),
    }
}

/// Fails when `root` holds the log of a backend other than `backend`.
fn check_backend(root: &Path, backend: Backend) -> Result<(), StateDirError> {
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
    match found {
        Some(found) if found != requested => Err(StateDirError::WrongBackend {
            path: root.to_path_buf(),
            found,
            requested,
        }),
        _ => Ok(()),
    }
}

/// A state directory opened for reading only (see [`StateDir::open_read_only`]).
pub struct StateView {
    root: PathBuf,
    /// The event log, upcasting on read; appends are refused.
    pub log: EventLog,
    /// The blob store; storing is refused.
    pub blobs: Arc<BlobStore>,
}

impl StateView {
    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// An exclusive lock in the state directory, held until dropped.
#[derive(Debug)]
pub struct StateLock {
    file: fs::File,
}

impl StateLock {
    /// The locked file: a process handed a duplicate of it (as its stdin, say) shares the lock,
    /// which then lasts until the last holder closes it or exits.
    pub fn file(&self) -> &fs::File {
        &self.file
    }
}
