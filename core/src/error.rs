//! The core's errors: the peer's fault ([`ProtocolError`]) and ours
//! ([`CommandError`]). The error a call ends with as it travels on the
//! wire is data of the protocol, in `call_error.rs` ([`CallError`] with its
//! [`ErrorCode`]).
//!
//! [`CallError`]: crate::CallError
//! [`ErrorCode`]: crate::ErrorCode

use crate::call_error::CallError;
use crate::chunk::{ChunkError, StreamType};
use crate::control::ControlError;
use crate::envelope::Carriage;
use crate::frame::FrameError;

/// The peer broke the protocol. The call has ended: the machine reported it
/// as an error event and queued what the peer should be told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame could not be decoded.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A chunk could not be decoded.
    #[error("bad chunk: {0}")]
    Chunk(#[from] ChunkError),
    /// A control chunk did not hold a valid control message.
    #[error("bad control message: {0}")]
    Control(#[from] ControlError),
    /// A frame named another call than the one on this stream.
    #[error("frame for call {got:?} on the stream of call {expected:?}")]
    IdMismatch {
        /// This stream's call id.
        expected: String,
        /// The id in the frame.
        got: String,
    },
    /// An envelope type that this side may not receive at this point
    /// (a second `call.requested`, `call.completed` on the raw carriage…).
    #[error("unexpected {kind} {when}")]
    UnexpectedEnvelope {
        /// The envelope type.
        kind: &'static str,
        /// Where in the call it came.
        when: &'static str,
    },
    /// A chunk of a stream that does not flow this way (stdout sent by a client…).
    #[error("unexpected {} chunk from the {from}", stream.name())]
    UnexpectedChunk {
        /// The stream type.
        stream: StreamType,
        /// Which peer sent it.
        from: &'static str,
    },
    /// A control message that does not flow this way (`exit` sent by a client…).
    #[error("unexpected {kind} control message from the {from}")]
    UnexpectedControl {
        /// The control type.
        kind: &'static str,
        /// Which peer sent it.
        from: &'static str,
    },
    /// Stdin bytes, a second zero-length stdin chunk or `eof` after stdin was closed.
    #[error("stdin after stdin was closed")]
    StdinAfterClose,
    /// Stdout or stderr bytes after the drained sentinel.
    #[error("output after the output-drained sentinel")]
    OutputAfterDrained,
    /// `exit` without the drained sentinel before it.
    #[error("exit before the output-drained sentinel")]
    ExitBeforeDrained,
    /// The stream ended before the call's terminal event.
    #[error("stream ended before the call ended ({buffered} undecoded bytes)")]
    UnexpectedEof {
        /// Bytes of a partial frame or chunk left in the buffer.
        buffered: usize,
    },
}

impl From<&ProtocolError> for CallError {
    fn from(e: &ProtocolError) -> Self {
        // The peer chose some of the text (ids, type names): it is cut
        // rather than echoed whole.
        CallError::protocol(shorten(&e.to_string()))
    }
}

/// The local application asked for something the call's state forbids.
/// Nothing was queued and the state did not change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The call has ended (or, on the client, is being aborted).
    #[error("the call has ended")]
    Finished,
    /// The server has not received `call.requested` yet.
    #[error("no call has been requested yet")]
    NotRequested,
    /// The command belongs to the other carriage.
    #[error("{command} is not available on the {carriage:?} carriage")]
    WrongCarriage {
        /// The command.
        command: &'static str,
        /// The call's carriage.
        carriage: Carriage,
    },
    /// Raw carriage: output, `exit` or `drained` before `accept`.
    #[error("the raw call has not been accepted")]
    NotAccepted,
    /// Raw carriage: `accept` a second time.
    #[error("the raw call has already been accepted")]
    AlreadyAccepted,
    /// Stdin was already closed.
    #[error("stdin is closed")]
    StdinClosed,
    /// Output after the drained sentinel was sent.
    #[error("output has been marked drained")]
    OutputDrained,
    /// The frame would exceed the frame limit.
    #[error("frame of {len} bytes is above the limit of {limit}")]
    FrameTooLarge {
        /// The body length (saturated at `u32::MAX`).
        len: u32,
        /// The limit.
        limit: u32,
    },
    /// A control message longer than any peer is bound to accept.
    #[error("control message of {len} bytes is above the limit of {limit}")]
    ControlTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: u32,
    },
}

/// Bytes an error message is cut to where it cannot go whole: a protocol
/// error's (the peer chose some of its text), and one that does not fit
/// the frame limit.
const SHORT_MESSAGE: usize = 1024;

/// `message` cut to at most [`SHORT_MESSAGE`] bytes at a character
/// boundary, with `…` when cut.
pub(crate) fn shorten(message: &str) -> String {
    if message.len() <= SHORT_MESSAGE {
        return message.to_owned();
    }
    let mut end = SHORT_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_1_kib_on_a_character_boundary() {
        assert_eq!(shorten(""), "");
        let max = "a".repeat(SHORT_MESSAGE);
        assert_eq!(shorten(&max), max);
        assert_eq!(shorten(&format!("{max}b")), format!("{max}…"));
        // A two-byte character across the limit is left out whole.
        let across = format!("{}é", "a".repeat(SHORT_MESSAGE - 1));
        assert_eq!(
            shorten(&across),
            format!("{}…", "a".repeat(SHORT_MESSAGE - 1))
        );
    }

    #[test]
    fn unknown_codes_survive_a_round_trip() {
        let e: CallError =
            serde_json::from_str(r#"{"code":"SOMETHING_NEW","message":"m","retryable":true}"#)
                .unwrap();
        assert_eq!(e.code.as_str(), "SOMETHING_NEW");
        assert_eq!(e.to_string(), "SOMETHING_NEW: m");
    }
}
