//! Reading a release directory safely. [`scan`] walks it in path order without following symlinks
//! blindly: a symlink to a file inside the release is read as that file, a symlink leading outside
//! is an error, and every file and the release as a whole are held to size limits. YAML files are
//! split and classified here (see [`crate::documents`]), so that license files can be recognised by
//! content and kept out of the digest, the blob store and `upstream/`.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::documents::{
    Document, DocumentError, ParsedCache, Reuse, parse_documents, parse_documents_with,
};
use crate::events::FileClass;
use crate::parallel::parallel_map;

/// Releases with fewer files than this are read and parsed on one thread.
const PARALLEL_FROM: usize = 64;

/// Size limits applied while reading a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest release in total, in bytes.
    pub max_total_bytes: u64,
    /// Most files in a release.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 16 * 1024 * 1024,
            max_total_bytes: 1024 * 1024 * 1024,
            max_files: 100_000,
        }
    }
}

/// A problem with a release. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The release directory itself cannot be read.
    #[error("release directory {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// Path relative to the release.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file (or a symlink's target) is not a regular file, or opening or reading it failed.
    #[error("{path}: {problem}")]
    Unreadable {
        /// Path relative to the release.
        path: String,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// A symlink points outside the release.
    #[error("{path}: symlink leads outside the release directory (to {target})")]
    SymlinkOutside {
        /// Path relative to the release.
        path: String,
        /// Where it points.
        target: String,
    },
    /// A file is over the per-file limit.
    #[error("{path}: file is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// Path relative to the release.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The release is over the total limit.
    #[error("release is over the limit of {limit} bytes in total (reached at {path})")]
    ReleaseTooLarge {
        /// The file at which the limit was passed.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The release has too many files.
    #[error("release has more than {limit} files")]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// A path is not valid UTF-8 or has an unexpected component.
    #[error("{path}: unsupported file name")]
    BadPath {
        /// The path, lossily converted.
        path: String,
    },
    /// A YAML document is invalid.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// Two documents describe the same object.
    #[error("{second} and {first} both define {kind} {name}: each object may appear once")]
    DuplicateObject {
        /// Where it is defined first (file and document).
        first: String,
        /// Where it is defined again.
        second: String,
        /// Its kind (with API group).
        kind: String,
        /// Its namespace/name.
        name: String,
    },
    /// The release holds more than one License.
    #[error("{second} and {first} both hold a License: a release may hold one")]
    SecondLicense {
        /// The first license file.
        first: String,
        /// The second.
        second: String,
    },
}

/// The contents and classification of one release file.
#[derive(Debug)]
pub enum FileContents {
    /// Parsed YAML documents.
    Yaml(Vec<Document>),
    /// A chart archive.
    ChartArchive,
    /// A file holding a KOTS License. Its bytes are dropped as soon as it is recognised.
    License,
    /// Anything else.
    Other,
}

/// One file of a release.
#[derive(Debug)]
pub struct ReleaseFile {
    /// Path relative to the release root, `/`-separated.
    pub path: String,
    /// Its bytes (empty for license files, which are never kept).
    pub bytes: Vec<u8>,
    /// Size on disk.
    pub size: u64,
    /// What it is.
    pub contents: FileContents,
}

impl ReleaseFile {
    /// The file's class as recorded.
    pub fn class(&self) -> FileClass {
        match self.contents {
            FileContents::Yaml(_) => FileClass::Yaml,
            FileContents::ChartArchive => FileClass::ChartArchive,
            FileContents::License => FileClass::License,
            FileContents::Other => FileClass::Other,
        }
    }
}

/// A release as read.
#[derive(Debug)]
pub struct Release {
    /// The release directory.
    pub root: PathBuf,
    /// Every file, in path order.
    pub files: Vec<ReleaseFile>,
}

impl Release {
    /// blake3 over every non-license file's path and contents, in path order.
    pub fn digest(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for file in &self.files {
            if matches!(file.contents, FileContents::License) {
                continue;
            }
            hasher.update(file.path.as_bytes());
            hasher.update(&[0]);
            hasher.update(blake3::hash(&file.bytes).as_bytes());
        }
        format!("blake3:{}", hasher.finalize().to_hex())
    }

    /// The path of the license file inside the release, if any.
    pub fn license_file(&self) -> Option<&str> {
        self.files
            .iter()
            .find(|file| matches!(file.contents, FileContents::License))
            .map(|file| file.path.as_str())
    }
}

fn relative_path(root: &Path, path: &Path) -> Result<String, ReleaseError> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                parts.push(part.to_str().ok_or_else(|| ReleaseError::BadPath {
                    path: relative.to_string_lossy().into_owned(),
                })?)
            }
            _ => {
                return Err(ReleaseError::BadPath {
                    path: relative.to_string_lossy().into_owned(),
                });
            }
        }
    }
    Ok(parts.join("/"))
}

fn is_chart_archive(path: &str) -> bool {
    path.ends_with(".tgz") || path.ends_with(".tar.gz")
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Reads a release directory. `on_file` is called after each file with (files done, files total).
pub fn scan(
    root: &Path,
    limits: &Limits,
    on_file: impl FnMut(u64, u64),
) -> Result<Release, ReleaseError> {
    scan_cached(root, limits, None, None, on_file)
}

/// The files of a release as [`digest_keeping`] read them, kept (in the engine's memo) so that
/// `fetch_base` in the same process takes them instead of reading the release a second time.
#[derive(Debug, Default)]
pub struct ReleaseSnapshot {
    read: std::sync::Mutex<Option<SnapshotFiles>>,
}

#[derive(Debug)]
struct SnapshotFiles {
    canonical_root: PathBuf,
    limits: Limits,
    files: Vec<ReadFile>,
}

impl ReleaseSnapshot {
    /// The files read from `canonical_root` under `limits`, if this snapshot holds them; they are
    /// handed out once.
    fn take(&self, canonical_root: &Path, limits: &Limits) -> Option<Vec<ReadFile>> {
        let mut read = self
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let matches = read.as_ref().is_some_and(|snapshot| {
            snapshot.canonical_root == canonical_root && snapshot.limits == *limits
        });
        if matches {
            read.take().map(|snapshot| snapshot.files)
        } else {
            None
        }
    }

    fn keep(&self, canonical_root: PathBuf, limits: Limits, files: Vec<ReadFile>) {
        *self
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(SnapshotFiles {
            canonical_root,
            limits,
            files,
        });
    }
}

/// [`scan`], reusing and filling `cache` with the parsed documents, and taking the files from
/// `snapshot` when it holds this release read under the same limits.
pub fn scan_cached(
    root: &Path,
    limits: &Limits,
    cache: Option<&ParsedCache>,
    snapshot: Option<&ReleaseSnapshot>,
    mut on_file: impl FnMut(u64, u64),
) -> Result<Release, ReleaseError> {
    let canonical_root = fs::canonicalize(root).map_err(|source| ReleaseError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let read = match snapshot.and_then(|snapshot| snapshot.take(&canonical_root, limits)) {
        Some(read) => read,
        None => read_all(walk(&canonical_root, limits)?, limits)?,
    };
    let total = read.len() as u64;
    // Parsing dominates on large releases: spread it over the cores, then classify in order.
    let parsed = parse_in_parallel(&read, cache);
    let mut files = Vec::with_capacity(read.len());
    let mut license_at: Option<String> = None;
    let mut objects: std::collections::HashMap<(String, String, String, String), String> =
        std::collections::HashMap::new();
    for (done, ((relative, bytes, size), documents)) in read.into_iter().zip(parsed).enumerate() {
        let contents = if let Some(documents) = documents {
            let documents = documents?;
            if documents.iter().any(Document::is_license) {
                if let Some(first) = &license_at {
                    return Err(ReleaseError::SecondLicense {
                        first: first.clone(),
                        second: relative,
                    });
                }
                license_at = Some(relative.clone());
                FileContents::License
            } else {
                for document in &documents {
                    check_unique(&mut objects, document)?;
                }
                FileContents::Yaml(documents)
            }
        } else if is_chart_archive(&relative) {
            FileContents::ChartArchive
        } else {
            FileContents::Other
        };
        let bytes = if matches!(contents, FileContents::License) {
            Vec::new()
        } else {
            bytes
        };
        files.push(ReleaseFile {
            path: relative,
            bytes,
            size,
            contents,
        });
        on_file(done as u64 + 1, total);
    }
    Ok(Release {
        root: canonical_root,
        files,
    })
}

/// Every file of the release, relative path and the path to read (a symlink's target), in
/// path order.
fn walk(canonical_root: &Path, limits: &Limits) -> Result<Vec<(String, PathBuf)>, ReleaseError> {
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(canonical_root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.file_name() != ".git")
    {
        let entry = entry.map_err(|error| {
            let path = error
                .path()
                .map(|path| relative_path(canonical_root, path).unwrap_or_default())
                .unwrap_or_default();
            ReleaseError::Read {
                path,
                source: error.into(),
            }
        })?;
        let file_type = entry.file_type();
        let relative = relative_path(canonical_root, entry.path())?;
        if file_type.is_dir() {
            continue;
        }
        let source = if file_type.is_symlink() {
            let target = fs::canonicalize(entry.path()).map_err(|source| ReleaseError::Read {
                path: relative.clone(),
                source,
            })?;
            if !target.starts_with(canonical_root) {
                return Err(ReleaseError::SymlinkOutside {
                    path: relative,
                    target: target.display().to_string(),
                });
            }
            if target.is_dir() {
                tracing::warn!(path = %relative, "skipping symlink to a directory inside the release");
                continue;
            }
            target
        } else if file_type.is_file() {
            entry.path().to_path_buf()
        } else {
            tracing::warn!(path = %relative, "skipping special file");
            continue;
        };
        entries.push((relative, source));
        if entries.len() > limits.max_files {
            return Err(ReleaseError::TooManyFiles {
                limit: limits.max_files,
            });
        }
    }
    Ok(entries)
}

/// A file's path relative to the release, bytes and size on disk.
type ReadFile = (String, Vec<u8>, u64);

/// Reads every file, holding each to the per-file and total limits. Big releases are read on as
/// many threads as there are cores; the error is still the one of the first bad file in path order
/// (a release over the total limit is read again on one thread to name the file where the limit
/// was passed, since the threads pass it in no particular order).
fn read_all(
    entries: Vec<(String, PathBuf)>,
    limits: &Limits,
) -> Result<Vec<ReadFile>, ReleaseError> {
    let total = AtomicU64::new(0);
    let read = parallel_map(&entries, PARALLEL_FROM, |entry| {
        read_one(entry, limits, &total)
    });
    match read.into_iter().collect::<Result<Vec<_>, _>>() {
        Err(ReleaseError::ReleaseTooLarge { .. }) => {
            let total = AtomicU64::new(0);
            entries
                .iter()
                .map(|entry| read_one(entry, limits, &total))
                .collect()
        }
        read => read,
    }
}

/// Reads one file, adding its size to `total` (shared by every thread reading the release). Once
/// the total limit is passed, nothing more is read.
fn read_one(
    (relative, source): &(String, PathBuf),
    limits: &Limits,
    total: &AtomicU64,
) -> Result<ReadFile, ReleaseError> {
    let too_large = || ReleaseError::ReleaseTooLarge {
        path: relative.clone(),
        limit: limits.max_total_bytes,
    };
    if total.load(Ordering::Relaxed) > limits.max_total_bytes {
        return Err(too_large());
    }
    // Only regular files are read (a symlink's target is checked once opened, so a symlink to a
    // FIFO or device is refused instead of blocking or reading without end), and at most one byte
    // past the limit.
    let bytes =
        windlass_files::read_regular_file(source, limits.max_file_bytes).map_err(|problem| {
            match problem {
                windlass_files::ReadError::TooLarge { size, cap } => ReleaseError::FileTooLarge {
                    path: relative.clone(),
                    size,
                    limit: cap,
                },
                problem => ReleaseError::Unreadable {
                    path: relative.clone(),
                    problem,
                },
            }
        })?;
    let size = bytes.len() as u64;
    if total.fetch_add(size, Ordering::Relaxed) + size > limits.max_total_bytes {
        return Err(too_large());
    }
    Ok((relative.clone(), bytes, size))
}

/// Parses every YAML file (`None` for other files), on as many threads as there are cores.
fn parse_in_parallel(
    read: &[ReadFile],
    cache: Option<&ParsedCache>,
) -> Vec<Option<Result<Vec<Document>, DocumentError>>> {
    let reuse = cache.map_or(Reuse::Nothing, Reuse::Share);
    parallel_map(read, PARALLEL_FROM, |file| {
        is_yaml(&file.0).then(|| parse_documents_with(&file.0, &file.1, reuse))
    })
}

/// The release digest alone, as [`scan`] computes it, without parsing files that cannot hold a
/// License (fast enough to run before deciding whether an install can be resumed). A file that
/// fails to parse counts as a plain file here; [`scan`] reports it.
pub fn digest(root: &Path, limits: &Limits) -> Result<String, ReleaseError> {
    digest_keeping(root, limits, &ReleaseSnapshot::default())
}

/// [`digest`], keeping the files read in `snapshot` for [`scan_cached`].
pub fn digest_keeping(
    root: &Path,
    limits: &Limits,
    snapshot: &ReleaseSnapshot,
) -> Result<String, ReleaseError> {
    let canonical_root = fs::canonicalize(root).map_err(|source| ReleaseError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let entries = walk(&canonical_root, limits)?;
    let read = read_all(entries, limits)?;
    let mut hasher = blake3::Hasher::new();
    for (relative, bytes, _) in &read {
        let may_be_license = is_yaml(relative)
            && bytes
                .windows(b"License".len())
                .any(|window| window == b"License");
        if may_be_license
            && parse_documents(relative, bytes)
                .is_ok_and(|documents| documents.iter().any(Document::is_license))
        {
            continue;
        }
        hasher.update(relative.as_bytes());
        hasher.update(&[0]);
        hasher.update(blake3::hash(bytes).as_bytes());
    }
    snapshot.keep(canonical_root, *limits, read);
    Ok(format!("blake3:{}", hasher.finalize().to_hex()))
}

fn check_unique(
    objects: &mut std::collections::HashMap<(String, String, String, String), String>,
    document: &Document,
) -> Result<(), ReleaseError> {
    let Some(name) = &document.name else {
        return Ok(());
    };
    let group = document
        .api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("");
    let namespace = document.namespace.clone().unwrap_or_default();
    let key = (
        group.to_string(),
        document.kind.clone(),
        namespace.clone(),
        name.clone(),
    );
    let here = document.location();
    if let Some(first) = objects.get(&key) {
        let kind = if group.is_empty() {
            document.kind.clone()
        } else {
            format!("{}.{group}", document.kind)
        };
        let name = if namespace.is_empty() {
            name.clone()
        } else {
            format!("{namespace}/{name}")
        };
        return Err(ReleaseError::DuplicateObject {
            first: first.clone(),
            second: here,
            kind,
            name,
        });
    }
    objects.insert(key, here);
    Ok(())
}
