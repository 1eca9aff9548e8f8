//! The frame codec: `[len: u32 big-endian][len bytes of JSON envelope]`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::envelope::{Envelope, EnvelopeError};
use crate::limits::DEFAULT_MAX_FRAME_LEN;

/// Bytes in a frame's length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Encodes and incrementally decodes frames, refusing bodies of zero length
/// or longer than its limit.
///
/// ```
/// use bytes::BytesMut;
/// use dockwire_core::{Envelope, FrameCodec, Payload};
///
/// let codec = FrameCodec::default();
/// let mut wire = BytesMut::new();
/// codec.encode(&Envelope::new("sub-1", Payload::Completed), &mut wire)?;
/// assert_eq!(&wire[4..], br#"{"type":"call.completed","id":"sub-1","payload":{}}"#);
///
/// let mut partial = wire.split_to(10);
/// assert!(codec.decode(&mut partial)?.is_none()); // need more bytes
/// partial.unsplit(wire);
/// let env = codec.decode(&mut partial)?.expect("a whole frame");
/// assert_eq!(env.payload, Payload::Completed);
/// # Ok::<(), dockwire_core::FrameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCodec {
    max_len: u32,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec {
            max_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl FrameCodec {
    /// A codec with the given body limit (see [`crate::Limits`] for the
    /// range the protocol allows).
    pub fn new(max_len: u32) -> Self {
        FrameCodec { max_len }
    }

    /// The largest body this codec accepts and writes.
    pub fn max_len(&self) -> u32 {
        self.max_len
    }

    /// Takes one frame's body off the front of `buf`, without copying it.
    ///
    /// `Ok(None)` means `buf` does not hold a whole frame yet; nothing is
    /// consumed. A bad length is reported as soon as its four bytes are
    /// there, before the body arrives. After an error the stream is not
    /// usable: where the next frame starts is unknown.
    pub fn decode_body(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                limit: self.max_len,
            });
        }
        let total = FRAME_HEADER_LEN + len as usize;
        // No reserve here: a peer announcing a large frame must not make us
        // allocate before its bytes arrive.
        if buf.len() < total {
            return Ok(None);
        }
        buf.advance(FRAME_HEADER_LEN);
        Ok(Some(buf.split_to(len as usize).freeze()))
    }

    /// Takes one frame off the front of `buf` and reads its envelope.
    ///
    /// `Ok(None)` means more bytes are needed. An envelope error consumes
    /// the frame, so a caller that wants to answer it still can.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Envelope>, FrameError> {
        match self.decode_body(buf)? {
            None => Ok(None),
            Some(body) => Ok(Some(Envelope::from_json(&body)?)),
        }
    }

    /// Appends `envelope` as one frame to `dst`.
    ///
    /// A body over the limit is refused and `dst` is left as it was.
    pub fn encode(&self, envelope: &Envelope, dst: &mut BytesMut) -> Result<(), FrameError> {
        let start = dst.len();
        dst.put_u32(0);
        let mut writer = dst.writer();
        // Serializing an envelope into memory cannot fail; see Envelope::write_json.
        serde_json::to_writer(&mut writer, envelope).expect("an envelope always serializes");
        let dst = writer.into_inner();
        let body = dst.len() - start - FRAME_HEADER_LEN;
        if body > self.max_len as usize {
            dst.truncate(start);
            return Err(FrameError::TooLarge {
                len: u32::try_from(body).unwrap_or(u32::MAX),
                limit: self.max_len,
            });
        }
        dst[start..start + FRAME_HEADER_LEN].copy_from_slice(&(body as u32).to_be_bytes());
        Ok(())
    }
}

/// A frame that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is zero; every frame carries an envelope.
    #[error("frame length is zero")]
    Empty,
    /// The length is above the limit (saturated at `u32::MAX` when encoding).
    #[error("frame length {len} is above the limit of {limit}")]
    TooLarge {
        /// The length found or needed.
        len: u32,
        /// The limit in force.
        limit: u32,
    },
    /// The body is not a valid envelope.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Carriage, Payload, Request};
    use serde_json::json;

    fn frame(body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u32(body.len() as u32);
        b.put_slice(body);
        b
    }

    #[test]
    fn alknet_request_frame_decodes_as_a_json_request_without_the_slash() {
        let body = br#"{"type":"call.requested","id":"req-1","payload":{"operationId":"/fs/readFile","input":{"path":"/etc/hosts"}}}"#;
        let mut wire = frame(body);
        assert_eq!(&wire[..4], &(body.len() as u32).to_be_bytes());
        let env = FrameCodec::default().decode(&mut wire).unwrap().unwrap();
        assert!(wire.is_empty());
        assert_eq!(env.id, "req-1");
        assert_eq!(
            env.payload,
            Payload::Requested(Request {
                operation: "fs/readFile".into(),
                input: json!({"path": "/etc/hosts"}),
                carriage: Carriage::Json,
            })
        );
    }

    #[test]
    fn alknet_completed_frame_encodes_byte_for_byte() {
        let mut wire = BytesMut::new();
        FrameCodec::default()
            .encode(&Envelope::new("sub-1", Payload::Completed), &mut wire)
            .unwrap();
        let body = br#"{"type":"call.completed","id":"sub-1","payload":{}}"#;
        assert_eq!(&wire[..], &frame(body)[..]);
    }

    #[test]
    fn zero_length_is_refused() {
        let mut wire = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(matches!(
            FrameCodec::default().decode(&mut wire),
            Err(FrameError::Empty)
        ));
    }

    #[test]
    fn bodies_at_the_limit_pass_and_one_more_byte_is_refused_before_it_arrives() {
        let env = Envelope::new("i", Payload::Responded(json!("x".repeat(100))));
        let body = env.to_json();
        let max = body.len() as u32;
        let codec = FrameCodec::new(max);

        let mut wire = BytesMut::new();
        codec.encode(&env, &mut wire).unwrap();
        assert_eq!(codec.decode(&mut wire).unwrap().unwrap(), env);

        let bigger = Envelope::new("i", Payload::Responded(json!("x".repeat(101))));
        let mut wire = BytesMut::from(&b"keep"[..]);
        assert!(matches!(
            codec.encode(&bigger, &mut wire),
            Err(FrameError::TooLarge { len, limit }) if len == max + 1 && limit == max
        ));
        assert_eq!(&wire[..], b"keep", "a refused encode leaves dst as it was");

        // Only the header of an oversized frame is needed to refuse it.
        let mut wire = BytesMut::new();
        wire.put_u32(max + 1);
        assert!(matches!(
            codec.decode(&mut wire),
            Err(FrameError::TooLarge { len, .. }) if len == max + 1
        ));
    }

    #[test]
    fn default_limit_is_sixteen_mebibytes() {
        let codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        wire.put_u32(16 << 20);
        assert!(codec.decode_body(&mut wire).unwrap().is_none());
        let mut wire = BytesMut::new();
        wire.put_u32((16 << 20) + 1);
        assert!(matches!(
            codec.decode_body(&mut wire),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn every_split_point_needs_more_until_the_last_byte() {
        let env = Envelope::new("s", Payload::Responded(json!({"k": [1, 2, 3]})));
        let mut whole = BytesMut::new();
        FrameCodec::default().encode(&env, &mut whole).unwrap();
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert!(
                FrameCodec::default().decode(&mut buf).unwrap().is_none(),
                "cut {cut}"
            );
            assert_eq!(buf.len(), cut, "nothing is consumed before a whole frame");
            buf.extend_from_slice(&whole[cut..]);
            assert_eq!(
                FrameCodec::default().decode(&mut buf).unwrap().unwrap(),
                env
            );
        }
    }

    #[test]
    fn an_envelope_error_consumes_the_frame() {
        let mut wire = frame(b"{not json");
        wire.extend_from_slice(&frame(
            br#"{"type":"call.completed","id":"n","payload":{}}"#,
        ));
        let codec = FrameCodec::default();
        assert!(matches!(
            codec.decode(&mut wire),
            Err(FrameError::Envelope(EnvelopeError::Json(_)))
        ));
        assert_eq!(codec.decode(&mut wire).unwrap().unwrap().id, "n");
    }

    #[test]
    fn decode_body_does_not_copy() {
        let mut wire = frame(br#"{"type":"call.completed","id":"n","payload":{}}"#);
        let start = wire.as_ptr() as usize;
        let body = FrameCodec::default()
            .decode_body(&mut wire)
            .unwrap()
            .unwrap();
        assert_eq!(body.as_ptr() as usize, start + FRAME_HEADER_LEN);
    }
}
