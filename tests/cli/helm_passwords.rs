//! KOTS HelmCharts whose `values` (and `helmUpgradeFlags`) read a password config item, end to end
//! with the real helm 4 (`target/tools/bin/helm`): the password given in a ConfigValues file
//! reaches no file of the state directory (events, blobs, indexes: every file scanned byte for
//! byte) and nothing windlass prints; the files holding it (`base/charts/…`, `rendered/…`,
//! `helm/<release>/values.yaml`) are written 0600; the events name the chart's values, helm's output
//! and its flags by keyed fingerprint or redacted; `windlass show` names the chart, never the value;
//! a replay runs helm again for such a chart and agrees; a resumed install in a new process renders
//! the release again; `windlass apply INSTALL_ID`, which has not the flags as written, is refused
//! naming them. The `useHelmInstall: true` chart goes to `windlass-test-apiserver`, a FAKE
//! Kubernetes API server (no real one can be installed on these machines).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use windlass_testkit::charts::{chart_archive, sample_chart};

use super::{
    OFFLINE_INSTALL, contains, files_under, json, mode_of, payloads_of_type, quickstart, run,
    windlass,
};

/// The password the ConfigValues file gives.
const PASSWORD: &str = "pw-Zq81vLr3TxKeHelm";

const CONFIG: &str = "apiVersion: kots.io/v1beta1
kind: Config
metadata:
  name: db-config
spec:
  groups:
    - name: database
      title: Database
      items:
        - name: db_password
          title: Database password
          type: password
          required: true
";

/// A `kots.io/v1beta1` HelmChart (joins the common base) whose values read the password.
const V1BETA1: &str = "apiVersion: kots.io/v1beta1
kind: HelmChart
metadata:
  name: app
spec:
  chart:
    name: app
    chartVersion: 1.2.0
  values:
    replicas: 2
    db:
      password: 'repl{{ ConfigOption \"db_password\" }}'
";

/// A `kots.io/v1beta2` HelmChart whose values read the password. Its images are listed by
/// templating it with `builder` alone, so `builder` gives the chart a placeholder password too.
const V1BETA2: &str = "apiVersion: kots.io/v1beta2
kind: HelmChart
metadata:
  name: web
spec:
  releaseName: web
  chart:
    name: app
    chartVersion: 1.0.0
  values:
    db:
      password: '{{repl ConfigOption \"db_password\" }}'
  builder:
    image:
      tag: builder
    db:
      password: placeholder
  helmUpgradeFlags:
    - --description
    - 'database {{repl ConfigOption \"db_password\" }}'
    - --timeout=10m
";

/// The sample chart at `version` with a template printing the password it is given.
fn chart_printing_the_password(version: &str) -> Vec<u8> {
    let mut files = sample_chart(version);
    files.push((
        "app/templates/db-settings.yaml".into(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-db-settings\ndata:\n  password: {{ .Values.db.password | quote }}\n".into(),
    ));
    chart_archive(&files)
}

/// The quickstart release plus the Config, both charts and their archives, and a ConfigValues
/// file giving the password (outside the release).
fn release_with_password_charts() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    copy_quickstart(&release);
    std::fs::write(release.join("config.yaml"), CONFIG).unwrap();
    std::fs::write(
        release.join("charts/app-1.2.0.tgz"),
        chart_printing_the_password("1.2.0"),
    )
    .unwrap();
    std::fs::write(
        release.join("charts/app-1.0.0.tgz"),
        chart_printing_the_password("1.0.0"),
    )
    .unwrap();
    std::fs::write(release.join("kots/chart.yaml"), V1BETA1).unwrap();
    std::fs::write(release.join("kots/web.yaml"), V1BETA2).unwrap();
    let values = config_values(dir.path());
    (dir, release, values)
}

fn copy_quickstart(release: &Path) {
    crate::state_integrity::copy_dir(&quickstart(), release);
    std::fs::create_dir_all(release.join("charts")).unwrap();
    std::fs::create_dir_all(release.join("kots")).unwrap();
}

fn config_values(dir: &Path) -> PathBuf {
    let path = dir.join("config-values.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    db_password:\n      valuePlaintext: {PASSWORD}\n"
        ),
    )
    .unwrap();
    path
}

fn helm() -> PathBuf {
    windlass_testkit::helm()
}

/// `windlass install --offline --json --helm <helm> --config-values VALUES --out OUT RELEASE`.
fn install_command(
    state: &Path,
    values: &Path,
    out: &Path,
    release: &Path,
) -> std::process::Command {
    let mut command = windlass(state);
    command
        .args(OFFLINE_INSTALL)
        .args(["--json", "--helm"])
        .arg(helm())
        .arg("--config-values")
        .arg(values)
        .arg("--out")
        .arg(out)
        .arg(release);
    command
}

fn output_within(command: &mut std::process::Command) -> std::process::Output {
    windlass_testkit::output_within(command, Duration::from_secs(180), "windlass")
}

/// Fails naming the first file under `state` holding the password, byte for byte.
fn assert_password_nowhere_in(state: &Path) {
    let files = files_under(state);
    assert!(
        files
            .iter()
            .any(|file| file.file_name().is_some_and(|name| name == "events.redb")),
        "the event log is among the files scanned: {files:?}"
    );
    for file in files {
        assert!(
            !contains(&windlass_testkit::scannable_bytes(&file), PASSWORD),
            "{} holds the password value",
            file.display()
        );
    }
}

fn assert_password_not_printed(output: &std::process::Output) {
    assert!(
        !contains(&output.stdout, PASSWORD),
        "stdout holds the password"
    );
    assert!(
        !contains(&output.stderr, PASSWORD),
        "stderr holds the password"
    );
}

/// The mode bits of `path`'s permissions.
/// Checks that `path` (under `out`) holds the password and is the user's alone.
fn assert_holds_the_password_0600(out: &Path, path: &str) {
    let file = out.join(path);
    assert!(file.is_file(), "{path} missing: {:?}", files_under(out));
    assert!(
        contains(&windlass_testkit::scannable_bytes(&file), PASSWORD),
        "{path} holds the rendered password"
    );
    assert_eq!(mode_of(&file), 0o600, "{path}");
}

#[test]
fn helm_chart_values_reading_a_password_stay_out_of_the_state_directory_and_replay() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release, values) = release_with_password_charts();
    let out = dir.path().join("out");
    let output = output_within(&mut install_command(state.path(), &values, &out, &release));
    assert_password_not_printed(&output);
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install:#}");
    let install_id = install["install_id"].as_str().unwrap().to_string();

    // The files holding the rendered password: the v1beta1 chart's document in base/ and the
    // object it renders to, and the v1beta2 chart's values.
    assert_holds_the_password_0600(&out, "base/charts/app/templates/db-settings.yaml");
    assert_holds_the_password_0600(&out, "rendered/this-cluster/app-db-settings-configmap.yaml");
    assert_holds_the_password_0600(&out, "helm/web/values.yaml");
    assert_eq!(mode_of(&out.join("helm/web/app-1.0.0.tgz")), 0o644);
    assert_password_nowhere_in(state.path());

    // The charts' values and helm's output are named by keyed fingerprint, never stored.
    let events = crate::apply_kube::events(state.path(), &install_id);
    let fetched = &payloads_of_type(&events, "BaseFetched")[0];
    let charts = fetched["helm_charts"].as_array().unwrap();
    assert_eq!(charts.len(), 2, "{fetched:#}");
    for chart in charts {
        assert_eq!(chart["holds_password"], true, "{chart:#}");
        assert!(chart["values"].is_null(), "{chart:#}");
        assert!(chart["output_blob"].is_null(), "{chart:#}");
        for field in ["values_fingerprint", "output_fingerprint"] {
            assert!(
                chart[field].as_str().unwrap().starts_with("fp1:"),
                "{field}: {chart:#}"
            );
        }
    }
    // Its flags redacted (helm gets them as written only from the install's memory).
    assert_eq!(
        charts[1]["helm_upgrade_flags"],
        serde_json::json!(["--description", "<redacted>", "--timeout=<redacted>"])
    );
    assert!(
        charts[1]["helm_upgrade_flags_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("fp1:")
    );
    let chart_document = fetched["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|document| document["file"] == "charts/app/templates/db-settings.yaml")
        .unwrap();
    assert!(chart_document.get("blob").is_none(), "{chart_document}");
    let written = &payloads_of_type(&events, "BaseWritten")[0];
    for path in [
        "base/charts/app/templates/db-settings.yaml",
        "helm/web/values.yaml",
    ] {
        let file = written["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|file| file["path"] == path)
            .unwrap_or_else(|| panic!("{path} listed: {written:#}"));
        assert!(file.get("blob").is_none(), "{file}");
        assert!(file["fingerprint"].as_str().unwrap().starts_with("fp1:"));
    }

    // `windlass show` names the charts holding password values, never a value.
    let shown = run(windlass(state.path()).args(["show", &install_id]));
    assert_password_not_printed(&shown);
    let shown_text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown_text.contains("HelmChart app (kots/chart.yaml kots.io/v1beta1): chart app 1.2.0")
            && shown_text.contains("holding password values: its values, helm's output and its documents recorded by keyed fingerprint, never stored")
            && shown_text.contains("kots/chart.yaml, kots/web.yaml"),
        "{shown_text}"
    );

    // A replay runs helm again for these charts (their output was never stored): without the
    // ConfigValues it agrees on everything it can check, and says what it could not.
    let replayed = output_within(windlass(state.path()).args(["replay", &install_id, "--json"]));
    assert_password_not_printed(&replayed);
    let report = json(replayed);
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert!(
        report["unverified"].to_string().contains(
            "kots/chart.yaml, kots/web.yaml, upstream/userdata/config.yaml held password values"
        ),
        "{report:#}"
    );
    // With it (and the license), every file holding the password is compared by fingerprint.
    let replayed = output_within(
        windlass(state.path())
            .args(["replay", &install_id, "--json", "--config-values"])
            .arg(&values)
            .arg("--license")
            .arg(release.join("userdata/license.yaml")),
    );
    assert_password_not_printed(&replayed);
    let report = json(replayed);
    assert_eq!(report["differences"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["secret_files_unchecked"], 0, "{report:#}");
    assert_password_nowhere_in(state.path());
}

/// A resumed install in a new process has neither the charts' values nor helm's output (never
/// stored): it fails once, marking `fetch_base` stale, and the next run of the same install
/// renders the release (and the charts) again and completes.
#[test]
fn a_resume_in_a_new_process_renders_a_chart_holding_a_password_again() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release, values) = release_with_password_charts();
    let out = dir.path().join("out");
    let mut child = install_command(state.path(), &values, &out, &release)
        .env("WINDLASS_PAUSE_AFTER_STAGE", "fetch_base")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::wait_for_pause(&mut child, "fetch_base");
    child.kill().unwrap();
    child.wait().unwrap();

    let resumed = output_within(&mut install_command(state.path(), &values, &out, &release));
    assert_password_not_printed(&resumed);
    let report: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(report["status"], "failed", "{report:#}");
    assert!(
        report
            .to_string()
            .contains("holds a password value, which windlass never stores, and this process did not render it"),
        "{report:#}"
    );
    let again = output_within(&mut install_command(state.path(), &values, &out, &release));
    assert_password_not_printed(&again);
    let again = json(again);
    assert_eq!(again["status"], "completed", "{again:#}");
    assert_eq!(
        again["install_id"], report["install_id"],
        "the same install"
    );
    assert_holds_the_password_0600(&out, "base/charts/app/templates/db-settings.yaml");
    assert_holds_the_password_0600(&out, "helm/web/values.yaml");
    assert_password_nowhere_in(state.path());
}

/// The quickstart release plus the Config and the `useHelmInstall: true` chart `tiny`, whose
/// values and `helmUpgradeFlags` read the password, and the ConfigValues file.
fn release_with_a_helm_install_chart() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    copy_quickstart(&release);
    std::fs::write(release.join("config.yaml"), CONFIG).unwrap();
    std::fs::write(
        release.join("charts/tiny-1.0.0.tgz"),
        chart_archive(&[
            (
                "tiny/Chart.yaml".into(),
                "apiVersion: v2\nname: tiny\nversion: 1.0.0\n".into(),
            ),
            (
                "tiny/templates/config.yaml".into(),
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  password: {{ .Values.password | quote }}\n".into(),
            ),
        ]),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/tiny.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: tiny\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n  useHelmInstall: true\n  values:\n    password: 'repl{{ ConfigOption \"db_password\" }}'\n  helmUpgradeFlags:\n    - --description\n    - 'repl{{ ConfigOption \"db_password\" }}'\n",
    )
    .unwrap();
    let values = config_values(dir.path());
    (dir, release, values)
}

/// The FAKE API server, with a kubeconfig for it written in `dir`.
/// [`install_command`] with `--target kube --kubeconfig KUBECONFIG`.
fn install_to_cluster(
    state: &Path,
    values: &Path,
    out: &Path,
    release: &Path,
    kubeconfig: &Path,
) -> std::process::Command {
    let mut command = install_command(state, values, out, release);
    command
        .args(["--target", "kube", "--kubeconfig"])
        .arg(kubeconfig);
    command
}

/// A `useHelmInstall: true` chart whose values and `helmUpgradeFlags` read the password: the
/// chart's files holding it are 0600, helm gets the flags as written, and `HelmReleaseInstalled`
/// (like every other event) records them redacted.
#[test]
fn a_helm_install_chart_reading_a_password_in_values_and_flags_records_them_redacted() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release, values) = release_with_a_helm_install_chart();
    let out = dir.path().join("out");
    let (_server, kubeconfig) = crate::helm_install::fake_cluster(dir.path());
    let output = output_within(&mut install_to_cluster(
        state.path(),
        &values,
        &out,
        &release,
        &kubeconfig,
    ));
    assert_password_not_printed(&output);
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install:#}");
    let install_id = install["install_id"].as_str().unwrap().to_string();

    assert_holds_the_password_0600(&out, "base/charts/tiny/templates/config.yaml");
    assert_holds_the_password_0600(
        &out,
        "rendered/this-cluster/charts/tiny/templates/tiny-config-configmap.yaml",
    );
    assert_password_nowhere_in(state.path());

    let events = crate::apply_kube::events(state.path(), &install_id);
    let redacted = serde_json::json!(["--description", "<redacted>"]);
    let fetched = &payloads_of_type(&events, "BaseFetched")[0];
    assert_eq!(fetched["helm_charts"][0]["helm_upgrade_flags"], redacted);
    let rendered = &payloads_of_type(&events, "MidstreamRendered")[0];
    assert_eq!(rendered["helm_charts"][0]["helm_upgrade_flags"], redacted);
    let installed = &payloads_of_type(&events, "HelmReleaseInstalled")[0];
    assert_eq!(installed["outcome"], "installed", "{installed:#}");
    let arguments = crate::helm_v1beta2::arguments_of(installed);
    assert!(
        arguments.ends_with(&["--description", "<redacted>"]),
        "{arguments:?}"
    );
    assert!(
        installed["chart_digest"]
            .as_str()
            .unwrap()
            .starts_with("fp1:"),
        "a keyed digest: {installed:#}"
    );
}

/// A `kots.io/v1beta2` chart whose values and `helmUpgradeFlags` read the password goes to helm
/// with its `values.yaml` (0600) and the flags as written: the object it makes holds the password,
/// while `HelmReleaseInstalled` records the flags redacted and a keyed digest, and no file of the
/// state directory holds the password.
#[test]
fn a_v1beta2_chart_reading_a_password_is_installed_with_it_and_recorded_redacted() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release, values) = release_with_password_charts();
    // The v1beta2 chart without the sample chart's pre-install hook Job: the FAKE API server
    // runs no Job, so helm would wait for it until its timeout.
    let mut files = sample_chart("1.0.0");
    files.retain(|(path, _)| !path.ends_with("templates/hook-job.yaml"));
    files.push((
        "app/templates/db-settings.yaml".into(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-db-settings\ndata:\n  password: {{ .Values.db.password | quote }}\n".into(),
    ));
    std::fs::write(release.join("charts/app-1.0.0.tgz"), chart_archive(&files)).unwrap();
    let out = dir.path().join("out");
    let (server, kubeconfig) = crate::helm_install::fake_cluster(dir.path());
    let output = output_within(&mut install_to_cluster(
        state.path(),
        &values,
        &out,
        &release,
        &kubeconfig,
    ));
    assert_password_not_printed(&output);
    let install = json(output);
    assert_eq!(install["status"], "completed", "{install:#}");
    let install_id = install["install_id"].as_str().unwrap().to_string();
    assert_holds_the_password_0600(&out, "helm/web/values.yaml");
    let settings = server
        .get("v1", "ConfigMap", "default", "web-db-settings")
        .expect("helm made the v1beta2 chart's ConfigMap");
    assert_eq!(settings["data"]["password"], PASSWORD);
    assert_password_nowhere_in(state.path());

    let events = crate::apply_kube::events(state.path(), &install_id);
    let installed = payloads_of_type(&events, "HelmReleaseInstalled");
    assert_eq!(installed.len(), 1, "{installed:#?}");
    let web = &installed[0];
    assert_eq!(web["release_name"], "web");
    assert_eq!(web["outcome"], "installed", "{web:#}");
    let arguments = crate::helm_v1beta2::arguments_of(web);
    assert!(
        arguments.ends_with(&["--description", "<redacted>", "--timeout=<redacted>"]),
        "{arguments:?}"
    );
    assert!(
        web["chart_digest"].as_str().unwrap().starts_with("fp1:"),
        "a keyed digest: {web:#}"
    );
    // helm took the flags as written.
    let history = std::process::Command::new(crate::helm_install::helm())
        .args(["history", "web", "--output", "json", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert!(history.status.success(), "{history:?}");
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        history[0]["description"],
        format!("database {PASSWORD}"),
        "{history:#}"
    );
}

/// `windlass apply INSTALL_ID` runs in a process that did not render the release, so it has not
/// the chart's flags as written (never stored): it is refused saying so, and installing again
/// (which renders the release again) installs the chart.
#[test]
fn applying_a_recorded_install_without_its_flags_in_memory_is_refused_naming_them() {
    let state = tempfile::tempdir().unwrap();
    let (dir, release, values) = release_with_a_helm_install_chart();
    let out = dir.path().join("out");
    let (_server, kubeconfig) = crate::helm_install::fake_cluster(dir.path());
    let rendered = output_within(&mut install_command(state.path(), &values, &out, &release));
    assert_password_not_printed(&rendered);
    let rendered = json(rendered);
    assert_eq!(rendered["status"], "completed", "{rendered:#}");
    let install_id = rendered["install_id"].as_str().unwrap();

    let applied = output_within(
        windlass(state.path())
            .args([
                "apply",
                install_id,
                "--json",
                "--target",
                "kube",
                "--kubeconfig",
            ])
            .arg(&kubeconfig),
    );
    assert_password_not_printed(&applied);
    assert!(!applied.status.success());
    let report: Value = serde_json::from_slice(&applied.stdout).unwrap();
    assert!(
        report.to_string().contains(
            "spec.helmUpgradeFlags of HelmChart tiny holds a password value, which windlass never stores, and this process did not render it"
        ),
        "{report:#}"
    );
    // Nothing was handed to helm, so nothing recorded of it.
    let apply_id = report["install_id"].as_str().unwrap();
    assert!(
        payloads_of_type(
            &crate::apply_kube::events(state.path(), apply_id),
            "HelmReleaseInstalled"
        )
        .is_empty()
    );

    let installed = output_within(&mut install_to_cluster(
        state.path(),
        &values,
        &out,
        &release,
        &kubeconfig,
    ));
    assert_password_not_printed(&installed);
    let installed = json(installed);
    assert_eq!(installed["status"], "completed", "{installed:#}");
    assert_password_nowhere_in(state.path());
}

/// A HelmChart field the password was rendered into that does not take it (`weight`, an
/// `optionalValues` entry's `when`, `exclude`) fails the install, and the error names the field
/// without the value: the failure is recorded and printed, and would otherwise carry the password.
#[test]
fn a_helm_chart_field_that_refuses_the_password_fails_without_showing_it() {
    let fields = [
        (
            "weight",
            "  weight: 'repl{{ ConfigOption \"db_password\" }}'\n",
            "not a valid HelmChart",
        ),
        (
            "when",
            "  optionalValues:\n    - when: 'repl{{ ConfigOption \"db_password\" }}'\n      values:\n        extra: true\n",
            "spec.optionalValues[0].when is not a boolean",
        ),
        (
            "exclude",
            "  exclude: 'repl{{ ConfigOption \"db_password\" }}'\n",
            "spec.exclude is not a boolean",
        ),
    ];
    for (field, spec_lines, said) in fields {
        let (dir, release, values) = release_with_password_charts();
        std::fs::remove_file(release.join("kots/web.yaml")).unwrap();
        std::fs::write(
            release.join("kots/chart.yaml"),
            format!("{V1BETA1}{spec_lines}"),
        )
        .unwrap();
        let state = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let failed = output_within(&mut install_command(state.path(), &values, &out, &release));
        assert_eq!(
            failed.status.code(),
            Some(3),
            "{field}: {}",
            String::from_utf8_lossy(&failed.stderr)
        );
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&failed.stdout),
            String::from_utf8_lossy(&failed.stderr)
        );
        assert!(shown.contains(said), "{field}: {shown}");
        assert_password_not_printed(&failed);
        assert_password_nowhere_in(state.path());
    }
}

/// A text item whose vendor `value` reads the password holds it too: a chart whose values read
/// that item is recorded as holding a password, and the password stays out of the state.
#[test]
fn a_chart_reading_an_item_built_from_the_password_holds_it_too() {
    let (dir, release, values) = release_with_password_charts();
    std::fs::remove_file(release.join("kots/web.yaml")).unwrap();
    std::fs::write(
        release.join("config.yaml"),
        format!(
            "{CONFIG}        - name: db_url\n          title: Database URL\n          type: text\n          hidden: true\n          value: 'postgres://app:repl{{{{ ConfigOption \"db_password\" }}}}@db/app'\n"
        ),
    )
    .unwrap();
    std::fs::write(
        release.join("kots/chart.yaml"),
        V1BETA1.replace("\"db_password\"", "\"db_url\""),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let installed = output_within(&mut install_command(state.path(), &values, &out, &release));
    assert_eq!(
        installed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert_password_not_printed(&installed);
    assert_password_nowhere_in(state.path());
    let install: Value = serde_json::from_slice(&installed.stdout).unwrap();
    let events = crate::apply_kube::events(state.path(), install["install_id"].as_str().unwrap());
    let fetched = events
        .iter()
        .find(|event| event["type"] == "BaseFetched")
        .expect("BaseFetched");
    assert_eq!(
        fetched["payload"]["helm_charts"][0]["holds_password"], true,
        "{:#}",
        fetched["payload"]["helm_charts"][0]
    );
}

/// An item built from the password is masked by `windlass config` as a password item is, and a
/// value the user gives such an item is kept out of the state as a password's is (fingerprinted).
#[test]
fn an_item_built_from_the_password_is_masked_and_its_given_value_kept_out() {
    let (dir, release, _) = release_with_password_charts();
    std::fs::remove_file(release.join("kots/web.yaml")).unwrap();
    std::fs::write(
        release.join("config.yaml"),
        format!(
            "{CONFIG}        - name: db_url\n          title: Database URL\n          type: text\n          default: 'postgres://app:repl{{{{ ConfigOption \"db_password\" }}}}@db/app'\n"
        ),
    )
    .unwrap();
    let values = dir.path().join("values-with-url.yaml");
    std::fs::write(
        &values,
        format!(
            "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    db_password:\n      valuePlaintext: {PASSWORD}\n    db_url:\n      value: postgres://ops:{PASSWORD}@db-2/app\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let shown = output_within(
        windlass(state.path())
            .args(["config", "--json", "--config-values"])
            .arg(&values)
            .arg(&release),
    );
    assert_password_not_printed(&shown);
    let report: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let db_url = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["name"] == "db_url")
        .expect("db_url")
        .clone();
    assert_eq!(db_url["effective"], "********", "{db_url:#}");

    let out = dir.path().join("out");
    let installed = output_within(&mut install_command(state.path(), &values, &out, &release));
    assert_eq!(
        installed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert_password_not_printed(&installed);
    assert_password_nowhere_in(state.path());
}
