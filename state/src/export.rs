//! The log as JSON lines for an audit system ([`export`]) and the offline check of such a file
//! ([`verify_export`]). Each line is one record: its envelope fields and payload for the reader,
//! `prev_hash` and `hash`, and `record`, the record's exact bytes as a JSON string (decompressed
//! when the log stores it as a zstd frame). The
//! chain is over those bytes, so a file verifies without the state directory: `hash` is the blake3
//! hash of `record`'s bytes, every other field equals the record's, and each line's `prev_hash` is
//! the hash of the line before (for consecutive sequence numbers). A file exported with `--since`
//! starts after a record whose hash the check reports, to compare with the previous export; one
//! exported with `--install` holds gaps, where only each record's own hash can be checked.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::chain::RecordHash;
use crate::event::StoredEvent;
use crate::store::{EventStore, StoreError, decode_record};

/// Which records [`export`] writes.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only records after this global sequence.
    pub since: u64,
    /// Only this install's records.
    pub install_id: Option<String>,
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Lines written.
    pub records: u64,
    /// Hash of the last record of the log (the head the export was checked against).
    pub head: String,
}

/// One exported line (a wire format: audit systems read it).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportLine {
    /// The record's global sequence.
    pub global_seq: u64,
    /// Its install.
    pub install_id: String,
    /// Its sequence within the install.
    pub install_seq: u64,
    /// When it was recorded.
    pub recorded_at: String,
    /// Who recorded it.
    pub actor: String,
    /// Its event type.
    pub event_type: String,
    /// Its payload's schema version.
    pub schema_version: u32,
    /// The payload as stored (not upcast).
    pub payload: serde_json::Value,
    /// The hash of the record before it.
    pub prev_hash: String,
    /// The blake3 hash of `record`'s bytes.
    pub hash: String,
    /// The record's exact bytes (decompressed when the log stores it as a zstd frame).
    pub record: String,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log's chain is broken where the export reached; nothing past it is written.
    #[error(
        "record {global_seq} does not follow the record before it in the hash chain; run `windlass verify-log`"
    )]
    BrokenChain {
        /// The record.
        global_seq: u64,
    },
    /// The output could not be written.
    #[error("cannot write the export: {0}")]
    Write(String),
}

/// Writes the records `filter` selects to `out`, one JSON line each, checking the chain of every
/// record it passes (those filtered out included) from the start of the log.
pub fn export(
    store: &dyn EventStore,
    filter: &ExportFilter,
    out: &mut dyn Write,
) -> Result<ExportSummary, ExportError> {
    const PAGE: usize = 1024;
    let (head_seq, _) = store.head()?.unwrap_or((0, RecordHash::GENESIS));
    let mut previous = RecordHash::GENESIS;
    let mut next = 1;
    let mut records = 0;
    while next <= head_seq {
        let page = store.scan(next, PAGE)?;
        let Some(last) = page.last() else { break };
        next = last.global_seq + 1;
        for raw in page.iter().take_while(|raw| raw.global_seq <= head_seq) {
            let event = decode_record(raw.global_seq, &raw.bytes)?;
            if event.prev_hash != previous.to_hex() {
                return Err(ExportError::BrokenChain {
                    global_seq: raw.global_seq,
                });
            }
            let hash = RecordHash::of(&raw.bytes);
            previous = hash;
            let wanted = raw.global_seq > filter.since
                && filter
                    .install_id
                    .as_deref()
                    .is_none_or(|install| install == event.install_id);
            if !wanted {
                continue;
            }
            let record =
                String::from_utf8(raw.bytes.clone()).map_err(|_| StoreError::CorruptRecord {
                    global_seq: raw.global_seq,
                    reason: "not UTF-8".into(),
                })?;
            let line = line_of(event, hash, record);
            serde_json::to_writer(&mut *out, &line)
                .map_err(|error| ExportError::Write(error.to_string()))?;
            out.write_all(b"\n")
                .map_err(|error| ExportError::Write(error.to_string()))?;
            records += 1;
        }
    }
    out.flush()
        .map_err(|error| ExportError::Write(error.to_string()))?;
    Ok(ExportSummary {
        records,
        head: previous.to_hex(),
    })
}

fn line_of(event: StoredEvent, hash: RecordHash, record: String) -> ExportLine {
    ExportLine {
        global_seq: event.global_seq,
        install_id: event.install_id,
        install_seq: event.install_seq,
        recorded_at: event.recorded_at,
        actor: event.actor,
        event_type: event.event_type,
        schema_version: event.schema_version,
        payload: event.payload,
        prev_hash: event.prev_hash,
        hash: hash.to_hex(),
        record,
    }
}

/// What a successful [`verify_export`] saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportCheck {
    /// Lines checked.
    pub records: u64,
    /// Links between consecutive records checked.
    pub links: u64,
    /// The first record's sequence and the hash it names as previous (to compare with the hash
    /// of the record before it: the last line of an earlier export, or `windlass verify-log`).
    pub first: Option<(u64, String)>,
    /// The last record's sequence and hash.
    pub last: Option<(u64, String)>,
    /// Whether sequence numbers have gaps (an export of one install).
    pub gaps: bool,
}

/// The first bad line of an exported file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} (byte offset {byte_offset}{}): {problem}", record_named(*.global_seq, .install_id.as_deref()))]
pub struct ExportProblem {
    /// The line, from 1.
    pub line: u64,
    /// The byte offset of its start in the file.
    pub byte_offset: u64,
    /// The record's global sequence, when the line names one.
    pub global_seq: Option<u64>,
    /// The record's install, when the line names one.
    pub install_id: Option<String>,
    /// What is wrong.
    pub problem: String,
}

fn record_named(global_seq: Option<u64>, install_id: Option<&str>) -> String {
    match (global_seq, install_id) {
        (Some(seq), Some(install)) => format!(", record {seq} of install {install}"),
        (Some(seq), None) => format!(", record {seq}"),
        _ => String::new(),
    }
}

/// The longest line [`verify_export`] reads: a record is at most 8 MiB, escaped twice at most.
const MAX_LINE: u64 = 48 * 1024 * 1024;

/// Checks an exported file offline: every line parses, its `hash` is the blake3 hash of its
/// `record`, its fields equal the record's, and each line's `prev_hash` is the previous line's
/// `hash` where their sequence numbers are consecutive. Returns the first bad line.
pub fn verify_export(input: &mut dyn BufRead) -> Result<ExportCheck, ExportProblem> {
    let mut check = ExportCheck {
        records: 0,
        links: 0,
        first: None,
        last: None,
        gaps: false,
    };
    let mut offset = 0u64;
    let mut number = 0u64;
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        number += 1;
        let problem = |problem: String, seq: Option<u64>, install: Option<String>| ExportProblem {
            line: number,
            byte_offset: offset,
            global_seq: seq,
            install_id: install,
            problem,
        };
        let read = std::io::Read::take(&mut *input, MAX_LINE + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(|error| problem(format!("cannot read: {error}"), None, None))?;
        if read == 0 {
            break;
        }
        if read as u64 > MAX_LINE {
            return Err(problem(format!("longer than {MAX_LINE} bytes"), None, None));
        }
        let line: ExportLine = serde_json::from_slice(&buffer)
            .map_err(|error| problem(format!("not an export line: {error}"), None, None))?;
        let seq = Some(line.global_seq);
        let install = Some(line.install_id.clone());
        let hash = RecordHash::of(line.record.as_bytes()).to_hex();
        if hash != line.hash {
            return Err(problem(
                format!(
                    "its record hashes to {hash}, but the line says {}",
                    line.hash
                ),
                seq,
                install,
            ));
        }
        let record: StoredEvent = serde_json::from_str(&line.record).map_err(|error| {
            problem(
                format!("its record is not an event: {error}"),
                seq,
                install.clone(),
            )
        })?;
        let same = record.global_seq == line.global_seq
            && record.install_id == line.install_id
            && record.install_seq == line.install_seq
            && record.recorded_at == line.recorded_at
            && record.actor == line.actor
            && record.event_type == line.event_type
            && record.schema_version == line.schema_version
            && record.payload == line.payload
            && record.prev_hash == line.prev_hash;
        if !same {
            return Err(problem(
                "its fields differ from its hashed record".into(),
                seq,
                install,
            ));
        }
        if let Some((last_seq, last_hash)) = &check.last {
            if line.global_seq <= *last_seq {
                return Err(problem(
                    format!("record {} follows record {last_seq}", line.global_seq),
                    seq,
                    install,
                ));
            }
            if line.global_seq == last_seq + 1 {
                if &line.prev_hash != last_hash {
                    return Err(problem(
                        format!(
                            "it names {} as previous hash, but record {last_seq} hashes to {last_hash}",
                            line.prev_hash
                        ),
                        seq,
                        install,
                    ));
                }
                check.links += 1;
            } else {
                check.gaps = true;
            }
        } else {
            if line.global_seq == 1 && line.prev_hash != RecordHash::GENESIS.to_hex() {
                return Err(problem(
                    "the first record of the log names a previous hash".into(),
                    seq,
                    install,
                ));
            }
            check.first = Some((line.global_seq, line.prev_hash.clone()));
        }
        check.records += 1;
        check.last = Some((line.global_seq, line.hash));
        offset += read as u64;
    }
    Ok(check)
}
