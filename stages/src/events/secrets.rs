//! `SecretsProvisioned`: what may be recorded about the pull secrets written (names, namespaces,
//! keyed fingerprints; never their content) and the namespaces apply must put them in.

use serde::{Deserialize, Serialize};
use windlass_state::EventPayload;

/// `SecretsProvisioned` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsProvisioned {
    /// The file written.
    pub file: String,
    /// Every secret in it.
    pub secrets: Vec<SecretRecord>,
    /// Where they go, and what apply must create or copy.
    pub namespaces: SecretNamespaces,
}

/// What may be recorded about one rendered secret (wire format: part of `SecretsProvisioned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// Keyed fingerprint of the secret's `.dockerconfigjson`.
    pub content_fingerprint: String,
    /// The registry hosts it authenticates to.
    pub hosts: Vec<String>,
}

/// The namespaces the secret goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretNamespaces {
    /// The app namespace.
    pub app: String,
    /// Named `additionalNamespaces` entries (each gets a copy; apply creates them if missing).
    pub additional: Vec<String>,
    /// `additionalNamespaces` holds `"*"`: apply copies the secret into every namespace, existing
    /// and future, and creates none.
    pub every_namespace: bool,
}

impl EventPayload for SecretsProvisioned {
    const EVENT_TYPE: &'static str = "SecretsProvisioned";
    const VERSION: u32 = 1;
}
