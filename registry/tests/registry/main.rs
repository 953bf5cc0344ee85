//! Integration tests of windlass-registry against real registries on loopback: CNCF distribution
//! (`docker-registry`, Debian package) started per test — open, htpasswd, TLS, and token auth
//! with the token server of `windlass_testkit` — holding images built by hand and pushed with
//! `skopeo`. Statuses and transport failures a real registry cannot be made to produce come from
//! the testkit's stubs, and those tests say so. `scripts/test.sh` installs the tools; a test
//! missing one fails with the command that installs it.

mod support;

mod authentication;
mod failures;
mod open_registry;
