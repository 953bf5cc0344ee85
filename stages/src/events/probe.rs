//! `ImagesProbed`: every image of the release with where it was found (and, for containers, the
//! pod spec holding it), its reference parsed once, and whether it is private: the probe outcome,
//! the policy's decision and the evidence.

use serde::{Deserialize, Serialize};
use windlass_manifest::images::discovery::ImageUse;
use windlass_manifest::images::rules::ImageRule;
use windlass_registry::{ProbeEvidence, ProbeOutcome};
use windlass_state::EventPayload;

/// Which policy maps outcomes to decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbePolicy {
    /// KOTS's rule: only `public` is public; every other outcome is private.
    #[default]
    Kots,
    /// Like KOTS, except `unreachable` and `server_error` are errors.
    Strict,
}

/// What the policy decided for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Pulled directly.
    Public,
    /// Pulled through the proxy.
    Private,
    /// The policy refuses to decide; the install stops.
    Error,
}

/// Where an image's result came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ResultSource {
    /// The registry was asked during this install.
    Probed,
    /// An earlier install's probe, younger than the cache TTL, was reused.
    Cache {
        /// The install that probed it.
        install_id: String,
        /// The global sequence of its `ImagesProbed`.
        global_seq: u64,
    },
    /// `--known-images` (a KOTS `Installation`'s `spec.knownImages`) said so.
    KnownImages,
    /// `Application.spec.proxyPublicImages` is true: private without asking.
    ProxyPublicImages,
    /// `--offline`: the registry was not asked; the policy for `unreachable` applied.
    Offline,
}

/// One image in `ImagesProbed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbedImage {
    /// The reference as written.
    pub image: String,
    /// `registry/repository`, normalised like Docker.
    pub normalized_name: String,
    /// The normalised registry host.
    pub registry: String,
    /// The normalised repository.
    pub repository: String,
    /// The tag as written, if one was (since version 2).
    pub tag: Option<String>,
    /// The digest written in the reference (`@sha256:...`), if one was (since version 2).
    pub pinned_digest: Option<String>,
    /// The probe outcome, or `known` / `not_probed` when the registry was not asked.
    pub outcome: ImageOutcome,
    /// What the policy (or the known result) decided.
    pub decision: Decision,
    /// Whether the image is pulled through the proxy.
    pub private: bool,
    /// Where the result came from.
    pub source: ResultSource,
    /// When the deciding evidence was obtained (for a cached result, the original probe).
    pub probed_at: Option<String>,
    /// The manifest digest the registry reported, when public.
    pub digest: Option<String>,
    /// One line explaining the outcome.
    pub reason: String,
    /// The registry's evidence, when a probe (now or cached) produced the result.
    pub evidence: Option<ProbeEvidence>,
    /// Only listed in `Application.spec.additionalImages`: started at run time, never patched.
    pub runtime_only: bool,
    /// Every place the image was found.
    pub uses: Vec<ImageUse>,
}

/// `ImagesProbed` version 2. Version 1 carried no parsed reference parts (`tag`,
/// `pinned_digest`) and no pod-spec location on each use (`uses[].pod_spec`); its upcaster derives
/// them from the recorded strings, the only place a recorded image is ever parsed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagesProbed {
    /// The policy that made the decisions.
    pub policy: ProbePolicy,
    /// Whether the network was off limits.
    pub offline: bool,
    /// Whether `Application.spec.proxyPublicImages` was set.
    pub proxy_public_images: bool,
    /// HTTP requests made to registries during this install.
    pub requests_made: u64,
    /// User image-field rules in force.
    pub rules: Vec<ImageRule>,
    /// Every distinct image, in the order first found.
    pub images: Vec<ProbedImage>,
}

/// What is known about an image's visibility: a registry's answer, or why none was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageOutcome {
    /// The manifest answered an anonymous request.
    Public,
    /// The registry wants credentials.
    AuthRequired,
    /// The registry refused the request.
    Denied,
    /// The registry has no such manifest.
    NotFound,
    /// The registry kept answering 429.
    RateLimited,
    /// The registry kept answering 5xx.
    ServerError,
    /// No answer (or `--offline`).
    Unreachable,
    /// `--known-images` said whether it is private.
    Known,
    /// Not asked: `Application.spec.proxyPublicImages` makes every image private.
    NotProbed,
}

impl ImageOutcome {
    /// The registry's answer, when one was asked for.
    pub fn probe_outcome(self) -> Option<ProbeOutcome> {
        Some(match self {
            ImageOutcome::Public => ProbeOutcome::Public,
            ImageOutcome::AuthRequired => ProbeOutcome::AuthRequired,
            ImageOutcome::Denied => ProbeOutcome::Denied,
            ImageOutcome::NotFound => ProbeOutcome::NotFound,
            ImageOutcome::RateLimited => ProbeOutcome::RateLimited,
            ImageOutcome::ServerError => ProbeOutcome::ServerError,
            ImageOutcome::Unreachable => ProbeOutcome::Unreachable,
            ImageOutcome::Known | ImageOutcome::NotProbed => return None,
        })
    }

    /// The snake_case name, as in events and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageOutcome::Known => "known",
            ImageOutcome::NotProbed => "not_probed",
            probed => probed
                .probe_outcome()
                .map_or("unknown", ProbeOutcome::as_str),
        }
    }
}

impl From<ProbeOutcome> for ImageOutcome {
    fn from(outcome: ProbeOutcome) -> ImageOutcome {
        match outcome {
            ProbeOutcome::Public => ImageOutcome::Public,
            ProbeOutcome::AuthRequired => ImageOutcome::AuthRequired,
            ProbeOutcome::Denied => ImageOutcome::Denied,
            ProbeOutcome::NotFound => ImageOutcome::NotFound,
            ProbeOutcome::RateLimited => ImageOutcome::RateLimited,
            ProbeOutcome::ServerError => ImageOutcome::ServerError,
            ProbeOutcome::Unreachable => ImageOutcome::Unreachable,
        }
    }
}

impl std::fmt::Display for ImageOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventPayload for ImagesProbed {
    const EVENT_TYPE: &'static str = "ImagesProbed";
    const VERSION: u32 = 2;
}
