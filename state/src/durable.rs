//! Creating the state directory's directories and files so that a kill or a power loss never
//! leaves a half-made one under its final name, and what was made stays made.
//!
//! redb initialises a new database in place: it sizes the file, writes its header and only then
//! its magic number, so a process killed in those first milliseconds left a file no later open
//! accepts ("Not a redb database: magic number mismatch") under the name every command opens.
//! [`create_or_open_database`] therefore lets redb create the database under a temporary name in
//! the same directory (`<name>.creating`), fsyncs it, renames it into place and fsyncs the
//! directory: a file under the final name is always a whole database. Creators hold the
//! directory's `flock` ([`DirectoryLock`]) from the check that the file is missing to the rename,
//! so two processes never create one at once, and a `<name>.creating` found while holding it is
//! what a killed creator left: it never held data and is removed. A zero-length file under the
//! final name cannot come from this code (the rename only ever moves a whole database); a windlass
//! from before it, killed right after creating the file, left one, and it is treated as absent
//! (replaced by a new database). Anything else under the final name is opened as it is, and
//! reported when redb refuses it: it may hold data, so it is never discarded.
//!
//! A new directory or file is only durable once the directory holding its entry is fsynced:
//! [`create_directories`] fsyncs the parent of each directory it creates, [`sync_directory`] is
//! for the callers that create files.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use redb::{Builder, Database, DatabaseError};

/// Fsyncs the directory `dir`, making the entries created, renamed or removed in it durable.
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_directory(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `fs::create_dir_all`, durably: after creating each missing directory, from the outermost,
/// fsyncs the directory holding it. Directories that exist are left alone (and their parents not
/// fsynced again).
pub fn create_directories(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut current = path;
    loop {
        match fs::metadata(current) {
            Ok(metadata) if metadata.is_dir() => break,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", current.display()),
                ));
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                missing.push(current);
                match current.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => current = parent,
                    _ => break,
                }
            }
            Err(error) => return Err(error),
        }
    }
    for directory in missing.into_iter().rev() {
        match fs::create_dir(directory) {
            Ok(()) => {}
            // Another process made it in the meantime; its entry may not be durable yet.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
        sync_directory(parent_directory(directory))?;
    }
    Ok(())
}

/// The exclusive `flock` of a directory, held by whoever creates a file in it
/// ([`create_or_open_database`], the fingerprint key), released when dropped.
pub struct DirectoryLock {
    _directory: fs::File,
}

impl DirectoryLock {
    /// Waits for and takes the lock of `dir`. Creators hold it for milliseconds.
    pub fn acquire(dir: &Path) -> io::Result<DirectoryLock> {
        let directory = fs::File::open(dir)?;
        rustix::fs::flock(&directory, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(DirectoryLock {
            _directory: directory,
        })
    }
}

/// The temporary name a file at `path` is created under: `<name>.creating`, beside it.
pub fn creating_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".creating");
    path.with_file_name(name)
}

/// Removes `path` if it exists.
pub(crate) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Whether a database must be created at `path`: nothing is there, or a zero-length file (see the
/// module documentation).
fn needs_creating(path: &Path) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(metadata) => Ok(metadata.is_file() && metadata.len() == 0),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(error),
    }
}

/// Why [`create_or_open_database`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// redb refused to create or open the database.
    #[error("{0}")]
    Database(#[from] DatabaseError),
    /// A file operation of the creation failed.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done, e.g. `renaming into place`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
}

/// Opens the redb database at `path` with `builder`, first creating it (see the module
/// documentation) when there is none. The directory holding `path` must exist.
pub fn create_or_open_database(path: &Path, builder: &Builder) -> Result<Database, CreateError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |error| CreateError::Io {
            action,
            path,
            error,
        }
    };
    if !needs_creating(path).map_err(io("reading", path))? {
        return Ok(builder.open(path)?);
    }
    let directory = parent_directory(path);
    let lock = DirectoryLock::acquire(directory).map_err(io("locking", directory))?;
    // Another process may have created it while this one waited for the lock.
    if needs_creating(path).map_err(io("reading", path))? {
        let creating = creating_name(path);
        // Left by a creator that was killed: no process is creating it now (it would hold the
        // lock), and it never held data (it was never renamed into place).
        remove_if_present(&creating).map_err(io("removing", &creating))?;
        drop(builder.create(&creating)?);
        fs::File::open(&creating)
            .and_then(|file| file.sync_all())
            .map_err(io("syncing", &creating))?;
        fs::rename(&creating, path).map_err(io("renaming into place", &creating))?;
        sync_directory(directory).map_err(io("syncing", directory))?;
    }
    drop(lock);
    Ok(builder.open(path)?)
}
