//! Integration tests of windlass-registry against real registries on loopback: CNCF distribution
//! (`docker-registry`, Debian package) started per test — open, htpasswd, TLS, and token auth
//! with a token server written here — holding images built by hand and pushed with `skopeo`.
//! Statuses and transport failures a real registry cannot be made to produce come from stubs
//! (`stub_server`), and those tests say so. `scripts/test.sh` installs the tools; a test missing
//! one fails with the command that installs it.

mod certs;
mod oci;
mod stub_server;
mod support;
mod token_server;

mod authentication;
mod failures;
mod open_registry;
