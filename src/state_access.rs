//! Opening the state directory with every crate's event schemas, and the pieces of identity the
//! binary adds to what it records (the actor, new install ids).

use std::sync::Arc;

use anyhow::anyhow;
use windlass_state::{Backend, ProjectionStatus, SchemaRegistry, StateDir, StateView};

use crate::cli::GlobalArgs;
use crate::exit::{CliError, Code};

/// Every event schema known to this binary.
pub fn schemas() -> Result<Arc<SchemaRegistry>, CliError> {
    let mut tables = vec![
        windlass_engine::events::SCHEMAS,
        windlass_stages::SCHEMAS,
        windlass_apply::SCHEMAS,
        windlass_replay::SCHEMAS,
        windlass_daemon::events::SCHEMAS,
    ];
    tables.extend(crate::plugins::plugin_set().schemas());
    SchemaRegistry::new(&tables)
        .map(Arc::new)
        .map_err(|error| CliError::new(Code::Failure, error))
}

/// The first part of `path` that exists, if it is not a directory: `path` itself, or the parent
/// that stops it from being created.
pub fn file_in_the_way(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let existing = path
        .ancestors()
        .find(|ancestor| std::fs::symlink_metadata(ancestor).is_ok())?;
    (!existing.is_dir()).then(|| existing.to_path_buf())
}

/// Opens the state directory named by the global options.
/// The engine's projections are attached, and rebuilt from the log when they do not reflect it
/// (a state directory written by an older windlass gets them here).
pub fn open_state(global: &GlobalArgs) -> Result<StateDir, CliError> {
    refuse_a_file_as_state(global)?;
    let mut state = open_state_unindexed(global)?;
    state.log = state
        .log
        .clone()
        .with_projector(Arc::new(windlass_engine::InstallProjector));
    match state.log.ensure_projections(true) {
        Ok(ProjectionStatus::Rebuilt(records)) => {
            tracing::info!(
                records,
                "rebuilt the indexes of the state directory from its log"
            );
        }
        Ok(_) => tracing::debug!("state directory open"),
        Err(error) => {
            return Err(CliError::new(
                Code::State,
                anyhow!(error).context(format!(
                    "cannot rebuild the indexes of state directory {}",
                    global.state.display()
                )),
            ));
        }
    }
    Ok(state)
}

fn open_state_unindexed(global: &GlobalArgs) -> Result<StateDir, CliError> {
    StateDir::open(&global.state, backend(global)?, schemas()?).map_err(|error| {
        CliError::new(
            Code::State,
            match error {
                // Already names the directory.
                windlass_state::StateDirError::NotADirectory(_) => anyhow!(error),
                other => anyhow!(other).context(format!(
                    "cannot open state directory {}",
                    global.state.display()
                )),
            },
        )
    })
}

/// Opens the state directory named by the global options for reading only (the read-only
/// commands): nothing is created or written, and a missing directory is an error.
/// The engine's projections are attached for reading; when they do not reflect the log the readers
/// fall back to folding it (nothing is rebuilt: that needs a writable open).
pub fn open_state_read_only(global: &GlobalArgs) -> Result<StateView, CliError> {
    refuse_a_file_as_state(global)?;
    let mut state = open_read_only_unindexed(global)?;
    state.log = state
        .log
        .clone()
        .with_projector(Arc::new(windlass_engine::InstallProjector));
    Ok(state)
}

fn open_read_only_unindexed(global: &GlobalArgs) -> Result<StateView, CliError> {
    StateDir::open_read_only(&global.state, backend(global)?, schemas()?).map_err(|error| {
        CliError::new(
            Code::State,
            match error {
                // Already names the directory.
                windlass_state::StateDirError::Missing(_)
                | windlass_state::StateDirError::NotADirectory(_) => anyhow!(error),
                other => anyhow!(other).context(format!(
                    "cannot open state directory {}",
                    global.state.display()
                )),
            },
        )
    })
}

/// `--state` naming a file (or a path under one) is a bad command line, said as such.
fn refuse_a_file_as_state(global: &GlobalArgs) -> Result<(), CliError> {
    if let Some(file) = file_in_the_way(&global.state) {
        let shown = global.state.display();
        let message = if file == global.state {
            format!("--state {shown}: is a file, not a directory")
        } else {
            format!(
                "--state {shown}: {} is a file, not a directory",
                file.display()
            )
        };
        return Err(CliError::new(Code::CommandLine, anyhow!(message)));
    }
    Ok(())
}

/// The `--backend` (or `WINDLASS_BACKEND`) asked for; an unknown one, or `sled` in a build
/// without it, is a bad command line.
fn backend(global: &GlobalArgs) -> Result<Backend, CliError> {
    Backend::parse(&global.backend).ok_or_else(|| {
        CliError::new(
            Code::CommandLine,
            anyhow!(
                "unknown backend {:?}: use redb{}",
                global.backend,
                if cfg!(feature = "sled") {
                    " or sled"
                } else {
                    " (sled needs a build with --features sled)"
                }
            ),
        )
    })
}

/// Who is acting: `user@host`.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|host| host.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

/// A new install id: UTC time to the second plus 6 random hex digits, e.g. `20261123-071502-3fa2c1`.
pub fn new_install_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut random = [0u8; 3];
    // Falls back to the clock's nanoseconds if the OS random source is unavailable.
    if getrandom::fill(&mut random).is_err() {
        random.copy_from_slice(&now.nanosecond().to_be_bytes()[1..]);
    }
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{:02x}{:02x}{:02x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        random[0],
        random[1],
        random[2]
    )
}
