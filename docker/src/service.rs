//! [`DockerService`]: the bollard-backed [`Service`] of the whole
//! catalog. It only routes: who the caller is, whether its role may call
//! the operation (both from [`crate::operations`]), then the declared
//! handler. It also sweeps what a crashed server left behind.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_compat::Compat;
use bollard::Docker;
use bollard::query_parameters as q;
use dockwire_core::{CallError, Request};
use dockwire_service::{CallContext, Reply, Service};
use futures::{FutureExt, StreamExt, TryFutureExt, TryStreamExt};

use crate::access::forbidden;
use crate::audit;
use crate::catalog::{LABEL_AUTO_REMOVE, LABEL_SERVER};
use crate::cleanup;
use crate::config::Config;
use crate::dialect;
use crate::dialect::Dialect;
use crate::engine::Engine;
use crate::error;
use crate::journal;
use crate::operations;
use crate::ownership::Kind;
use crate::runtime;

/// Serves the Docker operation catalog with a bollard client.
///
/// Runs on any executor: every reply is wrapped in `async_compat::Compat`,
/// which polls it inside the current tokio runtime when there is one and
/// otherwise inside a tokio runtime of its own, on its own thread, where
/// bollard's connection tasks then run.
#[derive(Clone)]
pub struct DockerService {
    engine: Arc<Engine>,
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

    /// The runtime users' containers are put under
    /// ([`Config::with_user_runtime`]), when the engine answers and does
    /// not have it: every user's create would fail. `None` when it has it,
    /// when none is set, or when the engine does not answer (yet).
    pub async fn missing_user_runtime(&self) -> Option<String> {
        let engine = self.engine.clone();
        Compat::new(async move {
            let runtime = engine.config.user_runtime.clone()?;
            let docker = engine.docker().await.ok()?;
            match runtime::installed(&docker, &runtime).await {
                Ok(false) => Some(runtime),
                _ => None,
            }
        })
        .await
    }

    /// The engine's dialect: as configured, else as the engine's
    /// `/version` says; `None` when it does not answer (yet).
    pub async fn dialect(&self) -> Option<Dialect> {
        let engine = self.engine.clone();
        Compat::new(async move {
            let docker = engine.docker().await.ok()?;
            engine.dialect(&docker).await.ok()
        })
        .await
    }

    /// Why the runtime the operator puts users' containers under
    /// ([`Config::with_user_runtime`]) cannot be honoured by this engine
    /// (Podman ignores a runtime per container): every user's create would
    /// be refused. `None` when it can, when none is set, or when the engine
    /// does not answer (yet).
    pub async fn refused_user_runtime(&self) -> Option<String> {
        let runtime = self.engine.config.user_runtime.clone()?;
        let refused = self.dialect().await?.refuse_runtime(&runtime).err()?;
        Some(refused.message)
    }

    /// The engine's CPU count (`docker info`'s `NCPU`), when it answers:
    /// what users' `cpus` cap should be when the engine is not on this
    /// server's host.
    pub async fn engine_cpus(&self) -> Option<i64> {
        let engine = self.engine.clone();
        Compat::new(async move {
            let docker = engine.docker().await.ok()?;
            docker.info().await.ok()?.ncpu.filter(|&n| n > 0)
        })
        .await
    }

    /// Waits until the cleanups of cancelled calls (killing an exec,
    /// removing a `run`'s container) have finished, for `limit` at most:
    /// whether they all did. A process that serves in-process calls and is
    /// about to exit waits here, or the engine keeps what those calls made.
    /// Counts the cleanups of every service in this process.
    pub async fn settle(&self, limit: std::time::Duration) -> bool {
        Compat::new(cleanup::settle(limit)).await
    }

    /// How many cleanups of cancelled calls are running (or retrying an
    /// engine that cannot be reached) now, in every service of this
    /// process: what [`settle`](Self::settle) waits for. A call's cleanup
    /// starts once the service has seen the call cancelled, which can be a
    /// moment after the caller dropped it.
    pub fn pending_cleanups(&self) -> usize {
        cleanup::pending()
    }

    /// Cleans up after calls that died with a crashed process: kills the
    /// processes of the execs its journal ([`Config::with_exec_journal`])
    /// still names, and removes the auto-remove containers this server (its
    /// [`Config::with_server_id`]) created and left behind: those of `run`
    /// calls, whose seal (under [`Config::with_owner_key`]) verifies. Call
    /// it when the server starts, before serving, when none of its calls
    /// can be alive. The container ids removed; none without a server id.
    /// Each exec killed is logged.
    pub async fn sweep(&self) -> Result<Vec<String>, CallError> {
        let engine = self.engine.clone();
        Compat::new(async move {
            if let Some(dir) = &engine.config.exec_journal {
                let docker = engine.docker().await?;
                match journal::sweep(&docker, dir, engine.config.exec_signals).await {
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
            let Some(id) = engine.config.server_id.clone() else {
                return Ok(Vec::new());
            };
            let docker = engine.docker().await?;
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
            let left = dialect::list_containers(&docker, Some(options))
                .await
                .map_err(error::container)?;
            let mut removed = Vec::new();
            for container in left {
                // Labels anyone could write (an image's, a plain `docker
                // run`'s) are not enough: the seal, which covers the
                // auto-remove label's value, must verify.
                let key = &engine.config.owner_key;
                let name = container.names.iter().flatten().next();
                let sealed = match (name, &container.labels) {
                    (Some(name), Some(labels)) => {
                        key.owner(Kind::Container, name, labels).is_some()
                            && labels.get(LABEL_AUTO_REMOVE).map(String::as_str) == Some("true")
                    }
                    _ => false,
                };
                let Some(cid) = container.id.filter(|_| sealed) else {
                    continue;
                };
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

    /// Enforces the lifetimes (`ttl`, `idleTimeout`) of the containers this
    /// service's key sealed, until dropped: spawn it when the server
    /// starts (see [`crate::lifetime`]). It wakes at the next deadline,
    /// when a container is made or started through the service, and
    /// every few seconds; an expired container is killed and removed.
    pub fn lifetimes(&self) -> impl Future<Output = ()> + Send + 'static {
        let engine = self.engine.clone();
        Compat::new(async move {
            let docker = || engine.docker();
            engine.lifetimes.enforce(docker).await;
        })
    }

    /// A service that makes its client with `connect` on its first call,
    /// and again on each later call until that succeeds.
    fn connecting(
        connect: impl Fn() -> Result<Docker, bollard::errors::Error> + Send + Sync + 'static,
        config: Config,
    ) -> Self {
        DockerService {
            engine: Arc::new(Engine::new(connect, config)),
        }
    }
}

impl Service for DockerService {
    fn call(&self, ctx: CallContext, request: Request) -> Reply {
        let caller = self.engine.caller(&ctx);
        audit::call(&ctx, caller.as_ref(), &request);
        let Some(caller) = caller else {
            return Reply::Refuse(forbidden(format!(
                "peer {} ({}) is not authorized on this server",
                ctx.peer, ctx.key
            )));
        };
        if let Some(declared) = operations::declared(&request.operation) {
            if let Err(refused) = caller.may_call(declared.name, declared.role) {
                return Reply::Refuse(refused);
            }
        }
        let admin = caller.is_admin();
        let running = Running::begin(self.engine.clone(), caller.call);
        let reply = operations::route(self.engine.clone(), caller, request);
        let reply = running.until_done(reply);
        match admin {
            true => reply,
            false => without_host_paths(reply),
        }
    }
}

/// A call while it runs: the containers it names are held by it (see
/// [`crate::lifetime`]) until its reply is done or dropped.
struct Running {
    engine: Arc<Engine>,
    call: u64,
}

impl Running {
    fn begin(engine: Arc<Engine>, call: u64) -> Self {
        engine.lifetimes.begin_call(call);
        Running { engine, call }
    }

    /// `reply`, which ends this call when it is done or dropped.
    fn until_done(self, reply: Reply) -> Reply {
        match reply {
            Reply::Refuse(e) => Reply::Refuse(e),
            Reply::Json(outputs) => Reply::Json(
                outputs
                    .map(move |output| {
                        let _running = &self;
                        output
                    })
                    .boxed(),
            ),
            Reply::Raw(handler) => Reply::Raw(Box::new(move |io| {
                let session = handler(io);
                async move {
                    let exit = session.await;
                    drop(self);
                    exit
                }
                .boxed()
            })),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.engine.lifetimes.end_call(self.call);
    }
}

/// `reply` with no host path in its errors (see
/// [`error::without_host_paths`]): what users get.
fn without_host_paths(reply: Reply) -> Reply {
    match reply {
        Reply::Refuse(e) => Reply::Refuse(error::without_host_paths(e)),
        Reply::Json(outputs) => Reply::Json(outputs.map_err(error::without_host_paths).boxed()),
        Reply::Raw(handler) => Reply::Raw(Box::new(move |io| {
            handler(io).map_err(error::without_host_paths).boxed()
        })),
    }
}
