//! A detached process's output as the server keeps it: each stream's
//! bytes at their absolute offsets (0 is the stream's first byte), the
//! newest of them held up to a budget shared by both streams, the oldest
//! dropped first. Held as chunks (`Bytes`), which readers clone (a count,
//! not a copy).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::catalog::{StreamName, StreamOffsets};

/// The most one [`OutputBuffer::read`] answers, per stream.
pub(crate) const READ_LIMIT: usize = 1024 * 1024;

/// Both output streams of one process, within `budget` bytes.
#[derive(Debug)]
pub(crate) struct OutputBuffer {
    budget: usize,
    stdout: Stream,
    stderr: Stream,
}

/// One stream: its held chunks, the offset of the first, and the total
/// written.
#[derive(Debug, Default)]
struct Stream {
    chunks: VecDeque<Bytes>,
    oldest: u64,
    written: u64,
    held: usize,
}

impl OutputBuffer {
    /// An empty buffer that holds at most `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        OutputBuffer {
            budget,
            stdout: Stream::default(),
            stderr: Stream::default(),
        }
    }

    /// Appends `bytes` to `stream`, then drops the oldest bytes (of the
    /// stream holding more) until both fit the budget. The bytes are
    /// copied once, to an allocation of their own: a chunk of the engine's
    /// read buffer would keep the whole buffer alive.
    pub(crate) fn push(&mut self, stream: StreamName, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let target = self.stream_mut(stream);
        target.written = target.written.saturating_add(bytes.len() as u64);
        target.held = target.held.saturating_add(bytes.len());
        target.chunks.push_back(Bytes::copy_from_slice(bytes));
        while self.stdout.held.saturating_add(self.stderr.held) > self.budget {
            let over = self.stdout.held + self.stderr.held - self.budget;
            let larger = match self.stdout.held >= self.stderr.held {
                true => &mut self.stdout,
                false => &mut self.stderr,
            };
            larger.drop_front(over);
        }
    }

    /// The held bytes of `stream` from offset `from` on (at most
    /// [`READ_LIMIT`], in whole chunks but the first), and the offset of
    /// their first byte: `from`, or the oldest held when `from` was
    /// dropped. Empty when nothing from `from` on is held yet.
    pub(crate) fn read(&self, stream: StreamName, from: u64) -> (u64, Vec<Bytes>) {
        let s = self.stream(stream);
        let start = from.max(s.oldest);
        let mut at = s.oldest;
        let mut taken = 0usize;
        let mut out = Vec::new();
        for chunk in &s.chunks {
            let end = at + chunk.len() as u64;
            if end > start {
                let skip = usize::try_from(start.saturating_sub(at)).unwrap_or(usize::MAX);
                let piece = chunk.slice(skip.min(chunk.len())..);
                taken += piece.len();
                out.push(piece);
                if taken >= READ_LIMIT {
                    break;
                }
            }
            at = end;
        }
        (start, out)
    }

    /// What `stream` has written, holds and has dropped.
    pub(crate) fn offsets(&self, stream: StreamName) -> StreamOffsets {
        let s = self.stream(stream);
        StreamOffsets {
            written: s.written,
            oldest: s.oldest,
            dropped: s.oldest,
        }
    }

    /// The bytes held, both streams together.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.stdout.held + self.stderr.held
    }

    fn stream(&self, stream: StreamName) -> &Stream {
        match stream {
            StreamName::Stdout => &self.stdout,
            StreamName::Stderr => &self.stderr,
        }
    }

    fn stream_mut(&mut self, stream: StreamName) -> &mut Stream {
        match stream {
            StreamName::Stdout => &mut self.stdout,
            StreamName::Stderr => &mut self.stderr,
        }
    }
}

impl Stream {
    /// Drops up to `count` of the oldest held bytes.
    fn drop_front(&mut self, count: usize) {
        let mut left = count;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let cut = left.min(front.len());
            if cut == front.len() {
                self.chunks.pop_front();
            } else {
                *front = front.slice(cut..);
            }
            left -= cut;
            self.held -= cut;
            self.oldest += cut as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn within_the_budget_every_byte_reads_back_at_its_offset() {
        let mut buffer = OutputBuffer::new(100);
        buffer.push(StreamName::Stdout, b"hello ");
        buffer.push(StreamName::Stderr, b"oops");
        buffer.push(StreamName::Stdout, b"world");
        let (at, chunks) = buffer.read(StreamName::Stdout, 0);
        assert_eq!((at, joined(&chunks)), (0, b"hello world".to_vec()));
        let (at, chunks) = buffer.read(StreamName::Stdout, 3);
        assert_eq!((at, joined(&chunks)), (3, b"lo world".to_vec()));
        let (at, chunks) = buffer.read(StreamName::Stderr, 4);
        assert_eq!((at, joined(&chunks)), (4, Vec::new()));
        assert_eq!(
            buffer.offsets(StreamName::Stdout),
            StreamOffsets {
                written: 11,
                oldest: 0,
                dropped: 0
            }
        );
    }

    #[test]
    fn over_the_budget_the_oldest_bytes_go_and_the_tail_is_exact() {
        let mut buffer = OutputBuffer::new(10);
        for piece in [&b"0123"[..], b"4567", b"89ab", b"cdef"] {
            buffer.push(StreamName::Stdout, piece);
        }
        assert_eq!(buffer.held(), 10);
        let (at, chunks) = buffer.read(StreamName::Stdout, 0);
        assert_eq!((at, joined(&chunks)), (6, b"6789abcdef".to_vec()));
        let offsets = buffer.offsets(StreamName::Stdout);
        assert_eq!(
            (offsets.written, offsets.oldest, offsets.dropped),
            (16, 6, 6)
        );
    }

    #[test]
    fn the_stream_holding_more_gives_way_first() {
        let mut buffer = OutputBuffer::new(8);
        buffer.push(StreamName::Stderr, b"ee");
        buffer.push(StreamName::Stdout, b"oooooooo");
        assert_eq!(buffer.offsets(StreamName::Stdout).dropped, 2);
        assert_eq!(buffer.offsets(StreamName::Stderr).dropped, 0);
        assert_eq!(buffer.held(), 8);
    }

    #[test]
    fn a_read_stops_near_its_limit_and_goes_on_from_there() {
        let mut buffer = OutputBuffer::new(4 * READ_LIMIT);
        let chunk = vec![7u8; READ_LIMIT / 2 + 1];
        for _ in 0..6 {
            buffer.push(StreamName::Stdout, &chunk);
        }
        let (at, first) = buffer.read(StreamName::Stdout, 0);
        let got: usize = first.iter().map(Bytes::len).sum();
        assert_eq!((at, got), (0, 2 * chunk.len()));
        let (at, _) = buffer.read(StreamName::Stdout, got as u64);
        assert_eq!(at, got as u64);
    }
}
