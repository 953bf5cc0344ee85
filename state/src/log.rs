//! [`EventLog`]: the read/write façade the rest of windlass uses. It pairs a backend with the schema
//! registry, so everything read through it is upcast to current versions, and it refuses to write an
//! event at a version other than the current one of its type.

use std::sync::Arc;

use crate::event::{NewEvent, StoredEvent};
use crate::schema::{SchemaError, SchemaRegistry};
use crate::store::{EventStore, StoreError};

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

/// A backend plus the schema registry.
#[derive(Clone)]
pub struct EventLog {
    store: Arc<dyn EventStore>,
    schemas: Arc<SchemaRegistry>,
}

impl EventLog {
    /// Pairs a store with a registry.
    pub fn new(store: Arc<dyn EventStore>, schemas: Arc<SchemaRegistry>) -> EventLog {
        EventLog { store, schemas }
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
        Ok(self.store.append(batch)?)
    }

    /// Every event of an install, upcast to current versions.
    pub fn events_of(&self, install_id: &str) -> Result<Vec<StoredEvent>, LogError> {
        self.store
            .events_of(install_id)?
            .into_iter()
            .map(|event| self.schemas.upcast(event).map_err(LogError::from))
            .collect()
    }

    /// Every install id, oldest first.
    pub fn install_ids(&self) -> Result<Vec<String>, LogError> {
        Ok(self.store.install_ids()?)
    }
}
