//! The effective ConfigValues of an install, kept from one install of an app to the next as KOTS
//! keeps them (`upstream/userdata/config.yaml`): after the Config is evaluated, every item's value
//! (the user's, or the rendered vendor `value`) and rendered `default` are written there, and
//! the next install of the app starts from that file, with the user's ConfigValues winning item
//! by item. So a value generated once — `RandomString` in an editable item's `value`, a database
//! password — stays the same on every later install instead of being generated anew.
//!
//! Items derived from a password (a vendor `value` or `default` that read one) are left out of
//! the file: carried back as given values they would lose that mark, and their text could then
//! reach the log; left out, the next install renders them again from the carried password.

use std::collections::{BTreeMap, BTreeSet};

use windlass_template::config::EvaluatedConfig;
use windlass_template::config_values::{GivenValues, parse_config_values};

use crate::release::ReleaseError;

/// The effective ConfigValues of one evaluated Config, as written to the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveValues {
    /// The ConfigValues document.
    pub text: String,
    /// It holds a password item's value or default: a credential, recorded by fingerprint only.
    pub holds_password: bool,
}

/// The effective ConfigValues document of `evaluated` for app `app_slug` (see the module
/// documentation for what is left out).
pub fn effective_values(
    evaluated: &EvaluatedConfig,
    app_slug: &str,
) -> Result<EffectiveValues, ReleaseError> {
    let mut values = serde_json::Map::new();
    let mut holds_password = false;
    for item in &evaluated.items {
        let value = &item.value;
        if value.derived_from_password {
            continue;
        }
        let mut entry = serde_json::Map::new();
        for (field, text) in [
            ("value", &value.value),
            ("default", &value.default),
            ("filename", &value.filename),
        ] {
            if !text.is_empty() {
                entry.insert(field.into(), text.clone().into());
            }
        }
        // A password given but unknown (a replay without the file) still makes a credential.
        holds_password |= value.is_password()
            && (item.given || !(value.value.is_empty() && value.default.is_empty()));
        values.insert(item.name.clone(), entry.into());
    }
    let document = serde_json::json!({
        "apiVersion": "kots.io/v1beta1",
        "kind": "ConfigValues",
        "metadata": {"name": app_slug},
        "spec": {"values": values},
    });
    let text = serde_saphyr::to_string(&document).map_err(|error| {
        ReleaseError::Template(format!("writing the effective config values: {error}"))
    })?;
    Ok(EffectiveValues {
        text,
        holds_password,
    })
}

/// `carried` (the previous install's effective values, read from `path`) under `given` (the
/// user's): each item `given` has no entry for takes the carried entry, when it has a value or a
/// file name. Returns the names taken. (KOTS takes the empty entries too, which pins an item
/// that had no value to none: a `value` the vendor adds to it in a later release is never used.
/// windlass leaves them out, so it is.)
pub fn carry_under(
    given: &mut GivenValues,
    path: &str,
    carried: &str,
) -> Result<BTreeSet<String>, ReleaseError> {
    let carried = parse_config_values(path, carried).map_err(|error| {
        ReleaseError::Template(format!("the values the previous install left: {error}"))
    })?;
    let mut taken = BTreeSet::new();
    for (name, entry) in carried.values {
        let empty = entry.value.as_deref().unwrap_or_default().is_empty()
            && entry.filename.as_deref().unwrap_or_default().is_empty();
        if empty {
            continue;
        }
        if let std::collections::btree_map::Entry::Vacant(vacant) = given.values.entry(name) {
            taken.insert(vacant.key().clone());
            vacant.insert(entry);
        }
    }
    Ok(taken)
}

/// The recorded values of the `carried` items (never passwords: those are recorded by
/// fingerprint only) under `given`, for a replay given the user's ConfigValues file again.
pub fn carry_recorded_under(
    given: &mut GivenValues,
    carried: &BTreeSet<String>,
    recorded: &BTreeMap<String, crate::events::GivenValueRecord>,
) {
    for name in carried {
        if let Some(value) = recorded.get(name) {
            given
                .values
                .entry(name.clone())
                .or_insert_with(|| value.given_value());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(
        name: &str,
        value: &str,
        default: &str,
        item_type: &str,
    ) -> windlass_template::config::EvaluatedItem {
        windlass_template::config::EvaluatedItem {
            name: name.into(),
            group: "g".into(),
            group_title: "G".into(),
            title: name.into(),
            value: windlass_template::ItemValue {
                item_type: item_type.into(),
                value: value.into(),
                default: default.into(),
                filename: String::new(),
                derived_from_password: false,
            },
            given: false,
            required: false,
            hidden: false,
            shown: true,
        }
    }

    /// What is written reads back as the same values: strings that look like numbers or
    /// booleans stay strings, multi-line values keep their lines, and an item with neither
    /// value nor default is an empty entry (KOTS's `{}`), which still counts as given.
    #[test]
    fn the_effective_values_read_back_as_written() {
        let mut derived = item("dsn", "postgres://u:secret@db", "", "text");
        derived.value.derived_from_password = true;
        let evaluated = EvaluatedConfig {
            items: vec![
                item("port", "8080", "80", "text"),
                item("enabled", "true", "", "bool"),
                item("cert", "line one\nline two\n", "", "textarea"),
                item("empty", "", "", "text"),
                item("db_password", "s3cret-Generated", "", "password"),
                derived,
            ],
            ..EvaluatedConfig::default()
        };
        let written = effective_values(&evaluated, "my-app").unwrap();
        assert!(written.holds_password);
        assert!(!written.text.contains("postgres://"), "{}", written.text);
        let read = parse_config_values("config.yaml", &written.text).unwrap();
        let value = |name: &str| read.values.get(name).map(|entry| entry.value.clone());
        assert_eq!(value("port"), Some(Some("8080".into())));
        assert_eq!(value("enabled"), Some(Some("true".into())));
        assert_eq!(value("cert"), Some(Some("line one\nline two\n".into())));
        assert_eq!(value("empty"), Some(None));
        assert_eq!(value("db_password"), Some(Some("s3cret-Generated".into())));
        assert_eq!(value("dsn"), None);
    }

    #[test]
    fn the_users_values_win_over_the_carried_ones_item_by_item() {
        let mut given = parse_config_values(
            "mine.yaml",
            "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    a:\n      value: mine\n",
        )
        .unwrap();
        let taken = carry_under(
            &mut given,
            "old.yaml",
            "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    a:\n      value: old\n    b:\n      value: kept\n    c:\n      default: only\n    d: {}\n",
        )
        .unwrap();
        assert_eq!(taken, BTreeSet::from(["b".to_string()]));
        assert_eq!(given.values["a"].value.as_deref(), Some("mine"));
        assert_eq!(given.values["b"].value.as_deref(), Some("kept"));
        assert!(
            !given.values.contains_key("c") && !given.values.contains_key("d"),
            "an entry without a value pins nothing"
        );
    }
}
