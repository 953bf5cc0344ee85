//! What a release in the watched directory holds, as the daemon judges it: its content digest —
//! `sha256:` over the sorted `<path> <sha256>` lines of its files, the model Flux uses for bucket
//! sources — the number of files, and the version label it carries. A subdirectory is walked (its
//! `.ready` marker left out); a `.tar.gz` bundle is read as a stream, under [`BundleLimits`],
//! refusing links and paths that would leave the directory it is unpacked into. [`DigestCache`]
//! keeps each file's hash by its size, modification time and inode, so that rescanning a
//! directory of releases that did not change reads no file.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The marker that says a release is complete: `<release>/.ready` for a directory,
/// `<bundle>.ready` beside a bundle.
pub const READY_MARKER: &str = ".ready";

/// The most files a release may hold.
pub const MAX_RELEASE_FILES: u64 = 100_000;

/// The largest YAML file read for a version label.
const MAX_VERSION_FILE_BYTES: u64 = 1024 * 1024;

/// Limits on a `.tar.gz` bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// The largest bundle file (compressed).
    pub max_compressed_bytes: u64,
    /// The most bytes its files may hold unpacked, in all.
    pub max_unpacked_bytes: u64,
    /// The most entries it may hold.
    pub max_entries: u64,
}

impl Default for BundleLimits {
    fn default() -> BundleLimits {
        BundleLimits {
            max_compressed_bytes: 1024 * 1024 * 1024,
            max_unpacked_bytes: 4 * 1024 * 1024 * 1024,
            max_entries: MAX_RELEASE_FILES,
        }
    }
}

/// Why a release's content could not be judged. The message names the file inside the release;
/// the caller names the release.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A file or directory of the release cannot be read.
    #[error("{path}: {error}")]
    Read {
        /// The file, relative to the release.
        path: String,
        /// Why (the OS error, or the file's kind).
        error: String,
    },
    /// The release holds more files than [`MAX_RELEASE_FILES`] or a bundle's entry limit.
    #[error("more than {limit} files")]
    TooManyFiles {
        /// The limit.
        limit: u64,
    },
    /// The bundle is larger than its limit, compressed or unpacked.
    #[error("{what} larger than {limit} bytes")]
    TooLarge {
        /// `bundle` or `unpacked content`.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The bundle is not a readable gzip-compressed tar archive (or is still being copied).
    #[error("not a readable .tar.gz: {0}")]
    Archive(String),
    /// A bundle entry is a link, device or other non-regular file.
    #[error("entry {path} is a {kind}: bundles hold regular files and directories only")]
    NotRegular {
        /// The entry's path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A bundle entry's path is absolute, climbs out with `..`, or is empty.
    #[error("entry {path:?} escapes the bundle (absolute or `..` path)")]
    Escapes {
        /// The entry's path as the archive holds it.
        path: String,
    },
    /// A bundle holds the same path twice.
    #[error("entry {path} appears twice")]
    Duplicate {
        /// The path.
        path: String,
    },
    /// A file could not be written while unpacking.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
}

/// What a release holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// `sha256:<hex>` over the sorted `<path> <sha256>` lines.
    pub digest: String,
    /// Files covered.
    pub files: u64,
    /// Its version label, if one of its files carries one.
    pub version: Option<String>,
}

/// The version labels one file carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct VersionHints {
    /// `Installation.spec.versionLabel`.
    installation: Option<String>,
    /// The Application's `app.kubernetes.io/version` or `version` label.
    application: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Stamp {
    len: u64,
    modified_ns: i128,
    inode: u64,
    changed_ns: i128,
}

fn stamp_of(metadata: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp {
        len: metadata.len(),
        modified_ns: i128::from(metadata.mtime()) * 1_000_000_000
            + i128::from(metadata.mtime_nsec()),
        inode: metadata.ino(),
        changed_ns: i128::from(metadata.ctime()) * 1_000_000_000
            + i128::from(metadata.ctime_nsec()),
    }
}

/// File hashes by path and stamp (size, modification and change times, inode), so that an
/// unchanged file is not read again.
#[derive(Debug, Default)]
pub struct DigestCache {
    files: HashMap<PathBuf, (Stamp, String, VersionHints)>,
    bundles: HashMap<PathBuf, (Stamp, Content)>,
    seen: std::collections::HashSet<PathBuf>,
}

impl DigestCache {
    /// Forgets entries not used since the last call (files that were removed).
    pub fn sweep(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        self.files.retain(|path, _| seen.contains(path));
        self.bundles.retain(|path, _| seen.contains(path));
    }
}

/// Formats the digest of sorted `(path, sha256)` lines.
fn digest_of_lines(lines: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (path, sha) in lines {
        hasher.update(path.as_bytes());
        hasher.update(b" ");
        hasher.update(sha.as_bytes());
        hasher.update(b"\n");
    }
    format!("sha256:{}", hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

/// A relative path as a digest line spells it (`/`-separated; a newline, which would forge a line,
/// escaped).
fn line_path(relative: &Path) -> String {
    relative
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
}

/// The content of the release directory `root`.
pub fn directory_content(root: &Path, cache: &mut DigestCache) -> Result<Content, ContentError> {
    let mut lines = BTreeMap::new();
    let mut hints = VersionHints::default();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let dir = root.join(&relative);
        let entries = std::fs::read_dir(&dir).map_err(|error| ContentError::Read {
            path: shown(&relative),
            error: error.to_string(),
        })?;
        for entry in entries {
            let entry = entry.map_err(|error| ContentError::Read {
                path: shown(&relative),
                error: error.to_string(),
            })?;
            let name = entry.file_name();
            let child = relative.join(&name);
            if relative.as_os_str().is_empty() && name == READY_MARKER {
                continue;
            }
            let path = root.join(&child);
            // Symlinks are followed, as the install reads them.
            let metadata = std::fs::metadata(&path).map_err(|error| ContentError::Read {
                path: shown(&child),
                error: error.to_string(),
            })?;
            if metadata.is_dir() {
                stack.push(child);
                continue;
            }
            if lines.len() as u64 >= MAX_RELEASE_FILES {
                return Err(ContentError::TooManyFiles {
                    limit: MAX_RELEASE_FILES,
                });
            }
            let stamp = stamp_of(&metadata);
            cache.seen.insert(path.clone());
            let (sha, file_hints) = match cache.files.get(&path) {
                Some((cached, sha, file_hints)) if *cached == stamp => {
                    (sha.clone(), file_hints.clone())
                }
                _ => {
                    let file = windlass_files::open_regular_file(&path).map_err(|error| {
                        ContentError::Read {
                            path: shown(&child),
                            error: error.to_string(),
                        }
                    })?;
                    let (sha, file_hints) =
                        hash_reader(file.into_file(), &child).map_err(|error| {
                            ContentError::Read {
                                path: shown(&child),
                                error: error.to_string(),
                            }
                        })?;
                    cache
                        .files
                        .insert(path.clone(), (stamp, sha.clone(), file_hints.clone()));
                    (sha, file_hints)
                }
            };
            merge_hints(&mut hints, file_hints);
            lines.insert(line_path(&child), sha);
        }
    }
    Ok(Content {
        digest: digest_of_lines(&lines),
        files: lines.len() as u64,
        version: hints.installation.or(hints.application),
    })
}

fn shown(relative: &Path) -> String {
    if relative.as_os_str().is_empty() {
        ".".into()
    } else {
        relative.display().to_string()
    }
}

fn merge_hints(into: &mut VersionHints, from: VersionHints) {
    if into.installation.is_none() {
        into.installation = from.installation;
    }
    if into.application.is_none() {
        into.application = from.application;
    }
}

/// Hashes a reader; for a small YAML file, also reads the version labels it carries.
fn hash_reader(mut reader: impl Read, relative: &Path) -> std::io::Result<(String, VersionHints)> {
    let yaml = matches!(
        relative
            .extension()
            .and_then(|extension| extension.to_str()),
        Some("yaml" | "yml")
    );
    let mut hasher = Sha256::new();
    let mut kept = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        total += read as u64;
        if yaml && total <= MAX_VERSION_FILE_BYTES {
            kept.extend_from_slice(&buffer[..read]);
        }
    }
    let hints = if yaml && total <= MAX_VERSION_FILE_BYTES {
        version_hints(&kept)
    } else {
        VersionHints::default()
    };
    Ok((hex(&hasher.finalize()), hints))
}

/// The version labels of a KOTS `Installation` or `Application` in a YAML text.
fn version_hints(bytes: &[u8]) -> VersionHints {
    let mut hints = VersionHints::default();
    let Ok(text) = std::str::from_utf8(bytes) else {
        return hints;
    };
    if !text.contains("kots.io/") {
        return hints;
    }
    let Ok(documents) = serde_saphyr::from_multiple::<serde_json::Value>(text) else {
        return hints;
    };
    for document in documents {
        if !document["apiVersion"]
            .as_str()
            .is_some_and(|api| api.starts_with("kots.io/"))
        {
            continue;
        }
        let text_of = |value: &serde_json::Value| match value {
            serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        };
        match document["kind"].as_str() {
            Some("Installation") => {
                hints.installation = hints
                    .installation
                    .or_else(|| text_of(&document["spec"]["versionLabel"]));
            }
            Some("Application") => {
                let labels = &document["metadata"]["labels"];
                hints.application = hints.application.or_else(|| {
                    text_of(&labels["app.kubernetes.io/version"])
                        .or_else(|| text_of(&labels["version"]))
                });
            }
            _ => {}
        }
    }
    hints
}

/// The content of the bundle at `path`, read as a stream (nothing is written).
pub fn bundle_content(
    path: &Path,
    limits: &BundleLimits,
    cache: &mut DigestCache,
) -> Result<Content, ContentError> {
    let metadata = std::fs::metadata(path).map_err(|error| ContentError::Read {
        path: ".".into(),
        error: error.to_string(),
    })?;
    let stamp = stamp_of(&metadata);
    cache.seen.insert(path.to_path_buf());
    if let Some((cached, content)) = cache.bundles.get(path)
        && *cached == stamp
    {
        return Ok(content.clone());
    }
    let content = walk_bundle(path, limits, None)?;
    cache
        .bundles
        .insert(path.to_path_buf(), (stamp, content.clone()));
    Ok(content)
}

/// Unpacks the bundle at `path` into `into` (which must not exist: it is created), under
/// `limits`, and returns the content it unpacked (the caller compares its digest with the one it
/// took).
pub fn unpack_bundle(
    path: &Path,
    limits: &BundleLimits,
    into: &Path,
) -> Result<Content, ContentError> {
    std::fs::create_dir_all(into).map_err(|error| ContentError::Write {
        path: into.display().to_string(),
        error,
    })?;
    walk_bundle(path, limits, Some(into))
}

fn walk_bundle(
    path: &Path,
    limits: &BundleLimits,
    unpack_into: Option<&Path>,
) -> Result<Content, ContentError> {
    let file = windlass_files::open_regular_file(path).map_err(|error| ContentError::Read {
        path: ".".into(),
        error: error.to_string(),
    })?;
    if file.size() > limits.max_compressed_bytes {
        return Err(ContentError::TooLarge {
            what: "bundle",
            limit: limits.max_compressed_bytes,
        });
    }
    let decoder = flate2::read::GzDecoder::new(
        file.into_file()
            .take(limits.max_compressed_bytes.saturating_add(1)),
    );
    let mut archive = tar::Archive::new(decoder);
    let archive_error = |error: std::io::Error| ContentError::Archive(error.to_string());
    let mut lines = BTreeMap::new();
    let mut hints = VersionHints::default();
    let mut entries_seen = 0u64;
    let mut unpacked = 0u64;
    for entry in archive.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(ContentError::TooManyFiles {
                limit: limits.max_entries,
            });
        }
        let raw_path = entry.path_bytes().into_owned();
        let raw_shown = String::from_utf8_lossy(&raw_path).into_owned();
        let relative = safe_relative(&raw_path).ok_or_else(|| ContentError::Escapes {
            path: raw_shown.clone(),
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if let Some(into) = unpack_into {
                let dir = into.join(&relative);
                std::fs::create_dir_all(&dir).map_err(|error| ContentError::Write {
                    path: relative.display().to_string(),
                    error,
                })?;
            }
            continue;
        }
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        if !kind.is_file() {
            let kind = if kind.is_symlink() {
                "symlink"
            } else if kind.is_hard_link() {
                "hard link"
            } else if kind.is_fifo() {
                "FIFO"
            } else if kind.is_character_special() || kind.is_block_special() {
                "device"
            } else {
                "special entry"
            };
            return Err(ContentError::NotRegular {
                path: relative.display().to_string(),
                kind,
            });
        }
        if relative.as_os_str().is_empty() || relative == Path::new(READY_MARKER) {
            continue;
        }
        let size = entry.header().size().map_err(archive_error)?;
        unpacked = unpacked.saturating_add(size);
        if unpacked > limits.max_unpacked_bytes {
            return Err(ContentError::TooLarge {
                what: "unpacked content",
                limit: limits.max_unpacked_bytes,
            });
        }
        let key = line_path(&relative);
        let (sha, file_hints) = match unpack_into {
            None => hash_reader(&mut entry, &relative).map_err(archive_error)?,
            Some(into) => {
                let target = into.join(&relative);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|error| ContentError::Write {
                        path: relative.display().to_string(),
                        error,
                    })?;
                }
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|error| ContentError::Write {
                        path: relative.display().to_string(),
                        error,
                    })?;
                let tee = TeeReader {
                    inner: &mut entry,
                    out: &mut out,
                };
                hash_reader(tee, &relative).map_err(|error| ContentError::Write {
                    path: relative.display().to_string(),
                    error,
                })?
            }
        };
        merge_hints(&mut hints, file_hints);
        if lines.insert(key.clone(), sha).is_some() {
            return Err(ContentError::Duplicate { path: key });
        }
    }
    Ok(Content {
        digest: digest_of_lines(&lines),
        files: lines.len() as u64,
        version: hints.installation.or(hints.application),
    })
}

/// A reader that writes what it reads to `out`.
struct TeeReader<'a, R: Read, W: std::io::Write> {
    inner: &'a mut R,
    out: &'a mut W,
}

impl<R: Read, W: std::io::Write> Read for TeeReader<'_, R, W> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.out.write_all(&buffer[..read])?;
        Ok(read)
    }
}

/// An archive path as a relative path with normal components only (`./` dropped); `None` when it
/// is absolute or has `..`.
fn safe_relative(raw: &[u8]) -> Option<PathBuf> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = PathBuf::new();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The modification time of `path` (the release directory or bundle itself), for ordering
/// releases without a version label.
pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
}

/// Compares two version labels: numeric runs as numbers, other runs as text (`1.10.0` after
/// `1.9.2`).
pub fn compare_versions(left: &str, right: &str) -> std::cmp::Ordering {
    fn parts(text: &str) -> Vec<(bool, &str)> {
        let mut parts = Vec::new();
        let mut start = 0;
        let bytes = text.as_bytes();
        for index in 1..=bytes.len() {
            if index == bytes.len()
                || bytes[index].is_ascii_digit() != bytes[index - 1].is_ascii_digit()
            {
                parts.push((bytes[start].is_ascii_digit(), &text[start..index]));
                start = index;
            }
        }
        parts
    }
    let text = |value: &str| value.trim_start_matches(['v', 'V']).to_string();
    let (left, right) = (text(left), text(right));
    let (left_parts, right_parts) = (parts(&left), parts(&right));
    for (a, b) in left_parts.iter().zip(&right_parts) {
        let order = match (a, b) {
            ((true, a), (true, b)) => {
                let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            }
            ((_, a), (_, b)) => a.cmp(b),
        };
        if order.is_ne() {
            return order;
        }
    }
    left_parts.len().cmp(&right_parts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.9.2", "1.10.0"), Less);
        assert_eq!(compare_versions("v2.0.0", "1.99"), Greater);
        assert_eq!(compare_versions("1.0.0", "1.0.0"), Equal);
        assert_eq!(compare_versions("1.0", "1.0.1"), Less);
    }

    #[test]
    fn archive_paths_that_escape_are_refused() {
        assert_eq!(
            safe_relative(b"./a/b.yaml"),
            Some(PathBuf::from("a/b.yaml"))
        );
        assert_eq!(safe_relative(b"../x"), None);
        assert_eq!(safe_relative(b"/etc/passwd"), None);
        assert_eq!(safe_relative(b"a/../../x"), None);
    }
}
