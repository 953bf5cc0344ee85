//! `acked_writer <log path> <redb|sled>`: appends small batches to an event log forever and, after
//! each `append` returns `Ok`, prints `acked <global seq of the batch's last event>` on stdout and
//! flushes. It is the victim of the crash tests in `tests/state/crash.rs`, which SIGKILL it at a
//! random moment and then check that every acknowledged batch survived whole and no batch survived
//! in part; it is also the writer the cross-process concurrency test reads alongside.
//!
//! Each batch has 1 to 20 events spread over three installs, and every payload names the writer
//! process (`writer`), the batch (`batch`), the batch size (`batch_size`) and its position in the
//! batch (`index`), so a checker can tell a whole batch from a torn one.
//!
//! Where the backend keeps projections, every batch is appended with a projector that counts each
//! install's events (table `count`, version [`COUNT_VERSION`]), so the checker can also tell that
//! the projection rows moved with the batches, never apart from them.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use windlass_state::redb_store::RedbStore;
use windlass_state::{
    EventStore, Indexer, NewEvent, ProjectionHead, ProjectionRows, RecordHash, StoreError,
    StoredEvent,
};

const INSTALLS: [&str; 3] = ["alpha", "beta", "gamma"];
const LARGEST_BATCH: u64 = 20;
/// The version of the `count` projection.
const COUNT_VERSION: u32 = 7;

/// Adds one to the `count` row of the event's install.
fn count_events(event: &StoredEvent, rows: &mut dyn ProjectionRows) -> Result<(), StoreError> {
    let count = rows
        .get("count", &event.install_id)?
        .and_then(|bytes| String::from_utf8(bytes).ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    rows.put(
        "count",
        &event.install_id,
        (count + 1).to_string().as_bytes(),
    )
}

#[cfg(feature = "sled")]
fn open_sled(path: &Path) -> Result<Box<dyn EventStore>, String> {
    windlass_state::sled_store::SledStore::open(path)
        .map(|store| Box::new(store) as Box<dyn EventStore>)
        .map_err(|error| error.to_string())
}

#[cfg(not(feature = "sled"))]
fn open_sled(_: &Path) -> Result<Box<dyn EventStore>, String> {
    Err(
        "this example was built without the `sled` feature; rebuild it with `--features sled`"
            .into(),
    )
}

fn open(path: &Path, backend: &str) -> Result<Box<dyn EventStore>, String> {
    match backend {
        "redb" => RedbStore::open(path)
            .map(|store| Box::new(store) as Box<dyn EventStore>)
            .map_err(|error| error.to_string()),
        "sled" => open_sled(path),
        other => Err(format!("unknown backend {other:?}; expected redb or sled")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, backend] = args.as_slice() else {
        eprintln!("usage: acked_writer <log path> <redb|sled>");
        return ExitCode::from(2);
    };
    // A sled log closed a moment ago by another handle in the test process may still be locked
    // by sled's exiting flusher thread (spacejam/sled#1289); wait a little for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let opened = loop {
        match open(Path::new(path), backend) {
            Err(error) if error.contains("could not acquire lock") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => break result,
        }
    };
    let store = match opened {
        Ok(store) => store,
        Err(error) => {
            eprintln!("acked_writer: cannot open {path}: {error}");
            return ExitCode::from(1);
        }
    };
    let indexer = Indexer {
        version: COUNT_VERSION,
        apply: &count_events,
    };
    if store.keeps_projections() {
        let current = store.head().and_then(|head| {
            let (seq, hash) = head.unwrap_or((0, RecordHash::GENESIS));
            Ok(store.projection_head()?
                == Some(ProjectionHead {
                    version: COUNT_VERSION,
                    seq,
                    hash,
                }))
        });
        let rebuilt = match current {
            Ok(true) => Ok(0),
            Ok(false) => store.rebuild_projections(&indexer),
            Err(error) => Err(error),
        };
        if let Err(error) = rebuilt {
            eprintln!("acked_writer: cannot rebuild the projections: {error}");
            return ExitCode::from(1);
        }
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    let writer = format!("{}-{nanos}", std::process::id());
    // A cheap deterministic spread of batch sizes, different for each writer.
    let mut state = nanos as u64 | 1;
    let mut stdout = std::io::stdout().lock();
    for batch in 0u64.. {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let batch_size = 1 + (state >> 33) % LARGEST_BATCH;
        let events = (0..batch_size)
            .map(|index| {
                let install = INSTALLS[((batch + index) % INSTALLS.len() as u64) as usize];
                NewEvent::new(
                    install,
                    "acked_writer@test",
                    "WriterTicked",
                    1,
                    json!({
                        "writer": writer,
                        "batch": batch,
                        "batch_size": batch_size,
                        "index": index,
                    }),
                )
            })
            .collect();
        let stored = match store.append_indexed(events, &indexer) {
            Ok(stored) => stored,
            Err(error) => {
                eprintln!("acked_writer: append failed: {error}");
                return ExitCode::from(1);
            }
        };
        let last = stored.last().map(|event| event.global_seq).unwrap_or(0);
        if writeln!(stdout, "acked {last}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // Nobody is listening any more.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}
