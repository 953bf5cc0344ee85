//! Damaged and read-only state directories, through the real binary: byte flips inside the stored
//! blob values of `blobs.redb` (found by searching the file for a release file's bytes) are named
//! by `verify-log` and make a resumed install fail with a recovery hint that works; 50 random flips
//! in that region are each detected or provably harmless; an event record that no longer decodes
//! is named by `show` and `history --json` (which list the other installs) and makes `install`
//! refuse to append; the read-only commands create and change nothing, work without write access,
//! and print aligned stage columns and one reason per rewritten image.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use windlass_state::{BlobId, BlobStore};

use super::{OFFLINE_INSTALL, files_under, json, quickstart, windlass};

/// Runs `command` to completion, killing it and failing the test after `seconds`.
pub(crate) fn run_within(command: &mut Command, seconds: u64) -> Output {
    windlass_testkit::output_within(command, Duration::from_secs(seconds), "windlass")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every non-license release file of the quickstart, by relative path.
fn quickstart_files() -> BTreeMap<String, Vec<u8>> {
    let root = quickstart();
    files_under(&root)
        .into_iter()
        .filter(|path| !path.ends_with("userdata/license.yaml"))
        .map(|path| {
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (relative, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// Every offset at which `needle` occurs in `haystack`.
pub(crate) fn offsets_of(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(offset, _)| offset)
        .collect()
}

/// Edits record `global_seq` of the event log `log` with plain redb, as someone with a stock tool
/// would: its record (decompressed when windlass stored it as a zstd frame) is handed to `edit`
/// and stored back as plain JSON, as a windlass before compression stored every record.
pub(crate) fn edit_stored_record(log: &Path, global_seq: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let db = redb::Database::create(log).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut events = txn.open_table(EVENTS).unwrap();
        let stored = redb::ReadableTable::get(&events, global_seq)
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let mut record = if stored.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            zstd::decode_all(stored.as_slice()).unwrap()
        } else {
            stored
        };
        edit(&mut record);
        events.insert(global_seq, record.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

pub(crate) fn flip_byte(path: &Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

/// Starts an install of the quickstart and kills it (SIGKILL) once `fetch_base` has completed,
/// so that the next install resumes it and reads the stored release back.
fn install_killed_after_fetch_base(state: &Path) {
    let mut child = windlass(state)
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .env("WINDLASS_PAUSE_AFTER_STAGE", "fetch_base")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (sender, announced) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 256];
        while let Ok(read) = stderr.read(&mut buffer) {
            if read == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..read]);
            if text(&seen).contains("paused after stage fetch_base") {
                let _ = sender.send(());
            }
        }
    });
    announced
        .recv_timeout(Duration::from_secs(60))
        .expect("windlass announces the pause within 60 s");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_corrupted_blob_is_named_by_verify_log_and_a_second_install_repairs_it() {
    let state = tempfile::tempdir().unwrap();
    install_killed_after_fetch_base(state.path());
    let blobs_file = state.path().join("blobs/blobs.redb");
    let api = std::fs::read(quickstart().join("manifests/api.yaml")).unwrap();
    let api_blob = BlobId::of(&api).to_string();
    let found = offsets_of(&std::fs::read(&blobs_file).unwrap(), &api);
    assert!(
        !found.is_empty(),
        "the blob of manifests/api.yaml is stored"
    );
    for offset in &found {
        flip_byte(&blobs_file, offset + api.len() / 2, 0x20);
    }

    let verify = run_within(windlass(state.path()).args(["verify-log", "--json"]), 60);
    assert_eq!(verify.status.code(), Some(4), "{}", text(&verify.stderr));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let bad = &report["bad_blobs"][0];
    assert_eq!(bad["blob"], api_blob.as_str(), "{report:#}");
    assert_eq!(bad["problem"], "corrupted");
    let install_id = bad["referenced_by"][0]["install_id"].as_str().unwrap();
    assert!(
        bad["referenced_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|reference| reference["file"] == "manifests/api.yaml"
                && reference["event_type"] == "BaseFetched"),
        "{report:#}"
    );
    assert_eq!(report["affected_installs"][0]["install_id"], install_id);
    let human = run_within(windlass(state.path()).arg("verify-log"), 60);
    assert_eq!(human.status.code(), Some(4));
    let stdout = text(&human.stdout);
    assert!(
        stdout.contains(&format!("blob {api_blob} is corrupted")),
        "{stdout}"
    );
    assert!(stdout.contains(install_id), "{stdout}");
    assert!(stdout.contains("manifests/api.yaml"), "{stdout}");
    assert!(
        text(&human.stderr).contains("affecting install(s)"),
        "{}",
        text(&human.stderr)
    );

    // The resumed install reads the blob back: it fails saying which file and what to do.
    let resumed = run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg(quickstart()),
        120,
    );
    assert_eq!(resumed.status.code(), Some(1), "{}", text(&resumed.stderr));
    let stderr = text(&resumed.stderr);
    assert!(
        stderr.contains("the stored copy of release file manifests/api.yaml")
            && stderr.contains("is corrupted")
            && stderr.contains(&format!(
                "re-run `windlass install {}`",
                quickstart().canonicalize().unwrap().display()
            )),
        "{stderr}"
    );

    // Doing what it says stores the file's bytes again over the damaged blob.
    let repaired = crate::install_quickstart(state.path());
    assert_eq!(repaired["status"], "completed");
    assert_eq!(
        repaired["install_id"], install_id,
        "the same install resumed"
    );
    let events = json(run_within(
        windlass(state.path()).args(["events", install_id, "--json"]),
        60,
    ));
    let failed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "StageFailed")
        .expect("the damaged blob failed a stage");
    assert_eq!(failed["payload"]["stale_inputs"][0], "fetch_base");
    let fetches = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            event["type"] == "StageStarted" && event["payload"]["stage"] == "fetch_base"
        })
        .count();
    assert_eq!(fetches, 2, "the second resume fetched the release again");
    let out = PathBuf::from(repaired["out"].as_str().unwrap());
    assert_eq!(
        std::fs::read(out.join("base/manifests/api.yaml")).unwrap(),
        api
    );
    assert_eq!(
        std::fs::read(out.join("upstream/manifests/api.yaml")).unwrap(),
        api
    );
    let verify = json(run_within(
        windlass(state.path()).args(["verify-log", "--json"]),
        60,
    ));
    assert_eq!(verify["ok"], true, "{verify:#}");
    assert_eq!(verify["bad_blobs"].as_array().unwrap().len(), 0);
}

/// A small deterministic generator (xorshift64*), so a failing flip can be replayed.
struct Flips(u64);

impl Flips {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// Whether every blob the completed install's events name still reads back with its exact bytes
/// (read by this test through the blob store, which checks each blob against its id).
fn every_named_blob_intact(state: &Path, named: &[BlobId]) -> bool {
    let Ok(store) = BlobStore::open_read_only(&state.join("blobs")) else {
        return false;
    };
    named
        .iter()
        .all(|id| store.get(id).is_ok_and(|bytes| BlobId::of(&bytes) == *id))
}

#[test]
fn fifty_random_byte_flips_in_the_blob_values_are_each_detected_or_harmless() {
    let pristine = tempfile::tempdir().unwrap();
    let install = crate::install_quickstart(pristine.path());
    let install_id = install["install_id"].as_str().unwrap().to_string();
    let events = json(run_within(
        windlass(pristine.path()).args(["events", &install_id, "--json"]),
        60,
    ));
    let mut named: Vec<BlobId> = Vec::new();
    let mut stack: Vec<&serde_json::Value> = events.as_array().unwrap().iter().collect();
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(object) => {
                if let Some(id) = object
                    .get("blob")
                    .and_then(|blob| blob.as_str())
                    .and_then(|hex| BlobId::parse(hex).ok())
                {
                    named.push(id);
                }
                stack.extend(object.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    named.sort();
    named.dedup();
    assert!(named.len() >= 10, "{} blobs named", named.len());

    // The region holding blob values: from the first to the end of the last release file found.
    let blobs_bytes = std::fs::read(pristine.path().join("blobs/blobs.redb")).unwrap();
    let spans: Vec<(usize, usize)> = quickstart_files()
        .values()
        .flat_map(|body| {
            offsets_of(&blobs_bytes, body)
                .into_iter()
                .map(|offset| (offset, offset + body.len()))
        })
        .collect();
    assert!(
        spans.len() >= 4,
        "release files found in blobs.redb: {spans:?}"
    );
    let start = spans.iter().map(|span| span.0).min().unwrap();
    let end = spans.iter().map(|span| span.1).max().unwrap();

    let seed = 0x5EED_F11B_u64;
    let mut random = Flips(seed);
    let (mut by_hash, mut by_storage_engine, mut harmless) = (0, 0, 0);
    for flip in 0..50 {
        let offset = start + (random.next() as usize) % (end - start);
        let mask = (random.next() % 255 + 1) as u8;
        let state = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), state.path());
        flip_byte(&state.path().join("blobs/blobs.redb"), offset, mask);
        let verify = run_within(windlass(state.path()).args(["verify-log", "--json"]), 60);
        let what = format!("flip {flip} (seed {seed:#x}): byte {offset} ^= {mask:#04x}");
        match verify.status.code() {
            Some(4) => {
                let report: serde_json::Value = serde_json::from_slice(&verify.stdout)
                    .unwrap_or_else(|_| panic!("{what}: {}", text(&verify.stderr)));
                if report["blob_error"].is_string() {
                    by_storage_engine += 1;
                } else {
                    assert!(
                        !report["bad_blobs"].as_array().unwrap().is_empty(),
                        "{what}: {report:#}"
                    );
                    by_hash += 1;
                }
            }
            Some(0) => {
                assert!(
                    every_named_blob_intact(state.path(), &named),
                    "{what}: verify-log passed but a blob the install names is damaged"
                );
                harmless += 1;
            }
            other => panic!(
                "{what}: verify-log exited {other:?}: {}",
                text(&verify.stderr)
            ),
        }
    }
    eprintln!(
        "50 flips in bytes {start}..{end} of blobs.redb: {by_hash} detected by the blob hash check, {by_storage_engine} by the storage engine, {harmless} harmless"
    );
    assert_eq!(by_hash + by_storage_engine + harmless, 50);
    assert!(
        by_hash > 0,
        "flips inside blob values are found by their hash"
    );
}

/// A record the log stores compressed whose frame is damaged (a byte of it flipped with plain
/// redb) is listed by `verify-log` as unreadable, and the scan goes on past it: every other
/// record is counted and checked, not the whole log given up.
#[test]
fn verify_log_lists_a_damaged_compressed_record_and_checks_the_rest() {
    let state = tempfile::tempdir().unwrap();
    let install = crate::install_quickstart(state.path());
    let install_id = install["install_id"].as_str().unwrap();
    let events = json(run_within(
        windlass(state.path()).args(["events", install_id, "--json"]),
        60,
    ));
    let events = events.as_array().unwrap();
    let fetched = events
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .unwrap()["global_seq"]
        .as_u64()
        .unwrap();
    const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let db = redb::Database::create(state.path().join("events.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(EVENTS).unwrap();
        let mut stored = redb::ReadableTable::get(&table, fetched)
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        assert!(
            stored.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]),
            "BaseFetched is stored compressed"
        );
        let middle = stored.len() / 2;
        stored[middle] ^= 0x55;
        table.insert(fetched, stored.as_slice()).unwrap();
    }
    txn.commit().unwrap();
    drop(db);
    let verify = run_within(windlass(state.path()).args(["verify-log", "--json"]), 60);
    assert_eq!(verify.status.code(), Some(4), "{}", text(&verify.stderr));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(
        report["unreadable_records"],
        serde_json::json!([fetched]),
        "{report:#}"
    );
    assert_eq!(report["records"], events.len() as u64, "{report:#}");
    assert_eq!(report["installs"], 1, "{report:#}");
    let shown = run_within(windlass(state.path()).args(["show", install_id]), 60);
    assert_eq!(shown.status.code(), Some(4));
    assert!(
        text(&shown.stderr).contains(&format!(
            "stored record {fetched} is unreadable: its compressed frame does not decompress"
        )),
        "{}",
        text(&shown.stderr)
    );
}

#[test]
fn an_unreadable_event_record_is_named_by_show_and_history_json_and_install_refuses() {
    let state = tempfile::tempdir().unwrap();
    let first = crate::install_quickstart(state.path());
    let second = json(run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .args(["--json", "--namespace", "second"])
            .arg(quickstart()),
        120,
    ));
    let second_id = second["install_id"].as_str().unwrap().to_string();
    let events = json(run_within(
        windlass(state.path()).args(["events", &second_id, "--json"]),
        60,
    ));
    let damaged_seq = events[2]["global_seq"].as_u64().unwrap();
    let log = state.path().join("events.redb");
    let marker = format!("\"global_seq\":{damaged_seq},\"install_id\"");
    edit_stored_record(&log, damaged_seq, |record| {
        let found = offsets_of(record, marker.as_bytes());
        assert_eq!(found.len(), 1, "record {damaged_seq} names itself once");
        // `"global_seq":N` becomes `"global_seq";N`: the record no longer decodes.
        record[found[0] + "\"global_seq\"".len()] = b';';
    });

    // The text listing reads the install summaries kept beside the log, not the damaged record
    // (that is what makes it O(installs)); the commands that read the install's events say it.
    let history = run_within(windlass(state.path()).arg("history"), 60);
    assert_eq!(history.status.code(), Some(0), "{}", text(&history.stderr));
    let listed = text(&history.stdout);
    assert!(
        listed.contains(first["install_id"].as_str().unwrap()) && listed.contains(&second_id),
        "{listed}"
    );
    let shown = run_within(windlass(state.path()).args(["show", &second_id]), 60);
    assert_eq!(shown.status.code(), Some(4));
    assert!(
        text(&shown.stderr).contains(&format!("stored record {damaged_seq} is unreadable")),
        "{}",
        text(&shown.stderr)
    );
    // `--json` prints every install's stages, so it folds each install and names the damage.
    let history_json = run_within(windlass(state.path()).args(["history", "--json"]), 60);
    assert_eq!(history_json.status.code(), Some(4));
    let stderr = text(&history_json.stderr);
    assert!(
        stderr.contains(&format!("install {second_id} is not listed"))
            && stderr.contains(&format!("stored record {damaged_seq} is unreadable"))
            && stderr.contains("1 of 2 installs"),
        "{stderr}"
    );
    let listed: serde_json::Value = serde_json::from_slice(&history_json.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["install_id"], first["install_id"]);

    let verify = run_within(windlass(state.path()).args(["verify-log", "--json"]), 60);
    assert_eq!(verify.status.code(), Some(4));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["unreadable_records"][0], damaged_seq);
    let records_before = report["records"].clone();

    let refused = run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .args(["--namespace", "third"])
            .arg(quickstart()),
        120,
    );
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("refusing to append to the event log")
            && stderr.contains(&format!("stored record {damaged_seq} is unreadable"))
            && stderr.contains("windlass verify-log"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(
        &run_within(windlass(state.path()).args(["verify-log", "--json"]), 60).stdout,
    )
    .unwrap();
    assert_eq!(report["records"], records_before, "nothing was appended");
    let history = run_within(windlass(state.path()).args(["history", "--json"]), 60);
    let listed: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "no install was added");
    assert!(text(&history.stderr).contains("1 of 2 installs"));
}

/// Path, size, mode, modification time and contents of everything under `root`.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, u32, i64, i64, Vec<u8>)> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let contents = if metadata.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).unwrap()
            };
            entries.insert(
                path,
                (
                    metadata.size(),
                    metadata.mode(),
                    metadata.mtime(),
                    metadata.mtime_nsec(),
                    contents,
                ),
            );
        }
    }
    entries
}

fn read_commands(install_id: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    for json in [false, true] {
        for command in [
            vec!["history"],
            vec!["show", install_id],
            vec!["events", install_id],
            vec!["verify-log"],
        ] {
            let mut args: Vec<String> = command.iter().map(|arg| arg.to_string()).collect();
            if json {
                args.push("--json".into());
            }
            commands.push(args);
        }
    }
    commands
}

#[test]
fn read_only_commands_never_create_the_state_directory() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("no-such-state");
    for args in read_commands("20260101-000000-abcdef") {
        let output = run_within(windlass(&missing).args(&args), 60);
        assert_eq!(output.status.code(), Some(4), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "state directory {} does not exist",
                missing.display()
            )),
            "{args:?}: {stderr}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[test]
fn a_state_path_naming_a_file_is_refused_saying_so() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let expected = format!("--state {}: is a file, not a directory", file.display());
    for output in [
        run_within(windlass(&file).arg("history"), 60),
        run_within(windlass(&file).arg("verify-log"), 60),
        run_within(windlass(&file).args(OFFLINE_INSTALL).arg(quickstart()), 120),
    ] {
        assert_eq!(output.status.code(), Some(2));
        let stderr = text(&output.stderr);
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(!stderr.contains("File exists"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

#[test]
fn read_only_commands_change_nothing_and_work_without_write_access() {
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state");
    let install = crate::install_quickstart(&state);
    let install_id = install["install_id"].as_str().unwrap().to_string();
    let before = snapshot(&state);
    for args in read_commands(&install_id) {
        let output = run_within(windlass(&state).args(&args), 60);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert!(
        before == snapshot(&state),
        "a read-only command created or changed a file in the state directory"
    );

    // Without write access: every file and directory read-only, read by a user other than the
    // owner (root ignores permission bits, so as root the commands run as `nobody`).
    for path in files_under(&state).iter().chain([&state]) {
        let mode = std::fs::metadata(path).unwrap().mode() & 0o555;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut dirs = vec![state.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
                dirs.push(path);
            }
        }
    }
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let before = snapshot(&state);
    for args in read_commands(&install_id) {
        let mut command = if as_root {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "nobody", "--"])
                .arg(env!("CARGO_BIN_EXE_windlass"))
                .arg("--state")
                .arg(&state)
                .env_remove("WINDLASS_STATE")
                .env("RUST_LOG", "warn");
            command
        } else {
            windlass(&state)
        };
        let output = run_within(command.args(&args), 60);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?} without write access: {}",
            text(&output.stderr)
        );
        if args[0] == "history" && args.len() == 1 {
            assert!(text(&output.stdout).contains(&install_id));
        }
    }
    assert!(
        before == snapshot(&state),
        "nothing changed without write access"
    );
    // Writable again, so the temporary directory can be removed.
    let mut dirs = vec![state.clone()];
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let mode = if path.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
}

/// The column where the status word of each `stage` line starts.
fn status_columns(output: &str, prefix: &str) -> Vec<usize> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix(prefix))
        .map(|rest| {
            let name_end = rest.find(' ').unwrap();
            let status_start = name_end + rest[name_end..].find(|c| c != ' ').unwrap();
            prefix.chars().count() + rest[..status_start].chars().count()
        })
        .collect()
}

#[test]
fn install_show_and_history_align_their_columns_and_show_gives_one_reason_per_image() {
    let state = tempfile::tempdir().unwrap();
    let install = run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg(quickstart()),
        120,
    );
    assert!(install.status.success(), "{}", text(&install.stderr));
    let printed = text(&install.stdout);
    let columns = status_columns(&printed, "  stage    ");
    assert_eq!(columns.len(), 6, "{printed}");
    assert!(
        columns.iter().all(|column| *column == columns[0]),
        "status columns differ: {columns:?}\n{printed}"
    );
    assert!(printed.contains("provision_secrets completed"), "{printed}");

    let history = json(run_within(
        windlass(state.path()).args(["history", "--json"]),
        60,
    ));
    let install_id = history[0]["install_id"].as_str().unwrap().to_string();

    // history: every value starts under its column's heading.
    let second = run_within(
        windlass(state.path())
            .args(OFFLINE_INSTALL)
            .args(["--namespace", "second"])
            .arg(quickstart()),
        120,
    );
    assert!(second.status.success(), "{}", text(&second.stderr));
    let listed = text(&run_within(windlass(state.path()).arg("history"), 60).stdout);
    let mut lines = listed.lines();
    let header = lines.next().unwrap();
    let starts: Vec<usize> = ["APP", "RELEASE", "STATUS", "STARTED", "DURATION"]
        .iter()
        .map(|heading| header.find(heading).unwrap())
        .collect();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{listed}");
    for row in rows {
        for start in &starts {
            let bytes = row.as_bytes();
            assert!(
                bytes[start - 1] == b' ' && bytes[*start] != b' ',
                "column at {start} misaligned:\n{listed}"
            );
        }
    }
    let show = run_within(windlass(state.path()).args(["show", &install_id]), 60);
    assert!(show.status.success());
    let shown = text(&show.stdout);
    let columns = status_columns(&shown, "stage     ");
    assert_eq!(columns.len(), 6, "{shown}");
    assert!(
        columns.iter().all(|column| *column == columns[0]),
        "status columns differ: {columns:?}\n{shown}"
    );

    // The plan as recorded: several `images:` entries per image (its aliases).
    let events = json(run_within(
        windlass(state.path()).args(["events", &install_id, "--json"]),
        60,
    ));
    let planned = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "OverridesPlanned")
        .expect("OverridesPlanned recorded");
    let entries = planned["payload"]["entries"].as_array().unwrap();
    let mut images: Vec<(&str, &str)> = Vec::new();
    for entry in entries {
        let key = (
            entry["image"].as_str().unwrap(),
            entry["because"].as_str().unwrap(),
        );
        if !images.contains(&key) {
            images.push(key);
        }
    }
    assert!(
        entries.len() > images.len(),
        "the quickstart has alias entries"
    );
    let rewrite_lines: Vec<&str> = shown
        .lines()
        .filter(|line| line.starts_with("  rewrite "))
        .collect();
    assert_eq!(
        rewrite_lines.len(),
        images.len(),
        "one line per image:\n{shown}"
    );
    for (image, because) in &images {
        assert_eq!(
            shown
                .matches(&format!("  rewrite {image}  ({because})"))
                .count(),
            1,
            "{image} with its reason once:\n{shown}"
        );
    }
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        let new_name = entry["new_name"].as_str().unwrap();
        assert!(
            shown.lines().any(|line| line.trim_start().starts_with(name)
                && line.trim_end().ends_with(&format!("→ {new_name}"))),
            "entry {name} → {new_name} listed:\n{shown}"
        );
    }
    let arrows: Vec<usize> = shown
        .lines()
        .filter(|line| line.starts_with("            ") && line.contains(" → "))
        .map(|line| line.find(" → ").unwrap())
        .collect();
    assert_eq!(arrows.len(), entries.len(), "{shown}");
}
