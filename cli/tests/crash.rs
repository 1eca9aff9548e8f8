//! A `dockwire serve` that crashes (SIGKILL) in the middle of streaming
//! sessions, end to end: real `dockwire` processes on 127.0.0.1 with real
//! identities, the real Docker engine behind them.
//!
//! Each test starts its own server with a short idle timeout, opens a
//! session that streams (an exec printing a line every 100 ms, an exec
//! `-i` echoing a stdin fed every 100 ms, an attach, a `run --rm`), waits
//! until output has come through, kills the server with SIGKILL and
//! checks that the client ends with a connection error within the idle
//! timeout and the exit code docker's CLI gives when its daemon dies:
//! `exec` 255, `run` 125, `attach` 1. The `run --rm` test then starts the
//! server again on the same state directory (so the same identity) and
//! checks that it removes the container the dead call left, and nothing
//! else; and that a second server started on the state directory of a
//! live one (the same identity) leaves the live one's calls alone. The
//! exec test starts the server again the same way and checks that it
//! kills the process of the exec whose call died (found by the server's
//! exec journal in its state directory), and not one started with
//! `docker exec`; and that the journal keeps no record of an exec that
//! ended, or whose client died while the server lived. A `run --ttl` and
//! a `run --idle-timeout` made before the kill are removed on time by the
//! restarted server (the idle one's last touch kept across the kill in the
//! state directory). An `exec -i` (a session) reconnects for
//! `--reconnect-for` before it gives up, and not at all with `0`. Run
//! with `--nocapture` to see the times measured.
//!
//! Needs the engine and the test image of `scripts/engine`; without them
//! every test fails, loudly (none skips).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

/// The server's idle timeout, in seconds. The client asks for 30 s (QUIC's
/// default, and dockwire's; the `dockwire` client has no option for it)
/// and QUIC takes the smaller of the two ends' timeouts, so 3 s is what the
/// client waits for a silent server. (The first packet the client sends
/// after the last it heard restarts that wait once: its stdin here, or
/// its 10 s keep-alive, which comes after 3 s. With the defaults a client
/// waits up to 30 s + 10 s.)
const IDLE_SECONDS: u64 = 3;
/// `serve`'s options in these tests.
const SERVE: [&str; 2] = ["--idle-timeout", "3"];
/// How long after the kill a client may take to end: the idle timeout and
/// a margin for a loaded machine, well below the client's own 30 s, so an
/// end at the client's default would fail the test.
const LOST_WITHIN: Duration = Duration::from_secs(IDLE_SECONDS + 12);
/// How long the first lines of a session may take to come through.
const FIRST_LINES: Duration = Duration::from_secs(30);

/// A shell loop printing `line 1`, `line 2`, … every 100 ms, forever.
const LINES: &str = "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.1; done";

/// What the client says when the server is gone: the connection was lost,
/// because the server went silent for the idle timeout.
fn lost(what: &str) -> String {
    format!("dockwire: {what}: the connection failed: connection lost: timed out")
}

/// Asserts `out` is the start of `prefix 1\n`, `prefix 2\n`, … with at
/// least `at_least` whole lines (the last may be cut short by the crash):
/// nothing lost or reordered before the crash.
fn counted(what: &str, out: &str, prefix: &str, at_least: usize) {
    let mut whole = 0;
    for (n, line) in out.split_inclusive('\n').enumerate() {
        let want = format!("{prefix} {}\n", n + 1);
        match line.ends_with('\n') {
            true => assert_eq!(line, want, "{what}: line {} of:\n{out}", n + 1),
            false => assert!(want.starts_with(line), "{what}: last line of:\n{out}"),
        }
        whole += usize::from(line.ends_with('\n'));
    }
    assert!(whole >= at_least, "{what}: {whole} lines:\n{out}");
}

/// Kills `rig`'s server, then waits for `session` to end: what it did,
/// and how long after the kill it ended.
fn crash_during(rig: &mut Rig, session: Running) -> (Ran, Duration) {
    let killed = Instant::now();
    rig.server.kill();
    let ran = session.finish(LOST_WITHIN);
    (ran, killed.elapsed())
}

#[test]
fn a_killed_server_ends_a_streaming_exec_with_a_connection_error() {
    let mut rig = Rig::with("crash-exec", &SERVE);
    let target = rig.containers.docker_sleeper("crash-exec");
    let exec = start(
        &mut rig.admin.command(&["exec", &target, "sh", "-c", LINES]),
        None,
    );
    exec.wait_for_stdout("line 3\n", FIRST_LINES);

    let (ran, took) = crash_during(&mut rig, exec);
    eprintln!("exec: the client ended {took:?} after the kill");
    // As docker exec when its daemon dies mid-stream: 255.
    assert_eq!(ran.code(), 255, "{}", ran.dump());
    assert_eq!(ran.failed(None), lost(&format!("exec in {target}")));
    counted("exec", &ran.out(), "line", 3);
}

#[test]
fn a_killed_server_ends_an_exec_with_streaming_stdin_with_a_connection_error() {
    let mut rig = Rig::with("crash-exec-i", &SERVE);
    let target = rig.containers.docker_sleeper("crash-exec-i");
    // `tick 1`, `tick 2`, … every 100 ms, for as long as the client reads
    // its stdin (a write fails once it has ended), never past the limit.
    let feed = |mut stdin: std::process::ChildStdin| {
        let began = Instant::now();
        for n in 1.. {
            if began.elapsed() > LIMIT || writeln!(stdin, "tick {n}").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let exec = start_fed(
        &mut rig.admin.command(&["exec", "-i", &target, "cat"]),
        feed,
    );
    exec.wait_for_stdout("tick 3\n", FIRST_LINES);

    let (ran, took) = crash_during(&mut rig, exec);
    eprintln!("exec -i: the client ended {took:?} after the kill");
    assert_eq!(ran.code(), 255, "{}", ran.dump());
    // An interactive exec is a session: it tries to reconnect for a few
    // seconds first, then ends with the error it lost its connection with.
    let said: Vec<String> = ran.err().lines().map(str::to_owned).collect();
    assert_eq!(
        said,
        [
            "dockwire: the connection was lost; reconnecting".to_owned(),
            lost(&format!("exec in {target}"))
        ],
        "{}",
        ran.dump()
    );
    counted("exec -i", &ran.out(), "tick", 3);
}

#[test]
fn exec_i_reconnects_for_as_long_as_reconnect_for_says_and_not_at_all_with_0() {
    let mut rig = Rig::with("crash-exec-i-window", &SERVE);
    let target = rig.containers.docker_sleeper("crash-exec-i-window");
    // Each client echoes `tick N` lines fed every 100 ms through `cat`.
    let fed = |rig: &Rig, window: &str| {
        let feed = |mut stdin: std::process::ChildStdin| {
            let began = Instant::now();
            for n in 1.. {
                if began.elapsed() > LIMIT || writeln!(stdin, "tick {n}").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        let args = ["exec", "-i", "--reconnect-for", window, &target, "cat"];
        let exec = start_fed(&mut rig.admin.command(&args), feed);
        exec.wait_for_stdout("tick 3\n", FIRST_LINES);
        exec
    };
    let none = fed(&rig, "0");
    let long = fed(&rig, "15s");

    let killed = Instant::now();
    rig.server.kill();
    let (none, long) = std::thread::scope(|s| {
        let none = s.spawn(|| {
            let ran = none.finish(LOST_WITHIN);
            (ran, killed.elapsed())
        });
        let long = long.finish(LOST_WITHIN + Duration::from_secs(15));
        (none.join().unwrap(), (long, killed.elapsed()))
    });
    eprintln!(
        "exec -i --reconnect-for 0 ended {:?} after the kill, --reconnect-for 15s {:?}",
        none.1, long.1
    );
    // 0: no reconnect at all, the error it lost its connection with.
    assert_eq!(none.0.code(), 255, "{}", none.0.dump());
    assert_eq!(
        none.0.failed(None),
        lost(&format!("exec in {target}")),
        "{}",
        none.0.dump()
    );
    counted("exec -i --reconnect-for 0", &none.0.out(), "tick", 3);
    // 15 s: it says it reconnects, and tries for 15 s after noticing the
    // loss (the default, 6 s, ends it within about 12 s of the kill).
    assert_eq!(long.0.code(), 255, "{}", long.0.dump());
    let said: Vec<String> = long.0.err().lines().map(str::to_owned).collect();
    assert_eq!(
        said,
        [
            "dockwire: the connection was lost; reconnecting".to_owned(),
            lost(&format!("exec in {target}"))
        ],
        "{}",
        long.0.dump()
    );
    assert!(
        long.1 >= Duration::from_secs(15),
        "ended {:?} after the kill",
        long.1
    );
    counted("exec -i --reconnect-for 15s", &long.0.out(), "tick", 3);
}

#[test]
fn a_killed_server_ends_an_attach_with_a_connection_error() {
    let mut rig = Rig::with("crash-attach", &SERVE);
    let target = rig.containers.name("crash-attach");
    docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &target,
        IMAGE,
        "sh",
        "-c",
        LINES,
    ])
    .ok();
    let attach = start(
        &mut rig.admin.command(&["attach", "--no-stdin", &target]),
        None,
    );
    // An attach shows what the container prints from now on: wait for
    // some of it, whatever its numbers.
    attach.wait_for_stdout("\nline", FIRST_LINES);

    let (ran, took) = crash_during(&mut rig, attach);
    eprintln!("attach: the client ended {took:?} after the kill");
    // As docker attach when its daemon dies mid-stream: 1.
    assert_eq!(ran.code(), 1, "{}", ran.dump());
    assert_eq!(ran.failed(None), lost(&format!("attach to {target}")));
    // The container is not the server's to stop: it runs on.
    assert!(running(&target), "{target} stopped with the server");
}

#[test]
fn a_restarted_server_removes_what_a_run_rm_left_when_it_was_killed() {
    let mut rig = Rig::with("crash-run", &SERVE);
    let label = |name: &str, key: &str| {
        let format = format!("{{{{index .Config.Labels \"{key}\"}}}}");
        docker(&["inspect", "-f", &format, name])
            .ok()
            .out()
            .trim()
            .to_owned()
    };
    // What the sweep must leave: a detached container of this server's,
    // one detached with --rm (the engine's to remove when it exits), and
    // one made with docker.
    let kept = rig.containers.name("crash-kept");
    let detached_rm = rig.containers.name("crash-detached-rm");
    for (name, rm) in [(&kept, false), (&detached_rm, true)] {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        if rm {
            args.push("--rm");
        }
        args.extend([IMAGE, "sleep", "600"]);
        rig.admin.run(&args).ok();
        assert_eq!(label(name, "dockwire.server"), rig.server.fingerprint);
    }
    let theirs = rig.containers.docker_sleeper("crash-theirs");

    let left = rig.containers.name("crash-left");
    let run = start(
        &mut rig.admin.command(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            &left,
            IMAGE,
            "sh",
            "-c",
            LINES,
        ]),
        None,
    );
    run.wait_for_stdout("line 3\n", FIRST_LINES);
    // What survives the crash to find it by: the server's identity and
    // that dockwire, not the engine, was to remove it.
    assert_eq!(label(&left, "dockwire.server"), rig.server.fingerprint);
    assert_eq!(label(&left, "dockwire.auto-remove"), "true");
    let left_id = docker(&["inspect", "-f", "{{.Id}}", &left])
        .ok()
        .out()
        .trim()
        .to_owned();

    let (ran, took) = crash_during(&mut rig, run);
    eprintln!("run --rm: the client ended {took:?} after the kill");
    // As docker run when its daemon dies mid-stream: 125.
    assert_eq!(ran.code(), 125, "{}", ran.dump());
    assert_eq!(ran.failed(None), lost(&format!("run {IMAGE}")));
    counted("run --rm", &ran.out(), "line", 3);
    // Nobody removed it: the call that was to do so died with the server.
    assert!(exists(&left), "{left} was removed with no server to do it");

    // The same state directory: the same identity, the same label.
    let restarted = Instant::now();
    let server = Server::start(&rig.server.state, "127.0.0.1:0", &SERVE);
    assert_eq!(server.fingerprint, rig.server.fingerprint);
    eventually(
        &format!("the restarted server removing {left}"),
        Duration::from_secs(30),
        || match exists(&left) {
            true => Err("still there".into()),
            false => Ok(()),
        },
    );
    eprintln!(
        "run --rm: removed {:?} after the restart began",
        restarted.elapsed()
    );
    let said = server.log_line(&["removed 1 auto-remove container", &left_id]);
    assert!(said.contains("WARN"), "{said}");
    for name in [&kept, &detached_rm, &theirs] {
        assert!(running(name), "the restarted server stopped {name}");
    }
    rig.server = server;
}

#[test]
fn a_restarted_server_kills_what_an_exec_left_when_it_was_killed() {
    let mut rig = Rig::with("crash-exec-left", &SERVE);
    let target = rig.containers.docker_sleeper("crash-exec-left");
    // A plain `docker exec`'s process: the sweep must leave it.
    docker(&["exec", "-d", &target, "sleep", "603"]).ok();
    let journal = rig.server.state.join("execs");
    // An exec that ends: its call deletes its record.
    let ended = rig
        .admin
        .run(&["exec", &target, "sh", "-c", "echo hi; exit 3"]);
    assert_eq!(ended.code(), 3, "{}", ended.dump());
    // An exec whose client dies: the server kills its process once it
    // notices (the idle timeout), then deletes its record.
    let cancelled = start(
        &mut rig
            .admin
            .command(&["exec", &target, "sh", "-c", "echo started; exec sleep 604"]),
        None,
    );
    cancelled.wait_for_stdout("started\n", FIRST_LINES);
    drop(cancelled);
    let top = || docker(&["top", &target]).ok().out();
    eventually(
        "the cancelled exec's cleanup",
        Duration::from_secs(30),
        || match (top(), std::fs::read_dir(&journal).unwrap().count()) {
            (t, _) if t.contains("sleep 604") => Err(t),
            (_, 0) => Ok(()),
            (_, n) => Err(format!("{n} records")),
        },
    );
    let exec = start(
        &mut rig
            .admin
            .command(&["exec", &target, "sh", "-c", "echo started; exec sleep 602"]),
        None,
    );
    exec.wait_for_stdout("started\n", FIRST_LINES);
    // The running call's record (the ended one's is gone), private to
    // the server's user.
    let records: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(mode(&records[0]), 0o600);
    // The container as the call named it (an admin's name is not
    // resolved, to spare a round trip).
    assert_eq!(
        std::fs::read_to_string(&records[0]).unwrap(),
        format!("{target}\n")
    );

    let (ran, took) = crash_during(&mut rig, exec);
    eprintln!("exec left: the client ended {took:?} after the kill");
    assert_eq!(ran.code(), 255, "{}", ran.dump());
    // The engine keeps an exec's process when its connection goes.
    assert!(top().contains("sleep 602"), "{}", top());

    let restarted = Instant::now();
    let server = Server::start(&rig.server.state, "127.0.0.1:0", &SERVE);
    eventually(
        "the restarted server killing the dead call's exec",
        Duration::from_secs(30),
        || match top() {
            t if t.contains("sleep 602") => Err(t),
            _ => Ok(()),
        },
    );
    eprintln!(
        "exec left: its process was gone {:?} after the restart began",
        restarted.elapsed()
    );
    let exec_id = records[0].file_name().unwrap().to_str().unwrap().to_owned();
    let said = server.log_line(&["killed the process of an exec", &exec_id]);
    assert!(said.contains("WARN"), "{said}");
    assert!(top().contains("sleep 603"), "{}", top());
    assert!(running(&target), "the restarted server stopped {target}");
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
    rig.server = server;
}

#[test]
fn a_second_server_on_the_same_state_leaves_the_first_ones_calls_alone() {
    let rig = Rig::with("crash-twin", &SERVE);
    let live = rig.containers.name("crash-live");
    let run = start(
        &mut rig.admin.command(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            &live,
            IMAGE,
            "sh",
            "-c",
            LINES,
        ]),
        None,
    );
    run.wait_for_stdout("line 3\n", FIRST_LINES);

    // The same identity, in another process: the first one's run --rm
    // container is a live call's, not a crash's leftover.
    let twin = Server::start(&rig.server.state, "127.0.0.1:0", &SERVE);
    assert_eq!(twin.fingerprint, rig.server.fingerprint);
    twin.log_line(&["WARN", "another dockwire serve uses"]);
    assert!(running(&live), "the second server stopped {live}");
    // And the call goes on.
    let lines = run.stdout_so_far().lines().count();
    run.wait_for_stdout(&format!("line {}\n", lines + 5), FIRST_LINES);
    assert!(twin.stop().success());
}

/// The engine's start time of container `name`, and now, both as
/// milliseconds since the epoch.
fn started_ms(name: &str) -> i64 {
    let ran = docker(&["inspect", "-f", "{{.State.StartedAt}}", name]).ok();
    chrono::DateTime::parse_from_rfc3339(ran.out().trim())
        .unwrap()
        .timestamp_millis()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// When each of `names` is gone (ms since the epoch), all polled together
/// every 100 ms, for 30 s at most.
fn gone_ms<const N: usize>(names: [&str; N]) -> [i64; N] {
    let began = Instant::now();
    let mut gone = [None; N];
    while gone.iter().any(Option::is_none) {
        assert!(began.elapsed() < Duration::from_secs(30), "{names:?} stay");
        for (at, name) in gone.iter_mut().zip(names) {
            if at.is_none() && !exists(name) {
                *at = Some(now_ms());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    gone.map(|at| at.unwrap_or_default())
}

#[test]
fn a_restarted_server_holds_the_ttl_and_idle_deadlines_set_before_its_kill() {
    let mut rig = Rig::with("crash-lifetimes", &SERVE);
    let timed = rig.containers.name("crash-ttl");
    let idle = rig.containers.name("crash-idle");
    let untimed = rig.containers.name("crash-untimed");
    for (name, flags) in [
        (&timed, ["--ttl", "7s"]),
        (&idle, ["--idle-timeout", "5s"]),
        (&untimed, ["--label", "plain=yes"]),
    ] {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend(flags);
        args.extend([IMAGE, "sleep", "600"]);
        rig.admin.run(&args).ok();
    }
    let started = started_ms(&timed);
    // `inspect` shows the deadline.
    let shown = rig.admin.run(&["inspect", &timed]).ok().out();
    assert!(
        shown.contains("\"dockwire.expires-by\": \"ttl\""),
        "{shown}"
    );
    assert!(shown.contains("\"dockwire.ttl\": \"7s\""), "{shown}");
    // A touch, then the kill: the idle deadline is 5 s from the touch.
    std::thread::sleep(Duration::from_millis(2000));
    let touched = now_ms();
    rig.admin.run(&["exec", &idle, "true"]).ok();
    rig.server.kill();
    std::thread::sleep(Duration::from_millis(1000));
    let server = Server::start(&rig.server.state, "127.0.0.1:0", &SERVE);
    // Counted from its create, the idle container would be gone by now;
    // the restarted server kept its touch.
    let wait = (touched + 4000 - now_ms()).max(0);
    std::thread::sleep(Duration::from_millis(u64::try_from(wait).unwrap()));
    assert!(exists(&idle), "the touch before the kill was lost");
    let [idle_gone, timed_gone] = gone_ms([&idle, &timed]);
    let off = (idle_gone - (touched + 5000)).abs();
    eprintln!("idle: removed {off} ms off its deadline");
    assert!(off <= 2000, "idle: {off} ms off its deadline");
    let off = (timed_gone - (started + 7000)).abs();
    eprintln!("ttl: removed {off} ms off its deadline");
    assert!(off <= 2000, "ttl: {off} ms off its deadline");
    assert!(running(&untimed), "the restarted server stopped {untimed}");
    rig.server = server;
}
