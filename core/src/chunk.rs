//! The chunk codec of the raw carriage: `[stream: u8][len: u32 BE][payload]`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::limits::DEFAULT_MAX_CHUNK_RECV;

/// Bytes in a chunk header.
pub const CHUNK_HEADER_LEN: usize = 5;

/// Which stream a chunk belongs to. The numbers equal Docker's attach-stream
/// header byte and the POSIX file descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StreamType {
    /// Client → server: stdin bytes; empty means stdin closed.
    Stdin = 0,
    /// Server → client: stdout bytes; empty means all output drained.
    Stdout = 1,
    /// Server → client: stderr bytes.
    Stderr = 2,
    /// Both ways: one JSON object with a `"type"` ([`crate::Control`]).
    Control = 3,
}

impl StreamType {
    /// The type for a header byte, if it is one of the four.
    pub fn from_u8(byte: u8) -> Option<StreamType> {
        match byte {
            0 => Some(StreamType::Stdin),
            1 => Some(StreamType::Stdout),
            2 => Some(StreamType::Stderr),
            3 => Some(StreamType::Control),
            _ => None,
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            StreamType::Stdin => "stdin",
            StreamType::Stdout => "stdout",
            StreamType::Stderr => "stderr",
            StreamType::Control => "control",
        }
    }
}

/// One decoded chunk. The payload shares the decode buffer's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The stream it belongs to.
    pub stream: StreamType,
    /// Its bytes.
    pub payload: Bytes,
}

/// The five header bytes of a chunk of `len` payload bytes.
pub fn chunk_header(stream: StreamType, len: u32) -> [u8; CHUNK_HEADER_LEN] {
    let l = len.to_be_bytes();
    [stream as u8, l[0], l[1], l[2], l[3]]
}

/// Encodes and incrementally decodes chunks, refusing unknown stream types
/// and payloads longer than its limit.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use dockwire_core::{ChunkCodec, StreamType};
///
/// let codec = ChunkCodec::default();
/// let mut wire = BytesMut::new();
/// codec.encode(StreamType::Stdout, b"hi", &mut wire)?;
/// assert_eq!(&wire[..], &[1, 0, 0, 0, 2, b'h', b'i']);
/// let chunk = codec.decode(&mut wire)?.expect("a whole chunk");
/// assert_eq!(chunk.payload, Bytes::from_static(b"hi"));
/// # Ok::<(), dockwire_core::ChunkError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkCodec {
    max_len: u32,
}

impl Default for ChunkCodec {
    fn default() -> Self {
        ChunkCodec {
            max_len: DEFAULT_MAX_CHUNK_RECV,
        }
    }
}

impl ChunkCodec {
    /// A codec with the given payload limit.
    pub fn new(max_len: u32) -> Self {
        ChunkCodec { max_len }
    }

    /// The largest payload this codec accepts and writes.
    pub fn max_len(&self) -> u32 {
        self.max_len
    }

    /// Takes one chunk off the front of `buf`; the payload is split out of
    /// the buffer, not copied.
    ///
    /// `Ok(None)` means more bytes are needed; nothing is consumed. An
    /// unknown type is reported from the first byte and an oversized length
    /// from the header, before any payload arrives.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Chunk>, ChunkError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let stream = StreamType::from_u8(first).ok_or(ChunkError::UnknownType(first))?;
        let Some(header) = buf.first_chunk::<CHUNK_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        if len > self.max_len {
            return Err(ChunkError::TooLarge {
                len: u64::from(len),
                limit: self.max_len,
            });
        }
        if buf.len() < CHUNK_HEADER_LEN + len as usize {
            return Ok(None);
        }
        buf.advance(CHUNK_HEADER_LEN);
        let payload = buf.split_to(len as usize).freeze();
        Ok(Some(Chunk { stream, payload }))
    }

    /// Appends one chunk to `dst`. A payload over the limit is refused and
    /// `dst` is left as it was.
    pub fn encode(
        &self,
        stream: StreamType,
        payload: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), ChunkError> {
        let len = payload.len() as u64;
        if len > u64::from(self.max_len) {
            return Err(ChunkError::TooLarge {
                len,
                limit: self.max_len,
            });
        }
        dst.reserve(CHUNK_HEADER_LEN + payload.len());
        dst.put_slice(&chunk_header(stream, len as u32));
        dst.put_slice(payload);
        Ok(())
    }
}

/// A chunk that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The type byte is not 0–3.
    #[error("unknown chunk type {0}")]
    UnknownType(u8),
    /// The payload is longer than the limit.
    #[error("chunk length {len} is above the limit of {limit}")]
    TooLarge {
        /// The length found or asked for.
        len: u64,
        /// The limit in force.
        limit: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_round_trips_with_its_header_byte() {
        let codec = ChunkCodec::default();
        for (byte, stream) in [
            (0u8, StreamType::Stdin),
            (1, StreamType::Stdout),
            (2, StreamType::Stderr),
            (3, StreamType::Control),
        ] {
            let mut wire = BytesMut::new();
            codec.encode(stream, b"abc", &mut wire).unwrap();
            assert_eq!(&wire[..], &[byte, 0, 0, 0, 3, b'a', b'b', b'c']);
            let chunk = codec.decode(&mut wire).unwrap().unwrap();
            assert_eq!(chunk.stream, stream);
            assert_eq!(&chunk.payload[..], b"abc");
            assert!(wire.is_empty());
        }
    }

    #[test]
    fn types_above_three_are_refused_from_the_first_byte() {
        for byte in 4..=u8::MAX {
            let mut wire = BytesMut::from(&[byte][..]);
            assert_eq!(
                ChunkCodec::default().decode(&mut wire),
                Err(ChunkError::UnknownType(byte))
            );
        }
    }

    #[test]
    fn zero_length_payload_is_a_chunk() {
        let mut wire = BytesMut::from(&[0u8, 0, 0, 0, 0][..]);
        let chunk = ChunkCodec::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!(chunk.stream, StreamType::Stdin);
        assert!(chunk.payload.is_empty());
    }

    #[test]
    fn payload_at_the_limit_passes_and_one_more_is_refused() {
        let codec = ChunkCodec::new(8);
        let mut wire = BytesMut::new();
        codec
            .encode(StreamType::Stdout, &[7; 8], &mut wire)
            .unwrap();
        assert_eq!(codec.decode(&mut wire).unwrap().unwrap().payload.len(), 8);

        let mut wire = BytesMut::from(&b"keep"[..]);
        assert_eq!(
            codec.encode(StreamType::Stdout, &[7; 9], &mut wire),
            Err(ChunkError::TooLarge { len: 9, limit: 8 })
        );
        assert_eq!(&wire[..], b"keep");

        let mut wire = BytesMut::from(&chunk_header(StreamType::Stdout, 9)[..]);
        assert_eq!(
            codec.decode(&mut wire),
            Err(ChunkError::TooLarge { len: 9, limit: 8 })
        );
    }

    #[test]
    fn default_read_limit_is_sixteen_mebibytes() {
        let codec = ChunkCodec::default();
        let mut wire = BytesMut::from(&chunk_header(StreamType::Stdout, 16 << 20)[..]);
        assert_eq!(codec.decode(&mut wire), Ok(None));
        let mut wire = BytesMut::from(&chunk_header(StreamType::Stdout, (16 << 20) + 1)[..]);
        assert!(matches!(
            codec.decode(&mut wire),
            Err(ChunkError::TooLarge { .. })
        ));
    }

    #[test]
    fn every_split_point_needs_more_until_the_last_byte() {
        let codec = ChunkCodec::default();
        let mut whole = BytesMut::new();
        codec
            .encode(StreamType::Stderr, b"split me", &mut whole)
            .unwrap();
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(codec.decode(&mut buf), Ok(None), "cut {cut}");
            assert_eq!(buf.len(), cut);
            buf.extend_from_slice(&whole[cut..]);
            assert_eq!(
                &codec.decode(&mut buf).unwrap().unwrap().payload[..],
                b"split me"
            );
        }
    }

    #[test]
    fn decode_does_not_copy_the_payload() {
        let mut wire = BytesMut::new();
        ChunkCodec::default()
            .encode(StreamType::Stdout, &[1; 4096], &mut wire)
            .unwrap();
        let start = wire.as_ptr() as usize;
        let chunk = ChunkCodec::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!(chunk.payload.as_ptr() as usize, start + CHUNK_HEADER_LEN);
    }
}
