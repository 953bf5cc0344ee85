//! Where templates get the time and random bytes (`Now`, `NowFmt`, `RandomString`, `RandomBytes`,
//! sprig's `randAlphaNum`, `uuidv4`, ...): never from the world directly, always from an
//! [`Entropy`] the caller supplies (the install adapts the engine's injected clock and random
//! source). A [`Recorder`] wraps one and keeps what it handed out, so the install can record it;
//! a [`Replay`] hands the recorded values back, so rendering the same inputs again gives the same
//! bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use time::OffsetDateTime;

/// The time and random bytes templates see.
pub trait Entropy: Send + Sync {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
    /// Fills `bytes` with random bytes; the error says why it cannot.
    fn fill(&self, bytes: &mut [u8]) -> Result<(), String>;
}

/// What a [`Recorder`] handed out: the instant every `Now` of one render saw, and each random draw
/// in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The instant, if any function asked for the time.
    pub now: Option<OffsetDateTime>,
    /// The random draws, in the order they were made.
    pub draws: Vec<Vec<u8>>,
}

/// Wraps an [`Entropy`] and keeps what it handed out. The time is read once: every `Now` of the
/// render sees the same instant.
pub struct Recorder {
    inner: Arc<dyn Entropy>,
    now: OnceLock<OffsetDateTime>,
    draws: Mutex<Vec<Vec<u8>>>,
}

impl Recorder {
    /// Records what `inner` hands out.
    pub fn new(inner: Arc<dyn Entropy>) -> Recorder {
        Recorder {
            inner,
            now: OnceLock::new(),
            draws: Mutex::new(Vec::new()),
        }
    }

    /// What was handed out so far.
    pub fn recorded(&self) -> Recorded {
        Recorded {
            now: self.now.get().copied(),
            draws: self
                .draws
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}

impl Entropy for Recorder {
    fn now(&self) -> OffsetDateTime {
        *self.now.get_or_init(|| self.inner.now())
    }

    fn fill(&self, bytes: &mut [u8]) -> Result<(), String> {
        self.inner.fill(bytes)?;
        self.draws
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(bytes.to_vec());
        Ok(())
    }
}

/// Hands back what a [`Recorder`] recorded, in order; asking for more (or a draw of another size)
/// is an error, since the render then differs from the recorded one.
pub struct Replay {
    now: Option<OffsetDateTime>,
    draws: Mutex<VecDeque<Vec<u8>>>,
}

impl Replay {
    /// Replays `recorded`.
    pub fn new(recorded: &Recorded) -> Replay {
        Replay {
            now: recorded.now,
            draws: Mutex::new(recorded.draws.iter().cloned().collect()),
        }
    }
}

impl Entropy for Replay {
    fn now(&self) -> OffsetDateTime {
        // A render that did not read the time when recorded reads the epoch now: its output
        // then differs, which the caller sees.
        self.now.unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn fill(&self, bytes: &mut [u8]) -> Result<(), String> {
        let next = self
            .draws
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop_front();
        match next {
            Some(draw) if draw.len() == bytes.len() => {
                bytes.copy_from_slice(&draw);
                Ok(())
            }
            Some(draw) => Err(format!(
                "the recorded random draw has {} bytes, this render asked for {}",
                draw.len(),
                bytes.len()
            )),
            None => Err("this render asked for more random bytes than were recorded".into()),
        }
    }
}
