//! What the user asked to install ([`InstallRequest`]) and the license that comes with it. The
//! license ID lives here only in memory, as a [`SecretString`]; what gets recorded is a
//! [`LicenseRecord`]: app slug, sequence and a keyed fingerprint. The same holds for a local
//! registry's password ([`LocalRegistryInput`]).

use std::path::PathBuf;

use windlass_state::SecretString;

pub use crate::events::LicenseRecord;

/// A customer license, parsed from a KOTS `License` document.
#[derive(Debug, Clone)]
pub struct License {
    /// `spec.appSlug`.
    pub app_slug: String,
    /// `spec.licenseID`, the credential.
    pub license_id: SecretString,
    /// `spec.licenseSequence`.
    pub sequence: i64,
    /// `spec.entitlements.expires_at.value`, if set.
    pub expires_at: Option<String>,
    /// The keyed fingerprint of the license ID in this state directory.
    pub fingerprint: String,
    /// What KOTS's `LicenseFieldValue` answers, by field name (never the license ID).
    pub fields: std::collections::BTreeMap<String, String>,
}

/// The user's KOTS `ConfigValues` file (`--config-values`), held in memory: it may hold password
/// values, so only its keyed fingerprint is ever recorded.
#[derive(Debug, Clone)]
pub struct ConfigValuesInput {
    /// The file, as the user named it (for messages).
    pub path: String,
    /// Its text.
    pub text: SecretString,
    /// Keyed fingerprint of its text in this state directory.
    pub fingerprint: String,
}

/// The effective ConfigValues the newest completed install of the app wrote
/// (`upstream/userdata/config.yaml` in its output), which a new install starts from, as KOTS
/// starts from the previous version's: a value generated once (`RandomString` in an editable
/// item's `value`) stays the same from then on.
#[derive(Debug, Clone)]
pub struct CarriedConfigValues {
    /// The install that wrote them.
    pub install_id: String,
    /// The file and its text.
    pub values: ConfigValuesInput,
}

/// A customer's own registry (local-registry mode: `--registry-host` and friends), held in
/// memory: its password is a credential, so only a keyed fingerprint of it is ever recorded.
#[derive(Clone)]
pub struct LocalRegistryInput {
    /// The registry host (`host[:port]`).
    pub host: String,
    /// The namespace images go under (may be empty, or several segments).
    pub namespace: String,
    /// The user name in the pull secret, if any.
    pub username: Option<String>,
    /// The password in the pull secret, if any.
    pub password: Option<SecretString>,
    /// Keyed fingerprint of the password in this state directory, if there is one.
    pub password_fingerprint: Option<String>,
}

impl std::fmt::Debug for LocalRegistryInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRegistryInput")
            .field("host", &self.host)
            .field("namespace", &self.namespace)
            .field("username", &self.username)
            .field("password_fingerprint", &self.password_fingerprint)
            .finish_non_exhaustive()
    }
}

impl License {
    /// What may be recorded about this license.
    pub fn record(&self) -> LicenseRecord {
        LicenseRecord {
            app_slug: self.app_slug.clone(),
            sequence: self.sequence,
            fingerprint: self.fingerprint.clone(),
            expires_at: self.expires_at.clone(),
        }
    }
}

/// One install as requested.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// The release directory, absolute.
    pub release_dir: PathBuf,
    /// blake3 digest over the release's paths and contents (license files excluded).
    pub release_digest: String,
    /// The output directory, absolute.
    pub out_dir: PathBuf,
    /// The output directory the user asked for; `None` when it defaults to one under the state
    /// directory named after the install. Part of the install key (the default is not, since it
    /// differs per install).
    pub requested_out: Option<PathBuf>,
    /// The app namespace.
    pub namespace: String,
    /// The license, if any.
    pub license: Option<License>,
    /// The user's ConfigValues, if any.
    pub config_values: Option<ConfigValuesInput>,
    /// The customer's own registry, in local-registry mode: every image is rewritten to it and
    /// the pull secret carries its credentials only.
    pub local_registry: Option<LocalRegistryInput>,
    /// The values the previous install of the app left ([`CarriedConfigValues`]), if any; the
    /// user's ConfigValues win over them item by item.
    pub carried_config_values: Option<CarriedConfigValues>,
    /// Which command this install is (recorded in `InstallStarted`; not part of the install key:
    /// the pipeline already tells an apply from an install).
    pub kind: crate::InstallKind,
}

impl InstallRequest {
    /// The app slug: the license's, else `"app"`.
    pub fn app_slug(&self) -> &str {
        self.license
            .as_ref()
            .map(|license| license.app_slug.as_str())
            .unwrap_or("app")
    }

    /// A digest of everything that makes two install requests "the same install", used to find an
    /// interrupted install to resume: the release (contents and place), the requested output, the
    /// namespace, the license and the pipeline's [fingerprint](crate::Pipeline::fingerprint).
    pub fn install_key(&self, pipeline_fingerprint: &str) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [
            self.release_digest.as_str(),
            &self.release_dir.to_string_lossy(),
            &self
                .requested_out
                .as_ref()
                .map(|out| out.to_string_lossy())
                .unwrap_or_default(),
            self.namespace.as_str(),
            self.license
                .as_ref()
                .map(|license| license.fingerprint.as_str())
                .unwrap_or(""),
        ] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        // Only an install with config values hashes them, so the keys of installs without any stay
        // what they were.
        if let Some(values) = &self.config_values {
            hasher.update(b"config-values\0");
            hasher.update(values.fingerprint.as_bytes());
            hasher.update(&[0]);
        }
        // Likewise for local-registry mode.
        if let Some(registry) = &self.local_registry {
            hasher.update(b"local-registry\0");
            for part in [
                registry.host.as_str(),
                registry.namespace.as_str(),
                registry.username.as_deref().unwrap_or(""),
                registry.password_fingerprint.as_deref().unwrap_or(""),
            ] {
                hasher.update(part.as_bytes());
                hasher.update(&[0]);
            }
        }
        hasher.update(pipeline_fingerprint.as_bytes());
        hasher.finalize().to_hex()[..32].to_string()
    }
}
