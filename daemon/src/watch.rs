//! File-system events as hints. A `notify` watcher, debounced by `notify-debouncer-full` (which
//! pairs renames and merges bursts), watches the release directory and turns what it sees into
//! [`Hint`]s: something changed (rescan), something was renamed into the directory (take it at
//! once when complete), or events were lost (`Rescan` flag, a queue overflow: rescan). The daemon
//! never trusts a hint for what a release holds; it rescans the directory and hashes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
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
    /// A `.ready` marker appeared: rescan at once.
    Marker,
    /// Install the release with this digest again (`POST /api/releases/{digest}/reinstall`).
    Reinstall(String),
}

/// How long events settle before they are delivered.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How often the debouncer looks for settled events.
const TICK: Duration = Duration::from_millis(100);

/// The running watchers; dropping them stops watching.
pub struct FileWatcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, NoCache>,
    _renames: notify::RecommendedWatcher,
}

/// Whether `event` wrote a `.ready` marker: `DIR/<release>/.ready` or `DIR/<bundle>.ready`.
fn wrote_marker(root: &Path, event: &notify::Event) -> bool {
    let written = matches!(
        event.kind,
        EventKind::Create(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    );
    written
        && event.paths.last().is_some_and(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            let parent = path.parent();
            (name == crate::content::READY_MARKER && parent.and_then(Path::parent) == Some(root))
                || (name.ends_with(crate::content::READY_MARKER) && parent == Some(root))
        })
}

/// Whether an event may mean content changed. Opening and reading are not changes — and the
/// daemon's own scans and installs open every file, so counting them would rescan for ever; a
/// file closed after writing is.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The name of the direct child of `root` that `event` renamed into it, if it is such a rename.
fn renamed_into(root: &Path, event: &notify::Event) -> Option<String> {
    let renamed_in = matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    );
    let target = event.paths.last()?;
    if !renamed_in || target.parent() != Some(root) {
        return None;
    }
    target
        .file_name()
        .and_then(|name| name.to_str())
        .map(str::to_string)
}

/// Watches `dir` (recursively, so that a `.ready` marker inside a release is seen) and sends
/// hints to `hints`. Renames into `dir` and `.ready` markers are taken from a second, undebounced
/// watcher: the debouncer reports a file created and renamed within its window as created at its
/// final name, which would hide that it arrived whole, and its window would delay a marker.
pub fn watch(dir: &Path, hints: UnboundedSender<Hint>) -> notify::Result<FileWatcher> {
    let rename_root: PathBuf = dir.to_path_buf();
    let rename_hints = hints.clone();
    let mut renames =
        notify::recommended_watcher(move |result: notify::Result<notify::Event>| match result {
            Ok(event) if event.need_rescan() => {
                let _ = rename_hints.send(Hint::Overflow);
            }
            Ok(event) => {
                if let Some(name) = renamed_into(&rename_root, &event) {
                    let _ = rename_hints.send(Hint::Renamed(name));
                } else if wrote_marker(&rename_root, &event) {
                    let _ = rename_hints.send(Hint::Marker);
                }
            }
            Err(error) => {
                tracing::warn!("file watcher: {error}");
                let _ = rename_hints.send(Hint::Overflow);
            }
        })?;
    renames.watch(dir, RecursiveMode::Recursive)?;
    let root: PathBuf = dir.to_path_buf();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let mut changed = false;
            for event in events {
                if event.need_rescan() {
                    let _ = hints.send(Hint::Overflow);
                    continue;
                }
                if let Some(name) = renamed_into(&root, &event) {
                    let _ = hints.send(Hint::Renamed(name));
                    continue;
                }
                changed |= is_change(&event.kind);
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
    Ok(FileWatcher {
        _debouncer: debouncer,
        _renames: renames,
    })
}
