//! `OverridesPlanned`: the kustomize `images:` entries that send private images through the proxy,
//! the hosts in force and where each came from, and the images left alone, each with why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use windlass_state::EventPayload;

/// `OverridesPlanned` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverridesPlanned {
    /// The app slug in the proxy path.
    pub app_slug: String,
    /// The hosts in force and where they came from.
    pub domains: Domains,
    /// The registry host aliases in force.
    pub host_aliases: BTreeMap<String, String>,
    /// The entries and the images left alone.
    #[serde(flatten)]
    pub plan: OverridePlan,
    /// Local-registry mode: every image was rewritten to this registry instead of being sent
    /// through the proxy (an optional field: absent in proxy mode, and in events recorded before
    /// windlass had the mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_registry: Option<LocalRegistryRecord>,
}

/// What is recorded about a local registry (wire format: part of `OverridesPlanned`): never the
/// password, only its keyed fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRegistryRecord {
    /// The registry host.
    pub host: String,
    /// The namespace images go under (may be empty).
    pub namespace: String,
    /// The user name in the pull secret, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Keyed fingerprint of the password in the pull secret, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_fingerprint: Option<String>,
}

/// Where a domain came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainSource {
    /// `--proxy-domain` / `--registry-domain`.
    CommandLine,
    /// `Installation.spec`.
    Installation,
    /// `Application.spec` (deprecated fields).
    Application,
    /// The KOTS default.
    Default,
}

/// The hosts in force (wire format: part of `OverridesPlanned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domains {
    /// Host serving `/v2/proxy/<app slug>/...`.
    pub proxy_host: String,
    /// Where it came from.
    pub proxy_source: DomainSource,
    /// The vendor's registry host.
    pub registry_host: String,
    /// Where it came from.
    pub registry_source: DomainSource,
}

/// Why an entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryRule {
    /// A private image, sent through the proxy.
    Proxy,
    /// A private image on a host with a port or an uppercase letter, sent through the proxy under
    /// its configured alias.
    ProxyByHostAlias,
    /// An image already on the proxy host: kept as it is.
    AlreadyProxied,
    /// An image on `registry.replicated.com` moved to the custom registry domain.
    CustomRegistryDomain,
    /// Local-registry mode: every image, public or private, moved to
    /// `<host>/<namespace>/<last path component>`.
    LocalRegistry,
}

/// One kustomize `images:` entry with the evidence that caused it (wire format: `OverridesPlanned`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedEntry {
    /// The name kustomize matches literally.
    pub name: String,
    /// The replacement name (tag and digest are kept from each reference).
    pub new_name: String,
    /// The image, as written, that caused the entry.
    pub image: String,
    /// Which rule made it.
    pub rule: EntryRule,
    /// Why the image is private: its probe outcome and reason.
    pub because: String,
}

/// An image that got no entry, and why (wire format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedImage {
    /// The image as written.
    pub image: String,
    /// Why it is not rewritten.
    pub reason: String,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverridePlan {
    /// Entries in the order their images were first found; one per `name`.
    pub entries: Vec<PlannedEntry>,
    /// Images left alone.
    pub skipped: Vec<SkippedImage>,
}

impl EventPayload for OverridesPlanned {
    const EVENT_TYPE: &'static str = "OverridesPlanned";
    const VERSION: u32 = 1;
}
