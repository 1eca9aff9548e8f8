//! The server side of one call.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::call_error::CallError;
use crate::chunk::{Chunk, StreamType};
use crate::control::Control;
use crate::envelope::{Carriage, Envelope, Payload, Request};
use crate::error::{CommandError, ProtocolError, shorten};
use crate::frame::FrameError;
use crate::limits::Limits;
use crate::machine::Machine;
use crate::wire::Wire;

/// What the server learns about a call, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    /// The call's request: always the first event.
    Requested(Request),
    /// Raw carriage: stdin bytes (these may come before [`ServerCall::accept`]).
    Stdin(Bytes),
    /// Raw carriage: the client closed stdin.
    StdinClosed,
    /// Raw carriage: the client's terminal has a new size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Raw carriage: the client asks for a signal (`"INT"`, `"TERM"`…).
    Signal(String),
    /// Terminal: the client cancelled (an abort message, or its stream
    /// ended before the call did). The handler should stop and clean up.
    Aborted,
    /// Terminal: the client broke the protocol. This error has been queued
    /// for the client where a reply was possible.
    Error(CallError),
}

/// Where a server call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Waiting for `call.requested`.
    AwaitingRequest,
    /// Requested; on the raw carriage [`ServerCall::is_accepted`] tells
    /// whether chunks flow yet.
    Open,
    /// A terminal event was sent or received. Input is ignored from now on.
    Finished,
}

/// The server side of one call: a sans-IO state machine.
///
/// Create one per incoming stream with [`ServerCall::new`], feed it the
/// client's bytes with [`handle_input`](Self::handle_input) (and
/// [`handle_eof`](Self::handle_eof) when the stream ends), and answer with
/// commands: on the json carriage [`respond`](Self::respond) any number of
/// times then [`complete`](Self::complete); on the raw carriage
/// [`accept`](Self::accept), then [`send_stdout`](Self::send_stdout) /
/// [`send_stderr`](Self::send_stderr), [`drained`](Self::drained) and
/// [`exit`](Self::exit); on either [`fail`](Self::fail) or
/// [`abort`](Self::abort). After every input or command drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event).
pub struct ServerCall {
    id: Option<String>,
    carriage: Carriage,
    state: ServerState,
    accepted: bool,
    stdin_closed: bool,
    drained: bool,
    wire: Wire,
    events: VecDeque<ServerEvent>,
    violation: Option<ProtocolError>,
}

impl ServerCall {
    /// A server call waiting for its request.
    pub fn new(limits: Limits) -> Self {
        ServerCall {
            id: None,
            carriage: Carriage::Json,
            state: ServerState::AwaitingRequest,
            accepted: false,
            stdin_closed: false,
            drained: false,
            wire: Wire::new(limits),
            events: VecDeque::new(),
            violation: None,
        }
    }

    // ---- state ---------------------------------------------------------

    /// The call's id, once requested.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The call's carriage (json until requested).
    pub fn carriage(&self) -> Carriage {
        self.carriage
    }

    /// Where the call stands.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Whether the call has ended. Once it has and
    /// [`poll_transmit`](Self::poll_transmit) returns 0, the shell may
    /// close the stream.
    pub fn is_finished(&self) -> bool {
        self.state == ServerState::Finished
    }

    /// Raw carriage: whether [`accept`](Self::accept) was called.
    pub fn is_accepted(&self) -> bool {
        self.accepted
    }

    /// Raw carriage: whether the client closed stdin.
    pub fn is_stdin_closed(&self) -> bool {
        self.stdin_closed
    }

    /// The client's protocol violation, if that is how the call ended.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        self.violation.as_ref()
    }

    // ---- input ---------------------------------------------------------

    /// Feeds bytes received from the client. Ignored once finished.
    pub fn handle_input(&mut self, data: &[u8]) {
        self.take_input(|wire| wire.push_input(data));
    }

    /// Like [`handle_input`](Self::handle_input), taking a buffer the shell
    /// owns; no copy is made when no partial item is pending.
    pub fn handle_input_buf(&mut self, data: BytesMut) {
        self.take_input(|wire| wire.push_input_buf(data));
    }

    /// Room for the next read from the client, in the machine's own input
    /// buffer: read into it, then tell [`handle_read`](Self::handle_read)
    /// how many bytes came. Never empty. The bytes are decoded where they
    /// landed and stdin payloads are split out without a copy; the
    /// memory is reused once the application has dropped them.
    ///
    /// The alternative to [`handle_input`](Self::handle_input) for shells
    /// that read into a buffer: it saves copying every byte once more.
    pub fn input_buffer(&mut self) -> &mut [u8] {
        self.read_room()
    }

    /// Feeds the first `n` bytes of the slice
    /// [`input_buffer`](Self::input_buffer) returned, just read from the
    /// client: the same as [`handle_input`](Self::handle_input) with them.
    /// `n` is at most that slice's length (any excess is ignored); 0 feeds
    /// nothing (the end of the stream is [`handle_eof`](Self::handle_eof)).
    /// Ignored once finished.
    pub fn handle_read(&mut self, n: usize) {
        self.take_input(|wire| wire.push_read(n));
    }

    /// The client's side of the stream ended. Before the call's end that is
    /// a cancellation ([`ServerEvent::Aborted`]); a stream that ends in the
    /// middle of a frame or chunk gets a `PROTOCOL` error (PROTOCOL.md §6:
    /// the client's half-closed stream can still take the reply); one that
    /// ends with no bytes at all was no call and ends quietly.
    pub fn handle_eof(&mut self) {
        if self.state == ServerState::Finished {
            return;
        }
        let buffered = self.wire.buffered();
        if buffered > 0 {
            self.violation(ProtocolError::UnexpectedEof { buffered });
            return;
        }
        match self.state {
            ServerState::AwaitingRequest => self.state = ServerState::Finished,
            _ => self.finish(ServerEvent::Aborted),
        }
    }

    // ---- commands ------------------------------------------------------

    /// Json carriage: queues one output (`call.responded`).
    pub fn respond(&mut self, output: Value) -> Result<(), CommandError> {
        self.check_carriage("respond", Carriage::Json)?;
        self.send_frame(Payload::Responded(output))
    }

    /// Json carriage: ends the call naturally (`call.completed`).
    pub fn complete(&mut self) -> Result<(), CommandError> {
        self.check_carriage("complete", Carriage::Json)?;
        self.send_frame(Payload::Completed)?;
        self.state = ServerState::Finished;
        Ok(())
    }

    /// Ends the call with an error: `call.error`, or after a raw call was
    /// accepted, an `error` control message. The call ends even when the
    /// error does not fit the frame limit: its message is then cut (to
    /// 1 KiB, details dropped), and if even that cannot be sent (the call's
    /// id is too long to echo) nothing is and `FrameTooLarge` is returned.
    pub fn fail(&mut self, error: CallError) -> Result<(), CommandError> {
        self.check_open()?;
        // The call ends whatever happens: an error too long for the frame
        // limit goes with its message cut and no details; one that cannot
        // go even so (an id too long to echo) ends the call unanswered.
        let sent = self.send_error(error.clone()).or_else(|_| {
            let short = CallError {
                message: shorten(&error.message),
                details: None,
                ..error
            };
            self.send_error(short)
        });
        self.state = ServerState::Finished;
        sent
    }

    fn send_error(&mut self, error: CallError) -> Result<(), CommandError> {
        if self.accepted {
            self.wire.out.control(&Control::Error(error))
        } else {
            self.send_frame(Payload::Error(error))
        }
    }

    /// Raw carriage: accepts the session with a description of it (the one
    /// `call.responded`); chunks may flow after it.
    pub fn accept(&mut self, output: Value) -> Result<(), CommandError> {
        self.check_carriage("accept", Carriage::Raw)?;
        if self.accepted {
            return Err(CommandError::AlreadyAccepted);
        }
        self.send_frame(Payload::Responded(output))?;
        self.accepted = true;
        Ok(())
    }

    /// Raw carriage: queues stdout bytes, split at the send limit. Empty
    /// data queues nothing (an empty stdout chunk means drained).
    pub fn send_stdout(&mut self, data: Bytes) -> Result<(), CommandError> {
        self.send_output(StreamType::Stdout, data)
    }

    /// Raw carriage: queues stderr bytes, split at the send limit.
    pub fn send_stderr(&mut self, data: Bytes) -> Result<(), CommandError> {
        self.send_output(StreamType::Stderr, data)
    }

    /// Raw carriage: all output has been sent (a zero-length stdout chunk).
    /// Calling it again does nothing; [`exit`](Self::exit) calls it if needed.
    pub fn drained(&mut self) -> Result<(), CommandError> {
        self.check_accepted("drained")?;
        if !self.drained {
            self.wire.out.chunks(StreamType::Stdout, Bytes::new());
            self.drained = true;
        }
        Ok(())
    }

    /// Raw carriage: ends the session with its exit code, after the drained
    /// sentinel (sent here if it was not yet).
    pub fn exit(&mut self, code: i32) -> Result<(), CommandError> {
        self.drained()?;
        self.wire.out.control(&Control::Exit { code })?;
        self.state = ServerState::Finished;
        Ok(())
    }

    /// Cancels the call from the server's side (shutting down, say):
    /// `call.aborted`, or an `abort` control message after acceptance.
    pub fn abort(&mut self) -> Result<(), CommandError> {
        self.check_open()?;
        self.queue_abort();
        self.state = ServerState::Finished;
        Ok(())
    }

    // ---- output --------------------------------------------------------

    /// Appends every queued byte for the client to `buf`; returns how many.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) -> usize {
        self.wire.out.drain_into(buf)
    }

    /// The next queued piece for the client, without copying large
    /// payloads; an alternative to [`poll_transmit`](Self::poll_transmit).
    #[must_use]
    pub fn poll_transmit_bytes(&mut self) -> Option<Bytes> {
        self.wire.out.pop()
    }

    /// Bytes queued for the client and not yet polled; a shell applies
    /// backpressure by not producing more output while this is large.
    pub fn transmit_len(&self) -> usize {
        self.wire.out.len()
    }

    /// The next event, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    // ---- internals -----------------------------------------------------

    fn check_open(&self) -> Result<(), CommandError> {
        match self.state {
            ServerState::AwaitingRequest => Err(CommandError::NotRequested),
            ServerState::Finished => Err(CommandError::Finished),
            ServerState::Open => Ok(()),
        }
    }

    fn check_carriage(&self, command: &'static str, want: Carriage) -> Result<(), CommandError> {
        self.check_open()?;
        if self.carriage != want {
            return Err(CommandError::WrongCarriage {
                command,
                carriage: self.carriage,
            });
        }
        Ok(())
    }

    fn check_accepted(&self, command: &'static str) -> Result<(), CommandError> {
        self.check_carriage(command, Carriage::Raw)?;
        if !self.accepted {
            return Err(CommandError::NotAccepted);
        }
        Ok(())
    }

    fn send_output(&mut self, stream: StreamType, data: Bytes) -> Result<(), CommandError> {
        self.check_accepted(stream.name())?;
        if self.drained {
            return Err(CommandError::OutputDrained);
        }
        if !data.is_empty() {
            self.wire.out.chunks(stream, data);
        }
        Ok(())
    }

    fn send_frame(&mut self, payload: Payload) -> Result<(), CommandError> {
        let id = self.id.clone().unwrap_or_default();
        self.wire.out.frame(&Envelope::new(id, payload))
    }

    fn queue_abort(&mut self) {
        // Both answers are a few bytes and fit any frame limit that the
        // request fitted.
        if self.accepted {
            let _ = self.wire.out.control(&Control::Abort);
        } else {
            let _ = self.send_frame(Payload::Aborted);
        }
    }

    fn on_first(&mut self, envelope: Envelope) {
        // Any id the client chose is the one to answer with, even when the
        // frame is not a request.
        self.id = Some(envelope.id);
        match envelope.payload {
            Payload::Requested(request) => {
                self.carriage = request.carriage;
                self.state = ServerState::Open;
                self.events.push_back(ServerEvent::Requested(request));
            }
            other => self.violation(ProtocolError::UnexpectedEnvelope {
                kind: other.type_name(),
                when: "before call.requested",
            }),
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Resize { cols, rows } => {
                self.events.push_back(ServerEvent::Resize { cols, rows })
            }
            Control::Signal { name } => self.events.push_back(ServerEvent::Signal(name)),
            Control::Eof => self.close_stdin(),
            Control::Abort => self.cancelled(),
            other => self.violation(ProtocolError::UnexpectedControl {
                kind: other.type_name(),
                from: "client",
            }),
        }
    }

    fn close_stdin(&mut self) {
        if self.stdin_closed {
            return self.violation(ProtocolError::StdinAfterClose);
        }
        self.stdin_closed = true;
        self.events.push_back(ServerEvent::StdinClosed);
    }

    /// The client aborted: confirm it and end.
    fn cancelled(&mut self) {
        self.queue_abort();
        self.finish(ServerEvent::Aborted);
    }

    fn finish(&mut self, event: ServerEvent) {
        self.events.push_back(event);
        self.state = ServerState::Finished;
        self.wire.discard_input();
    }
}

impl Machine for ServerCall {
    fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }

    fn has_ended(&self) -> bool {
        self.is_finished()
    }

    fn reads_chunks(&self) -> bool {
        self.state == ServerState::Open && self.carriage == Carriage::Raw
    }

    fn on_envelope(&mut self, envelope: Envelope) {
        let Some(id) = &self.id else {
            return self.on_first(envelope);
        };
        if envelope.id != *id {
            return self.violation(ProtocolError::IdMismatch {
                expected: id.clone(),
                got: envelope.id,
            });
        }
        match envelope.payload {
            Payload::Aborted => self.cancelled(),
            other => self.violation(ProtocolError::UnexpectedEnvelope {
                kind: other.type_name(),
                when: "from the client after call.requested",
            }),
        }
    }

    fn on_chunk(&mut self, chunk: Chunk) {
        match chunk.stream {
            StreamType::Stdin if chunk.payload.is_empty() => self.close_stdin(),
            StreamType::Stdin if self.stdin_closed => {
                self.violation(ProtocolError::StdinAfterClose)
            }
            StreamType::Stdin => self.events.push_back(ServerEvent::Stdin(chunk.payload)),
            StreamType::Stdout | StreamType::Stderr => {
                self.violation(ProtocolError::UnexpectedChunk {
                    stream: chunk.stream,
                    from: "client",
                })
            }
            StreamType::Control => match Control::decode(&chunk.payload) {
                Err(e) => self.violation(e.into()),
                Ok(None) => {}
                Ok(Some(control)) => self.on_control(control),
            },
        }
    }

    /// The client broke the protocol: answer with a `PROTOCOL` error where
    /// the stream still allows one, tell the application, and end.
    fn violation(&mut self, e: ProtocolError) {
        if self.id.is_none() {
            // A first frame that is a bad envelope may still name its call;
            // the reply then carries that id, otherwise "".
            if let ProtocolError::Frame(FrameError::Envelope(env)) = &e {
                self.id = env.id().map(str::to_owned);
            }
        }
        let error = CallError::from(&e);
        // This fails only when a peer-chosen id is too long to echo back
        // within the frame limit; the stream then ends without a reply.
        let _ = if self.accepted {
            self.wire.out.control(&Control::Error(error.clone()))
        } else {
            self.send_frame(Payload::Error(error.clone()))
        };
        self.violation = Some(e);
        self.finish(ServerEvent::Error(error));
    }
}

impl std::fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCall")
            .field("id", &self.id)
            .field("carriage", &self.carriage)
            .field("state", &self.state)
            .field("accepted", &self.accepted)
            .field("stdin_closed", &self.stdin_closed)
            .field("drained", &self.drained)
            .finish_non_exhaustive()
    }
}
