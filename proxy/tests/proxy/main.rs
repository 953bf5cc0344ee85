//! Integration tests of windlass-proxy on loopback: a real CNCF distribution registry
//! (`docker-registry`, htpasswd auth) started per test as the upstream `vendor.example`, holding
//! an image pushed with `skopeo` (and, where a test says so, also as the upstream `docker.io` or a
//! host alias); the proxy started in the test process on 127.0.0.1 (plain HTTP);
//! and the real `skopeo` pulling through it with `LICENSE_ID:<license id>` credentials.
//! `scripts/test.sh` installs the tools; a test missing one fails with the command that installs it.

mod support;

mod access;
mod docker_hub;
mod floods;
mod integrity;
mod pulls;
mod registry_api;
mod transports;
