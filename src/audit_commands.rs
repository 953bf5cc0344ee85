//! The audit-trail commands: `export` writes the log as JSON lines for an audit system, and
//! `verify-export` checks such a file offline, without the state directory (the chain is over each
//! record's exact bytes, which every line carries; blake3 is not in common command-line tools, so
//! the check is a command of the binary rather than a script).

use std::io::Write;
use std::path::Path;

use anyhow::anyhow;
use serde::Serialize;
use windlass_state::{ExportError, ExportFilter, export, verify_export};

use crate::cli::GlobalArgs;
use crate::exit::{CliError, CliResult, Code};
use crate::read_commands::print_json;
use crate::state_access::open_state_read_only;

/// `windlass export [--since SEQ] [--install ID]`: one JSON line per record on stdout.
pub fn export_log(global: &GlobalArgs, since: u64, install: Option<&str>) -> CliResult {
    let state = open_state_read_only(global)?;
    if let Some(install_id) = install {
        let known = state
            .log
            .install_ids()
            .map_err(|error| CliError::new(Code::State, error))?;
        if !known.iter().any(|known| known == install_id) {
            return Err(CliError::new(
                Code::NotFound,
                anyhow!(
                    "--install: no install with id {install_id:?} in this state directory (see `windlass history`)"
                ),
            ));
        }
    }
    let filter = ExportFilter {
        since,
        install_id: install.map(str::to_string),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match export(state.log.store(), &filter, &mut out) {
        Ok(summary) => {
            drop(out);
            eprintln!(
                "exported {} record(s); the log's head hash is {}",
                summary.records, summary.head
            );
            Ok(Code::Success)
        }
        // A reader that stopped early (`windlass export | head`) is not an error.
        Err(ExportError::Write(message)) if message.contains("Broken pipe") => Ok(Code::Success),
        Err(error @ ExportError::Write(_)) => Err(CliError::new(Code::Failure, error)),
        Err(error) => Err(CliError::new(
            Code::State,
            anyhow!(error).context(format!("cannot export {}", global.state.display())),
        )),
    }
}

/// `verify-export --json`.
#[derive(Debug, Serialize)]
struct ExportVerifyReport {
    ok: bool,
    records: u64,
    links: u64,
    gaps: bool,
    first_seq: Option<u64>,
    first_prev_hash: Option<String>,
    last_seq: Option<u64>,
    last_hash: Option<String>,
    problem: Option<String>,
    line: Option<u64>,
    byte_offset: Option<u64>,
    global_seq: Option<u64>,
    install_id: Option<String>,
}

/// `windlass verify-export FILE`: checks an exported file without the state directory.
pub fn verify_export_file(global: &GlobalArgs, file: &Path) -> CliResult {
    let handle = windlass_files::open_regular_file(file).map_err(|error| {
        CliError::new(Code::InvalidInput, anyhow!("{}: {error}", file.display()))
    })?;
    let mut reader = std::io::BufReader::new(handle.into_file());
    let result = verify_export(&mut reader);
    let mut report = ExportVerifyReport {
        ok: result.is_ok(),
        records: 0,
        links: 0,
        gaps: false,
        first_seq: None,
        first_prev_hash: None,
        last_seq: None,
        last_hash: None,
        problem: None,
        line: None,
        byte_offset: None,
        global_seq: None,
        install_id: None,
    };
    match &result {
        Ok(check) => {
            report.records = check.records;
            report.links = check.links;
            report.gaps = check.gaps;
            report.first_seq = check.first.as_ref().map(|(seq, _)| *seq);
            report.first_prev_hash = check.first.as_ref().map(|(_, hash)| hash.clone());
            report.last_seq = check.last.as_ref().map(|(seq, _)| *seq);
            report.last_hash = check.last.as_ref().map(|(_, hash)| hash.clone());
        }
        Err(problem) => {
            report.problem = Some(problem.problem.clone());
            report.line = Some(problem.line);
            report.byte_offset = Some(problem.byte_offset);
            report.global_seq = problem.global_seq;
            report.install_id = problem.install_id.clone();
        }
    }
    if global.json {
        print_json(&report)?;
    } else if let Ok(check) = &result {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "export ok: {} record(s), {} chain link(s) checked{}",
            check.records,
            check.links,
            if check.gaps {
                " (the file skips records: each record's own hash was checked where it has no predecessor)"
            } else {
                ""
            }
        );
        if let Some((seq, prev)) = &check.first {
            let _ = writeln!(
                stdout,
                "first record {seq} follows hash {prev}{}",
                if *seq == 1 {
                    " (the start of the log)"
                } else {
                    ": compare it with the last hash of the export before"
                }
            );
        }
        if let Some((seq, hash)) = &check.last {
            let _ = writeln!(
                stdout,
                "last record {seq} hashes to {hash}: compare it with `windlass verify-log`'s head for a full export"
            );
        }
    }
    match result {
        Ok(_) => Ok(Code::Success),
        Err(problem) => Err(CliError::new(
            Code::InvalidInput,
            anyhow!("{}: {problem}", file.display()),
        )),
    }
}
