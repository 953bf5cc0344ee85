//! The refusals of `windlass-files` on real special files: a FIFO with no writer (opening it must
//! not block), `/dev/zero` (reading it must stop at the cap), a directory, a symlink to a FIFO, and
//! a regular file over the cap. Each read runs on a thread with a deadline, so a regression shows
//! as a failure, not a hung test run.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use windlass_files::{MIB, ReadError, read_regular_file, read_regular_text};

/// Reads `path` on another thread, failing the test if that takes more than five seconds.
fn read_within_deadline(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let (sender, receiver) = mpsc::channel();
    let path: PathBuf = path.to_owned();
    std::thread::spawn(move || {
        let _ = sender.send(read_regular_file(&path, cap));
    });
    receiver
        .recv_timeout(Duration::from_secs(5))
        .expect("reading returns within five seconds")
}

fn make_fifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
}

#[test]
fn a_fifo_without_a_writer_is_refused_at_once() {
    let directory = tempfile::tempdir().unwrap();
    let fifo = directory.path().join("pipe");
    make_fifo(&fifo);
    let error = read_within_deadline(&fifo, MIB).unwrap_err();
    assert_eq!(error.to_string(), "not a regular file (FIFO)");
}

#[test]
fn a_symlink_to_a_fifo_is_refused_at_once() {
    let directory = tempfile::tempdir().unwrap();
    let fifo = directory.path().join("pipe");
    make_fifo(&fifo);
    let link = directory.path().join("link.yaml");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let error = read_within_deadline(&link, MIB).unwrap_err();
    assert_eq!(error.to_string(), "not a regular file (FIFO)");
}

#[test]
fn devices_and_directories_are_refused_by_kind() {
    let error = read_within_deadline(Path::new("/dev/zero"), MIB).unwrap_err();
    assert_eq!(error.to_string(), "not a regular file (character device)");
    let directory = tempfile::tempdir().unwrap();
    let error = read_within_deadline(directory.path(), MIB).unwrap_err();
    assert_eq!(error.to_string(), "not a regular file (directory)");
}

#[test]
fn a_file_over_the_cap_is_refused_and_one_at_the_cap_is_read() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("big");
    std::fs::write(&path, vec![b'x'; 1024 + 1]).unwrap();
    let error = read_within_deadline(&path, 1024).unwrap_err();
    assert_eq!(error.to_string(), "larger than 1 KiB");
    assert!(matches!(error, ReadError::TooLarge { size: 1025, .. }));
    std::fs::write(&path, vec![b'x'; 1024]).unwrap();
    assert_eq!(read_within_deadline(&path, 1024).unwrap().len(), 1024);
    assert_eq!(windlass_files::describe_size(MIB), "1 MiB");
    assert_eq!(windlass_files::describe_size(1000), "1000 bytes");
}

#[test]
fn a_missing_file_names_the_os_error_once_and_text_must_be_utf8() {
    let directory = tempfile::tempdir().unwrap();
    let error = read_within_deadline(&directory.path().join("nope"), MIB).unwrap_err();
    assert_eq!(error.to_string(), "No such file or directory (os error 2)");
    assert!(std::error::Error::source(&error).is_none());
    let path = directory.path().join("latin1");
    std::fs::write(&path, b"caf\xe9\n").unwrap();
    let error = read_regular_text(&path, MIB).unwrap_err();
    assert!(
        matches!(error, ReadError::NotUtf8 { valid_up_to: 3 }),
        "{error}"
    );
}
