//! `container/attach` and `container/run`: a container's stdio, on its own
//! or for a fresh container (create, attach, start, wait, and remove when
//! asked), and the guard that kills or removes a run's container if its
//! call ends first.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::query_parameters as q;
use dockwire_core::{CallError, ErrorCode};
use dockwire_service::RawIo;
use futures::Stream;
use futures::future::{self, BoxFuture, Either};
use serde_json::json;

use crate::access::Caller;
use crate::audit;
use crate::catalog::*;
use crate::cleanup::{Pending, spawn_cleanup};
use crate::create;
use crate::dialect;
use crate::engine::{Engine, wait_exit};
use crate::error::{self, invalid_input};
use crate::processes::{End, ProcessControl};
use crate::reply::one_then_many;
use crate::signal;
use crate::stdio::{self, Controls, Output, Stdin};

/// `container/attach`: the container's stdio; ends with its exit code.
pub(crate) async fn attach(
    engine: Arc<Engine>,
    caller: Caller,
    i: AttachInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, info) = engine.inspect_owned(&caller, &i.id).await?;
    let config = info.config.unwrap_or_default();
    let tty = config.tty.unwrap_or(false);
    let stdin = i.stdin && config.open_stdin.unwrap_or(false);
    let id = info.id.unwrap_or(i.id);
    let options = q::AttachContainerOptions {
        stream: true,
        stdin,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    // The wait is asked for alongside the attach, not after its output
    // ends: an auto-remove container is gone soon after its exit, and
    // with it the engine's answer (as docker's CLI, which waits before
    // it attaches).
    let exit = wait_exit(&docker, &id);
    let session = async {
        let attached = docker
            .attach_container(&id, Some(options))
            .await
            .map_err(error::container)?;
        let (input, mut out) = io.split();
        out.accept(json!({"id": id, "tty": tty, "stdin": stdin}))
            .await?;
        let controls = Container {
            docker: &docker,
            id: &id,
        };
        stdio::bridge(
            attached.output,
            attached.input,
            input,
            &mut out,
            tty,
            &controls,
        )
        .await
    };
    futures::pin_mut!(exit, session);
    let code = match future::select(session, exit).await {
        Either::Left((bridged, exit)) => {
            bridged?;
            exit.await?
        }
        Either::Right((code, session)) => {
            session.await?;
            code?
        }
    };
    Ok(stdio::exit_code_i32(code))
}

/// A container attached to with stdin, for an interactive session whose
/// process it is ([`crate::session`]).
pub(crate) struct Attached {
    pub(crate) id: String,
    pub(crate) tty: bool,
    /// Its entrypoint and command, as `process/list` shows them.
    pub(crate) cmd: Vec<String>,
    pub(crate) control: AttachControl,
    pub(crate) output: Output,
    pub(crate) stdin: Stdin,
    /// Its exit code, asked for before the attach (see [`attach`]).
    pub(crate) exit: tokio::task::JoinHandle<Result<i64, CallError>>,
}

/// `container/attach` with stdin, for a session: `None` when the
/// container takes none (created without `stdin`), a plain attach then.
pub(crate) async fn attach_with_stdin(
    engine: &Arc<Engine>,
    caller: &Caller,
    i: &AttachInput,
) -> Result<Option<Attached>, CallError> {
    let (docker, info) = engine.inspect_owned(caller, &i.id).await?;
    let config = info.config.unwrap_or_default();
    if !(i.stdin && config.open_stdin.unwrap_or(false)) {
        return Ok(None);
    }
    let tty = config.tty.unwrap_or(false);
    let id = info.id.unwrap_or_else(|| i.id.clone());
    let mut cmd = config.entrypoint.unwrap_or_default();
    cmd.extend(config.cmd.unwrap_or_default());
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Err(CallError::new(
            ErrorCode::INTERNAL,
            "no runtime to keep a session on",
        ));
    };
    // Asked for before the attach, as a plain attach does.
    let exit = runtime.spawn({
        let (docker, id) = (docker.clone(), id.clone());
        async move { wait_exit(&docker, &id).await }
    });
    let options = q::AttachContainerOptions {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let attached = match docker.attach_container(&id, Some(options)).await {
        Ok(attached) => attached,
        Err(e) => {
            exit.abort();
            return Err(error::container(e));
        }
    };
    Ok(Some(Attached {
        control: AttachControl {
            docker,
            id: id.clone(),
            detached: tokio::sync::Notify::new(),
        },
        id,
        tty,
        cmd,
        output: attached.output,
        stdin: attached.input,
        exit,
    }))
}

/// An attached container as an interactive session's process: signals
/// and resizes go to the container; its kill detaches (the container runs
/// on, as after a cancelled attach).
pub(crate) struct AttachControl {
    docker: Docker,
    id: String,
    detached: tokio::sync::Notify,
}

impl AttachControl {
    /// Resolves once the session is to detach.
    pub(crate) async fn detached(&self) {
        self.detached.notified().await;
    }
}

impl ProcessControl for AttachControl {
    fn signal<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let container = Container {
                docker: &self.docker,
                id: &self.id,
            };
            container.signal(name).await;
        })
    }

    fn resize(&self, cols: u16, rows: u16) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let container = Container {
                docker: &self.docker,
                id: &self.id,
            };
            container.resize(cols, rows).await;
        })
    }

    fn kill(&self) {
        // A permit if the pump is not waiting yet.
        self.detached.notify_one();
    }

    fn ended(&self) {}
}

/// Kills (and with `remove`, removes) a container whose `run` call ended
/// before it did.
struct ContainerGuard {
    docker: Docker,
    id: String,
    remove: bool,
    /// The service the run was made by: the cleanup retries an
    /// unreachable engine for as long as it lives.
    service: Weak<Engine>,
    armed: bool,
}

impl ContainerGuard {
    /// Reads the exit code, removes the container when asked, and disarms.
    async fn finish(mut self) -> Result<i64, CallError> {
        let code = wait_exit(&self.docker, &self.id).await?;
        if self.remove {
            let options = q::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            match self.docker.remove_container(&self.id, Some(options)).await {
                Ok(()) => {}
                // Already gone (removed by someone else): what was asked.
                Err(EngineError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(error::container(e)),
            }
        }
        self.armed = false;
        Ok(code)
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        let remove = self.remove;
        let service = self.service.clone();
        spawn_cleanup(clean_up_run(docker, id, remove, service));
    }
}

/// The first pause between attempts at a cancelled run's cleanup while
/// the engine cannot be reached; it doubles up to [`CLEANUP_PAUSE_MAX`].
const CLEANUP_PAUSE_FIRST: Duration = Duration::from_millis(100);

/// The longest pause between attempts: what the cleanup may lag behind
/// an engine that is back. A refused connection costs next to nothing.
const CLEANUP_PAUSE_MAX: Duration = Duration::from_secs(2);

/// How many times a cleanup that the engine answers with an error (other
/// than "gone" or "not running") is tried: such errors are the engine's
/// own, not an outage, and are unlikely to pass.
const CLEANUP_REFUSALS: u32 = 5;

/// Removes (`remove`) or kills a cancelled run's container. An engine
/// that cannot be reached (down, restarting) is retried with backoff
/// until it answers, for as long as the service lives: with live restore
/// the container runs on through the outage, and nothing else would
/// remove it before the next server start's sweep (nor kill it, without
/// auto-remove). Counted by [`settle`] while it retries.
async fn clean_up_run(docker: Docker, id: String, remove: bool, service: Weak<Engine>) {
    let mut pause = CLEANUP_PAUSE_FIRST;
    let mut refusals = 0;
    let mut outage = false;
    loop {
        let result = if remove {
            let options = q::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            docker.remove_container(&id, Some(options)).await
        } else {
            docker
                .kill_container(&id, None::<q::KillContainerOptions>)
                .await
        };
        match result {
            Ok(()) => break,
            // Gone already, or (for a kill) no longer running: what the
            // cleanup is for.
            Err(EngineError::DockerResponseServerError {
                status_code: 404, ..
            }) => break,
            Err(EngineError::DockerResponseServerError {
                status_code: 409, ..
            }) if !remove => break,
            Err(e) if error::is_unreachable(&e) => {
                if !outage {
                    tracing::warn!(
                        container = %id,
                        "the engine cannot be reached to clean up after a cancelled run; \
                         retrying until it answers: {e}"
                    );
                    outage = true;
                }
            }
            Err(e) => {
                refusals += 1;
                if refusals >= CLEANUP_REFUSALS {
                    tracing::warn!(container = %id, "cleanup after a cancelled run failed: {e}");
                    return;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(CLEANUP_PAUSE_MAX);
        if service.strong_count() == 0 {
            tracing::warn!(
                container = %id,
                "the service ended before the engine answered; the container is left \
                 (a restarted server sweeps it if it was to be removed)"
            );
            return;
        }
    }
    if outage {
        tracing::info!(container = %id, remove, "cleaned up after a cancelled run once the engine answered");
    }
}

/// A run's container, created, attached to and started.
pub(crate) struct Started {
    pub(crate) docker: Docker,
    guard: ContainerGuard,
    pub(crate) tty: bool,
    pub(crate) output: Output,
    pub(crate) stdin: Stdin,
}

impl Started {
    /// The container's id.
    pub(crate) fn id(&self) -> &str {
        &self.guard.id
    }

    /// Its container as a session's process control, and its output and
    /// stdin.
    pub(crate) fn into_control(self) -> (RunControl, Output, Stdin) {
        let control = RunControl::new(self.docker, self.guard);
        (control, self.output, self.stdin)
    }
}

/// A run's container as an interactive session's process
/// ([`crate::processes`]): signals and resizes go to the container, its
/// kill is a cancelled run's cleanup (killed, or removed with `--rm`), and
/// its end is the run's (the exit code read, the container removed when
/// asked).
pub(crate) struct RunControl {
    docker: Docker,
    id: String,
    guard: Mutex<Option<ContainerGuard>>,
}

impl RunControl {
    /// Makes the control of a run's container from its guard.
    fn new(docker: Docker, guard: ContainerGuard) -> Self {
        RunControl {
            docker,
            id: guard.id.clone(),
            guard: Mutex::new(Some(guard)),
        }
    }

    /// Once its output has ended: its exit code, the container removed
    /// when asked; lost if it was killed first or the engine failed (the
    /// guard, dropped armed, then cleans up as for a cancelled run).
    pub(crate) async fn finish(&self) -> End {
        let guard = self.guard.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(guard) = guard else {
            return End::Lost(DOCKER_ERROR, "its container was killed".into());
        };
        match guard.finish().await {
            Ok(code) => End::Exited(code),
            Err(e) => End::Lost(e.code, e.message),
        }
    }
}

impl ProcessControl for RunControl {
    fn signal<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let container = Container {
                docker: &self.docker,
                id: &self.id,
            };
            container.signal(name).await;
        })
    }

    fn resize(&self, cols: u16, rows: u16) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let container = Container {
                docker: &self.docker,
                id: &self.id,
            };
            container.resize(cols, rows).await;
        })
    }

    fn kill(&self) {
        // Dropped armed: killed, or removed with `--rm`, in the background.
        drop(self.guard.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    fn ended(&self) {}
}

/// Creates, attaches and starts `spec`'s container.
pub(crate) async fn start(
    engine: &Arc<Engine>,
    caller: &Caller,
    spec: &ContainerSpec,
) -> Result<Started, CallError> {
    // dockwire removes the container itself after reading its exit code;
    // the engine's auto-remove would race with that read.
    let docker = engine.docker().await?;
    let prepared = create::prepare(engine, &docker, caller, spec, false).await?;
    let options = q::CreateContainerOptions {
        name: Some(prepared.name),
        ..Default::default()
    };
    let service = Arc::downgrade(engine);
    let guard = create_guarded(&docker, options, prepared.body, spec.auto_remove, service)
        .await
        .map_err(|e| create::create_error(caller, e))?;
    audit::created(caller, &guard.id, spec);
    let options = q::AttachContainerOptions {
        stream: true,
        stdin: spec.stdin,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let attached = docker
        .attach_container(&guard.id, Some(options))
        .await
        .map_err(error::container)?;
    docker
        .start_container(&guard.id, None::<q::StartContainerOptions>)
        .await
        .map_err(error::container)?;
    // Its ttl counts from now: the enforcer learns of it.
    engine.lifetimes.changed();
    Ok(Started {
        docker,
        guard,
        tty: spec.tty,
        output: attached.output,
        stdin: attached.input,
    })
}

/// Creates a container on a task of its own that hands back its guard: a
/// call dropped while the create is in flight drops the guard when the
/// create returns, and the container is cleaned up as for any cancelled
/// run (removed with auto-remove, else killed).
async fn create_guarded(
    docker: &Docker,
    options: q::CreateContainerOptions,
    body: bollard::models::ContainerCreateBody,
    remove: bool,
    service: Weak<Engine>,
) -> Result<ContainerGuard, CallError> {
    let (tx, rx) = futures::channel::oneshot::channel();
    let docker = docker.clone();
    let create = async move {
        let pending = Pending::new();
        let made = match docker.create_container(Some(options), body).await {
            Ok(created) => Ok(ContainerGuard {
                docker,
                id: created.id,
                remove,
                service,
                armed: true,
            }),
            Err(e) => Err(error::container(e)),
        };
        // Refused when the call is gone: the guard comes back and drops here.
        drop(tx.send(made));
        drop(pending);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn(create)),
        Err(_) => create.await,
    }
    rx.await
        .map_err(|_| CallError::new(ErrorCode::INTERNAL, "the create task ended"))?
}

/// `container/run` on the json carriage.
pub(crate) fn items(
    engine: Arc<Engine>,
    caller: Caller,
    RunInput(spec): RunInput,
) -> impl Stream<Item = Result<ExecItem, CallError>> + Send + 'static {
    let setup = async move {
        if spec.stdin {
            return Err(invalid_input("stdin needs the raw carriage"));
        }
        let started = start(&engine, &caller, &spec).await?;
        let guard = started.guard;
        let exit = async move {
            let exit_code = guard.finish().await?;
            Ok(ExecItem::Exit {
                exit_code,
                terminal: true,
            })
        };
        Ok(stdio::items(started.output, started.stdin, exit))
    };
    one_then_many(setup)
}

/// `container/run` on the raw carriage.
pub(crate) async fn session(
    engine: Arc<Engine>,
    caller: Caller,
    RunInput(spec): RunInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let started = start(&engine, &caller, &spec).await?;
    let (input, mut out) = io.split();
    out.accept(json!({"id": started.guard.id, "tty": started.tty}))
        .await?;
    let controls = Container {
        docker: &started.docker,
        id: &started.guard.id,
    };
    let bridged = stdio::bridge(
        started.output,
        started.stdin,
        input,
        &mut out,
        started.tty,
        &controls,
    )
    .await;
    if let Err(e) = bridged {
        // Podman resets the attach when stdin is written after the
        // process ended: the container's own end, its code the engine's.
        if e.code != ErrorCode::UNAVAILABLE || !stopped(&started.docker, &started.guard.id).await {
            return Err(e);
        }
    }
    Ok(stdio::exit_code_i32(started.guard.finish().await?))
}

/// Whether the engine reports container `id` as no longer running,
/// within a few seconds (the reset can come before the engine's state).
async fn stopped(docker: &Docker, id: &str) -> bool {
    for _ in 0..100 {
        let info = dialect::inspect_container(docker, id).await;
        match info.ok().and_then(|i| i.state).map(|s| s.running) {
            Some(Some(false)) => return true,
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            None => return false,
        }
    }
    false
}

/// A container's resize and signal: through the engine's API.
struct Container<'a> {
    docker: &'a Docker,
    id: &'a str,
}

impl Controls for Container<'_> {
    async fn resize(&self, cols: u16, rows: u16) {
        let size = q::ResizeContainerTTYOptions {
            w: i32::from(cols),
            h: i32::from(rows),
        };
        if let Err(e) = self.docker.resize_container_tty(self.id, size).await {
            tracing::warn!("resize to {cols}x{rows} failed: {e}");
        }
    }

    async fn signal(&self, name: &str) {
        let id = self.id;
        let Some(sig) = signal::parse(name) else {
            tracing::warn!(container = id, signal = name, "unknown signal, dropped");
            return;
        };
        let options = q::KillContainerOptions {
            signal: sig.as_raw().to_string(),
        };
        if let Err(e) = self.docker.kill_container(id, Some(options)).await {
            tracing::warn!(container = id, "signal {name} failed: {e}");
        }
    }
}
