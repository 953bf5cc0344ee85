//! The whole system end to end, on loopback with real tools: a vendor registry (Debian's
//! `docker-registry` with htpasswd) holds a private image under the upstream alias
//! `vendor.example`; `windlass proxy serve` fronts it with a license added by `windlass proxy
//! license add`; `windlass install` renders a release that uses the image with the proxy domain set
//! to the proxy's address; then `skopeo inspect`, authenticated only by the `.dockerconfigjson` of
//! the rendered pull secret, reaches the image **through the proxy** and sees the upstream's
//! digest. Revoking the license (named by its file) stops the next pull. The same for Docker Hub
//! images written without a registry host, through an upstream named `docker.io`. Also: the start-up
//! warning about an upstream that serves no app, and `proxy license add|revoke|list` as a user
//! runs them: revoke without the ID on the command line, no silent reinstatement, expired status,
//! `file:line` errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use windlass_testkit::{TestRegistry, free_port, require_tool};

use crate::{json, run, windlass};

const LICENSE_ID: &str = "e2e-7Hq2LicenseThroughTheProxy";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Kills the proxy when the test ends, however it ends.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    child.wait_with_output().unwrap().stdout
}

fn skopeo_inspect(image: &str, authfile: &Path) -> std::process::Output {
    Command::new(require_tool("skopeo", "skopeo"))
        .args(["inspect", "--tls-verify=false", "--authfile"])
        .arg(authfile)
        .arg(format!("docker://{image}"))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendered_pull_secret_pulls_through_the_proxy() {
    let upstream = TestRegistry::htpasswd().await;
    let digest = upstream.push_image("team/app:1.0", "vendor layer");
    let credentials = upstream.credentials().unwrap();
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    write(&work.path().join("reader.password"), &credentials.password);
    let config = work.path().join("proxy.yaml");
    write(
        &config,
        &format!(
            "listen: 127.0.0.1:{port}\nplain_http: true\nstate: ./proxy-state\nupstreams:\n  vendor.example:\n    endpoint: {}\n    username: {}\n    password_file: ./reader.password\n    apps: [my-app]\n",
            upstream.endpoint(),
            credentials.username
        ),
    );
    let license = work.path().join("release/userdata/license.yaml");
    write(
        &license,
        &format!(
            "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: {LICENSE_ID}\n  licenseSequence: 1\n"
        ),
    );
    let state = work.path().join("state");
    let added = run(windlass(&state)
        .args(["proxy", "license", "add", "--config"])
        .arg(&config)
        .arg(&license));
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let mut serving = Serving(
        windlass(&state)
            .args(["proxy", "serve", "--config"])
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = serving.0.stderr.take().unwrap();
    let (lines_sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_sender.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the proxy announces it is listening within 30 s");
        if line.contains("listening on") {
            break;
        }
    }

    // The release uses the image as the vendor wrote it; the install renders it through the proxy.
    write(
        &work.path().join("release/app.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n        - name: app\n          image: vendor.example/team/app:1.0\n",
    );
    let known = work.path().join("installation.yaml");
    write(
        &known,
        "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: my-app\nspec:\n  knownImages:\n    - image: vendor.example/team/app:1.0\n      isPrivate: true\n",
    );
    let proxy_host = format!("127.0.0.1:{port}");
    let install = json(run(windlass(&state)
        .args([
            "install",
            "--json",
            "--offline",
            "--proxy-domain",
            &proxy_host,
            "--known-images",
        ])
        .arg(&known)
        .arg(work.path().join("release"))));
    let out = Path::new(install["out"].as_str().unwrap()).join("rendered/this-cluster");
    let deployment = std::fs::read_to_string(out.join("app-deployment.yaml")).unwrap();
    let image = format!("{proxy_host}/proxy/my-app/vendor.example/team/app:1.0");
    assert!(deployment.contains(&image), "{deployment}");

    let authfile = authfile_of_rendered_secret(&out, work.path());

    let inspected = skopeo_inspect(&image, &authfile);
    assert!(
        inspected.status.success(),
        "{}",
        String::from_utf8_lossy(&inspected.stderr)
    );
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(
        inspected["Digest"],
        digest.as_str(),
        "the upstream's image, through the proxy"
    );

    let revoked = run(windlass(&state)
        .args(["proxy", "license", "revoke", "--config"])
        .arg(&config)
        .arg("--license-file")
        .arg(&license));
    assert!(revoked.status.success());
    let refused = skopeo_inspect(&image, &authfile);
    assert!(!refused.status.success(), "a revoked license pulls nothing");
}

/// The `.dockerconfigjson` of the pull secret in `rendered` (a `rendered/this-cluster`
/// directory), written to `<work>/auth.json` for `skopeo --authfile`.
fn authfile_of_rendered_secret(rendered: &Path, work: &Path) -> std::path::PathBuf {
    let secret = std::fs::read_to_string(rendered.join("my-app-registry-secret.yaml")).unwrap();
    let parsed =
        windlass_manifest::documents::parse_documents("secret", secret.as_bytes()).unwrap();
    let encoded = parsed[0].value["data"][".dockerconfigjson"]
        .as_str()
        .expect("the rendered secret has .dockerconfigjson")
        .to_string();
    let authfile = work.join("auth.json");
    std::fs::write(&authfile, decode_base64(&encoded)).unwrap();
    authfile
}

/// Docker Hub images written as vendors write them (`myorg/private:2.0`, `redis:7`,
/// `docker.io/nginx:1`, `index.docker.io/library/busybox:1`): `windlass install` renders each as
/// `<proxy>/proxy/my-app/<image as written>`, and `windlass proxy serve`, with Docker Hub
/// configured as the upstream `docker.io` (a real registry on loopback standing in for it),
/// serves every one of those references to the rendered pull secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_images_the_install_renders_pull_through_the_proxy() {
    let upstream = TestRegistry::htpasswd().await;
    let private = upstream.push_image("myorg/private:2.0", "an organisation's layer");
    let redis = upstream.push_image("library/redis:7", "an official layer");
    let nginx = upstream.push_image("library/nginx:1", "another official layer");
    let busybox = upstream.push_image("library/busybox:1", "a third official layer");
    let credentials = upstream.credentials().unwrap();
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    write(&work.path().join("reader.password"), &credentials.password);
    let config = work.path().join("proxy.yaml");
    write(
        &config,
        &format!(
            "listen: 127.0.0.1:{port}\nplain_http: true\nstate: ./proxy-state\nupstreams:\n  docker.io:\n    endpoint: {}\n    username: {}\n    password_file: ./reader.password\n    apps: [my-app]\n",
            upstream.endpoint(),
            credentials.username
        ),
    );
    let release = work.path().join("release");
    let license = release.join("userdata/license.yaml");
    write(
        &license,
        &format!(
            "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: {LICENSE_ID}\n  licenseSequence: 1\n"
        ),
    );
    let state = work.path().join("state");
    let added = run(windlass(&state)
        .args(["proxy", "license", "add", "--config"])
        .arg(&config)
        .arg(&license));
    assert!(added.status.success(), "{}", stderr_of(&added));
    let (_serving, _printed) = serve(&state, &config);

    // One repository per spelling: spellings of one repository share its first image's entry.
    let images = [
        ("myorg/private:2.0", &private),
        ("redis:7", &redis),
        ("docker.io/nginx:1", &nginx),
        ("index.docker.io/library/busybox:1", &busybox),
    ];
    for (index, (image, _)) in images.iter().enumerate() {
        write(
            &release.join(format!("pod-{index}.yaml")),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{index}\nspec:\n  containers:\n    - name: c\n      image: {image}\n"
            ),
        );
    }
    let proxy_host = format!("127.0.0.1:{port}");
    let install = json(run(windlass(&state)
        .args([
            "install",
            "--json",
            "--offline",
            "--proxy-domain",
            &proxy_host,
        ])
        .arg(&release)));
    assert_eq!(install["status"], "completed", "{install:#}");
    let rendered = Path::new(install["out"].as_str().unwrap()).join("rendered/this-cluster");
    let authfile = authfile_of_rendered_secret(&rendered, work.path());
    for (index, (written, digest)) in images.iter().enumerate() {
        let pod = std::fs::read_to_string(rendered.join(format!("pod-{index}-pod.yaml"))).unwrap();
        let image = format!("{proxy_host}/proxy/my-app/{written}");
        assert!(pod.contains(&format!("image: {image}\n")), "{pod}");
        let inspected = skopeo_inspect(&image, &authfile);
        assert!(
            inspected.status.success(),
            "{image}: {}",
            stderr_of(&inspected)
        );
        let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
        assert_eq!(inspected["Digest"], digest.as_str(), "{image}");
    }
}

/// Starts `windlass proxy serve --config <config>` and returns it with every stderr line it printed
/// up to and including the "listening on" line.
fn serve(state: &Path, config: &Path) -> (Serving, Vec<String>) {
    let mut serving = Serving(
        windlass(state)
            .args(["proxy", "serve", "--config"])
            .arg(config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = serving.0.stderr.take().unwrap();
    let (lines_sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_sender.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut printed = Vec::new();
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!("the proxy announces it is listening within 30 s: {printed:?}")
            });
        printed.push(line);
        if printed.last().unwrap().contains("listening on") {
            return (serving, printed);
        }
    }
}

#[test]
fn proxy_serve_warns_about_an_upstream_that_serves_no_app() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("proxy.yaml");
    write(
        &config,
        &format!(
            "listen: 127.0.0.1:{}\nplain_http: true\nstate: ./proxy-state\nupstreams:\n  vendor.example:\n    endpoint: http://127.0.0.1:9\n    apps: [my-app]\n  forgotten.example:\n    endpoint: http://127.0.0.1:9\n",
            free_port()
        ),
    );
    let (_serving, printed) = serve(&work.path().join("state"), &config);
    let warnings: Vec<&String> = printed
        .iter()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{printed:?}");
    assert!(
        warnings[0].contains("proxy.yaml")
            && warnings[0].contains("upstreams.forgotten.example.apps")
            && warnings[0].contains("serves no app"),
        "{printed:?}"
    );
}

#[test]
fn bad_apps_and_repositories_entries_are_named_with_the_file_and_key() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("proxy.yaml");
    for (binding, key) in [
        (
            "    apps: [my-app, My_App]\n",
            "upstreams.vendor.example.apps[1]",
        ),
        (
            "    apps: [my-app]\n    repositories: [team/app, /etc]\n",
            "upstreams.vendor.example.repositories[1]",
        ),
    ] {
        write(
            &config,
            &format!(
                "listen: 127.0.0.1:1\nplain_http: true\nstate: ./proxy-state\nupstreams:\n  vendor.example:\n    endpoint: http://127.0.0.1:9\n{binding}"
            ),
        );
        let refused = run(windlass(&work.path().join("state"))
            .args(["proxy", "serve", "--config"])
            .arg(&config));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(&format!("proxy.yaml: {key}: ")), "{stderr}");
    }
}

const SECOND_ID: &str = "cli-9Zr4SecondLicenseIdentifier";
const THIRD_ID: &str = "cli-3Kp8ThirdLicenseIdentifier";

/// A work directory with a proxy configuration (no upstreams needed to manage licenses) and
/// license files for [`LICENSE_ID`], [`SECOND_ID`] and [`THIRD_ID`], the third one expired.
struct Licenses {
    work: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Licenses {
    fn new() -> Licenses {
        let work = tempfile::tempdir().unwrap();
        let config = work.path().join("proxy.yaml");
        write(
            &config,
            "listen: 127.0.0.1:1\nplain_http: true\nstate: ./proxy-state\n",
        );
        for (name, id, expires) in [
            ("first.yaml", LICENSE_ID, ""),
            ("second.yaml", SECOND_ID, "2099-01-01T00:00:00Z"),
            ("third.yaml", THIRD_ID, "2020-01-01T00:00:00Z"),
        ] {
            write(
                &work.path().join(name),
                &format!(
                    "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: {id}\n  entitlements:\n    expires_at:\n      value: \"{expires}\"\n"
                ),
            );
        }
        Licenses { work, config }
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.work.path().join(name)
    }

    /// `windlass proxy license <subcommand> --config <config> <args...>`.
    fn license(&self, subcommand_and_args: &[&str]) -> Command {
        let (subcommand, args) = subcommand_and_args.split_first().unwrap();
        let mut command = windlass(&self.work.path().join("state"));
        command
            .args(["proxy", "license", subcommand, "--config"])
            .arg(&self.config)
            .args(args);
        command
    }

    fn add(&self, name: &str, extra: &[&str]) -> std::process::Output {
        run(self.license(&["add"]).arg(self.file(name)).args(extra))
    }

    fn list(&self) -> Vec<serde_json::Value> {
        json(run(&mut self.license(&["list", "--json"])))
            .as_array()
            .unwrap()
            .clone()
    }
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn license_revoke_takes_the_file_a_fingerprint_or_the_id_on_stdin() {
    let licenses = Licenses::new();
    for name in ["first.yaml", "second.yaml", "third.yaml"] {
        let added = licenses.add(name, &[]);
        assert!(added.status.success(), "{}", stderr_of(&added));
    }
    let fingerprint_of = |index: usize| {
        let added = json(run(licenses
            .license(&["add", "--json"])
            .arg(licenses.file(["first.yaml", "second.yaml", "third.yaml"][index]))));
        added[0]["fingerprint"].as_str().unwrap().to_string()
    };
    let fingerprints: Vec<String> = (0..3).map(fingerprint_of).collect();

    let by_file = run(licenses
        .license(&["revoke", "--license-file"])
        .arg(licenses.file("first.yaml")));
    assert!(by_file.status.success(), "{}", stderr_of(&by_file));

    // The fingerprint exactly as `license list` prints it.
    let listed = String::from_utf8(run(&mut licenses.license(&["list"])).stdout).unwrap();
    let printed = listed
        .lines()
        .find(|line| line.contains(&fingerprints[1]))
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_string();
    let by_fingerprint = run(&mut licenses.license(&["revoke", "--fingerprint", &printed]));
    assert!(
        by_fingerprint.status.success(),
        "{}",
        stderr_of(&by_fingerprint)
    );

    let mut child = licenses
        .license(&["revoke", "--id-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{THIRD_ID}\n").as_bytes(),
    )
    .unwrap();
    let by_stdin = child.wait_with_output().unwrap();
    assert!(by_stdin.status.success(), "{}", stderr_of(&by_stdin));

    let listed = licenses.list();
    assert_eq!(listed.len(), 3);
    for license in &listed {
        assert_eq!(license["status"], "revoked", "{listed:?}");
        assert_eq!(license["revoked"], true);
    }

    // An unknown fingerprint is "not found"; a malformed one is a command-line error that does
    // not repeat what was given.
    let unknown = run(&mut licenses.license(&[
        "revoke",
        "--fingerprint",
        "fp1:00000000000000000000000000000000",
    ]));
    assert_eq!(unknown.status.code(), Some(5), "{}", stderr_of(&unknown));
    let malformed = run(&mut licenses.license(&["revoke", "--fingerprint", SECOND_ID]));
    assert_eq!(
        malformed.status.code(),
        Some(2),
        "{}",
        stderr_of(&malformed)
    );
    assert!(
        stderr_of(&malformed).contains("--fingerprint")
            && !stderr_of(&malformed).contains(SECOND_ID),
        "{}",
        stderr_of(&malformed)
    );
    let empty = run(licenses
        .license(&["revoke", "--id-stdin"])
        .stdin(Stdio::null()));
    assert_eq!(empty.status.code(), Some(3), "{}", stderr_of(&empty));
    assert!(stderr_of(&empty).contains("stdin"), "{}", stderr_of(&empty));
}

#[test]
fn license_revoke_refuses_an_id_argument_without_repeating_it() {
    let licenses = Licenses::new();
    let added = licenses.add("first.yaml", &[]);
    assert!(added.status.success(), "{}", stderr_of(&added));
    for args in [
        vec!["revoke", LICENSE_ID],
        vec!["revoke", "--id-stdin", LICENSE_ID],
        vec!["revoke", LICENSE_ID, SECOND_ID],
    ] {
        let refused = run(licenses.license(&args).stdin(Stdio::null()));
        let stderr = stderr_of(&refused);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--license-file") && stderr.contains("--id-stdin"),
            "{stderr}"
        );
        assert!(
            !stderr.contains(LICENSE_ID) && !stderr.contains(SECOND_ID),
            "{stderr}"
        );
        assert!(refused.stdout.is_empty());
    }
    let nothing = run(&mut licenses.license(&["revoke"]));
    assert_eq!(nothing.status.code(), Some(2), "{}", stderr_of(&nothing));
    assert_eq!(
        licenses.list()[0]["status"],
        "active",
        "nothing was revoked"
    );
}

#[test]
fn re_adding_a_revoked_license_needs_reinstate() {
    let licenses = Licenses::new();
    assert!(licenses.add("first.yaml", &[]).status.success());
    let revoked = run(licenses
        .license(&["revoke", "--license-file"])
        .arg(licenses.file("first.yaml")));
    assert!(revoked.status.success(), "{}", stderr_of(&revoked));

    let again = licenses.add("first.yaml", &[]);
    let stderr = stderr_of(&again);
    assert_eq!(again.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("first.yaml")
            && stderr.contains("revoked")
            && stderr.contains("--reinstate"),
        "{stderr}"
    );
    assert!(!stderr.contains(LICENSE_ID), "{stderr}");
    assert_eq!(licenses.list()[0]["status"], "revoked", "still revoked");

    let reinstated = licenses.add("first.yaml", &["--reinstate"]);
    assert!(reinstated.status.success(), "{}", stderr_of(&reinstated));
    let listed = licenses.list();
    assert_eq!(listed[0]["status"], "active");
    assert_eq!(listed[0]["revoked"], false);
}

#[test]
fn license_list_shows_expired_licenses_as_expired() {
    let licenses = Licenses::new();
    for name in ["second.yaml", "third.yaml"] {
        assert!(licenses.add(name, &[]).status.success());
    }
    let listed = licenses.list();
    let status_of = |expires: &str| {
        listed
            .iter()
            .find(|license| license["expires_at"] == expires)
            .map(|license| license["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(status_of("2020-01-01T00:00:00Z"), "expired");
    assert_eq!(status_of("2099-01-01T00:00:00Z"), "active");

    let text = String::from_utf8(run(&mut licenses.license(&["list"])).stdout).unwrap();
    let line_of = |expires: &str| {
        text.lines()
            .find(|line| line.contains(expires))
            .unwrap()
            .to_string()
    };
    assert!(line_of("2020-01-01").contains("  expired"), "{text}");
    assert!(line_of("2099-01-01").contains("  active"), "{text}");
}

#[test]
fn license_add_errors_give_the_file_and_line() {
    let licenses = Licenses::new();
    let head = "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n";
    for (body, at, problem) in [
        (
            format!("  licenseID: {LICENSE_ID}: x\n"),
            7,
            "not valid YAML",
        ),
        (
            "  licenseSequence: 1\n".to_string(),
            5,
            "no `spec.licenseID`",
        ),
        (
            format!(
                "  licenseID: {LICENSE_ID}\n  entitlements:\n    expires_at:\n      value: someday\n"
            ),
            10,
            "RFC 3339",
        ),
        (
            format!(
                "  licenseID: {LICENSE_ID}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"
            ),
            9,
            "a license file may hold only its License, but it also holds ConfigMap/extra (document 2, line 9)",
        ),
    ] {
        let file = licenses.file("license.yaml");
        write(&file, &format!("{head}{body}"));
        let refused = licenses.add("license.yaml", &[]);
        let stderr = stderr_of(&refused);
        assert_eq!(refused.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(&format!("license.yaml:{at}: ")) && stderr.contains(problem),
            "{stderr}"
        );
        assert!(!stderr.contains(LICENSE_ID), "{stderr}");
    }
}
