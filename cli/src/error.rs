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
/// Exit code of `exec` when the connection to the server is lost in the
/// middle of the session: docker exec's when its daemon dies (it cannot
/// read the exec's exit status, takes the daemon for dead and leaves with
/// -1, which is 255). `run` leaves with 125 then (docker's "error waiting
/// for container") and `attach` with 1, as docker's do.
pub const EXIT_EXEC_LOST: i32 = 255;
/// Exit code of `attach` when the connection is lost mid-session: docker
/// attach's ("unexpected EOF").
pub const EXIT_ATTACH_LOST: i32 = 1;

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
            ClientError::Io(e) => (format!("the connection failed: {}", causes(&*e)), None),
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

/// An error and the causes under it, each said once: `connection lost:
/// timed out`, where the error alone says only `connection lost`.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let said = cause.to_string();
        // Many errors already print their cause within their own text.
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        next = cause.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;
    use dockwire_service::quic::quinn::{ConnectionError, ReadError};
    use std::sync::Arc;

    #[test]
    fn a_lost_connection_says_why_it_was_lost() {
        // What a stream of a connection that went silent gives (a server
        // killed: nothing answers until the idle timeout).
        let lost = io::Error::from(ReadError::ConnectionLost(ConnectionError::TimedOut));
        let failure = Failure::call("exec in box", ClientError::Io(Arc::new(lost)));
        assert_eq!(
            failure.to_string(),
            "dockwire: exec in box: the connection failed: connection lost: timed out"
        );
        // A cause already in the text is not said twice.
        #[derive(Debug)]
        struct Wrapped(io::Error);
        impl fmt::Display for Wrapped {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "wrapped: {}", self.0)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = io::Error::other(Wrapped(io::Error::other("reset")));
        let failure = Failure::call("run", ClientError::Io(Arc::new(wrapped)));
        assert_eq!(failure.why, "the connection failed: wrapped: reset");
    }
}
