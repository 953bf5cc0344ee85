//! What the status API and the console read from the state directory: the installs (not the
//! daemon's release streams), one install folded from its events, its events, and the diff of two
//! installs. All reads are synchronous redb reads; the HTTP handlers run them on blocking threads.

use serde::Serialize;
use windlass_engine::{FoldError, InstallState, InstallStatus, fold};
use windlass_state::{StateDir, StoredEvent};

use crate::events::is_release_stream;

/// One row of `/api/installs` (a wire format).
#[derive(Debug, Clone, Serialize)]
pub struct InstallRow {
    /// The install id.
    pub install_id: String,
    /// Which command began it: `install`, `apply` or `undeploy`.
    pub kind: windlass_engine::InstallKind,
    /// The app.
    pub app_slug: String,
    /// `incomplete`, `completed` or `failed`.
    pub status: String,
    /// The release directory it installed.
    pub release_dir: String,
    /// The install's release digest.
    pub release_digest: String,
    /// When it started.
    pub started_at: String,
    /// From start to finish.
    pub duration_ms: Option<u64>,
    /// The install it upgrades.
    pub upgrades: Option<String>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No install has this id.
    #[error("no install with id {0:?}")]
    NotFound(String),
    /// The log or the install's events could not be read.
    #[error("{0}")]
    State(String),
}

/// Every install, oldest first.
pub fn installs(state: &StateDir) -> Result<Vec<InstallRow>, ReadError> {
    let ids: Vec<String> = state
        .log
        .install_ids()
        .map_err(|error| ReadError::State(error.to_string()))?
        .into_iter()
        .filter(|id| !is_release_stream(id))
        .collect();
    if let Some(summaries) = windlass_engine::install_index::summaries(&state.log, &ids)
        .map_err(|error| ReadError::State(error.to_string()))?
        && summaries.len() == ids.len()
    {
        return Ok(summaries
            .into_iter()
            .map(|summary| InstallRow {
                duration_ms: summary.duration_ms(),
                kind: summary.kind,
                status: InstallStatus::from(summary.status).as_str().to_string(),
                install_id: summary.install_id,
                app_slug: summary.app_slug,
                release_dir: summary.release_dir,
                release_digest: summary.release_digest,
                started_at: summary.started_at,
                upgrades: summary.upgrades,
            })
            .collect());
    }
    let mut rows = Vec::new();
    for id in ids {
        // An install this binary cannot read is left out (`windlass history` names it).
        let Ok(state) = install(state, &id) else {
            continue;
        };
        rows.push(InstallRow {
            install_id: state.install_id,
            kind: state.kind,
            app_slug: state.app_slug,
            status: state.status.as_str().to_string(),
            release_dir: state.release_dir,
            release_digest: state.release_digest,
            started_at: state.started_at,
            duration_ms: state.duration_ms,
            upgrades: state.upgrades,
        });
    }
    Ok(rows)
}

/// The events of install `id`.
pub fn events(state: &StateDir, id: &str) -> Result<Vec<StoredEvent>, ReadError> {
    if is_release_stream(id) {
        return Err(ReadError::NotFound(id.to_string()));
    }
    let events = state
        .log
        .events_of(id)
        .map_err(|error| ReadError::State(error.to_string()))?;
    if events.is_empty() {
        return Err(ReadError::NotFound(id.to_string()));
    }
    Ok(events)
}

/// Install `id`, folded from its events.
pub fn install(state: &StateDir, id: &str) -> Result<InstallState, ReadError> {
    let events = events(state, id)?;
    fold(id, &events).map_err(|error| match error {
        FoldError::UnknownInstall(id) => ReadError::NotFound(id),
        other => ReadError::State(other.to_string()),
    })
}

/// The diff of installs `from` → `to`.
pub fn diff(
    state: &StateDir,
    from: &str,
    to: &str,
) -> Result<windlass_replay::diff::InstallDiff, ReadError> {
    for id in [from, to] {
        events(state, id)?;
    }
    windlass_replay::diff::diff_installs(&state.log, &state.blobs, from, to, None).map_err(
        |error| match error {
            windlass_replay::ReplayError::NotFound(id) => ReadError::NotFound(id),
            other => ReadError::State(other.to_string()),
        },
    )
}
