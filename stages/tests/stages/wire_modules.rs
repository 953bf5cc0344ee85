//! The wire-format modules import no other module of their crate (ARCHITECTURE.md): the stages'
//! `events/` folder and the engine's `events.rs` may use other crates and their own submodules,
//! never a stage or any other module, so no import cycle can run through a wire format.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = fs::read_dir(path)
        .expect("read the wire-format folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "rs"))
        .collect();
    files.sort();
    files
}

/// Lines of `text` that bring in another module of the crate.
fn crate_imports(text: &str, own_modules: &[&str]) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("//"))
        .filter(|line| {
            line.contains("crate::") && (line.starts_with("use ") || line.starts_with("pub use "))
        })
        .filter(|line| {
            !own_modules
                .iter()
                .any(|own| line.contains(&format!("crate::{own}")))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_wire_format_modules_import_no_other_module_of_their_crate() {
    let stages = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases = [
        (stages.join("src/events"), &["events"][..]),
        (stages.join("../engine/src/events.rs"), &["events"][..]),
    ];
    let mut checked = 0;
    for (path, own) in cases {
        for file in sources(&path) {
            let text = fs::read_to_string(&file).expect("read a source file");
            let imports = crate_imports(&text, own);
            assert!(imports.is_empty(), "{} imports {imports:?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} wire-format files found");
}

#[test]
fn the_check_sees_an_import_of_a_stage() {
    let text = "//! doc\nuse serde::Serialize;\nuse crate::plan_overrides::PlanOverridesConfig;\n";
    assert_eq!(
        crate_imports(text, &["events"]),
        ["use crate::plan_overrides::PlanOverridesConfig;"]
    );
    assert!(crate_imports("use crate::events::probe::ImagesProbed;", &["events"]).is_empty());
}
