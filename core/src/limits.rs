//! Size limits for frames and chunks.

/// Default largest frame body accepted and sent: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;
/// The largest frame limit that may be configured: 64 MiB.
pub const MAX_FRAME_LEN_CEILING: u32 = 64 * 1024 * 1024;
/// Default largest chunk payload this side sends: 1 MiB. Larger writes are split.
pub const DEFAULT_MAX_CHUNK_SEND: u32 = 1024 * 1024;
/// Default largest chunk payload accepted from the peer: 16 MiB.
pub const DEFAULT_MAX_CHUNK_RECV: u32 = 16 * 1024 * 1024;
/// The largest chunk-read limit that may be configured: 64 MiB.
pub const MAX_CHUNK_RECV_CEILING: u32 = 64 * 1024 * 1024;

/// The limits one side of a call enforces.
///
/// Every peer accepts chunks of [`DEFAULT_MAX_CHUNK_RECV`] unless configured
/// lower, so the send size may not exceed that.
///
/// ```
/// use dockwire_core::Limits;
/// let limits = Limits::default().with_max_frame_len(1 << 20)?;
/// assert_eq!(limits.max_frame_len(), 1 << 20);
/// # Ok::<(), dockwire_core::LimitError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    max_frame_len: u32,
    max_chunk_send: u32,
    max_chunk_recv: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_chunk_send: DEFAULT_MAX_CHUNK_SEND,
            max_chunk_recv: DEFAULT_MAX_CHUNK_RECV,
        }
    }
}

impl Limits {
    /// The largest frame body (JSON envelope) sent or accepted.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// The largest chunk payload this side sends; longer writes become several chunks.
    pub fn max_chunk_send(&self) -> u32 {
        self.max_chunk_send
    }

    /// The largest chunk payload accepted from the peer.
    pub fn max_chunk_recv(&self) -> u32 {
        self.max_chunk_recv
    }

    /// Sets the frame limit: 1 byte to [`MAX_FRAME_LEN_CEILING`].
    pub fn with_max_frame_len(mut self, len: u32) -> Result<Self, LimitError> {
        self.max_frame_len = check("max_frame_len", len, MAX_FRAME_LEN_CEILING)?;
        Ok(self)
    }

    /// Sets the send chunk size: 1 byte to [`DEFAULT_MAX_CHUNK_RECV`].
    pub fn with_max_chunk_send(mut self, len: u32) -> Result<Self, LimitError> {
        self.max_chunk_send = check("max_chunk_send", len, DEFAULT_MAX_CHUNK_RECV)?;
        Ok(self)
    }

    /// Sets the accepted chunk size: 1 byte to [`MAX_CHUNK_RECV_CEILING`].
    pub fn with_max_chunk_recv(mut self, len: u32) -> Result<Self, LimitError> {
        self.max_chunk_recv = check("max_chunk_recv", len, MAX_CHUNK_RECV_CEILING)?;
        Ok(self)
    }
}

fn check(name: &'static str, value: u32, ceiling: u32) -> Result<u32, LimitError> {
    if value == 0 {
        return Err(LimitError::Zero { name });
    }
    if value > ceiling {
        return Err(LimitError::AboveCeiling {
            name,
            value,
            ceiling,
        });
    }
    Ok(value)
}

/// A limit that cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A limit of zero would refuse every frame or chunk.
    #[error("{name} must be at least 1")]
    Zero {
        /// Which limit.
        name: &'static str,
    },
    /// The limit is above what the protocol allows.
    #[error("{name} = {value} is above the ceiling of {ceiling}")]
    AboveCeiling {
        /// Which limit.
        name: &'static str,
        /// The value asked for.
        value: u32,
        /// The largest value allowed.
        ceiling: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_protocol() {
        let l = Limits::default();
        assert_eq!(l.max_frame_len(), 16 << 20);
        assert_eq!(l.max_chunk_send(), 1 << 20);
        assert_eq!(l.max_chunk_recv(), 16 << 20);
    }

    #[test]
    fn frame_limit_accepts_one_to_ceiling_and_refuses_zero_and_ceiling_plus_one() {
        assert_eq!(
            Limits::default().with_max_frame_len(0),
            Err(LimitError::Zero {
                name: "max_frame_len"
            })
        );
        assert!(Limits::default().with_max_frame_len(1).is_ok());
        assert!(
            Limits::default()
                .with_max_frame_len(MAX_FRAME_LEN_CEILING)
                .is_ok()
        );
        assert_eq!(
            Limits::default().with_max_frame_len(MAX_FRAME_LEN_CEILING + 1),
            Err(LimitError::AboveCeiling {
                name: "max_frame_len",
                value: MAX_FRAME_LEN_CEILING + 1,
                ceiling: MAX_FRAME_LEN_CEILING
            })
        );
    }

    #[test]
    fn chunk_limits_are_bounded() {
        assert!(Limits::default().with_max_chunk_send(0).is_err());
        assert!(
            Limits::default()
                .with_max_chunk_send(DEFAULT_MAX_CHUNK_RECV)
                .is_ok()
        );
        assert!(
            Limits::default()
                .with_max_chunk_send(DEFAULT_MAX_CHUNK_RECV + 1)
                .is_err()
        );
        assert!(Limits::default().with_max_chunk_recv(0).is_err());
        assert!(
            Limits::default()
                .with_max_chunk_recv(MAX_CHUNK_RECV_CEILING)
                .is_ok()
        );
        assert!(
            Limits::default()
                .with_max_chunk_recv(MAX_CHUNK_RECV_CEILING + 1)
                .is_err()
        );
    }
}
