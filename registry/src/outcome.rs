//! What is probed ([`ProbeTarget`]) and what a probe found ([`ProbeOutcome`], [`ProbeEvidence`],
//! [`ProbeResult`]). The outcome and evidence are serializable because the `probe_images` stage
//! records them in its events.

use serde::{Deserialize, Serialize};

use crate::Challenge;

/// One image to probe, already parsed by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The image reference exactly as written in the release.
    pub image: String,
    /// The registry host as in the normalised reference, e.g. `docker.io`, `quay.io`,
    /// `localhost:5000`. `docker.io` is served at `https://registry-1.docker.io`.
    pub registry: String,
    /// The repository path inside the registry, e.g. `library/redis`.
    pub repository: String,
    /// What to ask the manifest for: the digest if the reference has one, else its tag, else
    /// `latest`.
    pub reference: String,
}

/// What the registry said about an image, before any policy decides "private" or "public".
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The manifest answered 200 to an anonymous request: anyone can pull the image.
    Public,
    /// The registry wants credentials (401 on the manifest, or the token endpoint refused an
    /// anonymous pull token). Docker Hub also says this for a repository that does not exist.
    AuthRequired,
    /// The registry refused the request (403).
    Denied,
    /// The registry has no such manifest (404).
    NotFound,
    /// The registry kept answering 429 after `Retry-After` was honoured and the retries were
    /// spent.
    RateLimited,
    /// The registry kept answering 5xx (or answered something a registry should not) after the
    /// retries were spent.
    ServerError,
    /// No answer: DNS failure, connection refused or reset, TLS failure, or the deadline passed.
    Unreachable,
}

impl ProbeOutcome {
    /// The snake_case name used in events and `--json` output, e.g. `auth_required`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeOutcome::Public => "public",
            ProbeOutcome::AuthRequired => "auth_required",
            ProbeOutcome::Denied => "denied",
            ProbeOutcome::NotFound => "not_found",
            ProbeOutcome::RateLimited => "rate_limited",
            ProbeOutcome::ServerError => "server_error",
            ProbeOutcome::Unreachable => "unreachable",
        }
    }
}

/// How an outcome was reached, recorded next to it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ProbeEvidence {
    /// Every HTTP status seen on the way, in order: the `/v2/` check, the token request (both
    /// shared by every image of the same registry or repository) and each manifest attempt.
    pub status_codes: Vec<u16>,
    /// The challenge the registry's `/v2/` answered with, if any.
    pub challenge: Option<Challenge>,
    /// The manifest digest (`Docker-Content-Digest`) when the manifest answered 200.
    pub digest: Option<String>,
    /// How many times the deciding request was sent: the manifest request, or the `/v2/` or
    /// token request when the probe stopped there.
    pub attempts: u32,
    /// Wall time of this image's probe, from the moment it got its concurrency slot.
    pub latency_ms: u64,
    /// The base URL contacted, e.g. `https://registry-1.docker.io`.
    pub endpoint: String,
    /// One human-readable line explaining the outcome. Never contains a credential.
    pub reason: String,
}

/// One image's probe: what was asked, the outcome and its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    /// The image probed.
    pub target: ProbeTarget,
    /// What the registry said.
    pub outcome: ProbeOutcome,
    /// How the outcome was reached.
    pub evidence: ProbeEvidence,
}
