//! Event schema versions and the upcaster table. Each event type declares its current schema
//! version and one pure function per older version that turns a payload of version `n` into
//! version `n + 1`. Reading applies them in order, so callers only ever see current payloads; the
//! stored records are never rewritten. A record newer than this binary knows is refused with an
//! error that says so, rather than misread.

use std::collections::BTreeMap;

use crate::event::StoredEvent;

/// Turns a payload of version `from_version` into version `from_version + 1`.
#[derive(Clone, Copy)]
pub struct Upcaster {
    /// The version this function reads.
    pub from_version: u32,
    /// The conversion. It must be pure and total over valid old payloads.
    pub upcast: fn(serde_json::Value) -> Result<serde_json::Value, String>,
}

/// A payload type stored in the log: it carries its event type name and the schema version this
/// binary writes, so no call site repeats either. Writers build events with
/// [`crate::NewEvent::of`]; [`EventSchema::of`] declares the type's history.
pub trait EventPayload: serde::Serialize + serde::de::DeserializeOwned {
    /// The past-tense event type name, e.g. `BaseFetched`.
    const EVENT_TYPE: &'static str;
    /// The schema version this binary writes (older versions are upcast on read).
    const VERSION: u32;
}

/// One event type's schema history.
#[derive(Clone, Copy)]
pub struct EventSchema {
    /// The event type name.
    pub event_type: &'static str,
    /// The version this binary writes.
    pub current_version: u32,
    /// Upcasters for versions `1..current_version`, in order.
    pub upcasters: &'static [Upcaster],
}

impl EventSchema {
    /// The schema of payload type `T`: its name and current version, with `upcasters` for each
    /// older version in order.
    pub const fn of<T: EventPayload>(upcasters: &'static [Upcaster]) -> EventSchema {
        EventSchema {
            event_type: T::EVENT_TYPE,
            current_version: T::VERSION,
            upcasters,
        }
    }
}

/// Errors from schema lookup and upcasting.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The log holds an event written by a newer windlass.
    #[error(
        "event {global_seq} ({event_type} version {found}) was written by a newer windlass; this binary understands {event_type} up to version {known}; upgrade windlass to read this log"
    )]
    NewerThanKnown {
        /// Where.
        global_seq: u64,
        /// Event type.
        event_type: String,
        /// Version in the log.
        found: u32,
        /// Newest version this binary knows.
        known: u32,
    },
    /// An upcaster failed on a stored payload.
    #[error("event {global_seq} ({event_type} version {version}) could not be upgraded: {reason}")]
    UpcastFailed {
        /// Where.
        global_seq: u64,
        /// Event type.
        event_type: String,
        /// The version the failing upcaster reads.
        version: u32,
        /// What it said.
        reason: String,
    },
    /// The schema table itself is inconsistent (a programming error caught at start-up).
    #[error("event schema table is inconsistent: {0}")]
    BadTable(String),
}

/// Every event type this binary knows, with its upcasters.
#[derive(Clone, Default)]
pub struct SchemaRegistry {
    schemas: BTreeMap<&'static str, EventSchema>,
}

impl SchemaRegistry {
    /// Builds the registry from each crate's schema list, checking that every type appears once
    /// and has exactly one upcaster for each version below its current one.
    pub fn new(lists: &[&[EventSchema]]) -> Result<SchemaRegistry, SchemaError> {
        let mut schemas = BTreeMap::new();
        for schema in lists.iter().flat_map(|list| list.iter()) {
            if schema.current_version == 0 {
                return Err(SchemaError::BadTable(format!(
                    "{} has version 0",
                    schema.event_type
                )));
            }
            let expected: Vec<u32> = (1..schema.current_version).collect();
            let found: Vec<u32> = schema.upcasters.iter().map(|u| u.from_version).collect();
            if expected != found {
                return Err(SchemaError::BadTable(format!(
                    "{} is at version {} and needs upcasters from {:?}, has {:?}",
                    schema.event_type, schema.current_version, expected, found
                )));
            }
            if schemas.insert(schema.event_type, *schema).is_some() {
                return Err(SchemaError::BadTable(format!(
                    "{} is declared twice",
                    schema.event_type
                )));
            }
        }
        Ok(SchemaRegistry { schemas })
    }

    /// The schema of an event type, if known.
    pub fn get(&self, event_type: &str) -> Option<&EventSchema> {
        self.schemas.get(event_type)
    }

    /// Every known schema, by type name.
    pub fn iter(&self) -> impl Iterator<Item = &EventSchema> {
        self.schemas.values()
    }

    /// Whether `event` is already what [`SchemaRegistry::upcast`] would return: its type is
    /// unknown here or it is at its type's current version.
    pub fn is_current(&self, event: &StoredEvent) -> bool {
        self.version_is_current(&event.event_type, event.schema_version)
    }

    /// [`SchemaRegistry::is_current`] for a record not yet decoded: its type and version.
    pub fn version_is_current(&self, event_type: &str, version: u32) -> bool {
        self.schemas
            .get(event_type)
            .is_none_or(|schema| schema.current_version == version)
    }

    /// Brings a stored event's payload to the current version of its type. Events of types this
    /// binary does not know (for example from a plugin) pass through unchanged.
    pub fn upcast(&self, mut event: StoredEvent) -> Result<StoredEvent, SchemaError> {
        let Some(schema) = self.schemas.get(event.event_type.as_str()) else {
            return Ok(event);
        };
        if event.schema_version > schema.current_version {
            return Err(SchemaError::NewerThanKnown {
                global_seq: event.global_seq,
                event_type: event.event_type,
                found: event.schema_version,
                known: schema.current_version,
            });
        }
        if event.schema_version == 0 {
            return Err(SchemaError::UpcastFailed {
                global_seq: event.global_seq,
                event_type: event.event_type,
                version: 0,
                reason: "schema versions start at 1".into(),
            });
        }
        while event.schema_version < schema.current_version {
            let upcaster = schema.upcasters[(event.schema_version - 1) as usize];
            event.payload =
                (upcaster.upcast)(event.payload).map_err(|reason| SchemaError::UpcastFailed {
                    global_seq: event.global_seq,
                    event_type: event.event_type.clone(),
                    version: event.schema_version,
                    reason,
                })?;
            event.schema_version += 1;
        }
        Ok(event)
    }
}
