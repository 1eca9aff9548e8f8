//! How a verb fails: one line for a person, and the exit code.

use std::fmt;
use std::io;

use dockwire_core::CallError;
use dockwire_service::ClientError;

/// Exit code of `run` and `exec` when dockwire or the engine failed (not
/// the process), as `docker run` uses it.
pub const EXIT_DOCKWIRE: i32 = 125;
/// Exit code of `run`/`exec` when the command could not be invoked.
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// Exit code of `run`/`exec` when the command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// A verb that failed: what it was doing, why, the remote's error code when
/// there is one, and the exit code to leave with.
#[derive(Debug)]
pub struct Failure {
    /// What was being done ("remove abc").
    pub what: String,
    /// Why it failed, for a person.
    pub why: String,
    /// The remote's error code (`CONTAINER_NOT_FOUND`…), if the server said.
    pub code: Option<String>,
    /// The process's exit code.
    pub exit: i32,
}

impl Failure {
    /// A failure on this side (bad arguments, a local file…), exit code 1.
    pub fn local(what: impl Into<String>, why: impl fmt::Display) -> Self {
        Failure {
            what: what.into(),
            why: why.to_string(),
            code: None,
            exit: 1,
        }
    }

    /// Whether the server answered with `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// The same failure with an error code of this side's own.
    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    /// The same failure leaving with `exit`.
    pub fn with_exit(mut self, exit: i32) -> Self {
        self.exit = exit;
        self
    }

    /// The failure of a call, as the server or the connection explained it.
    pub fn call(what: impl Into<String>, error: ClientError) -> Self {
        let (why, code) = match error {
            ClientError::Remote(CallError { code, message, .. }) => {
                (message, Some(code.as_str().to_owned()))
            }
            ClientError::Connect(e) => (format!("cannot reach the server: {e}"), None),
            ClientError::Io(e) => (format!("the connection failed: {e}"), None),
            other => (other.to_string(), None),
        };
        Failure {
            what: what.into(),
            why,
            code,
            exit: 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dockwire: {}: {}", self.what, self.why)?;
        match &self.code {
            Some(code) => write!(f, " ({code})"),
            None => Ok(()),
        }
    }
}

/// Adds what was being done to an error.
pub trait Context<T> {
    /// The error as a [`Failure`] of `what`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> Context<T> for Result<T, ClientError> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::call(what(), e))
    }
}

impl<T> Context<T> for Result<T, io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::local(what(), e))
    }
}

/// What a verb returns: the exit code to leave with, or why it failed.
pub type Outcome = Result<i32, Failure>;
