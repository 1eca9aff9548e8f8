//! Peers isolated from each other's objects (issue 13: ownership, names,
//! volumes, networks), against the real engine: two `user` peers (alice
//! and bob) and an admin (root) on one service. One test per attack class
//! and per rule; each asserts that the attack fails (the code and the
//! message, which names nothing of the victim's) and what the victim
//! still has. The peers reach the service over QUIC with mutual TLS, each
//! with an identity of its own (its key, `sha256:<fingerprint>`, is the
//! owner of what it makes); each test has peers of its own, so that what
//! one test's peers own is no other test's.
//!
//! Everything a test makes carries its label `dockwire-test=<label>` or
//! is owned by its peers; [`Tenancy::finish`] fails the test if any of it
//! is left, and removes it either way.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::Arc;

use bollard::Docker;
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, Role};
use dockwire_service::ClientError;
use dockwire_tests::Rt;
use dockwire_tests::docker::{IMAGE, engine, on_engine, unique};
use dockwire_tests::quic_peers::{QuicPeers, QuicServed};
use dockwire_tests::user_networks::{
    BRIDGE_NAME_OPTION, remove_default_network_of, remove_networks_of, rules_for,
};
use futures::StreamExt;
use futures::io::AsyncWriteExt;

/// One test's service and peers.
struct Tenancy {
    alice: DockerClient,
    bob: DockerClient,
    root: DockerClient,
    /// The owners of alice's and bob's objects: their keys.
    owners: [String; 2],
    /// The server id written on what this service makes.
    server_id: String,
    /// The label of everything this test makes.
    label: String,
    finished: bool,
    /// The server, over QUIC with mutual TLS, each peer with its own key.
    _served: QuicServed,
}

impl Tenancy {
    fn new() -> Tenancy {
        let _ = engine();
        let peers = QuicPeers::new(&["alice", "bob", "root"]);
        let roles = peers.roles(|name| match name {
            "root" => Some(Role::Admin),
            _ => Some(Role::User),
        });
        let owners = [peers.key("alice"), peers.key("bob")];
        let server_id = unique("tenancy-server");
        let config = Config::from_env()
            .with_roles(roles)
            .with_server_id(&server_id);
        let docker = Docker::connect_with_local_defaults().unwrap();
        let served = peers.serve(Arc::new(DockerService::new(docker, config)));
        Tenancy {
            alice: DockerClient::new(served.client("alice")),
            bob: DockerClient::new(served.client("bob")),
            root: DockerClient::new(served.client("root")),
            owners,
            server_id,
            label: unique("tenancy"),
            finished: false,
            _served: served,
        }
    }

    /// The test's label, for labels maps.
    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("dockwire-test".to_owned(), self.label.clone())])
    }

    /// A labelled container spec of the test image running `cmd`.
    fn spec(&self, cmd: &[&str]) -> ContainerSpec {
        let mut spec = ContainerSpec::new(IMAGE, cmd.iter().copied());
        spec.labels = self.labels();
        spec
    }

    /// Creates and starts a sleeping container as `who`.
    async fn sleeper(&self, who: &DockerClient, mut spec: ContainerSpec) -> String {
        spec.cmd = vec!["sleep".into(), "3600".into()];
        let created = who.query(&ContainerCreate(spec)).await.unwrap();
        who.query(&ContainerStart(ContainerRef::new(&created.id)))
            .await
            .unwrap();
        created.id
    }

    /// Removes container `id` as `who`.
    async fn remove(&self, who: &DockerClient, id: &str) {
        who.query(&ContainerRemove {
            id: id.into(),
            force: true,
            volumes: false,
        })
        .await
        .unwrap();
    }

    /// The engine's objects of this test: labelled with its label, or
    /// owned (by label) by its peers.
    fn held(&self) -> Vec<String> {
        let docker = engine();
        let mut selectors = vec![format!("dockwire-test={}", self.label)];
        selectors.extend(self.owners.iter().map(|o| format!("{LABEL_OWNER}={o}")));
        let mut held = Vec::new();
        for selector in selectors {
            let filters = || HashMap::from([("label".to_owned(), vec![selector.clone()])]);
            let containers = on_engine(docker.list_containers(Some(q::ListContainersOptions {
                all: true,
                filters: Some(filters()),
                ..Default::default()
            })))
            .unwrap();
            held.extend(
                containers
                    .into_iter()
                    .filter_map(|c| c.id)
                    .map(|id| format!("container {id}")),
            );
            let volumes = on_engine(docker.list_volumes(Some(q::ListVolumesOptions {
                filters: Some(filters()),
            })))
            .unwrap();
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
            .unwrap();
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

    /// Removes whatever of this test's is left.
    fn clean(&self) {
        let docker = engine();
        for held in self.held() {
            if let Some(id) = held.strip_prefix("container ") {
                let options = q::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                let _ = on_engine(docker.remove_container(id, Some(options)));
            }
        }
        // The peers' networks with the host rules on their bridges.
        for owner in &self.owners {
            remove_networks_of(owner);
        }
        for held in self.held() {
            let (kind, name) = held.split_once(' ').unwrap();
            let _ = match kind {
                "volume" => on_engine(docker.remove_volume(name, None::<q::RemoveVolumeOptions>)),
                "network" => on_engine(docker.remove_network(name)),
                _ => Ok(()),
            };
        }
    }

    /// Fails the test if anything it made is left (removing it anyway).
    fn finish(mut self) {
        self.finished = true;
        // The users' default networks (made on their first container) are
        // theirs to keep; a test's own networks are not.
        for owner in &self.owners {
            remove_default_network_of(owner);
        }
        let left = self.held();
        self.clean();
        assert!(left.is_empty(), "the test left {left:?}");
        assert!(self.held().is_empty(), "cannot remove {:?}", self.held());
    }
}

impl Drop for Tenancy {
    fn drop(&mut self) {
        if !self.finished {
            self.clean();
        }
    }
}

/// Runs `spec` as `who` on the json carriage: (stdout and stderr, exit
/// code), the container removed after.
async fn run(who: &DockerClient, mut spec: ContainerSpec) -> Result<(String, i64), ClientError> {
    spec.auto_remove = true;
    let mut items = who.subscribe(&RunInput(spec)).await?;
    collect(&mut items).await
}

/// Execs `cmd` in `id` as `who`: (stdout and stderr, exit code).
async fn exec(who: &DockerClient, id: &str, cmd: &[&str]) -> Result<(String, i64), ClientError> {
    let mut items = who
        .subscribe(&ExecInput::new(id, cmd.iter().copied()))
        .await?;
    collect(&mut items).await
}

async fn collect(
    items: &mut dockwire_docker::Items<ExecItem>,
) -> Result<(String, i64), ClientError> {
    let (mut out, mut exit) = (Vec::new(), None);
    while let Some(item) = items.next().await {
        match item? {
            ExecItem::Output { data, .. } => out.extend_from_slice(&data.to_bytes().unwrap()),
            ExecItem::Exit { exit_code, .. } => exit = Some(exit_code),
        }
    }
    Ok((String::from_utf8(out).unwrap(), exit.unwrap()))
}

fn mount(source: &str, target: &str) -> Mount {
    Mount {
        source: source.into(),
        target: target.into(),
        read_only: false,
    }
}

/// The remote error of `result`.
fn error<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, ClientError>,
) -> dockwire_core::CallError {
    match result {
        Err(ClientError::Remote(e)) => e,
        other => panic!("{what}: expected a remote error, got {other:?}"),
    }
}

/// Asserts that `result` is exactly what a missing `kind` named
/// `reference` gives: its code, and a message naming only the reference.
fn missing<T: std::fmt::Debug>(
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
        _ => unreachable!(),
    };
    assert_eq!(e.code, code, "{what}: {}", e.message);
    assert_eq!(e.message, format!("No such {kind}: {reference}"), "{what}");
}

fn refused<T: std::fmt::Debug>(
    what: &str,
    code: ErrorCode,
    result: Result<T, ClientError>,
) -> String {
    let e = error(what, result);
    assert_eq!(e.code, code, "{what}: {}", e.message);
    e.message
}

/// The engine's names of `owner`'s volumes, as an admin sees them.
async fn volumes_of(root: &DockerClient, owner: &str) -> Vec<String> {
    let listed = root
        .query(&VolumeList {
            filters: HashMap::from([("label".to_owned(), vec![format!("{LABEL_OWNER}={owner}")])]),
        })
        .await
        .unwrap();
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
async fn own_volumes(who: &DockerClient) -> Vec<String> {
    let listed = who.query(&VolumeList::default()).await.unwrap();
    let mut names: Vec<String> = listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    names
}

fn remove_volume(volume: &str) -> VolumeRemove {
    VolumeRemove {
        volume: volume.into(),
        force: false,
    }
}

fn member(network: &str, container: &str) -> NetworkMember {
    NetworkMember {
        network: network.into(),
        container: container.into(),
        force: false,
    }
}

// ---------------------------------------------------------------- attacks

/// Attack 1: mounting another user's named volume, by its name or by its
/// engine name, gives the mounter a fresh volume of its own; alice's
/// files are neither read nor overwritten, and bob cannot remove them.
#[test]
fn another_users_volume_cannot_be_mounted_read_or_removed() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let volume = t
            .alice
            .query(&VolumeCreate {
                name: Some("data".into()),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(volume.name, "data");
        let mut write = t.spec(&[
            "sh",
            "-c",
            "echo alice-secret > /data/secret && cat /data/secret",
        ]);
        write.mounts = vec![mount("data", "/data")];
        assert_eq!(
            run(&t.alice, write).await.unwrap(),
            ("alice-secret\n".into(), 0)
        );
        let engine_names = volumes_of(&t.root, &t.owners[0]).await;
        assert_eq!(engine_names.len(), 1, "{engine_names:?}");
        let engine_name = engine_names[0].clone();
        assert!(engine_name.starts_with("dw-") && engine_name.ends_with("-data"));

        // bob sees none of alice's volumes, and cannot remove them.
        assert!(own_volumes(&t.bob).await.is_empty());
        for reference in ["data", engine_name.as_str()] {
            missing(
                "bob removes alice's volume",
                "volume",
                reference,
                t.bob.query(&remove_volume(reference)).await,
            );
        }
        // bob's mounts of those names are his own, fresh volumes: empty,
        // and what he writes stays in them.
        for reference in ["data", engine_name.as_str()] {
            let mut steal = t.spec(&["sh", "-c", "ls -A /data; echo bob > /data/secret"]);
            steal.mounts = vec![mount(reference, "/data")];
            assert_eq!(
                run(&t.bob, steal).await.unwrap(),
                (String::new(), 0),
                "{reference}"
            );
        }

        // alice's file is intact.
        let mut read = t.spec(&["cat", "/data/secret"]);
        read.mounts = vec![mount("data", "/data")];
        assert_eq!(
            run(&t.alice, read).await.unwrap(),
            ("alice-secret\n".into(), 0)
        );
        assert_eq!(
            volumes_of(&t.root, &t.owners[0]).await,
            vec![engine_name.clone()]
        );

        t.alice.query(&remove_volume("data")).await.unwrap();
        for reference in ["data", engine_name.as_str()] {
            t.bob.query(&remove_volume(reference)).await.unwrap();
        }
        t.finish();
    });
}

/// Attack 2: an operator's volume with bind driver options (a host
/// directory) is out of users' reach: a user may not make one, and a
/// user's mount of its name is a fresh volume of the user's own. The host
/// directory is unchanged: nothing read, nothing planted.
#[test]
fn an_operators_bind_volume_cannot_be_mounted_by_a_user() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let host = HostDir::new();
        let dir = host.0.clone();
        std::fs::write(dir.join("host-secret"), b"operator\n").unwrap();
        let opts = BTreeMap::from([
            ("type".to_owned(), "none".to_owned()),
            ("o".to_owned(), "bind".to_owned()),
            ("device".to_owned(), dir.to_string_lossy().into_owned()),
        ]);
        let name = unique("opvol");
        t.root
            .query(&VolumeCreate {
                name: Some(name.clone()),
                driver_opts: opts.clone(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        // The volume is the host directory, to the operator.
        let mut peek = t.spec(&["cat", "/v/host-secret"]);
        peek.mounts = vec![mount(&name, "/v")];
        assert_eq!(run(&t.root, peek).await.unwrap(), ("operator\n".into(), 0));

        // A user may not make such a volume.
        refused(
            "a user's bind volume",
            ErrorCode::FORBIDDEN,
            t.alice
                .query(&VolumeCreate {
                    name: Some("mine".into()),
                    driver_opts: opts,
                    labels: t.labels(),
                    ..Default::default()
                })
                .await,
        );
        // A user's mount of the operator's volume reaches a fresh volume of
        // its own: the host's file is not there, and what it plants (a
        // setuid file) lands in its own volume.
        let mut plant = t.spec(&[
            "sh",
            "-c",
            "ls -A /v; cp /bin/sh /v/planted && chmod 4755 /v/planted",
        ]);
        plant.mounts = vec![mount(&name, "/v")];
        assert_eq!(run(&t.alice, plant).await.unwrap(), (String::new(), 0));

        let mut entries: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(entries, vec!["host-secret".to_owned()]);
        assert_eq!(
            std::fs::read(dir.join("host-secret")).unwrap(),
            b"operator\n"
        );
        // Her list shows her own volume only, under her name.
        assert_eq!(own_volumes(&t.alice).await, vec![name.clone()]);

        t.alice.query(&remove_volume(&name)).await.unwrap();
        missing(
            "alice removes the operator's volume",
            "volume",
            &name,
            t.alice.query(&remove_volume(&name)).await,
        );
        t.root.query(&remove_volume(&name)).await.unwrap();
        drop(host);
        assert!(!dir.exists());
        t.finish();
    });
}

/// Attack 3 (joining): an operator's network, internal included, cannot
/// be joined by a user's container, by name or id, at create or by
/// connect; nor can a user connect its container to another user's
/// network, or another user's container to its own. The operator's
/// network keeps only the operator's container.
#[test]
fn an_operators_or_another_users_network_cannot_be_joined() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let opnet = unique("opnet");
        let op = t
            .root
            .query(&NetworkCreate {
                name: opnet.clone(),
                internal: true,
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut on_opnet = t.spec(&[]);
        on_opnet.network = Some(opnet.clone());
        let operators = t.sleeper(&t.root, on_opnet).await;

        for reference in [opnet.as_str(), op.id.as_str(), &op.id[..4]] {
            let mut join = t.spec(&["true"]);
            join.network = Some(reference.into());
            missing(
                "alice creates on the operator's network",
                "network",
                reference,
                t.alice.query(&ContainerCreate(join.clone())).await,
            );
            missing(
                "alice runs on the operator's network",
                "network",
                reference,
                run(&t.alice, join).await,
            );
        }
        let mut quiet = t.spec(&[]);
        quiet.network = Some("none".into());
        let hers = t.sleeper(&t.alice, quiet.clone()).await;
        for reference in [opnet.as_str(), op.id.as_str()] {
            missing(
                "alice connects to the operator's network",
                "network",
                reference,
                t.alice
                    .query(&NetworkConnect(member(reference, &hers)))
                    .await,
            );
            missing(
                "alice disconnects the operator's container",
                "network",
                reference,
                t.alice
                    .query(&NetworkDisconnect(member(reference, &operators)))
                    .await,
            );
            missing(
                "alice removes the operator's network",
                "network",
                reference,
                t.alice
                    .query(&NetworkRemove {
                        network: reference.into(),
                    })
                    .await,
            );
        }
        let listed = t.alice.query(&NetworkList::default()).await.unwrap();
        assert!(listed.is_empty(), "alice sees {listed:?}");

        // bob's network and container are as far from alice.
        let bobs_net = t
            .bob
            .query(&NetworkCreate {
                name: "bnet".into(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        let his = t.sleeper(&t.bob, quiet).await;
        for reference in ["bnet", bobs_net.id.as_str()] {
            missing(
                "alice connects to bob's network",
                "network",
                reference,
                t.alice
                    .query(&NetworkConnect(member(reference, &hers)))
                    .await,
            );
        }
        t.alice
            .query(&NetworkCreate {
                name: "anet".into(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        missing(
            "alice connects bob's container to her network",
            "container",
            &his,
            t.alice.query(&NetworkConnect(member("anet", &his))).await,
        );

        // The operator's network has the operator's container, only.
        let inspected =
            on_engine(engine().inspect_network(&op.id, None::<q::InspectNetworkOptions>)).unwrap();
        let members: Vec<String> = inspected
            .containers
            .unwrap_or_default()
            .into_keys()
            .collect();
        assert_eq!(members, vec![operators.clone()]);
        let bobs =
            on_engine(engine().inspect_network(&bobs_net.id, None::<q::InspectNetworkOptions>))
                .unwrap();
        assert!(bobs.containers.unwrap_or_default().is_empty());

        t.remove(&t.root, &operators).await;
        t.remove(&t.alice, &hers).await;
        t.remove(&t.bob, &his).await;
        t.root
            .query(&NetworkRemove { network: opnet })
            .await
            .unwrap();
        t.alice
            .query(&NetworkRemove {
                network: "anet".into(),
            })
            .await
            .unwrap();
        t.bob
            .query(&NetworkRemove {
                network: "bnet".into(),
            })
            .await
            .unwrap();
        t.finish();
    });
}

/// Attack 6: to bob, alice's container, volume and network are exactly
/// what a missing one is, whatever he names them by (one-character id
/// prefixes, full ids, her names, the engine's names): the same code,
/// and a message naming only his reference.
#[test]
fn another_users_objects_are_indistinguishable_from_missing_ones() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let mut web = t.spec(&[]);
        web.name = Some("web".into());
        let hers = t.sleeper(&t.alice, web).await;
        let net = t
            .alice
            .query(&NetworkCreate {
                name: "net".into(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        t.alice
            .query(&VolumeCreate {
                name: Some("data".into()),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        let engine_name = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&hers)))
            .await
            .unwrap()
            .name
            .unwrap();
        let engine_name = engine_name.trim_start_matches('/');

        let hex: Vec<String> = "0123456789abcdef".chars().map(String::from).collect();
        let mut references: Vec<&str> = hex.iter().map(String::as_str).collect();
        references.extend([
            hers.as_str(),
            &hers[..12],
            "web",
            engine_name,
            "no-such-container",
        ]);
        for reference in &references {
            missing(
                "bob inspects",
                "container",
                reference,
                t.bob
                    .query(&ContainerInspect(ContainerRef::new(*reference)))
                    .await,
            );
            missing(
                "bob execs",
                "container",
                reference,
                exec(&t.bob, reference, &["true"]).await,
            );
        }
        for reference in ["data", "no-such-volume"] {
            missing(
                "bob removes a volume",
                "volume",
                reference,
                t.bob.query(&remove_volume(reference)).await,
            );
        }
        let mut networks: Vec<&str> = hex.iter().map(String::as_str).collect();
        networks.extend([net.id.as_str(), "net", "no-such-network", "bridge"]);
        for reference in networks {
            missing(
                "bob removes a network",
                "network",
                reference,
                t.bob
                    .query(&NetworkRemove {
                        network: reference.into(),
                    })
                    .await,
            );
        }
        // His lists are empty.
        let all = ContainerList {
            all: true,
            filters: HashMap::new(),
        };
        assert!(t.bob.query(&all).await.unwrap().is_empty());
        assert!(own_volumes(&t.bob).await.is_empty());
        assert!(
            t.bob
                .query(&NetworkList::default())
                .await
                .unwrap()
                .is_empty()
        );
        // A list filter naming her container does not tell it exists.
        let since = ContainerList {
            all: true,
            filters: HashMap::from([("since".to_owned(), vec![hers.clone()])]),
        };
        missing(
            "bob lists since hers",
            "container",
            &hers,
            t.bob.query(&since).await,
        );

        // alice's container still answers her.
        assert_eq!(
            exec(&t.alice, "web", &["echo", "mine"]).await.unwrap(),
            ("mine\n".into(), 0)
        );

        t.remove(&t.alice, "web").await;
        t.alice
            .query(&NetworkRemove {
                network: "net".into(),
            })
            .await
            .unwrap();
        t.alice.query(&remove_volume("data")).await.unwrap();
        t.finish();
    });
}

/// Attack 7: a user cannot name a container like another's id, and the
/// names it may give never shadow an id: the victim's `exec` by its short
/// id (or a shorter prefix another user took as a name) reaches the
/// victim's container, and so does an admin's `cp` into it.
#[test]
fn a_name_cannot_squat_another_containers_id() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let hers = t.sleeper(&t.alice, t.spec(&[])).await;
        let short = &hers[..12];
        for name in [short, hers.as_str()] {
            let mut squat = t.spec(&["true"]);
            squat.name = Some(name.into());
            refused(
                "bob names a container like her id",
                ErrorCode::INVALID_INPUT,
                t.bob.query(&ContainerCreate(squat)).await,
            );
        }
        // A shorter prefix is a name bob may give: his own.
        let mut near = t.spec(&[]);
        near.name = Some(short[..11].into());
        let his = t.sleeper(&t.bob, near).await;

        for reference in [short, &short[..11]] {
            let reached = exec(&t.alice, reference, &["hostname"]).await.unwrap();
            assert_eq!(
                reached,
                (format!("{short}\n"), 0),
                "alice's exec {reference}"
            );
        }
        let reached = exec(&t.bob, &short[..11], &["hostname"]).await.unwrap();
        assert_eq!(
            reached,
            (format!("{}\n", &his[..12]), 0),
            "bob's own by name"
        );

        // The admin's cp into her short id lands in her container.
        let mut put = t
            .root
            .open(&ArchivePut {
                id: short.into(),
                path: "/tmp".into(),
            })
            .await
            .unwrap();
        put.stdin
            .write_all(&tar_of("from-root", b"landed\n"))
            .await
            .unwrap();
        put.stdin.close().await.unwrap();
        assert_eq!(put.exit.await.unwrap(), 0);
        let landed = exec(&t.alice, short, &["cat", "/tmp/from-root"])
            .await
            .unwrap();
        assert_eq!(landed, ("landed\n".into(), 0));
        let (_, code) = exec(&t.bob, &his, &["test", "-e", "/tmp/from-root"])
            .await
            .unwrap();
        assert_eq!(code, 1, "the admin's file landed in bob's container");
        let info = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&short[..11])))
            .await
            .unwrap();
        assert_eq!(info.id.as_deref(), Some(hers.as_str()));

        t.remove(&t.alice, &hers).await;
        t.remove(&t.bob, &his).await;
        t.finish();
    });
}

/// Attack 8: an image's `dockwire.*` labels (owner, auto-remove, server,
/// even a seal) and a container made outside dockwire grant nothing: the
/// named owner does not see it nor reach it, the crash sweep of the
/// server the labels name does not remove it, and a container made from
/// that image through dockwire belongs to whoever made it.
#[test]
fn an_image_label_or_a_container_made_outside_dockwire_grants_no_ownership() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let alice = &t.owners[0];
        let tag = format!("dockwire-test-forged:{}", unique("img").replace('-', ""));
        let dockerfile = format!(
            "FROM {IMAGE}\nLABEL dockwire.managed=true dockwire.owner={alice} \
             dockwire.auto-remove=true dockwire.server={} dockwire.seal={} \
             dockwire-test={}\n",
            t.server_id,
            "ab".repeat(32),
            t.label
        );
        let mut build = std::process::Command::new("docker")
            .args(["build", "-q", "-t", &tag, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the docker command builds the forged image");
        build
            .stdin
            .take()
            .unwrap()
            .write_all(dockerfile.as_bytes())
            .unwrap();
        let built = build.wait_with_output().unwrap();
        assert!(
            built.status.success(),
            "docker build {tag}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let image = ImageCleanup(tag.clone());

        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1;
        let name = unique("outside");
        let body = bollard::models::ContainerCreateBody {
            image: Some(tag.clone()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            ..Default::default()
        };
        let options = q::CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let outside = on_engine(engine().create_container(Some(options), body))
            .unwrap()
            .id;
        on_engine(engine().start_container(&outside, None::<q::StartContainerOptions>)).unwrap();

        let all = ContainerList {
            all: true,
            filters: HashMap::new(),
        };
        let listed = t.alice.query(&all).await.unwrap();
        assert!(
            listed.iter().all(|c| c.id.as_deref() != Some(&outside)),
            "alice lists it"
        );
        for reference in [outside.as_str(), name.as_str()] {
            missing(
                "alice inspects",
                "container",
                reference,
                t.alice
                    .query(&ContainerInspect(ContainerRef::new(reference)))
                    .await,
            );
            missing(
                "alice execs",
                "container",
                reference,
                exec(&t.alice, reference, &["true"]).await,
            );
        }
        // Nor do its events reach her.
        let until = since + 3;
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            <= until
        {
            dockwire_tests::sleep_ms(200).await;
        }
        let mut events = t
            .alice
            .subscribe(&Events {
                since: Some(since.to_string()),
                until: Some(until.to_string()),
                filters: HashMap::new(),
            })
            .await
            .unwrap();
        while let Some(event) = events.next().await {
            let event = event.unwrap();
            let id = event.actor.and_then(|a| a.id).unwrap_or_default();
            assert_ne!(id, outside, "alice saw an event of the forged container");
        }

        // The sweep of the server its labels name leaves it.
        let restarted = DockerService::new(
            Docker::connect_with_local_defaults().unwrap(),
            Config::from_env().with_server_id(&t.server_id),
        );
        let swept = restarted.sweep().await.unwrap();
        assert!(
            !swept.contains(&outside),
            "the sweep removed the forged container"
        );
        let running = on_engine(engine().inspect_container(&outside, None)).unwrap();
        assert_eq!(running.state.unwrap().running, Some(true));

        // Made through dockwire by bob, the image's labels give way to his.
        let mut spec = t.spec(&[]);
        spec.image = tag.clone();
        let bobs = t.sleeper(&t.bob, spec).await;
        let labels = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&bobs)))
            .await
            .unwrap()
            .config
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(labels[LABEL_OWNER], t.owners[1]);
        assert_eq!(labels[LABEL_AUTO_REMOVE], "false");
        missing(
            "alice inspects bob's",
            "container",
            &bobs,
            t.alice
                .query(&ContainerInspect(ContainerRef::new(&bobs)))
                .await,
        );
        t.bob
            .query(&ContainerInspect(ContainerRef::new(&bobs)))
            .await
            .unwrap();

        t.remove(&t.bob, &bobs).await;
        t.remove(&t.root, &outside).await;
        t.finish();
        drop(image);
    });
}

/// A host directory of a test's own, removed whatever happened.
struct HostDir(std::path::PathBuf);

impl HostDir {
    fn new() -> HostDir {
        let dir = std::env::temp_dir().join(unique("bind"));
        std::fs::create_dir_all(&dir).unwrap();
        HostDir(dir)
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes a test's image, whatever happened.
struct ImageCleanup(String);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let options = q::RemoveImageOptions {
            force: true,
            ..Default::default()
        };
        let _ = on_engine(engine().remove_image(&self.0, Some(options), None));
    }
}

// ------------------------------------------------------------------ rules

/// Names are per peer: alice and bob may both have a `web`, each reaches
/// its own by it, and each sees its own name (in inspect, list, events
/// and errors), never the engine's. A container made without a name gets
/// a readable one.
#[test]
fn names_are_per_peer_and_shown_as_each_users_own() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1;
        let mut web = t.spec(&[]);
        web.name = Some("web".into());
        let hers = t.sleeper(&t.alice, web.clone()).await;
        let his = t.sleeper(&t.bob, web.clone()).await;
        assert_ne!(hers, his);
        for (who, id) in [(&t.alice, &hers), (&t.bob, &his)] {
            let info = who
                .query(&ContainerInspect(ContainerRef::new("web")))
                .await
                .unwrap();
            assert_eq!(info.id.as_ref(), Some(id));
            assert_eq!(info.name.as_deref(), Some("/web"));
            let listed = who
                .query(&ContainerList {
                    all: true,
                    filters: HashMap::new(),
                })
                .await
                .unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].names.as_deref(), Some(&["/web".to_owned()][..]));
        }
        // A name filter anchored on her name finds hers.
        for pattern in ["^web$", "^/web$", "web"] {
            let listed = t
                .alice
                .query(&ContainerList {
                    all: true,
                    filters: HashMap::from([("name".to_owned(), vec![pattern.to_owned()])]),
                })
                .await
                .unwrap();
            assert_eq!(listed.len(), 1, "{pattern}");
            assert_eq!(listed[0].id.as_ref(), Some(&hers), "{pattern}");
        }
        let engine_name = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&hers)))
            .await
            .unwrap()
            .name
            .unwrap();
        assert!(
            engine_name.starts_with("/dw-") && engine_name.ends_with("-web"),
            "{engine_name}"
        );
        let mut stats = t
            .alice
            .subscribe(&ContainerStats {
                id: "web".into(),
                stream: false,
            })
            .await
            .unwrap();
        let sample = stats.next().await.unwrap().unwrap();
        assert_eq!(sample.name.as_deref(), Some("/web"));
        assert_eq!(sample.id.as_ref(), Some(&hers));

        let message = refused(
            "alice's second web",
            CONFLICT,
            t.alice.query(&ContainerCreate(web)).await,
        );
        assert!(!message.contains("dw-"), "{message}");
        assert!(message.contains("\"/web\""), "{message}");

        let unnamed = t.sleeper(&t.alice, t.spec(&[])).await;
        let name = t
            .alice
            .query(&ContainerInspect(ContainerRef::new(&unnamed)))
            .await
            .unwrap()
            .name
            .unwrap();
        let name = name.trim_start_matches('/');
        assert_eq!(name.split('-').count(), 3, "{name}");
        assert!(!name.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_eq!(
            exec(&t.alice, name, &["echo", "by name"]).await.unwrap(),
            ("by name\n".into(), 0)
        );

        // Her events name her container as she does.
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let mut events = t
            .alice
            .subscribe(&Events {
                since: Some(since.to_string()),
                until: Some(until.to_string()),
                filters: HashMap::new(),
            })
            .await
            .unwrap();
        let mut started = Vec::new();
        while let Some(event) = events.next().await {
            let actor = event.unwrap().actor.unwrap();
            assert_ne!(actor.id.as_ref(), Some(&his), "alice saw bob's event");
            let attributes = actor.attributes.unwrap_or_default();
            started.push(attributes.get("name").cloned().unwrap_or_default());
        }
        assert!(started.iter().any(|n| n == "web"), "{started:?}");
        assert!(started.iter().all(|n| !n.starts_with("dw-")), "{started:?}");

        t.remove(&t.alice, "web").await;
        t.remove(&t.alice, &unnamed).await;
        t.remove(&t.bob, "web").await;
        t.finish();
    });
}

/// Users make volumes of their own (by name, without one, or by mounting
/// a new name), list and remove only those, and may not use drivers or
/// driver options.
#[test]
fn users_make_list_and_remove_volumes_of_their_own() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let made = t
            .alice
            .query(&VolumeCreate {
                name: Some("made".into()),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(made.name, "made");
        assert_eq!(made.mountpoint, "", "a host path shown to a user");
        let unnamed = t
            .alice
            .query(&VolumeCreate {
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(unnamed.name.split('-').count(), 3, "{}", unnamed.name);

        let mut write = t.spec(&["sh", "-c", "echo kept > /v/file"]);
        write.mounts = vec![mount("fresh", "/v")];
        run(&t.alice, write).await.unwrap();
        let mut read = t.spec(&["cat", "/v/file"]);
        read.mounts = vec![mount("fresh", "/v")];
        assert_eq!(run(&t.alice, read).await.unwrap(), ("kept\n".into(), 0));

        // A container's mounts show her volume's name, not its host path.
        let mut mounted = t.spec(&["true"]);
        mounted.mounts = vec![mount("fresh", "/v")];
        let created = t.alice.query(&ContainerCreate(mounted)).await.unwrap();
        let info = t
            .alice
            .query(&ContainerInspect(ContainerRef::new(&created.id)))
            .await
            .unwrap();
        let mounts = info.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].name.as_deref(), Some("fresh"));
        assert_eq!(mounts[0].source, None);
        t.remove(&t.alice, &created.id).await;

        let mut expected = vec!["fresh".to_owned(), "made".to_owned(), unnamed.name.clone()];
        expected.sort();
        assert_eq!(own_volumes(&t.alice).await, expected);
        assert!(own_volumes(&t.bob).await.is_empty());

        for (what, input) in [
            (
                "a driver",
                VolumeCreate {
                    name: Some("x".into()),
                    driver: Some("nfs".into()),
                    ..Default::default()
                },
            ),
            (
                "driver options",
                VolumeCreate {
                    name: Some("x".into()),
                    driver_opts: BTreeMap::from([("size".to_owned(), "1m".to_owned())]),
                    ..Default::default()
                },
            ),
        ] {
            refused(what, ErrorCode::FORBIDDEN, t.alice.query(&input).await);
        }
        assert_eq!(
            own_volumes(&t.alice).await,
            expected,
            "a refused create made one"
        );

        for name in &expected {
            t.alice.query(&remove_volume(name)).await.unwrap();
            missing(
                "removed twice",
                "volume",
                name,
                t.alice.query(&remove_volume(name)).await,
            );
        }
        t.finish();
    });
}

/// Users make networks of their own (internal ones too), run and connect
/// their own containers on them, and remove them; names are per peer, and
/// driver options are an admin's.
#[test]
fn users_make_use_and_remove_networks_of_their_own() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let create = |internal| NetworkCreate {
            name: "net".into(),
            internal,
            labels: t.labels(),
            ..Default::default()
        };
        let hers = t.alice.query(&create(true)).await.unwrap();
        refused("a second net", CONFLICT, t.alice.query(&create(true)).await);
        let his = t.bob.query(&create(false)).await.unwrap();
        assert_ne!(hers.id, his.id);
        // Every user network is a bridge fenced off the host, as the
        // default one: its interface `dw` + 12 hex, with dockwire's rule.
        let bridge_of = |id: &str| {
            let network =
                on_engine(engine().inspect_network(id, None::<q::InspectNetworkOptions>)).unwrap();
            network
                .options
                .unwrap_or_default()
                .get(BRIDGE_NAME_OPTION)
                .cloned()
                .unwrap_or_default()
        };
        let (her_bridge, his_bridge) = (bridge_of(&hers.id), bridge_of(&his.id));
        for bridge in [&her_bridge, &his_bridge] {
            assert!(bridge.starts_with("dw") && bridge.len() == 14, "{bridge:?}");
            assert!(!rules_for(bridge).is_empty(), "no rule for {bridge}");
        }
        let listed = t.alice.query(&NetworkList::default()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name.as_deref(), Some("net"));
        assert_eq!(listed[0].id.as_ref(), Some(&hers.id));
        assert_eq!(listed[0].internal, Some(true));

        let mut on_net = t.spec(&[]);
        on_net.network = Some("net".into());
        let first = t.sleeper(&t.alice, on_net).await;
        let alice = &t.alice;
        let networks = |id: String| async move {
            let info = alice
                .query(&ContainerInspect(ContainerRef::new(&id)))
                .await
                .unwrap();
            let mut names: Vec<String> = info
                .network_settings
                .unwrap()
                .networks
                .unwrap_or_default()
                .into_keys()
                .collect();
            names.sort();
            names
        };
        assert_eq!(networks(first.clone()).await, vec!["net".to_owned()]);
        // One on the default network joins hers by name, and by id prefix.
        let mut bridged = t.spec(&[]);
        bridged.name = Some("second".into());
        let second = t.sleeper(&t.alice, bridged).await;
        t.alice
            .query(&NetworkConnect(member("net", "second")))
            .await
            .unwrap();
        assert!(networks(second.clone()).await.contains(&"net".to_owned()));
        t.alice
            .query(&NetworkDisconnect(member(&hers.id[..8], "second")))
            .await
            .unwrap();
        assert!(!networks(second.clone()).await.contains(&"net".to_owned()));

        refused(
            "driver options",
            ErrorCode::FORBIDDEN,
            t.alice
                .query(&NetworkCreate {
                    name: "opts".into(),
                    options: BTreeMap::from([(
                        "com.docker.network.driver.mtu".to_owned(),
                        "1400".to_owned(),
                    )]),
                    ..Default::default()
                })
                .await,
        );

        for id in [&first, &second] {
            t.remove(&t.alice, id).await;
        }
        t.alice
            .query(&NetworkRemove {
                network: "net".into(),
            })
            .await
            .unwrap();
        missing(
            "removed twice",
            "network",
            "net",
            t.alice
                .query(&NetworkRemove {
                    network: "net".into(),
                })
                .await,
        );
        t.bob
            .query(&NetworkRemove {
                network: "net".into(),
            })
            .await
            .unwrap();
        // Their rules went with them.
        assert_eq!(rules_for(&her_bridge), Vec::<String>::new());
        assert_eq!(rules_for(&his_bridge), Vec::<String>::new());
        t.finish();
    });
}

/// A tar holding one file, `name`, of `data`.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, data).unwrap();
    builder.into_inner().unwrap()
}
