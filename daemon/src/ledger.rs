//! What the log says about releases: for every release digest, each time the daemon took it
//! (`ReleaseDetected`) and how each ended (`ReleaseFinished`). Read from the log's release streams
//! when the daemon starts and kept up to date as it records; this is what makes "exactly once per
//! digest" survive a restart or a `kill -9`.

use std::collections::BTreeMap;

use windlass_state::log::LogError;
use windlass_state::{EventLog, StoredEvent};

use crate::events::{ReleaseDetected, ReleaseFinished, is_release_stream};

/// One release digest's record.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRecord {
    /// Each time it was taken, oldest first, with when.
    pub detections: Vec<(ReleaseDetected, String)>,
    /// Each install of it that ended, oldest first, with when.
    pub finishes: Vec<(ReleaseFinished, String)>,
}

impl ReleaseRecord {
    /// The last take, when its install has not ended: the install to resume.
    pub fn unfinished(&self) -> Option<&ReleaseDetected> {
        let (last, _) = self.detections.last()?;
        (self.finishes.len() < self.detections.len()).then_some(last)
    }

    /// How the last install of it ended, if one did.
    pub fn last_finish(&self) -> Option<&ReleaseFinished> {
        self.finishes.last().map(|(finish, _)| finish)
    }
}

/// Every release digest the log knows, by digest.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// By digest.
    pub releases: BTreeMap<String, ReleaseRecord>,
}

/// Why the ledger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The log could not be read.
    #[error("cannot read the event log")]
    Log(#[from] LogError),
    /// A release event does not decode.
    #[error("release stream {stream}: event {seq} does not decode: {error}")]
    Decode {
        /// The stream.
        stream: String,
        /// The event's position in it.
        seq: u64,
        /// Why.
        error: serde_json::Error,
    },
}

impl Ledger {
    /// Reads every release stream of `log`.
    pub fn load(log: &EventLog) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger::default();
        for stream in log.install_ids()? {
            if !is_release_stream(&stream) {
                continue;
            }
            for event in log.events_of(&stream)? {
                ledger.apply(&stream, &event)?;
            }
        }
        Ok(ledger)
    }

    /// Adds one recorded event.
    pub fn apply(&mut self, stream: &str, event: &StoredEvent) -> Result<(), LedgerError> {
        let decode_error = |error| LedgerError::Decode {
            stream: stream.to_string(),
            seq: event.install_seq,
            error,
        };
        if event.is::<ReleaseDetected>() {
            let detected: ReleaseDetected =
                serde_json::from_value(event.payload.clone()).map_err(decode_error)?;
            self.releases
                .entry(detected.digest.clone())
                .or_default()
                .detections
                .push((detected, event.recorded_at.clone()));
        } else if event.is::<ReleaseFinished>() {
            let finished: ReleaseFinished =
                serde_json::from_value(event.payload.clone()).map_err(decode_error)?;
            self.releases
                .entry(finished.digest.clone())
                .or_default()
                .finishes
                .push((finished, event.recorded_at.clone()));
        }
        Ok(())
    }

    /// The release whose last take maps to `install_id`, if any.
    pub fn release_of_install(&self, install_id: &str) -> Option<&ReleaseDetected> {
        self.releases.values().find_map(|record| {
            record
                .detections
                .iter()
                .map(|(detected, _)| detected)
                .find(|detected| detected.install_id == install_id)
                .or_else(|| {
                    record
                        .finishes
                        .iter()
                        .find(|(finish, _)| finish.install_id == install_id)
                        .and_then(|_| record.detections.last().map(|(detected, _)| detected))
                })
        })
    }
}
