//! [`WrittenFiles`]: the bytes of files this process has just written into an output directory,
//! by canonical path, kept in the engine's memo so that a later stage reading them back (the
//! native build reading `base/`, which `write_base` wrote) takes them from memory instead of
//! opening, measuring and reading each file again. Like everything in the memo it only saves
//! work: a stage that finds nothing here reads the disk and records the same facts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Files written by this process, by canonical path, up to [`WrittenFiles::MAX_BYTES`] in all.
/// Each is taken out by its reader (a file is read back once).
#[derive(Debug, Default)]
pub struct WrittenFiles {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    files: HashMap<PathBuf, Arc<[u8]>>,
    bytes: usize,
}

impl WrittenFiles {
    /// The most bytes held at once; files remembered beyond it are read from disk as usual.
    pub const MAX_BYTES: usize = 256 * 1024 * 1024;

    fn held(&self) -> MutexGuard<'_, Held> {
        // Each change is one step, so a panic elsewhere cannot leave the map half-changed.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers that `path` (canonical) now holds exactly `bytes`. Call it only once the file is
    /// in its final place.
    pub fn remember(&self, path: PathBuf, bytes: Arc<[u8]>) {
        let mut held = self.held();
        if held.bytes + bytes.len() > Self::MAX_BYTES {
            return;
        }
        held.bytes += bytes.len();
        if let Some(replaced) = held.files.insert(path, bytes) {
            held.bytes -= replaced.len();
        }
    }

    /// Whether `path` is held (a regular file this process wrote).
    pub fn contains(&self, path: &Path) -> bool {
        self.held().files.contains_key(path)
    }

    /// Takes the bytes of `path` out, if held.
    pub fn take(&self, path: &Path) -> Option<Arc<[u8]>> {
        let mut held = self.held();
        let bytes = held.files.remove(path)?;
        held.bytes -= bytes.len();
        Some(bytes)
    }

    /// How many files are held.
    pub fn len(&self) -> usize {
        self.held().files.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_taken_once_and_the_byte_limit_holds() {
        let written = WrittenFiles::default();
        let path = PathBuf::from("/out/base/a.yaml");
        written.remember(path.clone(), Arc::from(&b"kind: A\n"[..]));
        assert!(written.contains(&path));
        assert_eq!(written.take(&path).as_deref(), Some(&b"kind: A\n"[..]));
        assert!(written.take(&path).is_none());
        assert!(written.is_empty());

        let big: Arc<[u8]> = Arc::from(vec![b'x'; WrittenFiles::MAX_BYTES]);
        written.remember(PathBuf::from("/out/big"), big);
        written.remember(path.clone(), Arc::from(&b"one byte too many"[..]));
        assert_eq!(written.len(), 1);
        assert!(!written.contains(&path));
    }
}
