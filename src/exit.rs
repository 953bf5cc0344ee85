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
    /// A command-line argument cannot be used as given (clap's own parse errors exit 2 as well).
    BadCommandLine = 2,
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
