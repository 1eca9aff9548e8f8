//! Writes a session's output (stdout or stderr) to this process's own, on
//! a thread of its own.
//!
//! A process's output arrives as many small pieces (each as the remote
//! process wrote it, a few KiB). Handing each piece to a blocking thread
//! and waiting for it, as an async stdout does, costs a round of thread
//! wake-ups per piece: more than the bytes themselves. Here the call's
//! task only queues each piece (no copy, no wait while the queue has
//! room), and the thread writes everything that arrived since its last
//! write in one vectored call, sleeping only when the queue is empty.
//! A slow reader of our output fills the queue, which then holds the
//! call's task, which holds the stream's flow control: nothing is lost and
//! memory stays bounded.

use std::io::{self, IoSlice, Write};

use dockwire_service::OutputReader;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::bytes::Bytes;

/// Pieces queued for the thread at most.
const QUEUED: usize = 256;

/// Pieces one write takes at most (Linux's `IOV_MAX` is 1024).
const BATCH: usize = 256;

/// Writes `from` to `to` as its bytes come; resolves once all is written
/// (and flushed) or `from` failed. After `to` is closed (`| head`), the
/// rest is drained unwritten and that is not a failure.
pub async fn write_out(mut from: OutputReader, to: impl Write + Send + 'static) -> io::Result<()> {
    let (queue, pieces) = mpsc::channel::<Bytes>(QUEUED);
    let (done, written) = oneshot::channel();
    std::thread::Builder::new()
        .name("dockwire-output".into())
        .spawn(move || {
            let _ = done.send(write_all(pieces, to));
        })?;
    let mut read = Ok(());
    while let Some(piece) = from.next().await {
        match piece {
            Ok(piece) => {
                // The thread is gone only after a write failed: its answer
                // says how.
                if queue.send(piece).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                read = Err(e);
                break;
            }
        }
    }
    drop(queue);
    let wrote = written
        .await
        .unwrap_or_else(|_| Err(io::Error::other("the output thread died")));
    read.and(wrote)
}

/// The thread's loop: every queued piece, in order, to `to`.
fn write_all(mut pieces: mpsc::Receiver<Bytes>, mut to: impl Write) -> io::Result<()> {
    let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH);
    // Whether anybody still reads our output.
    let mut read = true;
    while let Some(first) = pieces.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match pieces.try_recv() {
                Ok(piece) => batch.push(piece),
                Err(_) => break,
            }
        }
        if read {
            let written = write_vectored_all(&mut to, &batch).and_then(|()| to.flush());
            match written {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => read = false,
                Err(e) => return Err(e),
            }
        }
        batch.clear();
    }
    Ok(())
}

/// Writes all of `pieces`, in as few calls as `to` takes them.
fn write_vectored_all(to: &mut impl Write, pieces: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut left = &mut slices[..];
    while !left.is_empty() {
        match to.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `limit` bytes per call, to split writes anywhere.
    struct Trickle {
        got: Vec<u8>,
        limit: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.limit - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn vectored_writes_that_stop_anywhere_keep_every_byte_in_order() {
        let pieces: Vec<Bytes> = (0..50u8)
            .map(|i| Bytes::from(vec![i; usize::from(i) * 7 + 1]))
            .collect();
        let want: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        for limit in [1, 3, 64, 1000, 1 << 20] {
            let mut to = Trickle {
                got: Vec::new(),
                limit,
                calls: 0,
            };
            write_vectored_all(&mut to, &pieces).unwrap();
            assert_eq!(to.got, want, "limit {limit}");
        }
    }

    #[test]
    fn a_closed_reader_is_drained_without_failing() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (tx, rx) = mpsc::channel(4);
        let thread = std::thread::spawn(move || write_all(rx, Closed));
        for _ in 0..10 {
            tx.blocking_send(Bytes::from_static(b"x")).unwrap();
        }
        drop(tx);
        thread.join().unwrap().unwrap();
    }
}
