//! What templates can see: the effective Config item values, the license's fields, the app, the
//! namespace, the registry settings ([`TemplateContext`], shared by every file of one install), and
//! what one render did with them ([`Usage`]: the config items it read, the password items among
//! them). [`crate::engine::render`] makes a [`crate::Scope`] of them current while it renders.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// The effective value of one Config item, as KOTS's config context holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemValue {
    /// The item's type (`text`, `password`, `bool`, ...; empty when not set).
    pub item_type: String,
    /// The value: the user's, or the rendered vendor `value` (empty when neither).
    pub value: String,
    /// The rendered `default`.
    pub default: String,
    /// The file name of a `file` item.
    pub filename: String,
    /// Its vendor `value` or `default` is a template that read a password item with a value (or
    /// another item derived so): its value may hold the password, so it is one.
    pub derived_from_password: bool,
}

impl ItemValue {
    /// What `ConfigOption` answers: the value if not empty, else the default.
    pub fn effective(&self) -> &str {
        if self.value.is_empty() {
            &self.default
        } else {
            &self.value
        }
    }

    /// Whether the item is a password (its value is a credential): of type `password`, or
    /// derived from one.
    pub fn is_password(&self) -> bool {
        self.item_type == "password" || self.derived_from_password
    }
}

/// A customer's own registry (local-registry mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalRegistry {
    /// The registry host (`HasLocalRegistry` is true when it is not empty).
    pub host: String,
    /// The namespace images go under (may be empty).
    pub namespace: String,
    /// The pull secret's `.dockerconfigjson` (it holds the registry password): what
    /// `LocalRegistryImagePullSecret` answers, base64-encoded.
    pub docker_config: Credential,
}

/// Text that is a credential: never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credential(pub String);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Everything templates can see in one install.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    /// Every Config item by name.
    pub config: Arc<BTreeMap<String, ItemValue>>,
    /// The license's fields as `LicenseFieldValue` prints them (never the license ID); `None`
    /// without a license.
    pub license: Option<Arc<BTreeMap<String, String>>>,
    /// The app slug (the license's, or the `Application`'s name), if known.
    pub app_slug: Option<String>,
    /// The namespace the app is installed into (`Namespace`).
    pub namespace: String,
    /// The proxy host (`ReplicatedProxyDomain`).
    pub proxy_domain: String,
    /// The Replicated registry host (`ReplicatedRegistryDomain`).
    pub registry_domain: String,
    /// The customer's registry, in local-registry mode.
    pub local_registry: Option<LocalRegistry>,
}

/// What one render did with its context.
#[derive(Debug, Default)]
pub struct Usage {
    inner: Mutex<UsageSets>,
}

#[derive(Debug, Default, Clone)]
struct UsageSets {
    config_items: BTreeSet<String>,
    password_items: BTreeSet<String>,
    credentials: BTreeSet<String>,
}

impl Usage {
    /// Notes that the render read the Config item `name` (`item` when it exists). A name the
    /// Config does not have is not noted: it is whatever text the template passed, which may be
    /// a value (`ConfigOption (ConfigOption "password")` passes a password as a name), and the
    /// names noted are recorded.
    pub fn read_item(&self, name: &str, item: Option<&ItemValue>) {
        let Some(item) = item else {
            return;
        };
        let mut sets = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sets.config_items.insert(name.to_string());
        if item.is_password() && !item.effective().is_empty() {
            sets.password_items.insert(name.to_string());
        }
    }

    /// Notes that the render put a credential other than a Config item into its output (`what`
    /// names it, e.g. the function that did).
    pub fn read_credential(&self, what: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .credentials
            .insert(what.to_string());
    }

    /// The credentials other than Config items the render's output may hold (see
    /// [`Usage::read_credential`]).
    pub fn credentials(&self) -> BTreeSet<String> {
        self.sets().credentials
    }

    /// The Config items read, by name.
    pub fn config_items(&self) -> BTreeSet<String> {
        self.sets().config_items
    }

    /// The password items with a value that were read: the render's output may hold their values.
    pub fn password_items(&self) -> BTreeSet<String> {
        self.sets().password_items
    }

    fn sets(&self) -> UsageSets {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}
