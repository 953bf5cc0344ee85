//! The commands that only read the log: `history`, `events`, `show` and `verify-log`. They open the
//! log in redb's multi-process mode, so they work while an install or the daemon is writing.

use anyhow::anyhow;
use serde::Serialize;
use windlass_engine::{FoldError, InstallState, fold};
use windlass_stages::plan_overrides::{OVERRIDES_PLANNED, OverridesPlanned};
use windlass_state::{StoredEvent, verify_chain};

use crate::cli::GlobalArgs;
use crate::exit::{CliError, CliResult, Code};
use crate::state_access::open_state;

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|error| CliError::new(Code::Failure, error))?;
    println!("{text}");
    Ok(())
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
    state: &windlass_state::StateDir,
    install_id: &str,
) -> Result<(Vec<StoredEvent>, InstallState), CliError> {
    let events = state.log.events_of(install_id).map_err(state_error)?;
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

/// `windlass history`.
pub fn history(global: &GlobalArgs) -> CliResult {
    let state = open_state(global)?;
    let mut installs = Vec::new();
    for install_id in state.log.install_ids().map_err(state_error)? {
        installs.push(load_install(&state, &install_id)?.1);
    }
    if global.json {
        print_json(&installs)?;
        return Ok(Code::Success);
    }
    if installs.is_empty() {
        println!("no installs yet in {}", state.root().display());
        return Ok(Code::Success);
    }
    println!(
        "{:<24} {:<16} {:<20} {:<11} {:<26} DURATION",
        "INSTALL", "APP", "RELEASE", "STATUS", "STARTED"
    );
    for install in installs {
        let digest: String = install.release_digest.chars().take(19).collect();
        println!(
            "{:<24} {:<16} {:<20} {:<11} {:<26} {}",
            install.install_id,
            install.app_slug,
            digest,
            install.status.as_str(),
            install.started_at,
            install
                .duration_ms
                .map(format_duration)
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(Code::Success)
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
    let state = open_state(global)?;
    let (events, _) = load_install(&state, install_id)?;
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

/// `windlass show <id>`.
pub fn show(global: &GlobalArgs, install_id: &str) -> CliResult {
    let state = open_state(global)?;
    let (_, install) = load_install(&state, install_id)?;
    if global.json {
        print_json(&install)?;
        return Ok(Code::Success);
    }
    println!("install   {}", install.install_id);
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
    for stage in &install.stages {
        println!(
            "stage     {:<14} {:<10} attempts {}  {}{}",
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
    Ok(Code::Success)
}

/// Answers "why was this image proxied?": every planned `images:` entry with the probe evidence
/// that caused it, and every image left alone with the reason.
fn print_plan(install: &InstallState) {
    let planned = install
        .stages
        .iter()
        .flat_map(|stage| &stage.fact_events)
        .find(|event| event.event_type == OVERRIDES_PLANNED)
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
    for entry in &planned.plan.entries {
        println!(
            "  rewrite {} → {}  (for {}: {})",
            entry.name, entry.new_name, entry.image, entry.because
        );
    }
    for skipped in &planned.plan.skipped {
        println!("  keep    {}  ({})", skipped.image, skipped.reason);
    }
}

/// `windlass verify-log`.
pub fn verify_log(global: &GlobalArgs) -> CliResult {
    let state = open_state(global)?;
    let report = verify_chain(state.log.store()).map_err(|error| {
        CliError::new(
            Code::State,
            anyhow!(error).context("the event log failed verification"),
        )
    })?;
    if global.json {
        print_json(&serde_json::json!({
            "ok": true,
            "records": report.records,
            "installs": report.installs,
            "head": report.head,
        }))?;
    } else {
        println!(
            "event log ok: {} records, {} installs, head {}",
            report.records, report.installs, report.head
        );
    }
    Ok(Code::Success)
}
