//! What a replay hands the stages instead of the world: the facts the original run of the install
//! recorded, by stage. A stage that asks the world something (a registry whether an image is
//! public, a cluster what it holds, a template function the time or random bytes) looks here first
//! through `Services::recorded` and, when it is set, answers from its own recorded fact and asks
//! the world nothing. A stage that cannot answer from the record fails rather than reaching out.
//! This holds facts (data the log already has), never credentials.

use std::collections::HashMap;

use std::sync::Arc;

use windlass_state::{BlobStore, EventPayload, StoredEvent};

/// The recorded facts of one install, by stage name, upcast to the versions this binary reads.
#[derive(Clone, Default)]
pub struct RecordedRun {
    /// The install being replayed.
    pub install_id: String,
    /// Every stage's facts, in the order it recorded them.
    pub facts: HashMap<String, Vec<StoredEvent>>,
    /// The replayed install's blob store (the replay's own run writes to another), for a stage
    /// whose recorded answer is a blob rather than a fact: a plugin's recorded output. Read only.
    pub blobs: Option<Arc<BlobStore>>,
    /// The JSON text of the facts read without decoding their payload (those carry `null` in
    /// `facts`), by global sequence: a big release's largest facts, decoded only in the parts a
    /// reader asks for ([`RecordedRun::decode`]).
    pub raw_payloads: HashMap<u64, Arc<str>>,
}

impl std::fmt::Debug for RecordedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedRun")
            .field("install_id", &self.install_id)
            .field("facts", &self.facts)
            .field("blobs", &self.blobs.as_ref().map(|_| "BlobStore"))
            .field("raw_payloads", &self.raw_payloads.len())
            .finish()
    }
}

impl RecordedRun {
    /// The first fact of type `T` that stage `stage` recorded, decoded; `None` when it recorded
    /// none (or it does not decode as `T`: a replay then answers nothing from it).
    pub fn fact<T: EventPayload + serde::de::DeserializeOwned>(&self, stage: &str) -> Option<T> {
        self.fact_part::<T, T>(stage)
    }

    /// The part `Part` of the first fact of type `T` that stage `stage` recorded: a stage that
    /// reads a few fields of a large fact decodes only those.
    pub fn fact_part<T: EventPayload, Part: serde::de::DeserializeOwned>(
        &self,
        stage: &str,
    ) -> Option<Part> {
        self.facts
            .get(stage)?
            .iter()
            .find(|event| event.is::<T>())
            .and_then(|event| self.decode(event).ok())
    }

    /// `event`'s payload (or the part of it `Part` reads), from its JSON text when it was left
    /// undecoded.
    pub fn decode<Part: serde::de::DeserializeOwned>(
        &self,
        event: &StoredEvent,
    ) -> Result<Part, serde_json::Error> {
        match self.raw_payloads.get(&event.global_seq) {
            Some(text) => serde_json::from_str(text),
            None => Part::deserialize(&event.payload),
        }
    }

    /// `event`'s payload as JSON, decoded from its text when it was left undecoded.
    pub fn payload<'a>(
        &self,
        event: &'a StoredEvent,
    ) -> Result<std::borrow::Cow<'a, serde_json::Value>, serde_json::Error> {
        match self.raw_payloads.get(&event.global_seq) {
            Some(text) => serde_json::from_str(text).map(std::borrow::Cow::Owned),
            None => Ok(std::borrow::Cow::Borrowed(&event.payload)),
        }
    }

    /// The JSON text of `event`'s payload, when it was left undecoded.
    pub fn raw_payload(&self, event: &StoredEvent) -> Option<&str> {
        self.raw_payloads.get(&event.global_seq).map(|text| &**text)
    }
}
