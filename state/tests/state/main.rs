//! Integration tests for `windlass-state`, in one test binary (one link, per style.md) with a module
//! per concern: the backend conformance suite run against every event-log backend, the crash test
//! that SIGKILLs a writer process, several handles on one log, schema upcasting, the blob store,
//! and fingerprints and secrets. `support` and `child_writer` hold the shared plumbing.

mod blobs;
mod child_writer;
mod concurrent;
mod conformance;
mod crash;
mod fingerprint;
mod schema;
mod support;
