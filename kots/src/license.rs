//! The one reader of KOTS license files, used by the install and by the proxy. A license file holds
//! one `kind: License` document (`apiVersion: kots.io/...`) and nothing else: anything beside it
//! would be dropped unseen, since a license file is never stored. Every YAML node is read with its
//! line, so a problem is reported as `file:line` (the line of the bad value, of the key whose value
//! is missing, or of the YAML error). Messages never quote the file's text: it holds the license
//! ID, which is wrapped in a [`SecretString`] the moment it is read.

use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, Options, Spanned};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use windlass_state::SecretString;

/// Largest license file accepted.
pub const MAX_LICENSE_BYTES: u64 = windlass_files::MIB;

/// A problem with a license file. Messages never contain the license ID nor quote the file.
#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    /// The file cannot be read: missing, not a regular file, over [`MAX_LICENSE_BYTES`], not UTF-8.
    #[error("license file {path}: {problem}")]
    Read {
        /// The file.
        path: String,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// The file is not a valid KOTS License, or holds other documents beside it.
    #[error("license file {path}{}: {problem}", line.map(|line| format!(":{line}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: String,
        /// The line of the problem (from 1), when there is one.
        line: Option<usize>,
        /// What is wrong.
        problem: String,
    },
}

/// A License read from a license file, with its ID held only in memory.
#[derive(Debug)]
pub struct LicenseFile {
    /// `spec.licenseID`, trimmed.
    pub license_id: SecretString,
    /// `spec.appSlug`.
    pub app_slug: String,
    /// `spec.licenseSequence` (0 when absent).
    pub sequence: i64,
    /// `spec.entitlements.expires_at.value` (RFC 3339, trimmed), if set and not empty.
    pub expires_at: Option<String>,
    /// What `LicenseFieldValue` answers, by field name (see [`crate::license_fields()`]); never the
    /// license ID.
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Reads the KOTS license file at `path` (a regular file of at most [`MAX_LICENSE_BYTES`]).
pub fn read_license_file(path: &Path) -> Result<LicenseFile, LicenseError> {
    let shown = path.display().to_string();
    let text = windlass_files::read_regular_text(path, MAX_LICENSE_BYTES).map_err(|problem| {
        LicenseError::Read {
            path: shown.clone(),
            problem,
        }
    })?;
    parse_license(&shown, &text)
}

/// Limits for reading untrusted YAML: no alias bombs, no runaway nesting.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 64;
    budget.max_nodes = 250_000;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

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
    Integer(i64),
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

    fn visit_i64<E>(self, number: i64) -> Result<Value, E> {
        Ok(Value::Integer(number))
    }

    fn visit_i128<E>(self, _: i128) -> Result<Value, E> {
        Ok(Value::OtherScalar)
    }

    fn visit_u64<E>(self, number: u64) -> Result<Value, E> {
        Ok(i64::try_from(number).map_or(Value::OtherScalar, Value::Integer))
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

    /// Whether this is a KOTS License document.
    fn is_license(&self) -> bool {
        self.string("kind") == Some("License")
            && self
                .string("apiVersion")
                .is_some_and(|version| version.starts_with("kots.io/"))
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

/// Reads the License of `text`, the contents of the license file `shown`.
pub fn parse_license(shown: &str, text: &str) -> Result<LicenseFile, LicenseError> {
    let invalid = |line: Option<usize>, problem: &str| LicenseError::Invalid {
        path: shown.to_string(),
        line,
        problem: problem.to_string(),
    };
    // Parse errors are not quoted: they could echo the document's text.
    let documents: Vec<Node> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(|error| {
            invalid(
                error.location().map(|location| location.line() as usize),
                "not valid YAML",
            )
        })?;
    let documents: Vec<(usize, &Node)> = documents
        .iter()
        .filter(|document| !matches!(document.value, Value::Null))
        .enumerate()
        .collect();
    let (position, document) = documents
        .iter()
        .find(|(_, document)| document.is_license())
        .copied()
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
    // Other documents are named by kind and name, unless one of those holds the license ID.
    let withheld = |text: &'_ str| -> String {
        if text.contains(license_id.expose()) {
            "(withheld: holds the license ID)".to_string()
        } else {
            text.to_string()
        }
    };
    let others: Vec<String> = documents
        .iter()
        .filter(|(index, _)| *index != position)
        .map(|(index, other)| {
            format!(
                "{}/{} (document {}, line {})",
                withheld(other.string("kind").unwrap_or("-")),
                withheld(
                    other
                        .entry("metadata")
                        .and_then(|(_, metadata)| metadata.string("name"))
                        .unwrap_or("-")
                ),
                index + 1,
                other.line
            )
        })
        .collect();
    if !others.is_empty() {
        return Err(invalid(
            Some(others_line(&documents, position)),
            &format!(
                "a license file may hold only its License, but it also holds {}: move them to a file of their own",
                others.join(", ")
            ),
        ));
    }
    let app_slug = match spec.entry("appSlug") {
        Some((
            _,
            Node {
                value: Value::String(slug),
                ..
            },
        )) if is_valid_slug(slug) => slug.clone(),
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
    let sequence = match spec.entry("licenseSequence") {
        None
        | Some((
            _,
            Node {
                value: Value::Null, ..
            },
        )) => 0,
        Some((
            _,
            Node {
                value: Value::Integer(sequence),
                ..
            },
        )) => *sequence,
        Some((_, value)) => {
            return Err(invalid(
                Some(value.line),
                "`spec.licenseSequence` is not an integer",
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
        sequence,
        expires_at,
        fields: crate::license_fields::license_fields(text),
    })
}

/// The line of the first document beside the License.
fn others_line(documents: &[(usize, &Node)], license: usize) -> usize {
    documents
        .iter()
        .find(|(index, _)| *index != license)
        .map_or(1, |(_, document)| document.line)
}

/// A KOTS app slug: 1 to 253 lowercase letters, digits and dashes.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 253
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
