//! quickcheck properties of the codecs and the machines.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use dockwire_core::{
    CallError, Carriage, ChunkCodec, ClientEvent, Control, Envelope, ErrorCode, FrameCodec, Limits,
    Payload, Request, ServerCall, ServerEvent, StreamType,
};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use serde_json::{Map, Value, json};

const TESTS: u64 = 500;

fn check<A: quickcheck::Testable>(prop: A) {
    QuickCheck::new().tests(TESTS).quickcheck(prop);
}

// ---- generators ----------------------------------------------------------

fn below(g: &mut Gen, n: usize) -> usize {
    usize::arbitrary(g) % n
}

fn arb_value(g: &mut Gen, depth: u32) -> Value {
    match below(g, if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(g)),
        2 => json!(i64::arbitrary(g)),
        // Dyadic fractions print and parse back exactly.
        3 => json!(f64::from(i32::arbitrary(g)) / 8.0),
        4 => Value::String(String::arbitrary(g)),
        5 => Value::Array((0..below(g, 4)).map(|_| arb_value(g, depth - 1)).collect()),
        _ => Value::Object(
            (0..below(g, 4))
                .map(|_| (String::arbitrary(g), arb_value(g, depth - 1)))
                .collect::<Map<_, _>>(),
        ),
    }
}

fn arb_call_error(g: &mut Gen) -> CallError {
    let code = g
        .choose(&[
            "PROTOCOL",
            "NOT_FOUND",
            "TIMEOUT",
            "CONTAINER_NOT_FOUND",
            "X",
        ])
        .copied()
        .unwrap_or("X");
    let mut e = CallError::new(ErrorCode::new(code), String::arbitrary(g))
        .with_retryable(bool::arbitrary(g));
    // `details: null` reads back as absent, so only non-null details are generated.
    if bool::arbitrary(g) {
        e = e.with_details(json!({ "v": arb_value(g, 2) }));
    }
    e
}

#[derive(Clone, Debug)]
struct ArbEnvelope(Envelope);

impl Arbitrary for ArbEnvelope {
    fn arbitrary(g: &mut Gen) -> Self {
        let payload = match below(g, 5) {
            0 => Payload::Requested(Request::new(
                String::arbitrary(g),
                arb_value(g, 3),
                if bool::arbitrary(g) {
                    Carriage::Raw
                } else {
                    Carriage::Json
                },
            )),
            1 => Payload::Responded(arb_value(g, 3)),
            2 => Payload::Completed,
            3 => Payload::Aborted,
            _ => Payload::Error(arb_call_error(g)),
        };
        ArbEnvelope(Envelope::new(String::arbitrary(g), payload))
    }
}

#[derive(Clone, Debug)]
struct ArbControl(Control);

impl Arbitrary for ArbControl {
    fn arbitrary(g: &mut Gen) -> Self {
        ArbControl(match below(g, 6) {
            0 => Control::Resize {
                cols: u16::arbitrary(g),
                rows: u16::arbitrary(g),
            },
            1 => Control::Signal {
                name: String::arbitrary(g),
            },
            2 => Control::Eof,
            3 => Control::Abort,
            4 => Control::Exit {
                code: i32::arbitrary(g),
            },
            _ => Control::Error(arb_call_error(g)),
        })
    }
}

/// One step of a conversation; steps that do not apply to the carriage or
/// the state (stdin after close, say) are skipped by the runner.
#[derive(Clone, Debug)]
enum Step {
    Respond(Value),
    Stdin(Vec<u8>),
    CloseStdin,
    Resize(u16, u16),
    Signal(String),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// Move the bytes so far across.
    Pump,
}

#[derive(Clone, Debug, PartialEq)]
enum End {
    Complete,
    Fail(CallError),
    ServerAbort,
    ClientAbort,
    Exit(i32),
}

#[derive(Clone, Debug)]
struct Scenario {
    carriage: Carriage,
    steps: Vec<Step>,
    end: End,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let carriage = if bool::arbitrary(g) {
            Carriage::Raw
        } else {
            Carriage::Json
        };
        let steps = (0..below(g, 30))
            .map(|_| match (carriage, below(g, 8)) {
                (Carriage::Json, 0) => Step::Pump,
                (Carriage::Json, _) => Step::Respond(arb_value(g, 3)),
                (_, 0) => Step::Stdin(Vec::arbitrary(g)),
                (_, 1) => Step::CloseStdin,
                (_, 2) => Step::Resize(u16::arbitrary(g), u16::arbitrary(g)),
                (_, 3) => Step::Signal(g.choose(&["INT", "TERM", "HUP"]).unwrap().to_string()),
                (_, 4) => Step::Stdout(Vec::arbitrary(g)),
                (_, 5) => Step::Stderr(Vec::arbitrary(g)),
                _ => Step::Pump,
            })
            .collect();
        let end = match (carriage, below(g, 4)) {
            (_, 0) => End::Fail(arb_call_error(g)),
            (_, 1) => End::ServerAbort,
            (_, 2) => End::ClientAbort,
            (Carriage::Json, _) => End::Complete,
            (Carriage::Raw, _) => End::Exit(i32::arbitrary(g)),
        };
        Scenario {
            carriage,
            steps,
            end,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        // Smaller failing cases: the same scenario with one step left out.
        let base = self.clone();
        Box::new((0..self.steps.len()).map(move |i| {
            let mut smaller = base.clone();
            smaller.steps.remove(i);
            smaller
        }))
    }
}

/// Runs a scenario on a wired pair; returns the pair and the events each
/// side should have seen.
fn run(s: &Scenario) -> (Pair, Vec<ClientEvent>, Vec<ServerEvent>) {
    let mut p = Pair::new("test/scenario", json!({"k": 1}), s.carriage);
    let mut want_client = Vec::new();
    let mut want_server = vec![ServerEvent::Requested(Request::new(
        "test/scenario",
        json!({"k": 1}),
        s.carriage,
    ))];
    if s.carriage == Carriage::Raw {
        p.server.accept(json!({"raw": true})).unwrap();
        want_client.push(ClientEvent::Accepted(json!({"raw": true})));
    }
    for step in &s.steps {
        match step {
            Step::Respond(v) => {
                p.server.respond(v.clone()).unwrap();
                want_client.push(ClientEvent::Responded(v.clone()));
            }
            Step::Stdin(_) | Step::CloseStdin if p.client.is_stdin_closed() => {}
            Step::Stdin(b) => {
                p.client.send_stdin(Bytes::from(b.clone())).unwrap();
                if !b.is_empty() {
                    want_server.push(ServerEvent::Stdin(Bytes::from(b.clone())));
                }
            }
            Step::CloseStdin => {
                p.client.close_stdin().unwrap();
                want_server.push(ServerEvent::StdinClosed);
            }
            Step::Resize(cols, rows) => {
                p.client.resize(*cols, *rows).unwrap();
                want_server.push(ServerEvent::Resize {
                    cols: *cols,
                    rows: *rows,
                });
            }
            Step::Signal(name) => {
                p.client.signal(name.clone()).unwrap();
                want_server.push(ServerEvent::Signal(name.clone()));
            }
            Step::Stdout(b) => {
                p.server.send_stdout(Bytes::from(b.clone())).unwrap();
                if !b.is_empty() {
                    want_client.push(ClientEvent::Stdout(Bytes::from(b.clone())));
                }
            }
            Step::Stderr(b) => {
                p.server.send_stderr(Bytes::from(b.clone())).unwrap();
                if !b.is_empty() {
                    want_client.push(ClientEvent::Stderr(Bytes::from(b.clone())));
                }
            }
            Step::Pump => p.pump(),
        }
    }
    // Everything sent before the end arrives before it.
    p.pump();
    match &s.end {
        End::Complete => {
            p.server.complete().unwrap();
            want_client.push(ClientEvent::Completed);
        }
        End::Fail(e) => {
            p.server.fail(e.clone()).unwrap();
            want_client.push(ClientEvent::Error(e.clone()));
        }
        End::ServerAbort => {
            p.server.abort().unwrap();
            want_client.push(ClientEvent::Aborted);
        }
        End::ClientAbort => {
            p.client.abort().unwrap();
            want_client.push(ClientEvent::Aborted);
            want_server.push(ServerEvent::Aborted);
        }
        End::Exit(code) => {
            p.server.exit(*code).unwrap();
            want_client.push(ClientEvent::Drained);
            want_client.push(ClientEvent::Exit(*code));
        }
    }
    p.pump();
    (p, want_client, want_server)
}

// ---- properties ----------------------------------------------------------

#[test]
fn envelopes_round_trip_through_the_frame_codec() {
    fn prop(e: ArbEnvelope) -> bool {
        let mut wire = BytesMut::new();
        FrameCodec::default().encode(&e.0, &mut wire).unwrap();
        let back = FrameCodec::default().decode(&mut wire).unwrap().unwrap();
        wire.is_empty() && back == e.0
    }
    check(prop as fn(ArbEnvelope) -> bool);
}

#[test]
fn chunks_round_trip_through_the_chunk_codec() {
    fn prop(stream: u8, payload: Vec<u8>) -> bool {
        let stream = StreamType::from_u8(stream % 4).unwrap();
        let mut wire = BytesMut::new();
        ChunkCodec::default()
            .encode(stream, &payload, &mut wire)
            .unwrap();
        let back = ChunkCodec::default().decode(&mut wire).unwrap().unwrap();
        wire.is_empty() && back.stream == stream && back.payload[..] == payload[..]
    }
    check(prop as fn(u8, Vec<u8>) -> bool);
}

#[test]
fn control_messages_round_trip() {
    fn prop(c: ArbControl) -> bool {
        Control::decode(&c.0.to_json()).unwrap() == Some(c.0)
    }
    check(prop as fn(ArbControl) -> bool);
}

#[test]
fn client_and_server_agree_on_every_scenario() {
    fn prop(s: Scenario) -> bool {
        let (p, want_client, want_server) = run(&s);
        p.client_events == want_client
            && p.server_events == want_server
            && p.client.is_finished()
            && p.server.is_finished()
    }
    check(prop as fn(Scenario) -> bool);
}

#[test]
fn bytes_fed_in_pieces_give_the_same_events_as_fed_whole() {
    fn prop(s: Scenario, cuts: Vec<usize>) -> TestResult {
        if s.end == End::ClientAbort {
            // The client's own abort changes what it reports; covered by
            // the agreement property.
            return TestResult::discard();
        }
        let (p, _, _) = run(&s);
        let request = Request::new("test/scenario", json!({"k": 1}), s.carriage);
        let whole = client_events_for(request.clone(), &p.to_client, &[], false);
        let cut = client_events_for(request.clone(), &p.to_client, &cuts, false);
        let every: Vec<usize> = (0..p.to_client.len()).collect();
        let bytewise = client_events_for(request, &p.to_client, &every, false);
        // A chunk is one event however its bytes arrived, so the events
        // are equal outright.
        let ok_client = whole == p.client_events && whole == cut && whole == bytewise;

        let whole = server_events_for(&p.to_server, &[], false);
        let cut = server_events_for(&p.to_server, &cuts, false);
        let every: Vec<usize> = (0..p.to_server.len()).collect();
        let bytewise = server_events_for(&p.to_server, &every, false);
        let ok_server = whole == p.server_events && whole == cut && whole == bytewise;
        TestResult::from_bool(ok_client && ok_server)
    }
    check(prop as fn(Scenario, Vec<usize>) -> TestResult);
}

#[test]
fn decoders_never_panic_on_garbage() {
    fn prop(data: Vec<u8>, small: bool) -> bool {
        let limit = if small { 16 } else { 16 << 20 };
        let mut buf = BytesMut::from(&data[..]);
        let frames_ok = loop {
            match FrameCodec::new(limit).decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break true,
            }
        };
        let mut buf = BytesMut::from(&data[..]);
        let chunks_ok = loop {
            match ChunkCodec::new(limit).decode(&mut buf) {
                Ok(Some(c)) => {
                    if c.stream == StreamType::Control {
                        let _ = Control::decode(&c.payload);
                    }
                }
                Ok(None) | Err(_) => break true,
            }
        };
        frames_ok && chunks_ok
    }
    check(prop as fn(Vec<u8>, bool) -> bool);
}

/// At most one terminal event, and nothing after it.
fn client_events_well_formed(events: &[ClientEvent]) -> bool {
    let terminal = |e: &ClientEvent| {
        matches!(
            e,
            ClientEvent::Completed
                | ClientEvent::Aborted
                | ClientEvent::Error(_)
                | ClientEvent::Exit(_)
        )
    };
    match events.iter().position(terminal) {
        None => true,
        Some(i) => i == events.len() - 1,
    }
}

fn server_events_well_formed(events: &[ServerEvent]) -> bool {
    let terminal = |e: &ServerEvent| matches!(e, ServerEvent::Aborted | ServerEvent::Error(_));
    let requested_first = events
        .iter()
        .position(|e| matches!(e, ServerEvent::Requested(_)))
        .is_none_or(|i| i == 0);
    let last_terminal = match events.iter().position(terminal) {
        None => true,
        Some(i) => i == events.len() - 1,
    };
    requested_first && last_terminal
}

#[test]
fn machines_never_panic_on_garbage_and_end_in_a_typed_error_or_wait() {
    fn prop(garbage: Vec<u8>, prefix: u8, eof: bool) -> bool {
        // Garbage alone, and after a valid opening, on each carriage.
        let (carriage, accept) = match prefix % 4 {
            0 => (Carriage::Json, false),
            1 => (Carriage::Raw, false),
            _ => (Carriage::Raw, true),
        };
        let mut server = if prefix % 4 == 3 {
            ServerCall::new(Limits::default())
        } else {
            open_server(carriage, accept)
        };
        server.handle_input(&garbage);
        if eof {
            server.handle_eof();
        }
        let (events, _) = drain_server(&mut server);
        let server_ok = server_events_well_formed(&events)
            && match events.last() {
                Some(ServerEvent::Error(e)) => {
                    e.code == ErrorCode::PROTOCOL && server.is_finished()
                }
                Some(ServerEvent::Aborted) => server.is_finished(),
                _ => !server.is_finished() || eof,
            };

        let mut client = open_client(carriage, accept);
        client.handle_input(&garbage);
        if eof {
            client.handle_eof();
        }
        let (events, _) = drain_client(&mut client);
        let client_ok = client_events_well_formed(&events)
            && (client.is_finished() || !eof)
            && match events.last() {
                Some(ClientEvent::Error(_)) => client.is_finished(),
                _ => true,
            };
        server_ok && client_ok
    }
    check(prop as fn(Vec<u8>, u8, bool) -> bool);
}

#[test]
fn a_client_fed_any_server_bytes_reports_exit_only_after_drained() {
    fn prop(items: Vec<(u8, Vec<u8>)>) -> bool {
        let mut wire = BytesMut::from(&responded_frame("call-1", json!(null))[..]);
        for (kind, payload) in &items {
            let piece = match kind % 5 {
                0 => chunk(StreamType::Stdout, payload),
                1 => chunk(StreamType::Stderr, payload),
                2 => chunk(StreamType::Stdout, b""),
                3 => control(&Control::Exit { code: 1 }),
                _ => chunk(StreamType::Control, payload),
            };
            wire.extend_from_slice(&piece);
        }
        let events = client_events_for(
            Request::new("x", json!(null), Carriage::Raw),
            &wire,
            &[],
            true,
        );
        let exit_at = events
            .iter()
            .position(|e| matches!(e, ClientEvent::Exit(_)));
        let drained_at = events.iter().position(|e| *e == ClientEvent::Drained);
        client_events_well_formed(&events)
            && match exit_at {
                None => true,
                Some(x) => drained_at.is_some_and(|d| d < x),
            }
    }
    check(prop as fn(Vec<(u8, Vec<u8>)>) -> bool);
}

#[test]
fn after_the_end_a_client_ignores_everything() {
    fn prop(s: Scenario, more: Vec<u8>) -> bool {
        let (mut p, _, _) = run(&s);
        let before = p.client_events.len();
        p.client.handle_input(&more);
        p.client.handle_eof();
        p.server.handle_input(&more);
        p.server.handle_eof();
        p.pump();
        p.client_events.len() == before
            && p.server.poll_event().is_none()
            && p.client.abort().is_err()
    }
    check(prop as fn(Scenario, Vec<u8>) -> bool);
}

#[test]
fn a_subscription_of_any_length_up_to_ten_thousand_arrives_whole_and_in_order() {
    fn prop(n: u16) -> bool {
        let n = usize::from(n) % 10_001;
        let mut p = Pair::new("test/count", json!(null), Carriage::Json);
        for i in 0..n {
            p.server.respond(json!(i)).unwrap();
        }
        p.server.complete().unwrap();
        p.pump();
        let events = p.take_client_events();
        events.len() == n + 1
            && events[..n]
                .iter()
                .enumerate()
                .all(|(i, e)| *e == ClientEvent::Responded(json!(i)))
            && events[n] == ClientEvent::Completed
    }
    QuickCheck::new()
        .tests(20)
        .quickcheck(prop as fn(u16) -> bool);
}
