//! Drives the `acked_writer` example as a separate process: finds the binary `cargo test` built
//! next to this test binary, spawns it on a log, collects the `acked <seq>` lines it prints after
//! each durable append, and SIGKILLs it. Used by the crash tests and by the test that reads a redb
//! log while another process writes it. A child is always killed when its handle is dropped, so a
//! failing test leaves no writer behind. [`example_binary`] also finds the other examples (the
//! interrupted-creation test's `open_state_dir`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The example binary `name`, `target/<profile>/examples/<name>`.
pub fn example_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("locate the test binary");
    // target/<profile>/deps/state-<hash> → target/<profile>
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "the {name} example is not built at {}; a plain `cargo test -p windlass-state` \
         builds it, but cargo skips examples when given a test-name filter: run \
         `cargo build -p windlass-state --examples` (with the same --features) first",
        binary.display()
    );
    binary
}

/// A running `acked_writer` child and the acknowledgements it has printed so far.
pub struct AckedWriter {
    child: Child,
    lines: Receiver<Result<u64, String>>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr_reader: Option<JoinHandle<String>>,
    acked: Vec<u64>,
}

impl AckedWriter {
    /// Starts a writer appending to `log` with `backend` (`redb` or `sled`).
    pub fn spawn(log: &Path, backend: &str) -> AckedWriter {
        let mut child = Command::new(example_binary("acked_writer"))
            .arg(log)
            .arg(backend)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the acked_writer example");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = channel();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parsed = line
                    .strip_prefix("acked ")
                    .and_then(|seq| seq.parse::<u64>().ok())
                    .ok_or_else(|| format!("unexpected line from acked_writer: {line:?}"));
                if sender.send(parsed).is_err() {
                    break;
                }
            }
        });
        let stderr_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        AckedWriter {
            child,
            lines,
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
            acked: Vec::new(),
        }
    }

    /// Every acknowledged global sequence so far, in the order printed.
    pub fn acked(&self) -> &[u64] {
        &self.acked
    }

    /// Waits until at least `count` batches have been acknowledged. Panics, with the child's
    /// stderr, if the child exits first or `timeout` passes.
    pub fn wait_for_acks(&mut self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acked.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Ok(seq)) => self.acked.push(seq),
                Ok(Err(unexpected)) => panic!("{unexpected}"),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "acked_writer acknowledged only {} of {count} batches in {timeout:?}",
                    self.acked.len()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait for acked_writer");
                    let stderr = self.take_stderr();
                    panic!(
                        "acked_writer exited ({status}) after {} acknowledgements; stderr:\n{stderr}",
                        self.acked.len()
                    );
                }
            }
        }
    }

    /// Sends SIGKILL, reaps the child, and returns every acknowledgement it printed, including
    /// those still in the pipe when it died.
    pub fn kill(mut self) -> Vec<u64> {
        self.child.kill().expect("SIGKILL acked_writer");
        let status = self.child.wait().expect("reap acked_writer");
        if let Some(reader) = self.stdout_reader.take() {
            reader.join().expect("stdout reader thread panicked");
        }
        while let Ok(line) = self.lines.try_recv() {
            match line {
                Ok(seq) => self.acked.push(seq),
                Err(unexpected) => panic!("{unexpected}"),
            }
        }
        assert!(
            !status.success(),
            "acked_writer exited cleanly instead of being killed; stderr:\n{}",
            self.take_stderr()
        );
        std::mem::take(&mut self.acked)
    }

    fn take_stderr(&mut self) -> String {
        self.stderr_reader
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for AckedWriter {
    fn drop(&mut self) {
        // Already dead after `kill`; otherwise a panicking test must not leave a writer running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
