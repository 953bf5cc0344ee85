//! The engine's projections of the event log: what `history`, resume and the probe cache read
//! instead of folding every event of every install. [`InstallProjector`] tells `state` (which keeps
//! the rows opaque) how each event changes them, in the same write transaction as the append:
//!
//! ```text
//! install      install id            → InstallSummary (JSON): key, kind, app, release, status, times
//! install_key  install key           → id of the newest install with that key
//! app_latest   app slug              → id of the newest install of that app
//! fact_type    event type \n seq(20) → FactEntry (JSON): install id and time of each fact
//! ```
//!
//! Every reader here returns `None` when the projections are not current (a state written by an
//! older windlass and opened read-only, or the sled backend), and the caller then folds the log as
//! before, so the answers never depend on which path was taken.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use windlass_state::log::LogError;
use windlass_state::{EventLog, LazyEvent, ProjectionRows, Projector, StoreError, StoredEvent};

use crate::events::{
    INSTALL_COMPLETED, INSTALL_FAILED, INSTALL_RESUMED, INSTALL_STARTED, InstallKind,
    PipelineStageRecord, STAGE_COMPLETED, STAGE_FAILED, STAGE_STARTED,
};
use crate::install_state::InstallStatus;

/// Projection table: install id → [`InstallSummary`].
pub const INSTALL_TABLE: &str = "install";
/// Projection table: install key → newest install id with that key.
pub const INSTALL_KEY_TABLE: &str = "install_key";
/// Projection table: app slug → newest install id of that app.
pub const APP_LATEST_TABLE: &str = "app_latest";
/// Projection table: `<event type>\n<global seq, 20 digits>` → [`FactEntry`].
pub const FACT_TYPE_TABLE: &str = "fact_type";

/// What one install looks like without folding it: enough for `history` and for resume to pick
/// the install. Stored as JSON in the `install` projection (rebuilt, never upcast: a change of
/// shape bumps [`InstallProjector::VERSION`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSummary {
    /// The install id.
    pub install_id: String,
    /// See [`crate::InstallRequest::install_key`].
    pub install_key: String,
    /// The app slug.
    pub app_slug: String,
    /// The release directory.
    pub release_dir: String,
    /// The release digest.
    pub release_digest: String,
    /// Where it stands.
    pub status: SummaryStatus,
    /// When it started.
    pub started_at: String,
    /// When it completed or failed.
    pub finished_at: Option<String>,
    /// How many times it was resumed.
    pub resumed: u32,
    /// How many events it has.
    pub events: u64,
    /// The install it upgrades, if any.
    #[serde(default)]
    pub upgrades: Option<String>,
    /// Which command began it.
    #[serde(default)]
    pub kind: InstallKind,
    /// Its output directory.
    #[serde(default)]
    pub out_dir: String,
}

/// [`InstallStatus`] as stored in a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryStatus {
    /// See [`InstallStatus::Incomplete`].
    Incomplete,
    /// See [`InstallStatus::Completed`].
    Completed,
    /// See [`InstallStatus::Failed`].
    Failed,
}

impl From<SummaryStatus> for InstallStatus {
    fn from(status: SummaryStatus) -> InstallStatus {
        match status {
            SummaryStatus::Incomplete => InstallStatus::Incomplete,
            SummaryStatus::Completed => InstallStatus::Completed,
            SummaryStatus::Failed => InstallStatus::Failed,
        }
    }
}

impl InstallSummary {
    /// From start to finish, across resumes, as the fold computes it.
    pub fn duration_ms(&self) -> Option<u64> {
        crate::install_state::millis_between(&self.started_at, self.finished_at.as_deref()?)
    }
}

/// One fact in the `fact_type` projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactEntry {
    /// The install that recorded it.
    pub install_id: String,
    /// When.
    pub recorded_at: String,
}

/// The fields of `InstallStarted` the summary needs (any version after upcasting has them).
#[derive(Deserialize)]
struct StartedFields {
    install_key: String,
    app_slug: String,
    release_dir: String,
    release_digest: String,
    out_dir: String,
    #[serde(default)]
    upgrades: Option<String>,
    #[serde(default)]
    kind: Option<InstallKind>,
    /// Only to tell the kind of an install recorded before it was.
    pipeline: Vec<PipelineStageRecord>,
}

/// Keeps the engine's projections (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct InstallProjector;

impl InstallProjector {
    /// The rows' format version; bump it when a table or [`InstallSummary`] changes shape.
    pub const VERSION: u32 = 3;
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|error| StoreError::Backend(error.to_string()))
}

fn is_lifecycle(event_type: &str) -> bool {
    matches!(
        event_type,
        INSTALL_STARTED
            | INSTALL_RESUMED
            | INSTALL_COMPLETED
            | INSTALL_FAILED
            | STAGE_STARTED
            | STAGE_COMPLETED
            | STAGE_FAILED
    )
}

/// The `fact_type` key of a fact.
fn fact_key(event_type: &str, global_seq: u64) -> String {
    format!("{event_type}\n{global_seq:020}")
}

impl Projector for InstallProjector {
    fn version(&self) -> u32 {
        InstallProjector::VERSION
    }

    fn apply(&self, event: &StoredEvent, rows: &mut dyn ProjectionRows) -> Result<(), StoreError> {
        let id = event.install_id.as_str();
        if event.event_type == INSTALL_STARTED {
            // An install whose start does not decode is left out; its fold reports why.
            let Ok(started) = serde_json::from_value::<StartedFields>(event.payload.clone()) else {
                return Ok(());
            };
            let summary = InstallSummary {
                install_id: id.to_string(),
                install_key: started.install_key,
                app_slug: started.app_slug,
                release_dir: started.release_dir,
                release_digest: started.release_digest,
                status: SummaryStatus::Incomplete,
                started_at: event.recorded_at.clone(),
                finished_at: None,
                resumed: 0,
                events: 1,
                upgrades: started.upgrades,
                kind: started
                    .kind
                    .unwrap_or_else(|| InstallKind::told_from_pipeline(&started.pipeline)),
                out_dir: started.out_dir,
            };
            rows.put(INSTALL_KEY_TABLE, &summary.install_key, id.as_bytes())?;
            rows.put(APP_LATEST_TABLE, &summary.app_slug, id.as_bytes())?;
            return rows.put(INSTALL_TABLE, id, &encode(&summary)?);
        }
        if !is_lifecycle(&event.event_type) && event.event_type.len() <= 512 {
            let entry = FactEntry {
                install_id: id.to_string(),
                recorded_at: event.recorded_at.clone(),
            };
            rows.put(
                FACT_TYPE_TABLE,
                &fact_key(&event.event_type, event.global_seq),
                &encode(&entry)?,
            )?;
        }
        let Some(bytes) = rows.get(INSTALL_TABLE, id)? else {
            return Ok(());
        };
        let Ok(mut summary) = serde_json::from_slice::<InstallSummary>(&bytes) else {
            return Ok(());
        };
        summary.events += 1;
        match event.event_type.as_str() {
            INSTALL_RESUMED => {
                summary.resumed += 1;
                summary.status = SummaryStatus::Incomplete;
                summary.finished_at = None;
            }
            INSTALL_COMPLETED => {
                summary.status = SummaryStatus::Completed;
                summary.finished_at = Some(event.recorded_at.clone());
            }
            INSTALL_FAILED => {
                summary.status = SummaryStatus::Failed;
                summary.finished_at = Some(event.recorded_at.clone());
            }
            _ => {}
        }
        rows.put(INSTALL_TABLE, id, &encode(&summary)?)
    }
}

/// The summaries of `install_ids` (in that order; an id without one is left out), or `None` when
/// the projections are not current.
pub fn summaries(
    log: &EventLog,
    install_ids: &[String],
) -> Result<Option<Vec<InstallSummary>>, LogError> {
    if !log.projections_current()? {
        return Ok(None);
    }
    // One read of the whole table rather than a lookup per install.
    let mut rows: std::collections::HashMap<String, Vec<u8>> = log
        .projection_scan(INSTALL_TABLE, "")?
        .into_iter()
        .collect();
    let mut out = Vec::with_capacity(install_ids.len());
    for id in install_ids {
        if let Some(bytes) = rows.remove(id) {
            match serde_json::from_slice(&bytes) {
                Ok(summary) => out.push(summary),
                Err(_) => return Ok(None),
            }
        }
    }
    Ok(Some(out))
}

/// The newest completed install of app `app_slug` that `wanted` accepts (by its kind), or
/// `None`. Reads the summaries when the projections are current, else folds installs newest
/// first.
pub fn newest_completed_install(
    log: &EventLog,
    app_slug: &str,
    wanted: &dyn Fn(InstallKind) -> bool,
) -> Result<Option<CompletedInstall>, LogError> {
    let ids = log.install_ids()?;
    Ok(match summaries(log, &ids)? {
        Some(summaries) => summaries
            .into_iter()
            .rev()
            .find(|summary| {
                summary.app_slug == app_slug
                    && summary.status == SummaryStatus::Completed
                    && wanted(summary.kind)
            })
            .map(|summary| CompletedInstall {
                install_id: summary.install_id,
                release_digest: summary.release_digest,
                kind: summary.kind,
                out_dir: summary.out_dir,
            }),
        None => ids.iter().rev().find_map(|id| {
            let events = log.events_of(id).ok()?;
            let state = crate::install_state::fold(id, &events).ok()?;
            (state.app_slug == app_slug
                && state.status == InstallStatus::Completed
                && wanted(state.kind))
            .then_some(CompletedInstall {
                install_id: state.install_id,
                release_digest: state.release_digest,
                kind: state.kind,
                out_dir: state.out,
            })
        }),
    })
}

/// What [`newest_completed_install`] tells of the install it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedInstall {
    /// Its id.
    pub install_id: String,
    /// The release digest it recorded.
    pub release_digest: String,
    /// Which command began it.
    pub kind: InstallKind,
    /// Its output directory.
    pub out_dir: String,
}

/// The install a new install of `release_digest` for app `app_slug` upgrades: the newest
/// completed install of that app, when it installed another release and was no undeploy (after
/// an undeploy, the next install upgrades nothing).
pub fn upgraded_install(
    log: &EventLog,
    app_slug: &str,
    release_digest: &str,
) -> Result<Option<String>, LogError> {
    let newest = newest_completed_install(log, app_slug, &|_| true)?;
    Ok(newest.and_then(|newest| {
        (newest.release_digest != release_digest && newest.kind != InstallKind::Undeploy)
            .then_some(newest.install_id)
    }))
}

/// The id of the newest install with `install_key` (`Some(None)`: there is none), or `None` when
/// the projections are not current.
pub fn install_for_key(
    log: &EventLog,
    install_key: &str,
) -> Result<Option<Option<String>>, LogError> {
    if !log.projections_current()? {
        return Ok(None);
    }
    Ok(Some(
        log.projection_get(INSTALL_KEY_TABLE, install_key)?
            .map(|id| String::from_utf8_lossy(&id).into_owned()),
    ))
}

/// The id of the newest install of app `app_slug`, or `None` when the projections are not
/// current.
pub fn latest_install_of_app(
    log: &EventLog,
    app_slug: &str,
) -> Result<Option<Option<String>>, LogError> {
    if !log.projections_current()? {
        return Ok(None);
    }
    Ok(Some(
        log.projection_get(APP_LATEST_TABLE, app_slug)?
            .map(|id| String::from_utf8_lossy(&id).into_owned()),
    ))
}

/// Facts of `event_type` recorded at or after `since` by installs other than `exclude_install`,
/// newest first, read through the `fact_type` projection; `None` when it is not current. Facts
/// that no longer read are left out, as the fold-based lookup leaves out unreadable installs.
pub fn recent_facts(
    log: &EventLog,
    event_type: &str,
    since: time::OffsetDateTime,
    exclude_install: &str,
) -> Result<Option<Vec<StoredEvent>>, LogError> {
    let mut found = Vec::new();
    let visited = visit_recent_facts(log, event_type, since, exclude_install, &mut |lazy| {
        // A payload that does not read is left out, as a record that does not read is.
        if let Ok(event) = lazy.into_event() {
            found.push(event);
        }
        ControlFlow::Continue(())
    })?;
    Ok(visited.map(|()| found))
}

/// [`recent_facts`], handing each fact to `visit` as it is read, newest first, and stopping when
/// `visit` breaks: a caller that needs only the newest facts does not read the older ones. `None`
/// (nothing visited) when the projection is not current.
pub fn visit_recent_facts(
    log: &EventLog,
    event_type: &str,
    since: time::OffsetDateTime,
    exclude_install: &str,
    visit: &mut dyn FnMut(LazyEvent) -> ControlFlow<()>,
) -> Result<Option<()>, LogError> {
    use time::format_description::well_known::Rfc3339;
    if !log.projections_current()? {
        return Ok(None);
    }
    let prefix = format!("{event_type}\n");
    // The candidates are settled from the projection rows first, so that a row that does not
    // read sends the caller to the fold before anything was visited.
    let mut sequences = Vec::new();
    for (key, value) in log.projection_scan(FACT_TYPE_TABLE, &prefix)?.iter().rev() {
        let Ok(entry) = serde_json::from_slice::<FactEntry>(value) else {
            return Ok(None);
        };
        if entry.install_id == exclude_install
            || !time::OffsetDateTime::parse(&entry.recorded_at, &Rfc3339)
                .is_ok_and(|recorded| recorded >= since)
        {
            continue;
        }
        let Ok(seq) = key[prefix.len()..].parse::<u64>() else {
            return Ok(None);
        };
        sequences.push(seq);
    }
    for seq in sequences {
        if let Ok(Some(event)) = log.lazy_event_at(seq)
            && visit(event).is_break()
        {
            break;
        }
    }
    Ok(Some(()))
}
