//! The input path both call machines share: take the peer's bytes however
//! the shell has them, decode every whole item, and hand each to the
//! machine's own rules.

use crate::chunk::Chunk;
use crate::envelope::Envelope;
use crate::error::ProtocolError;
use crate::wire::{Item, Wire};

/// A call machine as its input path sees it. [`ClientCall`] and
/// [`ServerCall`] give their rules (what a frame or a chunk means to them);
/// their `handle_input`, `handle_input_buf`, `input_buffer` and
/// `handle_read` are the provided methods.
///
/// [`ClientCall`]: crate::ClientCall
/// [`ServerCall`]: crate::ServerCall
pub(crate) trait Machine {
    /// The call's bytes.
    fn wire(&mut self) -> &mut Wire;

    /// Whether the call has ended: input is ignored from then on.
    fn has_ended(&self) -> bool;

    /// Whether the peer's next item is a chunk (the raw carriage, past its
    /// frames) rather than a frame.
    fn reads_chunks(&self) -> bool;

    /// A frame from the peer.
    fn on_envelope(&mut self, envelope: Envelope);

    /// A chunk from the peer.
    fn on_chunk(&mut self, chunk: Chunk);

    /// The peer broke the protocol: the call ends.
    fn violation(&mut self, e: ProtocolError);

    /// Buffers input with `push`, then handles every whole item in it.
    /// Ignored once the call has ended.
    fn take_input(&mut self, push: impl FnOnce(&mut Wire)) {
        if self.has_ended() {
            return;
        }
        push(self.wire());
        while !self.has_ended() {
            let chunks = self.reads_chunks();
            match self.wire().next_item(chunks) {
                Ok(None) => return,
                Ok(Some(Item::Frame(envelope))) => self.on_envelope(envelope),
                Ok(Some(Item::Chunk(chunk))) => self.on_chunk(chunk),
                Err(e) => self.violation(e),
            }
        }
    }

    /// Room for the next read, right behind the undecoded input.
    fn read_room(&mut self) -> &mut [u8] {
        let chunks = self.reads_chunks();
        self.wire().input_buffer(chunks)
    }
}
