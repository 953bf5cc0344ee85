//! Not part of the test binary: `benches/probe_vs_skopeo.rs` includes this file by path for the
//! image helpers, which now live in `windlass_testkit::oci`. The tests use that module directly.

pub use windlass_testkit::oci::*;
