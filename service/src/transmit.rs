//! Writing a machine's transmit queue to a stream's send side: the pieces
//! `poll_transmit_bytes` hands over, written as they are where the
//! transport takes `Bytes` (QUIC), else a piece at a time to an
//! `AsyncWrite`. Shared by both drivers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::io::AsyncWrite;

use crate::BoxWrite;

/// The send side of one call's stream, as a driver writes it; what
/// [`Connect::open_call`](crate::Connect::open_call) gives.
///
/// Made from any write half (`SendHalf::from(write)`), which is written a
/// piece at a time; the QUIC transport makes its own, which hands the
/// machine's pieces to quinn without copying them.
pub struct SendHalf(Box<dyn Transmit + Send>);

impl From<BoxWrite> for SendHalf {
    fn from(write: BoxWrite) -> Self {
        SendHalf::new(Plain::new(write))
    }
}

impl SendHalf {
    pub(crate) fn new(transmit: impl Transmit + Send + 'static) -> Self {
        SendHalf(Box::new(transmit))
    }
}

impl Transmit for SendHalf {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn poll_transmit(
        &mut self,
        pull: &mut dyn FnMut() -> Option<Bytes>,
        cx: &mut Context<'_>,
        progress: &mut bool,
    ) -> io::Result<()> {
        self.0.poll_transmit(pull, cx, progress)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_close(cx)
    }
}

/// Where a driver writes its machine's pieces: a stream and what it has
/// not yet taken.
pub(crate) trait Transmit {
    /// Bytes taken from the machine and not yet accepted by the stream.
    fn len(&self) -> usize;

    /// Writes what is waiting, refilling from `pull` (the machine's
    /// `poll_transmit_bytes`, which hands payloads over without copying
    /// them) until the stream would block or nothing is left. Sets
    /// `progress` when any byte moved.
    fn poll_transmit(
        &mut self,
        pull: &mut dyn FnMut() -> Option<Bytes>,
        cx: &mut Context<'_>,
        progress: &mut bool,
    ) -> io::Result<()>;

    /// Closes the stream's write side.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// Any `AsyncWrite`, written a piece at a time and flushed once the
/// machine has nothing more.
pub(crate) struct Plain<W> {
    writer: W,
    /// The piece taken from the machine and not yet accepted by the writer.
    piece: Bytes,
    /// Written since the last flush.
    dirty: bool,
}

impl<W> Plain<W> {
    pub(crate) fn new(writer: W) -> Self {
        Plain {
            writer,
            piece: Bytes::new(),
            dirty: false,
        }
    }
}

impl<W: AsyncWrite + Unpin> Transmit for Plain<W> {
    fn len(&self) -> usize {
        self.piece.len()
    }

    fn poll_transmit(
        &mut self,
        pull: &mut dyn FnMut() -> Option<Bytes>,
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
            match Pin::new(&mut self.writer).poll_write(cx, &self.piece) {
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
            match Pin::new(&mut self.writer).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.dirty = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_close(cx)
    }
}
