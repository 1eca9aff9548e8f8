//! Tenancy, part keys (issue 13): roles bound to the key a connection
//! authenticated with, trust changes closing connections, users' pulls,
//! users' containers hardened, `top`'s arguments, and the audit line.
//!
//! Against the real engine, over QUIC with mutual TLS as `dockwire serve`
//! runs it (the same layers, a trust table in memory standing in for
//! authorized-peers): alice and bob are users, root an admin. Containers
//! are labelled `dockwire-test=tenancy-keys` and removed at the end.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bollard::Docker;
use dockwire_core::{ErrorCode, Limits};
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, Role, Roles};
use dockwire_service::quic::{
    Fingerprint, Identity, QuicConnect, QuicOptions, Standing, TRUST_CHANGED, TrustCheck,
    TrustWatch, mtls_server_config, peer_by_fingerprint, pinned_client_config, serve_quic_watched,
};
use dockwire_service::{CallLog, Client, ClientError, PeerLimit, Service};
use dockwire_tests::docker::{Cleanup, IMAGE, REGISTRY_IMAGE, engine, on_engine};
use dockwire_tests::user_networks::remove_networks_of;
use dockwire_tests::{Rt, sleep_ms};
use futures::{FutureExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The label on every container these tests make.
const LABEL: (&str, &str) = ("dockwire-test", "tenancy-keys");

// ------------------------------------------------------------------ the rig

/// authorized-peers, in memory: each fingerprint's name and role.
#[derive(Clone, Default)]
struct Trust(Arc<Mutex<HashMap<Fingerprint, (String, Role)>>>);

impl Trust {
    /// `dockwire trust add`.
    fn add(&self, identity: &Identity, name: &str, role: Role) {
        let mut peers = self.0.lock().unwrap();
        peers.insert(identity.fingerprint(), (name.to_owned(), role));
    }

    /// `dockwire trust remove NAME`.
    fn remove(&self, name: &str) {
        self.0.lock().unwrap().retain(|_, (n, _)| n != name);
    }

    fn get(&self, fingerprint: &Fingerprint) -> Option<(String, Role)> {
        self.0.lock().unwrap().get(fingerprint).cloned()
    }

    /// Roles as `dockwire serve` decides them: by the call's key.
    fn roles(&self) -> Roles {
        let trust = self.clone();
        Roles::new(move |key| {
            let fingerprint: Fingerprint = key.strip_prefix("sha256:")?.parse().ok()?;
            trust.get(&fingerprint).map(|(_, role)| role)
        })
    }
}

/// A server as `dockwire serve` runs it, over QUIC with mutual TLS.
struct Server {
    addr: SocketAddr,
    identity: Identity,
    trust: Trust,
    watch: Arc<TrustWatch>,
    /// The keys that connected: what they own is removed with the server.
    keys: Mutex<Vec<String>>,
    _endpoint: quinn::Endpoint,
}

impl Drop for Server {
    /// Removes the networks (with their host rules) and volumes the
    /// peers got, after the test's containers (declared after the server,
    /// so gone first).
    fn drop(&mut self) {
        let keys = std::mem::take(self.keys.get_mut().unwrap_or_else(|e| e.into_inner()));
        for key in keys {
            remove_networks_of(&key);
            let filters =
                HashMap::from([("label".to_owned(), vec![format!("{LABEL_OWNER}={key}")])]);
            let volumes = on_engine(engine().list_volumes(Some(
                bollard::query_parameters::ListVolumesOptions {
                    filters: Some(filters),
                },
            )));
            for volume in volumes.ok().and_then(|v| v.volumes).unwrap_or_default() {
                let _ = on_engine(engine().remove_volume(
                    &volume.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                ));
            }
        }
    }
}

impl Server {
    /// Serves the real engine with `config` (roles from `trust`).
    fn start(trust: &Trust, config: Config) -> Server {
        let _ = engine();
        let docker = Docker::connect_with_local_defaults().unwrap();
        let config = config.with_roles(trust.roles());
        let service: Arc<dyn Service> = Arc::new(CallLog::new(PeerLimit::new(
            DockerService::new(docker, config),
            1024,
        )));
        let identity = Identity::generate("dockwire").unwrap();
        let check: TrustCheck = {
            let trust = trust.clone();
            Arc::new(move |f: &Fingerprint| trust.get(f).is_some())
        };
        let names = {
            let trust = trust.clone();
            Arc::new(move |f: &Fingerprint| trust.get(f).map(|(n, _)| Arc::from(n.as_str())))
        };
        let standing: Standing = {
            let trust = trust.clone();
            Arc::new(move |f: &Fingerprint| {
                trust
                    .get(f)
                    .map(|(_, role)| Arc::from(format!("{role:?}").as_str()))
            })
        };
        let watch = TrustWatch::new(standing);
        let config = mtls_server_config(&identity, check, &QuicOptions::default()).unwrap();
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let endpoint = Rt::Tokio
            .runtime()
            .quic_endpoint(local, Some(config))
            .unwrap();
        let addr = endpoint.local_addr().unwrap();
        let spawn = Rt::Tokio.spawner();
        let serve = serve_quic_watched(
            endpoint.clone(),
            service,
            spawn.clone(),
            Limits::default(),
            peer_by_fingerprint(names),
            watch.clone(),
        );
        spawn.spawn(serve.boxed());
        Server {
            addr,
            identity,
            trust: trust.clone(),
            watch,
            keys: Mutex::new(Vec::new()),
            _endpoint: endpoint,
        }
    }

    /// A connection of `identity`, and a Docker client over it.
    async fn connect(&self, identity: &Identity) -> Peer {
        self.keys
            .lock()
            .unwrap()
            .push(format!("sha256:{}", identity.fingerprint()));
        let server = self.identity.fingerprint();
        let pin = Arc::new(move |fp: &Fingerprint| *fp == server);
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let mut endpoint = Rt::Tokio.runtime().quic_endpoint(local, None).unwrap();
        let config = pinned_client_config(identity, pin, &QuicOptions::default()).unwrap();
        endpoint.set_default_client_config(config);
        let connect = QuicConnect::connect(&endpoint, self.addr, "dockwire")
            .await
            .unwrap();
        let connection = connect.connection().clone();
        let client = Client::new(Arc::new(connect), Rt::Tokio.spawner(), Limits::default());
        Peer {
            docker: DockerClient::new(client),
            connection,
            _endpoint: endpoint,
        }
    }
}

/// One peer's connection to the server.
struct Peer {
    docker: DockerClient,
    connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl Peer {
    /// Whether the server closed the connection for a change of trust.
    fn closed_for_trust(&self) -> bool {
        matches!(
            self.connection.close_reason(),
            Some(quinn::ConnectionError::ApplicationClosed(close)) if close.error_code == TRUST_CHANGED
        )
    }

    /// Waits (a few seconds at most) for the connection's close.
    async fn until_closed(&self) {
        for _ in 0..100 {
            if self.connection.close_reason().is_some() {
                return;
            }
            sleep_ms(20).await;
        }
    }

    /// A sleeping container of this peer's, started; removed at the end.
    async fn sleeper(&self, cleanup: &Cleanup) -> String {
        self.container(cleanup, &["sleep", "3600"]).await
    }

    async fn container(&self, cleanup: &Cleanup, cmd: &[&str]) -> String {
        let created = self
            .docker
            .query(&ContainerCreate(spec(cmd.iter().copied())))
            .await
            .unwrap();
        cleanup.add(&created.id);
        self.docker
            .query(&ContainerStart(ContainerRef::new(&created.id)))
            .await
            .unwrap();
        created.id
    }

    /// Runs `cmd` in a fresh container of this peer's (`container/run`):
    /// its stdout and stderr, and its exit code.
    async fn run(&self, cmd: &[&str]) -> (String, i64) {
        let mut s = spec(cmd.iter().copied());
        s.auto_remove = true;
        let items: Vec<ExecItem> = self
            .docker
            .subscribe(&RunInput(s))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut out = String::new();
        let mut code = None;
        for item in items {
            match item {
                ExecItem::Output { data, .. } => {
                    out.push_str(&String::from_utf8_lossy(&data.to_bytes().unwrap()))
                }
                ExecItem::Exit { exit_code, .. } => code = Some(exit_code),
            }
        }
        (out, code.expect("an exit code"))
    }
}

fn spec<'a>(cmd: impl IntoIterator<Item = &'a str>) -> ContainerSpec {
    let mut spec = ContainerSpec::new(IMAGE, cmd);
    spec.labels = BTreeMap::from([(LABEL.0.to_owned(), LABEL.1.to_owned())]);
    spec
}

/// An operation only admins may call.
fn admin_only() -> ImageInspect {
    ImageInspect(ImageRef {
        image: IMAGE.into(),
    })
}

fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Remote(e)) => (e.code, e.message),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// alice and bob (users) and root (an admin), trusted on a new server.
struct Cast {
    alice: Identity,
    bob: Identity,
    root: Identity,
}

fn cast(trust: &Trust) -> Cast {
    let cast = Cast {
        alice: Identity::generate("dockwire").unwrap(),
        bob: Identity::generate("dockwire").unwrap(),
        root: Identity::generate("dockwire").unwrap(),
    };
    trust.add(&cast.alice, "alice", Role::User);
    trust.add(&cast.bob, "bob", Role::User);
    trust.add(&cast.root, "root", Role::Admin);
    cast
}

async fn ids(docker: &DockerClient) -> Vec<String> {
    let list = docker
        .query(&ContainerList {
            all: true,
            filters: HashMap::from([("label".into(), vec![format!("{}={}", LABEL.0, LABEL.1)])]),
        })
        .await
        .unwrap();
    list.into_iter().filter_map(|c| c.id).collect()
}

// ------------------------------------------------- attack 11: roles by key

/// Attack 11: alice's key removed and a new key trusted under her name as
/// an admin while her old connection is open. The old connection's next
/// call does not run as admin (nor as anything): it is refused FORBIDDEN
/// and the connection closed; the new key is the admin; alice's old
/// containers are still hers and untouched.
#[test]
fn a_removed_key_readded_by_name_as_admin_gets_nothing_on_its_old_connection() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(&trust, Config::from_env());
        let cleanup = Cleanup::default();
        let old = server.connect(&cast.alice).await;
        let hers = old.sleeper(&cleanup).await;
        let (refused, _) = code(old.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN, "a user inspects no image");

        // `trust remove alice`, then `trust add alice NEWKEY --admin`.
        let new_key = Identity::generate("dockwire").unwrap();
        server.trust.remove("alice");
        server.trust.add(&new_key, "alice", Role::Admin);

        let (refused, message) = code(old.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN, "{message}");
        // The server's periodic check closes the connection.
        assert_eq!(server.watch.recheck(), 1);
        old.until_closed().await;
        assert!(
            old.closed_for_trust(),
            "{:?}",
            old.connection.close_reason()
        );

        // The new key is the admin, on its own connection.
        let admin = server.connect(&new_key).await;
        admin.docker.query(&admin_only()).await.unwrap();
        // What the old key made is untouched, and still belongs to the
        // old key only: bob does not see it.
        let info = on_engine(engine().inspect_container(&hers, None)).unwrap();
        assert_eq!(info.state.unwrap().running, Some(true));
        let bob = server.connect(&cast.bob).await;
        assert!(!ids(&bob.docker).await.contains(&hers));
    });
}

/// A key whose role changes (alice promoted to admin, same key): her open
/// connection's next call does not run with the new role, it is refused,
/// and the periodic check closes the connection (an idle one too); bob's
/// is untouched.
#[test]
fn a_connection_whose_keys_role_changes_is_refused_and_closed() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(&trust, Config::from_env());
        let alice = server.connect(&cast.alice).await;
        let bob = server.connect(&cast.bob).await;
        alice.docker.query(&Ping {}).await.unwrap();
        bob.docker.query(&Ping {}).await.unwrap();
        assert_eq!(server.watch.recheck(), 0, "nothing changed yet");

        // Another of hers, quiet after one call (which makes sure the
        // server has taken the connection in).
        let idle = server.connect(&cast.alice).await;
        idle.docker.query(&Ping {}).await.unwrap();
        server.trust.add(&cast.alice, "alice", Role::Admin);
        let (refused, message) = code(alice.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN, "{message}");
        assert_eq!(server.watch.recheck(), 2, "alice's two connections");
        alice.until_closed().await;
        assert!(alice.closed_for_trust());
        idle.until_closed().await;
        assert!(idle.closed_for_trust());
        // A new connection of hers has the new role.
        let promoted = server.connect(&cast.alice).await;
        promoted.docker.query(&admin_only()).await.unwrap();
        // bob's connection, whose trust did not change, still works.
        bob.docker.query(&Ping {}).await.unwrap();
        assert!(bob.connection.close_reason().is_none());
    });
}

/// The role follows the key, never the name: a user key whose name is the
/// admin's name is a user; and what a user owns is its key's, so a new key
/// under an old name owns none of it.
#[test]
fn the_role_and_ownership_follow_the_key_not_the_name() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(&trust, Config::from_env());
        let cleanup = Cleanup::default();
        let mallory = Identity::generate("dockwire").unwrap();
        trust.add(&mallory, "root", Role::User);
        let fake_root = server.connect(&mallory).await;
        let (refused, _) = code(fake_root.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN);

        let alice = server.connect(&cast.alice).await;
        let hers = alice.sleeper(&cleanup).await;
        let info = alice
            .docker
            .query(&ContainerInspect(ContainerRef::new(&hers)))
            .await
            .unwrap();
        let owner = info.config.unwrap().labels.unwrap()[LABEL_OWNER].clone();
        assert_eq!(owner, format!("sha256:{}", cast.alice.fingerprint()));

        // alice's new key, under the same name, after the old one is gone.
        let renewed = Identity::generate("dockwire").unwrap();
        trust.remove("alice");
        trust.add(&renewed, "alice", Role::User);
        let alice2 = server.connect(&renewed).await;
        assert!(!ids(&alice2.docker).await.contains(&hers));
        let (refused, _) = code(
            alice2
                .docker
                .query(&ContainerInspect(ContainerRef::new(&hers)))
                .await,
        );
        assert!(
            [ErrorCode::FORBIDDEN, CONTAINER_NOT_FOUND].contains(&refused),
            "{refused:?}"
        );
        // The admin still sees it.
        let root = server.connect(&cast.root).await;
        assert!(ids(&root.docker).await.contains(&hers));
    });
}

// ---------------------------------------------------------- attack 9: pulls

/// A fake registry on the host's loopback: it counts the connections it
/// gets and answers every manifest with an error carrying a secret.
struct FakeRegistry {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

const SECRET: &str = "SECRET-of-the-hosts-loopback-service";

impl FakeRegistry {
    async fn start() -> FakeRegistry {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let (status, body) = if request.starts_with("GET /v2/ ") {
                        ("200 OK", "{}".to_owned())
                    } else if request.starts_with("GET ") || request.starts_with("HEAD ") {
                        let error = format!(
                            r#"{{"errors":[{{"code":"MANIFEST_UNKNOWN","message":"{SECRET}","detail":"{SECRET}"}}]}}"#
                        );
                        ("404 Not Found", error)
                    } else {
                        ("400 Bad Request", String::new())
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                         Docker-Distribution-API-Version: registry/2.0\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    if !request.starts_with("HEAD ") {
                        let _ = stream.write_all(body.as_bytes()).await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        FakeRegistry { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn pull(docker: &DockerClient, image: &str) -> Result<Vec<PullProgress>, ClientError> {
    docker
        .subscribe(&ImagePull {
            image: image.into(),
        })
        .await?
        .try_collect()
        .await
}

/// Attack 9: a user's pull from a registry on the host's loopback is
/// refused FORBIDDEN before the engine is asked (the loopback service
/// never hears of it), by address or by a name that resolves there; an
/// admin's pull reaches it.
#[test]
fn a_users_pull_from_the_hosts_loopback_is_refused_before_the_engine_is_asked() {
    Rt::Tokio.block_on(async {
        let registry = FakeRegistry::start().await;
        let trust = Trust::default();
        let cast = cast(&trust);
        let port = registry.addr.port();
        // The operator allows the name: it resolves to loopback, which a
        // name may not.
        let server = Server::start(
            &trust,
            Config::from_env().with_allowed_registry(format!("localhost:{port}")),
        );
        let alice = server.connect(&cast.alice).await;
        for image in [
            format!("127.0.0.1:{port}/x:latest"),
            format!("localhost:{port}/x:latest"),
            format!("[::1]:{port}/x:latest"),
            format!("127.1:{port}/x:latest"),
        ] {
            let (refused, message) = code(pull(&alice.docker, &image).await);
            assert_eq!(refused, ErrorCode::FORBIDDEN, "{image}: {message}");
            assert!(!message.contains(SECRET));
        }
        assert_eq!(registry.connections(), 0, "the engine was asked");
        // The victim (the host's service) is reachable by an admin's pull:
        // the refusal above is the server's, not the network's.
        let root = server.connect(&cast.root).await;
        let (failed, message) =
            code(pull(&root.docker, &format!("127.0.0.1:{port}/x:latest")).await);
        assert_eq!(failed, IMAGE_PULL_FAILED);
        assert!(
            message.contains(SECRET),
            "admins get the engine's text: {message}"
        );
        assert!(registry.connections() > 0);
    });
}

/// A registry the operator allows by address is the operator's choice:
/// users pull from it, but a failure's text is fixed, never the
/// registry's answer.
#[test]
fn an_allowed_registrys_answer_is_not_passed_back_to_users() {
    Rt::Tokio.block_on(async {
        let registry = FakeRegistry::start().await;
        let trust = Trust::default();
        let cast = cast(&trust);
        let allowed = registry.addr.to_string();
        let server = Server::start(&trust, Config::from_env().with_allowed_registry(&allowed));
        let alice = server.connect(&cast.alice).await;
        let image = format!("{allowed}/x:latest");
        let (failed, message) = code(pull(&alice.docker, &image).await);
        assert_eq!(failed, IMAGE_PULL_FAILED, "{message}");
        assert!(!message.contains(SECRET), "{message}");
        assert!(message.contains(&image), "{message}");
        assert!(registry.connections() > 0, "allowed: the engine asked it");
    });
}

/// Users pull from the registries the operator allows (here the tests'
/// local registry) and not from others; with no --allow-registry, only
/// Docker Hub.
#[test]
fn users_pull_only_from_allowed_registries() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let strict = Server::start(&trust, Config::from_env());
        let alice = strict.connect(&cast.alice).await;
        let (refused, message) = code(pull(&alice.docker, REGISTRY_IMAGE).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN);
        assert!(
            message.contains("--allow-registry 127.0.0.1:5000"),
            "{message}"
        );

        let open = Server::start(
            &trust,
            Config::from_env().with_allowed_registry("127.0.0.1:5000"),
        );
        let alice = open.connect(&cast.alice).await;
        let progress = pull(&alice.docker, REGISTRY_IMAGE).await.unwrap();
        assert!(!progress.is_empty());
    });
}

// -------------------------------------------------- attack 12: hardening

/// The capability bits of a `Cap*:` line of /proc/self/status.
fn caps(status: &str, line: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .unwrap_or_else(|| panic!("no {line} in {status}"));
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

const NET_RAW: u64 = 1 << 13;
const MKNOD: u64 = 1 << 27;

/// Attack 12: a user's container has no new privileges and neither
/// NET_RAW nor MKNOD (`ping` and `mknod` fail); an admin's keeps them.
#[test]
fn users_containers_have_no_new_privileges_net_raw_or_mknod() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(&trust, Config::from_env());
        let alice = server.connect(&cast.alice).await;
        let (status, code) = alice.run(&["cat", "/proc/self/status"]).await;
        assert_eq!(code, 0);
        assert!(status.contains("NoNewPrivs:\t1"), "{status}");
        for line in ["CapBnd:", "CapEff:"] {
            assert_eq!(
                caps(&status, line) & (NET_RAW | MKNOD),
                0,
                "{line} {status}"
            );
        }
        let (out, code) = alice
            .run(&["ping", "-c", "1", "-W", "1", "127.0.0.1"])
            .await;
        assert_ne!(code, 0, "{out}");
        let (out, code) = alice.run(&["mknod", "/tmp/null", "c", "1", "3"]).await;
        assert_ne!(code, 0, "{out}");

        let root = server.connect(&cast.root).await;
        let (status, _) = root.run(&["cat", "/proc/self/status"]).await;
        assert!(status.contains("NoNewPrivs:\t0"), "{status}");
        assert_eq!(
            caps(&status, "CapBnd:") & (NET_RAW | MKNOD),
            NET_RAW | MKNOD
        );
        let (out, code) = root.run(&["mknod", "/tmp/null", "c", "1", "3"]).await;
        assert_eq!(code, 0, "{out}");
        let (out, code) = root.run(&["ping", "-c", "1", "-W", "1", "127.0.0.1"]).await;
        assert_eq!(code, 0, "{out}");
    });
}

/// The operator chooses what users' containers lose (`--user-cap-drop`).
#[test]
fn the_operator_chooses_the_capabilities_users_lose() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(
            &trust,
            Config::from_env().with_user_cap_drop(["NET_RAW", "CHOWN"]),
        );
        let alice = server.connect(&cast.alice).await;
        let (out, code) = alice.run(&["mknod", "/tmp/null", "c", "1", "3"]).await;
        assert_eq!(code, 0, "MKNOD kept: {out}");
        let (out, code) = alice.run(&["chown", "1:1", "/tmp"]).await;
        assert_ne!(code, 0, "CHOWN dropped: {out}");
    });
}

/// An engine error naming a host path reaches a user without it.
#[test]
fn no_host_path_is_in_an_error_a_user_sees() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(&trust, Config::from_env());
        let alice = server.connect(&cast.alice).await;
        // A volume mounted over a file: the engine's error names the
        // container's root file system on the host.
        let mut s = spec(["true"]);
        let volume = format!("dockwire-test-keys-{}", std::process::id());
        s.mounts = vec![Mount {
            source: volume.clone(),
            target: "/bin/sh".into(),
            read_only: false,
        }];
        // (The volume, made as alice's by the mount, goes with the server.)
        let (_, message) = code(alice.docker.query(&ContainerCreate(s)).await);
        assert!(message.contains("<host path>"), "{message}");
        assert!(!message.contains("/var/lib/docker"), "{message}");
    });
}

// -------------------------------------------------------- attack 10: top

/// Attack 10: a user's `top` with `ps` arguments outside the safe set is
/// INVALID_INPUT before the engine runs `ps`; the safe set works, and an
/// admin's are passed on.
#[test]
fn a_users_top_takes_only_safe_ps_arguments() {
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(&trust, Config::from_env());
        let cleanup = Cleanup::default();
        let alice = server.connect(&cast.alice).await;
        let hers = alice.sleeper(&cleanup).await;
        let top = |args: Option<&str>| ContainerTop {
            id: hers.clone(),
            ps_args: args.map(Into::into),
        };
        let (refused, _) = code(alice.docker.query(&top(Some("-eoetimes=PID,args"))).await);
        assert_eq!(refused, ErrorCode::INVALID_INPUT);
        for ok in [None, Some("-ef"), Some("-o pid,args")] {
            let listed = alice.docker.query(&top(ok)).await.unwrap();
            let rows = listed.processes.unwrap_or_default();
            assert!(rows.iter().flatten().any(|c| c.contains("sleep")), "{ok:?}");
        }
        let root = server.connect(&cast.root).await;
        let listed = root
            .docker
            .query(&top(Some("-eopid,etimes=UPTIME,args")))
            .await
            .unwrap();
        assert!(
            listed
                .titles
                .unwrap_or_default()
                .contains(&"UPTIME".to_owned())
        );
    });
}

// --------------------------------------------------------- the audit line

/// Where the process's log lines go.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines of this test process, captured once.
fn log() -> &'static Lines {
    static LINES: OnceLock<Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        lines
    })
}

/// Every call leaves an audit line with its key, name, address, operation
/// and the object it names; a create, one with the container's id, image,
/// command, mounts and network; and its end a call line with the outcome
/// and duration.
#[test]
fn every_call_leaves_an_audit_line_with_key_address_object_and_outcome() {
    let log = log();
    Rt::Tokio.block_on(async {
        let trust = Trust::default();
        let cast = cast(&trust);
        let server = Server::start(&trust, Config::from_env());
        let cleanup = Cleanup::default();
        let alice = server.connect(&cast.alice).await;
        let key = format!("key=sha256:{}", cast.alice.fingerprint());
        let remote = format!("remote={}", alice._endpoint.local_addr().unwrap());
        let hers = alice.sleeper(&cleanup).await;
        let (refused, _) = code(alice.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN);

        let mut text = String::new();
        for _ in 0..100 {
            text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
            if text.contains(&format!("id={hers}")) && text.contains("image/inspect") {
                break;
            }
            sleep_ms(20).await;
        }
        let mine: Vec<&str> = text.lines().filter(|l| l.contains(&key)).collect();
        let audit = |operation: &str| {
            mine.iter()
                .find(|l| {
                    l.contains("dockwire::audit") && l.contains(&format!("operation={operation}"))
                })
                .unwrap_or_else(|| panic!("no audit line for {operation}: {text}"))
                .to_string()
        };
        let start = audit("container/start");
        for field in [
            "peer=alice",
            &remote,
            "role=user",
            &format!("objects=id={hers}"),
        ] {
            assert!(start.contains(field), "{field}: {start}");
        }
        let created = mine
            .iter()
            .find(|l| l.contains(&format!("container={hers}")))
            .unwrap_or_else(|| panic!("no created line: {text}"));
        for field in [
            &format!("image={IMAGE}"),
            "cmd=[\"sleep\", \"3600\"]",
            "mounts=[]",
            "network=default",
        ] {
            assert!(created.contains(field), "{field}: {created}");
        }
        let ended = mine
            .iter()
            .find(|l| l.contains("dockwire::call") && l.contains("operation=image/inspect"))
            .unwrap_or_else(|| panic!("no call line: {text}"));
        for field in [&remote, "outcome=refused FORBIDDEN", "duration_ms="] {
            assert!(ended.contains(field), "{field}: {ended}");
        }
    });
}
