//! Soak: one `dockwire serve` under a mixed workload for
//! `DOCKWIRE_SOAK_SECS` seconds (60 by default, as CI runs it; the full
//! run is 600), driven as people drive it: `dockwire` processes for run,
//! exec with stdin, cp both ways, attach and followed logs, and aborts on
//! purpose — clients killed with SIGKILL in the middle of an exec, a
//! `run --rm` and a followed `logs -f`, and a followed subscription
//! cancelled through the library.
//!
//! The workload runs in rounds. In each, three workers run their share
//! at once; then the server settles: a killed client is only noticed at
//! the idle timeout (5 s here, so that a round stays short), after which
//! the server must have removed what the aborted calls made. At the end
//! of each round, with no call in flight, the server is measured:
//! containers it made, processes in the containers the workload uses,
//! its open descriptors, threads and resident memory. Containers,
//! processes and descriptors must be back exactly where they started
//! after every round; the resident memory of the last window (the last
//! minute, or the last quarter of a shorter run) must be within 10% of
//! the first window's, and so must the threads, give or take the few the
//! runtime's blocking pool starts and retires on demand.
//!
//! No call may fail but the aborted ones, each checked for its outcome:
//! the server's log of calls must show no failed or refused call, as
//! many calls ended cancelled or lost as aborts (a client killed with
//! SIGKILL sends no close: its calls end lost at the idle timeout), and
//! `cp`'s calls as they are (one `fs/stat` per copy in, one `archive-get`
//! per copy out). Needs the engine and the test image (`scripts/engine`);
//! fails loudly without.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::gauge::{self, Sampler, Usage, mib};
use common::wire::Wire;
use common::*;
use dockwire_docker::catalog::{ContainerLogs, Data, LogItem};
use dockwire_tests::Prng;
use futures::StreamExt;

/// The length of the run, in seconds, unless `DOCKWIRE_SOAK_SECS` says.
const DEFAULT_SECS: u64 = 60;

/// The server's idle timeout: how long a killed client's calls live on.
const IDLE_TIMEOUT_SECS: u64 = 5;

/// How far the last window's memory and threads may be above the first's.
const TOLERANCE_PERCENT: u64 = 10;

/// How many threads the last window may have above the first's whatever
/// the percentage says: tokio's blocking pool starts a thread when a
/// blocking task finds none idle and retires it after ten idle seconds,
/// so a server of eight threads shows nine in one window and eight in
/// the next with nothing leaked. A leak of one per call would add more
/// than a hundred.
const THREAD_SLACK: u64 = 4;

/// The longest a window is.
const WINDOW: Duration = Duration::from_secs(60);

/// How long the server may take to settle after a round.
const SETTLE: Duration = Duration::from_secs(60);

#[test]
fn a_mixed_workload_with_aborts_runs_without_errors_or_growth() {
    let secs: u64 = match std::env::var("DOCKWIRE_SOAK_SECS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("DOCKWIRE_SOAK_SECS is not a number of seconds: {v:?}")),
        Err(_) => DEFAULT_SECS,
    };
    let length = Duration::from_secs(secs);
    let rig = Rig::with("soak", &["--idle-timeout", &IDLE_TIMEOUT_SECS.to_string()]);
    let soak = Soak::new(&rig);
    let pid = rig.server.pid();

    // A first round, so that the start is measured with every kind of
    // call made once.
    soak.round(0);
    let start = soak.settle(None);
    let sampler = Sampler::start(pid, Duration::from_millis(500));
    let began = Instant::now();
    let mut snapshots = Vec::new();
    let mut round = 1;
    while began.elapsed() < length {
        soak.round(round);
        let mut snapshot = soak.settle(Some(&start));
        snapshot.at = began.elapsed();
        snapshots.push(snapshot);
        round += 1;
    }
    let samples = sampler.stop();
    let elapsed = began.elapsed();

    let window = WINDOW.min(length / 4);
    let first: Vec<&Snapshot> = snapshots
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || s.at <= window)
        .map(|(_, s)| s)
        .collect();
    let last: Vec<&Snapshot> = snapshots
        .iter()
        .enumerate()
        .filter(|(i, s)| *i + 1 == snapshots.len() || s.at + window >= elapsed)
        .map(|(_, s)| s)
        .collect();
    let high = |of: &[&Snapshot]| gauge::peak(of.iter().map(|s| &s.server));
    let (first_high, last_high) = (high(&first), high(&last));
    let peak = gauge::peak(samples.iter().map(|(_, u)| u));
    let outcomes = Outcomes::of(&rig.server.log());
    let counts = soak.counts();
    let report = format!(
        "soak of {elapsed:.0?} ({} rounds after the first; windows of {window:?}):\n  calls by kind (all rounds): {counts}\n  aborts on purpose: {}\n  the server's log of calls: {outcomes}\n  start (after round 0): {}; {} containers, {} processes\n  first window ({} rounds): highest {}\n  last window ({} rounds):  highest {}\n  peak over the run ({} samples): RSS {:.1} MiB, {} fds, {} threads\n  RSS last/first window: {:.1}%",
        snapshots.len(),
        soak.aborts.load(Ordering::SeqCst),
        start.server,
        start.containers,
        start.processes,
        first.len(),
        first_high,
        last.len(),
        last_high,
        samples.len(),
        mib(peak.rss_kib),
        peak.fds,
        peak.threads,
        last_high.rss_kib as f64 * 100.0 / first_high.rss_kib as f64,
    );
    println!("{report}");

    assert_eq!(
        outcomes.failed,
        Vec::<String>::new(),
        "calls failed or were refused:\n{report}"
    );
    assert_eq!(
        outcomes.cancelled,
        soak.aborts.load(Ordering::SeqCst),
        "the cancelled and lost calls are not the aborted ones:\n{report}"
    );
    // cp asks fs/stat what its destination is, then copies: one stat per
    // copy in, one archive read per copy out (its answer carries the
    // source's stat), none of them dropped.
    let copies = soak.copies.load(Ordering::SeqCst);
    assert!(
        outcomes.fs_stats == copies && outcomes.archive_gets == copies && outcomes.stats == 0,
        "cp's calls are not a stat per copy in and an archive read per copy out:\n{report}"
    );
    assert!(
        outcomes.odd.is_empty(),
        "the server logged errors:\n{}\n{report}",
        outcomes.odd.join("\n")
    );
    assert!(
        within(last_high.rss_kib, first_high.rss_kib),
        "the resident memory grew by more than {TOLERANCE_PERCENT}% from the first window to the last:\n{report}"
    );
    assert!(
        within(last_high.threads, first_high.threads)
            || last_high.threads <= first_high.threads + THREAD_SLACK,
        "the threads grew by more than {TOLERANCE_PERCENT}% and {THREAD_SLACK} threads from the first window to the last:\n{report}"
    );
}

/// Whether `now` is within the tolerance of `then`.
fn within(now: u64, then: u64) -> bool {
    now * 100 <= then * (100 + TOLERANCE_PERCENT)
}

/// The server and what the workload left, with no call in flight.
#[derive(Clone, Debug)]
struct Snapshot {
    /// Since the start of the timed run.
    at: Duration,
    server: Usage,
    /// Containers labelled with this server's fingerprint.
    containers: usize,
    /// Processes in the workload's long-lived containers.
    processes: usize,
}

/// The workload's containers, clients and tallies.
struct Soak<'a> {
    rig: &'a Rig,
    /// Long-lived: a sleeper for exec and cp, and a ticker for logs.
    target: String,
    ticker: String,
    rt: tokio::runtime::Runtime,
    /// One connection for the whole run, for the library's cancels.
    wire: Option<Wire>,
    /// Calls made, by kind.
    made: Mutex<Vec<(&'static str, usize)>>,
    /// Aborts on purpose (each must show as one cancelled or lost call).
    aborts: AtomicUsize,
    /// Copies into the container (each reads the path's stat first).
    copies: AtomicUsize,
    /// A unique number per operation.
    next: AtomicUsize,
}

impl<'a> Soak<'a> {
    fn new(rig: &'a Rig) -> Soak<'a> {
        let target = rig.containers.name("soak-target");
        let ticker = rig.containers.name("soak-ticker");
        let admin = &rig.admin;
        admin
            .run(&[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                &target,
                IMAGE,
                "sleep",
                "86400",
            ])
            .ok();
        let tick = "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.2; done";
        admin
            .run(&[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                &ticker,
                IMAGE,
                "sh",
                "-c",
                tick,
            ])
            .ok();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let wire = rt.block_on(Wire::connect(
            &admin.state,
            rig.server.port,
            &rig.server.fingerprint,
        ));
        Soak {
            rig,
            target,
            ticker,
            rt,
            wire: Some(wire),
            made: Mutex::new(Vec::new()),
            aborts: AtomicUsize::new(0),
            copies: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// One round: three workers at once. The third does the slow aborts
    /// once; the first two repeat their share until it is done.
    fn round(&self, round: usize) {
        let slow_done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut first = true;
                while first || !slow_done.load(Ordering::SeqCst) {
                    self.run_rm();
                    self.exec_stdin();
                    self.cp_both_ways(round);
                    first = false;
                }
            });
            scope.spawn(|| {
                let mut first = true;
                while first || !slow_done.load(Ordering::SeqCst) {
                    self.attach();
                    self.logs_killed();
                    self.logs_cancelled();
                    first = false;
                }
            });
            scope.spawn(|| {
                // Whatever happens, the other workers stop.
                struct Done<'b>(&'b AtomicBool);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let _done = Done(&slow_done);
                self.exec_killed();
                self.run_killed();
            });
        });
    }

    /// Waits until the server has let go of what the round made (with
    /// `start`: until containers and processes are as many as then and
    /// the descriptors no more), then measures.
    fn settle(&self, start: Option<&Snapshot>) -> Snapshot {
        let pid = self.rig.server.pid();
        let deadline = Instant::now() + SETTLE;
        let mut last_fds = None;
        loop {
            let now = Snapshot {
                at: Duration::ZERO,
                server: gauge::usage(pid),
                containers: self.containers(),
                processes: self.processes(),
            };
            // Every aborted call has ended on the server (a killed
            // client's, at the idle timeout).
            let ended = Outcomes::of(&self.rig.server.log()).cancelled
                == self.aborts.load(Ordering::SeqCst);
            // The engine's answer to a cleanup can come just before its
            // connection closes: the descriptors must hold still too.
            let still = last_fds == Some(now.server.fds);
            last_fds = Some(now.server.fds);
            let settled = ended
                && still
                && match start {
                    // The target's sleep and the ticker's shell.
                    None => now.containers == 2 && now.processes == 2,
                    Some(start) => {
                        now.containers == start.containers
                            && now.processes == start.processes
                            && now.server.fds <= start.server.fds
                    }
                };
            if settled {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not settle within {SETTLE:?} after a round: now {now:?}, at the start {start:?}; containers:\n{}",
                docker(&["ps", "-a", "--filter", &self.label()]).out()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn label(&self) -> String {
        format!("label=dockwire.server={}", self.rig.server.fingerprint)
    }

    /// Containers this server made that the engine still has.
    fn containers(&self) -> usize {
        docker(&["ps", "-a", "-q", "--filter", &self.label()])
            .ok()
            .out()
            .lines()
            .count()
    }

    /// Processes in the long-lived containers, but the ticker's passing
    /// `sleep 0.2`.
    fn processes(&self) -> usize {
        [&self.target, &self.ticker]
            .iter()
            .map(|c| {
                docker(&["top", c, "-o", "pid,args"])
                    .ok()
                    .out()
                    .lines()
                    .skip(1)
                    .filter(|l| !l.ends_with("sleep 0.2"))
                    .count()
            })
            .sum()
    }

    fn count(&self, kind: &'static str) -> usize {
        let mut made = self.made.lock().unwrap();
        match made.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => made.push((kind, 1)),
        }
        self.next.fetch_add(1, Ordering::SeqCst)
    }

    fn counts(&self) -> String {
        let made = self.made.lock().unwrap();
        made.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn admin(&self) -> &Client {
        &self.rig.admin
    }

    // -------------------------------------------------- the workload

    /// `run --rm`: its output and exit code, and no container left.
    fn run_rm(&self) {
        let k = self.count("run --rm");
        let name = self.rig.containers.name("soak-run");
        let script = format!("echo run {k}; exit {}", k % 5);
        let run = self.admin().run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            &script,
        ]);
        assert_eq!(run.code(), (k % 5) as i32, "{}", run.dump());
        assert_eq!(run.out(), format!("run {k}\n"), "{}", run.dump());
        assert!(run.stderr.is_empty(), "{}", run.dump());
    }

    /// `exec -i` with 64 KiB on stdin through `cat`: the same bytes back,
    /// and its exit code.
    fn exec_stdin(&self) {
        let k = self.count("exec -i");
        let input = Prng(k as u64).bytes(64 * 1024).to_vec();
        let exec = self.admin().run_in(
            &["exec", "-i", &self.target, "sh", "-c", "cat; exit 3"],
            &input,
        );
        assert_eq!(exec.code(), 3, "{}", exec.dump());
        assert_same_bytes("exec -i cat", &exec.stdout, &input);
    }

    /// `cp` a file into the target and back out: the same bytes.
    fn cp_both_ways(&self, round: usize) {
        let k = self.count("cp in+out");
        let name = format!("soak-cp-{round}-{k}");
        let sent = Prng(k as u64 ^ 0xc0).bytes(100_000 + k).to_vec();
        let local = self.rig.scratch.join(&name);
        std::fs::write(&local, &sent).unwrap();
        let into = format!("{}:/tmp/", self.target);
        self.copies.fetch_add(1, Ordering::SeqCst);
        let cp = self.admin().run(&["cp", local.to_str().unwrap(), &into]);
        assert_eq!(cp.code(), 0, "{}", cp.dump());
        std::fs::remove_file(&local).unwrap();
        let from = format!("{}:/tmp/{name}", self.target);
        let cp = self.admin().run(&["cp", &from, local.to_str().unwrap()]);
        assert_eq!(cp.code(), 0, "{}", cp.dump());
        assert_same_bytes("cp in and out", &std::fs::read(&local).unwrap(), &sent);
        std::fs::remove_file(&local).unwrap();
        // The target's disk stays as it was.
        let rm = self
            .admin()
            .run(&["exec", &self.target, "rm", &format!("/tmp/{name}")]);
        assert_eq!(rm.code(), 0, "{}", rm.dump());
    }

    /// `attach` to a `cat` started with `run -d -i --rm`: what goes in
    /// comes back, closing stdin ends it, and the container goes.
    fn attach(&self) {
        let k = self.count("attach");
        let name = self.rig.containers.name("soak-attach");
        self.admin()
            .run(&[
                "run",
                "-d",
                "-i",
                "--rm",
                "--network",
                "none",
                "--name",
                &name,
                IMAGE,
                "cat",
            ])
            .ok();
        let line = format!("attach {k}\n");
        let attach = self.admin().run_in(&["attach", &name], line.as_bytes());
        assert_eq!(attach.code(), 0, "{}", attach.dump());
        assert_eq!(attach.out(), line, "{}", attach.dump());
        eventually(
            &format!("{name} removed after its attach"),
            Duration::from_secs(30),
            || match exists(&name) {
                false => Ok(()),
                true => Err("still there".into()),
            },
        );
    }

    /// `logs -f` killed with SIGKILL once it printed a few lines: those
    /// lines are the ticker's, in order.
    fn logs_killed(&self) {
        self.count("logs -f, killed");
        let mut live =
            Live::start(
                self.admin()
                    .command(&["logs", "-f", "--tail", "2", &self.ticker]),
            );
        live.wait_for_lines(4);
        self.aborts.fetch_add(1, Ordering::SeqCst);
        let (status, out) = live.kill();
        assert_eq!(status.signal(), Some(9), "{status:?}");
        ticks_in_order(&out.lines().map(str::to_owned).collect::<Vec<_>>());
    }

    /// A followed subscription through the library, cancelled once a few
    /// lines came: those lines are the ticker's, in order, and the
    /// connection serves on.
    fn logs_cancelled(&self) {
        self.count("logs follow, cancelled");
        let mut input = ContainerLogs::new(&self.ticker);
        input.follow = true;
        input.tail = Some(2);
        let lines = self.rt.block_on(async {
            let wire = self.wire.as_ref().expect("open until the end");
            let mut items = wire.docker.subscribe(&input).await.unwrap();
            let mut lines = Vec::new();
            while lines.len() < 4 {
                let item = tokio::time::timeout(Duration::from_secs(30), items.next())
                    .await
                    .expect("no tick within 30 s")
                    .expect("the subscription ended")
                    .unwrap();
                let LogItem { data, .. } = item;
                let Data::Text(text) = data else {
                    panic!("not text: {data:?}")
                };
                lines.push(text.trim_end().to_owned());
            }
            self.aborts.fetch_add(1, Ordering::SeqCst);
            items.abort().await;
            lines
        });
        ticks_in_order(&lines);
    }

    /// `exec` of a long sleep, its client killed with SIGKILL: the server
    /// kills the sleep once it notices (at the idle timeout).
    fn exec_killed(&self) {
        let k = self.count("exec, killed");
        let marker = format!("{}", 100_000 + k);
        let live = Live::start(
            self.admin()
                .command(&["exec", &self.target, "sleep", &marker]),
        );
        let shown = format!("sleep {marker}");
        let in_target = || {
            docker(&["top", &self.target, "-o", "pid,args"])
                .ok()
                .out()
                .lines()
                .any(|l| l.trim_end().ends_with(&format!(" {shown}")))
        };
        eventually(
            "the exec's sleep running",
            Duration::from_secs(30),
            || match in_target() {
                true => Ok(()),
                false => Err(live.output()),
            },
        );
        self.aborts.fetch_add(1, Ordering::SeqCst);
        let (status, _) = live.kill();
        assert_eq!(status.signal(), Some(9), "{status:?}");
        eventually(
            "the killed client's sleep ended by the server",
            Duration::from_secs(IDLE_TIMEOUT_SECS + 30),
            || match in_target() {
                false => Ok(()),
                true => Err(format!("{shown} still runs")),
            },
        );
    }

    /// `run --rm` of a long sleep, its client killed with SIGKILL: the
    /// server removes the container once it notices.
    fn run_killed(&self) {
        self.count("run --rm, killed");
        let name = self.rig.containers.name("soak-killed");
        let live = Live::start(self.admin().command(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            IMAGE,
            "sleep",
            "600",
        ]));
        eventually(
            "the killed run's container running",
            Duration::from_secs(30),
            || match exists(&name) && running(&name) {
                true => Ok(()),
                false => Err(live.output()),
            },
        );
        self.aborts.fetch_add(1, Ordering::SeqCst);
        let (status, _) = live.kill();
        assert_eq!(status.signal(), Some(9), "{status:?}");
        eventually(
            "the killed run's container removed by the server",
            Duration::from_secs(IDLE_TIMEOUT_SECS + 30),
            || match exists(&name) {
                false => Ok(()),
                true => Err("still there".into()),
            },
        );
    }
}

impl Drop for Soak<'_> {
    fn drop(&mut self) {
        // The library's connection closes before the runtime goes.
        if let Some(wire) = self.wire.take() {
            self.rt.block_on(wire.close());
        }
    }
}

/// Lines `tick N`, `tick N+1`, … with no gap.
fn ticks_in_order(lines: &[String]) {
    let numbers: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("tick ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a tick: {l:?} in {lines:?}"))
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "ticks out of order: {lines:?}"
    );
}

/// A `dockwire` process whose output is read as it comes, to be killed.
struct Live {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl Live {
    fn start(mut command: Command) -> Live {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, err) = (Arc::default(), Arc::default());
        Live::pump(child.stdout.take().unwrap(), &out);
        Live::pump(child.stderr.take().unwrap(), &err);
        Live { child, out, err }
    }

    fn pump(from: impl Read + Send + 'static, to: &Arc<Mutex<Vec<u8>>>) {
        let to = to.clone();
        std::thread::spawn(move || read_into(from, &to));
    }

    /// What it printed so far, for messages.
    fn output(&self) -> String {
        format!(
            "stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&self.out.lock().unwrap()),
            String::from_utf8_lossy(&self.err.lock().unwrap())
        )
    }

    /// Waits (30 s at most) until it printed `n` whole lines.
    fn wait_for_lines(&mut self, n: usize) {
        eventually(&format!("{n} lines"), Duration::from_secs(30), || {
            let lines = self
                .out
                .lock()
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            match lines >= n {
                true => Ok(()),
                false => Err(self.output()),
            }
        });
    }

    /// Kills it with SIGKILL: how it ended, and its whole lines.
    fn kill(mut self) -> (std::process::ExitStatus, String) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        let out = String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned();
        let whole = match out.rfind('\n') {
            Some(end) => out[..end + 1].to_owned(),
            None => String::new(),
        };
        (status, whole)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // A test that failed half-way leaves no client behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the server's log of calls says.
struct Outcomes {
    /// Calls that ended cancelled or lost, but the stats below.
    cancelled: usize,
    /// `container/archive-get` calls cancelled once accepted: how
    /// `dockwire cp` read a path's stat before `fs/stat` (none now).
    stats: usize,
    /// `container/archive-get` calls, however they ended.
    archive_gets: usize,
    /// `fs/stat` calls, however they ended.
    fs_stats: usize,
    /// Lines of calls that failed or were refused.
    failed: Vec<String>,
    /// Lines that are not a call's and say something went wrong.
    odd: Vec<String>,
    /// Every outcome, counted.
    all: Vec<(String, usize)>,
}

impl Outcomes {
    fn of(log: &str) -> Outcomes {
        let mut outcomes = Outcomes {
            cancelled: 0,
            stats: 0,
            archive_gets: 0,
            fs_stats: 0,
            failed: Vec::new(),
            odd: Vec::new(),
            all: Vec::new(),
        };
        for line in log.lines() {
            let Some((_, rest)) = line.split_once(" outcome=") else {
                if line.contains("ERROR") || line.contains("panicked") {
                    outcomes.odd.push(line.to_owned());
                }
                continue;
            };
            let outcome = rest.split(" duration_ms=").next().unwrap_or(rest);
            let operation = line
                .split_once(" operation=")
                .and_then(|(_, r)| r.split(' ').next())
                .unwrap_or("?");
            let kind = match outcome {
                o if o.starts_with("exit ") => format!("{operation} exit N"),
                o => format!("{operation} {o}"),
            };
            match outcomes.all.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => outcomes.all.push((kind, 1)),
            }
            match operation {
                "container/archive-get" => outcomes.archive_gets += 1,
                "fs/stat" => outcomes.fs_stats += 1,
                _ => {}
            }
            match (operation, outcome) {
                ("container/archive-get", "cancelled") => outcomes.stats += 1,
                // A client killed with SIGKILL sends no close: its calls
                // end `lost` at the idle timeout, the library's cancel
                // `cancelled`. Either is an abort on purpose.
                (_, "cancelled" | "lost") => outcomes.cancelled += 1,
                _ => {}
            }
            if outcome.starts_with("failed") || outcome.starts_with("refused") {
                outcomes.failed.push(line.to_owned());
            }
        }
        outcomes
    }
}

impl std::fmt::Display for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.all.iter().map(|(k, n)| format!("{k} {n}")).collect();
        write!(f, "{}", all.join(", "))
    }
}
