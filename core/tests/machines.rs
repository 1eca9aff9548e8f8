//! The call machines, one behaviour per test: every event, every ordering
//! rule, every error variant, and the size limits at 0, max and max+1.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use dockwire_core::{
    CHUNK_HEADER_LEN, CallError, Carriage, ChunkCodec, ChunkError, ClientCall, ClientEvent,
    ClientState, CommandError, Control, ControlError, Envelope, EnvelopeError, ErrorCode,
    FrameError, Limits, Payload, ProtocolError, Request, ServerCall, ServerEvent, ServerState,
    StreamType, chunk_header,
};
use serde_json::json;

// ---- json carriage ---------------------------------------------------------

#[test]
fn json_query_answers_once_then_completes() {
    let mut p = Pair::new("math/double", json!({"n": 21}), Carriage::Json);
    assert_eq!(
        p.take_server_events(),
        [ServerEvent::Requested(Request::new(
            "math/double",
            json!({"n": 21}),
            Carriage::Json
        ))]
    );
    p.server.respond(json!(42)).unwrap();
    p.server.complete().unwrap();
    p.pump();
    assert_eq!(
        p.take_client_events(),
        [ClientEvent::Responded(json!(42)), ClientEvent::Completed]
    );
    assert!(p.client.is_finished() && p.server.is_finished());
}

#[test]
fn subscription_of_ten_thousand_items_arrives_in_order() {
    let mut p = Pair::new("test/count", json!(null), Carriage::Json);
    for i in 0..10_000 {
        p.server.respond(json!({ "i": i })).unwrap();
    }
    p.server.complete().unwrap();
    p.pump();
    let events = p.take_client_events();
    assert_eq!(events.len(), 10_001);
    for (i, e) in events[..10_000].iter().enumerate() {
        assert_eq!(e, &ClientEvent::Responded(json!({ "i": i })));
    }
    assert_eq!(events[10_000], ClientEvent::Completed);
}

#[test]
fn server_error_ends_the_call_without_completed() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Json);
    p.server.respond(json!(1)).unwrap();
    let err =
        CallError::new(ErrorCode::UNAVAILABLE, "engine down").with_details(json!({"socket": "x"}));
    p.server.fail(err.clone()).unwrap();
    assert_eq!(p.server.complete(), Err(CommandError::Finished));
    p.pump();
    assert_eq!(
        p.take_client_events(),
        [ClientEvent::Responded(json!(1)), ClientEvent::Error(err)]
    );
    assert!(p.client.is_finished());
}

#[test]
fn client_abort_is_confirmed_and_outputs_in_flight_are_dropped() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Json);
    let _ = p.take_server_events();
    p.server.respond(json!("before")).unwrap();
    p.pump();
    p.client.abort().unwrap();
    assert_eq!(p.client.state(), ClientState::Aborting);
    assert_eq!(p.client.abort(), Ok(()), "aborting twice is harmless");
    // The server's output crosses the abort on the wire.
    p.server.respond(json!("in flight")).unwrap();
    p.pump();
    assert_eq!(p.take_server_events(), [ServerEvent::Aborted]);
    assert_eq!(
        p.take_client_events(),
        [
            ClientEvent::Responded(json!("before")),
            ClientEvent::Aborted
        ]
    );
    assert!(p.server.is_finished() && p.client.is_finished());
    assert_eq!(p.client.abort(), Err(CommandError::Finished));
    assert_eq!(p.server.respond(json!(1)), Err(CommandError::Finished));
}

#[test]
fn server_abort_reaches_the_client() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Json);
    let _ = p.take_server_events();
    p.server.abort().unwrap();
    p.pump();
    assert_eq!(p.take_client_events(), [ClientEvent::Aborted]);
    assert!(p.take_server_events().is_empty());
}

#[test]
fn completion_that_crosses_an_abort_wins() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Json);
    let _ = p.take_server_events();
    p.server.complete().unwrap();
    p.client.abort().unwrap();
    p.pump();
    assert_eq!(p.take_client_events(), [ClientEvent::Completed]);
    assert!(
        p.take_server_events().is_empty(),
        "input after the end is ignored"
    );
}

// ---- raw carriage ----------------------------------------------------------

#[test]
fn raw_session_carries_stdin_stdout_stderr_controls_and_exit_last() {
    let mut p = Pair::new("test/cat", json!({"tty": false}), Carriage::Raw);
    // Stdin may go before the server accepts.
    p.client.send_stdin(bytes(b"early ")).unwrap();
    p.pump();
    p.server.accept(json!({"session": 1})).unwrap();
    p.client.send_stdin(bytes(b"late")).unwrap();
    p.client.resize(120, 40).unwrap();
    p.client.signal("INT").unwrap();
    p.client.close_stdin().unwrap();
    p.pump();
    assert_eq!(
        p.take_server_events(),
        [
            ServerEvent::Requested(Request::new(
                "test/cat",
                json!({"tty": false}),
                Carriage::Raw
            )),
            ServerEvent::Stdin(bytes(b"early ")),
            ServerEvent::Stdin(bytes(b"late")),
            ServerEvent::Resize {
                cols: 120,
                rows: 40
            },
            ServerEvent::Signal("INT".into()),
            ServerEvent::StdinClosed,
        ]
    );
    p.server.send_stdout(bytes(b"out")).unwrap();
    p.server.send_stderr(bytes(b"err")).unwrap();
    p.server.drained().unwrap();
    p.server.exit(3).unwrap();
    p.pump();
    assert_eq!(
        p.take_client_events(),
        [
            ClientEvent::Accepted(json!({"session": 1})),
            ClientEvent::Stdout(bytes(b"out")),
            ClientEvent::Stderr(bytes(b"err")),
            ClientEvent::Drained,
            ClientEvent::Exit(3),
        ]
    );
    assert!(p.client.is_finished() && p.server.is_finished());
}

#[test]
fn eof_control_closes_stdin_like_an_empty_chunk() {
    let mut server = open_server(Carriage::Raw, true);
    server.handle_input(&control(&Control::Eof));
    assert_eq!(drain_server(&mut server).0, [ServerEvent::StdinClosed]);
    assert!(server.is_stdin_closed());
}

#[test]
fn exit_sends_the_drained_sentinel_when_the_server_did_not() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Raw);
    p.server.accept(json!(null)).unwrap();
    p.server.send_stdout(bytes(b"x")).unwrap();
    p.server.exit(0).unwrap();
    p.pump();
    assert_eq!(
        p.take_client_events(),
        [
            ClientEvent::Accepted(json!(null)),
            ClientEvent::Stdout(bytes(b"x")),
            ClientEvent::Drained,
            ClientEvent::Exit(0)
        ]
    );
    // The sentinel is a zero-length stdout chunk, then the exit control.
    let tail = [
        &chunk(StreamType::Stdout, b"")[..],
        &control(&Control::Exit { code: 0 })[..],
    ]
    .concat();
    assert!(p.to_client.ends_with(&tail));
}

#[test]
fn raw_refusal_is_a_call_error_frame_and_the_stream_ends() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Raw);
    let err = CallError::new(ErrorCode::new("CONTAINER_NOT_FOUND"), "no such container");
    p.server.fail(err.clone()).unwrap();
    p.pump();
    assert_eq!(p.take_client_events(), [ClientEvent::Error(err)]);
    assert!(p.to_client.starts_with(&[0, 0]), "a frame, not a chunk");
}

#[test]
fn raw_failure_after_acceptance_is_an_error_control_message() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Raw);
    p.server.accept(json!(null)).unwrap();
    p.server.send_stdout(bytes(b"partial")).unwrap();
    let err = CallError::new(ErrorCode::INTERNAL, "exec died");
    p.server.fail(err.clone()).unwrap();
    p.pump();
    assert_eq!(
        p.take_client_events(),
        [
            ClientEvent::Accepted(json!(null)),
            ClientEvent::Stdout(bytes(b"partial")),
            ClientEvent::Error(err.clone())
        ]
    );
    assert!(p.to_client.ends_with(&control(&Control::Error(err))));
}

#[test]
fn raw_abort_from_the_client_before_and_after_acceptance() {
    for accept_first in [false, true] {
        let mut p = Pair::new("test/op", json!(null), Carriage::Raw);
        if accept_first {
            p.server.accept(json!(null)).unwrap();
            p.pump();
        }
        p.client.abort().unwrap();
        assert_eq!(
            p.client.send_stdin(bytes(b"x")),
            Err(CommandError::Finished)
        );
        p.pump();
        let server_events = p.take_server_events();
        assert_eq!(server_events.last(), Some(&ServerEvent::Aborted));
        assert_eq!(p.client_events.last(), Some(&ClientEvent::Aborted));
        assert!(p.client.is_finished() && p.server.is_finished());
        // The client's abort is a control chunk; the server answers in kind
        // after acceptance and with call.aborted before.
        assert!(p.to_server.ends_with(&control(&Control::Abort)));
        if accept_first {
            assert!(p.to_client.ends_with(&control(&Control::Abort)));
        } else {
            assert!(
                p.to_client
                    .ends_with(&frame(&Envelope::new("call-1", Payload::Aborted)))
            );
        }
    }
}

#[test]
fn an_exit_that_crosses_the_clients_abort_still_follows_drained() {
    let mut client = open_client(Carriage::Raw, false);
    client.abort().unwrap();
    let wire = [
        &responded_frame("call-1", json!({}))[..],
        &chunk(StreamType::Stdout, b"dropped")[..],
        &chunk(StreamType::Stdout, b"")[..],
        &control(&Control::Exit { code: 0 })[..],
    ]
    .concat();
    client.handle_input(&wire);
    assert_eq!(
        drain_client(&mut client).0,
        [ClientEvent::Drained, ClientEvent::Exit(0)]
    );
}

#[test]
fn raw_abort_from_the_server() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Raw);
    p.server.accept(json!(null)).unwrap();
    p.server.abort().unwrap();
    p.pump();
    assert_eq!(p.client_events.last(), Some(&ClientEvent::Aborted));
}

#[test]
fn unknown_control_types_are_ignored_both_ways() {
    let mut server = open_server(Carriage::Raw, true);
    server.handle_input(&chunk(StreamType::Control, br#"{"type":"future","x":1}"#));
    server.handle_input(&control(&Control::Resize { cols: 1, rows: 2 }));
    assert_eq!(
        drain_server(&mut server).0,
        [ServerEvent::Resize { cols: 1, rows: 2 }]
    );
    let mut client = open_client(Carriage::Raw, true);
    client.handle_input(&chunk(StreamType::Control, br#"{"type":"future"}"#));
    client.handle_input(&chunk(StreamType::Stdout, b"still here"));
    assert_eq!(
        drain_client(&mut client).0,
        [ClientEvent::Stdout(bytes(b"still here"))]
    );
}

#[test]
fn empty_writes_queue_nothing() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Raw);
    p.server.accept(json!(null)).unwrap();
    p.pump();
    let before = (p.to_server.len(), p.to_client.len());
    p.client.send_stdin(Bytes::new()).unwrap();
    p.server.send_stdout(Bytes::new()).unwrap();
    p.server.send_stderr(Bytes::new()).unwrap();
    assert_eq!(p.client.transmit_len() + p.server.transmit_len(), 0);
    p.pump();
    assert_eq!((p.to_server.len(), p.to_client.len()), before);
    assert!(!p.client.is_stdin_closed());
}

// ---- eof -------------------------------------------------------------------

#[test]
fn client_stream_ending_mid_call_is_a_cancellation_for_the_server() {
    for carriage in [Carriage::Json, Carriage::Raw] {
        let mut server = open_server(carriage, carriage == Carriage::Raw);
        server.handle_eof();
        let (events, out) = drain_server(&mut server);
        assert_eq!(events, [ServerEvent::Aborted]);
        assert!(out.is_empty(), "nobody is left to tell");
        assert!(server.is_finished());
    }
}

#[test]
fn stream_that_ends_before_any_byte_was_no_call() {
    let mut server = ServerCall::new(Limits::default());
    server.handle_eof();
    let (events, out) = drain_server(&mut server);
    assert!(events.is_empty() && out.is_empty());
    assert!(server.is_finished());
}

#[test]
fn stream_that_ends_inside_the_first_frame_gets_a_protocol_error() {
    let mut server = ServerCall::new(Limits::default());
    let whole = request_frame("r", Carriage::Json);
    server.handle_input(&whole[..whole.len() - 1]);
    server.handle_eof();
    let (events, out) = drain_server(&mut server);
    assert!(matches!(&events[..], [ServerEvent::Error(e)] if e.code == ErrorCode::PROTOCOL));
    assert!(matches!(
        server.protocol_error(),
        Some(ProtocolError::UnexpectedEof { buffered }) if *buffered == whole.len() - 1
    ));
    let reply = FrameOf::decode(&out);
    assert_eq!(reply.id, "", "no id could be read");
}

#[test]
fn client_stream_ending_inside_a_later_frame_or_chunk_gets_a_protocol_error() {
    let abort = frame(&Envelope::new("call-1", Payload::Aborted));
    let stdin = chunk(StreamType::Stdin, b"hello");
    // (carriage, accepted, the unit cut short)
    let cases = [
        (Carriage::Json, false, &abort),
        (Carriage::Raw, false, &abort),
        (Carriage::Raw, true, &stdin),
    ];
    for (carriage, accept, unit) in cases {
        for split in 1..unit.len() {
            let mut server = open_server(carriage, accept);
            server.handle_input(&unit[..split]);
            assert!(
                drain_server(&mut server).0.is_empty(),
                "{carriage:?} {split}"
            );
            server.handle_eof();
            let (events, out) = drain_server(&mut server);
            let [ServerEvent::Error(err)] = &events[..] else {
                panic!("{carriage:?} cut at {split}: {events:?}");
            };
            assert_eq!(err.code, ErrorCode::PROTOCOL);
            assert!(matches!(
                server.protocol_error(),
                Some(ProtocolError::UnexpectedEof { buffered }) if *buffered == split
            ));
            if accept {
                assert_eq!(&out[..], &control(&Control::Error(err.clone()))[..]);
            } else {
                let reply = FrameOf::decode(&out);
                assert_eq!(reply.id, "call-1");
                assert_eq!(reply.payload, Payload::Error(err.clone()));
            }
            assert!(server.is_finished());
        }
    }
}

#[test]
fn server_stream_ending_mid_call_is_an_error_for_the_client() {
    let mut client = open_client(Carriage::Json, false);
    client.handle_input(&[0, 0]);
    client.handle_eof();
    let (events, out) = drain_client(&mut client);
    assert!(matches!(&events[..], [ClientEvent::Error(e)] if e.code == ErrorCode::PROTOCOL));
    assert!(matches!(
        client.protocol_error(),
        Some(ProtocolError::UnexpectedEof { buffered: 2 })
    ));
    assert!(out.is_empty());
}

#[test]
fn server_stream_ending_while_aborting_counts_as_aborted() {
    let mut client = open_client(Carriage::Raw, true);
    client.abort().unwrap();
    client.handle_eof();
    assert_eq!(drain_client(&mut client).0, [ClientEvent::Aborted]);
    assert!(client.protocol_error().is_none());
}

// ---- the server's protocol violations, seen by the client ------------------

/// Feeds `input` to an open client and checks it ends with a PROTOCOL error
/// matching `want`, and tells the server to stop.
fn client_rejects(
    carriage: Carriage,
    accepted: bool,
    input: &[u8],
    want: impl Fn(&ProtocolError) -> bool,
) {
    let mut client = open_client(carriage, accepted);
    client.handle_input(input);
    let (events, out) = drain_client(&mut client);
    assert!(
        matches!(events.last(), Some(ClientEvent::Error(e)) if e.code == ErrorCode::PROTOCOL),
        "{events:?}"
    );
    let cause = client.protocol_error().expect("a typed cause");
    assert!(want(cause), "unexpected cause {cause:?}");
    let abort = match carriage {
        Carriage::Json => frame(&Envelope::new("call-1", Payload::Aborted)),
        Carriage::Raw => control(&Control::Abort),
    };
    assert_eq!(&out[..], &abort[..], "the server is told to stop");
    assert!(client.is_finished());
    // Anything after is ignored.
    client.handle_input(&responded_frame("call-1", json!(1)));
    client.handle_eof();
    assert!(drain_client(&mut client).0.is_empty());
}

#[test]
fn client_rejects_bad_frames() {
    client_rejects(Carriage::Json, false, &[0, 0, 0, 0], |e| {
        matches!(e, ProtocolError::Frame(FrameError::Empty))
    });
    client_rejects(
        Carriage::Json,
        false,
        &(16u32 << 20 | 1).to_be_bytes(),
        |e| matches!(e, ProtocolError::Frame(FrameError::TooLarge { .. })),
    );
    client_rejects(Carriage::Json, false, &raw_frame(b"{]"), |e| {
        matches!(
            e,
            ProtocolError::Frame(FrameError::Envelope(EnvelopeError::Json(_)))
        )
    });
    client_rejects(
        Carriage::Json,
        false,
        &raw_frame(br#"{"type":"call.later","id":"call-1","payload":{}}"#),
        |e| {
            matches!(
                e,
                ProtocolError::Frame(FrameError::Envelope(EnvelopeError::UnknownType { .. }))
            )
        },
    );
    client_rejects(
        Carriage::Json,
        false,
        &raw_frame(br#"{"type":"call.aborted","id":"call-1","payload":7}"#),
        |e| {
            matches!(
                e,
                ProtocolError::Frame(FrameError::Envelope(EnvelopeError::NotAnObject { .. }))
            )
        },
    );
    client_rejects(
        Carriage::Json,
        false,
        &raw_frame(br#"{"type":"call.error","id":"call-1","payload":{"code":"X"}}"#),
        |e| {
            matches!(
                e,
                ProtocolError::Frame(FrameError::Envelope(EnvelopeError::Payload { .. }))
            )
        },
    );
}

#[test]
fn client_rejects_another_calls_id() {
    client_rejects(
        Carriage::Json,
        false,
        &responded_frame("call-2", json!(1)),
        |e| matches!(e, ProtocolError::IdMismatch { expected, got } if expected == "call-1" && got == "call-2"),
    );
}

#[test]
fn client_rejects_a_request_from_the_server_and_completed_on_raw() {
    client_rejects(
        Carriage::Json,
        false,
        &request_frame("call-1", Carriage::Json),
        |e| {
            matches!(
                e,
                ProtocolError::UnexpectedEnvelope {
                    kind: "call.requested",
                    ..
                }
            )
        },
    );
    client_rejects(
        Carriage::Raw,
        false,
        &frame(&Envelope::new("call-1", Payload::Completed)),
        |e| {
            matches!(
                e,
                ProtocolError::UnexpectedEnvelope {
                    kind: "call.completed",
                    ..
                }
            )
        },
    );
}

#[test]
fn client_rejects_bad_chunks() {
    client_rejects(Carriage::Raw, true, &[9], |e| {
        matches!(e, ProtocolError::Chunk(ChunkError::UnknownType(9)))
    });
    client_rejects(
        Carriage::Raw,
        true,
        &dockwire_core::chunk_header(StreamType::Stdout, (16 << 20) + 1),
        |e| matches!(e, ProtocolError::Chunk(ChunkError::TooLarge { .. })),
    );
    client_rejects(Carriage::Raw, true, &chunk(StreamType::Stdin, b"x"), |e| {
        matches!(
            e,
            ProtocolError::UnexpectedChunk {
                stream: StreamType::Stdin,
                from: "server"
            }
        )
    });
}

#[test]
fn client_rejects_bad_control_messages() {
    client_rejects(
        Carriage::Raw,
        true,
        &chunk(StreamType::Control, b"{"),
        |e| matches!(e, ProtocolError::Control(ControlError::Json(_))),
    );
    client_rejects(
        Carriage::Raw,
        true,
        &chunk(StreamType::Control, b"[]"),
        |e| matches!(e, ProtocolError::Control(ControlError::NotAnObject)),
    );
    client_rejects(
        Carriage::Raw,
        true,
        &chunk(StreamType::Control, b"{}"),
        |e| matches!(e, ProtocolError::Control(ControlError::MissingType)),
    );
    client_rejects(
        Carriage::Raw,
        true,
        &chunk(StreamType::Control, br#"{"type":"exit","code":1.5}"#),
        |e| matches!(e, ProtocolError::Control(ControlError::Invalid { .. })),
    );
    client_rejects(
        Carriage::Raw,
        true,
        &control(&Control::Resize { cols: 1, rows: 1 }),
        |e| {
            matches!(
                e,
                ProtocolError::UnexpectedControl {
                    kind: "resize",
                    from: "server"
                }
            )
        },
    );
}

#[test]
fn client_rejects_output_after_drained_and_exit_before_drained() {
    let drained_then_out = [
        &chunk(StreamType::Stdout, b"")[..],
        &chunk(StreamType::Stderr, b"late")[..],
    ]
    .concat();
    client_rejects(Carriage::Raw, true, &drained_then_out, |e| {
        matches!(e, ProtocolError::OutputAfterDrained)
    });
    client_rejects(
        Carriage::Raw,
        true,
        &control(&Control::Exit { code: 0 }),
        |e| matches!(e, ProtocolError::ExitBeforeDrained),
    );
}

// ---- the client's protocol violations, seen by the server ------------------

/// Feeds `input` to a server (fresh, or opened on `carriage`) and checks it
/// ends with a PROTOCOL error matching `want`, replying with `reply_id`.
fn server_rejects(
    open: Option<(Carriage, bool)>,
    input: &[u8],
    reply_id: Option<&str>,
    want: impl Fn(&ProtocolError) -> bool,
) {
    let mut server = match open {
        None => ServerCall::new(Limits::default()),
        Some((carriage, accept)) => open_server(carriage, accept),
    };
    let accepted = server.is_accepted();
    server.handle_input(input);
    let (events, out) = drain_server(&mut server);
    let Some(ServerEvent::Error(err)) = events.last() else {
        panic!("no error event: {events:?}");
    };
    assert_eq!(err.code, ErrorCode::PROTOCOL);
    let cause = server.protocol_error().expect("a typed cause");
    assert!(want(cause), "unexpected cause {cause:?}");
    if accepted {
        assert_eq!(&out[..], &control(&Control::Error(err.clone()))[..]);
    } else {
        let reply = FrameOf::decode(&out);
        assert_eq!(Some(reply.id.as_str()), reply_id);
        assert_eq!(reply.payload, Payload::Error(err.clone()));
    }
    assert!(server.is_finished());
    server.handle_input(&chunk(StreamType::Stdin, b"more"));
    server.handle_eof();
    assert!(
        drain_server(&mut server).0.is_empty(),
        "input after the end is ignored"
    );
}

/// Decodes exactly one frame from `bytes`.
struct FrameOf;
impl FrameOf {
    fn decode(bytes: &[u8]) -> Envelope {
        let mut b = BytesMut::from(bytes);
        let env = dockwire_core::FrameCodec::default()
            .decode(&mut b)
            .unwrap()
            .unwrap();
        assert!(b.is_empty(), "one frame only");
        env
    }
}

#[test]
fn server_answers_a_malformed_first_frame_where_it_can() {
    server_rejects(None, &[0, 0, 0, 0], Some(""), |e| {
        matches!(e, ProtocolError::Frame(FrameError::Empty))
    });
    server_rejects(None, &u32::MAX.to_be_bytes(), Some(""), |e| {
        matches!(
            e,
            ProtocolError::Frame(FrameError::TooLarge { len: u32::MAX, .. })
        )
    });
    server_rejects(None, &raw_frame(b"\xff\xfe"), Some(""), |e| {
        matches!(
            e,
            ProtocolError::Frame(FrameError::Envelope(EnvelopeError::Json(_)))
        )
    });
    server_rejects(
        None,
        &raw_frame(br#"{"type":"call.requested","id":"r9","payload":{"operationId":"x","carriage":"pigeon"}}"#),
        Some("r9"),
        |e| matches!(e, ProtocolError::Frame(FrameError::Envelope(EnvelopeError::Payload { .. }))),
    );
    server_rejects(
        None,
        &raw_frame(br#"{"type":"call.requested","id":"r9","payload":{"input":{}}}"#),
        Some("r9"),
        |e| {
            matches!(
                e,
                ProtocolError::Frame(FrameError::Envelope(EnvelopeError::Payload { .. }))
            )
        },
    );
}

#[test]
fn server_refuses_anything_but_a_request_first() {
    server_rejects(None, &responded_frame("r1", json!(1)), Some("r1"), |e| {
        matches!(
            e,
            ProtocolError::UnexpectedEnvelope {
                kind: "call.responded",
                when: "before call.requested"
            }
        )
    });
}

#[test]
fn server_refuses_a_second_request_and_other_ids() {
    server_rejects(
        Some((Carriage::Json, false)),
        &request_frame("call-1", Carriage::Json),
        Some("call-1"),
        |e| {
            matches!(
                e,
                ProtocolError::UnexpectedEnvelope {
                    kind: "call.requested",
                    ..
                }
            )
        },
    );
    server_rejects(
        Some((Carriage::Json, false)),
        &frame(&Envelope::new("call-2", Payload::Aborted)),
        Some("call-1"),
        |e| matches!(e, ProtocolError::IdMismatch { .. }),
    );
}

#[test]
fn server_refuses_stdin_after_close() {
    let closed = chunk(StreamType::Stdin, b"");
    for second in [
        chunk(StreamType::Stdin, b"x"),
        chunk(StreamType::Stdin, b""),
        control(&Control::Eof),
    ] {
        server_rejects(
            Some((Carriage::Raw, true)),
            &[&closed[..], &second[..]].concat(),
            None,
            |e| matches!(e, ProtocolError::StdinAfterClose),
        );
    }
}

#[test]
fn server_refuses_output_streams_and_server_controls_from_the_client() {
    for stream in [StreamType::Stdout, StreamType::Stderr] {
        server_rejects(
            Some((Carriage::Raw, true)),
            &chunk(stream, b"x"),
            None,
            |e| matches!(e, ProtocolError::UnexpectedChunk { from: "client", .. }),
        );
    }
    server_rejects(
        Some((Carriage::Raw, false)),
        &control(&Control::Exit { code: 0 }),
        Some("call-1"),
        |e| {
            matches!(
                e,
                ProtocolError::UnexpectedControl {
                    kind: "exit",
                    from: "client"
                }
            )
        },
    );
}

#[test]
fn server_refuses_bad_chunks_and_controls() {
    server_rejects(Some((Carriage::Raw, true)), &[4, 0, 0, 0, 0], None, |e| {
        matches!(e, ProtocolError::Chunk(ChunkError::UnknownType(4)))
    });
    server_rejects(
        Some((Carriage::Raw, true)),
        &chunk(
            StreamType::Control,
            br#"{"type":"resize","cols":99999,"rows":1}"#,
        ),
        None,
        |e| matches!(e, ProtocolError::Control(ControlError::Invalid { .. })),
    );
}

#[test]
fn protocol_error_messages_are_bounded_even_for_huge_ids() {
    let id = "i".repeat(100_000);
    let mut server = open_server(Carriage::Json, false);
    server.handle_input(&frame(&Envelope::new(id, Payload::Aborted)));
    let (events, _) = drain_server(&mut server);
    let Some(ServerEvent::Error(e)) = events.last() else {
        panic!("{events:?}")
    };
    assert!(e.message.len() <= 1024 + '…'.len_utf8());
}

#[test]
fn an_id_too_long_to_echo_ends_the_stream_without_a_reply() {
    // The request fits (206 bytes); the reply echoing its id would not (~286).
    let limits = Limits::default().with_max_frame_len(250).unwrap();
    let mut server = ServerCall::new(limits);
    let body = format!(
        r#"{{"type":"call.responded","id":"{}","payload":{{"output":1}}}}"#,
        "x".repeat(150)
    );
    server.handle_input(&raw_frame(body.as_bytes()));
    let (events, out) = drain_server(&mut server);
    assert!(matches!(&events[..], [ServerEvent::Error(_)]));
    assert!(out.is_empty());
}

/// A json server that got a request with `id`, under a frame limit.
fn requested_with_id(id: &str, limit: u32) -> ServerCall {
    let mut server = ServerCall::new(Limits::default().with_max_frame_len(limit).unwrap());
    let body = format!(
        r#"{{"type":"call.requested","id":"{id}","payload":{{"operationId":"a","input":null}}}}"#
    );
    server.handle_input(&raw_frame(body.as_bytes()));
    let (events, _) = drain_server(&mut server);
    assert!(
        matches!(&events[..], [ServerEvent::Requested(_)]),
        "{events:?}"
    );
    server
}

#[test]
fn a_failure_too_long_for_the_frame_limit_goes_with_its_message_cut() {
    let mut server = requested_with_id("c1", 2048);
    let error = CallError::new(ErrorCode::NOT_FOUND, "é".repeat(5000))
        .with_details(json!("d".repeat(5000)));
    server.fail(error).unwrap();
    assert_eq!(server.state(), ServerState::Finished);
    let (_, out) = drain_server(&mut server);
    let reply: serde_json::Value = serde_json::from_slice(&out[4..]).unwrap();
    assert_eq!(reply["type"], "call.error");
    assert_eq!(reply["id"], "c1");
    assert_eq!(reply["payload"]["code"], "NOT_FOUND");
    assert!(reply["payload"].get("details").is_none());
    let message = reply["payload"]["message"].as_str().unwrap();
    assert!(message.len() <= 1024 + '…'.len_utf8(), "{}", message.len());
    assert!(message.ends_with('…'));
}

#[test]
fn a_failure_whose_id_is_too_long_to_echo_ends_the_call_unanswered() {
    // The request fits (about 270 bytes); no error echoing its id would.
    let mut server = requested_with_id(&"x".repeat(200), 280);
    let error = CallError::new(ErrorCode::NOT_FOUND, "unknown operation");
    assert!(matches!(
        server.fail(error),
        Err(CommandError::FrameTooLarge { .. })
    ));
    assert_eq!(server.state(), ServerState::Finished);
    assert_eq!(server.transmit_len(), 0);
    // Finished: nothing more is taken.
    assert!(server.respond(json!(1)).is_err());
}

// ---- local misuse: CommandError, one test per variant ----------------------

#[test]
fn commands_before_a_request_are_not_requested() {
    let mut server = ServerCall::new(Limits::default());
    assert_eq!(server.state(), ServerState::AwaitingRequest);
    assert_eq!(server.respond(json!(1)), Err(CommandError::NotRequested));
    assert_eq!(server.accept(json!(1)), Err(CommandError::NotRequested));
    assert_eq!(
        server.fail(CallError::protocol("x")),
        Err(CommandError::NotRequested)
    );
    assert_eq!(server.abort(), Err(CommandError::NotRequested));
    assert_eq!(server.transmit_len(), 0);
}

#[test]
fn commands_of_the_other_carriage_are_refused() {
    let mut json_server = open_server(Carriage::Json, false);
    for r in [
        json_server.accept(json!(1)),
        json_server.send_stdout(bytes(b"x")),
        json_server.exit(0),
    ] {
        assert!(matches!(
            r,
            Err(CommandError::WrongCarriage {
                carriage: Carriage::Json,
                ..
            })
        ));
    }
    let mut raw_server = open_server(Carriage::Raw, true);
    assert!(matches!(
        raw_server.respond(json!(1)),
        Err(CommandError::WrongCarriage {
            command: "respond",
            carriage: Carriage::Raw
        })
    ));
    assert!(matches!(
        raw_server.complete(),
        Err(CommandError::WrongCarriage { .. })
    ));
    let mut json_client = open_client(Carriage::Json, false);
    for r in [
        json_client.send_stdin(bytes(b"x")),
        json_client.close_stdin(),
        json_client.resize(1, 1),
        json_client.signal("INT"),
    ] {
        assert!(matches!(r, Err(CommandError::WrongCarriage { .. })));
    }
    assert_eq!(json_client.transmit_len(), 0);
}

#[test]
fn raw_output_before_accept_is_not_accepted_and_accept_is_once() {
    let mut server = open_server(Carriage::Raw, false);
    assert_eq!(
        server.send_stdout(bytes(b"x")),
        Err(CommandError::NotAccepted)
    );
    assert_eq!(
        server.send_stderr(bytes(b"x")),
        Err(CommandError::NotAccepted)
    );
    assert_eq!(server.drained(), Err(CommandError::NotAccepted));
    assert_eq!(server.exit(0), Err(CommandError::NotAccepted));
    server.accept(json!(null)).unwrap();
    assert_eq!(
        server.accept(json!(null)),
        Err(CommandError::AlreadyAccepted)
    );
}

#[test]
fn client_stdin_after_close_is_refused_locally() {
    let mut client = open_client(Carriage::Raw, true);
    client.close_stdin().unwrap();
    assert_eq!(
        client.send_stdin(bytes(b"x")),
        Err(CommandError::StdinClosed)
    );
    assert_eq!(client.close_stdin(), Err(CommandError::StdinClosed));
    // Controls still go: a signal after EOF is ordinary.
    client.signal("TERM").unwrap();
    client.resize(10, 10).unwrap();
}

#[test]
fn server_output_after_drained_is_refused_and_drained_is_idempotent() {
    let mut server = open_server(Carriage::Raw, true);
    server.drained().unwrap();
    server.drained().unwrap();
    assert_eq!(
        server.send_stdout(bytes(b"x")),
        Err(CommandError::OutputDrained)
    );
    assert_eq!(
        server.send_stderr(bytes(b"x")),
        Err(CommandError::OutputDrained)
    );
    let (_, out) = drain_server(&mut server);
    assert_eq!(
        &out[..],
        &chunk(StreamType::Stdout, b"")[..],
        "one sentinel only"
    );
    server.exit(1).unwrap();
}

#[test]
fn commands_after_the_end_are_finished() {
    let mut server = open_server(Carriage::Raw, true);
    server.exit(0).unwrap();
    let _ = drain_server(&mut server);
    for r in [
        server.send_stdout(bytes(b"x")),
        server.exit(1),
        server.abort(),
        server.fail(CallError::protocol("x")),
    ] {
        assert_eq!(r, Err(CommandError::Finished));
    }
    assert_eq!(server.transmit_len(), 0);
}

#[test]
fn frame_over_the_limit_is_refused_and_the_call_goes_on() {
    let limits = Limits::default().with_max_frame_len(100).unwrap();
    let mut server = ServerCall::new(limits);
    server.handle_input(&request_frame("call-1", Carriage::Json));
    let _ = drain_server(&mut server);
    assert!(matches!(
        server.respond(json!("x".repeat(100))),
        Err(CommandError::FrameTooLarge { limit: 100, .. })
    ));
    assert_eq!(server.transmit_len(), 0);
    server.respond(json!("small")).unwrap();
    server.complete().unwrap();

    assert!(matches!(
        ClientCall::new(
            "c",
            Request::new("x", json!("y".repeat(100)), Carriage::Json),
            limits
        ),
        Err(CommandError::FrameTooLarge { .. })
    ));
}

#[test]
fn an_error_control_larger_than_any_peer_accepts_goes_with_its_message_cut() {
    let mut server = open_server(Carriage::Raw, true);
    let _ = drain_server(&mut server);
    let huge = CallError::new(ErrorCode::INTERNAL, "m".repeat(16 << 20));
    server.fail(huge).unwrap();
    assert!(server.is_finished());
    let (_, out) = drain_server(&mut server);
    // One control chunk: [3][len][{"type":"error",...}].
    assert_eq!(out[0], 3);
    let control: serde_json::Value = serde_json::from_slice(&out[5..]).unwrap();
    assert_eq!(control["type"], "error");
    assert_eq!(control["code"], "INTERNAL");
    assert!(control["message"].as_str().unwrap().len() <= 1024 + '…'.len_utf8());
}

// ---- sizes: 0, max, max+1 --------------------------------------------------

#[test]
fn stdin_is_chunked_at_the_send_limit() {
    let limits = Limits::default().with_max_chunk_send(8).unwrap();
    let mut client =
        ClientCall::new("c", Request::new("x", json!(null), Carriage::Raw), limits).unwrap();
    let _ = client.poll_transmit(&mut BytesMut::new());
    let mut sizes = Vec::new();
    for n in [0usize, 8, 9] {
        client.send_stdin(Bytes::from(vec![b'a'; n])).unwrap();
        let mut out = BytesMut::new();
        let _ = client.poll_transmit(&mut out);
        let codec = ChunkCodec::default();
        sizes.push(
            std::iter::from_fn(|| codec.decode(&mut out).unwrap())
                .map(|c| c.payload.len())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(sizes, [vec![], vec![8], vec![8, 1]]);
}

#[test]
fn server_accepts_chunks_up_to_its_read_limit() {
    let limits = Limits::default().with_max_chunk_recv(64).unwrap();
    for (len, ok) in [(0usize, true), (64, true), (65, false)] {
        let mut server = ServerCall::new(limits);
        server.handle_input(&request_frame("c", Carriage::Raw));
        let _ = drain_server(&mut server);
        let mut wire =
            BytesMut::from(&dockwire_core::chunk_header(StreamType::Stdin, len as u32)[..]);
        wire.extend_from_slice(&vec![b'z'; len]);
        server.handle_input(&wire);
        let (events, _) = drain_server(&mut server);
        if ok {
            assert!(!server.is_finished(), "len {len}");
            assert_eq!(events.len(), 1);
        } else {
            assert!(matches!(
                server.protocol_error(),
                Some(ProtocolError::Chunk(ChunkError::TooLarge {
                    len: 65,
                    limit: 64
                }))
            ));
        }
    }
}

#[test]
fn server_accepts_frames_up_to_its_limit() {
    let first = request_frame("c", Carriage::Json);
    let body_len = (first.len() - 4) as u32;
    for (limit, ok) in [(body_len, true), (body_len - 1, false)] {
        let mut server = ServerCall::new(Limits::default().with_max_frame_len(limit).unwrap());
        server.handle_input(&first);
        let (events, _) = drain_server(&mut server);
        assert_eq!(
            matches!(events[..], [ServerEvent::Requested(_)]),
            ok,
            "limit {limit}"
        );
    }
}

#[test]
fn a_megabyte_of_stdout_is_split_and_rejoined_exactly() {
    let mut p = Pair::new("test/op", json!(null), Carriage::Raw);
    p.server.accept(json!(null)).unwrap();
    let data: Vec<u8> = (0..(3 << 20) + 7).map(|i| (i * 31 % 251) as u8).collect();
    p.server.send_stdout(Bytes::from(data.clone())).unwrap();
    p.server.exit(0).unwrap();
    p.pump();
    let mut got = Vec::new();
    let mut pieces = 0;
    for e in p.take_client_events() {
        if let ClientEvent::Stdout(b) = e {
            assert!(b.len() <= 1 << 20);
            got.extend_from_slice(&b);
            pieces += 1;
        }
    }
    assert_eq!(pieces, 4);
    assert_eq!(got, data);
}

#[test]
fn transmit_bytes_and_transmit_into_a_buffer_agree() {
    let run = |by_bytes: bool| {
        let mut server = open_server(Carriage::Raw, true);
        server.send_stdout(Bytes::from(vec![1u8; 100_000])).unwrap();
        server.send_stderr(bytes(b"e")).unwrap();
        server.exit(5).unwrap();
        let mut out = BytesMut::new();
        if by_bytes {
            while let Some(b) = server.poll_transmit_bytes() {
                out.extend_from_slice(&b);
            }
        } else {
            let n = server.poll_transmit(&mut out);
            assert_eq!(n, out.len());
        }
        assert_eq!(server.transmit_len(), 0);
        out
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn handle_input_buf_takes_the_buffer_without_copying() {
    let mut client = open_client(Carriage::Raw, true);
    let mut wire = chunk(StreamType::Stdout, &[7u8; 8192]);
    wire.reserve(0);
    let payload_at = wire.as_ptr() as usize + CHUNK_HEADER_LEN;
    client.handle_input_buf(wire);
    let Some(ClientEvent::Stdout(b)) = client.poll_event() else {
        panic!()
    };
    assert_eq!(b.as_ptr() as usize, payload_at);
}

/// The session printed in PROTOCOL.md §7, byte for byte.
#[test]
fn protocol_md_example_session_is_what_the_machines_send() {
    let mut client = ClientCall::new(
        "c1",
        Request::new("x/cat", serde_json::Value::Null, Carriage::Raw),
        Limits::default(),
    )
    .unwrap();
    client.send_stdin(bytes(b"abc")).unwrap();
    client.resize(80, 24).unwrap();
    client.close_stdin().unwrap();
    let mut to_server = BytesMut::new();
    let _ = client.poll_transmit(&mut to_server);
    let mut want = Vec::new();
    want.extend_from_slice(&[0, 0, 0, 0x63]);
    want.extend_from_slice(
        br#"{"type":"call.requested","id":"c1","payload":{"operationId":"x/cat","input":null,"carriage":"raw"}}"#,
    );
    want.extend_from_slice(&[0, 0, 0, 0, 3, b'a', b'b', b'c']);
    want.extend_from_slice(&[3, 0, 0, 0, 0x25]);
    want.extend_from_slice(br#"{"type":"resize","cols":80,"rows":24}"#);
    want.extend_from_slice(&[0, 0, 0, 0, 0]);
    assert_eq!(&to_server[..], &want[..]);

    let mut server = ServerCall::new(Limits::default());
    server.handle_input(&to_server);
    server.accept(json!({})).unwrap();
    server.send_stdout(bytes(b"abc")).unwrap();
    server.exit(0).unwrap();
    let (_, to_client) = drain_server(&mut server);
    let mut want = Vec::new();
    want.extend_from_slice(&[0, 0, 0, 0x3b]);
    want.extend_from_slice(br#"{"type":"call.responded","id":"c1","payload":{"output":{}}}"#);
    want.extend_from_slice(&[1, 0, 0, 0, 3, b'a', b'b', b'c']);
    want.extend_from_slice(&[1, 0, 0, 0, 0]);
    want.extend_from_slice(&[3, 0, 0, 0, 0x18]);
    want.extend_from_slice(br#"{"type":"exit","code":0}"#);
    assert_eq!(&to_client[..], &want[..]);
}

// ---- reading in place ------------------------------------------------------

/// Feeds `data` through `input_buffer`/`handle_read` as a shell reading
/// from a stream does: pieces of at most `piece` bytes, each read in as
/// many reads as the offered room takes.
fn read_client(client: &mut ClientCall, data: &[u8], piece: usize) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    for part in data.chunks(piece.max(1)) {
        let mut part = part;
        while !part.is_empty() {
            let room = client.input_buffer();
            assert!(!room.is_empty());
            let n = room.len().min(part.len());
            room[..n].copy_from_slice(&part[..n]);
            client.handle_read(n);
            part = &part[n..];
        }
        events.extend(std::iter::from_fn(|| client.poll_event()));
    }
    events
}

fn read_server(server: &mut ServerCall, data: &[u8], cut: usize) -> Vec<ServerEvent> {
    let mut events = Vec::new();
    for part in [&data[..cut], &data[cut..]] {
        let mut part = part;
        while !part.is_empty() {
            let room = server.input_buffer();
            let n = room.len().min(part.len());
            room[..n].copy_from_slice(&part[..n]);
            server.handle_read(n);
            part = &part[n..];
        }
        events.extend(std::iter::from_fn(|| server.poll_event()));
    }
    events
}

/// What a server sends in a raw session: the acceptance, then stdout and
/// stderr of sizes 0 (stderr), 1, 4 KiB and 70 KiB, the drained sentinel
/// and the exit code.
fn raw_session_from_the_server() -> (BytesMut, Vec<ClientEvent>) {
    let mut wire = responded_frame("call-1", json!({"session": 1}));
    let mut events = vec![ClientEvent::Accepted(json!({"session": 1}))];
    wire.extend_from_slice(&chunk(StreamType::Stderr, b""));
    for (i, size) in [1usize, 4096, 70_000].into_iter().enumerate() {
        let payload = Bytes::from(vec![i as u8 + 1; size]);
        let stream = if i % 2 == 0 {
            StreamType::Stdout
        } else {
            StreamType::Stderr
        };
        wire.extend_from_slice(&chunk(stream, &payload));
        events.push(if i % 2 == 0 {
            ClientEvent::Stdout(payload)
        } else {
            ClientEvent::Stderr(payload)
        });
    }
    wire.extend_from_slice(&chunk(StreamType::Stdout, b""));
    wire.extend_from_slice(&control(&Control::Exit { code: 7 }));
    events.extend([ClientEvent::Drained, ClientEvent::Exit(7)]);
    (wire, events)
}

#[test]
fn reading_in_place_gives_the_same_events_at_every_split_point() {
    let (wire, want) = raw_session_from_the_server();
    // Every cut within the first frame and the small chunks, then a
    // stride through the large one, and the last bytes one by one.
    let small = wire.len() - 70_000;
    let cuts = (0..small + 64)
        .chain((small + 64..wire.len() - 64).step_by(997))
        .chain(wire.len() - 64..wire.len());
    for cut in cuts {
        let mut client = open_client(Carriage::Raw, false);
        let mut events = read_client(&mut client, &wire[..cut], usize::MAX);
        events.extend(read_client(&mut client, &wire[cut..], usize::MAX));
        assert_eq!(events, want, "cut {cut}");
        assert!(client.is_finished());
    }
    // Many small reads, as from a slow stream.
    let mut client = open_client(Carriage::Raw, false);
    assert_eq!(read_client(&mut client, &wire, 1000), want);
}

#[test]
fn server_reads_stdin_in_place_at_every_split_point() {
    let mut wire = request_frame("call-1", Carriage::Raw);
    for payload in [&b"x"[..], &[3; 5000][..]] {
        wire.extend_from_slice(&chunk(StreamType::Stdin, payload));
    }
    wire.extend_from_slice(&chunk(StreamType::Stdin, b""));
    for cut in 0..=wire.len() {
        let mut server = ServerCall::new(Limits::default());
        let events = read_server(&mut server, &wire, cut);
        assert_eq!(events.len(), 4, "cut {cut}");
        assert_eq!(events[1], ServerEvent::Stdin(bytes(b"x")), "cut {cut}");
        assert_eq!(events[2], ServerEvent::Stdin(Bytes::from(vec![3; 5000])));
        assert_eq!(events[3], ServerEvent::StdinClosed);
    }
}

#[test]
fn payloads_read_in_place_are_not_copied() {
    let mut client = open_client(Carriage::Raw, true);
    let wire = chunk(StreamType::Stdout, &[9; 1000]);
    let room = client.input_buffer();
    let start = room.as_ptr() as usize;
    room[..wire.len()].copy_from_slice(&wire);
    client.handle_read(wire.len());
    let Some(ClientEvent::Stdout(payload)) = client.poll_event() else {
        panic!("no stdout");
    };
    assert_eq!(payload.as_ptr() as usize, start + CHUNK_HEADER_LEN);
}

#[test]
fn a_chunk_at_the_receive_limit_is_read_in_place_and_one_more_byte_is_refused() {
    let max = Limits::default().max_chunk_recv() as usize;
    let mut client = open_client(Carriage::Raw, true);
    let payload = Bytes::from(vec![4u8; max]);
    let events = read_client(&mut client, &chunk(StreamType::Stdout, &payload), 1 << 20);
    assert_eq!(events, [ClientEvent::Stdout(payload)]);

    let mut client = open_client(Carriage::Raw, true);
    let header = chunk_header(StreamType::Stdout, max as u32 + 1);
    let events = read_client(&mut client, &header, usize::MAX);
    assert!(matches!(&events[..], [ClientEvent::Error(e)] if e.code == ErrorCode::PROTOCOL));
    assert!(matches!(
        client.protocol_error(),
        Some(ProtocolError::Chunk(ChunkError::TooLarge { .. }))
    ));
}

#[test]
fn reads_after_the_end_are_ignored() {
    let mut client = open_client(Carriage::Raw, true);
    client.handle_eof();
    let _ = drain_client(&mut client);
    let room = client.input_buffer();
    room[0] = 9;
    client.handle_read(1);
    assert_eq!(client.poll_event(), None);
}
