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

    /// Writes `bytes` to `relative` with the given permission bits.
    pub fn write(&self, relative: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, OutputError> {
        let target = self.checked(relative)?;
        let parent = target.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&parent).map_err(io(&parent))?;
        let real_parent = fs::canonicalize(&parent).map_err(io(&parent))?;
        if !real_parent.starts_with(&self.root) {
            return Err(OutputError::UnsafePath {
                path: relative.to_string(),
                reason: format!("{} resolves outside the output directory", parent.display()),
            });
        }
        let file_name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = real_parent.join(format!(".{file_name}.windlass-tmp"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)
            .map_err(io(&temp))?;
        file.write_all(bytes).map_err(io(&temp))?;
        drop(file);
        let final_path = real_parent.join(&file_name);
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
