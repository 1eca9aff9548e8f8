//! The error a call ends with, as it travels on the wire: a
//! [`CallError`] with its [`ErrorCode`], the payload of `call.error` and of
//! the raw carriage's `error` control message.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A `call.error` code: an open set of upper-case names.
///
/// The protocol's own codes are associated constants. Layers above the core
/// define their own (the Docker service adds `CONTAINER_NOT_FOUND` and
/// friends) with [`ErrorCode::from_static`]; codes this side does not know
/// are kept as they came.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(Cow<'static, str>);

impl ErrorCode {
    /// The operation is unknown to the server.
    pub const NOT_FOUND: ErrorCode = ErrorCode::from_static("NOT_FOUND");
    /// The input does not fit the operation.
    pub const INVALID_INPUT: ErrorCode = ErrorCode::from_static("INVALID_INPUT");
    /// The peer may not do this.
    pub const FORBIDDEN: ErrorCode = ErrorCode::from_static("FORBIDDEN");
    /// The server failed in a way that is not the caller's fault.
    pub const INTERNAL: ErrorCode = ErrorCode::from_static("INTERNAL");
    /// Something took too long; retryable.
    pub const TIMEOUT: ErrorCode = ErrorCode::from_static("TIMEOUT");
    /// A backend could not be reached; retryable.
    pub const UNAVAILABLE: ErrorCode = ErrorCode::from_static("UNAVAILABLE");
    /// The peer broke the protocol.
    pub const PROTOCOL: ErrorCode = ErrorCode::from_static("PROTOCOL");

    /// A code from a static name, usable in `const` items.
    pub const fn from_static(code: &'static str) -> Self {
        ErrorCode(Cow::Borrowed(code))
    }

    /// A code from any name.
    pub fn new(code: impl Into<String>) -> Self {
        ErrorCode(Cow::Owned(code.into()))
    }

    /// The code's name, as on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a call failing with this code is worth retrying as it is
    /// (`TIMEOUT` and `UNAVAILABLE`).
    pub fn is_retryable(&self) -> bool {
        *self == Self::TIMEOUT || *self == Self::UNAVAILABLE
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The payload of `call.error` and of the raw carriage's `error` control
/// message: why a call ended badly.
///
/// `details: null` on the wire reads as `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CallError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What happened, for a person.
    pub message: String,
    /// Whether the same call may succeed if made again.
    pub retryable: bool,
    /// Anything else the server wants to say, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl CallError {
    /// An error with the given code and message; `retryable` follows
    /// [`ErrorCode::is_retryable`].
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let retryable = code.is_retryable();
        CallError {
            code,
            message: message.into(),
            retryable,
            details: None,
        }
    }

    /// A `PROTOCOL` error.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PROTOCOL, message)
    }

    /// The same error with `retryable` set.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// The same error with details attached.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_the_code() {
        assert!(CallError::new(ErrorCode::TIMEOUT, "slow").retryable);
        assert!(CallError::new(ErrorCode::UNAVAILABLE, "down").retryable);
        assert!(!CallError::new(ErrorCode::NOT_FOUND, "no").retryable);
        assert!(!CallError::protocol("bad").retryable);
        assert!(CallError::protocol("bad").with_retryable(true).retryable);
    }

    #[test]
    fn call_error_json_has_exactly_the_design_fields() {
        let e = CallError::new(ErrorCode::new("CONFLICT"), "in use");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"CONFLICT","message":"in use","retryable":false}"#
        );
        let e = e.with_details(serde_json::json!({"id": "abc"}));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"CONFLICT","message":"in use","retryable":false,"details":{"id":"abc"}}"#
        );
    }
}
