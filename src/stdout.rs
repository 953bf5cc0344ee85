//! Standard output of the commands that only print what they read (`history`, `events`, `show`,
//! `verify-log`, `images`, `config`). A reader that stops early (`windlass events ID | head -1`)
//! closes the pipe, and the standard library's `println!` then panics ("failed printing to
//! stdout: Broken pipe", exit 101). Those commands print through this module's [`println`]
//! instead, imported in their module in place of the standard one: a closed pipe ends the process
//! at once with exit 0, as the end of the reader's interest, and any other failure to write ends
//! it with exit 1 and one line on stderr. Ending there is safe for them: they have written
//! everything they write (a `verify-log --rebuild-indexes` closes its writable handle before it
//! prints), and the rest of their work only prints.

use std::fmt;
use std::io::Write;

use crate::exit::Code;

/// `println!` that ends the process quietly when standard output is a closed pipe (see the
/// module documentation).
macro_rules! println {
    () => {
        $crate::stdout::print_line(format_args!(""))
    };
    ($($argument:tt)*) => {
        $crate::stdout::print_line(format_args!($($argument)*))
    };
}
pub(crate) use println;

/// Writes `line` and a newline to standard output (see the module documentation).
pub fn print_line(line: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        drop(stdout);
        end_on_write_error(&error);
    }
}

/// Ends the process after a failed write to standard output: exit 0 when the reader closed the
/// pipe, else exit 1 saying why.
pub fn end_on_write_error(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(Code::Success as i32);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(Code::Failure as i32)
}
