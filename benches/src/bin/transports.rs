//! Throughput of dockwire's transports, each against a plain copy over the
//! same kind of pipe measured in the same run, runs alternating.
//!
//! ```text
//! cargo run --release -p dockwire-benches --bin transports
//! cargo run --release -p dockwire-benches --bin transports -- --mib 64 --reps 3 --only tokio,quic
//! ```
//!
//! - `tokio`: a raw handler's stdout (256 KiB chunks) read through
//!   `RawSession::stdout` into a 64 KiB buffer, over
//!   `Tokio::duplex_client` on a multi-thread runtime; baseline: a
//!   `tokio::io::copy` of the same bytes into a `tokio::io::duplex` of the
//!   same buffer size, its other end copied into `tokio::io::sink()`.
//! - `smol`: the same over `Smol::duplex_client`; baseline:
//!   `futures::io::copy` through a `piper::pipe` of the same size.
//! - `quic`: the same over QUIC on 127.0.0.1 (tokio); baseline: a bare
//!   quinn stream on an endpoint with the same configuration and
//!   certificate, the server writing the bytes in 256 KiB chunks and the
//!   client reading them into a 64 KiB buffer.
//! - `json`: the json carriage carrying the bytes as base64 (`{"base64":
//!   "…"}` per 64 KiB) and decoded by the client, against the raw carriage
//!   carrying them in 64 KiB chunks, over the tokio duplex.
//!
//! The byte count defaults to 256 MiB (`--mib N` or `DOCKWIRE_BENCH_MIB`),
//! the repetitions to 9 (`--reps N`, at least 3). Exits with 1 on an error
//! (a run failed, or delivered a wrong number of bytes), never because a
//! target is missed: benchmarks are reported, not asserted.

use std::env;
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use dockwire_core::Limits;
use dockwire_service::quic::{
    QuicConnect, client_config, peer_by_address, serve_quic, server_config,
};
use dockwire_service::{Client, Router, Runtime, Service};
use dockwire_smol::Smol;
use dockwire_tokio::Tokio;
use futures::{AsyncReadExt as _, StreamExt as _};
use serde_json::{Value, json};

use dockwire_benches::{CpuReading, Result, expect_bytes, load_average, median, mib_per_s};

/// Bytes per stdout chunk of the raw handler, and per write of the bare
/// QUIC server.
const CHUNK: usize = 256 * 1024;
/// The reading side's buffer, dockwire's caller and the bare QUIC client's.
const READ_BUF: usize = 64 * 1024;
/// What each direction of the shells' in-memory duplexes holds
/// (`DUPLEX_BUFFER` in dockwire-tokio, `PIPE_BUFFER` in dockwire-smol).
const PIPE_BUFFER: usize = 256 * 1024;
/// Bytes per output (before base64) and per raw chunk when the carriages
/// are compared.
const JSON_CHUNK: usize = 64 * 1024;

const DEFAULT_MIB: u64 = 256;
const DEFAULT_REPS: usize = 9;
const MIN_REPS: usize = 3;
/// Bytes of the untimed warm-up run of each side before the timed ones.
const WARMUP_BYTES: u64 = 16 << 20;

/// dockwire against a plain copy: at least this fraction of its throughput.
const TARGET_RATIO: f64 = 0.9;
/// dockwire over QUIC against a bare quinn stream: at least this fraction
/// (issue 12's target for the zero-copy raw path).
const TARGET_QUIC_RATIO: f64 = 0.95;
/// The raw carriage against json with base64: at least this many times faster.
const TARGET_FACTOR: f64 = 10.0;

const USAGE: &str = concat!(
    "usage: transports [--mib N] [--reps N] [--only tokio,smol,quic,json]\n",
    "  --mib N    MiB per run (default 256, or $DOCKWIRE_BENCH_MIB)\n",
    "  --reps N   runs of each side, alternating (default 9, at least 3)\n",
    "  --only L   the scenarios to run, comma-separated (default all)",
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Tokio,
    Smol,
    Quic,
    Json,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Tokio,
        Scenario::Smol,
        Scenario::Quic,
        Scenario::Json,
    ];

    fn parse(name: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.key() == name)
            .ok_or_else(|| format!("unknown scenario {name:?}; {USAGE}"))
    }

    fn key(self) -> &'static str {
        match self {
            Scenario::Tokio => "tokio",
            Scenario::Smol => "smol",
            Scenario::Quic => "quic",
            Scenario::Json => "json",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Tokio => "tokio duplex, raw stdout",
            Scenario::Smol => "smol pipes, raw stdout",
            Scenario::Quic => "QUIC loopback (tokio), raw stdout",
            Scenario::Json => "json+base64 vs raw (tokio duplex)",
        }
    }

    fn sides(self) -> (&'static str, &'static str) {
        match self {
            Scenario::Tokio => ("dockwire", "tokio::io::copy over tokio::io::duplex"),
            Scenario::Smol => ("dockwire", "futures::io::copy over piper::pipe"),
            Scenario::Quic => ("dockwire", "bare quinn stream"),
            Scenario::Json => ("json carriage + base64", "raw carriage"),
        }
    }
}

struct Args {
    bytes: u64,
    reps: usize,
    only: Vec<Scenario>,
}

/// The arguments, or `None` when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let number = |what: &str, text: Option<String>| -> Result<u64, String> {
        let text = text.ok_or_else(|| format!("{what} needs a number; {USAGE}"))?;
        text.parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{what}: {text:?} is not a positive number; {USAGE}"))
    };
    let mut mib = match env::var("DOCKWIRE_BENCH_MIB") {
        Ok(text) => number("DOCKWIRE_BENCH_MIB", Some(text))?,
        Err(_) => DEFAULT_MIB,
    };
    let mut reps = DEFAULT_REPS as u64;
    let mut only = Scenario::ALL.to_vec();
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mib" => mib = number("--mib", args.next())?,
            "--reps" => reps = number("--reps", args.next())?,
            "--only" => {
                let list = args.next().ok_or_else(|| USAGE.to_owned())?;
                only = list
                    .split(',')
                    .map(Scenario::parse)
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if reps < MIN_REPS as u64 {
        return Err(format!("--reps: at least {MIN_REPS}"));
    }
    let bytes = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("--mib {mib} is too large"))?;
    Ok(Some(Args {
        bytes,
        reps: usize::try_from(reps).map_err(|e| e.to_string())?,
        only,
    }))
}

fn main() -> ExitCode {
    dockwire_benches::main("transports", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<()> {
    let pattern = pattern();
    let service: Arc<dyn Service> = Arc::new(bench_service(pattern.clone()));
    // The default worker count: one per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tokio = Tokio(rt.handle().clone());
    println!(
        "transports: {} MiB per run, {} runs of each side alternating (dockwire first on odd runs, \
         the baseline first on even ones) after an untimed {} MiB warm-up; medians; load average \
         before: {}",
        args.bytes >> 20,
        args.reps,
        WARMUP_BYTES.min(args.bytes) >> 20,
        load_average()
    );
    let mut rows = Vec::new();
    for &scenario in &args.only {
        let (dockwire, baseline) = match scenario {
            Scenario::Tokio => {
                let client = tokio.duplex_client(service.clone(), Limits::default());
                alternate(
                    args,
                    |n| rt.block_on(dockwire_raw(&client, n, CHUNK)),
                    |n| rt.block_on(tokio_copy(&pattern, n)),
                )?
            }
            Scenario::Smol => {
                let client = Smol.duplex_client(service.clone(), Limits::default());
                alternate(
                    args,
                    |n| smol::block_on(dockwire_raw(&client, n, CHUNK)),
                    |n| smol::block_on(smol_copy(&pattern, n)),
                )?
            }
            Scenario::Quic => {
                let quic = rt.block_on(Quic::start(service.clone(), pattern.clone()))?;
                let measured = alternate(
                    args,
                    |n| rt.block_on(dockwire_raw(&quic.client, n, CHUNK)),
                    |n| rt.block_on(bare_quic(&quic.bare, n)),
                );
                quic.close();
                measured?
            }
            Scenario::Json => {
                let client = tokio.duplex_client(service.clone(), Limits::default());
                alternate(
                    args,
                    |n| rt.block_on(dockwire_json(&client, n)),
                    |n| rt.block_on(dockwire_raw(&client, n, JSON_CHUNK)),
                )?
            }
        };
        let row = Row {
            scenario,
            dockwire: mib_per_s_each(args.bytes, &dockwire.times),
            baseline: mib_per_s_each(args.bytes, &baseline.times),
            dockwire_cpu: dockwire.cpu,
            baseline_cpu: baseline.cpu,
        };
        println!("{}", row.detail());
        rows.push(row);
    }
    println!();
    println!("{}", table(&rows));
    println!("load average after: {}", load_average());
    Ok(())
}

/// One side's timed runs: each run's time and the CPU seconds this
/// process (both ends of the transport, every thread) used in it.
#[derive(Default)]
struct Runs {
    times: Vec<Duration>,
    cpu: Vec<f64>,
}

impl Runs {
    fn push(&mut self, run: impl FnOnce() -> Result<Duration>) -> Result<()> {
        let own = Some(std::process::id());
        let before = CpuReading::now(own)?;
        self.times.push(run()?);
        self.cpu.push(CpuReading::now(own)?.since(&before).watched);
        Ok(())
    }
}

/// One untimed warm-up of each side, then `args.reps` timed runs of each,
/// alternating which goes first.
fn alternate(
    args: &Args,
    mut dockwire: impl FnMut(u64) -> Result<Duration>,
    mut baseline: impl FnMut(u64) -> Result<Duration>,
) -> Result<(Runs, Runs)> {
    let warmup = WARMUP_BYTES.min(args.bytes);
    dockwire(warmup)?;
    baseline(warmup)?;
    let (mut d, mut b) = (Runs::default(), Runs::default());
    for rep in 0..args.reps {
        if rep % 2 == 0 {
            d.push(|| dockwire(args.bytes))?;
            b.push(|| baseline(args.bytes))?;
        } else {
            b.push(|| baseline(args.bytes))?;
            d.push(|| dockwire(args.bytes))?;
        }
    }
    Ok((d, b))
}

/// 256 KiB of pseudo-random bytes (xorshift64*), which every producer sends
/// over and over.
fn pattern() -> Bytes {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(CHUNK);
    while out.len() < CHUNK {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(CHUNK);
    Bytes::from(out)
}

/// The next piece: `chunk` bytes, or what is left if less.
fn piece(left: u64, chunk: usize) -> usize {
    usize::try_from(left).map_or(chunk, |left| left.min(chunk))
}

/// `{"bytes": total, "chunk": size}`, with the chunk at most the pattern's length.
fn sizes(input: &Value) -> (u64, usize) {
    let bytes = input["bytes"].as_u64().unwrap_or(0);
    let chunk = input["chunk"]
        .as_u64()
        .and_then(|c| usize::try_from(c).ok())
        .unwrap_or(CHUNK)
        .clamp(1, CHUNK);
    (bytes, chunk)
}

/// - raw `bench/stdout {bytes, chunk}`: that many bytes of stdout in chunks
///   of that size (slices of the pattern: no copy), then exit 0;
/// - `bench/base64 {bytes, chunk}`: the same bytes as outputs
///   `{"base64": "…"}` of `chunk` bytes each.
fn bench_service(pattern: Bytes) -> Router {
    let raw_pattern = pattern.clone();
    Router::new()
        .raw("bench/stdout", move |_ctx, input: Value, io| {
            let pattern = raw_pattern.clone();
            async move {
                let (_input, mut output) = io.split();
                output.accept(Value::Null).await?;
                let (mut left, chunk) = sizes(&input);
                while left > 0 {
                    let n = piece(left, chunk);
                    output.stdout(pattern.slice(..n)).await?;
                    left -= n as u64;
                }
                Ok(0)
            }
        })
        .subscription("bench/base64", move |_ctx, input: Value| {
            let pattern = pattern.clone();
            let (mut left, chunk) = sizes(&input);
            futures::stream::iter(std::iter::from_fn(move || {
                if left == 0 {
                    return None;
                }
                let n = piece(left, chunk);
                left -= n as u64;
                Some(Ok(json!({ "base64": STANDARD.encode(&pattern[..n]) })))
            }))
        })
}

/// dockwire's raw carriage: `bytes` of stdout in `chunk`-byte chunks, read
/// through `RawSession::stdout` into a 64 KiB buffer; timed from the call's
/// start to its exit code.
async fn dockwire_raw(client: &Client, bytes: u64, chunk: usize) -> Result<Duration> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let mut session = client
        .open_raw("bench/stdout", json!({ "bytes": bytes, "chunk": chunk }))
        .await?;
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
    expect_bytes("dockwire raw stdout", got, bytes)?;
    if code != 0 {
        return Err(format!("the raw handler exited with {code}").into());
    }
    Ok(elapsed)
}

/// dockwire's json carriage: `bytes` as base64 outputs of 64 KiB each,
/// decoded back into a reused buffer; timed from the call's start to its
/// completion.
async fn dockwire_json(client: &Client, bytes: u64) -> Result<Duration> {
    // `decode_slice` wants room for its estimate, which rounds up.
    let text_len = base64::encoded_len(JSON_CHUNK, true).expect("64 KiB encodes without overflow");
    let mut buf = vec![0u8; base64::decoded_len_estimate(text_len)];
    let start = Instant::now();
    let mut outputs = client
        .subscribe(
            "bench/base64",
            json!({ "bytes": bytes, "chunk": JSON_CHUNK }),
        )
        .await?;
    let mut got = 0u64;
    while let Some(output) = outputs.next().await {
        let output = output?;
        let text = output
            .get("base64")
            .and_then(Value::as_str)
            .ok_or("an output without a base64 string")?;
        got += STANDARD.decode_slice(text, &mut buf)? as u64;
    }
    let elapsed = start.elapsed();
    expect_bytes("dockwire json outputs, decoded", got, bytes)?;
    Ok(elapsed)
}

/// Produces `left` bytes, copied from the pattern into whatever buffer the
/// copy reading it brings.
struct PatternReader {
    pattern: Bytes,
    at: usize,
    left: u64,
}

impl PatternReader {
    fn new(pattern: Bytes, bytes: u64) -> Self {
        PatternReader {
            pattern,
            at: 0,
            left: bytes,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = piece(self.left, buf.len().min(self.pattern.len() - self.at));
        buf[..n].copy_from_slice(&self.pattern[self.at..self.at + n]);
        self.at = (self.at + n) % self.pattern.len();
        self.left -= n as u64;
        n
    }
}

impl tokio::io::AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl futures::io::AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.fill(buf)))
    }
}

/// Baseline of `tokio`: a task copies the bytes into one end of a
/// `tokio::io::duplex`; the caller copies the other end into a sink.
async fn tokio_copy(pattern: &Bytes, bytes: u64) -> Result<Duration> {
    let mut source = PatternReader::new(pattern.clone(), bytes);
    let start = Instant::now();
    let (mut near, mut far) = tokio::io::duplex(PIPE_BUFFER);
    // `far` is dropped when the copy is done: the end of the stream.
    let producer = tokio::spawn(async move { tokio::io::copy(&mut source, &mut far).await });
    let got = tokio::io::copy(&mut near, &mut tokio::io::sink()).await?;
    let sent = producer.await??;
    let elapsed = start.elapsed();
    expect_bytes("tokio duplex copy (sent)", sent, bytes)?;
    expect_bytes("tokio duplex copy", got, bytes)?;
    Ok(elapsed)
}

/// Baseline of `smol`: a task copies the bytes into a `piper::pipe`; the
/// caller copies its other end into a sink.
async fn smol_copy(pattern: &Bytes, bytes: u64) -> Result<Duration> {
    let source = PatternReader::new(pattern.clone(), bytes);
    let start = Instant::now();
    let (reader, mut writer) = piper::pipe(PIPE_BUFFER);
    // `writer` is dropped when the copy is done: the end of the stream.
    let producer = smol::spawn(async move { futures::io::copy(source, &mut writer).await });
    let got = futures::io::copy(reader, &mut futures::io::sink()).await?;
    let sent = producer.await?;
    let elapsed = start.elapsed();
    expect_bytes("piper pipe copy (sent)", sent, bytes)?;
    expect_bytes("piper pipe copy", got, bytes)?;
    Ok(elapsed)
}

/// Two QUIC servers on 127.0.0.1 with the same certificate and
/// configuration (dockwire's `server_config`), one serving dockwire calls
/// and one answering bare streams, and one client endpoint (dockwire's
/// `client_config`) connected to both.
struct Quic {
    client: Client,
    bare: quinn::Connection,
    endpoints: [quinn::Endpoint; 3],
}

impl Quic {
    /// Call on the tokio runtime.
    async fn start(service: Arc<dyn Service>, pattern: Bytes) -> Result<Quic> {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let cert_der = cert.cert.der().clone();
        let key =
            quinn::rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let runtime = Tokio::current();
        let dockwire_server = runtime.quic_endpoint(
            local,
            Some(server_config(vec![cert_der.clone()], key.clone_key())?),
        )?;
        let bare_server =
            runtime.quic_endpoint(local, Some(server_config(vec![cert_der.clone()], key)?))?;
        tokio::spawn(serve_quic(
            dockwire_server.clone(),
            service,
            runtime.spawner(),
            Limits::default(),
            peer_by_address(),
        ));
        tokio::spawn(serve_bare(bare_server.clone(), pattern));

        let mut client_endpoint = runtime.quic_endpoint(local, None)?;
        client_endpoint.set_default_client_config(client_config(&[cert_der])?);
        let connect =
            QuicConnect::connect(&client_endpoint, dockwire_server.local_addr()?, "localhost")
                .await?;
        let client = runtime.client(Arc::new(connect), Limits::default());
        let bare = client_endpoint
            .connect(bare_server.local_addr()?, "localhost")?
            .await?;
        Ok(Quic {
            client,
            bare,
            endpoints: [dockwire_server, bare_server, client_endpoint],
        })
    }

    fn close(&self) {
        for endpoint in &self.endpoints {
            endpoint.close(0u32.into(), b"done");
        }
    }
}

/// The bare QUIC server, shaped like `serve_quic`: a task per connection,
/// a task per stream. A stream asks for a byte count (8 bytes, little
/// endian) and gets that many bytes, written in 256 KiB chunks.
async fn serve_bare(endpoint: quinn::Endpoint, pattern: Bytes) {
    while let Some(incoming) = endpoint.accept().await {
        let pattern = pattern.clone();
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            while let Ok((send, recv)) = connection.accept_bi().await {
                tokio::spawn(answer_bare(send, recv, pattern.clone()));
            }
        });
    }
}

async fn answer_bare(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    pattern: Bytes,
) -> Result<()> {
    let mut request = [0u8; 8];
    recv.read_exact(&mut request).await?;
    let mut left = u64::from_le_bytes(request);
    while left > 0 {
        let n = piece(left, CHUNK);
        send.write_chunk(pattern.slice(..n)).await?;
        left -= n as u64;
    }
    send.finish()?;
    Ok(())
}

/// Baseline of `quic`: one stream on the bare server's connection, read
/// to its end into a 64 KiB buffer; timed from opening it to its end.
async fn bare_quic(connection: &quinn::Connection, bytes: u64) -> Result<Duration> {
    let mut buf = vec![0u8; READ_BUF];
    let start = Instant::now();
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(&bytes.to_le_bytes()).await?;
    send.finish()?;
    let mut got = 0u64;
    while let Some(n) = recv.read(&mut buf).await? {
        got += n as u64;
    }
    let elapsed = start.elapsed();
    expect_bytes("bare quinn stream", got, bytes)?;
    Ok(elapsed)
}

fn mib_per_s_each(bytes: u64, times: &[Duration]) -> Vec<f64> {
    times.iter().map(|&t| mib_per_s(bytes, t)).collect()
}

/// One scenario's throughputs (MiB/s per run, in run order).
struct Row {
    scenario: Scenario,
    dockwire: Vec<f64>,
    baseline: Vec<f64>,
    /// CPU seconds of each run (this process: both ends).
    dockwire_cpu: Vec<f64>,
    baseline_cpu: Vec<f64>,
}

impl Row {
    /// Median dockwire throughput / median baseline throughput.
    fn ratio(&self) -> f64 {
        median(&self.dockwire) / median(&self.baseline)
    }

    fn target(&self) -> String {
        match self.scenario {
            Scenario::Json => format!("raw >= {TARGET_FACTOR:.0}x"),
            Scenario::Quic => format!(">= {TARGET_QUIC_RATIO:.2}"),
            _ => format!(">= {TARGET_RATIO:.2}"),
        }
    }

    fn pass(&self) -> bool {
        match self.scenario {
            Scenario::Json => 1.0 / self.ratio() >= TARGET_FACTOR,
            Scenario::Quic => self.ratio() >= TARGET_QUIC_RATIO,
            _ => self.ratio() >= TARGET_RATIO,
        }
    }

    fn ratio_text(&self) -> String {
        match self.scenario {
            Scenario::Json => format!("{:.3} (raw {:.1}x)", self.ratio(), 1.0 / self.ratio()),
            _ => format!("{:.2}", self.ratio()),
        }
    }

    /// Every run's numbers, and the median of the runs' paired ratios.
    fn detail(&self) -> String {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let paired: Vec<f64> = self
            .dockwire
            .iter()
            .zip(&self.baseline)
            .map(|(d, b)| d / b)
            .collect();
        let (d, b) = self.scenario.sides();
        format!(
            "{}: {d} MiB/s [{}], {b} MiB/s [{}]; median of the per-run ratios {:.3}; \
             CPU per run, both ends (medians): {d} {:.2} s, {b} {:.2} s",
            self.scenario.title(),
            list(&self.dockwire),
            list(&self.baseline),
            median(&paired),
            median(&self.dockwire_cpu),
            median(&self.baseline_cpu),
        )
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34}  {:>14}  {:>14}  {:>18}  {:>10}  {:>7}",
        "scenario", "dockwire MiB/s", "baseline MiB/s", "ratio", "target", "verdict"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<34}  {:>14.0}  {:>14.0}  {:>18}  {:>10}  {:>7}",
            row.scenario.title(),
            median(&row.dockwire),
            median(&row.baseline),
            row.ratio_text(),
            row.target(),
            if row.pass() { "PASS" } else { "MISS" }
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "baselines:");
    for row in rows {
        let (d, b) = row.scenario.sides();
        let _ = writeln!(out, "  {}: {d} against {b}", row.scenario.title());
    }
    let _ = write!(
        out,
        "ratio = median dockwire MiB/s / median baseline MiB/s; for json+base64 the dockwire \
         column is the json carriage and the baseline the raw carriage"
    );
    out
}
