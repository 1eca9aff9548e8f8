//! Reattach with replay (`process/attach`, issue 15) over QUIC on
//! 127.0.0.1 against the real engine, each figure against a baseline
//! measured in the same run, runs alternating:
//!
//! - latency: from the attach call to the first replayed byte of an ended
//!   detached process's kept output, against a live `container/exec` of
//!   `head -c 1 /dev/zero` from the call to its first byte (what a caller
//!   waits for output without the server's buffer);
//! - throughput: the replay of a detached process's whole kept output
//!   (`head -c N /dev/zero`, N MiB, kept whole), read to its exit code,
//!   against the same bytes from a live raw `container/exec` of the same
//!   command.
//!
//! ```text
//! cargo run --release -p dockwire-benches --bin replay -- [--mib N] [--reps N] [--attaches N]
//! ```
//!
//! Needs the engine and the test image of `scripts/engine`; one container
//! (`sleep 3600`) made and removed. Benchmarks are reported, not asserted.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters as q;
use dockwire_core::Limits;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService};
use dockwire_service::quic::{
    QuicConnect, client_config, peer_by_address, serve_quic, server_config,
};
use dockwire_service::{RawSession, Runtime, Service};
use dockwire_tokio::Tokio;
use futures::AsyncReadExt as _;

use dockwire_benches::{Result, median, mib_per_s};

const IMAGE: &str = "dockwire/testbox:latest";
const USAGE: &str = "replay [--mib N] [--reps N] [--attaches N]";

struct Args {
    mib: u64,
    reps: usize,
    attaches: usize,
}

fn parse_args() -> std::result::Result<Option<Args>, String> {
    let mut args = Args {
        mib: 64,
        reps: 5,
        attaches: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> std::result::Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} takes a number"))
        };
        match flag.as_str() {
            "--mib" => args.mib = value("--mib")?.max(1),
            "--reps" => args.reps = value("--reps")?.max(1) as usize,
            "--attaches" => args.attaches = value("--attaches")?.max(1) as usize,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    dockwire_benches::main("replay", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let docker = Docker::connect_with_local_defaults()?
            .negotiate_version()
            .await?;
        let id = container(&docker).await?;
        let measured = measure(args, &id).await;
        let options = q::RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        docker.remove_container(&id, Some(options)).await?;
        measured
    })
}

async fn container(docker: &Docker) -> Result<String> {
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        labels: Some([("dockwire.bench".to_owned(), "replay".to_owned())].into()),
        ..Default::default()
    };
    let created = docker
        .create_container(None::<q::CreateContainerOptions>, body)
        .await?;
    docker
        .start_container(&created.id, None::<q::StartContainerOptions>)
        .await?;
    Ok(created.id)
}

async fn measure(args: &Args, container: &str) -> Result<()> {
    let bytes = args.mib << 20;
    let (client, endpoints) = quic(bytes).await?;
    let head = ["head", "-c", &bytes.to_string(), "/dev/zero"].map(String::from);
    let mut start = ProcessStart::new(container, head.clone());
    start.buffer = Some(bytes);
    let process = client.query(&start).await?.id;
    client
        .query(&ProcessWait {
            id: process.clone(),
        })
        .await?;
    let attach = ProcessAttach {
        id: process.clone(),
        from: AttachFrom::Offset(0),
        stdin: false,
    };

    // Latency: to the first byte.
    let (mut replay_ms, mut live_ms) = (Vec::new(), Vec::new());
    for _ in 0..args.attaches {
        let began = Instant::now();
        let (_, session) = client.attach_process(&attach).await?;
        first_byte(session).await?;
        replay_ms.push(ms(began.elapsed()));
        let began = Instant::now();
        let session = client
            .open(&ExecInput::new(container, ["head", "-c", "1", "/dev/zero"]))
            .await?;
        first_byte(session).await?;
        live_ms.push(ms(began.elapsed()));
    }

    // Throughput: the whole output, to the exit code.
    let (mut replay_mibs, mut live_mibs) = (Vec::new(), Vec::new());
    for _ in 0..args.reps {
        let began = Instant::now();
        let (_, session) = client.attach_process(&attach).await?;
        drain(session, bytes).await?;
        replay_mibs.push(mib_per_s(bytes, began.elapsed()));
        let began = Instant::now();
        let session = client
            .open(&ExecInput::new(container, head.clone()))
            .await?;
        drain(session, bytes).await?;
        live_mibs.push(mib_per_s(bytes, began.elapsed()));
    }
    client.query(&ProcessRemove { id: process }).await?;
    for endpoint in endpoints {
        endpoint.close(0u32.into(), b"done");
    }

    let (r, l) = (median(&replay_ms), median(&live_ms));
    println!("replay: {} MiB kept, QUIC on 127.0.0.1", args.mib);
    println!(
        "first byte, median of {}: replay {r:.2} ms, live exec {l:.2} ms (ratio {:.2})",
        args.attaches,
        r / l
    );
    let (r, l) = (median(&replay_mibs), median(&live_mibs));
    println!(
        "throughput, median of {}: replay {r:.0} MiB/s, live exec {l:.0} MiB/s (ratio {:.2})",
        args.reps,
        r / l
    );
    Ok(())
}

/// The Docker service over QUIC on 127.0.0.1 (processes may keep
/// `buffer` bytes), and a client of it.
async fn quic(buffer: u64) -> Result<(DockerClient, [quinn::Endpoint; 2])> {
    let config = Config::from_env().with_process_buffer_max(buffer);
    let service: Arc<dyn Service> = Arc::new(DockerService::from_env_with(config));
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert_der = cert.cert.der().clone();
    let key =
        quinn::rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
    let runtime = Tokio::current();
    let server = runtime.quic_endpoint(local, Some(server_config(vec![cert_der.clone()], key)?))?;
    tokio::spawn(serve_quic(
        server.clone(),
        service,
        runtime.spawner(),
        Limits::default(),
        peer_by_address(),
    ));
    let mut client_endpoint = runtime.quic_endpoint(local, None)?;
    client_endpoint.set_default_client_config(client_config(&[cert_der])?);
    let connect = QuicConnect::connect(&client_endpoint, server.local_addr()?, "localhost").await?;
    let client = DockerClient::new(runtime.client(Arc::new(connect), Limits::default()));
    Ok((client, [server, client_endpoint]))
}

/// Reads one byte, then drops the session (the call is aborted).
async fn first_byte(session: RawSession) -> Result<()> {
    let mut stdout = session.stdout;
    let mut one = [0u8; 1];
    if stdout.read(&mut one).await? == 0 {
        return Err("no output".into());
    }
    Ok(())
}

/// Reads all of stdout, checks its count, awaits exit 0.
async fn drain(session: RawSession, bytes: u64) -> Result<()> {
    let mut stdout = session.stdout;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    if got != bytes {
        return Err(format!("{got} bytes, not {bytes}").into());
    }
    match session.exit.await? {
        0 => Ok(()),
        code => Err(format!("exit {code}").into()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
