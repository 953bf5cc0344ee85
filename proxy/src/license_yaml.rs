//! Reading the KOTS License document of a license file with the line of every YAML node, so that a
//! problem is reported as `file:line` (the line of the bad value, of the key whose value is
//! missing, or of the YAML error). Messages never quote the file's text: it holds the license ID.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use windlass_state::SecretString;

use crate::store::{LicenseFile, StoreError};

/// A YAML node and the line it starts on (from 1).
struct Node {
    line: usize,
    value: Value,
}

/// What a [`Node`] holds. Scalars other than strings and nulls are not needed, only told apart.
enum Value {
    Mapping(Vec<(Node, Node)>),
    Sequence,
    String(String),
    Null,
    OtherScalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            line: spanned.referenced.line() as usize,
            value: spanned.value,
        })
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_i128<E>(self, _: i128) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_u128<E>(self, _: u128) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_string()))
    }

    fn visit_string<E>(self, text: String) -> Result<Value, E> {
        Ok(Value::String(text))
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Value, A::Error> {
        while sequence.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Value::Sequence)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Mapping(entries))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl Node {
    /// The key node and value node of `key`, when this is a mapping that has it.
    fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        let Value::Mapping(entries) = &self.value else {
            return None;
        };
        entries
            .iter()
            .find(|(name, _)| matches!(&name.value, Value::String(name) if name == key))
            .map(|(name, value)| (name, value))
    }

    /// The value of `key` when it is a string.
    fn string(&self, key: &str) -> Option<&str> {
        match self.entry(key) {
            Some((
                _,
                Node {
                    value: Value::String(text),
                    ..
                },
            )) => Some(text),
            _ => None,
        }
    }
}

/// Reads the first `kind: License` document (`apiVersion: kots.io/...`) of `text`, the contents of
/// the license file `shown`.
pub(crate) fn parse_license(shown: &str, text: &str) -> Result<LicenseFile, StoreError> {
    let invalid = |line: Option<usize>, problem: &str| StoreError::InvalidLicense {
        path: shown.to_string(),
        line,
        problem: problem.to_string(),
    };
    // Parse errors are not quoted: they could echo the document's text.
    let documents: Vec<Node> = serde_saphyr::from_multiple(text).map_err(|error| {
        invalid(
            error.location().map(|location| location.line() as usize),
            "not valid YAML",
        )
    })?;
    let document = documents
        .iter()
        .find(|document| {
            document.string("kind") == Some("License")
                && document
                    .string("apiVersion")
                    .is_some_and(|version| version.starts_with("kots.io/"))
        })
        .ok_or_else(|| {
            invalid(
                None,
                "no `kind: License` document with `apiVersion: kots.io/...`",
            )
        })?;
    let (spec_key, spec) = document
        .entry("spec")
        .ok_or_else(|| invalid(Some(document.line), "License has no `spec`"))?;
    if !matches!(spec.value, Value::Mapping(_)) {
        return Err(invalid(Some(spec.line), "`spec` is not a mapping"));
    }
    let license_id = match spec.entry("licenseID") {
        Some((
            _,
            Node {
                value: Value::String(id),
                ..
            },
        )) if !id.trim().is_empty() => SecretString::new(id.trim()),
        Some((
            _,
            value @ Node {
                value: Value::String(_) | Value::Null,
                ..
            },
        )) => return Err(invalid(Some(value.line), "`spec.licenseID` is empty")),
        Some((_, value)) => {
            return Err(invalid(
                Some(value.line),
                "`spec.licenseID` is not a string",
            ));
        }
        None => {
            return Err(invalid(
                Some(spec_key.line),
                "License has no `spec.licenseID`",
            ));
        }
    };
    let app_slug = match spec.entry("appSlug") {
        Some((
            _,
            Node {
                value: Value::String(slug),
                ..
            },
        )) if crate::path::is_valid_slug(slug) => slug.clone(),
        Some((_, value)) => {
            return Err(invalid(
                Some(value.line),
                "`spec.appSlug` must be lowercase letters, digits and dashes",
            ));
        }
        None => {
            return Err(invalid(
                Some(spec_key.line),
                "License has no `spec.appSlug`",
            ));
        }
    };
    let expiry = spec
        .entry("entitlements")
        .and_then(|(_, entitlements)| entitlements.entry("expires_at"))
        .and_then(|(_, expires_at)| expires_at.entry("value"))
        .map(|(_, value)| value);
    let expires_at = match expiry {
        None
        | Some(Node {
            value: Value::Null, ..
        }) => None,
        Some(Node {
            value: Value::String(text),
            ..
        }) if text.trim().is_empty() => None,
        Some(Node {
            value: Value::String(text),
            line,
        }) => {
            OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
                invalid(
                    Some(*line),
                    "`spec.entitlements.expires_at.value` is not an RFC 3339 time",
                )
            })?;
            Some(text.trim().to_string())
        }
        Some(value) => {
            return Err(invalid(
                Some(value.line),
                "`spec.entitlements.expires_at.value` is not a string",
            ));
        }
    };
    Ok(LicenseFile {
        license_id,
        app_slug,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "the-id-7Qx";

    fn error(text: &str) -> String {
        parse_license("license.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_license_document_among_others() {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\napiVersion: kots.io/v1beta1\nkind: License\nspec:\n  appSlug: my-app\n  licenseID: {ID}\n  entitlements:\n    expires_at:\n      value: \"2030-01-01T00:00:00Z\"\n"
        );
        let license = parse_license("license.yaml", &text).unwrap();
        assert_eq!(license.license_id.expose(), ID);
        assert_eq!(license.app_slug, "my-app");
        assert_eq!(license.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
    }

    #[test]
    fn problems_name_the_file_and_line_and_never_quote_the_id() {
        let head = "# a comment\napiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n";
        for (body, line, problem) in [
            (
                format!("  appSlug: my-app\n  licenseID: [{ID}\n"),
                8,
                "not valid YAML",
            ),
            ("  appSlug: my-app\n".to_string(), 6, "no `spec.licenseID`"),
            (format!("  licenseID: {ID}\n"), 6, "no `spec.appSlug`"),
            (
                format!("  licenseID: {ID}\n  appSlug: My_App\n"),
                8,
                "`spec.appSlug` must be",
            ),
            (
                format!(
                    "  licenseID: {ID}\n  appSlug: a\n  entitlements:\n    expires_at:\n      value: soon {ID}\n"
                ),
                11,
                "RFC 3339",
            ),
            (
                "  licenseID: \"\"\n  appSlug: a\n".to_string(),
                7,
                "is empty",
            ),
            (
                "  licenseID: [1]\n  appSlug: a\n".to_string(),
                7,
                "not a string",
            ),
        ] {
            let message = error(&format!("{head}{body}"));
            assert!(
                message.starts_with(&format!("license.yaml:{line}: ")) && message.contains(problem),
                "{message}"
            );
            assert!(!message.contains(ID), "{message}");
        }
        let message = error("apiVersion: kots.io/v1beta1\nkind: License\n");
        assert!(
            message.starts_with("license.yaml:1: ") && message.contains("no `spec`"),
            "{message}"
        );
        let message = error("kind: ConfigMap\n");
        assert!(
            message.starts_with("license.yaml: no `kind: License`"),
            "{message}"
        );
    }
}
