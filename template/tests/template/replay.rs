//! Rendering again with the recorded time and random draws gives the same bytes.

use std::sync::Arc;

use windlass_template::{Entropy, Recorder, Replay, Scope, Usage, render};

use crate::support::{FixedEntropy, context};

const TEXT: &str = "at: {{repl Now }}\npassword: {{repl RandomString 24 }}\nbytes: {{repl RandomBytes 8 }}\nid: repl{{ uuidv4 }}\n";

fn render_with(entropy: Arc<dyn Entropy>) -> String {
    let scope = Scope {
        context: Arc::new(context(&[])),
        entropy,
        usage: Arc::new(Usage::default()),
    };
    render("f.yaml", TEXT, &scope).expect("renders").text
}

/// The operating system's randomness, so the first render is not predictable.
struct OsEntropy;

impl Entropy for OsEntropy {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    fn fill(&self, bytes: &mut [u8]) -> Result<(), String> {
        let mut file = std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?;
        std::io::Read::read_exact(&mut file, bytes).map_err(|e| e.to_string())
    }
}

#[test]
fn replaying_the_recorded_values_renders_the_same_bytes() {
    let recorder = Arc::new(Recorder::new(Arc::new(OsEntropy)));
    let first = render_with(recorder.clone());
    let recorded = recorder.recorded();
    assert!(recorded.now.is_some());
    assert_eq!(recorded.draws.len(), 3, "RandomString, RandomBytes, uuidv4");
    let again = render_with(Arc::new(Replay::new(&recorded)));
    assert_eq!(again, first);
    // Another random source gives other bytes: the test would see a render that ignores it.
    let other = render_with(FixedEntropy::new());
    assert_ne!(other, first);
}

#[test]
fn a_replay_that_runs_out_of_draws_fails() {
    let replay = Replay::new(&windlass_template::Recorded::default());
    let scope = Scope {
        context: Arc::new(context(&[])),
        entropy: Arc::new(replay),
        usage: Arc::new(Usage::default()),
    };
    let error = render("f.yaml", "{{repl RandomString 4 }}", &scope).expect_err("no draws");
    assert!(
        error
            .to_string()
            .contains("more random bytes than were recorded"),
        "{error}"
    );
}
