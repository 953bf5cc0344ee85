//! Shared test support: fixture paths, copying a fixture release into a temporary directory so a
//! test may change it, snapshot comparison of text files and whole directory trees (rewritten when
//! `UPDATE_EXPECT=1`), chart archives built in memory, the raw-bytes search for the license ID, and [`Installer`]: the real engine
//! (`Pipeline`, `Runner`) over a real redb-backed `StateDir` in a temporary directory, with the
//! stages of this crate registered exactly as the binary registers them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tempfile::TempDir;
use windlass_engine::{
    InstallRequest, InstallState, License, NoProgress, Pipeline, Runner, StageRegistry,
};
use windlass_stages::license::read_license;
use windlass_stages::release::{Limits, Release, scan};
use windlass_state::{Backend, SchemaRegistry, StateDir};

/// The license ID in every fixture license. It must never appear in the state or output directory,
/// nor in any error message.
pub const LICENSE_ID: &str = "2Xq9LicenseIdMustNeverLeak7Kp";

/// The namespace every test install uses.
pub const NAMESPACE: &str = "example";

/// A path under `tests/stages/fixtures/`.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/stages/fixtures")
        .join(relative)
}

/// A gzip-compressed tar holding `entries` (path, contents), as `helm package` writes a chart.
pub fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, contents) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, *contents)
            .expect("add a tar entry");
    }
    builder
        .into_inner()
        .expect("finish the tar")
        .finish()
        .expect("finish the gzip stream")
}

/// A chart archive of chart `name` at `version`: `<name>/Chart.yaml` and `<name>/values.yaml`.
pub fn chart_archive(name: &str, version: &str) -> Vec<u8> {
    let chart_yaml = format!("apiVersion: v2\nname: {name}\nversion: {version}\n");
    tar_gz(&[
        (&format!("{name}/Chart.yaml"), chart_yaml.as_bytes()),
        (&format!("{name}/values.yaml"), b"replicas: 1\n"),
    ])
}

/// Whether expected files should be rewritten instead of compared.
fn updating() -> bool {
    std::env::var("UPDATE_EXPECT").is_ok_and(|value| value == "1")
}

/// A fresh temporary directory.
pub fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// Copies the directory tree `from` to `to` (created), regular files and directories only.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk the fixture");
        let target = to.join(entry.path().strip_prefix(from).expect("inside the fixture"));
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).expect("create a directory");
        } else {
            fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}

/// Copies the fixture release `name` into a new temporary directory, returning it and the copy.
pub fn copy_fixture(name: &str) -> (TempDir, PathBuf) {
    let dir = temp_dir();
    let release = dir.path().join("release");
    copy_tree(&fixture(name), &release);
    (dir, release)
}

/// Every regular file under `root` (symlinks not followed), by `/`-separated relative path.
pub fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.expect("walk a directory");
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(root).expect("inside the root");
            let relative = relative.to_str().expect("UTF-8 path").replace('\\', "/");
            files.insert(relative, fs::read(entry.path()).expect("read a file"));
        }
    }
    files
}

/// Compares `actual` with the file `expected` (or rewrites it under `UPDATE_EXPECT=1`).
pub fn expect_file(expected: &Path, actual: &str) {
    if updating() {
        fs::create_dir_all(expected.parent().expect("a parent")).expect("create the parent");
        fs::write(expected, actual).expect("write the expected file");
        return;
    }
    let wanted = fs::read_to_string(expected).unwrap_or_else(|error| {
        panic!("{}: {error} (run with UPDATE_EXPECT=1)", expected.display())
    });
    assert_eq!(
        actual,
        wanted,
        "differs from {} (run with UPDATE_EXPECT=1 to accept)",
        expected.display()
    );
}

/// Compares the tree `actual` with the tree `expected` file by file, byte for byte (or replaces
/// `expected` with a copy of `actual` under `UPDATE_EXPECT=1`).
pub fn expect_tree(expected: &Path, actual: &Path) {
    if updating() {
        if expected.exists() {
            fs::remove_dir_all(expected).expect("clear the expected tree");
        }
        copy_tree(actual, expected);
        return;
    }
    let actual_files = files_under(actual);
    let expected_files = files_under(expected);
    assert_eq!(
        actual_files.keys().collect::<Vec<_>>(),
        expected_files.keys().collect::<Vec<_>>(),
        "file lists differ from {} (run with UPDATE_EXPECT=1 to accept)",
        expected.display()
    );
    for (path, bytes) in &actual_files {
        assert!(
            expected_files[path] == *bytes,
            "{path} differs from {} (run with UPDATE_EXPECT=1 to accept):\n{}",
            expected.display(),
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Every regular file under `root` (recursively, symlinks not followed) whose bytes contain
/// `needle`, the records the event log stores compressed included
/// ([`windlass_testkit::file_holds`]).
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.expect("walk a directory");
        if !entry.file_type().is_file() {
            continue;
        }
        if windlass_testkit::file_holds(entry.path(), needle) {
            found.push(entry.path().display().to_string());
        }
    }
    found
}

/// Panics naming every file under `root` whose bytes contain the license ID (see
/// [`files_containing`]).
pub fn assert_no_license_id(root: &Path) {
    let leaks = files_containing(root, LICENSE_ID.as_bytes());
    assert!(leaks.is_empty(), "the license ID leaked into {leaks:?}");
}

/// Asserts that `message` does not quote the license ID.
pub fn assert_no_license_id_in(message: &str) {
    assert!(
        !message.contains(LICENSE_ID),
        "message quotes the license ID: {message}"
    );
}

/// Scans a release with the default limits, panicking on error.
pub fn scan_ok(root: &Path) -> Release {
    scan(root, &Limits::default(), |_, _| {}).unwrap_or_else(|error| panic!("scan failed: {error}"))
}

/// The real engine with this crate's stages over a state directory in a temporary directory.
pub struct Installer {
    /// Keeps the state directory alive.
    _dir: TempDir,
    /// The opened state directory.
    pub state: StateDir,
    /// The runner over it.
    pub runner: Runner,
    /// The pipeline, built.
    pub pipeline: Pipeline,
}

impl Installer {
    /// Opens a fresh state directory and builds the fetch and write stages.
    pub fn new() -> Installer {
        Installer::with_pipeline(&windlass_stages::base_pipeline())
    }

    /// Opens a fresh state directory and builds `specs`.
    pub fn with_pipeline(specs: &[windlass_engine::StageSpec]) -> Installer {
        let dir = temp_dir();
        let schemas =
            SchemaRegistry::new(&[windlass_engine::events::SCHEMAS, windlass_stages::SCHEMAS])
                .expect("the schema tables are consistent");
        let state = StateDir::open(&dir.path().join("state"), Backend::Redb, Arc::new(schemas))
            .expect("open the state directory");
        let runner = Runner {
            log: state.log.clone(),
            blobs: state.blobs.clone(),
            fingerprint_key: state.fingerprint_key.clone(),
            actor: "tester@ci".into(),
            progress: Arc::new(NoProgress),
            memo: Default::default(),
            services: Default::default(),
        };
        let pipeline = Pipeline::build(specs, &StageRegistry::new(&windlass_stages::stage_kinds()))
            .expect("the pipeline builds");
        Installer {
            _dir: dir,
            state,
            runner,
            pipeline,
        }
    }

    /// The state directory.
    pub fn state_root(&self) -> &Path {
        self.state.root()
    }

    /// Reads the license at `path` with this state directory's fingerprint key.
    pub fn license(&self, path: &Path) -> License {
        read_license(path, &self.state.fingerprint_key)
            .unwrap_or_else(|error| panic!("read_license failed: {error}"))
    }

    /// A request to install `release` into `out`, as the binary builds it: the digest from a scan,
    /// the license from the release's own license file.
    pub fn request(&self, release: &Path, out: &Path) -> InstallRequest {
        let scanned = scan_ok(release);
        let license = scanned
            .license_file()
            .map(|file| self.license(&release.join(file)));
        InstallRequest {
            release_dir: release.to_path_buf(),
            release_digest: scanned.digest(),
            out_dir: out.to_path_buf(),
            requested_out: None,
            namespace: NAMESPACE.into(),
            license,
            config_values: None,
            local_registry: None,
            carried_config_values: None,
            kind: windlass_engine::InstallKind::Install,
        }
    }

    /// Starts (or resumes) `request` as install `install_id` and runs it to the end.
    pub async fn install(&self, request: InstallRequest, install_id: &str) -> InstallState {
        let (state, _) = self
            .runner
            .start(&self.pipeline, Arc::new(request), install_id)
            .await
            .unwrap_or_else(|error| panic!("the runner failed: {error}"));
        state
    }
}

/// The single fact of type `event_type` recorded by `stage` of `state`, decoded.
pub fn fact<T: DeserializeOwned>(state: &InstallState, stage: &str, event_type: &str) -> T {
    let stage_state = state
        .stages
        .iter()
        .find(|candidate| candidate.name == stage)
        .unwrap_or_else(|| panic!("no stage {stage}"));
    let events: Vec<_> = stage_state
        .fact_events
        .iter()
        .filter(|event| event.event_type == event_type)
        .collect();
    assert_eq!(
        events.len(),
        1,
        "{stage} recorded {} {event_type}",
        events.len()
    );
    serde_json::from_value(events[0].payload.clone())
        .unwrap_or_else(|error| panic!("{event_type} does not decode: {error}"))
}
