//! Tests of the plugin host: the bounded subprocess with real processes (`sh`), the KRM output
//! checks, declarations, placement in the built-in pipeline, and the golden fixture of every
//! event version it records.

mod declarations;
mod event_fixtures;
mod exec;
mod krm;
mod placement;
