//! windlass-proxy: the license-authenticated pull-through registry proxy that the images windlass
//! renders point at (`<proxy host>/proxy/<app slug>/<image as written>`, the upstream and
//! repository read from the image as Docker reads a reference).
//!
//! - [`ProxyConfig`] reads the proxy's YAML configuration (listen address, plain HTTP or TLS, state
//!   directory, upstream registries with read-only credentials and the apps each one serves,
//!   [`UpstreamAccess`]).
//! - [`ProxyStore`] is the proxy's embedded store: licenses keyed by a keyed hash of their ID (the
//!   ID is never written) and the append-only pull log. The CLI adds, revokes and lists licenses
//!   with it while the proxy runs.
//! - [`ProxyServer`] answers the OCI distribution API for pulls: HTTP Basic with `LICENSE_ID` and
//!   the license ID, the license checked on every request, manifests and blobs fetched from the
//!   upstream with its credentials ([`UpstreamClient`]), streamed back and digest-verified.

mod access;
mod config;
mod connections;
mod errors;
mod path;
mod pull_log;
mod server;
mod store;
mod tls;
mod upstream;
mod upstream_slots;

pub use access::{AccessDenial, UpstreamAccess};
pub use config::{ConfigError, Limits, ProxyConfig, TlsFiles, Upstream, UpstreamCredentials};
pub use path::{PathProblem, PullKind, PullPath, parse_pull_path};
pub use pull_log::MAX_LOGGED_BYTES;
pub use server::{ProxyServer, ServeError};
pub use store::{
    LICENSE_ID_PURPOSE, LicenseStatus, ProxyStore, PullRecord, StoreError, StoredLicense,
    read_license_file,
};
pub use tls::TlsError;
pub use upstream::{UpstreamClient, UpstreamError, UpstreamLimits, UpstreamResponse};
pub use windlass_kots::{LicenseError, LicenseFile};
