//! windlass-registry: asks a container registry, anonymously, whether an image can be pulled without
//! credentials, the way KOTS decides that an image is private (see
//! `image-proxy-behavior.md` section 3), but recording precisely why.
//!
//! A probe is `GET <base>/v2/` → read the `WWW-Authenticate` challenge → for `Bearer`, fetch one
//! pull token per (registry, repository) from the realm → `HEAD <base>/v2/<repository>/manifests/<reference>`.
//! The answer is a [`ProbeOutcome`] with its [`ProbeEvidence`]. Every request has a deadline,
//! transient failures are retried a bounded number of times, every body read is capped
//! ([`read_capped_body`]), and concurrency is bounded globally and per registry endpoint.
//!
//! This crate knows nothing about Kubernetes, stages or the event log: the caller parses image
//! references into [`ProbeTarget`]s and decides what each outcome means for an install.

mod body;
mod challenge;
mod config;
mod outcome;
mod prober;
mod settings;
mod transport;

pub use body::{BodyError, read_capped_body};
pub use challenge::{Challenge, parse_challenges};
pub use config::ProbeConfig;
pub use outcome::{ProbeEvidence, ProbeOutcome, ProbeResult, ProbeTarget};
pub use prober::{ProbeSetupError, Prober};
pub use settings::{RegistrySettings, SettingsError};
