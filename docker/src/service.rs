//! The bollard-backed [`Service`]: every operation of the catalog.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_compat::Compat;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, Mount as EngineMount, MountType,
};
use bollard::query_parameters as q;
use dockwire_core::{CallError, Carriage, ErrorCode, Request};
use dockwire_service::{CallContext, RawIo, Reply, Service};
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::access::{Caller, Role, Roles, admin_only, forbidden};
use crate::catalog::*;
use crate::error::{self, Subject, engine_error, invalid_input};
use crate::journal;
use crate::session;

/// How a `signal` control reaches an exec'd process, for which Docker has
/// no API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecSignals {
    /// The server shares the engine's host (and pid namespace): it signals
    /// the exec's host pid, which `inspect_exec` reports, directly. Also
    /// how a cancelled exec's process is killed.
    HostPid,
    /// The engine is elsewhere: signals to an exec are dropped (logged by
    /// nobody, answered by nothing), and a cancelled exec only loses its
    /// stdio. Signals to `attach` and `run` still work: they go to the
    /// container through the engine's API.
    Unsupported,
}

/// The service's settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The owner written on created containers. `None`: the calling peer's
    /// name as the transport identified it.
    pub owner: Option<String>,
    /// How exec'd processes are signalled.
    pub exec_signals: ExecSignals,
    /// Each peer's role; `None`: every peer is an admin.
    pub roles: Option<Roles>,
    /// Whether `user` peers may mount host paths and use host namespaces.
    pub host_access: bool,
    /// This server's identity, written on created containers
    /// (`dockwire.server`) so that [`DockerService::sweep`] finds them after
    /// a crash.
    pub server_id: Option<String>,
    /// Where execs are journalled while their calls run (see
    /// [`Config::with_exec_journal`]); `None`: nowhere.
    pub exec_journal: Option<PathBuf>,
}

impl Config {
    /// The defaults for an engine reached at `DOCKER_HOST` (or the local
    /// socket): host pids when the engine is on a Unix socket.
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
                ExecSignals::Unsupported
            },
            roles: None,
            host_access: false,
            server_id: None,
            exec_journal: None,
        }
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
    /// cancellation. [`DockerService::sweep`] then kills the processes of
    /// execs whose calls died with a crashed server (with
    /// [`ExecSignals::HostPid`]; a remote engine's are only logged). A
    /// record that cannot be written is logged and the exec goes on.
    pub fn with_exec_journal(mut self, dir: impl Into<PathBuf>) -> Self {
        self.exec_journal = Some(dir.into());
        self
    }

    /// Decides each peer's role with `roles` (see [`crate::access`]):
    /// users then see and act on only their own containers.
    pub fn with_roles(mut self, roles: Roles) -> Self {
        self.roles = Some(roles);
        self
    }

    /// Lets `user` peers mount host paths and use the host's network.
    pub fn with_host_access(mut self, allowed: bool) -> Self {
        self.host_access = allowed;
        self
    }

    /// Writes `owner` on created containers instead of the peer's name.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Sets how exec'd processes are signalled.
    pub fn with_exec_signals(mut self, exec_signals: ExecSignals) -> Self {
        self.exec_signals = exec_signals;
        self
    }
}

/// Serves the Docker operation catalog with a bollard client.
///
/// Runs on any executor: every reply is wrapped in `async_compat::Compat`,
/// which polls it inside the current tokio runtime when there is one and
/// otherwise inside a tokio runtime of its own, on its own thread, where
/// bollard's connection tasks then run.
#[derive(Clone)]
pub struct DockerService {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    connect: Box<dyn Fn() -> Result<Docker, bollard::errors::Error> + Send + Sync>,
    /// The client once made, and whether its version has been negotiated.
    docker: Mutex<Option<(Docker, bool)>>,
    pub(crate) config: Config,
}

impl DockerService {
    /// A service over `docker`, whose API version is negotiated on the
    /// first call (and again on later ones until that succeeds, so that a
    /// server started before its engine works once the engine is up).
    pub fn new(docker: Docker, config: Config) -> Self {
        DockerService::connecting(move || Ok(docker.clone()), config)
    }

    /// A service for the engine at `DOCKER_HOST`, or the local socket. The
    /// engine need not be up yet: until it is, calls fail `UNAVAILABLE`.
    pub fn from_env() -> Self {
        DockerService::connecting(Docker::connect_with_local_defaults, Config::from_env())
    }

    /// [`from_env`](Self::from_env) with `config` (see
    /// [`Config::from_env`] for the defaults it should start from).
    pub fn from_env_with(config: Config) -> Self {
        DockerService::connecting(Docker::connect_with_local_defaults, config)
    }

    /// A service for the engine listening on the Unix socket at `path`
    /// (which need not exist yet).
    pub fn unix(path: impl Into<String>, config: Config) -> Self {
        let path = path.into();
        DockerService::connecting(
            move || Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION),
            config,
        )
    }

    /// Waits until the cleanups of cancelled calls (killing an exec,
    /// removing a `run`'s container) have finished, for `limit` at most:
    /// whether they all did. A process that serves in-process calls and is
    /// about to exit waits here, or the engine keeps what those calls made.
    /// Counts the cleanups of every service in this process.
    pub async fn settle(&self, limit: std::time::Duration) -> bool {
        Compat::new(session::settle(limit)).await
    }

    /// Cleans up after calls that died with a crashed process: kills the
    /// processes of the execs its journal ([`Config::with_exec_journal`])
    /// still names, and removes the auto-remove containers this server (its
    /// [`Config::with_server_id`]) created and left behind: those of `run`
    /// calls. Call it when the server starts, before serving, when none of
    /// its calls can be alive. The container ids removed; none without a
    /// server id. Each exec killed is logged.
    pub async fn sweep(&self) -> Result<Vec<String>, CallError> {
        let inner = self.inner.clone();
        Compat::new(async move {
            if let Some(dir) = &inner.config.exec_journal {
                let docker = inner.docker().await?;
                match journal::sweep(&docker, dir, inner.config.exec_signals).await {
                    Ok(killed) => {
                        for exec in killed {
                            tracing::warn!(
                                exec = %exec,
                                "killed the process of an exec whose call died with a previous run"
                            );
                        }
                    }
                    Err(e) => tracing::warn!("cannot read the exec journal {}: {e}", dir.display()),
                }
            }
            let Some(id) = inner.config.server_id.clone() else {
                return Ok(Vec::new());
            };
            let docker = inner.docker().await?;
            let filters = HashMap::from([(
                "label".to_owned(),
                vec![
                    format!("{LABEL_SERVER}={id}"),
                    format!("{LABEL_AUTO_REMOVE}=true"),
                ],
            )]);
            let options = q::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            };
            let left = docker
                .list_containers(Some(options))
                .await
                .map_err(error::container)?;
            let mut removed = Vec::new();
            for container in left {
                let Some(cid) = container.id else { continue };
                let options = q::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                match docker.remove_container(&cid, Some(options)).await {
                    Ok(()) => removed.push(cid),
                    Err(e) => tracing::warn!("cannot remove {cid} left by a crash: {e}"),
                }
            }
            Ok(removed)
        })
        .await
    }

    /// A service that makes its client with `connect` on its first call,
    /// and again on each later call until that succeeds.
    fn connecting(
        connect: impl Fn() -> Result<Docker, bollard::errors::Error> + Send + Sync + 'static,
        config: Config,
    ) -> Self {
        DockerService {
            inner: Arc::new(Inner {
                connect: Box::new(connect),
                docker: Mutex::new(None),
                config,
            }),
        }
    }
}

impl Inner {
    /// The client, with its API version negotiated if the engine answers.
    pub(crate) async fn docker(&self) -> Result<Docker, CallError> {
        let made = self
            .docker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let docker = match made {
            Some((docker, true)) => return Ok(docker),
            Some((docker, false)) => docker,
            None => (self.connect)().map_err(|e| engine_error(Subject::Engine, e))?,
        };
        let (docker, negotiated) = match docker.clone().negotiate_version().await {
            Ok(negotiated) => (negotiated, true),
            // The call itself fails with the engine's error, or works if
            // the engine answers by then.
            Err(_) => (docker, false),
        };
        *self.docker.lock().unwrap_or_else(|p| p.into_inner()) = Some((docker.clone(), negotiated));
        Ok(docker)
    }

    /// Who `ctx`'s peer is to access control; `None` if it has no role.
    pub(crate) fn caller(&self, ctx: &CallContext) -> Option<Caller> {
        let role = match &self.config.roles {
            None => Role::Admin,
            Some(roles) => roles.role(&ctx.peer)?,
        };
        let owner = self.config.owner.as_deref().unwrap_or(&ctx.peer);
        Some(Caller {
            owner: owner.to_owned(),
            role,
            host_access: self.config.host_access,
        })
    }

    /// The client and the id of the container `id` names, once `caller` may
    /// act on it. An admin's id is passed on as given, with no extra round
    /// trip; a user's is checked and resolved to the full id, so that a
    /// name reused in between cannot redirect the call.
    pub(crate) async fn container(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Docker, String), CallError> {
        if caller.is_admin() {
            return Ok((self.docker().await?, id.to_owned()));
        }
        let (docker, info) = self.inspect_owned(caller, id).await?;
        let id = info.id.unwrap_or_else(|| id.to_owned());
        Ok((docker, id))
    }

    /// The client and container `id`'s inspection, once `caller` may act
    /// on it.
    pub(crate) async fn inspect_owned(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Docker, ContainerInspectResponse), CallError> {
        let docker = self.docker().await?;
        let info = docker
            .inspect_container(id, None)
            .await
            .map_err(error::container)?;
        caller.check_owner(&info)?;
        Ok((docker, info))
    }

    /// The labels a created container gets: the caller's, minus any
    /// `dockwire.*`, plus dockwire's own; `auto_remove`: dockwire removes
    /// it when its call ends (`dockwire.auto-remove`, swept after a crash).
    pub(crate) fn labels(
        &self,
        caller: &Caller,
        asked: &BTreeMap<String, String>,
        auto_remove: bool,
    ) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = asked
            .iter()
            .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(LABEL_MANAGED.into(), "true".into());
        labels.insert(LABEL_OWNER.into(), caller.owner.clone());
        if auto_remove {
            labels.insert(LABEL_AUTO_REMOVE.into(), "true".into());
        }
        if let Some(id) = &self.config.server_id {
            labels.insert(LABEL_SERVER.into(), id.clone());
        }
        labels
    }

    /// The engine's create body for `spec`. `engine_auto_remove` asks the
    /// engine itself to remove the container when it exits.
    pub(crate) fn create_body(
        &self,
        caller: &Caller,
        spec: &ContainerSpec,
        engine_auto_remove: bool,
    ) -> Result<ContainerCreateBody, CallError> {
        if spec.image.is_empty() {
            return Err(invalid_input("`image` is empty"));
        }
        caller.check_spec(spec)?;
        let mounts = spec
            .mounts
            .iter()
            .map(|m| {
                if m.source.is_empty() || !m.target.starts_with('/') {
                    return Err(invalid_input(format!(
                        "a mount needs a source and an absolute target, got {:?} -> {:?}",
                        m.source, m.target
                    )));
                }
                Ok(EngineMount {
                    source: Some(m.source.clone()),
                    target: Some(m.target.clone()),
                    read_only: Some(m.read_only),
                    typ: Some(if m.source.starts_with('/') {
                        MountType::BIND
                    } else {
                        MountType::VOLUME
                    }),
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
            entrypoint: spec.entrypoint.clone(),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            working_dir: spec.workdir.clone(),
            user: spec.user.clone(),
            // Only a container dockwire removes itself, when its `run` call
            // ends, is marked for the sweep after a crash. One the engine
            // removes (a `create` with autoRemove, as `docker run -d --rm`)
            // outlives its call by design: a restarted server must not
            // take it.
            labels: Some(self.labels(
                caller,
                &spec.labels,
                spec.auto_remove && !engine_auto_remove,
            )),
            tty: Some(spec.tty),
            open_stdin: Some(spec.stdin),
            stdin_once: Some(spec.stdin),
            attach_stdin: Some(spec.stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                mounts: (!mounts.is_empty()).then_some(mounts),
                network_mode: spec.network.clone(),
                auto_remove: Some(engine_auto_remove),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

impl Service for DockerService {
    fn call(&self, ctx: CallContext, request: Request) -> Reply {
        let inner = self.inner.clone();
        let Some(caller) = inner.caller(&ctx) else {
            return Reply::Refuse(forbidden(format!(
                "peer {} is not authorized on this server",
                ctx.peer
            )));
        };
        if !caller.is_admin() && admin_only(&request.operation) {
            return Reply::Refuse(forbidden(format!("{} needs an admin", request.operation)));
        }
        let input = request.input;
        match (request.operation.as_str(), request.carriage) {
            (Ping::NAME, Carriage::Json) => query(input, move |_: Ping| async move {
                let docker = inner.docker().await?;
                docker
                    .ping()
                    .await
                    .map_err(|e| engine_error(Subject::Engine, e))?;
                Ok(Pong {
                    api_version: docker.client_version().to_string(),
                })
            }),
            (Version::NAME, Carriage::Json) => query(input, move |_: Version| async move {
                let docker = inner.docker().await?;
                docker
                    .version()
                    .await
                    .map_err(|e| engine_error(Subject::Engine, e))
            }),
            (Events::NAME, Carriage::Json) => subscription(input, move |mut i: Events| {
                if !caller.is_admin() {
                    caller.own_containers(&mut i.filters);
                    i.filters.insert("type".into(), vec!["container".into()]);
                }
                engine_stream(inner, move |docker| {
                    let options = q::EventsOptions {
                        since: i.since,
                        until: i.until,
                        filters: (!i.filters.is_empty()).then_some(i.filters),
                    };
                    docker
                        .events(Some(options))
                        .map_err(|e| engine_error(Subject::Engine, e))
                })
            }),
            (ContainerList::NAME, Carriage::Json) => {
                query(input, move |mut i: ContainerList| async move {
                    caller.own_containers(&mut i.filters);
                    let options = q::ListContainersOptions {
                        all: i.all,
                        filters: (!i.filters.is_empty()).then_some(i.filters),
                        ..Default::default()
                    };
                    let docker = inner.docker().await?;
                    docker
                        .list_containers(Some(options))
                        .await
                        .map_err(error::container)
                })
            }
            (ContainerInspect::NAME, Carriage::Json) => {
                query(input, move |ContainerInspect(i)| async move {
                    Ok(inner.inspect_owned(&caller, &i.id).await?.1)
                })
            }
            (ContainerCreate::NAME, Carriage::Json) => {
                query(input, move |ContainerCreate(spec)| async move {
                    let body = inner.create_body(&caller, &spec, spec.auto_remove)?;
                    let options = q::CreateContainerOptions {
                        name: spec.name.clone(),
                        ..Default::default()
                    };
                    let docker = inner.docker().await?;
                    let created = docker
                        .create_container(Some(options), body)
                        .await
                        .map_err(error::container)?;
                    Ok(Created {
                        id: created.id,
                        warnings: created.warnings,
                    })
                })
            }
            (ContainerStart::NAME, Carriage::Json) => {
                query(input, move |ContainerStart(i)| async move {
                    let (docker, id) = inner.container(&caller, &i.id).await?;
                    not_modified_is_done(docker.start_container(&id, None).await)
                })
            }
            (ContainerStop::NAME, Carriage::Json) => {
                query(input, move |i: ContainerStop| async move {
                    let (docker, id) = inner.container(&caller, &i.id).await?;
                    let options = q::StopContainerOptions {
                        t: i.timeout,
                        signal: None,
                    };
                    not_modified_is_done(docker.stop_container(&id, Some(options)).await)
                })
            }
            (ContainerRestart::NAME, Carriage::Json) => {
                query(input, move |ContainerRestart(i)| async move {
                    let (docker, id) = inner.container(&caller, &i.id).await?;
                    let options = q::RestartContainerOptions {
                        t: i.timeout,
                        signal: None,
                    };
                    not_modified_is_done(docker.restart_container(&id, Some(options)).await)
                })
            }
            (ContainerKill::NAME, Carriage::Json) => {
                query(input, move |i: ContainerKill| async move {
                    let (docker, id) = inner.container(&caller, &i.id).await?;
                    let options = q::KillContainerOptions {
                        signal: i.signal.unwrap_or_else(|| "KILL".into()),
                    };
                    docker
                        .kill_container(&id, Some(options))
                        .await
                        .map_err(error::container)?;
                    Ok(Done {})
                })
            }
            (ContainerRemove::NAME, Carriage::Json) => {
                query(input, move |i: ContainerRemove| async move {
                    let (docker, id) = inner.container(&caller, &i.id).await?;
                    let options = q::RemoveContainerOptions {
                        force: i.force,
                        v: i.volumes,
                        link: false,
                    };
                    docker
                        .remove_container(&id, Some(options))
                        .await
                        .map_err(error::container)?;
                    Ok(Done {})
                })
            }
            (ContainerWait::NAME, Carriage::Json) => {
                query(input, move |ContainerWait(i)| async move {
                    let (docker, id) = inner.container(&caller, &i.id).await?;
                    let exit_code = session::wait_exit(&docker, &id).await?;
                    Ok(Exited { exit_code })
                })
            }
            (ContainerTop::NAME, Carriage::Json) => {
                query(input, move |i: ContainerTop| async move {
                    let (docker, id) = inner.container(&caller, &i.id).await?;
                    let options = q::TopOptions {
                        ps_args: i.ps_args.unwrap_or_else(|| "-ef".into()),
                    };
                    docker
                        .top_processes(&id, Some(options))
                        .await
                        .map_err(error::container)
                })
            }
            (ContainerStats::NAME, Carriage::Json) => {
                subscription(input, move |i: ContainerStats| {
                    container_stream(inner, caller, i.id.clone(), move |docker, id| {
                        let options = q::StatsOptions {
                            stream: i.stream,
                            one_shot: false,
                        };
                        docker.stats(&id, Some(options)).map_err(error::container)
                    })
                })
            }
            (ContainerLogs::NAME, Carriage::Json) => {
                subscription(input, move |i: ContainerLogs| {
                    container_stream(inner, caller, i.id.clone(), move |docker, id| {
                        logs(&docker, ContainerLogs { id, ..i })
                    })
                })
            }
            (ExecInput::NAME, Carriage::Json) => subscription(input, move |i: ExecInput| {
                session::exec_json(inner, caller, i)
            }),
            (ExecInput::NAME, Carriage::Raw) => raw(input, move |i: ExecInput, io| {
                session::exec_raw(inner, caller, i, io)
            }),
            (AttachInput::NAME, Carriage::Raw) => raw(input, move |i: AttachInput, io| {
                session::attach(inner, caller, i, io)
            }),
            (RunInput::NAME, Carriage::Json) => subscription(input, move |RunInput(spec)| {
                session::run_json(inner, caller, spec)
            }),
            (RunInput::NAME, Carriage::Raw) => raw(input, move |RunInput(spec), io| {
                session::run_raw(inner, caller, spec, io)
            }),
            (ArchiveGet::NAME, Carriage::Raw) => raw(input, move |i: ArchiveGet, io| {
                session::archive_get(inner, caller, i, io)
            }),
            (ArchivePut::NAME, Carriage::Raw) => raw(input, move |i: ArchivePut, io| {
                session::archive_put(inner, caller, i, io)
            }),
            (ImageList::NAME, Carriage::Json) => query(input, move |i: ImageList| async move {
                let docker = inner.docker().await?;
                let options = q::ListImagesOptions {
                    all: i.all,
                    filters: (!i.filters.is_empty()).then_some(i.filters),
                    ..Default::default()
                };
                docker
                    .list_images(Some(options))
                    .await
                    .map_err(|e| engine_error(Subject::Image, e))
            }),
            (ImageInspect::NAME, Carriage::Json) => {
                query(input, move |ImageInspect(i)| async move {
                    let docker = inner.docker().await?;
                    docker
                        .inspect_image(&i.image)
                        .await
                        .map_err(|e| engine_error(Subject::Image, e))
                })
            }
            (ImagePull::NAME, Carriage::Json) => subscription(input, move |i: ImagePull| {
                engine_stream(inner, move |docker| pull(&docker, i))
            }),
            (ImageRemove::NAME, Carriage::Json) => query(input, move |i: ImageRemove| async move {
                let docker = inner.docker().await?;
                let options = q::RemoveImageOptions {
                    force: i.force,
                    ..Default::default()
                };
                docker
                    .remove_image(&i.image, Some(options), None)
                    .await
                    .map_err(|e| engine_error(Subject::Image, e))
            }),
            (NetworkList::NAME, Carriage::Json) => query(input, move |i: NetworkList| async move {
                let docker = inner.docker().await?;
                let options = q::ListNetworksOptions {
                    filters: (!i.filters.is_empty()).then_some(i.filters),
                };
                docker
                    .list_networks(Some(options))
                    .await
                    .map_err(|e| engine_error(Subject::Network, e))
            }),
            (NetworkCreate::NAME, Carriage::Json) => {
                query(input, move |i: NetworkCreate| async move {
                    let docker = inner.docker().await?;
                    let request = bollard::models::NetworkCreateRequest {
                        name: i.name,
                        driver: i.driver,
                        internal: Some(i.internal),
                        labels: Some(i.labels.into_iter().collect()),
                        ..Default::default()
                    };
                    let created = docker
                        .create_network(request)
                        .await
                        .map_err(|e| engine_error(Subject::Network, e))?;
                    Ok(NetworkCreated { id: created.id })
                })
            }
            (NetworkConnect::NAME, Carriage::Json) => {
                query(input, move |NetworkConnect(i)| async move {
                    let docker = inner.docker().await?;
                    let request = bollard::models::NetworkConnectRequest {
                        container: i.container,
                        ..Default::default()
                    };
                    docker
                        .connect_network(&i.network, request)
                        .await
                        .map_err(|e| engine_error(Subject::Network, e))?;
                    Ok(Done {})
                })
            }
            (NetworkDisconnect::NAME, Carriage::Json) => {
                query(input, move |NetworkDisconnect(i)| async move {
                    let docker = inner.docker().await?;
                    let request = bollard::models::NetworkDisconnectRequest {
                        container: i.container,
                        force: Some(i.force),
                    };
                    docker
                        .disconnect_network(&i.network, request)
                        .await
                        .map_err(|e| engine_error(Subject::Network, e))?;
                    Ok(Done {})
                })
            }
            (NetworkRemove::NAME, Carriage::Json) => {
                query(input, move |i: NetworkRemove| async move {
                    let docker = inner.docker().await?;
                    docker
                        .remove_network(&i.network)
                        .await
                        .map_err(|e| engine_error(Subject::Network, e))?;
                    Ok(Done {})
                })
            }
            (VolumeList::NAME, Carriage::Json) => query(input, move |i: VolumeList| async move {
                let docker = inner.docker().await?;
                let options = q::ListVolumesOptions {
                    filters: (!i.filters.is_empty()).then_some(i.filters),
                };
                docker
                    .list_volumes(Some(options))
                    .await
                    .map_err(|e| engine_error(Subject::Volume, e))
            }),
            (VolumeCreate::NAME, Carriage::Json) => {
                query(input, move |i: VolumeCreate| async move {
                    let docker = inner.docker().await?;
                    let request = bollard::models::VolumeCreateRequest {
                        name: i.name,
                        driver: i.driver,
                        labels: Some(i.labels.into_iter().collect()),
                        ..Default::default()
                    };
                    docker
                        .create_volume(request)
                        .await
                        .map_err(|e| engine_error(Subject::Volume, e))
                })
            }
            (VolumeRemove::NAME, Carriage::Json) => {
                query(input, move |i: VolumeRemove| async move {
                    let docker = inner.docker().await?;
                    let options = q::RemoveVolumeOptions { force: i.force };
                    docker
                        .remove_volume(&i.volume, Some(options))
                        .await
                        .map_err(|e| engine_error(Subject::Volume, e))?;
                    Ok(Done {})
                })
            }
            (operation, carriage) if OPERATIONS.contains(&operation) => {
                Reply::Refuse(invalid_input(format!(
                    "operation {operation:?} does not use the {carriage:?} carriage"
                )))
            }
            (operation, _) => Reply::Refuse(CallError::new(
                ErrorCode::NOT_FOUND,
                format!("unknown operation {operation:?}"),
            )),
        }
    }
}

/// Start and stop of a container already in that state answer 304: done.
fn not_modified_is_done(result: Result<(), bollard::errors::Error>) -> Result<Done, CallError> {
    match result {
        Ok(()) => Ok(Done {}),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(Done {}),
        Err(e) => Err(error::container(e)),
    }
}

/// Parses the input, or refuses the call with `INVALID_INPUT`.
fn parse<I: DeserializeOwned>(input: Value) -> Result<I, CallError> {
    serde_json::from_value(input).map_err(|e| invalid_input(format!("invalid input: {e}")))
}

fn to_value(output: impl Serialize) -> Result<Value, CallError> {
    serde_json::to_value(output).map_err(|e| {
        CallError::new(
            ErrorCode::INTERNAL,
            format!("cannot encode the output: {e}"),
        )
    })
}

/// A json operation answering once.
fn query<I, O, F, Fut>(input: Value, handler: F) -> Reply
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I) -> Fut,
    Fut: Future<Output = Result<O, CallError>> + Send + 'static,
{
    let input = match parse(input) {
        Ok(input) => input,
        Err(e) => return Reply::Refuse(e),
    };
    let answer = handler(input);
    let output = stream::once(async move { to_value(answer.await?) });
    Reply::Json(InRuntime::new(output).boxed())
}

/// A json operation answering a stream of items.
fn subscription<I, T, F, S>(input: Value, handler: F) -> Reply
where
    I: DeserializeOwned,
    T: Serialize,
    F: FnOnce(I) -> S,
    S: Stream<Item = Result<T, CallError>> + Send + 'static,
{
    let input = match parse(input) {
        Ok(input) => input,
        Err(e) => return Reply::Refuse(e),
    };
    let items = handler(input).map(|item| to_value(item?));
    Reply::Json(InRuntime::new(items).boxed())
}

/// A raw-carriage operation.
fn raw<I, F, Fut>(input: Value, handler: F) -> Reply
where
    I: DeserializeOwned + Send + 'static,
    F: FnOnce(I, RawIo) -> Fut + Send + 'static,
    Fut: Future<Output = Result<i32, CallError>> + Send + 'static,
{
    let input = match parse(input) {
        Ok(input) => input,
        Err(e) => return Reply::Refuse(e),
    };
    Reply::Raw(Box::new(move |io| Compat::new(handler(input, io)).boxed()))
}

/// A stream polled and dropped inside a tokio runtime: the caller's when
/// there is one, async-compat's otherwise (async-compat's `Compat` does this
/// for futures, not streams).
struct InRuntime {
    runtime: tokio::runtime::Handle,
    inner: Option<BoxStream<'static, Result<Value, CallError>>>,
}

impl InRuntime {
    fn new(inner: impl Stream<Item = Result<Value, CallError>> + Send + 'static) -> Self {
        // Compat polls in the current runtime or its own: ask it which.
        let runtime = Compat::new(async { tokio::runtime::Handle::current() })
            .now_or_never()
            .expect("an async block without awaits is ready at once");
        InRuntime {
            runtime,
            inner: Some(inner.boxed()),
        }
    }
}

impl Stream for InRuntime {
    type Item = Result<Value, CallError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let _entered = self.runtime.enter();
        match self.inner.as_mut() {
            Some(inner) => inner.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for InRuntime {
    fn drop(&mut self) {
        // Guards in the stream spawn their cleanups on the current runtime.
        let _entered = self.runtime.enter();
        self.inner = None;
    }
}

/// A stream made from the negotiated client.
pub(crate) fn engine_stream<S, T>(
    inner: Arc<Inner>,
    make: impl FnOnce(Docker) -> S + Send + 'static,
) -> impl Stream<Item = Result<T, CallError>> + Send + 'static
where
    S: Stream<Item = Result<T, CallError>> + Send + 'static,
    T: Send + 'static,
{
    session::one_then_many(async move { Ok(make(inner.docker().await?)) })
}

/// A stream made once `caller` may act on container `id`, from the client
/// and the container's resolved id.
fn container_stream<S, T>(
    inner: Arc<Inner>,
    caller: Caller,
    id: String,
    make: impl FnOnce(Docker, String) -> S + Send + 'static,
) -> impl Stream<Item = Result<T, CallError>> + Send + 'static
where
    S: Stream<Item = Result<T, CallError>> + Send + 'static,
    T: Send + 'static,
{
    session::one_then_many(async move {
        let (docker, id) = inner.container(&caller, &id).await?;
        Ok(make(docker, id))
    })
}

/// `container/logs`: one item per line, the timestamp split out.
fn logs(
    docker: &Docker,
    i: ContainerLogs,
) -> impl Stream<Item = Result<LogItem, CallError>> + use<> {
    let options = q::LogsOptions {
        follow: i.follow,
        stdout: true,
        stderr: true,
        since: clamp_time(i.since),
        until: clamp_time(i.until),
        timestamps: true,
        tail: i.tail.map_or_else(|| "all".into(), |n| n.to_string()),
    };
    docker
        .logs(&i.id, Some(options))
        .map_err(error::container)
        .map_ok(log_item)
}

/// Docker's log times are 32-bit Unix seconds; 0 means "no bound".
fn clamp_time(t: Option<i64>) -> i32 {
    t.map_or(0, |t| t.clamp(0, i64::from(i32::MAX)) as i32)
}

/// Splits `<timestamp> <text>`, as the engine writes each line when asked
/// for timestamps.
pub(crate) fn log_item(output: LogOutput) -> LogItem {
    let (stream, bytes) = session::split_output(output);
    let (timestamp, text) = match bytes.iter().position(|&b| b == b' ') {
        Some(space) => (&bytes[..space], &bytes[space + 1..]),
        None => (&bytes[..0], &bytes[..]),
    };
    LogItem {
        stream,
        timestamp: String::from_utf8_lossy(timestamp).into_owned(),
        data: Data::from_bytes(text),
    }
}

/// `image/pull`: progress until done; an error item from the engine ends
/// the call with `IMAGE_PULL_FAILED`.
fn pull(
    docker: &Docker,
    i: ImagePull,
) -> impl Stream<Item = Result<PullProgress, CallError>> + use<> {
    let (from_image, tag) = split_tag(&i.image);
    let options = q::CreateImageOptions {
        from_image: Some(from_image),
        tag,
        ..Default::default()
    };
    docker
        .create_image(Some(options), None, None)
        .map_err(|e| engine_error(Subject::Pull, e))
        .and_then(|info| async move {
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "the pull failed".into());
                return Err(CallError::new(IMAGE_PULL_FAILED, message));
            }
            let progress = info.progress_detail.unwrap_or_default();
            Ok(PullProgress {
                id: info.id,
                status: info.status.unwrap_or_default(),
                current: progress.current,
                total: progress.total,
            })
        })
}

/// `repo:tag` → (`repo`, `tag`); a registry's port is not a tag, and a
/// digest reference is passed whole.
fn split_tag(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_owned(), None);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (image[..at].to_owned(), Some(image[at + 1..].to_owned()))
        }
        None => (image.to_owned(), Some("latest".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_tag_is_split_but_a_registry_port_is_not() {
        assert_eq!(
            split_tag("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/dockwire/testbox:v1"),
            ("127.0.0.1:5000/dockwire/testbox".into(), Some("v1".into()))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/testbox"),
            ("127.0.0.1:5000/testbox".into(), Some("latest".into()))
        );
        assert_eq!(split_tag("x@sha256:ab"), ("x@sha256:ab".into(), None));
    }

    #[test]
    fn a_log_line_gives_its_timestamp_apart_from_its_text() {
        let item = log_item(LogOutput::StdErr {
            message: Bytes::from_static(b"2026-11-23T10:00:00.1Z hello world\n"),
        });
        assert_eq!(item.stream, StreamName::Stderr);
        assert_eq!(item.timestamp, "2026-11-23T10:00:00.1Z");
        assert_eq!(item.data, Data::Text("hello world\n".into()));
        let binary = log_item(LogOutput::StdOut {
            message: Bytes::from_static(b"2026-11-23T10:00:00.1Z \xff\n"),
        });
        assert_eq!(binary.data.to_bytes().unwrap().as_ref(), b"\xff\n");
    }

    #[test]
    fn callers_cannot_forge_dockwire_labels() {
        let service = DockerService::unix("/nonexistent", Config::from_env());
        let ctx = CallContext {
            peer: "alice".into(),
            call_id: "1".into(),
        };
        let asked = BTreeMap::from([
            ("dockwire.owner".to_owned(), "mallory".to_owned()),
            ("dockwire.anything".to_owned(), "x".to_owned()),
            ("app".to_owned(), "web".to_owned()),
        ]);
        let caller = service
            .inner
            .caller(&ctx)
            .expect("without roles every peer is an admin");
        let labels = service.inner.labels(&caller, &asked, false);
        assert_eq!(
            labels.get("dockwire.owner").map(String::as_str),
            Some("alice")
        );
        assert_eq!(
            labels.get("dockwire.managed").map(String::as_str),
            Some("true")
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert!(!labels.contains_key("dockwire.anything"));
        assert!(!labels.contains_key(LABEL_AUTO_REMOVE));
    }

    #[test]
    fn only_a_container_dockwire_removes_itself_is_marked_for_the_sweep() {
        let config = Config::from_env().with_server_id("me");
        let service = DockerService::unix("/nonexistent", config);
        let ctx = CallContext {
            peer: "alice".into(),
            call_id: "1".into(),
        };
        let caller = service.inner.caller(&ctx).unwrap();
        let mut spec = ContainerSpec::new("img", ["sleep", "60"]);
        spec.auto_remove = true;
        let marked = |engine_auto_remove| {
            let body = service
                .inner
                .create_body(&caller, &spec, engine_auto_remove)
                .unwrap();
            let labels = body.labels.unwrap();
            assert_eq!(labels.get(LABEL_SERVER).map(String::as_str), Some("me"));
            let engine = body.host_config.unwrap().auto_remove;
            (labels.get(LABEL_AUTO_REMOVE).cloned(), engine)
        };
        // `run`: dockwire removes it after reading its exit code.
        assert_eq!(marked(false), (Some("true".into()), Some(false)));
        // `create` (`run -d --rm`): the engine removes it when it exits.
        assert_eq!(marked(true), (None, Some(true)));
    }
}
