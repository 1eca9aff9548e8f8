//! Reaching out from users' containers, and what they try to reach: a
//! service of the host's, a machine outside the host, other peers'
//! containers, a registry on the host's loopback (for pulls). The tenancy
//! tests assert on what answers and what does not.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::*;
use dockwire_service::ClientError;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::docker::{Cleanup, IMAGE, engine, on_engine, on_podman, unique};
use crate::user_networks::{BRIDGE_NAME_OPTION, bridge_name};

/// The code of a create's error; a container made instead is removed
/// at the end, and the test fails.
pub fn made_or(cleanup: &Cleanup, result: Result<Created, ClientError>) -> ErrorCode {
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
pub async fn started(docker: &DockerClient, cleanup: &Cleanup, mut spec: ContainerSpec) -> String {
    spec.name = Some(unique("netiso"));
    let created = docker.query(&ContainerCreate(spec)).await.unwrap();
    cleanup.add(&created.id);
    docker
        .query(&ContainerStart(ContainerRef::new(&created.id)))
        .await
        .unwrap();
    created.id
}

/// A sleeping container of `docker`'s peer, started; removed by `cleanup`.
pub async fn sleeper(docker: &DockerClient, cleanup: &Cleanup) -> String {
    started(
        docker,
        cleanup,
        ContainerSpec::new(IMAGE, ["sleep", "3600"]),
    )
    .await
}

/// The shell command of a web server answering `body` on port 8080.
pub fn web_cmd(body: &str) -> [String; 3] {
    [
        "sh".into(),
        "-c".into(),
        format!("mkdir -p /tmp/w && echo {body} > /tmp/w/index.html && httpd -f -p 8080 -h /tmp/w"),
    ]
}

/// A container of `docker`'s peer serving `body` on port 8080.
pub async fn web(docker: &DockerClient, cleanup: &Cleanup, body: &str) -> String {
    started(docker, cleanup, ContainerSpec::new(IMAGE, web_cmd(body))).await
}

/// Runs `cmd` in `id`: (stdout, stderr, exit code).
pub async fn exec_streams(docker: &DockerClient, id: &str, cmd: &[&str]) -> (String, String, i64) {
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
pub async fn get(docker: &DockerClient, id: &str, addr: &str, port: u16) -> (String, String, i64) {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {addr} {port}");
    exec_streams(docker, id, &["sh", "-c", &script]).await
}

/// As [`get`], retried while the server may still be starting: the first
/// answer that carries `body`, else the last attempt.
pub async fn get_ready(
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
pub async fn unreachable(docker: &DockerClient, id: &str, addr: &str, port: u16, what: &str) {
    let (out, err, code) = get(docker, id, addr, port).await;
    assert_ne!(code, 0, "{what}: {addr}:{port} answered: {out:?}");
    assert!(out.is_empty(), "{what}: {addr}:{port} answered: {out:?}");
    assert!(!err.is_empty(), "{what}: no error from nc");
}

/// The networks a container is on (name → (ip, gateway)), as `docker`
/// inspects it.
pub async fn networks_of(docker: &DockerClient, id: &str) -> BTreeMap<String, (String, String)> {
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
pub async fn only_network(docker: &DockerClient, id: &str) -> (String, String, String) {
    let networks = networks_of(docker, id).await;
    assert_eq!(networks.len(), 1, "{networks:?}");
    let (name, (ip, gateway)) = networks.into_iter().next().unwrap();
    (name, ip, gateway)
}

/// The bridge interface of the network `name`.
pub fn bridge_of(name: &str) -> String {
    let network =
        on_engine(engine().inspect_network(name, None::<q::InspectNetworkOptions>)).unwrap();
    let named = network.name.as_deref().unwrap_or_default();
    let bridge = bridge_name(named, network.options.as_ref()).unwrap_or_default();
    // Where the engine does not show it (Podman), the interface of that
    // name, once made, holds the network's gateway.
    let shown = network
        .options
        .unwrap_or_default()
        .contains_key(BRIDGE_NAME_OPTION);
    let made = std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists();
    if !shown && made {
        let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
        let gateway = configs.iter().find_map(|c| c.gateway.clone()).unwrap();
        let addresses = std::process::Command::new("ip")
            .args(["-o", "addr", "show", "dev", &bridge])
            .output()
            .unwrap();
        let addresses = String::from_utf8_lossy(&addresses.stdout);
        assert!(
            addresses.contains(&format!(" {gateway}/")),
            "{bridge} does not hold {name}'s gateway {gateway}: {addresses}"
        );
    }
    bridge
}

/// The address of container `id` (made behind dockwire's back) on the
/// engine's default bridge.
pub fn default_bridge_ip(id: &str) -> String {
    on_engine(engine().inspect_container(id, None))
        .unwrap()
        .network_settings
        .and_then(|s| s.networks)
        // Podman keys its default network `podman`.
        .and_then(|n| n.get(default_network()).cloned())
        .and_then(|n| n.ip_address)
        .expect("an address on the default bridge")
}

/// The key of the engine's default network in a container's inspect.
pub fn default_network() -> &'static str {
    match on_podman() {
        false => "bridge",
        true => "podman",
    }
}

/// An IPv4 address of the host other than loopback and the bridges'
/// (its uplink's, as a remote peer would reach it).
pub fn host_address() -> String {
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
pub struct Outside {
    namespace: String,
    veth: String,
    server: Option<std::process::Child>,
}

impl Outside {
    /// The outside machine's address.
    pub const ADDRESS: &str = "198.51.100.2";

    /// Starts it.
    pub fn start() -> Self {
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
pub struct HostService {
    /// Its port.
    pub port: u16,
    /// The connections it accepted.
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostService {
    /// Starts it.
    pub fn start() -> Self {
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
pub fn host_get(addr: &str, port: u16) -> String {
    // Refused until the server in the container listens (Podman's ports
    // are the kernel's forwarding, with no proxy to accept meanwhile).
    let Ok(mut stream) = TcpStream::connect((addr, port)) else {
        return String::new();
    };
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
pub fn admins_published_web(cleanup: &Cleanup) -> (String, u16) {
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
                    // Podman takes 0.0.0.0 literally (no address
                    // matches): every address is the empty one there.
                    host_ip: Some(if on_podman() { "" } else { "0.0.0.0" }.into()),
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

/// A fake registry on the host's loopback: it counts the connections it
/// gets and answers every manifest with an error carrying a secret.
pub struct FakeRegistry {
    /// Its address.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

/// What the fake registry's errors carry.
pub const SECRET: &str = "SECRET-of-the-hosts-loopback-service";

impl FakeRegistry {
    /// Starts it on a port of its own.
    pub async fn start() -> FakeRegistry {
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

    /// The connections it got.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Pulls `image` as `docker`'s peer: the progress, or the call's error.
pub async fn pull(docker: &DockerClient, image: &str) -> Result<Vec<PullProgress>, ClientError> {
    docker
        .subscribe(&ImagePull {
            image: image.into(),
        })
        .await?
        .try_collect()
        .await
}
