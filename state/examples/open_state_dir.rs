//! `open_state_dir <state directory>`: opens (creating what is missing) a state directory as an
//! install's first moments do — the directory, `events.redb`, `blobs/blobs.redb`,
//! `fingerprint.key` — stores one blob, appends one event naming it, prints `done` and exits. It
//! is the victim of the interrupted-creation test in `tests/state/creation.rs`, which SIGKILLs it
//! at random moments of that creation and then checks that the state directory still opens; run
//! under `strace`, it also shows which directories are fsynced after an entry is created in them.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use windlass_state::{Backend, NewEvent, SchemaRegistry, StateDir};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, root] = args.as_slice() else {
        eprintln!("usage: open_state_dir <state directory>");
        return ExitCode::from(2);
    };
    let schemas = Arc::new(SchemaRegistry::new(&[]).expect("an empty schema table is valid"));
    let state = match StateDir::open(Path::new(root), Backend::Redb, schemas) {
        Ok(state) => state,
        Err(error) => {
            eprintln!("open_state_dir: cannot open {root}: {error}");
            return ExitCode::from(1);
        }
    };
    let stored = state.blobs.put(b"a file body").and_then(|blob| {
        state.blobs.sync()?;
        Ok(blob)
    });
    let blob = match stored {
        Ok(blob) => blob,
        Err(error) => {
            eprintln!("open_state_dir: cannot store a blob: {error}");
            return ExitCode::from(1);
        }
    };
    let event = NewEvent::new(
        "first-install",
        "open_state_dir@test",
        "StateOpened",
        1,
        json!({ "blob": blob.as_str() }),
    );
    if let Err(error) = state.log.append(vec![event]) {
        eprintln!("open_state_dir: cannot append: {error}");
        return ExitCode::from(1);
    }
    println!("done");
    ExitCode::SUCCESS
}
