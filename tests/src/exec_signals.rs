//! The rig of the tenancy tests of exec signals through the engine
//! (`ExecSignals::Engine`): a `user` peer (alice) over QUIC with mutual
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
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, ExecSignals, Role, UserNetwork};
use dockwire_service::ClientError;
use futures::StreamExt;

use crate::Rt;
use crate::docker::{IMAGE, engine, on_engine, unique};
use crate::quic_peers::{QuicPeers, QuicServed};

/// How long a signalled or cancelled exec's processes may take to go.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// One test's service, served with exec signals through the engine, and
/// its user peer.
pub struct Signals {
    /// The user peer, on a connection of her own.
    pub alice: DockerClient,
    label: String,
    finished: bool,
    _served: QuicServed,
}

impl Signals {
    /// A fresh server (exec signals through the engine) and its user.
    #[allow(clippy::new_without_default)] // it starts a server: not a default
    pub fn new() -> Signals {
        let _ = engine();
        let peers = QuicPeers::new(&[("alice", Role::User)]);
        let config = Config::from_env()
            .with_roles(peers.trust().roles())
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
    pub async fn container(&self) -> String {
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
    pub fn held(&self) -> Vec<String> {
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

    /// Removes the test's containers.
    pub fn clean(&self) {
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
    pub async fn finish(mut self, id: &str) {
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
pub async fn marked(id: &str) -> Vec<String> {
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
pub async fn within_patience(what: &str, mut check: impl AsyncFnMut() -> bool) {
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
pub const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Runs a test's body on the tests' tokio runtime, for [`TEST_LIMIT`] at
/// most (what it made is removed either way, by [`Signals`]' drop).
pub fn bounded(body: impl Future<Output = ()>) {
    Rt::Tokio.block_on(async {
        tokio::time::timeout(TEST_LIMIT, body)
            .await
            .expect("the test ran out of time: a signal or a kill did not arrive");
    });
}

/// Execs `input` as `who` on the json carriage: (stdout and stderr, exit
/// code).
pub async fn output(who: &DockerClient, input: ExecInput) -> Result<(String, i64), ClientError> {
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

/// Starts `script` detached in container `id` by the engine directly, as
/// a server's exec whose call has died, with `marker` in its environment:
/// the exec's id.
pub async fn detached(id: &str, marker: Option<&str>, script: &str) -> String {
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
