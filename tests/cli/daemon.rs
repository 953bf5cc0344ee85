//! `windlass watch`, end to end through the real binary: releases dropped into a watched
//! directory while the daemon runs (a partial copy is not taken before its quiet period; a
//! renamed-in release is taken at once), many at once in version order, a bad release recorded as
//! failed while the daemon goes on, a bundle, `kill -9` mid-install and a restart that resumes
//! without a duplicate, SIGTERM between stages, a kernel event queue overflowed (the daemon
//! stopped with SIGSTOP while tens of thousands of files appear) with every release still taken
//! once, and the status API and metrics. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{quickstart, windlass};

/// A running `windlass watch` with its status API on a loopback port.
pub(crate) struct Watcher {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) address: String,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watcher {
    /// Starts `windlass watch DIR --offline --listen 0` with `extra` arguments and `env`.
    pub(crate) fn start(state: &Path, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Watcher {
        let mut command = windlass(state);
        command
            .arg("watch")
            .arg(dir)
            .args(["--offline", "--listen", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("windlass watch starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut watcher = Watcher {
            child,
            address: String::new(),
            lines,
            seen: Vec::new(),
        };
        let line = watcher.wait_for_line("console on http://", 30);
        watcher.address = line
            .split("http://")
            .nth(1)
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        // Ready once its first scan is done, which comes after the file watch is set up: what a
        // test writes from now on is seen as it happens.
        let deadline = Instant::now() + Duration::from_secs(60);
        while watcher.get("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "windlass watch is not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        watcher
    }

    /// Waits (at most `seconds`) for a stderr line containing `needle`.
    pub(crate) fn wait_for_line(&mut self, needle: &str, seconds: u64) -> String {
        if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!(
                        "windlass watch printed no line with {needle:?} within {seconds} s; it printed:\n{}",
                        self.seen.join("\n")
                    )
                });
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// GET `path`: status and body.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        http(&self.address, "GET", path, None)
    }

    /// GET `path` as JSON (status 200).
    pub(crate) fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {path}: {error}: {body}"))
    }

    /// Waits (at most `seconds`) until `/api/releases` satisfies `done`; returns it.
    pub(crate) fn wait_for_releases(&self, seconds: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let releases = self.json("/api/releases");
            if done(&releases) {
                return releases;
            }
            assert!(
                Instant::now() < deadline,
                "not reached within {seconds} s: {releases:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: libc::c_int) {
        assert_eq!(send_signal(self.child.id(), signal), 0);
    }

    /// Waits (at most `seconds`) for the process to exit; its exit code.
    fn wait_exit(&mut self, seconds: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "windlass watch did not exit within {seconds} s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends `signal` to `pid` through the `kill` command (the workspace forbids `unsafe`).
pub(crate) fn send_signal(pid: u32, signal: libc::c_int) -> i32 {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    status.code().unwrap_or(-1)
}

/// A minimal HTTP/1.1 request over loopback (bounded by a 30 s timeout).
pub(crate) fn http(address: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    http_with_body(address, method, path, token, "")
}

/// [`http`] with a JSON body.
pub(crate) fn http_with_body(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("the server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    // Some servers keep the connection open: read exactly the body announced.
    let mut body = Vec::new();
    match length {
        Some(length) => {
            body.resize(length, 0);
            reader.read_exact(&mut body).unwrap();
        }
        None => {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let body = if lower.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A copy of the quickstart in `dir/name`, its Application labelled with `version`, one image
/// tag changed so each version has its own digest.
pub(crate) fn release_copy(dir: &Path, name: &str, version: &str) -> PathBuf {
    let target = dir.join(name);
    copy_tree(&quickstart(), &target);
    let app = target.join("kots-app.yaml");
    let text = std::fs::read_to_string(&app).unwrap().replace(
        "metadata:\n  name: my-app\n",
        &format!(
            "metadata:\n  name: my-app\n  labels:\n    app.kubernetes.io/version: \"{version}\"\n"
        ),
    );
    let text = text.replace("sidecar:1", &format!("sidecar:{version}"));
    std::fs::write(&app, text).unwrap();
    target
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub(crate) fn releases_named<'a>(releases: &'a Value, name: &str) -> Option<&'a Value> {
    releases["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|release| release["name"] == name)
}

pub(crate) fn status_of(releases: &Value, name: &str) -> String {
    releases_named(releases, name)
        .map(|release| release["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Every `ReleaseDetected` payload in the log, in order (through `windlass export`).
pub(crate) fn detections(state: &Path) -> Vec<Value> {
    recorded(state, "ReleaseDetected")
}

fn recorded(state: &Path, event_type: &str) -> Vec<Value> {
    let output = crate::state_integrity::run_within(windlass(state).arg("export"), 60);
    assert!(
        output.status.success(),
        "{}",
        crate::state_integrity::text(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["event_type"] == event_type)
        .map(|record| record["payload"].clone())
        .collect()
}

pub(crate) fn installs(watcher: &Watcher) -> Vec<Value> {
    watcher.json("/api/installs").as_array().unwrap().clone()
}

/// A release copied file by file, slower than the quiet period in all, is not taken until its
/// content has stayed the same for the quiet period; then it is taken once, whole.
#[test]
fn a_partial_copy_is_not_taken_before_its_quiet_period() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 4 s of quiet against a file every 800 ms: a stall of seconds stays below it.
    let watcher = Watcher::start(state.path(), dir.path(), &["--quiet-period", "4s"], &[]);
    let source = release_copy(state.path(), "source", "1.0.0");
    let target = dir.path().join("app");
    std::fs::create_dir(&target).unwrap();
    let files = crate::files_under(&source);
    let started = Instant::now();
    // One file every 800 ms: each write restarts the quiet period.
    for file in &files {
        let relative = file.strip_prefix(&source).unwrap();
        std::fs::create_dir_all(target.join(relative).parent().unwrap()).unwrap();
        std::fs::copy(file, target.join(relative)).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let releases = watcher.json("/api/releases");
        assert!(
            ["waiting", "empty", ""].contains(&status_of(&releases, "app").as_str()),
            "taken while still being copied: {releases:#}"
        );
        assert!(installs(&watcher).is_empty(), "installed early");
    }
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the copy outlasted the quiet period"
    );
    let releases =
        watcher.wait_for_releases(30, |releases| status_of(releases, "app") == "completed");
    assert_eq!(
        releases_named(&releases, "app").unwrap()["files"],
        files.len()
    );
    let detected = detections(state.path());
    assert_eq!(detected.len(), 1, "{detected:#?}");
    assert_eq!(detected[0]["taken_because"], "quiet_period");
    assert_eq!(detected[0]["files"], files.len());
    assert_eq!(installs(&watcher).len(), 1);
}

/// A release moved into the directory by a rename is taken at once, long before a quiet period of
/// a minute would end.
#[test]
fn a_renamed_in_release_is_taken_at_once() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::start(state.path(), dir.path(), &["--quiet-period", "60s"], &[]);
    watcher.wait_for_releases(30, |_| true);
    let staged = release_copy(state.path(), "staged", "1.0.0");
    let moved_at = Instant::now();
    std::fs::rename(&staged, dir.path().join("app")).unwrap();
    watcher.wait_for_releases(30, |releases| status_of(releases, "app") == "completed");
    assert!(
        moved_at.elapsed() < Duration::from_secs(20),
        "took {:?}",
        moved_at.elapsed()
    );
    let detected = detections(state.path());
    assert_eq!(detected.len(), 1);
    assert_eq!(detected[0]["taken_because"], "renamed");
}

/// Many releases present at once are each installed once, one at a time, in version order (the
/// Application's version label, numerically), and a bad one is recorded as failed with its error
/// while the daemon goes on with the next.
#[test]
fn many_releases_at_once_install_once_each_in_version_order_and_a_bad_one_fails_alone() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let versions = ["1.10.0", "1.2.0", "1.9.3", "2.0.0", "1.2.10", "0.9.0"];
    for (index, version) in versions.iter().enumerate() {
        let release = release_copy(dir.path(), &format!("release-{index}"), version);
        std::fs::write(release.join(".ready"), "").unwrap();
    }
    let bad = release_copy(dir.path(), "release-bad", "1.5.0");
    std::fs::write(bad.join("manifests/broken.yaml"), "kind: [\n").unwrap();
    std::fs::write(bad.join(".ready"), "").unwrap();
    let watcher = Watcher::start(state.path(), dir.path(), &[], &[]);
    let releases = watcher.wait_for_releases(180, |releases| {
        let seen = releases["releases"].as_array().unwrap();
        seen.len() == versions.len() + 1
            && seen.iter().all(|release| {
                ["completed", "failed"].contains(&release["status"].as_str().unwrap())
            })
    });
    assert_eq!(status_of(&releases, "release-bad"), "failed");
    let taken = releases["taken"].as_array().unwrap();
    let bad_taken = taken
        .iter()
        .find(|taken| taken["name"] == "release-bad")
        .unwrap();
    assert!(
        bad_taken["error"].as_str().unwrap().contains("broken.yaml"),
        "{bad_taken:#}"
    );
    let detected = detections(state.path());
    let order: Vec<&str> = detected
        .iter()
        .map(|detected| detected["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "0.9.0", "1.2.0", "1.2.10", "1.5.0", "1.9.3", "1.10.0", "2.0.0"
        ]
    );
    assert!(
        detected
            .iter()
            .all(|detected| detected["taken_because"] == "ready_marker")
    );
    let installs = installs(&watcher);
    assert_eq!(installs.len(), 7, "one install per release");
    let finished = recorded(state.path(), "ReleaseFinished");
    assert_eq!(finished.len(), 7);
    // One at a time: each install started after the previous one finished.
    let mut by_start: Vec<&Value> = installs.iter().collect();
    by_start.sort_by_key(|install| install["started_at"].as_str().unwrap().to_string());
    for pair in by_start.windows(2) {
        let first = watcher.json(&format!(
            "/api/installs/{}",
            pair[0]["install_id"].as_str().unwrap()
        ));
        assert!(
            first["finished_at"].as_str().unwrap() <= pair[1]["started_at"].as_str().unwrap(),
            "installs overlapped: {} and {}",
            pair[0]["install_id"],
            pair[1]["install_id"]
        );
    }
}

/// A `.tar.gz` bundle renamed in is unpacked under the state directory and installed.
#[test]
fn a_bundle_is_unpacked_under_the_state_directory_and_installed() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = release_copy(state.path(), "source", "3.1.0");
    let watcher = Watcher::start(state.path(), dir.path(), &["--quiet-period", "60s"], &[]);
    let staged = dir.path().join(".app.tar.gz.partial");
    let output = Command::new("tar")
        .arg("-czf")
        .arg(&staged)
        .arg("-C")
        .arg(&source)
        .arg(".")
        .output()
        .unwrap();
    assert!(output.status.success());
    std::fs::rename(&staged, dir.path().join("app-3.1.0.tar.gz")).unwrap();
    let releases = watcher.wait_for_releases(60, |releases| {
        status_of(releases, "app-3.1.0.tar.gz") == "completed"
    });
    let release = releases_named(&releases, "app-3.1.0.tar.gz").unwrap();
    assert_eq!(release["kind"], "bundle");
    assert_eq!(release["version"], "3.1.0");
    let install = watcher.json(&format!(
        "/api/installs/{}",
        release["install_id"].as_str().unwrap()
    ));
    let unpacked = std::fs::canonicalize(state.path().join("watch/bundles")).unwrap();
    assert!(
        install["release_dir"]
            .as_str()
            .unwrap()
            .starts_with(unpacked.to_str().unwrap()),
        "{install:#}"
    );
}

/// `kill -9` while an install is between stages, then a restart: the same install resumes (no
/// second install, no second `ReleaseDetected`) and completes.
#[test]
fn kill_9_mid_install_then_restart_resumes_without_a_duplicate() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let release = release_copy(dir.path(), "app", "1.0.0");
    std::fs::write(release.join(".ready"), "").unwrap();
    let mut first = Watcher::start(
        state.path(),
        dir.path(),
        &[],
        &[("WINDLASS_PAUSE_AFTER_STAGE", "probe_images")],
    );
    first.wait_for_line("paused after stage probe_images", 60);
    let install_id = detections(state.path())[0]["install_id"]
        .as_str()
        .unwrap()
        .to_string();
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    drop(first);

    let second = Watcher::start(state.path(), dir.path(), &[], &[]);
    let releases =
        second.wait_for_releases(60, |releases| status_of(releases, "app") == "completed");
    assert_eq!(
        releases_named(&releases, "app").unwrap()["install_id"],
        install_id.as_str()
    );
    let install = second.json(&format!("/api/installs/{install_id}"));
    assert_eq!(install["status"], "completed");
    assert_eq!(install["resumed"], 1, "the same install resumed");
    assert_eq!(installs(&second).len(), 1, "no duplicate install");
    assert_eq!(detections(state.path()).len(), 1, "taken once");
    let events = second.json(&format!("/api/installs/{install_id}/events"));
    let fetched = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            event["type"] == "StageStarted" && event["payload"]["stage"] == "fetch_base"
        })
        .count();
    assert_eq!(fetched, 1, "fetch_base ran once");
    // The daemon's release streams are not installs: `history` lists the one install only.
    for json in [false, true] {
        let mut command = windlass(state.path());
        command.arg("history");
        if json {
            command.arg("--json");
        }
        let output = crate::run(&mut command);
        let text = crate::state_integrity::text(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            crate::state_integrity::text(&output.stderr)
        );
        assert!(text.contains(&install_id), "{text}");
        assert!(!text.contains("release-"), "{text}");
    }
}

/// SIGTERM while an install waits between stages: the daemon exits 0 without running another
/// stage, and the next start finishes the install.
#[test]
fn sigterm_stops_after_the_running_stage_and_the_install_resumes() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let release = release_copy(dir.path(), "app", "1.0.0");
    std::fs::write(release.join(".ready"), "").unwrap();
    let mut first = Watcher::start(
        state.path(),
        dir.path(),
        &[],
        &[("WINDLASS_PAUSE_AFTER_STAGE", "fetch_base")],
    );
    first.wait_for_line("paused after stage fetch_base", 60);
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_exit(30), Some(0));
    let install_id = detections(state.path())[0]["install_id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = crate::json(crate::run(windlass(state.path()).args([
        "show",
        &install_id,
        "--json",
    ])));
    assert_eq!(shown["status"], "incomplete");
    assert_eq!(shown["stages"][0]["status"], "completed");
    assert_eq!(
        shown["stages"][1]["status"], "pending",
        "no stage ran after SIGTERM"
    );
    drop(first);
    let second = Watcher::start(state.path(), dir.path(), &[], &[]);
    second.wait_for_releases(60, |releases| status_of(releases, "app") == "completed");
    assert_eq!(installs(&second).len(), 1);
}

/// The kernel's event queue overflows (the daemon is stopped with SIGSTOP while 40,000 files
/// appear under the watched directory and releases are renamed in): the daemon rescans on the
/// overflow and still takes every release exactly once.
#[test]
fn an_overflowed_event_queue_still_takes_every_release_once() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let noise = dir.path().join(".noise");
    std::fs::create_dir(&noise).unwrap();
    let watcher = Watcher::start(state.path(), dir.path(), &["--quiet-period", "1s"], &[]);
    watcher.wait_for_releases(30, |_| true);
    let staged: Vec<PathBuf> = (0..5)
        .map(|index| {
            release_copy(
                state.path(),
                &format!("staged-{index}"),
                &format!("4.0.{index}"),
            )
        })
        .collect();
    watcher.signal(libc::SIGSTOP);
    // Each file makes create, modify and close-write events: far beyond the queue's 16,384.
    for index in 0..40_000 {
        std::fs::write(noise.join(format!("{index}.txt")), b"x").unwrap();
    }
    for (index, staged) in staged.iter().enumerate() {
        std::fs::rename(staged, dir.path().join(format!("app-{index}"))).unwrap();
    }
    watcher.signal(libc::SIGCONT);
    let releases = watcher.wait_for_releases(180, |releases| {
        (0..5).all(|index| status_of(releases, &format!("app-{index}")) == "completed")
    });
    assert_eq!(releases["taken"].as_array().unwrap().len(), 5);
    assert_eq!(detections(state.path()).len(), 5, "each release taken once");
    assert_eq!(installs(&watcher).len(), 5);
    let (_, metrics) = watcher.get("/metrics");
    let overflow = metrics
        .lines()
        .find(|line| line.starts_with("windlass_watch_rescans_total{cause=\"overflow\"}"))
        .unwrap_or_else(|| panic!("no overflow rescan counted:\n{metrics}"));
    let count: u64 = overflow.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1, "{overflow}");
}

/// The status API and metrics: health and readiness, installs and their events, the diff of two
/// installs, what the watcher sees, Prometheus text with installs by result, stage histograms,
/// probe outcomes, rescans and the last success; state-changing requests refused without the
/// token (and when none was configured), accepted with it.
#[test]
fn status_api_and_metrics_report_what_the_log_holds() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = state.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    for (name, version) in [("app-1", "1.0.0"), ("app-2", "1.1.0")] {
        let release = release_copy(dir.path(), name, version);
        std::fs::write(release.join(".ready"), "").unwrap();
    }
    let watcher = Watcher::start(
        state.path(),
        dir.path(),
        &["--api-token-file", token_file.to_str().unwrap()],
        &[],
    );
    assert_eq!(watcher.get("/healthz"), (200, "ok\n".into()));
    let releases = watcher.wait_for_releases(120, |releases| {
        status_of(releases, "app-1") == "completed" && status_of(releases, "app-2") == "completed"
    });
    assert_eq!(watcher.get("/readyz").0, 200);
    let installs = installs(&watcher);
    assert_eq!(installs.len(), 2);
    let first = releases_named(&releases, "app-1").unwrap()["install_id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = releases_named(&releases, "app-2").unwrap()["install_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        releases_named(&releases, "app-1").unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("never installed again unless asked")
    );
    let install = watcher.json(&format!("/api/installs/{first}"));
    assert_eq!(install["status"], "completed");
    assert_eq!(install["app_slug"], "my-app");
    let events = watcher.json(&format!("/api/installs/{first}/events"));
    assert_eq!(events[0]["type"], "InstallStarted");
    let diff = watcher.json(&format!("/api/installs/{first}/diff/{second}"));
    assert!(
        diff["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|change| change["kind"] == "image_added"
                && change["subject"]
                    .as_str()
                    .unwrap()
                    .contains("sidecar:1.1.0")),
        "{diff:#}"
    );
    assert_eq!(watcher.get("/api/installs/no-such-install").0, 404);

    let (status, metrics) = watcher.get("/metrics");
    assert_eq!(status, 200);
    for expected in [
        "windlass_installs_total{result=\"completed\"} 2",
        "windlass_installs_total{result=\"failed\"} 0",
        "windlass_stage_duration_seconds_count{stage=\"fetch_base\",result=\"completed\"} 2",
        "windlass_stage_duration_seconds_bucket{stage=\"render_midstream\",result=\"completed\",le=\"+Inf\"} 2",
        "windlass_image_probes_total{outcome=\"unreachable\"}",
        "windlass_watch_rescans_total{cause=\"start\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
    let last = metrics
        .lines()
        .find(|line| line.starts_with("windlass_release_last_applied_timestamp "))
        .unwrap();
    let last: f64 = last.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(last > 1.7e9, "{last}");

    // State changes need the token.
    let digest = releases_named(&releases, "app-1").unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let reinstall = format!("/api/releases/{digest}/reinstall");
    assert_eq!(http(&watcher.address, "POST", &reinstall, None).0, 401);
    assert_eq!(
        http(&watcher.address, "POST", &reinstall, Some("wrong")).0,
        401
    );
    let (status, body) = http(&watcher.address, "POST", &reinstall, Some("s3cret-token"));
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while detections(state.path()).len() < 3 || crate::daemon::installs(&watcher).len() < 3 {
        assert!(Instant::now() < deadline, "the reinstall did not run");
        std::thread::sleep(Duration::from_millis(100));
    }
    watcher.wait_for_releases(60, |releases| status_of(releases, "app-1") == "completed");
    let detected = detections(state.path());
    assert_eq!(detected[2]["taken_because"], "reinstall");
    assert_eq!(detected[2]["digest"], digest.as_str());
}

/// Without `--api-token-file` the API is read-only: a state-changing request is refused with 403.
#[test]
fn without_a_token_file_the_api_is_read_only() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::start(state.path(), dir.path(), &[], &[]);
    let (status, body) = http(
        &watcher.address,
        "POST",
        "/api/releases/sha256:00/reinstall",
        Some("anything"),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--api-token-file"), "{body}");
}

/// With `additionalNamespaces: ["*"]` and `--target kube`, the pull secret, and the
/// `useHelmInstall: true` chart's (`tiny` as release `first`, installed by the real helm 4),
/// reach namespaces that existed at the install (the apply stage copies them) and, while the
/// daemon runs, namespaces created afterwards. The cluster is `windlass-test-apiserver`, a FAKE Kubernetes API server
/// from this workspace (no real kube-apiserver can be installed here); it serves watches.
#[test]
fn pull_secrets_follow_namespaces_created_while_the_daemon_runs() {
    use windlass_test_apiserver::{Options, TestApiServer};
    let server = TestApiServer::start(Options::default()).expect("the fake API server starts");
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = state.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let namespace = |name: &str| serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    server.create_as("test", namespace("before")).unwrap();
    let release = dir.path().join("app");
    std::fs::create_dir_all(release.join("manifests")).unwrap();
    std::fs::create_dir_all(release.join("userdata")).unwrap();
    std::fs::copy(
        quickstart().join("userdata/license.yaml"),
        release.join("userdata/license.yaml"),
    )
    .unwrap();
    std::fs::write(
        release.join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: Test\n  additionalNamespaces:\n    - \"*\"\n",
    )
    .unwrap();
    std::fs::write(
        release.join("manifests/config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n",
    )
    .unwrap();
    std::fs::create_dir_all(release.join("charts")).unwrap();
    std::fs::write(
        release.join("charts/tiny-1.0.0.tgz"),
        windlass_testkit::charts::chart_archive(&crate::helm_install::tiny_chart()),
    )
    .unwrap();
    std::fs::write(
        release.join("manifests/tiny.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: tiny\nspec:\n  chart:\n    name: tiny\n    chartVersion: 1.0.0\n    releaseName: first\n  useHelmInstall: true\n",
    )
    .unwrap();
    std::fs::write(release.join(".ready"), "").unwrap();
    let helm = crate::helm_install::helm();
    let watcher = Watcher::start(
        state.path(),
        dir.path(),
        &[
            "--target",
            "kube",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--wait-timeout",
            "30s",
            "--helm",
            helm.to_str().unwrap(),
        ],
        &[],
    );
    watcher.wait_for_releases(60, |releases| status_of(releases, "app") == "completed");
    for name in ["my-app-registry", "my-app-first-registry"] {
        assert!(
            server.get("v1", "Secret", "before", name).is_some(),
            "the apply stage copied {name} into the namespace that existed"
        );
    }
    assert!(
        server
            .get("v1", "ConfigMap", "default", "first-config")
            .is_some(),
        "helm installed the chart"
    );
    server.create_as("test", namespace("late")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ["my-app-registry", "my-app-first-registry"]
        .iter()
        .any(|name| server.get("v1", "Secret", "late", name).is_none())
    {
        assert!(
            Instant::now() < deadline,
            "the pull secrets did not reach the namespace created later within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let copied = server
        .get("v1", "Secret", "late", "my-app-registry")
        .unwrap();
    let original = server
        .get("v1", "Secret", "default", "my-app-registry")
        .unwrap();
    assert_eq!(copied["type"], original["type"]);
    assert_eq!(copied["data"], original["data"], "the same pull secret");
    let chart_copy = server
        .get("v1", "Secret", "late", "my-app-first-registry")
        .unwrap();
    assert_eq!(chart_copy["data"], original["data"], "a copy of the same");
    // The copy is on the record; the namespace that had its copy already is not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let copies = loop {
        let copies = recorded(state.path(), "PullSecretsCopied");
        if !copies.is_empty() || Instant::now() > deadline {
            break copies;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(copies.len(), 1, "{copies:#?}");
    assert_eq!(copies[0]["namespace"], "late");
    assert_eq!(
        copies[0]["secrets"],
        serde_json::json!(["my-app-registry", "my-app-first-registry"])
    );
    let uids: Vec<&str> = copies[0]["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|copy| copy["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        uids,
        [
            copied["metadata"]["uid"].as_str().unwrap(),
            chart_copy["metadata"]["uid"].as_str().unwrap()
        ]
    );
    assert_eq!(
        copied["metadata"]["annotations"]["windlass.io/app"],
        "my-app"
    );
    let (_, metrics) = watcher.get("/metrics");
    assert!(
        metrics.lines().any(
            |line| line.starts_with("windlass_pull_secret_copies_total ")
                && line != "windlass_pull_secret_copies_total 0"
        ),
        "{metrics}"
    );

    // The next release no longer lists "*": its apply deletes the copies, the daemon's as well
    // as the apply's, and the daemon copies nothing into a namespace created after it.
    let next = dir.path().join("app-2");
    for file in crate::files_under(&release) {
        let target = next.join(file.strip_prefix(&release).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    std::fs::remove_file(next.join(".ready")).unwrap();
    std::fs::write(
        next.join("kots-app.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: Test\n",
    )
    .unwrap();
    std::fs::write(next.join(".ready"), "").unwrap();
    watcher.wait_for_releases(60, |releases| status_of(releases, "app-2") == "completed");
    for namespace in ["before", "late"] {
        for name in ["my-app-registry", "my-app-first-registry"] {
            assert!(
                server.get("v1", "Secret", namespace, name).is_none(),
                "{namespace}/{name} was left"
            );
        }
    }
    server.create_as("test", namespace("after-drop")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        server
            .get("v1", "Secret", "after-drop", "my-app-registry")
            .is_none(),
        "the earlier install's follower stopped"
    );
}

/// Bad command lines and inputs are refused with the documented exit codes, naming what is wrong;
/// a second daemon on the same state directory is refused while the first runs.
#[test]
fn watch_refuses_bad_input_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("no-such-dir");
    let output =
        crate::state_integrity::run_within(windlass(state.path()).arg("watch").arg(&missing), 30);
    assert_eq!(output.status.code(), Some(3));
    let stderr = crate::state_integrity::text(&output.stderr);
    assert!(
        stderr.contains("watched directory") && stderr.contains("no-such-dir"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let output = crate::state_integrity::run_within(
        windlass(state.path())
            .arg("watch")
            .arg(dir.path())
            .args(["--reinstall", "abc"]),
        30,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        crate::state_integrity::text(&output.stderr)
            .contains("--reinstall abc: not a release digest")
    );

    let empty_token = state.path().join("token");
    std::fs::write(&empty_token, "\n").unwrap();
    let output = crate::state_integrity::run_within(
        windlass(state.path())
            .arg("watch")
            .arg(dir.path())
            .arg("--api-token-file")
            .arg(&empty_token),
        30,
    );
    assert_eq!(output.status.code(), Some(3));
    let stderr = crate::state_integrity::text(&output.stderr);
    assert!(
        stderr.contains("--api-token-file") && stderr.contains("empty"),
        "{stderr}"
    );

    let _first = Watcher::start(state.path(), dir.path(), &[], &[]);
    let output =
        crate::state_integrity::run_within(windlass(state.path()).arg("watch").arg(dir.path()), 30);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        crate::state_integrity::text(&output.stderr).contains("another windlass watch is running"),
        "{}",
        crate::state_integrity::text(&output.stderr)
    );
}

/// The daemon's own reads (its scans open every directory and file, its installs read the
/// release) are not changes: once everything is installed, an idle daemon does not rescan until
/// its timer.
#[test]
fn an_idle_daemon_does_not_rescan_because_of_its_own_reads() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for index in 0..3 {
        let release = release_copy(dir.path(), &format!("app-{index}"), &format!("1.0.{index}"));
        std::fs::write(release.join(".ready"), "").unwrap();
    }
    let watcher = Watcher::start(state.path(), dir.path(), &[], &[]);
    watcher.wait_for_releases(120, |releases| {
        (0..3).all(|index| status_of(releases, &format!("app-{index}")) == "completed")
    });
    let rescans = || -> u64 {
        let (_, metrics) = watcher.get("/metrics");
        metrics
            .lines()
            .filter(|line| line.starts_with("windlass_watch_rescans_total{"))
            .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    std::thread::sleep(Duration::from_secs(1));
    let before = rescans();
    // Reading the releases from outside is not a change either.
    for file in crate::files_under(dir.path()) {
        std::fs::read(file).unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rescans(), before, "rescanned while idle");
}

/// `--poll` watches without file-system events: releases are found by the periodic rescans.
#[test]
fn poll_mode_finds_releases_by_rescanning() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::start(
        state.path(),
        dir.path(),
        &["--poll", "200ms", "--quiet-period", "500ms"],
        &[],
    );
    release_copy(dir.path(), "app", "1.0.0");
    watcher.wait_for_releases(60, |releases| status_of(releases, "app") == "completed");
    let (_, metrics) = watcher.get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("windlass_watch_rescans_total{cause=\"poll\"}")),
        "{metrics}"
    );
    assert!(
        !metrics.contains("cause=\"event\""),
        "no file-system events in poll mode:\n{metrics}"
    );
}

/// A digest taken before is installed again only when asked: a restart leaves it alone, a restart
/// with `--reinstall DIGEST` installs it once more.
#[test]
fn a_taken_digest_is_installed_again_only_with_reinstall() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let release = release_copy(dir.path(), "app", "1.0.0");
    std::fs::write(release.join(".ready"), "").unwrap();
    let first = Watcher::start(state.path(), dir.path(), &[], &[]);
    let releases =
        first.wait_for_releases(60, |releases| status_of(releases, "app") == "completed");
    let digest = releases_named(&releases, "app").unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    drop(first);
    let second = Watcher::start(state.path(), dir.path(), &[], &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(status_of(&second.json("/api/releases"), "app"), "completed");
    assert_eq!(
        installs(&second).len(),
        1,
        "not installed again after a restart"
    );
    drop(second);
    let third = Watcher::start(state.path(), dir.path(), &["--reinstall", &digest], &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while installs(&third).len() < 2
        || status_of(&third.json("/api/releases"), "app") != "completed"
    {
        assert!(
            Instant::now() < deadline,
            "--reinstall did not install again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let detected = detections(state.path());
    assert_eq!(detected.len(), 2);
    assert_eq!(detected[1]["taken_because"], "reinstall");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(installs(&third).len(), 2, "reinstalled once, not again");
}
