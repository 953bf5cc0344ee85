//! Exit codes and the error type every command returns, pairing an `anyhow` error (with context)
//! with the exit code it maps to. The codes are documented in `--help` and the README.

use std::process::ExitCode;

/// Exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Everything worked.
    Success = 0,
    /// An install failed, or something unexpected went wrong.
    Failure = 1,
    /// The command line is wrong in a way clap cannot check (clap's own errors also exit 2).
    CommandLine = 2,
    /// The release, license or pipeline is invalid.
    InvalidInput = 3,
    /// The state directory cannot be used.
    State = 4,
    /// No install has that id.
    NotFound = 5,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> ExitCode {
        ExitCode::from(code as u8)
    }
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: Code,
    /// What went wrong, for the user.
    pub error: anyhow::Error,
}

impl CliError {
    /// Wraps an error with a code.
    pub fn new(code: Code, error: impl Into<anyhow::Error>) -> CliError {
        CliError {
            code,
            error: error.into(),
        }
    }
}

/// A command's result: the exit code to use on success.
pub type CliResult = Result<Code, CliError>;

/// Ends a command's async runtime without waiting for its worker threads to wind down (a few
/// milliseconds): the command's work is done, every task it waited for has finished, and the
/// process exits next.
pub fn end_runtime(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_background();
}

/// Leaves `value` to the process's exit instead of dropping it: a command's result that holds
/// the records of thousands of objects is then freed with the rest of the process's memory,
/// without first being walked to free it piece by piece (milliseconds at 1,000 objects). Only
/// for values that own nothing but memory (no file, lock or database to close).
pub fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}
