//! Writing results: to stdout and stderr, without panicking when the
//! reader has gone (`dockwire ps | head -1`).

use std::io::{self, IsTerminal, Write};

use crate::error::{Failure, Outcome};

/// Why a verb stopped early: it failed, or whoever read its output has
/// gone (a closed pipe ends the verb quietly, as it ends docker).
#[derive(Debug)]
pub enum Stop {
    /// The verb failed; the failure is printed.
    Failed(Failure),
    /// Stdout or stderr was closed under us.
    Closed,
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Self {
        Stop::Failed(failure)
    }
}

/// What a verb returns inside this module: its exit code, or why it
/// stopped.
pub type Verdict = Result<i32, Stop>;

/// The exit code of a process ended by SIGPIPE, as a shell reports docker
/// writing into a closed pipe.
const EXIT_CLOSED: i32 = 128 + 13;

/// A verb's verdict as the command's outcome.
pub fn outcome(verdict: Verdict) -> Outcome {
    match verdict {
        Ok(code) => Ok(code),
        Err(Stop::Failed(failure)) => Err(failure),
        Err(Stop::Closed) => Ok(EXIT_CLOSED),
    }
}

/// Writes `bytes` to stdout, flushed: results show as they come.
pub fn stdout(bytes: &[u8]) -> Result<(), Stop> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| written("stdout", &e))
}

/// Writes `bytes` to stderr.
pub fn stderr(bytes: &[u8]) -> Result<(), Stop> {
    let mut err = io::stderr().lock();
    err.write_all(bytes)
        .and_then(|()| err.flush())
        .map_err(|e| written("stderr", &e))
}

/// Writes `line` and a newline to stdout.
pub fn line(line: impl AsRef<str>) -> Result<(), Stop> {
    let mut text = String::with_capacity(line.as_ref().len() + 1);
    text.push_str(line.as_ref());
    text.push('\n');
    stdout(text.as_bytes())
}

/// Reports one failure among several (the verb goes on with the next
/// object), on one line of stderr.
pub fn report(failure: &Failure) {
    let _ = writeln!(io::stderr().lock(), "{failure}");
}

/// Whether stdout is a terminal (tables redraw, pulls draw bars).
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Whether stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

fn written(stream: &str, e: &io::Error) -> Stop {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return Stop::Closed;
    }
    Stop::Failed(Failure::local(format!("write to {stream}"), e))
}
