//! Test support for windlass, and nothing else: a library used only as a dev-dependency by the
//! workspace's integration tests, benches and the binary's end-to-end tests. Never depend on it
//! from shipped code.
//!
//! It drives real tools: CNCF distribution registries (`docker-registry serve`) started on
//! 127.0.0.1 and killed on drop ([`TestRegistry`]: open, htpasswd, token auth, optionally TLS),
//! tiny OCI images built here and pushed with `skopeo copy` ([`TestRegistry::push_image`],
//! [`oci`]), and `htpasswd` for registry users. A test that needs a tool which is not installed
//! fails with a message naming the package and the command that installs it (`scripts/test.sh`
//! installs them all). Alongside: a token server for `auth: token` registries
//! ([`TokenServer`]), stubs for failures a real registry cannot be made to produce
//! ([`StubRegistry`], [`SilentServer`], [`ClosingServer`]), certificates ([`certs`]) and a
//! builder for `--registries` settings files ([`RegistriesFile`]).
//!
//! The real `kubectl` 1.33 (kustomize v5.6) and `helm` are oracles ([`kube_tools`]):
//! [`kustomize_build`] and [`helm_template`] run them and parse what they print, and
//! [`assert_same_objects`] compares two sets of Kubernetes objects by identity. They live in
//! `target/tools/bin/`, where `scripts/install-kube-tools.sh` puts them.
//!
//! Everything listens on 127.0.0.1 only; every wait (a registry starting, a tool running) is
//! bounded, and failures panic with a message that says what went wrong, as test helpers should.
//!
//! ```no_run
//! # async fn example() {
//! use windlass_testkit::{RegistriesFile, TestRegistry};
//!
//! let registry = TestRegistry::htpasswd().await;
//! let digest = registry.push_image("team/app:v1", "any content");
//! let directory = tempfile::tempdir().unwrap();
//! let settings = RegistriesFile::new()
//!     .route_with_credentials("vendor.example", &registry)
//!     .write(directory.path());
//! // `windlass images ... --registries <settings>` now reaches `vendor.example/team/app:v1`,
//! // whose manifest digest is `digest`.
//! # let _ = (digest, settings);
//! # }
//! ```

pub mod certs;
pub mod charts;
pub mod kube_tools;
pub mod oci;
mod process;
pub use process::output_within;
mod registry;
mod scan;
pub use scan::{file_holds, scannable_bytes};
mod server_task;
mod settings;
mod stub_server;
mod token_server;
mod tools;

pub use kube_tools::{
    assert_same_objects, helm, helm_template, kubectl, kustomize_build, objects_by_identity,
};
pub use registry::{
    Credentials, HTPASSWD_PASSWORD, HTPASSWD_USERNAME, RegistryAuth, RegistryTls, TestRegistry,
    free_port,
};
pub use settings::{HostSettings, RegistriesFile};
pub use stub_server::{Answer, ClosingServer, PaddedTokenRegistry, SilentServer, StubRegistry};
pub use token_server::{
    TOKEN_ADMIN_PASSWORD, TOKEN_ADMIN_USERNAME, TOKEN_ISSUER, TOKEN_SERVICE, TokenServer,
};
pub use tools::require_tool;
