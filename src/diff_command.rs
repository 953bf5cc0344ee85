//! `windlass diff` (two installs compared stage by stage, or one against the install it upgraded)
//! and `windlass history --app SLUG` (an app's installs as a chain of upgrades). The comparison is
//! `windlass_replay::diff`; this module reads the arguments and prints.

use std::io::Write;

use anyhow::anyhow;
use serde::Serialize;
use windlass_replay::ReplayError;
use windlass_replay::diff::{diff_installs, upgraded_by};

use crate::cli::GlobalArgs;
use crate::exit::{CliError, CliResult, Code};
use crate::read_commands::print_json;
use crate::state_access::open_state_read_only;

fn replay_error(error: ReplayError) -> CliError {
    let code = match &error {
        ReplayError::NotFound(_) => Code::NotFound,
        _ => Code::State,
    };
    CliError::new(code, error)
}

/// `windlass diff <A> [<B>] [--stage S]`: A → B, or the install A upgraded → A.
pub fn diff(
    global: &GlobalArgs,
    first: &str,
    second: Option<&str>,
    stage: Option<&str>,
) -> CliResult {
    let state = open_state_read_only(global)?;
    let (from, to) = match second {
        Some(second) => (first.to_string(), second.to_string()),
        None => match upgraded_by(&state.log, first).map_err(replay_error)? {
            Some(previous) => (previous, first.to_string()),
            None => {
                return Err(CliError::new(
                    Code::CommandLine,
                    anyhow!(
                        "install {first} upgrades no install (it is its app's first, or it installed the same release again): name the install to compare it with, `windlass diff <A> {first}`"
                    ),
                ));
            }
        },
    };
    let diff = diff_installs(&state.log, &state.blobs, &from, &to, stage).map_err(replay_error)?;
    if global.json {
        print_json(&diff)?;
        return Ok(Code::Success);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "diff {} → {}: {}",
        diff.from,
        diff.to,
        diff.summary.line()
    );
    let mut current = "";
    for change in &diff.changes {
        if change.stage != current {
            current = &change.stage;
            let _ = writeln!(out, "{current}");
        }
        let _ = writeln!(
            out,
            "  {} {}: {} ({})",
            change.kind, change.subject, change.detail, change.attribution
        );
        if let Some(unified) = &change.unified_diff {
            for line in unified.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    Ok(Code::Success)
}

/// One install in `history --app --json`.
#[derive(Serialize)]
struct AppInstall {
    install_id: String,
    kind: windlass_engine::InstallKind,
    release_digest: String,
    status: &'static str,
    started_at: String,
    upgrades: Option<String>,
}

/// `windlass history --app SLUG`: the app's installs, oldest first, each with the install it
/// upgrades, and the chain of upgrades that leads to the newest.
pub fn app_history(global: &GlobalArgs, app_slug: &str) -> CliResult {
    let state = open_state_read_only(global)?;
    let ids = state
        .log
        .install_ids()
        .map_err(|error| CliError::new(Code::State, error))?;
    let mut installs = Vec::new();
    for id in ids {
        let events = state
            .log
            .events_of(&id)
            .map_err(|error| CliError::new(Code::State, error))?;
        let Ok(install) = windlass_engine::fold(&id, &events) else {
            continue;
        };
        if install.app_slug == app_slug {
            installs.push(AppInstall {
                install_id: install.install_id,
                kind: install.kind,
                release_digest: install.release_digest,
                status: install.status.as_str(),
                started_at: install.started_at,
                upgrades: install.upgrades,
            });
        }
    }
    if installs.is_empty() {
        return Err(CliError::new(
            Code::NotFound,
            anyhow!(
                "--app: no install of app {app_slug:?} in this state directory (see `windlass history`)"
            ),
        ));
    }
    if global.json {
        print_json(&installs)?;
        return Ok(Code::Success);
    }
    let mut out = std::io::stdout().lock();
    let width = installs
        .iter()
        .map(|install| install.install_id.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "{app_slug}: {} install(s), oldest first",
        installs.len()
    );
    for install in &installs {
        let _ = writeln!(
            out,
            "  {:width$}  {:8}  {}  {:9}  {}  {}",
            install.install_id,
            install.kind.as_str(),
            install.release_digest.chars().take(19).collect::<String>(),
            install.status,
            install.started_at,
            install
                .upgrades
                .as_deref()
                .map(|previous| format!("upgrades {previous}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    // The chain that leads to the newest install.
    let mut chain = vec![installs.last().expect("not empty").install_id.clone()];
    while let Some(previous) = installs
        .iter()
        .find(|install| Some(&install.install_id) == chain.last())
        .and_then(|install| install.upgrades.clone())
    {
        if chain.contains(&previous) {
            break;
        }
        chain.push(previous);
    }
    chain.reverse();
    let _ = writeln!(out, "upgrade chain: {}", chain.join(" → "));
    Ok(Code::Success)
}
