//! Claiming an install's output directory before anything is written into it. windlass replaces
//! whole trees there (`upstream/`, `base/`, `rendered/this-cluster/`), so it may only write into a
//! directory it wrote before, or a new or empty one: [`claim`] refuses the root directory, the
//! release directory and anything inside it, the state directory and anything inside it other than
//! its `installs/`, a directory whose replaced trees would hold the release or the state, a path
//! that is a file, and a non-empty directory without windlass's marker file ([`MARKER_FILE`])
//! unless forced — all before touching anything. It then takes an advisory lock
//! ([`LOCK_FILE`], `flock`) held for the whole install, so that two installs never write one
//! directory at once, and records the install in the marker (the newest [`MARKER_INSTALLS`]; a
//! marker is read up to [`MAX_MARKER_BYTES`], and a larger one refused unread).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Dir, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::output::{FileRead, OutputDir};

/// The marker file windlass writes into every output directory it uses. It lists the installs
/// that wrote there (the newest [`MARKER_INSTALLS`]) (`install <id>` lines) and holds nothing secret.
pub const MARKER_FILE: &str = ".windlass-output";

/// The most of a marker file that is read: a marker windlass writes lists at most
/// [`MARKER_INSTALLS`] installs, a few KiB; older versions listed every install, so the cap leaves
/// room for theirs. A larger file is refused ([`ClaimError::MarkerTooLarge`]) without being read.
pub const MAX_MARKER_BYTES: u64 = 64 * 1024;

/// How many installs a marker lists: the newest ones.
pub const MARKER_INSTALLS: usize = 100;

/// The lock file in the output directory: `flock`ed by the install writing there, and holding
/// that process's id and install id for a second install to report.
pub const LOCK_FILE: &str = ".windlass.lock";

/// The trees windlass replaces whole inside an output directory.
pub const REPLACED_TREES: [&str; 3] = ["upstream", "base", "rendered/this-cluster"];

/// Why an output directory cannot be used. Every message starts with the directory.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The directory is `/`.
    #[error("{path}: refusing to write into the root directory")]
    Root {
        /// The directory asked for.
        path: PathBuf,
    },
    /// The directory is, or is inside, a directory windlass must not write into (the release or
    /// the state directory).
    #[error("{path}: {relation} the {what} {protected}; choose a directory outside it")]
    Protected {
        /// The directory asked for.
        path: PathBuf,
        /// `is` or `is inside`.
        relation: &'static str,
        /// What the protected directory is, e.g. `release directory`.
        what: String,
        /// The protected directory.
        protected: PathBuf,
    },
    /// A directory windlass replaces inside the output directory would hold the release or the
    /// state directory.
    #[error(
        "{path}: windlass replaces {tree}/ in it, which holds the {what} {protected}; choose another directory"
    )]
    HoldsProtected {
        /// The directory asked for.
        path: PathBuf,
        /// The tree, relative to the directory.
        tree: &'static str,
        /// What the protected directory is.
        what: String,
        /// The protected directory.
        protected: PathBuf,
    },
    /// The path, or one of its parents, is not a directory.
    #[error("{path}: {}is a file, not a directory", not_directory_prefix(.path, .file))]
    NotADirectory {
        /// The directory asked for.
        path: PathBuf,
        /// The path that exists and is not a directory (the directory itself or a parent).
        file: PathBuf,
    },
    /// The directory holds files and windlass did not write it.
    #[error(
        "{path}: the directory is not empty and was not written by windlass (no {MARKER_FILE} marker; it holds {found}); \
         choose a new or empty directory, or pass --force to let windlass replace upstream/, base/ and rendered/this-cluster/ in it"
    )]
    NotOurs {
        /// The directory asked for.
        path: PathBuf,
        /// Some of its entries, for the message.
        found: String,
    },
    /// Another process holds the directory's lock.
    #[error(
        "{path}: another windlass install is writing into this directory ({holder}); wait for it to finish or choose another directory"
    )]
    Busy {
        /// The directory.
        path: PathBuf,
        /// Who holds the lock, as recorded in the lock file.
        holder: String,
    },
    /// The marker file is larger than any marker windlass writes ([`MAX_MARKER_BYTES`]).
    #[error(
        "{path}: its {MARKER_FILE} is larger than {}, which no marker windlass writes is; remove it and try again",
        windlass_files::describe_size(MAX_MARKER_BYTES)
    )]
    MarkerTooLarge {
        /// The directory.
        path: PathBuf,
    },
    /// Writing the marker failed.
    #[error("{path}: {source}")]
    Marker {
        /// The directory.
        path: PathBuf,
        /// What went wrong (it names the marker file).
        source: crate::output::OutputError,
    },
    /// The filesystem failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn not_directory_prefix(path: &Path, file: &Path) -> String {
    if path == file {
        String::new()
    } else {
        format!("{} ", file.display())
    }
}

/// A directory windlass must never write into, nor replace a tree holding.
#[derive(Debug, Clone)]
pub struct Protected {
    /// What it is, for messages (`release directory`).
    pub what: String,
    /// The directory, canonical.
    pub path: PathBuf,
    /// A directory inside it that output may go to (the state directory's `installs/`).
    pub allowed_inside: Option<PathBuf>,
}

/// What [`claim`] needs to know.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The output directory, absolute (it need not exist).
    pub out_dir: &'a Path,
    /// The install that will write there, recorded in the marker and the lock file.
    pub install_id: &'a str,
    /// Use a non-empty directory without the marker anyway (`--force`).
    pub force: bool,
    /// The directory is known to be windlass's although it may lack the marker (the install being
    /// resumed recorded writing there; the marker may have been lost with a crash).
    pub known_output: bool,
    /// Directories never to write into.
    pub protected: &'a [Protected],
}

/// An output directory claimed for one install: open, marked, and locked until dropped.
#[derive(Debug)]
pub struct OutputClaim {
    out: OutputDir,
    _lock: fs::File,
}

impl OutputClaim {
    /// The claimed directory.
    pub fn out(&self) -> &OutputDir {
        &self.out
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClaimError + '_ {
    move |source| ClaimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn errno_error(path: &Path) -> impl FnOnce(Errno) -> ClaimError + '_ {
    move |error| ClaimError::Io {
        path: path.to_path_buf(),
        source: error.into(),
    }
}

/// `resolved` (a path whose symbolic links are resolved) with `rest` (parts that do not exist
/// yet, so hold no links) appended, `.` and `..` applied by name.
pub fn append_by_name(mut resolved: PathBuf, rest: &Path) -> PathBuf {
    for component in rest.components() {
        match component {
            Component::Normal(name) => resolved.push(name),
            Component::ParentDir => {
                resolved.pop();
            }
            _ => {}
        }
    }
    resolved
}

/// `path` (absolute) with symlinks and `..` resolved as far as it exists, and the rest appended
/// with `.` and `..` applied by name (what does not exist holds no symlinks). Nothing is created.
fn resolve(path: &Path) -> Result<PathBuf, ClaimError> {
    for existing in path.ancestors() {
        let metadata = match fs::metadata(existing) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) if error.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) => continue,
            Err(error) => return Err(io_error(existing)(error)),
        };
        if !metadata.is_dir() {
            return Err(ClaimError::NotADirectory {
                path: path.to_path_buf(),
                file: existing.to_path_buf(),
            });
        }
        let resolved = fs::canonicalize(existing).map_err(io_error(existing))?;
        let rest = path
            .strip_prefix(existing)
            .expect("an ancestor is a prefix");
        return Ok(append_by_name(resolved, rest));
    }
    Err(ClaimError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no part of it exists"),
    })
}

/// Refuses `/`, protected directories and directories whose replaced trees hold one.
fn check_place(path: &Path, target: &Path, protected: &[Protected]) -> Result<(), ClaimError> {
    if target.parent().is_none() {
        return Err(ClaimError::Root {
            path: path.to_path_buf(),
        });
    }
    for guarded in protected {
        let allowed = guarded
            .allowed_inside
            .as_deref()
            .is_some_and(|allowed| target.starts_with(allowed) && target != allowed);
        if target.starts_with(&guarded.path) && !allowed {
            return Err(ClaimError::Protected {
                path: path.to_path_buf(),
                relation: if target == guarded.path {
                    "is"
                } else {
                    "is inside"
                },
                what: guarded.what.clone(),
                protected: guarded.path.clone(),
            });
        }
        for tree in REPLACED_TREES {
            if guarded.path.starts_with(target.join(tree)) {
                return Err(ClaimError::HoldsProtected {
                    path: path.to_path_buf(),
                    tree,
                    what: guarded.what.clone(),
                    protected: guarded.path.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Whether `name` inside `directory` is a regular file (a symlink is not).
fn is_regular_file(directory: &OwnedFd, name: &str) -> Result<bool, Errno> {
    match rustix::fs::statat(directory, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile),
        Err(Errno::NOENT) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Up to five entries of `directory` other than the lock file, for the message refusing it, or
/// `None` when it holds nothing else.
fn other_entries(directory: &OwnedFd, path: &Path) -> Result<Option<String>, ClaimError> {
    let mut names = Vec::new();
    let mut count = 0;
    for entry in Dir::read_from(directory).map_err(errno_error(path))? {
        let entry = entry.map_err(errno_error(path))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." || name == LOCK_FILE {
            continue;
        }
        count += 1;
        if names.len() < 5 {
            names.push(name);
        }
    }
    if count == 0 {
        return Ok(None);
    }
    names.sort();
    let more = if count > names.len() {
        format!(" and {} more", count - names.len())
    } else {
        String::new()
    };
    Ok(Some(format!("{}{more}", names.join(", "))))
}

/// Takes the lock file's `flock` without waiting, then records who holds it. `Busy` names the
/// holder as its lock file says.
fn lock(directory: &OwnedFd, path: &Path, install_id: &str) -> Result<fs::File, ClaimError> {
    let lock_path = path.join(LOCK_FILE);
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = rustix::fs::openat(directory, LOCK_FILE, flags, Mode::from_raw_mode(0o644))
        .map_err(errno_error(&lock_path))?;
    let mut file = fs::File::from(file);
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            // What the holder wrote; a holder that has not written yet is reported as unknown.
            let _ = (&file).take(256).read_to_string(&mut holder);
            let holder = holder.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(ClaimError::Busy {
                path: path.to_path_buf(),
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder
                },
            });
        }
        Err(error) => return Err(errno_error(&lock_path)(error)),
    }
    let record = format!("pid {}, install {install_id}\n", std::process::id());
    file.set_len(0).map_err(io_error(&lock_path))?;
    file.write_all(record.as_bytes())
        .map_err(io_error(&lock_path))?;
    Ok(file)
}

/// The marker's text: a header and one `install <id>` line per install that wrote here, the
/// earlier ones read from `previous`, the newest [`MARKER_INSTALLS`] of them.
fn marker_text(previous: Option<&[u8]>, install_id: &str) -> String {
    let mut installs: Vec<String> = previous
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.strip_prefix("install "))
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect();
    if !installs.iter().any(|id| id == install_id) {
        installs.push(install_id.to_string());
    }
    let dropped = installs.len().saturating_sub(MARKER_INSTALLS);
    installs.drain(..dropped);
    let mut text = String::from(
        "# windlass output directory: windlass replaces upstream/, base/ and rendered/this-cluster/ here.\n\
         # Installs that wrote here:\n",
    );
    for id in installs {
        text.push_str(&format!("install {id}\n"));
    }
    text
}

/// Claims `request.out_dir` for one install: checks it may be written (nothing is created or
/// changed when it may not), creates it if missing, takes its lock and records the install in its
/// marker file, durably.
pub fn claim(request: &ClaimRequest<'_>) -> Result<OutputClaim, ClaimError> {
    let path = request.out_dir;
    let target = resolve(path)?;
    check_place(path, &target, request.protected)?;
    fs::create_dir_all(&target).map_err(io_error(path))?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let directory = match rustix::fs::open(&target, flags, Mode::empty()) {
        Ok(directory) => directory,
        Err(Errno::NOTDIR | Errno::LOOP) => {
            return Err(ClaimError::NotADirectory {
                path: path.to_path_buf(),
                file: target,
            });
        }
        Err(error) => return Err(errno_error(path)(error)),
    };
    let marked = is_regular_file(&directory, MARKER_FILE).map_err(errno_error(path))?;
    if !marked
        && !request.force
        && !request.known_output
        && let Some(found) = other_entries(&directory, path)?
    {
        return Err(ClaimError::NotOurs {
            path: path.to_path_buf(),
            found,
        });
    }
    let lock = lock(&directory, path, request.install_id)?;
    let marker_error = |source| ClaimError::Marker {
        path: path.to_path_buf(),
        source,
    };
    let out = OutputDir::create(&target).map_err(marker_error)?;
    let previous = match out
        .read_file(MARKER_FILE, MAX_MARKER_BYTES)
        .map_err(marker_error)?
    {
        FileRead::Bytes(bytes) => Some(bytes),
        FileRead::Missing => None,
        FileRead::Larger => {
            return Err(ClaimError::MarkerTooLarge {
                path: path.to_path_buf(),
            });
        }
    };
    let text = marker_text(previous.as_deref(), request.install_id);
    if previous.as_deref() != Some(text.as_bytes()) {
        out.write(MARKER_FILE, text.as_bytes(), 0o644)
            .map_err(marker_error)?;
        // The marker is what lets the next install use this directory: it must survive a crash.
        let marker_path = target.join(MARKER_FILE);
        fs::File::open(&marker_path)
            .and_then(|file| file.sync_all())
            .map_err(io_error(&marker_path))?;
        rustix::fs::fsync(&directory).map_err(errno_error(path))?;
    }
    Ok(OutputClaim { out, _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_lists_each_install_once() {
        let first = marker_text(None, "one");
        assert!(first.ends_with("install one\n"), "{first}");
        let second = marker_text(Some(first.as_bytes()), "two");
        assert!(second.ends_with("install one\ninstall two\n"), "{second}");
        assert_eq!(marker_text(Some(second.as_bytes()), "one"), second);
    }

    /// However many installs wrote into a directory, the marker keeps the newest
    /// [`MARKER_INSTALLS`], well within what is read of a marker.
    #[test]
    fn the_marker_keeps_the_newest_installs_within_its_cap() {
        let mut text = marker_text(None, "20261128-000000-000000");
        for n in 1..=250 {
            text = marker_text(Some(text.as_bytes()), &format!("20261128-000000-{n:06}"));
        }
        let installs: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("install "))
            .collect();
        assert_eq!(installs.len(), MARKER_INSTALLS);
        assert_eq!(installs[0], "20261128-000000-000151");
        assert_eq!(installs[MARKER_INSTALLS - 1], "20261128-000000-000250");
        assert!((text.len() as u64) < MAX_MARKER_BYTES / 8, "{}", text.len());
    }

    #[test]
    fn places_inside_protected_directories_are_refused() {
        let protected = [
            Protected {
                what: "release directory".into(),
                path: PathBuf::from("/srv/release"),
                allowed_inside: None,
            },
            Protected {
                what: "state directory".into(),
                path: PathBuf::from("/srv/state"),
                allowed_inside: Some(PathBuf::from("/srv/state/installs")),
            },
        ];
        let check = |target: &str| check_place(Path::new(target), Path::new(target), &protected);
        assert!(matches!(check("/"), Err(ClaimError::Root { .. })));
        assert!(matches!(
            check("/srv/release"),
            Err(ClaimError::Protected { relation: "is", .. })
        ));
        assert!(matches!(
            check("/srv/release/out"),
            Err(ClaimError::Protected {
                relation: "is inside",
                ..
            })
        ));
        assert!(matches!(
            check("/srv/state"),
            Err(ClaimError::Protected { .. })
        ));
        assert!(matches!(
            check("/srv/state/installs"),
            Err(ClaimError::Protected { .. })
        ));
        assert!(check("/srv/state/installs/20261126-1").is_ok());
        assert!(check("/srv/out").is_ok());
        assert!(check("/srv").is_ok(), "/srv/base would hold neither");
        let nested = [Protected {
            what: "release directory".into(),
            path: PathBuf::from("/srv/base/release"),
            allowed_inside: None,
        }];
        assert!(matches!(
            check_place(Path::new("/srv"), Path::new("/srv"), &nested),
            Err(ClaimError::HoldsProtected { tree: "base", .. })
        ));
    }
}
