//! Progress bars on a terminal: one spinner or bar per stage on stderr, via indicatif. When stderr
//! is not a terminal (scripts, CI) or `--json` is given, nothing is drawn ([`NotesOnly`]); notes
//! (such as output written again on resume) are printed on stderr either way.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use windlass_engine::Progress;

/// Draws stage progress on stderr.
pub struct TerminalProgress {
    bars: MultiProgress,
    by_stage: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    /// A progress display if stderr is a terminal and output is for humans.
    pub fn for_stderr(json: bool) -> Option<TerminalProgress> {
        (!json && std::io::stderr().is_terminal()).then(|| TerminalProgress {
            bars: MultiProgress::new(),
            by_stage: Mutex::new(HashMap::new()),
        })
    }

    fn bar(&self, stage: &str) -> ProgressBar {
        let mut bars = self
            .by_stage
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        bars.entry(stage.to_string())
            .or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:>12} {wide_bar} {pos}/{len} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(stage.to_string());
                bar
            })
            .clone()
    }
}

impl Progress for TerminalProgress {
    fn stage_started(&self, stage: &str, attempt: u32) {
        let bar = self.bar(stage);
        if attempt > 1 {
            bar.set_message(format!("attempt {attempt}"));
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }

    fn stage_advanced(&self, stage: &str, done: u64, total: u64) {
        let bar = self.bar(stage);
        bar.set_length(total);
        bar.set_position(done);
    }

    fn stage_status(&self, stage: &str, message: &str) {
        self.bar(stage).set_message(message.to_string());
    }

    fn stage_finished(&self, stage: &str, succeeded: bool, outcome: &str) {
        let bar = self.bar(stage);
        let mark = if succeeded { "✓" } else { "✗" };
        bar.finish_with_message(format!("{mark} {outcome}"));
    }

    fn note(&self, message: &str) {
        if self.bars.println(format!("windlass: {message}")).is_err() {
            eprintln!("windlass: {message}");
        }
    }
}

/// No bars; notes go to stderr as `windlass: <note>` lines.
pub struct NotesOnly;

impl Progress for NotesOnly {
    fn note(&self, message: &str) {
        eprintln!("windlass: {message}");
    }
}
