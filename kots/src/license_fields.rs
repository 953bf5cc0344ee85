//! The fields of a License as KOTS's `LicenseFieldValue` prints them (`kots pkg/template/
//! license_context.go`): the built-in fields by their JSON names (booleans as `true`/`false`,
//! `endpoint` defaulting to `https://replicated.app`), then every entitlement's `value` printed as
//! Go's `%v`. The license ID is never among them: it is a credential.

use std::collections::BTreeMap;

/// Built-in string fields of `License.spec`.
const STRING_FIELDS: [&str; 8] = [
    "appSlug",
    "channelID",
    "channelName",
    "customerEmail",
    "customerName",
    "licenseType",
    "replicatedProxyDomain",
    "endpoint",
];

/// Built-in bool fields of `License.spec`.
const BOOL_FIELDS: [&str; 10] = [
    "isAirgapSupported",
    "isDisasterRecoverySupported",
    "isEmbeddedClusterDownloadEnabled",
    "isEmbeddedClusterMultiNodeEnabled",
    "isGeoaxisSupported",
    "isGitOpsSupported",
    "isIdentityServiceSupported",
    "isSemverRequired",
    "isSnapshotSupported",
    "isSupportBundleUploadSupported",
];

/// The `LicenseFieldValue` answers of the License in `text` (empty when there is none).
pub fn license_fields(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let Ok(documents) = serde_saphyr::from_multiple::<serde_json::Value>(text) else {
        return fields;
    };
    let Some(spec) = documents
        .iter()
        .find(|document| document.get("kind").and_then(|kind| kind.as_str()) == Some("License"))
        .and_then(|license| license.get("spec"))
    else {
        return fields;
    };
    for name in STRING_FIELDS {
        if let Some(value) = spec.get(name) {
            fields.insert(name.to_string(), printed(value));
        }
    }
    fields
        .entry("endpoint".to_string())
        .or_insert_with(|| "https://replicated.app".to_string());
    if let Some(sequence) = spec.get("licenseSequence") {
        fields.insert("licenseSequence".into(), printed(sequence));
    }
    for name in BOOL_FIELDS {
        let value = spec
            .get(name)
            .and_then(|value| value.as_bool())
            .unwrap_or(false);
        fields.insert(name.to_string(), value.to_string());
    }
    fields.insert(
        "IsDisasterRecoverySupported".into(),
        fields["isDisasterRecoverySupported"].clone(),
    );
    if let Some(serde_json::Value::Object(entitlements)) = spec.get("entitlements") {
        for (name, entitlement) in entitlements {
            if let Some(value) = entitlement.get("value") {
                fields.entry(name.clone()).or_insert_with(|| printed(value));
            }
        }
    }
    fields.remove("licenseID");
    fields.remove("licenseId");
    fields
}

/// A value as Go's `%v` prints it (strings as they are).
fn printed(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
