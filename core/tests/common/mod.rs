//! Test harness: a client and a server machine wired together in memory,
//! and builders for hand-made wire bytes.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use dockwire_core::{
    Carriage, ChunkCodec, ClientCall, ClientEvent, Control, Envelope, FrameCodec, Limits, Payload,
    Request, ServerCall, ServerEvent, StreamType,
};
use serde_json::{Value, json};

/// A client and a server, with everything each has emitted so far.
pub struct Pair {
    pub client: ClientCall,
    pub server: ServerCall,
    pub client_events: Vec<ClientEvent>,
    pub server_events: Vec<ServerEvent>,
    /// Every byte the client sent and the server sent, in order.
    pub to_server: BytesMut,
    pub to_client: BytesMut,
}

impl Pair {
    pub fn new(operation: &str, input: Value, carriage: Carriage) -> Self {
        Self::with_limits(operation, input, carriage, Limits::default())
    }

    pub fn with_limits(operation: &str, input: Value, carriage: Carriage, limits: Limits) -> Self {
        let request = Request::new(operation, input, carriage);
        let mut pair = Pair {
            client: ClientCall::new("call-1", request, limits).unwrap(),
            server: ServerCall::new(limits),
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
        };
        pair.pump();
        pair
    }

    /// Moves bytes both ways and drains events until nothing moves.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            let mut buf = BytesMut::new();
            if self.client.poll_transmit(&mut buf) > 0 {
                moved = true;
                self.to_server.extend_from_slice(&buf);
                self.server.handle_input(&buf);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            let mut buf = BytesMut::new();
            if self.server.poll_transmit(&mut buf) > 0 {
                moved = true;
                self.to_client.extend_from_slice(&buf);
                self.client.handle_input(&buf);
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            if !moved {
                return;
            }
        }
    }

    pub fn take_client_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.client_events)
    }

    pub fn take_server_events(&mut self) -> Vec<ServerEvent> {
        std::mem::take(&mut self.server_events)
    }
}

/// Feeds `bytes` to a fresh client for `request`, cut at `cuts` (offsets,
/// taken modulo the length, sorted), and returns its events.
pub fn client_events_for(
    request: Request,
    bytes: &[u8],
    cuts: &[usize],
    eof: bool,
) -> Vec<ClientEvent> {
    let mut client = ClientCall::new("call-1", request, Limits::default()).unwrap();
    let _ = client.poll_transmit(&mut BytesMut::new());
    let mut events = Vec::new();
    for piece in pieces(bytes, cuts) {
        client.handle_input(piece);
        events.extend(std::iter::from_fn(|| client.poll_event()));
    }
    if eof {
        client.handle_eof();
        events.extend(std::iter::from_fn(|| client.poll_event()));
    }
    events
}

/// Feeds `bytes` to a fresh server, cut at `cuts`, and returns its events.
pub fn server_events_for(bytes: &[u8], cuts: &[usize], eof: bool) -> Vec<ServerEvent> {
    let mut server = ServerCall::new(Limits::default());
    let mut events = Vec::new();
    for piece in pieces(bytes, cuts) {
        server.handle_input(piece);
        events.extend(std::iter::from_fn(|| server.poll_event()));
    }
    if eof {
        server.handle_eof();
        events.extend(std::iter::from_fn(|| server.poll_event()));
    }
    events
}

/// `bytes` cut at the given offsets (modulo its length, deduplicated).
pub fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    let mut at: Vec<usize> = cuts.iter().map(|c| c % bytes.len()).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

// ---- hand-made wire bytes --------------------------------------------------

pub fn frame(envelope: &Envelope) -> BytesMut {
    let mut b = BytesMut::new();
    FrameCodec::default().encode(envelope, &mut b).unwrap();
    b
}

pub fn raw_frame(body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.extend_from_slice(&(body.len() as u32).to_be_bytes());
    b.extend_from_slice(body);
    b
}

pub fn chunk(stream: StreamType, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    ChunkCodec::default()
        .encode(stream, payload, &mut b)
        .unwrap();
    b
}

pub fn control(c: &Control) -> BytesMut {
    chunk(StreamType::Control, &c.to_json())
}

pub fn request_frame(id: &str, carriage: Carriage) -> BytesMut {
    frame(&Envelope::new(
        id,
        Payload::Requested(Request::new("test/op", json!({}), carriage)),
    ))
}

pub fn responded_frame(id: &str, output: Value) -> BytesMut {
    frame(&Envelope::new(id, Payload::Responded(output)))
}

pub fn bytes(b: &'static [u8]) -> Bytes {
    Bytes::from_static(b)
}

/// A server that has received a request on `carriage` (and, for raw,
/// accepted it), its request events drained.
pub fn open_server(carriage: Carriage, accept: bool) -> ServerCall {
    let mut server = ServerCall::new(Limits::default());
    server.handle_input(&request_frame("call-1", carriage));
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Requested(_))
    ));
    if accept {
        server.accept(json!({})).unwrap();
        let _ = server.poll_transmit(&mut BytesMut::new());
    }
    server
}

/// A client whose request has been sent and, for raw, accepted.
pub fn open_client(carriage: Carriage, accept: bool) -> ClientCall {
    let mut client = ClientCall::new(
        "call-1",
        Request::new("test/op", json!({}), carriage),
        Limits::default(),
    )
    .unwrap();
    let _ = client.poll_transmit(&mut BytesMut::new());
    if accept {
        client.handle_input(&responded_frame("call-1", json!({})));
        assert!(matches!(
            client.poll_event(),
            Some(ClientEvent::Accepted(_))
        ));
    }
    client
}

pub fn drain_server(server: &mut ServerCall) -> (Vec<ServerEvent>, BytesMut) {
    let events = std::iter::from_fn(|| server.poll_event()).collect();
    let mut out = BytesMut::new();
    let _ = server.poll_transmit(&mut out);
    (events, out)
}

pub fn drain_client(client: &mut ClientCall) -> (Vec<ClientEvent>, BytesMut) {
    let events = std::iter::from_fn(|| client.poll_event()).collect();
    let mut out = BytesMut::new();
    let _ = client.poll_transmit(&mut out);
    (events, out)
}
