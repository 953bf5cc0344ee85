//! The daemon's web console in real headless Chromium, driven over WebDriver by Debian's
//! `chromedriver` on loopback: the installs list, one install's stage timeline and image table
//! checked against what the log holds (through the JSON API), the diff page showing a changed
//! image, no console errors on any page, and a screenshot of each page checked for its size.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::daemon::{Watcher, http, http_with_body, release_copy, releases_named, status_of};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 1024;

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    address: String,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            &self.address,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl Browser {
    fn start() -> Browser {
        for tool in ["chromium", "chromedriver"] {
            assert!(
                installed(tool),
                "{tool} is missing: run 'apt-get install -y chromium chromium-driver' (scripts/test.sh does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(&address).is_ok() {
                let (status, body) = http(&address, "GET", "/status", None);
                if status == 200 && body.contains("\"ready\":true") {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--disable-extensions",
                            "--disable-background-networking",
                            format!("--window-size={WIDTH},{HEIGHT}"),
                        ]
                    },
                    "goog:loggingPrefs": { "browser": "ALL" }
                }
            }
        });
        let mut browser = Browser {
            driver,
            address,
            session: String::new(),
        };
        let created = browser.call("POST", "/session", Some(&capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created:#}"))
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        let body = if method == "POST" && body.is_empty() {
            "{}".to_string()
        } else {
            body
        };
        let (status, text) = http_with_body(&self.address, method, path, None, &body);
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}: {text}"));
        assert_eq!(status, 200, "{method} {path}: {value:#}");
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` in the page and returns its result.
    fn run(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// The text of every cell of every body row of the table `#id`.
    fn table(&self, id: &str) -> Vec<Vec<String>> {
        let rows = self.run(&format!(
            "return Array.from(document.querySelectorAll('#{id} tbody tr')).map(r => Array.from(r.cells).map(c => c.innerText.trim()));"
        ));
        serde_json::from_value(rows).unwrap()
    }

    /// The browser's console messages since the last call, failing on any error.
    fn assert_no_console_errors(&self, page: &str) {
        let entries = self.session_call("POST", "/se/log", Some(&json!({ "type": "browser" })));
        let errors: Vec<&Value> = entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE" || entry["level"] == "WARNING")
            .collect();
        assert!(errors.is_empty(), "{page}: console errors: {errors:#?}");
    }

    /// A screenshot of the page, checked to be a PNG of the viewport's size with real content;
    /// written to `dir`.
    fn screenshot(&self, dir: &Path, name: &str) -> usize {
        let encoded = self.session_call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        let viewport: Vec<f64> = serde_json::from_value(self.run(
            "return [window.innerWidth * window.devicePixelRatio, window.innerHeight * window.devicePixelRatio];",
        ))
        .unwrap();
        assert_eq!(
            (f64::from(width), f64::from(height)),
            (viewport[0], viewport[1]),
            "{name}: the screenshot is the viewport"
        );
        assert_eq!(width, WIDTH, "{name}: screenshot width");
        assert!(height > HEIGHT / 2, "{name}: screenshot height {height}");
        // A blank page of this size compresses to about 5 KB; text and tables make it larger.
        assert!(
            png.len() > 15_000,
            "{name}: {} bytes, nearly blank",
            png.len()
        );
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        png.len()
    }
}

/// The duration as the console prints it.
fn shown_duration(milliseconds: &Value) -> String {
    match milliseconds.as_u64() {
        Some(ms) if ms >= 1000 => format!("{:.2} s", ms as f64 / 1000.0),
        Some(ms) => format!("{ms} ms"),
        None => "-".into(),
    }
}

#[test]
fn the_web_console_shows_installs_timeline_images_and_diff_in_headless_chromium() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shots = tempfile::tempdir().unwrap();
    for (name, version) in [("app-1", "1.0.0"), ("app-2", "1.1.0")] {
        let release = release_copy(dir.path(), name, version);
        std::fs::write(release.join(".ready"), "").unwrap();
    }
    // A release that fails, so that a failed install and its error are shown too.
    let bad = release_copy(dir.path(), "app-bad", "0.1.0");
    std::fs::write(bad.join("manifests/broken.yaml"), "kind: [\n").unwrap();
    std::fs::write(bad.join(".ready"), "").unwrap();
    let watcher = Watcher::start(state.path(), dir.path(), &[], &[]);
    let releases = watcher.wait_for_releases(120, |releases| {
        status_of(releases, "app-1") == "completed"
            && status_of(releases, "app-2") == "completed"
            && status_of(releases, "app-bad") == "failed"
    });
    let id_of = |name: &str| {
        releases_named(&releases, name).unwrap()["install_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (first, second, failed) = (id_of("app-1"), id_of("app-2"), id_of("app-bad"));
    let base = format!("http://{}", watcher.address);
    let browser = Browser::start();

    // The installs list.
    browser.open(&format!("{base}/"));
    let title = browser.run("return document.title;");
    assert_eq!(title, "installs · windlass");
    let rows = browser.table("installs");
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (id, status) in [
        (&first, "completed"),
        (&second, "completed"),
        (&failed, "failed"),
    ] {
        let row = rows.iter().find(|row| &row[0] == id).unwrap();
        assert_eq!(row[1..3], ["install", "my-app"]);
        assert_eq!(row[3], status);
    }
    assert_eq!(browser.table("releases").len(), 3);
    browser.assert_no_console_errors("/");
    browser.screenshot(shots.path(), "installs");

    // One install: its timeline and images as the log holds them.
    let install = watcher.json(&format!("/api/installs/{second}"));
    browser.open(&format!("{base}/installs/{second}"));
    let timeline = browser.table("timeline");
    let stages = install["stages"].as_array().unwrap();
    assert_eq!(timeline.len(), stages.len());
    for (row, stage) in timeline.iter().zip(stages) {
        assert_eq!(row[0], stage["name"].as_str().unwrap());
        assert_eq!(row[2], stage["status"].as_str().unwrap());
        assert_eq!(row[4], shown_duration(&stage["duration_ms"]));
    }
    let events = watcher.json(&format!("/api/installs/{second}/events"));
    let probed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "ImagesProbed")
        .unwrap();
    let recorded: Vec<&Value> = probed["payload"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let images = browser.table("images");
    assert_eq!(images.len(), recorded.len());
    for (row, image) in images.iter().zip(&recorded) {
        assert_eq!(row[0], image["image"].as_str().unwrap());
        assert_eq!(row[1], image["outcome"].as_str().unwrap());
        assert_eq!(row[2], image["decision"].as_str().unwrap());
    }
    assert!(images.iter().any(|row| row[0].contains("sidecar:1.1.0")));
    // Each image's rewrite is the one `plan_overrides` recorded for it.
    let planned = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "OverridesPlanned")
        .unwrap();
    let mut rewritten = 0;
    for row in &images {
        let entry = planned["payload"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["image"].as_str() == Some(row[0].as_str()));
        match entry {
            Some(entry) => {
                rewritten += 1;
                let expected = format!(
                    "{} → {}",
                    entry["name"].as_str().unwrap(),
                    entry["new_name"].as_str().unwrap()
                );
                assert_eq!(row[5], expected, "{row:?}");
            }
            None => assert!(row[5].starts_with("none"), "{row:?}"),
        }
    }
    assert!(rewritten > 0, "no rewrite shown: {images:?}");
    let secrets = browser.table("secrets");
    assert!(!secrets.is_empty());
    let page_text = browser.run("return document.body.innerText;");
    assert!(
        !page_text
            .as_str()
            .unwrap()
            .contains(crate::QUICKSTART_LICENSE_AUTH),
        "a pull secret's content is never shown"
    );
    browser.assert_no_console_errors("install page");
    browser.screenshot(shots.path(), "install");

    // The failed install's error in its timeline.
    browser.open(&format!("{base}/installs/{failed}"));
    let timeline = browser.table("timeline");
    assert_eq!(timeline[0][2], "failed");
    assert!(timeline[0][6].contains("broken.yaml"), "{:?}", timeline[0]);
    browser.assert_no_console_errors("failed install page");

    // The diff page shows the changed image.
    browser.open(&format!("{base}/installs/{first}/diff/{second}"));
    let changes = browser.table("changes");
    assert!(
        changes
            .iter()
            .any(|row| row[1] == "image_added" && row[2].contains("sidecar:1.1.0")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|row| row[1] == "image_removed" && row[2].contains("sidecar:1.0.0")),
        "{changes:?}"
    );
    browser.assert_no_console_errors("diff page");
    browser.screenshot(shots.path(), "diff");
}
