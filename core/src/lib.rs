//! The sans-IO core of the dockwire protocol.
//!
//! dockwire puts operations (a Docker engine's, in the end) on a framed,
//! bidirectional byte stream: one call per stream. Every call starts with a
//! JSON frame, `call.requested`, whose `carriage` decides what follows: more
//! JSON frames (queries and subscriptions) or raw byte chunks (the stdin,
//! stdout, stderr and control of an interactive session). `PROTOCOL.md` at
//! the repository's root has the byte layouts and ordering rules.
//!
//! This crate is the whole protocol and nothing else: no sockets, no clock,
//! no tasks, no async runtime. It has three layers:
//!
//! - codecs: [`FrameCodec`] (`[u32 BE len][JSON]`), [`ChunkCodec`]
//!   (`[u8 type][u32 BE len][bytes]`), with [`Envelope`] and [`Control`]
//!   for what frames and control chunks say. Decoders are incremental
//!   (`Ok(None)`: need more bytes) and split payloads out of the buffer
//!   without copying.
//! - per-call state machines: [`ClientCall`] and [`ServerCall`], one value
//!   per stream, which enforce the protocol's ordering rules.
//! - errors: [`ProtocolError`] (the peer broke the protocol; the call ends
//!   with a `PROTOCOL` error), [`CommandError`] (the local application asked
//!   for something the state forbids; nothing happens), [`CallError`] (the
//!   error a call ends with, as on the wire).
//!
//! # Driving a call
//!
//! A machine has one door in and one door out. In: `handle_input` with
//! bytes from the peer (or `handle_read` after reading them straight into
//! the slice `input_buffer` lends, which saves a copy), `handle_eof` when
//! the peer's side of the stream ends, and commands (`respond`,
//! `send_stdin`, `exit`, `abort`, …). Out: `poll_transmit` (bytes for the
//! peer; `poll_transmit_bytes` hands them over piece by piece without
//! copying payloads) and `poll_event` (what happened).
//!
//! **After every input or command, drain both outputs** before waiting on
//! anything else. The machine never blocks, never reads a clock, and keeps
//! what it has to say until it is polled. A shell's loop is:
//!
//! 1. wait for bytes from the stream, or a command from the application;
//! 2. hand them to the machine;
//! 3. write everything `poll_transmit` gives to the stream; hand every
//!    `poll_event` to the application;
//! 4. once `is_finished()` and nothing is left to transmit, close the stream.
//!
//! A client and a server wired together in memory:
//!
//! ```
//! use bytes::BytesMut;
//! use dockwire_core::{
//!     Carriage, ClientCall, ClientEvent, Limits, Request, ServerCall, ServerEvent,
//! };
//! use serde_json::json;
//!
//! let limits = Limits::default();
//! let request = Request::new("math/double", json!({"n": 21}), Carriage::Json);
//! let mut client = ClientCall::new("call-1", request, limits)?;
//! let mut server = ServerCall::new(limits);
//! let mut wire = BytesMut::new();
//!
//! // Client → server: call.requested.
//! let _ = client.poll_transmit(&mut wire);
//! server.handle_input(&wire.split());
//! let Some(ServerEvent::Requested(req)) = server.poll_event() else { unreachable!() };
//! assert_eq!(req.operation, "math/double");
//!
//! // The handler answers one output and completes.
//! let n = req.input["n"].as_i64().unwrap_or(0);
//! server.respond(json!(n * 2))?;
//! server.complete()?;
//! assert!(server.is_finished());
//!
//! // Server → client.
//! let _ = server.poll_transmit(&mut wire);
//! client.handle_input(&wire.split());
//! assert_eq!(client.poll_event(), Some(ClientEvent::Responded(json!(42))));
//! assert_eq!(client.poll_event(), Some(ClientEvent::Completed));
//! assert!(client.is_finished());
//! # Ok::<(), dockwire_core::CommandError>(())
//! ```
//!
//! A raw session runs the same way: the server `accept`s, stdin arrives as
//! [`ServerEvent::Stdin`], output goes out with `send_stdout`/`send_stderr`,
//! and `exit` ends it after the drained sentinel; the client sees
//! [`ClientEvent::Accepted`], `Stdout`, `Stderr`, `Drained`, then `Exit`.
//!
//! # Peers that misbehave
//!
//! Input can never make a machine panic. A peer's violation (a malformed
//! frame, an oversized chunk, stdin after close, output after the drained
//! sentinel, a second request…) ends the call: the machine emits an error
//! event with code `PROTOCOL`, queues for the peer what it should be told
//! (the server a `call.error` or `error` control message, the client an
//! abort), keeps the typed cause in `protocol_error()`, and ignores all
//! further input.

mod call_error;
mod chunk;
mod client;
mod control;
mod envelope;
mod error;
mod frame;
mod limits;
mod machine;
mod server;
mod wire;

pub use call_error::{CallError, ErrorCode};
pub use chunk::{CHUNK_HEADER_LEN, Chunk, ChunkCodec, ChunkError, StreamType, chunk_header};
pub use client::{ClientCall, ClientEvent, ClientState};
pub use control::{Control, ControlError};
pub use envelope::{Carriage, Envelope, EnvelopeError, Payload, Request};
pub use error::{CommandError, ProtocolError};
pub use frame::{FRAME_HEADER_LEN, FrameCodec, FrameError};
pub use limits::{
    DEFAULT_MAX_CHUNK_RECV, DEFAULT_MAX_CHUNK_SEND, DEFAULT_MAX_FRAME_LEN, LimitError, Limits,
    MAX_CHUNK_RECV_CEILING, MAX_FRAME_LEN_CEILING,
};
pub use server::{ServerCall, ServerEvent, ServerState};
