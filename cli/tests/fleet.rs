//! A fleet of three hosts, end to end: three private Docker engines (each
//! a `dockerd` of its own, in a network namespace of its own), each
//! served by its own `dockwire serve` over QUIC with mutual TLS, and one
//! client with a context per host. Lists and watches across hosts name
//! each row's host; `HOST/CONTAINER` picks the host for exec, logs and
//! cp; `run --place` chooses by the servers' figures and labels; a host
//! whose engine is down is reported once while the others answer, and
//! placement skips it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use dockwire_tests::private_engine::{Containers, PrivateEngine, Stop};

/// Three hosts and a client that knows them as `h1`, `h2`, `h3`.
struct Three {
    client: PathBuf,
    // Dropped in this order: the servers, then their engines.
    _servers: Vec<Server>,
    engines: Vec<PrivateEngine>,
    scratch: Scratch,
}

impl Three {
    fn start() -> Three {
        let scratch = Scratch::new("fleet");
        let client = scratch.join("client");
        let me = fingerprint_of(&client);
        let (mut servers, mut engines) = (Vec::new(), Vec::new());
        for i in 1..=3 {
            let engine = PrivateEngine::start(Containers::StopWithTheEngine);
            let state = scratch.join(&format!("server{i}"));
            trust(&state, &me, "coordinator", true);
            let zone = format!("zone=z{i}");
            let server = Server::start_for_engine(
                &state,
                "127.0.0.1:0",
                &["--label", &zone, "--user-network", "none"],
                &engine.socket(),
            );
            let host = format!("quic://127.0.0.1:{}", server.port);
            let name = format!("h{i}");
            let made = bare(
                &client,
                &[
                    "context",
                    "create",
                    &name,
                    "--host",
                    &host,
                    "--server-fingerprint",
                    &server.fingerprint,
                ],
            );
            made.ok();
            servers.push(server);
            engines.push(engine);
        }
        Three {
            client,
            _servers: servers,
            engines,
            scratch,
        }
    }

    /// `dockwire --state-dir CLIENT ARGS…`.
    fn dw(&self, args: &[&str]) -> Ran {
        bare(&self.client, args)
    }
}

fn bare(state: &Path, args: &[&str]) -> Ran {
    let mut command = dockwire();
    command.arg("--state-dir").arg(state).args(args);
    run_with(&mut command, None, std::time::Duration::from_secs(120))
}

/// The rows of a listing with a `HOST` column first: (host, last column).
fn hosts_and_names(listing: &str) -> Vec<(String, String)> {
    let mut lines = listing.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("HOST "), "no HOST column: {listing}");
    lines
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words[0].to_owned(), words[words.len() - 1].to_owned())
        })
        .collect()
}

/// How many containers each host runs, by `ps -q --all-contexts`.
fn running(three: &Three) -> BTreeMap<String, usize> {
    let listed = three.dw(&["ps", "-q", "--all-contexts"]).ok().out();
    let mut counts = BTreeMap::new();
    for line in listed.lines() {
        let (host, id) = line.split_once('/').expect(line);
        assert_eq!(id.len(), 12, "{line}");
        *counts.entry(host.to_owned()).or_default() += 1;
    }
    counts
}

#[test]
fn a_fleet_lists_across_hosts_names_containers_by_host_and_places_work() {
    let mut three = Three::start();
    let since = format!("{}", format::unix_now() - 1);
    assert_eq!(
        three.dw(&["context", "ls", "-q"]).ok().out(),
        "default\nh1\nh2\nh3\n"
    );

    // A container on each host, named alike but for its number.
    for i in 1..=3 {
        let (host, name, env) = (format!("h{i}"), format!("web{i}"), format!("WHERE=h{i}"));
        let script = "echo started on $WHERE; exec sleep 600";
        three
            .dw(&[
                "--context",
                &host,
                "run",
                "-d",
                "--name",
                &name,
                "-e",
                &env,
                IMAGE,
                "sh",
                "-c",
                script,
            ])
            .ok();
    }

    // One view: each row names its host.
    let listed = three.dw(&["ps", "--all-contexts"]).ok().out();
    assert_eq!(
        hosts_and_names(&listed),
        [("h1", "web1"), ("h2", "web2"), ("h3", "web3")].map(|(h, n)| (h.to_owned(), n.to_owned()))
    );
    let formatted = three
        .dw(&["ps", "--all-contexts", "--format", "{{.Host}} {{.Names}}"])
        .ok()
        .out();
    assert_eq!(formatted, "h1 web1\nh2 web2\nh3 web3\n");
    let quiet = three.dw(&["ps", "-q", "--context", "h1,h3"]).ok().out();
    let hosts: Vec<&str> = quiet.lines().map(|l| &l[..3]).collect();
    assert_eq!(hosts, ["h1/", "h3/"], "{quiet}");
    let images = three.dw(&["images", "--all-contexts"]).ok().out();
    let image_hosts: Vec<String> = hosts_and_names(&images)
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(image_hosts, ["h1", "h2", "h3"], "{images}");
    let stats = three
        .dw(&["stats", "--no-stream", "--all-contexts"])
        .ok()
        .out();
    let stat_hosts: Vec<String> = hosts_and_names(&stats)
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(stat_hosts, ["h1", "h2", "h3"], "{stats}");
    let until = format!("{}", format::unix_now() + 1);
    let events = three
        .dw(&[
            "events",
            "--context",
            "h1,h2",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "event=start",
        ])
        .ok()
        .out();
    let mut started: Vec<&str> = events.lines().map(|l| &l[..2]).collect();
    started.sort_unstable();
    assert_eq!(started, ["h1", "h2"], "{events}");

    // HOST/CONTAINER picks the host.
    let said = three
        .dw(&["exec", "h2/web2", "sh", "-c", "echo $WHERE"])
        .ok();
    assert_eq!(said.out(), "h2\n");
    let failed = three.dw(&["exec", "h3/web3", "sh", "-c", "exit 7"]);
    assert_eq!(failed.code(), 7, "{}", failed.dump());
    assert_eq!(three.dw(&["logs", "h1/web1"]).ok().out(), "started on h1\n");
    let local = three.scratch.join("note.txt");
    std::fs::write(&local, b"to h3\n").unwrap();
    three
        .dw(&["cp", local.to_str().unwrap(), "h3/web3:/tmp/"])
        .ok();
    assert_eq!(
        three
            .dw(&["exec", "h3/web3", "cat", "/tmp/note.txt"])
            .ok()
            .out(),
        "to h3\n"
    );
    let back = three.scratch.join("back.txt");
    three
        .dw(&["cp", "h3/web3:/tmp/note.txt", back.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&back).unwrap(), b"to h3\n");
    let mixed = three.dw(&["rm", "-f", "h1/web1", "h2/web2"]);
    assert!(mixed.failed(None).contains("containers on several hosts"));

    // least-loaded: h1 and h3 have most of their memory reserved.
    for host in ["h1", "h3"] {
        three
            .dw(&[
                "--context",
                host,
                "run",
                "-d",
                "--name",
                "load",
                "-m",
                "16g",
                IMAGE,
                "sleep",
                "600",
            ])
            .ok();
    }
    let placed = three.dw(&[
        "--all-contexts",
        "run",
        "--rm",
        "--place",
        "least-loaded",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(placed.code(), 3, "{}", placed.dump());
    assert_eq!(placed.out(), "out\n");
    assert_eq!(placed.err(), "dockwire: placed on h2\nerr\n");
    for host in ["h1", "h3"] {
        three.dw(&["--context", host, "rm", "-f", "load"]).ok();
    }

    // spread: nine runs, three each (each host runs one already).
    for _ in 0..9 {
        let ran = three.dw(&[
            "--all-contexts",
            "run",
            "-d",
            "--place",
            "spread",
            IMAGE,
            "sleep",
            "600",
        ]);
        ran.ok();
    }
    assert_eq!(
        running(&three),
        BTreeMap::from([("h1".into(), 4), ("h2".into(), 4), ("h3".into(), 4)])
    );

    // A constraint on the servers' labels.
    let zoned = three.dw(&[
        "--context",
        "h1,h2,h3",
        "run",
        "--rm",
        "--place",
        "spread",
        "--constraint",
        "zone=z3",
        IMAGE,
        "echo",
        "zoned",
    ]);
    assert_eq!(
        (zoned.out(), zoned.err()),
        ("zoned\n".into(), "dockwire: placed on h3\n".into())
    );
    let nowhere = three.dw(&[
        "--all-contexts",
        "run",
        "--rm",
        "--place",
        "spread",
        "--constraint",
        "zone=mars",
        IMAGE,
        "true",
    ]);
    assert!(nowhere.failed(None).contains("h1: not labelled zone=mars"));

    // One engine down: reported once, the others answer; placement skips
    // it.
    let since_stop = three.engines[1].stop(Stop::Kill);
    three.engines[1].wait_stopped(since_stop);
    let listed = three.dw(&["ps", "--all-contexts"]);
    assert_eq!(listed.code(), 1, "{}", listed.dump());
    let err = listed.err();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("dockwire: host h2: "), "{err}");
    let hosts: Vec<String> = hosts_and_names(&listed.out())
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(
        hosts.iter().filter(|h| *h == "h1").count(),
        4,
        "{}",
        listed.out()
    );
    assert_eq!(
        hosts.iter().filter(|h| *h == "h3").count(),
        4,
        "{}",
        listed.out()
    );
    assert!(!hosts.contains(&"h2".to_owned()));
    let skipped = three.dw(&[
        "--context",
        "h2,h1,h3",
        "run",
        "--rm",
        "--place",
        "first-healthy",
        IMAGE,
        "echo",
        "hi",
    ]);
    assert_eq!(
        (skipped.out(), skipped.err()),
        ("hi\n".into(), "dockwire: placed on h1\n".into())
    );

    // h3's server gone: it does not answer at all, and is reported once
    // when the fan-out's timeout has passed.
    drop(three._servers.pop());
    let began = std::time::Instant::now();
    let listed = three.dw(&["ps", "--all-contexts"]);
    assert_eq!(listed.code(), 1, "{}", listed.dump());
    let err = listed.err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("dockwire: host h2: "), "{err}");
    assert!(lines[1].starts_with("dockwire: host h3: "), "{err}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(30),
        "{err}"
    );
    let hosts: Vec<String> = hosts_and_names(&listed.out())
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(hosts, ["h1"; 4], "{}", listed.out());
}

mod format {
    /// Seconds since the epoch.
    pub fn unix_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}
