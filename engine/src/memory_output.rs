//! An output directory held in memory instead of on the disk. A replay runs the stages only to
//! compare what they produce with what the install recorded, then throws it away: writing tens of
//! thousands of files and deleting them again was most of its time. With
//! [`Services::output_in_memory`](crate::Services::output_in_memory) set, the stages' output
//! directory (`windlass_stages::output::OutputDir`) keeps every file here, by its path relative to
//! the output directory, and the replay reads them back from here. Installs never set it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One file of a [`MemoryOutput`].
#[derive(Debug, Clone)]
pub struct MemoryFile {
    /// Its bytes.
    pub bytes: Arc<[u8]>,
    /// The permission bits it would have been written with.
    pub mode: u32,
}

/// The files of an output directory, by `/`-separated path relative to it (plain components
/// only: the writer checks them).
#[derive(Debug, Default)]
pub struct MemoryOutput {
    files: Mutex<BTreeMap<String, MemoryFile>>,
}

impl MemoryOutput {
    fn files(&self) -> MutexGuard<'_, BTreeMap<String, MemoryFile>> {
        // A poisoned lock means a writer panicked between whole insertions: the map is whole.
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The file at `path`, if one was written there.
    pub fn get(&self, path: &str) -> Option<MemoryFile> {
        self.files().get(path).cloned()
    }

    /// Whether `path` is a file, or a directory holding one.
    pub fn exists(&self, path: &str) -> bool {
        let files = self.files();
        files.contains_key(path) || Self::under(&files, path).next().is_some()
    }

    /// Every file's path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.files().keys().cloned().collect()
    }

    /// Every file inside the directory `path`, by path relative to it, with its bytes, sorted.
    pub fn files_under(&self, path: &str) -> Vec<(String, Arc<[u8]>)> {
        let files = self.files();
        let skipped = path.len() + 1;
        Self::under(&files, path)
            .map(|key| (key[skipped..].to_string(), files[key].bytes.clone()))
            .collect()
    }

    /// Writes (or overwrites) the file at `path`.
    pub fn insert(&self, path: String, file: MemoryFile) {
        self.files().insert(path, file);
    }

    /// Removes the file `path`, or the directory `path` with everything under it.
    pub fn remove_tree(&self, path: &str) {
        Self::remove_from(&mut self.files(), path);
    }

    /// Replaces the directory `path` with `tree` (paths relative to `path`) in one step.
    pub fn replace_tree(&self, path: &str, tree: BTreeMap<String, MemoryFile>) {
        let mut files = self.files();
        Self::remove_from(&mut files, path);
        files.extend(
            tree.into_iter()
                .map(|(relative, file)| (format!("{path}/{relative}"), file)),
        );
    }

    /// Removes the file `path` and everything inside the directory `path` from `files`.
    fn remove_from(files: &mut BTreeMap<String, MemoryFile>, path: &str) {
        files.remove(path);
        let inside: Vec<String> = Self::under(files, path).cloned().collect();
        for key in inside {
            files.remove(&key);
        }
    }

    /// The paths strictly inside the directory `path`.
    fn under<'a>(
        files: &'a BTreeMap<String, MemoryFile>,
        path: &str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        let prefix = format!("{path}/");
        files
            .range(prefix.clone()..)
            .map(|(key, _)| key)
            .take_while(move |key| key.starts_with(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> MemoryFile {
        MemoryFile {
            bytes: Arc::from(text.as_bytes()),
            mode: 0o644,
        }
    }

    #[test]
    fn a_tree_is_replaced_whole_and_its_neighbours_kept() {
        let output = MemoryOutput::default();
        output.insert("rendered/old.yaml".into(), file("old"));
        output.insert("rendered-kept.yaml".into(), file("kept"));
        output.insert("base/a.yaml".into(), file("a"));
        let mut tree = BTreeMap::new();
        tree.insert("new.yaml".to_string(), file("new"));
        output.replace_tree("rendered", tree);
        assert_eq!(
            output.paths(),
            ["base/a.yaml", "rendered-kept.yaml", "rendered/new.yaml"]
        );
        assert!(output.exists("rendered"));
        assert!(!output.exists("render"));
        assert_eq!(output.files_under("rendered").len(), 1);
        assert_eq!(output.files_under("rendered")[0].0, "new.yaml");
        output.remove_tree("base");
        assert!(output.get("base/a.yaml").is_none());
        assert_eq!(&*output.get("rendered/new.yaml").unwrap().bytes, b"new");
    }
}
