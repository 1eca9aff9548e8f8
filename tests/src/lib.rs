//! The conformance harness: one test service, and a way to reach it from
//! either runtime's client through either runtime's server over each
//! transport.
//!
//! A scenario is an `async fn(Harness)`; [`run`] builds the harness for a
//! (client runtime, server runtime, transport) triple and runs the
//! scenario on the client's runtime. The harness is one path for every
//! triple: each side is a [`Runtime`] value ([`Rt::runtime`]) and every
//! transport is made through it. `tests/conformance.rs` runs every
//! scenario on all twelve triples.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use dockwire_core::{CallError, ErrorCode, Limits, Request, ServerEvent};
use dockwire_service::quic::{
    QuicConnect, client_config, peer_by_address, serve_quic, server_config,
};
use dockwire_service::{
    BoxRead, BoxWrite, CallContext, Client, Connect, Listen, Reply, Router, Runtime, Service,
    Spawn, serve_call,
};
use dockwire_smol::Smol;
use dockwire_tokio::Tokio;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

pub mod docker;
pub mod exec_signals;
pub mod private_engine;
pub mod quic_peers;
pub mod reach;
pub mod relay;
pub mod tenancy;
pub mod user_networks;

// README.md's examples are compiled and run with this crate's doc tests,
// which can reach every crate they use.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// An async runtime a side of a call runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    /// tokio, multi-threaded.
    Tokio,
    /// smol's global executor.
    Smol,
}

/// How client and server are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// An in-memory stream of the client runtime's kind.
    Duplex,
    /// A Unix socket in a temporary directory.
    Unix,
    /// QUIC over UDP on 127.0.0.1 with a fresh self-signed certificate.
    Quic,
    /// TCP on 127.0.0.1, one connection per call.
    Tcp,
}

fn tokio_rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

impl Rt {
    /// This runtime's shell: everything the harness does on it goes
    /// through this value.
    pub fn runtime(self) -> Arc<dyn Runtime> {
        match self {
            Rt::Tokio => Arc::new(Tokio(tokio_rt().handle().clone())),
            Rt::Smol => Arc::new(Smol),
        }
    }

    /// Runs `f` to completion on this runtime.
    pub fn block_on<F: Future>(self, f: F) -> F::Output {
        let mut output = None;
        self.runtime()
            .block_on(Box::pin(async { output = Some(f.await) }));
        output.expect("block_on returns once its task has run to the end")
    }

    /// Spawns through this runtime's shell.
    pub fn spawner(self) -> Arc<dyn Spawn> {
        self.runtime().spawner()
    }
}

/// What the test service saw, for assertions on the server's side.
#[derive(Clone, Default)]
pub struct Probe {
    dropped: Arc<AtomicUsize>,
    controls: Arc<Mutex<Vec<String>>>,
}

impl Probe {
    /// Handlers dropped before they ended.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Waits (up to 10 s) until `n` handlers have been dropped.
    pub async fn wait_dropped(&self, n: usize) {
        for _ in 0..1000 {
            if self.dropped() >= n {
                return;
            }
            sleep_ms(10).await;
        }
        panic!("{} handlers dropped, expected {n}", self.dropped());
    }

    /// Resize and signal messages the handlers received, in order.
    pub fn controls(&self) -> Vec<String> {
        self.controls.lock().unwrap().clone()
    }
}

struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An in-memory client on the current tokio runtime whose calls
/// `service` sees as coming from a peer named `peer`, as a transport would
/// name it.
pub fn client_as<S: Service>(peer: &'static str, service: &Arc<S>) -> Client {
    let service = Arc::new(AsPeer {
        peer,
        service: service.clone(),
    });
    Tokio::current().duplex_client(service, Limits::default())
}

/// Serves `service` to a peer named `peer`, whoever calls.
struct AsPeer<S> {
    peer: &'static str,
    service: Arc<S>,
}

impl<S: Service> Service for AsPeer<S> {
    fn call(&self, mut ctx: CallContext, request: Request) -> Reply {
        // A transport without keys: the name is the key.
        ctx.peer = self.peer.into();
        ctx.key = self.peer.into();
        self.service.call(ctx, request)
    }
}

/// Sleeps without naming a runtime (a thread per sleep; tests only).
pub async fn sleep_ms(ms: u64) {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// The test service.
///
/// - `math/double {n}` → `2n`
/// - `test/count {n}` → `0..n`, then completion
/// - `test/fail-at {at}` → `0..at`, then `UNAVAILABLE` with details `at`
/// - `test/forever` → `0, 1, …` as fast as taken, never ending
/// - raw `test/cat` → stdin to stdout, resize/signal noted, exit 0
/// - raw `test/split {code}` → `out` on stdout, `err` on stderr, exit `code`
/// - raw `test/stream {bytes}` → that many bytes of stdout, then exit 0
/// - raw `test/drained-then-count` → `bye` on stdout and the drained
///   sentinel at once, then counts stdin to its close: the count is the
///   exit code
/// - raw `test/hang` → accepts, then never ends
/// - raw `test/refuse` → refuses with `CONTAINER_NOT_FOUND`
pub fn test_service(probe: Probe) -> Router {
    let p1 = probe.clone();
    let p2 = probe.clone();
    let p3 = probe;
    Router::new()
        .query("math/double", |_ctx, input: Value| async move {
            Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))
        })
        .subscription("test/count", |_ctx, input: Value| {
            let n = input["n"].as_u64().unwrap_or(0);
            futures::stream::iter((0..n).map(|i| Ok(json!(i))))
        })
        .subscription("test/fail-at", |_ctx, input: Value| {
            let at = input["at"].as_u64().unwrap_or(0);
            futures::stream::iter((0..=at).map(move |i| {
                if i < at {
                    return Ok(json!(i));
                }
                Err(CallError::new(ErrorCode::UNAVAILABLE, "failed on purpose")
                    .with_details(json!(i)))
            }))
        })
        .subscription("test/forever", move |_ctx, _| {
            let guard = DropGuard(p1.dropped.clone());
            futures::stream::iter(0u64..).map(move |i| {
                let _alive = &guard;
                Ok(json!(i))
            })
        })
        .raw("test/cat", move |_ctx, _input, io| {
            let controls = p2.controls.clone();
            async move {
                let (mut input, mut output) = io.split();
                output.accept(json!({"cat": true})).await?;
                while let Some(item) = input.next().await {
                    match item {
                        ServerEvent::Stdin(b) => output.stdout(b).await?,
                        ServerEvent::StdinClosed => break,
                        ServerEvent::Resize { cols, rows } => controls
                            .lock()
                            .unwrap()
                            .push(format!("resize {cols}x{rows}")),
                        ServerEvent::Signal(name) => {
                            controls.lock().unwrap().push(format!("signal {name}"))
                        }
                        // Never given to a handler.
                        _ => {}
                    }
                }
                Ok(0)
            }
        })
        .raw("test/split", |_ctx, input: Value, io| async move {
            let (_input, mut output) = io.split();
            output.accept(json!(null)).await?;
            output.stdout(Bytes::from_static(b"out")).await?;
            output.stderr(Bytes::from_static(b"err")).await?;
            output.stdout(Bytes::from_static(b"put")).await?;
            Ok(input["code"].as_i64().unwrap_or(0) as i32)
        })
        .raw("test/stream", |_ctx, input: Value, io| async move {
            let (_input, mut output) = io.split();
            output.accept(json!(null)).await?;
            let mut left = input["bytes"].as_u64().unwrap_or(0);
            let mut rng = Prng(input["seed"].as_u64().unwrap_or(1));
            while left > 0 {
                let n = left.min(256 * 1024) as usize;
                output.stdout(rng.bytes(n)).await?;
                left -= n as u64;
            }
            Ok(0)
        })
        .raw("test/drained-then-count", |_ctx, _input, io| async move {
            let (mut input, mut output) = io.split();
            output.accept(json!(null)).await?;
            output.stdout(Bytes::from_static(b"bye")).await?;
            output.drained().await?;
            let mut count = 0;
            while let Some(item) = input.next().await {
                match item {
                    ServerEvent::Stdin(b) => count += b.len(),
                    ServerEvent::StdinClosed => break,
                    _ => {}
                }
            }
            Ok(i32::try_from(count).unwrap_or(i32::MAX))
        })
        .raw("test/hang", move |_ctx, _input, io| {
            let guard = DropGuard(p3.dropped.clone());
            async move {
                let (_input, mut output) = io.split();
                output.accept(json!(null)).await?;
                futures::future::pending::<()>().await;
                drop(guard);
                Ok(0)
            }
        })
        .raw("test/refuse", |_ctx, _input, _io| async move {
            Err(CallError::new(
                ErrorCode::new("CONTAINER_NOT_FOUND"),
                "no such container",
            ))
        })
}

/// A small deterministic generator of test bytes (xorshift64*).
#[derive(Clone, Debug)]
pub struct Prng(pub u64);

impl Prng {
    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Bytes {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        Bytes::from(out)
    }

    /// True with probability `p` (0 never, 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        // The top 53 bits: a uniform float in [0, 1).
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A uniformly random duration from zero up to `max`, to the
    /// microsecond.
    pub fn up_to(&mut self, max: std::time::Duration) -> std::time::Duration {
        let micros = max.as_micros() as u64;
        std::time::Duration::from_micros(self.next_u64() % (micros + 1))
    }
}

/// A connected client and what it takes to keep the server alive.
pub struct Harness {
    /// The client, on the client runtime.
    pub client: Client,
    /// What the server's handlers saw.
    pub probe: Probe,
    /// The transport.
    pub transport: Transport,
    /// The QUIC connection, when the transport is QUIC.
    pub quic: Option<quinn::Connection>,
    /// The Unix socket's path, when the transport is Unix.
    pub socket: Option<PathBuf>,
    server_endpoint: Option<quinn::Endpoint>,
    server_tasks: ServerTasks,
    socket_dir: Option<PathBuf>,
}

/// The in-memory server's call tasks, so that a test can kill them.
type ServerTasks = Arc<Mutex<Vec<futures::future::AbortHandle>>>;

impl Harness {
    /// Drops the server's side of every call: QUIC closes its endpoint; the
    /// in-memory server's call tasks are aborted, dropping their stream
    /// ends. (A Unix server goes away with its process: the crash tests.)
    pub fn close_server(&self) {
        if let Some(endpoint) = &self.server_endpoint {
            endpoint.close(0u32.into(), b"server gone");
        }
        for task in self.server_tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.close_server();
        if let Some(dir) = &self.socket_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Limits used by every harness.
pub fn limits() -> Limits {
    Limits::default()
}

/// Builds a harness; call it on the client's runtime.
pub async fn harness(client_rt: Rt, server_rt: Rt, transport: Transport) -> Harness {
    let probe = Probe::default();
    let service: Arc<dyn Service> = Arc::new(test_service(probe.clone()));
    let mut h = harness_for(service, client_rt, server_rt, transport).await;
    h.probe = probe;
    h
}

/// Builds a harness around any service; call it on the client's runtime.
pub async fn harness_for(
    service: Arc<dyn Service>,
    client_rt: Rt,
    server_rt: Rt,
    transport: Transport,
) -> Harness {
    let client = client_rt.runtime();
    let server = server_rt.runtime();
    let probe = Probe::default();
    let mut quic = None;
    let mut server_endpoint = None;
    let mut socket_dir = None;
    let mut socket = None;
    let server_tasks = ServerTasks::default();
    let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
    let connect: Arc<dyn Connect> = match transport {
        Transport::Duplex => Arc::new(DuplexConnect {
            client: client.clone(),
            server,
            service,
            tasks: server_tasks.clone(),
        }),
        Transport::Unix => {
            let dir = unique_dir();
            let path = dir.join("dockwire.sock");
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            serve_on(&*server, server.listen_unix(listener).unwrap(), service);
            socket_dir = Some(dir);
            socket = Some(path.clone());
            client.dial_unix(path)
        }
        Transport::Tcp => {
            let listener = std::net::TcpListener::bind(local).unwrap();
            let addr = listener.local_addr().unwrap();
            serve_on(&*server, server.listen_tcp(listener).unwrap(), service);
            client.dial_tcp(addr)
        }
        Transport::Quic => {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let cert_der = cert.cert.der().clone();
            let key = quinn::rustls::pki_types::PrivateKeyDer::Pkcs8(
                cert.signing_key.serialize_der().into(),
            );
            let config = server_config(vec![cert_der.clone()], key).unwrap();
            let endpoint = server.quic_endpoint(local, Some(config)).unwrap();
            let addr = endpoint.local_addr().unwrap();
            let serve = serve_quic(
                endpoint.clone(),
                service,
                server.spawner(),
                limits(),
                peer_by_address(),
            );
            server.spawn(serve.boxed());
            server_endpoint = Some(endpoint);
            let mut client_endpoint = client.quic_endpoint(local, None).unwrap();
            client_endpoint.set_default_client_config(client_config(&[cert_der]).unwrap());
            let c = QuicConnect::connect(&client_endpoint, addr, "localhost")
                .await
                .unwrap();
            quic = Some(c.connection().clone());
            Arc::new(c)
        }
    };
    Harness {
        client: client.client(connect, limits()),
        probe,
        transport,
        quic,
        socket,
        server_endpoint,
        server_tasks,
        socket_dir,
    }
}

fn unique_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dockwire-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Serves every connection of `listener` on a task of `runtime`.
fn serve_on(runtime: &dyn Runtime, listener: Box<dyn Listen>, service: Arc<dyn Service>) {
    let serve = runtime.serve(listener, service, limits());
    runtime.spawn(serve.map(drop).boxed());
}

/// In memory across runtimes: the client runtime's pipe, the far end
/// served on the server runtime.
struct DuplexConnect {
    client: Arc<dyn Runtime>,
    server: Arc<dyn Runtime>,
    service: Arc<dyn Service>,
    tasks: ServerTasks,
}

impl Connect for DuplexConnect {
    fn open(&self) -> BoxFuture<'static, std::io::Result<(BoxRead, BoxWrite)>> {
        let (near, (far_read, far_write)) = self.client.duplex();
        let call = serve_call(
            self.service.clone(),
            "local".into(),
            far_read,
            far_write,
            limits(),
        );
        let (call, handle) = futures::future::abortable(call);
        self.tasks.lock().unwrap().push(handle);
        self.server.spawn(call.map(drop).boxed());
        futures::future::ready(Ok(near)).boxed()
    }
}

/// The resident memory of this process, in bytes.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Every triple, for tests that loop over them.
pub const TRIPLES: [(Rt, Rt, Transport); 12] = [
    (Rt::Tokio, Rt::Tokio, Transport::Duplex),
    (Rt::Tokio, Rt::Tokio, Transport::Unix),
    (Rt::Tokio, Rt::Tokio, Transport::Quic),
    (Rt::Smol, Rt::Smol, Transport::Duplex),
    (Rt::Smol, Rt::Smol, Transport::Unix),
    (Rt::Smol, Rt::Smol, Transport::Quic),
    (Rt::Tokio, Rt::Smol, Transport::Duplex),
    (Rt::Tokio, Rt::Smol, Transport::Unix),
    (Rt::Tokio, Rt::Smol, Transport::Quic),
    (Rt::Smol, Rt::Tokio, Transport::Duplex),
    (Rt::Smol, Rt::Tokio, Transport::Unix),
    (Rt::Smol, Rt::Tokio, Transport::Quic),
];

/// Runs `scenario` (which panics on failure) for one triple.
pub fn run<F, Fut>(client_rt: Rt, server_rt: Rt, transport: Transport, scenario: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    client_rt.block_on(async move {
        let h = harness(client_rt, server_rt, transport).await;
        scenario(h).await;
    });
}
