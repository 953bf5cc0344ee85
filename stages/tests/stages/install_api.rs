//! The install API (`windlass_stages::install::install`) called as a library, as a daemon or a
//! replay would: progress arrives through the `Progress` trait (every stage started and finished,
//! in dependency order), the outcome comes back as data, the output directory is claimed (a
//! directory inside the state directory is refused with the class the CLI maps to exit 2), and a
//! pipeline file given as `PipelineChoice::File` runs only its stages.

use std::path::Path;
use std::sync::{Arc, Mutex};

use windlass_engine::runner::StartKind;
use windlass_engine::{InstallStatus, Progress, Services};
use windlass_stages::PipelineOptions;
use windlass_stages::install::{
    InstallEnvironment, InstallErrorClass, InstallOptions, PipelineChoice, StageFiles,
    check_release_dir, install,
};
use windlass_state::{Backend, SchemaRegistry, StateDir};

use crate::support::{copy_fixture, temp_dir};

/// Records every report, in order.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl Progress for Recorded {
    fn stage_started(&self, stage: &str, attempt: u32) {
        self.0
            .lock()
            .unwrap()
            .push(format!("started {stage} {attempt}"));
    }
    fn stage_finished(&self, stage: &str, succeeded: bool, _outcome: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("finished {stage} {succeeded}"));
    }
}

fn open_state(root: &Path) -> StateDir {
    let schemas =
        SchemaRegistry::new(&[windlass_engine::events::SCHEMAS, windlass_stages::SCHEMAS])
            .expect("the schema tables are consistent");
    StateDir::open(root, Backend::Redb, Arc::new(schemas)).expect("open the state directory")
}

fn offline() -> PipelineOptions {
    let mut options = PipelineOptions::default();
    options.probe.offline = true;
    options
}

fn options(release: &Path, out: Option<&Path>, pipeline: PipelineChoice) -> InstallOptions {
    InstallOptions {
        release_dir: check_release_dir(release).expect("the release is a directory"),
        license: None,
        requested_out: out.map(Path::to_path_buf),
        namespace: "acme".into(),
        force: false,
        pipeline,
        config_values: None,
        local_registry: None,
        stage_files: StageFiles::default(),
    }
}

fn environment<'a>(state: &'a StateDir, progress: Arc<dyn Progress>) -> InstallEnvironment<'a> {
    InstallEnvironment {
        state,
        state_shown: state.root(),
        actor: "tester@ci".into(),
        new_install_id: "api-1".into(),
        progress,
        services: Services::default(),
    }
}

#[tokio::test]
async fn install_reports_progress_through_the_trait_and_returns_the_outcome() {
    let (_release_dir, release) = copy_fixture("good/release");
    let work = temp_dir();
    let state = open_state(&work.path().join("state"));
    let out = work.path().join("out");
    let progress = Arc::new(Recorded::default());

    let outcome = install(
        &options(&release, Some(&out), PipelineChoice::BuiltIn(offline())),
        environment(&state, progress.clone()),
    )
    .await
    .expect("the install runs");

    assert_eq!(outcome.start, StartKind::Fresh);
    assert_eq!(outcome.state.install_id, "api-1");
    assert_eq!(
        outcome.state.status,
        InstallStatus::Completed,
        "{:?}",
        outcome.state.failure
    );
    assert!(out.join("rendered/this-cluster").is_dir());
    let reports = progress.0.lock().unwrap().clone();
    for stage in windlass_stages::default_pipeline(&offline()) {
        let started = reports
            .iter()
            .position(|report| report == &format!("started {} 1", stage.name));
        let finished = reports
            .iter()
            .position(|report| report == &format!("finished {} true", stage.name));
        assert!(
            matches!((started, finished), (Some(started), Some(finished)) if started < finished),
            "{} not reported as started then finished: {reports:?}",
            stage.name
        );
    }
}

#[tokio::test]
async fn install_claims_the_output_directory_and_runs_a_pipeline_file() {
    let (_release_dir, release) = copy_fixture("good/release");
    let work = temp_dir();
    let state = open_state(&work.path().join("state"));

    let inside_state = state.root().join("elsewhere");
    let refused = install(
        &options(
            &release,
            Some(&inside_state),
            PipelineChoice::BuiltIn(offline()),
        ),
        environment(&state, Arc::new(windlass_engine::NoProgress)),
    )
    .await
    .expect_err("the state directory is not an output directory");
    assert_eq!(refused.class(), InstallErrorClass::Refused, "{refused}");
    assert!(refused.to_string().starts_with("--out "), "{refused}");

    let pipeline = work.path().join("base.yaml");
    std::fs::write(
        &pipeline,
        "stages:\n  - {name: fetch_base, kind: fetch_base}\n  - {name: write_base, kind: write_base, inputs: [fetch_base]}\n",
    )
    .unwrap();
    let out = work.path().join("out");
    let outcome = install(
        &options(&release, Some(&out), PipelineChoice::File(pipeline)),
        environment(&state, Arc::new(windlass_engine::NoProgress)),
    )
    .await
    .expect("the install runs");
    assert_eq!(outcome.state.status, InstallStatus::Completed);
    assert_eq!(
        outcome
            .state
            .stages
            .iter()
            .map(|stage| stage.name.as_str())
            .collect::<Vec<_>>(),
        ["fetch_base", "write_base"]
    );
    assert!(out.join("base").is_dir());
    assert!(!out.join("rendered").exists());
}

#[test]
fn license_documents_are_never_kept_in_the_parsed_cache() {
    use windlass_manifest::documents::{ParsedCache, Reuse, parse_documents_with};
    let cache = ParsedCache::default();
    let license = std::fs::read(crate::support::fixture(
        "good/release/userdata/license.yaml",
    ))
    .expect("read the fixture license");
    let documents = parse_documents_with("userdata/license.yaml", &license, Reuse::Share(&cache))
        .expect("the license parses");
    assert!(documents.iter().any(|document| document.is_license()));
    assert!(cache.is_empty(), "the License was kept in the cache");
    let other = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
    parse_documents_with("a.yaml", other, Reuse::Share(&cache)).expect("parses");
    assert_eq!(cache.len(), 1, "other documents are still cached");
}
