//! [`PlannedTree`]: directories a build takes whole from memory instead of the disk, because their
//! contents are known before they are written. The `render_midstream` stage builds the overlays
//! while `write_base` is still writing `base/`: it hands the build the files `base/` will hold,
//! computed from the same recorded release, and the build never looks at `base/` on disk (which
//! may hold nothing yet, or the previous install's files).

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Whole directories, by absolute path, with every file they hold.
#[derive(Debug, Default, Clone)]
pub struct PlannedTree {
    roots: Vec<PathBuf>,
    files: HashMap<PathBuf, Arc<[u8]>>,
    directories: HashSet<PathBuf>,
}

/// What a planned directory holds at a path.
pub(crate) enum Planned {
    /// A file, with its bytes.
    File(Arc<[u8]>),
    /// A directory.
    Directory,
    /// Nothing: the path is inside a planned directory but names no file or directory of it.
    Missing,
}

impl PlannedTree {
    /// Declares that `root` (an absolute path whose parent is canonical) holds exactly `files`
    /// (paths relative to `root`, `/`-separated, without `.` or `..`) and the directories they
    /// imply. The build answers every path inside `root` from this declaration alone.
    pub fn add_directory(
        &mut self,
        root: PathBuf,
        files: impl IntoIterator<Item = (String, Arc<[u8]>)>,
    ) {
        self.directories.insert(root.clone());
        for (relative, bytes) in files {
            let path = root.join(&relative);
            let mut parent = path.parent();
            while let Some(directory) = parent.filter(|directory| directory.starts_with(&root)) {
                if !self.directories.insert(directory.to_path_buf()) {
                    break;
                }
                parent = directory.parent();
            }
            self.files.insert(path, bytes);
        }
        self.roots.push(root);
    }

    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// What `path` (absolute, normalised) is, when it is inside a planned directory.
    pub(crate) fn lookup(&self, path: &Path) -> Option<Planned> {
        if !self.roots.iter().any(|root| path.starts_with(root)) {
            return None;
        }
        Some(if let Some(bytes) = self.files.get(path) {
            Planned::File(bytes.clone())
        } else if self.directories.contains(path) {
            Planned::Directory
        } else {
            Planned::Missing
        })
    }

    /// `dir.join(reference)` with its `..` components applied, when `dir` is canonical and
    /// `reference` is some `..` followed by plain names: each `..` then leaves a directory that is
    /// not a symbolic link, so the result is the path the file system would resolve, as far as
    /// the plain names go. `None` for any other reference (absolute, `.`, or `..` after a name).
    pub(crate) fn lexical_join(dir: &Path, reference: &str) -> Option<PathBuf> {
        let mut path = dir.to_path_buf();
        let mut named = false;
        for component in Path::new(reference).components() {
            match component {
                Component::ParentDir if !named => {
                    if !path.pop() {
                        return None;
                    }
                }
                Component::Normal(name) => {
                    named = true;
                    path.push(name);
                }
                _ => return None,
            }
        }
        named.then_some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_a_planned_directory_are_answered_from_memory_alone() {
        let mut planned = PlannedTree::default();
        planned.add_directory(
            PathBuf::from("/out/base"),
            [
                ("kustomization.yaml".to_string(), Arc::from(&b"k"[..])),
                ("charts/web/a.yaml".to_string(), Arc::from(&b"a"[..])),
            ],
        );
        let file = |path: &str| match planned.lookup(Path::new(path)) {
            Some(Planned::File(bytes)) => Some(bytes.to_vec()),
            _ => None,
        };
        assert_eq!(file("/out/base/charts/web/a.yaml"), Some(b"a".to_vec()));
        assert!(matches!(
            planned.lookup(Path::new("/out/base/charts")),
            Some(Planned::Directory)
        ));
        assert!(matches!(
            planned.lookup(Path::new("/out/base/b.yaml")),
            Some(Planned::Missing)
        ));
        assert!(planned.lookup(Path::new("/out/overlays/x.yaml")).is_none());
        assert!(planned.lookup(Path::new("/out/basement")).is_none());
    }

    #[test]
    fn only_leading_parent_components_are_applied_lexically() {
        let dir = Path::new("/out/overlays/midstream");
        assert_eq!(
            PlannedTree::lexical_join(dir, "../../base"),
            Some(PathBuf::from("/out/base"))
        );
        assert_eq!(
            PlannedTree::lexical_join(dir, "a/b.yaml"),
            Some(PathBuf::from("/out/overlays/midstream/a/b.yaml"))
        );
        assert_eq!(PlannedTree::lexical_join(dir, "a/../b"), None);
        assert_eq!(PlannedTree::lexical_join(dir, "/etc/passwd"), None);
        assert_eq!(PlannedTree::lexical_join(dir, "./a"), None);
        assert_eq!(PlannedTree::lexical_join(dir, ".."), None);
    }
}
