//! Helpers of these tests that know windlass-registry: probe targets, quick limits, settings
//! loaded as the prober loads them, and one-call probing. The registries, images and servers
//! themselves come from `windlass_testkit`.

use std::path::Path;
use std::time::Duration;

use windlass_registry::{ProbeConfig, ProbeResult, ProbeTarget, Prober, RegistrySettings};
use windlass_testkit::RegistriesFile;

#[allow(
    unused_imports,
    reason = "`benches/probe_vs_skopeo.rs` includes this file (and `oci.rs`) by path and names \
              the harness through it; the tests use `windlass_testkit` directly"
)]
pub use windlass_testkit::{RegistryAuth, TestRegistry};

/// A target as the stage would build it.
pub fn target(image: &str, registry: &str, repository: &str, reference: &str) -> ProbeTarget {
    ProbeTarget {
        image: image.to_owned(),
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        reference: reference.to_owned(),
    }
}

/// Limits for tests: short deadline and retry waits, so failures are quick.
pub fn quick_config() -> ProbeConfig {
    ProbeConfig {
        request_deadline: Duration::from_secs(5),
        max_retry_after: Duration::from_millis(500),
        ..ProbeConfig::default()
    }
}

/// Writes `file` into `directory` and loads it as the prober would.
pub fn load_settings(directory: &Path, file: &RegistriesFile) -> RegistrySettings {
    RegistrySettings::load(&file.write(directory)).expect("load settings")
}

/// Settings that route `host` to plain HTTP at the same address, as a user would write for a
/// loopback registry without TLS.
pub fn plain_http(hosts: &[&str]) -> (tempfile::TempDir, RegistrySettings) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let file = hosts
        .iter()
        .fold(RegistriesFile::new(), |file, host| file.plain_http(host));
    let settings = load_settings(directory.path(), &file);
    (directory, settings)
}

/// Probes `targets` with a fresh prober and returns the results and the requests made.
pub async fn probe(
    settings: RegistrySettings,
    config: ProbeConfig,
    targets: Vec<ProbeTarget>,
) -> (Vec<ProbeResult>, u64) {
    let prober = Prober::new(settings, config).expect("build prober");
    let results = prober.probe_all(targets, |_, _| {}).await;
    (results, prober.requests_made())
}
