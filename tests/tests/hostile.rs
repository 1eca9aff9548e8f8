//! Hostile input against a live Docker server, as `dockwire serve` runs it
//! (the real `DockerService` with roles, in `PeerLimit` and `CallLog`):
//! raw bytes on raw streams, over a Unix socket and over QUIC with mutual
//! TLS, from a peer whose role is `user`.
//!
//! Each case is written on a stream of its own. Its reply is decoded by
//! hand (frames, then chunks once a raw call is accepted) and must end the
//! way the case says: a typed error where a reply is possible, with the
//! right code and id. After every case the server must still serve: a
//! `system/ping` on a fresh stream answers, an interactive `cat` opened
//! before the first case still echoes, the QUIC connection is still open,
//! no server task panicked, and no container, volume, network or process
//! was left behind. Every read is bounded: a hang fails its case by name.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters as q;
use dockwire_core::Limits;
use dockwire_docker::ownership::Kind;
use dockwire_docker::{Config, DockerService, OwnerKey, Role, Roles};
use dockwire_service::quic::{
    Fingerprint, Identity, QuicOptions, mtls_server_config, peer_by_fingerprint,
    pinned_client_config, serve_quic,
};
use dockwire_service::{CallLog, PeerLimit, Service};
use dockwire_tests::Rt;
use dockwire_tests::docker::{Cleanup, IMAGE, engine, unique};
use dockwire_tests::user_networks::{UserNetworks, is_default_network};
use futures::FutureExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any one read or write may take before the case counts as hung.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long the server has to clean up after a case (kill an exec, remove
/// a container) before what is left counts as leaked.
const CLEANUP: Duration = Duration::from_secs(10);
/// The frame limit `dockwire serve` uses by default.
const LIMIT: usize = 16 << 20;
/// The id of every request a case makes.
const ID: &str = "h1";

#[test]
fn hostile_input_on_unix_sockets_fails_only_its_own_call() {
    run_table(Over::Unix);
}

#[test]
fn hostile_input_on_quic_streams_fails_only_its_own_call() {
    run_table(Over::Quic);
}

// ------------------------------------------------------------------ cases

/// How a case's call must end.
#[derive(Clone, Debug)]
enum Expect {
    /// A terminal error with this code: `call.error`, or the `error`
    /// control message once a raw call was accepted.
    Error(&'static str),
    /// A json answer: one or more `call.responded`, then `call.completed`.
    Answered,
    /// A json answer whose one output is this JSON.
    Output(&'static str),
    /// A raw session that ends with this exit code after stdout that
    /// contains this text.
    Exit(i64, &'static str),
    /// `call.aborted`, or the `abort` control message after acceptance.
    Aborted,
    /// A cancellation: the server ends the stream without a terminal
    /// event (an acceptance and output may come before).
    Cancelled,
    /// The server closes the stream without a byte.
    Nothing,
    /// We reset the stream: nothing can be read.
    Gone,
}

/// What the client does on the case's stream, in order.
#[derive(Clone, Debug)]
enum Step {
    Send(Vec<u8>),
    Wait(u64),
    /// Read until the first frame is whole: it must accept the raw call.
    Accepted,
    /// For this many ms nothing may arrive, and the stream stays open.
    Silent(u64),
    /// Ends our sending side (a Unix shutdown, a QUIC finish).
    CloseWrite,
    /// Drops the stream abruptly (a Unix close, a QUIC reset and stop).
    Reset,
}

struct Case {
    name: String,
    raw: bool,
    /// The id every frame of the reply must carry.
    id: &'static str,
    steps: Vec<Step>,
    expect: Expect,
}

impl Case {
    fn new(name: impl Into<String>) -> Self {
        Case {
            name: name.into(),
            raw: false,
            id: ID,
            steps: Vec::new(),
            expect: Expect::Nothing,
        }
    }

    /// A case whose first frame cannot name its call: the reply's id is "".
    fn anonymous(mut self) -> Self {
        self.id = "";
        self
    }

    fn raw(mut self) -> Self {
        self.raw = true;
        self
    }

    fn send(mut self, bytes: Vec<u8>) -> Self {
        self.steps.push(Step::Send(bytes));
        self
    }

    fn wait(mut self, ms: u64) -> Self {
        self.steps.push(Step::Wait(ms));
        self
    }

    fn accepted(mut self) -> Self {
        self.steps.push(Step::Accepted);
        self
    }

    fn silent(mut self, ms: u64) -> Self {
        self.steps.push(Step::Silent(ms));
        self
    }

    fn close(mut self) -> Self {
        self.steps.push(Step::CloseWrite);
        self
    }

    fn reset(mut self) -> Self {
        self.steps.push(Step::Reset);
        self
    }

    fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }
}

/// The containers the cases aim at.
struct Targets {
    /// The user's own running container.
    own: String,
    /// A running container the user does not own.
    foreign: String,
}

impl Targets {
    /// The shortest prefix of the foreign container's id that the user's own
    /// container does not share: a prefix both share rightly resolves to the
    /// user's own container.
    fn foreign_prefix(&self) -> &str {
        let shared = self
            .foreign
            .bytes()
            .zip(self.own.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        &self.foreign[..=shared]
    }
}

fn cases(t: &Targets) -> Vec<Case> {
    use Expect::*;
    const PROTOCOL: &str = "PROTOCOL";
    const INVALID_INPUT: &str = "INVALID_INPUT";
    const NOT_FOUND: &str = "NOT_FOUND";
    const FORBIDDEN: &str = "FORBIDDEN";
    const CONTAINER_NOT_FOUND: &str = "CONTAINER_NOT_FOUND";
    const NETWORK_NOT_FOUND: &str = "NETWORK_NOT_FOUND";

    let own = t.own.as_str();
    // A call that never answers by itself, to be interrupted.
    let wait = || req(ID, "container/wait", json!({"id": own}));
    let exec = |cmd: &[&str], stdin: bool, tty: bool| json!({"id": own, "cmd": cmd, "stdin": stdin, "tty": tty});
    // An accepted raw session whose process lives until it is killed.
    let sleeping = || {
        Case::new("")
            .raw()
            .send(req_raw(
                ID,
                "container/exec",
                exec(&["sleep", "600"], true, false),
            ))
            .accepted()
    };
    // An accepted interactive `cat` with a terminal: what is typed after
    // the case's input comes back, and closing stdin ends it with 0.
    let tty_cat = |name: String, input: Vec<u8>| Case {
        name,
        ..Case::new("")
            .raw()
            .send(req_raw(ID, "container/exec", exec(&["cat"], true, true)))
            .accepted()
            .send(input)
            .send(chunk(0, b"still-here\n"))
            .send(chunk(0, b""))
            .expect(Exit(0, "still-here"))
    };
    let named = |name: &str, case: Case| Case {
        name: name.into(),
        ..case
    };
    let spec = |extra: Value| {
        let mut spec = json!({"image": IMAGE, "cmd": ["true"], "autoRemove": true});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let mount = |source: &str| json!({"mounts": [{"source": source, "target": "/host"}]});

    let mut cases = vec![
        // ---- frames
        Case::new("an empty stream")
            .close()
            .expect(Nothing),
        Case::new("zero frame length")
            .anonymous()
            .send(vec![0, 0, 0, 0])
            .expect(Error(PROTOCOL)),
        Case::new("frame length one above the limit")
            .anonymous()
            .send(((LIMIT + 1) as u32).to_be_bytes().to_vec())
            .expect(Error(PROTOCOL)),
        Case::new("frame length 4 GiB - 1")
            .anonymous()
            .send(vec![0xff; 4])
            .expect(Error(PROTOCOL)),
        Case::new("frame length above the limit, then a body")
            .anonymous()
            .send(cat([
                ((LIMIT + 1) as u32).to_be_bytes().to_vec(),
                vec![b'x'; 256 * 1024],
            ]))
            .expect(Error(PROTOCOL)),
        Case::new("truncated length, then close")
            .anonymous()
            .send(vec![0, 0])
            .close()
            .expect(Error(PROTOCOL)),
        Case::new("truncated frame, then close")
            .anonymous()
            .send(truncated(&req(ID, "system/ping", json!({}))))
            .close()
            .expect(Error(PROTOCOL)),
        Case::new("truncated frame, silence, then close")
            .anonymous()
            .send(truncated(&req(ID, "system/ping", json!({}))))
            .silent(1500)
            .close()
            .expect(Error(PROTOCOL)),
        Case::new("invalid UTF-8 in a frame")
            .anonymous()
            .send(frame(
                [
                    &br#"{"type":"call.requested","id":""#[..],
                    &[0xff, 0xfe, 0xc3][..],
                    &br#"","payload":{"operationId":"system/ping","input":{}}}"#[..],
                ]
                .concat(),
            ))
            .expect(Error(PROTOCOL)),
        Case::new("invalid JSON")
            .anonymous()
            .send(frame(br#"{"type":"call.requested","id":"h1","#))
            .expect(Error(PROTOCOL)),
        Case::new("JSON that is an array")
            .anonymous()
            .send(frame(br#"["call.requested","h1",{}]"#))
            .expect(Error(PROTOCOL)),
        Case::new("JSON array shaped like a request")
            .anonymous()
            .send(frame(
                br#"["call.requested","h1",{"operationId":"system/ping","input":{}}]"#,
            ))
            .expect(Error(PROTOCOL)),
        Case::new("JSON that is a string")
            .anonymous()
            .send(frame(br#""call.requested""#))
            .expect(Error(PROTOCOL)),
        Case::new("JSON null")
            .anonymous()
            .send(frame(b"null"))
            .expect(Error(PROTOCOL)),
        Case::new("envelope without type")
            .anonymous()
            .send(frame(
                br#"{"id":"h1","payload":{"operationId":"system/ping","input":{}}}"#,
            ))
            .expect(Error(PROTOCOL)),
        Case::new("envelope without id")
            .anonymous()
            .send(frame(
                br#"{"type":"call.requested","payload":{"operationId":"system/ping","input":{}}}"#,
            ))
            .expect(Error(PROTOCOL)),
        Case::new("envelope without payload")
            .anonymous()
            .send(frame(br#"{"type":"call.requested","id":"h1"}"#))
            .expect(Error(PROTOCOL)),
        Case::new("id a number")
            .anonymous()
            .send(frame(
                br#"{"type":"call.requested","id":1,"payload":{"operationId":"system/ping","input":{}}}"#,
            ))
            .expect(Error(PROTOCOL)),
        Case::new("payload a string")
            .send(envelope("call.requested", ID, json!("system/ping")))
            .expect(Error(PROTOCOL)),
        Case::new("extra envelope fields are ignored")
            .send(frame(
                br#"{"type":"call.requested","id":"h1","payload":{"operationId":"system/ping","input":{}},"trace":[1]}"#,
            ))
            .expect(Answered),
        Case::new("payload an array shaped like a request")
            .send(envelope("call.requested", ID, json!(["system/ping", {}])))
            .expect(Error(PROTOCOL)),
        Case::new("operationId a number")
            .send(envelope("call.requested", ID, json!({"operationId": 7})))
            .expect(Error(PROTOCOL)),
        Case::new("carriage \"xml\"")
            .send(envelope(
                "call.requested",
                ID,
                json!({"operationId": "system/ping", "input": {}, "carriage": "xml"}),
            ))
            .expect(Error(PROTOCOL)),
        Case::new("unknown event type")
            .send(envelope("call.maybe", ID, json!({})))
            .expect(Error(PROTOCOL)),
        Case::new("call.responded sent by the client")
            .send(envelope("call.responded", ID, json!({"output": 1})))
            .expect(Error(PROTOCOL)),
        Case::new("call.error sent by the client")
            .send(envelope(
                "call.error",
                ID,
                json!({"code": "INTERNAL", "message": "x", "retryable": false}),
            ))
            .expect(Error(PROTOCOL)),
        Case::new("call.aborted before any request")
            .send(envelope("call.aborted", ID, json!({})))
            .expect(Error(PROTOCOL)),
        // ---- the json carriage after its request
        Case::new("a second call.requested on the same stream")
            .send(wait())
            .wait(100)
            .send(req(ID, "system/ping", json!({})))
            .expect(Error(PROTOCOL)),
        Case::new("call.responded from the client after the request")
            .send(wait())
            .wait(100)
            .send(envelope("call.responded", ID, json!({"output": null})))
            .expect(Error(PROTOCOL)),
        Case::new("a frame with another call's id")
            .send(wait())
            .wait(100)
            .send(envelope("call.aborted", "h2", json!({})))
            .expect(Error(PROTOCOL)),
        Case::new("a stdin chunk on a json call")
            .send(wait())
            .wait(100)
            .send(chunk(0, b"abc"))
            .expect(Error(PROTOCOL)),
        Case::new("a control chunk on a json call")
            .send(wait())
            .wait(100)
            .send(control(json!({"type": "eof"})))
            .expect(Error(PROTOCOL)),
        Case::new("call.aborted right after the request")
            .send(cat([wait(), envelope("call.aborted", ID, json!({}))]))
            .expect(Aborted),
        Case::new("call.aborted with a payload that is not an object")
            .send(wait())
            .wait(100)
            .send(envelope("call.aborted", ID, json!([])))
            .expect(Error(PROTOCOL)),
        // ---- the raw carriage
        Case::new("stdin chunks before acceptance reach the process")
            .raw()
            .send(cat([
                req_raw(ID, "container/exec", exec(&["cat"], true, false)),
                chunk(0, b"early\n"),
                chunk(0, b""),
            ]))
            .expect(Exit(0, "early\n")),
        Case::new("chunk type 7 before acceptance")
            .raw()
            .send(cat([
                req_raw(ID, "container/exec", exec(&["sleep", "600"], true, false)),
                chunk(7, b"x"),
            ]))
            .expect(Error(PROTOCOL)),
        Case::new("abort control before acceptance")
            .raw()
            .send(cat([
                req_raw(ID, "container/exec", exec(&["sleep", "600"], true, false)),
                control(json!({"type": "abort"})),
            ]))
            .expect(Aborted),
        named(
            "abort control after acceptance",
            sleeping()
                .send(control(json!({"type": "abort"})))
                .expect(Aborted),
        ),
        named(
            "chunk type 4 after acceptance",
            sleeping().send(chunk(4, b"x")).expect(Error(PROTOCOL)),
        ),
        named(
            "chunk type 255 after acceptance",
            sleeping().send(chunk(255, b"")).expect(Error(PROTOCOL)),
        ),
        named(
            "a stdout chunk from the client",
            sleeping().send(chunk(1, b"x")).expect(Error(PROTOCOL)),
        ),
        named(
            "a stderr chunk from the client",
            sleeping().send(chunk(2, b"x")).expect(Error(PROTOCOL)),
        ),
        named(
            "chunk length one above 16 MiB",
            sleeping()
                .send(cat([vec![0], ((LIMIT + 1) as u32).to_be_bytes().to_vec()]))
                .expect(Error(PROTOCOL)),
        ),
        named(
            "chunk length 4 GiB - 1",
            sleeping()
                .send(vec![0, 0xff, 0xff, 0xff, 0xff])
                .expect(Error(PROTOCOL)),
        ),
        // PROTOCOL.md §6: a stream that ends inside a chunk is a
        // violation, answered on the client's half-closed stream.
        named(
            "truncated chunk, then close",
            sleeping()
                .send(vec![0, 0, 0, 0, 9, b'x'])
                .close()
                .expect(Error(PROTOCOL)),
        ),
        // After acceptance only chunks flow: a frame's bytes read as the
        // header of a stdin chunk whose payload is still to come, so the
        // close ends the stream inside that chunk.
        named(
            "a frame after acceptance waits as a stdin chunk",
            sleeping()
                .send(envelope("call.aborted", ID, json!({})))
                .silent(500)
                .close()
                .expect(Error(PROTOCOL)),
        ),
        named(
            "stdin after stdin was closed",
            sleeping()
                .send(chunk(0, b""))
                .send(chunk(0, b"late"))
                .expect(Error(PROTOCOL)),
        ),
        named(
            "stdin closed twice",
            sleeping()
                .send(chunk(0, b""))
                .send(control(json!({"type": "eof"})))
                .expect(Error(PROTOCOL)),
        ),
        named(
            "a control chunk of invalid JSON",
            sleeping()
                .send(chunk(3, b"{\"type\":"))
                .expect(Error(PROTOCOL)),
        ),
        named(
            "a control chunk of invalid UTF-8",
            sleeping()
                .send(chunk(3, b"{\"type\":\"\xff\"}"))
                .expect(Error(PROTOCOL)),
        ),
        named(
            "a control chunk that is not an object",
            sleeping().send(chunk(3, b"[1]")).expect(Error(PROTOCOL)),
        ),
        named(
            "a control chunk without a type",
            sleeping()
                .send(control(json!({"cols": 80, "rows": 24})))
                .expect(Error(PROTOCOL)),
        ),
        named(
            "an empty control chunk",
            sleeping().send(chunk(3, b"")).expect(Error(PROTOCOL)),
        ),
        named(
            "an exit control from the client",
            sleeping()
                .send(control(json!({"type": "exit", "code": 0})))
                .expect(Error(PROTOCOL)),
        ),
        named(
            "a signal whose name is a number",
            sleeping()
                .send(control(json!({"type": "signal", "name": 9})))
                .expect(Error(PROTOCOL)),
        ),
        tty_cat(
            "a control of unknown type is ignored".into(),
            control(json!({"type": "dance", "moves": 3})),
        ),
        tty_cat(
            "resize to 0x0 is harmless".into(),
            control(json!({"type": "resize", "cols": 0, "rows": 0})),
        ),
        tty_cat(
            "resize to 65535x65535 is harmless".into(),
            control(json!({"type": "resize", "cols": 65535, "rows": 65535})),
        ),
    ];
    for (what, cols) in [
        ("negative", json!(-1)),
        ("65536", json!(65536)),
        ("a float", json!(80.5)),
        ("a string", json!("80")),
        ("null", json!(null)),
    ] {
        cases.push(named(
            &format!("resize with cols {what}"),
            sleeping()
                .send(control(json!({"type": "resize", "cols": cols, "rows": 24})))
                .expect(Error(PROTOCOL)),
        ));
    }
    for name in ["KILLALL", "", "9999", "../../x", "-9", "0", "SIGKILL\u{0}"] {
        cases.push(tty_cat(
            format!("signal {name:?} is dropped"),
            control(json!({"type": "signal", "name": name})),
        ));
    }
    cases.extend([
        // ---- cancellation by the stream
        Case::new("close after a raw exec request")
            .raw()
            .send(req_raw(
                ID,
                "container/exec",
                exec(&["sleep", "600"], true, false),
            ))
            .close()
            .expect(Cancelled),
        Case::new("close after a json exec request")
            .send(req(
                ID,
                "container/exec",
                exec(&["sleep", "600"], false, false),
            ))
            .close()
            .expect(Cancelled),
        named(
            "close after acceptance",
            sleeping().close().expect(Cancelled),
        ),
        named("reset after acceptance", sleeping().reset().expect(Gone)),
        Case::new("reset after a json exec request")
            .send(req(
                ID,
                "container/exec",
                exec(&["sleep", "600"], false, false),
            ))
            .wait(300)
            .reset()
            .expect(Gone),
        // ---- operation names
        Case::new("operation /docker/../system/ping")
            .send(req(ID, "/docker/../system/ping", json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation docker/container/../../image/remove")
            .send(req(
                ID,
                "docker/container/../../image/remove",
                json!({"image": IMAGE, "force": true}),
            ))
            .expect(Error(NOT_FOUND)),
        Case::new("operation container/../image/remove")
            .send(req(
                ID,
                "container/../image/remove",
                json!({"image": IMAGE, "force": true}),
            ))
            .expect(Error(NOT_FOUND)),
        Case::new("operation %2e%2e/x")
            .send(req(ID, "%2e%2e/x", json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation container/list\\u0000")
            .send(req(ID, "container/list\u{0}", json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation system/ping/")
            .send(req(ID, "system/ping/", json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation SYSTEM/PING")
            .send(req(ID, "SYSTEM/PING", json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation \"\"")
            .send(req(ID, "", json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation \"///\"")
            .send(req(ID, "///", json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("unknown operation")
            .send(req(ID, "container/explode", json!({"id": own})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation name of 64 KiB")
            .send(req(ID, &"x".repeat(64 << 10), json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation name as long as the frame limit allows")
            .send(req(ID, &"x".repeat(LIMIT - 100), json!({})))
            .expect(Error(NOT_FOUND)),
        Case::new("operation name of quotes, whose echo is above the frame limit")
            .send(req(ID, &"\"".repeat(LIMIT / 2 - 100), json!({})))
            .expect(Error(NOT_FOUND)),
        // No frame can carry the id back: the stream ends without one
        // (the core's documented answer for a violation with such an id).
        Case::new("an id too long to echo with the answer")
            .anonymous()
            .send(req(&"i".repeat(LIMIT - 100), "system/version", json!({})))
            .expect(Cancelled),
        // ---- inputs
        Case::new("unknown field in container/list input")
            .send(req(
                ID,
                "container/list",
                json!({"all": true, "everyone": true}),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("container/list input of the wrong type")
            .send(req(ID, "container/list", json!("all")))
            .expect(Error(INVALID_INPUT)),
        Case::new("unknown field privileged in a run")
            .raw()
            .send(req_raw(
                ID,
                "container/run",
                spec(json!({"privileged": true})),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("unknown field pid in a create")
            .send(req(ID, "container/create", spec(json!({"pid": "host"}))))
            .expect(Error(INVALID_INPUT)),
        Case::new("unknown field in a mount")
            .send(req(
                ID,
                "container/create",
                spec(json!({"mounts": [{"source": "v", "target": "/v", "propagation": "shared"}]})),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("unknown field in an exec")
            .send(req(
                ID,
                "container/exec",
                json!({"id": own, "cmd": ["true"], "privileged": true}),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("exec setting the server's exec marker DOCKWIRE_EXEC")
            .send(req(
                ID,
                "container/exec",
                json!({"id": own, "cmd": ["true"], "env": ["DOCKWIRE_EXEC=0123456789abcdef0123456789abcdef"]}),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("raw exec naming the bare exec marker DOCKWIRE_EXEC")
            .raw()
            .send(req_raw(
                ID,
                "container/exec",
                json!({"id": own, "cmd": ["cat"], "stdin": true, "env": ["DOCKWIRE_EXEC"]}),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("exec with an empty cmd, json")
            .send(req(ID, "container/exec", exec(&[], false, false)))
            .expect(Error(INVALID_INPUT)),
        Case::new("exec with an empty cmd, raw")
            .raw()
            .send(req_raw(ID, "container/exec", exec(&[], true, false)))
            .expect(Error(INVALID_INPUT)),
        Case::new("exec with stdin on the json carriage")
            .send(req(ID, "container/exec", exec(&["cat"], true, false)))
            .expect(Error(INVALID_INPUT)),
        Case::new("raw-only container/attach on the json carriage")
            .send(req(ID, "container/attach", json!({"id": own})))
            .expect(Error(INVALID_INPUT)),
        Case::new("json-only system/ping on the raw carriage")
            .raw()
            .send(req_raw(ID, "system/ping", json!({})))
            .expect(Error(INVALID_INPUT)),
        Case::new("json-only container/list on the raw carriage, with stdin")
            .raw()
            .send(cat([
                req_raw(ID, "container/list", json!({})),
                chunk(0, b"x"),
            ]))
            .expect(Error(INVALID_INPUT)),
        // ---- access
        Case::new("run mounting the host root")
            .raw()
            .send(req_raw(ID, "container/run", spec(mount("/"))))
            .expect(Error(FORBIDDEN)),
        Case::new("run mounting the host root, json")
            .send(req(ID, "container/run", spec(mount("/"))))
            .expect(Error(FORBIDDEN)),
        Case::new("create mounting the engine socket")
            .send(req(
                ID,
                "container/create",
                spec(mount("/var/run/docker.sock")),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("create mounting /./ with a read-only flag")
            .send(req(
                ID,
                "container/create",
                spec(json!({"mounts": [{"source": "/./", "target": "/host", "readOnly": true}]})),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("run on the host network")
            .raw()
            .send(req_raw(
                ID,
                "container/run",
                spec(json!({"network": "host"})),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("create on the host network")
            .send(req(
                ID,
                "container/create",
                spec(json!({"network": "host"})),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("create in another container's network")
            .send(req(
                ID,
                "container/create",
                spec(json!({"network": format!("container:{}", t.foreign)})),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("exec into a container the user does not own, raw")
            .raw()
            .send(req_raw(
                ID,
                "container/exec",
                json!({"id": t.foreign, "cmd": ["sleep", "600"], "stdin": true}),
            ))
            .expect(Error(CONTAINER_NOT_FOUND)),
        Case::new("exec into a container the user does not own, json")
            .send(req(
                ID,
                "container/exec",
                json!({"id": t.foreign, "cmd": ["sleep", "600"]}),
            ))
            .expect(Error(CONTAINER_NOT_FOUND)),
        Case::new("exec into a foreign container through a path in the id")
            .send(req(
                ID,
                "container/exec",
                json!({"id": format!("{own}/../{}", t.foreign), "cmd": ["sleep", "600"]}),
            ))
            .expect(Error(CONTAINER_NOT_FOUND)),
        Case::new("exec into a foreign container by its shortest unshared id prefix")
            .send(req(
                ID,
                "container/exec",
                json!({"id": t.foreign_prefix(), "cmd": ["true"]}),
            ))
            .expect(Error(CONTAINER_NOT_FOUND)),
        // ---- names and ownership
        Case::new("create named like a container id")
            .send(req(
                ID,
                "container/create",
                spec(json!({"name": &t.foreign[..12]})),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("create named like a full container id")
            .send(req(
                ID,
                "container/create",
                spec(json!({"name": t.foreign})),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("create named with a slash")
            .send(req(ID, "container/create", spec(json!({"name": "a/b"}))))
            .expect(Error(INVALID_INPUT)),
        Case::new("create named with a leading dash")
            .send(req(ID, "container/create", spec(json!({"name": "-x"}))))
            .expect(Error(INVALID_INPUT)),
        Case::new("create with an empty name")
            .send(req(ID, "container/create", spec(json!({"name": ""}))))
            .expect(Error(INVALID_INPUT)),
        Case::new("create with a 65-character name")
            .send(req(
                ID,
                "container/create",
                spec(json!({"name": "x".repeat(65)})),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("run mounting a volume named with a path")
            .send(req(ID, "container/run", spec(mount("../../etc"))))
            .expect(Error(INVALID_INPUT)),
        Case::new("run mounting a volume named like an id")
            .send(req(ID, "container/run", spec(mount(&t.foreign))))
            .expect(Error(INVALID_INPUT)),
        // A network mode, not an object: refused as `host` is.
        Case::new("create on the operator's default bridge by name")
            .send(req(
                ID,
                "container/create",
                spec(json!({"network": "bridge"})),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("run on a network named by a foreign id")
            .raw()
            .send(req_raw(
                ID,
                "container/run",
                spec(json!({"network": t.foreign})),
            ))
            .expect(Error(NETWORK_NOT_FOUND)),
        Case::new("volume/create with bind driver options")
            .send(req(
                ID,
                "volume/create",
                json!({"name": "v", "driverOpts": {"type": "none", "o": "bind", "device": "/"}}),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("volume/create with the default driver and an option")
            .send(req(
                ID,
                "volume/create",
                json!({"name": "v", "driver": "local", "driverOpts": {"size": "1"}}),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("volume/create with another driver")
            .send(req(
                ID,
                "volume/create",
                json!({"name": "v", "driver": "nfs"}),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("volume/create named with a path")
            .send(req(ID, "volume/create", json!({"name": "../x"})))
            .expect(Error(INVALID_INPUT)),
        Case::new("volume/create with an unknown field")
            .send(req(ID, "volume/create", json!({"name": "v", "opts": {}})))
            .expect(Error(INVALID_INPUT)),
        Case::new("volume/remove of a name with a path")
            .send(req(ID, "volume/remove", json!({"volume": "../x"})))
            .expect(Error("VOLUME_NOT_FOUND")),
        Case::new("network/create named with a space")
            .send(req(ID, "network/create", json!({"name": "a b"})))
            .expect(Error(INVALID_INPUT)),
        Case::new("network/create named like an id")
            .send(req(
                ID,
                "network/create",
                json!({"name": "0123456789abcdef"}),
            ))
            .expect(Error(INVALID_INPUT)),
        Case::new("network/create with driver options")
            .send(req(
                ID,
                "network/create",
                json!({"name": "n", "options": {"com.docker.network.driver.mtu": "1400"}}),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("network/create with the host driver")
            .send(req(
                ID,
                "network/create",
                json!({"name": "n", "driver": "host"}),
            ))
            .expect(Error(FORBIDDEN)),
        Case::new("network/connect of the operator's bridge")
            .send(req(
                ID,
                "network/connect",
                json!({"network": "bridge", "container": own}),
            ))
            .expect(Error(NETWORK_NOT_FOUND)),
        Case::new("network/remove of the operator's bridge")
            .send(req(ID, "network/remove", json!({"network": "bridge"})))
            .expect(Error(NETWORK_NOT_FOUND)),
        Case::new("a list of volumes filtered on another owner's label shows nothing")
            .send(req(
                ID,
                "volume/list",
                json!({"filters": {"label": ["dockwire.owner=someone-else"]}}),
            ))
            .expect(Output(r#"{"Volumes": []}"#)),
        Case::new("a list filtered on another owner's label shows nothing")
            .send(req(
                ID,
                "container/list",
                json!({"all": true, "filters": {"label": ["dockwire.owner=someone-else"]}}),
            ))
            .expect(Output("[]")),
        Case::new("a list filtered on a foreign container's id shows nothing")
            .send(req(
                ID,
                "container/list",
                json!({"all": true, "filters": {"id": [t.foreign]}}),
            ))
            .expect(Output("[]")),
        Case::new("image/remove by a user")
            .send(req(ID, "image/remove", json!({"image": IMAGE})))
            .expect(Error(FORBIDDEN)),
    ]);
    // Registries a user may not pull from (attack 9): the host's loopback
    // by every spelling, link-local, private, unallowed names. Refused
    // before the engine is asked.
    for image in [
        "127.0.0.1:5000/dockwire/testbox",
        "127.1:5000/x",
        "localhost:5000/x",
        "localhost/x",
        "[::1]:5000/x",
        "[::ffff:127.0.0.1]:5000/x",
        "0x7f000001:5000/x",
        "169.254.169.254/latest/x",
        "10.0.0.1:5000/x",
        "172.17.0.1:5000/x",
        "[fd00::1]/x",
        "0.0.0.0:5000/x",
        "registry.example.com/x",
        "docker.io.evil.example/x",
    ] {
        cases.push(
            Case::new(format!("a user's pull from {image}"))
                .send(req(ID, "image/pull", json!({ "image": image })))
                .expect(Error(FORBIDDEN)),
        );
    }
    // ps arguments outside a user's safe set (attack 10).
    for args in [
        "-eoetimes=PID,args",
        "-o pid=X,args",
        "-ef -w",
        "--sort=pid",
        "aux\u{0}",
        "-ef;id",
        "-o pid,,args",
        "-o pid,unknownfield",
        "",
        " ",
        "-e\t-f",
    ] {
        cases.push(
            Case::new(format!("a user's top with ps arguments {args:?}"))
                .send(req(ID, "container/top", json!({"id": own, "psArgs": args})))
                .expect(Error(INVALID_INPUT)),
        );
    }
    // Runtimes a user may not choose (issue 14): only runc and runsc;
    // a name that is not a runtime's is refused for anyone.
    for (runtime, code) in [
        ("io.containerd.runc.v2", FORBIDDEN),
        ("kata", FORBIDDEN),
        ("runc --privileged", INVALID_INPUT),
        ("../runc", INVALID_INPUT),
        ("", INVALID_INPUT),
    ] {
        cases.push(
            Case::new(format!("a user's create under runtime {runtime:?}"))
                .send(req(
                    ID,
                    "container/create",
                    spec(json!({ "runtime": runtime })),
                ))
                .expect(Error(code)),
        );
    }
    // A cancellation at every moment of an exec's and a run's setup: the
    // process or the container must go with the call. (An exec's window,
    // its start request in flight, is a millisecond or two wide: these
    // catch it now and then, not every run.)
    for ms in [0, 1, 2, 3, 5, 10, 20, 30, 45, 60, 80, 120] {
        cases.push(
            Case::new(format!("close {ms} ms after a raw exec request"))
                .raw()
                .send(req_raw(
                    ID,
                    "container/exec",
                    exec(&["sleep", "600"], true, false),
                ))
                .wait(ms)
                .close()
                .expect(Cancelled),
        );
    }
    for ms in [0, 10, 20, 30, 45, 60, 80, 120, 200] {
        cases.push(
            Case::new(format!("close {ms} ms after a raw run request"))
                .raw()
                .send(req_raw(
                    ID,
                    "container/run",
                    spec(json!({"cmd": ["sleep", "600"], "stdin": true})),
                ))
                .wait(ms)
                .close()
                .expect(Cancelled),
        );
    }
    cases
}

// ---------------------------------------------------------------- encoding

fn frame(body: impl AsRef<[u8]>) -> Vec<u8> {
    let body = body.as_ref();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn envelope(kind: &str, id: &str, payload: Value) -> Vec<u8> {
    frame(serde_json::to_vec(&json!({"type": kind, "id": id, "payload": payload})).unwrap())
}

fn req(id: &str, operation: &str, input: Value) -> Vec<u8> {
    let payload = json!({"operationId": operation, "input": input});
    envelope("call.requested", id, payload)
}

fn req_raw(id: &str, operation: &str, input: Value) -> Vec<u8> {
    let payload = json!({"operationId": operation, "input": input, "carriage": "raw"});
    envelope("call.requested", id, payload)
}

fn chunk(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![stream];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn control(message: Value) -> Vec<u8> {
    chunk(3, &serde_json::to_vec(&message).unwrap())
}

fn cat<const N: usize>(parts: [Vec<u8>; N]) -> Vec<u8> {
    parts.concat()
}

/// The first half of a frame.
fn truncated(frame: &[u8]) -> Vec<u8> {
    frame[..frame.len() / 2].to_vec()
}

// ---------------------------------------------------------------- decoding

/// How a reply ended.
#[derive(Clone, Debug, Default, PartialEq)]
enum End {
    /// The stream ended with no terminal event.
    #[default]
    Open,
    Completed,
    /// `call.aborted`, or the `abort` control message.
    Aborted,
    /// `call.error` or the `error` control message: its code.
    Error(String),
    Exit(i64),
}

/// A reply, decoded strictly.
#[derive(Debug, Default)]
struct Reply {
    ids: Vec<String>,
    responded: usize,
    outputs: Vec<Value>,
    accepted: bool,
    stdout: Vec<u8>,
    drained: bool,
    end: End,
}

fn be32(bytes: &[u8]) -> usize {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
}

/// Decodes what the server sent on one call's stream; any breach of the
/// protocol by the server is an error.
fn decode(bytes: &[u8], raw: bool) -> Result<Reply, String> {
    let mut r = Reply::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        if r.end != End::Open {
            return Err(format!(
                "{} bytes after the terminal {:?}",
                rest.len(),
                r.end
            ));
        }
        if raw && r.accepted {
            if rest.len() < 5 {
                return Err(format!("a chunk header cut short: {rest:?}"));
            }
            let (kind, len) = (rest[0], be32(&rest[1..5]));
            if rest.len() - 5 < len {
                return Err(format!("a chunk cut short: {len} bytes announced"));
            }
            let payload = &rest[5..5 + len];
            rest = &rest[5 + len..];
            match kind {
                1 | 2 if r.drained => return Err("output after the drained sentinel".into()),
                1 if payload.is_empty() => r.drained = true,
                1 => r.stdout.extend_from_slice(payload),
                2 => {}
                3 => {
                    let c: Value = serde_json::from_slice(payload)
                        .map_err(|e| format!("a control that is not JSON: {e}"))?;
                    r.end = match c["type"].as_str() {
                        Some("exit") if !r.drained => {
                            return Err("exit before the drained sentinel".into());
                        }
                        Some("exit") => End::Exit(c["code"].as_i64().ok_or("exit without code")?),
                        Some("error") => End::Error(code_of(&c)?),
                        Some("abort") => End::Aborted,
                        _ => return Err(format!("an unexpected control {c}")),
                    };
                }
                other => return Err(format!("a chunk of type {other} from the server")),
            }
            continue;
        }
        if rest.len() < 4 {
            return Err(format!("a frame header cut short: {rest:?}"));
        }
        let len = be32(rest);
        if len == 0 || len > LIMIT || rest.len() - 4 < len {
            return Err(format!("a bad or cut frame: {len} bytes announced"));
        }
        let env: Value = serde_json::from_slice(&rest[4..4 + len])
            .map_err(|e| format!("a frame that is not JSON: {e}"))?;
        rest = &rest[4 + len..];
        let id = env["id"].as_str().ok_or("a frame without id")?;
        r.ids.push(id.to_owned());
        let payload = &env["payload"];
        match env["type"].as_str() {
            Some("call.responded") if raw && r.accepted => {
                return Err("a second call.responded on the raw carriage".into());
            }
            Some("call.responded") => {
                if payload.get("output").is_none() {
                    return Err(format!("call.responded without output: {env}"));
                }
                r.responded += 1;
                r.outputs.push(payload["output"].clone());
                r.accepted = raw;
            }
            Some("call.completed") if raw => return Err("call.completed on a raw call".into()),
            Some("call.completed") => r.end = End::Completed,
            Some("call.aborted") => r.end = End::Aborted,
            Some("call.error") => r.end = End::Error(code_of(payload)?),
            _ => return Err(format!("an unexpected frame {env}")),
        }
    }
    Ok(r)
}

/// The code of an error, checking the rest of its shape.
fn code_of(e: &Value) -> Result<String, String> {
    let code = e["code"]
        .as_str()
        .ok_or(format!("an error without code: {e}"))?;
    let message = e["message"]
        .as_str()
        .ok_or(format!("an error without message: {e}"))?;
    if !e["retryable"].is_boolean() {
        return Err(format!("an error without retryable: {e}"));
    }
    if code == "PROTOCOL" && message.len() > 1024 {
        return Err(format!("a PROTOCOL message of {} bytes", message.len()));
    }
    Ok(code.to_owned())
}

/// Whether `reply` is what `case` expects.
fn check(case: &Case, reply: &Reply) -> Result<(), String> {
    if let Some(id) = reply.ids.iter().find(|id| *id != case.id) {
        return Err(format!(
            "a frame with id {:?}, expected {:?}",
            trim(id),
            case.id
        ));
    }
    let ok = match (&case.expect, &reply.end) {
        (Expect::Error(code), End::Error(got)) => code == got,
        (Expect::Answered, End::Completed) => reply.responded > 0,
        (Expect::Output(want), End::Completed) => {
            reply.outputs.len() == 1
                && reply.outputs[0] == serde_json::from_str::<Value>(want).unwrap()
        }
        (Expect::Exit(code, out), End::Exit(got)) => {
            code == got && String::from_utf8_lossy(&reply.stdout).contains(out)
        }
        (Expect::Aborted, End::Aborted) => true,
        (Expect::Cancelled, End::Open) => true,
        (Expect::Nothing, End::Open) => reply.ids.is_empty(),
        _ => false,
    };
    match ok {
        true => Ok(()),
        false => Err(format!(
            "expected {:?}, got {:?} (stdout {:?})",
            case.expect,
            reply.end,
            trim(&String::from_utf8_lossy(&reply.stdout))
        )),
    }
}

fn trim(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

// ---------------------------------------------------------------- streams

#[derive(Clone, Copy, Debug, PartialEq)]
enum Over {
    Unix,
    Quic,
}

enum Wire {
    Unix(tokio::net::UnixStream),
    Quic(quinn::SendStream, quinn::RecvStream),
    Gone,
}

/// One raw stream to the server, and what came back on it.
struct Stream {
    wire: Wire,
    got: Vec<u8>,
    eof: bool,
    /// Things worth knowing that are not failures (a write refused after
    /// the server stopped reading, a read that ended in a reset).
    notes: Vec<String>,
}

impl Stream {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let write = async {
            match &mut self.wire {
                Wire::Unix(s) => s.write_all(bytes).await.map_err(|e| e.to_string()),
                Wire::Quic(send, _) => send.write_all(bytes).await.map_err(|e| e.to_string()),
                Wire::Gone => Ok(()),
            }
        };
        match tokio::time::timeout(PATIENCE, write).await {
            Err(_) => Err(format!("a write of {} bytes blocked", bytes.len())),
            Ok(Err(e)) => {
                self.notes.push(format!("write refused: {e}"));
                Ok(())
            }
            Ok(Ok(())) => Ok(()),
        }
    }

    async fn close_write(&mut self) {
        match &mut self.wire {
            Wire::Unix(s) => {
                let _ = s.shutdown().await;
            }
            Wire::Quic(send, _) => {
                let _ = send.finish();
            }
            Wire::Gone => {}
        }
    }

    fn reset(&mut self) {
        if let Wire::Quic(send, recv) = &mut self.wire {
            let _ = send.reset(0u32.into());
            let _ = recv.stop(0u32.into());
        }
        self.wire = Wire::Gone;
        self.eof = true;
    }

    /// One read, by `deadline`: `Err` when nothing came by then.
    async fn read_more(&mut self, deadline: Instant) -> Result<(), ()> {
        if self.eof {
            return Ok(());
        }
        let mut buf = vec![0u8; 256 * 1024];
        let read = async {
            match &mut self.wire {
                Wire::Unix(s) => s.read(&mut buf).await.map_err(|e| e.to_string()),
                Wire::Quic(_, recv) => match recv.read(&mut buf).await {
                    Ok(n) => Ok(n.unwrap_or(0)),
                    Err(e) => Err(e.to_string()),
                },
                Wire::Gone => Ok(0),
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, read).await {
            Err(_) => Err(()),
            Ok(Ok(0)) => {
                self.eof = true;
                Ok(())
            }
            Ok(Ok(n)) => {
                self.got.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Ok(Err(e)) => {
                self.notes.push(format!("read ended: {e}"));
                self.eof = true;
                Ok(())
            }
        }
    }

    async fn read_to_end(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        while !self.eof {
            if self.read_more(deadline).await.is_err() {
                return Err(format!(
                    "hung: the stream did not end within {PATIENCE:?}; got {} bytes: {}",
                    self.got.len(),
                    preview(&self.got)
                ));
            }
        }
        Ok(())
    }

    /// Reads until the first frame is whole; it must be `call.responded`.
    async fn accepted(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.got.len() >= 4 && self.got.len() >= 4 + be32(&self.got) {
                let env: Value = serde_json::from_slice(&self.got[4..4 + be32(&self.got)])
                    .map_err(|e| format!("an unreadable first frame: {e}"))?;
                if env["type"] != "call.responded" {
                    return Err(format!("not accepted: {env}"));
                }
                return Ok(());
            }
            if self.eof {
                return Err(format!(
                    "the stream ended before acceptance: {}",
                    preview(&self.got)
                ));
            }
            if self.read_more(deadline).await.is_err() {
                return Err(format!("hung: no acceptance within {PATIENCE:?}"));
            }
        }
    }

    async fn silent(&mut self, ms: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_millis(ms);
        match self.read_more(deadline).await {
            Err(()) => Ok(()),
            Ok(()) if self.eof => Err("the server closed the stream early".into()),
            Ok(()) => Err(format!("the server answered early: {}", preview(&self.got))),
        }
    }
}

fn preview(bytes: &[u8]) -> String {
    trim(&String::from_utf8_lossy(bytes))
}

// ---------------------------------------------------------------- the server

/// A live server and the client's way to it.
struct Live {
    over: Over,
    socket: Option<PathBuf>,
    connection: Option<quinn::Connection>,
    _endpoints: Vec<quinn::Endpoint>,
}

impl Live {
    /// Serves the engine with `dockwire serve`'s layers; the client (uid
    /// or identity) is a `user`, and what it creates is labelled `owner`.
    async fn start(over: Over, owner: &str) -> Live {
        let _ = engine();
        let docker = Docker::connect_with_local_defaults().unwrap();
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        let unix_peer = format!("uid:{uid}");
        // Roles follow keys: the Unix peer's uid, the QUIC peer's fingerprint.
        let alice = Identity::generate("dockwire").unwrap();
        let alice_key = format!("sha256:{}", alice.fingerprint());
        let roles =
            Roles::new(move |key| (key == unix_peer || key == alice_key).then_some(Role::User));
        let config = Config::from_env()
            .with_roles(roles)
            .with_owner(owner)
            .with_owner_key(owner_key());
        let service: Arc<dyn Service> = Arc::new(CallLog::new(PeerLimit::new(
            DockerService::new(docker, config),
            1024,
        )));
        let limits = Limits::default();
        match over {
            Over::Unix => {
                let dir = std::env::temp_dir().join(unique("hostile"));
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join("dockwire.sock");
                let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
                let runtime = Rt::Tokio.runtime();
                let listener = runtime.listen_unix(listener).unwrap();
                tokio::spawn(runtime.serve(listener, service, limits));
                Live {
                    over,
                    socket: Some(path),
                    connection: None,
                    _endpoints: Vec::new(),
                }
            }
            Over::Quic => {
                let options = QuicOptions::default();
                let server = Identity::generate("dockwire").unwrap();
                let alice_fp = alice.fingerprint();
                let trusted = Arc::new(move |fp: &Fingerprint| *fp == alice_fp);
                let names = Arc::new(move |fp: &Fingerprint| -> Option<Arc<str>> {
                    (*fp == alice_fp).then(|| "alice".into())
                });
                let config = mtls_server_config(&server, trusted, &options).unwrap();
                let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
                let endpoint = Rt::Tokio
                    .runtime()
                    .quic_endpoint(local, Some(config))
                    .unwrap();
                let addr = endpoint.local_addr().unwrap();
                let spawn = Rt::Tokio.spawner();
                let serve = serve_quic(
                    endpoint.clone(),
                    service,
                    spawn.clone(),
                    limits,
                    peer_by_fingerprint(names),
                );
                spawn.spawn(serve.boxed());
                let server_fp = server.fingerprint();
                let pin = Arc::new(move |fp: &Fingerprint| *fp == server_fp);
                let mut client = Rt::Tokio.runtime().quic_endpoint(local, None).unwrap();
                client.set_default_client_config(
                    pinned_client_config(&alice, pin, &options).unwrap(),
                );
                let connection = client.connect(addr, "dockwire").unwrap().await.unwrap();
                Live {
                    over,
                    socket: None,
                    connection: Some(connection),
                    _endpoints: vec![endpoint, client],
                }
            }
        }
    }

    async fn open(&self) -> Result<Stream, String> {
        let open = async {
            match self.over {
                Over::Unix => {
                    let path = self.socket.as_ref().unwrap();
                    let s = tokio::net::UnixStream::connect(path).await;
                    s.map(Wire::Unix).map_err(|e| e.to_string())
                }
                Over::Quic => {
                    let c = self.connection.as_ref().unwrap();
                    let bi = c.open_bi().await;
                    bi.map(|(send, recv)| Wire::Quic(send, recv))
                        .map_err(|e| e.to_string())
                }
            }
        };
        let wire = tokio::time::timeout(PATIENCE, open)
            .await
            .map_err(|_| "hung: opening a stream".to_owned())?
            .map_err(|e| format!("cannot open a stream: {e}"))?;
        Ok(Stream {
            wire,
            got: Vec::new(),
            eof: false,
            notes: Vec::new(),
        })
    }

    /// Whether the QUIC connection was closed (by a case, it should not).
    fn closed(&self) -> Option<String> {
        let reason = self.connection.as_ref()?.close_reason()?;
        Some(reason.to_string())
    }

    /// A `system/ping` on a fresh stream answers.
    async fn ping(&self) -> Result<(), String> {
        let mut s = self.open().await?;
        s.send(&req("ping", "system/ping", json!({}))).await?;
        s.read_to_end().await?;
        let reply = decode(&s.got, false)?;
        match (reply.end, reply.responded) {
            (End::Completed, 1) => Ok(()),
            (end, n) => Err(format!("ping: {n} outputs, then {end:?}")),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(dir) = self.socket.as_ref().and_then(|p| p.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An interactive `cat` kept open across the cases: each echo proves the
/// server still serves a call that was running all along.
struct Echo {
    stream: Stream,
    /// Bytes of the session's stdout consumed so far.
    seen: usize,
    n: usize,
}

impl Echo {
    async fn open(live: &Live, own: &str) -> Result<Echo, String> {
        let mut stream = live.open().await?;
        let input = json!({"id": own, "cmd": ["cat"], "stdin": true});
        stream
            .send(&req_raw("echo", "container/exec", input))
            .await?;
        stream.accepted().await?;
        let seen = 4 + be32(&stream.got);
        Ok(Echo { stream, seen, n: 0 })
    }

    async fn echo(&mut self) -> Result<(), String> {
        self.n += 1;
        let line = format!("echo-{}\n", self.n);
        self.stream.send(&chunk(0, line.as_bytes())).await?;
        let deadline = Instant::now() + PATIENCE;
        let mut out = Vec::new();
        while out.len() < line.len() {
            // Whole chunks from `seen` on: stdout only, until the line.
            let rest = &self.stream.got[self.seen..];
            if rest.len() >= 5 && rest.len() >= 5 + be32(&rest[1..5]) {
                let len = be32(&rest[1..5]);
                if rest[0] != 1 || len == 0 {
                    return Err(format!("the session sent {}", preview(rest)));
                }
                out.extend_from_slice(&rest[5..5 + len]);
                self.seen += 5 + len;
                continue;
            }
            if self.stream.eof {
                return Err(format!("the session ended: {}", preview(rest)));
            }
            if self.stream.read_more(deadline).await.is_err() {
                return Err(format!("hung: no echo of {line:?}"));
            }
        }
        if out != line.as_bytes() {
            return Err(format!("echoed {:?}, expected {line:?}", preview(&out)));
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), String> {
        self.stream.send(&chunk(0, b"")).await?;
        self.stream.read_to_end().await?;
        let reply = decode(&self.stream.got, true)?;
        match reply.end {
            End::Exit(0) => Ok(()),
            end => Err(format!("the echo session ended with {end:?}")),
        }
    }
}

// ---------------------------------------------------------------- the engine

/// What the engine holds for this test: the containers, volumes and
/// networks labelled with its owner and the processes in the target
/// containers.
#[derive(Clone, Debug, PartialEq)]
struct Holdings {
    containers: BTreeSet<String>,
    /// The user's volumes and networks (`volume NAME`, `network ID`).
    objects: BTreeSet<String>,
    own: BTreeSet<String>,
    foreign: BTreeSet<String>,
}

async fn holdings(docker: &Docker, owner: &str, t: &Targets) -> Result<Holdings, String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("dockwire.owner={owner}")])]);
    let options = q::ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let listed = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| format!("listing containers: {e}"))?;
    let containers = listed.into_iter().filter_map(|c| c.id).collect();
    let label = || HashMap::from([("label".to_owned(), vec![format!("dockwire.owner={owner}")])]);
    let volumes = docker
        .list_volumes(Some(q::ListVolumesOptions {
            filters: Some(label()),
        }))
        .await
        .map_err(|e| format!("listing volumes: {e}"))?;
    let networks = docker
        .list_networks(Some(q::ListNetworksOptions {
            filters: Some(label()),
        }))
        .await
        .map_err(|e| format!("listing networks: {e}"))?;
    let objects = volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| format!("volume {}", v.name))
        .chain(
            networks
                .into_iter()
                // The user's default network (made on its first container)
                // is the user's to keep, not a leak.
                .filter(|n| !is_default_network(n.name.as_deref().unwrap_or_default()))
                .filter_map(|n| n.id)
                .map(|id| format!("network {id}")),
        )
        .collect();
    Ok(Holdings {
        containers,
        objects,
        own: pids(docker, &t.own).await?,
        foreign: pids(docker, &t.foreign).await?,
    })
}

/// The pids of the processes in container `id` (the host's; Podman's
/// `top` gives the container's, in whole `ps` lines split here: the
/// columns before the command hold no space).
async fn pids(docker: &Docker, id: &str) -> Result<BTreeSet<String>, String> {
    let top = docker
        .top_processes(id, None::<q::TopOptions>)
        .await
        .map_err(|e| format!("top of {id}: {e}"))?;
    let titles = top.titles.unwrap_or_default();
    let column = titles
        .iter()
        .flat_map(|t| t.split_whitespace())
        .position(|t| t == "PID")
        .ok_or("no PID column")?;
    Ok(top
        .processes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            p.iter()
                .flat_map(|f| f.split_whitespace())
                .nth(column)
                .map(String::from)
        })
        .collect())
}

/// Waits for the engine to hold what it held before the case; what it
/// still holds after [`CLEANUP`] is reported and removed.
async fn settled(
    docker: &Docker,
    owner: &str,
    t: &Targets,
    before: &Holdings,
) -> Result<(), String> {
    let deadline = Instant::now() + CLEANUP;
    loop {
        let now = holdings(docker, owner, t).await?;
        if now == *before {
            return Ok(());
        }
        if Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let mut leaked = String::new();
        for id in now.containers.difference(&before.containers) {
            let state = match docker.inspect_container(id, None).await {
                Ok(info) => info
                    .state
                    .and_then(|s| s.status)
                    .map_or_else(String::new, |s| s.to_string()),
                Err(e) => e.to_string(),
            };
            let _ = write!(leaked, "container {} ({state}) ", &id[..12]);
            let options = q::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            let _ = docker.remove_container(id, Some(options)).await;
        }
        for object in now.objects.difference(&before.objects) {
            let _ = write!(leaked, "{object} ");
            let _ = match object.split_once(' ') {
                Some(("volume", name)) => {
                    docker
                        .remove_volume(name, None::<q::RemoveVolumeOptions>)
                        .await
                }
                Some((_, id)) => docker.remove_network(id).await,
                None => Ok(()),
            };
        }
        let extra = now.own.difference(&before.own);
        for pid in extra.chain(now.foreign.difference(&before.foreign)) {
            let _ = write!(leaked, "pid {pid} ({}) ", command_of(pid));
            let _ = std::process::Command::new("kill")
                .args(["-9", pid])
                .status();
        }
        let gone = before.containers.difference(&now.containers).count()
            + before.own.difference(&now.own).count()
            + before.foreign.difference(&now.foreign).count();
        if gone > 0 {
            let _ = write!(leaked, "and {gone} of the test's own went away");
        }
        return Err(format!("left behind after {CLEANUP:?}: {leaked}"));
    }
}

fn command_of(pid: &str) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The key the server under test seals ownership with.
fn owner_key() -> OwnerKey {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    OwnerKey::from_bytes(KEY.get_or_init(|| OwnerKey::generate().unwrap()))
}

/// A running `sleep` container of the test image with these labels,
/// `sealed` with the server's key (as the server seals what it makes).
async fn sleeper(
    docker: &Docker,
    cleanup: &Cleanup,
    labels: &[(&str, &str)],
    sealed: bool,
) -> String {
    let name = unique("hostile");
    let mut labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if sealed {
        owner_key().seal_labels(Kind::Container, &name, &mut labels);
    }
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        labels: Some(labels),
        ..Default::default()
    };
    let options = q::CreateContainerOptions {
        name: Some(name),
        ..Default::default()
    };
    let created = docker.create_container(Some(options), body).await.unwrap();
    cleanup.add(&created.id);
    docker
        .start_container(&created.id, None::<q::StartContainerOptions>)
        .await
        .unwrap();
    created.id
}

// ---------------------------------------------------------------- panics

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Notes every panic of a server task (any thread but a test's own).
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("unnamed");
            if !name.contains("hostile_input_on_") {
                PANICS.lock().unwrap().push(format!("{name}: {info}"));
            }
            previous(info);
        }));
    });
}

fn panics() -> usize {
    PANICS.lock().unwrap().len()
}

// ---------------------------------------------------------------- running

/// Plays one case on a fresh stream and checks its reply.
async fn play(live: &Live, case: &Case) -> Result<Vec<String>, String> {
    let mut s = live.open().await?;
    for step in &case.steps {
        match step {
            Step::Send(bytes) => s.send(bytes).await?,
            Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Step::Accepted => s.accepted().await?,
            Step::Silent(ms) => s.silent(*ms).await?,
            Step::CloseWrite => s.close_write().await,
            Step::Reset => s.reset(),
        }
    }
    if let Expect::Gone = case.expect {
        return Ok(s.notes);
    }
    s.read_to_end().await?;
    let reply = decode(&s.got, case.raw)?;
    check(case, &reply)?;
    Ok(s.notes)
}

fn run_table(over: Over) {
    watch_panics();
    Rt::Tokio.block_on(async move {
        let started = Instant::now();
        let docker = engine();
        let owner = unique(&format!("hostile-{over:?}").to_lowercase());
        // The network the user's containers join, removed after them.
        let _networks = UserNetworks::of([owner.clone()]);
        let cleanup = Cleanup::default();
        let own = sleeper(
            &docker,
            &cleanup,
            &[("dockwire.managed", "true"), ("dockwire.owner", &owner)],
            true,
        )
        .await;
        let foreign = sleeper(
            &docker,
            &cleanup,
            &[("dockwire.owner", "someone-else")],
            false,
        )
        .await;
        let targets = Targets { own, foreign };
        let live = Live::start(over, &owner).await;
        live.ping()
            .await
            .expect("the server answers before any case");
        let initial = holdings(&docker, &owner, &targets).await.unwrap();
        let mut echo = Echo::open(&live, &targets.own).await.unwrap();
        echo.echo().await.unwrap();
        let mut before = holdings(&docker, &owner, &targets).await.unwrap();

        let cases = cases(&targets);
        let mut failed = Vec::new();
        let mut table = String::new();
        for case in &cases {
            let at = Instant::now();
            let panicked = panics();
            let mut problems = Vec::new();
            let notes = match play(&live, case).await {
                Ok(notes) => notes,
                Err(e) => {
                    problems.push(e);
                    Vec::new()
                }
            };
            // What a cancelled setup made may reach the engine a little
            // after the stream ended.
            if matches!(
                case.expect,
                Expect::Cancelled | Expect::Gone | Expect::Aborted
            ) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if let Some(reason) = live.closed() {
                problems.push(format!("the whole connection closed: {reason}"));
                break;
            }
            if let Err(e) = live.ping().await {
                problems.push(format!("the next ping failed: {e}"));
            }
            if let Err(e) = echo.echo().await {
                problems.push(format!("the running session stopped echoing: {e}"));
                match Echo::open(&live, &targets.own).await {
                    Ok(fresh) => echo = fresh,
                    Err(e) => problems.push(format!("and a new one does not open: {e}")),
                }
            }
            if let Err(e) = settled(&docker, &owner, &targets, &before).await {
                problems.push(e);
                // What is left was removed; start again from what is.
                before = holdings(&docker, &owner, &targets).await.unwrap();
            }
            if panics() > panicked {
                let all = PANICS.lock().unwrap();
                problems.push(format!(
                    "a server task panicked: {}",
                    all[panicked..].join("; ")
                ));
            }
            let status = if problems.is_empty() { "ok  " } else { "FAIL" };
            let _ = writeln!(
                table,
                "{status} {:>6} ms  {}{}",
                at.elapsed().as_millis(),
                case.name,
                match notes.is_empty() {
                    true => String::new(),
                    false => format!("  [{}]", notes.join("; ")),
                }
            );
            for p in &problems {
                let _ = writeln!(table, "       {p}");
            }
            if !problems.is_empty() {
                failed.push(format!("{}: {}", case.name, problems.join("; ")));
            }
        }
        if live.closed().is_none() {
            if let Err(e) = echo.finish().await {
                failed.push(format!("the running session's end: {e}"));
            }
        }
        // Late arrivals of any case, and the echo session's own process.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Err(e) = settled(&docker, &owner, &targets, &initial).await {
            failed.push(format!("after the last case: {e}"));
        }
        println!(
            "{over:?}: {} cases in {:.1} s\n{table}",
            cases.len(),
            started.elapsed().as_secs_f64()
        );
        assert!(
            failed.is_empty(),
            "{over:?}: {} of {} cases failed:\n{}",
            failed.len(),
            cases.len(),
            failed.join("\n")
        );
    });
}
