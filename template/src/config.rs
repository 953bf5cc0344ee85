//! The effective value of every `Config` item, as KOTS's config context computes it
//! (`kots pkg/template/config_context.go newConfigContext`, `depgraph.go`):
//! - items are evaluated in the order of their references: an item whose `default` or `value`
//!   calls `ConfigOption "x"` (or another `ConfigOption*` function) comes after `x`; references to
//!   unknown items are dropped; a cycle is an error naming the items in it;
//! - `default` is always rendered from the Config; the value is the user's (from ConfigValues)
//!   for an editable item that has one, else the rendered vendor `value` — so a read-only item
//!   (`readonly: true`, `label`, `heading`, unknown types) is recomputed on every render;
//! - `ConfigOption` answers the value if not empty, else the default; `when` and `hidden` do not
//!   change values;
//! - an error rendering a `default` or `value` makes it `""`, as in KOTS (kept as a warning).
//!
//! [`missing_required`] lists the required items left without a value, as KOTS's
//! `NeedsConfiguration` finds them on the rendered Config.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use windlass_kots::resources::{Config, ConfigItem};

use crate::config_values::GivenValues;
use crate::context::{ItemValue, TemplateContext, Usage};
use crate::engine::render;
use crate::entropy::Entropy;
use crate::functions::Scope;

/// Most items a Config may have (evaluation renders each item's templates once per item before
/// it, with the values so far).
pub const MAX_ITEMS: usize = 2_000;

/// The item types whose value a user may give (KOTS's editable types).
const EDITABLE_TYPES: [&str; 11] = [
    "",
    "text",
    "textarea",
    "password",
    "file",
    "bool",
    "select",
    "select_many",
    "select_one",
    "radio",
    "dropdown",
];

/// A Config that cannot be evaluated with the values given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Items refer to each other in a cycle.
    #[error("config items refer to each other in a cycle: {cycle}")]
    Cycle {
        /// The items, `a -> b -> a`.
        cycle: String,
    },
    /// `valuePlaintext` was given for an item that is not a password.
    #[error(
        "config values give valuePlaintext for item {item}, which is a {item_type} item: valuePlaintext is for password items, use value"
    )]
    PlaintextForNonPassword {
        /// The item.
        item: String,
        /// Its type.
        item_type: String,
    },
    /// The Config has more items than windlass evaluates.
    #[error("the Config has {count} items, over the limit of {MAX_ITEMS}")]
    TooManyItems {
        /// How many it has.
        count: usize,
    },
    /// The Config uses something windlass does not support.
    #[error("config item {item}: {problem}")]
    Unsupported {
        /// The item.
        item: String,
        /// What.
        problem: String,
    },
}

/// One item as evaluated, with where it is and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatedItem {
    /// The item's name.
    pub name: String,
    /// Its group's name.
    pub group: String,
    /// Its group's title (the name when it has none).
    pub group_title: String,
    /// Its title (the name when it has none).
    pub title: String,
    /// Its value, default and type.
    pub value: ItemValue,
    /// Whether the user gave a value.
    pub given: bool,
    /// `required`.
    pub required: bool,
    /// `hidden`.
    pub hidden: bool,
    /// Whether the item is shown: its rendered `when` and its group's are not `false`.
    pub shown: bool,
}

/// A Config evaluated with the user's values.
#[derive(Debug, Clone, Default)]
pub struct EvaluatedConfig {
    /// Every item, in the Config's order (a repeated name keeps its last place).
    pub items: Vec<EvaluatedItem>,
    /// The order items were evaluated in (references first).
    pub order: Vec<String>,
    /// Defaults and values whose rendering failed and became `""`, as KOTS lets them.
    pub warnings: Vec<String>,
    /// Given values for items the Config does not have (ignored, as KOTS ignores them).
    pub unknown_values: Vec<String>,
}

impl EvaluatedConfig {
    /// Item name → value, for [`TemplateContext::config`].
    pub fn values(&self) -> BTreeMap<String, ItemValue> {
        self.items
            .iter()
            .map(|item| (item.name.clone(), item.value.clone()))
            .collect()
    }
}

static REFERENCE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"ConfigOption(?:Equals|NotEquals|Data|Filename|Index|Name)?\s+"((?:[^"\\]|\\.)*)""#,
    )
    .unwrap_or_else(|error| unreachable!("the reference pattern is valid: {error}"))
});

/// The item names the text of a `default` or `value` refers to.
fn references(text: &str) -> BTreeSet<String> {
    REFERENCE
        .captures_iter(text)
        .filter_map(|captures| captures.get(1))
        .map(|name| name.as_str().to_string())
        .collect()
}

/// A `BoolOrString` field as KOTS reads it: YAML `true`/`false` are `"1"`/`"0"`.
pub fn bool_or_string(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::Bool(true)) => "1".into(),
        Some(serde_json::Value::Bool(false)) => "0".into(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// A `QuotedBool` field (`when`) as KOTS reads it: YAML booleans and `0`/`1` become
/// `"true"`/`"false"`, strings stay as written. KOTS decodes its kinds as YAML 1.1, so the words
/// [`yaml_1_1_bool`] knows are booleans too; windlass's YAML reader keeps them as strings and
/// cannot tell whether they were quoted, so a quoted `'no'` counts as `false` here.
fn quoted_bool(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::Bool(value)) => value.to_string(),
        Some(serde_json::Value::Number(number)) => match number.as_i64() {
            Some(0) => "false".into(),
            Some(1) => "true".into(),
            _ => number.to_string(),
        },
        Some(serde_json::Value::String(text)) => match yaml_1_1_bool(text) {
            Some(value) => value.to_string(),
            None => text.clone(),
        },
        Some(other) => other.to_string(),
    }
}

/// The YAML 1.1 boolean words as go-yaml v2 (which KOTS decodes its kinds with) resolves them:
/// `y`, `yes`, `on`, `true` and `n`, `no`, `off`, `false`, each in lower, Title or UPPER case
/// (`Y`/`N` for the one-letter ones); `yEs` is a string.
fn yaml_1_1_bool(word: &str) -> Option<bool> {
    match word {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            Some(false)
        }
        _ => None,
    }
}

fn is_editable(item: &ConfigItem) -> bool {
    let item_type = item.item_type.as_deref().unwrap_or("");
    EDITABLE_TYPES.contains(&item_type) && !item.readonly.unwrap_or(false)
}

/// Evaluates `config` with `given` values. `base` supplies everything but the config values (the
/// license, the namespace, ...); `entropy` the time and randomness defaults and values draw on.
pub fn evaluate(
    config: &Config,
    given: &GivenValues,
    base: &TemplateContext,
    entropy: Arc<dyn Entropy>,
) -> Result<EvaluatedConfig, ConfigError> {
    let count: usize = config
        .spec
        .groups
        .iter()
        .map(|group| group.items.len())
        .sum();
    if count > MAX_ITEMS {
        return Err(ConfigError::TooManyItems { count });
    }
    // Every item by name (the last of a name wins), with its group.
    let mut items: BTreeMap<String, (&ConfigItem, usize)> = BTreeMap::new();
    let mut config_order: Vec<String> = Vec::new();
    for (group_index, group) in config.spec.groups.iter().enumerate() {
        for item in &group.items {
            if item.repeatable.unwrap_or(false) {
                return Err(ConfigError::Unsupported {
                    item: item.name.clone(),
                    problem: "repeatable items are not supported by windlass".into(),
                });
            }
            config_order.retain(|name| name != &item.name);
            config_order.push(item.name.clone());
            items.insert(item.name.clone(), (item, group_index));
        }
    }
    for (name, value) in &given.values {
        if let Some((item, _)) = items.get(name) {
            let item_type = item.item_type.as_deref().unwrap_or("");
            if value.plaintext && item_type != "password" {
                return Err(ConfigError::PlaintextForNonPassword {
                    item: name.clone(),
                    item_type: if item_type.is_empty() {
                        "text".into()
                    } else {
                        item_type.into()
                    },
                });
            }
        }
    }
    let order = evaluation_order(&config_order, &items)?;
    let mut evaluated = EvaluatedConfig {
        order: order.clone(),
        ..EvaluatedConfig::default()
    };
    let mut values: BTreeMap<String, ItemValue> = BTreeMap::new();
    let mut rendered =
        |name: &str, what: &str, text: &str, values: &BTreeMap<String, ItemValue>| {
            if !text.contains("{{repl") && !text.contains("repl{{") {
                return (text.to_string(), false);
            }
            let context = TemplateContext {
                config: Arc::new(values.clone()),
                ..base.clone()
            };
            let scope = Scope {
                context: Arc::new(context),
                entropy: entropy.clone(),
                usage: Arc::new(Usage::default()),
            };
            match render(&format!("config item {name} {what}"), text, &scope) {
                // A password item read, or another credential put in (the local registry's
                // pull secret): the item's value may hold it.
                Ok(rendered) => (
                    rendered.text,
                    !scope.usage.password_items().is_empty()
                        || !scope.usage.credentials().is_empty(),
                ),
                Err(error) => {
                    evaluated
                        .warnings
                        .push(format!("{error} (the {what} is empty, as in KOTS)"));
                    (String::new(), false)
                }
            }
        };
    for name in &order {
        let (item, _) = items[name];
        let (default, default_read_password) = rendered(
            name,
            "default",
            &bool_or_string(item.default.as_ref()),
            &values,
        );
        let user = given.values.get(name).filter(|_| is_editable(item));
        let (value, value_read_password, filename) = match user {
            Some(user) => (
                user.value.clone().unwrap_or_default(),
                false,
                user.filename.clone().unwrap_or_default(),
            ),
            None => {
                let (value, read_password) =
                    rendered(name, "value", &bool_or_string(item.value.as_ref()), &values);
                let (filename, filename_read_password) = rendered(
                    name,
                    "filename",
                    item.filename.as_deref().unwrap_or(""),
                    &values,
                );
                (value, read_password || filename_read_password, filename)
            }
        };
        values.insert(
            name.clone(),
            ItemValue {
                item_type: item.item_type.clone().unwrap_or_default(),
                value,
                default,
                filename,
                derived_from_password: default_read_password || value_read_password,
            },
        );
    }
    // `when` is rendered with every value known.
    let full = TemplateContext {
        config: Arc::new(values.clone()),
        ..base.clone()
    };
    let scope = Scope {
        context: Arc::new(full),
        entropy,
        usage: Arc::new(Usage::default()),
    };
    let when = |what: String, value: Option<&serde_json::Value>, warnings: &mut Vec<String>| {
        let text = quoted_bool(value);
        match render(&what, &text, &scope) {
            Ok(rendered) => rendered.text.trim() != "false",
            Err(error) => {
                warnings.push(error.to_string());
                true
            }
        }
    };
    let mut warnings = std::mem::take(&mut evaluated.warnings);
    let group_shown: Vec<bool> = config
        .spec
        .groups
        .iter()
        .map(|group| {
            when(
                format!("config group {} when", group.name),
                group.when.as_ref(),
                &mut warnings,
            )
        })
        .collect();
    for name in &config_order {
        let (item, group_index) = items[name];
        let group = &config.spec.groups[group_index];
        let item_shown = when(
            format!("config item {name} when"),
            item.when.as_ref(),
            &mut warnings,
        );
        evaluated.items.push(EvaluatedItem {
            name: name.clone(),
            group: group.name.clone(),
            group_title: group
                .title
                .clone()
                .filter(|title| !title.is_empty())
                .unwrap_or_else(|| group.name.clone()),
            title: item
                .title
                .clone()
                .filter(|title| !title.is_empty())
                .unwrap_or_else(|| name.clone()),
            value: values[name].clone(),
            given: given.values.contains_key(name) && is_editable(item),
            required: item.required.unwrap_or(false),
            hidden: item.hidden.unwrap_or(false),
            shown: group_shown[group_index] && item_shown,
        });
    }
    evaluated.warnings = warnings;
    evaluated.unknown_values = given
        .values
        .keys()
        .filter(|name| !items.contains_key(*name))
        .cloned()
        .collect();
    Ok(evaluated)
}

/// The items in an order where every item comes after the items its `default` and `value` refer
/// to; among items free to go, the Config's order.
fn evaluation_order(
    config_order: &[String],
    items: &BTreeMap<String, (&ConfigItem, usize)>,
) -> Result<Vec<String>, ConfigError> {
    let depends_on: BTreeMap<&str, BTreeSet<String>> = config_order
        .iter()
        .map(|name| {
            let (item, _) = items[name];
            let mut referenced = references(&bool_or_string(item.default.as_ref()));
            referenced.extend(references(&bool_or_string(item.value.as_ref())));
            referenced.retain(|reference| items.contains_key(reference));
            (name.as_str(), referenced)
        })
        .collect();
    let mut order: Vec<String> = Vec::with_capacity(config_order.len());
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while order.len() < config_order.len() {
        let next = config_order.iter().find(|name| {
            !done.contains(name.as_str())
                && depends_on[name.as_str()]
                    .iter()
                    .all(|reference| done.contains(reference.as_str()))
        });
        match next {
            Some(name) => {
                done.insert(name.as_str());
                order.push(name.clone());
            }
            None => {
                let left: Vec<&str> = config_order
                    .iter()
                    .map(String::as_str)
                    .filter(|name| !done.contains(name))
                    .collect();
                return Err(ConfigError::Cycle {
                    cycle: find_cycle(&left, &depends_on, &done),
                });
            }
        }
    }
    Ok(order)
}

/// One cycle among `left` (every item left depends on another item left), `a -> b -> a`.
fn find_cycle(
    left: &[&str],
    depends_on: &BTreeMap<&str, BTreeSet<String>>,
    done: &BTreeSet<&str>,
) -> String {
    let mut path: Vec<&str> = vec![left[0]];
    loop {
        let current = path[path.len() - 1];
        let next = depends_on[current]
            .iter()
            .map(String::as_str)
            .find(|reference| !done.contains(reference))
            .unwrap_or(current);
        if let Some(start) = path.iter().position(|name| *name == next) {
            let mut cycle: Vec<&str> = path[start..].to_vec();
            cycle.push(next);
            return cycle.join(" -> ");
        }
        path.push(next);
    }
}

/// A required item left without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingItem {
    /// The item's name.
    pub name: String,
    /// Its title.
    pub title: String,
    /// Its group's name.
    pub group: String,
    /// Its group's title.
    pub group_title: String,
}

/// The required items without a value or default that are shown and not hidden, as KOTS's
/// `NeedsConfiguration` finds them.
pub fn missing_required(config: &EvaluatedConfig) -> Vec<MissingItem> {
    config
        .items
        .iter()
        .filter(|item| item.required && !item.hidden && item.shown)
        .filter(|item| item.value.value.is_empty() && item.value.default.is_empty())
        .map(|item| MissingItem {
            name: item.name.clone(),
            title: item.title.clone(),
            group: item.group.clone(),
            group_title: item.group_title.clone(),
        })
        .collect()
}
