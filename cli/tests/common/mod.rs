//! What the end-to-end tests of the `dockwire` binary share: running a
//! command with a deadline, a `dockwire serve` process, clients with their
//! own state directories, the docker CLI for comparisons, a terminal, and
//! guards that remove what a test made whatever happens; the resources of
//! a server seen from outside (`gauge`) and a client written against the
//! library for more calls at once than one CLI process makes (`wire`).
//!
//! Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod gauge;
pub mod wire;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use dockwire_tests::docker::{IMAGE, REGISTRY_IMAGE};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_dockwire");

/// How long one command may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(90);

/// The environment variables of dockwire that would change what a test
/// means if the person running the tests had them set.
const OWN_ENV: [&str; 6] = [
    "DOCKWIRE_HOST",
    "DOCKWIRE_CONTEXT",
    "DOCKWIRE_STATE_DIR",
    "DOCKWIRE_SERVER_FINGERPRINT",
    "DOCKWIRE_CONGESTION",
    "RUST_LOG",
];

/// Fails the test loudly, with what to do, when no Docker engine answers
/// or the test image is missing (never a skip).
pub fn engine() {
    let _ = dockwire_tests::docker::engine();
}

/// A name for a container or a folder that no other test (nor another
/// run of this one) uses: `dockwire-cli-WHAT-PID-N`.
pub fn unique(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("dockwire-cli-{what}-{}-{n}", std::process::id())
}

// ------------------------------------------------------------ commands

/// What a finished command did.
pub struct Ran {
    /// What was run, for messages.
    pub what: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, byte for byte.
    pub stdout: Vec<u8>,
    /// Its stderr, byte for byte.
    pub stderr: Vec<u8>,
}

impl Ran {
    /// Its exit code (a death by signal fails the test).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "{} died by a signal: {:?}\n{}",
                self.what,
                self.status,
                self.dump()
            )
        })
    }

    /// Stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Both outputs, for a failure's message.
    pub fn dump(&self) -> String {
        let cut = |b: &[u8]| {
            let text = String::from_utf8_lossy(&b[..b.len().min(4000)]).into_owned();
            if b.len() > 4000 {
                format!("{text}… ({} bytes)", b.len())
            } else {
                text
            }
        };
        format!(
            "`{}` ended {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.status,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }

    /// Asserts it exited 0; returns itself.
    pub fn ok(self) -> Ran {
        assert_eq!(self.code(), 0, "{}", self.dump());
        self
    }

    /// Asserts it failed the way a person should see a failure: a non-zero
    /// exit, one line on stderr, `dockwire: WHAT: WHY`, no Rust debug
    /// dump; with `code`, the line ends with `(CODE)`. Returns the line.
    pub fn failed(&self, code: Option<&str>) -> String {
        assert_ne!(self.code(), 0, "it succeeded: {}", self.dump());
        let err = self.err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "not one line on stderr: {}", self.dump());
        let line = lines[0];
        assert!(line.starts_with("dockwire: "), "{}", self.dump());
        for debug in [
            "ClientError",
            "Remote(",
            "CallError {",
            "Error {",
            "panicked",
            "Some(",
        ] {
            assert!(
                !line.contains(debug),
                "a debug dump ({debug}): {}",
                self.dump()
            );
        }
        if let Some(code) = code {
            assert!(
                line.ends_with(&format!("({code})")),
                "not ({code}): {}",
                self.dump()
            );
        }
        line.to_owned()
    }
}

/// Runs `command` to its end with `input` on its stdin (closed after it;
/// `None`: no stdin at all), failing the test with all it printed if it
/// does not end within `limit`.
pub fn run_with(command: &mut Command, input: Option<Vec<u8>>, limit: Duration) -> Ran {
    start(command, input).finish(limit)
}

/// A command started in the background, killed if dropped unfinished.
pub struct Running {
    what: String,
    child: Option<Child>,
    feeder: Option<JoinHandle<()>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// Its stdout so far, while it runs.
    seen: Arc<Mutex<Vec<u8>>>,
}

/// Starts `command` with `input` on its stdin (as [`run_with`]).
pub fn start(command: &mut Command, input: Option<Vec<u8>>) -> Running {
    match input {
        Some(bytes) => start_fed(command, move |mut stdin| {
            // The command may end without reading all of it.
            let _ = stdin.write_all(&bytes);
        }),
        None => spawn(command, None),
    }
}

/// Starts `command` with its stdin given to `feed`, on a thread of its
/// own: the stdin closes when `feed` drops it.
pub fn start_fed(command: &mut Command, feed: impl FnOnce(ChildStdin) + Send + 'static) -> Running {
    spawn(command, Some(Box::new(feed)))
}

type Feed = Box<dyn FnOnce(ChildStdin) + Send>;

fn spawn(command: &mut Command, feed: Option<Feed>) -> Running {
    let what = format!("{command:?}");
    command
        .stdin(if feed.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let feeder = match (feed, child.stdin.take()) {
        (Some(feed), Some(stdin)) => Some(std::thread::spawn(move || feed(stdin))),
        _ => None,
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    Running {
        what,
        stdout: Some(collect_seen(child.stdout.take(), seen.clone())),
        stderr: Some(collect(child.stderr.take())),
        child: Some(child),
        feeder,
        seen,
    }
}

impl Running {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// How many bytes of stdout it has printed so far.
    pub fn stdout_len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Its stdout so far, as text.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits (up to `limit`) until its stdout so far has `needle`,
    /// failing the test with what it showed otherwise.
    pub fn wait_for_stdout(&self, needle: &str, limit: Duration) {
        eventually(
            &format!("`{}` printing {needle:?}", self.what),
            limit,
            || {
                let seen = self.stdout_so_far();
                match seen.contains(needle) {
                    true => Ok(()),
                    false => Err(seen),
                }
            },
        );
    }

    /// Waits for its end (failing the test after `limit`, with all it
    /// printed): what it did.
    pub fn finish(mut self, limit: Duration) -> Ran {
        let mut child = self.child.take().expect("finished once");
        let status = wait_until(&mut child, limit);
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        if let Some(feeder) = self.feeder.take() {
            feeder.join().unwrap();
        }
        let Some(status) = status else {
            panic!(
                "`{}` did not end within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.what,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        };
        Ran {
            what: std::mem::take(&mut self.what),
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads all of `from` on a thread of its own, showing it in `seen` as it
/// comes.
fn collect_seen(
    from: Option<impl Read + Send + 'static>,
    seen: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        if let Some(from) = from {
            read_into(from, &seen);
        }
        std::mem::take(&mut *seen.lock().unwrap())
    })
}

/// Reads `from` to its end (or first error), appending what comes to
/// `seen` as it comes, for others to look at meanwhile.
pub fn read_into(mut from: impl Read, seen: &Mutex<Vec<u8>>) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => seen.lock().unwrap().extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reads all of `from` on a thread of its own.
pub fn collect(from: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(mut from) = from {
            let _ = from.read_to_end(&mut all);
        }
        all
    })
}

/// Waits for `child` up to `limit`; kills it (and returns `None`) after.
pub fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `check` every 50 ms until it holds, failing after `limit` with
/// what the last try said.
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: still not so after {limit:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Asserts two byte strings are equal, saying where they first differ
/// rather than printing megabytes.
pub fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: {} bytes, expected {}; first difference at byte {at}",
        got.len(),
        want.len()
    );
}

// ------------------------------------------------------------ docker

/// The docker CLI that matches the engine: Debian's, as `scripts/engine`
/// prefers it, else the one on PATH; `DOCKWIRE_TEST_DOCKER` overrides.
pub fn docker_cli() -> String {
    if let Ok(given) = std::env::var("DOCKWIRE_TEST_DOCKER") {
        return given;
    }
    let debian = "/usr/bin/docker";
    match Path::new(debian).exists() {
        true => debian.to_owned(),
        false => "docker".to_owned(),
    }
}

/// `args` as the `&str`s `run` takes.
pub fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs the docker CLI with `args`.
pub fn docker(args: &[&str]) -> Ran {
    run_with(Command::new(docker_cli()).args(args), None, LIMIT)
}

/// The value of `dockwire.owner` on a container, as the engine has it.
pub fn owner_label(container: &str) -> String {
    let ran = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"dockwire.owner\"}}",
        container,
    ])
    .ok();
    ran.out().trim().to_owned()
}

/// Whether the engine knows a container of this name (asserting that
/// `docker inspect` fails for the right reason when not).
pub fn exists(container: &str) -> bool {
    let ran = docker(&["inspect", "--type", "container", container]);
    if ran.code() == 0 {
        return true;
    }
    // Docker says `No such container`; Podman, caught mid-removal, `does
    // not exist in database: no such container`.
    let err = ran.err().to_ascii_lowercase();
    assert!(err.contains("no such"), "{}", ran.dump());
    false
}

/// Whether the container is running.
pub fn running(container: &str) -> bool {
    docker(&["inspect", "-f", "{{.State.Running}}", container])
        .ok()
        .out()
        .trim()
        == "true"
}

/// Containers a test makes, by name; all removed (forced) when it ends,
/// however it ends.
#[derive(Default)]
pub struct Containers {
    cleanup: dockwire_tests::docker::Cleanup,
}

impl Containers {
    /// A fresh unique name, removed at the end.
    pub fn name(&self, what: &str) -> String {
        let name = unique(what);
        self.cleanup.add(&name);
        name
    }

    /// Removes container `id` at the end too: a user's container, whose
    /// name on the engine is not the name the user gave.
    pub fn add(&self, id: &str) {
        self.cleanup.add(id);
    }

    /// A container started with docker directly (no dockwire labels) that
    /// sleeps, with no network (none is needed): its name.
    pub fn docker_sleeper(&self, what: &str) -> String {
        let name = self.name(what);
        docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            IMAGE,
            "sleep",
            "600",
        ])
        .ok();
        name
    }
}

// ------------------------------------------------------------ folders

/// A folder under the system's temporary one, named after the test and
/// this process, removed at the end.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A new, empty one.
    pub fn new(what: &str) -> Scratch {
        let path = std::env::temp_dir().join(unique(what));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// ------------------------------------------------------------ dockwire

/// A `dockwire` command with no dockwire variables from the outside.
pub fn dockwire() -> Command {
    let mut command = Command::new(BIN);
    for var in OWN_ENV {
        command.env_remove(var);
    }
    command
}

/// Runs `dockwire --state-dir DIR trust add FINGERPRINT --name NAME
/// [--admin]` for a server's state.
pub fn trust(server_state: &Path, fingerprint: &str, name: &str, admin: bool) {
    let mut command = dockwire();
    command.arg("--state-dir").arg(server_state).args([
        "trust",
        "add",
        fingerprint,
        "--name",
        name,
    ]);
    if admin {
        command.arg("--admin");
    }
    let ran = run_with(&mut command, None, LIMIT).ok();
    assert!(
        ran.out().contains(&format!("trusted {name}")),
        "{}",
        ran.dump()
    );
}

/// `dockwire --state-dir DIR id`: the identity's fingerprint (made on
/// first use).
pub fn fingerprint_of(state: &Path) -> String {
    let mut command = dockwire();
    command.arg("--state-dir").arg(state).arg("id");
    let ran = run_with(&mut command, None, LIMIT).ok();
    let fingerprint = ran.out().trim().to_owned();
    assert!(
        fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a fingerprint: {}",
        ran.dump()
    );
    fingerprint
}

/// A client: a state directory (identity, known servers) and a host.
pub struct Client {
    /// Its state directory.
    pub state: PathBuf,
    /// `quic://…` or `unix://…`.
    pub host: String,
}

impl Client {
    /// A client with a new identity in `state`, for `host`.
    pub fn new(state: PathBuf, host: &str) -> Client {
        Client {
            state,
            host: host.to_owned(),
        }
    }

    /// Its fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.state)
    }

    /// `dockwire --host HOST --state-dir STATE ARGS…`, not run yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = dockwire();
        command
            .arg("--host")
            .arg(&self.host)
            .arg("--state-dir")
            .arg(&self.state)
            .args(args);
        command
    }

    /// Connects for the first time (the server's fingerprint is then
    /// remembered, and said once on stderr): later verbs print only their
    /// own. Whether the server admitted it.
    pub fn greet(&self) -> bool {
        let ran = self.run(&["version"]);
        let server = self.host.trim_start_matches("quic://");
        assert!(
            ran.err()
                .contains(&format!("trusting {server} on first use")),
            "no first-use notice: {}",
            ran.dump()
        );
        ran.code() == 0
    }

    /// Runs a verb, without stdin.
    pub fn run(&self, args: &[&str]) -> Ran {
        run_with(&mut self.command(args), None, LIMIT)
    }

    /// Runs a verb with `input` on its stdin.
    pub fn run_in(&self, args: &[&str], input: &[u8]) -> Ran {
        run_with(&mut self.command(args), Some(input.to_vec()), LIMIT)
    }
}

/// `serve --listen LISTEN --state-dir STATE EXTRA…` on `command`.
fn serve_args(command: &mut Command, state: &Path, listen: &str, extra: &[&str]) {
    command
        .arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--state-dir")
        .arg(state)
        .args(extra);
}

/// A `dockwire serve` process, stopped (TERM, then KILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// Its state directory.
    pub state: PathBuf,
    /// Its fingerprint, as it printed it.
    pub fingerprint: String,
    /// The QUIC port it listens on.
    pub port: u16,
    /// Everything it printed so far, stdout then each line as it came.
    stdout: Arc<Mutex<String>>,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    /// Serves on `listen` (`127.0.0.1:0`: any free port) with `state`
    /// and `extra` options; returns once it says where it listens.
    pub fn start(state: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut command = dockwire();
        serve_args(&mut command, state, listen, extra);
        Server::launch(command, state, extra)
    }

    /// As [`Server::start`], with `dir` first on its `PATH`: the commands
    /// there stand in for the system's.
    pub fn start_with_path_first(state: &Path, listen: &str, extra: &[&str], dir: &Path) -> Server {
        let mut command = dockwire();
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", dir.display()));
        serve_args(&mut command, state, listen, extra);
        Server::launch(command, state, extra)
    }

    /// As [`Server::start`], in a pid namespace of its own (with its own
    /// `/proc`), as a server in a container with the engine's socket
    /// mounted runs: it does not see the containers' processes.
    /// `unshare` kills the server when it is itself killed.
    pub fn start_in_own_pid_namespace(state: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut command = Command::new("unshare");
        for var in OWN_ENV {
            command.env_remove(var);
        }
        command
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(BIN);
        serve_args(&mut command, state, listen, extra);
        Server::launch(command, state, extra)
    }

    /// As [`Server::start`], but started with a soft limit of `soft` open
    /// files (as many systems start processes with 1024), its hard limit
    /// left as it is: through `sh`, whose `ulimit` sets it before it
    /// becomes the server (same process, same pid).
    pub fn start_with_open_files(state: &Path, listen: &str, extra: &[&str], soft: u64) -> Server {
        let mut command = Command::new("sh");
        for var in OWN_ENV {
            command.env_remove(var);
        }
        command
            .arg("-c")
            .arg(format!("ulimit -S -n {soft} && exec \"$0\" \"$@\""))
            .arg(BIN);
        serve_args(&mut command, state, listen, extra);
        Server::launch(command, state, extra)
    }

    /// As [`Server::start`], serving the engine at the Unix socket
    /// `engine` (a private engine's) rather than the shared one.
    pub fn start_for_engine(state: &Path, listen: &str, extra: &[&str], engine: &Path) -> Server {
        let mut command = dockwire();
        command.env("DOCKER_HOST", format!("unix://{}", engine.display()));
        serve_args(&mut command, state, listen, extra);
        Server::launch(command, state, extra)
    }

    fn launch(mut command: Command, state: &Path, extra: &[&str]) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let log = log.clone();
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || read_into(stderr, &log));
        }
        let (lines_tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        {
            let stdout = stdout.clone();
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    stdout.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = lines_tx.send(line);
                }
            });
        }
        let mut server = Server {
            child: Some(child),
            state: state.to_owned(),
            fingerprint: String::new(),
            port: 0,
            stdout,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut unix_seen = !extra.contains(&"--unix");
        while server.port == 0 || !unix_seen {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                panic!(
                    "the server did not say where it listens\n--- stdout\n{}\n--- stderr\n{}",
                    server.stdout(),
                    server.log()
                );
            };
            if let Some(fp) = line.strip_prefix("dockwire serve: fingerprint ") {
                server.fingerprint = fp.trim().to_owned();
            }
            if let Some(addr) = line.strip_prefix("dockwire serve: listening on quic://") {
                let (_, port) = addr.rsplit_once(':').unwrap();
                server.port = port.trim().parse().unwrap();
            }
            if line.starts_with("dockwire serve: listening on unix://") {
                unix_seen = true;
            }
        }
        assert_eq!(server.fingerprint.len(), 64, "{}", server.stdout());
        assert_ne!(server.port, 0, "{}", server.stdout());
        server
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `quic://127.0.0.1:PORT`.
    pub fn quic(&self) -> String {
        format!("quic://127.0.0.1:{}", self.port)
    }

    /// What it printed on stdout.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Waits until its log has a line with all of `words`; returns it.
    pub fn log_line(&self, words: &[&str]) -> String {
        let mut found = String::new();
        eventually(
            &format!("a server log line with {words:?}"),
            Duration::from_secs(10),
            || {
                let log = self.log();
                match log.lines().find(|l| words.iter().all(|w| l.contains(w))) {
                    Some(line) => {
                        found = line.to_owned();
                        Ok(())
                    }
                    None => Err(log),
                }
            },
        );
        found
    }

    /// Stops it with TERM: how it ended.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate()
    }

    /// Kills it with SIGKILL, as a crash: nothing of it runs after this
    /// (no cleanup, no goodbye to its peers). Its log stays readable.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("killed once");
        // std's kill is SIGKILL.
        child.kill().unwrap();
        let status = wait_until(&mut child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("the server did not die of SIGKILL within 10 s"));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status:?}"
        );
    }

    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("stopped once");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        match wait_until(&mut child, Duration::from_secs(10)) {
            Some(status) => status,
            None => panic!(
                "the server did not stop on TERM within 10 s:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            if wait_until(child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A server with an admin client trusted, and the containers the test
/// makes; all of it gone when dropped (containers first, then the server,
/// then the folders).
pub struct Rig {
    /// The containers to remove.
    pub containers: Containers,
    /// The server.
    pub server: Server,
    /// A client trusted as an admin, named `admin`.
    pub admin: Client,
    /// The test's folder.
    pub scratch: Scratch,
}

impl Rig {
    /// A tokio server with an admin client.
    pub fn new(what: &str) -> Rig {
        Rig::with(what, &[])
    }

    /// A server started with `extra` options, with an admin client.
    pub fn with(what: &str, extra: &[&str]) -> Rig {
        Rig::started(what, |state| Server::start(state, "127.0.0.1:0", extra))
    }

    /// A server started by `start` (given its state directory), with an
    /// admin client.
    pub fn started(what: &str, start: impl FnOnce(&Path) -> Server) -> Rig {
        engine();
        let scratch = Scratch::new(what);
        let admin_state = scratch.join("admin");
        trust(
            &scratch.join("server"),
            &fingerprint_of(&admin_state),
            "admin",
            true,
        );
        let server = start(&scratch.join("server"));
        let admin = Client::new(admin_state, &server.quic());
        assert!(
            admin.greet(),
            "the admin is not admitted:\n{}",
            server.log()
        );
        Rig {
            containers: Containers::default(),
            server,
            admin,
            scratch,
        }
    }

    /// A new client trusted as `name` (an admin or a user).
    pub fn client(&self, name: &str, admin: bool) -> Client {
        let state = self.scratch.join(name);
        trust(&self.server.state, &fingerprint_of(&state), name, admin);
        let client = Client::new(state, &self.server.quic());
        assert!(
            client.greet(),
            "{name} is not admitted:\n{}",
            self.server.log()
        );
        client
    }

    /// A new client the server does not trust.
    pub fn stranger(&self, name: &str) -> Client {
        let state = self.scratch.join(name);
        let _ = fingerprint_of(&state);
        let client = Client::new(state, &self.server.quic());
        assert!(
            !client.greet(),
            "{name} is admitted:\n{}",
            self.server.log()
        );
        client
    }
}

// ------------------------------------------------------------ terminal

/// A command in a pseudo-terminal, and everything it showed.
pub struct Terminal {
    master: Box<dyn portable_pty::MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// Runs `sh -c SCRIPT` in a new terminal of `cols` × `rows`.
    pub fn spawn(script: &str, cols: u16, rows: u16) -> Terminal {
        let pty = portable_pty::native_pty_system()
            .openpty(portable_pty::PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut command = portable_pty::CommandBuilder::new("sh");
        command.args(["-c", script]);
        for var in OWN_ENV {
            command.env_remove(var);
        }
        command.env("TERM", "xterm");
        command.cwd(std::env::temp_dir());
        let child = pty.slave.spawn_command(command).unwrap();
        // Only the child holds the terminal's other end: its end is ours.
        drop(pty.slave);
        let seen = Arc::new(Mutex::new(Vec::new()));
        {
            let seen = seen.clone();
            let reader = pty.master.try_clone_reader().unwrap();
            std::thread::spawn(move || read_into(reader, &seen));
        }
        let writer = pty.master.take_writer().unwrap();
        Terminal {
            master: pty.master,
            writer,
            child,
            seen,
        }
    }

    /// All it showed so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until it shows `needle` after `mark`, within `limit`; returns
    /// the mark just after it. Fails with the screen otherwise.
    pub fn expect_within(
        &self,
        needle: &str,
        mark: usize,
        limit: Duration,
    ) -> Result<usize, String> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let after = &seen[mark.min(seen.len())..];
                if let Some(at) = after
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes())
                {
                    return Ok(mark + at + needle.len());
                }
            }
            if Instant::now() > deadline {
                return Err(self.screen());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to 30 s) for `needle` after `mark`, failing the test
    /// with the screen if it does not come.
    pub fn expect(&self, needle: &str, mark: usize) -> usize {
        self.expect_within(needle, mark, Duration::from_secs(30))
            .unwrap_or_else(|screen| {
                panic!("the terminal never showed {needle:?}; it showed:\n{screen:?}")
            })
    }

    /// Types `keys`.
    pub fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Resizes the terminal (its foreground process gets SIGWINCH).
    pub fn resize(&self, cols: u16, rows: u16) {
        self.master
            .resize(portable_pty::PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    /// Waits (up to 30 s) for the command to end: its exit code.
    pub fn wait(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "the terminal's command did not end; it showed:\n{:?}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Held by each test of a binary whose tests build images while another
/// removes some: Podman's builder fails a build whose cache check reads
/// an image removed at that moment (`layer not known`: its store is read
/// without its lock, docker/README.md, Engines), so those tests take
/// turns. What is under test is each build, not that race.
pub fn image_turn() -> std::sync::MutexGuard<'static, ()> {
    static IMAGES: Mutex<()> = Mutex::new(());
    IMAGES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
