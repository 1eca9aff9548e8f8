//! What the client and server machines share: the input decoder and the
//! transmit queue.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::chunk::{CHUNK_HEADER_LEN, Chunk, ChunkCodec, StreamType, chunk_header};
use crate::control::Control;
use crate::envelope::Envelope;
use crate::error::{CommandError, ProtocolError};
use crate::frame::{FRAME_HEADER_LEN, FrameCodec, FrameError};
use crate::limits::{DEFAULT_MAX_CHUNK_RECV, Limits};

/// One decoded item: a frame before the raw carriage switches to chunks, a
/// chunk after.
pub(crate) enum Item {
    Frame(Envelope),
    Chunk(Chunk),
}

/// The bytes of one side of a call: what came in, not yet decoded, and what
/// is queued to go out.
pub(crate) struct Wire {
    inbox: Inbox,
    frames: FrameCodec,
    chunks: ChunkCodec,
    pub(crate) out: Outbox,
}

impl Wire {
    pub(crate) fn new(limits: Limits) -> Self {
        Wire {
            inbox: Inbox::default(),
            frames: FrameCodec::new(limits.max_frame_len()),
            chunks: ChunkCodec::new(limits.max_chunk_recv()),
            out: Outbox::new(limits),
        }
    }

    pub(crate) fn push_input(&mut self, data: &[u8]) {
        self.inbox.buf.extend_from_slice(data);
    }

    pub(crate) fn push_input_buf(&mut self, data: BytesMut) {
        // O(1) when nothing is buffered: the usual case for a shell that
        // reads whole items.
        self.inbox.buf.unsplit(data);
    }

    /// Room for the next read, right behind the undecoded bytes.
    pub(crate) fn input_buffer(&mut self, chunks: bool) -> &mut [u8] {
        let missing = self.missing(chunks);
        self.inbox.room(missing)
    }

    /// Takes the first `n` bytes of the room [`input_buffer`](Self::input_buffer) gave.
    pub(crate) fn push_read(&mut self, n: usize) {
        self.inbox.filled(n);
    }

    pub(crate) fn buffered(&self) -> usize {
        self.inbox.buf.len()
    }

    /// The next whole item, decoding frames or chunks.
    pub(crate) fn next_item(&mut self, chunks: bool) -> Result<Option<Item>, ProtocolError> {
        if chunks {
            Ok(self.chunks.decode(&mut self.inbox.buf)?.map(Item::Chunk))
        } else {
            Ok(self.frames.decode(&mut self.inbox.buf)?.map(Item::Frame))
        }
    }

    /// Forgets undecoded input (and the memory kept for it) once the call
    /// has ended.
    pub(crate) fn discard_input(&mut self) {
        self.inbox = Inbox::default();
    }

    /// Bytes still missing from the item at the front of the input, once
    /// its header is there (at most its limit); else those of the header.
    fn missing(&self, chunks: bool) -> usize {
        let buf = &self.inbox.buf[..];
        let (header, len, limit) = if chunks {
            let len = buf
                .first_chunk::<CHUNK_HEADER_LEN>()
                .map(|h| u32::from_be_bytes([h[1], h[2], h[3], h[4]]));
            (CHUNK_HEADER_LEN, len, self.chunks.max_len())
        } else {
            let len = buf
                .first_chunk::<FRAME_HEADER_LEN>()
                .map(|h| u32::from_be_bytes(*h));
            (FRAME_HEADER_LEN, len, self.frames.max_len())
        };
        let Some(len) = len else {
            return header - buf.len();
        };
        (header + len.min(limit) as usize).saturating_sub(buf.len())
    }
}

/// The first input block; blocks double from here as input keeps coming.
const FIRST_BLOCK: usize = 8 * 1024;
/// The largest block made for input that is not one long item.
const MAX_BLOCK: usize = 1024 * 1024;
/// At most this much room is offered (and zeroed) for one read.
const MAX_ROOM: usize = 256 * 1024;
/// A block with less room than this left is replaced rather than read
/// into, so that reads stay large.
const MIN_ROOM: usize = 4096;
/// Blocks kept for reuse once every item decoded from them is dropped.
const SPENT_BLOCKS: usize = 4;

/// Input: undecoded bytes, and zeroed room for the next read right behind
/// them in the same block of memory, so a read lands in place: no copy,
/// and decoded payloads split off without one either.
///
/// Decoded payloads share the block they were read into and may outlive
/// it by far (a shell queues them for its application), so a block cannot
/// simply be reused. Used-up blocks are kept and taken again once every
/// payload of theirs is gone; a shell reading a steady stream then reads
/// into the same few blocks instead of fresh memory (which the allocator
/// often gets from the kernel page by page).
#[derive(Default)]
struct Inbox {
    /// Received, not yet decoded.
    buf: BytesMut,
    /// Zeroed bytes to read into; in the same block as `buf`, after it.
    room: BytesMut,
    /// The next block's size (0: not started yet).
    next_block: usize,
    /// Used-up blocks (what was left of their room), oldest first.
    spent: VecDeque<BytesMut>,
}

impl Inbox {
    /// At least `missing` bytes of room (within reason), and never less
    /// than [`MIN_ROOM`] unless that many are offered for the item.
    fn room(&mut self, missing: usize) -> &mut [u8] {
        // A peer announcing a long item gets room for it as its bytes come,
        // at most doubling what it has sent: no large allocation on the
        // word of a header alone.
        let missing = missing.min(MAX_ROOM.max(self.buf.len()));
        let want = missing.max(MIN_ROOM);
        if self.room.capacity() < want {
            self.new_block(want);
        }
        let offer = self.room.capacity().min(missing.max(MAX_ROOM));
        if self.room.len() < offer {
            self.room.resize(offer, 0);
        }
        &mut self.room[..]
    }

    fn filled(&mut self, n: usize) {
        let n = n.min(self.room.len());
        let read = self.room.split_to(n);
        // O(1): `read` continues `buf` in the same block (or `buf` is empty).
        self.buf.unsplit(read);
    }

    /// Moves the undecoded bytes to a block with room for `want` more.
    fn new_block(&mut self, want: usize) {
        let started = self.next_block > 0;
        let size = self.next_block.max(FIRST_BLOCK).max(self.buf.len() + want);
        self.next_block = (self.next_block * 2).clamp(FIRST_BLOCK, MAX_BLOCK);
        let mut block = self
            .reuse(size)
            .unwrap_or_else(|| BytesMut::with_capacity(size));
        block.extend_from_slice(&self.buf);
        let room = block.split_off(self.buf.len());
        self.buf = block;
        let old = std::mem::replace(&mut self.room, room);
        // What is left of the old block's room (perhaps nothing) still
        // holds the block: once it is the last holder, it can be reclaimed.
        if started {
            if self.spent.len() == SPENT_BLOCKS {
                self.spent.pop_front();
            }
            self.spent.push_back(old);
        }
    }

    /// A spent block of at least `size` bytes that nothing else uses any more.
    fn reuse(&mut self, size: usize) -> Option<BytesMut> {
        let at = self.spent.iter_mut().position(|block| {
            block.clear();
            block.try_reclaim(size)
        })?;
        self.spent.remove(at)
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

    /// Reads `data` into `inbox` the way a shell does, in reads of at most
    /// the room offered.
    fn read_in(inbox: &mut Inbox, missing: usize, mut data: &[u8]) {
        while !data.is_empty() {
            let room = inbox.room(missing);
            let n = room.len().min(data.len());
            room[..n].copy_from_slice(&data[..n]);
            inbox.filled(n);
            data = &data[n..];
        }
    }

    #[test]
    fn reads_land_behind_the_undecoded_bytes_without_a_copy() {
        let mut inbox = Inbox::default();
        read_in(&mut inbox, 0, b"abc");
        let start = inbox.buf.as_ptr() as usize;
        read_in(&mut inbox, 0, b"def");
        assert_eq!(&inbox.buf[..], b"abcdef");
        assert_eq!(inbox.buf.as_ptr() as usize, start);
    }

    #[test]
    fn room_is_never_empty_and_an_overlong_count_takes_only_the_room() {
        let mut inbox = Inbox::default();
        for missing in [0, 1, MIN_ROOM, MAX_ROOM, MAX_ROOM + 1, usize::MAX] {
            assert!(!inbox.room(missing).is_empty(), "missing {missing}");
        }
        let offered = inbox.room(0).len();
        inbox.filled(offered + 10);
        assert_eq!(inbox.buf.len(), offered);
    }

    #[test]
    fn the_partial_item_moves_to_the_next_block_whole() {
        let mut inbox = Inbox::default();
        let first: Vec<u8> = (0..FIRST_BLOCK).map(|i| i as u8).collect();
        read_in(&mut inbox, 0, &first);
        // The first block is full; the rest of a long item needs a new one.
        let room = inbox.room(3 * FIRST_BLOCK);
        assert!(room.len() >= 3 * FIRST_BLOCK);
        assert_eq!(&inbox.buf[..], &first[..]);
    }

    #[test]
    fn a_header_alone_does_not_buy_a_large_block() {
        let mut inbox = Inbox::default();
        read_in(&mut inbox, 0, &[1, 0xff, 0xff, 0xff, 0xff]);
        assert!(inbox.room(usize::MAX).len() <= MAX_ROOM);
        assert!(inbox.room.capacity() <= MAX_ROOM + FIRST_BLOCK);
    }

    #[test]
    fn a_spent_block_is_reused_only_once_its_payloads_are_gone() {
        let mut inbox = Inbox::default();
        let offered = inbox.room(0).len();
        inbox.filled(offered);
        // What a decoder splits off and an application keeps for a while.
        let payload = inbox.buf.split().freeze();
        let block = payload.as_ptr() as usize;
        inbox.new_block(MIN_ROOM);
        assert!(inbox.reuse(FIRST_BLOCK).is_none());
        drop(payload);
        let reused = inbox.reuse(FIRST_BLOCK).expect("nothing holds the block");
        assert_eq!(reused.as_ptr() as usize, block);
        assert!(reused.capacity() >= FIRST_BLOCK);
    }

    #[test]
    fn the_next_block_is_a_spent_one_when_nothing_holds_it() {
        // Steady state: blocks have stopped growing.
        let mut inbox = Inbox {
            next_block: MAX_BLOCK,
            ..Inbox::default()
        };
        inbox.new_block(MIN_ROOM);
        let offered = inbox.room.capacity();
        inbox.room(offered);
        inbox.filled(offered);
        let payload = inbox.buf.split().freeze();
        let first = payload.as_ptr() as usize;
        inbox.new_block(MIN_ROOM);
        drop(payload);
        // The second block is used up too; its successor is the first.
        let offered = inbox.room.capacity();
        inbox.room(offered);
        inbox.filled(offered);
        let _second = inbox.buf.split().freeze();
        inbox.new_block(MIN_ROOM);
        assert_eq!(inbox.room.as_ptr() as usize, first);
    }

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
