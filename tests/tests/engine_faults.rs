//! The engine fails under dockwire: a private engine
//! (`dockwire_tests::private_engine`, a `dockerd` of the test's own) is
//! stopped, killed and started again while calls run through a Docker
//! service served over QUIC, the service and its client staying up
//! throughout.
//!
//! - When the engine goes away and its containers run on (`--live-restore`,
//!   or a crash), a followed log stream and an exec end with `UNAVAILABLE`
//!   within moments of the engine's exit: never a completion, which would
//!   say the container had ended. The exec's process, which the engine
//!   kept running, is killed as a cancelled call's is.
//! - When the engine stops its containers as it shuts down (the default),
//!   their followed logs complete with every line, as for any container
//!   that exits, and an exec in them ends with its killed process's code
//!   or `UNAVAILABLE`.
//! - While the engine is down, calls fail `UNAVAILABLE` (retryable) at
//!   once; once it is back, the same service serves them again.
//! - A `run` cancelled while the engine is down (crashed, its container
//!   running on with live restore) is cleaned up once the engine is back, with no new
//!   call: removed with auto-remove, killed without. `settle` counts the
//!   waiting cleanups and still returns at its limit.
//!
//! Each test prints what it measured (`--nocapture`). They need root and
//! `dockerd` (CI has both), and fail loudly without them.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerService, ExecSignals, Items};
use dockwire_service::{ClientError, RawSession};
use dockwire_tests::Rt;
use dockwire_tests::docker::{IMAGE, OWNER, Rig, read_until, rig_for};
use dockwire_tests::private_engine::{Containers, PrivateEngine, Stop};
use futures::StreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};

/// The bound on every wait: far above what any step takes on a loaded
/// machine, so that a hang fails the test instead of stalling it.
const PATIENCE: Duration = Duration::from_secs(30);

/// A container that prints `line1`, `line2`, … every 100 ms, and exits at
/// once on SIGTERM (as its engine stops it).
const LINES: &str = "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo line$i; sleep 0.1; done";

/// A container that only waits, for execs, and exits at once on SIGTERM.
const WAITS: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

/// The exit code of a process killed by SIGKILL, as the engine reports it.
const KILLED: i32 = 128 + 9;

#[test]
fn engine_restart_ends_a_followed_log_stream_with_unavailable() {
    let asked = Instant::now();
    let mut engine = PrivateEngine::start(Containers::LiveRestore);
    let (started_in, ready_in) = (engine.started_in(), asked.elapsed());
    Rt::Tokio.block_on(async {
        let rig = rig_on(&engine).await;
        let id = container(&rig, LINES).await;
        let mut follow = Follow::new(&rig, &id).await;
        follow.lines(5).await;

        let stopped = engine.stop(Stop::Term);
        let error = follow.until_the_end().await.expect_err(
            "the followed logs completed as if the container had exited, \
             but it runs on (live restore)",
        );
        let to_error = stopped.elapsed();
        assert_eq!(remote_code(&error), ErrorCode::UNAVAILABLE, "{error:?}");
        let exited_in = engine.wait_stopped(stopped);

        let restarted_in = engine.start_again();
        let back = Instant::now();
        let state = inspect(&rig, &id).await;
        let first_call = back.elapsed();
        assert_eq!(state.running, Some(true), "live restore kept it running");
        // Its log holds every line: those the stream delivered, in order,
        // and those printed since.
        let log = whole_log(&rig, &id).await;
        assert!(
            log.len() > follow.seen,
            "{} lines, {} delivered",
            log.len(),
            follow.seen
        );
        assert_lines("the log after the restart", &log);
        eprintln!(
            "followed logs, live restore: engine answered in {started_in:?}, had the image in \
             {ready_in:?}; {} lines, then \
             UNAVAILABLE {to_error:?} after SIGTERM (the engine exited after {exited_in:?}); \
             restarted in {restarted_in:?}; first call {first_call:?} later",
            follow.seen
        );
    });
}

#[test]
fn engine_restart_ends_a_raw_exec_with_unavailable() {
    let mut engine = PrivateEngine::start(Containers::LiveRestore);
    Rt::Tokio.block_on(async {
        let rig = rig_on(&engine).await;
        let id = container(&rig, WAITS).await;
        let session = cat(&rig, &id).await;
        // The fault comes once the exec has run a while: the engine reports
        // an exec's pid some tens of milliseconds after its start, and the
        // service asks for it in the background within 1.6 s.
        let exec_id = session.accepted["execId"].as_str().unwrap().to_owned();
        let private = engine.docker();
        within("the exec's pid", async {
            while private
                .inspect_exec(&exec_id)
                .await
                .unwrap()
                .pid
                .unwrap_or(0)
                <= 0
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        let stopped = engine.stop(Stop::Term);
        let exit = session_end(session).await;
        let to_error = stopped.elapsed();
        let error = exit.expect_err("an exit code, but the engine never reported one");
        assert_eq!(remote_code(&error), ErrorCode::UNAVAILABLE, "{error:?}");
        let exited_in = engine.wait_stopped(stopped);

        let restarted_in = engine.start_again();
        let back = Instant::now();
        let (out, _, code) = rig.exec(&id, &["echo", "back"]).await;
        let first_call = back.elapsed();
        assert_eq!((out.as_slice(), code), (&b"back\n"[..], 0));
        // The engine kept `cat` running through its restart, but its call
        // is over: it is killed, as a cancelled call's process is.
        let mut running = Vec::new();
        for _ in 0..100 {
            running = commands(&rig, &id).await;
            if !running.iter().any(|c| c == "cat") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!running.iter().any(|c| c == "cat"), "{running:?}");
        eprintln!(
            "raw exec, live restore: UNAVAILABLE {to_error:?} after SIGTERM (the engine exited \
             after {exited_in:?}); restarted in {restarted_in:?}; an exec {first_call:?} later"
        );
    });
}

#[test]
fn engine_crash_ends_followed_logs_and_execs_with_unavailable() {
    let mut engine = PrivateEngine::start(Containers::StopWithTheEngine);
    Rt::Tokio.block_on(async {
        let rig = rig_on(&engine).await;
        let printing = container(&rig, LINES).await;
        let waiting = container(&rig, WAITS).await;
        let mut follow = Follow::new(&rig, &printing).await;
        let raw = cat(&rig, &waiting).await;
        let mut json = rig
            .docker
            .subscribe(&ExecInput::new(
                &waiting,
                ["sh", "-c", "echo started; sleep 1000"],
            ))
            .await
            .unwrap();
        let first = within("the json exec's output", json.next()).await;
        assert_eq!(
            first.unwrap().unwrap(),
            ExecItem::Output {
                stream: StreamName::Stdout,
                data: Data::Text("started\n".into())
            }
        );
        follow.lines(3).await;

        let killed = engine.stop(Stop::Kill);
        let (logs_end, raw_end, json_end) = futures::join!(
            async {
                let end = follow.until_the_end().await;
                (end, killed.elapsed())
            },
            async {
                let end = session_end(raw).await;
                (end, killed.elapsed())
            },
            async {
                let end = within("the json exec's end", json.next()).await;
                let after = within("after the json exec's error", json.next()).await;
                assert!(after.is_none(), "{after:?}");
                (end, killed.elapsed())
            },
        );
        let logs_error = logs_end.0.expect_err("the followed logs completed");
        assert_eq!(
            remote_code(&logs_error),
            ErrorCode::UNAVAILABLE,
            "{logs_error:?}"
        );
        let raw_error = raw_end.0.expect_err("the raw exec got an exit code");
        assert_eq!(
            remote_code(&raw_error),
            ErrorCode::UNAVAILABLE,
            "{raw_error:?}"
        );
        let json_error = json_end.0.unwrap().expect_err("the json exec got an item");
        assert_eq!(
            remote_code(&json_error),
            ErrorCode::UNAVAILABLE,
            "{json_error:?}"
        );
        engine.wait_stopped(killed);

        let restarted_in = engine.start_again();
        let back = Instant::now();
        let pong = rig.docker.query(&Ping {}).await.unwrap();
        let first_call = back.elapsed();
        assert!(!pong.api_version.is_empty());
        let fresh = container(&rig, WAITS).await;
        let (out, _, code) = rig.exec(&fresh, &["echo", "back"]).await;
        assert_eq!((out.as_slice(), code), (&b"back\n"[..], 0));
        eprintln!(
            "crash: UNAVAILABLE after SIGKILL: followed logs ({} lines) {:?}, raw exec {:?}, \
             json exec {:?}; restarted in {restarted_in:?}; first call {first_call:?} later",
            follow.seen, logs_end.1, raw_end.1, json_end.1
        );
    });
}

#[test]
fn engine_shutdown_completes_the_followed_logs_of_the_containers_it_stops() {
    let mut engine = PrivateEngine::start(Containers::StopWithTheEngine);
    Rt::Tokio.block_on(async {
        let rig = rig_on(&engine).await;
        let printing = container(&rig, LINES).await;
        let waiting = container(&rig, WAITS).await;
        let mut follow = Follow::new(&rig, &printing).await;
        let raw = cat(&rig, &waiting).await;
        follow.lines(3).await;

        let stopped = engine.stop(Stop::Term);
        let (logs_end, exec_end) = futures::join!(
            async {
                let end = follow.until_the_end().await;
                (end, stopped.elapsed())
            },
            async {
                let end = session_end(raw).await;
                (end, stopped.elapsed())
            },
        );
        // The engine stopped the container and then ended its log: the
        // stream completes, with every line, as when a container exits.
        logs_end
            .0
            .expect("the followed logs of a container the engine stopped");
        // The exec's process died with its container: whether the engine
        // could still report its code decides between the two.
        match &exec_end.0 {
            Ok(code) => assert_eq!(*code, KILLED, "cat was killed with its container"),
            Err(e) => assert_engine_failure("the exec", e),
        }
        engine.wait_stopped(stopped);

        engine.start_again();
        let state = inspect(&rig, &printing).await;
        assert_eq!(state.running, Some(false), "the engine stopped it");
        let log = whole_log(&rig, &printing).await;
        assert_eq!(
            log.len(),
            follow.seen,
            "the follow delivered the whole log before it completed"
        );
        eprintln!(
            "engine shutdown: followed logs completed with {} lines {:?} after SIGTERM; \
             the exec ended with {:?} after {:?}",
            follow.seen, logs_end.1, exec_end.0, exec_end.1
        );
    });
}

#[test]
fn calls_while_the_engine_is_down_are_unavailable_and_work_once_it_is_back() {
    let mut engine = PrivateEngine::start(Containers::StopWithTheEngine);
    Rt::Tokio.block_on(async {
        let rig = rig_on(&engine).await;
        let pong = rig.docker.query(&Ping {}).await.unwrap();
        assert!(!pong.api_version.is_empty());
        let id = container(&rig, WAITS).await;
        let stopped = engine.stop(Stop::Term);
        engine.wait_stopped(stopped);

        let asked = Instant::now();
        let e = within("ping", rig.docker.query(&Ping {}))
            .await
            .unwrap_err();
        let ping_failed = asked.elapsed();
        assert_eq!(remote_code(&e), ErrorCode::UNAVAILABLE, "{e:?}");
        let ClientError::Remote(remote) = &e else {
            unreachable!()
        };
        assert!(remote.retryable, "{remote:?}");
        let asked = Instant::now();
        let list = ContainerList {
            all: true,
            filters: Default::default(),
        };
        let e = within("list", rig.docker.query(&list)).await.unwrap_err();
        let list_failed = asked.elapsed();
        assert_eq!(remote_code(&e), ErrorCode::UNAVAILABLE, "{e:?}");
        let asked = Instant::now();
        let e = within("exec", async {
            let mut items = rig
                .docker
                .subscribe(&ExecInput::new(&id, ["true"]))
                .await
                .unwrap();
            items.next().await.unwrap().unwrap_err()
        })
        .await;
        let exec_failed = asked.elapsed();
        assert_eq!(remote_code(&e), ErrorCode::UNAVAILABLE, "{e:?}");

        let restarted_in = engine.start_again();
        let back = Instant::now();
        let pong = within("ping after the restart", rig.docker.query(&Ping {}))
            .await
            .unwrap();
        let first_call = back.elapsed();
        assert!(!pong.api_version.is_empty());
        let listed = rig.docker.query(&list).await.unwrap();
        assert!(listed.iter().any(|c| c.id.as_deref() == Some(id.as_str())));
        let fresh = container(&rig, WAITS).await;
        let (out, err, code) = rig
            .exec(&fresh, &["sh", "-c", "echo back; echo err >&2; exit 3"])
            .await;
        assert_eq!(
            (out.as_slice(), err.as_slice(), code),
            (&b"back\n"[..], &b"err\n"[..], 3)
        );
        eprintln!(
            "engine down: UNAVAILABLE for ping in {ping_failed:?}, list in {list_failed:?}, \
             exec in {exec_failed:?}; restarted in {restarted_in:?}; ping ok {first_call:?} later"
        );
    });
}

#[test]
fn runs_cancelled_while_the_engine_is_down_are_cleaned_up_once_it_is_back() {
    let mut engine = PrivateEngine::start(Containers::LiveRestore);
    Rt::Tokio.block_on(async {
        let service = service_on(&engine);
        let rig = rig_for(Rt::Tokio, service.clone()).await;
        let mut spec = ContainerSpec::new(IMAGE, ["sleep", "600"]);
        spec.auto_remove = true;
        let removed = rig.docker.open(&RunInput(spec.clone())).await.unwrap();
        spec.auto_remove = false;
        let kept = rig.docker.open(&RunInput(spec)).await.unwrap();
        let id = |session: &RawSession| session.accepted["id"].as_str().unwrap().to_owned();
        let (removed_id, kept_id) = (id(&removed), id(&kept));
        let mut pids = Vec::new();
        for id in [&removed_id, &kept_id] {
            let state = inspect(&rig, id).await;
            assert_eq!(state.running, Some(true), "{id}");
            pids.push(state.pid.unwrap());
        }

        // A crash: a daemon told to stop still answers for a moment after
        // it has cut the calls' connections, and the calls' cleanups could
        // reach it then.
        let killed = engine.stop(Stop::Kill);
        engine.wait_stopped(killed);
        // The calls may have ended with the engine's connections already;
        // dropping them cancels whatever is left.
        drop((removed, kept));
        // The service sees the calls cancelled a moment later (longer on
        // a busy machine), and starts their cleanups.
        within("the cleanups start", async {
            while service.pending_cleanups() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        // Their cleanups wait for the engine: `settle` counts them, and
        // still returns at its limit.
        let asked = Instant::now();
        let settled = within("settle", service.settle(Duration::from_secs(1))).await;
        let settle_took = asked.elapsed();
        assert!(
            !settled,
            "nothing left to clean up while the engine is down"
        );
        for pid in &pids {
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            assert!(
                alive,
                "live restore keeps the containers running: {pid} is gone"
            );
        }

        engine.start_again();
        let back = Instant::now();
        let private = engine.docker();
        // With live restore the containers ran on through the outage: the
        // auto-remove one is removed and the other killed, with no call
        // asking for it.
        within("the auto-remove run's removal", async {
            while private.inspect_container(&removed_id, None).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let to_removal = back.elapsed();
        let killed = within("the kept run's kill", async {
            loop {
                let state = inspect(&rig, &kept_id).await;
                if state.running == Some(false) {
                    return state;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let to_kill = back.elapsed();
        assert_eq!(killed.exit_code, Some(i64::from(KILLED)), "{killed:?}");
        let e = private
            .inspect_container(&removed_id, None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            within("settle", service.settle(PATIENCE)).await,
            "cleanups still pending once the engine is back"
        );
        eprintln!(
            "runs cancelled in an outage: settle(1s) returned false after {settle_took:?}; \
             once the engine was back, the auto-remove container was removed after \
             {to_removal:?} and the other killed after {to_kill:?}"
        );
    });
}

// ----------------------------------------------------------------- helpers

/// The dockwire side: a service for the private engine, served over QUIC.
async fn rig_on(engine: &PrivateEngine) -> Rig {
    rig_for(Rt::Tokio, service_on(engine)).await
}

/// A Docker service for the private engine.
fn service_on(engine: &PrivateEngine) -> DockerService {
    let socket = engine.socket().display().to_string();
    // The private engine runs on this host, whatever DOCKER_HOST says.
    let config = Config::from_env()
        .with_owner(OWNER)
        .with_exec_signals(ExecSignals::HostPid);
    DockerService::unix(socket, config)
}

/// Creates and starts a container of the test image running `script`;
/// the private engine removes it when the test ends.
async fn container(rig: &Rig, script: &str) -> String {
    let spec = ContainerSpec::new(IMAGE, ["sh", "-c", script]);
    let created = rig.docker.query(&ContainerCreate(spec)).await.unwrap();
    rig.docker
        .query(&ContainerStart(ContainerRef::new(&created.id)))
        .await
        .unwrap();
    created.id
}

async fn inspect(rig: &Rig, id: &str) -> models::ContainerState {
    within(
        "inspect",
        rig.docker.query(&ContainerInspect(ContainerRef::new(id))),
    )
    .await
    .unwrap()
    .state
    .unwrap()
}

/// The commands running in container `id`.
async fn commands(rig: &Rig, id: &str) -> Vec<String> {
    let top = ContainerTop {
        id: id.to_owned(),
        ps_args: None,
    };
    let top = within("top", rig.docker.query(&top)).await.unwrap();
    let titles = top.titles.unwrap_or_default();
    let cmd = titles
        .iter()
        .position(|t| t == "CMD")
        .expect("a CMD column");
    top.processes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.get(cmd).cloned())
        .collect()
}

/// Every line of `id`'s log, not followed.
async fn whole_log(rig: &Rig, id: &str) -> Vec<LogItem> {
    within("the whole log", async {
        let items = rig.docker.subscribe(&ContainerLogs::new(id)).await.unwrap();
        items.map(Result::unwrap).collect().await
    })
    .await
}

/// `line1`, `line2`, … on stdout, in order.
fn assert_lines(what: &str, items: &[LogItem]) {
    for (n, item) in items.iter().enumerate() {
        assert_eq!(item.stream, StreamName::Stdout, "{what}: {item:?}");
        assert_eq!(
            item.data,
            Data::Text(format!("line{}\n", n + 1)),
            "{what}: item {n}"
        );
    }
}

/// A followed log of a [`LINES`] container, checked line by line.
struct Follow {
    items: Items<LogItem>,
    seen: usize,
}

impl Follow {
    async fn new(rig: &Rig, id: &str) -> Follow {
        let mut logs = ContainerLogs::new(id);
        logs.follow = true;
        let items = rig.docker.subscribe(&logs).await.unwrap();
        Follow { items, seen: 0 }
    }

    fn check(&mut self, item: LogItem) {
        self.seen += 1;
        assert_eq!(item.stream, StreamName::Stdout, "{item:?}");
        assert_eq!(item.data, Data::Text(format!("line{}\n", self.seen)));
    }

    /// Takes `n` more lines.
    async fn lines(&mut self, n: usize) {
        for _ in 0..n {
            let item = within("a log line", self.items.next()).await;
            self.check(item.unwrap().unwrap());
        }
    }

    /// Takes lines until the stream ends: `Ok` for a completion, the
    /// error that ended it otherwise. Nothing comes after an error.
    async fn until_the_end(&mut self) -> Result<(), ClientError> {
        loop {
            match within("the end of the followed logs", self.items.next()).await {
                Some(Ok(item)) => self.check(item),
                Some(Err(e)) => {
                    let after = within("after the error", self.items.next()).await;
                    assert!(after.is_none(), "{after:?}");
                    return Err(e);
                }
                None => return Ok(()),
            }
        }
    }
}

/// A raw `cat` exec in `id`, which has echoed a line.
async fn cat(rig: &Rig, id: &str) -> RawSession {
    let mut input = ExecInput::new(id, ["cat"]);
    input.stdin = true;
    let mut session = rig.docker.open(&input).await.unwrap();
    session
        .stdin
        .write_all(b"before the fault\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    within("the echo", read_until(&mut session, &mut seen, "fault\n")).await;
    assert_eq!(seen, b"before the fault\n");
    session
}

/// What a session ends with. Its stdout ends with nothing more, cleanly
/// when the exit is a code, with the call's error otherwise.
async fn session_end(mut session: RawSession) -> Result<i32, ClientError> {
    let mut rest = Vec::new();
    let read = within("the end of stdout", session.stdout.read_to_end(&mut rest)).await;
    let exit = within("the exit", session.exit).await;
    assert_eq!(rest, b"", "output after the fault");
    assert_eq!(read.is_ok(), exit.is_ok(), "{read:?} then {exit:?}");
    exit
}

/// `f`, or a failure naming `what` after [`PATIENCE`].
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(PATIENCE, f).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: nothing after {PATIENCE:?}"),
    }
}

fn remote_code(e: &ClientError) -> ErrorCode {
    match e {
        ClientError::Remote(e) => e.code.clone(),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// The codes an engine failure may end a call with: `UNAVAILABLE` when
/// the engine cannot be reached, `DOCKER_ERROR` when it answered, but not
/// with what the call needed.
fn assert_engine_failure(what: &str, e: &ClientError) {
    let code = remote_code(e);
    assert!(
        code == ErrorCode::UNAVAILABLE || code == DOCKER_ERROR,
        "{what}: {e:?}"
    );
}
