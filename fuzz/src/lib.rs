//! Helpers shared by the fuzz targets in `fuzz_targets/`: comparisons that
//! tolerate what JSON cannot round-trip exactly, small JSON values built
//! from fuzzer input, and a parser for what a machine transmits.

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use dockwire_core::{
    CallError, Chunk, ChunkCodec, ClientCall, Control, Envelope, FrameCodec, Payload, Request,
    ServerCall, StreamType,
};
use serde_json::Value;

/// Whether `v` holds a number that serde_json keeps as an `f64`. Such a
/// number may come back one ULP off after a trip through text (serde_json
/// without its `float_roundtrip` feature parses on a best-effort basis), so
/// exact comparisons are only made on values without one.
pub fn contains_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(contains_float),
        Value::Object(m) => m.values().any(contains_float),
        _ => false,
    }
}

/// Equality of JSON values where two `f64`s count as equal when within a
/// relative 1e-12 of each other; everything else must be identical.
pub fn value_eq_loose(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().expect("is_f64"), y.as_f64().expect("is_f64"));
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| value_eq_loose(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| value_eq_loose(v, w)))
        }
        _ => a == b,
    }
}

fn opt_value_eq_loose(a: &Option<Value>, b: &Option<Value>) -> bool {
    // `details: null` on the wire reads as None.
    let norm = |v: &Option<Value>| v.clone().filter(|v| !v.is_null());
    match (norm(a), norm(b)) {
        (None, None) => true,
        (Some(x), Some(y)) => value_eq_loose(&x, &y),
        _ => false,
    }
}

/// [`CallError`] equality with loose floats and `details: null` = absent.
pub fn call_error_eq_loose(a: &CallError, b: &CallError) -> bool {
    a.code == b.code
        && a.message == b.message
        && a.retryable == b.retryable
        && opt_value_eq_loose(&a.details, &b.details)
}

/// Whether an envelope holds a float anywhere.
pub fn envelope_has_float(e: &Envelope) -> bool {
    match &e.payload {
        Payload::Requested(r) => contains_float(&r.input),
        Payload::Responded(v) => contains_float(v),
        Payload::Error(err) => err.details.as_ref().is_some_and(contains_float),
        Payload::Completed | Payload::Aborted => false,
    }
}

/// [`Envelope`] equality with loose floats and `details: null` = absent.
pub fn envelope_eq_loose(a: &Envelope, b: &Envelope) -> bool {
    a.id == b.id
        && match (&a.payload, &b.payload) {
            (Payload::Requested(x), Payload::Requested(y)) => {
                x.operation == y.operation
                    && x.carriage == y.carriage
                    && value_eq_loose(&x.input, &y.input)
            }
            (Payload::Responded(x), Payload::Responded(y)) => value_eq_loose(x, y),
            (Payload::Completed, Payload::Completed) | (Payload::Aborted, Payload::Aborted) => true,
            (Payload::Error(x), Payload::Error(y)) => call_error_eq_loose(x, y),
            _ => false,
        }
}

/// Whether a control message holds a float anywhere.
pub fn control_has_float(c: &Control) -> bool {
    match c {
        Control::Error(e) => e.details.as_ref().is_some_and(contains_float),
        _ => false,
    }
}

/// [`Control`] equality with loose floats and `details: null` = absent.
pub fn control_eq_loose(a: &Control, b: &Control) -> bool {
    match (a, b) {
        (Control::Error(x), Control::Error(y)) => call_error_eq_loose(x, y),
        _ => a == b,
    }
}

/// A small JSON value chosen by the fuzzer.
#[derive(Arbitrary, Debug, Clone)]
pub enum JsonSel {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (non-finite ones become `null`, as serde_json does).
    Float(f64),
    /// A string.
    Str(String),
    /// An object with one member.
    Object(String, i32),
    /// Bytes parsed as JSON when they are JSON, else `null`.
    Text(Vec<u8>),
}

impl JsonSel {
    /// The value.
    pub fn value(&self) -> Value {
        match self {
            JsonSel::Null => Value::Null,
            JsonSel::Bool(b) => Value::Bool(*b),
            JsonSel::Int(i) => Value::from(*i),
            JsonSel::Float(f) => Value::from(*f),
            JsonSel::Str(s) => Value::String(s.clone()),
            JsonSel::Object(k, v) => serde_json::json!({ k.as_str(): v }),
            JsonSel::Text(t) => serde_json::from_slice(t).unwrap_or(Value::Null),
        }
    }
}

/// One item of a machine's transmitted stream.
#[derive(Debug)]
pub enum OutItem {
    /// A frame.
    Frame(Envelope),
    /// A chunk.
    Chunk(Chunk),
}

/// Parses everything a machine transmits, as its peer would: frames first,
/// chunks once `switch` says so. A machine must never transmit anything
/// its peer cannot parse, so every decode error is a failed assertion.
pub struct OutParser {
    buf: BytesMut,
    frames: FrameCodec,
    chunks: ChunkCodec,
    /// Whether the stream has switched from frames to chunks.
    pub in_chunks: bool,
}

impl OutParser {
    /// A parser whose frames may be up to `max_frame` bytes and whose chunks
    /// up to `max_chunk` bytes.
    pub fn new(max_frame: u32, max_chunk: u32) -> Self {
        OutParser {
            buf: BytesMut::new(),
            frames: FrameCodec::new(max_frame),
            chunks: ChunkCodec::new(max_chunk),
            in_chunks: false,
        }
    }

    /// Appends transmitted bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes of a partial item.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole item. `switch_after` is told of every frame and says
    /// whether chunks follow it. Panics on any decode error.
    pub fn next(&mut self, switch_after: impl Fn(&Envelope) -> bool) -> Option<OutItem> {
        if self.in_chunks {
            let c = self
                .chunks
                .decode(&mut self.buf)
                .unwrap_or_else(|e| panic!("machine transmitted a bad chunk: {e:?}"))?;
            Some(OutItem::Chunk(c))
        } else {
            let f = self
                .frames
                .decode(&mut self.buf)
                .unwrap_or_else(|e| panic!("machine transmitted a bad frame: {e:?}"))?;
            if switch_after(&f) {
                self.in_chunks = true;
            }
            Some(OutItem::Frame(f))
        }
    }
}

/// Whether a transmitted item ends the call for its receiver.
pub fn is_terminal_item(item: &OutItem) -> bool {
    match item {
        OutItem::Frame(e) => matches!(
            e.payload,
            Payload::Completed | Payload::Aborted | Payload::Error(_)
        ),
        OutItem::Chunk(c) => {
            c.stream == StreamType::Control
                && matches!(
                    Control::decode(&c.payload),
                    Ok(Some(
                        Control::Exit { .. } | Control::Error(_) | Control::Abort
                    ))
                )
        }
    }
}

/// The bytes of one frame carrying `env`, with no limit applied.
pub fn frame_bytes(env: &Envelope) -> Vec<u8> {
    let body = env.to_json();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// The bytes of one chunk, with no limit applied.
pub fn chunk_bytes(stream: StreamType, payload: &[u8]) -> Vec<u8> {
    let mut out = dockwire_core::chunk_header(stream, payload.len() as u32).to_vec();
    out.extend_from_slice(payload);
    out
}

/// A `call.requested` frame.
pub fn request_frame(id: &str, request: Request) -> Vec<u8> {
    frame_bytes(&Envelope::new(id, Payload::Requested(request)))
}

/// The transmit side both call machines share, so that one check serves
/// both targets.
pub trait Transmit {
    /// See `ClientCall::transmit_len`.
    fn transmit_len(&self) -> usize;
    /// See `ClientCall::poll_transmit`.
    fn poll_transmit(&mut self, buf: &mut BytesMut) -> usize;
    /// See `ClientCall::poll_transmit_bytes`.
    fn poll_transmit_bytes(&mut self) -> Option<Bytes>;
}

macro_rules! impl_transmit {
    ($machine:ty) => {
        impl Transmit for $machine {
            fn transmit_len(&self) -> usize {
                <$machine>::transmit_len(self)
            }
            fn poll_transmit(&mut self, buf: &mut BytesMut) -> usize {
                <$machine>::poll_transmit(self, buf)
            }
            fn poll_transmit_bytes(&mut self) -> Option<Bytes> {
                <$machine>::poll_transmit_bytes(self)
            }
        }
    };
}

impl_transmit!(ClientCall);
impl_transmit!(ServerCall);

/// Takes everything a machine has queued, piece by piece (`pop_mode`) or
/// into one buffer, checking that `transmit_len` announced exactly that,
/// that no piece is empty, and that nothing is left afterwards.
pub fn drain_transmit(m: &mut impl Transmit, pop_mode: bool) -> BytesMut {
    let queued = m.transmit_len();
    let mut sent = BytesMut::new();
    if pop_mode {
        while let Some(piece) = m.poll_transmit_bytes() {
            assert!(!piece.is_empty(), "poll_transmit_bytes gave an empty piece");
            sent.extend_from_slice(&piece);
            assert_eq!(m.transmit_len(), queued - sent.len());
        }
    } else {
        let n = m.poll_transmit(&mut sent);
        assert_eq!(
            n,
            sent.len(),
            "poll_transmit's count is not what it appended"
        );
        let mut again = BytesMut::new();
        assert_eq!(
            m.poll_transmit(&mut again),
            0,
            "second poll_transmit gave bytes"
        );
    }
    assert_eq!(
        sent.len(),
        queued,
        "transmit_len was not what was transmitted"
    );
    assert_eq!(m.transmit_len(), 0);
    sent
}
