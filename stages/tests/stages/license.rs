//! `license::read_license` (the one License reader, `windlass_kots::read_license_file`, plus the
//! fingerprint) on the licenses under `fixtures/licenses/`. Every one of them holds the
//! same license ID ([`LICENSE_ID`]) somewhere — in `licenseID`, a misspelt key, a wrong field — and
//! no error message (`Display` or `Debug`) may ever quote it. The good license checks every field
//! and the keyed fingerprint.

use std::fs;
use std::path::Path;

use windlass_engine::License;
use windlass_stages::license::{LICENSE_ID_PURPOSE, read_license};
use windlass_state::{FingerprintKey, SecretString};

use crate::support::{LICENSE_ID, assert_no_license_id_in, fixture, temp_dir};

fn key(byte: u8) -> FingerprintKey {
    FingerprintKey::from_bytes([byte; 32])
}

fn read(path: &Path) -> License {
    read_license(path, &key(7)).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Reads `path` and checks that it fails with a message naming the file (and `line`, when given)
/// and containing every string of `expected`, and that neither `Display` nor `Debug` of the error
/// quotes the ID.
fn check(path: &Path, line: Option<usize>, expected: &[&str]) {
    let contents = fs::read(path).expect("read the fixture");
    assert!(
        contents
            .windows(LICENSE_ID.len())
            .any(|window| window == LICENSE_ID.as_bytes()),
        "{}: the fixture must hold the license ID for this test to mean anything",
        path.display()
    );
    let error = match read_license(path, &key(7)) {
        Ok(_) => panic!(
            "{}: read_license succeeded, expected an error",
            path.display()
        ),
        Err(error) => error,
    };
    let message = error.to_string();
    let at = line.map(|line| format!(":{line}")).unwrap_or_default();
    let prefix = format!("license file {}{at}: ", path.display());
    assert!(
        message.starts_with(&prefix),
        "{message:?} does not start with {prefix:?}"
    );
    for wanted in expected {
        assert!(
            message.contains(wanted),
            "{message:?} does not contain {wanted:?}"
        );
    }
    assert_no_license_id_in(&message);
    assert_no_license_id_in(&format!("{error:?}"));
}

#[test]
fn bad_licenses_fail_without_quoting_the_license_id() {
    let cases: &[(&str, Option<usize>, &str)] = &[
        (
            "no-license-id.yaml",
            Some(5),
            "License has no `spec.licenseID`",
        ),
        (
            "license-id-not-string.yaml",
            Some(6),
            "`spec.licenseID` is not a string",
        ),
        ("no-app-slug.yaml", Some(5), "License has no `spec.appSlug`"),
        (
            "bad-app-slug.yaml",
            Some(7),
            "`spec.appSlug` must be lowercase letters, digits and dashes",
        ),
        (
            "bad-expires-at.yaml",
            Some(10),
            "`spec.entitlements.expires_at.value` is not an RFC 3339 time",
        ),
        (
            "bad-sequence.yaml",
            Some(8),
            "`spec.licenseSequence` is not an integer",
        ),
        (
            "not-a-license.yaml",
            None,
            "no `kind: License` document with `apiVersion: kots.io/...`",
        ),
        ("invalid-yaml.yaml", Some(6), "not valid YAML"),
        ("duplicate-key.yaml", Some(7), "not valid YAML"),
        ("bad-escape.yaml", Some(6), "not valid YAML"),
        (
            "with-deployment.yaml",
            Some(9),
            "a license file may hold only its License, but it also holds \
             Deployment/web (document 2, line 9), ConfigMap/settings (document 3, line 14)",
        ),
    ];
    for (file, line, expected) in cases {
        check(&fixture(&format!("licenses/{file}")), *line, &[expected]);
    }
}

#[test]
fn oversized_and_missing_license_files_fail_without_quoting_the_license_id() {
    let dir = temp_dir();
    let big = dir.path().join("big.yaml");
    let line = format!("# {LICENSE_ID}\n");
    fs::write(&big, line.repeat(1024 * 1024 / line.len() + 1)).expect("write");
    check(&big, None, &["larger than 1 MiB"]);

    let missing = dir.path().join("missing.yaml");
    let error = read_license(&missing, &key(7)).expect_err("a missing file is an error");
    assert!(
        error
            .to_string()
            .starts_with(&format!("license file {}: ", missing.display())),
        "{error}"
    );
}

#[test]
fn good_license_is_read_and_fingerprinted() {
    let path = fixture("licenses/good.yaml");
    let license = read(&path);
    assert_eq!(license.app_slug, "example-app");
    assert_eq!(license.sequence, 7);
    assert_eq!(license.expires_at.as_deref(), Some("2031-01-02T03:04:05Z"));
    assert_eq!(
        license.license_id.expose(),
        LICENSE_ID,
        "surrounding whitespace is trimmed"
    );

    let fingerprint = &license.fingerprint;
    let hex = fingerprint
        .strip_prefix("fp1:")
        .unwrap_or_else(|| panic!("{fingerprint} does not start with fp1:"));
    assert_eq!(hex.len(), 32, "{fingerprint}");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{fingerprint} is not lowercase hex"
    );
    assert_eq!(
        *fingerprint,
        key(7).fingerprint(LICENSE_ID_PURPOSE, &SecretString::new(LICENSE_ID))
    );
    assert_eq!(
        *fingerprint,
        read(&fixture("good/release/userdata/license.yaml")).fingerprint,
        "the same ID has the same fingerprint under the same key"
    );
    let other_key = read_license(&path, &key(8)).expect("read").fingerprint;
    assert_ne!(*fingerprint, other_key, "the fingerprint is keyed");

    let record = license.record();
    assert_eq!(record.fingerprint, *fingerprint);
    let recorded = serde_json::to_string(&record).expect("encode");
    assert_no_license_id_in(&recorded);
    assert_no_license_id_in(&format!("{license:?}"));
}

#[test]
fn optional_license_fields_may_be_absent() {
    let license = read(&fixture("licenses/no-expiry.yaml"));
    assert_eq!(license.expires_at, None, "an empty expiry is no expiry");
    assert_eq!(license.sequence, 0, "a missing sequence is 0");
    assert_eq!(license.app_slug, "example-app");
}
