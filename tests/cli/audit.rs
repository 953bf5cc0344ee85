//! The audit trail: `export` writes the log as JSON lines that `verify-export` checks offline
//! (without the state directory), an edited line is named with its byte offset, and `verify-log`
//! names the first bad record of a tampered log with its install.

use super::*;
use crate::state_integrity::{offsets_of, run_within, text};

fn two_installs(state: &Path) -> (String, String) {
    let first = crate::install_quickstart(state);
    let second = json(run_within(
        windlass(state)
            .args(OFFLINE_INSTALL)
            .args(["--json", "--namespace", "second"])
            .arg(quickstart()),
        120,
    ));
    (
        first["install_id"].as_str().unwrap().to_string(),
        second["install_id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn export_writes_every_record_and_verify_export_checks_it_offline() {
    let state = tempfile::tempdir().unwrap();
    let (first, second) = two_installs(state.path());
    let exported = run_within(windlass(state.path()).arg("export"), 60);
    assert_eq!(
        exported.status.code(),
        Some(0),
        "{}",
        text(&exported.stderr)
    );
    let lines: Vec<serde_json::Value> = exported
        .stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    let report = json(run_within(
        windlass(state.path()).args(["verify-log", "--json"]),
        60,
    ));
    assert_eq!(lines.len() as u64, report["records"].as_u64().unwrap());
    assert_eq!(lines.last().unwrap()["hash"], report["head"]);
    for pair in lines.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    assert!(
        lines
            .iter()
            .any(|line| line["install_id"] == first.as_str())
    );
    let file = state.path().parent().unwrap().join(format!(
        "{}-export.jsonl",
        state.path().file_name().unwrap().to_string_lossy()
    ));
    let _cleanup = RemoveOnDrop(file.clone());
    std::fs::write(&file, &exported.stdout).unwrap();

    // Offline: the state directory is gone.
    let elsewhere = tempfile::tempdir().unwrap();
    let nowhere = elsewhere.path().join("no-state");
    let verified = run_within(windlass(&nowhere).arg("verify-export").arg(&file), 60);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    let said = text(&verified.stdout);
    assert!(
        said.contains(&format!("export ok: {} record(s)", lines.len()))
            && said.contains("(the start of the log)"),
        "{said}"
    );
    assert!(
        !nowhere.exists(),
        "verify-export creates no state directory"
    );

    // --since and --install.
    let since = run_within(windlass(state.path()).args(["export", "--since", "3"]), 60);
    let since_lines: Vec<serde_json::Value> = since
        .stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(since_lines.len(), lines.len() - 3);
    assert_eq!(since_lines[0]["global_seq"], 4);
    assert_eq!(since_lines[0]["prev_hash"], lines[2]["hash"]);
    let only = run_within(
        windlass(state.path()).args(["export", "--install", &second]),
        60,
    );
    assert!(
        only.stdout
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .all(
                |line| serde_json::from_slice::<serde_json::Value>(line).unwrap()["install_id"]
                    == second.as_str()
            )
    );
    let unknown = run_within(
        windlass(state.path()).args(["export", "--install", "nope"]),
        60,
    );
    assert_eq!(unknown.status.code(), Some(5));

    // An edited payload: the line is named with its byte offset, record and install.
    let mut edited: Vec<serde_json::Value> = lines.clone();
    let target = 4;
    edited[target]["payload"] = serde_json::json!({"forged": true});
    let mut bytes = Vec::new();
    let mut offset = 0;
    for (index, line) in edited.iter().enumerate() {
        if index == target {
            offset = bytes.len();
        }
        bytes.extend(serde_json::to_vec(line).unwrap());
        bytes.push(b'\n');
    }
    std::fs::write(&file, &bytes).unwrap();
    let refused = run_within(windlass(&nowhere).arg("verify-export").arg(&file), 60);
    assert_eq!(refused.status.code(), Some(3));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "line {} (byte offset {offset}, record {} of install {})",
            target + 1,
            lines[target]["global_seq"],
            lines[target]["install_id"].as_str().unwrap()
        )) && stderr.contains("its fields differ from its hashed record"),
        "{stderr}"
    );

    // A record forged whole (its hash recomputed) breaks the link to the next line.
    let mut forged = lines.clone();
    let record = forged[target]["record"]
        .as_str()
        .unwrap()
        .replace("\"actor\":\"", "\"actor\":\"x");
    forged[target]["record"] = serde_json::json!(record);
    let reparsed: serde_json::Value = serde_json::from_str(&record).unwrap();
    forged[target]["actor"] = reparsed["actor"].clone();
    forged[target]["hash"] =
        serde_json::json!(blake3::hash(record.as_bytes()).to_hex().to_string());
    let bytes: Vec<u8> = forged
        .iter()
        .flat_map(|line| {
            let mut bytes = serde_json::to_vec(line).unwrap();
            bytes.push(b'\n');
            bytes
        })
        .collect();
    std::fs::write(&file, &bytes).unwrap();
    let refused = run_within(windlass(&nowhere).arg("verify-export").arg(&file), 60);
    assert_eq!(refused.status.code(), Some(3));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("line {}", target + 2)) && stderr.contains("as previous hash"),
        "{stderr}"
    );
}

/// Deletes a file when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn verify_log_names_the_first_bad_record_and_its_install() {
    let state = tempfile::tempdir().unwrap();
    let (_, second) = two_installs(state.path());
    let events = json(run_within(
        windlass(state.path()).args(["events", &second, "--json"]),
        60,
    ));
    let edited_seq = events[1]["global_seq"].as_u64().unwrap();
    let log = state.path().join("events.redb");
    let marker = format!("\"global_seq\":{edited_seq},\"install_id\"");
    let mut bytes = std::fs::read(&log).unwrap();
    let found = offsets_of(&bytes, marker.as_bytes());
    assert!(!found.is_empty());
    for offset in found {
        // Inside the record, `"actor":"` keeps its length but names someone else: the record
        // still decodes, and the next record's prev_hash no longer matches it.
        let actor = offsets_of(&bytes[offset..], b"\"actor\":\"")[0] + offset + 9;
        bytes[actor] = if bytes[actor] == b'Z' { b'Y' } else { b'Z' };
    }
    std::fs::write(&log, &bytes).unwrap();
    let verify = run_within(windlass(state.path()).arg("verify-log"), 60);
    assert_eq!(verify.status.code(), Some(4));
    let stdout = text(&verify.stdout);
    let next = edited_seq + 1;
    assert!(
        stdout.contains(&format!("first bad record: sequence {next}, install ")),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(
        &run_within(windlass(state.path()).args(["verify-log", "--json"]), 60).stdout,
    )
    .unwrap();
    assert_eq!(report["first_bad_record"]["global_seq"], next);
    assert!(report["first_bad_record"]["install_id"].is_string());
    assert!(text(&verify.stderr).contains(&format!("damaged from record {next}")));
    // export refuses to write past the break.
    let exported = run_within(windlass(state.path()).arg("export"), 60);
    assert_eq!(exported.status.code(), Some(4));
    assert!(text(&exported.stderr).contains(&format!("record {next} does not follow")));
}

/// Edits the `actor` of record `global_seq` in the log file in place (same length: the record
/// still decodes, and the next record's previous hash no longer matches it).
fn edit_actor_of_record(state: &Path, global_seq: u64) {
    let log = state.join("events.redb");
    let marker = format!("\"global_seq\":{global_seq},\"install_id\"");
    let mut bytes = std::fs::read(&log).unwrap();
    let found = offsets_of(&bytes, marker.as_bytes());
    assert!(!found.is_empty(), "record {global_seq} is in the file");
    for offset in found {
        let actor = offsets_of(&bytes[offset..], b"\"actor\":\"")[0] + offset + 9;
        bytes[actor] = if bytes[actor] == b'Z' { b'Y' } else { b'Z' };
    }
    std::fs::write(&log, &bytes).unwrap();
}

fn install_in_namespace(state: &Path, namespace: &str) -> std::process::Output {
    run_within(
        windlass(state)
            .args(OFFLINE_INSTALL)
            .args(["--json", "--namespace", namespace])
            .arg(quickstart()),
        120,
    )
}

#[test]
fn an_install_refuses_a_log_damaged_since_the_last_check_and_verify_log_finds_older_damage() {
    // Damage among the records appended since the last check (the second install's).
    let state = tempfile::tempdir().unwrap();
    let (_, second) = two_installs(state.path());
    let events = json(run_within(
        windlass(state.path()).args(["events", &second, "--json"]),
        60,
    ));
    edit_actor_of_record(state.path(), events[1]["global_seq"].as_u64().unwrap());
    let refused = install_in_namespace(state.path(), "third");
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("refusing to append to the event log"),
        "{}",
        text(&refused.stderr)
    );

    // Damage to a record the second install's check already walked is not read again before
    // the next append (the check costs what was appended since, not the whole log), but
    // `verify-log`, which walks everything, finds it.
    let state = tempfile::tempdir().unwrap();
    let (first, _) = two_installs(state.path());
    let events = json(run_within(
        windlass(state.path()).args(["events", &first, "--json"]),
        60,
    ));
    edit_actor_of_record(state.path(), events[1]["global_seq"].as_u64().unwrap());
    let third = install_in_namespace(state.path(), "third");
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
    let verify = run_within(windlass(state.path()).arg("verify-log"), 60);
    assert_eq!(verify.status.code(), Some(4), "{}", text(&verify.stdout));
}
