//! Detached processes (`process/*`, issue 15) against the real engine,
//! over QUIC with mutual TLS (the tenancy rig: alice and bob are users,
//! root an admin): output replayed exactly from any offset, before and
//! after the process ends; a buffer smaller than the output says exactly
//! what it dropped; one peer's processes are invisible to another; the
//! operator's caps hold; stdin goes to one attacher at a time; a running
//! process holds its container's idle timeout, and ends `lost` with its
//! container; a restarted server's sweep kills what a crashed one left
//! running. And, next to them, the old rule: a client that aborts or
//! vanishes still kills its non-detached exec at once.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService};
use dockwire_service::{CallLog, ClientError, PeerLimit, RawSession};
use dockwire_tests::Rt;
use dockwire_tests::docker::{self, eventually, runs};
use dockwire_tests::tenancy::{self, Tenancy};
use futures::TryStreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use sha2::{Digest, Sha256};

/// Runs `f` on tokio, failing the test after `secs`.
fn block_on<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    Rt::Tokio.block_on(async {
        tokio::time::timeout(Duration::from_secs(secs), f)
            .await
            .unwrap_or_else(|_| panic!("the test hung for {secs} s"))
    })
}

/// `seq 1 n`'s output.
fn seq(from: u64, to: u64) -> Vec<u8> {
    (from..=to)
        .flat_map(|n| format!("{n}\n").into_bytes())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Starts `cmd` detached in `container` as `who`, keeping `buffer` bytes.
async fn start(who: &DockerClient, container: &str, cmd: &[&str], buffer: Option<u64>) -> String {
    let mut input = ProcessStart::new(container, cmd.iter().copied());
    input.buffer = buffer;
    who.query(&input).await.unwrap().id
}

/// Attaches to `id` from `from`, read-only.
async fn attach(who: &DockerClient, id: &str, from: AttachFrom) -> (ProcessAttached, RawSession) {
    let input = ProcessAttach {
        id: id.into(),
        from,
        stdin: false,
    };
    who.attach_process(&input).await.unwrap()
}

/// Everything an attach sends: stdout, stderr and the exit code.
async fn drain(session: RawSession) -> (Vec<u8>, Vec<u8>, i32) {
    let RawSession {
        mut stdout,
        mut stderr,
        exit,
        ..
    } = session;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (a, b) = futures::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    a.unwrap();
    b.unwrap();
    (out, err, exit.await.unwrap())
}

/// Reads at least `n` bytes of stdout, then drops the session (the
/// client goes away mid-stream): what it read.
async fn read_some_then_leave(session: RawSession, n: usize) -> Vec<u8> {
    let mut stdout = session.stdout;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < n {
        let k = stdout.read(&mut buf).await.unwrap();
        assert!(k > 0, "the output ended after {} bytes", got.len());
        got.extend_from_slice(&buf[..k]);
    }
    got
}

/// The process `id` as `who` lists it.
async fn listed(who: &DockerClient, id: &str) -> Option<ProcessInfo> {
    let all = who.query(&ProcessList {}).await.unwrap();
    all.into_iter().find(|p| p.id == id)
}

async fn wait(who: &DockerClient, id: &str) -> Result<i64, ClientError> {
    who.query(&ProcessWait { id: id.into() })
        .await
        .map(|e| e.exit_code)
}

async fn remove(who: &DockerClient, id: &str) {
    who.query(&ProcessRemove { id: id.into() }).await.unwrap();
}

// ------------------------------------------------------------------ tests

#[test]
fn a_detached_seq_is_replayed_exactly_mid_run_and_after_it_ends() {
    let t = Tenancy::new();
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        // Two halves with a pause between: the second attach comes while
        // the process runs.
        let id = start(
            &t.alice,
            &c,
            &["sh", "-c", "seq 1 500000; sleep 3; seq 500001 1000000"],
            Some(8 << 20),
        )
        .await;
        assert!(id.starts_with("p-") && id.len() == 34, "{id}");
        let whole = seq(1, 1_000_000);

        // A first attacher reads from 0 and goes away after 1 MiB.
        let (first, session) = attach(&t.alice, &id, AttachFrom::Offset(0)).await;
        assert_eq!(first.stdout, ReplayStart { from: 0, missed: 0 });
        let head = read_some_then_leave(session, 1 << 20).await;
        let seen = head.len() as u64;

        // A second attaches at the offset it had, while the process runs.
        let info = listed(&t.alice, &id).await.unwrap();
        assert_eq!(info.state, ProcessState::Running, "{info:?}");
        let (second, session) = attach(
            &t.alice,
            &id,
            AttachFrom::Streams {
                stdout: seen,
                stderr: 0,
            },
        )
        .await;
        assert_eq!(
            second.stdout,
            ReplayStart {
                from: seen,
                missed: 0
            }
        );
        let (tail, err, code) = drain(session).await;
        assert_eq!(code, 0);
        assert!(err.is_empty());
        let joined = [head, tail].concat();
        assert_eq!(joined.len(), whole.len(), "nothing lost or duplicated");
        assert!(joined == whole, "the output is exact");

        // After it ended: from 0, all of it, and its exit code.
        let (third, session) = attach(&t.alice, &id, AttachFrom::Offset(0)).await;
        assert_eq!(third.stdout, ReplayStart { from: 0, missed: 0 });
        let (all, _, code) = drain(session).await;
        assert_eq!(code, 0);
        assert!(all == whole, "the replay after the end is exact");
        let info = listed(&t.alice, &id).await.unwrap();
        assert_eq!(
            (info.state, info.exit_code),
            (ProcessState::Exited, Some(0))
        );
        assert_eq!(info.stdout.written, whole.len() as u64);
        assert_eq!(info.stdout.dropped, 0);
        remove(&t.alice, &id).await;
        t.remove(&t.alice, &c).await;
    });
    t.finish();
}

#[test]
fn a_detached_binary_stream_matches_the_engines_own_sha256_across_a_reattach() {
    let t = Tenancy::new();
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let id = start(
            &t.alice,
            &c,
            &[
                "sh",
                "-c",
                "head -c 5242880 /dev/urandom > /tmp/r; head -c 2621440 /tmp/r; sleep 3; \
                 tail -c 2621440 /tmp/r",
            ],
            Some(8 << 20),
        )
        .await;
        let (_, session) = attach(&t.alice, &id, AttachFrom::Offset(0)).await;
        let head = read_some_then_leave(session, 1 << 20).await;
        let (accepted, session) =
            attach(&t.alice, &id, AttachFrom::Offset(head.len() as u64)).await;
        assert_eq!(accepted.stdout.missed, 0);
        let (tail, _, code) = drain(session).await;
        assert_eq!(code, 0);
        let (hash, code) = tenancy::exec(&t.alice, &c, &["sha256sum", "/tmp/r"])
            .await
            .unwrap();
        assert_eq!(code, 0);
        let joined = [head, tail].concat();
        assert_eq!(joined.len(), 5 << 20);
        assert_eq!(
            sha256_hex(&joined),
            hash[..64],
            "the bytes are the engine's"
        );
        remove(&t.alice, &id).await;
        t.remove(&t.alice, &c).await;
    });
    t.finish();
}

#[test]
fn a_buffer_smaller_than_the_output_says_exactly_what_it_dropped_and_keeps_the_exact_tail() {
    let t = Tenancy::new();
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let buffer = 65_536u64;
        let id = start(&t.alice, &c, &["seq", "1", "100000"], Some(buffer)).await;
        assert_eq!(wait(&t.alice, &id).await.unwrap(), 0);
        let whole = seq(1, 100_000);
        let dropped = whole.len() as u64 - buffer;

        let info = listed(&t.alice, &id).await.unwrap();
        assert_eq!(
            info.stdout,
            StreamOffsets {
                written: whole.len() as u64,
                oldest: dropped,
                dropped
            }
        );
        assert_eq!(info.buffer, buffer);

        let (accepted, session) = attach(&t.alice, &id, AttachFrom::Offset(0)).await;
        assert_eq!(
            accepted.stdout,
            ReplayStart {
                from: dropped,
                missed: dropped
            }
        );
        assert_eq!(accepted.stderr, ReplayStart { from: 0, missed: 0 });
        let (out, _, code) = drain(session).await;
        assert_eq!(code, 0);
        assert!(out == whole[dropped as usize..], "the tail is exact");

        // "oldest" asks for nothing gone.
        let (accepted, session) = attach(&t.alice, &id, AttachFrom::default()).await;
        assert_eq!(
            accepted.stdout,
            ReplayStart {
                from: dropped,
                missed: 0
            }
        );
        drop(session);

        // The json logs say the same by their offsets, and end with the
        // exit code.
        let items: Vec<ProcessLogItem> = t
            .alice
            .subscribe(&ProcessLogs {
                id: id.clone(),
                stdout_from: Some(0),
                stderr_from: None,
                follow: false,
            })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut logged = Vec::new();
        let mut first = None;
        for item in &items[..items.len() - 1] {
            let ProcessLogItem::Output {
                stream,
                offset,
                data,
            } = item
            else {
                panic!("output before the end: {item:?}")
            };
            assert_eq!(*stream, StreamName::Stdout);
            first.get_or_insert(*offset);
            logged.extend_from_slice(&data.to_bytes().unwrap());
        }
        assert_eq!(first, Some(dropped));
        assert!(logged == whole[dropped as usize..]);
        assert_eq!(
            items.last(),
            Some(&ProcessLogItem::End {
                exit_code: Some(0),
                terminal: true
            })
        );
        remove(&t.alice, &id).await;
        t.remove(&t.alice, &c).await;
    });
    t.finish();
}

#[test]
fn one_peer_can_neither_see_nor_touch_anothers_processes() {
    let t = Tenancy::new();
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let id = start(&t.alice, &c, &["sleep", "600"], None).await;
        let nobody = "p-0123456789abcdef0123456789abcdef";
        assert!(t.bob.query(&ProcessList {}).await.unwrap().is_empty());
        // Everything bob tries answers as for an id that does not exist.
        for reference in [id.as_str(), nobody] {
            let what = |op: &str| format!("bob's {op} of {reference}");
            let expect = |what: String, e: dockwire_core::CallError| {
                assert_eq!(e.code, ErrorCode::NOT_FOUND, "{what}: {}", e.message);
                assert_eq!(e.message, format!("No such process: {reference}"), "{what}");
            };
            let waited = tokio::time::timeout(Duration::from_secs(5), wait(&t.bob, reference))
                .await
                .unwrap_or_else(|_| panic!("{}: it waits, so it found it", what("wait")));
            expect(what("wait"), tenancy::error("wait", waited));
            let signal = ProcessSignal {
                id: reference.into(),
                signal: "KILL".into(),
            };
            expect(
                what("signal"),
                tenancy::error("signal", t.bob.query(&signal).await),
            );
            let rm = ProcessRemove {
                id: reference.into(),
            };
            expect(
                what("remove"),
                tenancy::error("remove", t.bob.query(&rm).await),
            );
            let logs = ProcessLogs {
                id: reference.into(),
                stdout_from: None,
                stderr_from: None,
                follow: false,
            };
            let read: Result<Vec<ProcessLogItem>, ClientError> = match t.bob.subscribe(&logs).await
            {
                Ok(items) => items.try_collect().await,
                Err(e) => Err(e),
            };
            expect(what("logs"), tenancy::error("logs", read));
            let attach = ProcessAttach {
                id: reference.into(),
                from: AttachFrom::default(),
                stdin: false,
            };
            let opened = t.bob.open(&attach).await.map(|s| s.accepted);
            expect(what("attach"), tenancy::error("attach", opened));
        }
        assert!(t.bob.query(&ProcessList {}).await.unwrap().is_empty());
        // Still alice's, untouched; an admin sees it.
        assert_eq!(
            listed(&t.alice, &id).await.unwrap().state,
            ProcessState::Running
        );
        assert!(listed(&t.root, &id).await.is_some());
        // Started at once, so the engine may take a moment under load.
        eventually("alice's process runs", || runs(&c, "sleep 600")).await;
        remove(&t.alice, &id).await;
        eventually("the removed process is killed", || !runs(&c, "sleep 600")).await;
        t.remove(&t.alice, &c).await;
    });
    t.finish();
}

#[test]
fn a_buffer_above_the_cap_and_a_process_above_the_count_are_refused_before_anything_starts() {
    let config = Config::from_env()
        .with_process_buffer_max(1 << 20)
        .with_max_processes(2);
    let t = Tenancy::with(config);
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let mut big = ProcessStart::new(&c, ["sleep", "701"]);
        big.buffer = Some((1 << 20) + 1);
        let message = tenancy::refused(
            "a big buffer",
            ErrorCode::FORBIDDEN,
            t.alice.query(&big).await,
        );
        assert!(message.contains("--process-buffer-max"), "{message}");
        let mut tagged = ProcessStart::new(&c, ["true"]);
        tagged.tag = Some("x".repeat(257));
        let long = t.alice.query(&tagged).await;
        tenancy::refused("a long tag", ErrorCode::INVALID_INPUT, long);
        let one = start(&t.alice, &c, &["sleep", "702"], Some(1 << 20)).await;
        let two = start(&t.alice, &c, &["true"], None).await;
        assert_eq!(wait(&t.alice, &two).await.unwrap(), 0);
        // Ended but remembered: still counted.
        let third = ProcessStart::new(&c, ["sleep", "703"]);
        let message =
            tenancy::refused("a third", ErrorCode::FORBIDDEN, t.alice.query(&third).await);
        assert!(message.contains("--max-processes"), "{message}");
        assert!(
            !runs(&c, "sleep 701") && !runs(&c, "sleep 703"),
            "nothing refused ran"
        );
        // Another peer has its own count; a removed one frees a place.
        let cb = t.sleeper(&t.bob, t.spec(&[])).await;
        let bobs = start(&t.bob, &cb, &["true"], None).await;
        remove(&t.alice, &two).await;
        let three = start(&t.alice, &c, &["true"], None).await;
        for (who, id) in [(&t.alice, &one), (&t.alice, &three), (&t.bob, &bobs)] {
            remove(who, id).await;
        }
        t.remove(&t.alice, &c).await;
        t.remove(&t.bob, &cb).await;
    });
    t.finish();
}

#[test]
fn signals_reach_a_process_and_kill_ends_it_and_what_it_started() {
    let t = Tenancy::new();
    signals_reach_a_process_and_kill_ends_what_it_started(&t, "sleep 801", "9");
    t.finish();
}

#[test]
fn through_the_engine_signals_reach_a_detached_process_and_kill_ends_what_it_started() {
    let config = Config::from_env().with_exec_signals(dockwire_docker::ExecSignals::Engine);
    let t = Tenancy::with(config);
    signals_reach_a_process_and_kill_ends_what_it_started(&t, "sleep 802", "KILL");
    t.finish();
}

/// TERM reaches a process that traps it (its code 7); the signal `kill`
/// (`9` or `KILL`) ends another and the `sleeper` it started (137); an
/// ended one's signal is a conflict, a bad name invalid.
fn signals_reach_a_process_and_kill_ends_what_it_started(t: &Tenancy, sleeper: &str, kill: &str) {
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let trapper = start(
            &t.alice,
            &c,
            &[
                "sh",
                "-c",
                "trap 'exit 7' TERM; while true; do sleep 0.1; done",
            ],
            None,
        )
        .await;
        let killed = start(
            &t.alice,
            &c,
            &["sh", "-c", &format!("{sleeper}; true")],
            None,
        )
        .await;
        eventually("both run", || runs(&c, sleeper)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let term = ProcessSignal {
            id: trapper.clone(),
            signal: "TERM".into(),
        };
        t.alice.query(&term).await.unwrap();
        assert_eq!(wait(&t.alice, &trapper).await.unwrap(), 7);
        let kill = ProcessSignal {
            id: killed.clone(),
            signal: kill.into(),
        };
        t.alice.query(&kill).await.unwrap();
        eventually("the killed process's child is gone too", || {
            !runs(&c, sleeper)
        })
        .await;
        assert_eq!(wait(&t.alice, &killed).await.unwrap(), 137);
        // Signalling an ended process is a conflict; a bad signal invalid.
        let again = t.alice.query(&term).await;
        tenancy::refused("signal an ended one", CONFLICT, again);
        let bad = ProcessSignal {
            id: killed.clone(),
            signal: "NOPE".into(),
        };
        tenancy::refused(
            "a bad signal",
            ErrorCode::INVALID_INPUT,
            t.alice.query(&bad).await,
        );
        remove(&t.alice, &trapper).await;
        remove(&t.alice, &killed).await;
        t.remove(&t.alice, &c).await;
    });
}

#[test]
fn one_attacher_at_a_time_holds_stdin_and_every_attacher_reads() {
    let t = Tenancy::new();
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let mut input = ProcessStart::new(&c, ["cat"]);
        input.stdin = true;
        let id = t.alice.query(&input).await.unwrap().id;
        let holder = ProcessAttach {
            id: id.clone(),
            from: AttachFrom::default(),
            stdin: true,
        };
        let mut writer = t.alice.open(&holder).await.unwrap();
        assert_eq!(writer.accepted["stdin"], true);
        // A second asking for stdin is refused; a reader is welcome.
        let second = t.alice.open(&holder).await.map(|s| s.accepted);
        tenancy::refused("a second stdin", CONFLICT, second);
        let (accepted, reader) = attach(&t.alice, &id, AttachFrom::default()).await;
        assert!(!accepted.stdin);
        writer.stdin.write_all(b"hello detached\n").await.unwrap();
        writer.stdin.close().await.unwrap();
        let (out, _, code) = drain(reader).await;
        assert_eq!((out.as_slice(), code), (&b"hello detached\n"[..], 0));
        let (out, _, code) = drain(writer).await;
        assert_eq!((out.as_slice(), code), (&b"hello detached\n"[..], 0));
        remove(&t.alice, &id).await;
        t.remove(&t.alice, &c).await;
    });
    t.finish();
}

#[test]
fn an_interactive_shell_with_a_tty_survives_its_attacher_and_takes_resize_and_input_from_the_next()
{
    let t = Tenancy::new();
    block_on(120, async {
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let mut input = ProcessStart::new(&c, ["sh"]);
        input.stdin = true;
        input.tty = true;
        let id = t.alice.query(&input).await.unwrap().id;
        let holder = ProcessAttach {
            id: id.clone(),
            from: AttachFrom::default(),
            stdin: true,
        };
        // The first attacher types, reads its answer and goes away.
        let (accepted, mut first) = t.alice.attach_process(&holder).await.unwrap();
        assert!(accepted.tty && accepted.stdin);
        first
            .stdin
            .write_all(b"echo one-$((40+2))\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        docker::read_until(&mut first, &mut seen, "one-42").await;
        drop(first);
        // The next gets stdin back, resizes, and ends the shell.
        let info = listed(&t.alice, &id).await.unwrap();
        let at = info.stdout.written;
        let from = AttachFrom::Streams {
            stdout: at,
            stderr: 0,
        };
        let next = ProcessAttach { from, ..holder };
        let mut second = None;
        for _ in 0..50 {
            // The first attach's end reaches the server a moment later.
            match t.alice.attach_process(&next).await {
                Ok((_, session)) => {
                    second = Some(session);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let mut second = second.expect("stdin is given back when its holder leaves");
        second.control.resize(99, 33).await.unwrap();
        second.stdin.write_all(b"stty size\n").await.unwrap();
        let mut seen = Vec::new();
        docker::read_until(&mut second, &mut seen, "33 99").await;
        assert!(
            !String::from_utf8_lossy(&seen).contains("one-42"),
            "nothing before the offset asked: {:?}",
            String::from_utf8_lossy(&seen)
        );
        second.stdin.write_all(b"exit 5\n").await.unwrap();
        let (_, _, code) = drain(second).await;
        assert_eq!(code, 5);
        remove(&t.alice, &id).await;
        t.remove(&t.alice, &c).await;
    });
    t.finish();
}

#[test]
fn a_running_process_holds_its_containers_idle_timeout_and_ends_lost_with_its_container() {
    let t = Tenancy::new();
    block_on(120, async {
        // A server with its lifetimes enforcer, as `dockwire serve` runs.
        let config = Config::from_env()
            .with_server_id(&t.server_id)
            .with_roles(t.peers.trust().roles());
        let service = DockerService::new(Docker::connect_with_local_defaults().unwrap(), config);
        let enforcer = tokio::spawn(service.lifetimes());
        let served = t
            .peers
            .serve(Arc::new(CallLog::new(PeerLimit::new(service, 1024))));
        let root = DockerClient::new(served.client("root"));
        let mut spec = t.spec(&[]);
        spec.idle_timeout = Some("2s".into());
        let c = t.sleeper(&root, spec).await;
        let id = start(&root, &c, &["sleep", "6"], None).await;
        let began = Instant::now();
        // Past its idle timeout while the process runs: still there.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let there = docker::engine().inspect_container(&c, None).await;
        assert!(there.is_ok(), "removed while a process ran: {there:?}");
        assert_eq!(wait(&root, &id).await.unwrap(), 0);
        // Idle once the process has ended: removed.
        let mut gone = false;
        for _ in 0..100 {
            if docker::engine().inspect_container(&c, None).await.is_err() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "the idle container is removed once its process ended");
        assert!(began.elapsed() > Duration::from_secs(6));
        remove(&root, &id).await;
        enforcer.abort();

        // A container removed under a running process (once it runs: an
        // exec the removal beats to its start ends 126, the engine's):
        // it ends lost, or with the kill's 137 when the engine still
        // reported the exec's end; never hangs, never another code.
        let c = t.sleeper(&t.alice, t.spec(&[])).await;
        let id = start(&t.alice, &c, &["sleep", "900"], None).await;
        eventually("it runs", || runs(&c, "sleep 900")).await;
        t.remove(&t.alice, &c).await;
        let info = match wait(&t.alice, &id).await {
            Ok(code) => {
                assert_eq!(code, 137, "the removal's kill");
                listed(&t.alice, &id).await.unwrap()
            }
            Err(e) => {
                let e = tenancy::error("wait", Err::<(), _>(e));
                assert_eq!(e.code, DOCKER_ERROR, "{}", e.message);
                let info = listed(&t.alice, &id).await.unwrap();
                assert_eq!(info.state, ProcessState::Lost, "{info:?}");
                info
            }
        };
        assert_ne!(info.state, ProcessState::Running, "{info:?}");
        remove(&t.alice, &id).await;
    });
    t.finish();
}

#[test]
fn a_restarted_servers_sweep_kills_the_detached_processes_a_crashed_one_left() {
    let journal = std::env::temp_dir().join(docker::unique("process-journal"));
    let config = Config::from_env().with_exec_journal(&journal);
    let t = Tenancy::with(config.clone());
    block_on(120, async {
        let c = t.sleeper(&t.root, t.spec(&[])).await;
        let id = start(&t.root, &c, &["sleep", "1001"], None).await;
        eventually("it runs", || runs(&c, "sleep 1001")).await;
        // The first server is as good as dead: a new one on the same
        // journal sweeps before serving.
        let restarted = dockwire_docker::DockerService::new(
            bollard::Docker::connect_with_local_defaults().unwrap(),
            config,
        );
        restarted.sweep().await.unwrap();
        eventually("the sweep killed it", || !runs(&c, "sleep 1001")).await;
        remove(&t.root, &id).await;
        t.remove(&t.root, &c).await;
    });
    let _ = std::fs::remove_dir_all(&journal);
    t.finish();
}

#[test]
fn a_non_detached_exec_is_still_killed_when_its_client_aborts_or_vanishes_while_a_detached_one_lives()
 {
    block_on(120, async {
        let rig = docker::rig(Rt::Tokio).await;
        let c = rig.sleeper().await;
        let id = start(&rig.docker, &c, &["sleep", "1004"], None).await;
        assert!(id.starts_with("p-"));
        // Aborted, dropped and disconnected execs are killed (the last
        // closes the connection the detached process was started on).
        docker::cancellation_leaves_nothing_behind(&rig).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(runs(&c, "sleep 1004"), "the detached process lives on");
        // The rig removes the container.
    });
}
