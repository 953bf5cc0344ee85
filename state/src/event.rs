//! The shape of an event: what a caller hands to the log ([`NewEvent`]) and what the log hands back
//! ([`StoredEvent`]), including the envelope fields the log assigns (sequences, timestamp, the hash
//! of the previous record). The stored JSON of a `StoredEvent` is the on-disk record format.

use serde::{Deserialize, Serialize};

/// Version of the record envelope itself (the fields around `payload`). Bumped only if the
/// envelope changes shape; payload evolution uses each event's own `schema_version`.
pub const ENVELOPE_VERSION: u32 = 1;

/// Largest payload the log accepts for one event, serialized. Events carry facts and blob
/// references, never file bodies, so anything larger is a bug in the caller.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;

/// An event that a caller asks the log to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The install this event belongs to.
    pub install_id: String,
    /// Who caused it: `user@host`, or `daemon@host`.
    pub actor: String,
    /// Past-tense type name, e.g. `BaseFetched`.
    pub event_type: String,
    /// The payload's schema version for this event type.
    pub schema_version: u32,
    /// The payload. It must never hold a secret.
    pub payload: serde_json::Value,
}

/// A recorded event exactly as stored: the envelope assigned by the log plus the caller's payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Envelope format version, see [`ENVELOPE_VERSION`].
    pub envelope_version: u32,
    /// Position in the whole log, starting at 1, without gaps.
    pub global_seq: u64,
    /// The install this event belongs to.
    pub install_id: String,
    /// Position within the install, starting at 1, without gaps.
    pub install_seq: u64,
    /// When the log recorded it, RFC 3339 in UTC.
    pub recorded_at: String,
    /// Who caused it.
    pub actor: String,
    /// Past-tense type name.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u32,
    /// The payload.
    pub payload: serde_json::Value,
    /// Hex blake3 hash of the previous record's bytes, the JSON record (decompressed when the log
    /// stores it as a zstd frame; all zeros for the first record).
    pub prev_hash: String,
}

/// A stored record read with its payload left undecoded (the JSON text borrowed from the stored
/// bytes): for readers that decode only some payloads, or decode them their own way (a big
/// release's facts run to megabytes).
#[derive(Debug, Deserialize)]
pub struct StoredEnvelope<'a> {
    /// Envelope format version.
    pub envelope_version: u32,
    /// Position in the whole log.
    pub global_seq: u64,
    /// The install this event belongs to.
    pub install_id: String,
    /// Position within the install.
    pub install_seq: u64,
    /// When the log recorded it.
    pub recorded_at: String,
    /// Who caused it.
    pub actor: String,
    /// Past-tense type name.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u32,
    /// The payload's JSON text, undecoded.
    #[serde(borrow)]
    pub payload: &'a serde_json::value::RawValue,
    /// Hex blake3 hash of the previous record's bytes (see [`StoredEvent::prev_hash`]).
    pub prev_hash: String,
}

impl StoredEnvelope<'_> {
    /// The stored event with `payload` (decoded or stood in for by the caller) as its payload.
    pub fn with_payload(self, payload: serde_json::Value) -> StoredEvent {
        StoredEvent {
            envelope_version: self.envelope_version,
            global_seq: self.global_seq,
            install_id: self.install_id,
            install_seq: self.install_seq,
            recorded_at: self.recorded_at,
            actor: self.actor,
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload,
            prev_hash: self.prev_hash,
        }
    }
}

/// A stored event whose payload is decoded only as its reader asks for it: stored at its type's
/// current version, the payload's JSON text is kept (`payload_text`, with `event.payload` left
/// `null`) and decoded straight into the reader's type; stored at an older version, it was upcast,
/// and `event.payload` holds the result. A reader of a fact of thousands of objects saves building
/// a JSON tree only to convert it.
#[derive(Debug, Clone)]
pub struct LazyEvent {
    /// The event; its payload is `null` when `payload_text` holds it.
    pub event: StoredEvent,
    /// The payload's JSON text, when it was left undecoded.
    pub payload_text: Option<std::sync::Arc<str>>,
}

impl LazyEvent {
    /// An event whose payload is already decoded.
    pub fn decoded(event: StoredEvent) -> LazyEvent {
        LazyEvent {
            event,
            payload_text: None,
        }
    }

    /// The payload as `T`, decoded from the text when there is one.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.payload_text {
            Some(text) => serde_json::from_str(text),
            None => T::deserialize(&self.event.payload),
        }
    }

    /// `events` with their payload texts set apart, by global sequence: the events for a fold
    /// (which reads the lifecycle, never those payloads), the texts for the facts that come out
    /// of it.
    pub fn split_texts(
        events: Vec<LazyEvent>,
    ) -> (
        Vec<StoredEvent>,
        std::collections::HashMap<u64, std::sync::Arc<str>>,
    ) {
        let mut texts = std::collections::HashMap::new();
        let events = events
            .into_iter()
            .map(|lazy| {
                if let Some(text) = lazy.payload_text {
                    texts.insert(lazy.event.global_seq, text);
                }
                lazy.event
            })
            .collect();
        (events, texts)
    }

    /// The event with its payload decoded as a JSON tree.
    pub fn into_event(self) -> Result<StoredEvent, serde_json::Error> {
        let LazyEvent {
            mut event,
            payload_text,
        } = self;
        if let Some(text) = payload_text {
            event.payload = serde_json::from_str(&text)?;
        }
        Ok(event)
    }
}

impl NewEvent {
    /// Builds an event from a serializable payload.
    pub fn new(
        install_id: impl Into<String>,
        actor: impl Into<String>,
        event_type: impl Into<String>,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            install_id: install_id.into(),
            actor: actor.into(),
            event_type: event_type.into(),
            schema_version,
            payload,
        }
    }

    /// Builds an event of `payload`'s own type and current version.
    pub fn of<T: crate::EventPayload>(
        install_id: impl Into<String>,
        actor: impl Into<String>,
        payload: &T,
    ) -> Result<NewEvent, serde_json::Error> {
        Ok(NewEvent::new(
            install_id,
            actor,
            T::EVENT_TYPE,
            T::VERSION,
            serde_json::to_value(payload)?,
        ))
    }
}

impl StoredEvent {
    /// Whether this event is of payload type `T`.
    pub fn is<T: crate::EventPayload>(&self) -> bool {
        self.event_type == T::EVENT_TYPE
    }
}

/// The current time as the log records it.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}
