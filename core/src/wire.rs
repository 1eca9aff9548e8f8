//! What the client and server machines share: the input decoder, the
//! transmit queue, and the two error enums (the peer's fault, our fault).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::chunk::{Chunk, ChunkCodec, ChunkError, StreamType, chunk_header};
use crate::control::{Control, ControlError};
use crate::envelope::{Carriage, Envelope};
use crate::error::CallError;
use crate::frame::{FrameCodec, FrameError};
use crate::limits::{DEFAULT_MAX_CHUNK_RECV, Limits};

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

/// Longest message a protocol error carries; the peer chose some of the
/// text (ids, type names), so it is cut rather than echoed whole.
const MAX_ERROR_MESSAGE: usize = 1024;

impl From<&ProtocolError> for CallError {
    fn from(e: &ProtocolError) -> Self {
        let mut message = e.to_string();
        if message.len() > MAX_ERROR_MESSAGE {
            let mut cut = MAX_ERROR_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        CallError::protocol(message)
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

/// One decoded item: a frame before the raw carriage switches to chunks, a
/// chunk after.
pub(crate) enum Item {
    Frame(Envelope),
    Chunk(Chunk),
}

/// The bytes of one side of a call: what came in, not yet decoded, and what
/// is queued to go out.
pub(crate) struct Wire {
    inbuf: BytesMut,
    frames: FrameCodec,
    chunks: ChunkCodec,
    pub(crate) out: Outbox,
}

impl Wire {
    pub(crate) fn new(limits: Limits) -> Self {
        Wire {
            inbuf: BytesMut::new(),
            frames: FrameCodec::new(limits.max_frame_len()),
            chunks: ChunkCodec::new(limits.max_chunk_recv()),
            out: Outbox::new(limits),
        }
    }

    pub(crate) fn push_input(&mut self, data: &[u8]) {
        self.inbuf.extend_from_slice(data);
    }

    pub(crate) fn push_input_buf(&mut self, data: BytesMut) {
        // O(1) when nothing is buffered: the usual case for a shell that
        // reads whole items.
        self.inbuf.unsplit(data);
    }

    pub(crate) fn buffered(&self) -> usize {
        self.inbuf.len()
    }

    /// The next whole item, decoding frames or chunks.
    pub(crate) fn next_item(&mut self, chunks: bool) -> Result<Option<Item>, ProtocolError> {
        if chunks {
            Ok(self.chunks.decode(&mut self.inbuf)?.map(Item::Chunk))
        } else {
            Ok(self.frames.decode(&mut self.inbuf)?.map(Item::Frame))
        }
    }

    /// Forgets undecoded input once the call has ended.
    pub(crate) fn discard_input(&mut self) {
        self.inbuf = BytesMut::new();
    }
}

/// Payloads up to this size are copied into the open buffer; longer ones
/// are queued as they are and copied once, on transmit.
const INLINE_PAYLOAD: usize = 4096;

/// The bytes queued for the peer, in order: `queue` first, then `open`.
pub(crate) struct Outbox {
    queue: VecDeque<Bytes>,
    open: BytesMut,
    len: usize,
    frames: FrameCodec,
    max_chunk: usize,
}

impl Outbox {
    fn new(limits: Limits) -> Self {
        Outbox {
            queue: VecDeque::new(),
            open: BytesMut::new(),
            len: 0,
            frames: FrameCodec::new(limits.max_frame_len()),
            max_chunk: limits.max_chunk_send() as usize,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn frame(&mut self, envelope: &Envelope) -> Result<(), CommandError> {
        let before = self.open.len();
        match self.frames.encode(envelope, &mut self.open) {
            Ok(()) => {
                self.len += self.open.len() - before;
                Ok(())
            }
            Err(FrameError::TooLarge { len, limit }) => {
                Err(CommandError::FrameTooLarge { len, limit })
            }
            // Encoding produces no other error.
            Err(_) => Err(CommandError::FrameTooLarge {
                len: u32::MAX,
                limit: self.frames.max_len(),
            }),
        }
    }

    /// Queues `payload` on `stream` as one or more chunks of at most the
    /// send limit. An empty payload is queued as one empty chunk.
    pub(crate) fn chunks(&mut self, stream: StreamType, mut payload: Bytes) {
        loop {
            let piece = payload.split_to(payload.len().min(self.max_chunk));
            self.chunk(stream, piece);
            if payload.is_empty() {
                return;
            }
        }
    }

    pub(crate) fn control(&mut self, control: &Control) -> Result<(), CommandError> {
        let json = control.to_json();
        // Controls are never split; the peer's default read limit bounds them.
        if json.len() > DEFAULT_MAX_CHUNK_RECV as usize {
            return Err(CommandError::ControlTooLarge {
                len: json.len(),
                limit: DEFAULT_MAX_CHUNK_RECV,
            });
        }
        self.chunk(StreamType::Control, Bytes::from(json));
        Ok(())
    }

    fn chunk(&mut self, stream: StreamType, payload: Bytes) {
        self.open
            .extend_from_slice(&chunk_header(stream, payload.len() as u32));
        self.len += crate::chunk::CHUNK_HEADER_LEN + payload.len();
        if payload.len() <= INLINE_PAYLOAD {
            self.open.extend_from_slice(&payload);
            return;
        }
        // `open` holds at least the header just written, so no empty piece is queued.
        self.queue.push_back(self.open.split().freeze());
        self.queue.push_back(payload);
    }

    pub(crate) fn drain_into(&mut self, buf: &mut BytesMut) -> usize {
        let n = self.len;
        if n == 0 {
            return 0;
        }
        buf.reserve(n);
        for piece in self.queue.drain(..) {
            buf.extend_from_slice(&piece);
        }
        buf.extend_from_slice(&self.open);
        self.open.clear();
        self.len = 0;
        n
    }

    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        if let Some(piece) = self.queue.pop_front() {
            self.len -= piece.len();
            return Some(piece);
        }
        if self.open.is_empty() {
            return None;
        }
        let piece = self.open.split().freeze();
        self.len -= piece.len();
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_payloads_are_split_at_the_send_limit() {
        let limits = Limits::default().with_max_chunk_send(10).unwrap();
        let mut out = Outbox::new(limits);
        out.chunks(StreamType::Stdout, Bytes::from(vec![9u8; 25]));
        let mut buf = BytesMut::new();
        assert_eq!(out.drain_into(&mut buf), 25 + 3 * 5);
        let codec = ChunkCodec::default();
        let sizes: Vec<usize> = std::iter::from_fn(|| codec.decode(&mut buf).unwrap())
            .map(|c| c.payload.len())
            .collect();
        assert_eq!(sizes, [10, 10, 5]);
    }

    #[test]
    fn pop_and_drain_give_the_same_bytes_in_order() {
        let fill = |out: &mut Outbox| {
            out.chunks(StreamType::Stdout, Bytes::from_static(b"small"));
            out.chunks(StreamType::Stderr, Bytes::from(vec![1u8; 10_000]));
            out.chunks(StreamType::Stdout, Bytes::new());
            out.control(&Control::Exit { code: 3 }).unwrap();
        };
        let mut a = Outbox::new(Limits::default());
        let mut b = Outbox::new(Limits::default());
        fill(&mut a);
        fill(&mut b);
        let mut drained = BytesMut::new();
        let total = a.drain_into(&mut drained);
        assert_eq!(a.len(), 0);
        let mut popped = Vec::new();
        while let Some(p) = b.pop() {
            popped.extend_from_slice(&p);
        }
        assert_eq!(b.len(), 0);
        assert_eq!(total, popped.len());
        assert_eq!(&drained[..], &popped[..]);
    }
}
