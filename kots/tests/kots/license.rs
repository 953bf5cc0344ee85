//! [`windlass_kots::parse_license`] and [`windlass_kots::read_license_file`]: every problem names
//! the file and line, and no message quotes the license ID.

use windlass_kots::{LicenseError, parse_license, read_license_file};

const ID: &str = "the-id-7Qx";

fn error(text: &str) -> String {
    let error = parse_license("license.yaml", text).unwrap_err();
    let message = error.to_string();
    assert!(!message.contains(ID), "{message}");
    assert!(!format!("{error:?}").contains(ID), "{error:?}");
    message
}

#[test]
fn reads_every_field_trimmed() {
    let text = format!(
        "apiVersion: kots.io/v1beta1\nkind: License\nspec:\n  appSlug: my-app\n  licenseID: \" {ID} \"\n  licenseSequence: 7\n  entitlements:\n    expires_at:\n      value: \" 2030-01-01T00:00:00Z \"\n"
    );
    let license = parse_license("license.yaml", &text).unwrap();
    assert_eq!(license.license_id.expose(), ID);
    assert_eq!(license.app_slug, "my-app");
    assert_eq!(license.sequence, 7);
    assert_eq!(license.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
    assert!(!format!("{license:?}").contains(ID));
    let bare = parse_license(
        "license.yaml",
        &format!("apiVersion: kots.io/v1beta1\nkind: License\nspec:\n  appSlug: a\n  licenseID: {ID}\n  entitlements:\n    expires_at:\n      value: \"\"\n"),
    )
    .unwrap();
    assert_eq!((bare.sequence, bare.expires_at), (0, None));
}

#[test]
fn problems_name_the_file_and_line_and_never_quote_the_id() {
    let head =
        "# a comment\napiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n";
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
            format!("  licenseID: {ID}\n  appSlug: a\n  licenseSequence: x{ID}\n"),
            9,
            "`spec.licenseSequence` is not an integer",
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
        (
            format!("  licenseID: {ID}\n  licenseID: {ID}\n  appSlug: a\n"),
            8,
            "not valid YAML",
        ),
    ] {
        let message = error(&format!("{head}{body}"));
        assert!(
            message.starts_with(&format!("license file license.yaml:{line}: "))
                && message.contains(problem),
            "{message}"
        );
    }
    let message = error("apiVersion: kots.io/v1beta1\nkind: License\n");
    assert!(
        message.starts_with("license file license.yaml:1: ") && message.contains("no `spec`"),
        "{message}"
    );
    let message = error("kind: ConfigMap\n");
    assert!(
        message.starts_with("license file license.yaml: no `kind: License`"),
        "{message}"
    );
}

#[test]
fn a_license_file_holding_other_documents_is_refused() {
    let text = format!(
        "apiVersion: kots.io/v1beta1\nkind: License\nspec:\n  appSlug: a\n  licenseID: {ID}\n---\n# hidden\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
    );
    let message = error(&text);
    assert_eq!(
        message,
        "license file license.yaml:8: a license file may hold only its License, but it also holds \
         Deployment/web (document 2, line 8), ConfigMap/settings (document 3, line 14): move them to a file of their own"
    );
}

#[test]
fn another_document_named_with_the_license_id_is_not_quoted() {
    let text = format!(
        "apiVersion: kots.io/v1beta1\nkind: License\nspec:\n  appSlug: a\n  licenseID: {ID}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x{ID}\n"
    );
    let message = error(&text);
    assert!(
        message.contains("Secret/(withheld: holds the license ID) (document 2, line 7)"),
        "{message}"
    );
}

#[test]
fn unreadable_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let error = read_license_file(&missing).unwrap_err();
    assert!(matches!(error, LicenseError::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with(&format!("license file {}: ", missing.display())),
        "{error}"
    );
    let big = dir.path().join("big.yaml");
    let line = format!("# {ID}\n");
    std::fs::write(&big, line.repeat(1024 * 1024 / line.len() + 1)).unwrap();
    let message = read_license_file(&big).unwrap_err().to_string();
    assert!(
        message.contains("larger than 1 MiB") && !message.contains(ID),
        "{message}"
    );
    let aliases = dir.path().join("bomb.yaml");
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 0..12 {
        let prev = if level == 0 {
            "a".to_string()
        } else {
            format!("l{}", level - 1)
        };
        bomb.push_str(&format!("l{level}: &l{level} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    std::fs::write(&aliases, bomb).unwrap();
    let message = read_license_file(&aliases).unwrap_err().to_string();
    assert!(message.contains("not valid YAML"), "{message}");
}
