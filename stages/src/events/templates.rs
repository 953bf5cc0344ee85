//! `BaseFetched.templates`: what KOTS templating did while the release was read — the files
//! templated and the Config items each read, the documents `kots.io/exclude` / `kots.io/when` left
//! out, and the time and random draws the renders used, so a replay renders the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One templated file in [`TemplatesRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplatedFile {
    /// The file, relative to the release.
    pub path: String,
    /// The Config items its rendering read, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_items: Vec<String>,
    /// The random draws its rendering made, in order (base64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub random_draws: Vec<String>,
    /// Its rendered text holds a password value (it read a password item with a value, or the
    /// local registry's password): its documents and `base/` files are recorded by keyed
    /// fingerprint, never stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_password: bool,
}

/// A document left out by `kots.io/exclude` or `kots.io/when`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedDocument {
    /// The file.
    pub file: String,
    /// Its position among the file's documents, from 0.
    pub index: usize,
    /// The annotation that left it out.
    pub annotation: String,
}

/// One Config item as used (never its value when it is a password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigItemRecord {
    /// The item.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its type.
    pub item_type: String,
    /// Whether the user's ConfigValues gave its value, or the values the previous install left
    /// did ([`TemplatesRecord::carried_items`]).
    pub given: bool,
}

/// The effective ConfigValues an install wrote to `upstream/userdata/config.yaml` (in
/// [`TemplatesRecord`]): one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveValuesRecord {
    /// Its blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Its keyed fingerprint, when it holds a password value (the text is never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// What templating did in `BaseFetched` (an optional field: absent when nothing was templated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplatesRecord {
    /// Keyed fingerprint of the ConfigValues file used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_values_fingerprint: Option<String>,
    /// The Config's items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_items: Vec<ConfigItemRecord>,
    /// The instant every `Now` saw (RFC 3339), if any render asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// The random draws the Config's defaults and values made (base64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_random_draws: Vec<String>,
    /// The Config's random draws were not recorded: a password item's default or value is a
    /// template, so they may make up a password (a replay then needs the same ConfigValues).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_random_draws_withheld: bool,
    /// Every file that held a template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<TemplatedFile>,
    /// Documents left out by their annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<ExcludedDocument>,
    /// Config defaults and values that failed to render and became empty, as in KOTS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the user's ConfigValues gave for the items that are not passwords, by item (what
    /// KOTS's admin console shows too), so that a replay without the file renders the same.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub given_values: BTreeMap<String, GivenValueRecord>,
    /// Keyed fingerprints of the password values the user's ConfigValues gave, by item (never
    /// the values): a replay given the file (`--config-values`) checks them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub given_password_fingerprints: BTreeMap<String, String>,
    /// The license fields `LicenseFieldValue` answers (never the license ID), so that a replay
    /// without the license file renders the same.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub license_fields: BTreeMap<String, String>,
    /// The install whose effective ConfigValues this one started from: the newest completed
    /// install of the app in this state directory whose output still held them (added
    /// 2026-11-28: absent when none did, and in installs recorded before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<String>,
    /// The items whose value came from there because the user's ConfigValues gave none; their
    /// values are among `given_values`, or by fingerprint among `given_password_fingerprints`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub carried_items: BTreeSet<String>,
    /// The effective ConfigValues this install wrote (every Config item's value and default),
    /// which the next install of the app starts from (absent without a Config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_values: Option<EffectiveValuesRecord>,
}

/// One value of the user's ConfigValues in [`TemplatesRecord::given_values`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenValueRecord {
    /// `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `filename` (file items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl GivenValueRecord {
    /// The value as a replay gives it to the templates again (never a `valuePlaintext`: only
    /// values that are not passwords are recorded).
    pub fn given_value(&self) -> windlass_template::config_values::GivenValue {
        windlass_template::config_values::GivenValue {
            value: self.value.clone(),
            plaintext: false,
            filename: self.filename.clone(),
        }
    }
}

impl TemplatesRecord {
    /// Whether there is anything to record.
    pub fn is_empty(&self) -> bool {
        self.config_values_fingerprint.is_none()
            && self.config_items.is_empty()
            && self.files.is_empty()
            && self.excluded.is_empty()
    }
}
