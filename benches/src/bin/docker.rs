//! dockwire's Docker service against the real engine: exec stdout
//! throughput and `exec true` latency, each against bollard used directly
//! and the docker CLI, measured in the same run, runs alternating.
//!
//! ```text
//! cargo run --release -p dockwire-benches --bin docker
//! cargo run --release -p dockwire-benches --bin docker -- --mib 256 --reps 5 --only stream
//! cargo build --release -p dockwire -p dockwire-benches
//! target/release/docker --only commands
//! ```
//!
//! Needs the engine and the test image `dockwire/testbox:latest` that
//! `scripts/engine` brings up. The bench starts one container of that
//! image (`sleep 3600`), runs every exec in it, and removes it at the end.
//!
//! - `stream`: `head -c N /dev/zero` exec'd in the container, its stdout
//!   read to the end, three ways, the order rotating from run to run:
//!   - dockwire: `dockwire_docker::DockerService` served over QUIC on
//!     127.0.0.1 (tokio), the raw-carriage exec opened through
//!     `DockerClient::open`, `RawSession::stdout` read into a 64 KiB
//!     buffer, then the exit code awaited;
//!   - bollard: `create_exec` + `start_exec` with the options the service
//!     uses (256 KiB output capacity), the output stream consumed, then
//!     `inspect_exec` polled for the exit code as the service does;
//!   - CLI: `docker exec <id> head -c N /dev/zero` (the Debian client at
//!     `/usr/bin/docker`, else `docker` on the `PATH`), its stdout piped to
//!     this process and read into a 64 KiB buffer.
//!
//!   Each run is timed from the exec's creation to its exit code (the
//!   CLI's: to its exit). Targets: dockwire at least 0.95 of bollard's
//!   throughput, and at least the CLI's.
//! - `latency`: `exec true`, dockwire (the json-carriage exec through the
//!   same QUIC client, drained to its exit code) against bollard
//!   (`create_exec` + `start_exec` + drain + `inspect_exec`), alternating;
//!   the CLI's `docker exec <id> true`, interleaved with the first runs, for
//!   reference. Target: dockwire's median at most bollard's + 2 ms. Before
//!   them, 40 alternating pings (the catalog's `Ping` through dockwire,
//!   bollard's `ping`) show what a call costs each side without the exec.
//!
//! - `commands`: the `dockwire` command against the `docker` CLI, each a
//!   process of its own on the same engine, interleaved (the order
//!   alternating from run to run), each run timed from the spawn to the
//!   exit:
//!   - stdin: `exec -i <id> sha256sum` fed 256 MiB (`--stdin-mib N`) of
//!     pseudo-random bytes from a file, its digest checked against the
//!     other side's;
//!   - stdout: `exec <id> head -c N /dev/zero`, 1024 MiB (`--mib N`), its
//!     stdout piped here and counted.
//!
//!   dockwire is `dockwire exec` over QUIC to a `dockwire serve` on
//!   127.0.0.1 that the bench starts (its own state folders in the
//!   temporary directory, the client trusted as an admin); the `dockwire`
//!   binary is the one next to this bench's (`cargo build --release -p
//!   dockwire`), or `--dockwire PATH`. 5 runs of each (`--command-reps N`);
//!   target: dockwire at least the CLI's throughput on both. A second
//!   table gives each side's CPU per run from `/proc`: the command,
//!   `dockwire serve`, the rest of the machine and the idle cores.
//!
//! - `files`: the file API against `docker cp`, a file of `--mib N` MiB
//!   of pseudo-random bytes on this machine's disk, `--reps N` runs of
//!   each side, alternating:
//!   - write: dockwire's `fs/write` over the same QUIC client (the file
//!     read in 1 MiB chunks and sent as stdin, timed to the exit code)
//!     against `docker cp FILE <id>:/tmp/…` (the CLI's tar, unpacked by
//!     the engine);
//!   - read: dockwire's `fs/read` (its stdout counted) against `docker cp
//!     <id>:/tmp/… -` (the tar on a pipe here, counted). Each read's file
//!     is the one its side wrote, checked for its size.
//!
//! The byte count defaults to 1024 MiB (`--mib N`), the throughput
//! repetitions to 3 (`--reps N`, at least 3), the latency runs to 50
//! (`--execs N`) of which the CLI joins the first 20 (`--cli-execs N`).
//! Exits with 1 on an error (no engine, a wrong byte count, a non-zero
//! exit code), never because a target is missed: benchmarks are reported,
//! not asserted.

use std::env;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters as q;
use dockwire_core::Limits;
use dockwire_docker::catalog::{ExecInput, ExecItem, FsRead, FsWrite, Ping};
use dockwire_docker::{DockerClient, DockerService};
use dockwire_service::quic::{
    QuicConnect, client_config, peer_by_address, serve_quic, server_config,
};
use dockwire_service::{Runtime, Service};
use dockwire_tokio::Tokio;
use futures::{AsyncReadExt as _, StreamExt as _};

use dockwire_benches::{CpuReading, Result, expect_bytes, load_average, median, mib_per_s};

/// The image `scripts/engine` builds from the static busybox.
const IMAGE: &str = "dockwire/testbox:latest";
/// What the engine-side errors tell the reader to do.
const ENGINE_HINT: &str = "run `scripts/engine` as root (it installs and starts the engine and \
                           builds the test image), or point DOCKER_HOST at an engine that has it";

/// The reading side's buffer: dockwire's caller and the CLI's pipe.
const READ_BUF: usize = 64 * 1024;
/// bollard's read buffer for an exec's output: what dockwire-docker's
/// `start_exec` asks for (`OUTPUT_CAPACITY` in its session.rs).
const OUTPUT_CAPACITY: usize = 256 * 1024;
/// How long an ended exec may take to report its exit code.
const EXIT_CODE_PATIENCE: Duration = Duration::from_secs(30);

const DEFAULT_MIB: u64 = 1024;
const DEFAULT_REPS: usize = 3;
const MIN_REPS: usize = 3;
const DEFAULT_EXECS: usize = 50;
const DEFAULT_STDIN_MIB: u64 = 256;
const DEFAULT_COMMAND_REPS: usize = 5;
const DEFAULT_CLI_EXECS: usize = 20;
/// Bytes of the untimed warm-up stream of each side before the timed ones.
const WARMUP_BYTES: u64 = 16 << 20;
/// Untimed `exec true` of each side before the timed ones.
const WARMUP_EXECS: usize = 3;
/// Pings of each side, alternating, before the timed `exec true`.
const PINGS: usize = 40;

/// dockwire's throughput against bollard's: at least this fraction.
const TARGET_VS_BOLLARD: f64 = 0.95;
/// dockwire's throughput against the CLI's: at least this fraction.
const TARGET_VS_CLI: f64 = 1.0;
/// dockwire's `exec true` median: at most bollard's plus this.
const TARGET_LATENCY_SLACK: Duration = Duration::from_millis(2);

const USAGE: &str = concat!(
    "usage: docker [--mib N] [--reps N] [--execs N] [--cli-execs N] [--stdin-mib N]\n",
    "              [--command-reps N] [--dockwire PATH] [--only stream,latency,commands,files]\n",
    "  --mib N           MiB of exec stdout per run (default 1024)\n",
    "  --reps N          stream runs of each side, rotating (default 3, at least 3)\n",
    "  --execs N         `exec true` runs of dockwire and of bollard (default 50)\n",
    "  --cli-execs N     of which the CLI joins the first N (default 20, 0 for none)\n",
    "  --stdin-mib N     MiB of `exec -i` stdin per commands run (default 256)\n",
    "  --command-reps N  commands runs of each side, alternating (default 5, at least 3)\n",
    "  --dockwire PATH   the dockwire binary (default: the one beside this bench)\n",
    "  --only L          the measurements, comma-separated (default all four)",
);

struct Args {
    bytes: u64,
    reps: usize,
    execs: usize,
    cli_execs: usize,
    stdin_bytes: u64,
    command_reps: usize,
    dockwire: Option<PathBuf>,
    stream: bool,
    latency: bool,
    commands: bool,
    files: bool,
}

/// The arguments, or `None` when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let number = |what: &str, text: Option<String>, zero: bool| -> Result<u64, String> {
        let text = text.ok_or_else(|| format!("{what} needs a number; {USAGE}"))?;
        text.parse::<u64>()
            .ok()
            .filter(|&n| zero || n > 0)
            .ok_or_else(|| format!("{what}: {text:?} is not a positive number; {USAGE}"))
    };
    let size = |n: u64| usize::try_from(n).map_err(|e| e.to_string());
    let mut mib = DEFAULT_MIB;
    let mut reps = DEFAULT_REPS;
    let mut execs = DEFAULT_EXECS;
    let mut cli_execs = DEFAULT_CLI_EXECS;
    let mut stdin_mib = DEFAULT_STDIN_MIB;
    let mut command_reps = DEFAULT_COMMAND_REPS;
    let mut dockwire = None;
    let (mut stream, mut latency, mut commands, mut files) = (true, true, true, true);
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mib" => mib = number("--mib", args.next(), false)?,
            "--reps" => reps = size(number("--reps", args.next(), false)?)?,
            "--execs" => execs = size(number("--execs", args.next(), false)?)?,
            "--cli-execs" => cli_execs = size(number("--cli-execs", args.next(), true)?)?,
            "--stdin-mib" => stdin_mib = number("--stdin-mib", args.next(), false)?,
            "--command-reps" => {
                command_reps = size(number("--command-reps", args.next(), false)?)?;
            }
            "--dockwire" => {
                dockwire = Some(PathBuf::from(args.next().ok_or_else(|| USAGE.to_owned())?));
            }
            "--only" => {
                let list = args.next().ok_or_else(|| USAGE.to_owned())?;
                (stream, latency, commands, files) = (false, false, false, false);
                for name in list.split(',') {
                    match name {
                        "stream" => stream = true,
                        "latency" => latency = true,
                        "commands" => commands = true,
                        "files" => files = true,
                        other => return Err(format!("unknown measurement {other:?}; {USAGE}")),
                    }
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if reps < MIN_REPS {
        return Err(format!("--reps: at least {MIN_REPS}"));
    }
    if command_reps < MIN_REPS {
        return Err(format!("--command-reps: at least {MIN_REPS}"));
    }
    let bytes = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("--mib {mib} is too large"))?;
    let stdin_bytes = stdin_mib
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("--stdin-mib {stdin_mib} is too large"))?;
    Ok(Some(Args {
        bytes,
        reps,
        execs,
        cli_execs: cli_execs.min(execs),
        stdin_bytes,
        command_reps,
        dockwire,
        stream,
        latency,
        commands,
        files,
    }))
}

fn main() -> ExitCode {
    dockwire_benches::main("docker", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<()> {
    // The default worker count: one per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let docker = rt.block_on(engine())?;
    let cli = docker_cli();
    let id = rt.block_on(start_container(&docker))?;
    let measured = measure(args, &rt, &docker, &cli, &id);
    let removed = rt.block_on(remove_container(&docker, &id));
    measured?;
    removed
}

/// bollard connected to the engine, its version negotiated, the test image
/// there; or an error saying what to do.
async fn engine() -> Result<Docker> {
    let unreachable = |e: &dyn std::fmt::Display| {
        format!("the Docker engine is not reachable ({e}): {ENGINE_HINT}")
    };
    let docker = Docker::connect_with_local_defaults().map_err(|e| unreachable(&e))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(&e))?;
    docker.ping().await.map_err(|e| unreachable(&e))?;
    docker
        .inspect_image(IMAGE)
        .await
        .map_err(|e| format!("the test image {IMAGE} is missing ({e}): {ENGINE_HINT}"))?;
    Ok(docker)
}

/// The docker CLI: the Debian client `scripts/engine` installs, which
/// matches its engine, else whatever `docker` the `PATH` has.
fn docker_cli() -> String {
    const DEBIAN: &str = "/usr/bin/docker";
    if Path::new(DEBIAN).exists() {
        DEBIAN.to_owned()
    } else {
        "docker".to_owned()
    }
}

/// Creates and starts the container every exec runs in.
async fn start_container(docker: &Docker) -> Result<String> {
    let name = format!("dockwire-bench-{}", std::process::id());
    let body = ContainerCreateBody {
        image: Some(IMAGE.to_owned()),
        cmd: Some(vec!["sleep".to_owned(), "3600".to_owned()]),
        labels: Some([("dockwire.bench".to_owned(), "docker".to_owned())].into()),
        host_config: Some(HostConfig {
            auto_remove: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = q::CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("cannot create the container {name} ({e}): {ENGINE_HINT}"))?;
    if let Err(e) = docker
        .start_container(&created.id, None::<q::StartContainerOptions>)
        .await
    {
        let _ = remove_container(docker, &created.id).await;
        return Err(format!("cannot start the container {name}: {e}").into());
    }
    Ok(created.id)
}

async fn remove_container(docker: &Docker, id: &str) -> Result<()> {
    let options = q::RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    docker
        .remove_container(id, Some(options))
        .await
        .map_err(|e| format!("cannot remove the bench's container {id}: {e}").into())
}

fn measure(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    cli: &str,
    id: &str,
) -> Result<()> {
    println!(
        "docker: engine API {}, CLI {cli}, container {}; load average before: {}",
        docker.client_version(),
        &id[..12.min(id.len())],
        load_average()
    );
    let quic = rt.block_on(Quic::start())?;
    let result = (|| {
        let stream = if args.stream {
            Some(stream(args, rt, &quic.client, docker, cli, id)?)
        } else {
            None
        };
        let latency = if args.latency {
            Some(latency(args, rt, &quic.client, docker, cli, id)?)
        } else {
            None
        };
        let commands = if args.commands {
            Some(commands(args, cli, id)?)
        } else {
            None
        };
        let files = if args.files {
            Some(files(args, rt, &quic.client, cli, id)?)
        } else {
            None
        };
        println!();
        if let Some(stream) = &stream {
            println!("{}", stream.table(args.bytes));
        }
        if let Some(latency) = &latency {
            println!("{}", latency.table());
        }
        if let Some(commands) = &commands {
            println!("{}", commands.table());
        }
        if let Some(files) = &files {
            println!("{}", files.table(args.bytes));
        }
        Ok(())
    })();
    quic.close();
    println!("load average after: {}", load_average());
    result
}

// ------------------------------------------------------------- the sides

/// dockwire-docker served over QUIC on 127.0.0.1, and a typed client of it.
struct Quic {
    client: DockerClient,
    endpoints: [quinn::Endpoint; 2],
}

impl Quic {
    /// Call on the tokio runtime.
    async fn start() -> Result<Quic> {
        let service: Arc<dyn Service> = Arc::new(DockerService::from_env());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let cert_der = cert.cert.der().clone();
        let key =
            quinn::rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let runtime = Tokio::current();
        let server =
            runtime.quic_endpoint(local, Some(server_config(vec![cert_der.clone()], key)?))?;
        tokio::spawn(serve_quic(
            server.clone(),
            service,
            runtime.spawner(),
            Limits::default(),
            peer_by_address(),
        ));
        let mut client_endpoint = runtime.quic_endpoint(local, None)?;
        client_endpoint.set_default_client_config(client_config(&[cert_der])?);
        let connect =
            QuicConnect::connect(&client_endpoint, server.local_addr()?, "localhost").await?;
        let client = DockerClient::new(runtime.client(Arc::new(connect), Limits::default()));
        Ok(Quic {
            client,
            endpoints: [server, client_endpoint],
        })
    }

    fn close(&self) {
        for endpoint in &self.endpoints {
            endpoint.close(0u32.into(), b"done");
        }
    }
}

fn head_cmd(bytes: u64) -> Vec<String> {
    ["head", "-c", &bytes.to_string(), "/dev/zero"]
        .map(str::to_owned)
        .to_vec()
}

fn expect_exit(what: &str, code: i64) -> Result<()> {
    if code != 0 {
        return Err(format!("{what}: the exec exited with {code}, expected 0").into());
    }
    Ok(())
}

/// dockwire's raw carriage: the exec's stdout read into a 64 KiB buffer,
/// then its exit code; timed from the call's start to the exit code.
async fn dockwire_stream(client: &DockerClient, id: &str, bytes: u64) -> Result<Duration> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let mut session = client.open(&ExecInput::new(id, head_cmd(bytes))).await?;
    let mut got = 0u64;
    loop {
        let n = session.stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let code = session.exit.await?;
    let elapsed = start.elapsed();
    expect_bytes("dockwire stdout", got, bytes)?;
    expect_exit("dockwire", code.into())?;
    Ok(elapsed)
}

/// dockwire's json carriage: `cmd`'s items drained, the last the exit
/// code (which must be 0); timed from the call's start to its end.
async fn dockwire_items(client: &DockerClient, id: &str, cmd: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    let mut items = client
        .subscribe(&ExecInput::new(id, cmd.iter().copied()))
        .await?;
    let mut exit = None;
    while let Some(item) = items.next().await {
        match item? {
            ExecItem::Exit { exit_code, .. } => exit = Some(exit_code),
            ExecItem::Output { .. } if exit.is_some() => {
                return Err("dockwire: output after the exit code".into());
            }
            ExecItem::Output { .. } => {}
        }
    }
    let elapsed = start.elapsed();
    expect_exit(
        "dockwire",
        exit.ok_or("dockwire: the exec ended without an exit code")?,
    )?;
    Ok(elapsed)
}

/// bollard directly, the way dockwire-docker's `start_exec` and
/// `exec_exit` use it: create, start attached with a 256 KiB output
/// buffer, consume the output, poll `inspect_exec` for the exit code.
/// Returns the stdout byte count and the time from the creation to the
/// exit code.
async fn bollard_exec(docker: &Docker, id: &str, cmd: Vec<String>) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let options = CreateExecOptions {
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        env: Some(Vec::new()),
        cmd: Some(cmd),
        ..Default::default()
    };
    let created = docker.create_exec(id, options).await?;
    let options = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: Some(OUTPUT_CAPACITY),
    };
    let StartExecResults::Attached { mut output, input } =
        docker.start_exec(&created.id, Some(options)).await?
    else {
        return Err("bollard: the engine started the exec detached".into());
    };
    let mut got = 0u64;
    while let Some(item) = output.next().await {
        if let LogOutput::StdOut { message } = item? {
            got += message.len() as u64;
        }
    }
    // Like the service, the stdin half stays open until the output ends.
    drop(input);
    let code = exit_code(docker, &created.id).await?;
    let elapsed = start.elapsed();
    expect_exit("bollard", code)?;
    Ok((got, elapsed))
}

/// The exit code of an ended exec, polled as dockwire-docker's `exec_exit`
/// does: 1 ms pauses, doubling up to 50 ms.
async fn exit_code(docker: &Docker, exec_id: &str) -> Result<i64> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let info = docker.inspect_exec(exec_id).await?;
        if info.running != Some(true) {
            if let Some(code) = info.exit_code {
                return Ok(code);
            }
        }
        if started.elapsed() > EXIT_CODE_PATIENCE {
            return Err(format!("bollard: no exit code for exec {exec_id}").into());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

async fn bollard_stream(docker: &Docker, id: &str, bytes: u64) -> Result<Duration> {
    let (got, elapsed) = bollard_exec(docker, id, head_cmd(bytes)).await?;
    expect_bytes("bollard stdout", got, bytes)?;
    Ok(elapsed)
}

/// `docker exec <id> <cmd>`, its stdout piped here and read into a 64 KiB
/// buffer; timed from the spawn to the exit. Returns the stdout byte
/// count and the time.
fn cli_exec(cli: &str, id: &str, cmd: &[String]) -> Result<(u64, Duration)> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let mut child = Command::new(cli)
        .arg("exec")
        .arg(id)
        .args(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run the docker CLI {cli:?}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("the CLI's stdout is not piped")?;
    let mut got = 0u64;
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let status = child.wait()?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("docker CLI: `docker exec` ended with {status}").into());
    }
    Ok((got, elapsed))
}

fn cli_stream(cli: &str, id: &str, bytes: u64) -> Result<Duration> {
    let (got, elapsed) = cli_exec(cli, id, &head_cmd(bytes))?;
    expect_bytes("docker CLI stdout", got, bytes)?;
    Ok(elapsed)
}

// -------------------------------------------------------- the measurements

/// Per-run MiB/s of each side, in run order.
struct Stream {
    dockwire: Vec<f64>,
    bollard: Vec<f64>,
    cli: Vec<f64>,
}

fn stream(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    client: &DockerClient,
    docker: &Docker,
    cli: &str,
    id: &str,
) -> Result<Stream> {
    println!(
        "stream: `head -c {} /dev/zero` ({} MiB), {} runs of each side, the order rotating \
         (dockwire, bollard, CLI; then bollard, CLI, dockwire; ...) after an untimed {} MiB \
         warm-up of each",
        args.bytes,
        args.bytes >> 20,
        args.reps,
        WARMUP_BYTES.min(args.bytes) >> 20
    );
    let side = |which: usize, bytes: u64| -> Result<Duration> {
        match which {
            0 => rt.block_on(dockwire_stream(client, id, bytes)),
            1 => rt.block_on(bollard_stream(docker, id, bytes)),
            _ => cli_stream(cli, id, bytes),
        }
    };
    let warmup = WARMUP_BYTES.min(args.bytes);
    for which in 0..3 {
        side(which, warmup)?;
    }
    let mut runs: [Vec<f64>; 3] = Default::default();
    for rep in 0..args.reps {
        let mut line = format!("  run {}:", rep + 1);
        for k in 0..3 {
            let which = (rep + k) % 3;
            let mib_s = mib_per_s(args.bytes, side(which, args.bytes)?);
            line.push_str(&format!(
                " {} {mib_s:.0}",
                ["dockwire", "bollard", "CLI"][which]
            ));
            runs[which].push(mib_s);
        }
        println!("{line} MiB/s");
    }
    let [dockwire, bollard, cli] = runs;
    Ok(Stream {
        dockwire,
        bollard,
        cli,
    })
}

impl Stream {
    fn table(&self, bytes: u64) -> String {
        let (d, b, c) = (
            median(&self.dockwire),
            median(&self.bollard),
            median(&self.cli),
        );
        let paired = |other: &[f64]| {
            let ratios: Vec<f64> = self
                .dockwire
                .iter()
                .zip(other)
                .map(|(d, o)| d / o)
                .collect();
            median(&ratios)
        };
        let verdict = |ratio: f64, target: f64| if ratio >= target { "PASS" } else { "MISS" };
        let mut out = format!(
            "exec stdout, {} MiB, medians: dockwire {d:.0} MiB/s, bollard {b:.0} MiB/s, \
             docker CLI {c:.0} MiB/s\n",
            bytes >> 20
        );
        out.push_str(&format!(
            "{:<20}  {:>7}  {:>14}  {:>8}  {:>7}\n",
            "ratio", "medians", "per-run median", "target", "verdict"
        ));
        for (name, other, target) in [
            ("dockwire / bollard", &self.bollard, TARGET_VS_BOLLARD),
            ("dockwire / CLI", &self.cli, TARGET_VS_CLI),
        ] {
            let ratio = d / median(other);
            out.push_str(&format!(
                "{name:<20}  {ratio:>7.3}  {:>14.3}  {:>8}  {:>7}\n",
                paired(other),
                format!(">= {target:.2}"),
                verdict(ratio, target)
            ));
        }
        out
    }
}

/// Per-run milliseconds of each side, in run order.
struct Latency {
    dockwire: Vec<f64>,
    bollard: Vec<f64>,
    cli: Vec<f64>,
    /// `Ping` through dockwire and bollard's `ping`: what one call costs
    /// each without the exec, for reading the difference.
    dockwire_ping: Vec<f64>,
    bollard_ping: Vec<f64>,
}

fn latency(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    client: &DockerClient,
    docker: &Docker,
    cli: &str,
    id: &str,
) -> Result<Latency> {
    println!(
        "latency: `exec true`, {} runs of dockwire (json carriage) and of bollard alternating, the \
         CLI interleaved with the first {}, after {} untimed runs of each",
        args.execs, args.cli_execs, WARMUP_EXECS
    );
    let truth = vec!["true".to_owned()];
    let dockwire = || rt.block_on(dockwire_items(client, id, &["true"]));
    let bollard = || {
        rt.block_on(bollard_exec(docker, id, truth.clone()))
            .map(|(_, t)| t)
    };
    let cli_true = || cli_exec(cli, id, &truth).map(|(_, t)| t);
    for _ in 0..WARMUP_EXECS {
        dockwire()?;
        bollard()?;
        if args.cli_execs > 0 {
            cli_true()?;
        }
    }
    let ms = |t: Duration| t.as_secs_f64() * 1e3;
    let mut out = Latency {
        dockwire: Vec::with_capacity(args.execs),
        bollard: Vec::with_capacity(args.execs),
        cli: Vec::with_capacity(args.cli_execs),
        dockwire_ping: Vec::with_capacity(PINGS),
        bollard_ping: Vec::with_capacity(PINGS),
    };
    for _ in 0..PINGS {
        let start = Instant::now();
        rt.block_on(client.query(&Ping {}))?;
        out.dockwire_ping.push(ms(start.elapsed()));
        let start = Instant::now();
        rt.block_on(docker.ping())?;
        out.bollard_ping.push(ms(start.elapsed()));
    }
    for run in 0..args.execs {
        if run % 2 == 0 {
            out.dockwire.push(ms(dockwire()?));
            out.bollard.push(ms(bollard()?));
        } else {
            out.bollard.push(ms(bollard()?));
            out.dockwire.push(ms(dockwire()?));
        }
        if run < args.cli_execs {
            out.cli.push(ms(cli_true()?));
        }
    }
    Ok(out)
}

impl Latency {
    fn table(&self) -> String {
        let slack = TARGET_LATENCY_SLACK.as_secs_f64() * 1e3;
        let (d, b) = (median(&self.dockwire), median(&self.bollard));
        let quartiles = |v: &[f64]| format!("{:.2}..{:.2}", quantile(v, 0.25), quantile(v, 0.75));
        let mut out = format!(
            "exec true, median ms (interquartile range): dockwire {d:.2} ({}), bollard {b:.2} \
             ({})",
            quartiles(&self.dockwire),
            quartiles(&self.bollard)
        );
        if !self.cli.is_empty() {
            out.push_str(&format!(
                ", docker CLI {:.2} ({}, {} runs, for reference)",
                median(&self.cli),
                quartiles(&self.cli),
                self.cli.len()
            ));
        }
        out.push_str(&format!(
            "\nping, median ms: dockwire {:.2}, bollard {:.2} (one call's cost without the exec)",
            median(&self.dockwire_ping),
            median(&self.bollard_ping)
        ));
        out.push_str(&format!(
            "\ndockwire - bollard = {:+.2} ms; target <= +{slack:.0} ms: {}",
            d - b,
            if d <= b + slack { "PASS" } else { "MISS" }
        ));
        out
    }
}

// ------------------------------------------------- the dockwire command

/// The variables through which the dockwire command would take its
/// settings from the bench's own environment.
const DOCKWIRE_ENV: [&str; 4] = [
    "DOCKWIRE_HOST",
    "DOCKWIRE_STATE_DIR",
    "DOCKWIRE_SERVER_FINGERPRINT",
    "DOCKWIRE_CONGESTION",
];

/// A `dockwire serve` on 127.0.0.1 and a client trusted by it as an
/// admin, in state folders of their own; all of it gone when dropped.
struct Served {
    bin: PathBuf,
    dir: PathBuf,
    client_state: PathBuf,
    host: String,
    server: Child,
}

impl Served {
    fn start(bin: PathBuf) -> Result<Served> {
        if !bin.exists() {
            return Err(format!(
                "no dockwire binary at {} (build it with `cargo build --release -p dockwire`, \
                 or give --dockwire PATH)",
                bin.display()
            )
            .into());
        }
        let dir = env::temp_dir().join(format!("dockwire-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let server_state = dir.join("server");
        let client_state = dir.join("client");
        let command = |state: &Path| {
            let mut command = Command::new(&bin);
            for var in DOCKWIRE_ENV {
                command.env_remove(var);
            }
            command.arg("--state-dir").arg(state);
            command
        };
        let output = command(&client_state).arg("id").output()?;
        let fingerprint = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let trusted = command(&server_state)
            .args(["trust", "add", &fingerprint, "--name", "bench", "--admin"])
            .output()?;
        if !output.status.success() || !trusted.status.success() {
            return Err("dockwire: cannot make the bench's identities".into());
        }
        let mut server = command(&server_state)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = server.stdout.take().ok_or("dockwire serve: no stdout")?;
        let mut host = None;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(addr) = line.strip_prefix("dockwire serve: listening on ") {
                host = Some(addr.trim().to_owned());
                break;
            }
        }
        let served = Served {
            bin,
            dir,
            client_state,
            host: host.unwrap_or_default(),
            server,
        };
        if !served.host.starts_with("quic://") {
            return Err("dockwire serve: did not say where it listens".into());
        }
        // The first call remembers the server's fingerprint.
        let greeted = served.command(&["version"]).output()?;
        if !greeted.status.success() {
            return Err(format!(
                "dockwire version: {}",
                String::from_utf8_lossy(&greeted.stderr)
            )
            .into());
        }
        Ok(served)
    }

    /// `dockwire --host HOST --state-dir CLIENT ARGS…`, not run yet.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        for var in DOCKWIRE_ENV {
            command.env_remove(var);
        }
        command
            .arg("--host")
            .arg(&self.host)
            .arg("--state-dir")
            .arg(&self.client_state)
            .args(args);
        command
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One run of a command: its stdout's first 4 KiB and byte count, the
/// time from the spawn to the exit, and the CPU it cost.
struct CommandRun {
    head: Vec<u8>,
    bytes: u64,
    time: Duration,
    /// `children`: the command's own CPU; `watched`: `dockwire serve`'s
    /// (both sides: on the CLI's it shows that `serve` stayed idle);
    /// `idle`/`total`: the machine's over the run.
    cpu: CpuReading,
}

/// `args` under the dockwire command (over QUIC to `served`) or the
/// docker CLI, stdin from `input` (else none) and stdout piped here and
/// read into a 64 KiB buffer; timed from the spawn to the exit. `serve`
/// is the pid of the `dockwire serve` whose CPU the run also reads.
fn command_run(
    served: Option<&Served>,
    serve: u32,
    cli: &str,
    args: &[&str],
    input: Option<&Path>,
) -> Result<CommandRun> {
    let mut command = match served {
        Some(served) => served.command(args),
        None => {
            let mut command = Command::new(cli);
            command.args(args);
            command
        }
    };
    let stdin = match input {
        Some(path) => Stdio::from(File::open(path)?),
        None => Stdio::null(),
    };
    let mut buf = vec![0u8; READ_BUF];
    let before = CpuReading::now(Some(serve))?;
    let start = Instant::now();
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("stdout is not piped")?;
    let (mut head, mut got) = (Vec::new(), 0u64);
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096 - head.len())]);
        }
        got += n as u64;
    }
    let status = child.wait()?;
    let elapsed = start.elapsed();
    let cpu = CpuReading::now(Some(serve))?.since(&before);
    let who = if served.is_some() {
        "dockwire"
    } else {
        "docker CLI"
    };
    if !status.success() {
        return Err(format!("{who} {}: ended with {status}", args.join(" ")).into());
    }
    Ok(CommandRun {
        head,
        bytes: got,
        time: elapsed,
        cpu,
    })
}

/// `n` pseudo-random bytes (xorshift64*) written to `path`.
fn random_file(path: &Path, n: u64) -> Result<()> {
    let mut file = std::io::BufWriter::new(File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut left = n;
    let mut block = vec![0u8; 1 << 20];
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let take = left.min(block.len() as u64) as usize;
        file.write_all(&block[..take])?;
        left -= take as u64;
    }
    file.flush()?;
    Ok(())
}

/// One side's runs of one command, in run order: MiB/s and CPU.
#[derive(Default)]
struct SideRuns {
    mib_per_s: Vec<f64>,
    cpu: Vec<CpuReading>,
}

impl SideRuns {
    fn push(&mut self, bytes: u64, run: &CommandRun) -> f64 {
        let speed = mib_per_s(bytes, run.time);
        self.mib_per_s.push(speed);
        self.cpu.push(run.cpu);
        speed
    }
}

/// One command's runs on each side, and its name in the tables.
struct CommandRuns {
    name: String,
    dockwire: SideRuns,
    cli: SideRuns,
}

impl CommandRuns {
    fn new(name: String) -> Self {
        CommandRuns {
            name,
            dockwire: SideRuns::default(),
            cli: SideRuns::default(),
        }
    }

    /// The side `dockwire` says.
    fn side(&mut self, dockwire: bool) -> &mut SideRuns {
        match dockwire {
            true => &mut self.dockwire,
            false => &mut self.cli,
        }
    }
}

/// The stdin and stdout commands' runs.
struct Commands {
    stdin: CommandRuns,
    stdout: CommandRuns,
}

fn commands(args: &Args, cli: &str, id: &str) -> Result<Commands> {
    let bin = match &args.dockwire {
        Some(path) => path.clone(),
        None => env::current_exe()?.with_file_name("dockwire"),
    };
    let served = Served::start(bin)?;
    let serve = served.server.id();
    println!(
        "commands: `{} exec -i <id> sha256sum` < {} MiB and `exec <id> head -c {} /dev/zero`, \
         {} runs of each side alternating (dockwire over {} to its serve, then the docker \
         CLI; then the other way round), after an untimed warm-up of each",
        served.bin.display(),
        args.stdin_bytes >> 20,
        args.bytes,
        args.command_reps,
        served.host,
    );
    let input = served.dir.join("stdin");
    random_file(&input, args.stdin_bytes)?;
    let stdin_args = ["exec", "-i", id, "sha256sum"];
    let head = args.bytes.to_string();
    let stdout_args = ["exec", id, "head", "-c", &head, "/dev/zero"];
    let digest = |who: &str, run: &CommandRun| -> Result<String> {
        let text = String::from_utf8_lossy(&run.head);
        match text.split_whitespace().next() {
            Some(hex) if hex.len() == 64 => Ok(hex.to_owned()),
            _ => Err(format!("{who}: sha256sum said {text:?}").into()),
        }
    };
    // Every run's digest of the stdin file, to check that all agree.
    let mut sums = Vec::new();
    // One side's run of each: stdin, then stdout.
    let mut side = |dockwire: bool| -> Result<(CommandRun, CommandRun)> {
        let served = dockwire.then_some(&served);
        let who = if dockwire { "dockwire" } else { "docker CLI" };
        let fed = command_run(served, serve, cli, &stdin_args, Some(&input))?;
        sums.push(digest(who, &fed)?);
        let drained = command_run(served, serve, cli, &stdout_args, None)?;
        expect_bytes(&format!("{who} stdout"), drained.bytes, args.bytes)?;
        Ok((fed, drained))
    };
    side(true)?;
    side(false)?;
    let mut out = Commands {
        stdin: CommandRuns::new(format!("exec -i sha256sum, {} MiB", args.stdin_bytes >> 20)),
        stdout: CommandRuns::new(format!("exec head, {} MiB", args.bytes >> 20)),
    };
    for rep in 0..args.command_reps {
        let mut line = format!("  run {}:", rep + 1);
        for k in 0..2 {
            let dockwire = (rep + k) % 2 == 0;
            let (fed, drained) = side(dockwire)?;
            let stdin = out.stdin.side(dockwire).push(args.stdin_bytes, &fed);
            let stdout = out.stdout.side(dockwire).push(args.bytes, &drained);
            let who = if dockwire { "dockwire" } else { "CLI" };
            line.push_str(&format!(" {who} stdin {stdin:.0} stdout {stdout:.0};"));
        }
        println!("{line} MiB/s");
    }
    if sums.windows(2).any(|pair| pair[0] != pair[1]) {
        return Err(format!("the sides' sha256sum disagree: {sums:?}").into());
    }
    Ok(out)
}

impl Commands {
    fn table(&self) -> String {
        let mut out = format!(
            "{:<34}  {:>12}  {:>12}  {:>6}  {:>14}  {:>8}  {:>7}\n",
            "dockwire command / docker CLI",
            "dockwire",
            "CLI",
            "ratio",
            "per-run median",
            "target",
            "verdict"
        );
        for runs in [&self.stdin, &self.stdout] {
            let (name, dockwire, cli) = (&runs.name, &runs.dockwire.mib_per_s, &runs.cli.mib_per_s);
            let (d, c) = (median(dockwire), median(cli));
            let ratios: Vec<f64> = dockwire.iter().zip(cli).map(|(d, c)| d / c).collect();
            let ratio = d / c;
            out.push_str(&format!(
                "{name:<34}  {d:>6.0} MiB/s  {c:>6.0} MiB/s  {ratio:>6.3}  {:>14.3}  {:>8}  {:>7}\n",
                median(&ratios),
                format!(">= {TARGET_VS_CLI:.2}"),
                if ratio >= TARGET_VS_CLI { "PASS" } else { "MISS" }
            ));
        }
        out.push_str(&self.cpu_table());
        out
    }

    /// Where each side's CPU went, medians per run: the command, `dockwire
    /// serve`, the rest of the machine (the engine, the command in the
    /// container, anything else running), and the cores' idle time. On a
    /// machine whose cores the engine and the command in the container
    /// also use, a side can only be as fast as the CLI if its extra CPU
    /// fits into the CLI's idle time; the last lines say how the two
    /// compare.
    fn cpu_table(&self) -> String {
        let mut out = format!(
            "\n{:<38}  {:>8}  {:>8}  {:>8}  {:>24}\n",
            "CPU per run (medians, seconds)", "command", "serve", "the rest", "cores idle"
        );
        let mut verdicts = String::new();
        for runs in [&self.stdin, &self.stdout] {
            let (name, dockwire, cli) = (&runs.name, &runs.dockwire.cpu, &runs.cli.cpu);
            let of = |runs: &[CpuReading], field: fn(&CpuReading) -> f64| {
                median(&runs.iter().map(field).collect::<Vec<_>>())
            };
            let rest = |c: &CpuReading| c.total - c.idle - c.children - c.watched;
            for (who, runs) in [("dockwire", dockwire), ("CLI", cli)] {
                let (idle, total) = (of(runs, |c| c.idle), of(runs, |c| c.total));
                out.push_str(&format!(
                    "{:<38}  {:>8.2}  {:>8.2}  {:>8.2}  {:>24}\n",
                    format!("{name}, {who}"),
                    of(runs, |c| c.children),
                    of(runs, |c| c.watched),
                    of(runs, rest),
                    format!("{idle:.2} of {total:.2} ({:.0}%)", 100.0 * idle / total),
                ));
            }
            let extra = of(dockwire, |c| c.children + c.watched) - of(cli, |c| c.children);
            verdicts.push_str(&format!(
                "{name}: dockwire's command and serve use {extra:.2} s more CPU than the \
                 CLI, the rest {:+.2} s; the CLI's runs leave {:.2} s of the cores idle\n",
                of(dockwire, rest) - of(cli, rest),
                of(cli, |c| c.idle)
            ));
        }
        out.push_str(&verdicts);
        out
    }
}

// ----------------------------------------------------------------- helpers

/// The `q` quantile, by linear interpolation between the nearest ranks.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = q * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

// ------------------------------------------------------------- files

/// Per-run MiB/s of each side, in run order: writes, reads.
struct Files {
    dockwire_write: Vec<f64>,
    cli_write: Vec<f64>,
    dockwire_read: Vec<f64>,
    cli_read: Vec<f64>,
}

fn files(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    client: &DockerClient,
    cli: &str,
    id: &str,
) -> Result<Files> {
    let local = std::env::temp_dir().join(format!("dockwire-bench-file-{}", std::process::id()));
    let measured = (|| {
        write_local_file(&local, args.bytes)?;
        println!(
            "files: a {} MiB file, fs/write and fs/read against `docker cp` in and out, {} runs \
             of each, alternating",
            args.bytes >> 20,
            args.reps
        );
        let mut files = Files {
            dockwire_write: Vec::new(),
            cli_write: Vec::new(),
            dockwire_read: Vec::new(),
            cli_read: Vec::new(),
        };
        for rep in 0..args.reps {
            let mut line = format!("  run {}:", rep + 1);
            for k in 0..2 {
                match (rep + k) % 2 {
                    0 => {
                        let w = rt.block_on(dockwire_fs_write(client, id, &local, args.bytes))?;
                        let r = rt.block_on(dockwire_fs_read(client, id, args.bytes))?;
                        let (w, r) = (mib_per_s(args.bytes, w), mib_per_s(args.bytes, r));
                        line.push_str(&format!(" dockwire write {w:.0} read {r:.0};"));
                        files.dockwire_write.push(w);
                        files.dockwire_read.push(r);
                    }
                    _ => {
                        let w = cli_cp_in(cli, id, &local)?;
                        let r = cli_cp_out(cli, id, args.bytes)?;
                        let (w, r) = (mib_per_s(args.bytes, w), mib_per_s(args.bytes, r));
                        line.push_str(&format!(" docker cp in {w:.0} out {r:.0};"));
                        files.cli_write.push(w);
                        files.cli_read.push(r);
                    }
                }
            }
            println!("{line} MiB/s");
        }
        Ok(files)
    })();
    let _ = std::fs::remove_file(&local);
    measured
}

/// `bytes` pseudo-random bytes (one 1 MiB block, repeated) at `path`.
fn write_local_file(path: &Path, bytes: u64) -> Result<()> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let block: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let mut file = std::io::BufWriter::new(File::create(path)?);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64);
        file.write_all(&block[..usize::try_from(n)?])?;
        left -= n;
    }
    file.flush()?;
    Ok(())
}

/// The container path each side writes and reads.
fn bench_path(side: &str) -> String {
    format!("/tmp/dockwire-bench-{side}")
}

async fn dockwire_fs_write(
    client: &DockerClient,
    id: &str,
    local: &Path,
    bytes: u64,
) -> Result<Duration> {
    use futures::SinkExt as _;
    let mut file = File::open(local)?;
    let start = Instant::now();
    let mut session = client
        .open(&FsWrite {
            id: id.to_owned(),
            path: bench_path("dockwire"),
            size: Some(bytes),
            ..Default::default()
        })
        .await?;
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        session.stdin.send(bytes::Bytes::from(chunk)).await?;
    }
    futures::SinkExt::close(&mut session.stdin).await?;
    let code = session.exit.await?;
    let elapsed = start.elapsed();
    expect_exit("dockwire fs/write", code.into())?;
    Ok(elapsed)
}

async fn dockwire_fs_read(client: &DockerClient, id: &str, bytes: u64) -> Result<Duration> {
    let start = Instant::now();
    let mut session = client
        .open(&FsRead {
            id: id.to_owned(),
            path: bench_path("dockwire"),
            offset: None,
            length: None,
        })
        .await?;
    let mut got = 0u64;
    while let Some(chunk) = session.stdout.next().await {
        got += chunk?.len() as u64;
    }
    let code = session.exit.await?;
    let elapsed = start.elapsed();
    expect_bytes("dockwire fs/read", got, bytes)?;
    expect_exit("dockwire fs/read", code.into())?;
    Ok(elapsed)
}

fn cli_cp_in(cli: &str, id: &str, local: &Path) -> Result<Duration> {
    let start = Instant::now();
    let status = Command::new(cli)
        .arg("cp")
        .arg(local)
        .arg(format!("{id}:{}", bench_path("cli")))
        .stdout(Stdio::null())
        .status()?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("docker CLI: `docker cp` in ended with {status}").into());
    }
    Ok(elapsed)
}

/// `docker cp <id>:PATH -`: the tar on a pipe, counted (a tar of one
/// file: its bytes and at most a few blocks more).
fn cli_cp_out(cli: &str, id: &str, bytes: u64) -> Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(cli)
        .arg("cp")
        .arg(format!("{id}:{}", bench_path("cli")))
        .arg("-")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut buf = vec![0u8; READ_BUF];
    let mut got = 0u64;
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let status = child.wait()?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("docker CLI: `docker cp` out ended with {status}").into());
    }
    if got < bytes {
        return Err(
            format!("docker cp out: {got} bytes of tar, less than the file's {bytes}").into(),
        );
    }
    Ok(elapsed)
}

impl Files {
    fn table(&self, bytes: u64) -> String {
        let ratio = |d: &[f64], c: &[f64]| {
            let per_run: Vec<f64> = d.iter().zip(c).map(|(d, c)| d / c).collect();
            (median(d) / median(c), median(&per_run))
        };
        let mut out = format!("files, {} MiB, medians (MiB/s):\n", bytes >> 20);
        out.push_str(&format!(
            "{:<26}  {:>9}  {:>9}  {:>7}  {:>14}\n",
            "", "dockwire", "docker cp", "ratio", "per-run median"
        ));
        for (name, d, c) in [
            (
                "write (fs/write | cp in)",
                &self.dockwire_write,
                &self.cli_write,
            ),
            (
                "read (fs/read | cp out)",
                &self.dockwire_read,
                &self.cli_read,
            ),
        ] {
            let (medians, per_run) = ratio(d, c);
            out.push_str(&format!(
                "{name:<26}  {:>9.0}  {:>9.0}  {medians:>7.3}  {per_run:>14.3}\n",
                median(d),
                median(c)
            ));
        }
        out
    }
}
