//! The service's settings: who owns what it creates, how exec'd processes
//! are signalled, who may do what, where it keeps its exec journal, where
//! users may pull from and what their containers may not do.

use std::path::PathBuf;

use crate::access::Roles;
use crate::dialect::Dialect;
use crate::ownership::OwnerKey;
use crate::policy::Policy;

/// The capabilities dropped from `user` peers' containers by default:
/// raw sockets (spoofed packets, `ping` floods, ARP tricks on a shared
/// network) and device nodes.
pub const DEFAULT_USER_CAP_DROP: &[&str] = &["NET_RAW", "MKNOD"];

/// How a `signal` control reaches an exec'd process, for which Docker has
/// no API, and how a cancelled exec's processes are killed. Signals to
/// `attach` and `run` go to the container through the engine's API in
/// either case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecSignals {
    /// Host pids where the server shares the engine host's pid namespace,
    /// the engine elsewhere: decided per container before an exec is made
    /// (the container's init pid is a process in this server's `/proc`, in
    /// a pid namespace other than the server's; never for gVisor), the
    /// server then signals the exec's host pid, which `inspect_exec`
    /// reports, directly, or goes through the engine as [`Engine`](Self::Engine) does.
    /// A pid that is not that process here after all is not signalled:
    /// the signal is dropped and logged. The default with a local engine
    /// socket.
    HostPid,
    /// Through the engine: each exec carries a marker in its environment
    /// (`DOCKWIRE_EXEC`), and a second exec in its container signals the
    /// processes carrying it (see the crate's README for the limits). The
    /// default with a remote engine, and for a server in a container with
    /// the engine's socket mounted.
    Engine,
}

/// How much network a `user` peer's containers get (admins' containers
/// are not concerned). In every mode a user's container reaches neither
/// the host nor another peer's containers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserNetwork {
    /// Each user's containers join a bridge network of the user's own
    /// (made on first need), from which the outside is reachable; the host
    /// is fenced off by rules this server installs. The default with a
    /// local engine.
    #[default]
    Isolated,
    /// As `Isolated`, but the user's network is internal: no traffic
    /// leaves it at all.
    Internal,
    /// Users' containers get network mode `none` (a loopback interface
    /// only). The default with a remote engine, whose host this server
    /// cannot put rules on.
    None,
}

impl UserNetwork {
    /// Whether users' containers join networks of their own (whose bridges
    /// this server fences off the host).
    pub fn has_networks(self) -> bool {
        self != UserNetwork::None
    }
}

/// The service's settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The owner written (and sealed) on created containers, volumes and
    /// networks. `None`: the calling peer's name as the transport
    /// identified it.
    pub owner: Option<String>,
    /// How exec'd processes are signalled.
    pub exec_signals: ExecSignals,
    /// Each peer's role; `None`: every peer is an admin.
    pub roles: Option<Roles>,
    /// Whether `user` peers may mount host paths and use host namespaces.
    pub host_access: bool,
    /// This server's identity, written on created containers
    /// (`dockwire.server`) so that [`DockerService::sweep`](crate::DockerService::sweep) finds them after
    /// a crash.
    pub server_id: Option<String>,
    /// Where execs are journalled while their calls run (see
    /// [`Config::with_exec_journal`]); `None`: nowhere.
    pub exec_journal: Option<PathBuf>,
    /// The key that seals what this service creates for its owner (see
    /// [`crate::ownership`]). By default a key of this process only.
    pub owner_key: OwnerKey,
    /// The registries (`HOST` or `HOST:PORT`) `user` peers may pull from,
    /// besides Docker Hub. Default none: Docker Hub only.
    pub allowed_registries: Vec<String>,
    /// The capabilities dropped from `user` peers' containers. Default
    /// [`DEFAULT_USER_CAP_DROP`]; admins' containers keep every
    /// capability Docker gives.
    pub user_cap_drop: Vec<String>,
    /// How much network users' containers get.
    pub user_network: UserNetwork,
    /// The runtime every `user` container runs under, whatever the caller
    /// asks (`runsc`: gVisor); `None`: users choose among
    /// [`USER_RUNTIMES`](crate::runtime::USER_RUNTIMES).
    pub user_runtime: Option<String>,
    /// Each role's resource defaults and caps (see [`crate::policy`]).
    pub policy: Policy,

    // Lifetimes (see [`crate::lifetime`]).
    /// `user` peers' time to live: the default and the maximum. Default:
    /// neither (a user's container lives until removed, unless it asks).
    pub user_ttl: LifetimePolicy,
    /// `user` peers' idle timeout: the default and the maximum. Default:
    /// neither.
    pub user_idle_timeout: LifetimePolicy,
    /// Where the server keeps what enforcing lifetimes needs across its
    /// restart (each timed container's last touch and first start); `None`:
    /// in memory only (a restart then restarts idle clocks).
    pub lifetime_dir: Option<PathBuf>,
    /// The server's own labels (`serve --label`), which `system/resources`
    /// reports for placement constraints.
    pub labels: std::collections::BTreeMap<String, String>,

    // Detached processes (see `process/*` in the crate's README).
    /// The most output a detached process may keep (`process/start`'s
    /// `buffer`). Default [`DEFAULT_PROCESS_BUFFER_MAX`].
    pub process_buffer_max: u64,
    /// The most detached processes one peer may have remembered (running,
    /// or ended and not yet removed). Default [`DEFAULT_MAX_PROCESSES`].
    pub max_processes: usize,
    /// The engine's dialect, as the operator set it (`serve --engine`);
    /// `None`: learned from the engine's `/version` on first need.
    pub engine: Option<Dialect>,

    // Interactive sessions (see "Sessions that survive a dropped link" in
    // the crate's README).
    /// How long an interactive exec whose connection was lost (not
    /// cancelled) is kept for its client to resume; zero keeps none.
    /// Default [`DEFAULT_SESSION_GRACE`].
    pub session_grace: std::time::Duration,
}

/// The default grace period of an interactive exec whose connection was
/// lost: 30 s, time enough to redial after a network change.
pub const DEFAULT_SESSION_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The default cap on a detached process's output buffer: 8 MiB.
pub const DEFAULT_PROCESS_BUFFER_MAX: u64 = 8 * 1024 * 1024;

/// The default cap on one peer's detached processes: with
/// [`DEFAULT_PROCESS_BUFFER_MAX`], 256 MiB of output at most per peer.
pub const DEFAULT_MAX_PROCESSES: usize = 32;

/// The operator's default and maximum of one lifetime (`ttl` or idle
/// timeout) for `user` peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifetimePolicy {
    /// What a container that asks for none gets. With a maximum and no
    /// default, the maximum is the default.
    pub default: Option<std::time::Duration>,
    /// The most a user may ask for: a request above it is refused.
    pub max: Option<std::time::Duration>,
}

impl LifetimePolicy {
    /// A default and a maximum.
    pub fn new(default: Option<std::time::Duration>, max: Option<std::time::Duration>) -> Self {
        LifetimePolicy { default, max }
    }
}

impl Config {
    /// The defaults for an engine reached at `DOCKER_HOST` (or the local
    /// socket): exec signals by host pid when the engine is on a Unix
    /// socket (through the engine otherwise), and
    /// [`UserNetwork::Isolated`] then too; with a remote engine,
    /// [`UserNetwork::None`] (the rules that fence users' networks off the
    /// host can only be put on the engine's host).
    pub fn from_env() -> Self {
        let local = match std::env::var("DOCKER_HOST") {
            Ok(host) => host.is_empty() || host.starts_with("unix://"),
            Err(_) => true,
        };
        Config {
            owner: None,
            exec_signals: if local {
                ExecSignals::HostPid
            } else {
                ExecSignals::Engine
            },
            roles: None,
            host_access: false,
            server_id: None,
            exec_journal: None,
            owner_key: OwnerKey::ephemeral(),
            allowed_registries: Vec::new(),
            user_cap_drop: DEFAULT_USER_CAP_DROP
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            user_network: if local {
                UserNetwork::Isolated
            } else {
                UserNetwork::None
            },
            user_ttl: LifetimePolicy::default(),
            user_idle_timeout: LifetimePolicy::default(),
            lifetime_dir: None,
            policy: Policy::default(),
            user_runtime: None,
            labels: Default::default(),
            process_buffer_max: DEFAULT_PROCESS_BUFFER_MAX,
            max_processes: DEFAULT_MAX_PROCESSES,
            engine: None,
            session_grace: DEFAULT_SESSION_GRACE,
        }
    }

    /// Labels the server (`serve --label KEY=VALUE`): `system/resources`
    /// reports them, and a fleet's placement constrains on them.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets each role's resource defaults and caps.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Lets `user` peers pull from `registry` (`HOST` or `HOST:PORT`, as
    /// image references name it) too. A registry on a loopback, private,
    /// link-local or otherwise special address is refused to users unless it
    /// is allowed by that address (`127.0.0.1:5000`): a host name that
    /// resolves to one is refused.
    pub fn with_allowed_registry(mut self, registry: impl Into<String>) -> Self {
        self.allowed_registries.push(registry.into());
        self
    }

    /// Drops `caps` (names as Docker takes them: `NET_RAW`, `CAP_NET_RAW`,
    /// `ALL`) from `user` peers' containers, instead of
    /// [`DEFAULT_USER_CAP_DROP`].
    pub fn with_user_cap_drop<I, S>(mut self, caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.user_cap_drop = caps.into_iter().map(Into::into).collect();
        self
    }

    /// Labels created containers with this server's identity.
    pub fn with_server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// Journals every exec in `dir` (created when needed, private to the
    /// server's user) while its call runs: a file named by the exec's id,
    /// holding its container (as the call named it), written before the exec starts and
    /// deleted once its call has the exit code or has cleaned up after a
    /// cancellation (and, with [`ExecSignals::Engine`], the exec's marker).
    /// [`DockerService::sweep`](crate::DockerService::sweep) then kills the processes of
    /// execs whose calls died with a crashed server, the way
    /// [`ExecSignals`] says. A record that cannot be written is logged and
    /// the exec goes on.
    pub fn with_exec_journal(mut self, dir: impl Into<PathBuf>) -> Self {
        self.exec_journal = Some(dir.into());
        self
    }

    /// Decides each peer's role with `roles` (see [`crate::access`]):
    /// users then see and act on only their own containers, volumes and
    /// networks.
    pub fn with_roles(mut self, roles: Roles) -> Self {
        self.roles = Some(roles);
        self
    }

    /// Lets `user` peers mount host paths and use the host's network.
    pub fn with_host_access(mut self, allowed: bool) -> Self {
        self.host_access = allowed;
        self
    }

    /// Writes `owner` on created objects instead of the peer's name.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Seals ownership with `key`: a key kept across restarts (and shared
    /// by servers that should share ownership), see [`crate::ownership`].
    pub fn with_owner_key(mut self, key: OwnerKey) -> Self {
        self.owner_key = key;
        self
    }

    /// Sets how much network users' containers get.
    pub fn with_user_network(mut self, mode: UserNetwork) -> Self {
        self.user_network = mode;
        self
    }

    /// Sets `user` peers' default and maximum time to live.
    pub fn with_user_ttl(mut self, policy: LifetimePolicy) -> Self {
        self.user_ttl = policy;
        self
    }

    /// Sets `user` peers' default and maximum idle timeout.
    pub fn with_user_idle_timeout(mut self, policy: LifetimePolicy) -> Self {
        self.user_idle_timeout = policy;
        self
    }

    /// Keeps timed containers' last touches and first starts in `dir`
    /// (created when needed), so that their deadlines hold across a
    /// restart of the server.
    pub fn with_lifetime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lifetime_dir = Some(dir.into());
        self
    }

    /// Sets how exec'd processes are signalled.
    pub fn with_exec_signals(mut self, exec_signals: ExecSignals) -> Self {
        self.exec_signals = exec_signals;
        self
    }

    /// Puts every `user` container under `runtime` (`runsc`: gVisor),
    /// whatever the caller asks; the engine must have it.
    pub fn with_user_runtime(mut self, runtime: impl Into<String>) -> Self {
        self.user_runtime = Some(runtime.into());
        self
    }

    /// Caps each detached process's output buffer at `bytes`.
    pub fn with_process_buffer_max(mut self, bytes: u64) -> Self {
        self.process_buffer_max = bytes;
        self
    }

    /// Caps each peer's detached processes at `count`.
    pub fn with_max_processes(mut self, count: usize) -> Self {
        self.max_processes = count;
        self
    }

    /// Takes the engine for `dialect` without asking it (`serve
    /// --engine`).
    pub fn with_engine(mut self, dialect: Dialect) -> Self {
        self.engine = Some(dialect);
        self
    }

    /// Sets [`session_grace`](Self::session_grace).
    pub fn with_session_grace(mut self, grace: std::time::Duration) -> Self {
        self.session_grace = grace;
        self
    }
}
