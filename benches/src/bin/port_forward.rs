//! Forwarded TCP throughput into a container: dockwire's
//! `container/port-forward` over QUIC against a bare quinn stream that
//! forwards the same way and against `ssh -L` (Debian's OpenSSH), all on
//! loopback, runs rotating; a plain TCP connection to the container for
//! reference.
//!
//! ```text
//! cargo run --release -p dockwire-benches --bin port_forward -- --mib 256 --reps 5
//! ```
//!
//! Needs the engine and the test image (`scripts/engine`), root (the
//! server enters the container's network namespace), and OpenSSH's
//! `sshd` and `ssh` (`apt-get install openssh-server openssh-client`;
//! the bench runs its own `sshd` on a free loopback port with its own
//! config, host key and user key in a temporary folder, and never touches
//! the machine's). The container (`nc -ll -p 7000 -e head -c N
//! /dev/zero`, on the default bridge) answers each connection with N
//! bytes and closes; each run reads them to the end into a 256 KiB
//! buffer, timed from the connect to the end:
//!
//! - dockwire: `DockerService` served over QUIC on 127.0.0.1 (tokio),
//!   `DockerClient::port_forward` to the container's port 7000 (the
//!   server connects inside the container's namespace);
//! - bare quinn: a quinn server on 127.0.0.1 that connects each stream to
//!   the container's address, port 7000, and copies the answer into it;
//! - ssh -L: `ssh -N -L LOCAL:CONTAINER_IP:7000` to the bench's `sshd`,
//!   then a TCP connection to `127.0.0.1:LOCAL`;
//! - direct: a TCP connection to the container's address.
//!
//! Prints each side's median MiB/s (of at least 5 runs) and dockwire's
//! ratios to the others. Exits 1 on an error, never on a ratio.

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters as q;
use dockwire_core::Limits;
use dockwire_docker::catalog::PortForward;
use dockwire_docker::{DockerClient, DockerService};
use dockwire_service::quic::{
    QuicConnect, client_config, peer_by_address, serve_quic, server_config,
};
use dockwire_service::{Runtime, Service};
use dockwire_tokio::Tokio;
use futures::AsyncReadExt as _;

use dockwire_benches::{Result, expect_bytes, load_average, median, mib_per_s};

const IMAGE: &str = "dockwire/testbox:latest";
/// The port the container listens on.
const PORT: u16 = 7000;
/// The reading side's buffer, every side's.
const READ_BUF: usize = 256 * 1024;
const DEFAULT_MIB: u64 = 256;
const MIN_REPS: usize = 5;
const SIDES: [&str; 4] = ["dockwire", "bare quinn", "ssh -L", "direct"];

const USAGE: &str = concat!(
    "usage: port_forward [--mib N] [--reps N]\n",
    "  --mib N   MiB per connection (default 256)\n",
    "  --reps N  runs of each side, rotating (default 5, at least 5)",
);

struct Args {
    bytes: u64,
    reps: usize,
}

fn parse_args() -> std::result::Result<Option<Args>, String> {
    let mut args = Args {
        bytes: DEFAULT_MIB << 20,
        reps: MIN_REPS,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut number = || -> std::result::Result<u64, String> {
            given
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{arg} needs a positive number; {USAGE}"))
        };
        match arg.as_str() {
            "--mib" => args.bytes = number()? << 20,
            "--reps" => args.reps = usize::try_from(number()?).map_err(|e| e.to_string())?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if args.reps < MIN_REPS {
        return Err(format!("--reps: at least {MIN_REPS}"));
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    dockwire_benches::main("port_forward", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let docker = Docker::connect_with_local_defaults()?;
    let (id, ip) = rt.block_on(start_container(&docker, args.bytes))?;
    let measured = measure(args, &rt, &id, ip);
    let options = q::RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    let removed = rt.block_on(docker.remove_container(&id, Some(options)));
    measured?;
    removed.map_err(|e| format!("cannot remove the bench's container {id}: {e}").into())
}

/// The container answering each connection with `bytes` bytes: its id and
/// address on the default bridge.
async fn start_container(docker: &Docker, bytes: u64) -> Result<(String, Ipv4Addr)> {
    let body = ContainerCreateBody {
        image: Some(IMAGE.to_owned()),
        cmd: Some(
            ["nc", "-ll", "-p", &PORT.to_string(), "-e", "head", "-c"]
                .into_iter()
                .map(str::to_owned)
                .chain([bytes.to_string(), "/dev/zero".to_owned()])
                .collect(),
        ),
        labels: Some([("dockwire.bench".to_owned(), "port-forward".to_owned())].into()),
        host_config: Some(HostConfig::default()),
        ..Default::default()
    };
    let options = q::CreateContainerOptions {
        name: Some(format!("dockwire-bench-pf-{}", std::process::id())),
        ..Default::default()
    };
    let created = docker.create_container(Some(options), body).await?;
    docker
        .start_container(&created.id, None::<q::StartContainerOptions>)
        .await?;
    let inspected = docker
        .inspect_container(&created.id, None::<q::InspectContainerOptions>)
        .await?;
    let ip = inspected
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut n| n.remove("bridge"))
        .and_then(|bridge| bridge.ip_address)
        .and_then(|ip| ip.parse().ok())
        .ok_or("the bench's container has no address on the default bridge")?;
    Ok((created.id, ip))
}

fn measure(args: &Args, rt: &tokio::runtime::Runtime, id: &str, ip: Ipv4Addr) -> Result<()> {
    let target = SocketAddr::from((ip, PORT));
    wait_listening(target)?;
    let quic = rt.block_on(Quic::start(target))?;
    let ssh = Ssh::start(target)?;
    println!(
        "port_forward: {} MiB per connection, {} runs each; load average before: {}",
        args.bytes >> 20,
        args.reps,
        load_average()
    );
    let mut speeds: [Vec<f64>; 4] = Default::default();
    for rep in 0..args.reps {
        for turn in 0..SIDES.len() {
            let side = (rep + turn) % SIDES.len();
            let time = match side {
                0 => rt.block_on(through_dockwire(&quic.client, id, args.bytes))?,
                1 => rt.block_on(through_bare(&quic.bare, args.bytes))?,
                2 => read_tcp("ssh -L", ssh.local, args.bytes)?,
                _ => read_tcp("direct", target, args.bytes)?,
            };
            speeds[side].push(mib_per_s(args.bytes, time));
        }
    }
    quic.close();
    drop(ssh);
    let medians: Vec<f64> = speeds.iter().map(|s| median(s)).collect();
    println!("\n| side | median MiB/s | runs (MiB/s) | dockwire / side |");
    println!("|---|---|---|---|");
    for (side, name) in SIDES.iter().enumerate() {
        let runs: Vec<String> = speeds[side].iter().map(|s| format!("{s:.0}")).collect();
        println!(
            "| {name} | {:.0} | {} | {:.2} |",
            medians[side],
            runs.join(", "),
            medians[0] / medians[side]
        );
    }
    println!("load average after: {}", load_average());
    Ok(())
}

/// Waits for the container's listener.
fn wait_listening(target: SocketAddr) -> Result<()> {
    for _ in 0..100 {
        if let Ok(probe) = TcpStream::connect(target) {
            drop(probe);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("nothing listens on {target}").into())
}

fn read_tcp(what: &str, to: SocketAddr, bytes: u64) -> Result<Duration> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let mut conn = TcpStream::connect(to)?;
    let mut got = 0u64;
    loop {
        match conn.read(&mut buf)? {
            0 => break,
            n => got += n as u64,
        }
    }
    let elapsed = start.elapsed();
    expect_bytes(what, got, bytes)?;
    Ok(elapsed)
}

async fn through_dockwire(client: &DockerClient, id: &str, bytes: u64) -> Result<Duration> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let input = PortForward {
        container: id.to_owned(),
        port: PORT,
    };
    let mut stream = client.port_forward(&input).await?;
    let mut got = 0u64;
    loop {
        match stream.read(&mut buf).await? {
            0 => break,
            n => got += n as u64,
        }
    }
    let elapsed = start.elapsed();
    futures::AsyncWriteExt::close(&mut stream).await?;
    stream.finished().await?;
    expect_bytes("dockwire", got, bytes)?;
    Ok(elapsed)
}

async fn through_bare(connection: &quinn::Connection, bytes: u64) -> Result<Duration> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(b"go").await?;
    send.finish()?;
    let mut got = 0u64;
    while let Some(n) = recv.read(&mut buf).await? {
        got += n as u64;
    }
    let elapsed = start.elapsed();
    expect_bytes("bare quinn", got, bytes)?;
    Ok(elapsed)
}

// ------------------------------------------------------------- the sides

/// dockwire-docker served over QUIC on 127.0.0.1 and a client of it; a
/// bare quinn forwarder to `target` and a connection to it.
struct Quic {
    client: DockerClient,
    bare: quinn::Connection,
    endpoints: [quinn::Endpoint; 3],
}

impl Quic {
    async fn start(target: SocketAddr) -> Result<Quic> {
        let service: Arc<dyn Service> = Arc::new(DockerService::from_env());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let cert_der = cert.cert.der().clone();
        let key = || {
            quinn::rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into())
        };
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let runtime = Tokio::current();
        let server =
            runtime.quic_endpoint(local, Some(server_config(vec![cert_der.clone()], key())?))?;
        tokio::spawn(serve_quic(
            server.clone(),
            service,
            runtime.spawner(),
            Limits::default(),
            peer_by_address(),
        ));
        let bare_server =
            runtime.quic_endpoint(local, Some(server_config(vec![cert_der.clone()], key())?))?;
        tokio::spawn(serve_bare(bare_server.clone(), target));
        let mut client_endpoint = runtime.quic_endpoint(local, None)?;
        client_endpoint.set_default_client_config(client_config(&[cert_der])?);
        let connect =
            QuicConnect::connect(&client_endpoint, server.local_addr()?, "localhost").await?;
        let client = DockerClient::new(runtime.client(Arc::new(connect), Limits::default()));
        let bare = client_endpoint
            .connect(bare_server.local_addr()?, "localhost")?
            .await?;
        Ok(Quic {
            client,
            bare,
            endpoints: [server, bare_server, client_endpoint],
        })
    }

    fn close(&self) {
        for endpoint in &self.endpoints {
            endpoint.close(0u32.into(), b"done");
        }
    }
}

/// The bare forwarder: each stream a TCP connection to `target`, its
/// answer copied into the stream.
async fn serve_bare(endpoint: quinn::Endpoint, target: SocketAddr) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            while let Ok((send, recv)) = connection.accept_bi().await {
                tokio::spawn(forward_bare(send, recv, target));
            }
        });
    }
}

async fn forward_bare(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    target: SocketAddr,
) -> Result<()> {
    use tokio::io::AsyncReadExt as _;
    let _ = recv.read_to_end(16).await?;
    let mut conn = tokio::net::TcpStream::connect(target).await?;
    let mut buf = bytes::BytesMut::with_capacity(READ_BUF);
    loop {
        buf.reserve(READ_BUF);
        if conn.read_buf(&mut buf).await? == 0 {
            break;
        }
        send.write_chunk(buf.split().freeze()).await?;
    }
    send.finish()?;
    Ok(())
}

/// The bench's own `sshd` on a free loopback port and an `ssh -L` to it:
/// keys and config in a temporary folder, removed with it.
struct Ssh {
    local: SocketAddr,
    sshd: Child,
    ssh: Child,
    dir: PathBuf,
}

impl Ssh {
    fn start(target: SocketAddr) -> Result<Ssh> {
        let dir = std::env::temp_dir().join(format!("dockwire-bench-ssh-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        for key in ["host", "user"] {
            let path = dir.join(key);
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .status()?;
            if !made.success() {
                return Err("ssh-keygen failed".into());
            }
        }
        std::fs::copy(dir.join("user.pub"), dir.join("authorized_keys"))?;
        let sshd_port = free_port()?;
        let config = format!(
            "Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {host}\n\
             AuthorizedKeysFile {keys}\nPidFile {pid}\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nAllowTcpForwarding yes\n",
            host = path_str(&dir.join("host"))?,
            keys = path_str(&dir.join("authorized_keys"))?,
            pid = path_str(&dir.join("sshd.pid"))?,
        );
        std::fs::write(dir.join("sshd_config"), config)?;
        // sshd's privilege separation directory, as its package's unit makes it.
        std::fs::create_dir_all("/run/sshd")?;
        let sshd = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        wait_listening(SocketAddr::from((Ipv4Addr::LOCALHOST, sshd_port)))?;
        let local_port = free_port()?;
        let ssh = Command::new("ssh")
            .args([
                "-N",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ExitOnForwardFailure=yes",
                "-i",
            ])
            .arg(dir.join("user"))
            .args(["-p", &sshd_port.to_string(), "-L"])
            .arg(format!("127.0.0.1:{local_port}:{target}"))
            .arg("root@127.0.0.1")
            .stdin(Stdio::null())
            .spawn()?;
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, local_port));
        let ssh = Ssh {
            local,
            sshd,
            ssh,
            dir,
        };
        wait_listening(local)?;
        Ok(ssh)
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        for child in [&mut self.ssh, &mut self.sshd] {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| "a temporary path that is not UTF-8".into())
}
