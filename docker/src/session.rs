//! The streaming operations: exec, attach, run and the archives, and the
//! guards that clean up after a call that is cancelled.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as Engine;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::ExecInspectResponse;
use bollard::query_parameters as q;
use bytes::Bytes;
use dockwire_core::{CallError, ErrorCode, ServerEvent};
use dockwire_service::{RawInput, RawIo, RawOutput};
use futures::future::{self, Either};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::access::Caller;
use crate::catalog::*;
use crate::error::{self, invalid_input};
use crate::journal;
use crate::service::{Config, ExecSignals, Inner};
use crate::signal::{self, HostProcess};

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, Engine>> + Send>>;
type Stdin = Pin<Box<dyn AsyncWrite + Send>>;

/// The read buffer of an exec's output: one read takes up to this much
/// (bollard's default is 8 KiB, which costs throughput).
const OUTPUT_CAPACITY: usize = 256 * 1024;

/// How long to wait for the engine to report an ended exec's exit code.
const EXIT_CODE_PATIENCE: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ exec

struct Exec {
    id: String,
    output: Output,
    stdin: Stdin,
}

/// Creates and starts `i`'s exec, with its guard armed from the moment it
/// exists: a call dropped while the start is in flight still kills what
/// started. A TTY exec is started without a TTY on the wire: the process
/// still gets its terminal, but the output keeps Docker's 8-byte framing,
/// so that bollard never has to guess whether a chunk is framed (it
/// guesses wrong when a TTY chunk starts with 0x01 or 0x02).
async fn start_exec(
    docker: &Docker,
    i: &ExecInput,
    stdin: bool,
    config: &Config,
) -> Result<(Exec, ExecGuard), CallError> {
    if i.cmd.is_empty() {
        return Err(invalid_input("`cmd` is empty"));
    }
    let options = CreateExecOptions {
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(i.tty),
        env: Some(i.env.clone()),
        cmd: Some(i.cmd.clone()),
        user: i.user.clone(),
        working_dir: i.workdir.clone(),
        ..Default::default()
    };
    let created = docker
        .create_exec(&i.id, options)
        .await
        .map_err(error::container)?;
    // Before the start: a crash from here on may leave its process.
    let journal = config.exec_journal.clone();
    if let Some(dir) = &journal {
        journal::record(dir, &created.id, &i.id);
    }
    let guard = ExecGuard::new(docker, &created.id, config.exec_signals, journal);
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: Some(OUTPUT_CAPACITY),
    };
    match docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(error::container)?
    {
        StartExecResults::Attached { output, input } => {
            guard.learn_process();
            Ok((
                Exec {
                    id: created.id,
                    output,
                    stdin: input,
                },
                guard,
            ))
        }
        StartExecResults::Detached => Err(CallError::new(
            DOCKER_ERROR,
            "the engine started the exec detached",
        )),
    }
}

/// The exit code of an exec whose output has ended. The engine can report
/// the exec as still running for a moment after its output ends.
async fn exec_exit(docker: &Docker, exec_id: &str) -> Result<i64, CallError> {
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

/// Kills an exec's processes if its call ends before the exec does, and
/// delivers signals to it.
struct ExecGuard {
    docker: Docker,
    exec_id: String,
    signals: ExecSignals,
    /// The exec's process, once learnt from the engine: what the cleanup
    /// kills when the engine cannot tell it any more.
    process: Arc<OnceLock<HostProcess>>,
    /// Where the exec's record is, if the service keeps a journal.
    journal: Option<PathBuf>,
    armed: bool,
}

impl ExecGuard {
    fn new(docker: &Docker, exec_id: &str, signals: ExecSignals, journal: Option<PathBuf>) -> Self {
        ExecGuard {
            docker: docker.clone(),
            exec_id: exec_id.to_owned(),
            signals,
            process: Arc::default(),
            journal,
            armed: true,
        }
    }

    /// Learns the started exec's host process in the background, while
    /// the engine answers. An engine that goes away mid-call may leave the
    /// process running (a crash, or a restart with live restore) and, once
    /// back, no longer knows the exec: the cleanup then has only this.
    fn learn_process(&self) {
        if self.signals != ExecSignals::HostPid {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let docker = self.docker.clone();
        let exec_id = self.exec_id.clone();
        let process = self.process.clone();
        drop(runtime.spawn(async move {
            for pause in LEARN_PAUSES_MS {
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let Ok(info) = docker.inspect_exec(&exec_id).await else {
                    return;
                };
                match exec_process(&info) {
                    ExecProcess::Starting => {}
                    ExecProcess::Running(pid) => {
                        if let Some(found) = HostProcess::of(pid) {
                            let _ = process.set(found);
                        }
                        return;
                    }
                    ExecProcess::Ended => return,
                }
            }
        }));
    }

    async fn signal(&self, name: &str) {
        let Some(sig) = signal::parse(name) else {
            tracing::warn!(exec = %self.exec_id, signal = name, "unknown signal, dropped");
            return;
        };
        if self.signals != ExecSignals::HostPid {
            tracing::warn!(exec = %self.exec_id, signal = name, "exec signals need the engine's host; dropped");
            return;
        }
        match running_pid(&self.docker, &self.exec_id).await {
            Ok(Some(pid)) => signal::send(pid, sig),
            // Ended: nothing to signal.
            Ok(None) => {}
            Err(e) => tracing::warn!(exec = %self.exec_id, "cannot find the exec's pid: {e}"),
        }
    }

    /// The exec has ended and its call has its code: nothing to clean up.
    fn disarm(mut self) {
        if let Some(dir) = self.journal.take() {
            journal::forget(&dir, &self.exec_id);
        }
        self.armed = false;
    }
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let journal = self.journal.take();
        if self.signals != ExecSignals::HostPid {
            // Nothing a later sweep could do either.
            if let Some(dir) = journal {
                journal::forget(&dir, &self.exec_id);
            }
            return;
        }
        let docker = self.docker.clone();
        let exec_id = std::mem::take(&mut self.exec_id);
        let process = self.process.clone();
        spawn_cleanup(async move {
            match running_pid(&docker, &exec_id).await {
                Ok(Some(pid)) => signal::kill_tree(pid),
                Ok(None) => {}
                // The engine is unreachable, or forgot the exec in a
                // restart: the process learnt at the start, if it still
                // runs (not a later one with its pid).
                Err(_) => {
                    if let Some(known) = process.get().filter(|p| p.runs()) {
                        signal::kill_tree(known.pid);
                    }
                }
            }
            if let Some(dir) = journal {
                journal::forget(&dir, &exec_id);
            }
        });
    }
}

/// The pauses before each time a started exec's pid is asked for, in the
/// background, by every exec: gently. The engine reports it some tens of
/// milliseconds after the start.
const LEARN_PAUSES_MS: [u64; 7] = [25, 25, 50, 100, 200, 400, 800];

/// An exec's process, as an inspection reports it.
enum ExecProcess {
    /// Not reported yet: the engine marks an exec running before it has
    /// its pid.
    Starting,
    /// Running with this host pid.
    Running(i64),
    Ended,
}

fn exec_process(info: &ExecInspectResponse) -> ExecProcess {
    match info.pid {
        Some(pid) if info.running == Some(true) && pid > 0 => ExecProcess::Running(pid),
        _ if info.exit_code.is_some() => ExecProcess::Ended,
        _ => ExecProcess::Starting,
    }
}

/// The host pid of a running exec; `None` once it has ended. Right after
/// its start the engine may not report the process as running yet: this
/// waits for it, briefly (up to about a second).
pub(crate) async fn running_pid(docker: &Docker, exec_id: &str) -> Result<Option<i64>, Engine> {
    for _ in 0..100 {
        match exec_process(&docker.inspect_exec(exec_id).await?) {
            ExecProcess::Starting => tokio::time::sleep(Duration::from_millis(10)).await,
            ExecProcess::Running(pid) => return Ok(Some(pid)),
            ExecProcess::Ended => return Ok(None),
        }
    }
    Ok(None)
}

/// `container/exec` on the json carriage: output items, then the exit code.
pub(crate) fn exec_json(
    inner: Arc<Inner>,
    caller: Caller,
    mut i: ExecInput,
) -> impl Stream<Item = Result<ExecItem, CallError>> + Send + 'static {
    let setup = async move {
        if i.stdin {
            return Err(invalid_input("stdin needs the raw carriage"));
        }
        let (docker, id) = inner.container(&caller, &i.id).await?;
        i.id = id;
        let (exec, guard) = start_exec(&docker, &i, false, &inner.config).await?;
        let exit = async move {
            let exit_code = exec_exit(&docker, &guard.exec_id).await?;
            guard.disarm();
            Ok(ExecItem::Exit {
                exit_code,
                terminal: true,
            })
        };
        Ok(exec_items(exec.output, exec.stdin, exit))
    };
    one_then_many(setup)
}

/// `container/exec` on the raw carriage.
pub(crate) async fn exec_raw(
    inner: Arc<Inner>,
    caller: Caller,
    mut i: ExecInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, id) = inner.container(&caller, &i.id).await?;
    i.id = id;
    let (exec, guard) = start_exec(&docker, &i, i.stdin, &inner.config).await?;
    let (input, mut out) = io.split();
    out.accept(json!({"execId": exec.id, "tty": i.tty})).await?;
    let controls = Controls::Exec {
        guard: &guard,
        docker: &docker,
    };
    pump(exec.output, exec.stdin, input, &mut out, i.tty, controls).await?;
    let code = exec_exit(&docker, &guard.exec_id).await?;
    guard.disarm();
    Ok(exit_code_i32(code))
}

/// The json carriage's items of an exec or a run: its output, then what
/// `exit` resolves to. The engine connection's write half is kept, unused,
/// until the output ends, so the connection is only taken down with it.
fn exec_items(
    output: Output,
    stdin: Stdin,
    exit: impl Future<Output = Result<ExecItem, CallError>> + Send + 'static,
) -> impl Stream<Item = Result<ExecItem, CallError>> + Send + 'static {
    output
        .map(move |item| {
            let _held = &stdin;
            item.map(exec_item).map_err(error::container)
        })
        .chain(futures::stream::once(exit))
}

fn exec_item(output: LogOutput) -> ExecItem {
    let (stream, bytes) = split_output(output);
    ExecItem::Output {
        stream,
        data: Data::from_bytes(&bytes),
    }
}

/// Which stream a piece of engine output belongs to (a TTY's output, and
/// stdin echoed back, count as stdout), and its bytes.
pub(crate) fn split_output(output: LogOutput) -> (StreamName, Bytes) {
    match output {
        LogOutput::StdErr { message } => (StreamName::Stderr, message),
        LogOutput::StdOut { message }
        | LogOutput::Console { message }
        | LogOutput::StdIn { message } => (StreamName::Stdout, message),
    }
}

fn exit_code_i32(code: i64) -> i32 {
    i32::try_from(code).unwrap_or(i32::MAX)
}

// -------------------------------------------------------- attach and run

/// Where resize and signal go.
enum Controls<'a> {
    Exec {
        guard: &'a ExecGuard,
        docker: &'a Docker,
    },
    Container {
        docker: &'a Docker,
        id: &'a str,
    },
}

impl Controls<'_> {
    async fn resize(&self, cols: u16, rows: u16) {
        let (w, h) = (i32::from(cols), i32::from(rows));
        let result = match self {
            Controls::Exec { guard, docker } => {
                let size = q::ResizeExecOptions { w, h };
                docker.resize_exec(&guard.exec_id, size).await
            }
            Controls::Container { docker, id } => {
                let size = q::ResizeContainerTTYOptions { w, h };
                docker.resize_container_tty(id, size).await
            }
        };
        if let Err(e) = result {
            tracing::warn!("resize to {cols}x{rows} failed: {e}");
        }
    }

    async fn signal(&self, name: &str) {
        match self {
            Controls::Exec { guard, .. } => guard.signal(name).await,
            Controls::Container { docker, id } => {
                let Some(sig) = signal::parse(name) else {
                    tracing::warn!(container = id, signal = name, "unknown signal, dropped");
                    return;
                };
                let options = q::KillContainerOptions {
                    signal: sig.as_raw().to_string(),
                };
                if let Err(e) = docker.kill_container(id, Some(options)).await {
                    tracing::warn!(container = id, "signal {name} failed: {e}");
                }
            }
        }
    }
}

/// Moves a session's bytes both ways until the output ends: stdin,
/// resize and signal from the client to the engine, stdout and stderr
/// back. Closing stdin is an in-band `^D` on a terminal (a shutdown would
/// cut the whole stream there) and a shutdown of the write half otherwise.
async fn pump(
    mut output: Output,
    mut stdin: Stdin,
    mut input: RawInput,
    out: &mut RawOutput,
    tty: bool,
    controls: Controls<'_>,
) -> Result<(), CallError> {
    let forward_out = async {
        while let Some(item) = output.next().await {
            let (stream, bytes) = split_output(item.map_err(error::container)?);
            match stream {
                StreamName::Stdout => out.stdout(bytes).await?,
                StreamName::Stderr => out.stderr(bytes).await?,
            }
        }
        Ok::<(), CallError>(())
    };
    let forward_in = async {
        let mut open = true;
        while let Some(item) = input.next().await {
            match item {
                // Writes fail once the process has closed its stdin or
                // exited; the rest of the input has nowhere to go.
                ServerEvent::Stdin(bytes) if open => open = stdin.write_all(&bytes).await.is_ok(),
                ServerEvent::Stdin(_) => {}
                ServerEvent::StdinClosed if tty => {
                    let _ = stdin.write_all(b"\x04").await;
                }
                ServerEvent::StdinClosed => {
                    let _ = stdin.shutdown().await;
                    open = false;
                }
                ServerEvent::Resize { cols, rows } => controls.resize(cols, rows).await,
                ServerEvent::Signal(name) => controls.signal(&name).await,
                // The request, an abort or an error never reach a handler.
                _ => {}
            }
        }
        future::pending::<()>().await
    };
    futures::pin_mut!(forward_out, forward_in);
    match future::select(forward_out, forward_in).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Ok(()),
    }
}

/// The exit code of a container, once it has stopped.
pub(crate) async fn wait_exit(docker: &Docker, id: &str) -> Result<i64, CallError> {
    let options = q::WaitContainerOptions {
        condition: "not-running".into(),
    };
    match docker.wait_container(id, Some(options)).next().await {
        Some(Ok(answer)) => Ok(answer.status_code),
        // bollard reports a non-zero exit as an error.
        Some(Err(Engine::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(error::container(e)),
        None => Err(CallError::new(
            DOCKER_ERROR,
            format!("the engine ended the wait for {id} without an answer"),
        )),
    }
}

/// `container/attach`: the container's stdio; ends with its exit code.
pub(crate) async fn attach(
    inner: Arc<Inner>,
    caller: Caller,
    i: AttachInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, info) = inner.inspect_owned(&caller, &i.id).await?;
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
        let controls = Controls::Container {
            docker: &docker,
            id: &id,
        };
        pump(
            attached.output,
            attached.input,
            input,
            &mut out,
            tty,
            controls,
        )
        .await
    };
    futures::pin_mut!(exit, session);
    let code = match future::select(session, exit).await {
        Either::Left((pumped, exit)) => {
            pumped?;
            exit.await?
        }
        Either::Right((code, session)) => {
            session.await?;
            code?
        }
    };
    Ok(exit_code_i32(code))
}

/// Kills (and with `remove`, removes) a container whose `run` call ended
/// before it did.
struct ContainerGuard {
    docker: Docker,
    id: String,
    remove: bool,
    /// The service the run was made by: the cleanup retries an
    /// unreachable engine for as long as it lives.
    service: Weak<Inner>,
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
                Err(Engine::DockerResponseServerError {
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
async fn clean_up_run(docker: Docker, id: String, remove: bool, service: Weak<Inner>) {
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
            Err(Engine::DockerResponseServerError {
                status_code: 404, ..
            }) => break,
            Err(Engine::DockerResponseServerError {
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

struct Started {
    docker: Docker,
    guard: ContainerGuard,
    tty: bool,
    output: Output,
    stdin: Stdin,
}

/// Creates, attaches and starts `spec`'s container.
async fn start_run(
    inner: &Arc<Inner>,
    caller: &Caller,
    spec: &ContainerSpec,
) -> Result<Started, CallError> {
    // dockwire removes the container itself after reading its exit code;
    // the engine's auto-remove would race with that read.
    let body = inner.create_body(caller, spec, false)?;
    let docker = inner.docker().await?;
    let options = q::CreateContainerOptions {
        name: spec.name.clone(),
        ..Default::default()
    };
    let service = Arc::downgrade(inner);
    let guard = create_guarded(&docker, options, body, spec.auto_remove, service).await?;
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
    service: Weak<Inner>,
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
pub(crate) fn run_json(
    inner: Arc<Inner>,
    caller: Caller,
    spec: ContainerSpec,
) -> impl Stream<Item = Result<ExecItem, CallError>> + Send + 'static {
    let setup = async move {
        if spec.stdin {
            return Err(invalid_input("stdin needs the raw carriage"));
        }
        let started = start_run(&inner, &caller, &spec).await?;
        let guard = started.guard;
        let exit = async move {
            let exit_code = guard.finish().await?;
            Ok(ExecItem::Exit {
                exit_code,
                terminal: true,
            })
        };
        Ok(exec_items(started.output, started.stdin, exit))
    };
    one_then_many(setup)
}

/// `container/run` on the raw carriage.
pub(crate) async fn run_raw(
    inner: Arc<Inner>,
    caller: Caller,
    spec: ContainerSpec,
    io: RawIo,
) -> Result<i32, CallError> {
    let started = start_run(&inner, &caller, &spec).await?;
    let (input, mut out) = io.split();
    out.accept(json!({"id": started.guard.id, "tty": started.tty}))
        .await?;
    let controls = Controls::Container {
        docker: &started.docker,
        id: &started.guard.id,
    };
    pump(
        started.output,
        started.stdin,
        input,
        &mut out,
        started.tty,
        controls,
    )
    .await?;
    Ok(exit_code_i32(started.guard.finish().await?))
}

// -------------------------------------------------------------- archives

/// Go's `os.ModeDir`, as the engine reports a path's mode.
const GO_MODE_DIR: u32 = 1 << 31;

/// What is at `path` in container `id`.
async fn path_stat(docker: &Docker, id: &str, path: &str) -> Result<PathStat, CallError> {
    let options = q::ContainerArchiveInfoOptions {
        path: path.to_owned(),
    };
    let stat = docker
        .get_container_archive_info(id, Some(options))
        .await
        .map_err(error::container)?;
    Ok(PathStat {
        name: stat.name,
        size: stat.size,
        mode: stat.file_mode,
        mtime: stat.modification_time.unwrap_or_default(),
        link_target: stat.link_target,
    })
}

/// `container/archive-get`: accepted with the path's stat, then the tar
/// as stdout.
pub(crate) async fn archive_get(
    inner: Arc<Inner>,
    caller: Caller,
    mut i: ArchiveGet,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, id) = inner.container(&caller, &i.id).await?;
    i.id = id;
    let stat = path_stat(&docker, &i.id, &i.path).await?;
    let (_input, mut out) = io.split();
    out.accept(json!(stat)).await?;
    let options = q::DownloadFromContainerOptions { path: i.path };
    let mut tar = docker.download_from_container(&i.id, Some(options));
    while let Some(chunk) = tar.next().await {
        out.stdout(chunk.map_err(error::container)?).await?;
    }
    Ok(0)
}

/// `container/archive-put`: stdin is a tar, unpacked into `path` when
/// stdin closes. A session that ends without closing stdin uploads
/// nothing whole: the request to the engine is dropped unfinished.
pub(crate) async fn archive_put(
    inner: Arc<Inner>,
    caller: Caller,
    mut i: ArchivePut,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, id) = inner.container(&caller, &i.id).await?;
    i.id = id;
    // Check the container and the directory before accepting any bytes.
    let stat = path_stat(&docker, &i.id, &i.path).await?;
    if stat.mode & GO_MODE_DIR == 0 {
        return Err(invalid_input(format!("{} is not a directory", i.path)));
    }
    let (input, mut out) = io.split();
    out.accept(json!({})).await?;
    let tar = input
        .take_while(|item| future::ready(*item != ServerEvent::StdinClosed))
        .filter_map(|item| {
            future::ready(match item {
                ServerEvent::Stdin(bytes) => Some(bytes),
                _ => None,
            })
        });
    let options = q::UploadToContainerOptions {
        path: i.path,
        ..Default::default()
    };
    docker
        .upload_to_container(&i.id, Some(options), bollard::body_stream(tar))
        .await
        .map_err(error::container)?;
    Ok(0)
}

// ----------------------------------------------------------------- helpers

/// A stream that first sets up (one fallible step), then yields what the
/// setup made; a failed setup is the stream's one item.
pub(crate) fn one_then_many<S, T>(
    setup: impl Future<Output = Result<S, CallError>> + Send + 'static,
) -> impl Stream<Item = Result<T, CallError>> + Send + 'static
where
    S: Stream<Item = Result<T, CallError>> + Send + 'static,
    T: Send + 'static,
{
    futures::stream::once(setup)
        .map(|made| match made {
            Ok(items) => Either::Left(items),
            Err(e) => Either::Right(futures::stream::once(future::ready(Err(e)))),
        })
        .flatten()
}

/// Cleanups started and not yet finished, in this process.
static PENDING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one cleanup while it lives.
struct Pending;

impl Pending {
    fn new() -> Self {
        PENDING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits until every cleanup this process started has finished, or for
/// `limit` at most; whether they all finished.
pub(crate) async fn settle(limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while PENDING.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Runs a cleanup on the tokio runtime the call ran on (the caller's, or
/// async-compat's), so that it outlives the dropped call.
fn spawn_cleanup(cleanup: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let pending = Pending::new();
            handle.spawn(async move {
                cleanup.await;
                drop(pending);
            });
        }
        Err(_) => {
            tracing::warn!("no runtime to run a cleanup on; the engine keeps what the call made");
        }
    }
}
