//! Integration tests of `windlass-engine`, in one test binary to keep link time down. They drive the
//! real [`windlass_engine::Runner`] against a real redb-backed `StateDir` in a temporary directory;
//! the only stand-ins are the test stage kinds of [`support`], which are test doubles of *stages*
//! (the engine never depends on a concrete stage), not fakes of any external system. Golden
//! fixtures of the engine's events live in `fixtures/events/` and are decoded by
//! [`event_fixtures`].

mod concurrency;
mod event_fixtures;
mod indexes;
mod newer_version;
mod pipeline_build;
mod recording;
mod resume;
mod retry;
mod seams;
mod support;
