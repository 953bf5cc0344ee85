//! The commands that only read the state directory: `history`, `events`, `show` and `verify-log`.
//! They open it read-only (nothing is created or written, so they work on a directory the user
//! cannot write, and a missing one is an error rather than a new empty one), in redb's
//! multi-process mode, so they work while an install is writing. `verify-log` checks the hash
//! chain and every stored blob against its hash, and names the installs whose recorded files are
//! damaged.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use windlass_state::EventPayload;

use anyhow::anyhow;
use serde::Serialize;
use windlass_engine::{FoldError, InstallState, InstallStatus, InstallSummary, fold};
use windlass_stages::events::{OverridesPlanned, PlannedEntry};
use windlass_state::{BlobId, EventLog, ProjectionStatus, StateView, StoredEvent, verify_chain};

use crate::cli::GlobalArgs;
use crate::exit::{CliError, CliResult, Code};
use crate::state_access::{open_state, open_state_read_only};
// Ends quietly when the reader closes the pipe (`windlass events ID | head -1`).
use crate::stdout::println;

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|error| CliError::new(Code::Failure, error))?;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        // A reader that stopped early (`windlass events ID --json | head`) is not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(CliError::new(
            Code::Failure,
            anyhow::anyhow!("cannot write to standard output: {error}"),
        )),
        Ok(()) => Ok(()),
    }
}

/// `1.234 s` or `87 ms`.
pub fn format_duration(milliseconds: u64) -> String {
    if milliseconds >= 1000 {
        format!("{:.2} s", milliseconds as f64 / 1000.0)
    } else {
        format!("{milliseconds} ms")
    }
}

fn state_error(error: impl Into<anyhow::Error>) -> CliError {
    CliError::new(Code::State, error)
}

fn load_install(
    log: &EventLog,
    install_id: &str,
) -> Result<(Vec<StoredEvent>, InstallState), CliError> {
    let events = log.events_of(install_id).map_err(state_error)?;
    match fold(install_id, &events) {
        Ok(folded) => Ok((events, folded)),
        Err(FoldError::UnknownInstall(_)) => Err(CliError::new(
            Code::NotFound,
            anyhow!(
                "no install with id {install_id:?} in this state directory (see `windlass history`)"
            ),
        )),
        Err(error) => Err(state_error(error)),
    }
}

/// `windlass history`. An install whose records cannot be read is left out and named on stderr
/// (the others are still listed), and the command then exits 4.
///
/// The text listing reads the install summaries the state keeps beside the log (one small row per
/// install, no event is read); `--json`, which prints every install's stages, and a state whose
/// indexes do not reflect the log (written by an older windlass, not yet opened for writing) fold
/// each install's events instead.
pub fn history(global: &GlobalArgs) -> CliResult {
    let state = open_state_read_only(global)?;
    // The daemon's release streams (`windlass watch`) are not installs.
    let install_ids: Vec<String> = state
        .log
        .install_ids()
        .map_err(state_error)?
        .into_iter()
        .filter(|id| !windlass_daemon::events::is_release_stream(id))
        .collect();
    if !global.json
        && let Some(summaries) = windlass_engine::install_index::summaries(&state.log, &install_ids)
            .map_err(state_error)?
        && summaries.len() == install_ids.len()
    {
        if summaries.is_empty() {
            println!("no installs yet in {}", state.root().display());
        } else {
            print_history(&summaries.iter().map(summary_row).collect::<Vec<_>>());
        }
        return Ok(Code::Success);
    }
    let mut installs = Vec::new();
    let mut unreadable = Vec::new();
    for install_id in install_ids {
        match load_install(&state.log, &install_id) {
            Ok((_, install)) => installs.push(install),
            Err(failure) => unreadable.push((install_id, failure.error)),
        }
    }
    if global.json {
        print_json(&installs)?;
    } else if installs.is_empty() && unreadable.is_empty() {
        println!("no installs yet in {}", state.root().display());
    } else if !installs.is_empty() {
        print_history(&installs.iter().map(state_row).collect::<Vec<_>>());
    }
    if unreadable.is_empty() {
        return Ok(Code::Success);
    }
    for (install_id, error) in &unreadable {
        eprintln!("warning: install {install_id} is not listed: {error:#}");
    }
    Err(CliError::new(
        Code::State,
        anyhow!(
            "{} of {} installs in {} could not be read (unreadable event records); run `windlass verify-log` for details",
            unreadable.len(),
            unreadable.len() + installs.len(),
            state.root().display()
        ),
    ))
}

/// The `history` row of a folded install.
fn state_row(install: &InstallState) -> [String; 7] {
    [
        install.install_id.clone(),
        install.kind.as_str().to_string(),
        install.app_slug.clone(),
        install.release_digest.chars().take(19).collect(),
        install.status.as_str().to_string(),
        install.started_at.clone(),
        install
            .duration_ms
            .map(format_duration)
            .unwrap_or_else(|| "-".into()),
    ]
}

/// The `history` row of an install summary: the same cells as [`state_row`] of its fold.
fn summary_row(summary: &InstallSummary) -> [String; 7] {
    [
        summary.install_id.clone(),
        summary.kind.as_str().to_string(),
        summary.app_slug.clone(),
        summary.release_digest.chars().take(19).collect(),
        InstallStatus::from(summary.status).as_str().to_string(),
        summary.started_at.clone(),
        summary
            .duration_ms()
            .map(format_duration)
            .unwrap_or_else(|| "-".into()),
    ]
}

/// One line per install, every column as wide as its widest value (app slugs and install ids
/// vary in length, and timestamps carry up to nine digits of fraction).
fn print_history(rows: &[[String; 7]]) {
    let header = [
        "INSTALL", "KIND", "APP", "RELEASE", "STATUS", "STARTED", "DURATION",
    ];
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut line = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        line
    };
    println!("{}", line(header));
    for row in rows {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
}

/// One event as printed by `windlass events --json`.
#[derive(Serialize)]
struct EventView<'a> {
    seq: u64,
    global_seq: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    schema_version: u32,
    recorded_at: &'a str,
    actor: &'a str,
    payload: &'a serde_json::Value,
    prev_hash: &'a str,
}

/// `windlass events <id>`.
pub fn events(global: &GlobalArgs, install_id: &str) -> CliResult {
    let state = open_state_read_only(global)?;
    let (events, _) = load_install(&state.log, install_id)?;
    if global.json {
        let views: Vec<EventView> = events
            .iter()
            .map(|event| EventView {
                seq: event.install_seq,
                global_seq: event.global_seq,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                recorded_at: &event.recorded_at,
                actor: &event.actor,
                payload: &event.payload,
                prev_hash: &event.prev_hash,
            })
            .collect();
        print_json(&views)?;
        return Ok(Code::Success);
    }
    for event in &events {
        let mut payload = event.payload.to_string();
        if payload.len() > 120 {
            let cut = (0..=117)
                .rev()
                .find(|&index| payload.is_char_boundary(index))
                .unwrap_or(0);
            payload.truncate(cut);
            payload.push_str("...");
        }
        println!(
            "{:>4}  {}  {} v{}  {payload}",
            event.install_seq, event.recorded_at, event.event_type, event.schema_version
        );
    }
    Ok(Code::Success)
}

/// What an install's apply stage recorded, folded (`None` when it has no apply facts).
fn apply_view_of(install: &InstallState) -> Option<windlass_apply::view::ApplyView> {
    windlass_apply::view::apply_view(
        install
            .stages
            .iter()
            .filter(|stage| stage.name == windlass_apply::stage::KIND)
            .flat_map(|stage| stage.fact_events.iter()),
    )
}

/// An install as `--json` prints it: its state, and under `apply` what its apply stage did to
/// each object (`show --json`, and `install`/`apply --json` once they finish).
pub fn install_json(install: &InstallState) -> Result<serde_json::Value, CliError> {
    let mut value =
        serde_json::to_value(install).map_err(|error| CliError::new(Code::Failure, error))?;
    if let (Some(applied), Some(object)) = (apply_view_of(install), value.as_object_mut()) {
        object.insert(
            "apply".into(),
            serde_json::to_value(applied).map_err(|error| CliError::new(Code::Failure, error))?,
        );
    }
    Ok(value)
}

/// `windlass show <id>`.
pub fn show(global: &GlobalArgs, install_id: &str) -> CliResult {
    let state = open_state_read_only(global)?;
    let (_, install) = load_install(&state.log, install_id)?;
    if global.json {
        print_json(&install_json(&install)?)?;
        return Ok(Code::Success);
    }
    let applied = apply_view_of(&install);
    println!("install   {}", install.install_id);
    println!("kind      {}", install.kind.as_str());
    println!("status    {}", install.status.as_str());
    println!("app       {}", install.app_slug);
    if let Some(license) = &install.license {
        println!(
            "license   sequence {}, fingerprint {}{}",
            license.sequence,
            license.fingerprint,
            license
                .expires_at
                .as_deref()
                .map(|expiry| format!(", expires {expiry}"))
                .unwrap_or_default()
        );
    }
    println!(
        "release   {} ({})",
        install.release_dir, install.release_digest
    );
    println!("namespace {}", install.namespace);
    println!("out       {}", install.out);
    println!("started   {}", install.started_at);
    if let Some(finished) = &install.finished_at {
        println!("finished  {finished}");
    }
    if install.resumed > 0 {
        println!("resumed   {} time(s)", install.resumed);
    }
    let name_width = stage_name_width(&install);
    for stage in &install.stages {
        println!(
            "stage     {:<name_width$} {:<10} attempts {}  {}{}",
            stage.name,
            format!("{:?}", stage.status).to_lowercase(),
            stage.attempts,
            stage.summary.clone().unwrap_or_default(),
            stage
                .last_error
                .as_ref()
                .map(|error| format!(" last error: {} ({})", error.message, error.class))
                .unwrap_or_default()
        );
    }
    if let Some(failure) = &install.failure {
        println!(
            "failure   stage {} ({}): {}",
            failure.stage, failure.class, failure.message
        );
    }
    print_plan(&install);
    if let Some(applied) = &applied {
        print_applied(applied);
    }
    Ok(Code::Success)
}

/// `show`'s apply section: the app state, then every object applied, every wait (one line
/// each, [`wait_line`]), the helm releases, and every object pruned.
fn print_applied(applied: &windlass_apply::view::ApplyView) {
    if let Some(state) = applied.state() {
        println!("app state {}", state.as_str());
    }
    if let Some(observed) = &applied.app_state {
        for resource in &observed.resources {
            println!(
                "  informer {} {}",
                resource.informer,
                resource.state.as_str()
            );
        }
    }
    for object in &applied.objects {
        // A dry run's objects were only asked about: "would create", never "created".
        let outcome = match (object.dry_run, object.outcome) {
            (true, windlass_apply::events::ApplyOutcome::Created) => "would-create".to_string(),
            (true, windlass_apply::events::ApplyOutcome::Configured) => {
                "would-configure".to_string()
            }
            (_, outcome) => outcome_name(&outcome),
        };
        println!(
            "applied   {:<11} {}{}{}",
            outcome,
            object.key,
            object
                .uid
                .as_deref()
                .map(|uid| format!(" uid {uid}"))
                .unwrap_or_default(),
            object
                .resource_version
                .as_deref()
                .map(|version| format!(" rv {version}"))
                .unwrap_or_default()
        );
    }
    for object in &applied.unanswered {
        println!(
            "sent      no-answer   {}: announced before its group's requests (it may have been sent); no answer was recorded, so the cluster may hold it",
            object.key
        );
    }
    for wait in &applied.waits {
        println!("{}", wait_line(wait));
    }
    // `helm <outcome> <release> in <namespace> (<what>)<after>[: <error>]`
    let helm_line = |outcome: String,
                     release: &str,
                     namespace: &str,
                     what: String,
                     after: String,
                     error: &Option<String>| {
        let error = error
            .as_deref()
            .map(|error| format!(": {error}"))
            .unwrap_or_default();
        println!("helm      {outcome:<11} {release} in {namespace} ({what}){after}{error}");
    };
    for release in &applied.helm_uninstalled {
        helm_line(
            outcome_name(&release.outcome),
            &release.release_name,
            &release.namespace,
            format!("HelmChart {}", release.helm_chart),
            String::new(),
            &release.error,
        );
    }
    for freed in &applied.helm_freed {
        let (outcome, done) = match freed.to_revision {
            Some(to) => ("rolled-back", format!(" to revision {to}")),
            None => ("uninstalled", String::new()),
        };
        helm_line(
            if freed.error.is_some() {
                "failed".to_string()
            } else {
                outcome.to_string()
            },
            &freed.release_name,
            &freed.namespace,
            format!("HelmChart {}", freed.helm_chart),
            format!(
                "{done}: revision {} was left {} by a killed helm of install {}",
                freed.pending_revision, freed.pending_status, freed.interrupted_install
            ),
            &freed.error,
        );
    }
    for release in &applied.helm_releases {
        let revision = release
            .revision
            .map(|revision| format!(" revision {revision}"))
            .unwrap_or_default();
        helm_line(
            outcome_name(&release.outcome),
            &release.release_name,
            &release.namespace,
            release.chart.clone(),
            revision,
            &release.error,
        );
    }
    for deleted in &applied.deleted_to_recreate {
        println!(
            "deleted   to-recreate {} uid {}: {}",
            deleted.key, deleted.uid, deleted.refusal
        );
    }
    for pruned in &applied.pruned {
        let outcome = if pruned.dry_run {
            format!("would-be-{}", outcome_name(&pruned.outcome))
        } else {
            outcome_name(&pruned.outcome)
        };
        println!(
            "pruned    {:<11} {}{}",
            outcome,
            pruned.key,
            pruned
                .detail
                .as_deref()
                .map(|detail| format!(": {detail}"))
                .unwrap_or_default()
        );
    }
}

/// `show`'s line for one wait: `wait <outcome> <kind> <object> after <elapsed>, last seen:
/// <detail>`, the outcome and kind (`met`/`timed_out`; `established`, `active`, `ready`,
/// `properties`, `app_ready`) by their `--json` names in aligned columns, "the app" for the app
/// state, the last thing seen on the same line.
fn wait_line(wait: &windlass_apply::events::WaitFinished) -> String {
    let waited_for = wait
        .key
        .as_ref()
        .map_or_else(|| "the app".to_string(), ToString::to_string);
    let last_seen = if wait.detail.is_empty() {
        String::new()
    } else {
        format!(", last seen: {}", on_one_line(&wait.detail))
    };
    format!(
        "wait      {:<11} {:<11} {waited_for} after {}{last_seen}",
        outcome_name(&wait.outcome),
        outcome_name(&wait.wait),
        format_duration(wait.elapsed_ms)
    )
}

/// `text` with its control characters (a property value's line breaks) escaped, so that it
/// stays on one line.
fn on_one_line(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_control() {
                character.escape_default().to_string()
            } else {
                character.to_string()
            }
        })
        .collect()
}

/// The wire name of an outcome enum (`created`, `refused`, ...).
fn outcome_name(outcome: &impl serde::Serialize) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The width of the stage-name column: the longest stage name of the install.
pub fn stage_name_width(install: &InstallState) -> usize {
    install
        .stages
        .iter()
        .map(|stage| stage.name.chars().count())
        .max()
        .unwrap_or(0)
}

/// Answers "why was this image proxied?": every image rewritten, with the probe evidence that
/// caused it once, and under it each of its `images:` entries (an image gets one per name
/// kustomize may see it written as); then every image left alone with the reason.
fn print_plan(install: &InstallState) {
    let planned = install
        .stages
        .iter()
        .flat_map(|stage| &stage.fact_events)
        .find(|event| event.event_type == OverridesPlanned::EVENT_TYPE)
        .and_then(|event| serde_json::from_value::<OverridesPlanned>(event.payload.clone()).ok());
    let Some(planned) = planned else {
        return;
    };
    println!(
        "images    proxy host {} ({:?}), registry host {} ({:?})",
        planned.domains.proxy_host,
        planned.domains.proxy_source,
        planned.domains.registry_host,
        planned.domains.registry_source
    );
    for ((image, because), entries) in group_entries(&planned.plan.entries) {
        println!("  rewrite {image}  ({because})");
        let width = entries
            .iter()
            .map(|entry| entry.name.chars().count())
            .max()
            .unwrap_or(0);
        for entry in entries {
            println!("            {:<width$} → {}", entry.name, entry.new_name);
        }
    }
    for skipped in &planned.plan.skipped {
        println!("  keep    {}  ({})", skipped.image, skipped.reason);
    }
}

/// The planned entries grouped by the image (and evidence) that caused them, in the order the
/// images were first found.
fn group_entries(entries: &[PlannedEntry]) -> Vec<((&str, &str), Vec<&PlannedEntry>)> {
    let mut groups: Vec<((&str, &str), Vec<&PlannedEntry>)> = Vec::new();
    for entry in entries {
        let key = (entry.image.as_str(), entry.because.as_str());
        match groups.iter_mut().find(|(existing, _)| *existing == key) {
            Some((_, group)) => group.push(entry),
            None => groups.push((key, vec![entry])),
        }
    }
    groups
}

/// One place an event names a blob, as `verify-log --json` prints it.
#[derive(Debug, Clone, Serialize)]
struct BlobReference {
    install_id: String,
    /// The install sequence of the event.
    seq: u64,
    event_type: String,
    /// The file the blob holds: the `path` (or `file`) beside the reference.
    file: Option<String>,
}

/// A blob that fails verification, as `verify-log --json` prints it.
#[derive(Debug, Serialize)]
struct BadBlob {
    blob: String,
    /// `corrupted` (stored bytes do not hash to the id) or `missing` (named by an event, not
    /// stored).
    problem: &'static str,
    referenced_by: Vec<BlobReference>,
}

/// `verify-log --json`.
#[derive(Debug, Serialize)]
struct VerifyReport {
    ok: bool,
    records: u64,
    installs: usize,
    head: Option<String>,
    chain_error: Option<String>,
    /// The first record the chain break concerns: its global sequence, its install (when the
    /// record decodes) and its byte offset (always `null`: the redb and sled backends store
    /// records by key, not at offsets in a file).
    first_bad_record: Option<BadRecord>,
    unreadable_records: Vec<u64>,
    blobs_checked: u64,
    blob_bytes: u64,
    blob_error: Option<String>,
    bad_blobs: Vec<BadBlob>,
    affected_installs: Vec<AffectedInstall>,
    /// `current` (the indexes reflect the log), `stale` (they do not: readers fold the log until
    /// a writable open or `--rebuild-indexes` rebuilds them) or `unsupported` (the sled backend).
    indexes: &'static str,
    /// With `--rebuild-indexes`: how many records the indexes were rebuilt from.
    indexes_rebuilt_from: Option<u64>,
}

/// Where the chain first breaks, as `verify-log --json` prints it.
#[derive(Debug, Serialize)]
struct BadRecord {
    global_seq: u64,
    install_id: Option<String>,
    byte_offset: Option<u64>,
}

/// An install that names a damaged or missing blob, and the release to install again to repair it.
#[derive(Debug, Serialize)]
struct AffectedInstall {
    install_id: String,
    release_dir: Option<String>,
}

/// What a scan of every record found: blob references and each install's release directory.
#[derive(Default)]
struct LogScan {
    records: u64,
    installs: BTreeSet<String>,
    unreadable: Vec<u64>,
    references: BTreeMap<String, Vec<BlobReference>>,
    release_dirs: BTreeMap<String, String>,
}

/// Reads every record of the log (raw, so nothing needs to upcast) and collects every blob an
/// event names: any object field `blob` holding a blob id, with the `path` or `file` beside it.
fn scan_log(state: &StateView) -> Result<LogScan, windlass_state::StoreError> {
    const PAGE: usize = 1024;
    let mut scan = LogScan::default();
    let mut next = 1;
    loop {
        let page = match state.log.store().scan(next, PAGE) {
            Ok(page) => page,
            // A record whose stored form cannot be read at all (a damaged compressed frame)
            // fails its page: it is listed, and the scan goes on around it.
            Err(windlass_state::StoreError::CorruptRecord { global_seq, .. })
                if global_seq >= next =>
            {
                // The records before it (a page the byte budget cut short is taken as it is:
                // the next scan starts where it ends), else the damaged record alone.
                let before = if global_seq > next {
                    state.log.store().scan(next, (global_seq - next) as usize)
                } else {
                    Ok(Vec::new())
                };
                let mut page = match before {
                    Ok(page) => page,
                    // A gap before it made that page reach it again: one record at a time.
                    Err(windlass_state::StoreError::CorruptRecord {
                        global_seq: again, ..
                    }) if again == global_seq => match state.log.store().scan(next, 1) {
                        Ok(page) => page,
                        Err(windlass_state::StoreError::CorruptRecord {
                            global_seq: again,
                            ..
                        }) if again == global_seq => Vec::new(),
                        Err(error) => return Err(error),
                    },
                    Err(error) => return Err(error),
                };
                page.retain(|raw| raw.global_seq < global_seq);
                if page.is_empty() {
                    page.push(windlass_state::RawRecord {
                        global_seq,
                        bytes: Vec::new(),
                    });
                }
                page
            }
            Err(error) => return Err(error),
        };
        let Some(last) = page.last() else { break };
        next = last.global_seq + 1;
        for raw in page {
            scan.records += 1;
            let Ok(event) = serde_json::from_slice::<StoredEvent>(&raw.bytes) else {
                scan.unreadable.push(raw.global_seq);
                continue;
            };
            scan.installs.insert(event.install_id.clone());
            if event.event_type == windlass_engine::events::INSTALL_STARTED
                && let Some(release_dir) = event.payload["release_dir"].as_str()
            {
                scan.release_dirs
                    .insert(event.install_id.clone(), release_dir.to_string());
            }
            collect_references(&event.payload, &event, &mut scan.references);
        }
    }
    Ok(scan)
}

fn collect_references(
    value: &serde_json::Value,
    event: &StoredEvent,
    found: &mut BTreeMap<String, Vec<BlobReference>>,
) {
    match value {
        serde_json::Value::Object(object) => {
            if let Some(hex) = object.get("blob").and_then(|blob| blob.as_str())
                && BlobId::parse(hex).is_ok()
            {
                let file = ["path", "file"]
                    .iter()
                    .find_map(|key| object.get(*key)?.as_str())
                    .map(str::to_string);
                found
                    .entry(hex.to_string())
                    .or_default()
                    .push(BlobReference {
                        install_id: event.install_id.clone(),
                        seq: event.install_seq,
                        event_type: event.event_type.clone(),
                        file,
                    });
            }
            for child in object.values() {
                collect_references(child, event, found);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_references(item, event, found);
            }
        }
        _ => {}
    }
}

/// Runs `check`, turning a panic of the storage engine on a damaged database into an error
/// (redb may panic on some damaged pages) without printing the panic.
fn without_panics<T>(check: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|message| message.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(format!(
            "the database is damaged: the storage engine failed reading it ({message})"
        ))
    })
}

/// `windlass verify-log`: the hash chain and numbering of the log, every record readable, every
/// stored blob's bytes hashing to its id, and every blob an event names present. Exits 4 naming
/// what is damaged and which installs it affects.
///
/// `--rebuild-indexes` first opens the state for writing and derives the indexes from the log
/// again; otherwise the report says whether they reflect the log (`indexes`).
pub fn verify_log(global: &GlobalArgs, rebuild_indexes: bool) -> CliResult {
    let mut rebuilt = None;
    if rebuild_indexes {
        // Like every read command, refuse a missing state directory rather than create one.
        drop(open_state_read_only(global)?);
        let state = open_state(global)?;
        let records = without_panics(|| {
            state
                .log
                .rebuild_projections()
                .map_err(|error| error.to_string())
        })
        .map_err(|error| {
            CliError::new(
                Code::State,
                anyhow!(error).context(format!(
                    "cannot rebuild the indexes of state directory {}",
                    global.state.display()
                )),
            )
        })?;
        rebuilt = Some(records);
    }
    let state = open_state_read_only(global)?;
    let report = without_panics(|| {
        let mut report = verify(&state);
        report.indexes_rebuilt_from = rebuilt;
        report.indexes = match state.log.ensure_projections(false) {
            Ok(ProjectionStatus::Current | ProjectionStatus::Rebuilt(_)) => "current",
            Ok(ProjectionStatus::Stale) => "stale",
            Ok(ProjectionStatus::Unsupported) => "unsupported",
            Err(error) => return Err(error.to_string()),
        };
        Ok(report)
    })
    .map_err(|error| {
        CliError::new(
            Code::State,
            anyhow!(error).context(format!(
                "cannot verify the state directory {}",
                global.state.display()
            )),
        )
    })?;
    if global.json {
        print_json(&report)?;
    } else {
        print_verify_report(&report);
    }
    if report.ok {
        return Ok(Code::Success);
    }
    let mut problems = Vec::new();
    if report.chain_error.is_some() || !report.unreadable_records.is_empty() {
        problems.push(match &report.first_bad_record {
            Some(bad) => format!(
                "the event log is damaged from record {}{}",
                bad.global_seq,
                bad.install_id
                    .as_deref()
                    .map(|install| format!(" (install {install})"))
                    .unwrap_or_default()
            ),
            None => "the event log is damaged".to_string(),
        });
    }
    if report.blob_error.is_some() {
        problems.push("the blob store cannot be read".to_string());
    }
    if !report.bad_blobs.is_empty() {
        problems.push(format!(
            "{} blob(s) damaged or missing, affecting install(s) {}",
            report.bad_blobs.len(),
            if report.affected_installs.is_empty() {
                "none".to_string()
            } else {
                report
                    .affected_installs
                    .iter()
                    .map(|install| install.install_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    Err(CliError::new(
        Code::State,
        anyhow!(
            "verification of {} failed: {}",
            global.state.display(),
            problems.join("; ")
        ),
    ))
}

fn verify(state: &StateView) -> VerifyReport {
    let chain = verify_chain(state.log.store());
    let scan = scan_log(state);
    let blob_check = state.blobs.verify();
    let (scan, scan_error) = match scan {
        Ok(scan) => (scan, None),
        Err(error) => (LogScan::default(), Some(error.to_string())),
    };
    let LogScan {
        records,
        installs,
        unreadable,
        references,
        release_dirs,
    } = scan;
    let installs = installs.len();
    let mut report = VerifyReport {
        ok: true,
        records,
        installs,
        head: None,
        chain_error: None,
        first_bad_record: None,
        unreadable_records: unreadable,
        blobs_checked: 0,
        blob_bytes: 0,
        blob_error: None,
        bad_blobs: Vec::new(),
        affected_installs: Vec::new(),
        indexes: "unsupported",
        indexes_rebuilt_from: None,
    };
    match chain {
        Ok(chain) => {
            report.records = chain.records;
            report.installs = chain.installs;
            report.head = Some(chain.head);
        }
        Err(error) => {
            report.first_bad_record = error.global_seq().map(|global_seq| BadRecord {
                global_seq,
                install_id: install_of_record(state, global_seq),
                byte_offset: None,
            });
            report.chain_error = Some(error.to_string());
        }
    }
    if report.chain_error.is_none() {
        report.chain_error = scan_error;
    }
    let mut bad: BTreeMap<String, &'static str> = BTreeMap::new();
    match blob_check {
        Ok(check) => {
            report.blobs_checked = check.checked;
            report.blob_bytes = check.bytes;
            bad.extend(check.damaged.into_iter().map(|key| (key, "corrupted")));
            let referenced: Vec<BlobId> = references
                .keys()
                .filter_map(|hex| BlobId::parse(hex).ok())
                .collect();
            match state.blobs.missing(&referenced) {
                Ok(missing) => bad.extend(
                    missing
                        .into_iter()
                        .map(|id| (id.as_str().to_string(), "missing")),
                ),
                Err(error) => report.blob_error = Some(error.to_string()),
            }
        }
        Err(error) => report.blob_error = Some(error.to_string()),
    }
    let mut affected = BTreeSet::new();
    for (blob, problem) in bad {
        let referenced_by = references.get(&blob).cloned().unwrap_or_default();
        affected.extend(
            referenced_by
                .iter()
                .map(|reference| reference.install_id.clone()),
        );
        report.bad_blobs.push(BadBlob {
            blob,
            problem,
            referenced_by,
        });
    }
    report.affected_installs = affected
        .into_iter()
        .map(|install_id| AffectedInstall {
            release_dir: release_dirs.get(&install_id).cloned(),
            install_id,
        })
        .collect();
    report.ok = report.chain_error.is_none()
        && report.unreadable_records.is_empty()
        && report.blob_error.is_none()
        && report.bad_blobs.is_empty();
    report
}

/// The install a stored record names, read from its raw bytes (a record too damaged to decode
/// as an event may still name its install).
fn install_of_record(state: &StateView, global_seq: u64) -> Option<String> {
    let raw = state
        .log
        .store()
        .scan(global_seq, 1)
        .ok()?
        .into_iter()
        .next()?;
    if raw.global_seq != global_seq {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&raw.bytes).ok()?;
    value.get("install_id")?.as_str().map(str::to_string)
}

fn print_verify_report(report: &VerifyReport) {
    match (&report.chain_error, &report.head) {
        (None, Some(head)) => println!(
            "event log ok: {} records, {} installs, head {head}",
            report.records, report.installs
        ),
        (Some(error), _) => println!("event log damaged: {error}"),
        (None, None) => {}
    }
    if let Some(bad) = &report.first_bad_record {
        println!(
            "first bad record: sequence {}, install {}, byte offset unknown (the log stores records by key)",
            bad.global_seq,
            bad.install_id
                .as_deref()
                .unwrap_or("unknown (the record does not decode)")
        );
    }
    if let Some(records) = report.indexes_rebuilt_from {
        println!("indexes rebuilt from {records} records");
    }
    match report.indexes {
        "current" => println!("indexes ok: they reflect the whole log"),
        "stale" => println!(
            "indexes stale: they do not reflect the log (written by an older windlass?); history and resume fold the log until `windlass verify-log --rebuild-indexes` or the next install rebuilds them"
        ),
        _ => println!("indexes: none kept by this backend; history and resume fold the log"),
    }
    if !report.unreadable_records.is_empty() {
        println!(
            "unreadable records: {}",
            report
                .unreadable_records
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(error) = &report.blob_error {
        println!("blob store damaged: {error}");
    } else if report.bad_blobs.is_empty() {
        println!(
            "blobs ok: {} blobs ({} bytes) match their hashes, every blob an event names is stored",
            report.blobs_checked, report.blob_bytes
        );
    }
    for bad in &report.bad_blobs {
        let problem = match bad.problem {
            "missing" => "is named by the log but missing from the blob store",
            _ => "is corrupted: its bytes no longer match its hash",
        };
        println!("blob {} {problem}", bad.blob);
        if bad.referenced_by.is_empty() {
            println!("  named by no event");
        }
        for reference in &bad.referenced_by {
            println!(
                "  install {} event {} ({}){}",
                reference.install_id,
                reference.seq,
                reference.event_type,
                reference
                    .file
                    .as_deref()
                    .map(|file| format!(": {file}"))
                    .unwrap_or_default()
            );
        }
    }
    for install in &report.affected_installs {
        match &install.release_dir {
            Some(release_dir) => println!(
                "to repair install {}: re-run `windlass install {release_dir}` with the same options to store its files again",
                install.install_id
            ),
            None => println!(
                "install {} is affected; re-run its `windlass install` to store its files again",
                install.install_id
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use windlass_apply::events::{WaitFinished, WaitKind, WaitOutcome};

    fn wait(
        key: Option<windlass_apply::order::ObjectKey>,
        kind: WaitKind,
        outcome: WaitOutcome,
        elapsed_ms: u64,
        detail: &str,
    ) -> WaitFinished {
        WaitFinished {
            key,
            wait: kind,
            outcome,
            elapsed_ms,
            detail: detail.into(),
            resource_version: None,
            uid: None,
        }
    }

    #[test]
    fn a_wait_is_one_aligned_line() {
        let web = windlass_apply::order::ObjectKey {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: Some("default".into()),
            name: "web".into(),
        };
        let crd = windlass_apply::order::ObjectKey {
            group: "apiextensions.k8s.io".into(),
            version: "v1".into(),
            kind: "CustomResourceDefinition".into(),
            namespace: None,
            name: "widgets.example.com".into(),
        };
        let lines = [
            wait(
                Some(crd),
                WaitKind::Established,
                WaitOutcome::Met,
                87,
                "ready",
            ),
            wait(
                Some(web.clone()),
                WaitKind::Ready,
                WaitOutcome::TimedOut,
                20_004,
                "updating",
            ),
            wait(
                Some(web),
                WaitKind::Properties,
                WaitOutcome::TimedOut,
                2_000,
                ".data.note=two\nlines",
            ),
            wait(None, WaitKind::AppReady, WaitOutcome::Met, 1_250, ""),
        ]
        .iter()
        .map(wait_line)
        .collect::<Vec<_>>();
        assert_eq!(
            lines,
            [
                "wait      met         established CustomResourceDefinition widgets.example.com after 87 ms, last seen: ready",
                "wait      timed_out   ready       Deployment default/web after 20.00 s, last seen: updating",
                "wait      timed_out   properties  Deployment default/web after 2.00 s, last seen: .data.note=two\\nlines",
                "wait      met         app_ready   the app after 1.25 s",
            ]
        );
    }
}
