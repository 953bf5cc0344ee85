//! Interrupted creation: a process killed while it creates a state directory (its first
//! milliseconds: the directory, `events.redb`, `blobs/blobs.redb`, `fingerprint.key`) must leave
//! one that the next command opens. A real process (the `open_state_dir` example) is SIGKILLed
//! at random moments of its run, and the directory it leaves is then opened read-only and for
//! writing. The files older windlass versions could leave (a zero-length database file) open as
//! empty ones; a database file with content that is not a redb database is reported, never
//! discarded.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use windlass_state::{Backend, NewEvent, SchemaRegistry, StateDir, StateDirError};

use crate::child_writer::example_binary;

const ROUNDS: usize = 40;

fn schemas() -> Arc<SchemaRegistry> {
    Arc::new(SchemaRegistry::new(&[]).expect("an empty schema table is valid"))
}

/// A random fraction in [0, 1), from the standard library's per-process random hash keys.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (random % 1_000_000) as f64 / 1_000_000.0
}

/// Runs `open_state_dir` on `state` to the end and returns how long it took.
fn run_to_the_end(state: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(example_binary("open_state_dir"))
        .arg(state)
        .output()
        .expect("run open_state_dir");
    assert!(
        output.status.success(),
        "open_state_dir failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

/// Names in `dir` (and `dir/blobs`) other than the state directory's own files.
fn leftovers(state: &Path) -> Vec<String> {
    let expected = [
        "events.redb",
        "blobs",
        "blobs.redb",
        "fingerprint.key",
        "locks",
    ];
    [state.to_path_buf(), state.join("blobs")]
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flatten()
        .map(|entry| entry.expect("directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !expected.contains(&name.as_str()))
        .collect()
}

/// Opens what a killed process left: read-only first (which creates nothing), then for writing,
/// which must also be able to append and leave no half-created file behind.
fn check_opens(state: &Path, round: usize) {
    if state.exists() {
        let view =
            StateDir::open_read_only(state, Backend::Redb, schemas()).unwrap_or_else(|error| {
                panic!("round {round}: read-only open after SIGKILL failed: {error}")
            });
        view.log
            .install_ids()
            .unwrap_or_else(|error| panic!("round {round}: reading the log failed: {error}"));
    }
    let opened = StateDir::open(state, Backend::Redb, schemas())
        .unwrap_or_else(|error| panic!("round {round}: open after SIGKILL failed: {error}"));
    opened
        .log
        .append(vec![NewEvent::new(
            "after-the-kill",
            "creation@test",
            "Appended",
            1,
            json!({}),
        )])
        .unwrap_or_else(|error| panic!("round {round}: append after SIGKILL failed: {error}"));
    let blob = opened.blobs.put(b"after the kill").expect("stage a blob");
    opened.blobs.sync().expect("store a blob");
    assert_eq!(
        opened.blobs.get(&blob).expect("read the blob back"),
        b"after the kill"
    );
    drop(opened);
    let left = leftovers(state);
    assert!(
        left.is_empty(),
        "round {round}: files of an interrupted creation are left: {left:?}"
    );
}

#[test]
fn a_state_directory_killed_while_first_created_opens_again() {
    let scratch = tempfile::tempdir().expect("scratch directory");
    // How long a whole run takes here: the kills land anywhere in it.
    let whole_run = run_to_the_end(&scratch.path().join("measure"));
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let state = scratch.path().join(format!("round-{round}"));
        let mut child = Command::new(example_binary("open_state_dir"))
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn open_state_dir");
        std::thread::sleep(whole_run.mul_f64(random_fraction()));
        child.kill().expect("SIGKILL open_state_dir");
        let status = child.wait().expect("reap open_state_dir");
        if !status.success() {
            interrupted += 1;
        }
        check_opens(&state, round);
    }
    assert!(
        interrupted >= ROUNDS / 4,
        "only {interrupted} of {ROUNDS} kills landed before the run ended ({whole_run:?})"
    );
}

#[test]
fn zero_length_database_files_open_as_empty_ones() {
    // A windlass before atomic creation, killed right after creating the files, left them empty.
    let scratch = tempfile::tempdir().expect("scratch directory");
    let state = scratch.path();
    fs::create_dir(state.join("blobs")).expect("blobs directory");
    fs::write(state.join("events.redb"), b"").expect("empty log file");
    fs::write(state.join("blobs").join("blobs.redb"), b"").expect("empty blob file");
    let view = StateDir::open_read_only(state, Backend::Redb, schemas()).expect("read-only open");
    assert!(view.log.install_ids().expect("read the log").is_empty());
    drop(view);
    check_opens(state, 0);
    assert!(fs::metadata(state.join("events.redb")).expect("log").len() > 0);
}

#[test]
fn a_half_created_temporary_database_is_removed_by_the_next_open() {
    let scratch = tempfile::tempdir().expect("scratch directory");
    let state = scratch.path();
    fs::create_dir(state.join("blobs")).expect("blobs directory");
    // What a process killed while redb was initialising the file under its temporary name
    // leaves: the file's size set, no header yet.
    for temporary in [
        state.join("events.redb.creating"),
        state.join("blobs").join("blobs.redb.creating"),
    ] {
        let file = fs::File::create(&temporary).expect("temporary file");
        file.set_len(1024 * 1024).expect("sparse length");
    }
    let view = StateDir::open_read_only(state, Backend::Redb, schemas()).expect("read-only open");
    assert!(view.log.install_ids().expect("read the log").is_empty());
    drop(view);
    check_opens(state, 0);
}

#[test]
fn a_log_file_that_is_not_a_redb_database_is_reported_and_kept() {
    let scratch = tempfile::tempdir().expect("scratch directory");
    let state = scratch.path();
    let log = state.join("events.redb");
    // Not zero-length: whatever it is, it may hold something, so it is never replaced.
    let mut contents = vec![0u8; 4096];
    contents[100] = 1;
    fs::write(&log, &contents).expect("a file that is not a database");
    let error = match StateDir::open(state, Backend::Redb, schemas()) {
        Ok(_) => panic!("a file that is not a redb database opened as a log"),
        Err(error) => error,
    };
    assert!(matches!(error, StateDirError::Store(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("events.redb"), "{message}");
    assert_eq!(
        fs::read(&log).expect("log file"),
        contents,
        "the file was changed"
    );
}

/// `strace`, which shows the fsyncs the durability test looks for.
fn strace() -> Command {
    let found = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "strace is missing: run 'apt-get install -y strace' (scripts/test.sh installs it)"
    );
    Command::new("strace")
}

/// What the durability test reads from an strace line: an entry created in a directory, or a
/// directory fsynced.
enum Traced {
    Created { directory: String, entry: String },
    Synced(String),
}

/// The last quoted path of `line` (the new name of a rename or link, the directory made).
fn last_quoted(line: &str) -> Option<&str> {
    let end = line.rfind('"')?;
    let start = line[..end].rfind('"')?;
    Some(&line[start + 1..end])
}

fn traced(line: &str) -> Option<Traced> {
    if !line.ends_with("= 0") {
        return None;
    }
    let call = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
    if call.starts_with("fsync(") || call.starts_with("fdatasync(") {
        // `fsync(5</tmp/x/state>) = 0`
        let start = call.find('<')? + 1;
        let end = call.rfind('>')?;
        return Some(Traced::Synced(call[start..end].to_string()));
    }
    let creates = [
        "mkdir(",
        "mkdirat(",
        "rename(",
        "renameat(",
        "renameat2(",
        "link(",
        "linkat(",
    ];
    if creates.iter().any(|name| call.starts_with(name)) {
        let path = Path::new(last_quoted(call)?);
        return Some(Traced::Created {
            directory: path.parent()?.display().to_string(),
            entry: path.display().to_string(),
        });
    }
    None
}

/// Every directory and database file a first open creates, and the fingerprint key, are made
/// durable: after each is created (made, renamed or linked into place) the directory holding it
/// is fsynced. Checked with `strace` on a real process.
#[test]
fn each_new_entry_of_a_new_state_directory_is_fsynced_into_its_directory() {
    let scratch = tempfile::tempdir().expect("scratch directory");
    let state = scratch.path().join("state");
    let trace = scratch.path().join("trace");
    let output = strace()
        .args(["-f", "-y", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=fsync,fdatasync,mkdir,mkdirat,rename,renameat,renameat2,link,linkat",
        ])
        .arg(example_binary("open_state_dir"))
        .arg(&state)
        .output()
        .expect("run open_state_dir under strace");
    assert!(
        output.status.success(),
        "open_state_dir under strace failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = fs::read_to_string(&trace).expect("strace output");
    let mut unsynced: Vec<(String, String)> = Vec::new();
    for line in trace.lines() {
        match traced(line) {
            Some(Traced::Created { directory, entry }) => unsynced.push((directory, entry)),
            Some(Traced::Synced(directory)) => {
                unsynced.retain(|(held_in, _)| *held_in != directory)
            }
            None => {}
        }
    }
    let made: Vec<String> = [
        "events.redb",
        "blobs",
        "blobs/blobs.redb",
        "fingerprint.key",
    ]
    .iter()
    .map(|name| state.join(name).display().to_string())
    .chain([state.display().to_string()])
    .collect();
    for entry in &made {
        assert!(
            trace.contains(&format!("\"{entry}\"")),
            "the trace shows no creation of {entry}:\n{trace}"
        );
    }
    assert!(
        unsynced.is_empty(),
        "created without an fsync of their directory afterwards: {:?}\n{trace}",
        unsynced.iter().map(|(_, entry)| entry).collect::<Vec<_>>()
    );
}
