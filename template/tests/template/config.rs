//! Config evaluation: reference order, cycles, value else default, read-only items recomputed,
//! when/hidden/required, every item type.

use std::sync::Arc;

use windlass_kots::resources::Config;
use windlass_template::config::{ConfigError, evaluate, missing_required};
use windlass_template::config_values::parse_config_values;

use crate::support::{FixedEntropy, context};

/// The Config in `yaml`, read as windlass reads release files: only `true`/`false` spellings are
/// YAML booleans (`yes`, `no`, `on`, `off` stay strings).
fn config(yaml: &str) -> Config {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let value: serde_json::Value =
        serde_saphyr::from_str_with_options(yaml, options).expect("test Config parses");
    windlass_kots::resources::from_value(&value).expect("test Config decodes")
}

fn values(yaml: &str) -> windlass_template::config_values::GivenValues {
    parse_config_values("values.yaml", yaml).expect("test ConfigValues parse")
}

/// The evaluated item `name`.
fn item<'a>(
    evaluated: &'a windlass_template::config::EvaluatedConfig,
    name: &str,
) -> &'a windlass_template::config::EvaluatedItem {
    evaluated
        .items
        .iter()
        .find(|item| item.name == name)
        .unwrap_or_else(|| panic!("no item {name}"))
}

const NO_VALUES: &str = "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values: {}\n";

const EVERY_TYPE: &str = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: main
      title: Main settings
      items:
        - name: url
          type: text
          default: 'https://repl{{ ConfigOption "host" }}:repl{{ ConfigOption "port" }}'
          readonly: true
        - name: host
          title: Host name
          type: text
          default: example.test
        - name: port
          type: text
          value: "8080"
        - name: notes
          type: textarea
          default: "line one"
        - name: admin_password
          type: password
          required: true
        - name: tls
          type: bool
          default: true
        - name: mode
          type: radio
          default: fast
          items:
            - name: fast
            - name: safe
        - name: size
          type: dropdown
          value: small
          items:
            - name: small
            - name: large
        - name: legacy
          type: select_one
          default: a
          items:
            - name: a
        - name: cert
          type: file
          filename: cert.pem
        - name: heading
          type: heading
          title: Advanced
        - name: info
          type: label
          value: 'host is repl{{ ConfigOption "host" }}'
"#;

#[test]
fn every_item_type_gets_its_effective_value() {
    let given = values(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    host:\n      value: shop.test\n    admin_password:\n      valuePlaintext: pw\n    tls:\n      value: \"0\"\n    size:\n      value: large\n    cert:\n      value: Y2VydA==\n      filename: mine.pem\n    url:\n      value: ignored-for-readonly\n    info:\n      value: ignored-for-label\n",
    );
    let evaluated = evaluate(
        &config(EVERY_TYPE),
        &given,
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect("evaluates");
    let effective = |name: &str| {
        evaluated
            .items
            .iter()
            .find(|item| item.name == name)
            .map(|item| item.value.effective().to_string())
            .unwrap_or_else(|| panic!("no item {name}"))
    };
    assert_eq!(effective("url"), "https://shop.test:8080");
    assert_eq!(effective("host"), "shop.test");
    assert_eq!(effective("port"), "8080");
    assert_eq!(effective("notes"), "line one");
    assert_eq!(effective("admin_password"), "pw");
    assert_eq!(effective("tls"), "0");
    assert_eq!(effective("mode"), "fast");
    assert_eq!(effective("size"), "large");
    assert_eq!(effective("legacy"), "a");
    assert_eq!(effective("cert"), "Y2VydA==");
    assert_eq!(effective("heading"), "");
    assert_eq!(effective("info"), "host is shop.test");
    let cert = item(&evaluated, "cert");
    assert_eq!(cert.value.filename, "mine.pem");
    // References first: url after host and port, info after host.
    let position = |name: &str| {
        evaluated
            .order
            .iter()
            .position(|n| n == name)
            .expect("in order")
    };
    assert!(position("url") > position("host") && position("url") > position("port"));
    assert!(position("info") > position("host"));
    assert!(missing_required(&evaluated).is_empty());
}

#[test]
fn a_user_value_of_empty_falls_back_to_the_default() {
    let given = values(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    host:\n      value: \"\"\n",
    );
    let evaluated = evaluate(
        &config(EVERY_TYPE),
        &given,
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect("evaluates");
    let host = item(&evaluated, "host");
    assert_eq!(host.value.effective(), "example.test");
}

#[test]
fn required_items_without_a_value_are_listed_with_group_and_title() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: db
      title: Database
      items:
        - name: db_password
          title: Database password
          type: password
          required: true
        - name: db_host
          type: text
          required: true
          default: localhost
        - name: hidden_one
          type: text
          required: true
          hidden: true
        - name: off_one
          type: text
          required: true
          when: 'repl{{ ConfigOptionEquals "db_host" "elsewhere" }}'
    - name: extra
      when: "false"
      items:
        - name: in_hidden_group
          type: text
          required: true
    - name: other
      items:
        - name: api_key
          title: API key
          type: text
          required: true
"#;
    let evaluated = evaluate(
        &config(yaml),
        &values(NO_VALUES),
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect("evaluates");
    let missing: Vec<(String, String, String)> = missing_required(&evaluated)
        .into_iter()
        .map(|item| (item.name, item.title, item.group_title))
        .collect();
    assert_eq!(
        missing,
        [
            (
                "db_password".into(),
                "Database password".into(),
                "Database".into()
            ),
            ("api_key".into(), "API key".into(), "other".into()),
        ]
    );
}

#[test]
fn a_cycle_of_references_is_an_error_naming_it() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: g
      items:
        - name: free
          type: text
          default: x
        - name: a
          type: text
          default: 'repl{{ ConfigOption "b" }}'
        - name: b
          type: text
          value: '{{repl ConfigOptionData "a" }}'
"#;
    let error = evaluate(
        &config(yaml),
        &values(NO_VALUES),
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect_err("a cycle");
    assert_eq!(
        error,
        ConfigError::Cycle {
            cycle: "a -> b -> a".into()
        }
    );
}

#[test]
fn hidden_and_when_false_items_still_answer_config_option() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: g
      items:
        - name: toggled_off
          type: text
          when: "false"
          value: "off"
        - name: secret_default
          type: text
          hidden: true
          default: "d"
        - name: uses
          type: label
          value: 'repl{{ ConfigOption "toggled_off" }}-repl{{ ConfigOption "secret_default" }}'
"#;
    let evaluated = evaluate(
        &config(yaml),
        &values(NO_VALUES),
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect("evaluates");
    let uses = item(&evaluated, "uses");
    assert_eq!(uses.value.effective(), "off-d");
}

#[test]
fn a_read_only_random_value_is_recomputed_and_an_editable_one_kept_from_the_values() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: g
      items:
        - name: generated
          type: text
          readonly: true
          value: '{{repl RandomString 8 }}'
        - name: kept
          type: password
          value: '{{repl RandomString 8 }}'
"#;
    let given = values(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    generated:\n      value: from-file\n    kept:\n      value: from-file\n",
    );
    let evaluated =
        evaluate(&config(yaml), &given, &context(&[]), FixedEntropy::new()).expect("evaluates");
    let generated = item(&evaluated, "generated");
    let kept = item(&evaluated, "kept");
    assert_eq!(generated.value.effective().len(), 8);
    assert_ne!(generated.value.effective(), "from-file");
    assert_eq!(kept.value.effective(), "from-file");
}

#[test]
fn a_failing_default_becomes_empty_with_a_warning_as_in_kots() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: g
      items:
        - name: broken
          type: text
          default: '{{repl Div 1 0 }}'
"#;
    let evaluated = evaluate(
        &config(yaml),
        &values(NO_VALUES),
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect("evaluates");
    assert_eq!(evaluated.items[0].value.effective(), "");
    assert_eq!(evaluated.warnings.len(), 1, "{:?}", evaluated.warnings);
    assert!(evaluated.warnings[0].contains("config item broken default"));
}

#[test]
fn value_plaintext_is_for_password_items_only() {
    let given = values(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    host:\n      valuePlaintext: x\n",
    );
    let error = evaluate(
        &config(EVERY_TYPE),
        &given,
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("valuePlaintext is for password items"),
        "{error}"
    );
}

#[test]
fn yaml_booleans_in_default_and_value_are_one_and_zero() {
    let yaml = "apiVersion: kots.io/v1beta1\nkind: Config\nspec:\n  groups:\n    - name: g\n      items:\n        - name: t\n          type: bool\n          default: true\n        - name: f\n          type: bool\n          value: false\n";
    let evaluated = evaluate(
        &config(yaml),
        &values(NO_VALUES),
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect("evaluates");
    assert_eq!(evaluated.items[0].value.effective(), "1");
    assert_eq!(evaluated.items[1].value.effective(), "0");
    let _ = Arc::new(());
}

#[test]
fn a_config_over_the_item_limit_is_refused() {
    let mut yaml = String::from(
        "apiVersion: kots.io/v1beta1\nkind: Config\nspec:\n  groups:\n    - name: g\n      items:\n",
    );
    for index in 0..2_001 {
        yaml.push_str(&format!(
            "        - name: item{index}\n          type: text\n"
        ));
    }
    let error = evaluate(
        &config(&yaml),
        &values(NO_VALUES),
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect_err("too many");
    assert_eq!(
        error.to_string(),
        "the Config has 2001 items, over the limit of 2000"
    );
}

#[test]
fn an_item_built_from_a_password_is_a_password_too() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: db
      title: Database
      items:
        - name: db_password
          type: password
        - name: db_url
          type: text
          hidden: true
          value: 'postgres://app:repl{{ ConfigOption "db_password" }}@db/app'
        - name: db_env
          type: text
          default: 'DATABASE_URL=repl{{ ConfigOption "db_url" }}'
        - name: db_host
          type: text
          default: 'db'
"#;
    let given = values(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    db_password:\n      valuePlaintext: pw-9\n",
    );
    let evaluated =
        evaluate(&config(yaml), &given, &context(&[]), FixedEntropy::new()).expect("evaluates");
    let item = |name: &str| {
        evaluated
            .items
            .iter()
            .find(|item| item.name == name)
            .map(|item| item.value.clone())
            .unwrap_or_else(|| panic!("no item {name}"))
    };
    assert_eq!(item("db_url").effective(), "postgres://app:pw-9@db/app");
    assert!(item("db_url").is_password(), "read the password");
    assert!(item("db_env").is_password(), "read an item built from it");
    assert!(!item("db_host").is_password());

    // A file reading the derived item is marked as holding a password.
    let (output, usage) = crate::support::render_in(
        &context(
            &evaluated
                .items
                .iter()
                .map(|item| (item.name.as_str(), item.value.clone()))
                .collect::<Vec<_>>(),
        ),
        r#"url: {{repl ConfigOption "db_url" }}"#,
    );
    assert_eq!(output.expect("renders"), "url: postgres://app:pw-9@db/app");
    assert_eq!(
        usage.password_items().into_iter().collect::<Vec<_>>(),
        ["db_url"]
    );
}

#[test]
fn an_item_holding_the_local_registry_secret_or_a_filename_built_from_a_password_is_a_password() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: main
      title: Main
      items:
        - name: db_password
          type: password
        - name: pull_secret
          type: text
          hidden: true
          value: 'repl{{ LocalRegistryImagePullSecret }}'
        - name: cert
          type: file
          filename: 'cert-repl{{ ConfigOption "db_password" }}.pem'
"#;
    let given = values(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    db_password:\n      valuePlaintext: pw-9\n",
    );
    let mut with_registry = context(&[]);
    with_registry.local_registry = Some(windlass_template::LocalRegistry {
        host: "registry.example.test".into(),
        namespace: "acme".into(),
        docker_config: windlass_template::Credential("{\"auths\":{}}".into()),
    });
    let evaluated =
        evaluate(&config(yaml), &given, &with_registry, FixedEntropy::new()).expect("evaluates");
    let item = |name: &str| {
        evaluated
            .items
            .iter()
            .find(|item| item.name == name)
            .map(|item| item.value.clone())
            .unwrap_or_else(|| panic!("no item {name}"))
    };
    assert!(!item("pull_secret").effective().is_empty());
    assert!(
        item("pull_secret").is_password(),
        "holds the registry password"
    );
    assert_eq!(item("cert").filename, "cert-pw-9.pem");
    assert!(
        item("cert").is_password(),
        "its file name holds the password"
    );
}

/// A file item's value given as a YAML block (`value: |`) ends in a line break, and one wrapped
/// as `base64` wraps it has several: Go's decoder skips them, so `ConfigOptionData` still answers
/// the file's content.
#[test]
fn a_file_value_with_line_breaks_is_decoded() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: g
      items:
        - name: block
          type: file
        - name: wrapped
          type: file
        - name: contents
          type: label
          value: '{{repl ConfigOptionData "block" }}+{{repl ConfigOptionData "wrapped" }}'
"#;
    let given = values(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    block:\n      value: |\n        aGVsbG8=\n    wrapped:\n      value: \"d29y\\r\\nbGQ=\\r\\n\"\n",
    );
    let evaluated =
        evaluate(&config(yaml), &given, &context(&[]), FixedEntropy::new()).expect("evaluates");
    let contents = item(&evaluated, "contents");
    assert_eq!(contents.value.effective(), "hello+world");
    assert!(evaluated.warnings.is_empty(), "{:?}", evaluated.warnings);
}

/// `when` is a QuotedBool: KOTS reads its kinds as YAML 1.1, where an unquoted `no`, `off`, `n`
/// (and `yes`, `on`, `y`, in lower, Title or UPPER case) is a boolean, so `when: no` hides the
/// item or group. Other spellings stay strings, and only `false` hides.
#[test]
fn yaml_1_1_booleans_in_when_are_booleans() {
    let yaml = r#"
apiVersion: kots.io/v1beta1
kind: Config
spec:
  groups:
    - name: hidden_group
      when: Off
      items:
        - name: in_hidden_group
          type: text
    - name: g
      items:
        - name: when_no
          type: text
          when: no
        - name: when_upper_n
          type: text
          when: N
        - name: when_off
          type: text
          when: OFF
        - name: when_yes
          type: text
          when: Yes
        - name: when_on
          type: text
          when: on
        - name: when_y
          type: text
          when: y
        - name: when_mixed_case
          type: text
          when: nO
        - name: when_zero
          type: text
          when: 0
"#;
    let evaluated = evaluate(
        &config(yaml),
        &values(NO_VALUES),
        &context(&[]),
        FixedEntropy::new(),
    )
    .expect("evaluates");
    let shown: Vec<(&str, bool)> = evaluated
        .items
        .iter()
        .map(|item| (item.name.as_str(), item.shown))
        .collect();
    assert_eq!(
        shown,
        [
            ("in_hidden_group", false),
            ("when_no", false),
            ("when_upper_n", false),
            ("when_off", false),
            ("when_yes", true),
            ("when_on", true),
            ("when_y", true),
            ("when_mixed_case", true),
            ("when_zero", false),
        ]
    );
}
