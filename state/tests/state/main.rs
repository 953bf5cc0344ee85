//! Integration tests for `windlass-state`, in one test binary (one link, per style.md) with a module
//! per concern: the backend conformance suite run against every event-log backend, the crash test
//! that SIGKILLs a writer process, a state directory killed while first created, several handles on one log, schema upcasting, the blob store,
//! fingerprints and secrets, the incremental chain check, and projections
//! (indexes kept in the append's transaction). `support` and `child_writer` hold the shared plumbing.

mod blobs;
mod chain_checkpoint;
mod child_writer;
mod concurrent;
mod conformance;
mod crash;
mod creation;
mod fingerprint;
mod projections;
mod schema;
mod support;
