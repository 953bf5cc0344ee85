//! The plugins this binary is built with, and the plugin declarations of an install. The list in
//! [`plugin_set`] is the build-time registration of in-process plugins: a crate exporting a
//! `windlass_plugin_host::InProcessPlugin` joins by being added to it (and to the binary's
//! dependencies). Exec plugins need no registration: `windlass-plugin-host`'s `krm_function`
//! kind runs any program a `plugins:` declaration names.

use std::path::Path;

use anyhow::anyhow;
use windlass_plugin_host::{PluginDeclaration, PluginSet, read_declarations};

use crate::exit::{CliError, Code};

/// The in-process plugins this binary registers, with the exec plugin host.
pub fn plugin_set() -> PluginSet {
    PluginSet::new(vec![windlass_plugin_image_allowlist::plugin()])
}

/// The largest file whose `plugins:` list is read (the same cap as the files' own readers).
const MAX_DECLARING_FILE_BYTES: u64 = windlass_files::MIB;

/// The plugins declared in the `--config` file and the pipeline file, in that order. A file that
/// cannot be read or parsed declares nothing here: its own reader reports that, by name.
pub fn declared(
    config: Option<&Path>,
    pipeline: Option<&Path>,
) -> Result<Vec<PluginDeclaration>, CliError> {
    let mut declarations = Vec::new();
    let mut problems = Vec::new();
    for (label, file) in [("config file", config), ("pipeline file", pipeline)] {
        let Some(file) = file else { continue };
        let Ok(text) = windlass_files::read_regular_text(file, MAX_DECLARING_FILE_BYTES) else {
            continue;
        };
        let Ok(document) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let shown = format!("{label} {}", file.display());
        match read_declarations(&shown, file, document.get("plugins")) {
            Ok(found) => declarations.extend(found),
            Err(found) => problems.extend(found),
        }
    }
    if problems.is_empty() {
        Ok(declarations)
    } else {
        Err(CliError::new(
            Code::InvalidInput,
            anyhow!(problems.join("\n")),
        ))
    }
}
