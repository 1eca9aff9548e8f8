//! A `ServerCall` driven by a fuzzer-chosen sequence of client input (raw
//! bytes or well-formed items the harness builds) and server commands.
//! See fuzz/README.md for the invariants.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use dockwire_core::{
    CallError, Carriage, CommandError, Control, DEFAULT_MAX_CHUNK_RECV, Envelope, ErrorCode,
    Limits, Payload, Request, ServerCall, ServerEvent, ServerState, StreamType,
};
use dockwire_fuzz::{
    JsonSel, OutItem, OutParser, chunk_bytes, drain_transmit, frame_bytes, is_terminal_item,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum LimitSel {
    Default,
    Small { frame: u8, send: u8, recv: u8 },
}

impl LimitSel {
    fn limits(&self) -> Limits {
        match *self {
            LimitSel::Default => Limits::default(),
            LimitSel::Small { frame, send, recv } => Limits::default()
                .with_max_frame_len(16 + 2 * u32::from(frame))
                .and_then(|l| l.with_max_chunk_send(1 + u32::from(send % 32)))
                .and_then(|l| l.with_max_chunk_recv(1 + u32::from(recv)))
                .expect("limits in range"),
        }
    }
}

/// Client input (`how`: bit 0 picks `handle_input_buf`, else bit 1 reading
/// in place with `input_buffer`/`handle_read`; `how >> 1` is a point at
/// which the bytes are cut into two deliveries) and server commands.
/// How input bytes reach the machine.
#[derive(Clone, Copy)]
enum Feed {
    /// `handle_input`.
    Slice,
    /// `handle_input_buf`.
    Buf,
    /// Reads into `input_buffer`, then `handle_read`.
    InPlace,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Arbitrary bytes from the client.
    Input {
        bytes: Vec<u8>,
        how: u8,
    },
    /// A real `call.requested` frame.
    RequestFrame {
        raw: bool,
        id: String,
        operation: String,
        input: JsonSel,
        how: u8,
    },
    /// A real `call.aborted` frame, with the call's id or another.
    AbortFrame {
        same_id: bool,
        how: u8,
    },
    /// Another envelope a client may not send after its request.
    OtherFrame {
        kind: u8,
        same_id: bool,
        how: u8,
    },
    /// A stdin chunk (empty: stdin closed).
    StdinChunk {
        data: Vec<u8>,
        how: u8,
    },
    /// A control chunk: resize, signal, eof, abort, and some that a client
    /// may not send or that are malformed.
    ControlChunk {
        sel: u8,
        a: u16,
        b: u16,
        how: u8,
    },
    /// A stdout or stderr chunk, which a client may not send.
    OutputChunk {
        stderr: bool,
        data: Vec<u8>,
        how: u8,
    },
    /// The client's side of the stream ends.
    Eof,
    Respond(JsonSel),
    Complete,
    Fail {
        code: String,
        message: String,
        details: Option<JsonSel>,
    },
    Accept(JsonSel),
    SendStdout(Vec<u8>),
    SendStderr(Vec<u8>),
    Drained,
    Exit(i32),
    Abort,
    /// Switches how the harness drains the transmit queue
    /// (`poll_transmit` or `poll_transmit_bytes`).
    PollTransmitBytes,
}

#[derive(Arbitrary, Debug)]
struct Case {
    limits: LimitSel,
    ops: Vec<Op>,
}

/// What the harness knows of the conversation so far.
struct Harness {
    server: ServerCall,
    limits: Limits,
    pop_mode: bool,
    // Events.
    n_events: usize,
    requested: bool,
    terminal_event: bool,
    stdin_closed_event: bool,
    // Transmitted stream.
    out: OutParser,
    out_terminal: bool,
    out_accept: bool,
    out_drained: bool,
}

/// A snapshot taken before a step.
struct Before {
    finished: bool,
    state: ServerState,
    carriage: Carriage,
    accepted: bool,
    stdin_closed: bool,
    transmit_len: usize,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        Harness {
            server: ServerCall::new(limits),
            limits,
            pop_mode: false,
            n_events: 0,
            requested: false,
            terminal_event: false,
            stdin_closed_event: false,
            out: OutParser::new(limits.max_frame_len(), DEFAULT_MAX_CHUNK_RECV),
            out_terminal: false,
            out_accept: false,
            out_drained: false,
        }
    }

    fn before(&self) -> Before {
        Before {
            finished: self.server.is_finished(),
            state: self.server.state(),
            carriage: self.server.carriage(),
            accepted: self.server.is_accepted(),
            stdin_closed: self.server.is_stdin_closed(),
            transmit_len: self.server.transmit_len(),
        }
    }

    /// Drains both outputs and checks everything that came out. Returns the
    /// number of events and of transmitted bytes.
    fn drain(&mut self) -> (usize, usize) {
        let sent = drain_transmit(&mut self.server, self.pop_mode);
        self.out.push(&sent);
        self.check_output();

        let mut events = Vec::new();
        while let Some(e) = self.server.poll_event() {
            events.push(e);
        }
        for e in &events {
            self.check_event(e);
        }
        (events.len(), sent.len())
    }

    fn check_event(&mut self, e: &ServerEvent) {
        assert!(!self.terminal_event, "event {e:?} after the terminal event");
        match e {
            ServerEvent::Requested(_) => {
                assert_eq!(self.n_events, 0, "Requested is not the first event");
                self.requested = true;
            }
            ServerEvent::Stdin(data) => {
                assert!(self.requested, "stdin before Requested");
                assert_eq!(self.server.carriage(), Carriage::Raw, "stdin on json");
                assert!(!data.is_empty(), "empty Stdin event");
                assert!(!self.stdin_closed_event, "Stdin after StdinClosed");
            }
            ServerEvent::StdinClosed => {
                assert!(self.requested);
                assert_eq!(self.server.carriage(), Carriage::Raw);
                assert!(!self.stdin_closed_event, "StdinClosed twice");
                self.stdin_closed_event = true;
            }
            ServerEvent::Resize { .. } | ServerEvent::Signal(_) => {
                assert!(self.requested);
                assert_eq!(self.server.carriage(), Carriage::Raw);
            }
            ServerEvent::Aborted => {
                assert!(self.requested, "Aborted before Requested");
                self.terminal_event = true;
            }
            ServerEvent::Error(err) => {
                assert_eq!(err.code, ErrorCode::PROTOCOL, "input error not PROTOCOL");
                assert!(self.server.protocol_error().is_some());
                self.terminal_event = true;
            }
        }
        if self.terminal_event {
            assert!(self.server.is_finished(), "terminal event but not finished");
        }
        self.n_events += 1;
    }

    /// Parses what the server transmitted, as a client would, and checks
    /// its order.
    fn check_output(&mut self) {
        let raw = self.server.carriage() == Carriage::Raw;
        let id = self.server.id().unwrap_or("").to_owned();
        while let Some(item) = self
            .out
            .next(|e| raw && matches!(e.payload, Payload::Responded(_)))
        {
            assert!(
                !self.out_terminal,
                "{item:?} transmitted after a terminal item"
            );
            if is_terminal_item(&item) {
                self.out_terminal = true;
                assert!(self.server.is_finished(), "terminal item but not finished");
            }
            match &item {
                OutItem::Frame(env) => {
                    assert_eq!(env.id, id, "frame with another id");
                    match &env.payload {
                        Payload::Requested(_) => panic!("server sent call.requested"),
                        Payload::Responded(_) if raw => {
                            assert!(!self.out_accept, "accepted twice");
                            self.out_accept = true;
                        }
                        _ => {}
                    }
                }
                OutItem::Chunk(c) => match c.stream {
                    StreamType::Stdin => panic!("server sent stdin"),
                    StreamType::Stdout | StreamType::Stderr => {
                        assert!(!self.out_drained, "output after the drained sentinel");
                        assert!(c.payload.len() <= self.limits.max_chunk_send() as usize);
                        if c.payload.is_empty() {
                            assert_eq!(c.stream, StreamType::Stdout, "empty stderr chunk sent");
                            self.out_drained = true;
                        }
                    }
                    StreamType::Control => match Control::decode(&c.payload) {
                        Ok(Some(Control::Exit { .. })) => {
                            assert!(self.out_drained, "exit before the drained sentinel")
                        }
                        Ok(Some(Control::Error(_) | Control::Abort)) => {}
                        other => panic!("server sent control {other:?}"),
                    },
                },
            }
        }
    }

    /// Feeds client bytes.
    fn input(&mut self, bytes: &[u8], how: u8) {
        let cut = usize::from(how >> 1) % (bytes.len() + 1);
        let feed = match how & 3 {
            1 | 3 => Feed::Buf,
            2 => Feed::InPlace,
            _ => Feed::Slice,
        };
        if cut > 0 && cut < bytes.len() {
            self.input_once(&bytes[..cut], feed);
            self.input_once(&bytes[cut..], feed);
        } else {
            self.input_once(bytes, feed);
        }
    }

    fn input_once(&mut self, bytes: &[u8], feed: Feed) {
        let b = self.before();
        match feed {
            Feed::Slice => self.server.handle_input(bytes),
            Feed::Buf => self.server.handle_input_buf(BytesMut::from(bytes)),
            Feed::InPlace => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    let room = self.server.input_buffer();
                    assert!(!room.is_empty(), "input_buffer gave no room");
                    let n = room.len().min(rest.len());
                    room[..n].copy_from_slice(&rest[..n]);
                    self.server.handle_read(n);
                    rest = &rest[n..];
                }
            }
        }
        let (events, sent) = self.drain();
        if b.finished {
            assert_eq!((events, sent), (0, 0), "input after finish did something");
        }
    }

    fn eof(&mut self) {
        let b = self.before();
        self.server.handle_eof();
        let (events, sent) = self.drain();
        assert!(self.server.is_finished(), "not finished after eof");
        if b.finished {
            assert_eq!((events, sent), (0, 0), "eof after finish did something");
        } else if b.state == ServerState::Open {
            assert!(
                self.terminal_event,
                "eof on an open call without a terminal event"
            );
        }
    }

    /// Runs one command and checks its result against the state before.
    fn command(
        &mut self,
        name: &str,
        ends: bool,
        carriage: Option<Carriage>,
        f: impl FnOnce(&mut ServerCall) -> Result<(), CommandError>,
    ) {
        let b = self.before();
        let r = f(&mut self.server);
        let queued = self.server.transmit_len();
        match &r {
            Ok(()) => {
                assert!(!b.finished, "{name} succeeded after finish");
                assert_eq!(b.state, ServerState::Open);
                if let Some(c) = carriage {
                    assert_eq!(b.carriage, c, "{name} succeeded on the other carriage");
                }
                if ends {
                    assert!(self.server.is_finished(), "{name} did not end the call");
                }
            }
            Err(e) => {
                if b.finished {
                    assert_eq!(*e, CommandError::Finished, "{name} after finish");
                } else if b.state == ServerState::AwaitingRequest {
                    assert_eq!(*e, CommandError::NotRequested, "{name} before request");
                } else if carriage.is_some_and(|c| c != b.carriage) {
                    assert!(
                        matches!(e, CommandError::WrongCarriage { .. }),
                        "{name} on the other carriage: {e:?}"
                    );
                }
                // "Nothing was queued and the state did not change" — but a
                // `fail` whose error cannot be sent at all (an id too long to
                // echo) still ends the call, unanswered.
                assert_eq!(queued, b.transmit_len, "{name} failed but queued bytes");
                let unanswered = name == "fail"
                    && b.state == ServerState::Open
                    && matches!(
                        e,
                        CommandError::FrameTooLarge { .. } | CommandError::ControlTooLarge { .. }
                    );
                if unanswered {
                    assert!(self.server.is_finished(), "a failed fail left the call open");
                } else {
                    assert_eq!(
                        self.server.state(),
                        b.state,
                        "{name} failed but changed state"
                    );
                }
                assert_eq!(self.server.is_accepted(), b.accepted);
                assert_eq!(self.server.is_stdin_closed(), b.stdin_closed);
            }
        }
        let (events, _) = self.drain();
        assert_eq!(events, 0, "command {name} emitted an event");
    }
}

fn control_payload(sel: u8, a: u16, b: u16) -> Vec<u8> {
    let c = match sel % 10 {
        0 => Control::Resize { cols: a, rows: b },
        1 => Control::Signal {
            name: ["INT", "TERM", "KILL", "", "WINCH"][usize::from(a % 5)].to_owned(),
        },
        2 => Control::Eof,
        3 => Control::Abort,
        4 => Control::Exit {
            code: i32::from(a as i16),
        },
        5 => Control::Error(CallError::new(ErrorCode::INTERNAL, "no")),
        6 => return br#"{"type":"dance","steps":3}"#.to_vec(),
        7 => return br#"{"type":"resize","cols":-1,"rows":24}"#.to_vec(),
        8 => return b"[1,2".to_vec(),
        _ => {
            return format!(r#"{{"type":"resize","cols":{a},"rows":{b},"extra":[{a}]}}"#)
                .into_bytes();
        }
    };
    c.to_json()
}

fuzz_target!(|case: Case| {
    let limits = case.limits.limits();
    let mut h = Harness::new(limits);
    for op in case.ops {
        let id = h.server.id().unwrap_or("").to_owned();
        let other_id = format!("{id}x");
        match op {
            Op::Input { bytes, how } => h.input(&bytes, how),
            Op::RequestFrame {
                raw,
                id,
                operation,
                input,
                how,
            } => {
                let carriage = if raw { Carriage::Raw } else { Carriage::Json };
                let request = Request {
                    operation,
                    input: input.value(),
                    carriage,
                };
                let bytes = frame_bytes(&Envelope::new(id, Payload::Requested(request)));
                h.input(&bytes, how);
            }
            Op::AbortFrame { same_id, how } => {
                let id = if same_id { id } else { other_id };
                h.input(&frame_bytes(&Envelope::new(id, Payload::Aborted)), how);
            }
            Op::OtherFrame { kind, same_id, how } => {
                let id = if same_id { id } else { other_id };
                let payload = match kind % 4 {
                    0 => Payload::Completed,
                    1 => Payload::Responded(serde_json::json!({"x": 1})),
                    2 => Payload::Error(CallError::protocol("client says no")),
                    _ => Payload::Requested(Request::new(
                        "again",
                        serde_json::Value::Null,
                        Carriage::Raw,
                    )),
                };
                h.input(&frame_bytes(&Envelope::new(id, payload)), how);
            }
            Op::StdinChunk { data, how } => h.input(&chunk_bytes(StreamType::Stdin, &data), how),
            Op::ControlChunk { sel, a, b, how } => h.input(
                &chunk_bytes(StreamType::Control, &control_payload(sel, a, b)),
                how,
            ),
            Op::OutputChunk { stderr, data, how } => {
                let stream = if stderr {
                    StreamType::Stderr
                } else {
                    StreamType::Stdout
                };
                h.input(&chunk_bytes(stream, &data), how)
            }
            Op::Eof => h.eof(),
            Op::Respond(v) => h.command("respond", false, Some(Carriage::Json), |s| {
                s.respond(v.value())
            }),
            Op::Complete => h.command("complete", true, Some(Carriage::Json), |s| s.complete()),
            Op::Fail {
                code,
                message,
                details,
            } => {
                let mut err = CallError::new(ErrorCode::new(code), message);
                if let Some(d) = details {
                    err = err.with_details(d.value());
                }
                h.command("fail", true, None, |s| s.fail(err))
            }
            Op::Accept(v) => h.command("accept", false, Some(Carriage::Raw), |s| {
                s.accept(v.value())
            }),
            Op::SendStdout(d) => h.command("send_stdout", false, Some(Carriage::Raw), |s| {
                s.send_stdout(Bytes::from(d))
            }),
            Op::SendStderr(d) => h.command("send_stderr", false, Some(Carriage::Raw), |s| {
                s.send_stderr(Bytes::from(d))
            }),
            Op::Drained => h.command("drained", false, Some(Carriage::Raw), |s| s.drained()),
            Op::Exit(code) => h.command("exit", true, Some(Carriage::Raw), |s| s.exit(code)),
            Op::Abort => h.command("abort", true, None, |s| s.abort()),
            Op::PollTransmitBytes => {
                h.pop_mode = !h.pop_mode;
                h.drain();
            }
        }
    }
    // Nothing is ever left half-transmitted: every byte the server queued
    // forms whole frames and chunks.
    assert_eq!(h.out.pending(), 0, "the server transmitted a partial item");
});
