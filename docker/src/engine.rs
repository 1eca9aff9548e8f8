//! The engine handle: the bollard client (made and version-negotiated on
//! first use), the service's [`Config`], who a call's peer is, and the
//! low-level engine queries the sessions share (an exec's pid and exit
//! code, a container's exit code). Which objects a caller may act on is
//! in [`crate::owned`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::models::ExecInspectResponse;
use bollard::query_parameters as q;
use dockwire_core::CallError;
use dockwire_service::CallContext;
use futures::{Stream, StreamExt};

use crate::access::{Caller, Role};
use crate::catalog::DOCKER_ERROR;
use crate::config::Config;
use crate::dialect;
use crate::dialect::Dialect;
use crate::error::{self, Subject, engine_error};
use crate::lifetime::Lifetimes;
use crate::processes::Processes;
use crate::reply::one_then_many;
use crate::signal;

/// How long to wait for the engine to report an ended exec's exit code.
const EXIT_CODE_PATIENCE: Duration = Duration::from_secs(30);

/// Makes the bollard client.
type Connect = dyn Fn() -> Result<Docker, EngineError> + Send + Sync;

/// One engine, as the service reaches it, with the service's settings.
pub(crate) struct Engine {
    connect: Box<Connect>,
    /// The client once made, and whether its version has been negotiated.
    docker: Mutex<Option<(Docker, bool)>>,
    /// The engine's dialect once learned (or as configured).
    dialect: Mutex<Option<Dialect>>,
    pub(crate) config: Config,
    /// Containers' lifetimes: touched by calls, enforced by
    /// [`crate::DockerService::lifetimes`].
    pub(crate) lifetimes: Lifetimes,
    /// Detached processes (`process/*`).
    pub(crate) processes: Processes,
}

impl Engine {
    /// An engine whose client `connect` makes on the first call, and again
    /// on each later call until that succeeds.
    pub(crate) fn new(
        connect: impl Fn() -> Result<Docker, EngineError> + Send + Sync + 'static,
        config: Config,
    ) -> Self {
        Engine {
            connect: Box::new(connect),
            docker: Mutex::new(None),
            dialect: Mutex::new(config.engine),
            lifetimes: Lifetimes::new(&config),
            processes: Processes::new(&config),
            config,
        }
    }

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

    /// The engine's dialect: as configured, else as its `/version` says
    /// (asked once, when it first answers).
    pub(crate) async fn dialect(&self, docker: &Docker) -> Result<Dialect, CallError> {
        if let Some(known) = *self.dialect.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(known);
        }
        let version = docker
            .version()
            .await
            .map_err(|e| engine_error(Subject::Engine, e))?;
        let dialect = Dialect::of_version(&version);
        *self.dialect.lock().unwrap_or_else(|p| p.into_inner()) = Some(dialect);
        Ok(dialect)
    }

    /// Who `ctx`'s peer is to access control; `None` if it has no role.
    /// The role and the owner come from the key the connection
    /// authenticated with, never from its name.
    pub(crate) fn caller(&self, ctx: &CallContext) -> Option<Caller> {
        let role = match &self.config.roles {
            None => Role::Admin,
            Some(roles) => roles.role(&ctx.key)?,
        };
        let owner = self.config.owner.as_deref().unwrap_or(&ctx.key);
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Some(Caller {
            owner: owner.to_owned(),
            name: ctx.peer.to_string(),
            role,
            host_access: self.config.host_access,
            call: CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// A stream made from the negotiated client.
    pub(crate) fn stream<S, T>(
        self: Arc<Self>,
        make: impl FnOnce(Docker) -> S + Send + 'static,
    ) -> impl Stream<Item = Result<T, CallError>> + Send + 'static
    where
        S: Stream<Item = Result<T, CallError>> + Send + 'static,
        T: Send + 'static,
    {
        one_then_many(async move { Ok(make(self.docker().await?)) })
    }
}

/// An exec's process, as an inspection reports it.
pub(crate) enum ExecProcess {
    /// Not reported yet: the engine marks an exec running before it has
    /// its pid.
    Starting,
    /// Running with this host pid.
    Running(i64),
    Ended,
}

impl ExecProcess {
    pub(crate) fn of(info: &ExecInspectResponse) -> ExecProcess {
        match info.pid {
            Some(pid) if info.running == Some(true) && pid > 0 => ExecProcess::Running(pid),
            _ if info.exit_code.is_some() => ExecProcess::Ended,
            _ => ExecProcess::Starting,
        }
    }
}

/// The host pid of a running exec, as this server sees it; `None` once it
/// has ended, or when the server does not see the engine's pids (see
/// [`visible_pid`]). Waits for a just-started exec as [`running_exec`].
pub(crate) async fn running_pid(
    docker: &Docker,
    exec_id: &str,
) -> Result<Option<i64>, EngineError> {
    match running_exec(docker, exec_id).await? {
        Some((info, pid)) => Ok(visible_pid(docker, &info, pid).await),
        None => Ok(None),
    }
}

/// A running exec's inspection and host pid (as the engine numbers it);
/// `None` once it has ended. Right after its start the engine may not
/// report the process as running yet: this waits for it, briefly (up to
/// about a second).
pub(crate) async fn running_exec(
    docker: &Docker,
    exec_id: &str,
) -> Result<Option<(ExecInspectResponse, i64)>, EngineError> {
    for _ in 0..100 {
        let info = docker.inspect_exec(exec_id).await?;
        match ExecProcess::of(&info) {
            ExecProcess::Starting => tokio::time::sleep(Duration::from_millis(10)).await,
            ExecProcess::Running(pid) => return Ok(Some((info, pid))),
            ExecProcess::Ended => return Ok(None),
        }
    }
    Ok(None)
}

/// `pid`, the host pid the engine reports for the exec `info`, if it
/// names that exec's process here too: this server shares the engine's
/// pid namespace (`/proc/PID` here is a process in the pid namespace of
/// the exec's container). A server in a pid namespace of its own (in a
/// container, say) would otherwise signal whatever process of its own has
/// that number: it gets `None`, and the signal is dropped (logged).
pub(crate) async fn visible_pid(
    docker: &Docker,
    info: &ExecInspectResponse,
    pid: i64,
) -> Option<i64> {
    let container = info.container_id.as_deref()?;
    let inspected = dialect::inspect_container(docker, container).await.ok()?;
    let init = inspected.state.and_then(|s| s.pid).filter(|p| *p > 0)?;
    if signal::in_one_container(pid, init) {
        return Some(pid);
    }
    tracing::warn!(
        pid,
        container,
        "the engine's pid of an exec is not that process here (this server does not share \
         the engine's pid namespace): not signalling it; serve with --exec-signals engine"
    );
    None
}

/// The exit code of an exec whose output has ended. The engine can report
/// the exec as still running for a moment after its output ends.
pub(crate) async fn exec_exit(docker: &Docker, exec_id: &str) -> Result<i64, CallError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let info = docker
            .inspect_exec(exec_id)
            .await
            .map_err(error::container)?;
        if info.running != Some(true) {
            if let Some(code) = info.exit_code {
                return Ok(code);
            }
        }
        if started.elapsed() > EXIT_CODE_PATIENCE {
            return Err(CallError::new(
                DOCKER_ERROR,
                format!("the engine reported no exit code for exec {exec_id}"),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The exit code of a container, once it has stopped.
pub(crate) async fn wait_exit(docker: &Docker, id: &str) -> Result<i64, CallError> {
    let options = q::WaitContainerOptions {
        condition: "not-running".into(),
    };
    match docker.wait_container(id, Some(options)).next().await {
        // Podman answers a wait it could not finish (the container removed
        // meanwhile) with 200, `StatusCode` 0 and the error in `Error`:
        // that 0 is no exit code.
        Some(Ok(answer)) => match answer.error.and_then(|e| e.message) {
            Some(lost) if !lost.is_empty() => Err(CallError::new(
                DOCKER_ERROR,
                format!("the engine lost the exit code of {id}: {lost}"),
            )),
            _ => Ok(answer.status_code),
        },
        // bollard reports a non-zero exit as an error.
        Some(Err(EngineError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(error::container(e)),
        None => Err(CallError::new(
            DOCKER_ERROR,
            format!("the engine ended the wait for {id} without an answer"),
        )),
    }
}
