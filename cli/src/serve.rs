//! `dockwire serve`: this machine's engine, over QUIC with mutual TLS and
//! over a Unix socket, with access control, limits and a log line per call.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dockwire_core::Limits;
use dockwire_docker::catalog::Version;
use dockwire_docker::{
    Config, DockerClient, DockerService, ExecSignals, LifetimePolicy, Role, Roles, UserNetwork,
};
use dockwire_service::quic::{
    self, Fingerprint, NameLookup, QuicOptions, Standing, TrustCheck, TrustWatch,
    mtls_server_config, peer_by_fingerprint,
};
use dockwire_service::{CallLog, PeerLimit, Runtime, Service};
use dockwire_smol::Smol;
use dockwire_tokio::Tokio;
use futures::FutureExt;

use crate::Global;
use crate::error::{Failure, Outcome};
use crate::state::{Authorized, StateDir, role_name};

/// The QUIC port `serve` listens on and clients dial by default.
pub const DEFAULT_PORT: u16 = 7447;

/// `dockwire serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to serve QUIC on (clients must be trusted: `dockwire trust`)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7447")]
    listen: SocketAddr,
    /// Do not serve QUIC (only --unix)
    #[arg(long, requires = "unix")]
    no_quic: bool,
    /// Also serve on this Unix socket, created mode 0600 (peers are named by
    /// uid; root and this server's user are admins)
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// The async runtime to serve on
    #[arg(long, value_enum, default_value_t = RuntimeName::Tokio)]
    runtime: RuntimeName,
    /// Most calls one QUIC connection may have open at once (more wait)
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_calls_per_connection: u32,
    /// Most calls one peer may have open at once (more are refused with
    /// TOO_MANY_CALLS, retryable)
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_calls_per_peer: usize,
    /// Seconds of silence after which a QUIC connection is closed (its calls
    /// cancelled); 0: never
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    idle_timeout: f64,
    /// Largest JSON frame accepted or sent, in bytes (at most 64 MiB)
    #[arg(long, value_name = "BYTES", default_value_t = dockwire_core::DEFAULT_MAX_FRAME_LEN)]
    max_frame: u32,
    /// Largest stdin chunk accepted, in bytes (at most 64 MiB)
    #[arg(long, value_name = "BYTES", default_value_t = dockwire_core::DEFAULT_MAX_CHUNK_RECV)]
    max_chunk: u32,
    /// Let `user` peers mount host paths and use the host's network
    #[arg(long)]
    allow_host_access: bool,
    /// Let `user` peers pull from this registry too (repeatable; by default
    /// they pull from Docker Hub only). One on a loopback or private
    /// address must be given by that address
    #[arg(long, value_name = "HOST[:PORT]")]
    allow_registry: Vec<String>,
    /// A capability to drop from `user` peers' containers (repeatable;
    /// replaces the default NET_RAW and MKNOD; `none` drops nothing)
    #[arg(long, value_name = "CAP")]
    user_cap_drop: Vec<String>,
    /// How much network `user` peers' containers get: `isolated` (a network
    /// of the user's own, the outside reachable, the host and other peers
    /// not), `internal` (the same without outbound traffic) or `none` (no
    /// network). Default: isolated with a local engine, none with a remote
    /// one (DOCKER_HOST=tcp://...), which cannot have the others
    #[arg(long, value_enum, value_name = "MODE")]
    user_network: Option<UserNetworkName>,
    /// How signals reach exec'd processes (and cancelled execs are killed):
    /// `host-pid` (host pids where this server shares the engine host's pid
    /// namespace, checked per container; the engine elsewhere) or `engine`
    /// (always: a second exec in the container signals the processes
    /// marked DOCKWIRE_EXEC; needs sh, tr, grep and kill in the image).
    /// Default: host-pid with a local engine socket, engine with a remote
    /// one
    #[arg(long, value_enum, value_name = "ROUTE")]
    exec_signals: Option<ExecSignalsName>,
    /// The runtime every `user` peer's container runs under, whatever it
    /// asks (`runsc`: gVisor; the engine must have it). Default: users
    /// choose runc (the engine's default) or runsc
    #[arg(long, value_name = "RUNTIME")]
    user_runtime: Option<String>,
    /// The engine behind DOCKER_HOST: docker or podman. Default: as the
    /// engine's /version says
    #[arg(long, value_name = "ENGINE")]
    engine: Option<dockwire_docker::Dialect>,
    /// Resource defaults and caps of each role
    #[command(flatten)]
    policy: crate::serve_policy::PolicyArgs,
    /// A label of this server (KEY=VALUE), which `system/resources` reports
    /// and a fleet's `run --place --constraint KEY=VALUE` asks for
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,

    // Lifetimes of `user` peers' containers (see dockwire_docker::lifetime).
    /// Time to live a `user` peer's container gets when it asks for none
    /// (`90s`, `5m`, `1h30m`); default: none
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    user_ttl: Option<Duration>,
    /// Longest time to live a `user` peer may ask for (and the default
    /// when --user-ttl is not given); default: no maximum
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    user_ttl_max: Option<Duration>,
    /// Idle timeout a `user` peer's container gets when it asks for none;
    /// default: none
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    user_idle_timeout: Option<Duration>,
    /// Longest idle timeout a `user` peer may ask for (and the default
    /// when --user-idle-timeout is not given); default: no maximum
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    user_idle_timeout_max: Option<Duration>,

    // Detached processes (`exec -d`).
    /// Most output a detached process may keep (`exec -d --buffer`), in
    /// bytes or Docker's units (`8m`)
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "8m")]
    process_buffer_max: u64,
    /// Most detached processes one peer may have (running, or ended and
    /// not removed)
    #[arg(long, value_name = "N", default_value_t = dockwire_docker::DEFAULT_MAX_PROCESSES)]
    max_processes: usize,

    // Interactive sessions (`exec -i`) that survive a dropped link.
    /// How long an interactive exec whose connection was lost (its idle
    /// timeout passed; not a client that aborted or exited) waits for its
    /// client to resume it (`30s`, `5m`; `0` keeps none)
    #[arg(long, value_name = "DURATION", value_parser = grace, default_value = "30s")]
    session_grace: Duration,
}

/// A `--session-grace` value: a Go-like duration, or `0` for none.
fn grace(value: &str) -> Result<Duration, String> {
    match value {
        "0" => Ok(Duration::ZERO),
        _ => dockwire_docker::lifetime::parse_lifetime(value),
    }
}

/// A `--process-buffer-max`-like value: a size of at least one byte.
fn size(value: &str) -> Result<u64, String> {
    match dockwire_docker::units::parse_size(value) {
        Ok(n) if n > 0 => Ok(n.unsigned_abs()),
        _ => Err(format!("{value:?} is not a size (8m, 65536)")),
    }
}

/// A `--user-ttl`-like value: a Go-like duration.
fn lifetime(value: &str) -> Result<Duration, String> {
    dockwire_docker::lifetime::parse_lifetime(value)
}

/// `serve --exec-signals`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecSignalsName {
    /// Signal the exec's host pid (the engine's pid namespace is shared)
    HostPid,
    /// Signal through the engine, by a marker in the exec's environment
    Engine,
}

impl ExecSignalsName {
    fn route(self) -> ExecSignals {
        match self {
            ExecSignalsName::HostPid => ExecSignals::HostPid,
            ExecSignalsName::Engine => ExecSignals::Engine,
        }
    }
}

/// `serve --user-network`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserNetworkName {
    /// A bridge network of the user's own; outbound allowed, host and
    /// other peers blocked
    Isolated,
    /// The same, internal: no outbound traffic
    Internal,
    /// No network (network mode none)
    None,
}

impl UserNetworkName {
    fn mode(self) -> UserNetwork {
        match self {
            UserNetworkName::Isolated => UserNetwork::Isolated,
            UserNetworkName::Internal => UserNetwork::Internal,
            UserNetworkName::None => UserNetwork::None,
        }
    }
}

/// The runtime `serve` runs on.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeName {
    /// tokio
    Tokio,
    /// smol (bollard's connections still run on a small tokio runtime)
    Smol,
}

impl RuntimeName {
    /// The runtime so named; tokio's is the one this is called on.
    fn value(self) -> Box<dyn Runtime> {
        match self {
            RuntimeName::Tokio => Box::new(Tokio::current()),
            RuntimeName::Smol => Box::new(Smol),
        }
    }
}

/// `dockwire serve`: runs until interrupted (INT or TERM).
pub async fn serve(global: &Global, args: ServeArgs) -> Outcome {
    raise_open_file_limit();
    let state = StateDir::open(global.state_dir.as_deref())?;
    let identity = state.identity()?;
    // Held until this server ends (the kernel lets go of it when the
    // process dies, crash included).
    let (held, alone) = hold_state(&state)?;
    let authorized = state.authorized();
    // Parse it now, so that a broken file is a clear error at start.
    authorized.load()?;
    let limits = Limits::default()
        .with_max_frame_len(args.max_frame)
        .and_then(|l| l.with_max_chunk_recv(args.max_chunk))
        .map_err(|e| Failure::local("serve", e))?;
    if !(args.idle_timeout >= 0.0 && args.idle_timeout.is_finite()) {
        return Err(Failure::local(
            "serve",
            "--idle-timeout must be a number of seconds",
        ));
    }
    let options = QuicOptions::default()
        .with_max_calls_per_connection(args.max_calls_per_connection)
        .with_idle_timeout(Duration::from_secs_f64(args.idle_timeout))
        .with_congestion(global.congestion.into());

    let mut config = Config::from_env();
    if let Some(mode) = args.user_network {
        // The rules that fence users' networks off the host can only be
        // put on the engine's host: a remote engine's users get none.
        if mode != UserNetworkName::None && config.user_network == UserNetwork::None {
            return Err(Failure::local(
                "serve",
                "--user-network isolated or internal needs the engine on this host \
                 (DOCKER_HOST names a remote one): use --user-network none",
            ));
        }
        config = config.with_user_network(mode.mode());
    }
    if let Some(route) = args.exec_signals {
        config = config.with_exec_signals(route.route());
    }
    config = config
        .with_roles(roles(authorized.clone()))
        .with_host_access(args.allow_host_access)
        .with_server_id(identity.fingerprint().to_string())
        .with_owner_key(state.owner_key()?)
        // The execs of calls that a crash ends, for the next start's sweep.
        .with_exec_journal(state.path().join(EXEC_JOURNAL));
    for registry in &args.allow_registry {
        if registry.is_empty() || registry.contains(['/', ' ']) {
            return Err(Failure::local(
                "serve",
                format!("--allow-registry takes HOST or HOST:PORT, not {registry:?}"),
            ));
        }
        config = config.with_allowed_registry(registry);
    }
    if !args.user_cap_drop.is_empty() {
        let bad = args
            .user_cap_drop
            .iter()
            .find(|c| c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if let Some(bad) = bad {
            return Err(Failure::local(
                "serve",
                format!(
                    "--user-cap-drop takes a capability name (NET_RAW, CAP_SYS_ADMIN, ALL) or none, not {bad:?}"
                ),
            ));
        }
        let caps = args.user_cap_drop.iter().filter(|c| *c != "none");
        config = config.with_user_cap_drop(caps);
    }
    config = lifetimes(config, &args, &state)?;
    for label in &args.labels {
        match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => config = config.with_label(key, value),
            _ => {
                return Err(Failure::local(
                    format!("serve --label {label}"),
                    "expected KEY=VALUE",
                ));
            }
        }
    }
    let engine_cpus = DockerService::from_env().engine_cpus().await;
    config = config.with_policy(args.policy.policy(engine_cpus)?);
    if let Some(runtime) = &args.user_runtime {
        let name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if runtime.is_empty() || !runtime.bytes().all(name) {
            return Err(Failure::local(
                "serve",
                format!("--user-runtime takes a runtime's name (runsc), not {runtime:?}"),
            ));
        }
        config = config.with_user_runtime(runtime);
    }
    config = config
        .with_process_buffer_max(args.process_buffer_max)
        .with_max_processes(args.max_processes)
        .with_session_grace(args.session_grace);
    if let Some(dialect) = args.engine {
        config = config.with_engine(dialect);
    }
    let docker = DockerService::from_env_with(config);
    if let Some(runtime) = docker.missing_user_runtime().await {
        return Err(Failure::local(
            "serve",
            format!(
                "--user-runtime {runtime}: the engine has no such runtime (scripts/engine \
                 registers runsc with it)"
            ),
        ));
    }
    if let Some(why) = docker.refused_user_runtime().await {
        return Err(Failure::local("serve", format!("--user-runtime: {why}")));
    }

    println!("dockwire serve: fingerprint {}", identity.fingerprint());
    println!("dockwire serve: state in {}", state.path().display());
    report_engine(docker.dialect().await).await;
    // None of this server's calls is alive yet, and no other server with
    // its identity runs: auto-remove containers it made, and execs its
    // journal names, are leftovers of a crash.
    match alone {
        true => match docker.sweep().await {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => tracing::warn!(
                "removed {} auto-remove container(s) left by calls that died with a previous run: {}",
                removed.len(),
                removed.join(" ")
            ),
            Err(e) => tracing::warn!("cannot look for containers left by a previous run: {e}"),
        },
        false => tracing::warn!(
            "another dockwire serve uses {} (this identity): not removing auto-remove \
             containers nor killing journalled execs, which may be its live calls'; a crash's leftovers are removed \
             when a server starts there alone",
            state.path().display()
        ),
    }
    share(&held, &state)?;
    // Containers' ttl and idle timeouts, for as long as this server runs.
    tokio::spawn(docker.lifetimes());

    let service: Arc<dyn Service> = Arc::new(CallLog::new(PeerLimit::new(
        docker,
        args.max_calls_per_peer,
    )));
    let quic = match args.no_quic {
        true => None,
        false => {
            let check: TrustCheck = {
                let authorized = authorized.clone();
                Arc::new(move |f: &Fingerprint| authorized.by_fingerprint(f).is_some())
            };
            let names: NameLookup = {
                let authorized = authorized.clone();
                Arc::new(move |f: &Fingerprint| authorized.by_fingerprint(f).map(|p| p.name.into()))
            };
            let config = mtls_server_config(&identity, check, &options)
                .map_err(|e| Failure::local("set up TLS", e))?;
            let watch = TrustWatch::new(standing(authorized.clone()));
            Some((config, peer_by_fingerprint(names), watch))
        }
    };
    let unix = match &args.unix {
        Some(path) => Some(bind_unix(path)?),
        None => None,
    };
    let listening = Listening {
        quic: quic.as_ref().map(|_| args.listen),
        unix: args.unix.clone(),
    };
    let served = serve_on(
        &*args.runtime.value(),
        service,
        limits,
        quic,
        unix,
        listening,
    )
    .await;
    if let Some(path) = &args.unix {
        let _ = std::fs::remove_file(path);
    }
    drop(held);
    served.map(|()| 0)
}

/// `config` with `args`' lifetimes policy for users, and the records that
/// keep containers' deadlines across a restart in `state`.
fn lifetimes(config: Config, args: &ServeArgs, state: &StateDir) -> Result<Config, Failure> {
    let policy = |default: Option<Duration>, max: Option<Duration>, flag: &str| match (default, max)
    {
        (Some(d), Some(m)) if d > m => Err(Failure::local(
            "serve",
            format!("--{flag} is above --{flag}-max"),
        )),
        _ => Ok(LifetimePolicy::new(default, max)),
    };
    Ok(config
        .with_user_ttl(policy(args.user_ttl, args.user_ttl_max, "user-ttl")?)
        .with_user_idle_timeout(policy(
            args.user_idle_timeout,
            args.user_idle_timeout_max,
            "user-idle-timeout",
        )?)
        .with_lifetime_dir(state.path().join(LIFETIMES)))
}

/// Where timed containers' records are kept, in the state directory.
const LIFETIMES: &str = "lifetimes";

/// The exec journal's directory, in the state directory.
const EXEC_JOURNAL: &str = "execs";

/// The lock file every `serve` holds while it runs, in its state directory.
const SERVE_LOCK: &str = "serve.lock";

/// Takes hold of the state directory's lock: exclusively when no other
/// `serve` on the same state directory (the same identity) runs, which the
/// answer says, shared otherwise. Only a server alone there may take the
/// auto-remove containers of its identity for leftovers of a crash.
fn hold_state(state: &StateDir) -> Result<(std::fs::File, bool), Failure> {
    use rustix::fs::{FlockOperation, flock};
    use std::os::unix::fs::OpenOptionsExt;
    let path = state.path().join(SERVE_LOCK);
    let what = || format!("lock {}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Failure::local(what(), e))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok((file, true)),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            share(&file, state)?;
            Ok((file, false))
        }
        Err(e) => Err(Failure::local(what(), e)),
    }
}

/// Holds the lock shared, so that other servers on the state directory
/// can start (they then leave the sweep alone). Waits while one holds it
/// exclusively: that one is sweeping, at its start.
fn share(file: &std::fs::File, state: &StateDir) -> Result<(), Failure> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockShared).map_err(|e| {
        Failure::local(
            format!("lock {}", state.path().join(SERVE_LOCK).display()),
            e,
        )
    })
}

/// Raises this process's soft limit of open files to its hard limit. Each
/// open exec, attach or followed log stream holds a connection to the
/// engine, and the soft limit many systems start a process with (1024)
/// would stop the server at about a thousand of them, with the hard limit
/// far above. Servers commonly do this (Go's runtime does it for every
/// program).
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else {
        tracing::debug!("the open-file limit is {limit:?}: left as it is");
        return;
    };
    if soft >= hard {
        tracing::debug!("the open-file limit is {soft}, the hard limit");
        return;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!("raised the open-file limit from {soft} to {hard}"),
        Err(e) => tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}"),
    }
}

/// Roles, by the key a call's connection authenticated with: a Unix peer
/// (`uid:N`) is an admin when it is root or this server's user, else a
/// user; a QUIC peer (`sha256:<fingerprint>`) has the role authorized-peers
/// gives its fingerprint now, never the role of its name.
fn roles(authorized: Authorized) -> Roles {
    let own = rustix::process::getuid().as_raw();
    Roles::new(move |key| {
        if let Some(uid) = key.strip_prefix("uid:") {
            let uid: u32 = uid.parse().ok()?;
            return Some(if uid == 0 || uid == own {
                Role::Admin
            } else {
                Role::User
            });
        }
        let fingerprint: Fingerprint = key.strip_prefix("sha256:")?.parse().ok()?;
        authorized.by_fingerprint(&fingerprint).map(|p| p.role)
    })
}

/// A QUIC key's standing: its role in authorized-peers, if it is there.
/// A connection whose key's standing changes is closed.
fn standing(authorized: Authorized) -> Standing {
    Arc::new(move |f: &Fingerprint| {
        authorized
            .by_fingerprint(f)
            .map(|p| Arc::from(role_name(p.role)))
    })
}

/// How often open connections are checked against authorized-peers, for
/// those that make no call (a call is checked when it comes).
const TRUST_RECHECK: Duration = Duration::from_secs(1);

/// Checks `watch`'s connections every [`TRUST_RECHECK`], forever.
async fn recheck_trust(watch: Arc<TrustWatch>) {
    let mut every = tokio::time::interval(TRUST_RECHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let closed = watch.recheck();
        if closed > 0 {
            tracing::warn!(
                "closed {closed} connection(s) whose key is no longer trusted with the role it connected with"
            );
        }
    }
}

/// Says which engine is served, or that it is not up yet (calls then fail
/// `UNAVAILABLE` until it is).
async fn report_engine(dialect: Option<dockwire_docker::Dialect>) {
    let probe = Arc::new(DockerService::from_env());
    let client = DockerClient::new(Tokio::current().duplex_client(probe, Limits::default()));
    let name = match dialect {
        Some(dockwire_docker::Dialect::Podman) => "Podman",
        _ => "Docker",
    };
    match client.query(&Version {}).await {
        Ok(v) => println!(
            "dockwire serve: engine {name} {} (API {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default()
        ),
        Err(e) => {
            tracing::warn!(
                "the Docker engine does not answer yet ({e}); calls fail UNAVAILABLE until it does"
            )
        }
    }
}

/// Where the server listens, to print once it does.
struct Listening {
    quic: Option<SocketAddr>,
    unix: Option<PathBuf>,
}

impl Listening {
    fn print(&self, quic: Option<SocketAddr>) {
        if let Some(addr) = quic.or(self.quic) {
            println!("dockwire serve: listening on quic://{addr}");
        }
        if let Some(path) = &self.unix {
            println!("dockwire serve: listening on unix://{}", path.display());
        }
    }
}

/// A Unix socket at `path`, mode 0600, replacing a stale one (whose server
/// is gone) but never a live one.
fn bind_unix(path: &Path) -> Result<std::os::unix::net::UnixListener, Failure> {
    let what = || format!("listen on {}", path.display());
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(Failure::local(what(), "another server is listening there"));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Failure::local(what(), e)),
    }
    // Made with no access for others from the start, then set exactly.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let listener = std::os::unix::net::UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = listener.map_err(|e| Failure::local(what(), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Failure::local(what(), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Failure::local(what(), e))?;
    Ok(listener)
}

type QuicSetup = Option<(quic::quinn::ServerConfig, quic::PeerName, Arc<TrustWatch>)>;

/// Serves on `runtime` until INT or TERM: QUIC when set up, the Unix socket
/// when given. This process's tokio runtime only waits for the signal and
/// the endpoint's last packets.
async fn serve_on(
    runtime: &dyn Runtime,
    service: Arc<dyn Service>,
    limits: Limits,
    quic: QuicSetup,
    unix: Option<std::os::unix::net::UnixListener>,
    listening: Listening,
) -> Result<(), Failure> {
    let mut endpoint = None;
    if let (Some((config, peer, watch)), Some(addr)) = (quic, listening.quic) {
        let e = runtime
            .quic_endpoint(addr, Some(config))
            .map_err(|e| Failure::local(format!("listen on {addr}"), e))?;
        let serve = quic::serve_quic_watched(
            e.clone(),
            service.clone(),
            runtime.spawner(),
            limits,
            peer,
            watch.clone(),
        );
        runtime.spawn(serve.boxed());
        // On this process's tokio runtime: it only reads a file.
        tokio::spawn(recheck_trust(watch));
        endpoint = Some(e);
    }
    if let Some(listener) = unix {
        let listener = runtime
            .listen_unix(listener)
            .map_err(|e| Failure::local("listen on the Unix socket", e))?;
        let serve = runtime.serve(listener, service, limits);
        runtime.spawn(
            async move {
                let e = serve.await;
                tracing::error!("the Unix socket stopped accepting: {e}");
            }
            .boxed(),
        );
    }
    listening.print(endpoint.as_ref().and_then(|e| e.local_addr().ok()));
    let signal = until_stopped().await;
    tracing::info!("stopping on {signal}");
    if let Some(endpoint) = endpoint {
        endpoint.close(0u32.into(), b"the server is stopping");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    }
    Ok(())
}

/// Resolves on INT or TERM: the name of the one that came.
async fn until_stopped() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "INT",
        _ = term.recv() => "TERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_peers_are_admins_when_root_or_the_servers_own_user() {
        let dir = std::env::temp_dir().join(format!("dockwire-roles-{}", std::process::id()));
        let state = StateDir::open(Some(&dir)).unwrap();
        let roles = roles(state.authorized());
        let own = rustix::process::getuid().as_raw();
        assert_eq!(roles.role("uid:0"), Some(Role::Admin));
        assert_eq!(roles.role(&format!("uid:{own}")), Some(Role::Admin));
        let other = if own == 4242 { 4243 } else { 4242 };
        assert_eq!(roles.role(&format!("uid:{other}")), Some(Role::User));
        assert_eq!(roles.role("uid:unknown"), None);
        assert_eq!(roles.role("alice"), None);
        assert_eq!(roles.role("sha256:nothex"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
