//! End-to-end scenarios against the real Docker engine, through dockwire
//! over QUIC. Written once, run on tokio (every scenario) and on smol
//! (exec, logs, attach, run): `tests/docker_tokio.rs`, `tests/docker_smol.rs`.
//!
//! The engine, the test image and the local registry come from
//! `scripts/engine`. A test that cannot reach the engine fails, loudly,
//! with what to do; none of them skips.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use async_compat::Compat;
use bollard::Docker;
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, Dialect, DockerClient, DockerService};
use dockwire_service::{Client, ClientError, RawSession, Service};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::{Prng, Rt, Transport, harness_for, sleep_ms};

/// The image `scripts/engine` builds from the static busybox.
pub const IMAGE: &str = "dockwire/testbox:latest";
/// The same image in the local registry `scripts/engine` runs.
pub const REGISTRY_IMAGE: &str = "127.0.0.1:5000/dockwire/testbox:latest";
/// The owner the test server writes on the containers it creates.
pub const OWNER: &str = "dockwire-tests";

/// The engine these tests are run against: `DOCKWIRE_TEST_ENGINE`
/// (`docker`, the default, or `podman`), reached at `DOCKER_HOST`.
/// [`engine`] checks that the engine answering is that one.
pub fn test_engine() -> Dialect {
    static ENGINE: OnceLock<Dialect> = OnceLock::new();
    *ENGINE.get_or_init(|| match std::env::var("DOCKWIRE_TEST_ENGINE") {
        Err(_) => Dialect::Docker,
        Ok(name) => name
            .parse()
            .unwrap_or_else(|e| panic!("DOCKWIRE_TEST_ENGINE: {e}")),
    })
}

/// Whether these tests run against Podman.
pub fn on_podman() -> bool {
    test_engine() == Dialect::Podman
}

/// Why the gVisor tests are skipped on Podman: it runs no container under
/// a runtime of its own, and dockwire refuses one (`NOT_SUPPORTED`, see
/// [`a_runtime_per_container_is_honoured_or_refused`]).
pub const NO_RUNTIME_PER_CONTAINER: &str =
    "Podman has no runtime per container: runsc is refused NOT_SUPPORTED";

/// Whether a test (or a part of one) that Podman cannot pass is to be
/// skipped: on Podman only, saying why (each one is listed in
/// `docker/README.md`).
pub fn skipped_on_podman(why: &str) -> bool {
    if on_podman() {
        eprintln!("skipped on Podman: {why}");
    }
    on_podman()
}

/// bollard, directly: for checks behind dockwire's back. Panics with what
/// to do when no engine answers, or when it is not the engine
/// [`test_engine`] names.
pub fn engine() -> Docker {
    static ENGINE: OnceLock<Docker> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let fail = |e: &dyn std::fmt::Display| -> ! {
                panic!(
                    "the Docker engine is not reachable ({e}). These tests need a real engine: \
                     run `scripts/engine` as root (it installs and starts one), or point \
                     DOCKER_HOST at yours"
                )
            };
            let docker = Docker::connect_with_local_defaults().unwrap_or_else(|e| fail(&e));
            let docker = on_engine(docker.negotiate_version()).unwrap_or_else(|e| fail(&e));
            let version = on_engine(docker.version()).unwrap_or_else(|e| fail(&e));
            let answering = Dialect::of_version(&version);
            assert_eq!(
                answering,
                test_engine(),
                "DOCKWIRE_TEST_ENGINE asks for {} but the engine at DOCKER_HOST is {answering} \
                 (`DOCKWIRE_ENGINE=podman scripts/engine` brings Podman up and prints its socket)",
                test_engine(),
            );
            on_engine(docker.inspect_image(IMAGE)).unwrap_or_else(|e| {
                panic!("the test image {IMAGE} is missing ({e}): run `scripts/engine`")
            });
            docker
        })
        .clone()
}

/// Runs a bollard future to completion from any thread.
pub fn on_engine<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(Compat::new(f))
}

/// A dockwire client to a Docker service served over QUIC.
pub struct Rig {
    /// The typed client.
    pub docker: DockerClient,
    /// Containers to remove when the test ends.
    pub cleanup: Cleanup,
    /// The QUIC connection the client's calls go over.
    connection: Option<quinn::Connection>,
    /// What keeps the server serving; dropped after the containers are.
    _server: Box<dyn Any + Send>,
}

impl Rig {
    /// A rig over `client`, connected by whoever made it: `connection` is
    /// its QUIC connection (for the scenarios that close it) and `server`
    /// whatever keeps its server alive, dropped with the rig.
    pub fn over(
        client: Client,
        connection: Option<quinn::Connection>,
        server: impl Any + Send,
    ) -> Rig {
        Rig {
            docker: DockerClient::new(client),
            cleanup: Cleanup::default(),
            connection,
            _server: Box::new(server),
        }
    }
}

/// Serves `service` over QUIC on `rt` and connects to it, both sides on
/// `rt`.
pub async fn rig_for(rt: Rt, service: DockerService) -> Rig {
    let service: Arc<dyn Service> = Arc::new(service);
    let harness = harness_for(service, rt, rt, Transport::Quic).await;
    Rig::over(harness.client.clone(), harness.quic.clone(), harness)
}

/// The real engine's service over QUIC on `rt`.
pub async fn rig(rt: Rt) -> Rig {
    let _ = engine();
    // The service's own client, negotiated on its first call.
    let docker = Docker::connect_with_local_defaults().unwrap();
    let service = DockerService::new(docker, Config::from_env().with_owner(OWNER));
    rig_for(rt, service).await
}

/// Removes the containers a test made, whatever happened.
#[derive(Default)]
pub struct Cleanup(std::sync::Mutex<Vec<String>>);

impl Cleanup {
    /// Remembers `id` for removal.
    pub fn add(&self, id: &str) {
        self.0.lock().unwrap().push(id.to_owned());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let docker = engine();
        for id in self.0.lock().unwrap().drain(..) {
            let options = q::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            let _ = on_engine(docker.remove_container(&id, Some(options)));
        }
    }
}

/// A unique name for a test's container.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("dockwire-test-{prefix}-{}-{n}", std::process::id())
}

impl Rig {
    /// Creates and starts a container of the test image running `cmd`.
    pub async fn container(&self, spec: ContainerSpec) -> String {
        let created = self.docker.query(&ContainerCreate(spec)).await.unwrap();
        self.cleanup.add(&created.id);
        self.docker
            .query(&ContainerStart(ContainerRef::new(&created.id)))
            .await
            .unwrap();
        created.id
    }

    /// Container `id`'s state, as inspect shows it.
    pub async fn state(&self, id: &str) -> bollard::models::ContainerState {
        let inspect = ContainerInspect(ContainerRef::new(id));
        self.docker.query(&inspect).await.unwrap().state.unwrap()
    }

    /// A running container that sleeps, for execs.
    pub async fn sleeper(&self) -> String {
        self.container(ContainerSpec::new(IMAGE, ["sleep", "3600"]))
            .await
    }

    /// Runs `cmd` in `id` on the json carriage: (stdout, stderr, exit code).
    ///
    /// An exec that gVisor's runtime failed to start (the 2022 runsc does so
    /// now and then under load: Docker writes "OCI runtime exec failed:
    /// .../runsc did not terminate successfully" and gives 126, and the
    /// command never ran) is asked for again, up to three times; what
    /// dockwire delivered for it is what the engine said, so the scenarios
    /// keep asserting on the command's own bytes.
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> (Vec<u8>, Vec<u8>, i64) {
        for _ in 0..3 {
            let (out, err, code) = self.exec_once(id, cmd).await;
            if !(code == 126 && is_runsc_exec_failure(&out)) {
                return (out, err, code);
            }
            eprintln!(
                "runsc failed to start {cmd:?}: {}",
                String::from_utf8_lossy(&out)
            );
        }
        self.exec_once(id, cmd).await
    }

    /// One exec of `cmd` in `id`, as [`Rig::exec`].
    async fn exec_once(&self, id: &str, cmd: &[&str]) -> (Vec<u8>, Vec<u8>, i64) {
        let mut items = self
            .docker
            .subscribe(&ExecInput::new(id, cmd.iter().copied()))
            .await
            .unwrap();
        let (mut out, mut err, mut code) = (Vec::new(), Vec::new(), None);
        while let Some(item) = items.next().await {
            match item.unwrap() {
                ExecItem::Output { stream, data } => {
                    assert!(code.is_none(), "output after the exit code");
                    let bytes = data.to_bytes().unwrap();
                    match stream {
                        StreamName::Stdout => out.extend_from_slice(&bytes),
                        StreamName::Stderr => err.extend_from_slice(&bytes),
                    }
                }
                ExecItem::Exit {
                    exit_code,
                    terminal,
                } => {
                    assert!(terminal);
                    assert!(code.replace(exit_code).is_none(), "two exit codes");
                }
            }
        }
        (out, err, code.expect("an exit code before completion"))
    }
}

/// Whether `stdout` is Docker's word that runsc could not start an exec.
fn is_runsc_exec_failure(stdout: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stdout);
    text.starts_with("OCI runtime exec failed: ") && text.contains("runsc did not terminate")
}

/// Reads a raw session's stdout until it contains `needle`; returns all
/// of it so far.
pub async fn read_until(session: &mut RawSession, seen: &mut Vec<u8>, needle: &str) {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        let n = session.stdout.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "stdout ended before {needle:?}; got {:?}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn code(e: ClientError) -> ErrorCode {
    match e {
        ClientError::Remote(e) => e.code,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// Waits up to 20 s for `check` to hold.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        sleep_ms(100).await;
    }
    panic!("{what}: still not true after 20 s");
}

// ------------------------------------------------------------- scenarios

/// A followed log whose reader falls behind while the container prints
/// and exits still ends with every line, in order. (Podman 4.3 ends such
/// a follow with what it had sent when the container exits; the service
/// reads the rest without follow.)
pub async fn a_followed_log_read_late_ends_with_every_line(rig: &Rig) {
    const LINES: usize = 50_000;
    let lines = LINES.to_string();
    let spec = ContainerSpec::new(IMAGE, ["sh", "-c", "sleep 1; seq 1 \"$0\"", &lines]);
    let id = rig.container(spec).await;
    let mut logs = ContainerLogs::new(&id);
    logs.follow = true;
    let followed = rig.docker.subscribe(&logs).await.unwrap();
    // Nothing is read until the container has printed everything and
    // exited: the stream backs up to the engine meanwhile.
    for _ in 0..300 {
        if rig.state(&id).await.running == Some(false) {
            break;
        }
        sleep_ms(100).await;
    }
    let items: Vec<LogItem> = followed.try_collect().await.unwrap();
    let got: Vec<String> = items
        .iter()
        .map(|item| match &item.data {
            Data::Text(text) => text.clone(),
            other => panic!("a line of text: {other:?}"),
        })
        .collect();
    let first_wrong = got
        .iter()
        .zip(1..)
        .position(|(line, n)| *line != format!("{n}\n"));
    assert_eq!(
        (got.len(), first_wrong),
        (LINES, None),
        "every line once, in order; the last: {:?}",
        got.last()
    );
}

/// Followed logs: one item per line, each with its own timestamp, then
/// completion when the container exits; `tail` and `since` filter.
pub async fn logs_follow_until_exit(rig: &Rig) {
    let spec = ContainerSpec::new(IMAGE, ["sh", "-c", "sleep 1; echo line1; echo line2"]);
    let id = rig.container(spec).await;
    let mut logs = ContainerLogs::new(&id);
    logs.follow = true;
    let items: Vec<LogItem> = rig
        .docker
        .subscribe(&logs)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].data, Data::Text("line1\n".into()));
    assert_eq!(items[1].data, Data::Text("line2\n".into()));
    for item in &items {
        assert_eq!(item.stream, StreamName::Stdout);
        assert!(
            item.timestamp.ends_with('Z') && item.timestamp.contains('T'),
            "{item:?}"
        );
    }
    if !skipped_on_podman("log timestamps have whole seconds: two lines share one") {
        assert_ne!(items[0].timestamp, items[1].timestamp);
    }
    assert_eq!(
        rig.state(&id).await.running,
        Some(false),
        "the follow ended before the exit"
    );

    let mut tail = ContainerLogs::new(&id);
    tail.tail = Some(1);
    let items: Vec<LogItem> = rig
        .docker
        .subscribe(&tail)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].data, Data::Text("line2\n".into()));

    let mut since = ContainerLogs::new(&id);
    since.since = Some(i64::from(i32::MAX) - 1);
    let items: Vec<LogItem> = rig
        .docker
        .subscribe(&since)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(items.is_empty(), "{items:?}");

    // stderr keeps its name. The engine copies the two streams into its
    // log separately, so their relative order is not promised.
    let spec = ContainerSpec::new(IMAGE, ["sh", "-c", "echo out; echo err >&2"]);
    let id = rig.container(spec).await;
    let _ = rig
        .docker
        .query(&ContainerWait(ContainerRef::new(&id)))
        .await
        .unwrap();
    let items: Vec<LogItem> = rig
        .docker
        .subscribe(&ContainerLogs::new(&id))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut got: Vec<_> = items.into_iter().map(|i| (i.stream, i.data)).collect();
    got.sort_by_key(|(stream, _)| *stream == StreamName::Stderr);
    assert_eq!(
        got,
        [
            (StreamName::Stdout, Data::Text("out\n".into())),
            (StreamName::Stderr, Data::Text("err\n".into())),
        ]
    );
}

/// Exec on the json carriage: output, then the exit code, then completion.
pub async fn exec_gives_output_then_exit_code(rig: &Rig) {
    let id = rig.sleeper().await;
    let (out, err, code) = rig
        .exec(
            &id,
            &["sh", "-c", "echo hello-from-exec; echo oops >&2; exit 7"],
        )
        .await;
    assert_eq!(out, b"hello-from-exec\n");
    assert_eq!(err, b"oops\n");
    assert_eq!(code, 7);
}

/// 1 MiB of random bytes comes out byte-exact on both carriages.
pub async fn exec_binary_output_is_exact_on_both_carriages(rig: &Rig) {
    let id = rig.sleeper().await;
    let (_, _, code) = rig
        .exec(&id, &["sh", "-c", "head -c 1048576 /dev/urandom > /tmp/r"])
        .await;
    assert_eq!(code, 0);
    let (hash, _, _) = rig.exec(&id, &["sha256sum", "/tmp/r"]).await;
    let hash = String::from_utf8(hash).unwrap()[..64].to_owned();

    let (json_bytes, _, code) = rig.exec(&id, &["cat", "/tmp/r"]).await;
    assert_eq!(code, 0);
    assert_eq!(json_bytes.len(), 1 << 20);
    assert_eq!(sha256(&json_bytes), hash, "json carriage");

    let mut session = rig
        .docker
        .open(&ExecInput::new(&id, ["cat", "/tmp/r"]))
        .await
        .unwrap();
    let mut raw_bytes = Vec::new();
    session.stdout.read_to_end(&mut raw_bytes).await.unwrap();
    assert_eq!(session.exit.await.unwrap(), 0);
    assert_eq!(sha256(&raw_bytes), hash, "raw carriage");
}

/// Types a command into an interactive shell and reads its answer.
async fn shell_round_trip(mut session: RawSession, tty: bool) {
    session
        .stdin
        .write_all(b"echo hello-from-$((40+2))-attach\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    // The shell computes 42: what comes back is its output, not an echo of
    // what was typed.
    read_until(&mut session, &mut seen, "hello-from-42-attach").await;
    session.stdin.write_all(b"exit 3\n").await.unwrap();
    session.stdout.read_to_end(&mut seen).await.unwrap();
    assert_eq!(
        session.exit.await.unwrap(),
        3,
        "tty={tty}: {:?}",
        String::from_utf8_lossy(&seen)
    );
}

/// An interactive `sh` through attach, with and without a terminal.
pub async fn attach_to_an_interactive_shell(rig: &Rig) {
    for tty in [false, true] {
        let mut spec = ContainerSpec::new(IMAGE, ["sh"]);
        spec.stdin = true;
        spec.tty = tty;
        let id = rig.container(spec).await;
        let mut session = rig
            .docker
            .open(&AttachInput {
                id: id.clone(),
                stdin: true,
            })
            .await
            .unwrap();
        assert_eq!(session.accepted["tty"], tty);
        if tty {
            session.control.resize(99, 33).await.unwrap();
            session.stdin.write_all(b"stty size\n").await.unwrap();
            read_until(&mut session, &mut Vec::new(), "33 99").await;
        }
        shell_round_trip(session, tty).await;
    }
}

/// An interactive `sh` through a raw exec with a terminal.
pub async fn exec_an_interactive_shell_with_a_tty(rig: &Rig) {
    let id = rig.sleeper().await;
    let mut input = ExecInput::new(&id, ["sh"]);
    input.tty = true;
    input.stdin = true;
    let session = rig.docker.open(&input).await.unwrap();
    shell_round_trip(session, true).await;
}

/// 64 MiB of random bytes through `cat` come back with the same SHA-256;
/// closing stdin ends `cat` with 0.
pub async fn exec_cat_echoes_64_mib(rig: &Rig) {
    exec_cat_echoes(rig, 64 << 20).await;
}

/// `total` random bytes through `cat` come back with the same SHA-256;
/// closing stdin ends `cat` with 0.
pub async fn exec_cat_echoes(rig: &Rig, total: usize) {
    let id = rig.sleeper().await;
    let mut input = ExecInput::new(&id, ["cat"]);
    input.stdin = true;
    let session = rig.docker.open(&input).await.unwrap();
    let RawSession {
        mut stdin,
        mut stdout,
        exit,
        ..
    } = session;
    let mut prng = Prng(0x00d0_c4e7);
    let mut sent = Sha256::new();
    let write = async {
        let mut left = total;
        while left > 0 {
            let chunk = prng.bytes(left.min(256 * 1024));
            sent.update(&chunk);
            stdin.write_all(&chunk).await.unwrap();
            left -= chunk.len();
        }
        stdin.close().await.unwrap();
    };
    let read = async {
        let mut got = Sha256::new();
        let mut n = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let k = stdout.read(&mut buf).await.unwrap();
            if k == 0 {
                break;
            }
            got.update(&buf[..k]);
            n += k;
        }
        (n, got)
    };
    let ((), (n, got)) = futures::join!(write, read);
    assert_eq!(n, total);
    assert_eq!(got.finalize(), sent.finalize());
    assert_eq!(exit.await.unwrap(), 0);
}

/// A resize reaches the exec's terminal (`stty size`); a `TERM` signal
/// ends a `sleep` with 143, as a shell reports it.
pub async fn exec_resize_and_signal_reach_the_process(rig: &Rig) {
    let id = rig.sleeper().await;
    let mut input = ExecInput::new(&id, ["sh"]);
    input.tty = true;
    input.stdin = true;
    let mut session = rig.docker.open(&input).await.unwrap();
    session.control.resize(123, 45).await.unwrap();
    session.stdin.write_all(b"stty size\n").await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut session, &mut seen, "45 123").await;
    session.stdin.write_all(b"exit\n").await.unwrap();
    session.stdout.read_to_end(&mut seen).await.unwrap();
    assert_eq!(session.exit.await.unwrap(), 0);

    let (_, _, shell_code) = rig
        .exec(&id, &["sh", "-c", "sleep 1000 & kill -TERM $!; wait $!"])
        .await;
    assert_eq!(shell_code, 143, "what a shell reports for TERM");
    let mut session = rig
        .docker
        .open(&ExecInput::new(&id, ["sleep", "1000"]))
        .await
        .unwrap();
    session.control.signal("TERM").await.unwrap();
    let mut rest = Vec::new();
    session.stdout.read_to_end(&mut rest).await.unwrap();
    assert_eq!(session.exit.await.unwrap() as i64, shell_code);
}

/// `run` with a read-only bind mount, env, workdir, no network and
/// auto-remove: output, exit code, and the container gone.
pub async fn run_with_mount_env_workdir_and_auto_remove(rig: &Rig) {
    let dir = std::env::temp_dir().join(unique("mount"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in.txt"), "from-the-host\n").unwrap();
    let name = unique("run");
    let mut spec = ContainerSpec::new(
        IMAGE,
        [
            "sh",
            "-c",
            "cat /data/in.txt; echo $GREETING; pwd; ls /sys/class/net; \
             touch /data/x 2>/dev/null || echo read-only; exit 5",
        ],
    );
    spec.env = vec!["GREETING=hello-env".into()];
    spec.workdir = Some("/tmp".into());
    spec.network = Some("none".into());
    spec.mounts = vec![Mount {
        source: dir.to_str().unwrap().to_owned(),
        target: "/data".into(),
        read_only: true,
    }];
    spec.auto_remove = true;
    spec.name = Some(name.clone());
    let items: Vec<ExecItem> = rig
        .docker
        .subscribe(&RunInput(spec))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let (last, output) = items.split_last().unwrap();
    let mut out = Vec::new();
    for item in output {
        match item {
            ExecItem::Output {
                stream: StreamName::Stdout,
                data,
            } => out.extend_from_slice(&data.to_bytes().unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "from-the-host\nhello-env\n/tmp\nlo\nread-only\n"
    );
    assert_eq!(
        *last,
        ExecItem::Exit {
            exit_code: 5,
            terminal: true
        }
    );
    let gone = on_engine(engine().inspect_container(&name, None));
    assert!(gone.is_err(), "the container is still there");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `run` on the raw carriage: stdin in, output back, exit code last.
pub async fn run_raw_with_stdin(rig: &Rig) {
    let mut spec = ContainerSpec::new(IMAGE, ["sh", "-c", "tr a-z A-Z; exit 4"]);
    spec.stdin = true;
    spec.auto_remove = true;
    let mut session = rig.docker.open(&RunInput(spec)).await.unwrap();
    session.stdin.write_all(b"shout\n").await.unwrap();
    session.stdin.close().await.unwrap();
    let mut out = Vec::new();
    session.stdout.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"SHOUT\n");
    assert_eq!(session.exit.await.unwrap(), 4);
}

/// A `signal` on a `run` session goes to the container.
pub async fn run_signal_reaches_the_container(rig: &Rig) {
    let mut spec = ContainerSpec::new(
        IMAGE,
        [
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    spec.auto_remove = true;
    let mut session = rig.docker.open(&RunInput(spec)).await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut session, &mut seen, "ready\n").await;
    session.control.signal("TERM").await.unwrap();
    session.stdout.read_to_end(&mut seen).await.unwrap();
    assert_eq!(String::from_utf8(seen).unwrap(), "ready\ngot-term\n");
    assert_eq!(session.exit.await.unwrap(), 7);
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder
        .append_data(&mut dir, "d", std::io::empty())
        .unwrap();
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        builder
            .append_data(&mut header, format!("d/{path}"), *bytes)
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn files_of(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(path, bytes);
    }
    files
}

/// archive-put of a directory, then archive-get of it: the same files.
pub async fn archive_put_then_get_round_trips(rig: &Rig) {
    let id = rig.sleeper().await;
    let binary = Prng(7).bytes(300_000);
    let tar_in = tar_of(&[("a.txt", b"alpha\n"), ("sub.bin", &binary)]);
    let mut put = rig
        .docker
        .open(&ArchivePut {
            id: id.clone(),
            path: "/tmp".into(),
        })
        .await
        .unwrap();
    put.stdin.write_all(&tar_in).await.unwrap();
    put.stdin.close().await.unwrap();
    assert_eq!(put.exit.await.unwrap(), 0);

    let mut get = rig
        .docker
        .open(&ArchiveGet {
            id: id.clone(),
            path: "/tmp/d".into(),
        })
        .await
        .unwrap();
    let stat: PathStat = serde_json::from_value(get.accepted.clone()).unwrap();
    assert_eq!(stat.name, "d");
    assert_ne!(stat.mode & (1 << 31), 0, "a directory");
    let mut tar_out = Vec::new();
    get.stdout.read_to_end(&mut tar_out).await.unwrap();
    assert_eq!(get.exit.await.unwrap(), 0);
    let files = files_of(&tar_out);
    assert_eq!(
        files.get("d/a.txt").map(Vec::as_slice),
        Some(&b"alpha\n"[..])
    );
    assert_eq!(files.get("d/sub.bin"), Some(&binary.to_vec()));
    assert_eq!(files.len(), 2, "{:?}", files.keys());

    let missing = rig
        .docker
        .open(&ArchivePut {
            id,
            path: "/no/such/dir".into(),
        })
        .await
        .err()
        .unwrap();
    assert_eq!(code(missing), CONTAINER_NOT_FOUND);
}

/// Pull from the local registry: progress, then the image is there; a
/// missing image fails with `IMAGE_PULL_FAILED`.
pub async fn pull_from_the_local_registry(rig: &Rig) {
    let _ = on_engine(engine().remove_image(REGISTRY_IMAGE, None::<q::RemoveImageOptions>, None));
    let progress: Vec<PullProgress> = rig
        .docker
        .subscribe(&ImagePull {
            image: REGISTRY_IMAGE.into(),
        })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(!progress.is_empty());
    assert!(
        progress.iter().any(|p| p.status.contains("Pull complete")
                || p.status.contains("Downloaded newer image")
                // Podman ends with the image's own `Download complete`.
                || (on_podman() && p.status == "Download complete")),
        "{progress:?}"
    );
    let image = rig
        .docker
        .query(&ImageInspect(ImageRef {
            image: REGISTRY_IMAGE.into(),
        }))
        .await
        .unwrap();
    assert!(
        image
            .repo_tags
            .unwrap_or_default()
            .iter()
            .any(|t| t == REGISTRY_IMAGE)
    );

    let failed = rig
        .docker
        .subscribe(&ImagePull {
            image: "127.0.0.1:5000/dockwire/no-such-image:latest".into(),
        })
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(code(failed), IMAGE_PULL_FAILED);
}

/// Whether a process whose command line contains `needle` runs in `id`.
pub fn runs(id: &str, needle: &str) -> bool {
    processes(id).iter().any(|p| p.contains(needle))
}

fn processes(id: &str) -> Vec<String> {
    let top = on_engine(engine().top_processes(id, None::<q::TopOptions>)).unwrap();
    top.processes
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.join(" "))
        .collect()
}

/// Aborting an exec, dropping its subscription or losing the connection
/// kills its process.
pub async fn cancellation_leaves_nothing_behind(rig: &Rig) {
    let id = rig.sleeper().await;
    let mut session = rig
        .docker
        .open(&ExecInput::new(&id, ["sh", "-c", "sleep 1001; true"]))
        .await
        .unwrap();
    eventually("the exec runs", || runs(&id, "sleep 1001")).await;
    session.control.abort().await.unwrap();
    assert!(session.exit.await.is_err());
    eventually("the exec's processes are gone", || !runs(&id, "sleep 1001")).await;

    // Dropping a json exec's subscription aborts it.
    let items = rig
        .docker
        .subscribe(&ExecInput::new(&id, ["sleep", "1002"]))
        .await
        .unwrap();
    eventually("the json exec runs", || runs(&id, "sleep 1002")).await;
    drop(items);
    eventually("the json exec's process is gone", || {
        !runs(&id, "sleep 1002")
    })
    .await;

    // A client that vanishes: its connection closes mid-exec.
    let _session = rig
        .docker
        .open(&ExecInput::new(&id, ["sleep", "1003"]))
        .await
        .unwrap();
    eventually("the exec runs", || runs(&id, "sleep 1003")).await;
    let connection = rig.connection.as_ref().expect("a QUIC rig");
    connection.close(0u32.into(), b"client gone");
    eventually("the disconnected exec's process is gone", || {
        !runs(&id, "sleep 1003")
    })
    .await;
}

/// Aborting a `run` with auto-remove kills and removes its container.
pub async fn cancelled_run_removes_its_container(rig: &Rig) {
    let label = unique("cancel");
    let mut spec = ContainerSpec::new(IMAGE, ["sleep", "1000"]);
    spec.auto_remove = true;
    spec.labels.insert("dockwire-test".into(), label.clone());
    let mut session = rig.docker.open(&RunInput(spec)).await.unwrap();
    let run_id = session.accepted["id"].as_str().unwrap().to_owned();
    rig.cleanup.add(&run_id);
    session.control.abort().await.unwrap();
    assert!(session.exit.await.is_err());
    labelled_containers_are_gone("the run's container", &label).await;
}

/// Waits (as [`eventually`]) until the engine has no container, running
/// or not, labelled `dockwire-test=<label>`.
pub async fn labelled_containers_are_gone(what: &str, label: &str) {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("dockwire-test={label}")],
    )]);
    eventually(&format!("{what} is gone"), || {
        let options = q::ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        };
        on_engine(engine().list_containers(Some(options)))
            .unwrap()
            .is_empty()
    })
    .await;
}

/// With no engine behind the service, calls fail with `UNAVAILABLE`
/// (retryable) at once.
pub async fn a_dead_engine_is_unavailable(rt: Rt) {
    let service = DockerService::unix("/nonexistent/docker.sock", Config::from_env());
    let rig = rig_for(rt, service).await;
    let e = rig.docker.query(&Ping {}).await.unwrap_err();
    let ClientError::Remote(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.code, ErrorCode::UNAVAILABLE);
    assert!(e.retryable);
    let e = rig
        .docker
        .subscribe(&ExecInput::new("x", ["true"]))
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(code(e), ErrorCode::UNAVAILABLE);
    let e = rig
        .docker
        .open(&ExecInput::new("x", ["true"]))
        .await
        .err()
        .unwrap();
    assert_eq!(code(e), ErrorCode::UNAVAILABLE);
}

/// Engine errors keep their message and get the catalog's codes.
pub async fn engine_errors_are_typed(rig: &Rig) {
    let e = rig
        .docker
        .query(&ContainerInspect(ContainerRef::new(
            "no-such-container-xyz",
        )))
        .await
        .unwrap_err();
    let ClientError::Remote(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.code, CONTAINER_NOT_FOUND);
    assert!(e.message.contains("no-such-container-xyz"), "{}", e.message);

    let e = rig
        .docker
        .query(&ContainerCreate(ContainerSpec::new(
            "dockwire/no-such-image:1",
            ["true"],
        )))
        .await
        .unwrap_err();
    assert_eq!(code(e), IMAGE_NOT_FOUND);

    let name = unique("conflict");
    let mut spec = ContainerSpec::new(IMAGE, ["true"]);
    spec.name = Some(name.clone());
    let created = rig
        .docker
        .query(&ContainerCreate(spec.clone()))
        .await
        .unwrap();
    rig.cleanup.add(&created.id);
    let e = rig.docker.query(&ContainerCreate(spec)).await.unwrap_err();
    assert_eq!(code(e), CONFLICT);

    let e = rig
        .docker
        .inner()
        .call("container/inspect", serde_json::json!({"idd": 1}))
        .await
        .unwrap_err();
    assert_eq!(code(e), ErrorCode::INVALID_INPUT);
    let e = rig
        .docker
        .inner()
        .call("container/teleport", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(code(e), ErrorCode::NOT_FOUND);
    let e = rig
        .docker
        .inner()
        .open_raw("container/inspect", serde_json::json!({"id": "x"}))
        .await
        .err()
        .unwrap();
    assert_eq!(code(e), ErrorCode::INVALID_INPUT);
}

/// A container's whole life through the catalog, and dockwire's labels on
/// it (forged ones replaced).
pub async fn container_lifecycle_and_labels(rig: &Rig) {
    let version = rig.docker.query(&Version {}).await.unwrap();
    assert!(version.api_version.is_some());
    let pong = rig.docker.query(&Ping {}).await.unwrap();
    assert!(!pong.api_version.is_empty());

    let mut spec = ContainerSpec::new(
        IMAGE,
        [
            "sh",
            "-c",
            "trap 'exit 9' TERM; while true; do sleep 0.1; done",
        ],
    );
    spec.labels.insert(LABEL_OWNER.into(), "mallory".into());
    spec.labels.insert("app".into(), "web".into());
    let id = rig.container(spec).await;
    let inspect = rig
        .docker
        .query(&ContainerInspect(ContainerRef::new(&id)))
        .await
        .unwrap();
    let labels = inspect.config.unwrap().labels.unwrap();
    assert_eq!(labels[LABEL_OWNER], OWNER);
    assert_eq!(labels[LABEL_MANAGED], "true");
    assert_eq!(labels["app"], "web");

    let listed = rig
        .docker
        .query(&ContainerList {
            all: false,
            filters: [("id".to_owned(), vec![id.clone()])].into(),
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    let top = rig
        .docker
        .query(&ContainerTop {
            id: id.clone(),
            ps_args: None,
        })
        .await
        .unwrap();
    assert!(!top.processes.unwrap_or_default().is_empty());

    let stats: Vec<_> = rig
        .docker
        .subscribe(&ContainerStats {
            id: id.clone(),
            stream: false,
        })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(stats.len(), 1);

    // Starting a running container is not an error.
    rig.docker
        .query(&ContainerStart(ContainerRef::new(&id)))
        .await
        .unwrap();
    let mut events = rig
        .docker
        .subscribe(&Events {
            filters: [("container".to_owned(), vec![id.clone()])].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    rig.docker
        .query(&ContainerKill {
            id: id.clone(),
            signal: Some("TERM".into()),
        })
        .await
        .unwrap();
    let exited = rig
        .docker
        .query(&ContainerWait(ContainerRef::new(&id)))
        .await
        .unwrap();
    assert_eq!(exited.exit_code, 9);
    let mut actions = Vec::new();
    while !actions.iter().any(|a| a == "die") {
        let event = events.next().await.unwrap().unwrap();
        actions.push(event.action.unwrap_or_default());
    }
    assert!(actions.iter().any(|a| a == "kill"), "{actions:?}");
    drop(events);

    rig.docker
        .query(&ContainerRestart(ContainerStop {
            id: id.clone(),
            timeout: Some(1),
        }))
        .await
        .unwrap();
    rig.docker
        .query(&ContainerStop {
            id: id.clone(),
            timeout: Some(5),
        })
        .await
        .unwrap();
    let exited = rig
        .docker
        .query(&ContainerWait(ContainerRef::new(&id)))
        .await
        .unwrap();
    assert_eq!(exited.exit_code, 9, "stop sends TERM first");
    rig.docker
        .query(&ContainerRemove {
            id: id.clone(),
            force: false,
            volumes: true,
        })
        .await
        .unwrap();
    let e = rig
        .docker
        .query(&ContainerInspect(ContainerRef::new(&id)))
        .await
        .unwrap_err();
    assert_eq!(code(e), CONTAINER_NOT_FOUND);
}

/// A runtime asked for one container: Docker runs it under that runtime;
/// Podman would silently run it under its service's runtime (gVisor asked,
/// runc given), so there the create is refused `NOT_SUPPORTED`, saying
/// why, and nothing is made.
pub async fn a_runtime_per_container_is_honoured_or_refused(rig: &Rig) {
    let name = unique("runtime");
    let mut spec = ContainerSpec::new(IMAGE, ["true"]);
    spec.name = Some(name.clone());
    spec.runtime = Some("runsc".into());
    let made = rig.docker.query(&ContainerCreate(spec)).await;
    if !on_podman() {
        let id = made.unwrap().id;
        rig.cleanup.add(&id);
        let info = on_engine(engine().inspect_container(&id, None)).unwrap();
        assert_eq!(info.host_config.unwrap().runtime.as_deref(), Some("runsc"));
        return;
    }
    let e = match made {
        Ok(created) => {
            rig.cleanup.add(&created.id);
            panic!(
                "a container asking for runsc was made on Podman: {}",
                created.id
            )
        }
        Err(ClientError::Remote(e)) => e,
        Err(other) => panic!("expected a remote error, got {other:?}"),
    };
    assert_eq!(e.code, NOT_SUPPORTED, "{}", e.message);
    assert!(
        e.message.contains("runsc") && e.message.contains("Podman"),
        "{}",
        e.message
    );
    let left = on_engine(engine().list_containers(Some(q::ListContainersOptions {
        all: true,
        filters: Some([("name".to_owned(), vec![name.clone()])].into()),
        ..Default::default()
    })))
    .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// Images, networks and volumes through the catalog.
pub async fn images_networks_and_volumes(rig: &Rig) {
    let images = rig.docker.query(&ImageList::default()).await.unwrap();
    assert!(
        images
            .iter()
            .any(|i| i.repo_tags.iter().any(|t| t == IMAGE))
    );
    let tagged = format!("dockwire/testbox:{}", unique("tag").replace('-', ""));
    on_engine(engine().tag_image(
        IMAGE,
        Some(q::TagImageOptions {
            repo: Some("dockwire/testbox".into()),
            tag: Some(tagged.split(':').nth(1).unwrap().into()),
        }),
    ))
    .unwrap();
    let removed = rig
        .docker
        .query(&ImageRemove {
            image: tagged.clone(),
            force: false,
        })
        .await
        .unwrap();
    assert!(
        removed
            .iter()
            .any(|r| r.untagged.as_deref() == Some(tagged.as_str()))
    );
    let e = rig
        .docker
        .query(&ImageInspect(ImageRef { image: tagged }))
        .await
        .unwrap_err();
    assert_eq!(code(e), IMAGE_NOT_FOUND);

    let net = unique("net");
    let created = rig
        .docker
        .query(&NetworkCreate {
            name: net.clone(),
            internal: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!created.id.is_empty());
    let id = rig.sleeper().await;
    let member = NetworkMember {
        network: net.clone(),
        container: id.clone(),
        force: false,
    };
    rig.docker
        .query(&NetworkConnect(member.clone()))
        .await
        .unwrap();
    let (out, _, _) = rig.exec(&id, &["ls", "/sys/class/net"]).await;
    assert_eq!(
        String::from_utf8(out).unwrap().lines().count(),
        3,
        "lo, eth0 and the new one"
    );
    rig.docker.query(&NetworkDisconnect(member)).await.unwrap();
    let listed = rig
        .docker
        .query(&NetworkList {
            filters: [("name".to_owned(), vec![net.clone()])].into(),
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    rig.docker
        .query(&NetworkRemove {
            network: net.clone(),
        })
        .await
        .unwrap();
    let e = rig
        .docker
        .query(&NetworkRemove { network: net })
        .await
        .unwrap_err();
    assert_eq!(code(e), NETWORK_NOT_FOUND);

    let vol = unique("vol");
    let volume = rig
        .docker
        .query(&VolumeCreate {
            name: Some(vol.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(volume.name, vol);
    let listed = rig.docker.query(&VolumeList::default()).await.unwrap();
    assert!(
        listed
            .volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.name == vol)
    );
    rig.docker
        .query(&VolumeRemove {
            volume: vol.clone(),
            force: false,
        })
        .await
        .unwrap();
    let e = rig
        .docker
        .query(&VolumeRemove {
            volume: vol,
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(code(e), VOLUME_NOT_FOUND);
}
