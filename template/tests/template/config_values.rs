//! ConfigValues files: KOTS's format, strings only, clear errors.

use windlass_template::config_values::parse_config_values;

#[test]
fn reads_values_plaintext_passwords_and_filenames() {
    let given = parse_config_values(
        "v.yaml",
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    a:\n      value: x\n    b:\n      valuePlaintext: pw\n    c:\n      value: Zg==\n      filename: f.txt\n    d: {}\n",
    )
    .expect("parses");
    assert_eq!(given.values["a"].value.as_deref(), Some("x"));
    assert!(given.values["b"].plaintext);
    assert_eq!(given.values["c"].filename.as_deref(), Some("f.txt"));
    assert_eq!(given.values["d"].value, None);
}

#[test]
fn refuses_non_strings_other_kinds_and_unknown_fields() {
    let cases = [
        (
            "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    port:\n      value: 8080\n",
            "config values file v.yaml: spec.values.port.value must be a string (quote it)",
        ),
        (
            "apiVersion: kots.io/v1beta1\nkind: Config\n",
            "config values file v.yaml: not a KOTS ConfigValues (apiVersion: kots.io/v1beta1, kind: ConfigValues)",
        ),
        (
            "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    a:\n      valu: x\n",
            "config values file v.yaml: spec.values.a: unknown field valu",
        ),
        ("a: [", "config values file v.yaml: not valid YAML"),
    ];
    for (text, want) in cases {
        let error = parse_config_values("v.yaml", text).expect_err("refused");
        assert!(error.to_string().starts_with(want), "{error} (want {want})");
    }
}
