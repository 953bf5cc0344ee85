//! Running an exec plugin: a bounded subprocess. The program gets a cleared environment (only
//! the variables of [`ENVIRONMENT_ALLOW_LIST`] that windlass itself has, plus `HOME` and `TMPDIR`
//! pointing at its working directory), a fresh temporary working directory removed afterwards,
//! its own process group (killed whole at the deadline or when its output passes the cap), the
//! input on stdin and a cap on what it prints. Nothing here knows the KRM protocol.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The environment variables passed through to a plugin when windlass has them; everything else
/// is cleared.
pub const ENVIRONMENT_ALLOW_LIST: &[&str] = &["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

/// How much of a plugin's stderr is kept for an error message.
const STDERR_KEPT: usize = 2048;

/// How long, once a plugin's process group is gone, its output may take to reach its end: a
/// process that left the group (a daemon) and holds the output open is not waited for longer.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// One run of a program.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Written to its stdin.
    pub stdin: Vec<u8>,
    /// How long it may run.
    pub timeout: Duration,
    /// The most bytes it may print on stdout.
    pub max_output_bytes: u64,
}

/// What a successful run printed.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// stdout.
    pub stdout: Vec<u8>,
    /// The names of the environment variables it was given.
    pub environment: Vec<String>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started (missing, not executable) or its working directory not
    /// made.
    #[error("cannot run {program}: {problem}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        problem: String,
    },
    /// It ran past its deadline and was killed.
    #[error("timed out after {seconds} s and was killed")]
    Timeout {
        /// The deadline, in seconds.
        seconds: u64,
    },
    /// It printed more than the cap and was killed.
    #[error("printed more than {cap} bytes on stdout (the output cap) and was killed")]
    OutputTooLarge {
        /// The cap.
        cap: u64,
    },
    /// It ended, but a process it started outside its process group still holds its stdout or
    /// stderr open.
    #[error(
        "ended, but a process it started outside its process group still holds its output open"
    )]
    OutputHeldOpen,
    /// It exited with a non-zero status.
    #[error("exited with status {code}{}", stderr_suffix(.stderr))]
    Exited {
        /// The exit status.
        code: i32,
        /// The end of its stderr.
        stderr: String,
    },
    /// A signal ended it.
    #[error("was killed by signal {signal}{}", stderr_suffix(.stderr))]
    Signaled {
        /// The signal.
        signal: i32,
        /// The end of its stderr.
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// Runs `request` to the end (see the module documentation). Blocks: call it on a blocking
/// thread.
pub fn run(request: &ExecRequest) -> Result<ExecOutput, ExecError> {
    let spawn_error = |problem: String| ExecError::Spawn {
        program: request.program.display().to_string(),
        problem,
    };
    let workdir = tempfile::Builder::new()
        .prefix("windlass-plugin-")
        .tempdir()
        .map_err(|error| spawn_error(format!("its working directory: {error}")))?;
    let mut command = Command::new(&request.program);
    command
        .args(&request.args)
        .env_clear()
        .current_dir(workdir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut environment = Vec::new();
    for name in ENVIRONMENT_ALLOW_LIST {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
            environment.push(name.to_string());
        }
    }
    for name in ["HOME", "TMPDIR"] {
        command.env(name, workdir.path());
        environment.push(name.to_string());
    }
    environment.sort();
    let mut child = command
        .spawn()
        .map_err(|error| spawn_error(error.to_string()))?;
    let group = rustix::process::Pid::from_child(&child);
    let kill_group = || {
        // The group may already be gone; nothing to do then.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = request.stdin.clone();
    // A plugin that exits without reading its input makes this write fail: that is its business.
    let (written_sender, written) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
        drop(stdin);
        let _ = written_sender.send(());
    });
    let overflow = Arc::new(AtomicBool::new(false));
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let cap = request.max_output_bytes;
    let overflowed = overflow.clone();
    let (stdout_sender, stdout_read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let read = (&mut stdout).take(cap + 1).read_to_end(&mut kept);
        if kept.len() as u64 > cap {
            overflowed.store(true, Ordering::SeqCst);
            kept.clear();
        }
        let _ = stdout_sender.send(read.map(|_| kept));
    });
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (stderr_sender, stderr_read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut chunk = [0u8; 8192];
        while let Ok(read) = stderr.read(&mut chunk) {
            if read == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..read]);
            if all.len() > 4 * STDERR_KEPT {
                all.drain(..all.len() - STDERR_KEPT);
            }
        }
        let _ = stderr_sender.send(all);
    });
    let deadline = Instant::now() + request.timeout;
    let mut timed_out = false;
    let status: ExitStatus = loop {
        if overflow.load(Ordering::SeqCst) {
            kill_group();
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(error) => {
                kill_group();
                let _ = child.wait();
                return Err(spawn_error(error.to_string()));
            }
        }
        if Instant::now() >= deadline {
            timed_out = true;
            kill_group();
            break child
                .wait()
                .map_err(|error| spawn_error(error.to_string()))?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever the plugin left running in its group would hold the pipes open.
    kill_group();
    // The readers end when the last holder of the pipes does; one that does not within the grace
    // is left behind (blocked on a pipe, it holds nothing else).
    let grace = Instant::now() + OUTPUT_GRACE;
    let stdout = stdout_read.recv_timeout(grace.saturating_duration_since(Instant::now()));
    let stderr = stderr_read
        .recv_timeout(grace.saturating_duration_since(Instant::now()))
        .ok();
    drop(workdir);
    let written = written
        .recv_timeout(grace.saturating_duration_since(Instant::now()))
        .is_ok();
    if !written || stdout.is_err() || stderr.is_none() {
        if timed_out {
            return Err(ExecError::Timeout {
                seconds: request.timeout.as_secs(),
            });
        }
        return Err(ExecError::OutputHeldOpen);
    }
    let stdout = stdout.unwrap_or_else(|_| Ok(Vec::new()));
    let stderr = stderr.unwrap_or_default();
    if timed_out {
        return Err(ExecError::Timeout {
            seconds: request.timeout.as_secs(),
        });
    }
    if overflow.load(Ordering::SeqCst) {
        return Err(ExecError::OutputTooLarge { cap });
    }
    let stderr = stderr_tail(&stderr);
    if let Some(code) = status.code() {
        if code != 0 {
            return Err(ExecError::Exited { code, stderr });
        }
    } else {
        let signal = std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0);
        return Err(ExecError::Signaled { signal, stderr });
    }
    let stdout = stdout.map_err(|error| spawn_error(format!("reading its stdout: {error}")))?;
    Ok(ExecOutput {
        stdout,
        environment,
    })
}

/// The last [`STDERR_KEPT`] bytes of `stderr` as one line of text.
fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_KEPT);
    let text = String::from_utf8_lossy(&stderr[start..]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The sha256 of the file at `path`, hex, read through `windlass-files` (a regular file of at
/// most `cap` bytes).
pub fn file_sha256(path: &Path, cap: u64) -> Result<String, windlass_files::ReadError> {
    use sha2::Digest;
    let bytes = windlass_files::read_regular_file(path, cap)?;
    Ok(hex(&sha2::Sha256::digest(&bytes)))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
