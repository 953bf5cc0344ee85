//! Texts that hold a password value (a templated file that read a password item with a value, or
//! the local registry's password): they are never stored, so `fetch_base` records their documents
//! by keyed fingerprint and keeps their texts here, in the install's memo (in memory only), for
//! `write_base` and `probe_images`. A stage that needs such a text and finds none (a resumed
//! install in a new process) fails marking `fetch_base` stale, so the next run of the install
//! renders the release again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use windlass_engine::{StageContext, StageError};
use windlass_state::{EventPayload, FingerprintKey};

use crate::events::BaseFetched;

/// The fingerprint purpose of a file or document holding a password value: the same as a
/// rendered secret's, so apply and replay check all of them one way.
pub const PASSWORD_TEXT_PURPOSE: &str = crate::render_midstream::RENDERED_SECRET_PURPOSE;

/// Texts by their keyed fingerprint.
#[derive(Default)]
pub struct CredentialTexts {
    texts: Mutex<HashMap<String, Arc<str>>>,
}

impl CredentialTexts {
    /// Keeps `text`, returning its keyed fingerprint.
    pub fn remember(&self, key: &FingerprintKey, text: &str) -> String {
        let fingerprint = key.fingerprint_bytes(PASSWORD_TEXT_PURPOSE, text.as_bytes());
        self.texts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(fingerprint.clone(), Arc::from(text));
        fingerprint
    }

    /// The text with this fingerprint, if this process rendered it.
    pub fn get(&self, fingerprint: &str) -> Option<Arc<str>> {
        self.texts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(fingerprint)
            .cloned()
    }
}

/// The error for a text holding a password value (a document of release file `file`) that this
/// process does not have: `recorded_by` (the stage that recorded `BaseFetched`) is marked stale so
/// that the next `windlass install` of the same request renders it again.
pub fn text_not_in_memory(recorded_by: Option<&str>, file: &str) -> StageError {
    let failure = StageError::permanent(format!(
        "{file} holds a password value, which windlass never stores, and this process did not render it: run the same `windlass install` again (with the same --config-values) to render the release again"
    ));
    match recorded_by {
        Some(stage) => failure.with_stale_input(stage),
        None => failure,
    }
}

/// The stage that recorded `BaseFetched` among `context`'s inputs.
pub fn fetched_by(context: &StageContext) -> Option<&str> {
    context.input_stage_recording(BaseFetched::EVENT_TYPE)
}
