//! Tests of windlass-template: KOTS's template semantics as data tables (`functions`), the parse
//! and execution rules of the two passes (`engine`), Config evaluation (`config`), ConfigValues
//! files (`config_values`), `kots.io/exclude`/`when` (`annotations`) and replaying recorded time and
//! randomness (`replay`).

mod annotations;
mod config;
mod config_values;
mod engine;
mod functions;
mod replay;
mod support;
