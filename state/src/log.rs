//! [`EventLog`]: the read/write façade the rest of windlass uses. It pairs a backend with the schema
//! registry, so everything read through it is upcast to current versions, and it refuses to write an
//! event at a version other than the current one of its type. Given a [`Projector`], it keeps
//! the projections in each append's transaction and rebuilds them when they are stale.

use std::sync::Arc;

use crate::event::{LazyEvent, NewEvent, StoredEnvelope, StoredEvent};
use crate::projection::{Indexer, ProjectionHead, ProjectionRows, Projector};
use crate::schema::{SchemaError, SchemaRegistry};
use crate::store::{EventStore, RawRecord, StoreError, decode_record};

/// Errors from reading or writing through an [`EventLog`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be brought to the current schema.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Whether the projections can be read instead of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectionStatus {
    /// They reflect the whole log, under the projector's version.
    Current,
    /// They were rebuilt from the log just now; the number of records read.
    Rebuilt(u64),
    /// They lag the log, have another version or do not exist (and were not rebuilt: the log is
    /// read-only, or there is no projector); readers fall back to the log.
    Stale,
    /// The backend keeps none.
    Unsupported,
}

/// A backend plus the schema registry, and optionally the projector of its projections.
#[derive(Clone)]
pub struct EventLog {
    store: Arc<dyn EventStore>,
    schemas: Arc<SchemaRegistry>,
    projector: Option<Arc<dyn Projector>>,
}

impl EventLog {
    /// Pairs a store with a registry.
    pub fn new(store: Arc<dyn EventStore>, schemas: Arc<SchemaRegistry>) -> EventLog {
        EventLog {
            store,
            schemas,
            projector: None,
        }
    }

    /// The same log, keeping the projections `projector` derives in every append.
    pub fn with_projector(mut self, projector: Arc<dyn Projector>) -> EventLog {
        self.projector = Some(projector);
        self
    }

    /// Applies one raw stored event to the rows: upcast first; an event that does not upcast is
    /// skipped (the fold reports it).
    fn apply_upcast(
        &self,
        projector: &dyn Projector,
        event: &StoredEvent,
        rows: &mut dyn ProjectionRows,
    ) -> Result<(), StoreError> {
        // Events are indexed as they are appended, almost always at their current version:
        // those are not copied (a payload can be megabytes).
        if self.schemas.is_current(event) {
            return projector.apply(event, rows);
        }
        match self.schemas.upcast(event.clone()) {
            Ok(event) => projector.apply(&event, rows),
            Err(_) => Ok(()),
        }
    }

    /// Whether the projections reflect the whole log under the projector's version (always
    /// `false` without a projector).
    pub fn projections_current(&self) -> Result<bool, LogError> {
        let Some(projector) = &self.projector else {
            return Ok(false);
        };
        if !self.store.keeps_projections() {
            return Ok(false);
        }
        let (seq, hash) = self
            .store
            .head()?
            .unwrap_or((0, crate::chain::RecordHash::GENESIS));
        Ok(self.store.projection_head()?
            == Some(ProjectionHead {
                version: projector.version(),
                seq,
                hash,
            }))
    }

    /// Rebuilds the projections from the whole log (needs a writable log and a projector).
    pub fn rebuild_projections(&self) -> Result<u64, LogError> {
        let Some(projector) = self.projector.clone() else {
            return Err(StoreError::Backend("no projector to rebuild indexes with".into()).into());
        };
        let apply = |event: &StoredEvent, rows: &mut dyn ProjectionRows| {
            self.apply_upcast(projector.as_ref(), event, rows)
        };
        Ok(self.store.rebuild_projections(&Indexer {
            version: projector.version(),
            apply: &apply,
        })?)
    }

    /// Checks the projections and, when they are stale and the log is writable, rebuilds them
    /// (the upgrade path for a state directory written by a windlass without them).
    pub fn ensure_projections(&self, writable: bool) -> Result<ProjectionStatus, LogError> {
        if self.projector.is_none() || !self.store.keeps_projections() {
            return Ok(ProjectionStatus::Unsupported);
        }
        if self.projections_current()? {
            return Ok(ProjectionStatus::Current);
        }
        if !writable {
            return Ok(ProjectionStatus::Stale);
        }
        Ok(ProjectionStatus::Rebuilt(self.rebuild_projections()?))
    }

    /// The row `key` of projection `table` (callers check [`EventLog::projections_current`]).
    pub fn projection_get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.store.projection_get(table, key)?)
    }

    /// The rows of projection `table` whose keys start with `prefix`, in key order.
    pub fn projection_scan(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, LogError> {
        Ok(self.store.projection_scan(table, prefix)?)
    }

    /// The event at global sequence `global_seq`, upcast, if there is one.
    pub fn event_at(&self, global_seq: u64) -> Result<Option<StoredEvent>, LogError> {
        self.raw_record_at(global_seq)?
            .map(|raw| self.decode_upcast(&raw))
            .transpose()
    }

    /// [`EventLog::event_at`] with its payload left as text when it is stored at its type's
    /// current version (see [`LazyEvent`]).
    pub fn lazy_event_at(&self, global_seq: u64) -> Result<Option<LazyEvent>, LogError> {
        let Some(raw) = self.raw_record_at(global_seq)? else {
            return Ok(None);
        };
        match self.text_if_current(envelope_of(&raw)?) {
            Some(lazy) => Ok(Some(lazy)),
            None => Ok(Some(LazyEvent::decoded(self.decode_upcast(&raw)?))),
        }
    }

    /// The record at `global_seq`, if there is one.
    fn raw_record_at(&self, global_seq: u64) -> Result<Option<RawRecord>, LogError> {
        Ok(self
            .store
            .scan(global_seq, 1)?
            .into_iter()
            .find(|raw| raw.global_seq == global_seq))
    }

    /// `raw` decoded whole and upcast to its type's current version.
    pub fn decode_upcast(&self, raw: &RawRecord) -> Result<StoredEvent, LogError> {
        let event = decode_record(raw.global_seq, &raw.bytes)?;
        Ok(self.schemas.upcast(event)?)
    }

    /// The event of `envelope` with its payload kept as text (see [`LazyEvent`]), when it is
    /// stored at its type's current version; `None` when it must be decoded whole and upcast
    /// ([`EventLog::decode_upcast`]).
    pub fn text_if_current(&self, envelope: StoredEnvelope<'_>) -> Option<LazyEvent> {
        if !self
            .schemas
            .version_is_current(&envelope.event_type, envelope.schema_version)
        {
            return None;
        }
        let text: Arc<str> = Arc::from(envelope.payload.get());
        Some(LazyEvent {
            event: envelope.with_payload(serde_json::Value::Null),
            payload_text: Some(text),
        })
    }

    /// The backend, for verification and raw access.
    pub fn store(&self) -> &dyn EventStore {
        self.store.as_ref()
    }

    /// The registry.
    pub fn schemas(&self) -> &SchemaRegistry {
        &self.schemas
    }

    /// Appends a batch atomically and durably.
    pub fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<StoredEvent>, LogError> {
        for event in &batch {
            if let Some(schema) = self.schemas.get(&event.event_type)
                && schema.current_version != event.schema_version
            {
                return Err(StoreError::InvalidEvent {
                    event_type: event.event_type.clone(),
                    reason: format!(
                        "written at version {}, the current version is {}",
                        event.schema_version, schema.current_version
                    ),
                }
                .into());
            }
        }
        match &self.projector {
            Some(projector) => {
                let apply = |event: &StoredEvent, rows: &mut dyn ProjectionRows| {
                    self.apply_upcast(projector.as_ref(), event, rows)
                };
                Ok(self.store.append_indexed(
                    batch,
                    &Indexer {
                        version: projector.version(),
                        apply: &apply,
                    },
                )?)
            }
            None => Ok(self.store.append(batch)?),
        }
    }

    /// Every event of an install, upcast to current versions.
    pub fn events_of(&self, install_id: &str) -> Result<Vec<StoredEvent>, LogError> {
        self.store
            .events_of(install_id)?
            .into_iter()
            .map(|event| self.schemas.upcast(event).map_err(LogError::from))
            .collect()
    }

    /// [`EventLog::events_of`], except that the payloads of the events of the types `leave_raw`
    /// names that are stored at their current version are left undecoded (see [`LazyEvent`]). A
    /// reader of a big install that needs only parts of some facts decodes them its own way.
    pub fn events_of_leaving_raw(
        &self,
        install_id: &str,
        leave_raw: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<LazyEvent>, LogError> {
        let raws = self.store.raw_events_of(install_id)?;
        let mut left_raw: Vec<Option<LazyEvent>> = Vec::with_capacity(raws.len());
        let mut to_decode = Vec::new();
        for raw in raws {
            let envelope = envelope_of(&raw)?;
            let lazy = if leave_raw(&envelope.event_type) {
                self.text_if_current(envelope)
            } else {
                None
            };
            if lazy.is_none() {
                to_decode.push(raw);
            }
            left_raw.push(lazy);
        }
        let mut decoded = crate::store::decode_records(&to_decode)?.into_iter();
        left_raw
            .into_iter()
            .map(|slot| match slot {
                Some(lazy) => Ok(lazy),
                None => {
                    let event = decoded
                        .next()
                        .expect("one decoded record per record not left raw");
                    Ok(LazyEvent::decoded(self.schemas.upcast(event)?))
                }
            })
            .collect()
    }

    /// Every install id, oldest first.
    pub fn install_ids(&self) -> Result<Vec<String>, LogError> {
        Ok(self.store.install_ids()?)
    }
}

/// The envelope of `raw`, its payload left as text.
pub fn envelope_of(raw: &RawRecord) -> Result<StoredEnvelope<'_>, LogError> {
    serde_json::from_slice(&raw.bytes).map_err(|error| {
        LogError::from(StoreError::CorruptRecord {
            global_seq: raw.global_seq,
            reason: error.to_string(),
        })
    })
}
