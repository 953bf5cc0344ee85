//! The one integration-test binary of `windlass-stages`. Each module covers one surface, driven by
//! fixture release directories under `fixtures/` (a release in, an expected listing, tree or error
//! out): [`scan_release`] reads the good release, [`bad_releases`] feeds every kind of bad input to
//! `release::scan`, [`license`] reads KOTS licenses, [`install`] runs `fetch_base` and `write_base`
//! through the real engine over a real redb state directory, [`output`] attacks
//! `output::OutputDir`, [`base_names`] pins how `base/` files are named, and [`stage_config`]
//! checks the stages' configuration as a pipeline definition gives it, and [`parsed_cache`] shows
//! that reusing parsed documents never changes what an install records, and [`wire_modules`] that
//! the wire-format modules import no other module of their crate. Shared helpers live in
//! [`support`]; set `UPDATE_EXPECT=1` to rewrite the expected files after a deliberate change.

mod bad_releases;
mod base_names;
mod event_fixtures;
mod images;
mod install;
mod install_api;
mod kots_kinds;
mod license;
mod oracle;
mod output;
mod parsed_cache;
mod pipeline_file;
mod plan;
mod probe_images;
mod render;
mod scan_release;
mod stage_config;
mod support;
mod wire_modules;
