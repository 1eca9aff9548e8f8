//! The rig of the tenancy tests (issue 13): a server of the real engine
//! as `dockwire serve` runs it (the Docker service behind the call log and
//! the per-peer limit), over QUIC with mutual TLS to a cast of its own —
//! alice, bob and carol (users) and root (an admin) — and the calls and
//! checks the tests share.
//!
//! Everything a test makes carries its label `dockwire-test=<label>` or
//! is owned by one of its keys; [`Tenancy::finish`] fails the test if any
//! of it is left, and removes it either way ([`Tenancy`]'s drop removes
//! it too, with the networks' host rules).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use bollard::Docker;
use bollard::query_parameters as q;
use dockwire_core::{CallError, ErrorCode};
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, Items, Role};
use dockwire_service::quic::Identity;
use dockwire_service::{CallLog, ClientError, PeerLimit};
use futures::StreamExt;

use crate::docker::{IMAGE, engine, on_engine, unique};
use crate::quic_peers::{QuicPeers, QuicServed, key_of};
use crate::user_networks::{remove_default_network_of, remove_networks_of};

/// One test's server and peers.
pub struct Tenancy {
    /// alice, a user.
    pub alice: DockerClient,
    /// bob, a user.
    pub bob: DockerClient,
    /// root, an admin.
    pub root: DockerClient,
    /// The cast's identities and the trust table.
    pub peers: QuicPeers,
    /// The server, over QUIC with mutual TLS, each peer with its own key.
    pub served: QuicServed,
    /// The id written on what this server makes.
    pub server_id: String,
    /// The label of everything this test makes.
    pub label: String,
    /// Every key this test trusted: what they own is the test's.
    owners: Mutex<Vec<String>>,
    finished: bool,
}

impl Tenancy {
    /// A server with the defaults `dockwire serve` has here.
    pub fn new() -> Tenancy {
        Tenancy::with(Config::from_env())
    }

    /// A server of `config` (its roles from the cast's trust table).
    pub fn with(config: Config) -> Tenancy {
        let peers = QuicPeers::new(&[
            ("alice", Role::User),
            ("bob", Role::User),
            ("carol", Role::User),
            ("root", Role::Admin),
        ]);
        let server_id = unique("tenancy-server");
        let served = serve(&peers, config.with_server_id(&server_id));
        let owners = ["alice", "bob", "carol", "root"].map(|n| peers.key(n));
        Tenancy {
            alice: DockerClient::new(served.client("alice")),
            bob: DockerClient::new(served.client("bob")),
            root: DockerClient::new(served.client("root")),
            owners: Mutex::new(owners.to_vec()),
            peers,
            served,
            server_id,
            label: unique("tenancy"),
            finished: false,
        }
    }

    /// Another server of the same engine for the same peers (another
    /// mode, a restart, a second server).
    pub fn serve(&self, config: Config) -> QuicServed {
        serve(&self.peers, config)
    }

    /// `key`'s objects are this test's too (a key trusted later).
    pub fn owned_by(&self, identity: &Identity) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.push(key_of(identity));
    }

    /// `name`'s key.
    pub fn key(&self, name: &str) -> String {
        self.peers.key(name)
    }

    /// The test's label, for labels maps.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("dockwire-test".to_owned(), self.label.clone())])
    }

    /// The ids of the containers `who` lists that carry the test's label:
    /// an admin's list without the other tests' containers, which come and
    /// go meanwhile.
    pub async fn labelled_ids(&self, who: &DockerClient) -> Vec<String> {
        let labels = self
            .labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        ids_listed(who, HashMap::from([("label".to_owned(), labels)])).await
    }

    /// A labelled container spec of the test image running `cmd`.
    pub fn spec(&self, cmd: &[&str]) -> ContainerSpec {
        let mut spec = ContainerSpec::new(IMAGE, cmd.iter().copied());
        spec.labels = self.labels();
        spec
    }

    /// Creates and starts a sleeping container of `spec` as `who`.
    pub async fn sleeper(&self, who: &DockerClient, mut spec: ContainerSpec) -> String {
        spec.cmd = vec!["sleep".into(), "3600".into()];
        let created = who
            .query(&ContainerCreate(spec))
            .await
            .expect("the container is made");
        who.query(&ContainerStart(ContainerRef::new(&created.id)))
            .await
            .expect("the container starts");
        created.id
    }

    /// Removes container `id` as `who`.
    pub async fn remove(&self, who: &DockerClient, id: &str) {
        who.query(&ContainerRemove {
            id: id.into(),
            force: true,
            volumes: false,
        })
        .await
        .expect("the container is removed");
    }

    /// The engine's objects of this test: labelled with its label, or
    /// owned (by label) by its keys.
    pub fn held(&self) -> Vec<String> {
        let (label, owners) = (self.label.clone(), self.owners());
        apart(move || held(&label, &owners))
    }

    /// Fails the test if anything it made is left (removing it anyway).
    /// The users' default networks (made on their first container) are
    /// theirs to keep, and removed first; a test's own networks are not.
    pub fn finish(mut self) {
        self.finished = true;
        let (label, owners) = (self.label.clone(), self.owners());
        let (left, after) = apart(move || {
            for owner in &owners {
                remove_default_network_of(owner);
            }
            let left = held(&label, &owners);
            clean(&label, &owners);
            (left, held(&label, &owners))
        });
        assert!(left.is_empty(), "the test left {left:?}");
        assert!(after.is_empty(), "cannot remove {after:?}");
    }

    fn owners(&self) -> Vec<String> {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Runs `f` on a thread of its own: the engine calls of a check or a
/// cleanup, many in a row, must not run inside a tokio task, whose
/// cooperative budget they would exhaust (tokio's IO then stays pending:
/// the calls would spin for ever).
fn apart<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The engine's objects labelled `dockwire-test=<label>` or owned by one
/// of `owners`.
fn held(label: &str, owners: &[String]) -> Vec<String> {
    let docker = engine();
    let mut selectors = vec![format!("dockwire-test={label}")];
    selectors.extend(owners.iter().map(|o| format!("{LABEL_OWNER}={o}")));
    let mut held = Vec::new();
    for selector in selectors {
        let filters = || HashMap::from([("label".to_owned(), vec![selector.clone()])]);
        let containers = on_engine(docker.list_containers(Some(q::ListContainersOptions {
            all: true,
            filters: Some(filters()),
            ..Default::default()
        })))
        .unwrap_or_default();
        held.extend(
            containers
                .into_iter()
                .filter_map(|c| c.id)
                .map(|id| format!("container {id}")),
        );
        let volumes = on_engine(docker.list_volumes(Some(q::ListVolumesOptions {
            filters: Some(filters()),
        })))
        .unwrap_or_default();
        held.extend(
            volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| format!("volume {}", v.name)),
        );
        let networks = on_engine(docker.list_networks(Some(q::ListNetworksOptions {
            filters: Some(filters()),
        })))
        .unwrap_or_default();
        held.extend(
            networks
                .into_iter()
                .filter_map(|n| n.id)
                .map(|id| format!("network {id}")),
        );
    }
    held.sort();
    held.dedup();
    held
}

/// Removes what [`held`] finds: containers first, then the owners'
/// networks with the host rules on their bridges, then the rest.
fn clean(label: &str, owners: &[String]) {
    let docker = engine();
    for held in held(label, owners) {
        if let Some(id) = held.strip_prefix("container ") {
            let options = q::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            let _ = on_engine(docker.remove_container(id, Some(options)));
        }
    }
    for owner in owners {
        remove_networks_of(owner);
    }
    for held in held(label, owners) {
        let Some((kind, name)) = held.split_once(' ') else {
            continue;
        };
        let _ = match kind {
            "volume" => on_engine(docker.remove_volume(name, None::<q::RemoveVolumeOptions>)),
            "network" => on_engine(docker.remove_network(name)),
            _ => Ok(()),
        };
    }
}

impl Default for Tenancy {
    fn default() -> Self {
        Tenancy::new()
    }
}

impl Drop for Tenancy {
    fn drop(&mut self) {
        if !self.finished {
            let (label, owners) = (self.label.clone(), self.owners());
            apart(move || clean(&label, &owners));
        }
    }
}

/// Serves the real engine with `config` to `peers` as `dockwire serve`
/// does: roles by key from the trust table, the call log and the per-peer
/// limit around the Docker service.
fn serve(peers: &QuicPeers, config: Config) -> QuicServed {
    let _ = engine();
    let docker = Docker::connect_with_local_defaults().expect("the local engine's client");
    let config = config.with_roles(peers.trust().roles());
    let service = CallLog::new(PeerLimit::new(DockerService::new(docker, config), 1024));
    peers.serve(Arc::new(service))
}

/// Runs `spec` as `who` on the json carriage: (stdout and stderr, exit
/// code), the container removed after.
pub async fn run(
    who: &DockerClient,
    mut spec: ContainerSpec,
) -> Result<(String, i64), ClientError> {
    spec.auto_remove = true;
    let mut items = who.subscribe(&RunInput(spec)).await?;
    collect(&mut items).await
}

/// Execs `cmd` in `id` as `who`: (stdout and stderr, exit code).
pub async fn exec(
    who: &DockerClient,
    id: &str,
    cmd: &[&str],
) -> Result<(String, i64), ClientError> {
    let mut items = who
        .subscribe(&ExecInput::new(id, cmd.iter().copied()))
        .await?;
    collect(&mut items).await
}

async fn collect(items: &mut Items<ExecItem>) -> Result<(String, i64), ClientError> {
    let (mut out, mut exit) = (Vec::new(), None);
    while let Some(item) = items.next().await {
        match item? {
            ExecItem::Output { data, .. } => {
                out.extend_from_slice(&data.to_bytes().expect("output bytes"))
            }
            ExecItem::Exit { exit_code, .. } => exit = Some(exit_code),
        }
    }
    let out = String::from_utf8_lossy(&out).into_owned();
    Ok((out, exit.expect("an exit code")))
}

/// A read-write mount of `source` on `target`.
pub fn mount(source: &str, target: &str) -> Mount {
    Mount {
        source: source.into(),
        target: target.into(),
        read_only: false,
    }
}

/// The remote error of `result`.
pub fn error<T: std::fmt::Debug>(what: &str, result: Result<T, ClientError>) -> CallError {
    match result {
        Err(ClientError::Remote(e)) => e,
        other => panic!("{what}: expected a remote error, got {other:?}"),
    }
}

/// Asserts that `result` is exactly what a missing `kind` named
/// `reference` gives: its code, and a message naming only the reference.
pub fn missing<T: std::fmt::Debug>(
    what: &str,
    kind: &str,
    reference: &str,
    result: Result<T, ClientError>,
) {
    let e = error(what, result);
    let code = match kind {
        "container" => CONTAINER_NOT_FOUND,
        "volume" => VOLUME_NOT_FOUND,
        "network" => NETWORK_NOT_FOUND,
        _ => panic!("no such kind: {kind}"),
    };
    assert_eq!(e.code, code, "{what}: {}", e.message);
    assert_eq!(e.message, format!("No such {kind}: {reference}"), "{what}");
}

/// Asserts that `result` is refused with `code`: its message.
pub fn refused<T: std::fmt::Debug>(
    what: &str,
    code: ErrorCode,
    result: Result<T, ClientError>,
) -> String {
    let e = error(what, result);
    assert_eq!(e.code, code, "{what}: {}", e.message);
    e.message
}

/// The engine's names of `owner`'s volumes, as an admin sees them.
pub async fn volumes_of(root: &DockerClient, owner: &str) -> Vec<String> {
    let listed = root
        .query(&VolumeList {
            filters: HashMap::from([("label".to_owned(), vec![format!("{LABEL_OWNER}={owner}")])]),
        })
        .await
        .expect("the admin lists volumes");
    let mut names: Vec<String> = listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    names
}

/// The names of `who`'s volumes, as it sees them.
pub async fn own_volumes(who: &DockerClient) -> Vec<String> {
    let listed = who
        .query(&VolumeList::default())
        .await
        .expect("a peer lists its volumes");
    let mut names: Vec<String> = listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    names
}

/// The ids of the containers `who` lists (all of them).
pub async fn listed_ids(who: &DockerClient) -> Vec<String> {
    ids_listed(who, HashMap::new()).await
}

/// The ids of the containers `who` lists under `filters`, stopped ones too.
async fn ids_listed(who: &DockerClient, filters: HashMap<String, Vec<String>>) -> Vec<String> {
    let list = ContainerList { all: true, filters };
    let listed = who.query(&list).await.expect("a peer lists its containers");
    listed.into_iter().filter_map(|c| c.id).collect()
}

/// `volume rm NAME`.
pub fn remove_volume(volume: &str) -> VolumeRemove {
    VolumeRemove {
        volume: volume.into(),
        force: false,
    }
}

/// `network connect|disconnect NETWORK CONTAINER`'s input.
pub fn member(network: &str, container: &str) -> NetworkMember {
    NetworkMember {
        network: network.into(),
        container: container.into(),
        force: false,
    }
}

/// An operation only admins may call.
pub fn admin_only() -> Info {
    Info {}
}

/// The log lines of this test process, captured from the first call on
/// (the audit and call lines `RUST_LOG` would print).
pub fn captured_log() -> &'static CapturedLog {
    static LINES: OnceLock<CapturedLog> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = CapturedLog::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other subscriber in the tenancy tests");
        lines
    })
}

/// Where the process's log lines go.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// What was logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A host directory of a test's own, removed whatever happened.
pub struct HostDir(pub std::path::PathBuf);

impl HostDir {
    /// A fresh directory.
    pub fn new() -> HostDir {
        let dir = std::env::temp_dir().join(unique("bind"));
        std::fs::create_dir_all(&dir).unwrap();
        HostDir(dir)
    }
}

impl Default for HostDir {
    fn default() -> Self {
        HostDir::new()
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds image `tag` from `dockerfile` with the `docker` command, on
/// the engine the tests use (`DOCKER_HOST`), outside dockwire. Podman's
/// builder fails now and then while another image is removed (its cache
/// check reads every image's top layer without its store's lock: `layer
/// not known`, `image not known`); such a build is tried again, up to
/// five times.
pub fn build_outside(tag: &str, dockerfile: &str) {
    let mut failures = Vec::new();
    while failures.len() < 5 {
        let mut build = std::process::Command::new("docker")
            .args(["build", "-q", "-t", tag, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the docker command runs");
        build
            .stdin
            .take()
            .expect("its stdin is piped")
            .write_all(dockerfile.as_bytes())
            .expect("the docker command reads the Dockerfile");
        let built = build.wait_with_output().expect("the docker command ends");
        if built.status.success() {
            return;
        }
        let said = String::from_utf8_lossy(&built.stderr).into_owned();
        assert!(said.contains(" not known"), "docker build {tag}: {said}");
        failures.push(said);
    }
    panic!("docker build {tag}, five times: {failures:#?}");
}

/// Removes a test's image, whatever happened.
pub struct ImageCleanup(pub String);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let options = q::RemoveImageOptions {
            force: true,
            ..Default::default()
        };
        let _ = on_engine(engine().remove_image(&self.0, Some(options), None));
    }
}

/// A tar holding one file, `name`, of `data`.
pub fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, data).unwrap();
    builder.into_inner().unwrap()
}

/// The code and message of a remote error.
pub fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Remote(e)) => (e.code, e.message),
        other => panic!("expected a remote error, got {other:?}"),
    }
}
