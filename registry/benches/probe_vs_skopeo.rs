//! Benchmark for issue 3: probe 1,000 distinct image references held by real registries on
//! loopback — an open one and an htpasswd one, a few hundred repositories in all — with one
//! [`Prober`], and compare with the same work done one image at a time by `skopeo inspect --raw`
//! (timed on a sample and extrapolated). Prints wall time, requests made and the ratio.
//!
//! Run it with `cargo bench -p windlass-registry --bench probe_vs_skopeo`. It needs
//! `docker-registry`, `htpasswd` (apache2-utils) and `skopeo`, which `scripts/test.sh` installs.
//! To fill the registries quickly, one image is pushed to each with skopeo and its repository
//! directory is then copied in the registry's filesystem storage under new names (blobs are shared
//! by digest, so every copy is a complete repository the registry serves).

// The harness is shared with the integration tests, which use more of it than this program.
#[allow(dead_code)]
#[path = "../tests/registry/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../tests/registry/oci.rs"]
mod oci;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{RegistryAuth, TestRegistry, plain_http, target};
use windlass_registry::{ProbeConfig, ProbeOutcome, ProbeTarget, Prober};

/// Repositories per registry; each is probed by tag and by digest.
const REPOSITORIES_PER_REGISTRY: usize = 250;
/// References `skopeo inspect` is timed on, half from each registry.
const SKOPEO_SAMPLE: usize = 50;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let open = TestRegistry::open().await;
    let locked = TestRegistry::start(
        RegistryAuth::Htpasswd {
            username: "reader".to_owned(),
            password: "reader-password".to_owned(),
        },
        None,
    )
    .await;
    let scratch = tempfile::tempdir().expect("temporary directory");
    let mut targets: Vec<ProbeTarget> = Vec::new();
    for (registry, credentials) in [(&open, None), (&locked, Some("reader:reader-password"))] {
        let host = registry.host();
        let digest = oci::build_and_push(
            scratch.path(),
            &format!("bench {host}"),
            &format!("{host}/bench/seed:v1"),
            credentials,
        );
        let repositories = registry
            .directory
            .path()
            .join("storage/docker/registry/v2/repositories/bench");
        for n in 0..REPOSITORIES_PER_REGISTRY {
            let repository = format!("bench/repo-{n:03}");
            copy_directory(
                &repositories.join("seed"),
                &repositories.join(format!("repo-{n:03}")),
            );
            targets.push(target(
                &format!("{host}/{repository}:v1"),
                &host,
                &repository,
                "v1",
            ));
            targets.push(target(
                &format!("{host}/{repository}@{digest}"),
                &host,
                &repository,
                &digest,
            ));
        }
    }
    let total = targets.len();
    let repositories = 2 * REPOSITORIES_PER_REGISTRY;

    // The prober: every reference, default limits.
    let (_settings_dir, settings) = plain_http(&[&open.host(), &locked.host()]);
    let prober = Prober::new(settings, ProbeConfig::default()).expect("prober");
    let started = Instant::now();
    let results = prober.probe_all(targets.clone(), |_, _| {}).await;
    let prober_time = started.elapsed();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for result in &results {
        *outcomes.entry(result.outcome.as_str()).or_default() += 1;
        let expected = if result.target.registry == open.host() {
            ProbeOutcome::Public
        } else {
            ProbeOutcome::AuthRequired
        };
        assert_eq!(result.outcome, expected, "{result:?}");
    }

    // skopeo, one reference at a time, on a sample taken evenly from both registries.
    let step = total / SKOPEO_SAMPLE;
    let sample: Vec<&ProbeTarget> = targets.iter().step_by(step).take(SKOPEO_SAMPLE).collect();
    let mut skopeo_failures = 0;
    let started = Instant::now();
    for probe_target in &sample {
        let status = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "inspect",
                "--raw",
                "--tls-verify=false",
            ])
            .arg(format!("docker://{}", probe_target.image))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run skopeo inspect");
        if !status.success() {
            skopeo_failures += 1;
        }
    }
    let skopeo_sample_time = started.elapsed();
    let skopeo_extrapolated = Duration::from_secs_f64(
        skopeo_sample_time.as_secs_f64() * total as f64 / sample.len() as f64,
    );

    println!(
        "prober: {total} references ({repositories} repositories on 2 registries): {:.3} s, {} requests, outcomes {outcomes:?}",
        prober_time.as_secs_f64(),
        prober.requests_made(),
    );
    println!(
        "skopeo inspect --raw, one at a time: {} references in {:.2} s ({} refused: the htpasswd registry) -> {:.1} s extrapolated to {total}",
        sample.len(),
        skopeo_sample_time.as_secs_f64(),
        skopeo_failures,
        skopeo_extrapolated.as_secs_f64(),
    );
    println!(
        "ratio: the prober is {:.0}x faster",
        skopeo_extrapolated.as_secs_f64() / prober_time.as_secs_f64()
    );
}

fn copy_directory(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let destination = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_directory(&entry.path(), &destination);
        } else {
            std::fs::copy(entry.path(), destination).expect("copy file");
        }
    }
}
