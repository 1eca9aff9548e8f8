//! `process/*`: detached processes. `process/start` starts an exec as
//! `container/exec` does (its guard, its journal record), answers at once
//! with a fresh id, and leaves a task of its own pumping the exec's
//! output into the process's buffer until it ends; the others find the
//! process among the caller's ([`crate::processes`]) and list, wait for,
//! signal, read, attach to or remove it.
//!
//! A running process holds its container as a running call does (its
//! idle timeout does not pass), and ends when its container goes: its
//! output ends, and it is `lost` (no exit code to tell).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dockwire_core::{CallError, ServerEvent};
use dockwire_service::{CallLink, RawIo, RawOutput};
use futures::future::{self, Either};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::access::Caller;
use crate::catalog::*;
use crate::dialect;
use crate::engine::{Engine, exec_exit};
use crate::error::{self, invalid_input};
use crate::exec::{self, ExecGuard};
use crate::processes::{End, NewProcess, Process, ProcessStdin, Session, Slot};
use crate::run;
use crate::signal;
use crate::stdio::{self, exit_code_i32};

/// Call numbers for running processes' hold on their containers (see
/// [`crate::lifetime`]): from the top half, apart from calls' own.
static HOLDS: AtomicU64 = AtomicU64::new(1 << 63);

/// The longest tag a process may have: a label, not a store.
const MAX_TAG: usize = 256;

/// `process/start`.
pub(crate) async fn start(
    engine: Arc<Engine>,
    caller: Caller,
    i: ProcessStart,
) -> Result<ProcessStarted, CallError> {
    if i.cmd.is_empty() {
        return Err(invalid_input("`cmd` is empty"));
    }
    if i.tag.as_ref().is_some_and(|t| t.len() > MAX_TAG) {
        return Err(invalid_input(format!(
            "`tag` is longer than {MAX_TAG} bytes"
        )));
    }
    let slot = engine.processes.reserve(&caller, i.buffer)?;
    let (docker, container) = engine.container(&caller, &i.container).await?;
    let input = ExecInput {
        id: container,
        cmd: i.cmd.clone(),
        env: i.env.clone(),
        workdir: i.workdir.clone(),
        user: i.user.clone(),
        tty: i.tty,
        stdin: i.stdin,
    };
    let new = NewProcess {
        tag: i.tag.clone(),
        container_shown: i.container.clone(),
        cmd: i.cmd,
        tty: i.tty,
        session_grace: None,
    };
    let (process, _) = launch(&engine, slot, docker, input, new).await?;
    Ok(ProcessStarted {
        id: process.id.clone(),
        tag: i.tag,
    })
}

/// Starts `input`'s exec (its container resolved) as the process `new` in
/// `slot`, its output pumped into the process's buffer by a task of its
/// own: the process and its exec's id.
pub(crate) async fn launch(
    engine: &Arc<Engine>,
    slot: Slot<'_>,
    docker: bollard::Docker,
    input: ExecInput,
    new: NewProcess,
) -> Result<(Arc<Process>, String), CallError> {
    let (started, guard) = exec::start(&docker, &input, input.stdin, &engine.config).await?;
    let exec_id = started.id.clone();
    let guard = Arc::new(guard);
    let process = engine.processes.register(slot, new)?;
    let stdin = input.stdin.then_some(started.stdin);
    process.started(stdin, guard.clone());
    let container = input.id;
    let pumped = process.clone();
    let (output, held) = (started.output, container.clone());
    keep(engine, &process, &held, async move {
        pump(&pumped, output, &docker, &container, &guard).await;
    })?;
    Ok((process, exec_id))
}

/// Registers a `run`'s container, created, attached to and started, as
/// the process `new` in `slot` (an interactive session's: the container
/// is its process), its output pumped into the process's buffer by a task
/// of its own: the process and the container's id. Its end is the run's
/// (see [`run::RunControl`]).
pub(crate) fn launch_run(
    engine: &Arc<Engine>,
    slot: Slot<'_>,
    started: run::Started,
    new: NewProcess,
) -> Result<(Arc<Process>, String), CallError> {
    let id = started.id().to_owned();
    let (control, output, stdin) = started.into_control();
    // Dropped on a failure below: the container is cleaned up as a
    // cancelled run's.
    let control = Arc::new(control);
    let process = engine.processes.register(slot, new)?;
    process.started(Some(stdin), control.clone());
    let pumped = process.clone();
    keep(engine, &process, &id, async move {
        let failed = pump_output(&pumped, output).await;
        let end = match control.finish().await {
            End::Lost(code, why) => End::Lost(code, failed.unwrap_or(why)),
            end => end,
        };
        log_lost(&pumped, &end);
        pumped.finish(end);
    })?;
    Ok((process, id))
}

/// Registers a container attached to with stdin as the process `new` in
/// `slot` (an interactive session's), its output pumped into the
/// process's buffer by a task of its own until the container exits (its
/// exit code) or the session detaches (killed: lost, the container runs
/// on).
pub(crate) fn launch_attach(
    engine: &Arc<Engine>,
    slot: Slot<'_>,
    attached: run::Attached,
    new: NewProcess,
) -> Result<Arc<Process>, CallError> {
    let run::Attached {
        id,
        control,
        output,
        stdin,
        exit,
        ..
    } = attached;
    let control = Arc::new(control);
    let process = match engine.processes.register(slot, new) {
        Ok(process) => process,
        Err(e) => {
            exit.abort();
            return Err(e);
        }
    };
    process.started(Some(stdin), control.clone());
    let pumped = process.clone();
    keep(engine, &process, &id, async move {
        let pumping = pump_output(&pumped, output);
        let detached = control.detached();
        futures::pin_mut!(pumping, detached);
        let end = match future::select(pumping, detached).await {
            Either::Left((failed, _)) => match exit.await {
                Ok(Ok(code)) => End::Exited(code),
                Ok(Err(e)) => End::Lost(e.code, failed.unwrap_or(e.message)),
                Err(_) => End::Lost(DOCKER_ERROR, "its exit code was not read".into()),
            },
            Either::Right(((), _)) => {
                exit.abort();
                End::Lost(DOCKER_ERROR, "detached".into())
            }
        };
        log_lost(&pumped, &end);
        pumped.finish(end);
    })?;
    Ok(process)
}

/// Runs `pump` (a process's output and end) on a task of its own, holding
/// `container` while it runs (its idle timeout does not pass).
fn keep(
    engine: &Arc<Engine>,
    process: &Arc<Process>,
    container: &str,
    pump: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CallError> {
    let engine = engine.clone();
    let hold = HOLDS.fetch_add(1, Ordering::Relaxed);
    engine.lifetimes.begin_call(hold);
    engine.lifetimes.touch(hold, container);
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        engine.lifetimes.end_call(hold);
        engine.processes.discard(&process.id);
        process.kill();
        return Err(CallError::new(
            dockwire_core::ErrorCode::INTERNAL,
            "no runtime to keep a detached process on",
        ));
    };
    drop(runtime.spawn(async move {
        pump.await;
        engine.lifetimes.end_call(hold);
    }));
    Ok(())
}

/// Moves a process's output into its buffer until it ends: why it
/// failed, if it did.
async fn pump_output(process: &Process, mut output: stdio::Output) -> Option<String> {
    while let Some(item) = output.next().await {
        match item {
            Ok(item) => {
                let (stream, bytes) = stdio::split_output(item);
                // A session's output waits for its client.
                process.room().await;
                process.push(stream, &bytes);
            }
            Err(e) => return Some(e.to_string()),
        }
    }
    None
}

fn log_lost(process: &Process, end: &End) {
    if let End::Lost(_, why) = end {
        tracing::info!(process = %process.id, "a detached process was lost: {why}");
    }
}

/// Moves the exec's output into the process's buffer until it ends, then
/// records how it ended.
async fn pump(
    process: &Process,
    output: stdio::Output,
    docker: &bollard::Docker,
    container: &str,
    guard: &ExecGuard,
) {
    let failed = pump_output(process, output).await;
    let exit = exec_exit(docker, &guard.exec_id).await;
    // The engine still tells an exit code (126) for an exec whose
    // container was stopped or removed under it: that is no exit of the
    // process's own.
    let container_running = dialect::inspect_container(docker, container)
        .await
        .map(|info| info.state.and_then(|s| s.running) == Some(true));
    let container_gone = match container_running {
        Ok(running) => !running,
        Err(e) => error::container(e).code == CONTAINER_NOT_FOUND,
    };
    let end = match exit {
        _ if container_gone => {
            End::Lost(DOCKER_ERROR, "its container stopped or was removed".into())
        }
        Ok(code) => End::Exited(code),
        Err(e) => End::Lost(e.code, failed.unwrap_or(e.message)),
    };
    log_lost(process, &end);
    process.finish(end);
}

/// `process/list`.
pub(crate) async fn list(
    engine: Arc<Engine>,
    caller: Caller,
    _: ProcessList,
) -> Result<Vec<ProcessInfo>, CallError> {
    Ok(engine
        .processes
        .list(&caller)
        .iter()
        .map(|p| p.info())
        .collect())
}

/// `process/wait`: its exit code, once it has ended.
pub(crate) async fn wait(
    engine: Arc<Engine>,
    caller: Caller,
    i: ProcessWait,
) -> Result<ProcessExited, CallError> {
    let process = engine.processes.find(&caller, &i.id)?;
    let mut changes = process.watch();
    loop {
        changes.borrow_and_update();
        match process.end() {
            Some(end) => {
                return exit_of(&process.id, end).map(|exit_code| ProcessExited { exit_code });
            }
            None => {
                if changes.changed().await.is_err() {
                    let gone = End::Lost(DOCKER_ERROR, "gone".into());
                    return exit_of(&process.id, gone).map(|exit_code| ProcessExited { exit_code });
                }
            }
        }
    }
}

/// `process/signal`.
pub(crate) async fn signal(
    engine: Arc<Engine>,
    caller: Caller,
    i: ProcessSignal,
) -> Result<Done, CallError> {
    let process = engine.processes.find(&caller, &i.id)?;
    let Some(sig) = signal::parse(&i.signal) else {
        return Err(invalid_input(format!("unknown signal {:?}", i.signal)));
    };
    let Some(control) = process.control() else {
        return Err(CallError::new(
            CONFLICT,
            format!("process {} is not running", process.id),
        ));
    };
    if sig == rustix::process::Signal::KILL {
        process.kill();
    } else {
        control.signal(&i.signal).await;
    }
    Ok(Done {})
}

/// `process/remove`: kills it first if it runs.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    caller: Caller,
    i: ProcessRemove,
) -> Result<Done, CallError> {
    engine.processes.remove(&caller, &i.id)?;
    Ok(Done {})
}

/// `process/logs`: the held output of both streams from the offsets
/// asked, stdout's and stderr's items interleaved as read; with `follow`,
/// then the live output; the end last once the process has ended.
pub(crate) fn logs(
    engine: Arc<Engine>,
    caller: Caller,
    i: ProcessLogs,
) -> impl Stream<Item = Result<ProcessLogItem, CallError>> + Send + 'static {
    let found = engine.processes.find(&caller, &i.id);
    let from = [i.stdout_from.unwrap_or(0), i.stderr_from.unwrap_or(0)];
    let state = found.map(|process| (process.watch(), process, from, false));
    futures::stream::unfold(Some(state), move |state| async move {
        let (mut changes, process, mut from, done) = match state? {
            Ok(state) => state,
            Err(e) => return Some((vec![Err(e)], None)),
        };
        if done {
            return None;
        }
        loop {
            changes.borrow_and_update();
            let mut items = Vec::new();
            let mut ended = false;
            for (slot, stream) in [StreamName::Stdout, StreamName::Stderr]
                .into_iter()
                .enumerate()
            {
                let (at, chunks, end) = process.read(stream, from[slot]);
                ended = end;
                let mut offset = at;
                for chunk in chunks {
                    let len = chunk.len() as u64;
                    items.push(Ok(ProcessLogItem::Output {
                        stream,
                        offset,
                        data: Data::from_bytes(&chunk),
                    }));
                    offset += len;
                }
                from[slot] = offset;
            }
            if !items.is_empty() {
                return Some((items, Some(Ok((changes, process, from, false)))));
            }
            if ended {
                let exit_code = match process.end() {
                    Some(End::Exited(code)) => Some(code),
                    _ => None,
                };
                let end = ProcessLogItem::End {
                    exit_code,
                    terminal: true,
                };
                return Some((vec![Ok(end)], Some(Ok((changes, process, from, true)))));
            }
            if !i.follow || changes.changed().await.is_err() {
                return None;
            }
        }
    })
    .flat_map(futures::stream::iter)
}

/// `process/attach`: the replay from the offsets asked, then live output,
/// then the exit code; stdin (when held), resize and signal in.
pub(crate) async fn attach(
    engine: Arc<Engine>,
    caller: Caller,
    i: ProcessAttach,
    io: RawIo,
) -> Result<i32, CallError> {
    let process = engine.processes.find(&caller, &i.id)?;
    let asked = match i.from {
        AttachFrom::Oldest(_) => [None, None],
        AttachFrom::Offset(n) => [Some(n), Some(n)],
        AttachFrom::Streams { stdout, stderr } => [Some(stdout), Some(stderr)],
    };
    attach_to(&engine, &process, asked, i.stdin, io, |accepted| {
        serde_json::to_value(&accepted).expect("a struct serializes")
    })
    .await
}

/// Attaches to `process` from the offsets `asked` (per stream, `None` for
/// the oldest held), holding its stdin if `stdin`, accepted with what
/// `describe` makes of the attach. Holding a session's stdin resumes it:
/// its end then decides the session's ([`SessionEnd`]).
pub(crate) async fn attach_to(
    engine: &Arc<Engine>,
    process: &Arc<Process>,
    asked: [Option<u64>; 2],
    stdin: bool,
    io: RawIo,
    describe: impl FnOnce(ProcessAttached) -> serde_json::Value,
) -> Result<i32, CallError> {
    let process = process.clone();
    let mut held = match stdin {
        true => Some(StdinHold {
            process: process.clone(),
            stdin: match process.take_stdin() {
                Ok(stdin) => Some(stdin),
                // A session whose client closed stdin, or that has ended
                // (its client resuming for the rest and the exit code),
                // resumes without it.
                Err(_)
                    if process.session.is_some()
                        && (process.stdin_closed() || process.end().is_some()) =>
                {
                    None
                }
                Err(e) => return Err(e),
            },
        }),
        false => None,
    };
    let mut session = match (&held, &process.session) {
        (Some(_), Some(_)) => {
            process.note_resumed();
            Some(SessionEnd {
                engine: engine.clone(),
                process: process.clone(),
                link: io.link(),
                done: false,
            })
        }
        _ => None,
    };
    let mut from = [0u64; 2];
    let mut starts = [ReplayStart { from: 0, missed: 0 }; 2];
    for (slot, stream) in [StreamName::Stdout, StreamName::Stderr]
        .into_iter()
        .enumerate()
    {
        let oldest = process.offsets(stream).oldest;
        let start = asked[slot].map_or(oldest, |a| a.max(oldest));
        from[slot] = start;
        starts[slot] = ReplayStart {
            from: start,
            missed: asked[slot].map_or(0, |a| start - a),
        };
    }
    let (mut input, mut out) = io.split();
    let accepted = ProcessAttached {
        id: process.id.clone(),
        tty: process.tty,
        stdin: held.is_some(),
        stdout: starts[0],
        stderr: starts[1],
        stdin_delivered: process.stdin_delivered(),
        stdin_closed: process.stdin_closed(),
    };
    out.accept(describe(accepted)).await?;
    let forward_out = replay_then_follow(&process, from, &mut out);
    let tty = process.tty;
    let forward_in = async {
        while let Some(event) = input.next().await {
            match event {
                // Writes fail once the process has closed its stdin or
                // ended; the rest of the input has nowhere to go.
                ServerEvent::Stdin(bytes) => {
                    let Some(hold) = held.as_mut() else { continue };
                    if let Some(stdin) = hold.stdin.as_mut() {
                        if write_counted(stdin, &bytes, &process).await.is_err() {
                            hold.stdin = None;
                        }
                    }
                }
                // An in-band ^D on a terminal; a shutdown otherwise, after
                // which no later attacher gets stdin.
                ServerEvent::StdinClosed => {
                    let Some(hold) = held.as_mut() else { continue };
                    if let Some(stdin) = hold.stdin.as_mut() {
                        match tty {
                            true => {
                                let _ = stdin.write_all(b"\x04").await;
                            }
                            false => {
                                let _ = stdin.shutdown().await;
                                hold.stdin = None;
                                process.note_stdin_closed();
                            }
                        }
                    }
                }
                ServerEvent::Resize { cols, rows } => {
                    if let Some(control) = process.control() {
                        control.resize(cols, rows).await;
                    }
                }
                ServerEvent::Signal(name) => {
                    if let Some(control) = process.control() {
                        control.signal(&name).await;
                    }
                }
                _ => {}
            }
        }
        future::pending::<()>().await
    };
    futures::pin_mut!(forward_out, forward_in);
    let ended = match future::select(forward_out, forward_in).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Ok(()),
    };
    // Returned, not dropped: the session is over, whatever its end.
    if let Some(session) = session.as_mut() {
        session.done = true;
    }
    ended?;
    let end = process
        .end()
        .unwrap_or(End::Lost(DOCKER_ERROR, "gone".into()));
    exit_of(&process.id, end).map(exit_code_i32)
}

/// Writes `bytes` to a process's stdin, counting each write as it lands:
/// the count stays exact even when the call is dropped mid-way.
async fn write_counted(
    stdin: &mut ProcessStdin,
    mut bytes: &[u8],
    process: &Process,
) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = stdin.write(bytes).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        process.note_delivered(n);
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// The end of an attach holding a session's stdin: returned once the
/// process ended, the session is over, but its process is kept for the
/// grace period (the exit code may have gone out on a link that died
/// with it: a client resuming then still gets the rest and the code);
/// dropped because the connection was lost, the process waits for its
/// client for the grace period; dropped otherwise (cancelled: aborted,
/// reset, closed), or returned with an error while it runs, it is killed
/// and forgotten at once, as an exec's call is.
struct SessionEnd {
    engine: Arc<Engine>,
    process: Arc<Process>,
    link: CallLink,
    done: bool,
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        let processes = &self.engine.processes;
        let ended = self.process.end().is_some();
        if self.done && !ended {
            processes.forget(&self.process, "its session ended");
            return;
        }
        let Some(session) = &self.process.session else {
            return;
        };
        if !self.done && !self.link.is_lost() {
            processes.forget(&self.process, "its session was cancelled");
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            processes.forget(&self.process, "no runtime to wait for its client on");
            return;
        };
        let resumes = session.resumes();
        let grace = session.grace;
        match self.done {
            true => tracing::debug!(
                process = %self.process.id,
                "a session ended: kept {grace:?} for a client whose link died with its exit"
            ),
            false => tracing::info!(
                process = %self.process.id,
                "a session's connection was lost: kept {grace:?} for its client to resume"
            ),
        }
        let engine = self.engine.clone();
        let process = self.process.clone();
        drop(runtime.spawn(async move {
            tokio::time::sleep(grace).await;
            let resumed = process.session.as_ref().map(Session::resumes) != Some(resumes);
            if !resumed {
                tracing::info!(process = %process.id, "a lost session's grace period passed");
                engine.processes.forget(
                    &process,
                    "its session's link was lost and not resumed in time",
                );
            }
        }));
    }
}

/// Sends `process`'s output from `from` (per stream) on, held then live,
/// until it has ended and all is sent.
async fn replay_then_follow(
    process: &Process,
    mut from: [u64; 2],
    out: &mut RawOutput,
) -> Result<(), CallError> {
    let mut changes = process.watch();
    loop {
        changes.borrow_and_update();
        let mut sent = false;
        let mut ended = true;
        for (slot, stream) in [StreamName::Stdout, StreamName::Stderr]
            .into_iter()
            .enumerate()
        {
            let (at, chunks, end) = process.read(stream, from[slot]);
            ended &= end;
            if at > from[slot] {
                tracing::warn!(
                    process = %process.id,
                    skipped = at - from[slot],
                    "an attacher fell behind the process's buffer"
                );
            }
            let mut offset = at;
            for chunk in chunks {
                offset += chunk.len() as u64;
                send(out, stream, chunk).await?;
                process.note_sent(stream, offset);
                sent = true;
            }
            from[slot] = offset;
        }
        if sent {
            continue;
        }
        if ended {
            return Ok(());
        }
        if changes.changed().await.is_err() {
            return Ok(());
        }
    }
}

async fn send(out: &mut RawOutput, stream: StreamName, bytes: Bytes) -> Result<(), CallError> {
    match stream {
        StreamName::Stdout => out.stdout(bytes).await?,
        StreamName::Stderr => out.stderr(bytes).await?,
    }
    Ok(())
}

/// An attacher's hold on the process's stdin, given back when it ends.
struct StdinHold {
    process: Arc<Process>,
    stdin: Option<ProcessStdin>,
}

impl Drop for StdinHold {
    fn drop(&mut self) {
        if let Some(stdin) = self.stdin.take() {
            self.process.return_stdin(stdin);
        }
    }
}

/// A process's exit code, or the error of one lost.
fn exit_of(id: &str, end: End) -> Result<i64, CallError> {
    match end {
        End::Exited(code) => Ok(code),
        End::Lost(code, why) => Err(CallError::new(
            code,
            format!("process {id} ended with no exit code: {why}"),
        )),
    }
}
