//! Finding the real tools the harness drives on `PATH`, and failing with the command that
//! installs a missing one.

use std::path::PathBuf;

/// Returns the path of `tool` on `PATH`.
///
/// # Panics
///
/// When `tool` is not installed, with a message saying to run `apt-get install -y <package>`
/// (what `scripts/test.sh` does).
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|directory| directory.join(tool))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed: run `apt-get install -y {package}` (scripts/test.sh does this)"
        )
    })
}
