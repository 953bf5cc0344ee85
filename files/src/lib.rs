//! The one way windlass reads a file a user handed it: `--license`, `--config`, `--registries`,
//! `--known-images`, the proxy's configuration and every file it names, and each file of a
//! release (symlinks included). A path may name anything, so [`open_regular_file`] opens it
//! without blocking (`O_NONBLOCK`: opening a FIFO with no writer would otherwise wait for ever),
//! then asks the opened handle (`fstat`, not a `stat` of the path beforehand, which a swap could
//! outrun) whether it is a regular file, and refuses anything else by its kind. Reading stops one
//! byte past a cap, so `/dev/zero`, a growing file or one that lies about its size costs at most
//! the cap in memory.
//!
//! Errors say what is wrong without naming the file: the caller names it the way the user wrote
//! it (`--license /dev/zero: not a regular file (character device)`). [`yaml_problem`] describes a
//! YAML parse error in a file that may hold credentials without quoting the file.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

mod yaml_problem;

pub use yaml_problem::{YamlProblem, yaml_problem};

/// One mebibyte, the unit caps are usually written in.
pub const MIB: u64 = 1024 * 1024;

/// Why a file was not read. The message names neither the file nor anything in it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed: no such file, permission denied, an I/O error. The OS error is
    /// part of the message (and not a `source`, so a chain of causes never prints it twice).
    #[error("{error}")]
    Io {
        /// The OS error.
        error: std::io::Error,
    },
    /// The path names a directory, FIFO, device or socket.
    #[error("not a regular file ({kind})")]
    NotRegular {
        /// What it is instead, e.g. `character device`.
        kind: &'static str,
    },
    /// The file holds more than the cap.
    #[error("larger than {}", describe_size(*cap))]
    TooLarge {
        /// The cap, in bytes.
        cap: u64,
        /// The size the file reported when it was opened, or what was read if that was more.
        size: u64,
    },
    /// Text was expected but the file is not UTF-8.
    #[error("not UTF-8 text (byte {valid_up_to} is not valid)")]
    NotUtf8 {
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: usize,
    },
}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> ReadError {
        ReadError::Io { error }
    }
}

/// A regular file, opened and checked, not read yet.
#[derive(Debug)]
pub struct RegularFile {
    file: File,
    size: u64,
}

impl RegularFile {
    /// The size the file had when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The opened file, for a caller that streams it and caps what it reads itself (a line at a
    /// time, say).
    pub fn into_file(self) -> File {
        self.file
    }

    /// Reads the whole file, refusing it once it holds more than `cap` bytes (a file reporting a
    /// larger size is refused without reading it).
    pub fn read_capped(self, cap: u64) -> Result<Vec<u8>, ReadError> {
        if self.size > cap {
            return Err(ReadError::TooLarge {
                cap,
                size: self.size,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.file
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)?;
        let read = bytes.len() as u64;
        if read > cap {
            return Err(ReadError::TooLarge {
                cap,
                size: read.max(self.size),
            });
        }
        Ok(bytes)
    }
}

/// Opens `path` for reading if it is a regular file (following symlinks), without ever blocking
/// on a FIFO or device, and checks the opened handle.
pub fn open_regular_file(path: &Path) -> Result<RegularFile, ReadError> {
    let descriptor = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let file = File::from(descriptor);
    let metadata = file.metadata()?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_dir() {
            "directory"
        } else if file_type.is_fifo() {
            "FIFO"
        } else if file_type.is_char_device() {
            "character device"
        } else if file_type.is_block_device() {
            "block device"
        } else if file_type.is_socket() {
            "socket"
        } else {
            "special file"
        };
        return Err(ReadError::NotRegular { kind });
    }
    Ok(RegularFile {
        file,
        size: metadata.len(),
    })
}

/// Reads the regular file at `path`, at most `cap` bytes of it (see [`open_regular_file`]).
pub fn read_regular_file(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    open_regular_file(path)?.read_capped(cap)
}

/// [`read_regular_file`] for text: the bytes must be UTF-8.
pub fn read_regular_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    let bytes = read_regular_file(path, cap)?;
    String::from_utf8(bytes).map_err(|error| ReadError::NotUtf8 {
        valid_up_to: error.utf8_error().valid_up_to(),
    })
}

/// A size as people write caps: `1 MiB`, `16 KiB`, `100 bytes`.
pub fn describe_size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}
