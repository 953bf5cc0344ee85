//! Writing into an install's output directory without ever leaving it. Every path is relative,
//! made only of normal components, and its parent directory is checked after creation to resolve
//! inside the output directory (so a pre-existing symlink cannot redirect a write). Files are
//! written to a temporary name and renamed into place, so a crash never leaves half a file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// A problem writing output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A path would leave the output directory or is malformed.
    #[error("refusing to write {path:?}: {reason}")]
    UnsafePath {
        /// The relative path asked for.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// The filesystem failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// An output directory.
#[derive(Debug, Clone)]
pub struct OutputDir {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl OutputDir {
    /// Creates (if needed) and opens the output directory.
    pub fn create(root: &Path) -> Result<OutputDir, OutputError> {
        fs::create_dir_all(root).map_err(io(root))?;
        let root = fs::canonicalize(root).map_err(io(root))?;
        Ok(OutputDir { root })
    }

    /// The directory, canonical.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn checked(&self, relative: &str) -> Result<PathBuf, OutputError> {
        let unsafe_path = |reason: &str| OutputError::UnsafePath {
            path: relative.to_string(),
            reason: reason.to_string(),
        };
        if relative.is_empty() {
            return Err(unsafe_path("empty path"));
        }
        let path = Path::new(relative);
        if !path
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
        {
            return Err(unsafe_path("only plain relative paths are allowed"));
        }
        Ok(self.root.join(path))
    }

    /// Creates the directories of `relative`'s parent one at a time, refusing any existing
    /// component that is not a real directory inside the output directory (a symlink planted in
    /// the output cannot make windlass create or write anything elsewhere).
    fn create_parents(&self, relative: &str) -> Result<PathBuf, OutputError> {
        let mut current = self.root.clone();
        let components: Vec<_> = Path::new(relative).components().collect();
        for component in &components[..components.len().saturating_sub(1)] {
            current.push(component);
            match fs::symlink_metadata(&current) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    return Err(OutputError::UnsafePath {
                        path: relative.to_string(),
                        reason: format!(
                            "{} exists and is not a directory (symlinks are not followed)",
                            current.display()
                        ),
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir(&current).map_err(io(&current))?;
                }
                Err(error) => return Err(io(&current)(error)),
            }
        }
        Ok(current)
    }

    /// Writes `bytes` to `relative` with the given permission bits.
    pub fn write(&self, relative: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, OutputError> {
        let target = self.checked(relative)?;
        let parent = self.create_parents(relative)?;
        let file_name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = parent.join(format!(".{file_name}.windlass-tmp"));
        // A stale temporary file (or a planted symlink under its name) is removed, never followed.
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(&temp)(error)),
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .mode(mode)
            .open(&temp)
            .map_err(io(&temp))?;
        file.write_all(bytes).map_err(io(&temp))?;
        drop(file);
        let final_path = parent.join(&file_name);
        fs::rename(&temp, &final_path).map_err(io(&final_path))?;
        Ok(final_path)
    }

    /// Removes `relative` and everything under it, if it exists (symlinks are removed, not followed).
    pub fn remove_tree(&self, relative: &str) -> Result<(), OutputError> {
        let target = self.checked(relative)?;
        match fs::symlink_metadata(&target) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io(&target)(error)),
            Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(&target).map_err(io(&target)),
            Ok(_) => fs::remove_file(&target).map_err(io(&target)),
        }
    }
}
