//! KOTS templates through the real `windlass` binary: a release whose manifests use KOTS template
//! functions installs end to end with `--config-values` (the rendered text in `base/`, the file as
//! written in `upstream/`, Helm's braces untouched, documents left out by `kots.io/when` and
//! `kots.io/exclude`, the event naming the templated files and the config items each read); a
//! required item without a value, a `kots.io/when` that is not a bool, an unknown function and a
//! missing `--config-values` file each exit 3 before anything is written; a ConfigValues file inside
//! the release is read and never stored.

use std::path::{Path, PathBuf};

use super::{OFFLINE_INSTALL, contains, files_under, json, mode_of, quickstart, run, windlass};

const CONFIG: &str = r#"apiVersion: kots.io/v1beta1
kind: Config
metadata:
  name: shop-config
spec:
  groups:
    - name: network
      title: Network
      items:
        - name: hostname
          title: Public host name
          type: text
          required: true
        - name: replicas
          type: text
          default: "2"
        - name: web_repository
          type: text
          default: quay.io/my-org/web
    - name: features
      title: Optional features
      items:
        - name: enable_cache
          title: Run a cache
          type: bool
          default: "0"
        - name: api_token
          title: API token
          type: password
          required: true
        - name: banner
          type: label
          value: 'Welcome to repl{{ ConfigOption "hostname" }}'
"#;

const WEB: &str = r#"# {{ .Values.comment }} stays: Helm's braces are not KOTS's
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    customer: '{{repl LicenseFieldValue "customerName" | ToLower | replace " " "-" }}'
spec:
  replicas: repl{{ ConfigOption "replicas" }}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: 'repl{{ ConfigOption "web_repository" }}:1'
          env:
            - name: PUBLIC_HOST
              value: '{{repl ConfigOption "hostname" }}'
            - name: BANNER
              value: 'repl{{ ConfigOption "banner" }}'
            - name: HELM_STYLE
              value: "{{ .Values.untouched }}"
{{repl if ConfigOptionEquals "enable_cache" "1" }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cache-settings
data:
  size: 1Gi
{{repl end }}
"#;

const OPTIONAL: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: cache
  annotations:
    kots.io/when: '{{repl ConfigOptionEquals "enable_cache" "1" }}'
spec:
  selector:
    matchLabels:
      app: cache
  template:
    metadata:
      labels:
        app: cache
    spec:
      containers:
        - name: cache
          image: quay.io/my-org/cache:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: always-left-out
  annotations:
    kots.io/exclude: "true"
data: {}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kept
  annotations:
    kots.io/when: "true"
data: {}
"#;

const APPLICATION: &str = r#"apiVersion: kots.io/v1beta1
kind: Application
metadata:
  name: my-app
spec:
  title: 'Shop for {{repl LicenseFieldValue "customerName" }}'
  additionalImages:
    - 'repl{{ ConfigOption "web_repository" }}-tools:3'
"#;

/// A templated release (the quickstart's license in `userdata/`).
fn templated_release() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    std::fs::create_dir_all(release.join("manifests")).unwrap();
    std::fs::create_dir_all(release.join("userdata")).unwrap();
    std::fs::write(release.join("kots-app.yaml"), APPLICATION).unwrap();
    std::fs::write(release.join("config.yaml"), CONFIG).unwrap();
    std::fs::write(release.join("manifests/web.yaml"), WEB).unwrap();
    std::fs::write(release.join("manifests/optional.yaml"), OPTIONAL).unwrap();
    std::fs::copy(
        quickstart().join("userdata/license.yaml"),
        release.join("userdata/license.yaml"),
    )
    .unwrap();
    (dir, release)
}

const TOKEN: &str = "tok-7Hq2Xv9LmP4sKd";

fn values(dir: &Path, entries: &str) -> PathBuf {
    let path = dir.join("values.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n{entries}"),
    )
    .unwrap();
    path
}

fn all_values(dir: &Path) -> PathBuf {
    values(
        dir,
        &format!(
            "    hostname:\n      value: shop.example.test\n    api_token:\n      valuePlaintext: {TOKEN}\n"
        ),
    )
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_templated_release_installs_end_to_end_with_config_values() {
    let (dir, release) = templated_release();
    let state = tempfile::tempdir().unwrap();
    let values = all_values(dir.path());
    let install = json(run(
        install_with_values(state.path(), &values, &release).arg("--json")
    ));
    assert_eq!(install["status"], "completed", "{install}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    let web = std::fs::read_to_string(out.join("base/manifests/web.yaml")).unwrap();
    for wanted in [
        "replicas: 2\n",
        "customer: 'quickstart-customer'",
        "value: 'shop.example.test'",
        "value: 'Welcome to shop.example.test'",
        "value: \"{{ .Values.untouched }}\"",
        "# {{ .Values.comment }} stays",
    ] {
        assert!(
            web.contains(wanted),
            "{wanted:?} not in base/manifests/web.yaml:\n{web}"
        );
    }
    assert!(!web.contains("repl{{") && !web.contains("{{repl"), "{web}");
    // The file as written goes to upstream/.
    let upstream = std::fs::read_to_string(out.join("upstream/manifests/web.yaml")).unwrap();
    assert_eq!(upstream, WEB);
    // `kots.io/when` false and `kots.io/exclude` true leave documents out; `when: "true"` keeps.
    let kustomization = std::fs::read_to_string(out.join("base/kustomization.yaml")).unwrap();
    // The one document left of the file keeps the file's name (windlass's base/ naming).
    assert!(
        kustomization.contains("manifests/optional.yaml"),
        "{kustomization}"
    );
    assert!(!kustomization.contains("optional-"), "{kustomization}");
    let optional = std::fs::read_to_string(out.join("base/manifests/optional.yaml")).unwrap();
    assert!(optional.contains("name: kept"), "{optional}");
    assert!(
        !kustomization.contains("web-2"),
        "the cache ConfigMap is off: {kustomization}"
    );
    let rendered = files_under(&out.join("rendered"));
    let rendered_text: String = rendered
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap_or_default())
        .collect();
    assert!(
        rendered_text.contains("name: web"),
        "rendered/ holds the Deployment"
    );
    assert!(
        !rendered_text.contains("name: cache\n"),
        "the cache is left out of rendered/"
    );

    // The event names the templated files, the config items each read, and what was left out.
    let id = install["install_id"].as_str().unwrap();
    let events = json(run(windlass(state.path()).args(["events", id, "--json"])));
    let fetched = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .expect("a BaseFetched event");
    let templates = &fetched["payload"]["templates"];
    let files: Vec<(String, Vec<String>)> = templates["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            (
                file["path"].as_str().unwrap().to_string(),
                file["config_items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .map(|i| i.as_str().unwrap().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            (
                "kots-app.yaml".to_string(),
                vec!["web_repository".to_string()]
            ),
            (
                "manifests/optional.yaml".to_string(),
                vec!["enable_cache".to_string()]
            ),
            (
                "manifests/web.yaml".to_string(),
                [
                    "banner",
                    "enable_cache",
                    "hostname",
                    "replicas",
                    "web_repository"
                ]
                .map(String::from)
                .to_vec()
            ),
        ]
    );
    let excluded: Vec<(String, u64, String)> = templates["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_string(),
                e["index"].as_u64().unwrap(),
                e["annotation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        excluded,
        [
            (
                "manifests/optional.yaml".to_string(),
                0,
                "kots.io/when".to_string()
            ),
            (
                "manifests/optional.yaml".to_string(),
                1,
                "kots.io/exclude".to_string()
            ),
        ]
    );
    assert!(templates["config_values_fingerprint"].is_string());

    // The templated image is the one probed and rewritten.
    let probed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "ImagesProbed")
        .expect("an ImagesProbed event");
    let images: Vec<&str> = probed["payload"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        ["quay.io/my-org/web-tools:3", "quay.io/my-org/web:1"]
    );
    assert!(
        rendered_text.contains("image: proxy.replicated.com/proxy/my-app/quay.io/my-org/web:1"),
        "{rendered_text}"
    );

    // `windlass show` lists the config items used (names, never values).
    let shown = run(windlass(state.path()).args(["show", id]));
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("templated 3 file(s), config items used: banner, enable_cache, hostname, replicas, web_repository; left out by kots.io/exclude or kots.io/when: manifests/optional.yaml (document 1), manifests/optional.yaml (document 2)"),
        "{shown}"
    );

    // The password value is nowhere in the state directory, nor in what windlass printed.
    for file in files_under(state.path()) {
        if file.starts_with(&out) {
            continue;
        }
        assert!(
            !contains(&windlass_testkit::scannable_bytes(&file), TOKEN),
            "{}",
            file.display()
        );
    }
    assert!(!contains(&serde_json::to_vec(&install).unwrap(), TOKEN));
}

#[test]
fn required_items_without_a_value_exit_3_listing_each_before_anything_is_written() {
    let (dir, release) = templated_release();
    let state = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--out")
        .arg(&out)
        .arg(&release));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for wanted in [
        "required config items have no value",
        r#"hostname ("Public host name" in group "Network")"#,
        r#"api_token ("API token" in group "Optional features")"#,
        "--config-values",
    ] {
        assert!(stderr.contains(wanted), "{stderr:?} lacks {wanted:?}");
    }
    for written in ["upstream", "base", "rendered"] {
        assert!(!out.join(written).exists(), "{written}/ was written");
    }
    // One of the two given: only the other is listed.
    let values = values(dir.path(), "    hostname:\n      value: h.example.test\n");
    let output = run(&mut install_with_values(state.path(), &values, &release));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("api_token") && !stderr.contains("hostname ("),
        "{stderr}"
    );
}

#[test]
fn a_when_annotation_that_is_not_a_bool_exits_3_naming_the_document() {
    let (dir, release) = templated_release();
    std::fs::write(
        release.join("manifests/optional.yaml"),
        OPTIONAL.replace(
            r#"'{{repl ConfigOptionEquals "enable_cache" "1" }}'"#,
            r#"'{{repl ConfigOption "hostname" }}'"#,
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--config-values")
        .arg(all_values(dir.path()))
        .arg(&release));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "manifests/optional.yaml (document 1, line 1): annotation kots.io/when is \"shop.example.test\", not a bool"
        ),
        "{stderr}"
    );
}

#[test]
fn an_unknown_function_exits_3_naming_file_and_line_even_in_a_dead_branch() {
    let (dir, release) = templated_release();
    std::fs::write(
        release.join("manifests/web.yaml"),
        WEB.replace("  size: 1Gi\n", "  size: '{{repl CacheSize }}'\n"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--config-values")
        .arg(all_values(dir.path()))
        .arg(&release));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("manifests/web.yaml:35: function \"CacheSize\" not defined"),
        "{stderr}"
    );
}

#[test]
fn a_config_values_file_that_does_not_exist_is_refused() {
    let (dir, release) = templated_release();
    let state = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-values.yaml");
    let output = run(&mut install_with_values(state.path(), &missing, &release));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("config values file {}", missing.display())),
        "{stderr}"
    );
    assert!(
        files_under(state.path())
            .iter()
            .all(|file| !file.ends_with("log")),
        "nothing recorded"
    );
}

/// KOTS drops a file's own kinds (a `kots.io` Config, ConfigValues, Installation, License)
/// before it renders the rest of the file: the other documents of the file holding the Config
/// are rendered, and an `Installation` of another group (an operator's) is an ordinary
/// document, rendered too.
#[test]
fn the_documents_beside_a_kots_config_and_another_groups_installation_are_rendered() {
    let (dir, release) = templated_release();
    let config = std::fs::read_to_string(release.join("config.yaml")).unwrap();
    std::fs::write(
        release.join("config.yaml"),
        format!(
            "{config}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: beside-config\ndata:\n  host: 'repl{{{{ ConfigOption \"hostname\" }}}}'\n"
        ),
    )
    .unwrap();
    std::fs::write(
        release.join("manifests/operator.yaml"),
        "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  registry: 'repl{{ ConfigOption \"web_repository\" }}'\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let install = json(run(install_with_values(
        state.path(),
        all_values(dir.path()),
        &release,
    )
    .arg("--json")));
    assert_eq!(install["status"], "completed", "{install}");
    let out = PathBuf::from(install["out"].as_str().unwrap());
    let base = |name: &str| std::fs::read_to_string(out.join("base").join(name)).unwrap();
    let beside = files_under(&out.join("base"))
        .into_iter()
        .map(|file| std::fs::read_to_string(file).unwrap())
        .find(|text| text.contains("beside-config"))
        .expect("the ConfigMap beside the Config is in base/");
    assert!(beside.contains("host: 'shop.example.test'"), "{beside}");
    let operator = base("manifests/operator.yaml");
    assert!(
        operator.contains("registry: 'quay.io/my-org/web'"),
        "{operator}"
    );
    // The Config itself is still read as written, with its values applied.
    assert!(!files_under(&out.join("base")).iter().any(|file| {
        std::fs::read_to_string(file)
            .unwrap()
            .contains("kind: Config\n")
    }));
}

/// A name Kubernetes would refuse is refused naming file, document and field; when the file read a
/// password, the name is not quoted (it may be the password), and the install's failure, recorded,
/// holds no password.
#[test]
fn a_refused_name_rendered_from_a_password_is_not_quoted() {
    let (dir, release) = templated_release();
    std::fs::write(
        release.join("manifests/named.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: 'repl{{ ConfigOption \"api_token\" }}'\nstringData:\n  a: b\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = run(&mut install_with_values(
        state.path(),
        all_values(dir.path()),
        &release,
    ));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("manifests/named.yaml (document 1")
            && stderr.contains("`metadata.name` (not shown: the file holds a password value) is not a valid Secret name"),
        "{stderr}"
    );
    super::assert_no_credential_outside_the_output(state.path(), stderr.as_bytes(), &[TOKEN]);
}

/// Values that are not passwords are recorded and rendered into files that are not secrets, so
/// a ConfigValues file holding the license ID is refused before anything is recorded, as a
/// release file holding it is.
#[test]
fn a_config_values_file_holding_the_license_id_is_refused() {
    let (dir, release) = templated_release();
    let state = tempfile::tempdir().unwrap();
    let values = values(
        dir.path(),
        &format!(
            "    hostname:\n      value: {}\n",
            super::QUICKSTART_LICENSE_ID
        ),
    );
    let output = run(&mut install_with_values(state.path(), &values, &release));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "config values file {}: holds the license ID of the license in use",
            values.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(super::QUICKSTART_LICENSE_ID), "{stderr}");
    super::assert_no_credential_outside_the_output(
        state.path(),
        &output.stdout,
        &[super::QUICKSTART_LICENSE_ID],
    );
}

#[test]
fn config_values_in_the_release_are_read_and_never_stored() {
    let (_dir, release) = templated_release();
    std::fs::write(
        release.join("userdata/config.yaml"),
        format!(
            "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    hostname:\n      value: from-userdata.example.test\n    api_token:\n      valuePlaintext: {TOKEN}\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let install = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(&release)));
    let out = PathBuf::from(install["out"].as_str().unwrap());
    let web = std::fs::read_to_string(out.join("base/manifests/web.yaml")).unwrap();
    assert!(web.contains("from-userdata.example.test"), "{web}");
    // What upstream/userdata/config.yaml holds is the effective values, not the file as given.
    let effective = std::fs::read_to_string(out.join("upstream/userdata/config.yaml")).unwrap();
    let effective: serde_json::Value = serde_saphyr::from_str(&effective).unwrap();
    assert_eq!(
        effective["spec"]["values"]["hostname"]["value"], "from-userdata.example.test",
        "{effective:#}"
    );
    assert_eq!(
        effective["spec"]["values"]["replicas"]["default"], "2",
        "{effective:#}"
    );
    assert_password_only_in_the_effective_values(state.path(), TOKEN);
    // Like a license file, it is not part of the release digest: the same values given with
    // --config-values instead give the same digest.
    let values = release.join("../values.yaml");
    std::fs::rename(release.join("userdata/config.yaml"), &values).unwrap();
    let again = json(run(
        install_with_values(state.path(), &values, &release).arg("--json")
    ));
    assert_eq!(again["release_digest"], install["release_digest"]);
}

/// Asserts that `password` is in no file under `state` but the effective ConfigValues the
/// installs wrote to their output (`upstream/userdata/config.yaml`, which the next install of
/// the app starts from), and that those are the user's alone (0600).
fn assert_password_only_in_the_effective_values(state: &Path, password: &str) {
    let mut written = 0;
    for file in files_under(state) {
        if file.ends_with("upstream/userdata/config.yaml") {
            assert_eq!(mode_of(&file), 0o600, "{}", file.display());
            written += 1;
            continue;
        }
        assert!(
            !contains(&windlass_testkit::scannable_bytes(&file), password),
            "{} holds the password value",
            file.display()
        );
    }
    assert!(written > 0, "no effective values under {}", state.display());
}

/// `windlass install --offline --config-values VALUES RELEASE`, for more options to be added.
fn install_with_values(
    state: &Path,
    values: impl AsRef<std::ffi::OsStr>,
    release: &Path,
) -> std::process::Command {
    let mut command = windlass(state);
    command
        .args(OFFLINE_INSTALL)
        .arg("--config-values")
        .arg(values)
        .arg(release);
    command
}

/// The mode bits of `path`'s permissions.
#[test]
fn a_file_holding_a_password_value_is_recorded_by_fingerprint_written_0600_and_replays() {
    let (dir, release) = templated_release();
    // A ConfigMap (not a Secret) whose rendered text holds the password value.
    std::fs::write(
        release.join("manifests/token.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: token\ndata:\n  token: '{{repl ConfigOption \"api_token\" }}'\n  host: 'repl{{ ConfigOption \"hostname\" }}'\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let values = all_values(dir.path());
    let install = json(run(install_with_values(state.path(), &values, &release)
        .arg("--json")
        .arg("--out")
        .arg(&out)));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap().to_string();

    // The files holding it are written 0600 (base/ and rendered/), the others as before.
    for path in [
        "base/manifests/token.yaml",
        "rendered/this-cluster/token-configmap.yaml",
    ] {
        let file = out.join(path);
        assert!(file.exists(), "{path} missing: {:?}", files_under(&out));
        assert!(
            contains(&windlass_testkit::scannable_bytes(&file), TOKEN),
            "{path} holds the rendered password"
        );
        assert_eq!(mode_of(&file), 0o600, "{path}");
    }
    assert_eq!(mode_of(&out.join("base/manifests/web.yaml")), 0o644);
    // The password value is nowhere in the state directory.
    for file in files_under(state.path()) {
        assert!(
            !contains(&windlass_testkit::scannable_bytes(&file), TOKEN),
            "{} holds the password value",
            file.display()
        );
    }
    // Its documents and files are recorded by keyed fingerprint, never as blobs.
    let events = json(run(windlass(state.path()).args([
        "events",
        &install_id,
        "--json",
    ])));
    let payload = |event_type: &str| {
        events
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["type"] == event_type)
            .unwrap_or_else(|| panic!("{event_type} recorded"))["payload"]
            .clone()
    };
    let fetched = payload("BaseFetched");
    let document = fetched["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|document| document["file"] == "manifests/token.yaml")
        .unwrap();
    assert!(document.get("blob").is_none(), "{document}");
    assert!(
        document["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("fp1:")
    );
    let templated = fetched["templates"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["path"] == "manifests/token.yaml")
        .unwrap();
    assert_eq!(templated["holds_password"], true, "{templated}");
    for (event_type, list, path) in [
        ("BaseWritten", "files", "base/manifests/token.yaml"),
        (
            "MidstreamRendered",
            "rendered_files",
            "rendered/this-cluster/token-configmap.yaml",
        ),
    ] {
        let written = payload(event_type);
        let file = written[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|file| file["path"] == path)
            .unwrap_or_else(|| panic!("{path} listed in {event_type}"));
        assert!(file["blob"].is_null(), "{file}");
        assert!(file["fingerprint"].as_str().unwrap().starts_with("fp1:"));
    }

    // `windlass show` lists the item and the file, never the value.
    let shown = run(windlass(state.path()).args(["show", &install_id]));
    let shown_text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown_text.contains("api_token")
            && shown_text.contains("holding password values (recorded by keyed fingerprint, never stored): manifests/token.yaml"),
        "{shown_text}"
    );
    assert!(!shown_text.contains(TOKEN));

    // Replay without the ConfigValues: identical facts, the files holding secrets unchecked and
    // said so.
    let output = windlass(state.path())
        .args(["replay", &install_id, "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["secret_files_compared"], 0, "{report:#}");
    assert!(
        report["unverified"]
            .to_string()
            .contains("manifests/token.yaml, upstream/userdata/config.yaml held password values"),
        "{report:#}"
    );
    // With it (and the license): every file holding secrets compared by keyed fingerprint,
    // that is byte for byte, the base/ and rendered/ files holding the password included.
    let output = windlass(state.path())
        .args(["replay", &install_id, "--json", "--config-values"])
        .arg(&values)
        .arg("--license")
        .arg(release.join("userdata/license.yaml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["secret_files_unchecked"], 0, "{report:#}");
    assert!(
        report["secret_files_compared"].as_u64().unwrap() >= 4,
        "base/, rendered/ and the pull-secret files: {report:#}"
    );
    // A changed password value is a changed file: the replay with other values is refused by
    // the ConfigValues fingerprint before anything runs, and an edited base/ file is restored by
    // the next install of the same request from the text it renders again.
    std::fs::write(out.join("base/manifests/token.yaml"), "edited").unwrap();
    let again = json(run(install_with_values(state.path(), &values, &release)
        .arg("--json")
        .arg("--out")
        .arg(&out)));
    assert_eq!(again["status"], "completed", "{again}");
    assert!(contains(
        &std::fs::read(out.join("base/manifests/token.yaml")).unwrap(),
        TOKEN
    ));
}

#[test]
fn config_prints_items_effective_values_masked_passwords_and_what_is_missing() {
    let (dir, release) = templated_release();
    let state = tempfile::tempdir().unwrap();
    // Nothing given: both required items are missing.
    let report = json(run(windlass(state.path())
        .args(["config", "--json"])
        .arg(&release)));
    let missing: Vec<&str> = report["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    assert_eq!(missing, ["hostname", "api_token"]);
    // Given: nothing missing, the password masked, read-only items computed.
    let output = run(windlass(state.path())
        .args(["config", "--json", "--config-values"])
        .arg(all_values(dir.path()))
        .arg(&release));
    assert!(!contains(&output.stdout, TOKEN), "the password is printed");
    let report = json(output);
    assert_eq!(report["missing"], serde_json::json!([]));
    let item = |name: &str| {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["name"] == name)
            .unwrap_or_else(|| panic!("no item {name}"))
            .clone()
    };
    assert_eq!(item("api_token")["effective"], "********");
    assert_eq!(item("api_token")["given"], true);
    assert_eq!(item("banner")["effective"], "Welcome to shop.example.test");
    assert_eq!(item("replicas")["effective"], "2");
    assert_eq!(item("hostname")["group_title"], "Network");
    // The human form says the same.
    let output = run(windlass(state.path()).arg("config").arg(&release));
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("  hostname (text) \"Public host name\" = \"\"  [MISSING: required]"),
        "{text}"
    );
    assert!(
        text.contains("missing required items: hostname, api_token"),
        "{text}"
    );
    assert!(
        files_under(state.path()).is_empty(),
        "windlass config records nothing"
    );
}

/// A file using the time and randomness, rendered again from the recorded facts alone (the
/// instant and the draws in `BaseFetched.templates`, the same ConfigValues and license), gives
/// the bytes the install wrote to `base/`.
#[test]
fn rendering_again_with_the_recorded_time_and_draws_gives_the_same_bytes() {
    use base64::Engine;
    use std::sync::Arc;
    use windlass_template::{Recorded, Replay, Scope, TemplateContext, Usage};

    const GENERATED: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: generated
data:
  at: '{{repl Now }}'
  day: '{{repl NowFmt "Mon Jan 2 2006 15:04:05.000" }}'
  token: '{{repl RandomString 20 }}'
  id: 'repl{{ uuidv4 }}'
  host: '{{repl ConfigOption "hostname" }}'
"#;
    let (dir, release) = templated_release();
    std::fs::write(release.join("manifests/generated.yaml"), GENERATED).unwrap();
    let state = tempfile::tempdir().unwrap();
    let values = all_values(dir.path());
    let install = json(run(
        install_with_values(state.path(), &values, &release).arg("--json")
    ));
    let out = PathBuf::from(install["out"].as_str().unwrap());
    let written = std::fs::read_to_string(out.join("base/manifests/generated.yaml")).unwrap();
    let id = install["install_id"].as_str().unwrap();
    let events = json(run(windlass(state.path()).args(["events", id, "--json"])));
    let templates = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .unwrap()["payload"]["templates"]
        .clone();
    let now = time::OffsetDateTime::parse(
        templates["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let draws = |list: &serde_json::Value| -> Vec<Vec<u8>> {
        list.as_array()
            .map(|draws| {
                draws
                    .iter()
                    .map(|draw| {
                        base64::engine::general_purpose::STANDARD
                            .decode(draw.as_str().unwrap())
                            .unwrap()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let file = templates["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["path"] == "manifests/generated.yaml")
        .unwrap();
    let file_draws = draws(&file["random_draws"]);
    assert_eq!(file_draws.len(), 2, "RandomString and uuidv4");

    // The Config again, from the same values, the license and the recorded config draws.
    let license = windlass_stages::templates::read_license_for_templates(
        &release.join("userdata/license.yaml"),
    )
    .unwrap();
    let base = windlass_stages::templates::base_context(Some(&license), "default");
    let files = windlass_stages::templates::yaml_files(&release, 1 << 24).unwrap();
    let config = windlass_stages::templates::find_config(&files)
        .unwrap()
        .unwrap();
    let given = windlass_stages::templates::read_config_values_file(&values).unwrap();
    let config_replay = Replay::new(&Recorded {
        now: Some(now),
        draws: draws(&templates["config_random_draws"]),
    });
    let evaluated =
        windlass_template::config::evaluate(&config, &given, &base, Arc::new(config_replay))
            .unwrap();
    let scope = Scope {
        context: Arc::new(TemplateContext {
            config: Arc::new(evaluated.values()),
            ..base
        }),
        entropy: Arc::new(Replay::new(&Recorded {
            now: Some(now),
            draws: file_draws,
        })),
        usage: Arc::new(Usage::default()),
    };
    let again = windlass_template::render("manifests/generated.yaml", GENERATED, &scope).unwrap();
    assert_eq!(again.text, written);
    assert!(written.contains("host: 'shop.example.test'"), "{written}");
}

/// A password item generated by `RandomString` (no value given) is a credential: the random draws
/// that made it are not recorded, so neither it nor what produced it reaches the state directory.
#[test]
fn random_draws_that_may_make_a_password_are_not_recorded() {
    let (dir, release) = templated_release();
    std::fs::write(
        release.join("config.yaml"),
        CONFIG.replace(
            "        - name: api_token\n          title: API token\n          type: password\n          required: true\n",
            "        - name: api_token\n          title: API token\n          type: password\n          value: '{{repl RandomString 24 }}'\n",
        ),
    )
    .unwrap();
    let values = values(
        dir.path(),
        "    hostname:\n      value: shop.example.test\n",
    );
    let state = tempfile::tempdir().unwrap();
    let install = json(run(
        install_with_values(state.path(), &values, &release).arg("--json")
    ));
    assert_eq!(install["status"], "completed", "{install}");
    let id = install["install_id"].as_str().unwrap();
    let events = json(run(windlass(state.path()).args(["events", id, "--json"])));
    let templates = &events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .unwrap()["payload"]["templates"];
    assert_eq!(
        templates["config_random_draws_withheld"], true,
        "{templates}"
    );
    assert!(templates["config_random_draws"].is_null(), "{templates}");
}

/// A file using the clock and the random source besides config values and license fields.
const STAMP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: stamp
data:
  host: 'repl{{ ConfigOption "hostname" }}'
  cache: '{{repl ConfigOption "enable_cache" }}'
  token: '{{repl RandomString 12 }}'
  at: '{{repl Now }}'
  customer: '{{repl LicenseFieldValue "customerName" }}'
"#;

#[test]
fn an_install_reading_config_values_and_license_fields_replays_with_and_without_the_files() {
    let (dir, release) = templated_release();
    std::fs::write(release.join("manifests/stamp.yaml"), STAMP).unwrap();
    let state = tempfile::tempdir().unwrap();
    let values = values(
        dir.path(),
        &format!(
            "    hostname:\n      value: shop.example.test\n    enable_cache:\n      value: \"1\"\n    api_token:\n      valuePlaintext: {TOKEN}\n"
        ),
    );
    let install = json(run(
        install_with_values(state.path(), &values, &release).arg("--json")
    ));
    assert_eq!(install["status"], "completed", "{install}");
    let install_id = install["install_id"].as_str().unwrap().to_string();
    // What a replay needs is recorded, the password by keyed fingerprint only.
    let events = json(run(windlass(state.path()).args([
        "events",
        &install_id,
        "--json",
    ])));
    let fetched = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .unwrap();
    let templates = &fetched["payload"]["templates"];
    assert_eq!(
        templates["given_values"]["hostname"]["value"], "shop.example.test",
        "{templates}"
    );
    assert!(templates["given_values"].get("api_token").is_none());
    assert!(
        templates["given_password_fingerprints"]["api_token"]
            .as_str()
            .unwrap()
            .starts_with("fp1:"),
        "{templates}"
    );
    assert_eq!(
        templates["license_fields"]["customerName"], "Quickstart Customer",
        "{templates}"
    );
    assert_password_only_in_the_effective_values(state.path(), TOKEN);

    // Without the files: rendered with what was recorded; what cannot be checked is said.
    let output = windlass(state.path())
        .args(["replay", &install_id, "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    let unverified = report["unverified"].to_string();
    assert!(
        unverified.contains("api_token") && unverified.contains("--config-values"),
        "{report:#}"
    );
    let text = windlass(state.path())
        .args(["replay", &install_id])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("not verified: the password values"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // With the same ConfigValues and license: nothing left unverified.
    let license = release.join("userdata/license.yaml");
    let output = windlass(state.path())
        .args(["replay", &install_id, "--json", "--config-values"])
        .arg(&values)
        .arg("--license")
        .arg(&license)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["unverified"], serde_json::json!([]), "{report:#}");

    // Another ConfigValues file is refused, naming the flag.
    let other_dir = tempfile::tempdir().unwrap();
    let other = all_values(other_dir.path());
    let output = windlass(state.path())
        .args(["replay", &install_id, "--config-values"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--config-values: the file's fingerprint is"),
        "{}",
        stderr(&output)
    );
    // The verdicts are in the log, the unchecked part with them.
    let events = json(run(windlass(state.path()).args([
        "events",
        &install_id,
        "--json",
    ])));
    let verdicts: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "ReplayVerified")
        .collect();
    assert_eq!(verdicts.len(), 3, "{events:#}");
    assert!(
        verdicts[0]["payload"]["unverified"][0]
            .as_str()
            .unwrap()
            .contains("api_token")
    );
}

#[test]
fn images_renders_templates_first_and_lists_the_rendered_image_fields() {
    let (dir, release) = templated_release();
    let state = tempfile::tempdir().unwrap();
    let values = values(
        dir.path(),
        &format!(
            "    hostname:\n      value: shop.example.test\n    api_token:\n      valuePlaintext: {TOKEN}\n    web_repository:\n      value: registry.example.test/shop/web\n"
        ),
    );
    let listed = json(run(windlass(state.path())
        .args(["images", "--json", "--config-values"])
        .arg(&values)
        .arg(&release)));
    let images: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["image"].as_str().unwrap())
        .collect();
    assert!(
        images.contains(&"registry.example.test/shop/web:1"),
        "{listed:#}"
    );
    assert!(
        images.contains(&"registry.example.test/shop/web-tools:3"),
        "additionalImages are rendered too: {listed:#}"
    );
    assert!(
        !images.iter().any(|image| image.contains("repl")),
        "{listed:#}"
    );
    // Without the values file the Config's defaults apply; a required item without a value
    // stops it as it stops an install.
    let output = windlass(state.path())
        .args(["images"])
        .arg(&release)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("hostname"), "{}", stderr(&output));
    let defaults = all_values(dir.path());
    let output = run(windlass(state.path())
        .args(["images", "--config-values"])
        .arg(&defaults)
        .arg(&release));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("quay.io/my-org/web:1"), "{said}");
}

/// A resumed install in a new process has no rendered text of a file holding a password value
/// (it is never stored): `write_base` fails once, saying so and marking `fetch_base` stale, and
/// the next run of the same install renders the release again and completes.
#[test]
fn a_resume_in_a_new_process_renders_a_file_holding_a_password_again() {
    let (dir, release) = templated_release();
    std::fs::write(
        release.join("manifests/token.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: token\ndata:\n  token: '{{repl ConfigOption \"api_token\" }}'\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let values = all_values(dir.path());
    let install = |state: &Path| {
        let mut command = install_with_values(state, &values, &release);
        command.arg("--json").arg("--out").arg(&out);
        command
    };
    let mut child = install(state.path())
        .env("WINDLASS_PAUSE_AFTER_STAGE", "fetch_base")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::wait_for_pause(&mut child, "fetch_base");
    child.kill().unwrap();
    child.wait().unwrap();

    let resumed = crate::state_integrity::run_within(&mut install(state.path()), 120);
    let report: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(report["status"], "failed", "{report:#}");
    assert!(
        report.to_string().contains(
            "manifests/token.yaml holds a password value, which windlass never stores, and this process did not render it"
        ),
        "{report:#}"
    );
    let again = json(crate::state_integrity::run_within(
        &mut install(state.path()),
        120,
    ));
    assert_eq!(again["status"], "completed", "{again:#}");
    assert_eq!(
        again["install_id"], report["install_id"],
        "the same install"
    );
    assert!(contains(
        &std::fs::read(out.join("base/manifests/token.yaml")).unwrap(),
        TOKEN
    ));
    for file in files_under(state.path()) {
        assert!(
            !contains(&windlass_testkit::scannable_bytes(&file), TOKEN),
            "{} holds the password value",
            file.display()
        );
    }
}

/// A file holding a password value never reaches a plugin: a plugin on the base documents is
/// refused naming the file (exit 3); one after `render_midstream` runs, the file holding the
/// password carried past it like a Secret, and the value stays out of the state directory.
#[test]
fn a_file_holding_a_password_value_is_never_sent_to_a_plugin() {
    let (dir, release) = templated_release();
    std::fs::write(
        release.join("manifests/token.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: token\ndata:\n  token: '{{repl ConfigOption \"api_token\" }}'\n",
    )
    .unwrap();
    let values = all_values(dir.path());
    let audit_label =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/audit-label/audit-label.py");
    for (placement, expected_code) in [("before: write_base", 3), ("after: render_midstream", 0)] {
        let config = dir.path().join("windlass.yaml");
        std::fs::write(
            &config,
            format!(
                "plugins:\n  - name: label\n    exec: {}\n    {placement}\n    config: {{team: platform}}\n",
                audit_label.display()
            ),
        )
        .unwrap();
        let state = tempfile::tempdir().unwrap();
        let out = dir.path().join(format!("out-{expected_code}"));
        let output = crate::state_integrity::run_within(
            windlass(state.path())
                .args(OFFLINE_INSTALL)
                .arg("--json")
                .arg("--out")
                .arg(&out)
                .arg("--config")
                .arg(&config)
                .arg("--config-values")
                .arg(&values)
                .arg(&release),
            120,
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
        assert_eq!(
            output.status.code(),
            Some(expected_code),
            "{placement}: {said}"
        );
        if expected_code == 3 {
            assert!(
                said.contains("manifests/token.yaml holds a password value, which windlass never sends to a plugin"),
                "{said}"
            );
        } else {
            let rendered =
                std::fs::read_to_string(out.join("rendered/this-cluster/token-configmap.yaml"))
                    .unwrap();
            assert!(rendered.contains(TOKEN), "{rendered}");
            let web =
                std::fs::read_to_string(out.join("rendered/this-cluster/web-deployment.yaml"))
                    .unwrap();
            assert!(web.contains("platform"), "the plugin ran: {web}");
        }
        for file in files_under(state.path()) {
            assert!(
                !contains(&windlass_testkit::scannable_bytes(&file), TOKEN),
                "{placement}: {} holds the password value",
                file.display()
            );
        }
    }
}
