//! The indexes the state keeps beside the event log (install summaries, install keys, facts by
//! type), through the real binary: `history`, `show` and resume answer the same through them as by
//! folding the log; a state directory without them (as an older windlass wrote it, made here by
//! dropping the projection table and its head with redb) is read by folding, reported stale by
//! `verify-log` without being written, and indexed by `verify-log --rebuild-indexes` or by the first
//! writable open (an install, which then resumes through the index).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::{OFFLINE_INSTALL, files_under, json, quickstart, run, windlass};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(command: &mut Command) -> Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "windlass failed: {}\n{}",
        output.status,
        text(&output.stderr)
    );
    output
}

/// Makes `state` look as an older windlass left it: no projection table, no projection head.
fn drop_indexes(state: &Path) {
    const PROJECTIONS: redb::TableDefinition<(&str, &str), &[u8]> =
        redb::TableDefinition::new("projections");
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open(state.join("events.redb"))
        .expect("open the event log");
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_table(PROJECTIONS).unwrap(), "there were indexes");
    txn.open_table(META)
        .unwrap()
        .remove("projection_head")
        .unwrap()
        .expect("there was a projection head");
    txn.commit().unwrap();
}

fn indexes_status(state: &Path) -> String {
    json(run(windlass(state).args(["verify-log", "--json"])))["indexes"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Everything the read commands print about the state: `history` (text and JSON) and `show` of
/// each install (text and JSON).
fn read_everything(state: &Path) -> Vec<String> {
    let history = json(run(windlass(state).args(["history", "--json"])));
    let mut out = vec![
        text(&ok(windlass(state).arg("history")).stdout),
        history.to_string(),
    ];
    for install in history.as_array().unwrap() {
        let id = install["install_id"].as_str().unwrap();
        out.push(text(&ok(windlass(state).args(["show", id])).stdout));
        out.push(text(
            &ok(windlass(state).args(["show", id, "--json"])).stdout,
        ));
    }
    out
}

/// Starts an install of the quickstart into `namespace` that pauses after `fetch_base`, and kills
/// it there (SIGKILL): an interrupted install to resume.
fn install_killed_after_fetch_base(state: &Path, namespace: &str) {
    let mut child = windlass(state)
        .args(OFFLINE_INSTALL)
        .args(["--namespace", namespace])
        .arg(quickstart())
        .env("WINDLASS_PAUSE_AFTER_STAGE", "fetch_base")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::wait_for_pause(&mut child, "fetch_base");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn file_contents(state: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = files_under(state)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn history_show_and_resume_agree_with_and_without_indexes_and_an_old_state_is_indexed() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    for namespace in ["first", "second"] {
        ok(windlass(state)
            .args(OFFLINE_INSTALL)
            .args(["--namespace", namespace])
            .arg(quickstart()));
    }
    install_killed_after_fetch_base(state, "third");
    // The killed install's batches were indexed as they were appended.
    assert_eq!(indexes_status(state), "current");
    let through_indexes = read_everything(state);
    let history = text(&ok(windlass(state).arg("history")).stdout);
    assert_eq!(history.lines().count(), 4, "{history}");
    assert!(
        history.lines().nth(3).unwrap().contains("incomplete"),
        "{history}"
    );

    // An old state: read by folding the log, reported stale, and left as it is.
    drop_indexes(state);
    let before = file_contents(state);
    assert_eq!(read_everything(state), through_indexes);
    assert_eq!(indexes_status(state), "stale");
    let verify = text(&ok(windlass(state).arg("verify-log")).stdout);
    assert!(
        verify.contains("indexes stale") && verify.contains("verify-log --rebuild-indexes"),
        "{verify}"
    );
    assert!(
        before == file_contents(state),
        "a read-only command wrote the indexes"
    );

    // `verify-log --rebuild-indexes` derives them again, identical in effect.
    let rebuilt = text(&ok(windlass(state).args(["verify-log", "--rebuild-indexes"])).stdout);
    assert!(rebuilt.contains("indexes rebuilt from"), "{rebuilt}");
    assert!(rebuilt.contains("indexes ok"), "{rebuilt}");
    assert_eq!(indexes_status(state), "current");
    assert_eq!(read_everything(state), through_indexes);

    // An old state again: the next install (a writable open) indexes it and resumes the killed
    // install, found through the install-key index.
    drop_indexes(state);
    let interrupted = json(run(windlass(state).args(["history", "--json"])))[2]["install_id"]
        .as_str()
        .unwrap()
        .to_string();
    let resumed = json(run(windlass(state)
        .args(OFFLINE_INSTALL)
        .args(["--namespace", "third", "--json"])
        .arg(quickstart())));
    assert_eq!(resumed["install_id"], interrupted.as_str());
    assert_eq!(resumed["status"], "completed");
    assert_eq!(indexes_status(state), "current");
    let history = text(&ok(windlass(state).arg("history")).stdout);
    assert_eq!(history.lines().count(), 4, "{history}");
    assert!(!history.contains("incomplete"), "{history}");
    // The summaries followed the resume exactly as the fold does.
    let after = read_everything(state);
    drop_indexes(state);
    assert_eq!(read_everything(state), after);
}

#[test]
fn rebuilding_indexes_needs_an_existing_state_directory() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("missing");
    let output = run(windlass(&missing).args(["verify-log", "--rebuild-indexes"]));
    assert_eq!(output.status.code(), Some(4));
    assert!(text(&output.stderr).contains("does not exist"));
    assert!(!missing.exists(), "no state directory is created");
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = ok(windlass(&empty).args(["verify-log", "--rebuild-indexes"]));
    assert!(text(&output.stdout).contains("indexes rebuilt from 0 records"));
    assert_eq!(indexes_status(&empty), "current");
    let file = scratch.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let output = run(windlass(&file).args(["verify-log", "--rebuild-indexes"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("is a file, not a directory"));
}
