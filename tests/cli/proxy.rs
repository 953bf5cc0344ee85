//! The whole system end to end, on loopback with real tools: a vendor registry (Debian's
//! `docker-registry` with htpasswd) holds a private image under the upstream alias
//! `vendor.example`; `windlass proxy serve` fronts it with a license added by `windlass proxy
//! license add`; `windlass install` renders a release that uses the image with the proxy domain set
//! to the proxy's address; then `skopeo inspect`, authenticated only by the `.dockerconfigjson` of
//! the rendered pull secret, reaches the image **through the proxy** and sees the upstream's
//! digest. Revoking the license stops the next pull.

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

    let secret = std::fs::read_to_string(out.join("my-app-registry-secret.yaml")).unwrap();
    let parsed = windlass_stages::documents::parse_documents("secret", secret.as_bytes()).unwrap();
    let encoded = parsed[0].value["data"][".dockerconfigjson"]
        .as_str()
        .expect("the rendered secret has .dockerconfigjson")
        .to_string();
    let authfile = work.path().join("auth.json");
    std::fs::write(&authfile, decode_base64(&encoded)).unwrap();

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
        .arg(LICENSE_ID));
    assert!(revoked.status.success());
    let refused = skopeo_inspect(&image, &authfile);
    assert!(!refused.status.success(), "a revoked license pulls nothing");
}
