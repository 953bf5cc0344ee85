//! File-system events as hints. A `notify` watcher, debounced by `notify-debouncer-full` (which
//! pairs renames and merges bursts), watches the release directory and turns what it sees into
//! [`Hint`]s: something changed (rescan), something was renamed into the directory (take it at
//! once when complete), or events were lost (`Rescan` flag, a queue overflow: rescan). The daemon
//! never trusts a hint for what a release holds; it rescans the directory and hashes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};
use tokio::sync::mpsc::UnboundedSender;

/// What the watcher (or the API) tells the daemon's loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Something under the directory changed: rescan soon.
    Changed,
    /// Events were lost (the kernel queue overflowed) or the watcher failed: rescan.
    Overflow,
    /// `name` was renamed into the directory: take it at the next scan when it is complete.
    Renamed(String),
    /// Install the release with this digest again (`POST /api/releases/{digest}/reinstall`).
    Reinstall(String),
}

/// How long events settle before they are delivered.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How often the debouncer looks for settled events.
const TICK: Duration = Duration::from_millis(100);

/// The running watcher; dropping it stops watching.
pub struct FileWatcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, NoCache>,
}

/// Watches `dir` (recursively, so that a `.ready` marker inside a release is seen) and sends
/// hints to `hints`.
pub fn watch(dir: &Path, hints: UnboundedSender<Hint>) -> notify::Result<FileWatcher> {
    let root: PathBuf = dir.to_path_buf();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let mut changed = false;
            for event in events {
                if event.need_rescan() {
                    let _ = hints.send(Hint::Overflow);
                    continue;
                }
                let renamed_in = matches!(
                    event.kind,
                    EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                );
                if renamed_in
                    && let Some(target) = event.paths.last()
                    && target.parent() == Some(root.as_path())
                    && let Some(name) = target.file_name().and_then(|name| name.to_str())
                {
                    let _ = hints.send(Hint::Renamed(name.to_string()));
                    continue;
                }
                changed = true;
            }
            if changed {
                let _ = hints.send(Hint::Changed);
            }
        }
        Err(errors) => {
            for error in errors {
                tracing::warn!("file watcher: {error}");
            }
            let _ = hints.send(Hint::Overflow);
        }
    };
    let mut debouncer = new_debouncer_opt::<_, notify::RecommendedWatcher, _>(
        DEBOUNCE,
        Some(TICK),
        handler,
        NoCache,
        notify::Config::default(),
    )?;
    debouncer.watch(dir, RecursiveMode::Recursive)?;
    // The watcher type is named so the trait import is used on every platform.
    let _ = <notify::RecommendedWatcher as Watcher>::kind();
    Ok(FileWatcher {
        _debouncer: debouncer,
    })
}
