//! The effective ConfigValues carried from one install of an app to the next, through the real
//! `windlass` binary: every install writes them to `upstream/userdata/config.yaml` (0600), and the
//! next install of the app starts from the newest completed install's file, so a value generated
//! once with `RandomString` in an editable item's `value` — a password too — stays the same on
//! every later install (as KOTS keeps it), while a read-only item's is generated anew each time
//! and the user's ConfigValues win item by item. The password never reaches the state directory,
//! and the install that carried it replays identical without it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{
    OFFLINE_INSTALL, assert_no_credential_outside_the_output, json, mode_of, payloads_of_type,
    quickstart, run, windlass,
};

const CONFIG: &str = r#"apiVersion: kots.io/v1beta1
kind: Config
metadata:
  name: shop-config
spec:
  groups:
    - name: generated
      title: Generated
      items:
        - name: api_key
          type: text
          value: 'repl{{ RandomString 16 }}'
        - name: db_password
          type: password
          value: 'repl{{ RandomString 20 }}'
        - name: session_salt
          type: text
          readonly: true
          value: 'repl{{ RandomString 12 }}'
        - name: greeting
          type: text
          default: hello
"#;

const MANIFESTS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: shop
data:
  api_key: 'repl{{ ConfigOption "api_key" }}'
  session_salt: 'repl{{ ConfigOption "session_salt" }}'
  greeting: 'repl{{ ConfigOption "greeting" }}'
---
apiVersion: v1
kind: Secret
metadata:
  name: shop-db
stringData:
  password: 'repl{{ ConfigOption "db_password" }}'
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-dsn
data:
  dsn: 'postgres://shop:repl{{ ConfigOption "db_password" }}@db:5432/shop'
"#;

/// A release of app `my-app` (the quickstart's license) with the Config above; `marker` changes
/// the release's digest.
fn release_with(dir: &Path, marker: &str) -> PathBuf {
    let release = dir.join(format!("release-{marker}"));
    std::fs::create_dir_all(release.join("manifests")).unwrap();
    std::fs::create_dir_all(release.join("userdata")).unwrap();
    std::fs::write(
        release.join("kots-app.yaml"),
        format!("apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: Shop {marker}\n"),
    )
    .unwrap();
    std::fs::write(release.join("config.yaml"), CONFIG).unwrap();
    std::fs::write(release.join("manifests/shop.yaml"), MANIFESTS).unwrap();
    std::fs::copy(
        quickstart().join("userdata/license.yaml"),
        release.join("userdata/license.yaml"),
    )
    .unwrap();
    release
}

/// The install's JSON report, with `--out out` and `extra` arguments.
fn install(state: &Path, release: &Path, out: &Path, extra: &[&str]) -> Value {
    let installed = json(run(windlass(state)
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg("--out")
        .arg(out)
        .args(extra)
        .arg(release)));
    assert_eq!(installed["status"], "completed", "{installed:#}");
    installed
}

/// Item → value in the effective ConfigValues an install wrote.
fn effective_values(out: &Path) -> std::collections::BTreeMap<String, String> {
    let path = out.join("upstream/userdata/config.yaml");
    assert_eq!(mode_of(&path), 0o600, "{}", path.display());
    let document: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(document["kind"], "ConfigValues", "{document:#}");
    document["spec"]["values"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, entry)| Some((name.clone(), entry["value"].as_str()?.to_string())))
        .collect()
}

/// The `templates` of the install's `BaseFetched`.
fn templates_recorded(state: &Path, installed: &Value) -> Value {
    let id = installed["install_id"].as_str().unwrap();
    let events = json(run(windlass(state).args(["events", id, "--json"])));
    payloads_of_type(events.as_array().unwrap(), "BaseFetched")[0]["templates"].clone()
}

#[test]
fn generated_values_are_kept_from_one_install_of_the_app_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = install(
        &state,
        &release_with(dir.path(), "1"),
        &dir.path().join("out-1"),
        &[],
    );
    let values_1 = effective_values(&dir.path().join("out-1"));
    assert_eq!(values_1["api_key"].len(), 16, "{values_1:?}");
    assert_eq!(values_1["db_password"].len(), 20, "{values_1:?}");
    assert_eq!(
        values_1.get("greeting"),
        None,
        "a default alone is no value"
    );
    let first_recorded = templates_recorded(&state, &first);
    assert_eq!(first_recorded["carried_from"], Value::Null);

    // Another release of the same app: the editable items' generated values are the same. (It
    // is applied to a directory too: a ConfigMap holding the password gets a keyed digest, as
    // the Secret does.)
    let gitops = dir.path().join("gitops");
    let second = install(
        &state,
        &release_with(dir.path(), "2"),
        &dir.path().join("out-2"),
        &["--target", &format!("dir:{}", gitops.display())],
    );
    let values_2 = effective_values(&dir.path().join("out-2"));
    for item in ["api_key", "db_password"] {
        assert_eq!(values_2[item], values_1[item], "{item}");
    }
    assert_ne!(
        values_2["session_salt"], values_1["session_salt"],
        "a read-only item is rendered anew"
    );
    let rendered =
        std::fs::read_to_string(dir.path().join("out-2/base/manifests/shop-1.yaml")).unwrap();
    assert!(
        rendered.contains(&format!("api_key: '{}'", values_1["api_key"])),
        "{rendered}"
    );
    let secret =
        std::fs::read_to_string(dir.path().join("out-2/base/manifests/shop-2.yaml")).unwrap();
    assert!(secret.contains(&values_1["db_password"]), "{secret}");
    let recorded = templates_recorded(&state, &second);
    assert_eq!(
        recorded["carried_from"], first["install_id"],
        "{recorded:#}"
    );
    let carried: Vec<&str> = recorded["carried_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    assert_eq!(carried, ["api_key", "db_password", "session_salt"]);

    // The replay renders with what the install recorded: the carried values but the password
    // (known by fingerprint only, so given and left unchecked, as are the digests of what was
    // applied from it), and the read-only item's draw.
    let replay = run(windlass(&state).args(["replay", second["install_id"].as_str().unwrap()]));
    assert!(
        replay.status.success(),
        "{}{}",
        String::from_utf8_lossy(&replay.stdout),
        String::from_utf8_lossy(&replay.stderr)
    );

    // The user's values win item by item; what they do not name is still carried.
    let given = dir.path().join("values.yaml");
    std::fs::write(
        &given,
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    api_key:\n      value: chosen-by-me\n",
    )
    .unwrap();
    install(
        &state,
        &release_with(dir.path(), "3"),
        &dir.path().join("out-3"),
        &["--config-values", given.to_str().unwrap()],
    );
    let values_3 = effective_values(&dir.path().join("out-3"));
    assert_eq!(values_3["api_key"], "chosen-by-me");
    assert_eq!(values_3["db_password"], values_1["db_password"]);

    let printed = [first.to_string(), second.to_string()].concat();
    assert_no_credential_outside_the_output(
        &state,
        printed.as_bytes(),
        &[values_1["db_password"].as_str()],
    );
}
