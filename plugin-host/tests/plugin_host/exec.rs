//! The bounded subprocess, with real `sh` processes: output, a cleared environment, a temporary
//! working directory, the deadline, the output cap, exit statuses and signals.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use windlass_plugin_host::exec::{ExecError, ExecRequest, run};

fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("plugin.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).unwrap();
    path
}

fn request(program: PathBuf) -> ExecRequest {
    ExecRequest {
        program,
        args: vec!["one".into()],
        stdin: b"hello\n".to_vec(),
        timeout: Duration::from_secs(20),
        max_output_bytes: 1024,
    }
}

#[test]
fn a_plugin_reads_stdin_and_its_output_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "read line; echo \"$line $1\"");
    let output = run(&request(program)).expect("runs");
    assert_eq!(output.stdout, b"hello one\n");
}

#[test]
fn the_environment_is_cleared_and_the_working_directory_is_a_fresh_temporary_one() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "env | sort; echo cwd=$(pwd); ls -A | wc -l");
    let mut request = request(program);
    request.max_output_bytes = 64 * 1024;
    let output = run(&request).expect("runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .filter(|name| *name != "cwd" && *name != "PWD" && *name != "SHLVL" && *name != "_")
        .collect();
    for name in &names {
        assert!(
            ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR"].contains(name),
            "{name} leaked into the plugin's environment:\n{text}"
        );
    }
    assert!(!text.contains("CARGO"), "{text}");
    let cwd = text
        .lines()
        .find_map(|line| line.strip_prefix("cwd="))
        .unwrap();
    assert!(cwd.contains("windlass-plugin-"), "{cwd}");
    assert!(
        text.lines().last().unwrap().trim() == "0",
        "the directory starts empty: {text}"
    );
    assert!(
        !Path::new(cwd).exists(),
        "the working directory is removed afterwards"
    );
    assert!(output.environment.contains(&"HOME".to_string()));
}

#[test]
fn a_plugin_past_its_deadline_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    let program = script(
        dir.path(),
        &format!("(sleep 3; touch {}) & sleep 30", marker.display()),
    );
    let mut request = request(program);
    request.timeout = Duration::from_secs(1);
    let began = Instant::now();
    let error = run(&request).expect_err("times out");
    assert!(
        matches!(error, ExecError::Timeout { seconds: 1 }),
        "{error}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !marker.exists(),
        "the plugin's background child was killed too"
    );
}

#[test]
fn output_past_the_cap_kills_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "while true; do echo 0123456789abcdef; done");
    let began = Instant::now();
    let error = run(&request(program)).expect_err("too much output");
    assert!(
        matches!(error, ExecError::OutputTooLarge { cap: 1024 }),
        "{error}"
    );
    assert!(began.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_non_zero_exit_carries_the_end_of_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "echo 'bad input' >&2; exit 3");
    let error = run(&request(program)).expect_err("exits 3");
    assert_eq!(error.to_string(), "exited with status 3: bad input");
}

#[test]
fn a_signal_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "kill -SEGV $$");
    let error = run(&request(program)).expect_err("killed");
    assert!(
        matches!(error, ExecError::Signaled { signal: 11, .. }),
        "{error}"
    );
}

#[test]
fn a_missing_program_cannot_be_spawned() {
    let error = run(&request(PathBuf::from("/nonexistent/plugin"))).expect_err("missing");
    assert!(matches!(error, ExecError::Spawn { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("cannot run /nonexistent/plugin: "),
        "{error}"
    );
}

#[test]
fn a_process_left_outside_the_group_holding_the_output_is_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    // setsid puts the sleeper (outliving the 5 s grace) in a session and group of its own, with
    // the plugin's stdout. The plugin exits only once the sleeper has left its group (the marker
    // is written after setsid): exiting sooner would let the group kill take the sleeper too.
    let program = script(
        dir.path(),
        "cat >/dev/null; setsid sh -c ': >detached; exec sleep 8' & \
         until [ -e detached ]; do sleep 0.01; done; exit 0",
    );
    let began = Instant::now();
    let error = run(&request(program)).expect_err("held open");
    assert!(matches!(error, ExecError::OutputHeldOpen), "{error}");
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "{:?}",
        began.elapsed()
    );
}
