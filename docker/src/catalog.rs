//! The Docker operation catalog: each operation's name, its typed input
//! and its typed output, shared by the server and by clients on any runtime.
//!
//! An input type names its operation through [`Operation`]; the marker
//! traits [`Query`], [`Subscription`] and [`RawOperation`] say which
//! carriages it answers on. Outputs that are Docker's own objects (inspect,
//! list, version, events, stats) are bollard's model types, serialized as
//! the engine writes them; everything dockwire adds (log and exec items,
//! progress, exit codes) is defined here in camelCase.
//!
//! ```
//! use dockwire_docker::catalog::{ExecInput, Operation};
//!
//! let input = ExecInput::new("web", ["echo", "hi"]);
//! assert_eq!(ExecInput::NAME, "container/exec");
//! assert_eq!(
//!     serde_json::to_value(&input).unwrap(),
//!     serde_json::json!({"id": "web", "cmd": ["echo", "hi"]}),
//! );
//! ```

use std::collections::BTreeMap;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use dockwire_core::ErrorCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use bollard::models;

/// A container or image (or network, volume) the engine does not have.
pub const CONTAINER_NOT_FOUND: ErrorCode = ErrorCode::from_static("CONTAINER_NOT_FOUND");
/// An image the engine does not have.
pub const IMAGE_NOT_FOUND: ErrorCode = ErrorCode::from_static("IMAGE_NOT_FOUND");
/// A network the engine does not have.
pub const NETWORK_NOT_FOUND: ErrorCode = ErrorCode::from_static("NETWORK_NOT_FOUND");
/// A volume the engine does not have.
pub const VOLUME_NOT_FOUND: ErrorCode = ErrorCode::from_static("VOLUME_NOT_FOUND");
/// The engine refused because of the object's state (HTTP 409): a name in
/// use, a running container removed without `force`, …
pub const CONFLICT: ErrorCode = ErrorCode::from_static("CONFLICT");
/// An image pull failed (unknown image, unreachable registry).
pub const IMAGE_PULL_FAILED: ErrorCode = ErrorCode::from_static("IMAGE_PULL_FAILED");
/// A build's step failed (the message names it and its exit status), or
/// the context could not be read.
pub const BUILD_FAILED: ErrorCode = ErrorCode::from_static("BUILD_FAILED");
/// Any other failure the engine reported.
pub const DOCKER_ERROR: ErrorCode = ErrorCode::from_static("DOCKER_ERROR");

/// The label every container created through dockwire carries.
pub const LABEL_MANAGED: &str = "dockwire.managed";
/// The label naming the peer that created the container.
pub const LABEL_OWNER: &str = "dockwire.owner";
/// Set on containers a `container/run` with `autoRemove` created: whoever
/// finds one whose call is gone may remove it.
pub const LABEL_AUTO_REMOVE: &str = "dockwire.auto-remove";
/// The label naming the server (its identity's fingerprint) that created
/// the container: a server starting again knows which auto-remove
/// containers were its own, left behind by calls that died with it.
pub const LABEL_SERVER: &str = "dockwire.server";
/// The prefix reserved to dockwire: callers' labels under it are replaced.
pub const LABEL_PREFIX: &str = "dockwire.";

/// The owner of an image a user built or committed.
pub const LABEL_IMAGE_OWNER: &str = "dockwire.image-owner";

/// The seal over [`LABEL_IMAGE_OWNER`] (see `OwnerKey`'s image seal).
pub const LABEL_IMAGE_SEAL: &str = "dockwire.image-seal";

// Lifetimes (see [`crate::lifetime`]), written (empty when none) and
// sealed on every container dockwire creates.
/// A container's time to live from its start, as `90s` or `1h30m`.
pub const LABEL_TTL: &str = "dockwire.ttl";
/// A container's idle timeout, as `90s` or `1h30m`.
pub const LABEL_IDLE_TIMEOUT: &str = "dockwire.idle-timeout";
/// Not on the engine: added to `container/inspect`'s labels, the time
/// (RFC 3339, UTC) at which the server removes the container, if any.
pub const LABEL_EXPIRES: &str = "dockwire.expires";
/// Not on the engine: added to `container/inspect`'s labels with
/// [`LABEL_EXPIRES`], which deadline comes first: `ttl` or `idle-timeout`.
pub const LABEL_EXPIRES_BY: &str = "dockwire.expires-by";

/// An operation of the catalog, named by its input type.
pub trait Operation: Serialize {
    /// The operation's name on the wire.
    const NAME: &'static str;
}

/// Answers exactly one output on the json carriage.
pub trait Query: Operation {
    /// The output.
    type Output: DeserializeOwned;
}

/// Answers a stream of items on the json carriage.
pub trait Subscription: Operation {
    /// One item.
    type Item: DeserializeOwned;
}

/// Opens a session on the raw carriage.
pub trait RawOperation: Operation {}

/// An empty answer: the operation was done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// Which output stream bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamName {
    /// Standard output (and a TTY's output).
    Stdout,
    /// Standard error.
    Stderr,
}

/// Bytes in a json item: text when they are UTF-8, base64 otherwise, so
/// that nothing is lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Data {
    /// The bytes were valid UTF-8.
    Text(String),
    /// The bytes, base64-encoded (standard alphabet, padded).
    Base64(String),
}

impl Data {
    /// Text if `bytes` are UTF-8, base64 otherwise.
    pub fn from_bytes(bytes: &[u8]) -> Data {
        match std::str::from_utf8(bytes) {
            Ok(text) => Data::Text(text.to_owned()),
            Err(_) => Data::Base64(BASE64.encode(bytes)),
        }
    }

    /// The bytes. `None` only for base64 that does not decode.
    pub fn to_bytes(&self) -> Option<Bytes> {
        match self {
            Data::Text(text) => Some(Bytes::copy_from_slice(text.as_bytes())),
            Data::Base64(b64) => BASE64.decode(b64).ok().map(Bytes::from),
        }
    }
}

// ---------------------------------------------------------------- system

/// `system/ping`: is the engine there?
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {}

/// The answer to [`Ping`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pong {
    /// The engine's API version, as negotiated.
    pub api_version: String,
}

/// `system/resources`: what the server's host has and runs, for placing
/// new work (a fleet's `run --place`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {}

/// The answer to [`Resources`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostResources {
    /// The engine's CPUs.
    pub cpus: i64,
    /// The engine's memory, bytes.
    pub memory_total: i64,
    /// Memory available for new containers, bytes: the engine's memory
    /// less what its running containers' limits reserve, and no more than
    /// the server host's `MemAvailable`; `None` where neither is known.
    #[serde(default)]
    pub memory_available: Option<i64>,
    /// What the running containers' memory limits add up to, bytes (a
    /// container without a limit reserves none).
    #[serde(default)]
    pub memory_reserved: i64,
    /// Running containers: all of them for an admin, a `user`'s own for a
    /// user.
    pub containers_running: i64,
    /// The server host's load average over a minute; `None` where it
    /// cannot be read.
    #[serde(default)]
    pub load1: Option<f64>,
    /// The server's labels (`serve --label`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `system/version`: the engine's version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {}

/// `system/info` (admins): the engine's `docker info`: the host's and
/// every peer's counts, storage and runtimes, so no user's business.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Info {}

/// `system/events`: the engine's events, as they happen (or between
/// `since` and `until`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Events {
    /// Unix time or RFC 3339 timestamp to start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Unix time or RFC 3339 timestamp to stop at (the stream then ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Docker's event filters (`type`, `container`, `label`, …).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub filters: HashMap<String, Vec<String>>,
}

// ------------------------------------------------------------ containers

/// `container/list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerList {
    /// Stopped containers too.
    #[serde(default)]
    pub all: bool,
    /// Docker's list filters (`label`, `status`, `name`, …).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub filters: HashMap<String, Vec<String>>,
}

/// A container, by id or name: the input of inspect, start, remove, …
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerRef {
    /// Id (or unique prefix) or name.
    pub id: String,
}

impl ContainerRef {
    /// The container `id`.
    pub fn new(id: impl Into<String>) -> Self {
        ContainerRef { id: id.into() }
    }
}

/// `container/inspect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerInspect(pub ContainerRef);

/// `container/start`. Starting a running container is not an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerStart(pub ContainerRef);

/// `container/stop` and `container/restart`: stop with a grace period,
/// then kill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerStop {
    /// The container.
    pub id: String,
    /// Seconds to wait after the stop signal before killing; the
    /// container's own default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
}

/// `container/restart`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerRestart(pub ContainerStop);

/// `container/kill`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerKill {
    /// The container.
    pub id: String,
    /// Signal name (`KILL`, `TERM`, `SIGHUP`…) or number; `KILL` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// `container/remove`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerRemove {
    /// The container.
    pub id: String,
    /// Kill it first if it runs.
    #[serde(default)]
    pub force: bool,
    /// Remove its anonymous volumes too.
    #[serde(default)]
    pub volumes: bool,
}

/// `container/wait`: answers once the container has exited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerWait(pub ContainerRef);

/// How a process or container ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exited {
    /// Its exit code (128 + N for a process killed by signal N).
    pub exit_code: i64,
}

/// `container/top`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerTop {
    /// The container.
    pub id: String,
    /// `ps` arguments (`-ef` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ps_args: Option<String>,
}

/// `container/stats`: resource usage samples, about one a second; with
/// `stream: false`, one sample and the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerStats {
    /// The container.
    pub id: String,
    /// Keep sampling (the default) or answer once.
    #[serde(default = "yes")]
    pub stream: bool,
}

fn yes() -> bool {
    true
}

/// A bind mount of a host path into a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    /// Host path (or volume name).
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// What to create: the input of `container/create` and `container/run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSpec {
    /// The image.
    pub image: String,
    /// The command; the image's own when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Environment, `KEY=value` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// User (`name`, `uid`, `uid:gid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Bind mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Network mode: `none`, `host`, `bridge`, or a network's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Labels; `dockwire.*` ones are replaced by the server's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Allocate a terminal.
    #[serde(default)]
    pub tty: bool,
    /// Keep stdin open (and, for `run` on the raw carriage, attach it).
    #[serde(default)]
    pub stdin: bool,
    /// The container's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Remove the container once it has exited. For `run`, dockwire
    /// removes it after reading the exit code (and when the call is
    /// cancelled); for `create`, the engine's own auto-remove is set.
    #[serde(default)]
    pub auto_remove: bool,
    /// The OCI runtime (`runc`, `runsc` for gVisor); the engine's default
    /// when absent. Users may choose `runc` or `runsc`, and the server may
    /// put all their containers under one (`serve --user-runtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,

    // Lifetimes (see [`crate::lifetime`]): Go-like durations (`90s`,
    // `5m`, `1h30m`). A `user`'s are subject to the server's default and
    // maximum.
    /// Killed and removed this long after it starts (`--ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Removed after this long with no call naming it (`--idle-timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    // Sandbox limits and hardening (`docker run`'s flags of those names).
    // Sizes are bytes or Docker's units (`64m`, `1g`); see
    // [`crate::units::parse_size`]. A `user`'s are subject to the
    // server's policy (see [`crate::policy`]).
    /// Memory limit (`--memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Memory plus swap (`--memory-swap`); `-1`: unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<String>,
    /// CPUs (`--cpus`, fractions allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Process limit (`--pids-limit`); `0` or `-1`: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Resource limits (`--ulimit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// Size of `/dev/shm` (`--shm-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// Root filesystem read-only (`--read-only`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// tmpfs mounts: path -> mount options (`--tmpfs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tmpfs: BTreeMap<String, String>,
    /// Capabilities added (`--cap-add`); admins only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities dropped (`--cap-drop`); a user's add to the server's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Security options (`--security-opt`): only
    /// `no-new-privileges[:true|false]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Host name (`--hostname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Run an init as pid 1 (`--init`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// The signal that stops the container (`--stop-signal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing it on stop (`--stop-timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Restart policy (`--restart`): `no`, `always`, `unless-stopped`,
    /// `on-failure[:N]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Log options of the `json-file` driver (`--log-opt`): only
    /// `max-size` and `max-file`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_opts: BTreeMap<String, String>,
    /// Ports published on the engine's host (`-p/--publish`): admins'
    /// anywhere; a `user`'s only on 127.0.0.1, when the server allows it
    /// (`serve --user-publish-ports`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Publish>,
}

/// One published port (`-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Publish {
    /// The port inside the container.
    pub container_port: u16,
    /// `tcp` (when absent), `udp` or `sctp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The host address it is bound on: all when absent for an admin,
    /// 127.0.0.1 for a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The host port; the engine picks a free one when absent or 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
}

/// One resource limit (`--ulimit NAME=SOFT[:HARD]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ulimit {
    /// Its name (`nofile`, `nproc`, …).
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

impl ContainerSpec {
    /// A container of `image` running `cmd`.
    pub fn new<I, S>(image: impl Into<String>, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ContainerSpec {
            image: image.into(),
            cmd: cmd.into_iter().map(Into::into).collect(),
            ..ContainerSpec::default()
        }
    }
}

/// `container/create`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerCreate(pub ContainerSpec);

/// A new container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// Its id.
    pub id: String,
    /// The engine's warnings.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `container/update` (docker's `update`): new limits for a container,
/// running or not; what is absent is left as it is. A `user`'s are
/// subject to the server's caps (see [`crate::policy`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerUpdate {
    /// The container.
    pub id: String,
    /// Memory limit: bytes or Docker's units (`64m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Memory plus swap; `-1`: unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<String>,
    /// CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Process limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
}

impl ContainerUpdate {
    /// An update of `id` that changes nothing yet.
    pub fn new(id: impl Into<String>) -> Self {
        ContainerUpdate {
            id: id.into(),
            ..ContainerUpdate::default()
        }
    }
}

/// `container/logs`: one item per log line, ending (with `follow`) when
/// the container exits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerLogs {
    /// The container.
    pub id: String,
    /// Keep streaming new lines until the container exits.
    #[serde(default)]
    pub follow: bool,
    /// Only the last N lines (`all` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u64>,
    /// Only lines since this Unix time (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Only lines before this Unix time (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

impl ContainerLogs {
    /// All logs of `id`, not followed.
    pub fn new(id: impl Into<String>) -> Self {
        ContainerLogs {
            id: id.into(),
            follow: false,
            tail: None,
            since: None,
            until: None,
        }
    }
}

/// One log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogItem {
    /// Where the line was written.
    pub stream: StreamName,
    /// The engine's timestamp of the line (RFC 3339, nanoseconds).
    pub timestamp: String,
    /// The line, with its newline.
    #[serde(flatten)]
    pub data: Data,
}

/// `container/exec`: a command in a running container.
///
/// On the json carriage the items are [`ExecItem`]s: output, then the exit
/// code. On the raw carriage the session carries stdin (when `stdin`),
/// stdout, stderr, resize and signal, and the exit code ends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecInput {
    /// The container.
    pub id: String,
    /// The command.
    pub cmd: Vec<String>,
    /// Extra environment, `KEY=value` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Allocate a terminal (stdout and stderr are then one stream).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Attach stdin (raw carriage only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl ExecInput {
    /// `cmd` in container `id`, no terminal, no stdin.
    pub fn new<I, S>(id: impl Into<String>, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecInput {
            id: id.into(),
            cmd: cmd.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            workdir: None,
            user: None,
            tty: false,
            stdin: false,
        }
    }
}

/// An item of a json-carriage exec or run: output, and last the exit code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExecItem {
    /// The process ended; always the last item.
    Exit {
        /// Its exit code.
        #[serde(rename = "exitCode")]
        exit_code: i64,
        /// Always `true`: marks the item as the last.
        terminal: bool,
    },
    /// Output bytes.
    Output {
        /// stdout or stderr.
        stream: StreamName,
        /// The bytes.
        #[serde(flatten)]
        data: Data,
    },
}

/// `container/attach`: the raw carriage to a container's stdio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachInput {
    /// The container.
    pub id: String,
    /// Attach stdin too (the container must have been created with it).
    #[serde(default = "yes")]
    pub stdin: bool,
}

/// `container/run`: create, attach, start, wait (and remove when
/// `autoRemove`), in one call. On the json carriage the items are
/// [`ExecItem`]s; on the raw carriage, a session whose exit code ends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunInput(pub ContainerSpec);

/// `container/archive-get`: a tar of `path` from the container, as the
/// session's stdout; accepted with the path's [`PathStat`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveGet {
    /// The container.
    pub id: String,
    /// A file or directory in it.
    pub path: String,
}

/// What `archive-get` found at its path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathStat {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go's `os.FileMode` bits (a directory has bit 31 set).
    pub mode: u32,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// Where a symbolic link points.
    #[serde(default)]
    pub link_target: String,
}

/// `container/archive-put`: the session's stdin is a tar, unpacked into
/// the directory `path` of the container once stdin is closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchivePut {
    /// The container.
    pub id: String,
    /// An existing directory in it.
    pub path: String,
}

// ------------------------------------------------------- port forwarding

/// Nothing accepts connections on the forwarded port inside the container
/// (refused), or it cannot be reached there (unreachable, timed out).
pub const PORT_UNREACHABLE: ErrorCode = ErrorCode::from_static("PORT_UNREACHABLE");

/// `container/port-forward`: one TCP connection to `127.0.0.1:port` inside
/// the running container's own network namespace, made by the server
/// before it accepts. The session's stdin is the bytes to the port (its
/// close shuts the connection's write side); its stdout is the bytes from
/// the port, ending at the drained sentinel when the port closes its side,
/// while stdin still flows. Accepted with a [`PortForwarded`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortForward {
    /// The container.
    pub container: String,
    /// A TCP port, 1 to 65535.
    pub port: u16,
}

/// The description a `container/port-forward` session is accepted with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortForwarded {
    /// The container's full id.
    pub container: String,
    /// The port connected to.
    pub port: u16,
}

// ------------------------------------------------------------------ files

/// A path the container does not have (`fs/*`).
pub const PATH_NOT_FOUND: ErrorCode = ErrorCode::from_static("PATH_NOT_FOUND");
/// A path whose parent (or an ancestor) is not a directory, or a list of
/// something else.
pub const NOT_A_DIRECTORY: ErrorCode = ErrorCode::from_static("NOT_A_DIRECTORY");
/// A file operation on a directory (`fs/read`, `fs/write`).
pub const IS_A_DIRECTORY: ErrorCode = ErrorCode::from_static("IS_A_DIRECTORY");
/// The container's file system refuses the operation.
pub const PERMISSION_DENIED: ErrorCode = ErrorCode::from_static("PERMISSION_DENIED");
/// A write to a read-only file system (a `--read-only` container, a
/// read-only mount).
pub const READ_ONLY_FILE_SYSTEM: ErrorCode = ErrorCode::from_static("READ_ONLY_FILE_SYSTEM");
/// The file system is full (or the container's quota is).
pub const NO_SPACE: ErrorCode = ErrorCode::from_static("NO_SPACE");
/// The path exists already (`fs/mkdir` without `parents`).
pub const ALREADY_EXISTS: ErrorCode = ErrorCode::from_static("ALREADY_EXISTS");
/// A directory removed without `recursive` has entries.
pub const DIRECTORY_NOT_EMPTY: ErrorCode = ErrorCode::from_static("DIRECTORY_NOT_EMPTY");
/// The operation cannot be done on this container as it is (a stopped
/// one's `remove` or `rename`, gVisor's own `/tmp`, a kernel file
/// system): the message says why.
pub const NOT_SUPPORTED: ErrorCode = ErrorCode::from_static("NOT_SUPPORTED");

/// `fs/stat`: what is at `path` (a symbolic link itself, not its target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsStat {
    /// The container.
    pub id: String,
    /// An absolute path in it.
    pub path: String,
}

/// `fs/list`: the entries of directory `path`, down to `depth` levels
/// (1, the default: its own entries), symbolic links not followed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsList {
    /// The container.
    pub id: String,
    /// An absolute path of a directory in it.
    pub path: String,
    /// How many levels down; 1 (the default) lists the directory's own
    /// entries. At most [`FS_LIST_MAX_DEPTH`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
}

/// The deepest `fs/list` goes.
pub const FS_LIST_MAX_DEPTH: u32 = 64;

/// The most entries one `fs/list` answers (beyond: `INVALID_INPUT`):
/// the answer is one frame, a few MiB at most.
pub const FS_LIST_MAX_ENTRIES: usize = 10_000;

/// `fs/read`: the bytes of file `path` (symbolic links followed inside
/// the container) as the session's stdout; accepted with its [`FsEntry`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsRead {
    /// The container.
    pub id: String,
    /// An absolute path of a file in it.
    pub path: String,
    /// Where to start, in bytes (0 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// How many bytes at most (to the end by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// `fs/write`: the session's stdin becomes file `path`, once stdin is
/// closed; a reader sees the old file or the whole new one, never part.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsWrite {
    /// The container.
    pub id: String,
    /// An absolute path in it.
    pub path: String,
    /// Permission bits (0o644 for a new file; a replaced file's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Owner (root for a new file; a replaced file's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group (root for a new file; a replaced file's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Make missing parent directories.
    #[serde(default)]
    pub parents: bool,
    /// How many bytes stdin brings: needed where the write goes through
    /// the engine's archive API (a stopped container); elsewhere, checked
    /// when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `fs/mkdir`: makes directory `path`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsMkdir {
    /// The container.
    pub id: String,
    /// An absolute path in it.
    pub path: String,
    /// Permission bits (0o755 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Make missing parents too, and take an existing directory as done.
    #[serde(default)]
    pub parents: bool,
}

/// `fs/remove`: removes `path` (a symbolic link itself, not its target).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsRemove {
    /// The container.
    pub id: String,
    /// An absolute path in it.
    pub path: String,
    /// A directory with everything in it.
    #[serde(default)]
    pub recursive: bool,
}

/// `fs/rename`: moves `from` to `to` in one container, replacing a file
/// at `to`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsRename {
    /// The container.
    pub id: String,
    /// An absolute path in it.
    pub from: String,
    /// An absolute path in it.
    pub to: String,
}

/// What kind of file an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, fifo or socket.
    Other,
}

/// A file's metadata, as `fs/stat` and `fs/list` answer it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsEntry {
    /// Base name (for `fs/list`, the path below the listed directory).
    pub name: String,
    /// Kind.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits, with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Owner; absent where the engine's archive API answered (it does not
    /// say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group; absent as `uid` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// Where a symbolic link points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

// ---------------------------------------------------------------- images

/// `image/list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageList {
    /// Intermediate images too.
    #[serde(default)]
    pub all: bool,
    /// Docker's image filters.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub filters: HashMap<String, Vec<String>>,
}

/// An image by name or id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRef {
    /// Name (`repo:tag`) or id.
    pub image: String,
}

/// `image/inspect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageInspect(pub ImageRef);

/// `image/build` (raw): stdin is the build context, a tar (the engine's
/// classic builder on API 1.41); stdout is the build's output as the
/// engine sends it; a failed step ends the call with [`BUILD_FAILED`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageBuild {
    /// `name[:tag]` given to the image, each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The Dockerfile's path in the context (`Dockerfile` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// `ARG` values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (`--target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Labels of the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Use no cached layer.
    #[serde(default)]
    pub no_cache: bool,
    /// Pull newer base images.
    #[serde(default)]
    pub pull: bool,
    /// Only the image's id as output.
    #[serde(default)]
    pub quiet: bool,
}

/// `image/pull`: progress items until the image is there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagePull {
    /// `repo[:tag]` (the tag defaults to `latest`) or `repo@digest`.
    pub image: String,
}

/// One progress message of a pull, as the engine sends it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullProgress {
    /// The layer it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happens (`Pulling fs layer`, `Downloading`, `Pull complete`…).
    pub status: String,
    /// Bytes done, for downloads and extractions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    /// Bytes in all, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

/// `container/commit`: a new image from a container's changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerCommit {
    /// The container.
    pub id: String,
    /// `name[:tag]` of the new image; none: an untagged image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The commit message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Dockerfile instructions applied to the image (`CMD`, `ENV`,
    /// `LABEL`, `EXPOSE`, `USER`, `WORKDIR`, `ENTRYPOINT`, `VOLUME`,
    /// `ONBUILD`, `STOPSIGNAL`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Pause the container while committing (docker's default, `true`
    /// when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<bool>,
}

/// The new image of a [`ContainerCommit`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    /// Its id (`sha256:…`).
    pub id: String,
}

/// `image/tag`: another name for an image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageTag {
    /// The image, by name or id.
    pub image: String,
    /// The new `name[:tag]` (`latest` when no tag is given).
    pub reference: String,
}

/// `image/push`: progress items until the image is in its registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagePush {
    /// `name[:tag]` (all of the name's tags when no tag is given).
    pub image: String,
}

/// A push failed (unknown image, unreachable or refusing registry).
pub const IMAGE_PUSH_FAILED: ErrorCode = ErrorCode::from_static("IMAGE_PUSH_FAILED");

/// `image/remove`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRemove {
    /// Name or id.
    pub image: String,
    /// Remove even when containers use it.
    #[serde(default)]
    pub force: bool,
}

// -------------------------------------------------------------- networks

/// `network/list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkList {
    /// Docker's network filters.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub filters: HashMap<String, Vec<String>>,
}

/// `network/create`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkCreate {
    /// Its name.
    pub name: String,
    /// Driver (`bridge` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// No outside connectivity.
    #[serde(default)]
    pub internal: bool,
    /// Labels; `dockwire.*` ones are replaced by the server's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The driver's options (admins only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// A new network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkCreated {
    /// Its id.
    pub id: String,
}

/// A container joining or leaving a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkMember {
    /// The network (name or id).
    pub network: String,
    /// The container.
    pub container: String,
    /// Disconnect even if the container is not running well (disconnect only).
    #[serde(default)]
    pub force: bool,
}

/// `network/connect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkConnect(pub NetworkMember);

/// `network/disconnect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkDisconnect(pub NetworkMember);

/// `network/remove`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkRemove {
    /// Name or id.
    pub network: String,
}

// --------------------------------------------------------------- volumes

/// `volume/list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeList {
    /// Docker's volume filters.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub filters: HashMap<String, Vec<String>>,
}

/// `volume/create`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeCreate {
    /// Its name (the server picks one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Driver (`local` when absent; admins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// The driver's options, as `docker volume create -o` (admins only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// Labels; `dockwire.*` ones are replaced by the server's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `volume/inspect`: one volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeInspect {
    /// Its name.
    pub volume: String,
}

/// `volume/remove`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeRemove {
    /// Its name.
    pub volume: String,
    /// Remove even if in use.
    #[serde(default)]
    pub force: bool,
}

/// An image reference split into its repository and its tag: `repo:tag`
/// gives (`repo`, `Some("tag")`), an untagged `repo` gives (`repo`,
/// `None`). A registry's port is not a tag, and a digest reference
/// (`repo@sha256:…`, tagged or not) is given whole with no tag: the
/// engine takes it as it is.
///
/// ```
/// use dockwire_docker::catalog::split_tag;
///
/// assert_eq!(split_tag("busybox"), ("busybox", None));
/// assert_eq!(split_tag("busybox:1"), ("busybox", Some("1")));
/// assert_eq!(
///     split_tag("127.0.0.1:5000/dockwire/testbox:v1"),
///     ("127.0.0.1:5000/dockwire/testbox", Some("v1"))
/// );
/// assert_eq!(split_tag("127.0.0.1:5000/x"), ("127.0.0.1:5000/x", None));
/// assert_eq!(split_tag("x@sha256:ab"), ("x@sha256:ab", None));
/// assert_eq!(split_tag("x:1@sha256:ab"), ("x:1@sha256:ab", None));
/// ```
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    if reference.contains('@') {
        return (reference, None);
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (&reference[..at], Some(&reference[at + 1..]))
        }
        None => (reference, None),
    }
}

// ------------------------------------------------------------- processes

/// `process/start`: a command started detached in a running container.
/// The server answers at once with the process's id, keeps its stdout and
/// stderr in a bounded buffer of its own (each byte at its offset in its
/// stream), and runs it until it ends, is killed or removed, or its
/// container goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessStart {
    /// The container.
    pub container: String,
    /// The command.
    pub cmd: Vec<String>,
    /// Extra environment, `KEY=value` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Allocate a terminal (stdout and stderr are then one stream).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Keep the process's stdin open, for an attacher to write (one at a
    /// time). Without it the process's stdin is empty.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin: bool,
    /// The caller's label for it, shown by `process/list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// How many bytes of output the server keeps (both streams together);
    /// default [`DEFAULT_PROCESS_BUFFER`], at most the operator's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<u64>,
}

impl ProcessStart {
    /// `cmd` in container `container`, with the defaults.
    pub fn new<I, S>(container: impl Into<String>, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProcessStart {
            container: container.into(),
            cmd: cmd.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            workdir: None,
            user: None,
            tty: false,
            stdin: false,
            tag: None,
            buffer: None,
        }
    }
}

/// The output a process keeps when its start asks for no size: 1 MiB.
pub const DEFAULT_PROCESS_BUFFER: u64 = 1024 * 1024;

/// A process the server started: what `process/start` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStarted {
    /// Its id (`p-` and 32 hex digits, made by the server).
    pub id: String,
    /// The tag its start gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `process/list`: the caller's processes (every peer's, for an admin).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessList {}

/// `process/wait`, `process/remove`: one process, by id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessWait {
    /// The process's id.
    pub id: String,
}

/// `process/remove`: forgets a process and its output; a running one is
/// killed first (with everything it started).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessRemove {
    /// The process's id.
    pub id: String,
}

/// `process/signal`: a signal to a running process (`KILL` kills it and
/// everything it started).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessSignal {
    /// The process's id.
    pub id: String,
    /// A signal's name (`TERM`, `SIGTERM`) or number; default `KILL`.
    #[serde(default = "kill_signal")]
    pub signal: String,
}

fn kill_signal() -> String {
    "KILL".into()
}

/// One output stream of a process, as the server holds it: offsets count
/// the stream's bytes from its first (0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamOffsets {
    /// Bytes the process has written to it: the offset of its next byte.
    pub written: u64,
    /// The offset of the oldest byte the server still holds.
    pub oldest: u64,
    /// Bytes dropped from the buffer (`oldest`: always the first ones).
    pub dropped: u64,
}

/// A process's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    /// It runs.
    Running,
    /// It ended, with `exitCode`.
    Exited,
    /// It ended with no exit code to tell: its container was removed (or
    /// the engine lost it); `error` says what is known.
    Lost,
}

/// A process, as `process/list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    /// Its id.
    pub id: String,
    /// The tag its start gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Its container, as the start named it.
    pub container: String,
    /// Its command.
    pub cmd: Vec<String>,
    /// Whether it has a terminal.
    pub tty: bool,
    /// Running, exited or lost.
    pub state: ProcessState,
    /// Its exit code, once exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Why it was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its stdout.
    pub stdout: StreamOffsets,
    /// Its stderr.
    pub stderr: StreamOffsets,
    /// The bytes of output the server keeps for it.
    pub buffer: u64,
    /// When it started (RFC 3339).
    pub started: String,
    /// The stdin bytes it has been given so far (a resuming session's
    /// client trims what it keeps to resend by this).
    #[serde(default)]
    pub stdin_delivered: u64,
    /// Whether it is an interactive session's, kept for a grace period
    /// when its connection is lost.
    #[serde(default, skip_serializing_if = "is_false")]
    pub session: bool,
}

/// `process/logs`: a process's output held by the server from an offset
/// per stream, as json items; with `follow`, then its live output, until
/// it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessLogs {
    /// The process's id.
    pub id: String,
    /// Where to start in stdout; default: its oldest held byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_from: Option<u64>,
    /// Where to start in stderr; default: its oldest held byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_from: Option<u64>,
    /// Keep following the live output until the process ends.
    #[serde(default, skip_serializing_if = "is_false")]
    pub follow: bool,
}

/// An item of `process/logs`: output at its offset, and, when the
/// process has ended, its end last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProcessLogItem {
    /// The process has ended; always the last item when it comes.
    End {
        /// Its exit code; `None` when it was lost.
        #[serde(rename = "exitCode")]
        exit_code: Option<i64>,
        /// Always `true`: marks the item as the last.
        terminal: bool,
    },
    /// Output bytes.
    Output {
        /// stdout or stderr.
        stream: StreamName,
        /// The offset of the first byte in its stream: a gap from the
        /// last item's end is what the buffer had dropped.
        offset: u64,
        /// The bytes.
        #[serde(flatten)]
        data: Data,
    },
}

/// Where an attach starts reading, in each stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttachFrom {
    /// `"oldest"`: the oldest byte the server holds of each stream.
    Oldest(OldestWord),
    /// The same offset in both streams (`0`: from the start).
    Offset(u64),
    /// An offset per stream.
    Streams {
        /// In stdout.
        stdout: u64,
        /// In stderr.
        stderr: u64,
    },
}

/// The word `oldest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OldestWord {
    /// From the oldest held byte.
    Oldest,
}

impl Default for AttachFrom {
    fn default() -> Self {
        AttachFrom::Oldest(OldestWord::Oldest)
    }
}

/// `process/attach`: the raw carriage to a process, running or ended. Its
/// acceptance says where the replay starts in each stream
/// ([`ProcessAttached`]); then come the held bytes from there, the live
/// output, and the exit code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessAttach {
    /// The process's id.
    pub id: String,
    /// Where to start; default: the oldest held bytes.
    #[serde(default)]
    pub from: AttachFrom,
    /// Hold the process's stdin (one attacher at a time; the process must
    /// have been started with `stdin`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin: bool,
}

/// Where an attach's replay starts in one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayStart {
    /// The offset of the first byte the attach sends in this stream.
    pub from: u64,
    /// Bytes asked for that the buffer had already dropped (`from` minus
    /// the offset asked, when that was older than the oldest held).
    pub missed: u64,
}

/// The acceptance of a `process/attach`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessAttached {
    /// The process's id.
    pub id: String,
    /// Whether it has a terminal.
    pub tty: bool,
    /// Whether this attach holds its stdin.
    pub stdin: bool,
    /// Where stdout's replay starts.
    pub stdout: ReplayStart,
    /// Where stderr's replay starts.
    pub stderr: ReplayStart,
    /// How many stdin bytes the process has been given so far, through
    /// every attacher: a client resuming a session resends what it sent
    /// past this, and nothing before it.
    #[serde(default)]
    pub stdin_delivered: u64,
    /// Whether an attacher has closed stdin (not on a terminal).
    #[serde(default)]
    pub stdin_closed: bool,
}

/// The exit code of a process: what `process/wait` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessExited {
    /// Its exit code.
    pub exit_code: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_text_when_utf8_and_base64_otherwise() {
        assert_eq!(Data::from_bytes(b"hi\n"), Data::Text("hi\n".into()));
        let binary = [0u8, 0xff, 0xfe, 1];
        let data = Data::from_bytes(&binary);
        assert_eq!(data, Data::Base64("AP/+AQ==".into()));
        assert_eq!(data.to_bytes().unwrap().as_ref(), &binary);
    }

    #[test]
    fn exec_items_have_the_catalog_shape() {
        let out = ExecItem::Output {
            stream: StreamName::Stderr,
            data: Data::Text("x".into()),
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({"stream": "stderr", "text": "x"})
        );
        let exit = ExecItem::Exit {
            exit_code: 7,
            terminal: true,
        };
        assert_eq!(
            serde_json::to_value(&exit).unwrap(),
            json!({"exitCode": 7, "terminal": true})
        );
        let back: ExecItem =
            serde_json::from_value(json!({"exitCode": 7, "terminal": true})).unwrap();
        assert_eq!(back, exit);
        let back: ExecItem =
            serde_json::from_value(json!({"stream": "stdout", "base64": "AA=="})).unwrap();
        assert_eq!(
            back,
            ExecItem::Output {
                stream: StreamName::Stdout,
                data: Data::Base64("AA==".into())
            }
        );
    }

    #[test]
    fn log_items_split_the_timestamp_out() {
        let item = LogItem {
            stream: StreamName::Stdout,
            timestamp: "2026-11-23T10:00:00.000000001Z".into(),
            data: Data::Text("line1\n".into()),
        };
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({"stream": "stdout", "timestamp": "2026-11-23T10:00:00.000000001Z", "text": "line1\n"})
        );
    }

    #[test]
    fn inputs_reject_unknown_fields() {
        let err = serde_json::from_value::<RunInput>(json!({"image": "x", "autoremove": true}));
        assert!(err.is_err(), "a misspelt field must not be ignored");
        let ok: RunInput =
            serde_json::from_value(json!({"image": "x", "autoRemove": true, "mounts": [{"source": "/a", "target": "/b", "readOnly": true}]}))
                .unwrap();
        assert!(ok.0.auto_remove);
        assert!(ok.0.mounts[0].read_only);
    }
}
