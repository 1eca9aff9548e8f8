//! Writing a machine's transmit queue to a stream: shared by both drivers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::io::AsyncWrite;

/// The piece taken from a machine and not yet accepted by the writer.
#[derive(Default)]
pub(crate) struct Outgoing {
    piece: Bytes,
    /// Written since the last flush.
    dirty: bool,
}

impl Outgoing {
    /// Bytes waiting for the writer.
    pub(crate) fn len(&self) -> usize {
        self.piece.len()
    }

    /// Writes what is waiting, refilling from `pull` (a machine's
    /// `poll_transmit_bytes`, which hands payloads over without copying
    /// them) until the writer would block or nothing is left, then
    /// flushes. Sets `progress` when any byte moved.
    pub(crate) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        mut pull: impl FnMut() -> Option<Bytes>,
        cx: &mut Context<'_>,
        progress: &mut bool,
    ) -> io::Result<()> {
        loop {
            if self.piece.is_empty() {
                match pull() {
                    Some(piece) => self.piece = piece,
                    None => break,
                }
                continue;
            }
            match Pin::new(&mut *writer).poll_write(cx, &self.piece) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.piece.advance(n);
                    self.dirty = true;
                    *progress = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
        }
        if self.dirty {
            match Pin::new(writer).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.dirty = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(())
    }
}

/// Where a server driver writes its machine's pieces: a stream and what it
/// has not yet taken.
pub(crate) trait Transmit {
    /// Bytes taken from the machine and not yet accepted by the stream.
    fn len(&self) -> usize;

    /// Writes what is waiting, refilling from `pull` (the machine's
    /// `poll_transmit_bytes`) until the stream would block or nothing is
    /// left. Sets `progress` when any byte moved.
    fn poll_transmit(
        &mut self,
        pull: impl FnMut() -> Option<Bytes>,
        cx: &mut Context<'_>,
        progress: &mut bool,
    ) -> io::Result<()>;

    /// Closes the stream's write side.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// Any `AsyncWrite`, written a piece at a time.
pub(crate) struct Plain<W> {
    writer: W,
    out: Outgoing,
}

impl<W> Plain<W> {
    pub(crate) fn new(writer: W) -> Self {
        Plain {
            writer,
            out: Outgoing::default(),
        }
    }
}

impl<W: AsyncWrite + Unpin> Transmit for Plain<W> {
    fn len(&self) -> usize {
        self.out.len()
    }

    fn poll_transmit(
        &mut self,
        pull: impl FnMut() -> Option<Bytes>,
        cx: &mut Context<'_>,
        progress: &mut bool,
    ) -> io::Result<()> {
        self.out.poll_write(&mut self.writer, pull, cx, progress)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_close(cx)
    }
}
