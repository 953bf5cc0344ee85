//! Writing into an install's output directory without ever leaving it. Every path is relative and
//! made only of normal components; directories are opened one component at a time, each relative
//! to the one before and with `O_NOFOLLOW`, so no symlink (planted before or during a write) can
//! make windlass create, write or remove anything elsewhere.
//!
//! There are two ways to write. [`OutputDir::write`] writes one file to a temporary name and
//! renames it into place, so a crash never leaves half a file; it suits the few single files of an
//! install. [`OutputDir::replace_tree`] writes a whole directory tree (thousands of documents) into
//! a fresh staging directory next to the target, each file with one `openat` relative to a cached
//! directory descriptor (no temporary name, no rename, no stat per file), and
//! [`TreeWriter::commit`] swaps the staging directory into place with one atomic rename (an
//! exchange when the target exists) before removing the old tree. A crash or an error before the
//! commit leaves the old target untouched, so the target is always the whole old tree or the whole
//! new one, never a half-written mix. Staging directories and temporary files are named after the
//! process (`.<name>.windlass-staging-<pid>-<n>`), so two writers never share one; a writer dropped
//! without committing removes its staging directory, and what a killed process left behind is
//! removed by the next `replace_tree` or `write` of the same target (the output directory's lock,
//! [`crate::output_claim`], makes sure no other process is writing there).
//!
//! Reading back is capped: [`OutputDir::read_file`] reads at most the cap it is given (64 KiB for
//! the marker), and [`OutputDir::read_recorded`] a recorded file up to its recorded size, so
//! a file planted in the output directory (a sparse one of any size) costs no more than that.
//!
//! Output file names derived from object names go through [`fit_file_name`], which shortens a name
//! too long for a file system deterministically, with a hash suffix.
//!
//! A replay keeps the output directory in memory ([`windlass_engine::MemoryOutput`], set in
//! `Services::output_in_memory`): stages open it with [`OutputDir::for_stage`], which then writes,
//! reads and replaces trees in that map under the same path checks, and touches no file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use windlass_engine::{MemoryFile, MemoryOutput, StageContext};
use windlass_state::{BlobId, BlobStore};

/// A problem writing output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A path would leave the output directory or is malformed, or an existing component of it is
    /// not a real directory (a symlink is never followed).
    #[error("refusing to write {path:?}: {reason}")]
    UnsafePath {
        /// The relative path asked for.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// The same path was written twice into one [`TreeWriter`] (or a file was written where the
    /// tree already has a directory).
    #[error("cannot write {path}: already written in this tree")]
    AlreadyWritten {
        /// The path, relative to the output directory.
        path: String,
    },
    /// The filesystem failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file (relative to the output directory when written through a [`TreeWriter`]).
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What [`OutputDir::read_file`] found at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRead {
    /// No regular file to read there: it is missing, it is something else (a symlink is never
    /// followed), or one of its parents is not a real directory.
    Missing,
    /// A regular file holding more than the cap; nothing past the cap was read.
    Larger,
    /// The whole file.
    Bytes(Vec<u8>),
}

impl FileRead {
    /// The bytes; `None` for a missing file or one larger than the cap, which a caller checking
    /// a file against its record treats as damaged.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            FileRead::Bytes(bytes) => Some(bytes),
            FileRead::Missing | FileRead::Larger => None,
        }
    }
}

/// A recorded file up to this size is read whole when checked against its record; only a larger
/// one has its recorded size looked up ([`OutputDir::read_recorded`]).
const READ_WITHOUT_LOOKUP_BYTES: u64 = 1024 * 1024;

/// The most read of a recorded file whose record gives no size: one recorded by keyed fingerprint
/// (a file holding a credential: a document, a chart's values, the pull secrets), or by a blob
/// the store no longer has. A larger file reads as [`FileRead::Larger`], that is as changed.
pub const MAX_UNSIZED_RECORDED_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// [`OutputDir::read_recorded`] through `read` (one cap in, what was found out).
fn read_recorded_with(
    mut read: impl FnMut(u64) -> Result<FileRead, OutputError>,
    blob: Option<&str>,
    blobs: &BlobStore,
) -> Result<FileRead, OutputError> {
    let found = read(READ_WITHOUT_LOOKUP_BYTES)?;
    if !matches!(found, FileRead::Larger) {
        return Ok(found);
    }
    // A store that cannot say (a damaged one) leaves the size unknown, as for a fingerprint.
    let recorded = blob
        .and_then(|hex| BlobId::parse(hex).ok())
        .and_then(|id| blobs.size_of(&id).ok().flatten());
    let cap = recorded.unwrap_or(MAX_UNSIZED_RECORDED_FILE_BYTES);
    if cap <= READ_WITHOUT_LOOKUP_BYTES {
        return Ok(FileRead::Larger);
    }
    read(cap)
}

/// An output directory.
#[derive(Debug, Clone)]
pub struct OutputDir {
    root: PathBuf,
    /// Set when the directory is kept in memory (a replay): nothing under `root` is touched.
    memory: Option<Arc<MemoryOutput>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn errno(path: &Path) -> impl FnOnce(Errno) -> OutputError + '_ {
    move |error| OutputError::Io {
        path: path.to_path_buf(),
        source: error.into(),
    }
}

/// The flags every directory is opened with: never through a symlink.
fn directory_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The flags every file is created with: a new file, never through a symlink.
fn new_file_flags() -> OFlags {
    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The longest file name windlass gives a file it names after an object, in bytes. File systems
/// allow 255; the margin leaves room for the suffixes of temporary names.
pub const MAX_FILE_NAME_BYTES: usize = 200;

/// `name` itself when it is at most [`MAX_FILE_NAME_BYTES`] long; otherwise its first bytes (cut at
/// a character boundary), `-`, the first 16 hex digits of the blake3 hash of the whole name, and
/// its `.yaml` or `.yml` extension, [`MAX_FILE_NAME_BYTES`] long in all. The same name always gives
/// the same result, and two long names differing anywhere get different hashes.
pub fn fit_file_name(name: &str) -> Cow<'_, str> {
    if name.len() <= MAX_FILE_NAME_BYTES {
        return Cow::Borrowed(name);
    }
    let extension = [".yaml", ".yml"]
        .into_iter()
        .find(|extension| name.ends_with(extension))
        .unwrap_or("");
    let hash = blake3::hash(name.as_bytes()).to_hex();
    let hash = &hash[..16];
    let mut keep = MAX_FILE_NAME_BYTES - extension.len() - 1 - hash.len();
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    Cow::Owned(format!("{}-{hash}{extension}", &name[..keep]))
}

/// Numbers this process's staging directories and temporary files.
static NEXT_WRITE: AtomicU64 = AtomicU64::new(0);

/// `<prefix>-<pid>-<n>`: a name no other writer uses, in this process or another.
fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT_WRITE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `name` was made by [`unique_name`] from `prefix` in another process (a killed one: the
/// output directory's lock keeps live ones out), or is `prefix` itself, as older versions named
/// it. This process's own names belong to writers still at work (a dropped writer removes its
/// own).
fn is_leftover(name: &[u8], prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix.as_bytes()) else {
        return false;
    };
    match rest.strip_prefix(b"-") {
        None => rest.is_empty(),
        Some(numbers) => {
            let own = format!("{}-", std::process::id());
            let is_unique_name = numbers
                .iter()
                .all(|byte| byte.is_ascii_digit() || *byte == b'-');
            is_unique_name && !numbers.starts_with(own.as_bytes())
        }
    }
}

/// Removes every leftover of `prefix` (see [`is_leftover`]) in `parent`, never following a
/// symlink. `parent_shown` names `parent` relative to the output directory, for errors.
fn remove_leftovers(parent: &OwnedFd, prefix: &str, parent_shown: &str) -> Result<(), OutputError> {
    let shown = |name: &str| {
        if parent_shown.is_empty() {
            PathBuf::from(name)
        } else {
            Path::new(parent_shown).join(name)
        }
    };
    let entries = Dir::read_from(parent).map_err(errno(&shown(".")))?;
    let mut leftovers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(errno(&shown(".")))?;
        if is_leftover(entry.file_name().to_bytes(), prefix) {
            leftovers.push(entry.file_name().to_owned());
        }
    }
    for name in leftovers {
        remove_at(parent, &*name, &shown(&name.to_string_lossy()))?;
    }
    Ok(())
}

/// The normal components of `relative`, or why it is refused.
fn plain_components(relative: &str) -> Result<Vec<&str>, &'static str> {
    if relative.is_empty() {
        return Err("empty path");
    }
    Path::new(relative)
        .components()
        .map(|component| match component {
            Component::Normal(name) => Ok(name.to_str().expect("a component of a str is UTF-8")),
            _ => Err("only plain relative paths are allowed"),
        })
        .collect()
}

/// An opened directory, or the error for it: a symlink or a non-directory where a directory was
/// expected is refused as unsafe. `shown` is the directory's path relative to the output
/// directory, `asked` the path being written.
fn refuse_non_directories(
    opened: Result<OwnedFd, Errno>,
    shown: &str,
    asked: &str,
) -> Result<OwnedFd, OutputError> {
    match opened {
        Ok(directory) => Ok(directory),
        Err(Errno::LOOP | Errno::NOTDIR) => Err(OutputError::UnsafePath {
            path: asked.to_string(),
            reason: format!("{shown} exists and is not a directory (symlinks are not followed)"),
        }),
        Err(error) => Err(errno(Path::new(shown))(error)),
    }
}

/// Opens the directory `name` inside `parent`, never through a symlink, creating it first if it is
/// missing and `create` is set (`None` if it is missing and not created).
fn open_directory(
    parent: impl AsFd,
    name: &str,
    create: bool,
    shown: &str,
    asked: &str,
) -> Result<Option<OwnedFd>, OutputError> {
    let open = || rustix::fs::openat(&parent, name, directory_flags(), Mode::empty());
    let opened = match open() {
        Err(Errno::NOENT) if !create => return Ok(None),
        Err(Errno::NOENT) => match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => open(),
            Err(error) => return Err(errno(Path::new(shown))(error)),
        },
        opened => opened,
    };
    refuse_non_directories(opened, shown, asked).map(Some)
}

/// Removes `name` inside `parent` and, if it is a directory, everything under it. Symlinks are
/// removed, never followed; a missing `name` is fine. `shown` names it in errors.
fn remove_at(
    parent: impl AsFd,
    name: impl rustix::path::Arg + Copy,
    shown: &Path,
) -> Result<(), OutputError> {
    match rustix::fs::unlinkat(&parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => {
            let directory =
                match rustix::fs::openat(&parent, name, directory_flags(), Mode::empty()) {
                    Ok(directory) => directory,
                    Err(Errno::NOENT) => return Ok(()),
                    Err(error) => return Err(errno(shown)(error)),
                };
            remove_contents(directory, shown)?;
            match rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(error) => Err(errno(shown)(error)),
            }
        }
        Err(error) => Err(errno(shown)(error)),
    }
}

/// Removes everything inside the open directory `directory`, never following a symlink.
fn remove_contents(directory: OwnedFd, shown: &Path) -> Result<(), OutputError> {
    let mut entries = Dir::new(directory).map_err(errno(shown))?;
    let mut names = Vec::new();
    for entry in entries.by_ref() {
        let entry = entry.map_err(errno(shown))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push((name.to_owned(), entry.file_type()));
        }
    }
    let directory = entries.fd().map_err(errno(shown))?;
    for (name, file_type) in names {
        let child = shown.join(name.to_string_lossy().as_ref());
        if file_type == FileType::Directory {
            let inner = rustix::fs::openat(directory, &name, directory_flags(), Mode::empty())
                .map_err(errno(&child))?;
            remove_contents(inner, &child)?;
            rustix::fs::unlinkat(directory, &name, AtFlags::REMOVEDIR).map_err(errno(&child))?;
        } else {
            // Files, symlinks, and entries whose type the filesystem does not report.
            remove_at(directory, &*name, &child)?;
        }
    }
    Ok(())
}

impl OutputDir {
    /// Creates (if needed) and opens the output directory.
    pub fn create(root: &Path) -> Result<OutputDir, OutputError> {
        fs::create_dir_all(root).map_err(io(root))?;
        let root = fs::canonicalize(root).map_err(io(root))?;
        Ok(OutputDir { root, memory: None })
    }

    /// The output directory of the run `context` belongs to: the request's, on the disk, or the
    /// one kept in memory when the run's services say so (a replay; the directory itself is still
    /// created, empty, so that its path is canonical).
    pub fn for_stage(context: &StageContext) -> Result<OutputDir, OutputError> {
        match &context.services.output_in_memory {
            Some(memory) => OutputDir::in_memory(&context.request.out_dir, memory.clone()),
            None => OutputDir::create(&context.request.out_dir),
        }
    }

    /// An output directory kept in `memory`, standing for `root` (created, empty, so that its
    /// path is canonical; nothing is written under it).
    pub fn in_memory(root: &Path, memory: Arc<MemoryOutput>) -> Result<OutputDir, OutputError> {
        let mut out = OutputDir::create(root)?;
        out.memory = Some(memory);
        Ok(out)
    }

    /// The directory, canonical.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the directory is kept in memory: nothing reads it from the disk.
    pub fn is_in_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Every file inside the directory `relative`, by path relative to it, when the output
    /// directory is kept in memory.
    pub fn memory_files_under(&self, relative: &str) -> Option<Vec<(String, Arc<[u8]>)>> {
        self.memory
            .as_ref()
            .map(|memory| memory.files_under(relative))
    }

    /// Whether something (a file or a directory; on the disk, through symlinks) is at `relative`.
    pub fn exists(&self, relative: &str) -> Result<bool, OutputError> {
        let key = Self::checked(relative)?.join("/");
        Ok(match &self.memory {
            Some(memory) => memory.exists(&key),
            None => self.root.join(key).exists(),
        })
    }

    /// The normal components of `relative` (never empty), or [`OutputError::UnsafePath`].
    fn checked(relative: &str) -> Result<Vec<&str>, OutputError> {
        plain_components(relative).map_err(|reason| OutputError::UnsafePath {
            path: relative.to_string(),
            reason: reason.to_string(),
        })
    }

    /// Opens the parent directory of `relative`, one component at a time relative to the one
    /// before, refusing any existing component that is not a real directory (a symlink planted in
    /// the output cannot make windlass create, write or remove anything elsewhere). Missing
    /// directories are created if `create`, otherwise the answer is `None`. Returns the directory,
    /// its path relative to the output directory and the last component of `relative`.
    fn open_parent<'a>(
        &self,
        relative: &'a str,
        create: bool,
    ) -> Result<Option<(OwnedFd, String, &'a str)>, OutputError> {
        let components = Self::checked(relative)?;
        let (name, parents) = components.split_last().expect("never empty");
        let mut directory = rustix::fs::open(&self.root, directory_flags(), Mode::empty())
            .map_err(errno(&self.root))?;
        let mut shown = String::new();
        for component in parents {
            if !shown.is_empty() {
                shown.push('/');
            }
            shown.push_str(component);
            match open_directory(&directory, component, create, &shown, relative)? {
                Some(opened) => directory = opened,
                None => return Ok(None),
            }
        }
        Ok(Some((directory, shown, name)))
    }

    /// Writes `bytes` to `relative` with the given permission bits.
    pub fn write(&self, relative: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, OutputError> {
        if let Some(memory) = &self.memory {
            let key = Self::checked(relative)?.join("/");
            let final_path = self.root.join(&key);
            let bytes = Arc::from(bytes);
            memory.insert(key, MemoryFile { bytes, mode });
            return Ok(final_path);
        }
        let (parent, parent_shown, name) = self
            .open_parent(relative, true)?
            .expect("missing parents are created");
        let final_path = self.root.join(relative);
        let prefix = format!(".{name}.windlass-tmp");
        // Stale temporary files of killed processes (or symlinks planted under their names) are
        // removed, never followed.
        remove_leftovers(&parent, &prefix, &parent_shown)?;
        let temp = unique_name(&prefix);
        let temp_path = final_path.with_file_name(&temp);
        let file = rustix::fs::openat(
            &parent,
            temp.as_str(),
            new_file_flags(),
            Mode::from_raw_mode(mode),
        )
        .map_err(errno(&temp_path))?;
        fs::File::from(file)
            .write_all(bytes)
            .map_err(io(&temp_path))?;
        rustix::fs::renameat(&parent, temp.as_str(), &parent, name).map_err(errno(&final_path))?;
        Ok(final_path)
    }

    /// The bytes of the regular file `relative` if it holds at most `cap` bytes (nothing past the
    /// cap is read: a file whose size says more is not read at all), [`FileRead::Larger`] if it
    /// holds more, or [`FileRead::Missing`] when there is no regular file there to read: it is
    /// missing, it is something else (a symlink is never followed), or one of its parents is not
    /// a real directory. Callers checking output against what was recorded treat all but the
    /// bytes as damaged.
    pub fn read_file(&self, relative: &str, cap: u64) -> Result<FileRead, OutputError> {
        let components = Self::checked(relative)?;
        if let Some(memory) = &self.memory {
            return Ok(match memory.get(&components.join("/")) {
                None => FileRead::Missing,
                Some(file) if file.bytes.len() as u64 > cap => FileRead::Larger,
                Some(file) => FileRead::Bytes(file.bytes.to_vec()),
            });
        }
        let name = components.last().expect("never empty");
        match self.parent_to_read(relative)? {
            Some(parent) => self.read_at(&parent, name, relative, cap),
            None => Ok(FileRead::Missing),
        }
    }

    /// [`OutputDir::read_file`] of a file a stage recorded, by `blob` (its blob id) or by keyed
    /// fingerprint (`blob` is `None`), to check it against that record: it is read up to its
    /// recorded size, so a file grown larger (a sparse file of any size planted in its place) is
    /// [`FileRead::Larger`], that is changed, with no more than that size and a byte read. A file
    /// of up to 1 MiB is read whole, without looking the size up; for a larger one it is the
    /// blob's size in `blobs`, or [`MAX_UNSIZED_RECORDED_FILE_BYTES`] where the record gives none.
    pub fn read_recorded(
        &self,
        relative: &str,
        blob: Option<&str>,
        blobs: &BlobStore,
    ) -> Result<FileRead, OutputError> {
        read_recorded_with(|cap| self.read_file(relative, cap), blob, blobs)
    }

    /// The parent directory of `relative`, opened to read the file in it; `None` when one of the
    /// parents is not a real directory (then there is no file to read).
    fn parent_to_read(&self, relative: &str) -> Result<Option<OwnedFd>, OutputError> {
        match self.open_parent(relative, false) {
            Ok(Some((directory, _, _))) => Ok(Some(directory)),
            Ok(None) | Err(OutputError::UnsafePath { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reads many files one after another as [`OutputDir::read_file`] does, opening the parent
    /// directories of files that lie in the same directory once for all of them.
    pub fn reader(&self) -> OutputReader<'_> {
        OutputReader {
            out: self,
            parent: None,
        }
    }

    /// The bytes of the regular file `name` in the directory `parent` (`relative` from the root),
    /// or `None` when there is none (see [`OutputDir::read_file`]).
    fn read_at(
        &self,
        parent: &OwnedFd,
        name: &str,
        relative: &str,
        cap: u64,
    ) -> Result<FileRead, OutputError> {
        let path = self.root.join(relative);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let file = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(file) => file,
            Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR | Errno::NXIO) => {
                return Ok(FileRead::Missing);
            }
            Err(error) => return Err(errno(&path)(error)),
        };
        let metadata = rustix::fs::fstat(&file).map_err(errno(&path))?;
        if FileType::from_raw_mode(metadata.st_mode) != FileType::RegularFile {
            return Ok(FileRead::Missing);
        }
        let size = u64::try_from(metadata.st_size).unwrap_or(0);
        if size > cap {
            return Ok(FileRead::Larger);
        }
        // One byte past the cap tells a file that grew since the `fstat` from one that did not.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0) + 1);
        fs::File::from(file)
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io(&path))?;
        if bytes.len() as u64 > cap {
            return Ok(FileRead::Larger);
        }
        Ok(FileRead::Bytes(bytes))
    }

    /// Removes `relative` and everything under it, if it exists (symlinks are removed, not
    /// followed, whether at `relative` itself, under it, or among its parents, which are refused).
    pub fn remove_tree(&self, relative: &str) -> Result<(), OutputError> {
        if let Some(memory) = &self.memory {
            memory.remove_tree(&Self::checked(relative)?.join("/"));
            return Ok(());
        }
        match self.open_parent(relative, false)? {
            Some((parent, _, name)) => remove_at(&parent, name, &self.root.join(relative)),
            None => Ok(()),
        }
    }

    /// Starts writing the directory tree `relative` afresh: files go into a new staging directory
    /// next to it, and [`TreeWriter::commit`] puts that in place of `relative` (whatever was there,
    /// symlinks included, is replaced, never followed). Dropping the writer without committing
    /// leaves `relative` as it was.
    pub fn replace_tree(&self, relative: &str) -> Result<TreeWriter, OutputError> {
        if let Some(memory) = &self.memory {
            let relative = Self::checked(relative)?.join("/");
            return Ok(TreeWriter::Memory(MemoryTreeWriter {
                final_path: self.root.join(&relative),
                relative,
                memory: memory.clone(),
                written: Mutex::new(std::collections::BTreeMap::new()),
            }));
        }
        let (parent, parent_shown, name) = self
            .open_parent(relative, true)?
            .expect("missing parents are created");
        let prefix = format!(".{name}.windlass-staging");
        // Staging directories a killed process left (or symlinks planted under their names) are
        // removed, not followed.
        remove_leftovers(&parent, &prefix, &parent_shown)?;
        let staging_name = unique_name(&prefix);
        let staging_shown = if parent_shown.is_empty() {
            staging_name.clone()
        } else {
            format!("{parent_shown}/{staging_name}")
        };
        let staging_error = || errno(Path::new(&staging_shown));
        rustix::fs::mkdirat(&parent, staging_name.as_str(), Mode::from_raw_mode(0o755))
            .map_err(staging_error())?;
        let staging = rustix::fs::openat(
            &parent,
            staging_name.as_str(),
            directory_flags(),
            Mode::empty(),
        )
        .map_err(staging_error())?;
        let relative = if parent_shown.is_empty() {
            name.to_string()
        } else {
            format!("{parent_shown}/{name}")
        };
        Ok(TreeWriter::Disk(DiskTreeWriter {
            final_path: self.root.join(&relative),
            relative,
            parent,
            name: name.to_string(),
            staging_name,
            staging_shown,
            staging,
            directories: Mutex::new(HashMap::new()),
            committed: false,
        }))
    }
}

/// How many sub-directories a [`TreeWriter`] keeps open at most (well under the usual limit of
/// 1024 open files); beyond it the cache starts over and directories are opened again.
const MAX_CACHED_DIRECTORIES: usize = 256;

/// A directory tree being written by [`OutputDir::replace_tree`], invisible until
/// [`TreeWriter::commit`].
#[derive(Debug)]
pub enum TreeWriter {
    /// Into a staging directory on the disk.
    Disk(DiskTreeWriter),
    /// Into memory, for an output directory kept there.
    Memory(MemoryTreeWriter),
}

impl TreeWriter {
    /// Writes `bytes` to `path_in_tree` (relative to the tree) with the given permission bits.
    /// Each path may be written once. Several threads may write one tree at once.
    pub fn write(&self, path_in_tree: &str, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
        match self {
            TreeWriter::Disk(writer) => writer.write(path_in_tree, bytes, mode),
            TreeWriter::Memory(writer) => writer.write(path_in_tree, bytes, mode),
        }
    }

    /// Puts the written tree in place of the target, whole; returns the tree's path.
    pub fn commit(self) -> Result<PathBuf, OutputError> {
        match self {
            TreeWriter::Disk(writer) => writer.commit(),
            TreeWriter::Memory(writer) => Ok(writer.commit()),
        }
    }
}

/// A [`TreeWriter`] into memory: the files are gathered and replace the tree when committed.
#[derive(Debug)]
pub struct MemoryTreeWriter {
    /// Where the tree would be on the disk.
    final_path: PathBuf,
    /// The tree's path relative to the output directory, normalised.
    relative: String,
    /// The output directory.
    memory: Arc<MemoryOutput>,
    /// What was written, by path relative to the tree.
    written: Mutex<std::collections::BTreeMap<String, MemoryFile>>,
}

impl MemoryTreeWriter {
    fn write(&self, path_in_tree: &str, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
        let shown = format!("{}/{path_in_tree}", self.relative);
        let key = plain_components(path_in_tree)
            .map_err(|reason| OutputError::UnsafePath {
                path: shown.clone(),
                reason: reason.to_string(),
            })?
            .join("/");
        let file = MemoryFile {
            bytes: Arc::from(bytes),
            mode,
        };
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match written.entry(key) {
            std::collections::btree_map::Entry::Occupied(_) => {
                Err(OutputError::AlreadyWritten { path: shown })
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(file);
                Ok(())
            }
        }
    }

    fn commit(self) -> PathBuf {
        let written = self
            .written
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.memory.replace_tree(&self.relative, written);
        self.final_path
    }
}

/// A [`TreeWriter`] on the disk.
#[derive(Debug)]
pub struct DiskTreeWriter {
    /// Where the tree ends up.
    final_path: PathBuf,
    /// The tree's path relative to the output directory, normalised; errors name files by it.
    relative: String,
    /// The directory holding the tree and its staging directory.
    parent: OwnedFd,
    /// The tree's own name inside `parent`.
    name: String,
    /// The staging directory's name inside `parent`.
    staging_name: String,
    /// The staging directory's path relative to the output directory, for errors.
    staging_shown: String,
    /// The staging directory, open.
    staging: OwnedFd,
    /// Sub-directories of the staging directory already opened, by `/`-separated relative path
    /// (behind a lock so that several threads can write one tree).
    directories: Mutex<HashMap<String, Arc<OwnedFd>>>,
    /// Whether the tree is in place and the staging name is gone.
    committed: bool,
}

impl Drop for DiskTreeWriter {
    /// A tree never committed (the stage failed half way) leaves no staging directory behind; if
    /// removing it fails, the next `replace_tree` by another process removes it.
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_at(
                &self.parent,
                self.staging_name.as_str(),
                Path::new(&self.staging_shown),
            );
        }
    }
}

impl DiskTreeWriter {
    /// How `path_in_tree` is named in errors: relative to the output directory.
    fn shown(&self, path_in_tree: &str) -> String {
        format!("{}/{path_in_tree}", self.relative)
    }

    /// Opens (creating it) the directory `components` of the staging tree, from the cache when it
    /// was opened before. `None` is the staging directory itself.
    fn directory(
        &self,
        components: &[&str],
        asked: &str,
    ) -> Result<Option<Arc<OwnedFd>>, OutputError> {
        let Some((name, parents)) = components.split_last() else {
            return Ok(None);
        };
        let key = components.join("/");
        let mut directories = self
            .directories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(opened) = directories.get(&key) {
            return Ok(Some(opened.clone()));
        }
        drop(directories);
        let shown = self.shown(&key);
        let parent = self.directory(parents, asked)?;
        let parent: &OwnedFd = parent.as_deref().unwrap_or(&self.staging);
        let opened = Arc::new(
            open_directory(parent, name, true, &shown, asked)?.expect("created when missing"),
        );
        directories = self
            .directories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if directories.len() >= MAX_CACHED_DIRECTORIES {
            directories.clear();
        }
        directories.insert(key, opened.clone());
        Ok(Some(opened))
    }

    /// Writes `bytes` to `path_in_tree` (relative to the tree) with the given permission bits:
    /// one `openat` creating the file, the write, the close. Each path may be written once.
    /// Several threads may write one tree at once.
    fn write(&self, path_in_tree: &str, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
        let shown = self.shown(path_in_tree);
        let components =
            plain_components(path_in_tree).map_err(|reason| OutputError::UnsafePath {
                path: shown.clone(),
                reason: reason.to_string(),
            })?;
        let (name, parents) = components.split_last().expect("never empty");
        let directory = self.directory(parents, &shown)?;
        let directory: &OwnedFd = directory.as_deref().unwrap_or(&self.staging);
        let file = match rustix::fs::openat(
            directory,
            *name,
            new_file_flags(),
            Mode::from_raw_mode(mode),
        ) {
            Ok(file) => file,
            Err(Errno::EXIST) => return Err(OutputError::AlreadyWritten { path: shown }),
            Err(error) => return Err(errno(Path::new(&shown))(error)),
        };
        fs::File::from(file)
            .write_all(bytes)
            .map_err(io(Path::new(&shown)))
    }

    /// Puts the written tree in place of the target atomically (an exchange when something, of
    /// any type, is there; a symlink is replaced, never followed), then removes the old tree.
    /// Returns the tree's path. If removing the old tree fails, the new tree is already in place
    /// and the error names the leftover, which dropping the writer tries again to remove.
    fn commit(mut self) -> Result<PathBuf, OutputError> {
        let target_error = |error: Errno| errno(Path::new(&self.relative))(error);
        let rename = |writer: &DiskTreeWriter| {
            rustix::fs::renameat(
                &writer.parent,
                writer.staging_name.as_str(),
                &writer.parent,
                writer.name.as_str(),
            )
            .map_err(target_error)
        };
        match rustix::fs::renameat_with(
            &self.parent,
            self.staging_name.as_str(),
            &self.parent,
            self.name.as_str(),
            RenameFlags::EXCHANGE,
        ) {
            // The old tree is now under the staging name.
            Ok(()) => {
                remove_at(
                    &self.parent,
                    self.staging_name.as_str(),
                    Path::new(&self.staging_shown),
                )?;
                self.committed = true;
            }
            // Nothing to exchange with.
            Err(Errno::NOENT) => {
                rename(&self)?;
                self.committed = true;
            }
            // A filesystem without exchange: the old target goes first, so this is not atomic.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                remove_at(&self.parent, self.name.as_str(), Path::new(&self.relative))?;
                rename(&self)?;
                self.committed = true;
            }
            Err(error) => return Err(target_error(error)),
        }
        Ok(self.final_path.clone())
    }
}

/// [`OutputDir::read_file`] for many files in a row ([`OutputDir::reader`]): the parent
/// directory of the last file read stays open, so a thousand files of `rendered/this-cluster/`
/// open that directory (and the two above it) once instead of a thousand times. The same rules:
/// no symlink is followed, a parent that is not a real directory means no file.
pub struct OutputReader<'a> {
    out: &'a OutputDir,
    /// The parent directory of the last file read (its relative path; `None` when it is not a
    /// real directory).
    parent: Option<(String, Option<OwnedFd>)>,
}

impl OutputReader<'_> {
    /// [`OutputDir::read_recorded`].
    pub fn read_recorded(
        &mut self,
        relative: &str,
        blob: Option<&str>,
        blobs: &BlobStore,
    ) -> Result<FileRead, OutputError> {
        read_recorded_with(|cap| self.read_file(relative, cap), blob, blobs)
    }

    /// [`OutputDir::read_file`].
    pub fn read_file(&mut self, relative: &str, cap: u64) -> Result<FileRead, OutputError> {
        let out = self.out;
        if out.memory.is_some() {
            return out.read_file(relative, cap);
        }
        let components = OutputDir::checked(relative)?;
        let (name, parents) = components.split_last().expect("never empty");
        let parent_path = parents.join("/");
        if self.parent.as_ref().map(|(path, _)| path) != Some(&parent_path) {
            self.parent = Some((parent_path, out.parent_to_read(relative)?));
        }
        match &self.parent {
            Some((_, Some(directory))) => out.read_at(directory, name, relative, cap),
            _ => Ok(FileRead::Missing),
        }
    }
}
