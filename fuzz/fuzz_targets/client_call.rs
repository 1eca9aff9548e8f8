//! A `ClientCall` driven by a fuzzer-chosen sequence of server input (raw
//! bytes or well-formed items the harness builds) and client commands.
//! See fuzz/README.md for the invariants.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use dockwire_core::{
    CallError, Carriage, ClientCall, ClientEvent, ClientState, CommandError, Control,
    DEFAULT_MAX_CHUNK_RECV, Envelope, ErrorCode, Limits, Payload, Request, StreamType,
};
use dockwire_fuzz::{JsonSel, OutItem, OutParser, chunk_bytes, drain_transmit, frame_bytes};
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

/// Server input (`how`: bit 0 picks `handle_input_buf`, else bit 1 reading
/// in place with `input_buffer`/`handle_read`; `how >> 1` is a point at
/// which the bytes are cut into two deliveries) and client commands.
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
    /// Arbitrary bytes from the server.
    Input {
        bytes: Vec<u8>,
        how: u8,
    },
    /// `call.responded` (on raw: the acceptance).
    Responded {
        same_id: bool,
        output: JsonSel,
        how: u8,
    },
    /// `call.completed`.
    Completed {
        same_id: bool,
        how: u8,
    },
    /// `call.error`.
    ErrorFrame {
        same_id: bool,
        code: u8,
        how: u8,
    },
    /// `call.aborted`.
    AbortedFrame {
        same_id: bool,
        how: u8,
    },
    /// `call.requested`, which a server may not send.
    RequestedFrame {
        how: u8,
    },
    /// A stdout chunk (an empty one is the drained sentinel).
    Stdout {
        data: Vec<u8>,
        how: u8,
    },
    /// A stderr chunk.
    Stderr {
        data: Vec<u8>,
        how: u8,
    },
    /// A stdin chunk, which a server may not send.
    StdinChunk {
        data: Vec<u8>,
        how: u8,
    },
    /// The drained sentinel: an empty stdout chunk.
    DrainedChunk {
        how: u8,
    },
    /// A control chunk: exit, error, abort, and some that a server may not
    /// send or that are malformed.
    ControlChunk {
        sel: u8,
        a: u16,
        b: u16,
        how: u8,
    },
    /// The server's side of the stream ends.
    Eof,
    SendStdin(Vec<u8>),
    CloseStdin,
    Resize(u16, u16),
    Signal(String),
    Abort,
    /// Switches how the harness drains the transmit queue
    /// (`poll_transmit` or `poll_transmit_bytes`).
    PollTransmitBytes,
}

#[derive(Arbitrary, Debug)]
struct Case {
    limits: LimitSel,
    id: String,
    operation: String,
    input: JsonSel,
    raw: bool,
    ops: Vec<Op>,
}

struct Harness {
    client: ClientCall,
    limits: Limits,
    raw: bool,
    pop_mode: bool,
    aborted_by_us: bool,
    // Events.
    terminal_event: bool,
    accepted_event: bool,
    output_event: bool,
    drained_event: bool,
    // Transmitted stream.
    out: OutParser,
    out_requested: bool,
    out_abort: bool,
    out_stdin_closed: bool,
}

struct Before {
    finished: bool,
    state: ClientState,
    accepted: bool,
    stdin_closed: bool,
    transmit_len: usize,
}

impl Harness {
    fn before(&self) -> Before {
        Before {
            finished: self.client.is_finished(),
            state: self.client.state(),
            accepted: self.client.is_accepted(),
            stdin_closed: self.client.is_stdin_closed(),
            transmit_len: self.client.transmit_len(),
        }
    }

    fn drain(&mut self) -> (usize, usize) {
        let sent = drain_transmit(&mut self.client, self.pop_mode);
        self.out.push(&sent);
        self.check_output();

        let mut events = Vec::new();
        while let Some(e) = self.client.poll_event() {
            events.push(e);
        }
        for e in &events {
            self.check_event(e);
        }
        (events.len(), sent.len())
    }

    fn check_event(&mut self, e: &ClientEvent) {
        assert!(!self.terminal_event, "event {e:?} after the terminal event");
        let is_output = matches!(
            e,
            ClientEvent::Responded(_)
                | ClientEvent::Accepted(_)
                | ClientEvent::Stdout(_)
                | ClientEvent::Stderr(_)
        );
        if is_output {
            assert!(!self.aborted_by_us, "output event {e:?} after abort()");
        }
        match e {
            ClientEvent::Responded(_) => assert!(!self.raw, "Responded on raw"),
            ClientEvent::Accepted(_) => {
                assert!(self.raw, "Accepted on json");
                assert!(!self.accepted_event, "Accepted twice");
                assert!(!self.output_event, "Accepted after output");
                self.accepted_event = true;
            }
            ClientEvent::Stdout(d) | ClientEvent::Stderr(d) => {
                assert!(self.raw && self.accepted_event, "output before Accepted");
                assert!(!d.is_empty(), "empty output event");
                assert!(!self.drained_event, "output after Drained");
                self.output_event = true;
            }
            ClientEvent::Drained => {
                // After abort() the acceptance is dropped as an output, but
                // Drained is a marker and still comes.
                assert!(
                    self.raw && (self.accepted_event || self.aborted_by_us),
                    "Drained before Accepted"
                );
                assert!(!self.drained_event, "Drained twice");
                self.drained_event = true;
            }
            ClientEvent::Exit(_) => {
                assert!(self.raw, "Exit on json");
                // fuzz/artifacts-found/client_call-exit-without-drained-after-abort
                // once broke this; the core now reports Drained while aborting.
                assert!(self.drained_event, "Exit without Drained before it");
                self.terminal_event = true;
            }
            ClientEvent::Completed => {
                assert!(!self.raw, "Completed on raw");
                self.terminal_event = true;
            }
            ClientEvent::Aborted => self.terminal_event = true,
            ClientEvent::Error(err) => {
                if self.client.protocol_error().is_some() {
                    assert_eq!(err.code, ErrorCode::PROTOCOL);
                }
                self.terminal_event = true;
            }
        }
        if self.terminal_event {
            assert!(self.client.is_finished(), "terminal event but not finished");
        }
    }

    fn check_output(&mut self) {
        let raw = self.raw;
        let id = self.client.id().to_owned();
        while let Some(item) = self
            .out
            .next(|e| raw && matches!(e.payload, Payload::Requested(_)))
        {
            assert!(!self.out_abort, "{item:?} transmitted after the abort");
            match &item {
                OutItem::Frame(env) => {
                    assert_eq!(env.id, id, "frame with another id");
                    match &env.payload {
                        Payload::Requested(r) => {
                            assert!(!self.out_requested, "call.requested twice");
                            assert_eq!(r.carriage == Carriage::Raw, raw);
                            self.out_requested = true;
                        }
                        Payload::Aborted => {
                            assert!(self.out_requested);
                            assert!(!raw, "call.aborted frame on raw");
                            self.out_abort = true;
                        }
                        other => panic!("client sent {}", other.type_name()),
                    }
                }
                OutItem::Chunk(c) => {
                    assert!(self.out_requested);
                    match c.stream {
                        StreamType::Stdin => {
                            assert!(!self.out_stdin_closed, "stdin after close");
                            assert!(c.payload.len() <= self.limits.max_chunk_send() as usize);
                            if c.payload.is_empty() {
                                self.out_stdin_closed = true;
                            }
                        }
                        StreamType::Stdout | StreamType::Stderr => panic!("client sent output"),
                        StreamType::Control => match Control::decode(&c.payload) {
                            Ok(Some(Control::Abort)) => self.out_abort = true,
                            Ok(Some(Control::Resize { .. } | Control::Signal { .. })) => {}
                            other => panic!("client sent control {other:?}"),
                        },
                    }
                }
            }
            if self.out_abort {
                assert_ne!(
                    self.client.state(),
                    ClientState::Open,
                    "abort sent while open"
                );
            }
        }
    }

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
            Feed::Slice => self.client.handle_input(bytes),
            Feed::Buf => self.client.handle_input_buf(BytesMut::from(bytes)),
            Feed::InPlace => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    let room = self.client.input_buffer();
                    assert!(!room.is_empty(), "input_buffer gave no room");
                    let n = room.len().min(rest.len());
                    room[..n].copy_from_slice(&rest[..n]);
                    self.client.handle_read(n);
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
        self.client.handle_eof();
        let (events, sent) = self.drain();
        assert!(self.client.is_finished(), "not finished after eof");
        if b.finished {
            assert_eq!((events, sent), (0, 0), "eof after finish did something");
        } else {
            assert!(self.terminal_event, "eof without a terminal event");
        }
    }

    /// Runs one raw-carriage command (`stdin`: one that needs stdin open).
    fn raw_command(
        &mut self,
        name: &str,
        stdin: bool,
        f: impl FnOnce(&mut ClientCall) -> Result<(), CommandError>,
    ) {
        let b = self.before();
        let r = f(&mut self.client);
        let expected = if !self.raw {
            Err("WrongCarriage")
        } else if b.state != ClientState::Open {
            Err("Finished")
        } else if stdin && b.stdin_closed {
            Err("StdinClosed")
        } else {
            Ok(())
        };
        match (&r, expected) {
            (Ok(()), Ok(())) => {}
            (Err(CommandError::WrongCarriage { .. }), Err("WrongCarriage"))
            | (Err(CommandError::Finished), Err("Finished"))
            | (Err(CommandError::StdinClosed), Err("StdinClosed")) => {}
            _ => panic!("{name} gave {r:?}, expected {expected:?}"),
        }
        self.after_command(name, &b, r.is_err());
    }

    fn after_command(&mut self, name: &str, b: &Before, failed: bool) {
        if failed {
            assert_eq!(
                self.client.transmit_len(),
                b.transmit_len,
                "{name} failed but queued"
            );
            assert_eq!(
                self.client.state(),
                b.state,
                "{name} failed but changed state"
            );
            assert_eq!(self.client.is_accepted(), b.accepted);
            assert_eq!(self.client.is_stdin_closed(), b.stdin_closed);
        }
        let (events, _) = self.drain();
        assert_eq!(events, 0, "command {name} emitted an event");
    }

    fn abort(&mut self) {
        let b = self.before();
        let r = self.client.abort();
        match b.state {
            ClientState::Finished => assert_eq!(r, Err(CommandError::Finished)),
            ClientState::Aborting => {
                assert_eq!(r, Ok(()));
                assert_eq!(
                    self.client.transmit_len(),
                    b.transmit_len,
                    "second abort queued"
                );
            }
            ClientState::Open => {
                assert_eq!(r, Ok(()));
                assert_eq!(self.client.state(), ClientState::Aborting);
                self.aborted_by_us = true;
            }
        }
        self.after_command("abort", &b, r.is_err());
    }
}

fn control_payload(sel: u8, a: u16, b: u16) -> Vec<u8> {
    let c = match sel % 10 {
        0 => Control::Exit {
            code: i32::from(a as i16),
        },
        1 => Control::Error(CallError::new(ErrorCode::new("CRASHED"), "boom")),
        2 => Control::Abort,
        3 => Control::Resize { cols: a, rows: b },
        4 => Control::Signal {
            name: "INT".to_owned(),
        },
        5 => Control::Eof,
        6 => return br#"{"type":"later","x":1}"#.to_vec(),
        7 => return br#"{"type":"exit","code":"zero"}"#.to_vec(),
        8 => return br#"{"type":"error","message":"no code"}"#.to_vec(),
        _ => return format!(r#"{{"type":"exit","code":{a},"extra":{b}}}"#).into_bytes(),
    };
    c.to_json()
}

fuzz_target!(|case: Case| {
    let limits = case.limits.limits();
    let carriage = if case.raw {
        Carriage::Raw
    } else {
        Carriage::Json
    };
    let request = Request {
        operation: case.operation,
        input: case.input.value(),
        carriage,
    };
    let client = match ClientCall::new(case.id, request, limits) {
        Ok(c) => c,
        Err(CommandError::FrameTooLarge { len, limit }) => {
            assert!(len > limit);
            assert_eq!(limit, limits.max_frame_len());
            return;
        }
        Err(e) => panic!("ClientCall::new failed with {e:?}"),
    };
    assert_eq!(client.state(), ClientState::Open);
    assert!(client.transmit_len() > 0, "call.requested not queued");
    let mut h = Harness {
        client,
        limits,
        raw: case.raw,
        pop_mode: false,
        aborted_by_us: false,
        terminal_event: false,
        accepted_event: false,
        output_event: false,
        drained_event: false,
        out: OutParser::new(limits.max_frame_len(), DEFAULT_MAX_CHUNK_RECV),
        out_requested: false,
        out_abort: false,
        out_stdin_closed: false,
    };
    let (events, _) = h.drain();
    assert_eq!(events, 0);
    assert!(
        h.out_requested,
        "the first transmission is not call.requested"
    );

    for op in case.ops {
        let id = h.client.id().to_owned();
        let pick = |same: bool| if same { id.clone() } else { format!("{id}x") };
        match op {
            Op::Input { bytes, how } => h.input(&bytes, how),
            Op::Responded {
                same_id,
                output,
                how,
            } => h.input(
                &frame_bytes(&Envelope::new(
                    pick(same_id),
                    Payload::Responded(output.value()),
                )),
                how,
            ),
            Op::Completed { same_id, how } => h.input(
                &frame_bytes(&Envelope::new(pick(same_id), Payload::Completed)),
                how,
            ),
            Op::ErrorFrame { same_id, code, how } => {
                let code = [
                    ErrorCode::NOT_FOUND,
                    ErrorCode::PROTOCOL,
                    ErrorCode::TIMEOUT,
                ][usize::from(code % 3)]
                .clone();
                let payload = Payload::Error(CallError::new(code, "server error"));
                h.input(&frame_bytes(&Envelope::new(pick(same_id), payload)), how)
            }
            Op::AbortedFrame { same_id, how } => h.input(
                &frame_bytes(&Envelope::new(pick(same_id), Payload::Aborted)),
                how,
            ),
            Op::RequestedFrame { how } => {
                let r = Request::new("echo", serde_json::Value::Null, Carriage::Json);
                h.input(
                    &frame_bytes(&Envelope::new(id.clone(), Payload::Requested(r))),
                    how,
                )
            }
            Op::Stdout { data, how } => h.input(&chunk_bytes(StreamType::Stdout, &data), how),
            Op::Stderr { data, how } => h.input(&chunk_bytes(StreamType::Stderr, &data), how),
            Op::StdinChunk { data, how } => h.input(&chunk_bytes(StreamType::Stdin, &data), how),
            Op::DrainedChunk { how } => h.input(&chunk_bytes(StreamType::Stdout, &[]), how),
            Op::ControlChunk { sel, a, b, how } => h.input(
                &chunk_bytes(StreamType::Control, &control_payload(sel, a, b)),
                how,
            ),
            Op::Eof => h.eof(),
            Op::SendStdin(d) => h.raw_command("send_stdin", true, |c| c.send_stdin(Bytes::from(d))),
            Op::CloseStdin => h.raw_command("close_stdin", true, |c| c.close_stdin()),
            Op::Resize(cols, rows) => h.raw_command("resize", false, |c| c.resize(cols, rows)),
            Op::Signal(name) => h.raw_command("signal", false, |c| c.signal(name)),
            Op::Abort => h.abort(),
            Op::PollTransmitBytes => {
                h.pop_mode = !h.pop_mode;
                h.drain();
            }
        }
    }
    assert_eq!(h.out.pending(), 0, "the client transmitted a partial item");
});
