//! Exec signals through the engine (issue 13, `ExecSignals::Engine`),
//! against the real engine: a `user` peer (alice) over QUIC with mutual
//! TLS signals and cancels execs in her container, and the server reaches
//! them with a second exec in that container, by the marker
//! (`DOCKWIRE_EXEC`) it gave each exec, never by a host pid.
//!
//! Every container a test makes carries its label `dockwire-test=<label>`;
//! [`Signals::finish`] fails the test if one is left, and removes them
//! either way. Users' containers get no network here (nothing of this is
//! about networks, and no user network is made).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, ExecSignals, Role, UserNetwork};
use dockwire_service::ClientError;
use dockwire_tests::Rt;
use dockwire_tests::docker::{IMAGE, engine, on_engine, read_until, runs, unique};
use dockwire_tests::quic_peers::{QuicPeers, QuicServed};
use futures::StreamExt;
use futures::io::AsyncReadExt;

/// How long a signalled or cancelled exec's processes may take to go.
const PATIENCE: Duration = Duration::from_secs(5);

/// One test's service, served with exec signals through the engine, and
/// its user peer.
struct Signals {
    alice: DockerClient,
    label: String,
    finished: bool,
    _served: QuicServed,
}

impl Signals {
    fn new() -> Signals {
        let _ = engine();
        let peers = QuicPeers::new(&["alice"]);
        let roles = peers.roles(|_| Some(Role::User));
        let config = Config::from_env()
            .with_roles(roles)
            .with_user_network(UserNetwork::None)
            .with_exec_signals(ExecSignals::Engine);
        let docker = Docker::connect_with_local_defaults().unwrap();
        let served = peers.serve(Arc::new(DockerService::new(docker, config)));
        Signals {
            alice: DockerClient::new(served.client("alice")),
            label: unique("signals"),
            finished: false,
            _served: served,
        }
    }

    /// A running container of alice's, sleeping, labelled with the test's
    /// label.
    async fn container(&self) -> String {
        let mut spec = ContainerSpec::new(IMAGE, ["sleep", "3600"]);
        spec.labels = BTreeMap::from([("dockwire-test".to_owned(), self.label.clone())]);
        let created = self.alice.query(&ContainerCreate(spec)).await.unwrap();
        self.alice
            .query(&ContainerStart(ContainerRef::new(&created.id)))
            .await
            .unwrap();
        created.id
    }

    /// The engine's containers with this test's label.
    fn held(&self) -> Vec<String> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("dockwire-test={}", self.label)],
        )]);
        let containers = on_engine(engine().list_containers(Some(q::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        })))
        .unwrap();
        containers.into_iter().filter_map(|c| c.id).collect()
    }

    fn clean(&self) {
        for id in self.held() {
            let options = q::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            let _ = on_engine(engine().remove_container(&id, Some(options)));
        }
    }

    /// Removes alice's container `id` as she would, then fails the test
    /// if anything it made is left (removing it anyway).
    async fn finish(mut self, id: &str) {
        self.alice
            .query(&ContainerRemove {
                id: id.into(),
                force: true,
                volumes: false,
            })
            .await
            .unwrap();
        self.finished = true;
        let left = self.held();
        self.clean();
        assert!(left.is_empty(), "the test left {left:?}");
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if !self.finished {
            self.clean();
        }
    }
}

/// The pids of the processes in container `id` that carry an exec marker,
/// as the engine's root sees them (by an exec of the engine's own, which
/// carries none).
async fn marked(id: &str) -> Vec<String> {
    let script = "for d in /proc/[0-9]*; do \
                  tr '\\000' '\\n' 2>/dev/null <\"$d/environ\" | grep -q '^DOCKWIRE_EXEC=' \
                  && echo \"${d#/proc/}\"; done; true";
    let docker = engine();
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]),
        user: Some("0".to_owned()),
        ..Default::default()
    };
    let created = docker.create_exec(id, options).await.unwrap();
    let mut out = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await.unwrap()
    {
        while let Some(chunk) = output.next().await {
            if let LogOutput::StdOut { message } = chunk.unwrap() {
                out.push_str(&String::from_utf8_lossy(&message));
            }
        }
    }
    out.split_whitespace().map(str::to_owned).collect()
}

/// Waits up to [`PATIENCE`] for `check` to hold.
async fn within_patience(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: still not true after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The longest a test may take: a signal that never arrives fails the
/// test instead of hanging it.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Runs a test's body on the tests' tokio runtime, for [`TEST_LIMIT`] at
/// most (what it made is removed either way, by [`Signals`]' drop).
fn bounded(body: impl Future<Output = ()>) {
    Rt::Tokio.block_on(async {
        tokio::time::timeout(TEST_LIMIT, body)
            .await
            .expect("the test ran out of time: a signal or a kill did not arrive");
    });
}

/// A shell that says `ready`, then on TERM says `got-term` and exits 7.
const TRAPPING: &str = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 1; done";

#[test]
fn exec_signal_through_the_engine_reaches_the_process() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        let mut session = t
            .alice
            .open(&ExecInput::new(&id, ["sh", "-c", TRAPPING]))
            .await
            .unwrap();
        let mut seen = Vec::new();
        read_until(&mut session, &mut seen, "ready\n").await;
        session.control.signal("TERM").await.unwrap();
        session.stdout.read_to_end(&mut seen).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&seen), "ready\ngot-term\n");
        assert_eq!(session.exit.await.unwrap(), 7);

        // A plain process, signalled by number: what a shell reports for
        // TERM.
        let mut session = t
            .alice
            .open(&ExecInput::new(&id, ["sleep", "610"]))
            .await
            .unwrap();
        session.control.signal("15").await.unwrap();
        let mut rest = Vec::new();
        session.stdout.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"");
        assert_eq!(session.exit.await.unwrap(), 143);
        t.finish(&id).await;
    });
}

#[test]
fn exec_signal_through_the_engine_reaches_a_non_root_users_process() {
    // The signaller runs as the exec's user: the container's root could
    // not read that process's environment (no CAP_SYS_PTRACE).
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        let mut input = ExecInput::new(&id, ["sh", "-c", TRAPPING]);
        input.user = Some("1000:1000".into());
        let mut session = t.alice.open(&input).await.unwrap();
        let mut seen = Vec::new();
        read_until(&mut session, &mut seen, "ready\n").await;
        session.control.signal("SIGTERM").await.unwrap();
        session.stdout.read_to_end(&mut seen).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&seen), "ready\ngot-term\n");
        assert_eq!(session.exit.await.unwrap(), 7);
        t.finish(&id).await;
    });
}

#[test]
fn a_signal_through_the_engine_reaches_only_its_own_exec() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        let mut signalled = t
            .alice
            .open(&ExecInput::new(&id, ["sleep", "611"]))
            .await
            .unwrap();
        let mut bystander = t
            .alice
            .open(&ExecInput::new(
                &id,
                ["sh", "-c", "sleep 612; echo bystander-done"],
            ))
            .await
            .unwrap();
        within_patience("both execs run", async || {
            runs(&id, "sleep 611") && runs(&id, "sleep 612")
        })
        .await;
        signalled.control.signal("TERM").await.unwrap();
        assert_eq!(signalled.exit.await.unwrap(), 143);
        // The other exec, with its own marker, is untouched.
        assert!(runs(&id, "sleep 612"), "the other exec still runs");
        assert_eq!(marked(&id).await.len(), 2, "the bystander's sh and sleep");
        bystander.control.abort().await.unwrap();
        assert!(bystander.exit.await.is_err());
        within_patience("the bystander is killed", async || {
            marked(&id).await.is_empty()
        })
        .await;
        t.finish(&id).await;
    });
}

#[test]
fn a_cancelled_exec_is_killed_through_the_engine() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        // Aborted on the raw carriage: the shell, and the child it started.
        let mut session = t
            .alice
            .open(&ExecInput::new(
                &id,
                ["sh", "-c", "sleep 601 & sleep 602; true"],
            ))
            .await
            .unwrap();
        within_patience("the exec and its child run", async || {
            runs(&id, "sleep 601") && runs(&id, "sleep 602")
        })
        .await;
        assert_eq!(marked(&id).await.len(), 3, "sh and its two sleeps");
        session.control.abort().await.unwrap();
        assert!(session.exit.await.is_err());
        within_patience("no process carries a marker", async || {
            marked(&id).await.is_empty()
        })
        .await;
        assert!(!runs(&id, "sleep 601") && !runs(&id, "sleep 602"));

        // A json exec whose subscription is dropped.
        let items = t
            .alice
            .subscribe(&ExecInput::new(
                &id,
                ["sh", "-c", "sleep 603 & sleep 604; true"],
            ))
            .await
            .unwrap();
        within_patience("the json exec and its child run", async || {
            runs(&id, "sleep 603") && runs(&id, "sleep 604")
        })
        .await;
        drop(items);
        within_patience("no process carries a marker", async || {
            marked(&id).await.is_empty()
        })
        .await;
        assert!(!runs(&id, "sleep 603") && !runs(&id, "sleep 604"));
        // The container itself is untouched.
        assert!(runs(&id, "sleep 3600"));
        t.finish(&id).await;
    });
}

#[test]
fn a_callers_dockwire_exec_is_refused_and_the_servers_marker_is_fresh() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        // The marker is the server's: fresh per exec, 128 bits of hex.
        let echo = ["sh", "-c", "echo \"$DOCKWIRE_EXEC\""];
        let first = output(&t.alice, ExecInput::new(&id, echo)).await.unwrap();
        let second = output(&t.alice, ExecInput::new(&id, echo)).await.unwrap();
        for (out, code) in [&first, &second] {
            assert_eq!(*code, 0);
            let marker = out.strip_suffix('\n').unwrap();
            assert_eq!(marker.len(), 32, "{out:?}");
            assert!(marker.bytes().all(|b| b.is_ascii_hexdigit()), "{out:?}");
        }
        assert_ne!(first.0, second.0);

        // A caller's own: refused (given a value, or passed on from the
        // container's), and nothing runs.
        let forged = first.0.trim();
        for entry in [
            format!("DOCKWIRE_EXEC={forged}"),
            "DOCKWIRE_EXEC".to_owned(),
        ] {
            let mut input = ExecInput::new(&id, ["touch", "/tmp/forged"]);
            input.env = vec!["A=1".into(), entry.clone()];
            let refused = match output(&t.alice, input).await {
                Err(ClientError::Remote(e)) => e,
                other => panic!("{entry}: expected a refusal, got {other:?}"),
            };
            assert_eq!(refused.code, ErrorCode::INVALID_INPUT, "{entry}");
            assert_eq!(
                refused.message,
                "`env` may not set DOCKWIRE_EXEC: the server marks its execs with it"
            );
        }
        let ls = output(&t.alice, ExecInput::new(&id, ["ls", "/tmp"]))
            .await
            .unwrap();
        assert_eq!(ls, (String::new(), 0), "nothing ran");
        t.finish(&id).await;
    });
}

/// Execs `input` as `who` on the json carriage: (stdout and stderr, exit
/// code).
async fn output(who: &DockerClient, input: ExecInput) -> Result<(String, i64), ClientError> {
    let mut items = who.subscribe(&input).await?;
    let (mut out, mut exit) = (Vec::new(), None);
    while let Some(item) = items.next().await {
        match item? {
            ExecItem::Output { data, .. } => out.extend_from_slice(&data.to_bytes().unwrap()),
            ExecItem::Exit { exit_code, .. } => exit = Some(exit_code),
        }
    }
    Ok((String::from_utf8(out).unwrap(), exit.unwrap()))
}

#[test]
fn a_dead_calls_exec_is_killed_through_the_engine_by_the_sweep() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        // Two execs whose calls died with a crashed server, as its journal
        // left them: one with its marker, one from before markers.
        let marker = "0123456789abcdef0123456789abcdef";
        let marked_exec = detached(&id, Some(marker), "sleep 631 & sleep 632; true").await;
        let old_exec = detached(&id, None, "sleep 633").await;
        let journal = std::env::temp_dir().join(unique("signals-journal"));
        std::fs::create_dir_all(&journal).unwrap();
        std::fs::write(journal.join(&marked_exec), format!("{id}\n{marker}\n")).unwrap();
        std::fs::write(journal.join(&old_exec), format!("{id}\n")).unwrap();
        within_patience("the execs run", async || {
            runs(&id, "sleep 631") && runs(&id, "sleep 632") && runs(&id, "sleep 633")
        })
        .await;

        let restarted = DockerService::new(
            Docker::connect_with_local_defaults().unwrap(),
            Config::from_env()
                .with_exec_journal(&journal)
                .with_exec_signals(ExecSignals::Engine),
        );
        restarted.sweep().await.unwrap();
        within_patience("the marked exec's processes are gone", async || {
            !runs(&id, "sleep 631") && !runs(&id, "sleep 632")
        })
        .await;
        // Nothing tells the old record's processes: they are left (and
        // logged), as documented.
        assert!(runs(&id, "sleep 633"));
        let left: Vec<_> = std::fs::read_dir(&journal).unwrap().collect();
        assert!(left.is_empty(), "the records are dropped: {left:?}");
        std::fs::remove_dir_all(&journal).unwrap();
        t.finish(&id).await;
    });
}

/// Starts `script` detached in container `id` by the engine directly, as
/// a server's exec whose call has died, with `marker` in its environment:
/// the exec's id.
async fn detached(id: &str, marker: Option<&str>, script: &str) -> String {
    let docker = engine();
    let options = CreateExecOptions {
        cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]),
        env: marker.map(|m| vec![format!("DOCKWIRE_EXEC={m}")]),
        ..Default::default()
    };
    let created = docker.create_exec(id, options).await.unwrap();
    let start = bollard::exec::StartExecOptions {
        detach: true,
        ..Default::default()
    };
    docker.start_exec(&created.id, Some(start)).await.unwrap();
    created.id
}
