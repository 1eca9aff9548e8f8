//! Network isolation of users' containers, against the real engine and
//! the host's real packet filter: each user's containers join a network
//! of the user's own, from which neither the host (its gateway address on
//! the bridge, nor any other of its addresses) nor another peer's
//! containers can be reached, while the user's own containers reach each
//! other and the host still reaches into them. The attacks (reaching the
//! host, reaching other peers) and the default network run over QUIC with
//! mutual TLS, each peer with a key of its own; the modes' and removal's
//! tests name their peers in memory. Every test has users of its own
//! (fresh keys or unique names), so that parallel tests share no network,
//! and removes the networks and rules its users got.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, Role, Roles, UserNetwork};
use dockwire_service::ClientError;
use dockwire_tests::docker::{Cleanup, IMAGE, engine, on_engine, unique};
use dockwire_tests::quic_peers::{QuicPeers, QuicServed};
use dockwire_tests::user_networks::{BRIDGE_NAME_OPTION, UserNetworks, rules_for};
use dockwire_tests::{Rt, client_as};
use futures::StreamExt;

/// Peers named by [`user`] are users, `root` is an admin.
fn roles() -> Roles {
    Roles::new(|peer| match peer {
        "root" => Some(Role::Admin),
        _ if peer.starts_with(USER_PREFIX) => Some(Role::User),
        _ => None,
    })
}

const USER_PREFIX: &str = "dockwire-test-user-";

/// A user peer's name of this test's own.
fn user(name: &str) -> &'static str {
    Box::leak(unique(&format!("user-{name}")).into_boxed_str())
}

fn service(mode: UserNetwork) -> Arc<DockerService> {
    let _ = engine();
    let docker = Docker::connect_with_local_defaults().expect("the local engine's client");
    let config = Config::from_env()
        .with_roles(roles())
        .with_user_network(mode);
    Arc::new(DockerService::new(docker, config))
}

fn client(service: &Arc<DockerService>, peer: &'static str) -> DockerClient {
    DockerClient::new(client_as(peer, service))
}

/// A service of `mode` served over QUIC with mutual TLS to the peers
/// `names`, each with an identity (a key) of its own: `root` an admin,
/// the others users.
fn served(mode: UserNetwork, names: &[&'static str]) -> QuicServed {
    let _ = engine();
    let peers = QuicPeers::new(names);
    let roles = peers.roles(|name| match name {
        "root" => Some(Role::Admin),
        _ => Some(Role::User),
    });
    let docker = Docker::connect_with_local_defaults().expect("the local engine's client");
    let config = Config::from_env().with_roles(roles).with_user_network(mode);
    peers.serve(Arc::new(DockerService::new(docker, config)))
}

/// The code of a create's error; a container made instead is removed
/// at the end, and the test fails.
fn made_or(cleanup: &Cleanup, result: Result<Created, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Remote(e)) => e.code,
        Err(other) => panic!("expected a remote error, got {other:?}"),
        Ok(made) => {
            cleanup.add(&made.id);
            panic!("expected a remote error, got container {}", made.id)
        }
    }
}

/// Creates and starts `spec` as `docker`'s peer: the container's id.
async fn started(docker: &DockerClient, cleanup: &Cleanup, mut spec: ContainerSpec) -> String {
    spec.name = Some(unique("netiso"));
    let created = docker.query(&ContainerCreate(spec)).await.unwrap();
    cleanup.add(&created.id);
    docker
        .query(&ContainerStart(ContainerRef::new(&created.id)))
        .await
        .unwrap();
    created.id
}

async fn sleeper(docker: &DockerClient, cleanup: &Cleanup) -> String {
    started(
        docker,
        cleanup,
        ContainerSpec::new(IMAGE, ["sleep", "3600"]),
    )
    .await
}

/// The shell command of a web server answering `body` on port 8080.
fn web_cmd(body: &str) -> [String; 3] {
    [
        "sh".into(),
        "-c".into(),
        format!("mkdir -p /tmp/w && echo {body} > /tmp/w/index.html && httpd -f -p 8080 -h /tmp/w"),
    ]
}

/// A container of `docker`'s peer serving `body` on port 8080.
async fn web(docker: &DockerClient, cleanup: &Cleanup, body: &str) -> String {
    started(docker, cleanup, ContainerSpec::new(IMAGE, web_cmd(body))).await
}

/// Runs `cmd` in `id`: (stdout, stderr, exit code).
async fn exec(docker: &DockerClient, id: &str, cmd: &[&str]) -> (String, String, i64) {
    let mut items = docker
        .subscribe(&ExecInput::new(id, cmd.iter().copied()))
        .await
        .unwrap();
    let (mut out, mut err, mut code) = (Vec::new(), Vec::new(), None);
    while let Some(item) = items.next().await {
        match item.unwrap() {
            ExecItem::Output { stream, data } => match stream {
                StreamName::Stdout => out.extend_from_slice(&data.to_bytes().unwrap()),
                StreamName::Stderr => err.extend_from_slice(&data.to_bytes().unwrap()),
            },
            ExecItem::Exit { exit_code, .. } => code = Some(exit_code),
        }
    }
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (text(out), text(err), code.expect("an exit code"))
}

/// An HTTP GET of `addr`:`port` from inside `id`, 2 s at most to connect.
async fn get(docker: &DockerClient, id: &str, addr: &str, port: u16) -> (String, String, i64) {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {addr} {port}");
    exec(docker, id, &["sh", "-c", &script]).await
}

/// As [`get`], retried while the server may still be starting: the first
/// answer that carries `body`, else the last attempt.
async fn get_ready(
    docker: &DockerClient,
    id: &str,
    addr: &str,
    port: u16,
    body: &str,
) -> (String, String, i64) {
    let mut last = get(docker, id, addr, port).await;
    for _ in 0..20 {
        if last.0.contains(body) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = get(docker, id, addr, port).await;
    }
    last
}

/// Asserts that the GET from `id` to `addr`:`port` got nowhere.
async fn unreachable(docker: &DockerClient, id: &str, addr: &str, port: u16, what: &str) {
    let (out, err, code) = get(docker, id, addr, port).await;
    assert_ne!(code, 0, "{what}: {addr}:{port} answered: {out:?}");
    assert!(out.is_empty(), "{what}: {addr}:{port} answered: {out:?}");
    assert!(!err.is_empty(), "{what}: no error from nc");
}

/// The networks a container is on (name → (ip, gateway)), as `docker`
/// inspects it.
async fn networks_of(docker: &DockerClient, id: &str) -> BTreeMap<String, (String, String)> {
    let info = docker
        .query(&ContainerInspect(ContainerRef::new(id)))
        .await
        .unwrap();
    info.network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, n)| {
            let ip = n.ip_address.unwrap_or_default();
            let gateway = n.gateway.unwrap_or_default();
            (name, (ip, gateway))
        })
        .collect()
}

/// The only network `id` is on: (name, ip, gateway).
async fn only_network(docker: &DockerClient, id: &str) -> (String, String, String) {
    let networks = networks_of(docker, id).await;
    assert_eq!(networks.len(), 1, "{networks:?}");
    let (name, (ip, gateway)) = networks.into_iter().next().unwrap();
    (name, ip, gateway)
}

/// The bridge interface of the network `name`.
fn bridge_of(name: &str) -> String {
    let network =
        on_engine(engine().inspect_network(name, None::<q::InspectNetworkOptions>)).unwrap();
    network
        .options
        .unwrap_or_default()
        .get(BRIDGE_NAME_OPTION)
        .cloned()
        .unwrap_or_default()
}

/// An IPv4 address of the host other than loopback and the bridges'
/// (its uplink's, as a remote peer would reach it).
fn host_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in listed.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(dev), Some(addr)) = (words.get(1), words.get(3)) else {
            continue;
        };
        let bridge = ["lo", "docker", "dw", "br-", "veth"]
            .iter()
            .any(|p| dev.starts_with(p));
        if !bridge {
            return addr.split('/').next().unwrap().to_owned();
        }
    }
    panic!("the host has no address but loopback and bridges: {listed}")
}

/// A machine outside the host, as far as a container can tell: a network
/// namespace behind a veth pair, routed through the host, serving
/// `outside` on [`Outside::ADDRESS`] port 80. Removed when dropped.
struct Outside {
    namespace: String,
    veth: String,
    server: Option<std::process::Child>,
}

impl Outside {
    const ADDRESS: &str = "198.51.100.2";

    fn start() -> Self {
        let n = unique("o");
        let suffix: String = n.chars().filter(char::is_ascii_digit).collect();
        let suffix = &suffix[suffix.len().saturating_sub(8)..];
        let mut outside = Outside {
            namespace: format!("dwtest-{suffix}"),
            veth: format!("vo{suffix}"),
            server: None,
        };
        let (ns, veth) = (outside.namespace.clone(), outside.veth.clone());
        let peer = format!("{veth}p");
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &ns]);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &ns]);
        ip(&["addr", "add", "198.51.100.1/30", "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns, "ip"];
            all.extend(args);
            ip(&all);
        };
        inside(&["addr", "add", "198.51.100.2/30", "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        inside(&["route", "add", "default", "via", "198.51.100.1"]);
        let server = std::process::Command::new("ip")
            .args([
                "netns", "exec", &ns, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "outside",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        outside.server = Some(server);
        outside
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let ip = |args: &[&str]| std::process::Command::new("ip").args(args).output();
        let _ = ip(&["link", "del", &self.veth]);
        let _ = ip(&["netns", "del", &self.namespace]);
    }
}

/// A TCP service of the host's, on every address: answers `host\n` to
/// each connection, and counts them.
struct HostService {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostService {
    fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            let _ = stream.write_all(b"host\n");
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        HostService {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An HTTP GET from the host: the answer.
fn host_get(addr: &str, port: u16) -> String {
    let mut stream = TcpStream::connect((addr, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The admin's container on the default bridge, made behind dockwire's
/// back, serving `root` on 8080, published on a port of the host: (id,
/// host port).
fn admins_published_web(cleanup: &Cleanup) -> (String, u16) {
    let docker = engine();
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(web_cmd("root").to_vec()),
        labels: Some(HashMap::from([("dockwire.test".into(), "netiso".into())])),
        exposed_ports: Some(vec!["8080/tcp".into()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(
                "8080/tcp".into(),
                Some(vec![PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some(String::new()),
                }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = q::CreateContainerOptions {
        name: Some(unique("netiso-root")),
        ..Default::default()
    };
    let created = on_engine(docker.create_container(Some(options), body)).unwrap();
    cleanup.add(&created.id);
    on_engine(docker.start_container(&created.id, None::<q::StartContainerOptions>)).unwrap();
    let info = on_engine(docker.inspect_container(&created.id, None)).unwrap();
    let port = info
        .network_settings
        .and_then(|s| s.ports)
        .and_then(|p| p.get("8080/tcp").cloned().flatten())
        .and_then(|b| b.into_iter().find_map(|b| b.host_port))
        .and_then(|p| p.parse().ok())
        .expect("a published port");
    (created.id, port)
}

#[test]
fn a_users_container_lands_on_its_own_network_not_the_default_bridge() {
    Rt::Tokio.block_on(async {
        let served = served(UserNetwork::Isolated, &["alice", "bob", "root"]);
        let alice_key = served.key("alice");
        let _networks = UserNetworks::of([served.key("alice"), served.key("bob")]);
        let cleanup = Cleanup::default();
        let (alice, bob, root) = (
            DockerClient::new(served.client("alice")),
            DockerClient::new(served.client("bob")),
            DockerClient::new(served.client("root")),
        );

        // Two containers at once: one network made, both on it.
        let (first, second) = futures::join!(sleeper(&alice, &cleanup), sleeper(&alice, &cleanup));
        let (net, _, _) = only_network(&alice, &first).await;
        assert_eq!(only_network(&alice, &second).await.0, net);
        assert!(net.starts_with("dw-") && net != "bridge", "{net}");
        let filters = HashMap::from([("name".to_owned(), vec![net.clone()])]);
        let options = q::ListNetworksOptions {
            filters: Some(filters),
        };
        let same_name: Vec<_> = on_engine(engine().list_networks(Some(options)))
            .unwrap()
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(&net))
            .collect();
        assert_eq!(same_name.len(), 1, "one network per user");

        // A bridge named dw + 12 hex, sealed as alice's, fenced off the host.
        let network =
            on_engine(engine().inspect_network(&net, None::<q::InspectNetworkOptions>)).unwrap();
        assert_eq!(network.driver.as_deref(), Some("bridge"));
        assert_eq!(network.internal, Some(false));
        let labels = network.labels.unwrap_or_default();
        assert_eq!(
            labels.get(LABEL_OWNER).map(String::as_str),
            Some(alice_key.as_str())
        );
        assert!(labels.contains_key("dockwire.seal"));
        let bridge = bridge_of(&net);
        assert!(
            bridge.len() == 14
                && bridge.starts_with("dw")
                && bridge[2..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{bridge}"
        );
        assert!(!rules_for(&bridge).is_empty(), "no rule for {bridge}");

        // bob's lands on another network of his own.
        let his = sleeper(&bob, &cleanup).await;
        let (his_net, _, _) = only_network(&bob, &his).await;
        assert_ne!(his_net, net);

        // alice may not pick the default bridge, the host's network or
        // another container's; bob's network is, to her, not there.
        let container = format!("container:{his}");
        for (asked, code) in [
            ("bridge", ErrorCode::FORBIDDEN),
            ("default", ErrorCode::FORBIDDEN),
            ("host", ErrorCode::FORBIDDEN),
            (container.as_str(), ErrorCode::FORBIDDEN),
            (his_net.as_str(), NETWORK_NOT_FOUND),
        ] {
            let mut spec = ContainerSpec::new(IMAGE, ["true"]);
            spec.network = Some(asked.into());
            let refused = made_or(&cleanup, alice.query(&ContainerCreate(spec)).await);
            assert_eq!(refused, code, "{asked}");
        }
        // The admin's containers still land on the default bridge.
        let admins = sleeper(&root, &cleanup).await;
        assert_eq!(only_network(&root, &admins).await.0, "bridge");
    });
}

#[test]
fn a_users_container_cannot_reach_the_host_by_its_gateway_or_any_other_address() {
    Rt::Tokio.block_on(async {
        let served = served(UserNetwork::Isolated, &["alice", "root"]);
        let _networks = UserNetworks::of([served.key("alice")]);
        let cleanup = Cleanup::default();
        let (alice, root) = (
            DockerClient::new(served.client("alice")),
            DockerClient::new(served.client("root")),
        );
        let host = HostService::start();

        let hers = web(&alice, &cleanup, "alice").await;
        let (_, her_ip, gateway) = only_network(&alice, &hers).await;
        let address = host_address();
        for addr in [gateway.as_str(), address.as_str()] {
            let (out, err, code) = get(&alice, &hers, addr, host.port).await;
            assert_ne!(code, 0, "the host's service answered on {addr}: {out:?}");
            assert!(out.is_empty(), "{out:?}");
            // Rejected, not dropped: refused at once.
            assert!(err.contains("refused"), "{addr}: {err}");
        }
        assert_eq!(host.accepted.load(Ordering::SeqCst), 0);

        // Positive controls: the admin's container on the default bridge
        // reaches the same service; the host reaches into alice's
        // container (replies pass the rules).
        let admins = sleeper(&root, &cleanup).await;
        let (_, _, bridge_gateway) = only_network(&root, &admins).await;
        let (out, _, code) = get(&root, &admins, &bridge_gateway, host.port).await;
        assert_eq!((out.as_str(), code), ("host\n", 0));
        let mut answer = String::new();
        for _ in 0..20 {
            answer = host_get(&her_ip, 8080);
            if answer.contains("alice") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.ends_with("alice\n"), "{answer:?}");
    });
}

#[test]
fn a_users_container_cannot_reach_other_peers_containers_by_ip_or_published_port() {
    Rt::Tokio.block_on(async {
        let served = served(UserNetwork::Isolated, &["alice", "bob"]);
        let _networks = UserNetworks::of([served.key("alice"), served.key("bob")]);
        let cleanup = Cleanup::default();
        let (alice, bob) = (
            DockerClient::new(served.client("alice")),
            DockerClient::new(served.client("bob")),
        );

        // bob's own second container reaches his first: the positive
        // control, so that what follows cannot pass by accident.
        let his_web = web(&bob, &cleanup, "bob").await;
        let (_, his_ip, _) = only_network(&bob, &his_web).await;
        let his_other = sleeper(&bob, &cleanup).await;
        let (out, _, code) = get_ready(&bob, &his_other, &his_ip, 8080, "bob").await;
        assert!(out.ends_with("bob\n") && code == 0, "{out:?} {code}");

        // The admin's container on the default bridge, published on the
        // host: the host reaches it.
        let (admins, port) = admins_published_web(&cleanup);
        let admins_ip = on_engine(engine().inspect_container(&admins, None))
            .unwrap()
            .network_settings
            .and_then(|s| s.networks)
            .and_then(|n| n.get("bridge").cloned())
            .and_then(|n| n.ip_address)
            .unwrap();
        let mut answer = String::new();
        for _ in 0..20 {
            answer = host_get("127.0.0.1", port);
            if answer.contains("root") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.ends_with("root\n"), "{answer:?}");

        // alice reaches none of them.
        let hers = sleeper(&alice, &cleanup).await;
        let (_, _, gateway) = only_network(&alice, &hers).await;
        unreachable(&alice, &hers, &his_ip, 8080, "bob's container").await;
        unreachable(&alice, &hers, &admins_ip, 8080, "the admin's container").await;
        unreachable(
            &alice,
            &hers,
            &gateway,
            port,
            "a published port via the gateway",
        )
        .await;
        let address = host_address();
        unreachable(
            &alice,
            &hers,
            &address,
            port,
            "a published port via the host",
        )
        .await;

        // bob's container still serves bob.
        let (out, _, _) = get(&bob, &his_other, &his_ip, 8080).await;
        assert!(out.ends_with("bob\n"), "{out:?}");
    });
}

#[test]
fn internal_mode_has_no_way_out_and_none_mode_no_interface_but_loopback() {
    Rt::Tokio.block_on(async {
        let (outward, inward, offline) = (user("outward"), user("inward"), user("offline"));
        let _networks = UserNetworks::of([outward, inward, offline]);
        let cleanup = Cleanup::default();
        let outside = Outside::start();

        // Isolated: the outside answers (the positive control).
        let isolated = service(UserNetwork::Isolated);
        let out_client = client(&isolated, outward);
        let out_box = sleeper(&out_client, &cleanup).await;
        let (out, _, code) =
            get_ready(&out_client, &out_box, Outside::ADDRESS, 80, "outside").await;
        assert_eq!((out.as_str(), code), ("outside\n", 0));

        // Internal: nothing leaves, and the host is still fenced off.
        let internal = service(UserNetwork::Internal);
        let in_client = client(&internal, inward);
        let in_box = sleeper(&in_client, &cleanup).await;
        let (net, _, gateway) = only_network(&in_client, &in_box).await;
        unreachable(&in_client, &in_box, Outside::ADDRESS, 80, "the outside").await;
        let network =
            on_engine(engine().inspect_network(&net, None::<q::InspectNetworkOptions>)).unwrap();
        assert_eq!(network.internal, Some(true));
        drop(outside);
        let host = HostService::start();
        if !gateway.is_empty() {
            unreachable(&in_client, &in_box, &gateway, host.port, "the gateway").await;
        }
        unreachable(&in_client, &in_box, &host_address(), host.port, "the host").await;
        assert_eq!(host.accepted.load(Ordering::SeqCst), 0);

        // A server of another mode does not take a network it would not
        // have made: refused, not joined.
        let other = client(&internal, outward);
        let refused = other
            .query(&ContainerCreate(ContainerSpec::new(IMAGE, ["true"])))
            .await;
        assert_eq!(made_or(&cleanup, refused), CONFLICT);

        // None: network mode none, only loopback, no network made.
        let none = service(UserNetwork::None);
        let off_client = client(&none, offline);
        let off_box = sleeper(&off_client, &cleanup).await;
        let (links, _, code) = exec(&off_client, &off_box, &["ip", "-o", "link"]).await;
        assert_eq!(code, 0);
        let names: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(str::trim))
            .collect();
        assert_eq!(names, ["lo"], "{links}");
        assert_eq!(
            networks_of(&off_client, &off_box)
                .await
                .keys()
                .collect::<Vec<_>>(),
            ["none"]
        );
        let filters =
            HashMap::from([("label".to_owned(), vec![format!("{LABEL_OWNER}={offline}")])]);
        let options = q::ListNetworksOptions {
            filters: Some(filters),
        };
        assert!(
            on_engine(engine().list_networks(Some(options)))
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn removing_a_users_network_removes_its_rules_and_leaves_nothing() {
    Rt::Tokio.block_on(async {
        let alice_name = user("alice");
        let _networks = UserNetworks::of([alice_name]);
        let service = service(UserNetwork::Isolated);
        let (alice, root) = (client(&service, alice_name), client(&service, "root"));
        let remove = |id: String| ContainerRemove {
            id,
            force: true,
            volumes: false,
        };

        for round in 0..2 {
            // Made on first need (again after its removal), fenced.
            let cleanup = Cleanup::default();
            let hers = sleeper(&alice, &cleanup).await;
            let (net, _, _) = only_network(&alice, &hers).await;
            let bridge = bridge_of(&net);
            let rules = rules_for(&bridge);
            assert!(!rules.is_empty(), "round {round}: no rule for {bridge}");
            assert!(rules.iter().all(|r| r.contains("REJECT")), "{rules:?}");

            root.query(&remove(hers)).await.unwrap();
            root.query(&NetworkRemove {
                network: net.clone(),
            })
            .await
            .unwrap();
            let gone = on_engine(engine().inspect_network(&net, None::<q::InspectNetworkOptions>));
            assert!(gone.is_err(), "round {round}: {net} is still there");
            assert_eq!(rules_for(&bridge), Vec::<String>::new(), "round {round}");
            let filters = HashMap::from([(
                "label".to_owned(),
                vec![format!("{LABEL_OWNER}={alice_name}")],
            )]);
            let options = q::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            };
            let left = on_engine(engine().list_containers(Some(options))).unwrap();
            assert!(left.is_empty(), "round {round}: {left:?}");
        }
    });
}
