//! `dockwire exec -d` and `dockwire process …` end to end: a `dockwire
//! serve` process, an admin client that is another `dockwire` process,
//! the real engine behind.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use dockwire_tests::relay::{Faults, Relay};

/// `seq 1 n`'s output.
fn seq(n: u64) -> String {
    (1..=n).map(|k| format!("{k}\n")).collect()
}

#[test]
fn exec_detached_prints_an_id_that_the_process_verbs_act_on_with_dockers_exit_codes() {
    let rig = Rig::new("procs");
    let box_ = rig.containers.docker_sleeper("procs");
    let started = rig
        .admin
        .run(&[
            "exec",
            "-d",
            "--tag",
            "counting",
            "--buffer",
            "1m",
            &box_,
            "sh",
            "-c",
            "seq 1 20000; echo oops >&2; sleep 1; exit 3",
        ])
        .ok();
    let id = started.out().trim().to_owned();
    assert!(id.starts_with("p-") && id.len() == 34, "{id:?}");

    let listed = rig.admin.run(&["process", "ls"]).ok().out();
    let line = listed.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("counting") && line.contains(&box_),
        "{listed}"
    );
    let quiet = rig.admin.run(&["process", "ls", "-q"]).ok().out();
    assert!(quiet.lines().any(|l| l == id), "{quiet}");

    // wait and attach exit with the process's code.
    let waited = rig.admin.run(&["process", "wait", &id]);
    assert_eq!(
        (waited.code(), waited.out().trim()),
        (3, "3"),
        "{}",
        waited.dump()
    );
    let attached = rig.admin.run(&["process", "attach", "--from-start", &id]);
    assert_eq!(attached.code(), 3, "{}", attached.dump());
    assert!(
        attached.out() == seq(20000),
        "attach replays stdout exactly"
    );
    assert_eq!(attached.err(), "oops\n");
    let logs = rig.admin.run(&["process", "logs", &id]).ok();
    assert!(logs.out() == seq(20000));
    assert_eq!(logs.err(), "oops\n");
    // From an offset: the rest only.
    let offset = seq(19990).len().to_string();
    let rest = rig
        .admin
        .run(&["process", "attach", "--from", &offset, &id]);
    assert_eq!(
        rest.out(),
        "19991\n19992\n19993\n19994\n19995\n19996\n19997\n19998\n19999\n20000\n"
    );

    rig.admin.run(&["process", "rm", &id]).ok();
    for verb in [&["wait"][..], &["attach"], &["logs"], &["kill"], &["rm"]] {
        let args: Vec<&str> = ["process"]
            .iter()
            .chain(verb)
            .copied()
            .chain([id.as_str()])
            .collect();
        let gone = rig.admin.run(&args);
        assert_eq!(gone.code(), 1, "{}", gone.dump());
        assert!(
            gone.err().contains(&format!("No such process: {id}")),
            "{}",
            gone.dump()
        );
    }

    // kill: SIGKILL by default, and wait says 137.
    let sleeper = rig
        .admin
        .run(&["exec", "-d", &box_, "sleep", "600"])
        .ok()
        .out()
        .trim()
        .to_owned();
    assert_eq!(
        rig.admin
            .run(&["process", "kill", &sleeper])
            .ok()
            .out()
            .trim(),
        sleeper
    );
    assert_eq!(rig.admin.run(&["process", "wait", &sleeper]).code(), 137);
    rig.admin.run(&["process", "rm", &sleeper]).ok();
}

#[test]
fn a_small_buffer_is_told_on_attach_and_the_tail_is_exact() {
    let rig = Rig::new("procs-small");
    let box_ = rig.containers.docker_sleeper("procs-small");
    let id = rig
        .admin
        .run(&["exec", "-d", "--buffer", "4096", &box_, "seq", "1", "10000"])
        .ok()
        .out()
        .trim()
        .to_owned();
    assert_eq!(rig.admin.run(&["process", "wait", &id]).code(), 0);
    let whole = seq(10000);
    let dropped = whole.len() - 4096;
    let attached = rig.admin.run(&["process", "attach", "--from-start", &id]);
    assert_eq!(attached.code(), 0, "{}", attached.dump());
    assert!(attached.out() == whole[dropped..], "the tail is exact");
    assert!(
        attached
            .err()
            .contains(&format!("{dropped} bytes of stdout are gone")),
        "{}",
        attached.dump()
    );
    let listed = rig.admin.run(&["process", "ls"]).ok().out();
    assert!(listed.contains(&format!("({dropped} dropped)")), "{listed}");
    rig.admin.run(&["process", "rm", &id]).ok();
}

#[test]
fn a_detached_process_outlives_a_killed_server_until_the_next_serve_kills_it() {
    let mut rig = Rig::new("procs-crash");
    let target = rig.containers.docker_sleeper("procs-crash");
    // A plain `docker exec`'s process: the sweep must leave it.
    docker(&["exec", "-d", &target, "sleep", "613"]).ok();
    rig.admin.run(&["exec", "-d", &target, "sleep", "612"]).ok();
    let top = || docker(&["top", &target]).ok().out();
    eventually(
        "the detached process runs",
        Duration::from_secs(20),
        || match top() {
            t if t.contains("sleep 612") => Ok(()),
            t => Err(t),
        },
    );
    let journal = rig.server.state.join("execs");
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 1);
    rig.server.kill();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        top().contains("sleep 612"),
        "its process outlives the crash"
    );
    let server = Server::start(&rig.server.state, "127.0.0.1:0", &[]);
    eventually(
        "the restarted server killing the detached process",
        Duration::from_secs(30),
        || match top() {
            t if t.contains("sleep 612") => Err(t),
            _ => Ok(()),
        },
    );
    assert!(top().contains("sleep 613"), "{}", top());
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
    rig.server = server;
}

#[test]
fn logs_follow_reconnects_when_its_connection_dies_and_prints_each_byte_once() {
    // The server's 3 s idle timeout is the connection's: a cut kills it.
    let rig = Rig::with("procs-follow", &["--idle-timeout", "3"]);
    let box_ = rig.containers.docker_sleeper("procs-follow");
    let server: std::net::SocketAddr = rig
        .admin
        .host
        .trim_start_matches("quic://")
        .parse()
        .unwrap();
    let relay = Relay::start(server, Faults::none(), 1).unwrap();
    let via = Client {
        state: rig.admin.state.clone(),
        host: format!("quic://{}", relay.addr()),
    };
    assert!(via.greet());
    let id = rig
        .admin
        .run(&[
            "exec",
            "-d",
            &box_,
            "sh",
            "-c",
            "seq 1 100000; sleep 10; seq 100001 200000",
        ])
        .ok()
        .out()
        .trim()
        .to_owned();
    let follow = start(&mut via.command(&["process", "logs", "-f", &id]), None);
    follow.wait_for_stdout("\n100000\n", Duration::from_secs(30));
    relay.cut();
    std::thread::sleep(Duration::from_millis(4500));
    relay.restore();
    let ran = follow.finish(Duration::from_secs(60));
    assert_eq!(ran.code(), 0, "{}", ran.dump());
    assert!(
        ran.out() == seq(200_000),
        "each byte once: {} bytes",
        ran.out().len()
    );
    assert!(ran.err().contains("reconnecting"), "{}", ran.dump());
    assert!(relay.stats().to_client.cut > 0, "nothing was cut");
    rig.admin.run(&["process", "rm", &id]).ok();

    // Without a server, no detached processes: the command would serve
    // the engine itself, and they would end with it.
    let local = Command::new(BIN)
        .args(["exec", "-d", &box_, "true"])
        .env_remove("DOCKWIRE_HOST")
        .env_remove("DOCKWIRE_CONTEXT")
        .env("DOCKWIRE_STATE_DIR", rig.scratch.join("nobody"))
        .output()
        .unwrap();
    assert_eq!(local.status.code(), Some(1));
    let said = String::from_utf8_lossy(&local.stderr);
    assert!(
        said.contains("detached processes live in a `dockwire serve`"),
        "{said}"
    );
}

/// `exec -i cat` of 64 MiB of pseudo-random bytes through a relay cut for
/// 5 s in the middle (the server's 2 s idle timeout kills the
/// connection): the command says it is reconnecting, dials again,
/// resumes its session, and prints exactly what it was given, each byte
/// once, exit 0.
#[test]
fn exec_i_reconnects_after_its_connection_dies_and_cat_echoes_64_mib_exactly() {
    let rig = Rig::with("procs-session", &["--idle-timeout", "2"]);
    let box_ = rig.containers.docker_sleeper("procs-session");
    let server: std::net::SocketAddr = rig
        .admin
        .host
        .trim_start_matches("quic://")
        .parse()
        .unwrap();
    let relay = Relay::start(server, Faults::none(), 1).unwrap();
    let via = Client {
        state: rig.admin.state.clone(),
        host: format!("quic://{}", relay.addr()),
    };
    assert!(via.greet());
    const TOTAL: usize = 64 << 20;
    let data = pseudo_random(TOTAL);
    let cat = start(
        &mut via.command(&["exec", "-i", &box_, "cat"]),
        Some(data.clone()),
    );
    eventually("half of it echoed", Duration::from_secs(60), || {
        match cat.stdout_len() {
            n if n >= TOTAL / 2 => Ok(()),
            n => Err(format!("{n} bytes so far")),
        }
    });
    relay.cut();
    std::thread::sleep(Duration::from_secs(5));
    relay.restore();
    let ran = cat.finish(Duration::from_secs(120));
    assert_eq!(ran.code(), 0, "{}", ran.err());
    assert_eq!(ran.stdout.len(), TOTAL, "each byte once");
    assert!(ran.stdout == data, "the same bytes");
    assert!(ran.err().contains("reconnecting"), "{}", ran.err());
    assert!(relay.stats().to_client.cut > 0, "nothing was cut");
}

/// `run -i --rm` of a `cat` fed 8 MiB through a relay cut for 5 s in the
/// middle: a run with stdin is a session as `exec -i` is, so the command
/// reconnects, prints exactly what it was given, exits with the
/// process's code, and the `--rm` container is removed at the end.
#[test]
fn run_i_rm_reconnects_after_its_connection_dies_echoes_exactly_and_is_removed() {
    let rig = Rig::with("procs-run-session", &["--idle-timeout", "2"]);
    let server: std::net::SocketAddr = rig
        .admin
        .host
        .trim_start_matches("quic://")
        .parse()
        .unwrap();
    let relay = Relay::start(server, Faults::none(), 1).unwrap();
    let via = Client {
        state: rig.admin.state.clone(),
        host: format!("quic://{}", relay.addr()),
    };
    assert!(via.greet());
    let name = rig.containers.name("run-session");
    const TOTAL: usize = 8 << 20;
    let data = pseudo_random(TOTAL);
    let args = [
        "run",
        "-i",
        "--rm",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "cat; exit 4",
    ];
    let cat = start(&mut via.command(&args), Some(data.clone()));
    eventually("half of it echoed", Duration::from_secs(60), || {
        match cat.stdout_len() {
            n if n >= TOTAL / 2 => Ok(()),
            n => Err(format!("{n} bytes so far")),
        }
    });
    relay.cut();
    std::thread::sleep(Duration::from_secs(5));
    relay.restore();
    let ran = cat.finish(Duration::from_secs(120));
    assert_eq!(ran.code(), 4, "{}", ran.err());
    assert_eq!(ran.stdout.len(), TOTAL, "each byte once");
    assert!(ran.stdout == data, "the same bytes");
    assert!(ran.err().contains("reconnecting"), "{}", ran.err());
    assert!(relay.stats().to_client.cut > 0, "nothing was cut");
    eventually(
        "the --rm container removed",
        Duration::from_secs(20),
        || match docker(&["inspect", "--type", "container", &name]).code() {
            0 => Err("still there".into()),
            _ => Ok(()),
        },
    );
}

/// `attach` to a `run -d -i` container's `cat`, fed 8 MiB through a relay
/// cut for 5 s in the middle: an attach with stdin is a session too, so
/// the command reconnects, prints exactly what it was given and exits
/// with the container's code.
#[test]
fn attach_reconnects_after_its_connection_dies_and_echoes_exactly() {
    let rig = Rig::with("procs-attach-session", &["--idle-timeout", "2"]);
    let server: std::net::SocketAddr = rig
        .admin
        .host
        .trim_start_matches("quic://")
        .parse()
        .unwrap();
    let relay = Relay::start(server, Faults::none(), 1).unwrap();
    let via = Client {
        state: rig.admin.state.clone(),
        host: format!("quic://{}", relay.addr()),
    };
    assert!(via.greet());
    let name = rig.containers.name("attach-session");
    let args = [
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "cat; exit 6",
    ];
    rig.admin.run(&args).ok();
    const TOTAL: usize = 8 << 20;
    let data = pseudo_random(TOTAL);
    let cat = start(&mut via.command(&["attach", &name]), Some(data.clone()));
    eventually("half of it echoed", Duration::from_secs(60), || {
        match cat.stdout_len() {
            n if n >= TOTAL / 2 => Ok(()),
            n => Err(format!("{n} bytes so far")),
        }
    });
    relay.cut();
    std::thread::sleep(Duration::from_secs(5));
    relay.restore();
    let ran = cat.finish(Duration::from_secs(120));
    assert_eq!(ran.code(), 6, "{}", ran.err());
    assert_eq!(ran.stdout.len(), TOTAL, "each byte once");
    assert!(ran.stdout == data, "the same bytes");
    assert!(ran.err().contains("reconnecting"), "{}", ran.err());
    assert!(relay.stats().to_client.cut > 0, "nothing was cut");
}

/// Deterministic pseudo-random bytes (xorshift64).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x = 0x5eed_cafe_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `exec -it sh` through a relay cut for 5 s in the middle, a command
/// typed during the cut: the terminal stays raw, the command reconnects
/// and resumes its session, the keys typed during the cut reach the shell
/// once, each output arrives once, the exit code is the shell's, and the
/// terminal is restored after.
#[test]
fn exec_it_resumes_after_a_cut_with_each_key_and_output_once_and_the_shells_code() {
    let rig = Rig::with("procs-session-it", &["--idle-timeout", "2"]);
    let box_ = rig.containers.docker_sleeper("procs-session-it");
    let server: std::net::SocketAddr = rig
        .admin
        .host
        .trim_start_matches("quic://")
        .parse()
        .unwrap();
    let relay = Relay::start(server, Faults::none(), 1).unwrap();
    let via = Client {
        state: rig.admin.state.clone(),
        host: format!("quic://{}", relay.addr()),
    };
    assert!(via.greet());
    let before = rig.scratch.join("stty-before");
    let after = rig.scratch.join("stty-after");
    let script = format!(
        "stty -g > '{before}'; '{BIN}' --host '{host}' --state-dir '{state}' exec -it {box_} sh; \
         echo \"code=$?\"; stty -g > '{after}'",
        before = before.display(),
        after = after.display(),
        host = via.host,
        state = via.state.display(),
    );
    let mut term = Terminal::spawn(&script, 80, 24);
    let mut mark = term.expect("# ", 0);
    term.type_keys("echo be''fore\r");
    mark = term.expect("before", mark);
    relay.cut();
    std::thread::sleep(Duration::from_millis(500));
    term.type_keys("echo dur''ing\r");
    std::thread::sleep(Duration::from_millis(4500));
    relay.restore();
    mark = term.expect("reconnecting", mark);
    mark = term.expect("during", mark);
    term.type_keys("echo af''ter\r");
    mark = term.expect("after", mark);
    term.type_keys("exit 3\r");
    term.expect("code=3", mark);
    assert_eq!(term.wait(), 0, "{:?}", term.screen());
    let screen = term.screen();
    for (word, typed) in [
        ("before", "be''fore"),
        ("during", "dur''ing"),
        ("after", "af''ter"),
    ] {
        assert_eq!(screen.matches(word).count(), 1, "{word}: {screen:?}");
        assert_eq!(screen.matches(typed).count(), 1, "{typed}: {screen:?}");
    }
    assert!(relay.stats().to_client.cut > 0, "nothing was cut");
    let before = std::fs::read(before).unwrap();
    let after = std::fs::read(after).unwrap();
    assert!(!before.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&before),
        "the terminal was not restored"
    );
}
