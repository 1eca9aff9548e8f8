//! Interactive sessions that survive a dropped link: `container/exec` on
//! the raw carriage with `stdin`. Such an exec runs as a process of the
//! registry ([`crate::processes`], marked a session's) whose first
//! attacher is the call itself: its acceptance names the process
//! (`session`), its output goes through the process's buffer with its
//! offsets, and the stdin bytes the process was given are counted. When
//! the call is cancelled (aborted, reset, its connection closed) the
//! exec is killed at once, as any exec's; when its connection is lost
//! (the idle timeout passed, see `dockwire_service::CallLink`) the
//! process waits the operator's grace period
//! ([`Config::session_grace`](crate::Config::session_grace)) for the same
//! peer to resume it with `process/attach` (`stdin`, the offsets it
//! wrote), and is killed and forgotten if none comes.
//!
//! With no grace period, or when the peer has no room for one more
//! process, an interactive exec is a plain one (not resumable).

use std::sync::Arc;

use dockwire_core::CallError;
use dockwire_service::RawIo;
use serde_json::json;

use crate::access::Caller;
use crate::catalog::{AttachInput, ExecInput, RunInput};
use crate::engine::Engine;
use crate::exec;
use crate::process;
use crate::processes::{NewProcess, Slot};
use crate::run;

/// `container/exec` on the raw carriage: resumable with `stdin`.
pub(crate) async fn exec(
    engine: Arc<Engine>,
    caller: Caller,
    i: ExecInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let grace = engine.config.session_grace;
    if !i.stdin || grace.is_zero() {
        return exec::session(engine, caller, i, io).await;
    }
    // The operator's cap: the buffer also holds what is on its way to the
    // client (see `Process::room`).
    let buffer = engine.config.process_buffer_max;
    let refused = match engine.processes.reserve(&caller, Some(buffer)) {
        Ok(slot) => return resumable(&engine, &caller, slot, i, io).await,
        Err(e) => e,
    };
    tracing::info!(
        "an interactive exec runs without resume: {}",
        refused.message
    );
    exec::session(engine, caller, i, io).await
}

/// `container/run` on the raw carriage: resumable with `stdin`, as an
/// exec. The container is the session's process: a lost run waits the
/// grace period, and is then cleaned up as a cancelled run (killed, or
/// removed with `--rm`).
pub(crate) async fn run(
    engine: Arc<Engine>,
    caller: Caller,
    i: RunInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let grace = engine.config.session_grace;
    if !i.0.stdin || grace.is_zero() {
        return run::session(engine, caller, i, io).await;
    }
    let buffer = engine.config.process_buffer_max;
    let refused = match engine.processes.reserve(&caller, Some(buffer)) {
        Ok(slot) => return resumable_run(&engine, &caller, slot, i, io).await,
        Err(e) => e,
    };
    tracing::info!(
        "an interactive run runs without resume: {}",
        refused.message
    );
    run::session(engine, caller, i, io).await
}

/// The run's container as a session's process, attached to by this call.
async fn resumable_run(
    engine: &Arc<Engine>,
    caller: &Caller,
    slot: Slot<'_>,
    RunInput(spec): RunInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let grace = engine.config.session_grace;
    let started = run::start(engine, caller, &spec).await?;
    let tty = started.tty;
    let mut cmd = spec.entrypoint.clone().unwrap_or_default();
    cmd.extend(spec.cmd.iter().cloned());
    let new = NewProcess {
        tag: None,
        container_shown: started.id().to_owned(),
        cmd,
        tty,
        session_grace: Some(grace),
    };
    let (process, id) = process::launch_run(engine, slot, started, new)?;
    let from = [Some(0), Some(0)];
    process::attach_to(
        engine,
        &process,
        from,
        true,
        io,
        move |attached| json!({"id": id, "tty": tty, "session": attached.id}),
    )
    .await
}

/// `container/attach` on the raw carriage: resumable with `stdin` (on a
/// container created with it), as an exec. The container is the
/// session's process, but it is not ours to kill: a cancelled attach, or
/// a lost one past the grace period, detaches and the container runs on.
pub(crate) async fn attach(
    engine: Arc<Engine>,
    caller: Caller,
    i: AttachInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let grace = engine.config.session_grace;
    if !i.stdin || grace.is_zero() {
        return run::attach(engine, caller, i, io).await;
    }
    let buffer = engine.config.process_buffer_max;
    let refused = match engine.processes.reserve(&caller, Some(buffer)) {
        Ok(slot) => match run::attach_with_stdin(&engine, &caller, &i).await? {
            Some(attached) => return resumable_attach(&engine, slot, attached, io).await,
            // No stdin to take: a plain attach.
            None => None,
        },
        Err(e) => Some(e),
    };
    if let Some(refused) = refused {
        tracing::info!(
            "an interactive attach runs without resume: {}",
            refused.message
        );
    }
    run::attach(engine, caller, i, io).await
}

/// The attached container as a session's process, attached to by this
/// call.
async fn resumable_attach(
    engine: &Arc<Engine>,
    slot: Slot<'_>,
    attached: run::Attached,
    io: RawIo,
) -> Result<i32, CallError> {
    let grace = engine.config.session_grace;
    let (id, tty) = (attached.id.clone(), attached.tty);
    let new = NewProcess {
        tag: None,
        container_shown: id.clone(),
        cmd: attached.cmd.clone(),
        tty,
        session_grace: Some(grace),
    };
    let process = process::launch_attach(engine, slot, attached, new)?;
    let from = [Some(0), Some(0)];
    process::attach_to(
        engine,
        &process,
        from,
        true,
        io,
        move |attached| json!({"id": id, "tty": tty, "stdin": true, "session": attached.id}),
    )
    .await
}

/// The exec as a session's process, attached to by this call.
async fn resumable(
    engine: &Arc<Engine>,
    caller: &Caller,
    slot: Slot<'_>,
    i: ExecInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let grace = engine.config.session_grace;
    let (docker, container) = engine.container(caller, &i.id).await?;
    let new = NewProcess {
        tag: None,
        container_shown: i.id.clone(),
        cmd: i.cmd.clone(),
        tty: i.tty,
        session_grace: Some(grace),
    };
    let tty = i.tty;
    let input = ExecInput { id: container, ..i };
    let (process, exec_id) = process::launch(engine, slot, docker, input, new).await?;
    let from = [Some(0), Some(0)];
    process::attach_to(
        engine,
        &process,
        from,
        true,
        io,
        move |attached| json!({"execId": exec_id, "tty": tty, "session": attached.id}),
    )
    .await
}
