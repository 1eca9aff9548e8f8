//! Writing a machine's transmit queue to a stream: shared by both drivers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures::io::AsyncWrite;

/// Bytes taken from a machine and not yet accepted by the writer.
#[derive(Default)]
pub(crate) struct Outgoing {
    buf: BytesMut,
    /// Written since the last flush.
    dirty: bool,
}

impl Outgoing {
    /// Bytes waiting for the writer.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Writes what is waiting, refilling from `pull` (a machine's
    /// `poll_transmit`) until the writer would block or nothing is left,
    /// then flushes. Sets `progress` when any byte moved.
    pub(crate) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        mut pull: impl FnMut(&mut BytesMut) -> usize,
        cx: &mut Context<'_>,
        progress: &mut bool,
    ) -> io::Result<()> {
        loop {
            if self.buf.is_empty() && pull(&mut self.buf) == 0 {
                break;
            }
            match Pin::new(&mut *writer).poll_write(cx, &self.buf) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    let _ = self.buf.split_to(n);
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
