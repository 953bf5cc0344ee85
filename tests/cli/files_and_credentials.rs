//! Hostile files handed to the real binary: a FIFO, `/dev/zero` and a symlink to a FIFO where a
//! file is expected (every run has a deadline: a process still running after it is killed and the
//! test fails), a password written inline in `--registries` or the proxy's configuration (the
//! password must appear in no output and no byte of the state directory), an OS error printed
//! once, and an unresolvable registry host reported as "no network".

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::{files_under, quickstart, windlass};

/// How long a refused run may take.
const DEADLINE: Duration = Duration::from_secs(20);

const SECRET: &str = "hunter2-secret";

/// Runs `command` to the end, killing it and failing the test if it outlives [`DEADLINE`].
fn run_bounded(command: &mut Command) -> Output {
    windlass_testkit::output_within(command, DEADLINE, "windlass")
}

fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit code 3 and every `expected` piece in stderr.
fn assert_refused(output: &Output, expected: &[&str]) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for piece in expected {
        assert!(stderr.contains(piece), "{piece:?} missing from: {stderr}");
    }
}

/// Asserts `needle` is in neither stream nor any file under `root` (if it exists).
fn assert_nowhere(needle: &str, output: &Output, root: &Path) {
    for stream in [&output.stdout, &output.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(needle),
            "{needle} printed: {}",
            String::from_utf8_lossy(stream)
        );
    }
    if !root.exists() {
        return;
    }
    for file in files_under(root) {
        let bytes = windlass_testkit::scannable_bytes(&file);
        assert!(
            !bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes()),
            "{needle} found in {}",
            file.display()
        );
    }
}

#[test]
fn special_files_given_for_file_flags_are_refused_at_once() {
    let work = tempfile::tempdir().unwrap();
    let fifo = work.path().join("fifo.yaml");
    make_fifo(&fifo);
    let zero = Path::new("/dev/zero");
    let state = work.path().join("state");
    for flag in ["--license", "--known-images", "--config", "--registries"] {
        for (path, kind) in [(fifo.as_path(), "FIFO"), (zero, "character device")] {
            let shown = path.display().to_string();
            let expected = [shown.as_str(), &format!("not a regular file ({kind})")];
            let install = run_bounded(
                windlass(&state)
                    .args(["install", "--offline", flag])
                    .arg(path)
                    .arg(quickstart()),
            );
            assert_refused(&install, &expected);
            // `images` reads --config always and the probing files with --probe.
            let mut images = windlass(&state);
            images.args(["images", "--offline"]);
            match flag {
                "--license" => continue,
                "--config" => images.arg(flag),
                _ => images.args(["--probe", flag]),
            };
            let images = run_bounded(images.arg(path).arg(quickstart()));
            assert_refused(&images, &expected);
        }
    }
}

#[test]
fn a_symlink_to_a_fifo_inside_a_release_is_refused_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let release = work.path().join("release");
    std::fs::create_dir_all(release.join("manifests")).unwrap();
    std::fs::write(
        release.join("manifests/app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    )
    .unwrap();
    make_fifo(&release.join("manifests/pipe"));
    std::os::unix::fs::symlink("pipe", release.join("manifests/link.yaml")).unwrap();
    let state = work.path().join("state");
    let expected = ["manifests/link.yaml: not a regular file (FIFO)"];
    let install = run_bounded(
        windlass(&state)
            .args(["install", "--offline"])
            .arg(&release),
    );
    assert_refused(&install, &expected);
    let images = run_bounded(windlass(&state).arg("images").arg(&release));
    assert_refused(&images, &expected);
}

/// A `--registries` file with the password inline, and one with a YAML error on the password
/// line, given to `install` and `images --probe`.
#[test]
fn a_password_in_the_registries_file_is_refused_and_never_printed_or_stored() {
    let work = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!(
                "registries:\n  vendor.example:\n    username: reader\n    password: {SECRET}\n"
            ),
            r#"registries["vendor.example"].password: passwords are not written in this file: name a file holding it with password_file, or an environment variable with password_env"#,
        ),
        (
            format!(
                "registries:\n  vendor.example:\n    username: reader\n    password: \"{SECRET}\n"
            ),
            ":4:15: registries.vendor.example.password: not valid YAML",
        ),
        (
            format!(
                "registries:\n  vendor.example:\n    username: reader\n    password: {SECRET}: x\n"
            ),
            "registries.vendor.example.password: not valid YAML",
        ),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let registries = work.path().join(format!("registries-{index}.yaml"));
        std::fs::write(&registries, text).unwrap();
        let shown = registries.display().to_string();
        let state = work.path().join(format!("state-{index}"));
        let install = run_bounded(
            windlass(&state)
                .args(["install", "--offline", "--registries"])
                .arg(&registries)
                .arg(quickstart()),
        );
        assert_refused(&install, &[shown.as_str(), expected]);
        assert_nowhere(SECRET, &install, &state);
        let images = run_bounded(
            windlass(&state)
                .args(["images", "--probe", "--offline", "--registries"])
                .arg(&registries)
                .arg(quickstart()),
        );
        assert_refused(&images, &[shown.as_str(), expected]);
        assert_nowhere(SECRET, &images, &state);
    }
}

fn write_proxy_config(work: &Path, upstream: &str) -> std::path::PathBuf {
    let config = work.join("proxy.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{}\nplain_http: true\nstate: ./proxy-state\nupstreams:\n  vendor.example:\n    endpoint: http://127.0.0.1:9\n{upstream}",
            windlass_testkit::free_port()
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_password_in_the_proxy_config_is_refused_and_never_printed_or_stored() {
    let cases = [
        (
            format!("    username: reader\n    password: {SECRET}\n"),
            "upstreams.vendor.example.password: passwords are not written in this file",
        ),
        (
            format!("    username: reader\n    password: \"{SECRET}\n"),
            ":8:15: upstreams.vendor.example.password: not valid YAML",
        ),
    ];
    for (upstream, expected) in cases {
        let work = tempfile::tempdir().unwrap();
        let config = write_proxy_config(work.path(), &upstream);
        let shown = config.display().to_string();
        let serve = run_bounded(
            windlass(&work.path().join("state"))
                .args(["proxy", "serve", "--config"])
                .arg(&config),
        );
        assert_refused(&serve, &[shown.as_str(), expected]);
        assert_nowhere(SECRET, &serve, &work.path().join("proxy-state"));
        assert_nowhere(SECRET, &serve, &work.path().join("state"));
    }
}

/// The proxy's `--config`, the files it names, and `proxy license add`'s file.
#[test]
fn special_files_in_the_proxy_config_are_refused_at_once() {
    let work = tempfile::tempdir().unwrap();
    let fifo = work.path().join("fifo");
    make_fifo(&fifo);
    let fifo = fifo.display().to_string();
    let state = work.path().join("state");
    let serve = |config: &Path| {
        run_bounded(
            windlass(&state)
                .args(["proxy", "serve", "--config"])
                .arg(config),
        )
    };
    for (path, kind) in [(fifo.as_str(), "FIFO"), ("/dev/zero", "character device")] {
        let problem = format!("not a regular file ({kind})");
        assert_refused(&serve(Path::new(path)), &[path, "file", &problem]);
        for (upstream, key) in [
            (
                format!("    username: reader\n    password_file: {path}\n"),
                "upstreams.vendor.example.password_file",
            ),
            (
                format!("    ca_file: {path}\n"),
                "upstreams.vendor.example.ca_file",
            ),
        ] {
            let config = write_proxy_config(work.path(), &upstream);
            assert_refused(&serve(&config), &[key, &problem]);
        }
        let config = write_proxy_config(work.path(), "");
        let added = run_bounded(
            windlass(&state)
                .args(["proxy", "license", "add", "--config"])
                .arg(&config)
                .arg(path),
        );
        assert_refused(&added, &[&format!("license file {path}: "), &problem]);
        for key in ["cert_file", "key_file"] {
            let other = work.path().join("other.pem");
            std::fs::write(&other, "not used").unwrap();
            let (cert, tls_key) = if key == "cert_file" {
                (path.to_owned(), other.display().to_string())
            } else {
                (other.display().to_string(), path.to_owned())
            };
            let config = work.path().join("tls.yaml");
            std::fs::write(
                &config,
                format!(
                    "listen: 127.0.0.1:1\nstate: ./proxy-state\ntls:\n  cert_file: {cert}\n  key_file: {tls_key}\n"
                ),
            )
            .unwrap();
            assert_refused(&serve(&config), &[&format!("tls.{key}"), path, &problem]);
        }
    }
}

#[test]
fn an_os_error_is_printed_once() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let missing_license = work.path().join("missing-license.yaml");
    let install = run_bounded(
        windlass(&state)
            .args(["install", "--offline", "--license"])
            .arg(&missing_license)
            .arg(quickstart()),
    );
    let missing_release = work.path().join("missing-release");
    let no_release = run_bounded(
        windlass(&state)
            .args(["install", "--offline"])
            .arg(&missing_release),
    );
    for (output, path) in [(install, &missing_license), (no_release, &missing_release)] {
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert_eq!(
            stderr.matches("No such file or directory").count(),
            1,
            "{stderr}"
        );
    }
}

/// `.invalid` never resolves (RFC 6761), so this stays off the network whatever the machine has.
#[test]
fn an_unresolvable_registry_is_reported_as_no_network() {
    let work = tempfile::tempdir().unwrap();
    let release = work.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(
        release.join("app.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          image: registry.windlass-test.invalid/team/app:1.0\n",
    )
    .unwrap();
    let output = run_bounded(
        windlass(&work.path().join("state"))
            .args(["images", "--probe", "--json"])
            .arg(&release),
    );
    let images: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    let reason = images[0]["reason"].as_str().unwrap();
    assert_eq!(images[0]["outcome"], "unreachable");
    assert!(
        reason.ends_with("no network (DNS lookup failed)") && !reason.contains("lookup address"),
        "{reason}"
    );
}
