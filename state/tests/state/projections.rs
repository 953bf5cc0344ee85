//! Projections through [`EventLog`]: rows a projector derives from the events are written in the
//! append's transaction (a refused batch, or a projector that fails, leaves rows and log as they
//! were), a rebuild from the log gives the same rows, a log appended to without the projector (an
//! older windlass) leaves them stale until rebuilt, a read-only open reads them but never rebuilds,
//! and a new projector version makes them stale. redb keeps projections; sled keeps none, and a
//! log on it always reports them unsupported so that readers fall back to the events.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use windlass_state::event::MAX_PAYLOAD_BYTES;
use windlass_state::redb_store::RedbStore;
use windlass_state::{
    EventLog, EventStore, ProjectionRows, ProjectionStatus, Projector, SchemaRegistry, StoreError,
    StoredEvent,
};

use crate::support::{LogBackend, Redb, event};

/// Counts each install's events (table `count`) and remembers the last event type (table `last`);
/// an event of type `Oversized` makes it write a row over the limit.
struct Counting {
    version: u32,
}

impl Projector for Counting {
    fn version(&self) -> u32 {
        self.version
    }

    fn apply(&self, event: &StoredEvent, rows: &mut dyn ProjectionRows) -> Result<(), StoreError> {
        if event.event_type == "Oversized" {
            return rows.put("last", "oversized", &vec![0; 1024 * 1024]);
        }
        let count = rows
            .get("count", &event.install_id)?
            .map(|bytes| String::from_utf8(bytes).unwrap().parse::<u64>().unwrap())
            .unwrap_or(0);
        rows.put(
            "count",
            &event.install_id,
            (count + 1).to_string().as_bytes(),
        )?;
        rows.put("last", "type", event.event_type.as_bytes())
    }
}

fn log_on(store: Arc<dyn EventStore>, version: Option<u32>) -> EventLog {
    let log = EventLog::new(store, Arc::new(SchemaRegistry::new(&[]).unwrap()));
    match version {
        Some(version) => log.with_projector(Arc::new(Counting { version })),
        None => log,
    }
}

fn rows(log: &EventLog) -> BTreeMap<(String, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    for table in ["count", "last"] {
        for (key, value) in log.projection_scan(table, "").unwrap() {
            out.insert((table.to_string(), key), value);
        }
    }
    out
}

fn count(log: &EventLog, install: &str) -> Option<u64> {
    log.projection_get("count", install)
        .unwrap()
        .map(|bytes| String::from_utf8(bytes).unwrap().parse().unwrap())
}

fn open_redb(path: &Path) -> Arc<dyn EventStore> {
    Arc::new(Redb::open(path))
}

#[test]
fn rows_move_with_each_append_and_never_apart_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_on(open_redb(&Redb::log_path(dir.path())), Some(1));
    // A new log: empty rows are current once ensured.
    assert_eq!(
        log.ensure_projections(true).unwrap(),
        ProjectionStatus::Rebuilt(0)
    );
    log.append(vec![
        event("a", "Started", json!({})),
        event("b", "Started", json!({})),
        event("a", "Progressed", json!({})),
    ])
    .unwrap();
    assert!(log.projections_current().unwrap());
    assert_eq!((count(&log, "a"), count(&log, "b")), (Some(2), Some(1)));
    let before = rows(&log);

    // Refused half-way through writing the batch: neither events nor rows change.
    let huge = "x".repeat(MAX_PAYLOAD_BYTES);
    let refused = log.append(vec![
        event("a", "Progressed", json!({})),
        event("c", "Started", json!({"body": huge})),
    ]);
    assert!(matches!(
        refused,
        Err(windlass_state::log::LogError::Store(
            StoreError::InvalidEvent { .. }
        ))
    ));
    // The projector fails on the second event: the whole batch is refused.
    let failed = log.append(vec![
        event("a", "Progressed", json!({})),
        event("a", "Oversized", json!({})),
    ]);
    let error = failed.expect_err("a row over the limit refuses the batch");
    assert!(
        error.to_string().contains("projection row last/oversized"),
        "{error}"
    );
    assert_eq!(rows(&log), before);
    assert_eq!(log.events_of("a").unwrap().len(), 2);
    assert!(log.projections_current().unwrap());

    log.append(vec![event("c", "Started", json!({}))]).unwrap();
    assert_eq!(count(&log, "c"), Some(1));
    assert!(log.projections_current().unwrap());
}

#[test]
fn a_rebuild_from_the_log_gives_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = Redb::log_path(dir.path());
    let log = log_on(open_redb(&path), Some(1));
    log.ensure_projections(true).unwrap();
    for round in 0..20 {
        let install = format!("install-{}", round % 7);
        log.append(vec![
            event(&install, "Started", json!({"round": round})),
            event("shared", "Ticked", json!({})),
        ])
        .unwrap();
    }
    let kept = rows(&log);
    assert_eq!(count(&log, "shared"), Some(20));
    assert_eq!(log.rebuild_projections().unwrap(), 40);
    assert_eq!(rows(&log), kept);
    assert!(log.projections_current().unwrap());
    // And after reopening.
    drop(log);
    let log = log_on(open_redb(&path), Some(1));
    assert_eq!(
        log.ensure_projections(true).unwrap(),
        ProjectionStatus::Current
    );
    assert_eq!(rows(&log), kept);
}

#[test]
fn appends_without_the_projector_leave_rows_stale_until_a_writable_open_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = Redb::log_path(dir.path());
    // An older windlass: no projector at all.
    let old = log_on(open_redb(&path), None);
    old.append(vec![event("a", "Started", json!({}))]).unwrap();
    assert!(!old.projections_current().unwrap());
    assert_eq!(
        old.ensure_projections(true).unwrap(),
        ProjectionStatus::Unsupported
    );
    drop(old);

    // Read-only: the rows are stale, nothing is rebuilt, and rebuilding is refused.
    let read_only = log_on(Arc::new(RedbStore::open_read_only(&path).unwrap()), Some(1));
    assert_eq!(
        read_only.ensure_projections(false).unwrap(),
        ProjectionStatus::Stale
    );
    assert!(matches!(
        read_only.rebuild_projections(),
        Err(windlass_state::log::LogError::Store(
            StoreError::ReadOnly { .. }
        ))
    ));
    drop(read_only);

    // A projector appending to stale rows leaves them alone (they would be wrong).
    let new = log_on(open_redb(&path), Some(1));
    new.append(vec![event("a", "Progressed", json!({}))])
        .unwrap();
    assert!(!new.projections_current().unwrap());
    assert_eq!(count(&new, "a"), None);
    assert_eq!(
        new.ensure_projections(true).unwrap(),
        ProjectionStatus::Rebuilt(2)
    );
    assert_eq!(count(&new, "a"), Some(2));
    drop(new);

    // Read-only again: current rows are read.
    let read_only = log_on(Arc::new(RedbStore::open_read_only(&path).unwrap()), Some(1));
    assert_eq!(
        read_only.ensure_projections(false).unwrap(),
        ProjectionStatus::Current
    );
    assert_eq!(count(&read_only, "a"), Some(2));
    drop(read_only);

    // A new projector version makes them stale again.
    let next = log_on(open_redb(&path), Some(2));
    assert!(!next.projections_current().unwrap());
    assert_eq!(
        next.ensure_projections(true).unwrap(),
        ProjectionStatus::Rebuilt(2)
    );
    assert!(next.projections_current().unwrap());
}

#[test]
fn a_read_only_open_of_a_missing_log_has_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_on(
        Arc::new(RedbStore::open_read_only(&Redb::log_path(dir.path())).unwrap()),
        Some(1),
    );
    assert_eq!(
        log.ensure_projections(false).unwrap(),
        ProjectionStatus::Stale
    );
    assert_eq!(count(&log, "a"), None);
}

#[cfg(feature = "sled")]
#[test]
fn sled_keeps_no_projections_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(crate::support::Sled::open(
        &crate::support::Sled::log_path(dir.path()),
    ));
    assert!(!store.keeps_projections());
    let log = log_on(store, Some(1));
    log.append(vec![event("a", "Started", json!({}))]).unwrap();
    assert_eq!(log.events_of("a").unwrap().len(), 1);
    assert!(!log.projections_current().unwrap());
    assert_eq!(
        log.ensure_projections(true).unwrap(),
        ProjectionStatus::Unsupported
    );
    let error = log.rebuild_projections().unwrap_err();
    assert!(
        error.to_string().contains("sled backend keeps no indexes"),
        "{error}"
    );
}
