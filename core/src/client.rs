//! The client side of one call.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::call_error::CallError;
use crate::chunk::{Chunk, StreamType};
use crate::control::Control;
use crate::envelope::{Carriage, Envelope, Payload, Request};
use crate::error::{CommandError, ProtocolError};
use crate::limits::Limits;
use crate::machine::Machine;
use crate::wire::Wire;

/// What the client learns about its call, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// Json carriage: one output (a query's answer, a subscription's item).
    Responded(Value),
    /// Raw carriage: the server accepted the session; its description.
    Accepted(Value),
    /// Raw carriage: stdout bytes.
    Stdout(Bytes),
    /// Raw carriage: stderr bytes.
    Stderr(Bytes),
    /// Raw carriage: all output has been sent; the exit code follows.
    Drained,
    /// Raw carriage, terminal: the session's exit code.
    Exit(i32),
    /// Json carriage, terminal: the natural end.
    Completed,
    /// Terminal: the call was cancelled (by either side).
    Aborted,
    /// Terminal: the server's error, or a [`ProtocolError`] of the server's
    /// that this side detected (code `PROTOCOL`).
    Error(CallError),
}

/// Where a client call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Requested and running.
    Open,
    /// [`ClientCall::abort`] was called; waiting for the server's answer.
    /// Outputs arriving meanwhile (`Responded`, `Accepted`, `Stdout`,
    /// `Stderr`) are dropped; `Drained` and the terminal event are not.
    Aborting,
    /// A terminal event has been emitted. Input is ignored from now on.
    Finished,
}

/// The client side of one call: a sans-IO state machine.
///
/// Create it with [`ClientCall::new`], which queues `call.requested`. Then
/// feed it the peer's bytes with [`handle_input`](Self::handle_input) (and
/// [`handle_eof`](Self::handle_eof) when the stream ends), give it commands
/// ([`send_stdin`](Self::send_stdin), [`close_stdin`](Self::close_stdin),
/// [`resize`](Self::resize), [`signal`](Self::signal), [`abort`](Self::abort)),
/// and after every input or command drain both outputs:
/// [`poll_transmit`](Self::poll_transmit) (bytes for the peer) and
/// [`poll_event`](Self::poll_event) (what happened). It never reads a clock
/// and never blocks.
pub struct ClientCall {
    id: String,
    carriage: Carriage,
    state: ClientState,
    accepted: bool,
    stdin_closed: bool,
    drained: bool,
    wire: Wire,
    events: VecDeque<ClientEvent>,
    violation: Option<ProtocolError>,
}

impl ClientCall {
    /// Starts call `id` for `request`: `call.requested` is queued for
    /// transmission. On the raw carriage stdin may be sent at once.
    ///
    /// Fails only when the request does not fit the frame limit.
    pub fn new(
        id: impl Into<String>,
        request: Request,
        limits: Limits,
    ) -> Result<Self, CommandError> {
        let id = id.into();
        let carriage = request.carriage;
        let mut wire = Wire::new(limits);
        wire.out
            .frame(&Envelope::new(id.clone(), Payload::Requested(request)))?;
        Ok(ClientCall {
            id,
            carriage,
            state: ClientState::Open,
            accepted: false,
            stdin_closed: false,
            drained: false,
            wire,
            events: VecDeque::new(),
            violation: None,
        })
    }

    // ---- state ---------------------------------------------------------

    /// The call's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The call's carriage.
    pub fn carriage(&self) -> Carriage {
        self.carriage
    }

    /// Where the call stands.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the terminal event has been emitted. Once it has and
    /// [`poll_transmit`](Self::poll_transmit) returns 0, the shell may
    /// close the stream.
    pub fn is_finished(&self) -> bool {
        self.state == ClientState::Finished
    }

    /// Raw carriage: whether the server accepted the session.
    pub fn is_accepted(&self) -> bool {
        self.accepted
    }

    /// Raw carriage: whether stdin has been closed.
    pub fn is_stdin_closed(&self) -> bool {
        self.stdin_closed
    }

    /// The server's protocol violation, if that is how the call ended.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        self.violation.as_ref()
    }

    // ---- input ---------------------------------------------------------

    /// Feeds bytes received from the server. Ignored once finished.
    pub fn handle_input(&mut self, data: &[u8]) {
        self.take_input(|wire| wire.push_input(data));
    }

    /// Like [`handle_input`](Self::handle_input), taking a buffer the shell
    /// owns; no copy is made when no partial item is pending.
    pub fn handle_input_buf(&mut self, data: BytesMut) {
        self.take_input(|wire| wire.push_input_buf(data));
    }

    /// Room for the next read from the server, in the machine's own input
    /// buffer: read into it, then tell [`handle_read`](Self::handle_read)
    /// how many bytes came. Never empty. The bytes are decoded where they
    /// landed and stdout and stderr payloads are split out without a copy; the
    /// memory is reused once the application has dropped them.
    ///
    /// The alternative to [`handle_input`](Self::handle_input) for shells
    /// that read into a buffer: it saves copying every byte once more.
    pub fn input_buffer(&mut self) -> &mut [u8] {
        self.read_room()
    }

    /// Feeds the first `n` bytes of the slice
    /// [`input_buffer`](Self::input_buffer) returned, just read from the
    /// server: the same as [`handle_input`](Self::handle_input) with them.
    /// `n` is at most that slice's length (any excess is ignored); 0 feeds
    /// nothing (the end of the stream is [`handle_eof`](Self::handle_eof)).
    /// Ignored once finished.
    pub fn handle_read(&mut self, n: usize) {
        self.take_input(|wire| wire.push_read(n));
    }

    /// The server's side of the stream ended. Before a terminal event that
    /// is an error, except while aborting, where it counts as the answer.
    pub fn handle_eof(&mut self) {
        match self.state {
            ClientState::Finished => {}
            ClientState::Aborting => self.finish(ClientEvent::Aborted),
            ClientState::Open => {
                let e = ProtocolError::UnexpectedEof {
                    buffered: self.wire.buffered(),
                };
                self.events.push_back(ClientEvent::Error((&e).into()));
                self.violation = Some(e);
                self.state = ClientState::Finished;
                self.wire.discard_input();
            }
        }
    }

    // ---- commands ------------------------------------------------------

    /// Raw carriage: queues stdin bytes, split into chunks of at most the
    /// send limit. Empty data queues nothing.
    pub fn send_stdin(&mut self, data: Bytes) -> Result<(), CommandError> {
        self.check_stdin("send_stdin")?;
        if !data.is_empty() {
            self.wire.out.chunks(StreamType::Stdin, data);
        }
        Ok(())
    }

    /// Raw carriage: closes stdin (a zero-length stdin chunk). The process
    /// sees end of file; its output still arrives.
    pub fn close_stdin(&mut self) -> Result<(), CommandError> {
        self.check_stdin("close_stdin")?;
        self.wire.out.chunks(StreamType::Stdin, Bytes::new());
        self.stdin_closed = true;
        Ok(())
    }

    /// Raw carriage: the terminal's new size.
    pub fn resize(&mut self, cols: u16, rows: u16) -> Result<(), CommandError> {
        self.check_raw("resize")?;
        self.wire.out.control(&Control::Resize { cols, rows })
    }

    /// Raw carriage: asks the server to deliver a signal (`"INT"`, `"TERM"`…).
    pub fn signal(&mut self, name: impl Into<String>) -> Result<(), CommandError> {
        self.check_raw("signal")?;
        self.wire
            .out
            .control(&Control::Signal { name: name.into() })
    }

    /// Cancels the call: `call.aborted` on the json carriage, an `abort`
    /// control message on the raw one. The call ends when the server
    /// answers (or the stream ends); outputs arriving meanwhile are
    /// dropped. Calling it again while aborting does nothing.
    pub fn abort(&mut self) -> Result<(), CommandError> {
        match self.state {
            ClientState::Finished => Err(CommandError::Finished),
            ClientState::Aborting => Ok(()),
            ClientState::Open => {
                self.queue_abort();
                self.state = ClientState::Aborting;
                Ok(())
            }
        }
    }

    // ---- output --------------------------------------------------------

    /// Appends every queued byte for the server to `buf`; returns how many.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) -> usize {
        self.wire.out.drain_into(buf)
    }

    /// The next queued piece for the server, without copying large
    /// payloads; an alternative to [`poll_transmit`](Self::poll_transmit)
    /// for shells that write `Bytes` (quinn's `write_chunk`).
    #[must_use]
    pub fn poll_transmit_bytes(&mut self) -> Option<Bytes> {
        self.wire.out.pop()
    }

    /// Bytes queued for the server and not yet polled; a shell applies
    /// backpressure by not sending more stdin while this is large.
    pub fn transmit_len(&self) -> usize {
        self.wire.out.len()
    }

    /// The next event, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    // ---- internals -----------------------------------------------------

    fn check_raw(&self, command: &'static str) -> Result<(), CommandError> {
        if self.carriage != Carriage::Raw {
            return Err(CommandError::WrongCarriage {
                command,
                carriage: self.carriage,
            });
        }
        if self.state != ClientState::Open {
            return Err(CommandError::Finished);
        }
        Ok(())
    }

    fn check_stdin(&self, command: &'static str) -> Result<(), CommandError> {
        self.check_raw(command)?;
        if self.stdin_closed {
            return Err(CommandError::StdinClosed);
        }
        Ok(())
    }

    fn queue_abort(&mut self) {
        match self.carriage {
            Carriage::Json => {
                // An id that fitted in call.requested fits in call.aborted.
                let _ = self
                    .wire
                    .out
                    .frame(&Envelope::new(self.id.clone(), Payload::Aborted));
            }
            Carriage::Raw => {
                let _ = self.wire.out.control(&Control::Abort);
            }
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Exit { .. } if !self.drained => {
                self.violation(ProtocolError::ExitBeforeDrained)
            }
            Control::Exit { code } => self.finish(ClientEvent::Exit(code)),
            Control::Error(e) => self.finish(ClientEvent::Error(e)),
            Control::Abort => self.finish(ClientEvent::Aborted),
            other => self.violation(ProtocolError::UnexpectedControl {
                kind: other.type_name(),
                from: "server",
            }),
        }
    }

    fn finish(&mut self, event: ClientEvent) {
        self.events.push_back(event);
        self.state = ClientState::Finished;
        self.wire.discard_input();
    }
}

impl Machine for ClientCall {
    fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }

    fn has_ended(&self) -> bool {
        self.is_finished()
    }

    fn reads_chunks(&self) -> bool {
        self.carriage == Carriage::Raw && self.accepted
    }

    fn on_envelope(&mut self, envelope: Envelope) {
        if envelope.id != self.id {
            return self.violation(ProtocolError::IdMismatch {
                expected: self.id.clone(),
                got: envelope.id,
            });
        }
        let aborting = self.state == ClientState::Aborting;
        match (envelope.payload, self.carriage) {
            (Payload::Responded(output), Carriage::Json) => {
                if !aborting {
                    self.events.push_back(ClientEvent::Responded(output));
                }
            }
            (Payload::Responded(output), Carriage::Raw) => {
                self.accepted = true;
                if !aborting {
                    self.events.push_back(ClientEvent::Accepted(output));
                }
            }
            (Payload::Completed, Carriage::Json) => self.finish(ClientEvent::Completed),
            (Payload::Completed, Carriage::Raw) => {
                self.violation(ProtocolError::UnexpectedEnvelope {
                    kind: "call.completed",
                    when: "on the raw carriage",
                })
            }
            (Payload::Aborted, _) => self.finish(ClientEvent::Aborted),
            (Payload::Error(e), _) => self.finish(ClientEvent::Error(e)),
            (Payload::Requested(_), _) => self.violation(ProtocolError::UnexpectedEnvelope {
                kind: "call.requested",
                when: "from the server",
            }),
        }
    }

    fn on_chunk(&mut self, chunk: Chunk) {
        let aborting = self.state == ClientState::Aborting;
        match chunk.stream {
            StreamType::Stdin => self.violation(ProtocolError::UnexpectedChunk {
                stream: StreamType::Stdin,
                from: "server",
            }),
            StreamType::Stdout | StreamType::Stderr if self.drained => {
                self.violation(ProtocolError::OutputAfterDrained)
            }
            // Reported even while aborting: it is no output but the promise
            // that `Exit` may follow, and `Exit` is reported.
            StreamType::Stdout if chunk.payload.is_empty() => {
                self.drained = true;
                self.events.push_back(ClientEvent::Drained);
            }
            // An empty stderr chunk carries nothing and means nothing.
            StreamType::Stderr if chunk.payload.is_empty() => {}
            StreamType::Stdout | StreamType::Stderr => {
                if aborting {
                    return;
                }
                self.events
                    .push_back(if chunk.stream == StreamType::Stdout {
                        ClientEvent::Stdout(chunk.payload)
                    } else {
                        ClientEvent::Stderr(chunk.payload)
                    });
            }
            StreamType::Control => match Control::decode(&chunk.payload) {
                Err(e) => self.violation(e.into()),
                Ok(None) => {}
                Ok(Some(control)) => self.on_control(control),
            },
        }
    }

    /// The server broke the protocol: tell the application, tell the server
    /// to stop (unless it was already told), and end.
    fn violation(&mut self, e: ProtocolError) {
        if self.state == ClientState::Open {
            self.queue_abort();
        }
        let event = ClientEvent::Error((&e).into());
        self.violation = Some(e);
        self.finish(event);
    }
}

impl std::fmt::Debug for ClientCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCall")
            .field("id", &self.id)
            .field("carriage", &self.carriage)
            .field("state", &self.state)
            .field("accepted", &self.accepted)
            .field("stdin_closed", &self.stdin_closed)
            .field("drained", &self.drained)
            .finish_non_exhaustive()
    }
}
