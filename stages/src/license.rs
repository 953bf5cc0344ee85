//! Reading a KOTS `License` document. The license ID is a credential: it is wrapped in a
//! [`SecretString`] the moment it is read, errors never quote it, and only its keyed fingerprint
//! leaves this module in anything that is recorded.

use std::path::Path;

use windlass_engine::License;
use windlass_state::{FingerprintKey, SecretString};

use crate::documents::parse_documents;

/// The fingerprint purpose for license IDs.
pub const LICENSE_ID_PURPOSE: &str = "license-id";

/// Largest license file accepted.
const MAX_LICENSE_BYTES: u64 = windlass_files::MIB;

/// A problem with a license file. Messages never contain the license ID.
#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    /// The file cannot be read: missing, not a regular file, over the size limit.
    #[error("license file {path}: {problem}")]
    Read {
        /// The file.
        path: String,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// The file is not a valid License.
    #[error("license file {path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// Reads the license at `path` and fingerprints its ID with `key`.
pub fn read_license(path: &Path, key: &FingerprintKey) -> Result<License, LicenseError> {
    let shown = path.display().to_string();
    let invalid = |problem: &str| LicenseError::Invalid {
        path: shown.clone(),
        problem: problem.to_string(),
    };
    let bytes = windlass_files::read_regular_file(path, MAX_LICENSE_BYTES).map_err(|problem| {
        LicenseError::Read {
            path: shown.clone(),
            problem,
        }
    })?;
    // Parse errors would name lines, never values; but the document text itself is dropped here.
    let documents = parse_documents(&shown, &bytes).map_err(|error| LicenseError::Invalid {
        path: shown.clone(),
        problem: format!(
            "document {}, line {}: {}",
            error.document, error.line, error.problem
        ),
    })?;
    let document = documents
        .iter()
        .find(|document| document.is_license())
        .ok_or_else(|| invalid("no `kind: License` document with `apiVersion: kots.io/...`"))?;
    // Everything beside the License would be dropped unseen (a license file is never stored).
    let others: Vec<String> = documents
        .iter()
        .filter(|other| other.index != document.index)
        .map(|other| {
            format!(
                "{}/{} (document {}, line {})",
                other.kind,
                other.name.as_deref().unwrap_or("-"),
                other.index + 1,
                other.line
            )
        })
        .collect();
    if !others.is_empty() {
        return Err(invalid(&format!(
            "a license file may hold only its License, but it also holds {}: move them to a file of their own",
            others.join(", ")
        )));
    }
    let spec = document
        .value
        .get("spec")
        .ok_or_else(|| invalid("License has no `spec`"))?;
    let license_id = match spec.get("licenseID") {
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => {
            SecretString::new(id.trim())
        }
        Some(serde_json::Value::String(_)) | None => {
            return Err(invalid("License has no `spec.licenseID`"));
        }
        Some(_) => return Err(invalid("`spec.licenseID` is not a string")),
    };
    let app_slug = match spec.get("appSlug") {
        Some(serde_json::Value::String(slug)) if is_valid_slug(slug) => slug.clone(),
        Some(serde_json::Value::String(_)) => {
            return Err(invalid(
                "`spec.appSlug` must be lowercase letters, digits and dashes",
            ));
        }
        _ => return Err(invalid("License has no `spec.appSlug`")),
    };
    let sequence = match spec.get("licenseSequence") {
        None | Some(serde_json::Value::Null) => 0,
        Some(value) => value
            .as_i64()
            .ok_or_else(|| invalid("`spec.licenseSequence` is not an integer"))?,
    };
    let expires_at = match spec.pointer("/entitlements/expires_at/value") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) if text.trim().is_empty() => None,
        Some(serde_json::Value::String(text)) => {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    invalid("`spec.entitlements.expires_at.value` is not an RFC 3339 time")
                })?;
            Some(text.clone())
        }
        Some(_) => {
            return Err(invalid(
                "`spec.entitlements.expires_at.value` is not a string",
            ));
        }
    };
    let fingerprint = key.fingerprint(LICENSE_ID_PURPOSE, &license_id);
    Ok(License {
        app_slug,
        license_id,
        sequence,
        expires_at,
        fingerprint,
    })
}

fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 253
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
